/* Small shared helpers. 0/-1 with errno unless said otherwise. */
#ifndef CERTCONN_UTIL_H
#define CERTCONN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CC_VERSION "0.1.0"

/* First fd a child role finds its channels at: 3 = parent, 4.. = peer channels. */
#define CC_FD_PARENT 3
#define CC_FD_PEER0 4
#define CC_MAX_PEER_CHANNELS 16
/* Descriptors a child can be given: parent channel, peer channels, listeners. */
#define CC_SPAWN_MAX_FDS (1 + CC_MAX_PEER_CHANNELS + 4)

/*
 * Reads a whole regular file of at most max bytes into a malloc'd, NUL-terminated buffer
 * (caller frees; cc_free_secret for secrets). -1 with errno EFBIG when larger than max.
 */
int cc_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);
void cc_free_secret(void *p, size_t len);

/*
 * Starts `exe --role ROLE [extra args]` with fds[0] at CC_FD_PARENT and fds[1..n-1] at
 * CC_FD_PEER0.. (n <= CC_SPAWN_MAX_FDS), every other descriptor but 0-2 closed. Returns the
 * pid or -1.
 */
pid_t cc_spawn_role(const char *exe, const char *role, const int *fds, int nfds,
    const char *const *extra_args);

/* The path of the running executable (for re-exec), from /proc/self/exe. Static buffer. */
const char *cc_self_exe(void);

/* Monotonic and wall clocks. */
uint64_t cc_now_ms(void);
uint64_t cc_wall_us(void);

#endif
