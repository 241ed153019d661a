/*
 * certconnctl ca list | show SERIAL | revoke SERIAL [--reason R] | crl [--text]
 *
 * The local CA's store, read and changed directly (root). A revocation is recorded here;
 * net, which holds the CA key through keys, sees the revocation generation go up and signs
 * the next CRL within seconds; `revoke` waits for it when certconnd runs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certconn/ca.h"
#include "certconn/config.h"
#include "certconn/config_ca.h"
#include "certconn/util.h"
#include "ctl.h"
#include "ctl_ca.h"

#define CA_REVOKE_WAIT_S 20

int
ctl_ca_open(const char *config, struct cc_config *cfg, struct cc_ca **ca)
{
	struct cc_ca_opts o = { 0 };
	char err[1024], db[CC_STATE_DIR_MAX + 16];
	const unsigned char *p;
	X509 *cert = NULL;

	*ca = NULL;
	if (cc_config_load(config, cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return -1;
	}
	if (cfg->net.ca == NULL) {
		fprintf(stderr, "certconnctl: %s has no local CA (net.ca)\n", config);
		goto fail;
	}
	for (size_t i = 0; i < cfg->keys.nroles; i++)
		if (strcmp(cfg->keys.roles[i].name, "ca") == 0 && cfg->keys.roles[i].cert != NULL) {
			p = cfg->keys.roles[i].cert;
			cert = d2i_X509(NULL, &p, (long)cfg->keys.roles[i].cert_len);
		}
	if (cert == NULL) {
		fprintf(stderr, "certconnctl: the ca role has no certificate in %s\n", config);
		goto fail;
	}
	if (cfg->net.ca->database != NULL)
		snprintf(db, sizeof(db), "%s", cfg->net.ca->database);
	else
		snprintf(db, sizeof(db), "%s/ca.db", cfg->net.state_dir);
	if (access(db, F_OK) == -1) {
		fprintf(stderr, "certconnctl: no CA store at %s (certconnd creates it when it "
		    "starts with net.ca)\n", db);
		goto fail;
	}
	o.name = cfg->net.ca->name;
	o.db_path = db;
	o.cert = cert;
	o.crl_days = cfg->net.ca->crl_days;
	if (cc_ca_open(&o, ca, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		goto fail;
	}
	X509_free(cert);
	return 0;
fail:
	X509_free(cert);
	cc_config_free(cfg);
	return -1;
}

void
ctl_ca_close(struct cc_config *cfg, struct cc_ca *ca)
{
	cc_ca_close(ca);
	cc_config_free(cfg);
}

static const char *
state_name(enum cc_ca_cert_state s)
{
	switch (s) {
	case CC_CA_CERT_VALID: return "valid";
	case CC_CA_CERT_WITHHELD: return "withheld";
	case CC_CA_CERT_REVOKED: return "revoked";
	case CC_CA_CERT_EXPIRED: return "expired";
	}
	return "?";
}

static void
utc(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
list_cb(const struct cc_ca_cert_info *in, void *arg)
{
	char na[32];

	(void)arg;
	utc(in->not_after, na, sizeof(na));
	printf("%-34s %-8s %-20s %-10s %s\n", in->serial, state_name(in->state), na,
	    in->profile[0] != '\0' ? in->profile : "-", in->subject);
	return 0;
}

static int
ca_list(struct cc_ca *ca, int argc, char **argv)
{
	char err[512];
	long limit = 0;

	if (argc == 3 && strcmp(argv[1], "--limit") == 0)
		limit = strtol(argv[2], NULL, 10);
	else if (argc != 1) {
		fprintf(stderr, "usage: certconnctl ca list [--limit N]\n");
		return 2;
	}
	printf("%-34s %-8s %-20s %-10s %s\n", "SERIAL", "STATE", "NOT AFTER", "PROFILE",
	    "SUBJECT");
	if (cc_ca_list(ca, limit > 0 ? (size_t)limit : 0, list_cb, NULL, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return 1;
	}
	return 0;
}

static int
ca_show(struct cc_ca *ca, const char *arg)
{
	struct cc_ca_cert_info in;
	char serial[CC_CA_SERIAL_HEX_MAX], err[512], t[4][32];
	X509 *x = NULL;
	int r;

	if (cc_ca_serial_norm(arg, serial) == -1) {
		fprintf(stderr, "certconnctl: \"%s\" is not a serial number (hex)\n", arg);
		return 2;
	}
	r = cc_ca_find(ca, serial, &in, &x, err, sizeof(err));
	if (r != 1) {
		fprintf(stderr, "certconnctl: %s\n", r == 0 ? "no certificate with this serial" :
		    err);
		return 1;
	}
	utc(in.not_before, t[0], sizeof(t[0]));
	utc(in.not_after, t[1], sizeof(t[1]));
	utc(in.issued_at, t[2], sizeof(t[2]));
	utc(in.revoked_at, t[3], sizeof(t[3]));
	printf("serial      %s\nsubject     %s\nstate       %s\nnot before  %s\nnot after   %s\n"
	    "issued      %s\nprofile     %s\ntransaction %s\nsha1        %s\n", in.serial,
	    in.subject, state_name(in.state), t[0], t[1], t[2], in.profile[0] ? in.profile : "-",
	    in.txid[0] ? in.txid : "-", in.sha1);
	if (in.state == CC_CA_CERT_REVOKED)
		printf("revoked     %s (%s)\n", t[3], cc_ca_reason_name(in.reason));
	PEM_write_X509(stdout, x);
	X509_free(x);
	return 0;
}

/* certconnd is running when its control socket answers. */
static int
daemon_running(const struct cc_config *cfg)
{
	int fd = ctl_connect(cfg->daemon.control_socket);

	if (fd == -1)
		return 0;
	close(fd);
	return 1;
}

static int
ca_revoke(struct cc_config *cfg, struct cc_ca *ca, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	char serial[CC_CA_SERIAL_HEX_MAX], err[512];
	int reason = 0, ch;
	uint64_t gen, crl_gen;

	optind = 0; /* 0: glibc starts over (main parsed with "+", stopping at operands) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'r' || (reason = cc_ca_reason_from_name(optarg)) < 0) {
			fprintf(stderr, "usage: certconnctl ca revoke SERIAL [--reason keyCompromise|"
			    "cACompromise|affiliationChanged|superseded|cessationOfOperation|"
			    "certificateHold|privilegeWithdrawn|unspecified]\n");
			return 2;
		}
	}
	if (optind + 1 != argc || cc_ca_serial_norm(argv[optind], serial) == -1) {
		fprintf(stderr, "usage: certconnctl ca revoke SERIAL [--reason REASON]\n");
		return 2;
	}
	if (cc_ca_revoke(ca, serial, reason, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return 1;
	}
	printf("revoked %s (%s)\n", serial, cc_ca_reason_name(reason));
	if (cc_ca_revocation_gen(ca, &gen, &crl_gen, err, sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return 1;
	}
	if (!daemon_running(cfg)) {
		printf("certconnd is not running: it signs the new CRL when it starts\n");
		return 0;
	}
	for (int i = 0; i < CA_REVOKE_WAIT_S * 5; i++) {
		uint8_t *der = NULL;
		size_t len;
		uint64_t num = 0;

		if (cc_ca_revocation_gen(ca, &gen, &crl_gen, err, sizeof(err)) == 0 &&
		    crl_gen >= gen && cc_ca_crl_latest(ca, &der, &len, &num, err,
		    sizeof(err)) == 1) {
			free(der);
			printf("CRL number %llu published at /crl/%s.crl\n", (unsigned long long)num,
			    cfg->net.ca->name);
			return 0;
		}
		usleep(200000);
	}
	fprintf(stderr, "certconnctl: certconnd did not sign a new CRL within %d s (see its "
	    "log)\n", CA_REVOKE_WAIT_S);
	return 1;
}

static int
ca_crl(struct cc_ca *ca, int argc, char **argv)
{
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509_CRL *crl;
	char err[512];
	int text = argc == 2 && strcmp(argv[1], "--text") == 0, r;

	if (argc != 1 && !text) {
		fprintf(stderr, "usage: certconnctl ca crl [--text]\n");
		return 2;
	}
	r = cc_ca_crl_latest(ca, &der, &len, NULL, err, sizeof(err));
	if (r != 1) {
		fprintf(stderr, "certconnctl: %s\n", r == 0 ? "no CRL has been signed yet" : err);
		return 1;
	}
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	free(der);
	if (crl == NULL) {
		fprintf(stderr, "certconnctl: the stored CRL does not decode\n");
		return 1;
	}
	if (text) {
		BIO *b = BIO_new_fp(stdout, BIO_NOCLOSE);
		X509_CRL_print(b, crl);
		BIO_free(b);
	} else {
		PEM_write_X509_CRL(stdout, crl);
	}
	X509_CRL_free(crl);
	return 0;
}

int
ca_main(const char *config, int argc, char **argv)
{
	struct cc_config cfg;
	struct cc_ca *ca;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: certconnctl ca list [--limit N] | show SERIAL | revoke SERIAL "
		    "[--reason R] | crl [--text]\n");
		return 2;
	}
	if (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "show") != 0 &&
	    strcmp(argv[1], "revoke") != 0 && strcmp(argv[1], "crl") != 0) {
		fprintf(stderr, "certconnctl: unknown ca command %s\n", argv[1]);
		return 2;
	}
	if (strcmp(argv[1], "show") == 0 && argc != 3) {
		fprintf(stderr, "usage: certconnctl ca show SERIAL\n");
		return 2;
	}
	if (ctl_ca_open(config, &cfg, &ca) == -1)
		return 1;
	if (strcmp(argv[1], "list") == 0)
		r = ca_list(ca, argc - 1, argv + 1);
	else if (strcmp(argv[1], "show") == 0)
		r = ca_show(ca, argv[2]);
	else if (strcmp(argv[1], "revoke") == 0)
		r = ca_revoke(&cfg, ca, argc - 1, argv + 1);
	else
		r = ca_crl(ca, argc - 1, argv + 1);
	ctl_ca_close(&cfg, ca);
	return r;
}
