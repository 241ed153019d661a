/*
 * Issuance policy: what a certificate issued for a request may contain, per profile. A
 * profile is written in the config (net.scep.profiles.<name>.issuance, see certconnd.json(5)
 * and docs/scep.md) and applied to a PKCS#10 request by cc_issuance_apply, which either
 * refuses the request with a reason or says exactly what the certificate gets: subject,
 * subjectAltName, keyUsage, extendedKeyUsage and validity. The CA (src/ca) adds what is the
 * CA's business (serial, issuer, basicConstraints, key identifiers, CDP, AIA) and signs.
 *
 * Rules:
 *  - subject: "copy" (the request's subject; require_cn makes an empty CN a refusal), or
 *    "template": an RFC 4514-like string "CN={cn},OU=Devices,O=Example" where {cn}, {o},
 *    {ou}, {c}, {l}, {st}, {email}, {serialNumber}, {uid} are the request's values of those
 *    attributes (a placeholder whose attribute is absent is a refusal). The template is split
 *    into attributes before substitution, so a request's value never adds an attribute.
 *  - subjectAltName: names of the types in san_copy are copied from the request's
 *    extensionRequest; DNS names must end with one of dns_suffixes (when any is given); at
 *    most san_max names; a name of a type not copied is a refusal (never silently dropped).
 *    The Intune SID URI "tag:microsoft.com,2022-09-14:sid:<SID>" is copied when
 *    sid_passthrough is on even if URIs are not copied, and only when the SID is well formed.
 *  - keys: allowed types (RSA, EC), RSA modulus bounds, EC curves (P-256/384/521).
 *  - keyUsage: the configured bits, or by default digitalSignature + keyEncipherment for RSA
 *    and digitalSignature + keyAgreement for EC. EKU: the configured OIDs (default clientAuth).
 *  - validity: validity_days from now, notBefore backdated by backdate_s (clock skew).
 *  - CSR: the signature must verify; attributes outside allowed_attrs (when given) refuse.
 *
 * Error convention: 0/-1 with the reason in the caller's buffer.
 */
#ifndef CERTCONN_ISSUANCE_H
#define CERTCONN_ISSUANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CC_ISS_SAN_DNS 0x01u
#define CC_ISS_SAN_IP 0x02u
#define CC_ISS_SAN_EMAIL 0x04u
#define CC_ISS_SAN_URI 0x08u
#define CC_ISS_SAN_UPN 0x10u     /* otherName msUPN (1.3.6.1.4.1.311.20.2.3) */

#define CC_ISS_KEY_RSA 0x01u
#define CC_ISS_KEY_EC 0x02u

#define CC_ISS_CURVE_P256 0x01u
#define CC_ISS_CURVE_P384 0x02u
#define CC_ISS_CURVE_P521 0x04u

#define CC_ISS_MAX_LIST 32       /* suffixes, EKUs, attributes */
#define CC_ISS_SID_PREFIX "tag:microsoft.com,2022-09-14:sid:"

enum cc_iss_subject_mode {
	CC_ISS_SUBJECT_COPY = 0,
	CC_ISS_SUBJECT_TEMPLATE = 1,
};

struct cc_issuance {
	enum cc_iss_subject_mode subject_mode;
	char *subject_template;      /* TEMPLATE only; owned */
	bool require_cn;             /* default true */
	uint32_t san_copy;           /* CC_ISS_SAN_*; default DNS|IP|EMAIL|URI|UPN */
	uint32_t san_max;            /* 0..64, default 16 */
	char *dns_suffixes[CC_ISS_MAX_LIST]; /* owned; none = any */
	size_t ndns_suffixes;
	bool sid_passthrough;        /* default true */
	uint32_t key_types;          /* CC_ISS_KEY_*; default RSA|EC */
	uint32_t rsa_min_bits;       /* default 2048 */
	uint32_t rsa_max_bits;       /* default 8192 */
	uint32_t ec_curves;          /* CC_ISS_CURVE_*; default all three */
	uint32_t key_usage;          /* KU_* bits; 0 = by key type (see above) */
	char *ekus[CC_ISS_MAX_LIST]; /* dotted OIDs; owned */
	size_t nekus;
	bool ekus_set;               /* false: clientAuth; true with nekus 0: no EKU extension */
	uint32_t validity_days;      /* 1..36500, default 365 */
	uint32_t backdate_s;         /* 0..86400, default 300 */
	char *allowed_attrs[CC_ISS_MAX_LIST]; /* dotted OIDs of CSR attributes; owned */
	size_t nallowed_attrs;
	bool attrs_restricted;       /* allowed_attrs was given (an empty list: none allowed) */
};

/* What a certificate gets from a request under a profile (cc_issuance_apply). */
struct cc_iss_result {
	X509_NAME *subject;          /* owned */
	GENERAL_NAMES *san;          /* owned; NULL when none */
	uint32_t key_usage;          /* KU_* bits */
	STACK_OF(ASN1_OBJECT) *ekus; /* owned; NULL when none */
	time_t not_before;
	time_t not_after;
	EVP_PKEY *pubkey;            /* the request's key, a reference (owned) */
};

/* A profile with every default (nothing to free but subject_template == NULL). */
void cc_issuance_defaults(struct cc_issuance *p);
void cc_issuance_free(struct cc_issuance *p);
/* A deep copy; 0/-1 (out of memory). */
int cc_issuance_copy(struct cc_issuance *dst, const struct cc_issuance *src);

/*
 * Applies profile p to request csr at time now. On success *r is filled (release with
 * cc_iss_result_free). On -1, why holds a one-line reason fit for the requester and the
 * event log ("key type RSA-1024: the profile requires at least 2048 bits").
 */
int cc_issuance_apply(const struct cc_issuance *p, X509_REQ *csr, time_t now,
    struct cc_iss_result *r, char *why, size_t whylen);
void cc_iss_result_free(struct cc_iss_result *r);

/*
 * Checks a request's key against the profile's key rules alone (also used for renewal).
 * 0/-1 with why.
 */
int cc_issuance_check_key(const struct cc_issuance *p, EVP_PKEY *k, char *why, size_t whylen);

/*
 * Builds a subject from a template (see above) with the values of req_subject; with
 * req_subject NULL it only checks the template's syntax. 0/-1 with why.
 */
int cc_issuance_template_build(const char *tmpl, const X509_NAME *req_subject,
    X509_NAME **out, char *why, size_t whylen);

/* Is s a well-formed Windows SID "S-1-<authority>(-<subauthority>){1,15}"? */
bool cc_issuance_sid_ok(const char *s);

/*
 * The "issuance" object of a profile in checked JSON (policy/jsonck.h): fills *p (defaults
 * for absent members). 0/-1 with the error in j. Declared here for src/config; it needs
 * jsonck.h's types, which users of this header other than the config need not include.
 */
struct cc_jck;
struct cc_jnode;
int cc_issuance_check(struct cc_jck *j, const struct cc_jnode *n, struct cc_issuance *p);

#endif
