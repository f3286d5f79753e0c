/* err: the one project error enum. Every function that can fail returns 0
 * (ERR_OK) or one of these negative codes; the message goes to the log or an
 * error buffer where the failure is known. */
#ifndef ECOM_ERR_H
#define ECOM_ERR_H

enum ecom_err {
	ERR_OK = 0,
	ERR_INVALID = -1,     /* bad argument or input */
	ERR_NOMEM = -2,       /* allocation failed */
	ERR_NOT_FOUND = -3,   /* no such row, route, file */
	ERR_CONFLICT = -4,    /* unique violation, duplicate */
	ERR_IO = -5,          /* file or socket error */
	ERR_STORE = -6,       /* database error not covered below */
	ERR_UNAVAILABLE = -7, /* peer or store unreachable; try later */
	ERR_TIMEOUT = -8,     /* deadline passed */
	ERR_STATE = -9,       /* illegal state transition */
	ERR_PARSE = -10,      /* malformed text (JSON, URL, config) */
	ERR_BUSY = -11,       /* locked or already running */
	ERR_RETRY = -12,      /* transient, safe to retry (serialization) */
	ERR_FORBIDDEN = -13,  /* authenticated but not allowed */
	ERR_UNAUTH = -14,     /* missing or bad credentials */
	ERR_TOO_LARGE = -15,  /* over a size limit */
	ERR_INTERNAL = -16    /* a bug: should not happen */
};

/* Short stable name of a code ("invalid", "not_found", ...); "unknown" for
 * anything else. Never NULL. */
const char *err_name(int code);

#endif
