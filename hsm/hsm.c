/* In-process PKCS#11 API for tools and tests: see hsm.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/log.h"
#include "certconn/proto.h"
#include "hsm.h"
#include "keys_pad.h"
#include "p11.h"
#include "p11_uri.h"
#include "x509_tbs.h"

struct hsm {
	struct p11_mod mod;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	int have_session;
	int logged_in;
	char label[33];
};

/* Applies "NAME=value" to the environment (the module reads it at C_Initialize). */
static int
apply_env(const char *env)
{
	const char *eq;
	char name[128];

	if (env == NULL || env[0] == '\0')
		return 0;
	eq = strchr(env, '=');
	if (eq == NULL || eq == env || (size_t)(eq - env) >= sizeof(name)) {
		cc_log_err("module environment \"%s\" is not NAME=value", env);
		return -1;
	}
	memcpy(name, env, (size_t)(eq - env));
	name[eq - env] = '\0';
	if (setenv(name, eq + 1, 1) == -1) {
		cc_log_err("setenv %s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static int
load(struct p11_mod *m, const char *module, const char *module_env)
{
	char err[512];
	CK_RV rv;

	if (apply_env(module_env) == -1)
		return -1;
	rv = p11_mod_load(m, module, err, sizeof(err));
	if (rv != CKR_OK) {
		cc_log_err("%s", err);
		return -1;
	}
	rv = p11_mod_init(m);
	if (rv != CKR_OK) {
		cc_log_err("C_Initialize of %s failed: %s", module, p11_rv_str(rv));
		p11_mod_unload(m);
		return -1;
	}
	return 0;
}

/* Parses a pkcs11: URI, or takes a bare string as a token label. */
static int
token_uri(const char *s, struct p11_uri *u)
{
	const char *why;

	if (strncmp(s, "pkcs11:", 7) != 0) {
		memset(u, 0, sizeof(*u));
		if (strlen(s) >= sizeof(u->token)) {
			cc_log_err("token label \"%s\" is longer than 32 bytes", s);
			return -1;
		}
		strcpy(u->token, s);
		u->has_token = 1;
		return 0;
	}
	if (p11_uri_parse(s, u, &why) == -1) {
		cc_log_err("bad PKCS#11 URI \"%s\": %s", s, why);
		return -1;
	}
	return 0;
}

struct hsm *
hsm_open(const char *module, const char *module_env, const char *token, const char *user_pin)
{
	struct hsm *h;
	struct p11_uri u;
	CK_TOKEN_INFO ti;
	char err[512];
	CK_RV rv;

	if (token_uri(token, &u) == -1)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	if (load(&h->mod, module, module_env) == -1) {
		free(h);
		return NULL;
	}
	rv = p11_find_token(&h->mod, &u, &h->slot, &ti, err, sizeof(err));
	if (rv != CKR_OK) {
		cc_log_err("%s: %s", module, err);
		goto fail;
	}
	p11_field_str(ti.label, sizeof(ti.label), h->label);
	rv = h->mod.f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &h->s);
	if (rv != CKR_OK) {
		cc_log_err("C_OpenSession on token \"%s\": %s", h->label, p11_rv_str(rv));
		goto fail;
	}
	h->have_session = 1;
	if (user_pin != NULL) {
		rv = p11_login(&h->mod, h->s, (const uint8_t *)user_pin, strlen(user_pin));
		if (rv != CKR_OK) {
			cc_log_err("login to token \"%s\" failed: %s", h->label, p11_rv_str(rv));
			goto fail;
		}
		h->logged_in = 1;
	}
	return h;
fail:
	hsm_close(h);
	return NULL;
}

void
hsm_close(struct hsm *h)
{
	if (h == NULL)
		return;
	if (h->logged_in)
		(void)h->mod.f->C_Logout(h->s);
	if (h->have_session)
		(void)h->mod.f->C_CloseSession(h->s);
	p11_mod_unload(&h->mod);
	free(h);
}

/* Finds the one private key that a key URI names. */
static int
find_private(struct hsm *h, const char *uri, CK_OBJECT_HANDLE *o)
{
	struct p11_uri u;
	const char *why;
	size_t n;
	CK_RV rv;

	if (p11_uri_parse(uri, &u, &why) == -1) {
		cc_log_err("bad key URI \"%s\": %s", uri, why);
		return -1;
	}
	if (!u.has_object && !u.has_id) {
		cc_log_err("key URI \"%s\" names no object (object= or id=)", uri);
		return -1;
	}
	rv = p11_find_objects(&h->mod, h->s, CKO_PRIVATE_KEY, u.has_object ? u.object : NULL,
	    u.id, u.id_len, o, 1, &n);
	if (rv != CKR_OK) {
		cc_log_err("searching the token for %s: %s", uri, p11_rv_str(rv));
		return -1;
	}
	if (n != 1) {
		cc_log_err(n == 0 ? "no private key matches %s" : "several private keys match %s",
		    uri);
		return -1;
	}
	return 0;
}

static EVP_PKEY *
pubkey_of(struct hsm *h, CK_OBJECT_HANDLE priv, const char *what)
{
	uint8_t *id = NULL;
	size_t id_len = 0, n = 0;
	CK_OBJECT_HANDLE o;
	EVP_PKEY *pk = NULL;
	char err[256];

	(void)p11_get_attr(&h->mod, h->s, priv, CKA_ID, &id, &id_len);
	if (id_len > 0)
		(void)p11_find_objects(&h->mod, h->s, CKO_PUBLIC_KEY, NULL, id, id_len, &o, 1, &n);
	if (n == 1 && p11_read_pubkey(&h->mod, h->s, o, &pk, err, sizeof(err)) == CKR_OK)
		goto out;
	/* No public-key object: an RSA private key carries its modulus and exponent. */
	if (p11_read_pubkey(&h->mod, h->s, priv, &pk, err, sizeof(err)) == CKR_OK)
		goto out;
	n = 0;
	if (id_len > 0)
		(void)p11_find_objects(&h->mod, h->s, CKO_CERTIFICATE, NULL, id, id_len, &o, 1, &n);
	if (n == 1) {
		uint8_t *der = NULL;
		size_t len;
		const unsigned char *p;
		X509 *x = NULL;

		if (p11_get_attr(&h->mod, h->s, o, CKA_VALUE, &der, &len) == CKR_OK) {
			p = der;
			x = d2i_X509(NULL, &p, (long)len);
			if (x != NULL)
				pk = X509_get_pubkey(x);
		}
		X509_free(x);
		free(der);
	}
	if (pk == NULL)
		cc_log_err("no public key for %s: %s", what, err);
out:
	free(id);
	return pk;
}

EVP_PKEY *
hsm_pubkey(struct hsm *h, const char *uri)
{
	CK_OBJECT_HANDLE o;

	if (find_private(h, uri, &o) == -1)
		return NULL;
	return pubkey_of(h, o, uri);
}

/* Signs a digest with a private key handle: CKM_RSA_PKCS over a DigestInfo, or CKM_ECDSA. */
static int
sign_handle(struct hsm *h, CK_OBJECT_HANDLE o, int is_rsa, uint8_t md, const uint8_t *dg,
    size_t dg_len, uint8_t **sig, size_t *sig_len)
{
	CK_MECHANISM mech = { is_rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0 };
	uint8_t *in = NULL, *raw = NULL;
	size_t in_len;
	CK_ULONG raw_len = 0;
	CK_RV rv;
	int ret = -1;

	*sig = NULL;
	*sig_len = 0;
	if (is_rsa) {
		if (keys_pad_digestinfo(md, dg, dg_len, &in, &in_len) == -1) {
			cc_log_err("cannot build a DigestInfo");
			return -1;
		}
	} else {
		in = malloc(dg_len);
		if (in == NULL)
			return -1;
		memcpy(in, dg, dg_len);
		in_len = dg_len;
	}
	rv = h->mod.f->C_SignInit(h->s, &mech, o);
	if (rv == CKR_OK)
		rv = h->mod.f->C_Sign(h->s, in, in_len, NULL, &raw_len);
	if (rv == CKR_OK && (raw_len == 0 || raw_len > 1024))
		rv = CKR_FUNCTION_FAILED;
	if (rv == CKR_OK && (raw = malloc(raw_len)) == NULL)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = h->mod.f->C_Sign(h->s, in, in_len, raw, &raw_len);
	if (rv != CKR_OK) {
		cc_log_err("%s signature failed: %s", p11_mech_str(mech.mechanism),
		    p11_rv_str(rv));
		goto out;
	}
	if (is_rsa) {
		*sig = raw;
		*sig_len = raw_len;
		raw = NULL;
	} else if (keys_pad_ecdsa_der(raw, raw_len, sig, sig_len) == -1) {
		cc_log_err("the token's ECDSA signature has a bad length (%lu)",
		    (unsigned long)raw_len);
		goto out;
	}
	ret = 0;
out:
	free(in);
	free(raw);
	return ret;
}

static int
key_is_rsa(struct hsm *h, CK_OBJECT_HANDLE o, int *is_rsa)
{
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	CK_RV rv = h->mod.f->C_GetAttributeValue(h->s, o, &a, 1);

	if (rv != CKR_OK) {
		cc_log_err("cannot read the key type: %s", p11_rv_str(rv));
		return -1;
	}
	if (kt != CKK_RSA && kt != CKK_EC) {
		cc_log_err("unsupported key type 0x%lx", (unsigned long)kt);
		return -1;
	}
	*is_rsa = kt == CKK_RSA;
	return 0;
}

int
hsm_sign_digest(struct hsm *h, const char *uri, const char *md, const uint8_t *dg,
    size_t dg_len, uint8_t **sig, size_t *sig_len)
{
	CK_OBJECT_HANDLE o;
	uint8_t m = cc_md_from_name(md);
	int is_rsa;

	if (m == CC_MD_NONE || cc_md_size(m) != dg_len) {
		cc_log_err("digest %s of %zu bytes is not supported", md ? md : "(null)", dg_len);
		return -1;
	}
	if (find_private(h, uri, &o) == -1 || key_is_rsa(h, o, &is_rsa) == -1)
		return -1;
	return sign_handle(h, o, is_rsa, m, dg, dg_len, sig, sig_len);
}

unsigned
hsm_default_usage(const char *role)
{
	if (strcmp(role, "ra") == 0)
		return HSM_USE_SIGN | HSM_USE_DECRYPT;
	if (strcmp(role, "pfx") == 0 || strcmp(role, "ra-encrypt") == 0)
		return HSM_USE_DECRYPT;
	return HSM_USE_SIGN;
}

/* ---- token initialisation ---- */

static void
pad32(unsigned char out[32], const char *s)
{
	size_t n = strlen(s);

	memset(out, ' ', 32);
	memcpy(out, s, n > 32 ? 32 : n);
}

/* Finds the initialised token labelled label, or initialises a free one with that label. */
static int
init_token(struct hsm *h, const struct hsm_token_params *p)
{
	struct p11_uri u;
	CK_SLOT_ID slots[64];
	CK_ULONG n = sizeof(slots) / sizeof(slots[0]);
	CK_SESSION_HANDLE so;
	unsigned char label[32];
	char err[512];
	CK_RV rv;
	int found = 0;

	memset(&u, 0, sizeof(u));
	strcpy(u.token, p->label);
	u.has_token = 1;
	rv = p11_find_token(&h->mod, &u, &h->slot, NULL, err, sizeof(err));
	if (rv == CKR_OK)
		return 0;
	if (rv != CKR_TOKEN_NOT_PRESENT) {
		cc_log_err("%s", err);
		return -1;
	}
	rv = h->mod.f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		cc_log_err("C_GetSlotList: %s", p11_rv_str(rv));
		return -1;
	}
	for (CK_ULONG i = 0; i < n && !found; i++) {
		CK_TOKEN_INFO ti;

		if (h->mod.f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    !(ti.flags & CKF_TOKEN_INITIALIZED)) {
			h->slot = slots[i];
			found = 1;
		}
	}
	if (!found) {
		cc_log_err("no token labelled \"%s\" and no free slot to initialise one",
		    p->label);
		return -1;
	}
	if (p->so_pin == NULL) {
		cc_log_err("token \"%s\" does not exist; initialising it needs an SO PIN", p->label);
		return -1;
	}
	pad32(label, p->label);
	rv = h->mod.f->C_InitToken(h->slot, (CK_UTF8CHAR *)p->so_pin, strlen(p->so_pin), label);
	if (rv != CKR_OK) {
		cc_log_err("C_InitToken \"%s\": %s", p->label, p11_rv_str(rv));
		return -1;
	}
	/* SoftHSM gives an initialised token a new slot id: look it up again. */
	rv = p11_find_token(&h->mod, &u, &h->slot, NULL, err, sizeof(err));
	if (rv != CKR_OK) {
		cc_log_err("token \"%s\" not found after initialisation: %s", p->label, err);
		return -1;
	}
	rv = h->mod.f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &so);
	if (rv != CKR_OK) {
		cc_log_err("C_OpenSession: %s", p11_rv_str(rv));
		return -1;
	}
	rv = h->mod.f->C_Login(so, CKU_SO, (CK_UTF8CHAR *)p->so_pin, strlen(p->so_pin));
	if (rv == CKR_OK) {
		rv = h->mod.f->C_InitPIN(so, (CK_UTF8CHAR *)p->user_pin, strlen(p->user_pin));
		if (rv != CKR_OK)
			cc_log_err("C_InitPIN: %s", p11_rv_str(rv));
		(void)h->mod.f->C_Logout(so);
	} else {
		cc_log_err("SO login: %s", p11_rv_str(rv));
	}
	(void)h->mod.f->C_CloseSession(so);
	if (rv == CKR_OK)
		cc_log_info("initialised token \"%s\"", p->label);
	return rv == CKR_OK ? 0 : -1;
}

static int
curve_nid(const char *name)
{
	int nid;

	if (name == NULL)
		return NID_X9_62_prime256v1;
	nid = EC_curve_nist2nid(name);
	if (nid == NID_undef)
		nid = OBJ_sn2nid(name);
	if (nid == NID_undef)
		nid = OBJ_ln2nid(name);
	return nid;
}

static int
gen_pair(struct hsm *h, const struct hsm_role_spec *r, uint8_t id[16])
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BBOOL sign, decrypt;
	CK_ULONG bits = r->rsa_bits ? r->rsa_bits : 2048;
	CK_BYTE e[] = { 0x01, 0x00, 0x01 };
	uint8_t *ecp = NULL;
	size_t ecp_len = 0;
	unsigned usage = r->usage ? r->usage : hsm_default_usage(r->role);
	CK_MECHANISM mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_OBJECT_HANDLE pub, priv;
	CK_ATTRIBUTE pubt[12], privt[12];
	CK_ULONG np = 0, nv = 0;
	CK_RV rv;
	int ret = -1;

	sign = (usage & HSM_USE_SIGN) ? CK_TRUE : CK_FALSE;
	decrypt = (usage & HSM_USE_DECRYPT) && r->alg == HSM_KEY_RSA ? CK_TRUE : CK_FALSE;
	if (RAND_bytes(id, 16) != 1) {
		cc_log_err("no random bytes for CKA_ID");
		return -1;
	}
#define ATTR(t, n, ty, v, l) (t)[(n)++] = (CK_ATTRIBUTE){ (ty), (void *)(v), (l) }
	ATTR(pubt, np, CKA_TOKEN, &yes, sizeof(yes));
	ATTR(pubt, np, CKA_PRIVATE, &no, sizeof(no));
	ATTR(pubt, np, CKA_VERIFY, &sign, sizeof(sign));
	ATTR(pubt, np, CKA_ENCRYPT, &decrypt, sizeof(decrypt));
	ATTR(pubt, np, CKA_WRAP, &no, sizeof(no));
	ATTR(pubt, np, CKA_LABEL, r->role, strlen(r->role));
	ATTR(pubt, np, CKA_ID, id, 16);
	ATTR(privt, nv, CKA_TOKEN, &yes, sizeof(yes));
	ATTR(privt, nv, CKA_PRIVATE, &yes, sizeof(yes));
	ATTR(privt, nv, CKA_SENSITIVE, &yes, sizeof(yes));
	ATTR(privt, nv, CKA_EXTRACTABLE, &no, sizeof(no));
	ATTR(privt, nv, CKA_SIGN, &sign, sizeof(sign));
	ATTR(privt, nv, CKA_DECRYPT, &decrypt, sizeof(decrypt));
	/* Nothing but what the role needs: no key wrapping or derivation, whatever the token's
	 * defaults (SoftHSM sets CKA_UNWRAP otherwise). */
	ATTR(privt, nv, CKA_UNWRAP, &no, sizeof(no));
	ATTR(privt, nv, CKA_DERIVE, &no, sizeof(no));
	ATTR(privt, nv, CKA_LABEL, r->role, strlen(r->role));
	ATTR(privt, nv, CKA_ID, id, 16);
	if (r->alg == HSM_KEY_RSA) {
		if (bits < 2048 || bits > 8192) {
			cc_log_err("role %s: RSA key size %lu out of range (2048..8192)", r->role,
			    (unsigned long)bits);
			return -1;
		}
		ATTR(pubt, np, CKA_MODULUS_BITS, &bits, sizeof(bits));
		ATTR(pubt, np, CKA_PUBLIC_EXPONENT, e, sizeof(e));
	} else if (r->alg == HSM_KEY_EC) {
		int nid = curve_nid(r->ec_curve);

		if (nid == NID_undef || p11_ec_params(nid, &ecp, &ecp_len) != CKR_OK) {
			cc_log_err("role %s: unknown curve %s", r->role, r->ec_curve);
			return -1;
		}
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		ATTR(pubt, np, CKA_EC_PARAMS, ecp, ecp_len);
	} else {
		cc_log_err("role %s: unknown key algorithm", r->role);
		return -1;
	}
#undef ATTR
	rv = h->mod.f->C_GenerateKeyPair(h->s, &mech, pubt, np, privt, nv, &pub, &priv);
	if (rv != CKR_OK) {
		cc_log_err("role %s: C_GenerateKeyPair: %s", r->role, p11_rv_str(rv));
		goto out;
	}
	ret = 0;
out:
	free(ecp);
	return ret;
}

int
hsm_token_init(const struct hsm_token_params *p, struct hsm_role_result *out)
{
	struct hsm *h;
	int ret = -1;

	if (p->label == NULL || p->label[0] == '\0' || strlen(p->label) > 32 ||
	    p->user_pin == NULL) {
		cc_log_err("token init needs a label of 1 to 32 bytes and a user PIN");
		return -1;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -1;
	if (load(&h->mod, p->module, p->module_env) == -1) {
		free(h);
		return -1;
	}
	if (init_token(h, p) == -1)
		goto out;
	strcpy(h->label, p->label);
	if (h->mod.f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	    &h->s) != CKR_OK) {
		cc_log_err("cannot open a session on token \"%s\"", p->label);
		goto out;
	}
	h->have_session = 1;
	{
		CK_RV rv = p11_login(&h->mod, h->s, (const uint8_t *)p->user_pin,
		    strlen(p->user_pin));
		if (rv != CKR_OK) {
			cc_log_err("login to token \"%s\": %s", p->label, p11_rv_str(rv));
			goto out;
		}
		h->logged_in = 1;
	}
	for (size_t i = 0; i < p->nroles; i++) {
		const struct hsm_role_spec *r = &p->roles[i];
		CK_OBJECT_HANDLE o;
		size_t n;
		uint8_t id[16];
		int is_rsa;

		if (r->role == NULL || r->role[0] == '\0') {
			cc_log_err("role %zu has no name", i);
			goto out;
		}
		if (p11_find_objects(&h->mod, h->s, CKO_PRIVATE_KEY, r->role, NULL, 0, &o, 1, &n) !=
		    CKR_OK)
			goto out;
		memset(&out[i], 0, sizeof(out[i]));
		if (n == 0) {
			if (gen_pair(h, r, id) == -1)
				goto out;
			out[i].created = 1;
			out[i].alg = r->alg;
			cc_log_info("generated the %s key of role %s in token \"%s\"",
			    r->alg == HSM_KEY_RSA ? "RSA" : "EC", r->role, p->label);
		} else {
			if (n > 1)
				cc_log_warn("token \"%s\" has %zu keys labelled %s", p->label, n,
				    r->role);
			if (key_is_rsa(h, o, &is_rsa) == -1)
				goto out;
			out[i].alg = is_rsa ? HSM_KEY_RSA : HSM_KEY_EC;
		}
		if (p11_uri_format(out[i].uri, sizeof(out[i].uri), p->label, r->role, NULL, 0) ==
		    -1) {
			cc_log_err("role %s: URI too long", r->role);
			goto out;
		}
	}
	ret = 0;
out:
	hsm_close(h);
	return ret;
}

/* ---- self-signed CA ---- */

static X509_NAME *
parse_subject(const char *s)
{
	X509_NAME *name = X509_NAME_new();
	char *copy = strdup(s), *save = NULL, *rdn;

	if (name == NULL || copy == NULL)
		goto fail;
	for (rdn = strtok_r(copy, ",", &save); rdn != NULL; rdn = strtok_r(NULL, ",", &save)) {
		char *eq;

		while (*rdn == ' ')
			rdn++;
		eq = strchr(rdn, '=');
		if (eq == NULL || eq == rdn || eq[1] == '\0')
			goto fail;
		*eq = '\0';
		if (!X509_NAME_add_entry_by_txt(name, rdn, MBSTRING_UTF8,
		    (const unsigned char *)eq + 1, -1, -1, 0))
			goto fail;
	}
	if (X509_NAME_entry_count(name) == 0)
		goto fail;
	free(copy);
	return name;
fail:
	cc_log_err("bad subject \"%s\" (expected e.g. \"CN=certconn CA,O=example\")", s);
	free(copy);
	X509_NAME_free(name);
	return NULL;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = e != NULL && X509_add_ext(x, e, -1);

	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

static int
random_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	int ret = -1;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	/* Positive and of full length: the top bit clear, the next one set. */
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (bn != NULL && (ai = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
	    X509_set_serialNumber(x, ai))
		ret = 0;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ret;
}

static int
write_pem(const char *path, X509 *x)
{
	FILE *f;
	int fd, ok;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		cc_log_err("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	ok = PEM_write_X509(f, x);
	if (fclose(f) != 0)
		ok = 0;
	if (!ok)
		cc_log_err("cannot write %s", path);
	return ok ? 0 : -1;
}

/*
 * Signs x in this process with the token key o. OpenSSL sets the TBS signature algorithm
 * only inside X509_sign, which needs the private key here; the field is part of x (not
 * const storage), so it is set through the pointer X509_get0_tbs_sigalg returns, and
 * i2d_re_X509_tbs re-encodes. *signed_x (caller frees) and *der (malloc'd, caller frees)
 * hold the result.
 */
static int
sign_x509(struct hsm *h, CK_OBJECT_HANDLE o, int is_rsa, uint8_t md, int sig_nid, X509 *x,
    X509 **signed_x, uint8_t **der, size_t *der_len)
{
	X509_ALGOR *alg;
	const EVP_MD *emd = keys_pad_md(md);
	unsigned char *tbs = NULL;
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned int dg_len;
	uint8_t *sig = NULL;
	size_t sig_len;
	const unsigned char *cp;
	int tbs_len, ret = -1;

	*signed_x = NULL;
	*der = NULL;
	alg = (X509_ALGOR *)X509_get0_tbs_sigalg(x);
	if (emd == NULL || !X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid),
	    is_rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
		goto ossl;
	tbs_len = i2d_re_X509_tbs(x, &tbs);
	if (tbs_len <= 0 || !EVP_Digest(tbs, (size_t)tbs_len, dg, &dg_len, emd, NULL))
		goto ossl;
	if (sign_handle(h, o, is_rsa, md, dg, dg_len, &sig, &sig_len) == -1)
		goto out;
	if (x509_tbs_assemble(tbs, (size_t)tbs_len, alg, sig, sig_len, der, der_len) == -1)
		goto ossl;
	cp = *der;
	*signed_x = d2i_X509(NULL, &cp, (long)*der_len);
	if (*signed_x == NULL || cp != *der + *der_len)
		goto ossl;
	ret = 0;
	goto out;
ossl:
	cc_log_openssl("signing a certificate with the token");
out:
	if (ret == -1) {
		X509_free(*signed_x);
		*signed_x = NULL;
		free(*der);
		*der = NULL;
	}
	free(sig);
	OPENSSL_free(tbs);
	return ret;
}

int
hsm_selfsign_ca(const struct hsm_ca_params *p, uint8_t **der_out, size_t *der_len_out)
{
	struct hsm *h = NULL;
	struct p11_uri u;
	const char *why;
	CK_OBJECT_HANDLE o;
	EVP_PKEY *pub = NULL;
	X509 *x = NULL, *signed_x = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	uint8_t md = cc_md_from_name(p->md ? p->md : "SHA256");
	const EVP_MD *emd = keys_pad_md(md);
	int sig_nid, is_rsa, ret = -1;
	uint8_t *der = NULL;
	size_t der_len;

	if (der_out != NULL) {
		*der_out = NULL;
		*der_len_out = 0;
	}
	if (emd == NULL || md == CC_MD_SHA1 || md == CC_MD_SHA224) {
		cc_log_err("CA certificates are signed with SHA256, SHA384 or SHA512, not %s",
		    p->md);
		return -1;
	}
	if (p->days == 0 || p->days > 36500) {
		cc_log_err("CA validity of %u days is out of range", p->days);
		return -1;
	}
	if (p11_uri_parse(p->key_uri, &u, &why) == -1) {
		cc_log_err("bad key URI \"%s\": %s", p->key_uri, why);
		return -1;
	}
	h = hsm_open(p->module, p->module_env, p->key_uri, p->user_pin);
	if (h == NULL)
		return -1;
	if (find_private(h, p->key_uri, &o) == -1 || key_is_rsa(h, o, &is_rsa) == -1)
		goto out;
	pub = pubkey_of(h, o, p->key_uri);
	if (pub == NULL)
		goto out;
	if (!OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(emd),
	    is_rsa ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey))
		goto ossl;
	name = parse_subject(p->subject ? p->subject : "CN=certconn local CA");
	if (name == NULL)
		goto out;
	x = X509_new();
	if (x == NULL || !X509_set_version(x, X509_VERSION_3) || random_serial(x) == -1 ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    !X509_set_pubkey(x, pub) || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)p->days, 0, NULL) == NULL)
		goto ossl;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") == -1 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ==
	    -1 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == -1)
		goto ossl;
	if (sign_x509(h, o, is_rsa, md, sig_nid, x, &signed_x, &der, &der_len) == -1)
		goto out;
	if (X509_verify(signed_x, pub) != 1) {
		cc_log_err("the token's signature on the CA certificate does not verify");
		goto out;
	}
	if (p->out_pem != NULL && write_pem(p->out_pem, signed_x) == -1)
		goto out;
	if (der_out != NULL) {
		*der_out = der;
		*der_len_out = der_len;
		der = NULL;
	}
	ret = 0;
	goto out;
ossl:
	cc_log_openssl("building the CA certificate");
out:
	free(der);
	X509_free(signed_x);
	X509_free(x);
	X509_NAME_free(name);
	EVP_PKEY_free(pub);
	hsm_close(h);
	return ret;
}

int
hsm_store_cert(struct hsm *h, const char *key_uri, const uint8_t *der, size_t der_len)
{
	CK_OBJECT_HANDLE priv, o;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	uint8_t *id = NULL, *label = NULL, *subj = NULL;
	size_t id_len = 0, label_len = 0;
	int subj_len;
	const unsigned char *p = der;
	X509 *x = NULL;
	EVP_PKEY *pub = NULL;
	CK_RV rv;
	int ret = -1;

	x = d2i_X509(NULL, &p, (long)der_len);
	if (x == NULL || p != der + der_len) {
		cc_log_err("the certificate for %s is not DER X.509", key_uri);
		goto out;
	}
	if (find_private(h, key_uri, &priv) == -1 || (pub = pubkey_of(h, priv, key_uri)) == NULL)
		goto out;
	if (EVP_PKEY_eq(pub, X509_get0_pubkey(x)) != 1) {
		cc_log_err("the certificate is not for the key %s", key_uri);
		goto out;
	}
	if (p11_get_attr(&h->mod, h->s, priv, CKA_ID, &id, &id_len) != CKR_OK || id_len == 0) {
		cc_log_err("the key %s has no CKA_ID to tie a certificate to", key_uri);
		goto out;
	}
	(void)p11_get_attr(&h->mod, h->s, priv, CKA_LABEL, &label, &label_len);
	subj_len = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	if (subj_len <= 0)
		goto out;
	{
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof(cls) },
			{ CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) },
			{ CKA_TOKEN, &yes, sizeof(yes) },
			{ CKA_PRIVATE, &no, sizeof(no) },
			{ CKA_ID, id, id_len },
			{ CKA_SUBJECT, subj, (CK_ULONG)subj_len },
			{ CKA_VALUE, (void *)der, der_len },
			{ CKA_LABEL, label, label_len },
		};

		rv = h->mod.f->C_CreateObject(h->s, t, label_len > 0 ? 8 : 7, &o);
	}
	if (rv != CKR_OK) {
		cc_log_err("storing the certificate for %s: %s", key_uri, p11_rv_str(rv));
		goto out;
	}
	ret = 0;
out:
	OPENSSL_free(subj);
	free(label);
	free(id);
	EVP_PKEY_free(pub);
	X509_free(x);
	return ret;
}

static X509 *
read_pem_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL) {
		cc_log_err("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		cc_log_openssl(path);
	return x;
}

int
hsm_issue_cert(const struct hsm_issue_params *p)
{
	struct hsm *h = NULL;
	CK_OBJECT_HANDLE ca_o, o;
	EVP_PKEY *subj_pub = NULL, *ca_pub = NULL;
	X509 *ca = NULL, *x = NULL, *signed_x = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	uint8_t *der = NULL;
	size_t der_len;
	int sig_nid, is_rsa, ret = -1;

	if (p->days == 0 || p->days > 825) {
		cc_log_err("certificate validity of %u days is out of range (1..825)", p->days);
		return -1;
	}
	ca = read_pem_cert(p->ca_cert_pem);
	if (ca == NULL)
		return -1;
	h = hsm_open(p->module, p->module_env, p->ca_key_uri, p->user_pin);
	if (h == NULL)
		goto out;
	if (find_private(h, p->ca_key_uri, &ca_o) == -1 || key_is_rsa(h, ca_o, &is_rsa) == -1 ||
	    find_private(h, p->key_uri, &o) == -1)
		goto out;
	ca_pub = pubkey_of(h, ca_o, p->ca_key_uri);
	subj_pub = pubkey_of(h, o, p->key_uri);
	if (ca_pub == NULL || subj_pub == NULL)
		goto out;
	if (X509_check_private_key(ca, ca_pub) != 1 && EVP_PKEY_eq(X509_get0_pubkey(ca), ca_pub)
	    != 1) {
		cc_log_err("%s is not the certificate of the key %s", p->ca_cert_pem, p->ca_key_uri);
		goto out;
	}
	if (!OBJ_find_sigid_by_algs(&sig_nid, NID_sha256,
	    is_rsa ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey))
		goto ossl;
	name = parse_subject(p->subject);
	if (name == NULL)
		goto out;
	x = X509_new();
	if (x == NULL || !X509_set_version(x, X509_VERSION_3) || random_serial(x) == -1 ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
	    !X509_set_pubkey(x, subj_pub) || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)p->days, 0, NULL) == NULL)
		goto ossl;
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
	    add_ext(x, &ctx, NID_key_usage, p->key_usage ? p->key_usage :
	    "critical,digitalSignature,keyEncipherment") == -1 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == -1 ||
	    (p->eku != NULL && add_ext(x, &ctx, NID_ext_key_usage, p->eku) == -1) ||
	    (p->san != NULL && add_ext(x, &ctx, NID_subject_alt_name, p->san) == -1))
		goto ossl;
	if (sign_x509(h, ca_o, is_rsa, CC_MD_SHA256, sig_nid, x, &signed_x, &der, &der_len) == -1)
		goto out;
	if (X509_verify(signed_x, ca_pub) != 1) {
		cc_log_err("the token's signature on the certificate does not verify");
		goto out;
	}
	if (p->out_pem != NULL && write_pem(p->out_pem, signed_x) == -1)
		goto out;
	ret = 0;
	goto out;
ossl:
	cc_log_openssl("building the certificate");
out:
	free(der);
	X509_free(signed_x);
	X509_free(x);
	X509_free(ca);
	X509_NAME_free(name);
	EVP_PKEY_free(subj_pub);
	EVP_PKEY_free(ca_pub);
	hsm_close(h);
	return ret;
}
