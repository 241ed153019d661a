/*
 * keys: the requests. Policy (the role's mechanisms and flags), the choice between the
 * token's native mechanism and the fallback (raw RSA with the padding done here, only for
 * roles with CC_ROLE_FALLBACK), output sizes from the key, replies and the audit line of
 * every private-key operation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certconn/log.h"
#include "keys_int.h"
#include "keys_pad.h"

struct keys_role *
keys_role_find(struct keys *k, const char *name)
{
	for (size_t i = 0; i < k->nroles; i++)
		if (strcmp(k->roles[i].name, name) == 0)
			return &k->roles[i];
	return NULL;
}

static int __attribute__((format(printf, 4, 5)))
reply_err(struct cc_wbuf *w, uint64_t reqid, uint32_t code, const char *fmt, ...)
{
	struct cc_error e = { .code = code };
	char text[KEYS_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	e.text = text;
	return cc_enc_error(w, reqid, &e);
}

static const char *
path_name(enum keys_path p)
{
	return p == KP_NATIVE ? "native" : p == KP_FALLBACK ? "fallback" : "none";
}

/* ---- paths ---- */

static int
can_fallback_sign(const struct keys_role *r)
{
	return (r->flags & CC_ROLE_FALLBACK) && r->tok_x509_sign;
}

static int
can_fallback_dec(const struct keys_role *r)
{
	return (r->flags & CC_ROLE_FALLBACK) && r->tok_x509_dec;
}

static enum keys_path
pkcs1_sign_path(const struct keys_role *r)
{
	if (r->tok_pkcs1_sign)
		return KP_NATIVE;
	return can_fallback_sign(r) ? KP_FALLBACK : KP_NONE;
}

enum keys_path
keys_ops_pss_path(struct keys_role *r, uint8_t md, uint8_t mgf1)
{
	if (r->tok_pss && atomic_load(&r->pss_native[md][mgf1]) != KN_NO)
		return KP_NATIVE;
	return can_fallback_sign(r) ? KP_FALLBACK : KP_NONE;
}

enum keys_path
keys_ops_oaep_path(struct keys_role *r, uint8_t md, uint8_t mgf1, int label)
{
	if (r->tok_oaep && atomic_load(&r->oaep_native[md][mgf1][label ? 1 : 0]) != KN_NO)
		return KP_NATIVE;
	return can_fallback_dec(r) ? KP_FALLBACK : KP_NONE;
}

static const char *
md_short(uint8_t md)
{
	static const char *const n[] = { "", "sha1", "sha224", "sha256", "sha384", "sha512" };

	return md <= CC_MD_MAX ? n[md] : "?";
}

/* "sha1/256/384": the digests of list, the first in full, the rest by their size. */
static void
md_list(char *out, size_t len, const uint8_t *mds, size_t n)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++) {
		const char *s = md_short(mds[i]);

		if (i > 0 && strncmp(s, "sha", 3) == 0 && strcmp(s, "sha1") != 0)
			s += 3;
		off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "/" : "", s);
	}
}

/* Words for a per-digest mechanism: which digests are native, which fall back. */
static void
per_md_words(char *out, size_t len, const char *mech, const char *what, struct keys_role *r,
    int oaep)
{
	uint8_t nat[CC_MD_MAX], fb[CC_MD_MAX], none[CC_MD_MAX];
	size_t nn = 0, nf = 0, nx = 0, off = 0;
	char l[64];

	for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++) {
		enum keys_path p = oaep ? keys_ops_oaep_path(r, md, md, 0) :
		    keys_ops_pss_path(r, md, md);

		if (p == KP_NATIVE)
			nat[nn++] = md;
		else if (p == KP_FALLBACK)
			fb[nf++] = md;
		else
			none[nx++] = md;
	}
	out[0] = '\0';
	if (nn == CC_MD_MAX) {
		snprintf(out, len, "%s (native)", mech);
		return;
	}
	if (nn > 0) {
		md_list(l, sizeof(l), nat, nn);
		off += (size_t)snprintf(out + off, len - off, "%s %s native", mech, l);
	}
	if (nf > 0 && off < len) {
		md_list(l, sizeof(l), fb, nf);
		off += (size_t)snprintf(out + off, len - off, "%s%s via CKM_RSA_X_509 + %s in keys "
		    "(fallback)", off ? "; " : "", l, what);
	}
	if (nx > 0 && off < len) {
		md_list(l, sizeof(l), none, nx);
		snprintf(out + off, len - off, "%s%s %s unavailable (token lacks it%s)",
		    off ? "; " : "", what, l,
		    (r->flags & CC_ROLE_FALLBACK) ? " and CKM_RSA_X_509" : ", no fallback allowed");
	}
}

void
keys_ops_paths(struct keys_role *r, char *sign, size_t slen, char *dec, size_t dlen)
{
	size_t off = 0;
	char buf[KEYS_TEXT_MAX];
	uint32_t mechs = r->mechs;

	snprintf(sign, slen, "-");
	snprintf(dec, dlen, "-");
	if (!r->present)
		return;
	sign[0] = '\0';
	if (r->key_type == CC_KEY_EC) {
		if (r->mechs & (CC_MECH_SIGN_ECDSA | CC_MECH_SIGN_TBS))
			snprintf(sign, slen, "%s%s", (r->flags & CC_ROLE_TBS_ONLY) ?
			    "checked TBS only, " : "", r->tok_ecdsa ? "CKM_ECDSA (native)" :
			    "ECDSA unavailable (token lacks CKM_ECDSA)");
		else
			snprintf(sign, slen, "-");
		return;
	}
	if (r->flags & CC_ROLE_TBS_ONLY)
		off += (size_t)snprintf(sign + off, slen - off, "checked TBS only, ");
	/* SIGN_TBS alone allows every scheme that fits the key (keys_casign.c). */
	if ((r->mechs & CC_MECH_SIGN_TBS) && !(r->mechs & KEYS_SIGN_BITS))
		mechs |= CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_RSA_PSS;
	if (mechs & CC_MECH_SIGN_RSA_PKCS1) {
		enum keys_path p = pkcs1_sign_path(r);

		off += (size_t)snprintf(sign + off, slen - off, "%s", p == KP_NATIVE ?
		    "CKM_RSA_PKCS (native)" : p == KP_FALLBACK ?
		    "CKM_RSA_X_509 + PKCS#1 v1.5 in keys (fallback)" : "PKCS#1 v1.5 unavailable");
	}
	if ((mechs & CC_MECH_SIGN_RSA_PSS) && off < slen) {
		per_md_words(buf, sizeof(buf), "CKM_RSA_PKCS_PSS", "PSS", r, 0);
		off += (size_t)snprintf(sign + off, slen - off, "%s%s",
		    (mechs & CC_MECH_SIGN_RSA_PKCS1) ? "; " : "", buf);
	}
	if (off == 0)
		snprintf(sign, slen, "-");
	off = 0;
	dec[0] = '\0';
	if (r->mechs & CC_MECH_DECRYPT_RSA_PKCS1)
		off += (size_t)snprintf(dec + off, dlen - off, "%s", r->tok_pkcs1_dec ?
		    "CKM_RSA_PKCS (native)" : "PKCS#1 v1.5 unavailable (token lacks CKM_RSA_PKCS; "
		    "never done outside the token)");
	if ((r->mechs & CC_MECH_DECRYPT_RSA_OAEP) && off < dlen) {
		per_md_words(buf, sizeof(buf), "CKM_RSA_PKCS_OAEP", "OAEP", r, 1);
		off += (size_t)snprintf(dec + off, dlen - off, "%s%s", off ? "; " : "", buf);
	}
	if (off == 0)
		snprintf(dec, dlen, "-");
}

/* ---- replies ---- */

int
keys_ops_key_info(struct keys *k, const char *role, uint64_t reqid, struct cc_wbuf *w)
{
	struct keys_role *r = keys_role_find(k, role);
	struct cc_key_info ki;

	if (r == NULL)
		return reply_err(w, reqid, CC_KE_NOKEY, "no key role \"%s\" in keys", role);
	if (!r->present)
		return reply_err(w, reqid, CC_KE_NOKEY, "role %s has no usable key: %s", r->name,
		    r->state);
	memset(&ki, 0, sizeof(ki));
	ki.role = r->name;
	ki.key_type = r->key_type;
	ki.bits = r->bits;
	ki.mechs = r->mechs;
	ki.flags = r->flags;
	ki.spki = r->spki;
	ki.spki_len = r->spki_len;
	ki.cert = r->cert;
	ki.cert_len = r->cert_len;
	return cc_enc_key_info(w, reqid, &ki);
}

/* The reply to a failed module call; what to recover after it. */
static enum keys_recover
token_failure(struct keys *k, struct cc_wbuf *reply, uint64_t reqid, const char *op,
    CK_MECHANISM_TYPE mech, CK_RV rv)
{
	enum keys_recover rec = keys_token_classify(rv);

	switch (rec) {
	case KR_SESSION:
		cc_log_warn("token fault in %s (%s): %s; reopening the session", op,
		    p11_mech_str(mech), p11_rv_str(rv));
		reply_err(reply, reqid, CC_KE_TOKEN, "token fault: %s during %s; keys opened a new "
		    "session, retry the request", p11_rv_str(rv), op);
		break;
	case KR_RELOGIN:
		cc_log_warn("token fault in %s: %s; logging in again", op, p11_rv_str(rv));
		reply_err(reply, reqid, CC_KE_TOKEN, "token fault: %s during %s; keys logged in "
		    "again, retry the request", p11_rv_str(rv), op);
		break;
	case KR_REINIT:
		if (atomic_load(&k->tok.down)) {
			reply_err(reply, reqid, CC_KE_TOKEN, "token unavailable: %s",
			    k->tok.down_why);
			return KR_NONE;
		}
		cc_log_warn("token fault in %s (%s): %s; re-initialising the module", op,
		    p11_mech_str(mech), p11_rv_str(rv));
		reply_err(reply, reqid, CC_KE_TOKEN, "token fault: %s during %s; keys is "
		    "re-initialising the token, retry the request", p11_rv_str(rv), op);
		break;
	case KR_NONE:
		reply_err(reply, reqid, CC_KE_INTERNAL, "%s with %s failed: %s", op,
		    p11_mech_str(mech), p11_rv_str(rv));
		break;
	}
	return rec;
}

static int
params_refused(CK_RV rv)
{
	return rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD ||
	    rv == CKR_MECHANISM_INVALID;
}

/*
 * Parameters the token has not been seen to handle are probed once, with a real operation
 * checked here, before a request relies on them: a token may accept parameters and get them
 * wrong (SoftHSM 2.6.1 takes an OAEP label and ignores it).
 */
static CK_RV
ensure_pss(struct keys *k, struct keys_worker *w, struct keys_role *r, uint8_t md,
    uint8_t mgf1, uint64_t *gen_seen)
{
	int res;
	CK_RV rv;

	if (!r->tok_pss || atomic_load(&r->pss_native[md][mgf1]) != KN_UNKNOWN)
		return CKR_OK;
	rv = keys_token_probe_pss(k, w, r, md, mgf1, &res, gen_seen);
	if (res != KN_UNKNOWN) {
		atomic_store(&r->pss_native[md][mgf1], res);
		cc_log_info("role %s: CKM_RSA_PKCS_PSS with %s/MGF1-%s: %s", r->name,
		    cc_md_name(md), cc_md_name(mgf1), res == KN_YES ? "native" :
		    can_fallback_sign(r) ? "not in the token, fallback" : "not in the token");
	}
	return rv;
}

static CK_RV
ensure_oaep(struct keys *k, struct keys_worker *w, struct keys_role *r, uint8_t md,
    uint8_t mgf1, int label, uint64_t *gen_seen)
{
	int res;
	CK_RV rv;

	if (!r->tok_oaep || atomic_load(&r->oaep_native[md][mgf1][label]) != KN_UNKNOWN)
		return CKR_OK;
	rv = keys_token_probe_oaep(k, w, r, md, mgf1, label, &res, gen_seen);
	if (res != KN_UNKNOWN) {
		atomic_store(&r->oaep_native[md][mgf1][label], res);
		cc_log_info("role %s: CKM_RSA_PKCS_OAEP with %s/MGF1-%s%s: %s", r->name,
		    cc_md_name(md), cc_md_name(mgf1), label ? " and a label" : "",
		    res == KN_YES ? "native" : can_fallback_dec(r) ? "not in the token, fallback" :
		    "not in the token");
	}
	return rv;
}

struct sign_args {
	uint8_t alg, md, mgf1, pad;
	uint32_t saltlen;
	const uint8_t *dg;
	size_t dg_len;
	const char *op;   /* "sign" / "sign TBS" */
	uint64_t reqid;
};

static enum keys_recover
do_sign(struct keys *k, struct keys_worker *w, struct keys_role *r, const struct sign_args *a,
    struct cc_wbuf *reply, uint64_t *gen_seen)
{
	uint8_t out[1024], em[1024];
	uint8_t *di = NULL, *der = NULL;
	size_t di_len = 0, out_len = 0, der_len = 0;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	const uint8_t *in = a->dg;
	size_t in_len = a->dg_len;
	enum keys_path path = KP_NATIVE;
	enum keys_recover rec = KR_NONE;
	uint8_t mgf1 = a->mgf1 != CC_MD_NONE ? a->mgf1 : a->md;
	CK_RV rv;
	struct cc_sign_resp resp;

	if (r->raw_len > sizeof(out)) {
		reply_err(reply, a->reqid, CC_KE_INTERNAL, "key of role %s is too large", r->name);
		return KR_NONE;
	}
	switch (a->alg) {
	case CC_SIG_RSA_PKCS1:
		path = pkcs1_sign_path(r);
		if (path == KP_NONE)
			goto unavailable;
		if (keys_pad_digestinfo(a->md, a->dg, a->dg_len, &di, &di_len) == -1) {
			reply_err(reply, a->reqid, CC_KE_BADINPUT, "digest does not match %s",
			    cc_md_name(a->md));
			goto out;
		}
		if (path == KP_NATIVE) {
			in = di;
			in_len = di_len;
		} else {
			if (keys_pad_pkcs1_encode(di, di_len, em, r->raw_len) == -1) {
				reply_err(reply, a->reqid, CC_KE_BADINPUT, "digest too long for the key");
				goto out;
			}
			mech.mechanism = CKM_RSA_X_509;
			in = em;
			in_len = r->raw_len;
		}
		break;
	case CC_SIG_RSA_PSS:
		/* emLen >= hLen + sLen + 2, emLen = ceil((modBits - 1) / 8) (RFC 8017 9.1.1). */
		if ((size_t)a->saltlen + a->dg_len + 2 > (r->bits - 1 + 7) / 8) {
			reply_err(reply, a->reqid, CC_KE_BADINPUT, "PSS salt of %u bytes too long "
			    "for a %u-bit key and %s", a->saltlen, r->bits, cc_md_name(a->md));
			goto out;
		}
		rv = ensure_pss(k, w, r, a->md, mgf1, gen_seen);
		if (rv != CKR_OK) {
			rec = token_failure(k, reply, a->reqid, a->op, CKM_RSA_PKCS_PSS, rv);
			goto out;
		}
pss_again:
		path = keys_ops_pss_path(r, a->md, mgf1);
		if (path == KP_NONE)
			goto unavailable;
		if (path == KP_NATIVE) {
			pss.hashAlg = keys_md_mech(a->md);
			pss.mgf = keys_md_mgf(mgf1);
			pss.sLen = a->saltlen;
			mech.mechanism = CKM_RSA_PKCS_PSS;
			mech.pParameter = &pss;
			mech.ulParameterLen = sizeof(pss);
		} else {
			if (keys_pad_pss_encode(r->pub, a->md, mgf1, a->saltlen, a->dg, a->dg_len, em,
			    r->raw_len) == -1) {
				reply_err(reply, a->reqid, CC_KE_BADINPUT, "cannot PSS-encode for this key");
				goto out;
			}
			mech.mechanism = CKM_RSA_X_509;
			in = em;
			in_len = r->raw_len;
		}
		break;
	case CC_SIG_ECDSA:
		if (!r->tok_ecdsa) {
			path = KP_NONE;
			goto unavailable;
		}
		mech.mechanism = CKM_ECDSA;
		break;
	}
	rv = keys_token_call(k, w, r, 0, &mech, in, in_len, out, r->raw_len, &out_len, gen_seen);
	if (rv != CKR_OK && a->alg == CC_SIG_RSA_PSS && path == KP_NATIVE && params_refused(rv)) {
		/* The token has the mechanism but not these parameters: remember, and use the
		 * fallback when the role allows it. */
		atomic_store(&r->pss_native[a->md][mgf1], KN_NO);
		cc_log_warn("role %s: the token refuses CKM_RSA_PKCS_PSS with %s/MGF1-%s (%s); %s",
		    r->name, cc_md_name(a->md), cc_md_name(mgf1), p11_rv_str(rv),
		    can_fallback_sign(r) ? "using CKM_RSA_X_509 + PSS in keys from now on" :
		    "the role has no fallback");
		goto pss_again;
	}
	if (rv != CKR_OK) {
		rec = token_failure(k, reply, a->reqid, a->op, mech.mechanism, rv);
		keys_audit("%s role=%s mech=%s path=%s md=%s in=%zu reqid=%llu result=%s", a->op,
		    r->name, p11_mech_str(mech.mechanism), path_name(path), cc_md_name(a->md),
		    a->dg_len, (unsigned long long)a->reqid, p11_rv_str(rv));
		goto out;
	}
	if (a->alg == CC_SIG_RSA_PSS && path == KP_NATIVE)
		atomic_store(&r->pss_native[a->md][mgf1], KN_YES);
	if (a->alg == CC_SIG_ECDSA) {
		if (out_len != r->raw_len || keys_pad_ecdsa_der(out, out_len, &der, &der_len) == -1) {
			reply_err(reply, a->reqid, CC_KE_INTERNAL, "the token's ECDSA signature has "
			    "%zu bytes, expected %zu", out_len, r->raw_len);
			goto out;
		}
		resp.sig = der;
		resp.sig_len = der_len;
	} else {
		/* A raw RSA result may come without leading zero bytes: the signature is always
		 * exactly the modulus length. */
		if (out_len > r->raw_len || out_len == 0) {
			reply_err(reply, a->reqid, CC_KE_INTERNAL, "the token's signature has %zu "
			    "bytes for a %zu-byte modulus", out_len, r->raw_len);
			goto out;
		}
		if (out_len < r->raw_len) {
			memmove(out + (r->raw_len - out_len), out, out_len);
			memset(out, 0, r->raw_len - out_len);
		}
		resp.sig = out;
		resp.sig_len = r->raw_len;
	}
	keys_audit("%s role=%s mech=%s path=%s md=%s in=%zu out=%zu reqid=%llu result=ok", a->op,
	    r->name, p11_mech_str(mech.mechanism), path_name(path), cc_md_name(a->md), a->dg_len,
	    resp.sig_len, (unsigned long long)a->reqid);
	cc_enc_sign_resp(reply, a->reqid, &resp);
	goto out;
unavailable:
	reply_err(reply, a->reqid, CC_KE_DENIED, "the token cannot do %s with %s for role %s and "
	    "the role %s", a->alg == CC_SIG_ECDSA ? "ECDSA" : a->alg == CC_SIG_RSA_PSS ? "RSA-PSS" :
	    "RSA PKCS#1 v1.5", cc_md_name(a->md), r->name,
	    (r->flags & CC_ROLE_FALLBACK) ? "fallback needs CKM_RSA_X_509" :
	    "may not use the fallback");
	keys_audit("%s role=%s path=none md=%s reqid=%llu result=unavailable", a->op, r->name,
	    cc_md_name(a->md), (unsigned long long)a->reqid);
out:
	OPENSSL_cleanse(em, sizeof(em));
	free(di);
	free(der);
	return rec;
}

static uint32_t
sig_mech_bit(uint8_t alg)
{
	switch (alg) {
	case CC_SIG_RSA_PKCS1: return CC_MECH_SIGN_RSA_PKCS1;
	case CC_SIG_RSA_PSS: return CC_MECH_SIGN_RSA_PSS;
	case CC_SIG_ECDSA: return CC_MECH_SIGN_ECDSA;
	}
	return 0;
}

static const char *
sig_name(uint8_t alg)
{
	switch (alg) {
	case CC_SIG_RSA_PKCS1: return "RSA PKCS#1 v1.5";
	case CC_SIG_RSA_PSS: return "RSA-PSS";
	case CC_SIG_ECDSA: return "ECDSA";
	}
	return "?";
}

/* Common checks of a role for a private-key request; NULL after an error reply. */
static struct keys_role *
role_for(struct keys *k, const char *name, uint64_t reqid, struct cc_wbuf *reply)
{
	struct keys_role *r = keys_role_find(k, name);

	if (r == NULL) {
		reply_err(reply, reqid, CC_KE_NOKEY, "no key role \"%s\" in keys", name);
		return NULL;
	}
	if (!r->present) {
		reply_err(reply, reqid, CC_KE_NOKEY, "role %s has no usable key: %s", r->name,
		    r->state);
		return NULL;
	}
	return r;
}

static enum keys_recover
handle_sign(struct keys *k, struct keys_worker *w, const struct cc_sign_req *q, uint64_t reqid,
    struct cc_wbuf *reply, uint64_t *gen_seen)
{
	struct keys_role *r = role_for(k, q->role, reqid, reply);
	struct sign_args a;

	if (r == NULL)
		return KR_NONE;
	if (r->flags & CC_ROLE_TBS_ONLY) {
		reply_err(reply, reqid, CC_KE_DENIED, "role %s signs only certificates and CRLs it "
		    "has checked (SIGN_TBS_REQ), never a bare digest", r->name);
		keys_audit("sign role=%s reqid=%llu result=denied (TBS only)", r->name,
		    (unsigned long long)reqid);
		return KR_NONE;
	}
	if (!(r->mechs & sig_mech_bit(q->alg))) {
		reply_err(reply, reqid, CC_KE_DENIED, "role %s may not sign with %s", r->name,
		    sig_name(q->alg));
		keys_audit("sign role=%s alg=%s reqid=%llu result=denied", r->name,
		    sig_name(q->alg), (unsigned long long)reqid);
		return KR_NONE;
	}
	if ((q->alg == CC_SIG_ECDSA) != (r->key_type == CC_KEY_EC)) {
		reply_err(reply, reqid, CC_KE_BADINPUT, "role %s has an %s key; %s needs an %s key",
		    r->name, r->key_type == CC_KEY_EC ? "EC" : "RSA", sig_name(q->alg),
		    q->alg == CC_SIG_ECDSA ? "EC" : "RSA");
		return KR_NONE;
	}
	/* The decoder checked this too; the length is what the token will sign. */
	if (q->digest_len != cc_md_size(q->md) || q->digest_len == 0) {
		reply_err(reply, reqid, CC_KE_BADINPUT, "digest of %zu bytes is not %s",
		    q->digest_len, cc_md_name(q->md) ? cc_md_name(q->md) : "a known digest");
		return KR_NONE;
	}
	memset(&a, 0, sizeof(a));
	a.alg = q->alg;
	a.md = q->md;
	a.mgf1 = q->mgf1_md;
	a.saltlen = q->saltlen;
	a.dg = q->digest;
	a.dg_len = q->digest_len;
	a.op = "sign";
	a.reqid = reqid;
	return do_sign(k, w, r, &a, reply, gen_seen);
}

static enum keys_recover
handle_sign_tbs(struct keys *k, struct keys_worker *w, const struct cc_sign_tbs_req *q,
    uint64_t reqid, struct cc_wbuf *reply, uint64_t *gen_seen)
{
	struct keys_role *r = role_for(k, q->role, reqid, reply);
	struct keys_casign_policy pol;
	struct keys_casign_sig sig;
	struct sign_args a;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dg_len;
	char why[KEYS_TEXT_MAX];
	int code;
	const char *kind = q->kind == CC_TBS_CRL ? "CRL" : "certificate";

	if (r == NULL)
		return KR_NONE;
	if (!(r->mechs & CC_MECH_SIGN_TBS)) {
		reply_err(reply, reqid, CC_KE_DENIED, "role %s may not sign certificates or CRLs",
		    r->name);
		keys_audit("sign TBS role=%s reqid=%llu result=denied", r->name,
		    (unsigned long long)reqid);
		return KR_NONE;
	}
	if (q->tbs_len > k->conf.max_input) {
		reply_err(reply, reqid, CC_KE_BADINPUT, "to-be-signed %s of %zu bytes exceeds the "
		    "limit of %u", kind, q->tbs_len, k->conf.max_input);
		return KR_NONE;
	}
	if (r->cert_x509 == NULL) {
		reply_err(reply, reqid, CC_KE_REFUSED, "role %s has no CA certificate (configure "
		    "one or store it in the token with the key's CKA_ID)", r->name);
		return KR_NONE;
	}
	memset(&pol, 0, sizeof(pol));
	pol.ca = r->cert_x509;
	pol.ca_key = r->pub;
	pol.mechs = r->mechs;
	pol.flags = r->flags;
	pol.max_validity_days = r->max_validity_days;
	pol.key_usage = r->key_usage;
	pol.ekus = r->ekus;
	pol.max_crl_days = r->max_crl_days;
	code = keys_casign_check(&pol, q->kind, q->tbs, q->tbs_len, time(NULL), &sig, why,
	    sizeof(why));
	if (code != CC_KE_OK) {
		cc_log_warn("role %s refused to sign a %s: %s", r->name, kind, why);
		keys_audit("sign TBS role=%s kind=%s in=%zu reqid=%llu result=refused (%s)", r->name,
		    kind, q->tbs_len, (unsigned long long)reqid, why);
		reply_err(reply, reqid, (uint32_t)code, "%s", why);
		return KR_NONE;
	}
	if (!EVP_Digest(q->tbs, q->tbs_len, dg, &dg_len, keys_pad_md(sig.md), NULL)) {
		reply_err(reply, reqid, CC_KE_INTERNAL, "cannot hash the to-be-signed %s", kind);
		return KR_NONE;
	}
	memset(&a, 0, sizeof(a));
	a.alg = sig.alg;
	a.md = sig.md;
	a.mgf1 = sig.mgf1_md;
	a.saltlen = sig.saltlen;
	a.dg = dg;
	a.dg_len = dg_len;
	a.op = q->kind == CC_TBS_CRL ? "sign CRL" : "sign certificate";
	a.reqid = reqid;
	return do_sign(k, w, r, &a, reply, gen_seen);
}

static enum keys_recover
handle_decrypt(struct keys *k, struct keys_worker *w, const struct cc_decrypt_req *q,
    uint64_t reqid, struct cc_wbuf *reply, uint64_t *gen_seen)
{
	struct keys_role *r = role_for(k, q->role, reqid, reply);
	uint8_t out[1024];
	size_t out_len = 0;
	CK_RSA_PKCS_OAEP_PARAMS oaep;
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	enum keys_path path = KP_NATIVE;
	enum keys_recover rec = KR_NONE;
	uint8_t md = q->oaep_md, mgf1 = q->mgf1_md != CC_MD_NONE ? q->mgf1_md : q->oaep_md;
	uint32_t bit = q->pad == CC_DEC_RSA_OAEP ? CC_MECH_DECRYPT_RSA_OAEP :
	    CC_MECH_DECRYPT_RSA_PKCS1;
	const char *pname = q->pad == CC_DEC_RSA_OAEP ? "RSA-OAEP" : "RSA PKCS#1 v1.5";
	struct cc_decrypt_resp resp;
	CK_RV rv;

	if (r == NULL)
		return KR_NONE;
	if (!(r->mechs & bit)) {
		reply_err(reply, reqid, CC_KE_DENIED, "role %s may not decrypt with %s", r->name,
		    pname);
		keys_audit("decrypt role=%s pad=%s reqid=%llu result=denied", r->name, pname,
		    (unsigned long long)reqid);
		return KR_NONE;
	}
	if (r->key_type != CC_KEY_RSA) {
		reply_err(reply, reqid, CC_KE_BADINPUT, "role %s has an EC key: no decryption",
		    r->name);
		return KR_NONE;
	}
	if (q->in_len != r->raw_len || q->in_len > k->conf.max_input ||
	    r->raw_len > sizeof(out)) {
		reply_err(reply, reqid, CC_KE_BADINPUT, "ciphertext of %zu bytes for a %zu-byte "
		    "modulus", q->in_len, r->raw_len);
		return KR_NONE;
	}
	if (q->pad == CC_DEC_RSA_OAEP) {
		if (md == CC_MD_NONE) {
			reply_err(reply, reqid, CC_KE_BADINPUT, "RSA-OAEP needs a digest");
			return KR_NONE;
		}
		rv = ensure_oaep(k, w, r, md, mgf1, q->label_len > 0, gen_seen);
		if (rv != CKR_OK) {
			rec = token_failure(k, reply, reqid, "decrypt", CKM_RSA_PKCS_OAEP, rv);
			goto out;
		}
again:
		path = keys_ops_oaep_path(r, md, mgf1, q->label_len > 0);
		if (path == KP_NONE) {
			reply_err(reply, reqid, CC_KE_DENIED, "the token cannot do RSA-OAEP with %s%s "
			    "for role %s and the role %s", cc_md_name(md), q->label_len ?
			    " and a label" : "", r->name, (r->flags & CC_ROLE_FALLBACK) ?
			    "fallback needs CKM_RSA_X_509" : "may not use the fallback");
			keys_audit("decrypt role=%s pad=OAEP md=%s path=none reqid=%llu "
			    "result=unavailable", r->name, cc_md_name(md), (unsigned long long)reqid);
			return KR_NONE;
		}
		if (path == KP_NATIVE) {
			oaep.hashAlg = keys_md_mech(md);
			oaep.mgf = keys_md_mgf(mgf1);
			oaep.source = CKZ_DATA_SPECIFIED;
			oaep.pSourceData = q->label_len ? (void *)q->label : NULL;
			oaep.ulSourceDataLen = q->label_len;
			mech.mechanism = CKM_RSA_PKCS_OAEP;
			mech.pParameter = &oaep;
			mech.ulParameterLen = sizeof(oaep);
		} else {
			mech.mechanism = CKM_RSA_X_509;
			mech.pParameter = NULL;
			mech.ulParameterLen = 0;
		}
	} else if (!r->tok_pkcs1_dec) {
		reply_err(reply, reqid, CC_KE_DENIED, "the token has no CKM_RSA_PKCS decryption for "
		    "role %s (never done outside the token)", r->name);
		return KR_NONE;
	}
	/* A raw operation on an input not below the modulus (a ciphertext for another key, or
	 * corrupted) is refused by tokens with CKR_GENERAL_ERROR, which must not pass for a
	 * token failure (retried, the token reopened): it is a failed decryption. The modulus
	 * is public, so saying so here is no oracle. */
	if (mech.mechanism == CKM_RSA_X_509 &&
	    keys_pad_rsa_below_modulus(r->pub, q->in, q->in_len) != 1) {
		reply_err(reply, reqid, CC_KE_BADINPUT, "decryption failed");
		keys_audit("decrypt role=%s mech=CKM_RSA_X_509 path=%s reqid=%llu result=failed "
		    "(input not below the modulus)", r->name, path_name(path),
		    (unsigned long long)reqid);
		goto out;
	}
	rv = keys_token_call(k, w, r, 1, &mech, q->in, q->in_len, out, sizeof(out), &out_len,
	    gen_seen);
	if (rv != CKR_OK && mech.mechanism == CKM_RSA_PKCS_OAEP && params_refused(rv)) {
		atomic_store(&r->oaep_native[md][mgf1][q->label_len > 0], KN_NO);
		cc_log_warn("role %s: the token refuses CKM_RSA_PKCS_OAEP with %s/MGF1-%s%s (%s); %s",
		    r->name, cc_md_name(md), cc_md_name(mgf1), q->label_len ? " and a label" : "",
		    p11_rv_str(rv), can_fallback_dec(r) ?
		    "using CKM_RSA_X_509 + OAEP in keys from now on" : "the role has no fallback");
		goto again;
	}
	if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
	    rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE ||
	    (rv == CKR_GENERAL_ERROR && mech.mechanism != CKM_RSA_X_509)) {
		/* One answer for every padding failure: no oracle. */
		reply_err(reply, reqid, CC_KE_BADINPUT, "decryption failed");
		keys_audit("decrypt role=%s mech=%s path=%s reqid=%llu result=failed (%s)", r->name,
		    p11_mech_str(mech.mechanism), path_name(path), (unsigned long long)reqid,
		    p11_rv_str(rv));
		goto out;
	}
	if (rv != CKR_OK) {
		rec = token_failure(k, reply, reqid, "decrypt", mech.mechanism, rv);
		keys_audit("decrypt role=%s mech=%s path=%s reqid=%llu result=%s", r->name,
		    p11_mech_str(mech.mechanism), path_name(path), (unsigned long long)reqid,
		    p11_rv_str(rv));
		goto out;
	}
	if (mech.mechanism == CKM_RSA_PKCS_OAEP)
		atomic_store(&r->oaep_native[md][mgf1][q->label_len > 0], KN_YES);
	if (mech.mechanism == CKM_RSA_X_509) {
		uint8_t em[1024], msg[1024];
		size_t msg_len = sizeof(msg);
		int bad;

		if (out_len > r->raw_len) {
			reply_err(reply, reqid, CC_KE_INTERNAL, "raw RSA result too long");
			goto out;
		}
		memset(em, 0, r->raw_len - out_len);
		memcpy(em + (r->raw_len - out_len), out, out_len);
		bad = keys_pad_oaep_decode(r->pub, md, mgf1, q->label, q->label_len, em, r->raw_len,
		    msg, &msg_len);
		OPENSSL_cleanse(em, sizeof(em));
		OPENSSL_cleanse(out, sizeof(out));
		if (bad) {
			reply_err(reply, reqid, CC_KE_BADINPUT, "decryption failed");
			keys_audit("decrypt role=%s mech=CKM_RSA_X_509 path=fallback md=%s "
			    "reqid=%llu result=failed (OAEP decoding)", r->name, cc_md_name(md),
			    (unsigned long long)reqid);
			goto out;
		}
		memcpy(out, msg, msg_len);
		out_len = msg_len;
		OPENSSL_cleanse(msg, sizeof(msg));
	}
	resp.out = out;
	resp.out_len = out_len;
	cc_enc_decrypt_resp(reply, reqid, &resp);
	keys_audit("decrypt role=%s mech=%s path=%s md=%s label=%zu in=%zu out=%zu reqid=%llu "
	    "result=ok", r->name, p11_mech_str(mech.mechanism), path_name(path),
	    q->pad == CC_DEC_RSA_OAEP ? cc_md_name(md) : "-", q->label_len, q->in_len, out_len,
	    (unsigned long long)reqid);
out:
	OPENSSL_cleanse(out, sizeof(out));
	return rec;
}

/* A frame from net that is malformed or of a type net may not send: fatal. */
static void __attribute__((noreturn))
peer_fatal(const char *peer, uint16_t type, const char *why)
{
	cc_log_err("fatal: malformed message from %s: %s (type %u): %s; exiting", peer,
	    cc_msg_type_name(type), type, why);
	_exit(1);
}

enum keys_recover
keys_ops_handle(struct keys *k, struct keys_worker *w, const struct cc_msg *m,
    struct cc_wbuf *reply, uint64_t *gen_seen)
{
	const char *why = NULL;

	*gen_seen = atomic_load(&k->tok.gen);
	switch (m->type) {
	case CC_MSG_KEY_INFO_REQ: {
		struct cc_key_info_req q;

		if (cc_dec_key_info_req(m, &q, &why) == -1)
			peer_fatal("net", m->type, why);
		keys_ops_key_info(k, q.role, m->reqid, reply);
		return KR_NONE;
	}
	case CC_MSG_SIGN_REQ: {
		struct cc_sign_req q;

		if (cc_dec_sign_req(m, &q, &why) == -1)
			peer_fatal("net", m->type, why);
		return handle_sign(k, w, &q, m->reqid, reply, gen_seen);
	}
	case CC_MSG_SIGN_TBS_REQ: {
		struct cc_sign_tbs_req q;

		if (cc_dec_sign_tbs_req(m, &q, &why) == -1)
			peer_fatal("net", m->type, why);
		return handle_sign_tbs(k, w, &q, m->reqid, reply, gen_seen);
	}
	case CC_MSG_DECRYPT_REQ: {
		struct cc_decrypt_req q;

		if (cc_dec_decrypt_req(m, &q, &why) == -1)
			peer_fatal("net", m->type, why);
		return handle_decrypt(k, w, &q, m->reqid, reply, gen_seen);
	}
	}
	peer_fatal("net", m->type, "net may not send this message type to keys");
}
