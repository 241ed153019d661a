/*
 * certconnctl's access to the local CA's store (ca.c) for `ca`, `scep` and `dev demo`, and
 * the dev appliance's SCEP parts (dev_scep.c). certconnctl runs as root and opens the
 * database read-write directly (SQLite keeps the -wal/-shm files owned like the database);
 * it never signs: net notices a revocation and signs the new CRL through keys.
 */
#ifndef CERTCONNCTL_CA_H
#define CERTCONNCTL_CA_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

struct cc_config;
struct cc_ca;

/* Loads config and opens its CA store (no key). Prints why and returns -1 on failure;
 * then nothing is left to free. */
int ctl_ca_open(const char *config, struct cc_config *cfg, struct cc_ca **ca);
/* Releases both. */
void ctl_ca_close(struct cc_config *cfg, struct cc_ca *ca);

/* dev up: net.ca and net.scep for the dev appliance (a static password in
 * DIR/scep-password; profiles devices (static), onetime (dynamic), manual (approval)). */
int dev_scep_config(const char *dir, cJSON *net);
/* dev demo: a device enrolls by SCEP with a one-time challenge; prints the certificate. */
int dev_scep_demo(const char *config, const char *dir);

#endif
