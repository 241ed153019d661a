/* micromdm/scep's server as a test peer (micromdm_peer.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include "micromdm_peer.h"

/* The source tree from this file's own path (CMake compiles it by absolute path). */
static int
mm_source_dir(char *buf, size_t len)
{
	const char *env = getenv("CC_SOURCE_DIR");
	const char *f = __FILE__, *end;

	if (env != NULL)
		return snprintf(buf, len, "%s", env) < (int)len ? 0 : -1;
	end = strstr(f, "/tests/lib/micromdm_peer.c");
	if (f[0] != '/' || end == NULL)
		return -1;
	return snprintf(buf, len, "%.*s", (int)(end - f), f) < (int)len ? 0 : -1;
}

static int
mm_default_out(char *buf, size_t len)
{
	const char *env = getenv("CC_BUILD_DIR");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env != NULL)
		return snprintf(buf, len, "%s/micromdm", env) < (int)len ? 0 : -1;
	/* bench/scep_bench or tests/integ_*: the build directory is one up */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	return snprintf(buf, len, "%s/../micromdm", exe) < (int)len ? 0 : -1;
}

/* Runs argv (no shell), stdout and stderr to log (appended). Returns the exit status. */
static int
mm_run(char *const argv[], const char *log)
{
	pid_t pid = fork();
	int st;

	if (pid == -1)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
mm_peer_build(const char *out_dir, char *bin, size_t binlen)
{
	char src[PATH_MAX], out[PATH_MAX], script[PATH_MAX + 64], log[PATH_MAX + 16];
	char *argv[] = { "/bin/sh", script, out, NULL };

	if (mm_source_dir(src, sizeof(src)) == -1 ||
	    (out_dir != NULL ? snprintf(out, sizeof(out), "%s", out_dir) >= (int)sizeof(out) :
	    mm_default_out(out, sizeof(out)) == -1)) {
		fprintf(stderr, "micromdm_peer: cannot find the source or build directory\n");
		return -1;
	}
	snprintf(script, sizeof(script), "%s/tests/peers/micromdm/build.sh", src);
	if (mkdir(out, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "micromdm_peer: %s: %s\n", out, strerror(errno));
		return -1;
	}
	snprintf(log, sizeof(log), "%s/build.log", out);
	if (mm_run(argv, log) != 0) {
		fprintf(stderr, "micromdm_peer: building the server failed; see %s\n", log);
		return -1;
	}
	if (snprintf(bin, binlen, "%s/micromdm-scepserver", out) >= (int)binlen)
		return -1;
	return 0;
}

static int
mm_read_port(const char *path)
{
	FILE *f = fopen(path, "r");
	int port = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%d", &port) != 1 || port <= 0 || port > 65535)
		port = 0;
	fclose(f);
	return port;
}

int
mm_peer_start(struct mm_peer *p, const char *dir, int key_bits)
{
	char bin[PATH_MAX], depot[270], portfile[270], log[270], bits[16];
	unsigned char rnd[16];
	FILE *f;
	int st;

	memset(p, 0, sizeof(*p));
	if (snprintf(p->dir, sizeof(p->dir), "%s", dir) >= (int)sizeof(p->dir) ||
	    mm_peer_build(NULL, bin, sizeof(bin)) == -1)
		return -1;
	snprintf(depot, sizeof(depot), "%s/depot", p->dir);
	snprintf(portfile, sizeof(portfile), "%s/port", p->dir);
	snprintf(log, sizeof(log), "%s/server.log", p->dir);
	snprintf(p->ca_pem, sizeof(p->ca_pem), "%s/ca.pem", depot);
	snprintf(bits, sizeof(bits), "%d", key_bits);
	{
		char *argv[] = { bin, "ca", "-init", "-depot", depot, "-keySize", bits,
			"-organization", "micromdm interop", NULL };

		if (mm_run(argv, log) != 0) {
			fprintf(stderr, "micromdm_peer: ca -init failed; see %s\n", log);
			return -1;
		}
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(p->challenge + 2 * i, 3, "%02x", rnd[i]);
	p->pid = fork();
	if (p->pid == -1)
		return -1;
	if (p->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		char *argv[] = { bin, "-depot", depot, "-challenge", p->challenge, "-addr",
			"127.0.0.1:0", "-portfile", portfile, NULL };

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(bin, argv);
		_exit(127);
	}
	/* the port file appears (renamed into place) once the server listens */
	for (int i = 0; i < 200 && p->port == 0; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			fprintf(stderr, "micromdm_peer: the server exited; see %s\n", log);
			p->pid = 0;
			return -1;
		}
		nanosleep(&ts, NULL);
		p->port = mm_read_port(portfile);
	}
	if (p->port == 0) {
		fprintf(stderr, "micromdm_peer: the server did not listen in 10 s; see %s\n", log);
		mm_peer_stop(p);
		return -1;
	}
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d/scep", p->port);
	f = fopen(p->ca_pem, "r");
	p->ca = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	if (p->ca == NULL) {
		fprintf(stderr, "micromdm_peer: cannot read %s\n", p->ca_pem);
		mm_peer_stop(p);
		return -1;
	}
	return 0;
}

void
mm_peer_stop(struct mm_peer *p)
{
	int st;

	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		for (int i = 0; i < 100; i++) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
				p->pid = 0;
				break;
			}
			nanosleep(&ts, NULL);
		}
		if (p->pid > 0) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
		}
	}
	p->pid = 0;
	X509_free(p->ca);
	p->ca = NULL;
	OPENSSL_cleanse(p->challenge, sizeof(p->challenge));
}
