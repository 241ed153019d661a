/*
 * Moving frames over a stream socket (socketpair or the control socket).
 * Blocking helpers for the roles' request/reply paths, and a libevent helper that cuts
 * frames out of a bufferevent's input. 0/-1 with errno, except where said.
 */
#ifndef CERTCONN_CHAN_H
#define CERTCONN_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "certconn/msg.h"

struct evbuffer;

/* A received frame: owns its buffer (wiped on free); msg borrows from it. */
struct cc_frame {
	uint8_t *buf;
	size_t len;
	struct cc_msg msg;
};

/* Sends all of a finished frame; EINTR and short writes are retried. */
int cc_chan_send(int fd, const struct cc_wbuf *w);

/*
 * Receives one frame. timeout_ms < 0 waits forever; the timeout covers the whole frame.
 * Returns 1 with *f filled, 0 on EOF before a frame started, -1 on error: errno ETIMEDOUT,
 * EPROTO (bad header: *why says why), or the socket's error.
 */
int cc_chan_recv(int fd, int timeout_ms, struct cc_frame *f, const char **why);

/*
 * Takes one whole frame out of a libevent input buffer. 1 with *f filled, 0 when more bytes
 * are needed, -1 on a bad header (*why says why).
 */
int cc_chan_take(struct evbuffer *in, struct cc_frame *f, const char **why);

void cc_frame_free(struct cc_frame *f);

#endif
