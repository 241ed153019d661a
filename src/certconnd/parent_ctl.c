/*
 * The control socket: certconnctl's way into the daemon (status, keys list, debug switch,
 * self-test). Requests that need a child are relayed with a fresh request id and the replies
 * matched back to the waiting client. Clients are local administrators (the socket is 0600),
 * but their frames are still checked: a bad frame closes that connection, nothing else.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "certconn/event.h"
#include "certconn/log.h"
#include "certconn/proto.h"
#include "certconn/util.h"
#include "parent.h"

#define CTL_MAX_CONNS 16
#define CTL_MAX_PENDING 64

struct ctl_conn {
	struct bufferevent *bev;
	int used;
};

struct ctl_pending {
	int used;
	uint64_t reqid;          /* sent to the child */
	uint64_t client_reqid;   /* echoed to the client */
	struct child *child;
	struct ctl_conn *conn;
};

static struct ctl_conn conns[CTL_MAX_CONNS];
static struct ctl_pending pending[CTL_MAX_PENDING];
static struct event *accept_ev;
static uint64_t next_reqid = 1;

static void
conn_close(struct ctl_conn *c)
{
	for (size_t i = 0; i < CTL_MAX_PENDING; i++)
		if (pending[i].used && pending[i].conn == c)
			pending[i].conn = NULL; /* the child's late reply is dropped */
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->used = 0;
}

static void
reply_error(struct ctl_conn *c, uint64_t reqid, uint32_t code, const char *text)
{
	struct cc_wbuf w;
	struct cc_error e = { code, text };

	if (cc_enc_error(&w, reqid, &e) == 0)
		parent_send_conn(c->bev, &w);
}

static void
reply_ok(struct ctl_conn *c, uint64_t reqid)
{
	struct cc_wbuf w;

	if (cc_enc_empty(&w, CC_MSG_CTL_OK, reqid) == 0)
		parent_send_conn(c->bev, &w);
}

static void
reply_status(struct ctl_conn *c, uint64_t reqid)
{
	struct parent *p = parent_get();
	struct cc_wbuf w;
	struct cc_ctl_status st = {
		.version = CC_VERSION,
		.state = p->stopping ? "stopping" : (p->net.ready && p->keys.ready) ? "running" :
		    "starting",
		.parent_pid = (uint32_t)getpid(),
		.net_pid = p->net.pid > 0 ? (uint32_t)p->net.pid : 0,
		.keys_pid = p->keys.pid > 0 ? (uint32_t)p->keys.pid : 0,
		.net_restarts = p->net_restarts,
		.keys_restarts = p->keys_restarts,
		.uptime_s = (cc_now_ms() - p->started_ms) / 1000,
		.config_path = p->config_path,
	};

	if (cc_enc_ctl_status(&w, reqid, &st) == 0)
		parent_send_conn(c->bev, &w);
}

/* Relays an argument-less request to a child. */
static void
relay(struct ctl_conn *c, struct child *child, uint16_t type, uint64_t client_reqid)
{
	struct cc_wbuf w;
	size_t i;

	if (child->bev == NULL || !child->ready) {
		reply_error(c, client_reqid, CC_KE_UNAVAILABLE, child == &parent_get()->keys ?
		    "keys is not running" : "net is not running");
		return;
	}
	for (i = 0; i < CTL_MAX_PENDING && pending[i].used; i++)
		;
	if (i == CTL_MAX_PENDING) {
		reply_error(c, client_reqid, CC_KE_INTERNAL, "too many control requests in flight");
		return;
	}
	if (cc_enc_empty(&w, type, next_reqid) == -1) {
		reply_error(c, client_reqid, CC_KE_INTERNAL, "cannot encode the request");
		return;
	}
	pending[i] = (struct ctl_pending){ 1, next_reqid++, client_reqid, child, c };
	parent_send_child(child, &w);
}

static void
set_debug(struct ctl_conn *c, const struct cc_frame *f)
{
	struct parent *p = parent_get();
	struct cc_set_debug d;
	struct cc_wbuf w;
	const char *why;

	if (cc_dec_set_debug(&f->msg, &d, &why) == -1) {
		reply_error(c, f->msg.reqid, CC_KE_BADINPUT, why);
		return;
	}
	cc_event_set_debug(d.mask, d.on);
	for (int i = 0; i < 2; i++) {
		struct child *ch = i ? &p->net : &p->keys;
		if (cc_enc_set_debug(&w, CC_MSG_SET_DEBUG, 0, &d) == 0)
			parent_send_child(ch, &w);
	}
	cc_log_info("debug logging %s for mask 0x%x (now 0x%x)", d.on ? "on" : "off", d.mask,
	    cc_event_debug_mask());
	reply_ok(c, f->msg.reqid);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;
	struct parent *p = parent_get();
	struct cc_frame f;
	const char *why;
	int r;

	(void)bev;
	while ((r = cc_chan_take(bufferevent_get_input(c->bev), &f, &why)) == 1) {
		switch (f.msg.type) {
		case CC_MSG_CTL_STATUS_REQ:
			reply_status(c, f.msg.reqid);
			break;
		case CC_MSG_KEYS_LIST_REQ:
			relay(c, &p->keys, CC_MSG_KEYS_LIST_REQ, f.msg.reqid);
			break;
		case CC_MSG_CTL_DEMO_REQ:
			relay(c, &p->net, CC_MSG_CTL_DEMO_REQ, f.msg.reqid);
			break;
		case CC_MSG_CTL_DEBUG_REQ:
			set_debug(c, &f);
			break;
		default:
			cc_log_warn("control: unexpected %s request; closing the connection",
			    cc_msg_type_name(f.msg.type));
			cc_frame_free(&f);
			conn_close(c);
			return;
		}
		cc_frame_free(&f);
	}
	if (r == -1) {
		cc_log_warn("control: bad frame (%s); closing the connection", why);
		conn_close(c);
	}
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_close(arg);
}

static void
accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_base *base = arg;
	int cfd;
	size_t i;

	(void)what;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd == -1)
		return;
	for (i = 0; i < CTL_MAX_CONNS && conns[i].used; i++)
		;
	if (i == CTL_MAX_CONNS) {
		cc_log_warn("control: too many connections");
		close(cfd);
		return;
	}
	conns[i].used = 1;
	conns[i].bev = bufferevent_socket_new(base, cfd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(conns[i].bev, conn_read_cb, NULL, conn_event_cb, &conns[i]);
	bufferevent_enable(conns[i].bev, EV_READ);
}

int
parent_ctl_start(struct event_base *base, int fd)
{
	accept_ev = event_new(base, fd, EV_READ | EV_PERSIST, accept_cb, base);
	if (accept_ev == NULL || event_add(accept_ev, NULL) == -1)
		return -1;
	return 0;
}

void
parent_ctl_stop(void)
{
	for (size_t i = 0; i < CTL_MAX_CONNS; i++)
		if (conns[i].used)
			conn_close(&conns[i]);
	if (accept_ev != NULL) {
		close(event_get_fd(accept_ev));
		event_free(accept_ev);
	}
	accept_ev = NULL;
}

int
parent_ctl_reply(struct child *c, const struct cc_frame *f)
{
	struct cc_wbuf w;
	struct ctl_pending *pd = NULL;
	int last;

	switch (f->msg.type) {
	case CC_MSG_KEYS_LIST:
	case CC_MSG_KEYS_LIST_END:
	case CC_MSG_CTL_DEMO_LINE:
	case CC_MSG_CTL_OK:
	case CC_MSG_ERROR:
		break;
	default:
		return -1;
	}
	for (size_t i = 0; i < CTL_MAX_PENDING; i++)
		if (pending[i].used && pending[i].reqid == f->msg.reqid && pending[i].child == c)
			pd = &pending[i];
	if (pd == NULL)
		return -1;
	last = f->msg.type != CC_MSG_KEYS_LIST && f->msg.type != CC_MSG_CTL_DEMO_LINE;
	if (pd->conn != NULL) {
		/* Same payload, the client's request id: copy the frame and patch the header. */
		memset(&w, 0, sizeof(w));
		w.p = malloc(f->len);
		if (w.p != NULL) {
			memcpy(w.p, f->buf, f->len);
			w.len = w.cap = f->len;
			for (int i = 0; i < 8; i++)
				w.p[8 + i] = (uint8_t)(pd->client_reqid >> (56 - 8 * i));
			parent_send_conn(pd->conn->bev, &w);
		}
	}
	if (last)
		pd->used = 0;
	return 0;
}

void
parent_ctl_child_gone(struct child *c)
{
	for (size_t i = 0; i < CTL_MAX_PENDING; i++) {
		if (!pending[i].used || pending[i].child != c)
			continue;
		if (pending[i].conn != NULL)
			reply_error(pending[i].conn, pending[i].client_reqid, CC_KE_UNAVAILABLE,
			    "the role went away while answering");
		pending[i].used = 0;
	}
}
