/* Intune's CA request error codes: names, retryability (certconn/flows.h). */
#include <stdbool.h>
#include <stdint.h>

#include "certconn/flows.h"

bool
flows_code_retryable(int32_t code)
{
	return code >= 4100 && code <= 4103;
}

const char *
flows_code_name(int32_t code)
{
	switch (code) {
	case FLOWS_OK: return "Success";
	case FLOWS_E_NONRETRYABLE: return "NonRetryableServiceException";
	case FLOWS_E_SERIALIZATION: return "DataSerializationError";
	case FLOWS_E_PARAMETER: return "ParameterDataInvalidError";
	case FLOWS_E_CRYPTO: return "CryptographyError";
	case FLOWS_E_NOT_FOUND: return "CertificateNotFoundError";
	case FLOWS_E_CONFLICT: return "ConflictError";
	case FLOWS_E_NOT_SUPPORTED: return "NotSupportedError";
	case FLOWS_E_TOO_LARGE: return "PayloadTooLargeError";
	case FLOWS_E_RETRYABLE: return "RetryableServiceException";
	case FLOWS_E_UNAVAILABLE: return "ServiceUnavailableException";
	case FLOWS_E_BUSY: return "ServiceTooBusyException";
	case FLOWS_E_AUTH: return "AuthenticationException";
	default: return "Unknown";
	}
}
