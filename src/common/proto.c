/* Typed messages: see include/certconn/proto.h. */
#include <string.h>
#include <strings.h>

#include "certconn/proto.h"

static int
finish(struct cc_wbuf *w)
{
	if (cc_wbuf_finish(w) == -1) {
		cc_wbuf_free(w);
		return -1;
	}
	return 0;
}

static int
begin(const struct cc_msg *in, uint16_t type, struct cc_rbuf *r, const char **why)
{
	if (in->type != type) {
		*why = "unexpected message type";
		return -1;
	}
	cc_rbuf_init(r, in);
	return 0;
}

static int
end(struct cc_rbuf *r, const char **why)
{
	if (cc_r_end(r) == -1) {
		*why = r->why;
		return -1;
	}
	return 0;
}

static int
check_enum(struct cc_rbuf *r, unsigned v, unsigned lo, unsigned hi, const char *why)
{
	if (!r->err && (v < lo || v > hi)) {
		r->err = 1;
		r->why = why;
		return -1;
	}
	return 0;
}

const char *
cc_keys_strerror(uint32_t code)
{
	switch (code) {
	case CC_KE_OK: return "success";
	case CC_KE_DENIED: return "not allowed by the key role's policy";
	case CC_KE_NOKEY: return "no such key role, or its key is missing";
	case CC_KE_TOKEN: return "token fault";
	case CC_KE_TIMEOUT: return "the PKCS#11 module did not answer in time";
	case CC_KE_BADINPUT: return "malformed or inconsistent request";
	case CC_KE_REFUSED: return "refused by the CA signing policy";
	case CC_KE_INTERNAL: return "internal error";
	case CC_KE_UNAVAILABLE: return "the keys process is not reachable";
	}
	return "unknown error";
}

/* ---- configuration ---- */

int
cc_enc_conf_keys(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_keys *m)
{
	if (cc_wbuf_init(w, CC_MSG_CONF_KEYS, reqid) == -1)
		return -1;
	cc_w_str(w, m->module);
	cc_w_str(w, m->module_env);
	cc_w_u32(w, m->op_timeout_ms);
	cc_w_u32(w, m->sessions);
	cc_w_u32(w, m->max_input);
	return finish(w);
}

int
cc_dec_conf_keys(const struct cc_msg *in, struct cc_conf_keys *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_CONF_KEYS, &r, why) == -1)
		return -1;
	m->module = cc_r_str(&r);
	m->module_env = cc_r_str(&r);
	m->op_timeout_ms = cc_r_u32(&r);
	m->sessions = cc_r_u32(&r);
	m->max_input = cc_r_u32(&r);
	check_enum(&r, m->sessions, 1, 64, "sessions out of range");
	return end(&r, why);
}

int
cc_enc_conf_role(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_role *m)
{
	if (cc_wbuf_init(w, CC_MSG_CONF_ROLE, reqid) == -1)
		return -1;
	cc_w_str(w, m->name);
	cc_w_str(w, m->uri);
	cc_w_u32(w, m->mechs);
	cc_w_u32(w, m->flags);
	cc_w_bytes(w, m->cert, m->cert_len);
	cc_w_u32(w, m->max_validity_days);
	cc_w_u32(w, m->key_usage);
	cc_w_str(w, m->ekus);
	cc_w_u32(w, m->max_crl_days);
	return finish(w);
}

int
cc_dec_conf_role(const struct cc_msg *in, struct cc_conf_role *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_CONF_ROLE, &r, why) == -1)
		return -1;
	m->name = cc_r_str(&r);
	m->uri = cc_r_str(&r);
	m->mechs = cc_r_u32(&r);
	m->flags = cc_r_u32(&r);
	m->cert = cc_r_bytes(&r, &m->cert_len);
	m->max_validity_days = cc_r_u32(&r);
	m->key_usage = cc_r_u32(&r);
	m->ekus = cc_r_str(&r);
	m->max_crl_days = cc_r_u32(&r);
	if (!r.err && (m->mechs & ~CC_MECH_ALL) != 0) {
		r.err = 1;
		r.why = "unknown mechanism bits";
	}
	return end(&r, why);
}

int
cc_enc_conf_pin(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_pin *m)
{
	if (cc_wbuf_init(w, CC_MSG_CONF_PIN, reqid) == -1)
		return -1;
	cc_w_bytes(w, m->pin, m->len);
	return finish(w);
}

int
cc_dec_conf_pin(const struct cc_msg *in, struct cc_conf_pin *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_CONF_PIN, &r, why) == -1)
		return -1;
	m->pin = cc_r_bytes(&r, &m->len);
	if (!r.err && m->len > 256) {
		r.err = 1;
		r.why = "PIN longer than 256 bytes";
	}
	return end(&r, why);
}

int
cc_enc_conf_net(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_net *m)
{
	if (cc_wbuf_init(w, CC_MSG_CONF_NET, reqid) == -1)
		return -1;
	/* The JSON may exceed CC_MSG_STR_MAX, so it travels as bytes with its NUL. */
	cc_w_bytes(w, m->json, strlen(m->json) + 1);
	return finish(w);
}

int
cc_dec_conf_net(const struct cc_msg *in, struct cc_conf_net *m, const char **why)
{
	struct cc_rbuf r;
	const uint8_t *b;
	size_t n;

	if (begin(in, CC_MSG_CONF_NET, &r, why) == -1)
		return -1;
	b = cc_r_bytes(&r, &n);
	if (!r.err && (n == 0 || b[n - 1] != '\0' || memchr(b, '\0', n - 1) != NULL)) {
		r.err = 1;
		r.why = "config text not NUL-terminated or with an interior NUL";
	}
	m->json = r.err ? "" : (const char *)b;
	return end(&r, why);
}

int
cc_enc_conf_log(struct cc_wbuf *w, uint64_t reqid, const struct cc_conf_log *m)
{
	if (cc_wbuf_init(w, CC_MSG_CONF_LOG, reqid) == -1)
		return -1;
	cc_w_u32(w, m->debug_mask);
	cc_w_u8(w, m->verbose);
	return finish(w);
}

int
cc_dec_conf_log(const struct cc_msg *in, struct cc_conf_log *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_CONF_LOG, &r, why) == -1)
		return -1;
	m->debug_mask = cc_r_u32(&r);
	m->verbose = cc_r_u8(&r);
	check_enum(&r, m->debug_mask, 0, 7, "debug mask out of range");
	check_enum(&r, m->verbose, 0, 1, "verbose flag out of range");
	return end(&r, why);
}

/* ---- child -> parent ---- */

int
cc_enc_ready(struct cc_wbuf *w, uint64_t reqid, const struct cc_ready *m)
{
	if (cc_wbuf_init(w, CC_MSG_READY, reqid) == -1)
		return -1;
	cc_w_str(w, m->role);
	cc_w_u32(w, m->pid);
	return finish(w);
}

int
cc_dec_ready(const struct cc_msg *in, struct cc_ready *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_READY, &r, why) == -1)
		return -1;
	m->role = cc_r_str(&r);
	m->pid = cc_r_u32(&r);
	return end(&r, why);
}

int
cc_enc_event(struct cc_wbuf *w, uint64_t reqid, const struct cc_event_msg *m)
{
	if (cc_wbuf_init(w, CC_MSG_EVENT, reqid) == -1)
		return -1;
	cc_w_u32(w, m->id);
	cc_w_u64(w, m->time_us);
	cc_w_str(w, m->role);
	cc_w_str(w, m->correlation_id);
	cc_w_str(w, m->details_json);
	return finish(w);
}

int
cc_dec_event(const struct cc_msg *in, struct cc_event_msg *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_EVENT, &r, why) == -1)
		return -1;
	m->id = cc_r_u32(&r);
	m->time_us = cc_r_u64(&r);
	m->role = cc_r_str(&r);
	m->correlation_id = cc_r_str(&r);
	m->details_json = cc_r_str(&r);
	check_enum(&r, m->id, 1, 9999, "event id out of range");
	return end(&r, why);
}

int
cc_enc_set_debug(struct cc_wbuf *w, uint16_t type, uint64_t reqid, const struct cc_set_debug *m)
{
	if (type != CC_MSG_SET_DEBUG && type != CC_MSG_CTL_DEBUG_REQ)
		return -1;
	if (cc_wbuf_init(w, type, reqid) == -1)
		return -1;
	cc_w_u32(w, m->mask);
	cc_w_u8(w, m->on);
	return finish(w);
}

int
cc_dec_set_debug(const struct cc_msg *in, struct cc_set_debug *m, const char **why)
{
	struct cc_rbuf r;

	if (in->type != CC_MSG_SET_DEBUG && in->type != CC_MSG_CTL_DEBUG_REQ) {
		*why = "unexpected message type";
		return -1;
	}
	cc_rbuf_init(&r, in);
	m->mask = cc_r_u32(&r);
	m->on = cc_r_u8(&r);
	check_enum(&r, m->mask, 1, 7, "channel mask out of range");
	check_enum(&r, m->on, 0, 1, "on flag out of range");
	return end(&r, why);
}

/* ---- keys requests and replies ---- */

int
cc_enc_key_info_req(struct cc_wbuf *w, uint64_t reqid, const struct cc_key_info_req *m)
{
	if (cc_wbuf_init(w, CC_MSG_KEY_INFO_REQ, reqid) == -1)
		return -1;
	cc_w_str(w, m->role);
	return finish(w);
}

int
cc_dec_key_info_req(const struct cc_msg *in, struct cc_key_info_req *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_KEY_INFO_REQ, &r, why) == -1)
		return -1;
	m->role = cc_r_str(&r);
	return end(&r, why);
}

int
cc_enc_key_info(struct cc_wbuf *w, uint64_t reqid, const struct cc_key_info *m)
{
	if (cc_wbuf_init(w, CC_MSG_KEY_INFO, reqid) == -1)
		return -1;
	cc_w_str(w, m->role);
	cc_w_u8(w, m->key_type);
	cc_w_u32(w, m->bits);
	cc_w_u32(w, m->mechs);
	cc_w_u32(w, m->flags);
	cc_w_bytes(w, m->spki, m->spki_len);
	cc_w_bytes(w, m->cert, m->cert_len);
	return finish(w);
}

int
cc_dec_key_info(const struct cc_msg *in, struct cc_key_info *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_KEY_INFO, &r, why) == -1)
		return -1;
	m->role = cc_r_str(&r);
	m->key_type = cc_r_u8(&r);
	m->bits = cc_r_u32(&r);
	m->mechs = cc_r_u32(&r);
	m->flags = cc_r_u32(&r);
	m->spki = cc_r_bytes(&r, &m->spki_len);
	m->cert = cc_r_bytes(&r, &m->cert_len);
	check_enum(&r, m->key_type, CC_KEY_RSA, CC_KEY_EC, "unknown key type");
	check_enum(&r, m->bits, 160, 16384, "key size out of range");
	check_enum(&r, (unsigned)m->spki_len, 1, 65536, "public key missing or too long");
	return end(&r, why);
}

int
cc_enc_sign_req(struct cc_wbuf *w, uint64_t reqid, const struct cc_sign_req *m)
{
	if (cc_wbuf_init(w, CC_MSG_SIGN_REQ, reqid) == -1)
		return -1;
	cc_w_str(w, m->role);
	cc_w_u8(w, m->alg);
	cc_w_u8(w, m->md);
	cc_w_u8(w, m->mgf1_md);
	cc_w_u32(w, m->saltlen);
	cc_w_bytes(w, m->digest, m->digest_len);
	return finish(w);
}

int
cc_dec_sign_req(const struct cc_msg *in, struct cc_sign_req *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_SIGN_REQ, &r, why) == -1)
		return -1;
	m->role = cc_r_str(&r);
	m->alg = cc_r_u8(&r);
	m->md = cc_r_u8(&r);
	m->mgf1_md = cc_r_u8(&r);
	m->saltlen = cc_r_u32(&r);
	m->digest = cc_r_bytes(&r, &m->digest_len);
	check_enum(&r, m->alg, 1, CC_SIG_MAX, "unknown signature algorithm");
	check_enum(&r, m->md, CC_MD_SHA1, CC_MD_MAX, "unknown digest");
	check_enum(&r, m->mgf1_md, CC_MD_NONE, CC_MD_MAX, "unknown MGF1 digest");
	if (!r.err && m->digest_len != cc_md_size(m->md)) {
		r.err = 1;
		r.why = "digest length does not match the digest algorithm";
	}
	if (!r.err && m->saltlen > 1024) {
		r.err = 1;
		r.why = "PSS salt length out of range";
	}
	return end(&r, why);
}

int
cc_enc_sign_tbs_req(struct cc_wbuf *w, uint64_t reqid, const struct cc_sign_tbs_req *m)
{
	if (cc_wbuf_init(w, CC_MSG_SIGN_TBS_REQ, reqid) == -1)
		return -1;
	cc_w_str(w, m->role);
	cc_w_u8(w, m->kind);
	cc_w_bytes(w, m->tbs, m->tbs_len);
	return finish(w);
}

int
cc_dec_sign_tbs_req(const struct cc_msg *in, struct cc_sign_tbs_req *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_SIGN_TBS_REQ, &r, why) == -1)
		return -1;
	m->role = cc_r_str(&r);
	m->kind = cc_r_u8(&r);
	m->tbs = cc_r_bytes(&r, &m->tbs_len);
	check_enum(&r, m->kind, CC_TBS_CERT, CC_TBS_CRL, "unknown to-be-signed kind");
	if (!r.err && m->tbs_len == 0) {
		r.err = 1;
		r.why = "empty to-be-signed data";
	}
	return end(&r, why);
}

int
cc_enc_sign_resp(struct cc_wbuf *w, uint64_t reqid, const struct cc_sign_resp *m)
{
	if (cc_wbuf_init(w, CC_MSG_SIGN_RESP, reqid) == -1)
		return -1;
	cc_w_bytes(w, m->sig, m->sig_len);
	return finish(w);
}

int
cc_dec_sign_resp(const struct cc_msg *in, struct cc_sign_resp *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_SIGN_RESP, &r, why) == -1)
		return -1;
	m->sig = cc_r_bytes(&r, &m->sig_len);
	check_enum(&r, (unsigned)m->sig_len, 1, 2048, "signature length out of range");
	return end(&r, why);
}

int
cc_enc_decrypt_req(struct cc_wbuf *w, uint64_t reqid, const struct cc_decrypt_req *m)
{
	if (cc_wbuf_init(w, CC_MSG_DECRYPT_REQ, reqid) == -1)
		return -1;
	cc_w_str(w, m->role);
	cc_w_u8(w, m->pad);
	cc_w_u8(w, m->oaep_md);
	cc_w_u8(w, m->mgf1_md);
	cc_w_bytes(w, m->label, m->label_len);
	cc_w_bytes(w, m->in, m->in_len);
	return finish(w);
}

int
cc_dec_decrypt_req(const struct cc_msg *in, struct cc_decrypt_req *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_DECRYPT_REQ, &r, why) == -1)
		return -1;
	m->role = cc_r_str(&r);
	m->pad = cc_r_u8(&r);
	m->oaep_md = cc_r_u8(&r);
	m->mgf1_md = cc_r_u8(&r);
	m->label = cc_r_bytes(&r, &m->label_len);
	m->in = cc_r_bytes(&r, &m->in_len);
	check_enum(&r, m->pad, 1, CC_DEC_MAX, "unknown decryption padding");
	check_enum(&r, m->oaep_md, CC_MD_NONE, CC_MD_MAX, "unknown OAEP digest");
	check_enum(&r, m->mgf1_md, CC_MD_NONE, CC_MD_MAX, "unknown MGF1 digest");
	check_enum(&r, (unsigned)m->in_len, 1, 2048, "ciphertext length out of range");
	check_enum(&r, (unsigned)m->label_len, 0, 1024, "OAEP label too long");
	return end(&r, why);
}

int
cc_enc_decrypt_resp(struct cc_wbuf *w, uint64_t reqid, const struct cc_decrypt_resp *m)
{
	if (cc_wbuf_init(w, CC_MSG_DECRYPT_RESP, reqid) == -1)
		return -1;
	cc_w_bytes(w, m->out, m->out_len);
	return finish(w);
}

int
cc_dec_decrypt_resp(const struct cc_msg *in, struct cc_decrypt_resp *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_DECRYPT_RESP, &r, why) == -1)
		return -1;
	m->out = cc_r_bytes(&r, &m->out_len);
	check_enum(&r, (unsigned)m->out_len, 0, 2048, "plaintext length out of range");
	return end(&r, why);
}

int
cc_enc_error(struct cc_wbuf *w, uint64_t reqid, const struct cc_error *m)
{
	if (cc_wbuf_init(w, CC_MSG_ERROR, reqid) == -1)
		return -1;
	cc_w_u32(w, m->code);
	cc_w_str(w, m->text);
	return finish(w);
}

int
cc_dec_error(const struct cc_msg *in, struct cc_error *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_ERROR, &r, why) == -1)
		return -1;
	m->code = cc_r_u32(&r);
	m->text = cc_r_str(&r);
	check_enum(&r, m->code, 1, CC_KE_UNAVAILABLE, "unknown error code");
	return end(&r, why);
}

int
cc_enc_keys_list_item(struct cc_wbuf *w, uint64_t reqid, const struct cc_keys_list_item *m)
{
	if (cc_wbuf_init(w, CC_MSG_KEYS_LIST, reqid) == -1)
		return -1;
	cc_w_str(w, m->role);
	cc_w_str(w, m->uri);
	cc_w_u8(w, m->key_type);
	cc_w_u32(w, m->bits);
	cc_w_u32(w, m->mechs);
	cc_w_str(w, m->sign_path);
	cc_w_str(w, m->decrypt_path);
	cc_w_str(w, m->state);
	return finish(w);
}

int
cc_dec_keys_list_item(const struct cc_msg *in, struct cc_keys_list_item *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_KEYS_LIST, &r, why) == -1)
		return -1;
	m->role = cc_r_str(&r);
	m->uri = cc_r_str(&r);
	m->key_type = cc_r_u8(&r);
	m->bits = cc_r_u32(&r);
	m->mechs = cc_r_u32(&r);
	m->sign_path = cc_r_str(&r);
	m->decrypt_path = cc_r_str(&r);
	m->state = cc_r_str(&r);
	check_enum(&r, m->key_type, CC_KEY_NONE, CC_KEY_EC, "unknown key type");
	return end(&r, why);
}

/* ---- control ---- */

int
cc_enc_ctl_status(struct cc_wbuf *w, uint64_t reqid, const struct cc_ctl_status *m)
{
	if (cc_wbuf_init(w, CC_MSG_CTL_STATUS, reqid) == -1)
		return -1;
	cc_w_str(w, m->version);
	cc_w_str(w, m->state);
	cc_w_u32(w, m->parent_pid);
	cc_w_u32(w, m->net_pid);
	cc_w_u32(w, m->keys_pid);
	cc_w_u32(w, m->net_restarts);
	cc_w_u32(w, m->keys_restarts);
	cc_w_u64(w, m->uptime_s);
	cc_w_str(w, m->config_path);
	return finish(w);
}

int
cc_dec_ctl_status(const struct cc_msg *in, struct cc_ctl_status *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_CTL_STATUS, &r, why) == -1)
		return -1;
	m->version = cc_r_str(&r);
	m->state = cc_r_str(&r);
	m->parent_pid = cc_r_u32(&r);
	m->net_pid = cc_r_u32(&r);
	m->keys_pid = cc_r_u32(&r);
	m->net_restarts = cc_r_u32(&r);
	m->keys_restarts = cc_r_u32(&r);
	m->uptime_s = cc_r_u64(&r);
	m->config_path = cc_r_str(&r);
	return end(&r, why);
}

int
cc_enc_ctl_line(struct cc_wbuf *w, uint16_t type, uint64_t reqid, const struct cc_ctl_line *m)
{
	if (type != CC_MSG_CTL_DEMO_LINE)
		return -1;
	if (cc_wbuf_init(w, type, reqid) == -1)
		return -1;
	cc_w_str(w, m->text);
	return finish(w);
}

int
cc_dec_ctl_line(const struct cc_msg *in, struct cc_ctl_line *m, const char **why)
{
	struct cc_rbuf r;

	if (begin(in, CC_MSG_CTL_DEMO_LINE, &r, why) == -1)
		return -1;
	m->text = cc_r_str(&r);
	return end(&r, why);
}

static int
is_empty_type(uint16_t type)
{
	switch (type) {
	case CC_MSG_CONF_END:
	case CC_MSG_SHUTDOWN:
	case CC_MSG_KEYS_LIST_REQ:
	case CC_MSG_KEYS_LIST_END:
	case CC_MSG_CTL_STATUS_REQ:
	case CC_MSG_CTL_OK:
	case CC_MSG_CTL_DEMO_REQ:
		return 1;
	}
	return 0;
}

int
cc_enc_empty(struct cc_wbuf *w, uint16_t type, uint64_t reqid)
{
	if (!is_empty_type(type))
		return -1;
	if (cc_wbuf_init(w, type, reqid) == -1)
		return -1;
	return finish(w);
}

int
cc_dec_empty(const struct cc_msg *in, const char **why)
{
	struct cc_rbuf r;

	if (!is_empty_type(in->type)) {
		*why = "unexpected message type";
		return -1;
	}
	cc_rbuf_init(&r, in);
	return end(&r, why);
}

/* ---- digests ---- */

static const struct {
	uint8_t md;
	size_t size;
	const char *name;
} mds[] = {
	{ CC_MD_SHA1, 20, "SHA1" },
	{ CC_MD_SHA224, 28, "SHA224" },
	{ CC_MD_SHA256, 32, "SHA256" },
	{ CC_MD_SHA384, 48, "SHA384" },
	{ CC_MD_SHA512, 64, "SHA512" },
};

size_t
cc_md_size(uint8_t md)
{
	for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]); i++)
		if (mds[i].md == md)
			return mds[i].size;
	return 0;
}

const char *
cc_md_name(uint8_t md)
{
	for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]); i++)
		if (mds[i].md == md)
			return mds[i].name;
	return NULL;
}

uint8_t
cc_md_from_name(const char *name)
{
	if (name == NULL)
		return CC_MD_NONE;
	for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
		/* OpenSSL names digests "SHA256", "SHA2-256" or "sha256". */
		const char *n = mds[i].name;
		if (strcasecmp(name, n) == 0)
			return mds[i].md;
		if (strncasecmp(name, "SHA2-", 5) == 0 && strcasecmp(name + 5, n + 3) == 0)
			return mds[i].md;
		if (strcasecmp(name, "SHA-1") == 0 && mds[i].md == CC_MD_SHA1)
			return mds[i].md;
	}
	return CC_MD_NONE;
}
