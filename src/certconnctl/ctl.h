/* certconnctl's commands. Each returns the process exit code (0 ok, 1 failure, 2 usage). */
#ifndef CERTCONNCTL_H
#define CERTCONNCTL_H

#include <stddef.h>
#include <stdint.h>

struct cc_frame;
struct cJSON;

/* Control socket (ctl.c). */
int ctl_connect(const char *path);
int ctl_next(int fd, struct cc_frame *f);
int ctl_status(const char *sock, int json);
int ctl_keys_list(const char *sock);
int ctl_debug(const char *sock, uint32_t mask, int on);
int ctl_selftest(const char *sock, const char *prefix);

/* token init (token.c). */
int token_main(int argc, char **argv);

/* dev up / down / demo (dev.c). */
int dev_main(int argc, char **argv);

/* The local CA: list, show, revoke, crl (ca.c). config: certconnd's config path. */
int ca_main(const char *config, int argc, char **argv);
/* SCEP: challenge, approve, reject (scep.c). */
int scep_main(const char *config, int argc, char **argv);
/* Registration with a certconn-hub (register.c). */
int register_main(const char *config, int argc, char **argv);

/* Hooks of dev up / down for the hub (dev_hub.c): start certconn-hub under DIR and register
 * the dev connector; fill *hub_url (caller's buffer). 0/-1. dev_hub_down stops it. */
int dev_hub_up(const char *dir, char *hub_url, size_t len);
int dev_hub_down(const char *dir);
/* dev up's config: prepares the dev hub and adds net.service for it to net (a cJSON object). */
int dev_hub_config(const char *dir, struct cJSON *net);
/* Registers the connector of a certconnd config with a hub (register.c). Exit code. */
int register_connector(const char *config, const char *hub, const char *token, const char *ca,
    const char *name, uint32_t features, const char *cert_out, int quiet);

/* dev up's net.flows (dev_flows.c); dev demo's queued flows through the dev hub. 0/-1 and
 * an exit code. */
int dev_flows_config(const char *dir, struct cJSON *net);
int dev_flows_demo(const char *config, const char *dir);

/* $env_var when set, else the program `name` next to this certconnctl, else `name` for a
 * PATH search. The answer is borrowed until the next call. */
const char *ctl_sibling_exe(const char *name, const char *env_var);

#endif
