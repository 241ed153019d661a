/*
 * SCEP (RFC 8894) in net: the message layer (parse a pkiMessage, decrypt its envelope,
 * build CertRep and degenerate SignedData) and the server (operations, profiles,
 * challenges, the local CA behind them) without the HTTP transport, which src/scep/scep_net.c
 * adds on libevent's evhttp. Everything is built on OpenSSL's CMS and PKCS#7 APIs; the SCEP
 * attributes are signed attributes with their OIDs.
 *
 * Error conventions: the message layer returns 0/-1 and, on -1, the SCEP failInfo to
 * answer with (or SCEP_FAIL_NONE when the message is not even a readable pkiMessage, which is
 * answered with HTTP 400) and a reason text. The server never fails: every request gets an
 * HTTP answer.
 */
#ifndef CERTCONN_SCEP_H
#define CERTCONN_SCEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>
#include <openssl/x509.h>

struct cc_ca;
struct cc_config_scep;

/* ---- message layer ---- */

enum scep_msg_type {
	SCEP_CERTREP = 3,
	SCEP_RENEWALREQ = 17,
	SCEP_PKCSREQ = 19,
	SCEP_CERTPOLL = 20,          /* GetCertInitial */
	SCEP_GETCERT = 21,
	SCEP_GETCRL = 22,
};

enum scep_status {
	SCEP_SUCCESS = 0,
	SCEP_FAILURE = 2,
	SCEP_PENDING = 3,
};

enum scep_fail {
	SCEP_FAIL_NONE = -1,         /* not a failure CertRep: HTTP 400 */
	SCEP_FAIL_BADALG = 0,
	SCEP_FAIL_BADMESSAGECHECK = 1,
	SCEP_FAIL_BADREQUEST = 2,
	SCEP_FAIL_BADTIME = 3,
	SCEP_FAIL_BADCERTID = 4,
};

#define SCEP_NONCE_LEN 16
#define SCEP_TXID_MAX 128            /* bytes of a transactionID */
#define SCEP_MSG_MAX (1u << 20)      /* largest pkiMessage parsed */

/* Content-encryption ciphers a profile accepts (bits). */
#define SCEP_CIPHER_AES 0x01u        /* AES-128/192/256-CBC */
#define SCEP_CIPHER_DES3 0x02u       /* DES-EDE3-CBC, only when a profile enables it */

/*
 * Content-encryption ciphers a requester says it supports, from an SMIMECapabilities list
 * (RFC 8551 section 2.5.2, OID 1.2.840.113549.1.9.15): a signed attribute of the pkiMessage's
 * SignerInfo, or an extension in the PKCS#10's extensionRequest (where Windows puts it).
 * Only the ciphers a CertRep may use are kept; any other capability is skipped.
 */
#define SCEP_CAP_AES128 0x01u
#define SCEP_CAP_AES192 0x02u
#define SCEP_CAP_AES256 0x04u
#define SCEP_CAP_DES3 0x08u
#define SCEP_SMIMECAPS_MAX 64        /* capabilities in one list; more is malformed */

/* A request, parsed and verified (scep_msg_parse), then decrypted (scep_msg_decrypt). */
struct scep_msg {
	int type;                    /* enum scep_msg_type */
	char txid[SCEP_TXID_MAX + 1];
	uint8_t nonce[SCEP_NONCE_LEN];
	X509 *signer;                /* the signer's certificate (owned) */
	char md[16];                 /* the signer's digest: "SHA1", "SHA256", "SHA512"... */
	time_t signing_time;         /* 0 when the message has no signingTime */
	uint8_t *envelope;           /* the signed content: DER EnvelopedData (owned) */
	size_t envelope_len;
	int cipher_nid;              /* the envelope's content-encryption algorithm */
	unsigned smime_caps;         /* SCEP_CAP_* of the SignerInfo's SMIMECapabilities */
	int smime_caps_found;        /* 1 read, 0 absent, -1 malformed (then smime_caps is 0) */
	uint8_t *content;            /* after scep_msg_decrypt (owned, wiped on free) */
	size_t content_len;
};

/*
 * Parses a pkiMessage (DER SignedData), verifies its signature with the certificate it
 * carries (the signer's key, not its chain: that is the server's business), reads the SCEP
 * attributes and the envelope's algorithms. On -1, *fail is SCEP_FAIL_NONE when the message
 * is unreadable (no transactionID or senderNonce to answer to), else the failInfo for a
 * FAILURE CertRep to m (whose txid and nonce are then filled).
 */
int scep_msg_parse(const uint8_t *der, size_t len, struct scep_msg *m, int *fail,
    char *why, size_t whylen);
/*
 * Decrypts m's envelope with the RA key (keyref: the private operation runs in keys) whose
 * certificate is ra_cert: RSA PKCS#1 v1.5 or OAEP key transport, content ciphers as allowed.
 * -1 with *fail (badAlg for a cipher not allowed, badMessageCheck for anything else).
 */
int scep_msg_decrypt(struct scep_msg *m, EVP_PKEY *ra_key, X509 *ra_cert,
    unsigned ciphers, OSSL_LIB_CTX *libctx, int *fail, char *why, size_t whylen);
void scep_msg_free(struct scep_msg *m);

/*
 * A DER SMIMECapabilities (SEQUENCE OF SMIMECapability, read as X509_ALGORS) into
 * SCEP_CAP_* bits. 0, or -1 when it is malformed (not DER, trailing bytes, more than
 * SCEP_SMIMECAPS_MAX entries; *caps is then 0).
 */
int scep_smimecaps_parse(const uint8_t *der, size_t len, unsigned *caps);
/* The SMIMECapabilities extension of csr's extensionRequest: 1 read (*caps), 0 none,
 * -1 malformed (*caps 0). */
int scep_csr_smimecaps(const X509_REQ *csr, unsigned *caps);
/*
 * The content cipher of a SUCCESS CertRep: the strongest of AES-256, AES-192, AES-128 and
 * DES-EDE3 (only when allowed has SCEP_CIPHER_DES3) that caps advertises and allowed
 * (SCEP_CIPHER_*) accepts, unless the request's own cipher req_nid is stronger; req_nid when
 * caps names none of them (it is the one cipher known to work for the requester).
 */
int scep_reply_cipher(int req_nid, unsigned caps, unsigned allowed);

/* A CertRep to build. */
struct scep_reply {
	int status;                  /* enum scep_status */
	int fail_info;               /* FAILURE only */
	const char *fail_text;       /* FAILURE: failInfoText (RFC 8894), may be NULL */
	const char *txid;
	const uint8_t *recipient_nonce; /* the request's senderNonce */
	STACK_OF(X509) *certs;       /* SUCCESS: the certificates to hand out */
	X509_CRL *crl;               /* SUCCESS of GetCRL */
	X509 *recipient;             /* SUCCESS: encrypt to this (the requester's signer) */
	int cipher_nid;              /* SUCCESS: content encryption (scep_reply_cipher) */
	const char *md;              /* signer digest, default SHA256 */
};

/* Signs a CertRep with the RA's signing key and certificate. *der malloc'd. 0/-1. */
int scep_certrep_build(const struct scep_reply *r, X509 *ra_cert, EVP_PKEY *ra_key,
    OSSL_LIB_CTX *libctx, uint8_t **der, size_t *len, char *why, size_t whylen);
/* A degenerate (certificates-only) SignedData of certs and crl (either may be NULL). */
int scep_degenerate(STACK_OF(X509) *certs, X509_CRL *crl, uint8_t **der, size_t *len);
/* Signs content (a degenerate SignedData) with the RA key: GetNextCACert's reply. */
int scep_signed_data(const uint8_t *content, size_t len, X509 *ra_cert, EVP_PKEY *ra_key,
    OSSL_LIB_CTX *libctx, uint8_t **der, size_t *outlen);

/* IssuerAndSubject (CertPoll) and IssuerAndSerialNumber (GetCert, GetCRL). 0/-1. */
int scep_parse_issuer_subject(const uint8_t *der, size_t len, X509_NAME **issuer,
    X509_NAME **subject);
int scep_parse_issuer_serial(const uint8_t *der, size_t len, X509_NAME **issuer,
    ASN1_INTEGER **serial);

/* Base64 (newlines and a '+' turned into ' ' by URL decoding tolerated) -> DER. 0/-1. */
int scep_base64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen,
    size_t max);

const char *scep_msg_type_name(int type);
const char *scep_fail_name(int fail);

/* ---- SCEP state in the CA's store (src/scep/scep_store.c; certconnctl uses it too) ---- */

enum scep_txn_state {
	SCEP_TXN_PENDING = 0,        /* waiting for `certconnctl scep approve|reject` */
	SCEP_TXN_APPROVED = 1,       /* approved: issued at the next poll */
	SCEP_TXN_REJECTED = 2,
	SCEP_TXN_ISSUED = 3,         /* handed out (serial set) */
	SCEP_TXN_FAILED = 4,
	SCEP_TXN_NOTIFYING = 5,      /* issued, withheld until the service acknowledges */
};

struct scep_txn {
	char txid[SCEP_TXID_MAX + 1];
	char profile[32];
	int state;                   /* enum scep_txn_state */
	char subject[512];           /* the request's subject, RFC 2253 */
	uint8_t spki[32];            /* SHA-256 of the request's SubjectPublicKeyInfo */
	uint8_t signer_spki[32];     /* SHA-256 of the signer's (differs for a renewal) */
	uint8_t *csr;                /* DER (owned by scep_txn_get's caller: free) */
	size_t csr_len;
	time_t created, updated;
	char serial[48];             /* when issued */
	char reason[256];            /* when rejected or failed */
};

const char *scep_txn_state_name(int state);
/* 1 found, 0 not found, -1 error (err). */
int scep_txn_get(struct cc_ca *ca, const char *profile, const char *txid, struct scep_txn *t,
    char *err, size_t errlen);
/* Finds a transaction by id in any profile: 1 found (exactly one), 0 none, -1 error or
 * ambiguous (err says which). */
int scep_txn_find(struct cc_ca *ca, const char *txid, struct scep_txn *t, char *err,
    size_t errlen);
/* A new transaction; replace: overwrite one with the same profile and txid (a renewal). */
int scep_txn_insert(struct cc_ca *ca, const struct scep_txn *t, bool replace, char *err,
    size_t errlen);
/*
 * Moves a transaction to state (with serial and reason, each may be NULL) when it is in
 * state from (-1: any). 1 moved, 0 not in state from (or absent), -1 error.
 */
int scep_txn_move(struct cc_ca *ca, const char *profile, const char *txid, int from,
    int state, const char *serial, const char *reason, char *err, size_t errlen);
typedef int (*scep_txn_fn)(const struct scep_txn *t, void *arg);
/* Each transaction in state (-1: all), newest first, csr not filled. 0/-1. */
int scep_txn_list(struct cc_ca *ca, int state, scep_txn_fn fn, void *arg, char *err,
    size_t errlen);

/* 0 when nonce was not seen within window_s (it is recorded now), 1 when it was, -1 error. */
int scep_nonce_check(struct cc_ca *ca, const uint8_t nonce[SCEP_NONCE_LEN], time_t now,
    uint32_t window_s);

/*
 * One-time challenges: a random password (32 hex digits) for profile, valid ttl_s seconds,
 * optionally only for requests whose subject is subject ("CN=...,O=..."). Only its SHA-256
 * is stored. 0/-1.
 */
#define SCEP_CHALLENGE_LEN 32
int scep_challenge_new(struct cc_ca *ca, const char *profile, const char *subject,
    uint32_t ttl_s, time_t now, char out[SCEP_CHALLENGE_LEN + 1], char *err, size_t errlen);
/*
 * Uses up a challenge for a request of profile with subject req_subject and transaction
 * txid: 0 when it was valid (it can never be used again), -1 with the reason in err (no
 * such challenge, already used, expired, another profile, subject mismatch).
 */
int scep_challenge_consume(struct cc_ca *ca, const char *profile, const char *challenge,
    const X509_NAME *req_subject, const char *txid, time_t now, char *err, size_t errlen);

/* ---- the server ---- */

struct scep_server;

/*
 * Where the RA keys come from: in net, keyref_load_key (the keys stay in the token); in
 * tests, keys in memory. Returns a key reference and, when the role has one, its
 * certificate in *cert (else NULL); NULL when the role is unavailable.
 */
typedef EVP_PKEY *(*scep_key_loader)(void *arg, const char *role, X509 **cert);

struct scep_server_opts {
	const struct cc_config_scep *conf;  /* borrowed for the server's life */
	struct cc_ca *ca;                   /* borrowed */
	STACK_OF(X509) *ca_chain;           /* issuers above the CA (borrowed), or NULL */
	STACK_OF(X509) *next_ca;            /* GetNextCACert's certificates, or NULL */
	scep_key_loader load_key;
	void *load_key_arg;
	OSSL_LIB_CTX *libctx;               /* for signing and decryption */
	const char *state_dir;              /* RA certificates are kept here */
	const char *ra_subject;             /* subject of RA certificates the CA issues */
	uint32_t ra_validity_days;
	const char *outbox_dir;             /* service notifications; NULL: <state_dir>/outbox */
};

/* Loads the RA keys of every profile and makes sure each has a certificate. 0/-1 with err. */
int scep_server_new(const struct scep_server_opts *o, struct scep_server **out, char *err,
    size_t errlen);
void scep_server_free(struct scep_server *s);

struct scep_http_req {
	bool post;                   /* POST, else GET */
	const char *path;            /* "/scep", "/scep/<profile>", "/cgi-bin/pkiclient.exe" */
	const char *operation;       /* the decoded operation parameter, or NULL */
	const char *message;         /* the decoded message parameter (GET), or NULL */
	const uint8_t *body;         /* POST body */
	size_t body_len;
	const char *peer;            /* "addr:port" for events, or NULL */
};

struct scep_http_resp {
	int status;                  /* HTTP status */
	char content_type[64];
	uint8_t *body;               /* malloc'd; free with scep_http_resp_free */
	size_t body_len;
};

/* Answers one request (any thread). Never fails: resp always gets an HTTP answer. */
void scep_server_handle(struct scep_server *s, const struct scep_http_req *req,
    struct scep_http_resp *resp);
void scep_http_resp_free(struct scep_http_resp *r);

/* Periodic work (any thread; net's timer): CRL refresh, outbox retries. */
void scep_server_tick(struct scep_server *s, time_t now);

/* The GetCACaps text of a profile (for tests and docs); NULL for an unknown profile. */
const char *scep_server_caps(struct scep_server *s, const char *profile);

#endif
