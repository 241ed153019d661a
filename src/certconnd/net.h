/*
 * What net's feature modules (SCEP in src/scep/, the service client in src/service/) get
 * from the net role when it starts them: the event loop, the HTTP server on the parent's
 * listening socket, an OpenSSL library context whose private keys live in keys (keyref),
 * and net's checked configuration. Borrowed for the life of the net process.
 *
 * Start-up order in net: config, keyref provider, HTTP server, each module's *_start
 * (before the sandbox: a module opens what it needs, e.g. its database, here), then the
 * sandbox, then READY. A module's *_start returns 0 (also when its config section is
 * absent: then it does nothing) or -1 after logging why, which stops net.
 */
#ifndef CERTCONND_NET_H
#define CERTCONND_NET_H

#include <openssl/types.h>

struct event_base;
struct evhttp;
struct keyref_client;
struct cc_config_net;
struct cc_ca;

struct net_ctx {
	struct event_base *base;
	struct evhttp *http;             /* NULL when net has no listener */
	struct evhttp *https;            /* the HTTPS listener (tls role key), or NULL: register
	                                  * the same handlers on both */
	OSSL_LIB_CTX *libctx;            /* keyref + default providers */
	struct keyref_client *kc;
	const struct cc_config_net *conf;
};

/* src/scep/: the SCEP endpoint and the local CA behind it. */
int scep_start(struct net_ctx *ctx);
void scep_stop(void);
/* The local CA scep_start opened (net.ca), or NULL; valid until scep_stop. */
struct cc_ca *scep_ca(void);

/* src/flows/: the queued flows (net.flows); registers its features with the service
 * client, so it starts before service_start. */
int flows_start(struct net_ctx *ctx);
void flows_stop(void);

/* src/service/: the client of the upstream service (certconn-hub or Intune). */
int service_start(struct net_ctx *ctx);
void service_stop(void);

#endif
