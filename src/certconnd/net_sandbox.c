/*
 * net's sandbox. net talks to the network and parses what arrives from it, so it gets the
 * least: its own user, no new privileges, a file system view of TLS trust stores and name
 * resolution files (never the PKCS#11 module, the token or the PIN), and a seccomp list of
 * what an event loop with sockets, OpenSSL and libcurl needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "certconn/log.h"
#include "certconn/sandbox.h"
#include "certconnd.h"

static const char *const net_syscalls[] = {
	/* memory, threads, time */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex", "set_robust_list",
	"rseq", "sched_yield", "sched_getaffinity", "clock_gettime", "clock_getres",
	"clock_nanosleep", "nanosleep", "gettimeofday", "time", "getrandom", "getpid", "gettid",
	"getuid", "geteuid", "getgid", "getegid", "uname", "sysinfo", "prlimit64", "getrlimit",
	/* threads (SCEP and flows workers, the key pool, libcurl's resolver), never processes:
	 * see cc_sandbox_seccomp */
	"clone:thread", "clone3:enosys", "exit", "exit_group", "restart_syscall",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill",
	/* files: what Landlock lets through (trust stores, resolver files, state dir) */
	"openat", "open", "close", "read", "pread64", "readv", "write", "pwrite64", "writev",
	"lseek", "fstat", "newfstatat", "stat", "lstat", "statx", "fcntl", "ioctl", "getdents64",
	"fsync", "fdatasync", "rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir",
	"mkdirat", "ftruncate", "readlink", "readlinkat", "access", "faccessat", "faccessat2",
	"umask", "dup", "dup2", "dup3", "pipe2", "eventfd2",
	/* event loop and sockets */
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll", "ppoll", "select",
	"pselect6", "socket", "socketpair", "connect", "accept", "accept4", "bind", "listen",
	"getsockname", "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom",
	"sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
};

int
net_sandbox_apply(const struct cc_sandbox_opts *o, const char *state_dir)
{
	static const char *const ro[] = {
		"/etc/ssl", "/usr/share/ca-certificates", "/usr/lib/ssl", "/etc/resolv.conf",
		"/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/host.conf",
		"/etc/localtime", "/usr/share/zoneinfo",
#ifdef CC_SANITIZED
		"/proc", /* the sanitizers' leak checker reads /proc/self */
#endif
	};
	const char *rw[1];
	size_t nrw = 0;

	if (state_dir != NULL && state_dir[0] != '\0')
		rw[nrw++] = state_dir;
	if (cc_sandbox_drop_user(o->user) == -1 || cc_sandbox_no_new_privs() == -1)
		return -1;
	if (o->landlock && cc_sandbox_landlock(ro, sizeof(ro) / sizeof(ro[0]), rw, nrw) == -1)
		return -1;
	if (o->seccomp &&
	    cc_sandbox_seccomp(net_syscalls, sizeof(net_syscalls) / sizeof(net_syscalls[0])) == -1)
		return -1;
	cc_log_debug("sandboxed (user %s, landlock %s, seccomp %s)", o->user ? o->user : "-",
	    o->landlock ? "on" : "off", o->seccomp ? "on" : "off");
	return 0;
}

/*
 * `certconnd --sandbox-check net [--user U] [--no-seccomp] [--no-landlock] -- PATH...`:
 * applies net's sandbox exactly as the net role does, then tries to open each PATH for
 * reading and says what happened. Exit 0 when every PATH was refused, 1 when one opened.
 * This is how the tests (and an administrator) show that net cannot reach the PKCS#11
 * module, the token or the PIN file.
 */
int
net_sandbox_check(int argc, char **argv)
{
	struct cc_sandbox_opts so;
	int i, sep = -1, opened = 0;

	cc_log_init("certconnd", "net-sandbox-check", 0);
	for (i = 3; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			sep = i;
			break;
		}
	if (sep == -1 || sep + 1 >= argc) {
		fprintf(stderr, "usage: certconnd --sandbox-check net [sandbox options] -- PATH...\n");
		return 2;
	}
	argv[sep] = NULL;
	if (cc_sandbox_parse_args(sep, argv, 3, &so) == -1)
		return 2;
	if (net_sandbox_apply(&so, NULL) == -1)
		return 2;
	for (i = sep + 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd == -1) {
			printf("%s: refused (%s)\n", argv[i], strerror(errno));
		} else {
			printf("%s: OPENED\n", argv[i]);
			close(fd);
			opened = 1;
		}
	}
	return opened;
}
