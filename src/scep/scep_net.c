/* SCEP in net: registers /scep, /scep/<profile> and /cgi-bin/pkiclient.exe. (To be built.) */
#include "certconn/config.h"
#include "net.h"

int
scep_start(struct net_ctx *ctx)
{
	(void)ctx;
	return 0;
}

void
scep_stop(void)
{
}
