/*
 * The dev appliance's queued flows (certconnctl dev up / demo). `dev up` writes net.flows
 * into the connector's config: the four flows, short retries (a demo should not wait
 * minutes), a small key pool, and two PKCS profiles (one keeps a copy for re-encryption).
 * `dev demo` queues one request of each flow through the dev hub's admin CLI, as an MDM
 * would: a PKCS certificate for a demo device, a re-encryption of the kept copy for a
 * second device, an imported PFX (made here, its password encrypted with RSA-OAEP-SHA512 to
 * the connector's pfx key) and the revocation of the PKCS certificate; it waits for each
 * result and prints it with the connector's events for that request.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "certconn/util.h"
#include "ctl.h"

int
dev_flows_config(const char *dir, cJSON *net)
{
	cJSON *f, *o, *profs, *p, *iss;

	(void)dir;
	f = cJSON_AddObjectToObject(net, "flows");
	if (f == NULL)
		return -1;
	cJSON_AddNumberToObject(f, "workers", 2);
	/* A failing step is tried three times within a few seconds: the demo and the tests
	 * see the FailedAttempt events and the final failure without long waits. */
	cJSON_AddNumberToObject(f, "max_attempts", 3);
	o = cJSON_AddObjectToObject(f, "backoff");
	cJSON_AddNumberToObject(o, "initial_ms", 200);
	cJSON_AddNumberToObject(o, "max_ms", 2000);
	cJSON_AddStringToObject(f, "pfx_role", "pfx");
	o = cJSON_AddObjectToObject(f, "key_pool");
	cJSON_AddNumberToObject(o, "rsa-2048", 2);
	cJSON_AddNumberToObject(o, "ec-p256", 1);
	cJSON_AddStringToObject(f, "default_profile", "devices");
	profs = cJSON_AddObjectToObject(f, "pkcs_profiles");
	/* devices: RSA-2048 by default, AES-256 PKCS#12, a copy kept for re-encryption */
	p = cJSON_AddObjectToObject(profs, "devices");
	cJSON_AddStringToObject(p, "key", "rsa-2048");
	cJSON_AddBoolToObject(p, "allow_key_override", 1);
	cJSON_AddStringToObject(p, "p12", "aes256");
	cJSON_AddBoolToObject(p, "keep_copy", 1);
	iss = cJSON_AddObjectToObject(p, "issuance");
	cJSON_AddNumberToObject(iss, "validity_days", 365);
	/* legacy: the 3DES/SHA-1 PKCS#12 some older devices need, no copy kept */
	p = cJSON_AddObjectToObject(profs, "legacy");
	cJSON_AddStringToObject(p, "key", "rsa-2048");
	cJSON_AddStringToObject(p, "p12", "legacy");
	iss = cJSON_AddObjectToObject(p, "issuance");
	cJSON_AddNumberToObject(iss, "validity_days", 365);
	return 0;
}
