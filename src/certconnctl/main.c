/*
 * certconnctl: the administrator's tool. Talks to a running certconnd over its control
 * socket (status, keys list, log debug, selftest), prepares tokens (token init) and runs a
 * whole dev appliance on loopback (dev up | down | demo).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "certconn/config.h"
#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/util.h"
#include "ctl.h"

/* certconnctl pfx (pfx.c): public-key, encrypt-password. */
int pfx_main(const char *config, int argc, char **argv);

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: certconnctl [-c config | -s socket] command [args]\n"
	    "\n"
	    "  status [--json]                 state, pids and restarts of certconnd's roles\n"
	    "  keys list                       key roles, their keys and mechanism paths\n"
	    "  log debug on|off [admin|operational|all]\n"
	    "                                  switch debug event logging at run time\n"
	    "  selftest                        a signature and a decryption through keys\n"
	    "  token init [options]            create the roles' keys in a token (see man page)\n"
	    "  dev up|down|demo [--dir DIR]    the dev appliance on loopback (default ./.dev)\n"
	    "  ca list|show|revoke|crl ...     the local CA (see certconnctl(8))\n"
	    "  scep challenge|approve|reject   SCEP challenges and manual approval\n"
	    "  register --hub URL --token T    register this connector with a certconn-hub\n"
	    "  pfx public-key | encrypt-password  PFX import passwords (see certconnctl(8))\n"
	    "\n"
	    "  -c, --config PATH   certconnd's config, to find its control socket (default %s)\n"
	    "  -s, --socket PATH   the control socket itself\n", CC_CONFIG_DEFAULT_PATH);
}

/* The control socket: -s, or the daemon.control_socket of the config. */
static int
socket_path(const char *sock, const char *config, char *out, size_t len)
{
	struct cc_config cfg;
	char err[1024];

	if (sock != NULL) {
		snprintf(out, len, "%s", sock);
		return 0;
	}
	if (cc_config_load(config, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return -1;
	}
	snprintf(out, len, "%s", cfg.daemon.control_socket);
	cc_config_free(&cfg);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = CC_CONFIG_DEFAULT_PATH, *sock = NULL, *cmd;
	char path[4096];
	int ch;

	cc_log_init("certconnctl", NULL, getenv("CERTCONNCTL_DEBUG") != NULL);
	while ((ch = getopt_long(argc, argv, "+c:s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 's': sock = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;

	if (strcmp(cmd, "token") == 0)
		return token_main(argc, argv);
	if (strcmp(cmd, "dev") == 0)
		return dev_main(argc, argv);
	if (strcmp(cmd, "ca") == 0)
		return ca_main(config, argc, argv);
	if (strcmp(cmd, "scep") == 0)
		return scep_main(config, argc, argv);
	if (strcmp(cmd, "register") == 0)
		return register_main(config, argc, argv);
	if (strcmp(cmd, "pfx") == 0)
		return pfx_main(config, argc, argv);

	if (strcmp(cmd, "status") == 0) {
		int json = argc > 1 && strcmp(argv[1], "--json") == 0;
		if (argc > 1 + json) {
			usage(stderr);
			return 2;
		}
		if (socket_path(sock, config, path, sizeof(path)) == -1)
			return 1;
		return ctl_status(path, json);
	}
	if (strcmp(cmd, "keys") == 0 && argc == 2 && strcmp(argv[1], "list") == 0) {
		if (socket_path(sock, config, path, sizeof(path)) == -1)
			return 1;
		return ctl_keys_list(path);
	}
	if (strcmp(cmd, "selftest") == 0 && argc == 1) {
		if (socket_path(sock, config, path, sizeof(path)) == -1)
			return 1;
		return ctl_selftest(path, "");
	}
	if (strcmp(cmd, "log") == 0 && (argc == 3 || argc == 4) && strcmp(argv[1], "debug") == 0) {
		uint32_t mask = CC_CHAN_ADMIN | CC_CHAN_OPERATIONAL;
		int on;

		if (strcmp(argv[2], "on") == 0)
			on = 1;
		else if (strcmp(argv[2], "off") == 0)
			on = 0;
		else {
			usage(stderr);
			return 2;
		}
		if (argc == 4 && strcasecmp(argv[3], "all") != 0) {
			mask = cc_event_channel_from_name(argv[3]);
			if (mask != CC_CHAN_ADMIN && mask != CC_CHAN_OPERATIONAL) {
				fprintf(stderr, "certconnctl: debug channels are admin and operational\n");
				return 2;
			}
		}
		if (socket_path(sock, config, path, sizeof(path)) == -1)
			return 1;
		return ctl_debug(path, mask, on);
	}
	usage(stderr);
	return 2;
}
