/*
 * net's feature sections. Each is checked by its module's own file here
 * (config_scep.c, config_ca.c, config_service.c) with the checked-JSON helpers of
 * policy/jsonck.h, so errors name file:line:col and the key path like the rest of the config.
 * Each check fills a malloc'd struct (freed by its *_free, which takes NULL) or fails with -1
 * after cc_jck_fail.
 */
#ifndef CC_CONFIG_SECTIONS_H
#define CC_CONFIG_SECTIONS_H

#include "certconn/config.h"
#include "jsonck.h"

int cc_config_check_scep(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_scep **out);
void cc_config_scep_free(struct cc_config_scep *s);

int cc_config_check_ca(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_ca **out);
void cc_config_ca_free(struct cc_config_ca *s);

int cc_config_check_service(struct cc_jck *j, const struct cc_jnode *n,
    struct cc_config_service **out);
void cc_config_service_free(struct cc_config_service *s);

int cc_config_check_flows(struct cc_jck *j, const struct cc_jnode *n, struct cc_config_flows **out);
void cc_config_flows_free(struct cc_config_flows *f);

#endif
