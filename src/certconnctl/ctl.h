/* certconnctl's commands. Each returns the process exit code (0 ok, 1 failure, 2 usage). */
#ifndef CERTCONNCTL_H
#define CERTCONNCTL_H

#include <stdint.h>

struct cc_frame;

/* Control socket (ctl.c). */
int ctl_connect(const char *path);
int ctl_next(int fd, struct cc_frame *f);
int ctl_status(const char *sock, int json);
int ctl_keys_list(const char *sock);
int ctl_debug(const char *sock, uint32_t mask, int on);
int ctl_selftest(const char *sock, const char *prefix);

/* token init (token.c). */
int token_main(int argc, char **argv);

/* dev up / down / demo (dev.c). */
int dev_main(int argc, char **argv);

#endif
