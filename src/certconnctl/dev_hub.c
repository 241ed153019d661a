/* dev up/down for certconn-hub: not built yet (the hub does not exist yet). */
#include "ctl.h"

int
dev_hub_up(const char *dir, char *hub_url, size_t len)
{
	(void)dir;
	if (len > 0)
		hub_url[0] = '\0';
	return 0;
}

int
dev_hub_down(const char *dir)
{
	(void)dir;
	return 0;
}
