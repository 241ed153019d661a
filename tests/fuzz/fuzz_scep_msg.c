/*
 * libFuzzer: the PKIOperation parser (src/scep/scep_msg.c). Arbitrary bytes go through
 * scep_msg_parse (DER SignedData, signature, SCEP attributes, envelope algorithms); what
 * parses is decrypted with a fixed RA key (the seeds in corpus/fuzz_scep_msg are encrypted
 * to its certificate, so mutations reach the decryption and the contents), and the contents
 * are read as a PKCS#10 request (and its SMIMECapabilities extension), IssuerAndSubject and
 * IssuerAndSerialNumber; the reply cipher is chosen from what was read. The same bytes are
 * also read as the base64 of a GET request and as an SMIMECapabilities list on their own.
 * Seeds seed-07 and seed-08 carry SMIMECapabilities in the SignerInfo and in the PKCS#10.
 *
 * The RA key below exists for this harness only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certconn/scep.h"

static const char ra_key_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDGhj0UuLaf9ffG\n"
	"+eYRmajtmGLVPnCQsOBcolwcsH159cCHJHE+dYz0sNVU6hwauS2BWrR/s7y8HIFA\n"
	"KOSV7lsfQ7PLTplNchvQYX2De8QUTn6zNQ73+JR6O/uGoqyleR/lvIf9zncIpuuP\n"
	"6RPE1rB/Oh1sZsBW98T24I2Ji4yl3/asFH5WxOgpaSoJVWB4BqMU9gNXOhXfpSZ3\n"
	"7uKv6SOCOZYS5yt/dsvRHwxGgYXmVFLWaybNlkzAgYwDzn4PpnHiMs8KM9F63mfj\n"
	"HqXu0X8Oe1uRIpgZWllT+2u/tmvOlOx9JiStO5AzLOy6rmFl3ErOZC0fO6IS6QF2\n"
	"2hdNU/hNAgMBAAECggEABDTPbKs46VzoOKh4/19NWj1mk1ns6iU+l7qJRO1Yt0G6\n"
	"/Xy1mTXF5wsBIM5gtTs+XiraagiYTjcKEQkyG1rPG545sWwoqOCq+125b6oAE/sR\n"
	"dFbCiq6oZ1+dJcjiwL3Mgc0JEkUH4Msim2xm6BPcGPyq/MM/k4gmkvbb4Nxv/jVd\n"
	"7aqFf9tyb+O3bvU5+73QdIGg5dONbkVUhIHLeGybvVSSOuv9R8TcdR+kgjDwEgt3\n"
	"GIID4+cUK6Xvh+WBUh/FofkuN/w+9/QnJuqq2bFPqp1MwuJPT7PkcDi2rrZaYY55\n"
	"YpMnmsjZG6pDy3UMZOkCNXNIwj+2w7X9CoUfgyV8iQKBgQD23L2S15FLIPQ5Xaex\n"
	"rkHZyqUquiQp6bIKf5FZaXd6z6kpZPiKg0TODVCKQcAIHheVX0xXeSPBosmCqzra\n"
	"fPqZT4eQ8H+AoV+F4Ah/fvRDM/Qd2mjyZg+AlTizotJMirERti96tl1/cAQ6sRjC\n"
	"tjMsFJ723mVnB8WtrlCagsgtKQKBgQDN33MYt+MSBksAAHheB134EvoTeqJ+zkeG\n"
	"IWOze+y8TBBYH99hv3fuAT3iJayQc6+d7eO5ykpPAOCrnT6QBbH1mF9XweTPpyCf\n"
	"2DHNFCFhidC3X4pOsfrK9WVAL0JYCMCbPZebu9G/nEw1J1ds8nqAPp5pXHMqQ+PI\n"
	"snXY3D6yhQKBgQDIsWztlJNqoL/sY1eR/DlM9pKQygPcj0FPh6aDKlsYXPsJzCzD\n"
	"bzTgz7JKtGmKL+y8Y12NP87x/YYV1V9jgXe6bA2qp9sAmDEwhZJjFLNAb1xnaMkp\n"
	"SBASWT5fzF9sGtUZsSOof9pDYK4PiSq4Iag4jgsuaF/IA2mSacTd2LUlAQKBgQCg\n"
	"oA/QIGElRg2sUbGYQ404qa2+FvfDkjRR3alJd44MmBhEeZGzVU1AQG3FDXnnNqu1\n"
	"v87mvYNewqOIomYWvqrLoPf6o4hfz9jvfiHVDTjCPmG/QObLYaf4RKCcBINx5lpI\n"
	"hTTNyCvtoQgAjNJ0aXfUqYa1U/Fy74dApqS175lndQKBgCMK9LsK9u2pDginkquR\n"
	"rBLp4qwSz8gjZ/VT/Hlt1HvbLwFU8BvXktUirB2YZB5+/NE5PZvwDkJulnDYFo2s\n"
	"103lT974RmZwhm/FaxsyEIGaJiOjsJSfiz1+wWlzSuECfA0sg9SXgHqiJTr101p8\n"
	"R2X1NPtobdJoM/IThvDZaew9\n"
	"-----END PRIVATE KEY-----\n";
static const char ra_cert_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIDLDCCAhSgAwIBAgIUa/WeFL8JQrENRJsGDWM5OznvgkgwDQYJKoZIhvcNAQEL\n"
	"BQAwHjEcMBoGA1UEAwwTZnV6eiBSQSAodGVzdCBvbmx5KTAgFw0yNjExMjgxNzQx\n"
	"NDhaGA8yMTI2MTEwNDE3NDE0OFowHjEcMBoGA1UEAwwTZnV6eiBSQSAodGVzdCBv\n"
	"bmx5KTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAMaGPRS4tp/198b5\n"
	"5hGZqO2YYtU+cJCw4FyiXBywfXn1wIckcT51jPSw1VTqHBq5LYFatH+zvLwcgUAo\n"
	"5JXuWx9Ds8tOmU1yG9BhfYN7xBROfrM1Dvf4lHo7+4airKV5H+W8h/3Odwim64/p\n"
	"E8TWsH86HWxmwFb3xPbgjYmLjKXf9qwUflbE6ClpKglVYHgGoxT2A1c6Fd+lJnfu\n"
	"4q/pI4I5lhLnK392y9EfDEaBheZUUtZrJs2WTMCBjAPOfg+mceIyzwoz0XreZ+Me\n"
	"pe7Rfw57W5EimBlaWVP7a7+2a86U7H0mJK07kDMs7LquYWXcSs5kLR87ohLpAXba\n"
	"F01T+E0CAwEAAaNgMF4wHQYDVR0OBBYEFDH9S6Ej1Ij3ZK/bn92r5/tpvi05MB8G\n"
	"A1UdIwQYMBaAFDH9S6Ej1Ij3ZK/bn92r5/tpvi05MA8GA1UdEwEB/wQFMAMBAf8w\n"
	"CwYDVR0PBAQDAgWgMA0GCSqGSIb3DQEBCwUAA4IBAQDCxHiumtrsZVXzXgBfQ+iS\n"
	"QYF8Redg0UWIu1j4KQ8SN26gUTj3fRRneOA+W5wsZYC9mVjNP+0HQbk6qC/1bL/z\n"
	"4mUdKXJ1CH5PZ1MrcXS3yOx6evsEot/LCqDUZYYG57H70pD2xEekWucp7rMcOnQa\n"
	"7djAUNjeq5i8hLYbD9ynehqfcipcIhM6WiNWcC44tgAu6QgrXWXndyHBUyXx5zv+\n"
	"rDwaeTLcJlvM7+VatqYUX1ITZ/VsWKGRafsW1udIu7PIjMX6ucCh9LwMpbsTE3ug\n"
	"52jqfpPTUI2ltH8z2wEc+axGbaFnjGskvAkTCxDcV7mfwbSVelo1nk4XLNihZDjb\n"
	"-----END CERTIFICATE-----\n";

static EVP_PKEY *ra_key;
static X509 *ra_cert;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
init(void)
{
	BIO *b = BIO_new_mem_buf(ra_key_pem, -1);

	ra_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(ra_cert_pem, -1);
	ra_cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (ra_key == NULL || ra_cert == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scep_msg m;
	char why[512];
	int fail;
	uint8_t *der = NULL;
	size_t len = 0;

	if (ra_key == NULL)
		init();
	unsigned caps = 0, csr_caps = 0;

	if (scep_base64_decode((const char *)data, size, &der, &len, SCEP_MSG_MAX) == 0)
		free(der);
	if (scep_smimecaps_parse(data, size, &caps) == -1 && caps != 0)
		abort(); /* a malformed list advertises nothing */
	if (scep_msg_parse(data, size, &m, &fail, why, sizeof(why)) == 0) {
		if (m.smime_caps_found != 1 && m.smime_caps != 0)
			abort();
		if (scep_msg_decrypt(&m, ra_key, ra_cert, SCEP_CIPHER_AES | SCEP_CIPHER_DES3, NULL,
		    &fail, why, sizeof(why)) == 0) {
			const unsigned char *p = m.content;
			X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)m.content_len);
			X509_NAME *a = NULL, *b = NULL;
			ASN1_INTEGER *sn = NULL;

			if (req != NULL && scep_csr_smimecaps(req, &csr_caps) != 1 && csr_caps != 0)
				abort();
			X509_REQ_free(req);
			(void)scep_reply_cipher(m.cipher_nid, m.smime_caps | csr_caps,
			    SCEP_CIPHER_AES | SCEP_CIPHER_DES3);
			if (scep_parse_issuer_subject(m.content, m.content_len, &a, &b) == 0) {
				X509_NAME_free(a);
				X509_NAME_free(b);
			}
			if (scep_parse_issuer_serial(m.content, m.content_len, &a, &sn) == 0) {
				X509_NAME_free(a);
				ASN1_INTEGER_free(sn);
			}
		}
		scep_msg_free(&m);
	} else if (fail != SCEP_FAIL_NONE && m.txid[0] == '\0') {
		abort(); /* a failure CertRep needs the transactionID to answer to */
	}
	scep_msg_free(&m);
	ERR_clear_error();
	return 0;
}
