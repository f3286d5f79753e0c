/* err: names of the project error codes. */
#include "core/err.h"

const char *err_name(int code)
{
	switch (code) {
	case ERR_OK: return "ok";
	case ERR_INVALID: return "invalid";
	case ERR_NOMEM: return "nomem";
	case ERR_NOT_FOUND: return "not_found";
	case ERR_CONFLICT: return "conflict";
	case ERR_IO: return "io";
	case ERR_STORE: return "store";
	case ERR_UNAVAILABLE: return "unavailable";
	case ERR_TIMEOUT: return "timeout";
	case ERR_STATE: return "state";
	case ERR_PARSE: return "parse";
	case ERR_BUSY: return "busy";
	case ERR_RETRY: return "retry";
	case ERR_FORBIDDEN: return "forbidden";
	case ERR_UNAUTH: return "unauthenticated";
	case ERR_TOO_LARGE: return "too_large";
	case ERR_INTERNAL: return "internal";
	default: return "unknown";
	}
}
