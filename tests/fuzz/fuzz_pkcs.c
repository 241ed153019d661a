/*
 * libFuzzer: cc_pkcs's parsers of outside input. The first byte picks the target, the rest
 * is the input:
 *   0  pkcs_pfx_open (password "fuzz"; the seeds are PFX files under it, AES and legacy,
 *      so mutations reach the MAC, the bags and the legacy-provider retry)
 *   1  pkcs_envelope_open with the fixed key below (the seeds are envelopes to it, so
 *      mutations reach the recipient choice, the key transport and the content)
 *   2  pkcs_pfx_password_decrypt: the rest as base64 text, with the fixed key, scheme by
 *      the second byte
 *   3  pkcs_device_from_b64: the rest as base64 of a public key or (odd length) a
 *      certificate, then an envelope sealed to it
 * Every call must return a pkcs_err, fill the message and leave OpenSSL's error queue empty.
 *
 * The RSA key below exists for this harness only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certconn/pkcs.h"

static const char key_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDLowaWrCO4iDoQ\n"
	"x0nk2aJWlktuzUuSGhQUrPmxZIVSyDEwuyRW+z/P3QceWvnhD57CMI1TeH0KcGk+\n"
	"rdgXLNjORzGf0Gvrs+yx/AB9Of7YH/aEs6FSrn5fpDYTvcZmsKxOjMS7jZ5vAW8e\n"
	"bquRlbL4V4TGRfAgzz1j6ItmD++r4reQsJn0JBGiYRK84E1BLxDi74finBkKAc+8\n"
	"Wr9ptQQCWPj5X8O+CjtAXCTMw4Se/AEfb5lucbydohm9nkLkCLaa1yMiRFwi6+Wk\n"
	"He3CA4dPtpodD90WaerP1RoXItLA1zNe82bWkNqJxqskxFYdVr9ufVN9XPR5rfc8\n"
	"J6PILCBRAgMBAAECggEAKrfERg9OXwOUyrhDtBJDj85vfIrsc3WtCLlQl/nyTe9Z\n"
	"AlP/x49lT4GaYK/NA313XF07CGuaL3ptWYy2bAYoZP1iV5gtS4CvApdOsvZbk5MA\n"
	"782O5f1c3UthXLrOx/P/8WpuSrnmpnqyiLvGmf/BT39shvtc6EURJ8g8leh56qCA\n"
	"vZ5Ml58VFSJt4JHXxQsTZ2JIy79RqeLpx2TPzIg7s6gxKa5Q8qA8ldUvkKNxvuty\n"
	"d54j/XtE8eu6Sn2juvmOEmgawxk7c76QUycwjbn8Gqpn0NsozQZSOIhGegMVIgQM\n"
	"oM1IeoQ4HBpkD017lN0NfXkjnvAwLKdKyizz3pkuUQKBgQD1hGKQORZhdpTBPqRf\n"
	"5SofjhPR3XIpEJPnSqyqYiAzBoON1pJqs4skhrmvZ/tV9OXknRMsrhJVIIxp4fUO\n"
	"Lg1Fzr4K1PbbXHugp/PzDWLR/BL2P9PnxyFOgPZg0JKDDfK7m31Ete6DsXZ315IS\n"
	"YzzWk0s/yDKsfHNyK+TD7Cu+RwKBgQDUVN6k2Butj2RIf82vaO0skxhWWG8uS2zM\n"
	"Bdqjasr2Jy9hHsorqbhhnffdfNvNMiVHuiNNn9ZPL0+0qH32zbfwY2h4/xhZR9p7\n"
	"U3e+4NLgSqeKoMXL5LbJKyVaRDnHAEJEk9S0HnYMDrbV8S4wUUqA55XdVU7xkpP8\n"
	"IqnY3cUApwKBgDLKnnFjvgOPupp30R2dlSdOBz+lZlakfVSeGDZvcmXb9R9Ewqmc\n"
	"Vy7JSGTHSDGyJlUzQaI+qMA/qYzGGCJE2K4WZS5sfF1JNrI3zLn9jPIQCgQzlC0g\n"
	"/vz0pQPGYmkGW68ALdwnHx7TecS1LhzrtsxVUH3zdrhETsXR2tPFag9FAoGANYaj\n"
	"jbiw2YLhS+lz53ky+N6n7vRiKrB238PGBxYfzge4yOnjGziws2MIHfygyEyQ21EQ\n"
	"Hzxg4RtTI36qKnJXoTDeIEpmT/NuH1K+SA8S+dm3/Jlk425nqbTHuMakLgdhrTn7\n"
	"D+Dx7z4yVyJye1myx2YaAG7F9N33kkMGwBW/2NcCgYBDNXp2ZtY+570XXi1vifhG\n"
	"ed2rhYEyfzbHV8ov4rBIoBJRwnxT3Da7ko2AzyPTlemWFQLppH+3f7MjMp02U4Z3\n"
	"q4XA3AhF4zTy9p83UnW60XGb7ipQ412j0+O3UyAoeYQe0hbkpswVWC+m7aOiXVSI\n"
	"jGZPzVW8rCo0/7d8cL5cow==\n"
	"-----END PRIVATE KEY-----\n"
	;

static EVP_PKEY *key;

static void
check(enum pkcs_err e, const char *err)
{
	if (e != PKCS_OK && err[0] == '\0')
		abort();
	if ((unsigned)e > PKCS_E_NOMEM)
		abort();
	if (ERR_peek_error() != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512] = "";
	enum pkcs_err e;

	if (key == NULL) {
		BIO *b = BIO_new_mem_buf(key_pem, -1);

		key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
		if (key == NULL)
			abort();
	}
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0: {
		EVP_PKEY *k;
		X509 *c;
		STACK_OF(X509) *chain;

		e = pkcs_pfx_open(NULL, data + 1, size - 1, "fuzz", &k, &c, &chain, err,
		    sizeof(err));
		check(e, err);
		if (e == PKCS_OK && (k == NULL || c == NULL || chain == NULL))
			abort();
		EVP_PKEY_free(k);
		X509_free(c);
		sk_X509_pop_free(chain, X509_free);
		break;
	}
	case 1: {
		uint8_t *plain;
		size_t plain_len;

		e = pkcs_envelope_open(NULL, data + 1, size - 1, key, NULL, &plain, &plain_len,
		    err, sizeof(err));
		check(e, err);
		pkcs_buf_free(plain, plain_len);
		break;
	}
	case 2: {
		static const char *schemes[] = { "OaepSha512", "OaepSha256", "OaepSha384", "x" };
		char *text, *pw;
		size_t n;

		if (size < 2)
			return 0;
		n = size - 2;
		text = malloc(n + 1);
		if (text == NULL)
			return 0;
		memcpy(text, data + 2, n);
		text[n] = '\0';
		e = pkcs_pfx_password_decrypt(NULL, key, text, schemes[data[1] & 3], &pw, err,
		    sizeof(err));
		check(e, err);
		if (e == PKCS_OK && (pw == NULL || pw[0] == '\0'))
			abort();
		pkcs_secret_free(pw);
		free(text);
		break;
	}
	case 3: {
		struct pkcs_device d;
		char *text;
		size_t n = size - 1;

		text = malloc(n + 1);
		if (text == NULL)
			return 0;
		memcpy(text, data + 1, n);
		text[n] = '\0';
		e = pkcs_device_from_b64(NULL, n % 2 ? NULL : text, n % 2 ? text : NULL, &d, err,
		    sizeof(err));
		check(e, err);
		if (e == PKCS_OK) {
			uint8_t *cms;
			size_t cms_len;

			e = pkcs_envelope_seal(NULL, (const uint8_t *)"x", 1, &d, &cms, &cms_len, err,
			    sizeof(err));
			check(e, err);
			pkcs_buf_free(cms, cms_len);
		}
		pkcs_device_clear(&d);
		free(text);
		break;
	}
	}
	return 0;
}
