/* line_server: a TCP server for a line-oriented protocol (SMTP), as
 * http_server is for HTTP. It accepts connections, reads lines (ending in
 * LF; a CR before it is dropped), hands each to the protocol's handler and
 * writes what the handler answers, after the delay the handler asks for.
 * The protocol's code (an engine's, see engine_def.lines) sees plain data,
 * never a socket. A thread per connection, at most max_connections at once
 * (one more is closed at once); a connection silent for conn_timeout_s is
 * closed. */
#ifndef ECOM_LINE_SERVER_H
#define ECOM_LINE_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* What a handler answers: bytes to write (possibly none), written after
 * delay_us; close ends the connection once they are written. */
#define LINE_OUT_MAX 2048
typedef struct line_out {
	char data[LINE_OUT_MAX];
	size_t len;
	int close;
	int64_t delay_us;
} line_out;

/* Appends printf-formatted text to out->data (cut at LINE_OUT_MAX). */
void line_out_printf(line_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Longest line handed over whole; a longer one is handed over cut at this
 * length with truncated set, the rest of it read and dropped. */
#define LINE_MAX_LEN 4096

/* A protocol: called from the connection's thread. */
typedef struct line_proto {
	const char *scheme; /* "smtp": the scheme of the server's URL */
	/* A new connection from peer ("127.0.0.1:5555"): its state, with the
	 * greeting in out. NULL (or out->close) closes it after out is sent. */
	void *(*open)(void *ud, const char *peer, line_out *out);
	/* One line of len bytes (NUL-terminated, without its line end). */
	void (*line)(void *conn, const char *line, size_t len, int truncated, line_out *out);
	/* The connection ended (either side). conn may be NULL. */
	void (*close)(void *conn);
} line_proto;

typedef struct line_server_opts {
	const char *host;        /* "127.0.0.1" */
	int port;                /* 0 picks a free port */
	int max_connections;     /* >= 1 */
	unsigned conn_timeout_s; /* idle connection timeout, >= 1 */
} line_server_opts;

typedef struct line_server line_server;

/* Starts serving proto (borrowed, with ud, both outliving the server) at
 * once. NULL with err filled when the address cannot be bound. */
line_server *line_server_start(const line_server_opts *o, const line_proto *proto, void *ud,
			       char *err, size_t errlen);
/* The port actually bound. */
int line_server_port(const line_server *s);
/* Stops accepting, closes every connection, waits for their threads, frees.
 * NULL is fine. */
void line_server_stop(line_server *s);

#endif
