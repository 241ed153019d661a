/*
 * certconnctl scep challenge [--profile P] [--subject S] [--ttl SECONDS]
 *                 approve TXID [--profile P]
 *                 reject TXID [--profile P] [--reason TEXT]
 *                 list [--pending]
 *
 * One-time challenges (stored hashed in the CA's store, single use, with an expiry and an
 * optional expected subject) and the manual approval of requests that wait for it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "certconn/ca.h"
#include "certconn/config.h"
#include "certconn/config_scep.h"
#include "certconn/scep.h"
#include "ctl.h"
#include "ctl_ca.h"

static const struct cc_scep_profile *
profile_arg(const struct cc_config *cfg, const char *name)
{
	const struct cc_config_scep *s = cfg->net.scep;

	if (s == NULL) {
		fprintf(stderr, "certconnctl: the config has no SCEP (net.scep)\n");
		return NULL;
	}
	if (name == NULL)
		return &s->profiles[s->default_profile];
	if (cc_config_scep_profile(s, name) == NULL)
		fprintf(stderr, "certconnctl: no SCEP profile %s\n", name);
	return cc_config_scep_profile(s, name);
}

static int
cmd_challenge(struct cc_config *cfg, struct cc_ca *ca, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "subject", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cc_scep_profile *p;
	const char *pname = NULL, *subject = NULL;
	char out[SCEP_CHALLENGE_LEN + 1], err[512], exp[32];
	long ttl = 0;
	time_t now = time(NULL), until;
	struct tm tm;
	int ch;

	optind = 0; /* 0: glibc starts over (main parsed with "+", stopping at operands) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': pname = optarg; break;
		case 's': subject = optarg; break;
		case 't': ttl = strtol(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: certconnctl scep challenge [--profile P] [--subject "
			    "\"CN=...\"] [--ttl SECONDS]\n");
			return 2;
		}
	}
	if (optind != argc || ttl < 0 || ttl > 2592000) {
		fprintf(stderr, "usage: certconnctl scep challenge [--profile P] [--subject S] "
		    "[--ttl 1..2592000]\n");
		return 2;
	}
	p = profile_arg(cfg, pname);
	if (p == NULL)
		return 1;
	if (p->challenge != CC_SCEP_CHALLENGE_DYNAMIC) {
		fprintf(stderr, "certconnctl: profile %s does not use one-time challenges "
		    "(challenge.mode is not dynamic)\n", p->name);
		return 1;
	}
	if (ttl == 0)
		ttl = p->challenge_ttl_s;
	if (scep_challenge_new(ca, p->name, subject, (uint32_t)ttl, now, out, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return 1;
	}
	until = now + ttl;
	gmtime_r(&until, &tm);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s\n", out);
	fprintf(stderr, "one-time challenge for profile %s%s%s, valid until %s\n", p->name,
	    subject != NULL ? " and subject " : "", subject != NULL ? subject : "", exp);
	OPENSSL_cleanse(out, sizeof(out));
	return 0;
}

static int
cmd_decide(struct cc_config *cfg, struct cc_ca *ca, int approve, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pname = NULL, *reason = "rejected by the administrator", *txid;
	struct scep_txn t;
	char err[512];
	int ch, r;

	optind = 0; /* 0: glibc starts over (main parsed with "+", stopping at operands) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'p')
			pname = optarg;
		else if (ch == 'r' && !approve)
			reason = optarg;
		else {
			fprintf(stderr, "usage: certconnctl scep %s TXID [--profile P]%s\n",
			    approve ? "approve" : "reject", approve ? "" : " [--reason TEXT]");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: certconnctl scep %s TXID [--profile P]\n",
		    approve ? "approve" : "reject");
		return 2;
	}
	txid = argv[optind];
	if (pname != NULL) {
		if (profile_arg(cfg, pname) == NULL)
			return 1;
		r = scep_txn_get(ca, pname, txid, &t, err, sizeof(err));
	} else {
		r = scep_txn_find(ca, txid, &t, err, sizeof(err));
	}
	free(t.csr);
	if (r != 1) {
		fprintf(stderr, "certconnctl: %s\n", r == 0 ? "no such transaction" : err);
		return 1;
	}
	if (t.state != SCEP_TXN_PENDING) {
		fprintf(stderr, "certconnctl: transaction %s is %s, not pending\n", txid,
		    scep_txn_state_name(t.state));
		return 1;
	}
	r = scep_txn_move(ca, t.profile, txid, SCEP_TXN_PENDING, approve ? SCEP_TXN_APPROVED :
	    SCEP_TXN_REJECTED, NULL, approve ? NULL : reason, err, sizeof(err));
	if (r != 1) {
		fprintf(stderr, "certconnctl: %s\n", r == 0 ? "the transaction changed meanwhile" :
		    err);
		return 1;
	}
	printf("%s %s (profile %s, %s): the device gets %s at its next poll\n",
	    approve ? "approved" : "rejected", txid, t.profile, t.subject, approve ?
	    "its certificate" : "a failure");
	return 0;
}

static int
list_cb(const struct scep_txn *t, void *arg)
{
	char c[32];
	struct tm tm;

	(void)arg;
	gmtime_r(&t->created, &tm);
	strftime(c, sizeof(c), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%-20s %-10s %-10s %-40s %s\n", c, t->profile, scep_txn_state_name(t->state),
	    t->txid, t->subject);
	return 0;
}

static int
cmd_list(struct cc_ca *ca, int argc, char **argv)
{
	char err[512];
	int pending = argc == 2 && strcmp(argv[1], "--pending") == 0;

	if (argc != 1 && !pending) {
		fprintf(stderr, "usage: certconnctl scep list [--pending]\n");
		return 2;
	}
	printf("%-20s %-10s %-10s %-40s %s\n", "CREATED", "PROFILE", "STATE", "TRANSACTION",
	    "SUBJECT");
	if (scep_txn_list(ca, pending ? SCEP_TXN_PENDING : -1, list_cb, NULL, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "certconnctl: %s\n", err);
		return 1;
	}
	return 0;
}

int
scep_main(const char *config, int argc, char **argv)
{
	struct cc_config cfg;
	struct cc_ca *ca;
	int r;

	if (argc < 2 || (strcmp(argv[1], "challenge") != 0 && strcmp(argv[1], "approve") != 0 &&
	    strcmp(argv[1], "reject") != 0 && strcmp(argv[1], "list") != 0)) {
		fprintf(stderr, "usage: certconnctl scep challenge [--profile P] [--subject S] "
		    "[--ttl SECONDS] | approve TXID | reject TXID [--reason TEXT] | list "
		    "[--pending]\n");
		return 2;
	}
	if (ctl_ca_open(config, &cfg, &ca) == -1)
		return 1;
	if (strcmp(argv[1], "challenge") == 0)
		r = cmd_challenge(&cfg, ca, argc - 1, argv + 1);
	else if (strcmp(argv[1], "list") == 0)
		r = cmd_list(ca, argc - 1, argv + 1);
	else
		r = cmd_decide(&cfg, ca, strcmp(argv[1], "approve") == 0, argc - 1, argv + 1);
	ctl_ca_close(&cfg, ca);
	return r;
}
