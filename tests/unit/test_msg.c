/* Codec and typed messages: every type round-trips; malformed frames are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "certconn/chan.h"
#include "certconn/proto.h"

/* Parses a finished frame, checking the header and type. */
static void
parse_ok(struct cc_wbuf *w, uint16_t type, uint64_t reqid, struct cc_msg *m)
{
	const char *why = NULL;

	assert_int_equal(cc_msg_parse(w->p, w->len, m, &why), 0);
	assert_int_equal(m->type, type);
	assert_int_equal(m->version, CC_MSG_VERSION);
	assert_true(m->reqid == reqid);
}

/* Every strict prefix of a frame, re-headed with its own length, must fail to decode. */
typedef int (*dec_fn)(const struct cc_msg *, void *, const char **);

static void
truncations_fail(struct cc_wbuf *w, dec_fn dec, void *out)
{
	for (size_t cut = CC_MSG_HDR_LEN; cut < w->len; cut++) {
		uint8_t *f = malloc(cut);
		struct cc_msg m;
		const char *why = NULL;

		memcpy(f, w->p, cut);
		f[0] = (uint8_t)(cut >> 24); f[1] = (uint8_t)(cut >> 16);
		f[2] = (uint8_t)(cut >> 8); f[3] = (uint8_t)cut;
		assert_int_equal(cc_msg_parse(f, cut, &m, &why), 0);
		assert_int_equal(dec(&m, out, &why), -1);
		assert_non_null(why);
		free(f);
	}
	/* One trailing byte too many. */
	uint8_t *f = malloc(w->len + 1);
	struct cc_msg m;
	const char *why = NULL;
	size_t n = w->len + 1;
	memcpy(f, w->p, w->len);
	f[w->len] = 0;
	f[0] = (uint8_t)(n >> 24); f[1] = (uint8_t)(n >> 16); f[2] = (uint8_t)(n >> 8); f[3] = (uint8_t)n;
	assert_int_equal(cc_msg_parse(f, n, &m, &why), 0);
	assert_int_equal(dec(&m, out, &why), -1);
	assert_string_equal(why, "trailing bytes after the last field");
	free(f);
}

#define DEC(fn, T) ((dec_fn)(int (*)(const struct cc_msg *, T *, const char **))fn)

static void
test_conf_keys(void **state)
{
	(void)state;
	struct cc_wbuf w;
	struct cc_msg m;
	struct cc_conf_keys in = { "/usr/lib/softhsm/libsofthsm2.so", "SOFTHSM2_CONF=/x", 5000, 2, 65536 }, out;
	const char *why;

	assert_int_equal(cc_enc_conf_keys(&w, 7, &in), 0);
	parse_ok(&w, CC_MSG_CONF_KEYS, 7, &m);
	assert_int_equal(cc_dec_conf_keys(&m, &out, &why), 0);
	assert_string_equal(out.module, in.module);
	assert_string_equal(out.module_env, in.module_env);
	assert_int_equal(out.op_timeout_ms, 5000);
	assert_int_equal(out.sessions, 2);
	assert_int_equal(out.max_input, 65536);
	truncations_fail(&w, DEC(cc_dec_conf_keys, struct cc_conf_keys), &out);
	cc_wbuf_free(&w);

	in.sessions = 0; /* out of range */
	assert_int_equal(cc_enc_conf_keys(&w, 7, &in), 0);
	parse_ok(&w, CC_MSG_CONF_KEYS, 7, &m);
	assert_int_equal(cc_dec_conf_keys(&m, &out, &why), -1);
	cc_wbuf_free(&w);
}

static void
test_conf_role(void **state)
{
	(void)state;
	struct cc_wbuf w;
	struct cc_msg m;
	uint8_t cert[3] = { 0x30, 0x01, 0x00 };
	struct cc_conf_role in = { "ca", "pkcs11:token=t;object=ca", CC_MECH_SIGN_TBS,
		CC_ROLE_TBS_ONLY, cert, sizeof(cert), 825, 0x80, "1.3.6.1.5.5.7.3.1", 30 }, out;
	const char *why;

	assert_int_equal(cc_enc_conf_role(&w, 1, &in), 0);
	parse_ok(&w, CC_MSG_CONF_ROLE, 1, &m);
	assert_int_equal(cc_dec_conf_role(&m, &out, &why), 0);
	assert_string_equal(out.name, "ca");
	assert_string_equal(out.uri, in.uri);
	assert_int_equal(out.mechs, CC_MECH_SIGN_TBS);
	assert_int_equal(out.flags, CC_ROLE_TBS_ONLY);
	assert_int_equal(out.cert_len, 3);
	assert_memory_equal(out.cert, cert, 3);
	assert_int_equal(out.max_validity_days, 825);
	assert_int_equal(out.key_usage, 0x80);
	assert_string_equal(out.ekus, in.ekus);
	assert_int_equal(out.max_crl_days, 30);
	truncations_fail(&w, DEC(cc_dec_conf_role, struct cc_conf_role), &out);
	cc_wbuf_free(&w);

	in.mechs = 0x8000; /* unknown bit */
	assert_int_equal(cc_enc_conf_role(&w, 1, &in), 0);
	parse_ok(&w, CC_MSG_CONF_ROLE, 1, &m);
	assert_int_equal(cc_dec_conf_role(&m, &out, &why), -1);
	cc_wbuf_free(&w);
}

static void
test_conf_pin_net_log(void **state)
{
	(void)state;
	struct cc_wbuf w;
	struct cc_msg m;
	const char *why;
	struct cc_conf_pin pin = { (const uint8_t *)"1234", 4 }, pout;
	struct cc_conf_net net = { "{\"listen\":\"127.0.0.1:8080\"}" }, nout;
	struct cc_conf_log log = { CC_CHAN_ADMIN | CC_CHAN_DEBUG, 1 }, lout;
	uint8_t longpin[300];

	assert_int_equal(cc_enc_conf_pin(&w, 2, &pin), 0);
	parse_ok(&w, CC_MSG_CONF_PIN, 2, &m);
	assert_int_equal(cc_dec_conf_pin(&m, &pout, &why), 0);
	assert_int_equal(pout.len, 4);
	assert_memory_equal(pout.pin, "1234", 4);
	truncations_fail(&w, DEC(cc_dec_conf_pin, struct cc_conf_pin), &pout);
	cc_wbuf_free(&w);

	memset(longpin, 'x', sizeof(longpin));
	pin.pin = longpin;
	pin.len = sizeof(longpin);
	assert_int_equal(cc_enc_conf_pin(&w, 2, &pin), 0);
	parse_ok(&w, CC_MSG_CONF_PIN, 2, &m);
	assert_int_equal(cc_dec_conf_pin(&m, &pout, &why), -1);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_conf_net(&w, 3, &net), 0);
	parse_ok(&w, CC_MSG_CONF_NET, 3, &m);
	assert_int_equal(cc_dec_conf_net(&m, &nout, &why), 0);
	assert_string_equal(nout.json, net.json);
	truncations_fail(&w, DEC(cc_dec_conf_net, struct cc_conf_net), &nout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_conf_log(&w, 4, &log), 0);
	parse_ok(&w, CC_MSG_CONF_LOG, 4, &m);
	assert_int_equal(cc_dec_conf_log(&m, &lout, &why), 0);
	assert_int_equal(lout.debug_mask, log.debug_mask);
	assert_int_equal(lout.verbose, 1);
	truncations_fail(&w, DEC(cc_dec_conf_log, struct cc_conf_log), &lout);
	cc_wbuf_free(&w);
}

static void
test_ready_event_debug(void **state)
{
	(void)state;
	struct cc_wbuf w;
	struct cc_msg m;
	const char *why;
	struct cc_ready r = { "keys", 1234 }, rout;
	struct cc_event_msg e = { 4003, 1700000000000000ull, "net", "txn-1", "{\"a\":\"b\"}" }, eout;
	struct cc_set_debug d = { CC_CHAN_OPERATIONAL, 1 }, dout;

	assert_int_equal(cc_enc_ready(&w, 0, &r), 0);
	parse_ok(&w, CC_MSG_READY, 0, &m);
	assert_int_equal(cc_dec_ready(&m, &rout, &why), 0);
	assert_string_equal(rout.role, "keys");
	assert_int_equal(rout.pid, 1234);
	truncations_fail(&w, DEC(cc_dec_ready, struct cc_ready), &rout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_event(&w, 0, &e), 0);
	parse_ok(&w, CC_MSG_EVENT, 0, &m);
	assert_int_equal(cc_dec_event(&m, &eout, &why), 0);
	assert_int_equal(eout.id, 4003);
	assert_true(eout.time_us == e.time_us);
	assert_string_equal(eout.correlation_id, "txn-1");
	assert_string_equal(eout.details_json, e.details_json);
	truncations_fail(&w, DEC(cc_dec_event, struct cc_event_msg), &eout);
	cc_wbuf_free(&w);

	e.id = 0;
	assert_int_equal(cc_enc_event(&w, 0, &e), 0);
	parse_ok(&w, CC_MSG_EVENT, 0, &m);
	assert_int_equal(cc_dec_event(&m, &eout, &why), -1);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_set_debug(&w, CC_MSG_SET_DEBUG, 9, &d), 0);
	parse_ok(&w, CC_MSG_SET_DEBUG, 9, &m);
	assert_int_equal(cc_dec_set_debug(&m, &dout, &why), 0);
	assert_int_equal(dout.mask, CC_CHAN_OPERATIONAL);
	assert_int_equal(dout.on, 1);
	truncations_fail(&w, DEC(cc_dec_set_debug, struct cc_set_debug), &dout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_set_debug(&w, CC_MSG_CTL_DEBUG_REQ, 9, &d), 0);
	parse_ok(&w, CC_MSG_CTL_DEBUG_REQ, 9, &m);
	assert_int_equal(cc_dec_set_debug(&m, &dout, &why), 0);
	cc_wbuf_free(&w);
	assert_int_equal(cc_enc_set_debug(&w, CC_MSG_READY, 9, &d), -1);
}

static void
test_keys_requests(void **state)
{
	(void)state;
	struct cc_wbuf w;
	struct cc_msg m;
	const char *why;
	uint8_t spki[40], cert[10], dg[32], sig[256], ct[256], label[4] = "abc";
	struct cc_key_info_req kir = { "ra" }, kirout;
	struct cc_key_info ki = { "ra", CC_KEY_RSA, 2048, CC_MECH_SIGN_RSA_PKCS1, CC_ROLE_FALLBACK,
		spki, sizeof(spki), cert, sizeof(cert) }, kiout;
	struct cc_sign_req sr = { "ra", CC_SIG_RSA_PSS, CC_MD_SHA256, CC_MD_SHA256, 32, dg, 32 }, srout;
	struct cc_sign_tbs_req tr = { "ca", CC_TBS_CERT, cert, sizeof(cert) }, trout;
	struct cc_sign_resp sp = { sig, sizeof(sig) }, spout;
	struct cc_decrypt_req dr = { "pfx", CC_DEC_RSA_OAEP, CC_MD_SHA512, CC_MD_SHA512, label, 3, ct, sizeof(ct) }, drout;
	struct cc_decrypt_resp dp = { dg, sizeof(dg) }, dpout;
	struct cc_error er = { CC_KE_DENIED, "no" }, erout;

	memset(spki, 1, sizeof(spki)); memset(cert, 2, sizeof(cert)); memset(dg, 3, sizeof(dg));
	memset(sig, 4, sizeof(sig)); memset(ct, 5, sizeof(ct));

	assert_int_equal(cc_enc_key_info_req(&w, 11, &kir), 0);
	parse_ok(&w, CC_MSG_KEY_INFO_REQ, 11, &m);
	assert_int_equal(cc_dec_key_info_req(&m, &kirout, &why), 0);
	assert_string_equal(kirout.role, "ra");
	truncations_fail(&w, DEC(cc_dec_key_info_req, struct cc_key_info_req), &kirout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_key_info(&w, 11, &ki), 0);
	parse_ok(&w, CC_MSG_KEY_INFO, 11, &m);
	assert_int_equal(cc_dec_key_info(&m, &kiout, &why), 0);
	assert_int_equal(kiout.key_type, CC_KEY_RSA);
	assert_int_equal(kiout.bits, 2048);
	assert_int_equal(kiout.mechs, CC_MECH_SIGN_RSA_PKCS1);
	assert_int_equal(kiout.flags, CC_ROLE_FALLBACK);
	assert_memory_equal(kiout.spki, spki, sizeof(spki));
	assert_memory_equal(kiout.cert, cert, sizeof(cert));
	truncations_fail(&w, DEC(cc_dec_key_info, struct cc_key_info), &kiout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_sign_req(&w, 12, &sr), 0);
	parse_ok(&w, CC_MSG_SIGN_REQ, 12, &m);
	assert_int_equal(cc_dec_sign_req(&m, &srout, &why), 0);
	assert_int_equal(srout.alg, CC_SIG_RSA_PSS);
	assert_int_equal(srout.md, CC_MD_SHA256);
	assert_int_equal(srout.saltlen, 32);
	assert_int_equal(srout.digest_len, 32);
	truncations_fail(&w, DEC(cc_dec_sign_req, struct cc_sign_req), &srout);
	cc_wbuf_free(&w);

	sr.md = CC_MD_SHA512; /* digest length no longer matches */
	assert_int_equal(cc_enc_sign_req(&w, 12, &sr), 0);
	parse_ok(&w, CC_MSG_SIGN_REQ, 12, &m);
	assert_int_equal(cc_dec_sign_req(&m, &srout, &why), -1);
	assert_string_equal(why, "digest length does not match the digest algorithm");
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_sign_tbs_req(&w, 13, &tr), 0);
	parse_ok(&w, CC_MSG_SIGN_TBS_REQ, 13, &m);
	assert_int_equal(cc_dec_sign_tbs_req(&m, &trout, &why), 0);
	assert_int_equal(trout.kind, CC_TBS_CERT);
	assert_int_equal(trout.tbs_len, sizeof(cert));
	truncations_fail(&w, DEC(cc_dec_sign_tbs_req, struct cc_sign_tbs_req), &trout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_sign_resp(&w, 13, &sp), 0);
	parse_ok(&w, CC_MSG_SIGN_RESP, 13, &m);
	assert_int_equal(cc_dec_sign_resp(&m, &spout, &why), 0);
	assert_int_equal(spout.sig_len, sizeof(sig));
	truncations_fail(&w, DEC(cc_dec_sign_resp, struct cc_sign_resp), &spout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_decrypt_req(&w, 14, &dr), 0);
	parse_ok(&w, CC_MSG_DECRYPT_REQ, 14, &m);
	assert_int_equal(cc_dec_decrypt_req(&m, &drout, &why), 0);
	assert_int_equal(drout.pad, CC_DEC_RSA_OAEP);
	assert_int_equal(drout.oaep_md, CC_MD_SHA512);
	assert_int_equal(drout.label_len, 3);
	assert_int_equal(drout.in_len, sizeof(ct));
	truncations_fail(&w, DEC(cc_dec_decrypt_req, struct cc_decrypt_req), &drout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_decrypt_resp(&w, 14, &dp), 0);
	parse_ok(&w, CC_MSG_DECRYPT_RESP, 14, &m);
	assert_int_equal(cc_dec_decrypt_resp(&m, &dpout, &why), 0);
	assert_memory_equal(dpout.out, dg, sizeof(dg));
	truncations_fail(&w, DEC(cc_dec_decrypt_resp, struct cc_decrypt_resp), &dpout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_error(&w, 15, &er), 0);
	parse_ok(&w, CC_MSG_ERROR, 15, &m);
	assert_int_equal(cc_dec_error(&m, &erout, &why), 0);
	assert_int_equal(erout.code, CC_KE_DENIED);
	assert_string_equal(erout.text, "no");
	truncations_fail(&w, DEC(cc_dec_error, struct cc_error), &erout);
	cc_wbuf_free(&w);
	assert_string_equal(cc_keys_strerror(CC_KE_REFUSED), "refused by the CA signing policy");
}

static void
test_lists_and_control(void **state)
{
	(void)state;
	struct cc_wbuf w;
	struct cc_msg m;
	const char *why;
	struct cc_keys_list_item li = { "pfx", "pkcs11:object=pfx", CC_KEY_RSA, 2048,
		CC_MECH_DECRYPT_RSA_OAEP, "-", "CKM_RSA_X_509 + OAEP (fallback)", "ok" }, liout;
	struct cc_ctl_status st = { "0.1.0", "running", 1, 2, 3, 0, 1, 99, "/etc/x.json" }, stout;
	struct cc_ctl_line ln = { "signature verified" }, lnout;
	static const uint16_t empties[] = { CC_MSG_CONF_END, CC_MSG_SHUTDOWN, CC_MSG_KEYS_LIST_REQ,
		CC_MSG_KEYS_LIST_END, CC_MSG_CTL_STATUS_REQ, CC_MSG_CTL_OK, CC_MSG_CTL_DEMO_REQ };

	assert_int_equal(cc_enc_keys_list_item(&w, 20, &li), 0);
	parse_ok(&w, CC_MSG_KEYS_LIST, 20, &m);
	assert_int_equal(cc_dec_keys_list_item(&m, &liout, &why), 0);
	assert_string_equal(liout.decrypt_path, li.decrypt_path);
	assert_int_equal(liout.bits, 2048);
	truncations_fail(&w, DEC(cc_dec_keys_list_item, struct cc_keys_list_item), &liout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_ctl_status(&w, 21, &st), 0);
	parse_ok(&w, CC_MSG_CTL_STATUS, 21, &m);
	assert_int_equal(cc_dec_ctl_status(&m, &stout, &why), 0);
	assert_string_equal(stout.state, "running");
	assert_int_equal(stout.keys_pid, 3);
	assert_true(stout.uptime_s == 99);
	truncations_fail(&w, DEC(cc_dec_ctl_status, struct cc_ctl_status), &stout);
	cc_wbuf_free(&w);

	assert_int_equal(cc_enc_ctl_line(&w, CC_MSG_CTL_DEMO_LINE, 22, &ln), 0);
	parse_ok(&w, CC_MSG_CTL_DEMO_LINE, 22, &m);
	assert_int_equal(cc_dec_ctl_line(&m, &lnout, &why), 0);
	assert_string_equal(lnout.text, ln.text);
	truncations_fail(&w, DEC(cc_dec_ctl_line, struct cc_ctl_line), &lnout);
	cc_wbuf_free(&w);

	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		assert_int_equal(cc_enc_empty(&w, empties[i], 5), 0);
		parse_ok(&w, empties[i], 5, &m);
		assert_int_equal(cc_dec_empty(&m, &why), 0);
		cc_wbuf_free(&w);
	}
	assert_int_equal(cc_enc_empty(&w, CC_MSG_SIGN_REQ, 5), -1);
}

static void
test_header_checks(void **state)
{
	(void)state;
	struct cc_wbuf w;
	struct cc_msg m;
	const char *why;
	struct cc_key_info_req kir = { "ra" };

	assert_int_equal(cc_enc_key_info_req(&w, 1, &kir), 0);
	/* Length mismatch. */
	assert_int_equal(cc_msg_parse(w.p, w.len - 1, &m, &why), -1);
	/* Bad version. */
	w.p[5] = 9;
	assert_int_equal(cc_msg_parse(w.p, w.len, &m, &why), -1);
	assert_string_equal(why, "unsupported message version");
	w.p[5] = CC_MSG_VERSION;
	/* Unknown type. */
	w.p[7] = 63;
	assert_int_equal(cc_msg_parse(w.p, w.len, &m, &why), -1);
	assert_string_equal(why, "unknown message type");
	w.p[7] = CC_MSG_KEY_INFO_REQ;
	/* Wrong decoder for the type. */
	struct cc_sign_req sr;
	assert_int_equal(cc_msg_parse(w.p, w.len, &m, &why), 0);
	assert_int_equal(cc_dec_sign_req(&m, &sr, &why), -1);
	assert_string_equal(cc_msg_type_name(CC_MSG_SIGN_TBS_REQ), "SIGN_TBS_REQ");
	assert_string_equal(cc_msg_type_name(999), "UNKNOWN");
	cc_wbuf_free(&w);
	assert_int_equal(cc_msg_parse((const uint8_t *)"short", 5, &m, &why), -1);
}

static void
test_string_rules(void **state)
{
	(void)state;
	struct cc_wbuf w;
	struct cc_msg m;
	const char *why;
	struct cc_key_info_req kir;
	char big[CC_MSG_STR_MAX + 1];

	/* Interior NUL: hand-build a KEY_INFO_REQ whose string is "a\0b\0". */
	assert_int_equal(cc_wbuf_init(&w, CC_MSG_KEY_INFO_REQ, 1), 0);
	cc_w_u32(&w, 4);
	cc_w_u8(&w, 'a'); cc_w_u8(&w, 0); cc_w_u8(&w, 'b'); cc_w_u8(&w, 0);
	assert_int_equal(cc_wbuf_finish(&w), 0);
	parse_ok(&w, CC_MSG_KEY_INFO_REQ, 1, &m);
	assert_int_equal(cc_dec_key_info_req(&m, &kir, &why), -1);
	cc_wbuf_free(&w);

	/* Missing terminator. */
	assert_int_equal(cc_wbuf_init(&w, CC_MSG_KEY_INFO_REQ, 1), 0);
	cc_w_u32(&w, 2);
	cc_w_u8(&w, 'a'); cc_w_u8(&w, 'b');
	assert_int_equal(cc_wbuf_finish(&w), 0);
	parse_ok(&w, CC_MSG_KEY_INFO_REQ, 1, &m);
	assert_int_equal(cc_dec_key_info_req(&m, &kir, &why), -1);
	cc_wbuf_free(&w);

	/* Length claims more than the frame holds. */
	assert_int_equal(cc_wbuf_init(&w, CC_MSG_KEY_INFO_REQ, 1), 0);
	cc_w_u32(&w, 0xffffffffu);
	assert_int_equal(cc_wbuf_finish(&w), 0);
	parse_ok(&w, CC_MSG_KEY_INFO_REQ, 1, &m);
	assert_int_equal(cc_dec_key_info_req(&m, &kir, &why), -1);
	cc_wbuf_free(&w);

	/* Writers refuse over-long strings and frames past the cap. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	kir.role = big;
	assert_int_equal(cc_enc_key_info_req(&w, 1, &kir), -1);
	assert_int_equal(cc_wbuf_init(&w, CC_MSG_SIGN_RESP, 1), 0);
	uint8_t *huge = calloc(1, CC_MSG_MAX);
	cc_w_bytes(&w, huge, CC_MSG_MAX);
	assert_int_equal(cc_wbuf_finish(&w), -1);
	cc_wbuf_free(&w);
	free(huge);
}

static void
test_chan_socketpair(void **state)
{
	(void)state;
	int sv[2];
	struct cc_wbuf w;
	struct cc_frame f;
	const char *why;
	struct cc_key_info_req kir = { "tls" }, out;
	uint8_t bad[CC_MSG_HDR_LEN] = { 0xff, 0xff, 0xff, 0xff };

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(cc_enc_key_info_req(&w, 42, &kir), 0);
	assert_int_equal(cc_chan_send(sv[0], &w), 0);
	assert_int_equal(cc_chan_recv(sv[1], 1000, &f, &why), 1);
	assert_true(f.msg.reqid == 42);
	assert_int_equal(cc_dec_key_info_req(&f.msg, &out, &why), 0);
	assert_string_equal(out.role, "tls");
	cc_frame_free(&f);

	/* Nothing to read: times out. */
	assert_int_equal(cc_chan_recv(sv[1], 50, &f, &why), -1);
	assert_int_equal(errno, ETIMEDOUT);

	/* An oversized length is refused before anything is allocated. */
	assert_int_equal(write(sv[0], bad, sizeof(bad)), (ssize_t)sizeof(bad));
	assert_int_equal(cc_chan_recv(sv[1], 1000, &f, &why), -1);
	assert_int_equal(errno, EPROTO);

	/* libevent path: frames are cut out whole, one at a time. */
	struct evbuffer *eb = evbuffer_new();
	evbuffer_add(eb, w.p, 10);
	assert_int_equal(cc_chan_take(eb, &f, &why), 0);
	evbuffer_add(eb, w.p + 10, w.len - 10);
	evbuffer_add(eb, w.p, w.len);
	assert_int_equal(cc_chan_take(eb, &f, &why), 1);
	cc_frame_free(&f);
	assert_int_equal(cc_chan_take(eb, &f, &why), 1);
	cc_frame_free(&f);
	assert_int_equal(cc_chan_take(eb, &f, &why), 0);
	evbuffer_add(eb, bad, sizeof(bad));
	assert_int_equal(cc_chan_take(eb, &f, &why), -1);
	evbuffer_free(eb);

	close(sv[0]);
	assert_int_equal(cc_chan_recv(sv[1], 1000, &f, &why), 0); /* EOF */
	close(sv[1]);
	cc_wbuf_free(&w);
}

static void
test_md_helpers(void **state)
{
	(void)state;
	assert_int_equal(cc_md_size(CC_MD_SHA384), 48);
	assert_int_equal(cc_md_size(99), 0);
	assert_string_equal(cc_md_name(CC_MD_SHA1), "SHA1");
	assert_int_equal(cc_md_from_name("SHA2-256"), CC_MD_SHA256);
	assert_int_equal(cc_md_from_name("sha512"), CC_MD_SHA512);
	assert_int_equal(cc_md_from_name("SHA-1"), CC_MD_SHA1);
	assert_int_equal(cc_md_from_name("MD5"), CC_MD_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_keys),
		cmocka_unit_test(test_conf_role),
		cmocka_unit_test(test_conf_pin_net_log),
		cmocka_unit_test(test_ready_event_debug),
		cmocka_unit_test(test_keys_requests),
		cmocka_unit_test(test_lists_and_control),
		cmocka_unit_test(test_header_checks),
		cmocka_unit_test(test_string_rules),
		cmocka_unit_test(test_chan_socketpair),
		cmocka_unit_test(test_md_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
