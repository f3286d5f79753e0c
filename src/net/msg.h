/* msg: a request and a response as plain data. Engines see only these, never
 * the transport: the daemon host fills them from libmicrohttpd, the
 * simulator and the tests fill them directly. */
#ifndef ECOM_MSG_H
#define ECOM_MSG_H

#include <stddef.h>
#include <jansson.h>

#define MSG_MAX_HEADERS 32
#define MSG_MAX_PARAMS 4

typedef struct msg_header {
	char *name;
	char *value;
} msg_header;

typedef struct msg_req {
	char *method;            /* "GET", ... */
	char *path;              /* path without the query, as sent (percent-encoded) */
	char *query;             /* raw query string without '?', or NULL */
	msg_header headers[MSG_MAX_HEADERS];
	int nheaders;
	char *body;              /* NUL-terminated copy; may be NULL when empty */
	size_t body_len;
	/* Filled by router_dispatch: the route template and its captures. */
	const char *route;
	char *params[MSG_MAX_PARAMS];
	int nparams;
	char request_id[64];
	char peer[64];           /* client address, "" when unknown */
} msg_req;

typedef struct msg_resp {
	int status;
	char *body;              /* owned, malloc'd; may be NULL */
	size_t body_len;
	char content_type[64];
	msg_header headers[MSG_MAX_HEADERS];
	int nheaders;
	const char *route;       /* route template for metrics labels, or NULL */
} msg_resp;

/* Initialises req with copies of method, path (and query split off at '?'
 * when path contains one) and an empty everything else. */
int msg_req_init(msg_req *req, const char *method, const char *path_and_query);
/* Frees what req owns (not req itself). */
void msg_req_clear(msg_req *req);
/* Adds a header (copied). ERR_TOO_LARGE past MSG_MAX_HEADERS. */
int msg_req_add_header(msg_req *req, const char *name, const char *value);
/* Sets header name to a copy of value, replacing every header of that name
 * (case-insensitive); value NULL removes them all. */
int msg_req_set_header(msg_req *req, const char *name, const char *value);
/* Replaces the body with a copy of len bytes. */
int msg_req_set_body(msg_req *req, const char *body, size_t len);
/* Header value by case-insensitive name, or NULL. Borrowed. */
const char *msg_req_header(const msg_req *req, const char *name);
/* URL-decoded value of query parameter name into buf; returns 1 when
 * present, 0 when absent, ERR_TOO_LARGE when it does not fit. */
int msg_req_query(const msg_req *req, const char *name, char *buf, size_t len);
/* Capture i of the matched route, or NULL. Borrowed. */
const char *msg_req_param(const msg_req *req, int i);

void msg_resp_init(msg_resp *resp);
void msg_resp_clear(msg_resp *resp);
/* Adds or replaces a response header (copied); value NULL removes it. */
int msg_resp_set_header(msg_resp *resp, const char *name, const char *value);
const char *msg_resp_header(const msg_resp *resp, const char *name);
/* Sets status and a copy of body with content type. */
int msg_resp_set(msg_resp *resp, int status, const char *ctype, const char *body, size_t len);
/* Sets status and the compact serialisation of v; steals the reference to v
 * (v may be NULL: an empty object is sent). */
int msg_resp_json(msg_resp *resp, int status, json_t *v);
/* The API.md error shape:
 *   {"error":{"code":code,"message":message,"details":details}}
 * details may be NULL (omitted); the reference to it is stolen. */
int msg_resp_error(msg_resp *resp, int status, const char *code, const char *message,
		   json_t *details);

/* The standard code for a status ("invalid_argument" for 400, ...). */
const char *msg_status_code(int status);

#endif
