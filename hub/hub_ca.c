/*
 * The hub CA. Its private key stays in a PKCS#11 token; the hub signs in-process through
 * hsm.h (the hub is an administrator's service, not certconnd: no keys process here). A
 * certificate is built with OpenSSL, its TBSCertificate digested here, the digest signed in
 * the token, and the whole assembled with OpenSSL's ASN.1 (x509_tbs.h) and verified with the
 * CA's public key before it is handed out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certconn/log.h"
#include "certconn/util.h"
#include "hsm.h"
#include "hub.h"
#include "hub_ca.h"
#include "x509_tbs.h"

struct hub_ca {
	struct hsm *h;
	char *key_uri;
	X509 *cert;
	EVP_PKEY *pub;
	int is_rsa;
};

static char *
read_pin(const char *path)
{
	uint8_t *buf;
	size_t len;

	if (cc_read_file(path, 4096, &buf, &len) == -1) {
		cc_log_err("cannot read the PIN file %s", path);
		return NULL;
	}
	buf[strcspn((char *)buf, "\r\n")] = '\0';
	return (char *)buf;
}

X509 *
hub_pem_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL) {
		cc_log_err("cannot open %s", path);
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		cc_log_openssl(path);
	return x;
}

struct hub_ca *
hub_ca_open(const char *module, const char *module_env, const char *key_uri,
    const char *pin_file, const char *cert_path)
{
	struct hub_ca *ca = calloc(1, sizeof(*ca));
	EVP_PKEY *tok_pub = NULL;
	char *pin = NULL;

	if (ca == NULL)
		return NULL;
	ca->key_uri = strdup(key_uri);
	ca->cert = hub_pem_cert(cert_path);
	if (ca->key_uri == NULL || ca->cert == NULL)
		goto fail;
	ca->pub = X509_get_pubkey(ca->cert);
	if (ca->pub == NULL)
		goto fail;
	ca->is_rsa = EVP_PKEY_is_a(ca->pub, "RSA");
	if (!ca->is_rsa && !EVP_PKEY_is_a(ca->pub, "EC")) {
		cc_log_err("the hub CA key must be RSA or EC");
		goto fail;
	}
	pin = read_pin(pin_file);
	if (pin == NULL)
		goto fail;
	ca->h = hsm_open(module, module_env, key_uri, pin);
	cc_free_secret(pin, strlen(pin) + 1);
	if (ca->h == NULL)
		goto fail;
	/* The certificate must be the token key's: else every connector certificate would be
	 * signed by a key its issuer does not name. */
	tok_pub = hsm_pubkey(ca->h, key_uri);
	if (tok_pub == NULL || EVP_PKEY_eq(tok_pub, ca->pub) != 1) {
		cc_log_err("the hub CA certificate %s is not for the key %s", cert_path, key_uri);
		goto fail;
	}
	EVP_PKEY_free(tok_pub);
	return ca;
fail:
	EVP_PKEY_free(tok_pub);
	hub_ca_close(ca);
	return NULL;
}

void
hub_ca_close(struct hub_ca *ca)
{
	if (ca == NULL)
		return;
	hsm_close(ca->h);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->pub);
	free(ca->key_uri);
	free(ca);
}

X509 *
hub_ca_cert(struct hub_ca *ca)
{
	return ca->cert;
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
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40); /* positive, full length */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (bn != NULL && (ai = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
	    X509_set_serialNumber(x, ai))
		ret = 0;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ret;
}

/* Signs x (everything but the signature set) with the CA key in the token. */
static X509 *
ca_sign(struct hub_ca *ca, X509 *x)
{
	X509_ALGOR *alg;
	unsigned char *tbs = NULL, dg[EVP_MAX_MD_SIZE];
	unsigned int dg_len;
	uint8_t *sig = NULL, *der = NULL;
	size_t sig_len, der_len;
	const unsigned char *cp;
	X509 *out = NULL;
	int tbs_len;

	/* X509_sign would set the TBS signature algorithm, but needs the private key here. */
	alg = (X509_ALGOR *)X509_get0_tbs_sigalg(x);
	if (!X509_ALGOR_set0(alg, OBJ_nid2obj(ca->is_rsa ? NID_sha256WithRSAEncryption :
	    NID_ecdsa_with_SHA256), ca->is_rsa ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
		goto ossl;
	tbs_len = i2d_re_X509_tbs(x, &tbs);
	if (tbs_len <= 0 || !EVP_Digest(tbs, (size_t)tbs_len, dg, &dg_len, EVP_sha256(), NULL))
		goto ossl;
	if (hsm_sign_digest(ca->h, ca->key_uri, "SHA256", dg, dg_len, &sig, &sig_len) == -1)
		goto out;
	if (x509_tbs_assemble(tbs, (size_t)tbs_len, alg, sig, sig_len, &der, &der_len) == -1)
		goto ossl;
	cp = der;
	out = d2i_X509(NULL, &cp, (long)der_len);
	if (out == NULL || cp != der + der_len)
		goto ossl;
	if (X509_verify(out, ca->pub) != 1) {
		cc_log_err("the token's signature on a certificate does not verify with the hub CA "
		    "certificate");
		X509_free(out);
		out = NULL;
	}
	goto out;
ossl:
	cc_log_openssl("signing a certificate");
	X509_free(out);
	out = NULL;
out:
	OPENSSL_free(tbs);
	free(sig);
	free(der);
	return out;
}

static X509 *
ca_issue(struct hub_ca *ca, EVP_PKEY *pub, X509_NAME *subject, const char *eku,
    const char *san, int64_t now, unsigned days)
{
	X509 *x = X509_new(), *signed_x = NULL;
	X509V3_CTX ctx;
	time_t tnow = (time_t)now;

	/* Five minutes back: a connector whose clock is slightly behind can use it at once. */
	if (x == NULL || !X509_set_version(x, X509_VERSION_3) || random_serial(x) == -1 ||
	    !X509_set_subject_name(x, subject) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) || !X509_set_pubkey(x, pub) ||
	    X509_time_adj_ex(X509_getm_notBefore(x), 0, -300, &tnow) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &tnow) == NULL)
		goto ossl;
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") == -1 ||
	    add_ext(x, &ctx, NID_ext_key_usage, eku) == -1 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") == -1 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == -1 ||
	    add_ext(x, &ctx, NID_subject_alt_name, san) == -1)
		goto ossl;
	signed_x = ca_sign(ca, x);
	X509_free(x);
	return signed_x;
ossl:
	cc_log_openssl("building a certificate");
	X509_free(x);
	return NULL;
}

X509 *
hub_ca_issue_client(struct hub_ca *ca, EVP_PKEY *pub, const char *tenant, const char *id,
    int64_t now, unsigned days)
{
	X509_NAME *n = X509_NAME_new();
	char san[3 * HUB_ID_MAX + 64];
	X509 *x = NULL;

	snprintf(san, sizeof(san), "URI:%s%s:%s", HUB_CONNECTOR_URN, tenant, id);
	if (n != NULL &&
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
	    (const unsigned char *)"certconn connector", -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, (const unsigned char *)tenant, -1,
	    -1, 0) &&
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)id, -1, -1,
	    0))
		x = ca_issue(ca, pub, n, "clientAuth", san, now, days);
	else
		cc_log_openssl("connector certificate subject");
	X509_NAME_free(n);
	return x;
}

X509 *
hub_ca_issue_server(struct hub_ca *ca, EVP_PKEY *pub, const char *cn, const char *san,
    int64_t now, unsigned days)
{
	X509_NAME *n = X509_NAME_new();
	X509 *x = NULL;

	if (n != NULL && X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
	    (const unsigned char *)"certconn-hub", -1, -1, 0) &&
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	    0))
		x = ca_issue(ca, pub, n, "serverAuth", san, now, days);
	else
		cc_log_openssl("server certificate subject");
	X509_NAME_free(n);
	return x;
}

int
hub_serial_hex(const X509 *x, char *out, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	int ret = -1;

	if (hex != NULL && strlen(hex) < len) {
		memcpy(out, hex, strlen(hex) + 1);
		ret = 0;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	return ret;
}

int
hub_cert_identity(X509 *x, struct hub_peer *p)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t plen = strlen(HUB_CONNECTOR_URN);
	int ret = -1;

	memset(p, 0, sizeof(*p));
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *s, *colon;
		int len;

		if (g->type != GEN_URI)
			continue;
		s = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (len <= (int)plen || memchr(s, '\0', (size_t)len) != NULL ||
		    strncmp(s, HUB_CONNECTOR_URN, plen) != 0)
			continue;
		/* tenant ids may hold ':'; connector ids (UUIDs) do not: the last ':' splits. */
		colon = memrchr(s + plen, ':', (size_t)len - plen);
		if (colon == NULL || colon - (s + plen) > HUB_ID_MAX ||
		    (s + len) - (colon + 1) > HUB_ID_MAX)
			continue;
		memcpy(p->tenant, s + plen, (size_t)(colon - (s + plen)));
		memcpy(p->connector, colon + 1, (size_t)((s + len) - (colon + 1)));
		if (!hub_id_ok(p->tenant) || !hub_id_ok(p->connector) ||
		    hub_serial_hex(x, p->serial, sizeof(p->serial)) == -1) {
			memset(p, 0, sizeof(*p));
			continue;
		}
		p->present = true;
		ret = 0;
		break;
	}
	GENERAL_NAMES_free(gens);
	return ret;
}

/* ---- CSRs ---- */

int
hub_csr_parse(const uint8_t *der, size_t len, X509_REQ **out, const char **why)
{
	const unsigned char *p = der;
	X509_REQ *req;
	EVP_PKEY *k;

	*out = NULL;
	req = d2i_X509_REQ(NULL, &p, (long)len);
	if (req == NULL || p != der + len) {
		X509_REQ_free(req);
		ERR_clear_error();
		*why = "the certificate request does not decode as one PKCS#10 request";
		return -1;
	}
	k = X509_REQ_get0_pubkey(req);
	if (k == NULL) {
		X509_REQ_free(req);
		ERR_clear_error();
		*why = "the certificate request's public key does not decode";
		return -1;
	}
	if (X509_REQ_verify(req, k) != 1) {
		X509_REQ_free(req);
		ERR_clear_error();
		*why = "the certificate request's signature does not verify";
		return -2;
	}
	*out = req;
	return 0;
}

int
hub_key_ok_for_client(EVP_PKEY *k, const char **why)
{
	int bits = EVP_PKEY_get_bits(k);

	if (EVP_PKEY_is_a(k, "RSA")) {
		if (bits < 2048) {
			*why = "an RSA key needs at least 2048 bits";
			return -1;
		}
		return 0;
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		char grp[64];
		size_t glen;

		if (EVP_PKEY_get_utf8_string_param(k, "group", grp, sizeof(grp), &glen) != 1 ||
		    (strcmp(grp, "prime256v1") != 0 && strcmp(grp, "secp384r1") != 0 &&
		    strcmp(grp, "secp521r1") != 0)) {
			ERR_clear_error();
			*why = "an EC key must be on P-256, P-384 or P-521";
			return -1;
		}
		return 0;
	}
	*why = "the key must be RSA or EC";
	return -1;
}
