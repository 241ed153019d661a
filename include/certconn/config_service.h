/* "net.service": the upstream service client: certconn-hub or Intune (issue: certconn-hub). Checked by src/config/config_service.c. */
#ifndef CERTCONN_CONFIG_SERVICE_H
#define CERTCONN_CONFIG_SERVICE_H

struct cc_config_service {
	int unused; /* the module that builds this section fills it in */
};

#endif
