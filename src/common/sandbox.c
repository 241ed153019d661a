/*
 * Privilege drop, Landlock and seccomp for the child roles: see include/certconn/sandbox.h.
 * The order matters and is the callers': drop the user, then no_new_privs, then Landlock,
 * then seccomp last (Landlock's own syscalls would be killed afterwards).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <seccomp.h>

#include "certconn/log.h"
#include "certconn/sandbox.h"

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

int
cc_sandbox_parse_args(int argc, char **argv, int first, struct cc_sandbox_opts *o)
{
	o->user = NULL;
	o->seccomp = 1;
	o->landlock = 1;
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			o->user = argv[++i];
		else if (strcmp(argv[i], "--no-seccomp") == 0)
			o->seccomp = 0;
		else if (strcmp(argv[i], "--no-landlock") == 0)
			o->landlock = 0;
		else {
			cc_log_err("unknown sandbox argument: %s", argv[i]);
			return -1;
		}
	}
	return 0;
}

int
cc_sandbox_drop_user(const char *user)
{
	struct passwd *pw;
	uid_t ruid, euid, suid;

	if (user == NULL || user[0] == '\0' || geteuid() != 0)
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		cc_log_err("sandbox: no such user %s (scripts/install-deps and appliance/sysusers.d "
		    "create it)", user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		cc_log_err("sandbox: cannot become %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) != -1 || getresuid(&ruid, &euid, &suid) == -1 || ruid != pw->pw_uid ||
	    euid != pw->pw_uid || suid != pw->pw_uid) {
		cc_log_err("sandbox: root could be regained after dropping to %s", user);
		return -1;
	}
	return 0;
}

int
cc_sandbox_no_new_privs(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		cc_log_err("sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
#ifndef CC_SANITIZED
	/* No core dumps and no ptrace from the same user: keys holds a PIN and sessions. The
	 * sanitizers' leak checker attaches to the process with ptrace, so not there. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
		cc_log_err("sandbox: PR_SET_DUMPABLE: %s", strerror(errno));
		return -1;
	}
#endif
	return 0;
}

static int
landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : (int)abi;
}

static int
landlock_add_path(int ruleset, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = access };
	int fd, r;

	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd == -1) {
		/* A path that does not exist on this system grants nothing; not an error. */
		cc_log_debug("sandbox: landlock skips %s: %s", path, strerror(errno));
		return 0;
	}
	pb.parent_fd = fd;
	r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	if (r == -1 && errno == EINVAL) {
		/* Directory-only rights on a file: keep the file rights. */
		pb.allowed_access &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
		r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	}
	close(fd);
	if (r == -1) {
		cc_log_err("sandbox: landlock rule for %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
cc_sandbox_landlock(const char *const *ro, size_t nro, const char *const *rw, size_t nrw)
{
	struct landlock_ruleset_attr attr = { 0 };
	uint64_t all, rd, wr;
	int abi, ruleset = -1, ret = -1;
	static int warned;

	abi = landlock_abi();
	if (abi < 1) {
		if (!warned++)
			cc_log_warn("sandbox: the kernel has no Landlock; file system access is "
			    "limited by the user and seccomp only");
		return 1;
	}
	rd = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	wr = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
	    LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
	    LANDLOCK_ACCESS_FS_MAKE_FIFO;
	all = rd | wr | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
	    LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2) {
		all |= LANDLOCK_ACCESS_FS_REFER;
		wr |= LANDLOCK_ACCESS_FS_REFER;
	}
	if (abi >= 3) {
		all |= LANDLOCK_ACCESS_FS_TRUNCATE;
		wr |= LANDLOCK_ACCESS_FS_TRUNCATE;
	}
	attr.handled_access_fs = all;
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset == -1) {
		cc_log_err("sandbox: landlock_create_ruleset: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < nro; i++)
		if (landlock_add_path(ruleset, ro[i], rd) == -1)
			goto out;
	for (size_t i = 0; i < nrw; i++)
		if (landlock_add_path(ruleset, rw[i], rd | wr) == -1)
			goto out;
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) == -1) {
		cc_log_err("sandbox: landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (ruleset != -1)
		close(ruleset);
	return ret;
}

/* What the sanitizers need at exit (leak check: a ptrace-attached tracer thread, /proc). */
static const char *const sanitizer_syscalls[] = {
	"ptrace", "wait4", "waitid", "clone", "clone3", "sched_getaffinity", "sigaltstack",
	"prctl", "getppid", "readlink", "readlinkat", "process_vm_readv", "getrlimit",
	"prlimit64", "tgkill", "kill", "open", "openat", "stat", "newfstatat", "fstat", "lstat",
	"sched_yield", "munmap", "mmap", "mprotect", "madvise", "getpid", "gettid", "write",
	"exit", "exit_group", "getdents", "getdents64", "close", "read", "lseek", "pipe2",
	"futex", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "nanosleep",
	"clock_nanosleep",
};

/*
 * Two names narrow a syscall instead of allowing it whole, for a role that makes threads
 * but never processes:
 *   "clone:thread"   clone only with CLONE_THREAD in its flags (pthread_create; a fork or a
 *                    new process is killed). flags is clone's first argument on x86-64 and
 *                    arm64, the architectures certconn runs on.
 *   "clone3:enosys"  clone3 fails with ENOSYS: its flags sit in a struct seccomp cannot read,
 *                    and glibc then falls back to clone, which the rule above checks.
 */
static int
seccomp_special(scmp_filter_ctx ctx, const char *name, int *rc)
{
	if (strcmp(name, "clone:thread") == 0) {
		*rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
		    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
		return 1;
	}
	if (strcmp(name, "clone3:enosys") == 0) {
		*rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
		return 1;
	}
	return 0;
}

int
cc_sandbox_seccomp(const char *const *names, size_t n)
{
	scmp_filter_ctx ctx;
	int nr, rc, ret = -1;

	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		cc_log_err("sandbox: seccomp_init failed");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (seccomp_special(ctx, names[i], &rc)) {
			if (rc < 0) {
				cc_log_err("sandbox: seccomp rule %s: %s", names[i], strerror(-rc));
				goto out;
			}
			continue;
		}
		nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR) {
			cc_log_err("sandbox: unknown syscall name %s", names[i]);
			goto out;
		}
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0) {
			cc_log_err("sandbox: seccomp rule for %s: %s", names[i], strerror(-rc));
			goto out;
		}
	}
#ifdef CC_SANITIZED
	for (size_t i = 0; i < sizeof(sanitizer_syscalls) / sizeof(sanitizer_syscalls[0]); i++) {
		nr = seccomp_syscall_resolve_name(sanitizer_syscalls[i]);
		if (nr != __NR_SCMP_ERROR)
			(void)seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
#else
	(void)sanitizer_syscalls;
#endif
	rc = seccomp_load(ctx);
	if (rc < 0) {
		cc_log_err("sandbox: seccomp_load: %s", strerror(-rc));
		goto out;
	}
	ret = 0;
out:
	seccomp_release(ctx);
	return ret;
}
