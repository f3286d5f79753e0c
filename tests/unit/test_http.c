/* Tests for net/http_server and net/http_client over loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/ids.h"
#include "core/rng.h"
#include "net/http_client.h"
#include "core/trace.h"
#include "net/http_server.h"

#define BODY_LIMIT 1024

typedef struct fixture {
	rng *r;
	http_server *srv;
	char base[64];
} fixture;

/* Echoes the request as JSON; a few paths behave differently. */
static void echo_handler(void *ud, msg_req *req, msg_resp *resp)
{
	if (strcmp(req->path, "/sleep") == 0) {
		usleep(300 * 1000);
		msg_resp_set(resp, 200, "text/plain", "late", 4);
		return;
	}
	if (strcmp(req->path, "/nostatus") == 0) {
		msg_resp_set_header(resp, "X-Ignored", "1");
		return; /* status left 0 */
	}
	if (strcmp(req->path, "/plain") == 0) {
		msg_resp_set(resp, 202, "text/plain; charset=utf-8", "ok", 2);
		msg_resp_set_header(resp, "X-Custom", "yes");
		return;
	}
	char q[128] = "";
	int qrc = msg_req_query(req, "q", q, sizeof q);
	const char *auth = msg_req_header(req, "authorization");
	const char *ctype = msg_req_header(req, "content-type");
	json_t *o = json_pack("{s:s,s:s,s:s*,s:s*,s:I,s:s,s:s,s:s*,s:s*,s:s*}",
			      "method", req->method, "path", req->path, "query", req->query,
			      "body", req->body, "body_len", (json_int_t)req->body_len,
			      "request_id", req->request_id, "peer", req->peer, "q",
			      qrc == 1 ? q : NULL, "authorization", auth, "content_type", ctype);
	msg_resp_json(resp, 200, o);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	f->r = rng_new(42);
	http_server_opts o = {"127.0.0.1", 0, 4, BODY_LIMIT, 5, 0};
	char err[256];
	f->srv = http_server_start(&o, echo_handler, NULL, f->r, err, sizeof err);
	if (!f->srv) {
		fprintf(stderr, "server: %s\n", err);
		return -1;
	}
	snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", http_server_port(f->srv));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	http_server_stop(f->srv);
	rng_free(f->r);
	free(f);
	return 0;
}

static json_t *body_json(const msg_resp *resp)
{
	json_error_t jerr;
	json_t *j = json_loadb(resp->body, resp->body_len, 0, &jerr);
	assert_non_null(j);
	return j;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void test_get_round_trip(void **state)
{
	fixture *f = *state;
	assert_true(http_server_port(f->srv) > 0);
	char url[128];
	snprintf(url, sizeof url, "%s/v1/things?a=1", f->base);
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(http_client_simple("GET", url, NULL, NULL, &resp, 2000), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, "application/json");
	json_t *j = body_json(&resp);
	assert_string_equal(jstr(j, "method"), "GET");
	assert_string_equal(jstr(j, "path"), "/v1/things");
	assert_string_equal(jstr(j, "query"), "a=1");
	assert_null(json_object_get(j, "body"));
	assert_string_equal(jstr(j, "peer"), "127.0.0.1");
	json_decref(j);
	msg_resp_clear(&resp);
}

static void test_post_round_trip(void **state)
{
	fixture *f = *state;
	char url[128];
	snprintf(url, sizeof url, "%s/v1/orders", f->base);
	msg_resp resp;
	msg_resp_init(&resp);
	const char *body = "{\"items\":[{\"sku\":\"A-1\",\"qty\":2}]}";
	assert_int_equal(http_client_simple("POST", url, body, "tok123", &resp, 2000), 0);
	assert_int_equal(resp.status, 200);
	json_t *j = body_json(&resp);
	assert_string_equal(jstr(j, "method"), "POST");
	assert_string_equal(jstr(j, "body"), body);
	assert_int_equal(json_integer_value(json_object_get(j, "body_len")), strlen(body));
	assert_string_equal(jstr(j, "authorization"), "Bearer tok123");
	assert_string_equal(jstr(j, "content_type"), "application/json");
	assert_null(json_object_get(j, "query"));
	json_decref(j);

	/* other methods with a body go through msg_req as given */
	msg_req req;
	assert_int_equal(msg_req_init(&req, "PUT", "/v1/inventory/A-1"), 0);
	assert_int_equal(msg_req_add_header(&req, "Content-Type", "application/json"), 0);
	assert_int_equal(msg_req_set_body(&req, "{\"on_hand\":5}", 13), 0);
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	j = body_json(&resp);
	assert_string_equal(jstr(j, "method"), "PUT");
	assert_string_equal(jstr(j, "body"), "{\"on_hand\":5}");
	json_decref(j);
	msg_req_clear(&req);

	/* DELETE without a body */
	assert_int_equal(msg_req_init(&req, "DELETE", "/v1/cart"), 0);
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	j = body_json(&resp);
	assert_string_equal(jstr(j, "method"), "DELETE");
	assert_int_equal(json_integer_value(json_object_get(j, "body_len")), 0);
	json_decref(j);
	msg_req_clear(&req);
	msg_resp_clear(&resp);
}

static void test_query_and_path_intact(void **state)
{
	fixture *f = *state;
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	const char *q = "q=red+shoes%21%26more&x=%2F%20&y=a=b";
	char target[128];
	snprintf(target, sizeof target, "/v1/products/A%%2F1?%s", q);
	assert_int_equal(msg_req_init(&req, "GET", target), 0);
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	assert_int_equal(resp.status, 200);
	json_t *j = body_json(&resp);
	assert_string_equal(jstr(j, "query"), q);
	assert_string_equal(jstr(j, "q"), "red shoes!&more");
	/* the path arrives as sent, so a router can decode each segment */
	assert_string_equal(jstr(j, "path"), "/v1/products/A%2F1");
	json_decref(j);
	msg_req_clear(&req);
	msg_resp_clear(&resp);
}

/* One thread's handle carries every call, and a call sets only its own
 * options: a call must not inherit the method, body, headers or
 * Content-Length of the call before it, whatever the order. */
static void test_calls_do_not_inherit(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *method;
		const char *body; /* NULL: none */
		const char *header; /* sent as X-Only-Once when not NULL */
	} calls[] = {
		{ "HEAD", NULL, NULL },     { "GET", NULL, NULL },
		{ "POST", "{\"a\":1}", "1" }, { "GET", NULL, NULL },
		{ "DELETE", NULL, NULL },   { "PUT", "{\"b\":2}", NULL },
		{ "HEAD", NULL, NULL },     { "POST", NULL, NULL },
		{ "GET", NULL, NULL },
	};
	for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		msg_req req;
		msg_resp resp;
		msg_resp_init(&resp);
		assert_int_equal(msg_req_init(&req, calls[i].method, "/seq"), 0);
		if (calls[i].body) {
			assert_int_equal(msg_req_add_header(&req, "Content-Type", "application/json"), 0);
			assert_int_equal(msg_req_set_body(&req, calls[i].body, strlen(calls[i].body)), 0);
		}
		if (calls[i].header)
			assert_int_equal(msg_req_add_header(&req, "Authorization", calls[i].header), 0);
		assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
		assert_int_equal(resp.status, 200);
		if (strcmp(calls[i].method, "HEAD") == 0) {
			assert_int_equal(resp.body_len, 0);
		} else {
			json_t *j = body_json(&resp);
			assert_string_equal(jstr(j, "method"), calls[i].method);
			assert_int_equal(json_integer_value(json_object_get(j, "body_len")),
					 calls[i].body ? (json_int_t)strlen(calls[i].body) : 0);
			if (calls[i].body)
				assert_string_equal(jstr(j, "body"), calls[i].body);
			assert_true((json_object_get(j, "authorization") == NULL) ==
				    !calls[i].header);
			assert_true((json_object_get(j, "content_type") == NULL) ==
				    !calls[i].body);
			json_decref(j);
		}
		msg_req_clear(&req);
		msg_resp_clear(&resp);
	}
}

static void test_request_id(void **state)
{
	fixture *f = *state;
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);

	assert_int_equal(msg_req_init(&req, "GET", "/rid"), 0);
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	const char *rid = msg_resp_header(&resp, "X-Request-Id");
	assert_non_null(rid);
	assert_true(ids_valid(rid));
	assert_int_equal(strncmp(rid, "req_", 4), 0);
	json_t *j = body_json(&resp);
	assert_string_equal(jstr(j, "request_id"), rid);
	json_decref(j);
	char first[64];
	snprintf(first, sizeof first, "%s", rid);
	/* a fresh id per request */
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	assert_string_not_equal(msg_resp_header(&resp, "x-request-id"), first);
	msg_req_clear(&req);

	/* the client's valid id is kept */
	assert_int_equal(msg_req_init(&req, "GET", "/rid"), 0);
	assert_int_equal(msg_req_add_header(&req, "X-Request-Id", "client-id.42"), 0);
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	assert_string_equal(msg_resp_header(&resp, "X-Request-Id"), "client-id.42");
	j = body_json(&resp);
	assert_string_equal(jstr(j, "request_id"), "client-id.42");
	json_decref(j);
	msg_req_clear(&req);

	/* an unsafe one is replaced */
	assert_int_equal(msg_req_init(&req, "GET", "/rid"), 0);
	assert_int_equal(msg_req_add_header(&req, "X-Request-Id", "bad id<script>"), 0);
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	assert_string_not_equal(msg_resp_header(&resp, "X-Request-Id"), "bad id<script>");
	assert_true(ids_valid(msg_resp_header(&resp, "X-Request-Id")));
	msg_req_clear(&req);

	/* error responses carry one too */
	assert_int_equal(msg_req_init(&req, "GET", "/nostatus"), 0);
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	assert_true(ids_valid(msg_resp_header(&resp, "X-Request-Id")));
	msg_req_clear(&req);
	msg_resp_clear(&resp);
}

static void test_handler_headers(void **state)
{
	fixture *f = *state;
	char url[128];
	snprintf(url, sizeof url, "%s/plain", f->base);
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(http_client_simple("GET", url, NULL, NULL, &resp, 2000), 0);
	assert_int_equal(resp.status, 202);
	assert_string_equal(resp.content_type, "text/plain; charset=utf-8");
	assert_string_equal(msg_resp_header(&resp, "x-custom"), "yes");
	assert_int_equal(resp.body_len, 2);
	assert_memory_equal(resp.body, "ok", 2);
	msg_resp_clear(&resp);
}

static void assert_error_code(const msg_resp *resp, int status, const char *code)
{
	assert_int_equal(resp->status, status);
	assert_string_equal(resp->content_type, "application/json");
	json_t *j = body_json(resp);
	json_t *e = json_object_get(j, "error");
	assert_non_null(e);
	assert_string_equal(jstr(e, "code"), code);
	assert_non_null(jstr(e, "message"));
	json_decref(j);
}

static void test_status_zero_is_500(void **state)
{
	fixture *f = *state;
	char url[128];
	snprintf(url, sizeof url, "%s/nostatus", f->base);
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(http_client_simple("GET", url, NULL, NULL, &resp, 2000), 0);
	assert_error_code(&resp, 500, "internal");
	msg_resp_clear(&resp);
}

static void test_body_limit(void **state)
{
	fixture *f = *state;
	char url[128];
	snprintf(url, sizeof url, "%s/v1/big", f->base);
	msg_resp resp;
	msg_resp_init(&resp);

	/* exactly the limit is fine */
	char *body = malloc(4 * BODY_LIMIT + 1);
	memset(body, 'x', 4 * BODY_LIMIT);
	body[BODY_LIMIT] = '\0';
	assert_int_equal(http_client_simple("POST", url, body, NULL, &resp, 2000), 0);
	assert_int_equal(resp.status, 200);
	json_t *j = body_json(&resp);
	assert_int_equal(json_integer_value(json_object_get(j, "body_len")), BODY_LIMIT);
	json_decref(j);

	/* one byte more is not */
	body[BODY_LIMIT] = 'x';
	body[BODY_LIMIT + 1] = '\0';
	assert_int_equal(http_client_simple("POST", url, body, NULL, &resp, 2000), 0);
	assert_error_code(&resp, 413, "payload_too_large");
	assert_non_null(msg_resp_header(&resp, "X-Request-Id"));
	/* refused before any handler, yet with a trace context */
	trace_ctx tc;
	assert_int_equal(trace_parse(msg_resp_header(&resp, "traceparent"), &tc), 0);

	/* far more, several times in a row; the server keeps serving */
	body[4 * BODY_LIMIT] = '\0';
	for (int i = 0; i < 5; i++) {
		assert_int_equal(http_client_simple("POST", url, body, NULL, &resp, 2000), 0);
		assert_error_code(&resp, 413, "payload_too_large");
		assert_int_equal(http_client_simple("GET", url, NULL, NULL, &resp, 2000), 0);
		assert_int_equal(resp.status, 200);
	}
	free(body);
	msg_resp_clear(&resp);
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in sin = {0};
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return; /* the server may close early; the reply says why */
		s += w;
		n -= (size_t)w;
	}
}

/* Reads until the peer closes (or the timeout); returns the bytes read. */
static size_t read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t n = recv(fd, buf + got, len - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return got;
}

static void test_body_limit_chunked(void **state)
{
	/* Without a Content-Length the limit is enforced while reading. */
	fixture *f = *state;
	int fd = connect_to(http_server_port(f->srv));
	const char *head = "POST /v1/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
	send_all(fd, head, strlen(head));
	char chunk[600];
	memset(chunk, 'y', sizeof chunk);
	char hdr[16];
	for (int i = 0; i < 2; i++) {
		snprintf(hdr, sizeof hdr, "%zx\r\n", sizeof chunk);
		send_all(fd, hdr, strlen(hdr));
		send_all(fd, chunk, sizeof chunk);
		send_all(fd, "\r\n", 2);
	}
	send_all(fd, "0\r\n\r\n", 5);
	char buf[4096];
	read_all(fd, buf, sizeof buf);
	close(fd);
	assert_true(strncmp(buf, "HTTP/1.1 413", 12) == 0);
	assert_non_null(strstr(buf, "payload_too_large"));

	/* and a small chunked body is accepted */
	fd = connect_to(http_server_port(f->srv));
	const char *ok = "POST /v1/small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			 "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
	send_all(fd, ok, strlen(ok));
	read_all(fd, buf, sizeof buf);
	close(fd);
	assert_true(strncmp(buf, "HTTP/1.1 200", 12) == 0);
	assert_non_null(strstr(buf, "\"body\":\"hello\""));
}

/* Sends a GET with one X-Pad header of padlen bytes (Connection: close) and
 * reads the whole answer into buf. */
static size_t get_with_header(int port, size_t padlen, char *buf, size_t len)
{
	int fd = connect_to(port);
	char *req = malloc(padlen + 256);
	assert_non_null(req);
	int n = sprintf(req, "GET /v1/hdr HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ");
	memset(req + n, 'h', padlen);
	n += (int)padlen;
	n += sprintf(req + n, "\r\n\r\n");
	send_all(fd, req, (size_t)n);
	free(req);
	size_t got = read_all(fd, buf, len);
	close(fd);
	return got;
}

static void assert_still_serving(const char *base)
{
	char url[128];
	snprintf(url, sizeof url, "%s/v1/after", base);
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(http_client_simple("GET", url, NULL, NULL, &resp, 2000), 0);
	assert_int_equal(resp.status, 200);
	msg_resp_clear(&resp);
}

static void test_header_limit(void **state)
{
	fixture *f = *state;
	int port = http_server_port(f->srv);
	char buf[8192];

	/* well under the default 8 KiB: served */
	get_with_header(port, 7 * 1024, buf, sizeof buf);
	assert_true(strncmp(buf, "HTTP/1.1 200", 12) == 0);

	/* 16 KiB: 431 in the API error shape, and the connection is closed */
	size_t got = get_with_header(port, 16 * 1024, buf, sizeof buf);
	assert_true(got > 0);
	if (strncmp(buf, "HTTP/1.1 431", 12) != 0)
		fail_msg("expected 431, got: %.80s", buf);
	assert_non_null(strstr(buf, "\"code\":\"request_header_fields_too_large\""));
	assert_non_null(strcasestr(buf, "Content-Type: application/json"));
	assert_non_null(strcasestr(buf, "X-Request-Id: req_"));
	assert_non_null(strcasestr(buf, "traceparent: 00-"));
	assert_non_null(strcasestr(buf, "Connection: close"));
	assert_still_serving(f->base);

	/* the sum counts, not one header: 100 headers of 100 bytes */
	int fd = connect_to(port);
	char line[160];
	const char *head = "GET /v1/many HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
	send_all(fd, head, strlen(head));
	for (int i = 0; i < 100; i++) {
		int n = snprintf(line, sizeof line, "X-H%03d: %0100d\r\n", i, i);
		send_all(fd, line, (size_t)n);
	}
	send_all(fd, "\r\n", 2);
	read_all(fd, buf, sizeof buf);
	close(fd);
	assert_true(strncmp(buf, "HTTP/1.1 431", 12) == 0);
	assert_non_null(strstr(buf, "request_header_fields_too_large"));

	/* far beyond the connection's memory: libmicrohttpd refuses it itself
	 * (431 and close) or the connection is cut; never served, never a crash */
	for (int i = 0; i < 3; i++) {
		got = get_with_header(port, 256 * 1024, buf, sizeof buf);
		assert_true(got == 0 || strncmp(buf, "HTTP/1.1 431", 12) == 0);
		assert_still_serving(f->base);
	}
}

static void test_header_limit_configured(void **state)
{
	rng *r = rng_new(8);
	http_server_opts o = {"127.0.0.1", 0, 2, BODY_LIMIT, 5, 1024};
	char err[256];
	http_server *s = http_server_start(&o, echo_handler, NULL, r, err, sizeof err);
	assert_non_null(s);
	char buf[4096];
	get_with_header(http_server_port(s), 600, buf, sizeof buf);
	assert_true(strncmp(buf, "HTTP/1.1 200", 12) == 0);
	get_with_header(http_server_port(s), 2000, buf, sizeof buf);
	assert_true(strncmp(buf, "HTTP/1.1 431", 12) == 0);
	assert_non_null(strstr(buf, "larger than 1024 bytes"));
	http_server_stop(s);
	rng_free(r);
}

static long ms_since(const struct timeval *t0)
{
	struct timeval t1;
	gettimeofday(&t1, NULL);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_usec - t0->tv_usec) / 1000;
}

static void test_slow_client_timeout(void **state)
{
	rng *r = rng_new(9);
	http_server_opts o = {"127.0.0.1", 0, 2, BODY_LIMIT, 1, 0};
	char err[256];
	http_server *s = http_server_start(&o, echo_handler, NULL, r, err, sizeof err);
	assert_non_null(s);
	int port = http_server_port(s);
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", port);

	/* one client stops in the middle of its headers, another in the middle
	 * of its body */
	struct timeval t0;
	gettimeofday(&t0, NULL);
	int half = connect_to(port);
	const char *h1 = "GET /v1/slow HTTP/1.1\r\nHost: x\r\nX-Partial: ";
	send_all(half, h1, strlen(h1));
	int body = connect_to(port);
	const char *h2 = "POST /v1/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
	send_all(body, h2, strlen(h2));

	/* meanwhile the server answers others at once */
	for (int i = 0; i < 3; i++) {
		struct timeval a;
		gettimeofday(&a, NULL);
		assert_still_serving(base);
		assert_true(ms_since(&a) < 500);
	}

	/* both stalled connections are closed after about a second, without an
	 * answer */
	char buf[512];
	ssize_t n = recv(half, buf, sizeof buf, 0);
	long ms = ms_since(&t0);
	if (n != 0)
		fail_msg("stalled client: recv = %zd after %ld ms, expected a close", n, ms);
	assert_true(ms >= 700 && ms < 2500);
	n = recv(body, buf, sizeof buf, 0);
	ms = ms_since(&t0);
	if (n != 0)
		fail_msg("stalled upload: recv = %zd after %ld ms, expected a close", n, ms);
	assert_true(ms < 2500);
	close(half);
	close(body);

	/* and it still serves */
	assert_still_serving(base);
	http_server_stop(s);
	rng_free(r);
}

static void test_keep_alive_reused(void **state)
{
	fixture *f = *state;
	rng *r = rng_new(7);
	http_server_opts o = {"127.0.0.1", 0, 2, BODY_LIMIT, 5, 0};
	char err[256];
	http_server *s = http_server_start(&o, echo_handler, NULL, r, err, sizeof err);
	assert_non_null(s);
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/ka", http_server_port(s));
	msg_resp resp;
	msg_resp_init(&resp);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(http_client_simple(i % 2 ? "POST" : "GET", url, i % 2 ? "{}" : NULL,
						    NULL, &resp, 2000),
				 0);
		assert_int_equal(resp.status, 200);
	}
	assert_int_equal(http_server_connections(s), 1);
	/* the shared server saw its own connections, not these */
	assert_true(http_server_connections(f->srv) >= 1);
	msg_resp_clear(&resp);
	http_server_stop(s);
	rng_free(r);
}

typedef struct slow_client {
	const char *url;
	long ms;
	int status;
} slow_client;

static void *slow_get(void *arg)
{
	slow_client *c = arg;
	struct timeval t0, t1;
	msg_resp resp;
	msg_resp_init(&resp);
	gettimeofday(&t0, NULL);
	if (http_client_simple("GET", c->url, NULL, NULL, &resp, 5000) == 0)
		c->status = resp.status;
	gettimeofday(&t1, NULL);
	c->ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	msg_resp_clear(&resp);
	return NULL;
}

/* A thread per connection: six slow requests run side by side, and a
 * quick one on another connection is not held up by them; keep-alive still
 * serves many requests on one connection. */
static void test_thread_per_connection(void **state)
{
	rng *r = rng_new(8);
	http_server_opts o = {"127.0.0.1", 0, 1, BODY_LIMIT, 5, 0};
	char err[256];
	http_server *s = http_server_start_threaded(&o, 64, echo_handler, NULL, r, err, sizeof err);
	assert_non_null(s);
	char slow_url[128], quick_url[128];
	snprintf(slow_url, sizeof slow_url, "http://127.0.0.1:%d/sleep", http_server_port(s));
	snprintf(quick_url, sizeof quick_url, "http://127.0.0.1:%d/quick", http_server_port(s));
	enum { SLOW = 6 };
	slow_client cs[SLOW];
	pthread_t th[SLOW];
	for (int i = 0; i < SLOW; i++) {
		cs[i] = (slow_client){ .url = slow_url };
		assert_int_equal(pthread_create(&th[i], NULL, slow_get, &cs[i]), 0);
	}
	usleep(50 * 1000);
	slow_client quick = { .url = quick_url };
	slow_get(&quick);
	assert_int_equal(quick.status, 200);
	assert_true(quick.ms < 200);
	for (int i = 0; i < SLOW; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(cs[i].status, 200);
		assert_true(cs[i].ms < 600); /* not one after another (6 x 300 ms) */
	}
	msg_resp resp;
	msg_resp_init(&resp);
	unsigned long before = http_server_connections(s);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(http_client_simple("GET", quick_url, NULL, NULL, &resp, 2000), 0);
		assert_int_equal(resp.status, 200);
	}
	assert_true(http_server_connections(s) - before <= 1);
	msg_resp_clear(&resp);
	http_server_stop(s);
	rng_free(r);
}

static void test_closed_port_unavailable(void **state)
{
	/* Take a free port, then let it go: nothing listens there. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {0};
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	socklen_t sl = sizeof sin;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(sin.sin_port));
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(http_client_simple("GET", url, NULL, NULL, &resp, 1000), ERR_UNAVAILABLE);
	assert_int_equal(resp.status, 0);
	msg_resp_clear(&resp);
}

static void test_timeout(void **state)
{
	fixture *f = *state;
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(msg_req_init(&req, "GET", "/sleep"), 0);
	http_call_opts o = {500, 100};
	struct timeval t0, t1;
	gettimeofday(&t0, NULL);
	assert_int_equal(http_client_do(f->base, &req, &resp, &o), ERR_TIMEOUT);
	gettimeofday(&t1, NULL);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	assert_true(ms < 280);
	assert_int_equal(resp.status, 0);
	msg_req_clear(&req);

	/* the client recovers on the same thread */
	assert_int_equal(msg_req_init(&req, "GET", "/after"), 0);
	assert_int_equal(http_client_do(f->base, &req, &resp, NULL), 0);
	assert_int_equal(resp.status, 200);
	msg_req_clear(&req);
	msg_resp_clear(&resp);
}

static void test_port_in_use(void **state)
{
	fixture *f = *state;
	http_server_opts o = {"127.0.0.1", http_server_port(f->srv), 1, BODY_LIMIT, 5, 0};
	char err[256] = "";
	http_server *s = http_server_start(&o, echo_handler, NULL, f->r, err, sizeof err);
	assert_null(s);
	assert_non_null(strstr(err, "in use"));
	char prefix[64];
	snprintf(prefix, sizeof prefix, "127.0.0.1:%d:", o.port);
	assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);

	/* not an address at all */
	o.host = "not-an-ip";
	o.port = 0;
	assert_null(http_server_start(&o, echo_handler, NULL, f->r, err, sizeof err));
	assert_true(err[0] != '\0');
	http_server_stop(NULL);
}

int main(void)
{
	http_client_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_round_trip),
		cmocka_unit_test(test_post_round_trip),
		cmocka_unit_test(test_query_and_path_intact),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_calls_do_not_inherit),
		cmocka_unit_test(test_handler_headers),
		cmocka_unit_test(test_status_zero_is_500),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_body_limit_chunked),
		cmocka_unit_test(test_header_limit),
		cmocka_unit_test(test_header_limit_configured),
		cmocka_unit_test(test_slow_client_timeout),
		cmocka_unit_test(test_keep_alive_reused),
		cmocka_unit_test(test_thread_per_connection),
		cmocka_unit_test(test_closed_port_unavailable),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_port_in_use),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	http_client_global_cleanup();
	return rc;
}
