/*
 * faulty_pkcs11: a PKCS#11 module for the keys tests that forwards every call to SoftHSM2
 * ($FAULTY_PKCS11_TARGET, default /usr/lib/softhsm/libsofthsm2.so) and injects one-shot
 * faults before C_SignInit, C_Sign, C_DecryptInit and C_Decrypt.
 *
 * The faults come from the control file named by $FAULTY_PKCS11_CONTROL, one per line,
 * consumed first line first, one line per call of those four functions:
 *   session_invalid     -> CKR_SESSION_HANDLE_INVALID
 *   session_closed      -> CKR_SESSION_CLOSED
 *   device_removed      -> CKR_DEVICE_REMOVED
 *   token_not_present   -> CKR_TOKEN_NOT_PRESENT
 *   device_error        -> CKR_DEVICE_ERROR
 *   param_invalid       -> CKR_MECHANISM_PARAM_INVALID
 *   hang_ms N           -> sleeps N ms, then forwards the call
 *   pass                -> forwards (to let a call through before the next fault)
 * The file is opened once, before the keys process sandboxes itself, and rewritten through
 * that descriptor (pread, pwrite, ftruncate), so Landlock does not stand in the way. Tests
 * write it with plain writes (not rename) to keep the same file.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *target_dl;
static CK_FUNCTION_LIST *target;
static CK_FUNCTION_LIST mine;
static int control_fd = -1;

/* Takes the first line of the control file, or "" when there is none. */
static void
next_fault(char *line, size_t cap)
{
	char buf[4096];
	ssize_t n;
	char *nl;
	size_t len, rest;

	line[0] = '\0';
	pthread_mutex_lock(&lock);
	if (control_fd == -1)
		goto out;
	n = pread(control_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		goto out;
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	len = nl ? (size_t)(nl - buf) : (size_t)n;
	rest = nl ? (size_t)n - len - 1 : 0;
	snprintf(line, cap, "%.*s", (int)len, buf);
	if (rest > 0 && pwrite(control_fd, nl + 1, rest, 0) != (ssize_t)rest)
		rest = 0;
	if (ftruncate(control_fd, (off_t)rest) == -1)
		line[0] = '\0';
out:
	pthread_mutex_unlock(&lock);
}

/* CKR_OK: go on and forward; anything else: return it instead. */
static CK_RV
inject(const char *where)
{
	char line[128];
	long ms;

	next_fault(line, sizeof(line));
	if (line[0] == '\0' || strcmp(line, "pass") == 0)
		return CKR_OK;
	fprintf(stderr, "faulty_pkcs11: %s: injecting \"%s\"\n", where, line);
	if (strcmp(line, "session_invalid") == 0)
		return CKR_SESSION_HANDLE_INVALID;
	if (strcmp(line, "session_closed") == 0)
		return CKR_SESSION_CLOSED;
	if (strcmp(line, "device_removed") == 0)
		return CKR_DEVICE_REMOVED;
	if (strcmp(line, "token_not_present") == 0)
		return CKR_TOKEN_NOT_PRESENT;
	if (strcmp(line, "device_error") == 0)
		return CKR_DEVICE_ERROR;
	if (strcmp(line, "param_invalid") == 0)
		return CKR_MECHANISM_PARAM_INVALID;
	if (sscanf(line, "hang_ms %ld", &ms) == 1 && ms > 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		return CKR_OK;
	}
	fprintf(stderr, "faulty_pkcs11: unknown fault \"%s\" ignored\n", line);
	return CKR_OK;
}

static CK_RV
f_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	CK_RV rv = inject("C_SignInit");

	return rv != CKR_OK ? rv : target->C_SignInit(s, m, k);
}

static CK_RV
f_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig, CK_ULONG_PTR sl)
{
	CK_RV rv;

	/* A length query (sig == NULL) is not an operation: no fault there. */
	if (sig != NULL && (rv = inject("C_Sign")) != CKR_OK)
		return rv;
	return target->C_Sign(s, d, dl, sig, sl);
}

static CK_RV
f_DecryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	CK_RV rv = inject("C_DecryptInit");

	return rv != CKR_OK ? rv : target->C_DecryptInit(s, m, k);
}

static CK_RV
f_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG il, CK_BYTE_PTR out, CK_ULONG_PTR ol)
{
	CK_RV rv;

	if (out != NULL && (rv = inject("C_Decrypt")) != CKR_OK)
		return rv;
	return target->C_Decrypt(s, in, il, out, ol);
}

static CK_RV
f_Initialize(CK_VOID_PTR args)
{
	const char *path = getenv("FAULTY_PKCS11_CONTROL");

	pthread_mutex_lock(&lock);
	if (control_fd == -1 && path != NULL && path[0] != '\0')
		control_fd = open(path, O_RDWR | O_CLOEXEC);
	pthread_mutex_unlock(&lock);
	return target->C_Initialize(args);
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	const char *path = getenv("FAULTY_PKCS11_TARGET");
	CK_C_GetFunctionList getfl;
	CK_RV rv = CKR_OK;

	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&lock);
	if (target == NULL) {
		target_dl = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so",
		    RTLD_NOW | RTLD_LOCAL);
		*(void **)&getfl = target_dl ? dlsym(target_dl, "C_GetFunctionList") : NULL;
		if (getfl == NULL || getfl(&target) != CKR_OK || target == NULL) {
			target = NULL;
			rv = CKR_GENERAL_ERROR;
		} else {
			/* Every function forwards by default; four get a fault check first. */
			mine = *target;
			mine.C_Initialize = f_Initialize;
			mine.C_SignInit = f_SignInit;
			mine.C_Sign = f_Sign;
			mine.C_DecryptInit = f_DecryptInit;
			mine.C_Decrypt = f_Decrypt;
		}
	}
	pthread_mutex_unlock(&lock);
	if (rv == CKR_OK)
		*out = &mine;
	return rv;
}
