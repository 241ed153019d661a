/* Placeholder until certconn/pkcs.h lands: the request is refused cleanly. */
#include "certconn/event.h"
#include "flows_int.h"

void
flow_import_run(const struct flows_env *env, struct flows_job *j)
{
	(void)env;
	flows_fail(j, FLOWS_E_NOT_SUPPORTED, "not built yet");
}
