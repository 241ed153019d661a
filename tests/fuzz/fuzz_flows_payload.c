/*
 * libFuzzer: arbitrary bytes as the payload of each flow (certconn/flows.h parsers). The
 * first byte picks the parser (the rest is the JSON text), so the corpus can aim at one.
 * Beyond "no crash, no leak" it checks that a refusal is one of the codes the parsers may
 * give (4002, 4007, 4100) with a message naming the payload, and that an accepted payload
 * holds what the flows rely on (a device key that decodes, a normalised serial).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "certconn/flows.h"
#include "flows_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_refusal(int32_t c, const char *why)
{
	if (c == FLOWS_OK)
		return;
	if (c != FLOWS_E_PARAMETER && c != FLOWS_E_TOO_LARGE && c != FLOWS_E_RETRYABLE)
		abort();
	if (c != FLOWS_E_RETRYABLE && strncmp(why, "payload", 7) != 0)
		abort();
}

static void
check_device(const struct flows_device *d)
{
	EVP_PKEY *k = flows_device_key(d);

	if (k == NULL)
		abort();
	EVP_PKEY_free(k);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512];
	cJSON *o;
	int32_t c;

	if (size < 1 || size > FLOWS_PAYLOAD_MAX)
		return 0;
	o = cJSON_ParseWithLength((const char *)data + 1, size - 1);
	if (o == NULL)
		return 0;
	why[0] = '\0';
	switch (data[0] % 4) {
	case 0: {
		struct flows_pkcs_req r;
		c = flows_parse_pkcs(o, &r, why, sizeof(why));
		check_refusal(c, why);
		if (c == FLOWS_OK) {
			check_device(&r.device);
			if (r.device_id[0] == '\0' || r.nsan > FLOWS_SAN_MAX)
				abort();
		}
		flows_pkcs_req_free(&r);
		break;
	}
	case 1: {
		struct flows_recrypt_req r;
		c = flows_parse_recrypt(o, &r, why, sizeof(why));
		check_refusal(c, why);
		if (c == FLOWS_OK) {
			check_device(&r.device);
			if (r.payload == NULL || r.payload_len == 0)
				abort();
		}
		flows_recrypt_req_free(&r);
		break;
	}
	case 2: {
		struct flows_import_req r;
		c = flows_parse_import(o, &r, why, sizeof(why));
		check_refusal(c, why);
		if (c == FLOWS_OK) {
			check_device(&r.device);
			if (r.md_bits != 256 && r.md_bits != 384 && r.md_bits != 512)
				abort();
		}
		flows_import_req_free(&r);
		break;
	}
	default: {
		struct flows_revoke_req r;
		c = flows_parse_revoke(o, &r, why, sizeof(why));
		check_refusal(c, why);
		if (c == FLOWS_OK) {
			/* normalised: upper-case hex without leading zeros */
			if (r.serial[0] == '\0' || (r.serial[0] == '0' && r.serial[1] != '\0'))
				abort();
			for (const char *p = r.serial; *p; p++)
				if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F')))
					abort();
		}
		break;
	}
	}
	cJSON_Delete(o);
	return 0;
}
