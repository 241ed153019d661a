/*
 * The test suite's SCEP client (RFC 8894), built on OpenSSL's CMS API and libcurl, written
 * independently of the server in src/scep so that each checks the other. It also checks
 * itself against micromdm/scep's server where that is available.
 *
 * Helpers for keys, requests and self-signed certificates come first; then the client:
 * GetCACaps, GetCACert, GetNextCACert, and PKIOperation (PKCSReq, RenewalReq, CertPoll,
 * GetCert, GetCRL) by POST or GET, with every knob a test needs to build bad messages.
 *
 * Error convention: 0/-1 (or NULL) with a line on stderr; a SCEP FAILURE or PENDING reply is
 * not an error of the client (see struct sc_reply).
 */
#ifndef CERTCONN_SCEP_CLIENT_H
#define CERTCONN_SCEP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---- keys, requests, certificates ---- */

EVP_PKEY *sc_key_rsa(int bits);
EVP_PKEY *sc_key_ec(const char *curve);   /* "P-256", "P-384", "P-521" */

/* "CN=dev1,O=Example" (',' separates attributes; no escaping). */
X509_NAME *sc_name(const char *text);

/*
 * A PKCS#10 request signed with SHA-256. challenge may be NULL; sans is NULL or names
 * separated by '|': "DNS:a.example.com|IP:10.0.0.1|URI:tag:...|email:a@b.c".
 */
X509_REQ *sc_csr(EVP_PKEY *k, const char *subject, const char *challenge, const char *sans);
/* The same with an SMIMECapabilities extension (value caps, any bytes) in the
 * extensionRequest, as Windows clients send it; caps NULL: none. */
X509_REQ *sc_csr_ex(EVP_PKEY *k, const char *subject, const char *challenge, const char *sans,
    const uint8_t *caps, size_t caps_len);
/*
 * DER SMIMECapabilities (RFC 8551 2.5.2) naming ciphers, separated by ',': OpenSSL names or
 * OIDs ("AES-256-CBC,DES-EDE3-CBC,1.2.840.113549.3.2"), each without parameters. *der
 * malloc'd. 0/-1.
 */
int sc_smimecaps_der(const char *ciphers, uint8_t **der, size_t *len);
/* A self-signed certificate for k (the SCEP requester's signer before it has one). */
X509 *sc_selfsigned(EVP_PKEY *k, const char *subject, int days);
/* DER of a request (malloc'd). */
int sc_csr_der(X509_REQ *r, uint8_t **der, size_t *len);

/* ---- the client ---- */

#define SC_MSG_CERTREP 3
#define SC_MSG_RENEWALREQ 17
#define SC_MSG_PKCSREQ 19
#define SC_MSG_CERTPOLL 20
#define SC_MSG_GETCERT 21
#define SC_MSG_GETCRL 22

#define SC_STATUS_SUCCESS 0
#define SC_STATUS_FAILURE 2
#define SC_STATUS_PENDING 3

#define SC_FAIL_BADALG 0
#define SC_FAIL_BADMESSAGECHECK 1
#define SC_FAIL_BADREQUEST 2
#define SC_FAIL_BADTIME 3
#define SC_FAIL_BADCERTID 4

struct sc_reply;

struct sc_client {
	char url[512];             /* http://host:port/scep or .../scep/<profile> */
	STACK_OF(X509) *ca_certs;  /* from GetCACert */
	X509 *ra_sign;             /* the RA's signing certificate (digitalSignature) */
	X509 *ra_enc;              /* the RA's encryption certificate (keyEncipherment) */
	X509 *ca;                  /* the issuing CA (a certificate with CA:TRUE) */
	char caps[1024];           /* GetCACaps, one capability a line */
	/* How messages are built (defaults from sc_client_init). */
	const char *cipher;        /* content encryption: "AES-256-CBC" (default),
	                            * "AES-128-CBC", "DES-EDE3-CBC", "DES-CBC" */
	const char *md;            /* signer digest: "SHA256" (default), "SHA1", "SHA512" */
	bool oaep;                 /* RSA-OAEP key transport instead of PKCS#1 v1.5 */
	const char *smime_caps;    /* NULL: no SMIMECapabilities; else the ciphers (as for
	                            * sc_smimecaps_der) in a signed attribute of the request */
	bool use_get;              /* PKIOperation by GET ?message=base64 */
	bool accept_des_reply;     /* decrypt a CertRep whose envelope is single DES (loads
	                            * OpenSSL's legacy provider): micromdm/scep 2.1.0 answers so
	                            * whatever the caps say; otherwise such a reply is refused */
	long timeout_s;            /* HTTP timeout, default 30 */
	/* Instead of HTTP (unit tests drive a server in-process): called with the URL (query
	 * included) and the POST body (NULL for GET); fills http_status, content_type, body. */
	int (*transport)(void *arg, const char *url, const uint8_t *body, size_t len,
	    struct sc_reply *r);
	void *transport_arg;
};

struct sc_reply {
	long http_status;
	char content_type[128];
	uint8_t *body;             /* the HTTP body (malloc'd) */
	size_t body_len;
	char reply_cipher[32];     /* SUCCESS: content encryption of the CertRep's envelope,
	                            * OpenSSL's short name ("AES-256-CBC", "DES-CBC"), else "" */
	/* A CertRep (when http_status is 200 and the body parsed) */
	bool certrep;
	bool signature_ok;         /* signed by the RA's signing certificate, verified */
	int message_type;
	int pki_status;            /* SC_STATUS_* */
	int fail_info;             /* SC_FAIL_*, -1 when absent */
	char fail_text[256];       /* failInfoText, "" when absent */
	char txid[256];
	uint8_t sender_nonce[16];
	uint8_t recipient_nonce[16];
	size_t recipient_nonce_len;
	STACK_OF(X509) *certs;     /* SUCCESS: the degenerate SignedData's certificates */
	X509 *cert;                /* SUCCESS of a request: the certificate for our key */
	X509_CRL *crl;             /* SUCCESS of GetCRL */
};

void sc_client_init(struct sc_client *c, const char *url);
void sc_client_free(struct sc_client *c);
void sc_reply_free(struct sc_reply *r);

/* Plain HTTP through libcurl: GET when body is NULL. 0 when an HTTP answer came. */
int sc_http(const char *url, const uint8_t *body, size_t len, long timeout_s,
    struct sc_reply *r);

/* GetCACaps into c->caps; 0 when HTTP 200. */
int sc_get_caps(struct sc_client *c);
/* GetCACert: fills ca_certs, ra_sign, ra_enc, ca. 0/-1. */
int sc_get_ca_cert(struct sc_client *c);
/* GetNextCACert: the reply's certificates in r->certs, when it is signed by c->ra_sign or
 * c->ca (then signature_ok); 0 when an HTTP answer came. */
int sc_get_next_ca_cert(struct sc_client *c, struct sc_reply *r);

/* One PKIOperation, with knobs for bad messages. */
struct sc_req {
	int message_type;          /* SC_MSG_* */
	const char *txid;          /* NULL: hex SHA-256 of the signer's public key */
	const uint8_t *nonce;      /* 16 bytes; NULL: random (the one used is copied out) */
	uint8_t nonce_used[16];
	EVP_PKEY *key;             /* the signer's key */
	X509 *cert;                /* the signer's certificate (self-signed or the old one) */
	const uint8_t *content;    /* the message data, enveloped to the RA */
	size_t content_len;
	X509 *recipient;           /* NULL: c->ra_enc */
	bool break_signature;      /* flip a bit of the signature */
	bool no_envelope;          /* send the content unencrypted */
	time_t signing_time;       /* 0: now */
	bool truncate_base64;      /* GET only: drop the last quarter of the base64 */
	size_t pad_to;             /* POST only: pad the body with zeros to this size */
	const uint8_t *smime_caps_der; /* the SMIMECapabilities attribute's value as it is
	                            * (a SEQUENCE's whole encoding), instead of c->smime_caps */
	size_t smime_caps_der_len;
};

/* *req cleared and made a PKCSReq of csr_der (borrowed until it is sent), signed by key and
 * cert; the caller sets any other field after. */
void sc_req_pkcsreq(struct sc_req *req, EVP_PKEY *key, X509 *cert, const uint8_t *csr_der,
    size_t csr_len);

/* Sends req and parses the CertRep (decrypting with req->key). 0 when an HTTP answer came. */
int sc_pkioperation(struct sc_client *c, struct sc_req *req, struct sc_reply *r);

/* Reads the CertRep in r->body (http_status 200, content type application/x-pki-message),
 * decrypting with req->key and req->cert; fills the rest of r. */
void sc_parse_certrep(struct sc_client *c, struct sc_req *req, struct sc_reply *r);

/* The common ones. txid NULL: the default. */
int sc_pkcsreq(struct sc_client *c, EVP_PKEY *k, X509 *signer, X509_REQ *csr,
    const char *txid, struct sc_reply *r);
int sc_renewalreq(struct sc_client *c, EVP_PKEY *k, X509 *old, X509_REQ *csr,
    const char *txid, struct sc_reply *r);
/* CertPoll (GetCertInitial): IssuerAndSubject of the CA and the request's subject. */
int sc_certpoll(struct sc_client *c, EVP_PKEY *k, X509 *signer, const X509_NAME *subject,
    const char *txid, struct sc_reply *r);
/* GetCert / GetCRL by IssuerAndSerialNumber (the CA's name and serial). */
int sc_getcert(struct sc_client *c, EVP_PKEY *k, X509 *signer, const ASN1_INTEGER *serial,
    struct sc_reply *r);
int sc_getcrl(struct sc_client *c, EVP_PKEY *k, X509 *signer, const ASN1_INTEGER *serial,
    struct sc_reply *r);

/* Hex SHA-256 of k's SubjectPublicKeyInfo (a transactionID), into buf (65 bytes). */
void sc_txid(EVP_PKEY *k, char buf[65]);

#endif
