/* http_multi: many HTTP requests at once from one thread, over one libcurl
 * multi handle (the load generator's engine). Connections are pooled by the
 * multi handle and reused by every transfer to the same host, so a few
 * hundred transfers in flight need no more threads than one. A transfer
 * (http_xfer) is reusable: start it, get its callback, start it again.
 * Not thread-safe: one thread drives a multi and its transfers. */
#ifndef ECOM_HTTP_MULTI_H
#define ECOM_HTTP_MULTI_H

#include <stddef.h>

typedef struct http_multi http_multi;
typedef struct http_xfer http_xfer;

/* Called from http_multi_run() when x has finished (whatever happened);
 * x may be started again from inside the callback. */
typedef void (*http_xfer_done)(http_xfer *x, void *ud);

typedef struct http_xfer_req {
	const char *method;    /* "GET", "POST", "PUT", "DELETE", ... */
	const char *target;    /* path and query: "/v1/products?page_size=20" */
	const char *body;      /* sent as application/json when not NULL */
	const char *bearer;    /* Authorization: Bearer ..., or NULL */
	const char *idem_key;  /* Idempotency-Key, or NULL */
	const char *source_ip; /* the local address to send from, or NULL */
	long timeout_ms;       /* the whole exchange; 5000 when 0 */
	int keep_body;         /* keep the response body (otherwise it is read and dropped) */
} http_xfer_req;

/* A multi handle sending to base_url ("http://127.0.0.1:8080", copied),
 * keeping up to max_conns idle connections. Owned by the caller:
 * http_multi_free(). NULL when out of memory. Call
 * http_client_global_init() first. */
http_multi *http_multi_new(const char *base_url, int max_conns);
/* Aborts whatever is in flight (no callbacks) and frees. NULL is fine. */
void http_multi_free(http_multi *m);

/* A transfer. Owned by the caller: http_xfer_free() (after it left its
 * multi: finished, aborted, or the multi freed). */
http_xfer *http_xfer_new(void);
void http_xfer_free(http_xfer *x);

/* Starts x on m (everything in r is copied). 0, ERR_BUSY when x is in
 * flight, ERR_INVALID, ERR_NOMEM. */
int http_multi_start(http_multi *m, http_xfer *x, const http_xfer_req *r, http_xfer_done cb,
		     void *ud);
/* Moves every transfer forward, waiting up to timeout_ms for the network
 * when nothing finished at once, and calls the callbacks of those that
 * finished. The number finished (>= 0) or ERR_IO. */
int http_multi_run(http_multi *m, int timeout_ms);
/* Transfers started and not yet finished. */
int http_multi_in_flight(const http_multi *m);
/* Takes x out of flight without its callback. Nothing when it is idle. */
void http_multi_abort(http_multi *m, http_xfer *x);

/* The outcome of a finished transfer: the HTTP status, 0 when no response
 * came back, with the error then: ERR_UNAVAILABLE (no connection: nothing
 * was sent), ERR_TIMEOUT, ERR_IO. */
int http_xfer_status(const http_xfer *x);
int http_xfer_error(const http_xfer *x);
/* The response body (NUL-terminated, borrowed until the next start) when
 * the request asked to keep it; NULL otherwise. */
const char *http_xfer_body(const http_xfer *x, size_t *len);

#endif
