/* The upstream service client in net. (To be built.) */
#include "certconn/config.h"
#include "net.h"

int
service_start(struct net_ctx *ctx)
{
	(void)ctx;
	return 0;
}

void
service_stop(void)
{
}
