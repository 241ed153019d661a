/*
 * What keys does with bytes from net before any token call: the frame header
 * (cc_msg_parse), the request decoders (KEY_INFO_REQ, SIGN_REQ, SIGN_TBS_REQ, DECRYPT_REQ),
 * and for SIGN_TBS_REQ the CA role's TBS parser and signing policy (keys_casign_check)
 * against an RSA and an EC CA made at start. The first input byte chooses: 0..127 a whole
 * frame, 128..191 the rest as a bare TBSCertificate, 192..255 as a bare TBSCertList.
 * A decoder or the policy may refuse anything; it must not crash, leak or read out of bounds,
 * and what the policy accepts must name a digest and a signature scheme.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certconn/log.h"
#include "certconn/msg.h"
#include "certconn/proto.h"
#include "keys_int.h"
#include "tbs_build.h"

static struct keys_casign_policy pol[2];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cc_log_init("fuzz_keys_req", "", 0);
	for (int i = 0; i < 2; i++) {
		EVP_PKEY *k;

		memset(&pol[i], 0, sizeof(pol[i]));
		pol[i].ca = tbs_make_ca(&k, i, 3650);
		if (pol[i].ca == NULL)
			abort();
		pol[i].ca_key = k;
		pol[i].mechs = CC_MECH_ALL;
		pol[i].flags = CC_ROLE_TBS_ONLY;
		pol[i].max_validity_days = 825;
		pol[i].ekus = i ? "clientAuth,1.3.6.1.5.5.7.3.4" : "";
		pol[i].key_usage = i ? 0xa0 : 0;
		pol[i].max_crl_days = 30;
	}
	return 0;
}

static void
check_tbs(uint8_t kind, const uint8_t *tbs, size_t len)
{
	for (int i = 0; i < 2; i++) {
		struct keys_casign_sig sig;
		char why[512];
		int code = keys_casign_check(&pol[i], kind, tbs, len, time(NULL), &sig, why,
		    sizeof(why));

		if (code == CC_KE_OK && (cc_md_size(sig.md) == 0 || sig.alg < 1 ||
		    sig.alg > CC_SIG_MAX))
			abort();
		if (code != CC_KE_OK && code != CC_KE_BADINPUT && code != CC_KE_REFUSED)
			abort();
		if (why[0] == '\0')
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cc_msg m;
	const char *why = NULL;

	if (size < 1)
		return 0;
	if (data[0] >= 128) {
		check_tbs(data[0] >= 192 ? CC_TBS_CRL : CC_TBS_CERT, data + 1, size - 1);
		return 0;
	}
	data++;
	size--;
	if (cc_msg_parse(data, size, &m, &why) == -1)
		return 0;
	switch (m.type) {
	case CC_MSG_KEY_INFO_REQ: {
		struct cc_key_info_req q;

		(void)cc_dec_key_info_req(&m, &q, &why);
		break;
	}
	case CC_MSG_SIGN_REQ: {
		struct cc_sign_req q;

		if (cc_dec_sign_req(&m, &q, &why) == 0 && q.digest_len != cc_md_size(q.md))
			abort();
		break;
	}
	case CC_MSG_SIGN_TBS_REQ: {
		struct cc_sign_tbs_req q;

		if (cc_dec_sign_tbs_req(&m, &q, &why) == 0)
			check_tbs(q.kind, q.tbs, q.tbs_len);
		break;
	}
	case CC_MSG_DECRYPT_REQ: {
		struct cc_decrypt_req q;

		(void)cc_dec_decrypt_req(&m, &q, &why);
		break;
	}
	}
	return 0;
}
