/* stderr diagnostics: see include/certconn/log.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <openssl/err.h>

#include "certconn/log.h"

static const char *log_prog = "certconn";
static const char *log_role = "";
static int log_verbose;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
cc_log_init(const char *prog, const char *role, int verbose)
{
	log_prog = prog;
	log_role = role ? role : "";
	log_verbose = verbose;
}

void cc_log_set_verbose(int verbose) { log_verbose = verbose; }
int cc_log_verbose(void) { return log_verbose; }
const char *cc_log_role(void) { return log_role; }

static void
vlog(const char *level, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	pthread_mutex_lock(&log_lock);
	if (log_role[0] != '\0')
		fprintf(stderr, "%s[%s]: %s%s\n", log_prog, log_role, level, line);
	else
		fprintf(stderr, "%s: %s%s\n", log_prog, level, line);
	pthread_mutex_unlock(&log_lock);
}

#define LOGFN(name, level, cond)                                                         \
	void name(const char *fmt, ...)                                                      \
	{                                                                                    \
		va_list ap;                                                                      \
		if (!(cond))                                                                     \
			return;                                                                      \
		va_start(ap, fmt);                                                               \
		vlog(level, fmt, ap);                                                            \
		va_end(ap);                                                                      \
	}

LOGFN(cc_log_debug, "debug: ", log_verbose)
LOGFN(cc_log_info, "", 1)
LOGFN(cc_log_warn, "warning: ", 1)
LOGFN(cc_log_err, "error: ", 1)

void
cc_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void
cc_log_openssl(const char *what)
{
	unsigned long e;
	char buf[256];
	char line[1024];
	size_t off = 0;

	line[0] = '\0';
	const char *data;
	int flags, n;

	/* The error's data string carries the peer's own words (e.g. keys' refusal reason). */
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0 &&
	    off < sizeof(line) - 1) {
		ERR_error_string_n(e, buf, sizeof(buf));
		n = snprintf(line + off, sizeof(line) - off, "%s%s%s%s", off ? "; " : "", buf,
		    (flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0' ? ": " : "",
		    (flags & ERR_TXT_STRING) && data != NULL ? data : "");
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (off > sizeof(line) - 1)
		off = sizeof(line) - 1;
	cc_log_err("%s: %s", what, line[0] ? line : "(no OpenSSL error)");
}
