/* certconnctl register: not built yet. */
#include <stdio.h>

#include "ctl.h"

int
register_main(const char *config, int argc, char **argv)
{
	(void)config;
	(void)argc;
	(void)argv;
	fprintf(stderr, "certconnctl: register is not available in this build yet\n");
	return 2;
}
