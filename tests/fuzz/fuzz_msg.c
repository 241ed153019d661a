/* libFuzzer: arbitrary bytes as a frame, through the header check and every typed decoder. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "certconn/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cc_msg m;
	const char *why = NULL;
	union {
		struct cc_conf_keys ck; struct cc_conf_role cr; struct cc_conf_pin cp;
		struct cc_conf_net cn; struct cc_conf_log cl; struct cc_ready rd;
		struct cc_event_msg ev; struct cc_set_debug sd; struct cc_key_info_req kir;
		struct cc_key_info ki; struct cc_sign_req sr; struct cc_sign_tbs_req st;
		struct cc_sign_resp sp; struct cc_decrypt_req dr; struct cc_decrypt_resp dp;
		struct cc_error er; struct cc_keys_list_item li; struct cc_ctl_status cs;
		struct cc_ctl_line ln;
	} u;
	int r = -1;

	if (cc_msg_parse(data, size, &m, &why) == -1)
		return 0;
	switch (m.type) {
	case CC_MSG_CONF_KEYS: r = cc_dec_conf_keys(&m, &u.ck, &why); break;
	case CC_MSG_CONF_ROLE: r = cc_dec_conf_role(&m, &u.cr, &why); break;
	case CC_MSG_CONF_PIN: r = cc_dec_conf_pin(&m, &u.cp, &why); break;
	case CC_MSG_CONF_NET: r = cc_dec_conf_net(&m, &u.cn, &why);
		if (r == 0) (void)strlen(u.cn.json);
		break;
	case CC_MSG_CONF_LOG: r = cc_dec_conf_log(&m, &u.cl, &why); break;
	case CC_MSG_READY: r = cc_dec_ready(&m, &u.rd, &why); break;
	case CC_MSG_EVENT: r = cc_dec_event(&m, &u.ev, &why); break;
	case CC_MSG_SET_DEBUG:
	case CC_MSG_CTL_DEBUG_REQ: r = cc_dec_set_debug(&m, &u.sd, &why); break;
	case CC_MSG_KEY_INFO_REQ: r = cc_dec_key_info_req(&m, &u.kir, &why); break;
	case CC_MSG_KEY_INFO: r = cc_dec_key_info(&m, &u.ki, &why); break;
	case CC_MSG_SIGN_REQ: r = cc_dec_sign_req(&m, &u.sr, &why); break;
	case CC_MSG_SIGN_TBS_REQ: r = cc_dec_sign_tbs_req(&m, &u.st, &why); break;
	case CC_MSG_SIGN_RESP: r = cc_dec_sign_resp(&m, &u.sp, &why); break;
	case CC_MSG_DECRYPT_REQ: r = cc_dec_decrypt_req(&m, &u.dr, &why); break;
	case CC_MSG_DECRYPT_RESP: r = cc_dec_decrypt_resp(&m, &u.dp, &why); break;
	case CC_MSG_ERROR: r = cc_dec_error(&m, &u.er, &why); break;
	case CC_MSG_KEYS_LIST: r = cc_dec_keys_list_item(&m, &u.li, &why); break;
	case CC_MSG_CTL_STATUS: r = cc_dec_ctl_status(&m, &u.cs, &why); break;
	case CC_MSG_CTL_DEMO_LINE: r = cc_dec_ctl_line(&m, &u.ln, &why); break;
	default: r = cc_dec_empty(&m, &why); break;
	}
	/* A failed decode must always say why. */
	if (r == -1 && why == NULL)
		__builtin_trap();
	return 0;
}
