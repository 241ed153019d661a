/*
 * RFC 7512 PKCS#11 URIs, the subset certconn names keys with:
 *
 *   pkcs11:token=certconn;object=ca;type=private
 *
 * Path attributes: token, manufacturer, serial, model, slot-id, object, id (pct-encoded
 * bytes), type. Values are pct-decoded. Refused: pin-value (a PIN never lives in a URI),
 * any other attribute (unknown attributes would silently widen a match), duplicates, a query
 * part, %00 and values longer than the PKCS#11 fields they are compared with.
 * Error convention: 0/-1, with a static reason in *why.
 */
#ifndef CERTCONN_P11_URI_H
#define CERTCONN_P11_URI_H

#include <stddef.h>
#include <stdint.h>

#define P11_URI_MAX 1024 /* longest URI accepted */

enum p11_uri_type {
	P11_TYPE_ANY = 0,
	P11_TYPE_PRIVATE,
	P11_TYPE_PUBLIC,
	P11_TYPE_CERT,
	P11_TYPE_SECRET,
	P11_TYPE_DATA
};

struct p11_uri {
	/* Token attributes: compared with CK_TOKEN_INFO after trailing blanks are stripped. */
	char token[33];
	char manufacturer[33];
	char serial[17];
	char model[17];
	unsigned has_token : 1, has_manufacturer : 1, has_serial : 1, has_model : 1,
	    has_slot_id : 1, has_object : 1, has_id : 1;
	unsigned long slot_id;
	/* Object attributes. */
	char object[256];  /* CKA_LABEL */
	uint8_t id[128];   /* CKA_ID */
	size_t id_len;
	enum p11_uri_type type;
};

int p11_uri_parse(const char *s, struct p11_uri *u, const char **why);

/*
 * Formats "pkcs11:token=…;object=…[;id=%..]" into buf (pct-encoding what needs it).
 * id may be NULL. -1 if buf is too small.
 */
int p11_uri_format(char *buf, size_t len, const char *token, const char *object,
    const uint8_t *id, size_t id_len);

#endif
