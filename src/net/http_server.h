/* http_server: an HTTP/1.1 server over libmicrohttpd (internal epoll thread
 * pool, or a thread per connection; keep-alive). It turns each request into a msg_req, calls the handler
 * and sends the msg_resp. It enforces the body limit (413) and the header
 * limit (431), both in the API error shape, closes connections that stall
 * longer than conn_timeout_s, gives every response an X-Request-Id (the
 * client's when it sent a valid one, else a new one) and never lets a
 * handler's failure stop it. */
#ifndef ECOM_HTTP_SERVER_H
#define ECOM_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include "net/msg.h"
#include "core/rng.h"

typedef void (*http_handler_fn)(void *ud, msg_req *req, msg_resp *resp);

typedef struct http_server_opts {
	const char *host;        /* "127.0.0.1" */
	int port;                /* 0 picks a free port */
	int threads;             /* worker threads, >= 1 */
	size_t body_limit;       /* bytes; larger bodies get 413 */
	unsigned conn_timeout_s; /* idle connection timeout */
	/* Bytes of request line and headers; more gets 431. 0 means 8 KiB.
	 * Headers too large even for the connection's memory pool (a few times
	 * this) are refused by libmicrohttpd itself: 431 and the connection
	 * closed, with its own HTML body. */
	size_t header_limit;
} http_server_opts;

typedef struct http_server http_server;

/* Starts serving at once. fn and ud are borrowed and must outlive the
 * server; r (borrowed) makes request ids. Returns NULL with err filled when
 * the address cannot be bound ("127.0.0.1:8080: address already in use"). */
http_server *http_server_start(const http_server_opts *opts, http_handler_fn fn, void *ud,
			       rng *r, char *err, size_t errlen);
/* As http_server_start, but with a thread per connection instead of a pool
 * of opts->threads workers, and at most max_connections connections open
 * at once (0: libmicrohttpd's default; more wait to be accepted). For a
 * server whose handlers block on other servers (the gateway): a pool worker
 * owns every connection it accepted, so one slow handler would hold up the
 * requests on its other connections. */
http_server *http_server_start_threaded(const http_server_opts *opts, unsigned max_connections,
					http_handler_fn fn, void *ud, rng *r, char *err,
					size_t errlen);
/* The port actually bound. */
int http_server_port(const http_server *s);
/* How many client connections the server has accepted so far (a test and
 * diagnostics hook: with keep-alive, many requests share one). */
unsigned long http_server_connections(const http_server *s);
/* Stops accepting, finishes in-flight requests, frees. NULL is fine. */
void http_server_stop(http_server *s);

#endif
