/* certconn-hub admin ... (hub_cli.c). argv[0] is "admin". Returns the exit code. */
#ifndef CERTCONN_HUB_CLI_H
#define CERTCONN_HUB_CLI_H

int hub_cli_main(int argc, char **argv);

#endif
