/* certconnd's roles: the parent (parent*.c) and net (net*.c); keys lives in hsm/. */
#ifndef CERTCONND_H
#define CERTCONND_H

int parent_main(int argc, char **argv);
int net_main(int argc, char **argv);

/* net's sandbox: user, Landlock paths and seccomp list (net_sandbox.c). */
struct cc_sandbox_opts;
int net_sandbox_apply(const struct cc_sandbox_opts *o, const char *state_dir);
int net_sandbox_check(int argc, char **argv);

#endif
