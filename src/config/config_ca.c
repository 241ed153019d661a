/* "net.ca": the CA backend: the local CA (issue: SCEP enrollment). */
#include <stdlib.h>

#include "certconn/config_ca.h"
#include "config_sections.h"

int
cc_config_check_ca(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_ca **out)
{
	*out = NULL;
	return cc_jck_fail(j, n, "this section is not supported yet");
}

void
cc_config_ca_free(struct cc_config_ca *s)
{
	free(s);
}
