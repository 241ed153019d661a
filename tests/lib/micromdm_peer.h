/*
 * micromdm/scep's server as a test peer: built from tests/peers/micromdm (micromdm 2.1.0's
 * example server from Debian's golang-github-micromdm-scep-dev, its CSR signer behind a
 * mutex; see tests/peers/micromdm/main.go), given a fresh file-depot CA, and started on
 * loopback with a random static challenge. Used by test_scep_micromdm (the interop test)
 * and scep_bench (the performance peer).
 *
 * The binary is built by tests/peers/micromdm/build.sh into $CC_BUILD_DIR/micromdm, or,
 * without CC_BUILD_DIR (a bench run by hand), into micromdm/ next to the build's bench/ and
 * tests/ directories. Error convention: 0/-1 with a line on stderr.
 */
#ifndef CERTCONN_MICROMDM_PEER_H
#define CERTCONN_MICROMDM_PEER_H

#include <sys/types.h>

#include <openssl/x509.h>

struct mm_peer {
	pid_t pid;                 /* the server process (it does not fork) */
	int port;
	char dir[256];             /* the caller's directory: depot/, port, server.log */
	char url[320];             /* http://127.0.0.1:<port>/scep */
	char challenge[65];        /* the static challenge (random hex) */
	char ca_pem[300];          /* <dir>/depot/ca.pem */
	X509 *ca;                  /* micromdm's CA certificate (its RA too) */
};

/* Builds the server if needed (into out_dir, NULL: the default above). */
int mm_peer_build(const char *out_dir, char *bin, size_t binlen);

/* Makes the CA (RSA key_bits) under dir (which must exist) and starts the server. */
int mm_peer_start(struct mm_peer *p, const char *dir, int key_bits);

/* SIGTERM, waited for (SIGKILL after 5 s). Safe on a peer that never started. */
void mm_peer_stop(struct mm_peer *p);

#endif
