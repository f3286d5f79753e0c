/* Tests for services/chaos (faults at an instance's HTTP layer and its
 * /admin/faults and /admin/breakers routes) and for the engines' outbound
 * client in services/engine (engine_call_service and engine_call_guarded
 * through the guard: edges per callee, refusals, deadlines), on a virtual
 * clock with a scripted ctx->call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thelp.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "resil/fault.h"
#include "resil/guard.h"
#include "services/chaos.h"
#include "services/engine.h"

#define T0 1764112255000000LL
#define MS 1000LL
#define SEC 1000000LL
#define ADMIN "Bearer chaos-admin"

typedef struct fx {
	clock_src *clock;
	rng *rng;
	FILE *logf;
	logger *log;
	metrics *m;
	config *cfg;
	fault_table *faults;
	engine_ctx ctx;
	chaos *c;
	/* the scripted outbound call */
	int calls;
	int status;
	int rc;
	int64_t took_us;
	char last_target[128];
	char last_path[128];
	char last_deadline[24];
	int64_t last_timeout_ms;
	int64_t deadline; /* what ctx->deadline answers */
} fx;

static int scripted_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
			 int64_t timeout_ms)
{
	fx *f = ud;
	f->calls++;
	snprintf(f->last_target, sizeof(f->last_target), "%s", target);
	snprintf(f->last_path, sizeof(f->last_path), "%s", req->path);
	const char *d = msg_req_header(req, GUARD_DEADLINE_HEADER);
	snprintf(f->last_deadline, sizeof(f->last_deadline), "%s", d ? d : "");
	f->last_timeout_ms = timeout_ms;
	clock_advance(f->clock, f->took_us);
	if (f->rc == 0)
		msg_resp_set(resp, f->status, "application/json", "{}", 2);
	return f->rc;
}

static int64_t scripted_deadline(void *ud) { return ((fx *)ud)->deadline; }

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	f->clock = clock_virtual_new(T0);
	f->rng = rng_new(3);
	f->logf = fopen("/dev/null", "w");
	f->log = log_new("cart", f->logf, f->clock, LOG_DEBUG);
	f->m = metrics_new();
	f->cfg = config_new();
	f->faults = fault_table_new();
	config_set(f->cfg, "breaker.window", "2");
	config_set(f->cfg, "breaker.min_calls", "2");
	char err[256] = "";
	f->ctx = (engine_ctx){
		.service = "cart",
		.instance_id = "cart-7",
		.clock = f->clock,
		.rng = f->rng,
		.log = f->log,
		.metrics = f->m,
		.config = f->cfg,
		.call = scripted_call,
		.call_ud = f,
		.admin_token = "chaos-admin",
		.service_secret = "secret",
		.gateway_url = "http://gw.test:1",
		.faults = f->faults,
		.deadline = scripted_deadline,
	};
	f->ctx.guard = guard_new("cart", f->cfg, f->log, f->m, err, sizeof(err));
	f->c = chaos_new(&f->ctx, err, sizeof(err));
	if (!f->ctx.guard || !f->c) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	f->status = 200;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	chaos_free(f->c);
	guard_free(f->ctx.guard);
	fault_table_free(f->faults);
	config_free(f->cfg);
	metrics_free(f->m);
	log_free(f->log);
	fclose(f->logf);
	rng_free(f->rng);
	clock_free(f->clock);
	free(f);
	return 0;
}

/* An admin route through chaos_admin; returns the status. */
static int admin(fx *f, const char *method, const char *path, const char *auth, const char *body,
		 msg_resp *r)
{
	msg_req q;
	assert_int_equal(msg_req_init(&q, method, path), 0);
	if (auth)
		msg_req_add_header(&q, "Authorization", auth);
	if (body) {
		msg_req_add_header(&q, "Content-Type", "application/json");
		msg_req_set_body(&q, body, strlen(body));
	}
	msg_resp_init(r);
	assert_int_equal(chaos_admin(f->c, &q, r), 1);
	msg_req_clear(&q);
	return r->status;
}

static void expect_error(msg_resp *r, int status, const char *code)
{
	assert_int_equal(r->status, status);
	json_t *b = thelp_body_json(r);
	assert_string_equal(thelp_jstr(json_object_get(b, "error"), "code"), code);
	json_decref(b);
	msg_resp_clear(r);
}

/* ---- faults ------------------------------------------------------------------------ */

static void test_exempt_paths(void **state)
{
	assert_true(chaos_exempt("/health"));
	assert_true(chaos_exempt("/ready"));
	assert_true(chaos_exempt("/metrics"));
	assert_true(chaos_exempt("/admin"));
	assert_true(chaos_exempt("/admin/faults/cart"));
	assert_false(chaos_exempt("/administrator"));
	assert_false(chaos_exempt("/v1/cart"));
	assert_false(chaos_exempt("/healthz"));
	assert_false(chaos_exempt("/"));
}

static void test_fault_admin_routes(void **state)
{
	fx *f = *state;
	msg_resp r;
	/* Admin token only. */
	admin(f, "GET", "/admin/faults", NULL, NULL, &r);
	expect_error(&r, 401, "unauthenticated");
	admin(f, "PUT", "/admin/faults/cart", "Bearer nope", "{\"outage\":true}", &r);
	expect_error(&r, 401, "unauthenticated");
	assert_int_equal(fault_get(f->faults, "cart", T0, NULL), ERR_NOT_FOUND);
	/* This instance takes faults for its own service only. */
	admin(f, "PUT", "/admin/faults/catalog", ADMIN, "{\"outage\":true}", &r);
	expect_error(&r, 404, "not_found");
	/* Bad bodies name the field. */
	admin(f, "PUT", "/admin/faults/cart", ADMIN, "{\"latency_ms\":-1}", &r);
	assert_int_equal(r.status, 400);
	json_t *b = thelp_body_json(&r);
	assert_string_equal(
		thelp_jstr(json_object_get(json_object_get(b, "error"), "details"), "field"),
		"latency_ms");
	json_decref(b);
	msg_resp_clear(&r);
	admin(f, "PUT", "/admin/faults/cart", ADMIN, "{\"latncy_ms\":5}", &r);
	expect_error(&r, 400, "invalid_argument");

	assert_int_equal(admin(f, "PUT", "/admin/faults/cart", ADMIN,
			       "{\"latency_ms\":100,\"jitter_ms\":10,\"error_rate\":0.25,"
			       "\"error_status\":502,\"duration_s\":30}",
			       &r),
			 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "target"), "cart");
	assert_string_equal(thelp_jstr(b, "instance"), "cart-7");
	assert_int_equal(json_integer_value(json_object_get(b, "latency_ms")), 100);
	assert_int_equal(json_integer_value(json_object_get(b, "jitter_ms")), 10);
	assert_true(json_real_value(json_object_get(b, "error_rate")) == 0.25);
	assert_int_equal(json_integer_value(json_object_get(b, "error_status")), 502);
	assert_false(json_is_true(json_object_get(b, "outage")));
	assert_int_equal(json_integer_value(json_object_get(b, "duration_s")), 30);
	assert_non_null(json_string_value(json_object_get(b, "expires_at")));
	json_decref(b);
	msg_resp_clear(&r);

	assert_int_equal(admin(f, "GET", "/admin/faults", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	json_t *list = json_object_get(b, "faults");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(thelp_jstr(json_array_get(list, 0), "instance"), "cart-7");
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(admin(f, "GET", "/admin/faults/cart", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);

	/* It expires on its own. */
	clock_advance(f->clock, 30 * SEC);
	admin(f, "GET", "/admin/faults/cart", ADMIN, NULL, &r);
	expect_error(&r, 404, "not_found");
	assert_int_equal(admin(f, "PUT", "/admin/faults/cart", ADMIN, "{\"outage\":true}", &r), 200);
	b = thelp_body_json(&r);
	assert_int_equal(json_integer_value(json_object_get(b, "duration_s")), 0);
	assert_true(json_is_null(json_object_get(b, "expires_at")));
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(admin(f, "DELETE", "/admin/faults/cart", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	assert_true(json_is_true(json_object_get(b, "cleared")));
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(admin(f, "DELETE", "/admin/faults/cart", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	assert_false(json_is_true(json_object_get(b, "cleared")));
	json_decref(b);
	msg_resp_clear(&r);

	/* Other paths are not chaos's. */
	msg_req q;
	msg_req_init(&q, "GET", "/admin/services");
	msg_resp_init(&r);
	assert_int_equal(chaos_admin(f->c, &q, &r), 0);
	assert_int_equal(r.status, 0);
	msg_req_clear(&q);
	msg_req_init(&q, "GET", "/admin/faultsx");
	assert_int_equal(chaos_admin(f->c, &q, &r), 0);
	msg_req_clear(&q);
}

static int fault_on(fx *f, const char *path, int64_t *delay, msg_resp *r)
{
	msg_req q;
	msg_req_init(&q, "GET", path);
	msg_resp_init(r);
	int failed = chaos_fault(f->c, &q, clock_now(f->clock), delay, r);
	msg_req_clear(&q);
	return failed;
}

static void test_faults_applied(void **state)
{
	fx *f = *state;
	msg_resp r;
	int64_t delay = -1;
	/* No fault: nothing happens. */
	assert_int_equal(fault_on(f, "/v1/cart", &delay, &r), 0);
	assert_int_equal(delay, 0);
	assert_int_equal(r.status, 0);

	/* Outage: 503 at once, marked, never on exempt paths. */
	fault_spec s = { .error_status = 503, .outage = true };
	assert_int_equal(fault_set(f->faults, "cart", &s), 0);
	assert_int_equal(fault_on(f, "/v1/cart", &delay, &r), 1);
	assert_int_equal(delay, 0);
	assert_int_equal(r.status, 503);
	assert_string_equal(msg_resp_header(&r, CHAOS_FAULT_HEADER), "outage");
	assert_string_equal(msg_resp_header(&r, "Retry-After"), "1");
	expect_error(&r, 503, "unavailable");
	static const char *const exempt[] = { "/health", "/ready", "/metrics", "/admin/breakers" };
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(fault_on(f, exempt[i], &delay, &r), 0);
		assert_int_equal(delay, 0);
	}
	/* A fault for another target does not touch this service. */
	fault_clear(f->faults, "cart");
	assert_int_equal(fault_set(f->faults, "catalog", &s), 0);
	assert_int_equal(fault_on(f, "/v1/cart", &delay, &r), 0);
	fault_clear(f->faults, "catalog");

	/* Latency with jitter: 100 +- 20 ms, drawn each time. */
	fault_spec lat = { .latency_ms = 100, .jitter_ms = 20, .error_status = 503 };
	assert_int_equal(fault_set(f->faults, "cart", &lat), 0);
	int64_t lo = INT64_MAX, hi = 0;
	for (int i = 0; i < 500; i++) {
		assert_int_equal(fault_on(f, "/v1/cart", &delay, &r), 0);
		assert_true(delay >= 80 * MS && delay <= 120 * MS);
		lo = delay < lo ? delay : lo;
		hi = delay > hi ? delay : hi;
	}
	assert_true(lo < 85 * MS && hi > 115 * MS);

	/* An error rate: about that share fails, with the status, after the
	 * latency. */
	fault_spec err = { .latency_ms = 5, .error_rate = 0.3, .error_status = 500 };
	assert_int_equal(fault_set(f->faults, "cart", &err), 0);
	int failed = 0;
	for (int i = 0; i < 2000; i++) {
		if (fault_on(f, "/v1/cart/items/x", &delay, &r)) {
			failed++;
			assert_int_equal(r.status, 500);
			assert_string_equal(msg_resp_header(&r, CHAOS_FAULT_HEADER), "error");
		}
		assert_int_equal(delay, 5 * MS);
		msg_resp_clear(&r);
	}
	assert_in_range(failed, 500, 700);

	/* Expiry. */
	fault_spec brief = { .outage = true, .error_status = 503,
			     .until_us = clock_now(f->clock) + 10 * SEC };
	assert_int_equal(fault_set(f->faults, "cart", &brief), 0);
	assert_int_equal(fault_on(f, "/v1/cart", &delay, &r), 1);
	msg_resp_clear(&r);
	clock_advance(f->clock, 10 * SEC);
	assert_int_equal(fault_on(f, "/v1/cart", &delay, &r), 0);

	chaos_deadline_passed(&r);
	assert_string_equal(msg_resp_header(&r, GUARD_REFUSED_HEADER), "deadline");
	expect_error(&r, 504, "upstream_timeout");
}

/* ---- breakers ------------------------------------------------------------------------ */

static void test_breaker_admin_routes(void **state)
{
	fx *f = *state;
	msg_resp r;
	assert_int_equal(admin(f, "GET", "/admin/breakers", ADMIN, NULL, &r), 200);
	json_t *b = thelp_body_json(&r);
	assert_int_equal(json_array_size(json_object_get(b, "breakers")), 0);
	json_decref(b);
	msg_resp_clear(&r);
	admin(f, "GET", "/admin/breakers", NULL, NULL, &r);
	expect_error(&r, 401, "unauthenticated");

	assert_int_equal(admin(f, "POST", "/admin/breakers/catalog/trip", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "from"), "cart");
	assert_string_equal(thelp_jstr(b, "to"), "catalog");
	assert_string_equal(thelp_jstr(b, "state"), "FORCED_OPEN");
	assert_string_equal(thelp_jstr(b, "instance"), "cart-7");
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(admin(f, "GET", "/admin/breakers", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	json_t *one = json_array_get(json_object_get(b, "breakers"), 0);
	assert_string_equal(thelp_jstr(one, "state"), "FORCED_OPEN");
	assert_string_equal(thelp_jstr(one, "instance"), "cart-7");
	json_decref(b);
	msg_resp_clear(&r);

	/* The engine's own calls to catalog now fail fast. */
	msg_req q;
	msg_req_init(&q, "GET", "/v1/products/BOOK-1");
	msg_resp_init(&r);
	assert_int_equal(engine_call_service(&f->ctx, &q, &r, 1000), ERR_UNAVAILABLE);
	assert_string_equal(engine_call_refusal(&r), "breaker");
	assert_int_equal(f->calls, 0);
	msg_resp_clear(&r);
	msg_req_clear(&q);

	assert_int_equal(admin(f, "POST", "/admin/breakers/catalog/reset", ADMIN, NULL, &r), 200);
	b = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(b, "state"), "CLOSED");
	json_decref(b);
	msg_resp_clear(&r);
	assert_int_equal(admin(f, "POST", "/admin/breakers/catalog/disable", ADMIN, NULL, &r), 200);
	msg_resp_clear(&r);
	admin(f, "POST", "/admin/breakers/payment/reset", ADMIN, NULL, &r);
	expect_error(&r, 404, "not_found");
	admin(f, "POST", "/admin/breakers/catalog/explode", ADMIN, NULL, &r);
	expect_error(&r, 404, "not_found");
	admin(f, "POST", "/admin/breakers/Not%20A%20Name/trip", ADMIN, NULL, &r);
	expect_error(&r, 400, "invalid_argument");
	admin(f, "GET", "/admin/breakers/catalog/trip", ADMIN, NULL, &r);
	expect_error(&r, 405, "method_not_allowed");
}

/* ---- the outbound client ------------------------------------------------------------------ */

static int service_call(fx *f, const char *method, const char *path, msg_resp *r)
{
	msg_req q;
	msg_req_init(&q, method, path);
	msg_resp_init(r);
	int rc = engine_call_service(&f->ctx, &q, r, 1000);
	msg_req_clear(&q);
	return rc;
}

static void test_engine_calls_through_the_guard(void **state)
{
	fx *f = *state;
	msg_resp r;
	/* An edge per callee, named by the route table. */
	assert_int_equal(service_call(f, "GET", "/v1/products/BOOK-1", &r), 0);
	msg_resp_clear(&r);
	assert_string_equal(f->last_target, "http://gw.test:1");
	assert_int_equal(service_call(f, "GET", "/v1/inventory/BOOK-1", &r), 0);
	msg_resp_clear(&r);
	assert_int_equal(service_call(f, "GET", "/v1/unrouted", &r), 0);
	msg_resp_clear(&r);
	json_t *list = guard_list(f->ctx.guard, clock_now(f->clock));
	assert_int_equal(json_array_size(list), 3);
	assert_string_equal(thelp_jstr(json_array_get(list, 0), "to"), "catalog");
	assert_string_equal(thelp_jstr(json_array_get(list, 1), "to"), "gateway");
	assert_string_equal(thelp_jstr(json_array_get(list, 2), "to"), "inventory");
	json_decref(list);

	/* A 503 opens the catalog edge (window 2: one success, one failure is
	 * 50%): its retry is refused, and the caller gets the 503; the next
	 * call is refused without a call. */
	f->status = 503;
	int before = f->calls;
	assert_int_equal(service_call(f, "GET", "/v1/products/BOOK-1", &r), 0);
	assert_int_equal(r.status, 503);
	assert_null(engine_call_refusal(&r));
	msg_resp_clear(&r);
	assert_int_equal(f->calls - before, 1);
	before = f->calls;
	assert_int_equal(service_call(f, "GET", "/v1/products/BOOK-1", &r), ERR_UNAVAILABLE);
	assert_string_equal(engine_call_refusal(&r), "breaker");
	assert_non_null(msg_resp_header(&r, "Retry-After"));
	msg_resp_clear(&r);
	assert_int_equal(f->calls, before);
	/* Inventory is another edge: still called. */
	f->status = 200;
	assert_int_equal(service_call(f, "GET", "/v1/inventory/BOOK-1", &r), 0);
	assert_null(engine_call_refusal(&r));
	msg_resp_clear(&r);

	/* A 4xx from the service is an answer, not a refusal or a failure. */
	f->status = 402;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(service_call(f, "POST", "/v1/inventory/x", &r), 0);
		assert_int_equal(r.status, 402);
		msg_resp_clear(&r);
	}
	json_t *inv = guard_edge_json(f->ctx.guard, "inventory", clock_now(f->clock));
	assert_string_equal(thelp_jstr(inv, "state"), "CLOSED");
	json_decref(inv);
}

static void test_engine_calls_keep_the_deadline(void **state)
{
	fx *f = *state;
	msg_resp r;
	/* The request being served has 1500 ms left: the call gets them. */
	f->deadline = clock_now(f->clock) + 1500 * MS;
	assert_int_equal(service_call(f, "GET", "/v1/inventory/BOOK-1", &r), 0);
	msg_resp_clear(&r);
	assert_int_equal(f->last_timeout_ms, 1000); /* its own timeout is sooner */
	assert_string_equal(f->last_deadline, "1000");
	f->deadline = clock_now(f->clock) + 400 * MS;
	assert_int_equal(service_call(f, "GET", "/v1/inventory/BOOK-1", &r), 0);
	msg_resp_clear(&r);
	assert_int_equal(f->last_timeout_ms, 400);
	assert_string_equal(f->last_deadline, "400");
	/* Passed: nothing is sent. */
	int before = f->calls;
	f->deadline = clock_now(f->clock);
	assert_int_equal(service_call(f, "GET", "/v1/inventory/BOOK-1", &r), ERR_TIMEOUT);
	assert_string_equal(engine_call_refusal(&r), "deadline");
	msg_resp_clear(&r);
	assert_int_equal(f->calls, before);

	/* Without a guard the deadline still holds. */
	guard *g = f->ctx.guard;
	f->ctx.guard = NULL;
	f->deadline = clock_now(f->clock) + 250 * MS;
	assert_int_equal(service_call(f, "GET", "/v1/inventory/BOOK-1", &r), 0);
	msg_resp_clear(&r);
	assert_int_equal(f->last_timeout_ms, 250);
	assert_string_equal(f->last_deadline, "250");
	f->deadline = clock_now(f->clock) - 1;
	assert_int_equal(service_call(f, "GET", "/v1/inventory/BOOK-1", &r), ERR_TIMEOUT);
	assert_string_equal(engine_call_refusal(&r), "deadline");
	msg_resp_clear(&r);
	f->ctx.guard = g;

	/* engine_call_guarded: any target, a named edge. */
	f->deadline = 0;
	msg_req q;
	msg_req_init(&q, "POST", "/v1/payment_intents");
	msg_resp_init(&r);
	assert_int_equal(engine_call_guarded(&f->ctx, "stripe", "http://stripe.test:2", &q, &r, 700),
			 0);
	assert_string_equal(f->last_target, "http://stripe.test:2");
	assert_int_equal(f->last_timeout_ms, 700);
	msg_resp_clear(&r);
	msg_req_clear(&q);
	json_t *edge = guard_edge_json(f->ctx.guard, "stripe", clock_now(f->clock));
	assert_non_null(edge);
	assert_string_equal(thelp_jstr(edge, "to"), "stripe");
	json_decref(edge);

	msg_resp_init(&r);
	assert_null(engine_call_refusal(&r));
	msg_resp_set_header(&r, GUARD_REFUSED_HEADER, "something else");
	assert_null(engine_call_refusal(&r));
	msg_resp_set_header(&r, GUARD_REFUSED_HEADER, "bulkhead");
	assert_string_equal(engine_call_refusal(&r), "bulkhead");
	msg_resp_clear(&r);
	assert_null(engine_call_refusal(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exempt_paths),
		cmocka_unit_test_setup_teardown(test_fault_admin_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_breaker_admin_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_calls_through_the_guard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_calls_keep_the_deadline, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
