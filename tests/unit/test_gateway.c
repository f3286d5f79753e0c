/* Tests for services/gateway through its engine_def, against real loopback
 * upstreams: two http_server instances answering as "up-a" and "up-b", a
 * closed port (connection refused) and a listener that drops every request
 * it reads (a transport failure after the request went out). Each test gets
 * its own gateway over a real clock, with ctx->call doing what the daemon
 * host does (http_client_do) and counting which targets it was asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "thelp.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/msg.h"
#include "resil/fault.h"
#include "resil/guard.h"
#include "services/engine.h"
#include "services/gateway.h"

#define ADMIN "Bearer gw-admin"
#define REQ_ID "req_0123456789abcdef"
#define PEER "203.0.113.7"
#define UP_CTYPE "application/vnd.ecom+json"

/* ---- upstreams ------------------------------------------------------------------ */

typedef struct upstream {
	const char *name;
	http_server *srv;
	char addr[64];
	atomic_int hits;
} upstream;

static upstream up_a = { .name = "up-a" }, up_b = { .name = "up-b" };
static rng *srv_rng;

/* Answers like a catalog instance would, with a few paths that misbehave:
 * .../slow sleeps past the gateway's deadline, .../busy sleeps within a long
 * one, .../boom is the service failing with 500. Everything else echoes
 * what arrived, so the test can see what the gateway forwarded. */
static void upstream_handler(void *ud, msg_req *req, msg_resp *resp)
{
	upstream *u = ud;
	atomic_fetch_add(&u->hits, 1);
	/* As an instance's host answers the admin calls the gateway fans out;
	 * the method, the token and the body it got come back. */
	if (strncmp(req->path, "/admin/", 7) == 0) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:s*,s:s*}", "instance", u->name, "method",
				      req->method, "path", req->path, "auth",
				      msg_req_header(req, "Authorization"), "body", req->body);
		if (strcmp(req->path, "/admin/breakers") == 0)
			o = json_pack("{s:[o]}", "breakers", o);
		else if (strcmp(req->path, "/admin/faults") == 0)
			o = json_pack("{s:[o]}", "faults", o);
		msg_resp_json(resp, 200, o);
		return;
	}
	if (strstr(req->path, "/missing")) {
		msg_resp_error(resp, 404, "not_found", "no such product", NULL);
		return;
	}
	if (strstr(req->path, "/declined")) {
		msg_resp_error(resp, 402, "payment_declined", "declined", NULL);
		return;
	}
	if (strstr(req->path, "/slow")) {
		usleep(500 * 1000);
		msg_resp_set(resp, 200, "text/plain", "late", 4);
		return;
	}
	if (strstr(req->path, "/busy"))
		usleep(300 * 1000);
	if (strstr(req->path, "/boom")) {
		char body[128];
		int n = snprintf(body, sizeof body,
				 "{\"error\":{\"code\":\"internal\",\"message\":\"boom from %s\"}}",
				 u->name);
		msg_resp_set(resp, 500, "application/json", body, (size_t)n);
		msg_resp_set_header(resp, "X-Upstream", u->name);
		return;
	}
	int nids = 0;
	for (int i = 0; i < req->nheaders; i++)
		nids += strcasecmp(req->headers[i].name, "X-Request-Id") == 0;
	json_t *o = json_pack("{s:s,s:s,s:s,s:s*,s:s*,s:s*,s:i,s:s*,s:s*}", "upstream", u->name,
			      "method", req->method, "path", req->path, "query", req->query,
			      "body", req->body, "request_id", msg_req_header(req, "X-Request-Id"),
			      "request_id_headers", nids, "forwarded_for",
			      msg_req_header(req, "X-Forwarded-For"), "deadline",
			      msg_req_header(req, GUARD_DEADLINE_HEADER));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	msg_resp_set(resp, strcmp(req->method, "POST") == 0 ? 201 : 200, UP_CTYPE, s, strlen(s));
	free(s);
	msg_resp_set_header(resp, "X-Upstream", u->name);
	/* Hop-by-hop: must not be copied back by the gateway. */
	msg_resp_set_header(resp, "Keep-Alive", "timeout=5");
}

static int upstream_start(upstream *u)
{
	http_server_opts o = { "127.0.0.1", 0, 4, 1 << 20, 5, 0 };
	char err[256];
	atomic_store(&u->hits, 0);
	u->srv = http_server_start(&o, upstream_handler, u, srv_rng, err, sizeof err);
	if (!u->srv) {
		fprintf(stderr, "upstream %s: %s\n", u->name, err);
		return -1;
	}
	snprintf(u->addr, sizeof u->addr, "http://127.0.0.1:%d", http_server_port(u->srv));
	return 0;
}

/* A listener that accepts, reads the request and closes without answering:
 * the request was sent, so the caller sees a transport error (ERR_IO). */
typedef struct black_hole {
	int fd;
	char addr[64];
	pthread_t tid;
	atomic_int stop;
	atomic_int accepted;
} black_hole;

static void *black_hole_run(void *arg)
{
	black_hole *h = arg;
	while (!atomic_load(&h->stop)) {
		struct pollfd p = { .fd = h->fd, .events = POLLIN };
		if (poll(&p, 1, 20) <= 0)
			continue;
		int c = accept(h->fd, NULL, NULL);
		if (c < 0)
			continue;
		atomic_fetch_add(&h->accepted, 1);
		struct pollfd q = { .fd = c, .events = POLLIN };
		char buf[4096];
		if (poll(&q, 1, 500) > 0 && read(c, buf, sizeof buf) < 0)
			buf[0] = '\0';
		close(c);
	}
	return NULL;
}

static int black_hole_start(black_hole *h)
{
	memset(h, 0, sizeof *h);
	h->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    getsockname(h->fd, (struct sockaddr *)&sa, &len) != 0 || listen(h->fd, 8) != 0)
		return -1;
	snprintf(h->addr, sizeof h->addr, "http://127.0.0.1:%d", ntohs(sa.sin_port));
	return pthread_create(&h->tid, NULL, black_hole_run, h) == 0 ? 0 : -1;
}

static void black_hole_stop(black_hole *h)
{
	atomic_store(&h->stop, 1);
	pthread_join(h->tid, NULL);
	close(h->fd);
}

/* ---- the gateway under test ---------------------------------------------------- */

typedef struct fixture {
	clock_src *clock;
	rng *rng;
	FILE *logf;
	logger *log;
	metrics *metrics;
	config *config;
	fault_table *faults;
	engine_ctx ctx;
	void *eng;
	int64_t ttl_ms;
	char dead_addr[64];
	/* What the gateway asked ctx->call for. */
	pthread_mutex_t mu;
	int calls, dead_calls;
	int64_t last_timeout_ms;
} fixture;

/* The daemon host's host_call, plus bookkeeping. */
static int test_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	fixture *f = ud;
	pthread_mutex_lock(&f->mu);
	f->calls++;
	if (strcmp(target, f->dead_addr) == 0)
		f->dead_calls++;
	f->last_timeout_ms = timeout_ms;
	pthread_mutex_unlock(&f->mu);
	http_call_opts o = { .connect_timeout_ms = 200, .timeout_ms = timeout_ms };
	return http_client_do(target, req, resp, &o);
}

static int counter(fixture *f, int *which)
{
	pthread_mutex_lock(&f->mu);
	int v = *which;
	pthread_mutex_unlock(&f->mu);
	return v;
}

/* A gateway with these registry TTL and upstream timeout, and the
 * configuration pairs in kv (key, value, ..., NULL; may be NULL). Without
 * them the stale cache is off, so failures show as they are. */
static int gw_open_cfg(void **state, const char *ttl_ms, const char *timeout_ms,
		       const char *const *kv)
{
	fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	pthread_mutex_init(&f->mu, NULL);
	int port = thelp_closed_port();
	if (port <= 0)
		return -1;
	snprintf(f->dead_addr, sizeof f->dead_addr, "http://127.0.0.1:%d", port);
	f->clock = clock_real_new();
	f->rng = rng_new(7);
	f->logf = fopen("/dev/null", "w");
	f->log = log_new("gateway", f->logf, f->clock, LOG_DEBUG);
	f->metrics = metrics_new();
	f->config = config_new();
	if (!f->clock || !f->rng || !f->logf || !f->log || !f->metrics || !f->config ||
	    config_set(f->config, "gateway.upstream_timeout_ms", timeout_ms) != 0 ||
	    config_set(f->config, "registry.ttl_ms", ttl_ms) != 0 ||
	    config_set(f->config, "gateway.stale_entries", "0") != 0)
		return -1;
	for (int i = 0; kv && kv[i]; i += 2)
		if (config_set(f->config, kv[i], kv[i + 1]) != 0)
			return -1;
	f->faults = fault_table_new();
	f->ttl_ms = atoll(ttl_ms);
	f->ctx = (engine_ctx){
		.service = "gateway",
		.instance_id = "gateway-1",
		.clock = f->clock,
		.rng = f->rng,
		.log = f->log,
		.metrics = f->metrics,
		.config = f->config,
		.call = test_call,
		.call_ud = f,
		.admin_token = "gw-admin",
		.faults = f->faults,
	};
	char err[256] = "";
	f->eng = gateway_engine.create(&f->ctx, err, sizeof err);
	if (!f->eng) {
		fprintf(stderr, "gateway: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int gw_open(void **state, const char *ttl_ms, const char *timeout_ms)
{
	return gw_open_cfg(state, ttl_ms, timeout_ms, NULL);
}

static int setup(void **state) { return gw_open(state, "60000", "200"); }
static int setup_short_ttl(void **state) { return gw_open(state, "300", "200"); }
static int setup_long_deadline(void **state) { return gw_open(state, "60000", "3000"); }

static int teardown(void **state)
{
	fixture *f = *state;
	gateway_engine.destroy(f->eng);
	fault_table_free(f->faults);
	config_free(f->config);
	metrics_free(f->metrics);
	log_free(f->log);
	fclose(f->logf);
	rng_free(f->rng);
	clock_free(f->clock);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

/* Sends one request through the gateway as the HTTP host would hand it over
 * (request id and peer filled). Returns the status; resp is the caller's. */
static int gw_do_full(fixture *f, const char *method, const char *target, const char *auth,
		      const char *body, const char *ctype, msg_resp *resp)
{
	msg_req req;
	assert_int_equal(msg_req_init(&req, method, target), 0);
	snprintf(req.request_id, sizeof req.request_id, "%s", REQ_ID);
	snprintf(req.peer, sizeof req.peer, "%s", PEER);
	if (auth)
		assert_int_equal(msg_req_add_header(&req, "Authorization", auth), 0);
	if (ctype)
		assert_int_equal(msg_req_add_header(&req, "Content-Type", ctype), 0);
	if (body)
		assert_int_equal(msg_req_set_body(&req, body, strlen(body)), 0);
	msg_resp_init(resp);
	gateway_engine.handle(f->eng, &req, resp);
	msg_req_clear(&req);
	return resp->status;
}

static int gw_do(fixture *f, const char *method, const char *target, const char *auth,
		 const char *body, msg_resp *resp)
{
	return gw_do_full(f, method, target, auth, body, body ? "application/json" : NULL, resp);
}

/* A GET carrying headers of the client's own: name, value, ..., NULL. */
static int gw_get_with(fixture *f, const char *target, msg_resp *resp, ...)
{
	msg_req req;
	assert_int_equal(msg_req_init(&req, "GET", target), 0);
	snprintf(req.request_id, sizeof req.request_id, "%s", REQ_ID);
	snprintf(req.peer, sizeof req.peer, "%s", PEER);
	va_list ap;
	va_start(ap, resp);
	for (const char *name; (name = va_arg(ap, const char *));)
		assert_int_equal(msg_req_add_header(&req, name, va_arg(ap, const char *)), 0);
	va_end(ap);
	msg_resp_init(resp);
	gateway_engine.handle(f->eng, &req, resp);
	msg_req_clear(&req);
	return resp->status;
}

/* error.code of an API error body, and details.<key> when key is given. */
static void assert_error(const msg_resp *resp, int status, const char *code, const char *key,
			 const char *value)
{
	assert_int_equal(resp->status, status);
	json_t *b = thelp_body_json(resp);
	json_t *e = json_object_get(b, "error");
	assert_non_null(e);
	assert_string_equal(thelp_jstr(e, "code"), code);
	assert_non_null(json_string_value(json_object_get(e, "message")));
	if (key)
		assert_string_equal(thelp_jstr(json_object_get(e, "details"), key), value);
	json_decref(b);
}

static void register_instance(fixture *f, const char *service, const char *id, const char *addr)
{
	char body[256];
	snprintf(body, sizeof body, "{\"service\":\"%s\",\"id\":\"%s\",\"addr\":\"%s\"}", service,
		 id, addr);
	msg_resp r;
	assert_int_equal(gw_do(f, "POST", "/admin/registry", ADMIN, body, &r), 200);
	json_t *b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "id"), id);
	assert_int_equal(json_integer_value(json_object_get(b, "ttl_ms")), f->ttl_ms);
	json_decref(b);
	msg_resp_clear(&r);
}

/* The /admin/services entry for id (new reference), or NULL when unlisted. */
static json_t *listed_instance(fixture *f, const char *id, int *ninstances)
{
	msg_resp r;
	assert_int_equal(gw_do(f, "GET", "/admin/services", ADMIN, NULL, &r), 200);
	json_t *b = thelp_body_json(&r);
	msg_resp_clear(&r);
	json_t *services = json_object_get(b, "services"), *found = NULL;
	assert_true(json_is_array(services));
	int n = 0;
	size_t i, j;
	json_t *svc, *in;
	json_array_foreach(services, i, svc) {
		json_array_foreach(json_object_get(svc, "instances"), j, in) {
			n++;
			if (strcmp(thelp_jstr(in, "id"), id) == 0) {
				assert_null(found);
				found = json_incref(in);
				json_object_set_new(found, "service",
						    json_string(thelp_jstr(svc, "name")));
			}
		}
	}
	if (ninstances)
		*ninstances = n;
	json_decref(b);
	return found;
}

static int is_healthy(fixture *f, const char *id)
{
	json_t *in = listed_instance(f, id, NULL);
	if (!in)
		fail_msg("%s is not listed", id);
	json_t *h = json_object_get(in, "healthy");
	assert_true(json_is_boolean(h));
	int v = json_is_true(h);
	json_decref(in);
	return v;
}

/* GET target through the gateway; asserts 200 from one of the upstreams and
 * returns which (a pointer to up_a or up_b). */
static upstream *get_ok(fixture *f, const char *target)
{
	msg_resp r;
	assert_int_equal(gw_do(f, "GET", target, NULL, NULL, &r), 200);
	json_t *b = thelp_body_json(&r);
	const char *who = thelp_jstr(b, "upstream");
	upstream *u = strcmp(who, "up-a") == 0 ? &up_a : strcmp(who, "up-b") == 0 ? &up_b : NULL;
	assert_non_null(u);
	assert_string_equal(msg_resp_header(&r, "X-Upstream"), who);
	json_decref(b);
	msg_resp_clear(&r);
	return u;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_route_service(void **state)
{
	assert_string_equal(gateway_route_service("/v1/products/x"), "catalog");
	assert_string_equal(gateway_route_service("/v1/products"), "catalog");
	assert_string_equal(gateway_route_service("/v1/products/"), "catalog");
	assert_string_equal(gateway_route_service("/v1/products/a/b"), "catalog");
	assert_null(gateway_route_service("/v1/unknown"));
	assert_null(gateway_route_service("/v1"));
	assert_null(gateway_route_service("/v1/"));
	assert_null(gateway_route_service("/v1/productsX"));
	assert_null(gateway_route_service("/v1/product"));
	assert_string_equal(gateway_route_service("/v2/products"), "catalog");
	assert_null(gateway_route_service("/v3/products"));
	assert_null(gateway_route_service("v1/products"));
	assert_null(gateway_route_service(""));
}

static void test_admin_needs_token(void **state)
{
	fixture *f = *state;
	const char *body = "{\"service\":\"catalog\",\"id\":\"catalog-1\",\"addr\":\"http://x\"}";
	msg_resp r;
	gw_do(f, "GET", "/admin/services", NULL, NULL, &r);
	assert_error(&r, 401, "unauthenticated", NULL, NULL);
	assert_non_null(msg_resp_header(&r, "WWW-Authenticate"));
	msg_resp_clear(&r);
	gw_do(f, "GET", "/admin/services", "Bearer gw-admiN", NULL, &r);
	assert_error(&r, 401, "unauthenticated", NULL, NULL);
	msg_resp_clear(&r);
	gw_do(f, "GET", "/admin/services", "Bearer gw-admin-longer", NULL, &r);
	assert_error(&r, 401, "unauthenticated", NULL, NULL);
	msg_resp_clear(&r);
	gw_do(f, "GET", "/admin/services", "gw-admin", NULL, &r);
	assert_error(&r, 401, "unauthenticated", NULL, NULL);
	msg_resp_clear(&r);
	gw_do(f, "POST", "/admin/registry", NULL, body, &r);
	assert_error(&r, 401, "unauthenticated", NULL, NULL);
	msg_resp_clear(&r);
	gw_do(f, "POST", "/admin/registry", "Bearer wrong", body, &r);
	assert_error(&r, 401, "unauthenticated", NULL, NULL);
	msg_resp_clear(&r);
	gw_do(f, "DELETE", "/admin/registry/catalog-1", "Bearer wrong", NULL, &r);
	assert_error(&r, 401, "unauthenticated", NULL, NULL);
	msg_resp_clear(&r);
	/* The refused registration changed nothing; the right token works. */
	int n = -1;
	assert_null(listed_instance(f, "catalog-1", &n));
	assert_int_equal(n, 0);
	assert_int_equal(counter(f, &f->calls), 0);
}

static void test_admin_register_validation(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *body, *field;
	} bad[] = {
		{ "{\"id\":\"catalog-1\",\"addr\":\"http://127.0.0.1:1\"}", "service" },
		{ "{\"service\":\"catalog\",\"addr\":\"http://127.0.0.1:1\"}", "id" },
		{ "{\"service\":\"catalog\",\"id\":\"catalog-1\"}", "addr" },
		{ "{\"service\":\"catalog\",\"id\":\"catalog-1\",\"addr\":\"ftp://127.0.0.1:1\"}",
		  "addr" },
		{ "{\"service\":\"catalog\",\"id\":\"catalog-1\",\"addr\":\"https://127.0.0.1:1\"}",
		  "addr" },
		{ "{\"service\":\"catalog\",\"id\":\"catalog-1\",\"addr\":\"127.0.0.1:8081\"}",
		  "addr" },
		{ "{\"service\":\"catalog\",\"id\":\"catalog-1\",\"addr\":42}", "addr" },
		{ "{\"service\":\"\",\"id\":\"catalog-1\",\"addr\":\"http://127.0.0.1:1\"}", "service" },
		{ "not json", "body" },
		{ "[1,2]", "body" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg_resp r;
		gw_do(f, "POST", "/admin/registry", ADMIN, bad[i].body, &r);
		assert_error(&r, 400, "invalid_argument", "field", bad[i].field);
		msg_resp_clear(&r);
	}
	msg_resp r;
	gw_do(f, "POST", "/admin/registry", ADMIN, NULL, &r);
	assert_error(&r, 400, "invalid_argument", "field", "body");
	msg_resp_clear(&r);
	int n = -1;
	assert_null(listed_instance(f, "catalog-1", &n));
	assert_int_equal(n, 0);
}

static void test_admin_list_and_deregister(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-1", up_a.addr);
	register_instance(f, "catalog", "catalog-2", up_b.addr);
	/* A repeated registration is a heartbeat, not a second instance. */
	register_instance(f, "catalog", "catalog-1", up_a.addr);

	int n = 0;
	json_t *in = listed_instance(f, "catalog-1", &n);
	assert_int_equal(n, 2);
	assert_non_null(in);
	assert_string_equal(thelp_jstr(in, "service"), "catalog");
	assert_string_equal(thelp_jstr(in, "addr"), up_a.addr);
	assert_true(json_is_true(json_object_get(in, "healthy")));
	assert_int_equal(json_integer_value(json_object_get(in, "outstanding")), 0);
	assert_non_null(json_string_value(json_object_get(in, "last_heartbeat")));
	json_decref(in);
	in = listed_instance(f, "catalog-2", NULL);
	assert_non_null(in);
	assert_string_equal(thelp_jstr(in, "addr"), up_b.addr);
	assert_true(json_is_true(json_object_get(in, "healthy")));
	json_decref(in);

	msg_resp r;
	assert_int_equal(gw_do(f, "DELETE", "/admin/registry/catalog-1", ADMIN, NULL, &r), 200);
	json_t *b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "id"), "catalog-1");
	json_decref(b);
	msg_resp_clear(&r);
	assert_null(listed_instance(f, "catalog-1", &n));
	assert_int_equal(n, 1);

	/* Traffic now only goes to the remaining instance. */
	for (int i = 0; i < 4; i++)
		assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_b);

	gw_do(f, "DELETE", "/admin/registry/catalog-1", ADMIN, NULL, &r);
	assert_error(&r, 404, "not_found", "id", "catalog-1");
	msg_resp_clear(&r);
	gw_do(f, "DELETE", "/admin/registry/nobody", ADMIN, NULL, &r);
	assert_error(&r, 404, "not_found", "id", "nobody");
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "DELETE", "/admin/registry/catalog-2", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	assert_null(listed_instance(f, "catalog-2", &n));
	assert_int_equal(n, 0);
}

static void test_proxy_copies_request_and_response(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-1", up_a.addr);
	int hits = atomic_load(&up_a.hits);

	msg_resp r;
	const char *target = "/v1/products/a%20b%2Fc%C3%A9?q=x%26y&tag=%2B1&empty=";
	assert_int_equal(gw_do(f, "GET", target, NULL, NULL, &r), 200);
	assert_int_equal(atomic_load(&up_a.hits), hits + 1);
	assert_string_equal(r.content_type, UP_CTYPE);
	assert_string_equal(r.route, "/v1/products");
	/* The body is the upstream's, byte for byte. */
	json_t *b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "upstream"), "up-a");
	assert_string_equal(thelp_jstr(b, "method"), "GET");
	assert_string_equal(thelp_jstr(b, "path"), "/v1/products/a%20b%2Fc%C3%A9");
	assert_string_equal(thelp_jstr(b, "query"), "q=x%26y&tag=%2B1&empty=");
	assert_string_equal(thelp_jstr(b, "request_id"), REQ_ID);
	assert_int_equal(json_integer_value(json_object_get(b, "request_id_headers")), 1);
	assert_string_equal(thelp_jstr(b, "forwarded_for"), PEER);
	char *again = json_dumps(b, JSON_COMPACT);
	assert_int_equal(r.body_len, strlen(again));
	assert_memory_equal(r.body, again, r.body_len);
	free(again);
	json_decref(b);
	/* End-to-end headers come back; hop-by-hop and framing ones do not. */
	assert_string_equal(msg_resp_header(&r, "X-Upstream"), "up-a");
	assert_null(msg_resp_header(&r, "Keep-Alive"));
	assert_null(msg_resp_header(&r, "Connection"));
	assert_null(msg_resp_header(&r, "Content-Length"));
	assert_null(msg_resp_header(&r, "Transfer-Encoding"));
	assert_null(msg_resp_header(&r, "X-Request-Id"));
	assert_null(msg_resp_header(&r, "Date"));
	msg_resp_clear(&r);
	/* The gateway's deadline is the one passed to the call. */
	assert_int_equal(f->last_timeout_ms, 200);

	/* A path without a query arrives without one. */
	assert_int_equal(gw_do(f, "GET", "/v1/products", NULL, NULL, &r), 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "path"), "/v1/products");
	assert_null(json_object_get(b, "query")); /* "s*": omitted when NULL */
	json_decref(b);
	msg_resp_clear(&r);

	/* The client's valid request id is the request's id: passed on. */
	assert_int_equal(gw_get_with(f, "/v1/products/p", &r, "X-Request-Id", REQ_ID, NULL), 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "request_id"), REQ_ID);
	json_decref(b);
	msg_resp_clear(&r);
	/* An invalid one was replaced by the host (req.request_id): the
	 * upstream must see the id the client gets back, not the client's. */
	assert_int_equal(gw_get_with(f, "/v1/products/p", &r, "X-Request-Id", "bad id!", NULL), 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "request_id"), REQ_ID);
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(gw_get_with(f, "/v1/products/p", &r, "x-request-id", "bad id!", "Accept",
				     "*/*", "X-Request-ID", "req_ffffffffffffffff", NULL),
			 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "request_id"), REQ_ID);
	assert_int_equal(json_integer_value(json_object_get(b, "request_id_headers")), 1);
	json_decref(b);
	msg_resp_clear(&r);
	/* A client's X-Forwarded-For is kept, but the real peer is appended:
	 * the client cannot hide or forge where the request came from. */
	assert_int_equal(
		gw_get_with(f, "/v1/products/p", &r, "X-Forwarded-For", "198.51.100.1", NULL), 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "forwarded_for"), "198.51.100.1, " PEER);
	json_decref(b);
	msg_resp_clear(&r);

	/* A POST keeps its method, body and content type. */
	const char *pb = "{\"sku\":\"BK-9\",\"name\":\"caf\\u00e9\"}";
	assert_int_equal(gw_do(f, "POST", "/v1/products", NULL, pb, &r), 201);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "method"), "POST");
	assert_string_equal(thelp_jstr(b, "body"), pb);
	json_decref(b);
	msg_resp_clear(&r);
}

static void test_balancing_two_upstreams(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	register_instance(f, "catalog", "catalog-b", up_b.addr);
	int ha = atomic_load(&up_a.hits), hb = atomic_load(&up_b.hits);
	int na = 0, nb = 0;
	for (int i = 0; i < 20; i++) {
		if (get_ok(f, "/v1/products/p") == &up_a)
			na++;
		else
			nb++;
	}
	assert_int_equal(na + nb, 20);
	/* Sequential requests leave every instance at 0 outstanding, so the
	 * round-robin tie-break alone decides: an even split. */
	assert_in_range(na, 8, 12);
	assert_in_range(nb, 8, 12);
	assert_int_equal(atomic_load(&up_a.hits) - ha, na);
	assert_int_equal(atomic_load(&up_b.hits) - hb, nb);
	assert_int_equal(counter(f, &f->calls), 20);
}

typedef struct busy_call {
	fixture *f;
	int status;
	char upstream[16];
} busy_call;

static void *busy_run(void *arg)
{
	busy_call *c = arg;
	msg_resp r;
	c->status = gw_do(c->f, "GET", "/v1/products/busy", NULL, NULL, &r);
	json_t *b = c->status == 200 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	const char *u = b ? json_string_value(json_object_get(b, "upstream")) : NULL;
	snprintf(c->upstream, sizeof c->upstream, "%s", u ? u : "");
	json_decref(b);
	msg_resp_clear(&r);
	return NULL;
}

static void test_least_outstanding(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	register_instance(f, "catalog", "catalog-b", up_b.addr);
	busy_call c = { .f = f };
	pthread_t tid;
	assert_int_equal(pthread_create(&tid, NULL, busy_run, &c), 0);
	/* Wait until the slow request holds one instance. */
	const char *busy = NULL;
	for (int i = 0; i < 200 && !busy; i++) {
		json_t *a = listed_instance(f, "catalog-a", NULL);
		json_t *b = listed_instance(f, "catalog-b", NULL);
		if (json_integer_value(json_object_get(a, "outstanding")) == 1)
			busy = "up-a";
		else if (json_integer_value(json_object_get(b, "outstanding")) == 1)
			busy = "up-b";
		json_decref(a);
		json_decref(b);
		if (!busy)
			usleep(1000);
	}
	assert_non_null(busy);
	upstream *idle = strcmp(busy, "up-a") == 0 ? &up_b : &up_a;
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(get_ok(f, "/v1/products/p"), idle);
	pthread_join(tid, NULL);
	assert_int_equal(c.status, 200);
	assert_string_equal(c.upstream, busy);
	/* Released: both idle again. */
	assert_true(is_healthy(f, "catalog-a"));
	json_t *a = listed_instance(f, "catalog-a", NULL);
	assert_int_equal(json_integer_value(json_object_get(a, "outstanding")), 0);
	json_decref(a);
}

static void test_failover_on_refused(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	register_instance(f, "catalog", "catalog-b", up_b.addr);
	register_instance(f, "catalog", "catalog-dead", f->dead_addr);
	assert_true(is_healthy(f, "catalog-dead"));
	int seen_failure_at = -1;
	for (int i = 0; i < 12; i++) {
		get_ok(f, "/v1/products/p");
		if (seen_failure_at < 0 && counter(f, &f->dead_calls) == 1) {
			seen_failure_at = i;
			/* Out of rotation at once, the others untouched. */
			assert_false(is_healthy(f, "catalog-dead"));
			assert_true(is_healthy(f, "catalog-a"));
			assert_true(is_healthy(f, "catalog-b"));
		}
	}
	/* The dead instance was tried (it is in the rotation) ... */
	assert_in_range(seen_failure_at, 0, 2);
	/* ... exactly once: after that it is skipped, not retried per request. */
	assert_int_equal(counter(f, &f->dead_calls), 1);
	assert_int_equal(counter(f, &f->calls), 13);
	assert_false(is_healthy(f, "catalog-dead"));

	/* Every instance dead: 503, and each is tried only once. */
	msg_resp r;
	assert_int_equal(gw_do(f, "DELETE", "/admin/registry/catalog-a", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "DELETE", "/admin/registry/catalog-b", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	/* A heartbeat puts it back into rotation: the next request tries it. */
	usleep(2000);
	register_instance(f, "catalog", "catalog-dead", f->dead_addr);
	assert_true(is_healthy(f, "catalog-dead"));
	gw_do(f, "GET", "/v1/products/p", NULL, NULL, &r);
	assert_error(&r, 503, "unavailable", "service", "catalog");
	assert_non_null(msg_resp_header(&r, "Retry-After"));
	msg_resp_clear(&r);
	assert_int_equal(counter(f, &f->dead_calls), 2);
	assert_false(is_healthy(f, "catalog-dead"));
}

static void test_post_fails_over_when_refused(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-dead", f->dead_addr);
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	const char *pb = "{\"sku\":\"BK-9\"}";
	int hits = atomic_load(&up_a.hits), posts = 0;
	while (counter(f, &f->dead_calls) == 0 && posts < 4) {
		msg_resp r;
		assert_int_equal(gw_do(f, "POST", "/v1/products", ADMIN, pb, &r), 201);
		posts++;
		json_t *b = thelp_body_json(&r);
		assert_string_equal(thelp_jstr(b, "upstream"), "up-a");
		assert_string_equal(thelp_jstr(b, "method"), "POST");
		assert_string_equal(thelp_jstr(b, "body"), pb);
		json_decref(b);
		msg_resp_clear(&r);
	}
	assert_int_equal(counter(f, &f->dead_calls), 1);
	/* Each POST reached the live instance exactly once. */
	assert_int_equal(atomic_load(&up_a.hits) - hits, posts);
	assert_false(is_healthy(f, "catalog-dead"));
	assert_true(is_healthy(f, "catalog-a"));
}

static void test_no_retry_after_request_sent(void **state)
{
	fixture *f = *state;
	black_hole h;
	assert_int_equal(black_hole_start(&h), 0);
	register_instance(f, "catalog", "catalog-hole", h.addr);
	register_instance(f, "catalog", "catalog-a", up_a.addr);

	/* A POST that may have been applied is not sent again elsewhere. */
	int hits = atomic_load(&up_a.hits), tries = 0, hole_post = 0;
	while (atomic_load(&h.accepted) == 0 && tries < 4) {
		msg_resp r;
		int before = atomic_load(&up_a.hits);
		int st = gw_do(f, "POST", "/v1/products", ADMIN, "{}", &r);
		tries++;
		if (atomic_load(&h.accepted) > 0) {
			hole_post = 1;
			assert_error(&r, 503, "unavailable", "service", "catalog");
			assert_int_equal(atomic_load(&up_a.hits), before);
		} else {
			assert_int_equal(st, 201);
		}
		msg_resp_clear(&r);
	}
	assert_true(hole_post);
	assert_int_equal(atomic_load(&up_a.hits) - hits, tries - 1);
	assert_false(is_healthy(f, "catalog-hole"));

	/* A GET is safe to repeat: it fails over to the live instance. */
	usleep(2000);
	register_instance(f, "catalog", "catalog-hole", h.addr);
	int accepted = atomic_load(&h.accepted);
	for (int i = 0; i < 4 && atomic_load(&h.accepted) == accepted; i++)
		assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_a);
	assert_int_equal(atomic_load(&h.accepted), accepted + 1);
	assert_false(is_healthy(f, "catalog-hole"));
	black_hole_stop(&h);
}

static void test_upstream_timeout(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	int64_t t0 = clock_mono_us();
	msg_resp r;
	gw_do(f, "GET", "/v1/products/slow", NULL, NULL, &r);
	int64_t took_ms = (clock_mono_us() - t0) / 1000;
	assert_error(&r, 504, "upstream_timeout", "service", "catalog");
	msg_resp_clear(&r);
	/* Answered at the gateway's deadline, not the upstream's 500 ms. */
	assert_in_range(took_ms, 150, 450);
	assert_int_equal(counter(f, &f->calls), 1);
	/* A slow instance is not a dead one. */
	assert_true(is_healthy(f, "catalog-a"));
	assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_a);
}

static void test_upstream_500_passes_through(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	register_instance(f, "catalog", "catalog-b", up_b.addr);
	msg_resp r;
	assert_int_equal(gw_do(f, "GET", "/v1/products/boom", NULL, NULL, &r), 500);
	assert_string_equal(r.content_type, "application/json");
	const char *who = msg_resp_header(&r, "X-Upstream");
	assert_non_null(who);
	char expect[128];
	snprintf(expect, sizeof expect,
		 "{\"error\":{\"code\":\"internal\",\"message\":\"boom from %s\"}}", who);
	assert_int_equal(r.body_len, strlen(expect));
	assert_memory_equal(r.body, expect, r.body_len);
	msg_resp_clear(&r);
	/* One call: the service's answer is not retried elsewhere, and the
	 * instance stays in rotation. */
	assert_int_equal(counter(f, &f->calls), 1);
	assert_true(is_healthy(f, "catalog-a"));
	assert_true(is_healthy(f, "catalog-b"));
}

static void test_no_instance_and_unknown_routes(void **state)
{
	fixture *f = *state;
	msg_resp r;
	gw_do(f, "GET", "/v1/products/p", NULL, NULL, &r);
	assert_error(&r, 503, "unavailable", "service", "catalog");
	assert_string_equal(msg_resp_header(&r, "Retry-After"), "1");
	msg_resp_clear(&r);
	/* An instance of another service does not serve catalog. */
	register_instance(f, "cart", "cart-1", up_a.addr);
	gw_do(f, "GET", "/v1/products", NULL, NULL, &r);
	assert_error(&r, 503, "unavailable", "service", "catalog");
	msg_resp_clear(&r);
	register_instance(f, "catalog", "catalog-a", up_a.addr);

	static const char *const unknown[] = { "/v1/nope", "/v3/products", "/v1/productsX/1", "/v1",
					       "/", "/products" };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		gw_do(f, "GET", unknown[i], NULL, NULL, &r);
		assert_error(&r, 404, "not_found", NULL, NULL);
		msg_resp_clear(&r);
	}
	assert_int_equal(counter(f, &f->calls), 0);
}

static void test_heartbeat_expiry(void **state)
{
	fixture *f = *state;
	int64_t ttl_us = f->ttl_ms * 1000;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	register_instance(f, "catalog", "catalog-b", up_b.addr);

	/* a misses its heartbeats, b keeps them: a leaves rotation. */
	usleep((useconds_t)(ttl_us + 100000));
	register_instance(f, "catalog", "catalog-b", up_b.addr);
	assert_false(is_healthy(f, "catalog-a"));
	for (int i = 0; i < 10; i++)
		assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_b);

	/* A late heartbeat brings it back. */
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	assert_true(is_healthy(f, "catalog-a"));
	int seen_a = 0;
	for (int i = 0; i < 10; i++)
		seen_a += get_ok(f, "/v1/products/p") == &up_a;
	assert_true(seen_a > 0);

	/* Both late: rather than refuse everything, the gateway still tries
	 * them (a busy machine delays heartbeats; a dead instance is refused at
	 * once and marked down). */
	usleep((useconds_t)(ttl_us + 100000));
	assert_false(is_healthy(f, "catalog-a"));
	assert_false(is_healthy(f, "catalog-b"));
	const upstream *u = get_ok(f, "/v1/products/p");
	assert_true(u == &up_a || u == &up_b);

	/* Silent, but listed until ten TTLs have passed; then gone, and the
	 * service has no instance. */
	int64_t now = clock_now(f->clock);
	gateway_engine.tick(f->eng, now + 5 * ttl_us);
	json_t *in = listed_instance(f, "catalog-a", NULL);
	assert_non_null(in);
	assert_false(json_is_true(json_object_get(in, "healthy")));
	json_decref(in);
	gateway_engine.tick(f->eng, now + 11 * ttl_us);
	int n = -1;
	assert_null(listed_instance(f, "catalog-a", &n));
	assert_int_equal(n, 0);
	msg_resp r;
	gw_do(f, "GET", "/v1/products/p", NULL, NULL, &r);
	assert_error(&r, 503, "unavailable", "service", "catalog");
	msg_resp_clear(&r);
}


/* ---- resilience: breakers, bulkheads, deadlines, stale reads, admin ----------------- */

/* Small breakers for catalog, a bulkhead of one for cart, the stale cache
 * on, and a long upstream timeout so the deadline is what bounds calls. */
static int setup_resil(void **state)
{
	static const char *const kv[] = {
		"gateway.stale_entries", "100",
		"resil.edges",
		"gateway>catalog: breaker.window=4, breaker.min_calls=4, breaker.wait_open_ms=300,"
		" breaker.half_open_calls=2; gateway>cart: bulkhead.max_concurrent=1",
		NULL,
	};
	return gw_open_cfg(state, "60000", "3000", kv);
}

static const char *header(const msg_resp *r, const char *name)
{
	const char *v = msg_resp_header(r, name);
	return v ? v : "";
}

/* The gateway's own breaker to service in /admin/breakers (new reference). */
static json_t *own_breaker(fixture *f, const char *service)
{
	msg_resp r;
	assert_int_equal(gw_do(f, "GET", "/admin/breakers", ADMIN, NULL, &r), 200);
	json_t *b = thelp_body_json(&r);
	msg_resp_clear(&r);
	json_t *found = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(b, "breakers"), i, e)
		if (json_object_get(e, "from") && strcmp(thelp_jstr(e, "from"), "gateway") == 0 &&
		    strcmp(thelp_jstr(e, "to"), service) == 0)
			found = json_incref(e);
	json_decref(b);
	return found;
}

static const char *own_state(fixture *f, const char *service)
{
	static char buf[32];
	json_t *b = own_breaker(f, service);
	snprintf(buf, sizeof buf, "%s", b ? thelp_jstr(b, "state") : "none");
	json_decref(b);
	return buf;
}

static void test_breaker_opens_refuses_and_closes(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	msg_resp r;
	/* Three 500s: below the minimum of four calls, still closed. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(gw_do(f, "GET", "/v1/products/boom", NULL, NULL, &r), 500);
		msg_resp_clear(&r);
	}
	assert_string_equal(own_state(f, "catalog"), "CLOSED");
	assert_int_equal(gw_do(f, "GET", "/v1/products/boom", NULL, NULL, &r), 500);
	msg_resp_clear(&r);
	json_t *b = own_breaker(f, "catalog");
	assert_string_equal(thelp_jstr(b, "state"), "OPEN");
	assert_true(json_real_value(json_object_get(b, "failure_rate")) == 100.0);
	assert_int_equal(json_integer_value(json_object_get(b, "calls")), 4);
	assert_string_equal(thelp_jstr(b, "instance"), "gateway-1");
	json_decref(b);

	/* Open: 503 at once, nothing sent upstream. */
	int hits = atomic_load(&up_a.hits);
	gw_do(f, "GET", "/v1/products/p", NULL, NULL, &r);
	assert_error(&r, 503, "unavailable", "reason", "breaker");
	assert_string_equal(header(&r, GUARD_REFUSED_HEADER), "breaker");
	assert_string_equal(header(&r, "Retry-After"), "1");
	msg_resp_clear(&r);
	assert_int_equal(atomic_load(&up_a.hits), hits);

	/* After the wait, two probes close it again. */
	usleep(320 * 1000);
	assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_a);
	assert_string_equal(own_state(f, "catalog"), "HALF_OPEN");
	assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_a);
	assert_string_equal(own_state(f, "catalog"), "CLOSED");
	/* Business answers (404, 402) are not failures, however many. */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(gw_do(f, "GET", i % 2 ? "/v1/products/missing" : "/v1/products/declined",
				       NULL, NULL, &r),
				 i % 2 ? 404 : 402);
		msg_resp_clear(&r);
	}
	b = own_breaker(f, "catalog");
	assert_string_equal(thelp_jstr(b, "state"), "CLOSED");
	assert_true(json_real_value(json_object_get(b, "failure_rate")) == 0.0);
	json_decref(b);
	static const char *const entered[] = { "OPEN", "HALF_OPEN", "CLOSED" };
	for (int i = 0; i < 3; i++) {
		char labels[128];
		snprintf(labels, sizeof labels, "from=\"gateway\",to=\"catalog\",state=\"%s\"", entered[i]);
		assert_int_equal(metrics_counter_value(f->metrics, "breaker_transitions_total",
						       labels),
				 1);
	}
}

/* No instance of the service: 503 at once, and nothing for the breaker to
 * judge (a service still starting must not find its breaker open). */
static void test_no_instance_is_not_a_breaker_failure(void **state)
{
	fixture *f = *state;
	msg_resp r;
	for (int i = 0; i < 10; i++) {
		gw_do(f, "GET", "/v1/products/p", NULL, NULL, &r);
		assert_error(&r, 503, "unavailable", "service", "catalog");
		msg_resp_clear(&r);
	}
	json_t *b = own_breaker(f, "catalog");
	assert_non_null(b);
	assert_string_equal(thelp_jstr(b, "state"), "CLOSED");
	assert_int_equal(json_integer_value(json_object_get(b, "calls")), 0);
	json_decref(b);
	/* Once an instance registers it is called at once. */
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_a);
}

static void test_stale_reads_while_refused_or_failing(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	msg_resp first, r;
	assert_int_equal(gw_do(f, "GET", "/v1/products?category=books", NULL, NULL, &first), 200);
	assert_string_equal(header(&first, GATEWAY_STALE_HEADER), "");
	assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_a);

	/* The operator trips catalog: cached reads are served, marked stale. */
	assert_int_equal(gw_do(f, "POST", "/admin/breakers/catalog/trip", ADMIN, NULL, &r), 200);
	json_t *b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "state"), "FORCED_OPEN");
	json_decref(b);
	msg_resp_clear(&r);
	int hits = atomic_load(&up_a.hits);
	assert_int_equal(gw_do(f, "GET", "/v1/products?category=books", NULL, NULL, &r), 200);
	assert_string_equal(header(&r, GATEWAY_STALE_HEADER), "1");
	assert_string_equal(header(&r, "Warning"), "110 - \"Response is Stale\"");
	assert_string_equal(header(&r, "Age"), "0");
	assert_string_equal(r.content_type, UP_CTYPE);
	assert_non_null(msg_resp_header(&r, "RateLimit-Limit"));
	assert_int_equal(r.body_len, first.body_len);
	assert_memory_equal(r.body, first.body, r.body_len);
	msg_resp_clear(&r);
	msg_resp_clear(&first);
	/* Not cached, or not a read: refused. */
	gw_do(f, "GET", "/v1/products?category=toys", NULL, NULL, &r);
	assert_error(&r, 503, "unavailable", "reason", "breaker");
	assert_non_null(msg_resp_header(&r, "Retry-After"));
	msg_resp_clear(&r);
	gw_do(f, "POST", "/v1/products", ADMIN, "{}", &r);
	assert_error(&r, 503, "unavailable", "reason", "breaker");
	msg_resp_clear(&r);
	assert_int_equal(atomic_load(&up_a.hits), hits);
	assert_int_equal(metrics_counter_value(f->metrics, "gateway_stale_served_total",
					       "service=\"catalog\",reason=\"breaker\""),
			 1);

	/* Reset; then no instance at all: a failure, served stale too. */
	assert_int_equal(gw_do(f, "POST", "/admin/breakers/catalog/reset", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "DELETE", "/admin/registry/catalog-a", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "GET", "/v1/products/p", NULL, NULL, &r), 200);
	assert_string_equal(header(&r, GATEWAY_STALE_HEADER), "1");
	msg_resp_clear(&r);
	assert_int_equal(metrics_counter_value(f->metrics, "gateway_stale_served_total",
					       "service=\"catalog\",reason=\"failed\""),
			 1);
	/* A 500 from the service is a failure too; a 404 is an answer. */
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	assert_int_equal(gw_do(f, "GET", "/v1/products/boom", NULL, NULL, &r), 500);
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "GET", "/v1/products/missing", NULL, NULL, &r), 404);
	assert_string_equal(header(&r, GATEWAY_STALE_HEADER), "");
	msg_resp_clear(&r);
	/* Routes outside gateway.stale_prefixes are never served stale. */
	register_instance(f, "cart", "cart-a", up_a.addr);
	assert_int_equal(gw_do(f, "GET", "/v1/cart", NULL, NULL, &r), 200);
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "DELETE", "/admin/registry/cart-a", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	gw_do(f, "GET", "/v1/cart", NULL, NULL, &r);
	assert_error(&r, 503, "unavailable", "service", "cart");
	msg_resp_clear(&r);
}

typedef struct slow_get {
	fixture *f;
	int status;
} slow_get;

static void *do_slow_get(void *arg)
{
	slow_get *g = arg;
	msg_resp r;
	g->status = gw_do(g->f, "GET", "/v1/cart/busy", NULL, NULL, &r);
	msg_resp_clear(&r);
	return NULL;
}

static void test_bulkhead_refuses_at_once(void **state)
{
	fixture *f = *state;
	register_instance(f, "cart", "cart-a", up_a.addr);
	register_instance(f, "catalog", "catalog-a", up_b.addr);
	int hits = atomic_load(&up_a.hits);
	slow_get g = { .f = f };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, do_slow_get, &g), 0);
	/* Wait (bounded) until the slow call is in the upstream. */
	for (int i = 0; i < 200 && atomic_load(&up_a.hits) == hits; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&up_a.hits), hits + 1);
	int64_t t0 = clock_mono_us();
	msg_resp r;
	gw_do(f, "GET", "/v1/cart/x", NULL, NULL, &r);
	int64_t took_ms = (clock_mono_us() - t0) / 1000;
	assert_error(&r, 503, "unavailable", "reason", "bulkhead");
	assert_string_equal(header(&r, GUARD_REFUSED_HEADER), "bulkhead");
	assert_string_equal(header(&r, "Retry-After"), "1");
	msg_resp_clear(&r);
	assert_true(took_ms < 100); /* at once, not after the 300 ms call */
	/* Another upstream has its own bulkhead. */
	assert_ptr_equal(get_ok(f, "/v1/products/p"), &up_b);
	pthread_join(t, NULL);
	assert_int_equal(g.status, 200);
	/* The slot is free again; the refusal did not count as a failure. */
	assert_ptr_equal(get_ok(f, "/v1/cart/x"), &up_a);
	json_t *b = own_breaker(f, "cart");
	assert_int_equal(json_integer_value(json_object_get(b, "bulkhead_rejected")), 1);
	assert_int_equal(json_integer_value(json_object_get(b, "failed_calls")), 0);
	assert_int_equal(json_integer_value(json_object_get(b, "in_flight")), 0);
	json_decref(b);
}

static void test_deadline_travels_and_bounds(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	msg_resp r;
	/* The upstream learns the time left: the gateway's budget (5 s) cut
	 * to the upstream timeout (3 s), or the caller's when sooner. */
	assert_int_equal(gw_get_with(f, "/v1/products/p", &r, NULL), 200);
	json_t *b = thelp_body_json(&r);
	int64_t left = atoll(thelp_jstr(b, "deadline"));
	assert_in_range(left, 2900, 3000);
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(gw_get_with(f, "/v1/products/p", &r, GUARD_DEADLINE_HEADER, "1500", NULL),
			 200);
	b = thelp_body_json(&r);
	assert_in_range(atoll(thelp_jstr(b, "deadline")), 1400, 1500);
	json_decref(b);
	msg_resp_clear(&r);
	/* A malformed one is ignored. */
	assert_int_equal(gw_get_with(f, "/v1/products/p", &r, GUARD_DEADLINE_HEADER, "soon", NULL),
			 200);
	msg_resp_clear(&r);
	/* None left: 504 without calling. */
	int hits = atomic_load(&up_a.hits);
	gw_get_with(f, "/v1/products/p", &r, GUARD_DEADLINE_HEADER, "0", NULL);
	assert_error(&r, 504, "upstream_timeout", "reason", "deadline");
	assert_string_equal(header(&r, GUARD_REFUSED_HEADER), "deadline");
	msg_resp_clear(&r);
	assert_int_equal(atomic_load(&up_a.hits), hits);
	/* A slow upstream is cut off at the caller's deadline. */
	int64_t t0 = clock_mono_us();
	gw_get_with(f, "/v1/products/slow", &r, GUARD_DEADLINE_HEADER, "150", NULL);
	int64_t took_ms = (clock_mono_us() - t0) / 1000;
	assert_error(&r, 504, "upstream_timeout", "service", "catalog");
	msg_resp_clear(&r);
	assert_in_range(took_ms, 100, 450);
}

static void test_admin_breakers_gathered_and_forwarded(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	register_instance(f, "cart", "cart-b", up_b.addr);
	msg_resp r;
	/* Admin only. */
	gw_do(f, "GET", "/admin/breakers", NULL, NULL, &r);
	assert_error(&r, 401, "unauthenticated", NULL, NULL);
	msg_resp_clear(&r);
	/* Unknown services and actions. */
	gw_do(f, "POST", "/admin/breakers/nosuch/trip", ADMIN, NULL, &r);
	assert_error(&r, 404, "not_found", "service", "nosuch");
	msg_resp_clear(&r);
	gw_do(f, "POST", "/admin/breakers/catalog/explode", ADMIN, NULL, &r);
	assert_error(&r, 404, "not_found", "action", "explode");
	msg_resp_clear(&r);

	/* A trip reaches every instance of the other services, with the
	 * admin token. */
	int hits_a = atomic_load(&up_a.hits);
	assert_int_equal(gw_do(f, "POST", "/admin/breakers/catalog/trip", ADMIN, NULL, &r), 200);
	json_t *b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "from"), "gateway");
	assert_string_equal(thelp_jstr(b, "to"), "catalog");
	assert_string_equal(thelp_jstr(b, "state"), "FORCED_OPEN");
	json_t *fwd = json_object_get(b, "forwarded");
	assert_int_equal(json_array_size(fwd), 1);
	json_t *one = json_array_get(fwd, 0);
	assert_string_equal(thelp_jstr(one, "instance"), "up-b");
	assert_string_equal(thelp_jstr(one, "method"), "POST");
	assert_string_equal(thelp_jstr(one, "path"), "/admin/breakers/catalog/trip");
	assert_string_equal(thelp_jstr(one, "auth"), ADMIN);
	assert_int_equal(json_array_size(json_object_get(b, "failed")), 0);
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(atomic_load(&up_a.hits), hits_a); /* catalog itself is not asked */

	/* The list: the gateway's own, then each instance's. */
	assert_int_equal(gw_do(f, "GET", "/admin/breakers", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	json_t *list = json_object_get(b, "breakers");
	assert_int_equal(json_array_size(list), 3);
	assert_string_equal(thelp_jstr(json_array_get(list, 0), "state"), "FORCED_OPEN");
	/* (instances by service: cart-b, then catalog-a) */
	assert_string_equal(thelp_jstr(json_array_get(list, 1), "instance"), "up-b");
	assert_string_equal(thelp_jstr(json_array_get(list, 2), "instance"), "up-a");
	assert_int_equal(json_array_size(json_object_get(b, "unreachable")), 0);
	json_decref(b);
	msg_resp_clear(&r);

	/* An instance that does not answer is named. */
	register_instance(f, "user", "user-dead", f->dead_addr);
	assert_int_equal(gw_do(f, "GET", "/admin/breakers", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	json_t *un = json_object_get(b, "unreachable");
	assert_int_equal(json_array_size(un), 1);
	assert_string_equal(thelp_jstr(json_array_get(un, 0), "instance"), "user-dead");
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "POST", "/admin/breakers/catalog/reset", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "state"), "CLOSED");
	assert_int_equal(json_array_size(json_object_get(b, "forwarded")), 1);
	assert_int_equal(json_array_size(json_object_get(b, "failed")), 1);
	json_decref(b);
	msg_resp_clear(&r);
}

static void test_admin_faults_forwarded(void **state)
{
	fixture *f = *state;
	register_instance(f, "catalog", "catalog-a", up_a.addr);
	register_instance(f, "catalog", "catalog-b", up_b.addr);
	msg_resp r;
	/* A bad body is one 400 here; no instance is asked. */
	int hits = atomic_load(&up_a.hits) + atomic_load(&up_b.hits);
	gw_do(f, "PUT", "/admin/faults/catalog", ADMIN, "{\"error_rate\":2}", &r);
	assert_error(&r, 400, "invalid_argument", "field", "error_rate");
	msg_resp_clear(&r);
	assert_int_equal(atomic_load(&up_a.hits) + atomic_load(&up_b.hits), hits);
	/* Every instance of the service gets it. */
	const char *body = "{\"latency_ms\":250,\"duration_s\":60}";
	assert_int_equal(gw_do(f, "PUT", "/admin/faults/catalog", ADMIN, body, &r), 200);
	json_t *b = thelp_body_json(&r);
	json_t *inst = json_object_get(b, "instances");
	assert_int_equal(json_array_size(inst), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *one = json_array_get(inst, i);
		assert_string_equal(thelp_jstr(one, "method"), "PUT");
		assert_string_equal(thelp_jstr(one, "path"), "/admin/faults/catalog");
		assert_string_equal(thelp_jstr(one, "auth"), ADMIN);
		assert_string_equal(thelp_jstr(one, "body"), body);
	}
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "DELETE", "/admin/faults/catalog", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	/* Unknown targets; a known service without instances; a provider
	 * without a simulator. */
	gw_do(f, "PUT", "/admin/faults/nosuch", ADMIN, "{}", &r);
	assert_error(&r, 404, "not_found", "target", "nosuch");
	msg_resp_clear(&r);
	gw_do(f, "PUT", "/admin/faults/inventory", ADMIN, "{}", &r);
	assert_error(&r, 503, "unavailable", "target", "inventory");
	msg_resp_clear(&r);
	gw_do(f, "PUT", "/admin/faults/stripe", ADMIN, "{}", &r);
	assert_error(&r, 404, "not_found", "target", "stripe");
	msg_resp_clear(&r);
	/* ...a real provider's URL never gets the admin token... */
	config_set(f->config, "stripe.base_url", "https://api.stripe.com");
	gw_do(f, "PUT", "/admin/faults/stripe", ADMIN, "{}", &r);
	assert_error(&r, 404, "not_found", "target", "stripe");
	msg_resp_clear(&r);
	/* ...a simulator's does. */
	config_set(f->config, "stripe.base_url", up_b.addr);
	assert_int_equal(gw_do(f, "PUT", "/admin/faults/stripe", ADMIN, "{\"outage\":true}", &r), 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "path"), "/admin/faults/stripe");
	json_decref(b);
	msg_resp_clear(&r);

	/* The gateway's own fault. */
	assert_int_equal(gw_do(f, "PUT", "/admin/faults/gateway", ADMIN, "{\"latency_ms\":5}", &r),
			 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "instance"), "gateway-1");
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(fault_get(f->faults, "gateway", clock_now(f->clock), NULL), 0);

	/* The list gathers the gateway's, each instance's and the simulator's. */
	assert_int_equal(gw_do(f, "GET", "/admin/faults", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	json_t *list = json_object_get(b, "faults");
	assert_int_equal(json_array_size(list), 4);
	assert_string_equal(thelp_jstr(json_array_get(list, 0), "target"), "gateway");
	assert_string_equal(thelp_jstr(json_array_get(list, 1), "instance"), "up-a");
	assert_string_equal(thelp_jstr(json_array_get(list, 2), "instance"), "up-b");
	assert_string_equal(thelp_jstr(json_array_get(list, 3), "instance"), "up-b");
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(gw_do(f, "DELETE", "/admin/faults/gateway", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	assert_int_equal(fault_get(f->faults, "gateway", clock_now(f->clock), NULL), ERR_NOT_FOUND);
}

int main(void)
{
	/* Keeps stray writes to a closed socket from killing the test. */
	signal(SIGPIPE, SIG_IGN);
	if (http_client_global_init() != 0)
		return 1;
	srv_rng = rng_new(42);
	if (upstream_start(&up_a) != 0 || upstream_start(&up_b) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_service),
		cmocka_unit_test_setup_teardown(test_admin_needs_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_register_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_list_and_deregister, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_copies_request_and_response, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_balancing_two_upstreams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_least_outstanding, setup_long_deadline,
						teardown),
		cmocka_unit_test_setup_teardown(test_failover_on_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_fails_over_when_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_retry_after_request_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_500_passes_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_instance_and_unknown_routes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_expiry, setup_short_ttl, teardown),
		cmocka_unit_test_setup_teardown(test_no_instance_is_not_a_breaker_failure, setup_resil,
						teardown),
		cmocka_unit_test_setup_teardown(test_breaker_opens_refuses_and_closes, setup_resil,
						teardown),
		cmocka_unit_test_setup_teardown(test_stale_reads_while_refused_or_failing, setup_resil,
						teardown),
		cmocka_unit_test_setup_teardown(test_bulkhead_refuses_at_once, setup_resil, teardown),
		cmocka_unit_test_setup_teardown(test_deadline_travels_and_bounds, setup_resil,
						teardown),
		cmocka_unit_test_setup_teardown(test_admin_breakers_gathered_and_forwarded,
						setup_resil, teardown),
		cmocka_unit_test_setup_teardown(test_admin_faults_forwarded, setup_resil, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_server_stop(up_a.srv);
	http_server_stop(up_b.srv);
	rng_free(srv_rng);
	http_client_global_cleanup();
	return rc;
}
