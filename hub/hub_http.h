/* The hub's HTTPS server (hub_http.c). */
#ifndef CERTCONN_HUB_HTTP_H
#define CERTCONN_HUB_HTTP_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "hub.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;

struct hub_server {
	struct hub *h;
	SSL_CTX *ssl;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	uint16_t port;                  /* the port bound (the config may say 0) */
};

/* Listens on h->conf's address with its TLS certificate and key; client certificates are
 * verified against ca. 0/-1 (logged). */
int hub_server_start(struct hub_server *s, struct event_base *base, struct hub *h, X509 *ca);
void hub_server_stop(struct hub_server *s);

#endif
