/*
 * Test-only executable: the keys role on its own (`keys_only_main --role keys --channels N
 * …`), used by the keys harness until certconnd's main dispatches --role keys to keys_main.
 */
#include "keys.h"

int
main(int argc, char **argv)
{
	return keys_main(argc, argv);
}
