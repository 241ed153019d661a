/*
 * The keys role of certconnd: the only process that loads the PKCS#11 module.
 *
 * Started by the parent through cc_spawn_role as
 *   certconnd --role keys --channels N [--user U] [--no-seccomp] [--no-landlock]
 * with the parent channel on CC_FD_PARENT and N channels from net on CC_FD_PEER0...
 * It reads CONF_LOG, CONF_KEYS, one CONF_ROLE per role, CONF_PIN and CONF_END from the
 * parent, drops to the user, loads the module, logs in, finds every role's key, checks the
 * mechanisms, sandboxes itself and sends CC_MSG_READY; then it serves net's requests (one
 * worker thread and PKCS#11 session per channel) and the parent's (KEYS_LIST_REQ,
 * KEY_INFO_REQ, SET_DEBUG, SHUTDOWN) until SHUTDOWN or EOF from the parent. See docs/keys.md.
 */
#ifndef CERTCONN_KEYS_H
#define CERTCONN_KEYS_H

/*
 * argv[0] is the program; options are parsed from argv[1] ("--role keys" may be there and
 * is skipped). Returns the process exit status: 0 after SHUTDOWN or the parent's EOF, 1 on a
 * start-up error or a malformed message from a peer (logged), 75 (EX_TEMPFAIL) when the
 * PKCS#11 module stays hung, so that the parent restarts keys.
 */
int keys_main(int argc, char **argv);

/* Exit status when the module hangs for longer than 3 x op_timeout_ms. */
#define KEYS_EXIT_HUNG 75

#endif
