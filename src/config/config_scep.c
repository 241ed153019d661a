/* "net.scep": the SCEP endpoint and its profiles (issue: SCEP enrollment). */
#include <stdlib.h>

#include "certconn/config_scep.h"
#include "config_sections.h"

int
cc_config_check_scep(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_scep **out)
{
	*out = NULL;
	return cc_jck_fail(j, n, "this section is not supported yet");
}

void
cc_config_scep_free(struct cc_config_scep *s)
{
	free(s);
}
