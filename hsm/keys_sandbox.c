/*
 * keys: what the sandbox leaves it. Landlock: read the PKCS#11 module, the system libraries
 * and OpenSSL's configuration, the SoftHSM configuration file; read and write the token
 * directory (SoftHSM keeps its objects and lock files there and re-reads them on
 * re-initialisation). seccomp: the syscalls below, found by running keys under
 * `strace -f -c` through start-up, every operation, token faults with re-initialisation and
 * shutdown, with SoftHSM 2.6.1 (see docs/keys.md). Everything else kills the process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <seccomp.h>

#include "certconn/log.h"
#include "certconn/sandbox.h"
#include "keys_int.h"

static const char *const keys_syscalls[] = {
	/* channels and logging */
	"read", "write", "readv", "writev", "recvfrom", "recvmsg", "sendto", "sendmsg", "poll",
	"ppoll", "close", "shutdown",
	/* threads, locks, time */
	"futex", "clone", "clone3", "set_robust_list", "rseq", "sched_yield", "gettid",
	"getpid", "clock_gettime", "gettimeofday", "clock_nanosleep", "nanosleep",
	"rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "madvise", "exit", "exit_group",
	/* memory */
	"brk", "mmap", "munmap", "mremap", "mprotect", "mlock", "munlock",
	/* randomness (OpenSSL, SoftHSM) */
	"getrandom",
	/* SoftHSM's file object store: token files, lock files, re-reading on
	 * C_Initialize */
	"openat", "fstat", "newfstatat", "statx", "lseek", "pread64", "pwrite64",
	"getdents64", "flock", "fcntl", "fsync", "fdatasync", "ftruncate", "access",
	"faccessat", "faccessat2", "unlink", "unlinkat", "rename", "renameat", "mkdir",
	"umask", "getuid", "geteuid", "getgid", "getegid", "uname", "sysinfo",
	"sched_getaffinity", "prlimit64", "readlink",
	/* allowed here only to fail with EACCES (see deny_new_sockets) */
	"socket",
};

/*
 * SoftHSM logs its errors with syslog(3), which opens a socket to /dev/log. keys needs no
 * new socket, and a kill for that would turn a refused mechanism parameter into a crash, so
 * a filter stacked before the role's list makes socket() fail with EACCES (syslog then
 * drops the line; keys logs the error itself). The role's list must allow socket: when
 * filters disagree the kernel takes the strictest action, and kill beats an errno.
 */
static int
deny_new_sockets(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int ret = -1;

	if (ctx == NULL)
		return -1;
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0) == 0 &&
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socketpair), 0) == 0 &&
	    seccomp_load(ctx) == 0)
		ret = 0;
	seccomp_release(ctx);
	if (ret == -1)
		cc_log_err("seccomp: cannot install the socket filter");
	return ret;
}

/* The token directory of a SoftHSM configuration file ("directories.tokendir = …"). */
static int
softhsm_tokendir(const char *conf, char *out, size_t len)
{
	uint8_t *buf;
	size_t n;
	char *line, *save = NULL;
	int found = 0;

	if (cc_read_file(conf, 1u << 20, &buf, &n) == -1)
		return -1;
	for (line = strtok_r((char *)buf, "\n", &save); line != NULL && !found;
	    line = strtok_r(NULL, "\n", &save)) {
		char *p = line, *e;

		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "directories.tokendir", 20) != 0)
			continue;
		p += 20;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p++ != '=')
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strlen(p);
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (*p != '\0') {
			snprintf(out, len, "%s", p);
			found = 1;
		}
	}
	free(buf);
	return found ? 0 : -1;
}

int
keys_sandbox_apply(struct keys *k, int landlock, int seccomp)
{
	const char *ro[16], *rw[4];
	size_t nro = 0, nrw = 0;
	char conf[4096] = "", tokendir[4096] = "";
	const char *env = k->module_env;

	if (cc_sandbox_no_new_privs() == -1)
		return -1;
	if (landlock) {
		if (env != NULL && strncmp(env, "SOFTHSM2_CONF=", 14) == 0)
			snprintf(conf, sizeof(conf), "%s", env + 14);
		else if (getenv("SOFTHSM2_CONF") != NULL)
			snprintf(conf, sizeof(conf), "%s", getenv("SOFTHSM2_CONF"));
		else if (strstr(k->tok.module, "softhsm") != NULL)
			snprintf(conf, sizeof(conf), "/etc/softhsm/softhsm2.conf");
		ro[nro++] = k->tok.module;
		ro[nro++] = "/usr/lib";
		ro[nro++] = "/lib";
		ro[nro++] = "/usr/lib64";
		ro[nro++] = "/etc/ld.so.cache";
		ro[nro++] = "/etc/ssl";
		ro[nro++] = "/dev/urandom";
		if (conf[0] != '\0') {
			ro[nro++] = conf;
			if (softhsm_tokendir(conf, tokendir, sizeof(tokendir)) == 0)
				rw[nrw++] = tokendir;
			else
				cc_log_warn("no directories.tokendir in %s: Landlock gives keys no "
				    "token directory", conf);
		}
		if (cc_sandbox_landlock(ro, nro, rw, nrw) == -1)
			return -1;
		cc_log_debug("landlock: read %s, %s and system libraries; read-write %s",
		    k->tok.module, conf[0] ? conf : "(no SoftHSM conf)",
		    tokendir[0] ? tokendir : "(nothing)");
	}
	if (seccomp && (deny_new_sockets() == -1 ||
	    cc_sandbox_seccomp(keys_syscalls, sizeof(keys_syscalls) / sizeof(keys_syscalls[0])) ==
	    -1))
		return -1;
	return 0;
}
