/* The parent's state, shared by parent.c (supervision) and parent_ctl.c (control socket). */
#ifndef CERTCONND_PARENT_H
#define CERTCONND_PARENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "certconn/chan.h"
#include "certconn/config.h"

#define PARENT_READY_TIMEOUT_S 60

struct bufferevent;
struct event;
struct event_base;

struct child {
	const char *role;
	pid_t pid;               /* > 0 while running */
	struct bufferevent *bev; /* the parent's end of the child's channel */
	int ready;
};

struct parent {
	struct event_base *base;
	const char *config_path;
	struct cc_config cfg;
	uint8_t *pin;            /* locked, wiped at exit; only ever sent to keys */
	size_t pin_len, pin_cap;
	struct child net, keys;
	int listen_fd;           /* net's listener, kept across restarts */
	int listen_tls_fd;       /* net's HTTPS listener, or -1 */
	int ctl_fd;
	struct event *restart_ev, *kill_ev, *ready_ev;
	uint64_t started_ms, started_children_ms;
	uint64_t restart_ms[128];
	size_t nrestart;
	uint32_t net_restarts, keys_restarts;
	char crash_detail[256];
	int stopping, reloading, announced, exit_status;
};

struct parent *parent_get(void);
void parent_open_sinks(void);
/* Sends and frees w; -1 when the child is not there (w is freed anyway). */
int parent_send_child(struct child *c, struct cc_wbuf *w);
int parent_send_conn(struct bufferevent *bev, struct cc_wbuf *w);

/* Control socket (parent_ctl.c). */
int parent_ctl_start(struct event_base *base, int fd);
void parent_ctl_stop(void);
/* A reply from a child to a relayed control request: 0 handled, -1 not one of ours. */
int parent_ctl_reply(struct child *c, const struct cc_frame *f);
/* Fails the control requests waiting on a child that went away. */
void parent_ctl_child_gone(struct child *c);

#endif
