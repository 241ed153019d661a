/*
 * The device's side of the queued flows (see device.h). Plain OpenSSL and the openssl
 * command line only: nothing of src/pkcs or src/flows, so that these checks are independent
 * of what they check.
 */
#include "device.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static void
derr(struct device_delivery *o, const char *fmt, ...)
{
	char buf[256];
	unsigned long e;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	e = ERR_peek_last_error();
	if (e != 0) {
		size_t n = strlen(buf);
		snprintf(buf + n, sizeof(buf) - n, " (%s)", ERR_reason_error_string(e) ?
		    ERR_reason_error_string(e) : "?");
	}
	ERR_clear_error();
	fprintf(stderr, "device: %s\n", buf);
	if (o != NULL)
		snprintf(o->error, sizeof(o->error), "%s", buf);
}

char *
device_b64(const uint8_t *p, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1;
	char *s;

	if (n > INT_MAX / 2)
		return NULL;
	s = malloc(cap);
	if (s == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	return s;
}

uint8_t *
device_unb64(const char *s, size_t *outlen)
{
	size_t n = strlen(s), pad = 0;
	uint8_t *out;
	int r;

	if (n == 0 || n % 4 != 0 || n > INT_MAX / 2)
		return NULL;
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	out = malloc(n / 4 * 3 + 1);
	if (out == NULL)
		return NULL;
	r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r < pad) {
		free(out);
		return NULL;
	}
	*outlen = (size_t)r - pad;
	return out;
}

uint8_t *
device_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (64L << 20) &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = 0;
			if (len != NULL)
				*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

EVP_PKEY *
device_load_pubkey(const char *path)
{
	size_t n;
	uint8_t *b = device_slurp(path, &n);
	const unsigned char *p = b;
	EVP_PKEY *k = NULL;
	BIO *bio;

	if (b == NULL)
		return NULL;
	k = d2i_PUBKEY(NULL, &p, (long)n);
	if (k == NULL && (bio = BIO_new_mem_buf(b, (int)n)) != NULL) {
		k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	ERR_clear_error();
	free(b);
	return k;
}

X509 *
device_load_cert(const char *path)
{
	size_t n;
	uint8_t *b = device_slurp(path, &n);
	const unsigned char *p = b;
	X509 *x = NULL;
	BIO *bio;

	if (b == NULL)
		return NULL;
	x = d2i_X509(NULL, &p, (long)n);
	if (x == NULL && (bio = BIO_new_mem_buf(b, (int)n)) != NULL) {
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	ERR_clear_error();
	free(b);
	return x;
}

int
device_new(struct device *d, const char *id, enum device_key_type type)
{
	X509_NAME *nm = NULL;
	int ret = -1;

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->type = type;
	d->key = type == DEVICE_RSA2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	d->cert = X509_new();
	nm = X509_NAME_new();
	if (d->key == NULL || d->cert == NULL || nm == NULL ||
	    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)id, -1,
	    -1, 0) != 1 || X509_set_version(d->cert, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(d->cert), 1) != 1 ||
	    X509_set_subject_name(d->cert, nm) != 1 || X509_set_issuer_name(d->cert, nm) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(d->cert), -60) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(d->cert), 86400L * 30) == NULL ||
	    X509_set_pubkey(d->cert, d->key) != 1 ||
	    X509_sign(d->cert, d->key, EVP_sha256()) <= 0) {
		derr(NULL, "cannot make device %s", id);
		goto out;
	}
	ret = 0;
out:
	X509_NAME_free(nm);
	if (ret == -1)
		device_free(d);
	return ret;
}

void
device_free(struct device *d)
{
	EVP_PKEY_free(d->key);
	X509_free(d->cert);
	d->key = NULL;
	d->cert = NULL;
}

char *
device_public_key_b64(const struct device *d)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(d->key, &der);
	char *s;

	if (n <= 0)
		return NULL;
	s = device_b64(der, (size_t)n);
	OPENSSL_free(der);
	return s;
}

char *
device_certificate_b64(const struct device *d)
{
	unsigned char *der = NULL;
	int n = i2d_X509(d->cert, &der);
	char *s;

	if (n <= 0)
		return NULL;
	s = device_b64(der, (size_t)n);
	OPENSSL_free(der);
	return s;
}

char *
device_payload_members(const struct device *d, bool use_cert)
{
	char *b = use_cert ? device_certificate_b64(d) : device_public_key_b64(d), *s = NULL;

	if (b == NULL)
		return NULL;
	if (asprintf(&s, "\"deviceId\":\"%s\",\"%s\":\"%s\"", d->id,
	    use_cert ? "deviceCertificate" : "devicePublicKey", b) < 0)
		s = NULL;
	free(b);
	return s;
}

void
device_delivery_free(struct device_delivery *o)
{
	X509_free(o->cert);
	EVP_PKEY_free(o->key);
	sk_X509_pop_free(o->chain, X509_free);
	o->cert = NULL;
	o->key = NULL;
	o->chain = NULL;
}

int
device_decrypt(const struct device *d, const void *cms_in, size_t len, bool b64, uint8_t **out,
    size_t *outlen, struct device_delivery *o)
{
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t derlen = len;
	CMS_ContentInfo *cms = NULL;
	BIO *mem = NULL;
	BUF_MEM *bm;
	int ret = -1;

	*out = NULL;
	if (b64) {
		der = device_unb64(cms_in, &derlen);
		if (der == NULL) {
			derr(o, "delivered CMS is not base64");
			return -1;
		}
		p = der;
	} else {
		p = cms_in;
	}
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)derlen);
	if (cms == NULL) {
		derr(o, "delivered data is not a CMS ContentInfo");
		goto out;
	}
	if (o != NULL) {
		STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);

		o->recipient_type = ris != NULL && sk_CMS_RecipientInfo_num(ris) > 0 ?
		    CMS_RecipientInfo_type(sk_CMS_RecipientInfo_value(ris, 0)) : -1;
	}
	mem = BIO_new(BIO_s_mem());
	/* The cert lets OpenSSL pick our RecipientInfo when the envelope names it; without one
	 * (an envelope to a bare public key) every recipient is tried. */
	if (mem == NULL || (CMS_decrypt(cms, d->key, d->cert, NULL, mem, 0) != 1 &&
	    (ERR_clear_error(), (void)BIO_reset(mem), CMS_decrypt(cms, d->key, NULL, NULL, mem,
	    0) != 1))) {
		derr(o, "CMS_decrypt with the device key failed");
		goto out;
	}
	BIO_get_mem_ptr(mem, &bm);
	*out = malloc(bm->length + 1);
	if (*out == NULL)
		goto out;
	memcpy(*out, bm->data, bm->length);
	(*out)[bm->length] = 0;
	*outlen = bm->length;
	if (o != NULL) {
		/* The content cipher: OpenSSL has no public getter for an EnvelopedData's
		 * contentEncryptionAlgorithm; its ASN.1 print names it. */
		BIO *txt = BIO_new(BIO_s_mem());
		BUF_MEM *tb;
		const char *ciphers[] = { "aes-256-cbc", "aes-192-cbc", "aes-128-cbc",
			"aes-256-gcm", "aes-128-gcm", "des-ede3-cbc", "des-cbc" };

		if (txt != NULL && CMS_ContentInfo_print_ctx(txt, cms, 0, NULL) == 1) {
			BIO_get_mem_ptr(txt, &tb);
			for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
				char *hay = strndup(tb->data, tb->length);
				if (hay != NULL && strstr(hay, ciphers[i]) != NULL) {
					snprintf(o->content_cipher, sizeof(o->content_cipher), "%s",
					    ciphers[i]);
					for (char *c = o->content_cipher; *c; c++)
						if (*c >= 'a' && *c <= 'z')
							*c = (char)(*c - 'a' + 'A');
					free(hay);
					break;
				}
				free(hay);
			}
		}
		BIO_free(txt);
	}
	ret = 0;
out:
	BIO_free(mem);
	CMS_ContentInfo_free(cms);
	free(der);
	ERR_clear_error();
	return ret;
}

/* The protection of the first shrouded key bag: "PBES2/<cipher>" or the PBE's name. */
static void
key_pbe(PKCS12 *p12, const char *pass, struct device_delivery *o)
{
	STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);

	for (int i = 0; safes != NULL && i < sk_PKCS7_num(safes) && o->key_pbe[0] == 0; i++) {
		PKCS7 *p7 = sk_PKCS7_value(safes, i);
		STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
		int nid = OBJ_obj2nid(p7->type);

		if (nid == NID_pkcs7_data)
			bags = PKCS12_unpack_p7data(p7);
		else if (nid == NID_pkcs7_encrypted)
			bags = PKCS12_unpack_p7encdata(p7, pass, pass ? -1 : 0);
		for (int j = 0; bags != NULL && j < sk_PKCS12_SAFEBAG_num(bags); j++) {
			const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, j);
			const X509_SIG *sig;
			const X509_ALGOR *alg;
			const ASN1_OBJECT *aobj;
			int anid;

			if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag)
				continue;
			sig = PKCS12_SAFEBAG_get0_pkcs8(bag);
			X509_SIG_get0(sig, &alg, NULL);
			X509_ALGOR_get0(&aobj, NULL, NULL, alg);
			anid = OBJ_obj2nid(aobj);
			if (anid == NID_pbes2) {
				PBE2PARAM *pp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM),
				    alg->parameter);
				const char *c = pp != NULL ?
				    OBJ_nid2sn(OBJ_obj2nid(pp->encryption->algorithm)) : "?";
				snprintf(o->key_pbe, sizeof(o->key_pbe), "PBES2/%s", c);
				PBE2PARAM_free(pp);
			} else {
				snprintf(o->key_pbe, sizeof(o->key_pbe), "%s", OBJ_nid2sn(anid));
			}
			break;
		}
		sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
	}
	sk_PKCS7_pop_free(safes, PKCS7_free);
	ERR_clear_error();
}

int
device_open_pfx(const uint8_t *pfx, size_t len, const char *password, X509 *trusted,
    struct device_delivery *o)
{
	const unsigned char *p = pfx;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	X509_STORE *st = NULL;
	X509_STORE_CTX *ctx = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int ret = -1;

	if (p12 == NULL) {
		derr(o, "delivered data is not a PKCS#12");
		return -1;
	}
	if (PKCS12_verify_mac(p12, password, password ? -1 : 0) != 1) {
		derr(o, "PKCS#12 MAC does not verify with the delivered password");
		goto out;
	}
	if (PKCS12_parse(p12, password, &o->key, &o->cert, &o->chain) != 1 || o->key == NULL ||
	    o->cert == NULL) {
		derr(o, "PKCS#12 does not open or has no key and certificate");
		goto out;
	}
	if (o->chain == NULL)
		o->chain = sk_X509_new_null();
	key_pbe(p12, password, o);
	o->key_matches = X509_check_private_key(o->cert, o->key) == 1;
	ERR_clear_error();
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(o->cert), NULL);
	hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	snprintf(o->serial, sizeof(o->serial), "%s", hex != NULL ? hex : "");
	if (X509_digest(o->cert, EVP_sha1(), md, &mdlen) == 1)
		for (unsigned i = 0; i < mdlen && 2 * i + 2 < sizeof(o->thumbprint); i++)
			snprintf(o->thumbprint + 2 * i, 3, "%02X", md[i]);
	X509_NAME_oneline(X509_get_subject_name(o->cert), o->subject, sizeof(o->subject));
	if (trusted != NULL) {
		st = X509_STORE_new();
		ctx = X509_STORE_CTX_new();
		if (st == NULL || ctx == NULL || X509_STORE_add_cert(st, trusted) != 1 ||
		    X509_STORE_CTX_init(ctx, st, o->cert, o->chain) != 1)
			goto out;
		o->chain_ok = X509_verify_cert(ctx) == 1;
		if (!o->chain_ok)
			snprintf(o->error, sizeof(o->error), "chain: %s",
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	}
	ret = 0;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	PKCS12_free(p12);
	ERR_clear_error();
	return ret;
}

int
device_open_delivery(const struct device *d, const char *cms_b64, const char *password,
    X509 *trusted, struct device_delivery *o)
{
	uint8_t *pfx = NULL;
	size_t n = 0;
	int r;

	if (cms_b64 == NULL) {
		derr(o, "nothing delivered");
		return -1;
	}
	if (device_decrypt(d, cms_b64, strlen(cms_b64), true, &pfx, &n, o) == -1)
		return -1;
	r = device_open_pfx(pfx, n, password, trusted, o);
	OPENSSL_cleanse(pfx, n);
	free(pfx);
	return r;
}

int
device_open_result(const struct device *d, const cJSON *result, X509 *trusted,
    struct device_delivery *o)
{
	const cJSON *p12 = cJSON_GetObjectItemCaseSensitive(result, "encryptedPfx");
	const cJSON *pw = cJSON_GetObjectItemCaseSensitive(result, "encryptedPassword");
	const cJSON *cert = cJSON_GetObjectItemCaseSensitive(result, "certificate");
	uint8_t *pass = NULL, *der = NULL;
	size_t passlen = 0, derlen = 0;
	char *password = NULL;
	int r = -1;

	if (!cJSON_IsString(p12) || !cJSON_IsString(pw)) {
		derr(o, "the result has no encryptedPfx and encryptedPassword");
		return -1;
	}
	if (device_decrypt(d, pw->valuestring, strlen(pw->valuestring), true, &pass, &passlen,
	    NULL) == -1) {
		derr(o, "the password envelope does not open with the device key");
		return -1;
	}
	password = strndup((const char *)pass, passlen);
	if (password == NULL || strlen(password) != passlen) {
		derr(o, "the delivered password is not text");
		goto out;
	}
	r = device_open_delivery(d, p12->valuestring, password, trusted, o);
	if (r == 0 && cJSON_IsString(cert)) {
		const unsigned char *q;
		X509 *x;

		der = device_unb64(cert->valuestring, &derlen);
		q = der;
		x = der != NULL ? d2i_X509(NULL, &q, (long)derlen) : NULL;
		if (x == NULL || X509_cmp(x, o->cert) != 0) {
			derr(o, "the result's certificate is not the PKCS#12's");
			r = -1;
		}
		X509_free(x);
	}
out:
	if (password != NULL) {
		OPENSSL_cleanse(password, strlen(password));
		free(password);
	}
	OPENSSL_cleanse(pass, passlen);
	free(pass);
	free(der);
	return r;
}

/* ---- fixtures ---- */

static int
sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	if (r != 0)
		fprintf(stderr, "device: command failed (%d): %s\n", r, cmd);
	return r == 0 ? 0 : -1;
}

int
device_make_pfx(const char *dir, const char *name, const char *email, const char *password,
    bool legacy, char *pfx_path, size_t pfx_path_len)
{
	return device_make_pfx_iter(dir, name, email, password, legacy, 0, pfx_path,
	    pfx_path_len);
}

int
device_make_pfx_iter(const char *dir, const char *name, const char *email,
    const char *password, bool legacy, int iter, char *pfx_path, size_t pfx_path_len)
{
	char iters[64] = "";
	char ca[PATH_MAX], ca_key[PATH_MAX], pw[PATH_MAX];
	struct stat sb;
	FILE *f;

	snprintf(ca, sizeof(ca), "%s/ext-ca.pem", dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ext-ca.key", dir);
	if (stat(ca, &sb) != 0 && sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' "
	    "-out '%s' -days 30 -subj '/CN=Outside S-MIME CA/O=Example' "
	    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
	    ">/dev/null 2>&1", ca_key, ca) == -1)
		return -1;
	/* The password goes through a file, never the command line. */
	snprintf(pw, sizeof(pw), "%s/%s.pw", dir, name);
	f = fopen(pw, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%s\n", password);
	fclose(f);
	chmod(pw, 0600);
	if (iter > 0)
		snprintf(iters, sizeof(iters), "-iter %d", iter);
	snprintf(pfx_path, pfx_path_len, "%s/%s.p12", dir, name);
	if (sh("cd '%s' && openssl req -newkey rsa:2048 -nodes -keyout '%s.key' -out '%s.csr' "
	    "-subj '/CN=%s/emailAddress=%s' >/dev/null 2>&1 && "
	    "printf 'subjectAltName=email:%s\\nextendedKeyUsage=emailProtection\\n"
	    "keyUsage=critical,digitalSignature,keyEncipherment\\nbasicConstraints=CA:FALSE\\n' "
	    "> '%s.ext' && "
	    "openssl x509 -req -in '%s.csr' -CA '%s' -CAkey '%s' -CAcreateserial -days 30 "
	    "-sha256 -extfile '%s.ext' -out '%s.pem' >/dev/null 2>&1 && "
	    "openssl pkcs12 -export %s %s -inkey '%s.key' -in '%s.pem' -certfile '%s' "
	    "-name '%s' -passout 'file:%s' -out '%s' >/dev/null 2>&1",
	    dir, name, name, name, email, email, name, name, ca, ca_key, name, name,
	    legacy ? "-keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1" : "", iters, name,
	    name, ca, name, pw, pfx_path) == -1)
		return -1;
	return 0;
}

char *
device_seal_b64(EVP_PKEY *pub, const uint8_t *data, size_t len)
{
	EVP_PKEY *signer = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	STACK_OF(X509) *rcpt = sk_X509_new_null();
	CMS_ContentInfo *cms = NULL;
	BIO *in = BIO_new_mem_buf(data, (int)len);
	unsigned char *der = NULL;
	char *s = NULL;
	int n;

	/* The certificate only names the recipient; its signature is nobody's business. */
	if (signer == NULL || x == NULL || rcpt == NULL || in == NULL ||
	    X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 7) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	    (const unsigned char *)"kept copy recipient", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_set_pubkey(x, pub) != 1 || X509_sign(x, signer, EVP_sha256()) <= 0 ||
	    sk_X509_push(rcpt, x) <= 0) {
		derr(NULL, "cannot make the recipient certificate");
		goto out;
	}
	cms = CMS_encrypt(rcpt, in, EVP_aes_256_cbc(), CMS_BINARY);
	if (cms == NULL || (n = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		derr(NULL, "CMS_encrypt failed");
		goto out;
	}
	s = device_b64(der, (size_t)n);
out:
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	sk_X509_free(rcpt);
	X509_free(x);
	EVP_PKEY_free(signer);
	return s;
}

static char *
rsa_encrypt_b64(EVP_PKEY *pub, const char *password, int pad, const char *md)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
	unsigned char *ct = NULL;
	size_t ctlen = 0;
	char *s = NULL;

	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, pad) != 1 ||
	    (md != NULL && (EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) != 1)) ||
	    EVP_PKEY_encrypt(ctx, NULL, &ctlen, (const unsigned char *)password,
	    strlen(password)) != 1 || (ct = malloc(ctlen)) == NULL ||
	    EVP_PKEY_encrypt(ctx, ct, &ctlen, (const unsigned char *)password,
	    strlen(password)) != 1) {
		derr(NULL, "RSA encryption of the password failed");
		goto out;
	}
	s = device_b64(ct, ctlen);
out:
	free(ct);
	EVP_PKEY_CTX_free(ctx);
	return s;
}

char *
device_oaep_encrypt_b64(EVP_PKEY *pub, const char *password, const char *md)
{
	return rsa_encrypt_b64(pub, password, RSA_PKCS1_OAEP_PADDING, md);
}

char *
device_pkcs1_encrypt_b64(EVP_PKEY *pub, const char *password)
{
	return rsa_encrypt_b64(pub, password, RSA_PKCS1_PADDING, NULL);
}

/* ---- the appliance under test ---- */

#include <signal.h>
#include <time.h>
#include <sys/wait.h>

#include <curl/curl.h>

static int
env_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static char *
env_text(const char *dir, const char *name)
{
	char p[PATH_MAX];
	char *s;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	s = (char *)device_slurp(p, NULL);
	if (s != NULL)
		s[strcspn(s, "\r\n")] = '\0';
	return s;
}

/* What dev up wrote: dev.json's URLs, the hub's admin token and CA, the local CA, pfx key. */
static int
env_read(struct flows_env *e)
{
	char *s, *tok, p[PATH_MAX];
	cJSON *j, *u, *h;
	const char *scep;
	int ret = -1;

	snprintf(p, sizeof(p), "%s/dev.json", e->dir);
	s = (char *)device_slurp(p, NULL);
	j = s != NULL ? cJSON_Parse(s) : NULL;
	free(s);
	u = cJSON_GetObjectItem(j, "scep_url");
	h = cJSON_GetObjectItem(j, "hub_url");
	if (!cJSON_IsString(u) || !cJSON_IsString(h)) {
		fprintf(stderr, "flows_env: dev.json has no scep_url or hub_url\n");
		goto out;
	}
	scep = u->valuestring;
	snprintf(e->http, sizeof(e->http), "%.*s", (int)(strstr(scep, "/scep") != NULL ?
	    strstr(scep, "/scep") - scep : (ptrdiff_t)strlen(scep)), scep);
	snprintf(e->hub.url, sizeof(e->hub.url), "%s", h->valuestring);
	snprintf(e->hub.dir, sizeof(e->hub.dir), "%s/hub", e->dir);
	snprintf(e->hub.conf, sizeof(e->hub.conf), "%s/hub/hub.json", e->dir);
	snprintf(e->hub.ca_pem, sizeof(e->hub.ca_pem), "%s/hub/ca.pem", e->dir);
	snprintf(e->hub.log, sizeof(e->hub.log), "%s/hub/hub.log", e->dir);
	tok = env_text(e->dir, "hub/admin-token");
	if (tok == NULL)
		goto out;
	snprintf(e->hub.admin_token, sizeof(e->hub.admin_token), "%s", tok);
	OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
	e->hub.pid = 0; /* not ours: hub_harness_stop must never be used on it */
	X509_free(e->ca);
	snprintf(p, sizeof(p), "%s/ca.pem", e->dir);
	e->ca = device_load_cert(p);
	/* The pfx role's public key, straight from the token. */
	snprintf(p, sizeof(p), "%s/pfx.der", e->tmp);
	if (env_sh("SOFTHSM2_CONF='%s/softhsm2.conf' pkcs11-tool --module "
	    "/usr/lib/softhsm/libsofthsm2.so --token-label certconn --read-object --type pubkey "
	    "--label pfx -o '%s' >/dev/null 2>&1", e->dir, p) != 0) {
		fprintf(stderr, "flows_env: cannot read the pfx public key from the token\n");
		goto out;
	}
	EVP_PKEY_free(e->pfx_pub);
	e->pfx_pub = device_load_pubkey(p);
	ret = e->ca != NULL && e->pfx_pub != NULL ? 0 : -1;
out:
	cJSON_Delete(j);
	return ret;
}

static int
env_dev(struct flows_env *e, const char *what)
{
	if (env_sh("'%s' dev %s --dir '%s' >> '%s/up.log' 2>&1", e->ctl, what, e->dir,
	    e->tmp) != 0) {
		fprintf(stderr, "flows_env: dev %s failed; its log:\n", what);
		(void)env_sh("tail -n 40 '%s/up.log' '%s/certconnd.log' >&2", e->tmp, e->dir);
		return -1;
	}
	return 0;
}

/* Objects merge member by member; anything else replaces. */
static void
merge(cJSON *dst, const cJSON *src)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, src) {
		cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, it->string);

		if (cJSON_IsObject(it) && cJSON_IsObject(d)) {
			merge(d, it);
			continue;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(dst, it->string);
		cJSON_AddItemToObject(dst, it->string, cJSON_Duplicate(it, 1));
	}
}

/* Merges patch into the config's section (NULL: the whole config) and restarts. */
static int
env_patch_at(struct flows_env *e, const char *section, const char *patch_text)
{
	char *s = (char *)device_slurp(e->cfg, NULL), *text;
	cJSON *j = s != NULL ? cJSON_Parse(s) : NULL, *patch = cJSON_Parse(patch_text), *at;
	FILE *f;

	free(s);
	at = section != NULL ? cJSON_GetObjectItem(j, section) : j;
	if (at == NULL || !cJSON_IsObject(patch)) {
		fprintf(stderr, "flows_env: no %s in %s or a bad patch\n", section ? section : "config",
		    e->cfg);
		cJSON_Delete(j);
		cJSON_Delete(patch);
		return -1;
	}
	merge(at, patch);
	cJSON_Delete(patch);
	text = cJSON_Print(j);
	cJSON_Delete(j);
	f = fopen(e->cfg, "w");
	if (f == NULL || text == NULL) {
		free(text);
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fputs(text, f);
	fclose(f);
	free(text);
	if (env_dev(e, "down") == -1 || env_dev(e, "up") == -1)
		return -1;
	return env_read(e);
}

int
flows_env_patch(struct flows_env *e, const char *net_patch)
{
	return env_patch_at(e, "net", net_patch);
}

int
flows_env_patch_root(struct flows_env *e, const char *patch)
{
	return env_patch_at(e, NULL, patch);
}

int
flows_env_up(struct flows_env *e, const char *net_patch)
{
	const char *bin = getenv("CERTCONNCTL");

	memset(e, 0, sizeof(*e));
	if (bin == NULL) {
		fprintf(stderr, "flows_env: CERTCONNCTL is not set (run through ctest)\n");
		return -1;
	}
	snprintf(e->ctl, sizeof(e->ctl), "%s", bin);
	snprintf(e->tmp, sizeof(e->tmp), "/tmp/certconn-flows.XXXXXX");
	if (mkdtemp(e->tmp) == NULL)
		return -1;
	/* net and keys run as their own users when we are root: they must pass through */
	chmod(e->tmp, 0755);
	snprintf(e->dir, sizeof(e->dir), "%s/dev", e->tmp);
	snprintf(e->cfg, sizeof(e->cfg), "%s/certconnd.json", e->dir);
	if (env_dev(e, "up") == -1 || env_read(e) == -1)
		return -1;
	if (net_patch != NULL)
		return flows_env_patch(e, net_patch);
	return 0;
}

void
flows_env_down(struct flows_env *e, bool print_logs)
{
	if (e->tmp[0] == '\0')
		return;
	if (print_logs) {
		(void)env_sh("echo '--- certconnd.log'; tail -30 '%s/certconnd.log'; "
		    "echo '--- admin.jsonl'; tail -20 '%s/log/admin.jsonl'; "
		    "echo '--- operational.jsonl'; tail -40 '%s/log/operational.jsonl'; "
		    "echo '--- hub.log'; grep -v ' debug: ' '%s/hub/hub.log' | tail -20", e->dir,
		    e->dir, e->dir, e->dir);
	}
	(void)env_sh("'%s' dev down --dir '%s' >/dev/null 2>&1", e->ctl, e->dir);
	(void)env_sh("rm -rf '%s'", e->tmp);
	X509_free(e->ca);
	EVP_PKEY_free(e->pfx_pub);
	e->ca = NULL;
	e->pfx_pub = NULL;
	e->tmp[0] = '\0';
}

int
flows_ctl(struct flows_env *e, char *out, size_t outlen, const char *fmt, ...)
{
	char args[2048], cmd[4096];
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' %s 2>>'%s/ctl.err'", e->ctl, e->cfg, args,
	    e->tmp);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	if (out != NULL) {
		out[0] = '\0';
		if (fgets(out, (int)outlen, p) != NULL)
			out[strcspn(out, "\n")] = '\0';
	}
	while (fgetc(p) != EOF)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
flows_pids(struct flows_env *e, pid_t *parent, pid_t *net, pid_t *keys)
{
	char cmd[1024], out[128] = "";
	FILE *p;
	long a = 0, b = 0, c = 0;

	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' status --json 2>/dev/null | python3 -c "
	    "'import json,sys; p=json.load(sys.stdin)[\"pids\"]; "
	    "print(p.get(\"parent\",0), p.get(\"net\",0), p.get(\"keys\",0))'", e->ctl, e->cfg);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	if (fgets(out, sizeof(out), p) == NULL)
		out[0] = '\0';
	pclose(p);
	if (sscanf(out, "%ld %ld %ld", &a, &b, &c) != 3)
		return -1;
	if (parent != NULL)
		*parent = (pid_t)a;
	if (net != NULL)
		*net = (pid_t)b;
	if (keys != NULL)
		*keys = (pid_t)c;
	return 0;
}

pid_t
flows_hub_pid(struct flows_env *e)
{
	char *s = env_text(e->dir, "hub/hub.pid");
	long pid = s != NULL ? strtol(s, NULL, 10) : 0;

	free(s);
	return pid > 1 && kill((pid_t)pid, 0) == 0 ? (pid_t)pid : 0;
}

int
flows_hub_stop(struct flows_env *e)
{
	pid_t pid = flows_hub_pid(e);

	if (pid == 0)
		return -1;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
		usleep(100000);
	return kill(pid, 0) == 0 ? -1 : 0;
}

int
flows_hub_start(struct flows_env *e)
{
	if (env_dev(e, "up") == -1)
		return -1;
	return env_read(e);
}

int
flows_queue(struct flows_env *e, const char *feature, const char *payload, char *id,
    size_t idlen)
{
	return hub_test_queue(&e->hub, "dev", feature, payload, id, idlen);
}

cJSON *
flows_request(struct flows_env *e, const char *id)
{
	struct hub_resp r;
	char path[256];
	cJSON *v = NULL;

	snprintf(path, sizeof(path), "requests/%s", id);
	if (hub_admin(&e->hub, "GET", path, NULL, &r) == 0 && r.status == 200)
		v = cJSON_DetachItemFromObject(r.json, "value");
	hub_resp_free(&r);
	return v;
}

static const char *
state_of(const cJSON *v)
{
	const cJSON *s = cJSON_GetObjectItem(v, "state");

	return cJSON_IsString(s) ? s->valuestring : "";
}

cJSON *
flows_wait(struct flows_env *e, const char *id, int timeout_s)
{
	for (int i = 0; i < timeout_s * 5; i++) {
		cJSON *v = flows_request(e, id);
		const char *st = state_of(v);

		if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0)
			return v;
		cJSON_Delete(v);
		usleep(200000);
	}
	fprintf(stderr, "flows_env: request %s did not finish in %d s\n", id, timeout_s);
	return flows_request(e, id);
}

int
flows_wait_state(struct flows_env *e, const char *id, const char *state, int timeout_ms)
{
	for (int i = 0; i < timeout_ms / 20; i++) {
		cJSON *v = flows_request(e, id);
		int ok = strcmp(state_of(v), state) == 0;
		int over = strcmp(state_of(v), "completed") == 0 || strcmp(state_of(v), "failed") == 0;

		cJSON_Delete(v);
		if (ok)
			return 0;
		if (over) /* it will never be in that state now */
			return -1;
		usleep(20000);
	}
	return -1;
}

/* Counts the matching event lines; *last gets the last one's details. */
static int
each_event(struct flows_env *e, const char *file, int id, const char *corr, cJSON **last)
{
	char p[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int n = 0;

	snprintf(p, sizeof(p), "%s/log/%s", e->dir, file);
	f = fopen(p, "r");
	if (f == NULL)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		cJSON *ev = cJSON_Parse(line), *i, *c, *r;

		i = cJSON_GetObjectItem(ev, "id");
		c = cJSON_GetObjectItem(ev, "correlationId");
		r = cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "details"), "requestId");
		/* the request's id is its correlation id (the flows also name it in details) */
		if (cJSON_IsNumber(i) && i->valueint == id && (corr == NULL ||
		    (cJSON_IsString(c) && strcmp(c->valuestring, corr) == 0) ||
		    (cJSON_IsString(r) && strcmp(r->valuestring, corr) == 0))) {
			n++;
			if (last != NULL) {
				cJSON_Delete(*last);
				*last = cJSON_DetachItemFromObject(ev, "details");
				if (*last == NULL)
					*last = cJSON_CreateObject();
			}
		}
		cJSON_Delete(ev);
	}
	free(line);
	fclose(f);
	return n;
}

int
flows_events(struct flows_env *e, const char *file, int id, const char *corr)
{
	return each_event(e, file, id, corr, NULL);
}

int
flows_wait_events(struct flows_env *e, const char *file, int id, const char *corr, int want,
    int timeout_ms)
{
	int n = 0;

	for (int i = 0; i <= timeout_ms / 100; i++) {
		n = each_event(e, file, id, corr, NULL);
		if (n >= want)
			return n;
		usleep(100000);
	}
	return n;
}

cJSON *
flows_event_detail(struct flows_env *e, const char *file, int id, const char *corr)
{
	cJSON *last = NULL;

	(void)each_event(e, file, id, corr, &last);
	return last;
}

int
flows_ca_count(struct flows_env *e, const char *needle)
{
	char cmd[2048], line[1024];
	FILE *p;
	int n = 0, st;

	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' ca list --limit 100000 2>>'%s/ctl.err'",
	    e->ctl, e->cfg, e->tmp);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	if (fgets(line, sizeof(line), p) == NULL) { /* the header line */
		pclose(p);
		return -1;
	}
	while (fgets(line, sizeof(line), p) != NULL)
		if (needle == NULL || strstr(line, needle) != NULL)
			n++;
	st = pclose(p);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? n : -1;
}

struct env_buf {
	uint8_t *p;
	size_t n;
};

static size_t
env_write(char *d, size_t size, size_t nmemb, void *arg)
{
	struct env_buf *b = arg;
	size_t add = size * nmemb;
	uint8_t *np;

	if (b->n + add > (8u << 20) || (np = realloc(b->p, b->n + add + 1)) == NULL)
		return 0;
	memcpy(np + b->n, d, add);
	b->p = np;
	b->n += add;
	return add;
}

X509_CRL *
flows_fetch_crl(struct flows_env *e, const char *name)
{
	CURL *c = curl_easy_init();
	struct env_buf b = { NULL, 0 };
	char url[512];
	long status = 0;
	X509_CRL *crl = NULL;
	const unsigned char *p;

	if (c == NULL)
		return NULL;
	snprintf(url, sizeof(url), "%s/crl/%s.crl", e->http, name);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, env_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200 &&
	    b.p != NULL) {
		p = b.p;
		crl = d2i_X509_CRL(NULL, &p, (long)b.n);
	}
	if (crl == NULL)
		fprintf(stderr, "flows_env: GET %s: HTTP %ld, %zu bytes, %s\n", url, status, b.n,
		    b.p != NULL ? "not a DER CRL" : "no body");
	free(b.p);
	curl_easy_cleanup(c);
	return crl;
}

bool
flows_crl_has(X509_CRL *crl, const char *serial_hex)
{
	STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
	BIGNUM *want = NULL;
	bool found = false;

	if (BN_hex2bn(&want, serial_hex) == 0)
		return false;
	for (int i = 0; i < sk_X509_REVOKED_num(rev) && !found; i++) {
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(
		    sk_X509_REVOKED_value(rev, i)), NULL);
		found = bn != NULL && BN_cmp(bn, want) == 0;
		BN_free(bn);
	}
	BN_free(want);
	return found;
}
