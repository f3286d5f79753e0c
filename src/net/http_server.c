/* http_server: libmicrohttpd glue: msg_req in, msg_resp out. */
#include "net/http_server.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/trace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* How much of an oversized body without a Content-Length is read and
 * dropped before the connection is cut instead of answered. */
#define HTTP_SERVER_MAX_DISCARD (1024u * 1024u)

#define HTTP_SERVER_HEADER_LIMIT (8u * 1024u)
/* libmicrohttpd's own default per-connection memory pool. */
#define HTTP_SERVER_MIN_POOL (32u * 1024u)

struct http_server {
	struct MHD_Daemon *d;
	http_handler_fn fn;
	void *ud;
	rng *r;
	rng *own_rng; /* made here when the caller passed none */
	size_t body_limit;
	size_t header_limit;
	int port;
	atomic_ulong connections;
};

/* Per-request state, made by the URI log callback (the first thing MHD does
 * with a request) and freed by the completion callback. */
typedef struct req_state {
	char *raw_uri; /* request target as sent: "/v1/x%20y?a=b" */
	int started;   /* the first access-handler call has happened */
	int too_large;
	int answered;
	char *body;
	size_t len, cap;
	size_t discarded; /* body bytes dropped after the limit was passed */
} req_state;

static void state_free(req_state *st)
{
	if (!st)
		return;
	free(st->raw_uri);
	free(st->body);
	free(st);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
	req_state *st = calloc(1, sizeof *st);
	if (st && uri)
		st->raw_uri = strdup(uri);
	return st;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	state_free(*con_cls);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	http_server *s = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&s->connections, 1);
}

static enum MHD_Result add_req_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	msg_req *req = cls;
	if (key && value)
		msg_req_add_header(req, key, value);
	return req->nheaders < MSG_MAX_HEADERS ? MHD_YES : MHD_NO;
}

/* Sends resp (its body is handed over to MHD). close asks MHD to drop the
 * connection after the response. */
static enum MHD_Result send_resp(struct MHD_Connection *con, msg_resp *resp,
				 const char *request_id, int close)
{
	struct MHD_Response *r;
	if (resp->body && resp->body_len) {
		r = MHD_create_response_from_buffer(resp->body_len, resp->body,
						    MHD_RESPMEM_MUST_FREE);
		if (r)
			resp->body = NULL;
	} else {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (!r)
		return MHD_NO;
	for (int i = 0; i < resp->nheaders; i++) {
		const char *n = resp->headers[i].name;
		/* MHD owns framing; a handler cannot set these. */
		if (strcasecmp(n, "Content-Length") == 0 || strcasecmp(n, "Transfer-Encoding") == 0 ||
		    strcasecmp(n, "Content-Type") == 0 || strcasecmp(n, "X-Request-Id") == 0)
			continue;
		MHD_add_response_header(r, n, resp->headers[i].value);
	}
	if (resp->content_type[0])
		MHD_add_response_header(r, "Content-Type", resp->content_type);
	else if (msg_resp_header(resp, "Content-Type"))
		MHD_add_response_header(r, "Content-Type", msg_resp_header(resp, "Content-Type"));
	MHD_add_response_header(r, "X-Request-Id", request_id);
	if (close)
		MHD_add_response_header(r, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(con, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void make_request_id(http_server *s, struct MHD_Connection *con, char *buf, size_t len)
{
	const char *cid = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Request-Id");
	if (cid && ids_valid(cid) && strlen(cid) < len) {
		strcpy(buf, cid);
		return;
	}
	if (ids_new(s->r, "req", buf, len) != 0)
		snprintf(buf, len, "req");
}

/* A request refused here never reaches the host, which gives every other
 * answer its trace context: this one starts a trace of its own. */
static void new_trace_header(http_server *s, msg_resp *resp)
{
	trace_ctx t;
	char tp[TRACE_PARENT_SIZE];
	trace_new_root(&t, s->r);
	trace_format(&t, tp, sizeof(tp));
	msg_resp_set_header(resp, TRACE_HEADER, tp);
}

static enum MHD_Result answer_too_large(http_server *s, struct MHD_Connection *con,
					req_state *st)
{
	char id[IDS_MAX], msg[128];
	make_request_id(s, con, id, sizeof id);
	msg_resp resp;
	msg_resp_init(&resp);
	snprintf(msg, sizeof msg, "request body is larger than %zu bytes", s->body_limit);
	msg_resp_error(&resp, 413, "payload_too_large", msg, NULL);
	new_trace_header(s, &resp);
	st->answered = 1;
	enum MHD_Result ret = send_resp(con, &resp, id, 1);
	msg_resp_clear(&resp);
	return ret;
}

static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	size_t *total = cls;
	/* "Name: value\r\n" */
	*total += (key ? strlen(key) : 0) + 2 + (value ? strlen(value) : 0) + 2;
	return MHD_YES;
}

/* Bytes of the request line and headers as the client sent them (near
 * enough: MHD has already dropped optional white space). */
static size_t header_bytes(struct MHD_Connection *con, const req_state *st, const char *url,
			   const char *method, const char *version)
{
	size_t total = strlen(method) + 1 + strlen(st->raw_uri ? st->raw_uri : url) + 1 +
		       strlen(version ? version : "") + 2;
	MHD_get_connection_values(con, MHD_HEADER_KIND, sum_header, &total);
	return total;
}

static enum MHD_Result answer_headers_too_large(http_server *s, struct MHD_Connection *con,
						req_state *st)
{
	char id[IDS_MAX], msg[128];
	make_request_id(s, con, id, sizeof id);
	msg_resp resp;
	msg_resp_init(&resp);
	snprintf(msg, sizeof msg, "request line and headers are larger than %zu bytes",
		 s->header_limit);
	msg_resp_error(&resp, 431, "request_header_fields_too_large", msg, NULL);
	new_trace_header(s, &resp);
	st->answered = 1;
	enum MHD_Result ret = send_resp(con, &resp, id, 1);
	msg_resp_clear(&resp);
	return ret;
}

/* The path and query as the client sent them; falls back to MHD's decoded
 * url when the raw target is unusable (absolute-form, missing). */
static const char *request_target(const req_state *st, const char *url)
{
	const char *t = st->raw_uri;
	if (!t)
		return url;
	if (t[0] == '/')
		return t;
	const char *scheme = strstr(t, "://");
	if (scheme) {
		const char *p = strchr(scheme + 3, '/');
		if (p)
			return p;
	}
	return url;
}

static void peer_address(struct MHD_Connection *con, char *buf, size_t len)
{
	buf[0] = '\0';
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  (socklen_t)len);
}

static enum MHD_Result serve(http_server *s, struct MHD_Connection *con, req_state *st,
			     const char *url, const char *method)
{
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	if (msg_req_init(&req, method, request_target(st, url)) != 0)
		return MHD_NO;
	MHD_get_connection_values(con, MHD_HEADER_KIND, add_req_header, &req);
	req.body = st->body; /* handed over: NUL-terminated by append_body */
	req.body_len = st->len;
	st->body = NULL;
	st->len = st->cap = 0;
	peer_address(con, req.peer, sizeof req.peer);
	make_request_id(s, con, req.request_id, sizeof req.request_id);

	s->fn(s->ud, &req, &resp);
	if (resp.status < 100 || resp.status > 999) {
		msg_resp_clear(&resp);
		msg_resp_error(&resp, 500, "internal", "the handler produced no response", NULL);
	}
	st->answered = 1;
	enum MHD_Result ret = send_resp(con, &resp, req.request_id, 0);
	msg_req_clear(&req);
	msg_resp_clear(&resp);
	return ret;
}

static int append_body(req_state *st, const char *data, size_t n)
{
	if (st->len + n + 1 > st->cap) {
		size_t ncap = st->cap ? st->cap : 1024;
		while (ncap < st->len + n + 1)
			ncap *= 2;
		char *nb = realloc(st->body, ncap);
		if (!nb)
			return ERR_NOMEM;
		st->body = nb;
		st->cap = ncap;
	}
	memcpy(st->body + st->len, data, n);
	st->len += n;
	st->body[st->len] = '\0';
	return 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *con, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	http_server *s = cls;
	req_state *st = *con_cls;
	if (!st) {
		/* The URI callback could not allocate: give up on this connection. */
		return MHD_NO;
	}
	if (st->answered) {
		/* Already answered (413): swallow whatever MHD still hands us. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!st->started) {
		/* A normal response is never queued on the first call: MHD 0.9.75
		 * would drop keep-alive. The 413 below closes anyway. */
		st->started = 1;
		if (header_bytes(con, st, url, method, version) > s->header_limit)
			return answer_headers_too_large(s, con, st);
		const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(cl, &end, 10);
			/* Answering now is allowed by MHD (and closes the
			 * connection): the body is never read. */
			if (errno == ERANGE || v > s->body_limit)
				return answer_too_large(s, con, st);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (!st->too_large && st->len + n > s->body_limit) {
			st->too_large = 1;
			free(st->body);
			st->body = NULL;
			st->len = st->cap = 0;
		}
		if (st->too_large) {
			/* MHD only lets us answer once the body is in, so the rest is
			 * read and dropped; a client that keeps going is cut off. */
			st->discarded += n;
			return st->discarded > HTTP_SERVER_MAX_DISCARD ? MHD_NO : MHD_YES;
		}
		if (append_body(st, upload_data, n) != 0)
			return MHD_NO;
		return MHD_YES;
	}
	if (st->too_large)
		return answer_too_large(s, con, st);
	return serve(s, con, st, url, method);
}

/* Explains why host:port cannot be bound by trying it ourselves. */
static void explain_bind_failure(const struct sockaddr *sa, socklen_t salen, const char *host,
				 int port, char *err, size_t errlen)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int e = 0;
	if (fd < 0) {
		e = errno;
	} else {
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, sa, salen) != 0 || listen(fd, 1) != 0)
			e = errno;
		close(fd);
	}
	if (!err || !errlen)
		return;
	if (e)
		snprintf(err, errlen, "%s:%d: %s", host, port, strerror(e));
	else
		snprintf(err, errlen, "%s:%d: cannot start the HTTP daemon", host, port);
}

static http_server *start(const http_server_opts *opts, int per_connection, unsigned max_conns,
			  http_handler_fn fn, void *ud, rng *r, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!opts || !fn || opts->port < 0 || opts->port > 65535) {
		if (err && errlen)
			snprintf(err, errlen, "invalid server options");
		return NULL;
	}
	const char *host = opts->host && opts->host[0] ? opts->host : "127.0.0.1";
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	const struct sockaddr *sa;
	socklen_t salen;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD;
	memset(&sin, 0, sizeof sin);
	memset(&sin6, 0, sizeof sin6);
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)opts->port);
		sa = (const struct sockaddr *)&sin;
		salen = sizeof sin;
	} else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)opts->port);
		sa = (const struct sockaddr *)&sin6;
		salen = sizeof sin6;
		flags |= MHD_USE_IPv6;
	} else {
		if (err && errlen)
			snprintf(err, errlen, "%s:%d: not a numeric IP address", host, opts->port);
		return NULL;
	}
	if (per_connection)
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL; /* epoll is for pools */
	else if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	else
		flags |= MHD_USE_POLL;

	http_server *s = calloc(1, sizeof *s);
	if (!s) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->fn = fn;
	s->ud = ud;
	s->r = r;
	if (!r) {
		s->own_rng = rng_new(rng_os_seed());
		s->r = s->own_rng;
	}
	s->body_limit = opts->body_limit;
	s->header_limit = opts->header_limit ? opts->header_limit : HTTP_SERVER_HEADER_LIMIT;
	/* Room in the pool for headers up to twice the limit, so those reach
	 * us and get the API's 431; beyond that MHD answers 431 itself. */
	size_t pool = s->header_limit * 2 + 16u * 1024u;
	if (pool < HTTP_SERVER_MIN_POOL || pool < s->header_limit)
		pool = HTTP_SERVER_MIN_POOL;
	atomic_init(&s->connections, 0);

	unsigned int threads = opts->threads > 1 && !per_connection ? (unsigned int)opts->threads : 0;
	unsigned int limit = max_conns ? max_conns : FD_SETSIZE - 4; /* MHD's default */
	s->d = MHD_start_daemon(flags, (uint16_t)opts->port, NULL, NULL, on_access, s,
				MHD_OPTION_SOCK_ADDR, sa,
				MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)opts->conn_timeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
				MHD_OPTION_THREAD_POOL_SIZE, threads,
				MHD_OPTION_CONNECTION_LIMIT, limit,
				MHD_OPTION_END);
	if (!s->d) {
		explain_bind_failure(sa, salen, host, opts->port, err, errlen);
		rng_free(s->own_rng);
		free(s);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di && di->port ? di->port : opts->port;
	return s;
}

http_server *http_server_start(const http_server_opts *opts, http_handler_fn fn, void *ud,
			       rng *r, char *err, size_t errlen)
{
	return start(opts, 0, 0, fn, ud, r, err, errlen);
}

http_server *http_server_start_threaded(const http_server_opts *opts, unsigned max_connections,
					http_handler_fn fn, void *ud, rng *r, char *err,
					size_t errlen)
{
	return start(opts, 1, max_connections, fn, ud, r, err, errlen);
}

int http_server_port(const http_server *s)
{
	return s ? s->port : 0;
}

unsigned long http_server_connections(const http_server *s)
{
	return s ? atomic_load(&((http_server *)s)->connections) : 0;
}

void http_server_stop(http_server *s)
{
	if (!s)
		return;
	if (s->d)
		MHD_stop_daemon(s->d);
	rng_free(s->own_rng);
	free(s);
}
