/*
 * certconnd: one binary, three roles. Started plainly it is the parent, which re-executes
 * itself as `certconnd --role net|keys ...` (cc_spawn_role) for the two children.
 */
#include <stdio.h>
#include <string.h>

#include "certconnd.h"
#include "keys.h"

int
main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--role") == 0) {
		if (strcmp(argv[2], "keys") == 0)
			return keys_main(argc, argv);
		if (strcmp(argv[2], "net") == 0)
			return net_main(argc, argv);
		fprintf(stderr, "certconnd: unknown role %s\n", argv[2]);
		return 2;
	}
	if (argc >= 3 && strcmp(argv[1], "--sandbox-check") == 0 && strcmp(argv[2], "net") == 0)
		return net_sandbox_check(argc, argv);
	return parent_main(argc, argv);
}
