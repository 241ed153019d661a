/*
 * keys: the token. Loading and initialising the module, finding every role's key, the
 * login, mechanism checks and start-up probes, per-worker sessions, and recovery from token
 * faults (a lost session is reopened; a removed or failing device makes keys finalise and
 * initialise the module again, find the objects again and log in again).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "certconn/log.h"
#include "keys_int.h"
#include "keys_pad.h"

static CK_MECHANISM_TYPE
md_mech(uint8_t md)
{
	switch (md) {
	case CC_MD_SHA1: return CKM_SHA_1;
	case CC_MD_SHA224: return CKM_SHA224;
	case CC_MD_SHA256: return CKM_SHA256;
	case CC_MD_SHA384: return CKM_SHA384;
	case CC_MD_SHA512: return CKM_SHA512;
	}
	return CK_UNAVAILABLE_INFORMATION;
}

static CK_RSA_PKCS_MGF_TYPE
md_mgf(uint8_t md)
{
	switch (md) {
	case CC_MD_SHA1: return CKG_MGF1_SHA1;
	case CC_MD_SHA224: return CKG_MGF1_SHA224;
	case CC_MD_SHA256: return CKG_MGF1_SHA256;
	case CC_MD_SHA384: return CKG_MGF1_SHA384;
	case CC_MD_SHA512: return CKG_MGF1_SHA512;
	}
	return 0;
}

CK_MECHANISM_TYPE keys_md_mech(uint8_t md) { return md_mech(md); }
CK_RSA_PKCS_MGF_TYPE keys_md_mgf(uint8_t md) { return md_mgf(md); }

enum keys_recover
keys_token_classify(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_OPERATION_ACTIVE:
		return KR_SESSION;
	case CKR_USER_NOT_LOGGED_IN:
		return KR_RELOGIN;
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_ERROR:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_SLOT_ID_INVALID:
		return KR_REINIT;
	}
	return KR_NONE;
}

/* ---- finding the token and the keys ---- */

static int
pin_store(struct keys_token *t, const uint8_t *pin, size_t len)
{
	t->pin_map_len = 4096;
	if (len > t->pin_map_len)
		return -1;
	t->pin = mmap(NULL, t->pin_map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (t->pin == MAP_FAILED) {
		t->pin = NULL;
		return -1;
	}
	/* Kept for logging in again after a device fault: never swapped, never in a core. */
	if (mlock(t->pin, t->pin_map_len) == -1)
		cc_log_warn("cannot mlock the PIN: %s (it stays in memory unlocked)",
		    strerror(errno));
	(void)madvise(t->pin, t->pin_map_len, MADV_DONTDUMP);
	memcpy(t->pin, pin, len);
	t->pin_len = len;
	return 0;
}

static void
pin_wipe(struct keys_token *t)
{
	if (t->pin == NULL)
		return;
	explicit_bzero(t->pin, t->pin_map_len);
	(void)munlock(t->pin, t->pin_map_len);
	(void)munmap(t->pin, t->pin_map_len);
	t->pin = NULL;
	t->pin_len = 0;
}

int
keys_pin_set(struct keys *k, const uint8_t *pin, size_t len)
{
	return pin_store(&k->tok, pin, len);
}

void
keys_pin_wipe(struct keys *k)
{
	pin_wipe(&k->tok);
}

static void
free_key(struct keys_role *r)
{
	EVP_PKEY_free(r->pub);
	r->pub = NULL;
	OPENSSL_free(r->spki);
	r->spki = NULL;
	r->spki_len = 0;
	X509_free(r->cert_x509);
	r->cert_x509 = NULL;
	if (r->cert != r->conf_cert)
		free(r->cert);
	r->cert = NULL;
	r->cert_len = 0;
}

/* Finds a role's private key, public key and certificate in the anchor session. -1 with
 * r->state saying why. */
static int
find_key(struct keys *k, struct keys_role *r)
{
	struct keys_token *t = &k->tok;
	const struct p11_uri *u = &r->puri;
	CK_OBJECT_HANDLE o[2], po;
	uint8_t *id = NULL, *der = NULL;
	size_t id_len = 0, n = 0, der_len;
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	EVP_PKEY *pub = NULL;
	char err[256];
	CK_RV rv;
	int ret = -1;

	free_key(r);
	r->present = 0;
	rv = p11_find_objects(&t->mod, t->anchor, CKO_PRIVATE_KEY, u->has_object ? u->object : NULL,
	    u->id, u->id_len, o, 2, &n);
	if (rv != CKR_OK) {
		snprintf(r->state, sizeof(r->state), "searching the token failed: %s",
		    p11_rv_str(rv));
		goto out;
	}
	if (n != 1) {
		snprintf(r->state, sizeof(r->state), n == 0 ?
		    "no private key in token \"%s\" matches %s" :
		    "several private keys in token \"%s\" match %s (add id= to the URI)",
		    t->label, r->uri);
		goto out;
	}
	r->priv = o[0];
	rv = t->mod.f->C_GetAttributeValue(t->anchor, r->priv, &a, 1);
	if (rv != CKR_OK || (kt != CKK_RSA && kt != CKK_EC)) {
		snprintf(r->state, sizeof(r->state), rv != CKR_OK ?
		    "cannot read the key type" : "the key is neither RSA nor EC");
		goto out;
	}
	(void)p11_get_attr(&t->mod, t->anchor, r->priv, CKA_ID, &id, &id_len);
	/* The public key: its object (same CKA_ID), else an RSA private key's own modulus,
	 * else the certificate's key. */
	n = 0;
	if (id_len > 0)
		(void)p11_find_objects(&t->mod, t->anchor, CKO_PUBLIC_KEY, NULL, id, id_len, &po, 1,
		    &n);
	if (n == 1)
		(void)p11_read_pubkey(&t->mod, t->anchor, po, &pub, err, sizeof(err));
	if (pub == NULL && kt == CKK_RSA)
		(void)p11_read_pubkey(&t->mod, t->anchor, r->priv, &pub, err, sizeof(err));
	/* The certificate: from the configuration, else the token's with the same CKA_ID. */
	if (r->conf_cert_len > 0) {
		r->cert = r->conf_cert;
		r->cert_len = r->conf_cert_len;
	} else if (id_len > 0) {
		n = 0;
		(void)p11_find_objects(&t->mod, t->anchor, CKO_CERTIFICATE, NULL, id, id_len, &po, 1,
		    &n);
		if (n == 1 && p11_get_attr(&t->mod, t->anchor, po, CKA_VALUE, &der, &der_len) ==
		    CKR_OK) {
			r->cert = der;
			r->cert_len = der_len;
			der = NULL;
		}
	}
	if (r->cert_len > 0) {
		const unsigned char *p = r->cert;

		r->cert_x509 = d2i_X509(NULL, &p, (long)r->cert_len);
		if (r->cert_x509 == NULL || p != r->cert + r->cert_len) {
			snprintf(r->state, sizeof(r->state), "the role's certificate is not DER X.509");
			goto out;
		}
		if (pub == NULL)
			pub = X509_get_pubkey(r->cert_x509);
		else if (EVP_PKEY_eq(pub, X509_get0_pubkey(r->cert_x509)) != 1) {
			snprintf(r->state, sizeof(r->state),
			    "the role's certificate is not for the key %s", r->uri);
			goto out;
		}
	}
	if (pub == NULL) {
		snprintf(r->state, sizeof(r->state), "no public key for %s (no public-key object, "
		    "no certificate)", r->uri);
		goto out;
	}
	r->pub = pub;
	pub = NULL;
	r->key_type = kt == CKK_RSA ? CC_KEY_RSA : CC_KEY_EC;
	r->bits = (uint32_t)EVP_PKEY_get_bits(r->pub);
	if (r->key_type == CC_KEY_RSA)
		r->raw_len = (size_t)EVP_PKEY_get_size(r->pub);
	else
		r->raw_len = 2 * (((size_t)r->bits + 7) / 8);
	{
		unsigned char *p = NULL;
		int len = i2d_PUBKEY(r->pub, &p);

		if (len <= 0) {
			snprintf(r->state, sizeof(r->state), "cannot encode the public key");
			goto out;
		}
		r->spki = p;
		r->spki_len = (size_t)len;
	}
	r->present = 1;
	snprintf(r->state, sizeof(r->state), "ok");
	ret = 0;
out:
	EVP_PKEY_free(pub);
	free(der);
	free(id);
	return ret;
}

/* Opens the anchor session and logs in. -1 with why. */
static int
open_anchor(struct keys *k, char *why, size_t whylen)
{
	struct keys_token *t = &k->tok;
	CK_TOKEN_INFO ti;
	struct p11_uri u;
	char err[512];
	CK_RV rv;

	/* Every role must be on the same token (one PIN, one login): the first role's URI
	 * names it; keys_main checked that the others agree. */
	u = k->roles[0].puri;
	rv = p11_find_token(&t->mod, &u, &t->slot, &ti, err, sizeof(err));
	if (rv != CKR_OK) {
		snprintf(why, whylen, "%s", err);
		return -1;
	}
	p11_field_str(ti.label, sizeof(ti.label), t->label);
	rv = t->mod.f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &t->anchor);
	if (rv != CKR_OK) {
		snprintf(why, whylen, "C_OpenSession on token \"%s\": %s", t->label, p11_rv_str(rv));
		return -1;
	}
	t->have_anchor = 1;
	rv = p11_login(&t->mod, t->anchor, t->pin, t->pin_len);
	if (rv != CKR_OK) {
		snprintf(why, whylen, "login to token \"%s\" failed: %s%s", t->label, p11_rv_str(rv),
		    rv == CKR_PIN_INCORRECT ? " (wrong PIN)" : "");
		return -1;
	}
	return 0;
}

int
keys_token_start(struct keys *k)
{
	struct keys_token *t = &k->tok;
	pthread_rwlockattr_t ra;
	char err[512];
	CK_RV rv;
	int fatal = 0;

	pthread_rwlockattr_init(&ra);
	/* Writer preference: a re-initialisation must not starve behind a stream of requests. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&t->rw, &ra);
	pthread_rwlockattr_destroy(&ra);
	snprintf(t->module, sizeof(t->module), "%s", k->conf.module);
	rv = p11_mod_load(&t->mod, t->module, err, sizeof(err));
	if (rv != CKR_OK) {
		cc_log_err("%s", err);
		return -1;
	}
	rv = p11_mod_init(&t->mod);
	if (rv != CKR_OK) {
		cc_log_err("C_Initialize of %s failed: %s", t->module, p11_rv_str(rv));
		return -1;
	}
	if (open_anchor(k, err, sizeof(err)) == -1) {
		cc_log_err("%s", err);
		return -1;
	}
	for (size_t i = 0; i < k->nroles; i++) {
		struct keys_role *r = &k->roles[i];

		if (find_key(k, r) == 0) {
			cc_log_info("role %s: %s %u-bit key %s", r->name,
			    r->key_type == CC_KEY_RSA ? "RSA" : "EC", r->bits, r->uri);
			continue;
		}
		if (r->flags & CC_ROLE_OPTIONAL) {
			cc_log_warn("role %s (optional) has no usable key: %s", r->name, r->state);
		} else {
			cc_log_err("role %s has no usable key: %s", r->name, r->state);
			fatal = 1;
		}
	}
	return fatal ? -1 : 0;
}

/* C_GetMechanismInfo: the token has mech for this key size with flag. */
static int
has_mech(struct keys *k, CK_MECHANISM_TYPE mech, CK_FLAGS flag, uint32_t bits)
{
	CK_MECHANISM_INFO mi;

	if (k->tok.mod.f->C_GetMechanismInfo(k->tok.slot, mech, &mi) != CKR_OK)
		return 0;
	if (!(mi.flags & flag))
		return 0;
	/* Key sizes are bits for RSA and EC alike in PKCS#11 2.40; 0 means unstated. */
	if (mi.ulMaxKeySize != 0 && (bits < mi.ulMinKeySize || bits > mi.ulMaxKeySize))
		return 0;
	return 1;
}

/* Token answers that mean "not with these parameters" (SoftHSM 2.6.1 accepts an OAEP label
 * and ignores it, so a wrong result or a general error counts too). */
static int
probe_refused(CK_RV rv)
{
	return rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD ||
	    rv == CKR_MECHANISM_INVALID || rv == CKR_GENERAL_ERROR ||
	    rv == CKR_FUNCTION_FAILED || rv == CKR_ENCRYPTED_DATA_INVALID ||
	    rv == CKR_DATA_INVALID || rv == CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
keys_token_probe_oaep(struct keys *k, struct keys_worker *w, struct keys_role *r, uint8_t md,
    uint8_t mgf1, int label, int *result, uint64_t *gen_seen)
{
	static const char probe_label[] = "certconn keys probe";
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char msg[16], ct[1024], pt[1024];
	size_t ct_len = sizeof(ct), pt_len = 0;
	CK_RSA_PKCS_OAEP_PARAMS prm = { md_mech(md), md_mgf(mgf1), CKZ_DATA_SPECIFIED,
		label ? (void *)probe_label : NULL, label ? sizeof(probe_label) - 1 : 0 };
	CK_MECHANISM mech = { CKM_RSA_PKCS_OAEP, &prm, sizeof(prm) };
	CK_RV rv = CKR_OK;

	*result = KN_UNKNOWN;
	*gen_seen = atomic_load(&k->tok.gen);
	if (RAND_bytes(msg, sizeof(msg)) != 1)
		return CKR_OK;
	ctx = EVP_PKEY_CTX_new(r->pub, NULL);
	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, keys_pad_md(md)) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, keys_pad_md(mgf1)) <= 0)
		goto out;
	if (label) {
		void *l = OPENSSL_memdup(probe_label, sizeof(probe_label) - 1);

		if (l == NULL ||
		    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, (int)sizeof(probe_label) - 1) <= 0) {
			OPENSSL_free(l);
			goto out;
		}
	}
	if (EVP_PKEY_encrypt(ctx, ct, &ct_len, msg, sizeof(msg)) <= 0)
		goto out;
	rv = keys_token_call(k, w, r, 1, &mech, ct, ct_len, pt, sizeof(pt), &pt_len, gen_seen);
	if (rv == CKR_OK && pt_len == sizeof(msg) && memcmp(pt, msg, sizeof(msg)) == 0)
		*result = KN_YES;
	else if (rv == CKR_OK || probe_refused(rv))
		*result = KN_NO;
	if (*result != KN_UNKNOWN)
		rv = CKR_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_cleanse(pt, sizeof(pt));
	return rv;
}

/* One native signature (PSS with the given digests, else the role's plain mechanism),
 * checked with the public key. */
static CK_RV
probe_sign(struct keys *k, struct keys_worker *w, struct keys_role *r, uint8_t md,
    uint8_t mgf1, int pss, int *result, uint64_t *gen_seen)
{
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char dg[64], sig[1024];
	uint8_t *in = NULL, *der = NULL;
	size_t in_len, der_len, dlen = cc_md_size(md), sig_len = 0;
	CK_RSA_PKCS_PSS_PARAMS prm = { md_mech(md), md_mgf(mgf1), dlen };
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_RV rv = CKR_OK;

	*result = KN_UNKNOWN;
	*gen_seen = atomic_load(&k->tok.gen);
	if (RAND_bytes(dg, (int)dlen) != 1)
		return CKR_OK;
	if (pss) {
		mech.mechanism = CKM_RSA_PKCS_PSS;
		mech.pParameter = &prm;
		mech.ulParameterLen = sizeof(prm);
		in = dg;
		in_len = dlen;
	} else if (r->key_type == CC_KEY_RSA) {
		mech.mechanism = CKM_RSA_PKCS;
		if (keys_pad_digestinfo(md, dg, dlen, &in, &in_len) == -1)
			return CKR_OK;
	} else {
		in = dg;
		in_len = dlen;
	}
	rv = keys_token_call(k, w, r, 0, &mech, in, in_len, sig, r->raw_len, &sig_len, gen_seen);
	if (rv != CKR_OK) {
		if (probe_refused(rv)) {
			*result = KN_NO;
			rv = CKR_OK;
		}
		goto out;
	}
	rv = CKR_OK;
	ctx = EVP_PKEY_CTX_new(r->pub, NULL);
	if (ctx == NULL || EVP_PKEY_verify_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, keys_pad_md(md)) <= 0)
		goto out;
	if (r->key_type == CC_KEY_RSA &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) <=
	    0 || (pss && (EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)dlen) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, keys_pad_md(mgf1)) <= 0))))
		goto out;
	if (r->key_type == CC_KEY_EC) {
		if (keys_pad_ecdsa_der(sig, sig_len, &der, &der_len) == 0 &&
		    EVP_PKEY_verify(ctx, der, der_len, dg, dlen) == 1)
			*result = KN_YES;
	} else if (EVP_PKEY_verify(ctx, sig, sig_len, dg, dlen) == 1) {
		*result = KN_YES;
	}
	if (*result != KN_YES)
		*result = KN_NO;
out:
	EVP_PKEY_CTX_free(ctx);
	if (in != dg)
		free(in);
	free(der);
	return rv;
}

CK_RV
keys_token_probe_pss(struct keys *k, struct keys_worker *w, struct keys_role *r, uint8_t md,
    uint8_t mgf1, int *result, uint64_t *gen_seen)
{
	return probe_sign(k, w, r, md, mgf1, 1, result, gen_seen);
}

void
keys_token_probe(struct keys *k)
{
	struct keys_worker pw;
	uint64_t gen;
	int res;

	/* The probes run in a session of their own, as a worker's requests do. */
	memset(&pw, 0, sizeof(pw));
	pw.idx = -1;
	for (size_t i = 0; i < k->nroles; i++) {
		struct keys_role *r = &k->roles[i];
		int sign_mechs = (r->mechs & (CC_MECH_SIGN_RSA_PKCS1 | CC_MECH_SIGN_RSA_PSS |
		    CC_MECH_SIGN_ECDSA | CC_MECH_SIGN_TBS)) != 0;

		if (!r->present)
			continue;
		if (r->key_type == CC_KEY_RSA) {
			r->tok_pkcs1_sign = has_mech(k, CKM_RSA_PKCS, CKF_SIGN, r->bits);
			r->tok_pkcs1_dec = has_mech(k, CKM_RSA_PKCS, CKF_DECRYPT, r->bits);
			r->tok_pss = has_mech(k, CKM_RSA_PKCS_PSS, CKF_SIGN, r->bits);
			r->tok_oaep = has_mech(k, CKM_RSA_PKCS_OAEP, CKF_DECRYPT, r->bits);
			r->tok_x509_sign = has_mech(k, CKM_RSA_X_509, CKF_SIGN, r->bits);
			r->tok_x509_dec = has_mech(k, CKM_RSA_X_509, CKF_DECRYPT, r->bits);
		} else {
			r->tok_ecdsa = has_mech(k, CKM_ECDSA, CKF_SIGN, r->bits);
		}
		/* A signature made and checked at start proves that the private key found belongs
		 * to the public key net will be given. */
		if (sign_mechs && ((r->key_type == CC_KEY_RSA && r->tok_pkcs1_sign) ||
		    (r->key_type == CC_KEY_EC && r->tok_ecdsa))) {
			CK_RV rv = probe_sign(k, &pw, r, CC_MD_SHA256, CC_MD_SHA256, 0, &res, &gen);

			if (rv != CKR_OK || res != KN_YES) {
				snprintf(r->state, sizeof(r->state), "a test signature with %s %s",
				    r->uri, rv != CKR_OK ? p11_rv_str(rv) :
				    "does not verify with its public key: the token's objects do not "
				    "match");
				r->present = 0;
				cc_log_err("role %s: %s", r->name, r->state);
				continue;
			}
		}
		if (r->key_type != CC_KEY_RSA)
			continue;
		for (uint8_t md = CC_MD_SHA1; md <= CC_MD_MAX; md++) {
			if ((r->mechs & CC_MECH_SIGN_RSA_PSS) && r->tok_pss) {
				(void)keys_token_probe_pss(k, &pw, r, md, md, &res, &gen);
				atomic_store(&r->pss_native[md][md], res);
			}
			if ((r->mechs & CC_MECH_DECRYPT_RSA_OAEP) && r->tok_oaep) {
				(void)keys_token_probe_oaep(k, &pw, r, md, md, 0, &res, &gen);
				atomic_store(&r->oaep_native[md][md][0], res);
				(void)keys_token_probe_oaep(k, &pw, r, md, md, 1, &res, &gen);
				atomic_store(&r->oaep_native[md][md][1], res);
			}
		}
		{
			char sg[KEYS_TEXT_MAX], dc[KEYS_TEXT_MAX];

			keys_ops_paths(r, sg, sizeof(sg), dc, sizeof(dc));
			cc_log_info("role %s: sign %s; decrypt %s", r->name, sg, dc);
		}
	}
	if (pw.have_s)
		(void)k->tok.mod.f->C_CloseSession(pw.s);
}

void
keys_token_stop(struct keys *k)
{
	struct keys_token *t = &k->tok;

	for (int i = 0; i < k->nworkers; i++)
		if (k->workers[i].have_s && k->workers[i].s_gen == atomic_load(&t->gen))
			(void)t->mod.f->C_CloseSession(k->workers[i].s);
	if (t->have_anchor && t->mod.f != NULL) {
		(void)t->mod.f->C_Logout(t->anchor);
		(void)t->mod.f->C_CloseSession(t->anchor);
		t->have_anchor = 0;
	}
	p11_mod_unload(&t->mod);
	for (size_t i = 0; i < k->nroles; i++)
		free_key(&k->roles[i]);
	pin_wipe(t);
}

/* ---- sessions and recovery ---- */

static CK_RV
open_session(struct keys *k, struct keys_worker *w)
{
	struct keys_token *t = &k->tok;
	CK_SESSION_INFO si;
	CK_RV rv;

	rv = t->mod.f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &w->s);
	if (rv != CKR_OK)
		return rv;
	w->have_s = 1;
	w->s_gen = atomic_load(&t->gen);
	/* The login belongs to the token, not the session; it goes when the last session
	 * closes, so check and log in again if needed. */
	if (t->mod.f->C_GetSessionInfo(w->s, &si) == CKR_OK && si.state != CKS_RO_USER_FUNCTIONS &&
	    si.state != CKS_RW_USER_FUNCTIONS) {
		rv = p11_login(&t->mod, w->s, t->pin, t->pin_len);
		if (rv != CKR_OK)
			cc_log_err("channel %d: login again failed: %s", w->idx, p11_rv_str(rv));
		else
			cc_log_info("channel %d: logged in again", w->idx);
	}
	return CKR_OK;
}

/* Re-initialises the module (under the write lock) unless another thread did since
 * gen_seen. The worker's watchdog slot stays busy, so a hang here ends keys too. */
static void
reinit(struct keys *k, struct keys_worker *w, uint64_t gen_seen)
{
	struct keys_token *t = &k->tok;
	char why[KEYS_TEXT_MAX];
	CK_RV rv;
	int ok = 1;

	pthread_rwlock_wrlock(&t->rw);
	if (atomic_load(&t->gen) != gen_seen) {
		pthread_rwlock_unlock(&t->rw);
		return;
	}
	t->last_reinit_ms = cc_now_ms();
	cc_log_warn("token fault: re-initialising the PKCS#11 module %s (C_Finalize, "
	    "C_Initialize, find the token and keys, log in)", t->module);
	/* Every session, the anchor's included, dies with C_Finalize. */
	p11_mod_fini(&t->mod);
	t->have_anchor = 0;
	for (int i = 0; i < k->nworkers; i++)
		k->workers[i].have_s = 0;
	rv = p11_mod_init(&t->mod);
	if (rv != CKR_OK) {
		snprintf(why, sizeof(why), "C_Initialize: %s", p11_rv_str(rv));
		ok = 0;
	} else if (open_anchor(k, why, sizeof(why)) == -1) {
		ok = 0;
	}
	for (size_t i = 0; ok && i < k->nroles; i++) {
		struct keys_role *r = &k->roles[i];
		uint8_t *old = NULL;
		size_t old_len = r->spki_len;

		if (r->spki_len > 0 && (old = malloc(r->spki_len)) != NULL)
			memcpy(old, r->spki, r->spki_len);
		if (find_key(k, r) == -1) {
			cc_log_err("after re-initialisation, role %s: %s", r->name, r->state);
		} else if (old != NULL && (old_len != r->spki_len ||
		    memcmp(old, r->spki, old_len) != 0)) {
			/* Same URI, other key: net holds the old public key; refuse to use it. */
			snprintf(r->state, sizeof(r->state), "the key at %s changed during "
			    "re-initialisation; restart keys to use it", r->uri);
			r->present = 0;
			cc_log_err("role %s: %s", r->name, r->state);
		}
		free(old);
	}
	atomic_fetch_add(&t->gen, 1);
	if (ok) {
		atomic_store(&t->down, 0);
		cc_log_warn("token \"%s\" re-initialised and logged in; serving again", t->label);
	} else {
		snprintf(t->down_why, sizeof(t->down_why), "%s", why);
		atomic_store(&t->down, 1);
		cc_log_err("token re-initialisation failed: %s (retrying on the next request)",
		    why);
	}
	pthread_rwlock_unlock(&t->rw);
	(void)w;
}

void
keys_token_recover(struct keys *k, struct keys_worker *w, enum keys_recover what,
    uint64_t gen_seen)
{
	struct keys_token *t = &k->tok;
	CK_RV rv;

	switch (what) {
	case KR_NONE:
		return;
	case KR_SESSION:
	case KR_RELOGIN:
		pthread_rwlock_rdlock(&t->rw);
		if (w->have_s && w->s_gen == atomic_load(&t->gen))
			(void)t->mod.f->C_CloseSession(w->s);
		w->have_s = 0;
		rv = open_session(k, w);
		if (rv == CKR_OK)
			cc_log_info("channel %d: opened a new PKCS#11 session", w->idx);
		else
			cc_log_err("channel %d: cannot open a new session: %s", w->idx,
			    p11_rv_str(rv));
		pthread_rwlock_unlock(&t->rw);
		if (rv != CKR_OK && keys_token_classify(rv) == KR_REINIT)
			reinit(k, w, gen_seen);
		return;
	case KR_REINIT:
		reinit(k, w, gen_seen);
		return;
	}
}

CK_RV
keys_token_call(struct keys *k, struct keys_worker *w, struct keys_role *r, int decrypt,
    CK_MECHANISM *mech, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
    size_t *out_len, uint64_t *gen_seen)
{
	struct keys_token *t = &k->tok;
	CK_ULONG olen = out_cap;
	CK_RV rv;
	int tries = 0;

	*out_len = 0;
	/* After a failed re-initialisation, try again, at most once a second. */
	if (atomic_load(&t->down)) {
		uint64_t g = atomic_load(&t->gen);

		if (cc_now_ms() - t->last_reinit_ms >= 1000)
			reinit(k, w, g);
		if (atomic_load(&t->down)) {
			*gen_seen = atomic_load(&t->gen);
			return CKR_TOKEN_NOT_PRESENT;
		}
	}
	pthread_rwlock_rdlock(&t->rw);
	*gen_seen = atomic_load(&t->gen);
	if (!r->present) {
		rv = CKR_KEY_HANDLE_INVALID;
		goto out;
	}
again:
	if (!w->have_s || w->s_gen != *gen_seen) {
		rv = open_session(k, w);
		if (rv != CKR_OK)
			goto out;
	}
	rv = decrypt ? t->mod.f->C_DecryptInit(w->s, mech, r->priv) :
	    t->mod.f->C_SignInit(w->s, mech, r->priv);
	if (rv == CKR_OPERATION_ACTIVE && tries++ == 0) {
		/* A call that failed half-way (or a late one the watchdog gave up on) left an
		 * operation in this session: a fresh session clears it. */
		(void)t->mod.f->C_CloseSession(w->s);
		w->have_s = 0;
		goto again;
	}
	if (rv != CKR_OK)
		goto out;
	olen = out_cap;
	rv = decrypt ? t->mod.f->C_Decrypt(w->s, (CK_BYTE *)in, in_len, out, &olen) :
	    t->mod.f->C_Sign(w->s, (CK_BYTE *)in, in_len, out, &olen);
	if (rv == CKR_OK)
		*out_len = olen;
out:
	pthread_rwlock_unlock(&t->rw);
	return rv;
}
