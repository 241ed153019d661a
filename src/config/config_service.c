/* "net.service": the upstream service client: certconn-hub or Intune (issue: certconn-hub). */
#include <stdlib.h>

#include "certconn/config_service.h"
#include "config_sections.h"

int
cc_config_check_service(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_service **out)
{
	*out = NULL;
	return cc_jck_fail(j, n, "this section is not supported yet");
}

void
cc_config_service_free(struct cc_config_service *s)
{
	free(s);
}
