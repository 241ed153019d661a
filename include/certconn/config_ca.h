/* "net.ca": the CA backend: the local CA (issue: SCEP enrollment). Checked by src/config/config_ca.c. */
#ifndef CERTCONN_CONFIG_CA_H
#define CERTCONN_CONFIG_CA_H

struct cc_config_ca {
	int unused; /* the module that builds this section fills it in */
};

#endif
