/* Shared helpers: see include/certconn/util.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "certconn/util.h"

int
cc_read_file(const char *path, size_t max, uint8_t **bufp, size_t *lenp)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t off = 0;
	ssize_t n;
	int fd, ret = -1, saved;

	*bufp = NULL;
	*lenp = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		errno = EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto out;
	/* Read up to max+1 so a file that grew since fstat is still refused. */
	while (off <= (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size + 1 - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		if (off > (size_t)st.st_size) {
			errno = EFBIG;
			goto out;
		}
	}
	buf[off] = '\0';
	*bufp = buf;
	*lenp = off;
	buf = NULL;
	ret = 0;
out:
	saved = errno;
	if (buf != NULL)
		cc_free_secret(buf, (size_t)st.st_size + 1);
	close(fd);
	errno = saved;
	return ret;
}

void
cc_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

pid_t
cc_spawn_role(const char *exe, const char *role, const int *fds, int nfds,
    const char *const *extra_args)
{
	const char *argv[32];
	int argc = 0;
	pid_t pid;

	if (nfds < 1 || nfds > CC_SPAWN_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	argv[argc++] = exe;
	argv[argc++] = "--role";
	argv[argc++] = role;
	for (int i = 0; extra_args != NULL && extra_args[i] != NULL && argc < 31; i++)
		argv[argc++] = extra_args[i];
	argv[argc] = NULL;

	pid = fork();
	if (pid != 0)
		return pid;

	/*
	 * Child. Move the channels out of the way first, then into place, so that a channel
	 * already sitting on a target number is not clobbered.
	 */
	int tmp[CC_SPAWN_MAX_FDS];
	for (int i = 0; i < nfds; i++) {
		tmp[i] = fcntl(fds[i], F_DUPFD, 64);
		if (tmp[i] == -1)
			_exit(127);
	}
	for (int i = 0; i < nfds; i++) {
		if (dup2(tmp[i], CC_FD_PARENT + i) == -1)
			_exit(127);
	}
	closefrom(CC_FD_PARENT + nfds);
	execv(exe, (char *const *)argv);
	fprintf(stderr, "certconnd: cannot execute %s: %s\n", exe, strerror(errno));
	_exit(127);
}

const char *
cc_self_exe(void)
{
	static char path[PATH_MAX];
	ssize_t n;

	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0)
		return NULL;
	path[n] = '\0';
	return path;
}

uint64_t
cc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
cc_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
