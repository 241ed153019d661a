/*
 * Privilege dropping and sandboxing for the child roles. The mechanisms live here; each
 * role keeps its own list of what it needs (net in src/certconnd/net_sandbox.c, keys in
 * hsm/keys_sandbox.c). 0/-1 with a log line on failure.
 */
#ifndef CERTCONN_SANDBOX_H
#define CERTCONN_SANDBOX_H

#include <stddef.h>

struct cc_sandbox_opts {
	const char *user;   /* run as this user when started as root; NULL/"" keeps the user */
	int seccomp;        /* apply the role's seccomp filter */
	int landlock;       /* apply Landlock where the kernel has it */
};

/*
 * Parses the sandbox options that the parent passes on a child's command line
 * (--user NAME, --no-seccomp, --no-landlock). Unknown arguments are an error.
 * Defaults: no user change, seccomp and landlock on.
 */
int cc_sandbox_parse_args(int argc, char **argv, int first, struct cc_sandbox_opts *o);

/* If running as root: setgroups to the user's group only, setresgid, setresuid, and check
 * that root cannot be regained. No-op when not root or user is empty. */
int cc_sandbox_drop_user(const char *user);

/* PR_SET_NO_NEW_PRIVS and PR_SET_DUMPABLE 0. Called before either filter. */
int cc_sandbox_no_new_privs(void);

/*
 * Landlock: allows reading (and executing/mapping) files under ro[], reading and writing
 * under rw[], nothing else on the file system. Returns 0 when applied, 1 when the kernel
 * has no Landlock (logged once), -1 on failure.
 */
int cc_sandbox_landlock(const char *const *ro, size_t nro, const char *const *rw, size_t nrw);

/*
 * seccomp: default action kill-process, the listed syscalls allowed (numbers from
 * <sys/syscall.h>, resolved with seccomp_syscall_resolve_name when given by name).
 * Sanitizer builds add what ASan/UBSan need at exit.
 */
int cc_sandbox_seccomp(const char *const *names, size_t n);

#endif
