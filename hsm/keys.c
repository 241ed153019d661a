/* keys role: placeholder until the server lands. */
#include "certconn/log.h"
#include "keys.h"

int
keys_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cc_log_init("certconnd", "keys", 0);
	cc_log_err("keys role not built yet");
	return 1;
}
