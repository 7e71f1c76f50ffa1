/* The one-time setup every fuzz target shares: the engine's global init, then the target's own
 * fuzz_setup() when it has one. */

#include <stdlib.h>

#include "dime/crypto.h"
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (dime_global_init() != DIME_OK)
		abort();
	if (fuzz_setup != NULL)
		fuzz_setup();
	return 0;
}
