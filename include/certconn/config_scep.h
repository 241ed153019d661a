/* "net.scep": the SCEP endpoint and its profiles (issue: SCEP enrollment). Checked by src/config/config_scep.c. */
#ifndef CERTCONN_CONFIG_SCEP_H
#define CERTCONN_CONFIG_SCEP_H

struct cc_config_scep {
	int unused; /* the module that builds this section fills it in */
};

#endif
