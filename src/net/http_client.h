/* http_client: outbound HTTP over libcurl. Each thread keeps its own easy
 * handle so connections to the same host are reused (keep-alive) without
 * locking. Every call has a connect timeout and a total deadline. */
#ifndef ECOM_HTTP_CLIENT_H
#define ECOM_HTTP_CLIENT_H

#include <stdint.h>
#include "net/msg.h"

/* Calls curl_global_init once; call from main before threads start. */
int http_client_global_init(void);
void http_client_global_cleanup(void);

typedef struct http_call_opts {
	long connect_timeout_ms; /* default 1000 when 0 */
	long timeout_ms;         /* total, default 5000 when 0 */
} http_call_opts;

/* On a transport failure, resp carries this header with libcurl's words
 * for it, for logs; it never comes from a server. */
#define HTTP_CLIENT_ERROR_HEADER "X-Client-Error"

/* Sends req (method, path, query, headers, body) to base_url
 * ("http://127.0.0.1:8081") and fills resp (status, body, headers,
 * content type). Returns 0 when any HTTP response came back (whatever its
 * status); ERR_UNAVAILABLE when the connection could not be made (nothing
 * was sent, so a retry elsewhere is always safe); ERR_TIMEOUT when the
 * deadline passed; ERR_IO for other transport failures (the request may
 * have been processed). */
int http_client_do(const char *base_url, const msg_req *req, msg_resp *resp,
		   const http_call_opts *opts);

/* Convenience: method + url + optional JSON body + optional bearer token;
 * resp filled as above. */
int http_client_simple(const char *method, const char *url, const char *body,
		       const char *bearer, msg_resp *resp, long timeout_ms);

#endif
