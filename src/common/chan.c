/* Frame transport over stream sockets: see include/certconn/chan.h. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "certconn/chan.h"

int
cc_chan_send(int fd, const struct cc_wbuf *w)
{
	size_t off = 0;
	ssize_t n;

	if (w->err || w->p == NULL) {
		errno = EINVAL;
		return -1;
	}
	while (off < w->len) {
		n = send(fd, w->p + off, w->len - off, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };
				(void)poll(&p, 1, 1000);
				continue;
			}
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly n bytes before the deadline (-1: none). 1 done, 0 EOF at start, -1 error. */
static int
read_full(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	size_t off = 0;
	ssize_t r;

	while (off < n) {
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int pr;

			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			pr = poll(&pfd, 1, (int)left);
			if (pr == -1) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (pr == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		r = read(fd, p + off, n - off);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			if (off == 0)
				return 0;
			errno = EPROTO;
			return -1;
		}
		off += (size_t)r;
	}
	return 1;
}

static uint32_t
hdr_len(const uint8_t *h)
{
	return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

int
cc_chan_recv(int fd, int timeout_ms, struct cc_frame *f, const char **why)
{
	uint8_t hdr[CC_MSG_HDR_LEN];
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	uint32_t len;
	int r;

	memset(f, 0, sizeof(*f));
	*why = NULL;
	r = read_full(fd, hdr, sizeof(hdr), deadline);
	if (r <= 0)
		return r;
	len = hdr_len(hdr);
	if (len < CC_MSG_HDR_LEN || len > CC_MSG_MAX) {
		*why = "frame length out of bounds";
		errno = EPROTO;
		return -1;
	}
	f->buf = malloc(len);
	if (f->buf == NULL)
		return -1;
	f->len = len;
	memcpy(f->buf, hdr, sizeof(hdr));
	if (len > CC_MSG_HDR_LEN) {
		r = read_full(fd, f->buf + CC_MSG_HDR_LEN, len - CC_MSG_HDR_LEN, deadline);
		if (r <= 0) {
			if (r == 0)
				errno = EPROTO;
			*why = "connection closed inside a frame";
			cc_frame_free(f);
			return -1;
		}
	}
	if (cc_msg_parse(f->buf, f->len, &f->msg, why) == -1) {
		cc_frame_free(f);
		errno = EPROTO;
		return -1;
	}
	return 1;
}

int
cc_chan_take(struct evbuffer *in, struct cc_frame *f, const char **why)
{
	uint8_t hdr[4];
	uint32_t len;

	memset(f, 0, sizeof(*f));
	*why = NULL;
	if (evbuffer_get_length(in) < CC_MSG_HDR_LEN)
		return 0;
	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
		return 0;
	len = hdr_len(hdr);
	if (len < CC_MSG_HDR_LEN || len > CC_MSG_MAX) {
		*why = "frame length out of bounds";
		return -1;
	}
	if (evbuffer_get_length(in) < len)
		return 0;
	f->buf = malloc(len);
	if (f->buf == NULL) {
		*why = "out of memory";
		return -1;
	}
	f->len = len;
	if (evbuffer_remove(in, f->buf, len) != (int)len) {
		*why = "short read from buffer";
		cc_frame_free(f);
		return -1;
	}
	if (cc_msg_parse(f->buf, f->len, &f->msg, why) == -1) {
		cc_frame_free(f);
		return -1;
	}
	return 1;
}

void
cc_frame_free(struct cc_frame *f)
{
	if (f->buf != NULL) {
		explicit_bzero(f->buf, f->len);
		free(f->buf);
	}
	memset(f, 0, sizeof(*f));
}
