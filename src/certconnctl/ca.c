/* certconnctl ca: not built yet. */
#include <stdio.h>

#include "ctl.h"

int
ca_main(const char *config, int argc, char **argv)
{
	(void)config;
	(void)argc;
	(void)argv;
	fprintf(stderr, "certconnctl: ca is not available in this build yet\n");
	return 2;
}
