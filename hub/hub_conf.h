/* Configuration helpers beyond hub.h (hub_config.c). */
#ifndef CERTCONN_HUB_CONF_H
#define CERTCONN_HUB_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"

/* As hub_conf_load; files false: the files the config names need not exist yet (init). */
int hub_conf_load_ex(const char *path, struct hub_conf *c, bool files, char *err,
    size_t errlen);
/* "host:port" or "[v6]:port" (port 0..65535; 0: any free port). 0/-1. */
int hub_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
