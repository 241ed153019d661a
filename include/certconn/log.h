/*
 * Diagnostic logging to stderr (journald picks it up under systemd). Not the event log: see
 * event.h for the catalogue events. Lines look like "certconnd[keys]: warning: text".
 */
#ifndef CERTCONN_LOG_H
#define CERTCONN_LOG_H

#include <stdarg.h>

void cc_log_init(const char *prog, const char *role, int verbose);
void cc_log_set_verbose(int verbose);
int cc_log_verbose(void);
const char *cc_log_role(void);

void cc_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cc_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cc_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cc_log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs and exits with status 1 (children: the parent sees it and restarts or gives up). */
void cc_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Appends OpenSSL's error queue (and clears it) to a log line: "…: <openssl text>". */
void cc_log_openssl(const char *what);

#endif
