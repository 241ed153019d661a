/*
 * The service-verified SCEP challenge (challenge mode "service"): the upstream service
 * (certconn-hub or Intune, design section 2) validates each request and is told the outcome.
 * The service client (src/service/) implements these calls on top of its HTTPS client and
 * registers them with scep_verify_set when it starts; until it does, requests of a "service"
 * profile fail with "the service is not available" and no certificate is issued. Tests
 * register a double.
 *
 * The calls are made from SCEP's worker threads and may block (they do HTTP); they must be
 * thread-safe. Shapes (Intune's, design section 2):
 *  - validate: ScepActions/validateRequest with {"request":{transactionId,
 *    certificateRequest (base64 DER CSR), callerInfo}}; the service answers
 *    {"code":"Success"|<error name>, "errorDescription":...}.
 *  - notify: kind "successNotification" or "failureNotification" and json, the whole body
 *    {"notification":{...}} to POST to ScepActions/<kind>. The SCEP side writes it to its
 *    durable outbox first (fsync), calls notify, and removes it only when notify returns 0
 *    (the service acknowledged); what is left is resent later and after a restart, so
 *    notify may see the same notification more than once (the body is identical each time).
 */
#ifndef CERTCONN_SCEP_VERIFY_H
#define CERTCONN_SCEP_VERIFY_H

#include <stddef.h>
#include <stdint.h>

enum scep_verify_result {
	SCEP_VERIFY_OK = 0,          /* the service says Success */
	SCEP_VERIFY_DENIED = 1,      /* the service refused: code is its error name */
	SCEP_VERIFY_UNAVAILABLE = 2, /* no answer (network, timeout, 5xx): refused as well */
};

struct scep_verify_ops {
	/* csr: the request's DER PKCS#10. code (e.g. "ChallengeExpired") and why are filled
	 * on DENIED/UNAVAILABLE. Returns enum scep_verify_result. */
	int (*validate)(void *arg, const uint8_t *csr, size_t csr_len, const char *txid,
	    const char *caller_info, char *code, size_t codelen, char *why, size_t whylen);
	/* 0 when the service acknowledged the notification, -1 (why) otherwise. */
	int (*notify)(void *arg, const char *kind, const char *json, char *why, size_t whylen);
};

/* Registers (ops NULL: removes) the service. ops and arg must stay valid until replaced. */
void scep_verify_set(const struct scep_verify_ops *ops, void *arg);

#endif
