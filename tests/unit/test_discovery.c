/* discovery: how a service calls another directly. engine_call_service with
 * the host's copy of the registry (ctx->instances) and a route table
 * (ctx->routes) sends to an instance of the route's service, with the path
 * the gateway would forward (routes_forward) and a signed service
 * identity; it balances over the instances, fails over when a connection
 * is refused (the instance leaves rotation), keeps /admin paths and calls
 * with no instance known for the gateway, and goes through the edge's
 * breaker. discovery_apply copies a registry listing: the gateway's
 * heartbeat times (an instance found dead stays out of rotation until it
 * heartbeats again), its instances out of rotation, and forgets the ones
 * no longer listed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "ops/discovery.h"
#include "resil/guard.h"
#include "services/engine.h"
#include "services/identity.h"
#include "services/registry.h"
#include "services/routes.h"

#define T0 1764112255000000LL
#define SECRET "direct-test-secret"
#define GW "http://gw:1"
#define TABLE "/v1/things catalog:/v2/things\n/v1/payments payment\n/admin/payments payment\n"

typedef struct fx {
	engine_ctx ctx;
	clock_src *clock;
	registry *reg;
	routes *table;
	char refuse[64];   /* a target whose connections are refused */
	char targets[16][64];
	char paths[16][128];
	char idents[16][IDENTITY_MAX];
	int calls;
} fx;

static int fake_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	fx *f = ud;
	if (f->calls < 16) {
		snprintf(f->targets[f->calls], sizeof(f->targets[0]), "%s", target);
		snprintf(f->paths[f->calls], sizeof(f->paths[0]), "%s", req->path);
		const char *id = msg_req_header(req, IDENTITY_HEADER);
		snprintf(f->idents[f->calls], sizeof(f->idents[0]), "%s", id ? id : "");
	}
	f->calls++;
	if (strcmp(target, f->refuse) == 0)
		return ERR_UNAVAILABLE;
	msg_resp_json(resp, 200, json_object());
	return 0;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	f->clock = clock_virtual_new(T0);
	f->reg = registry_new(3500000);
	char err[128];
	f->table = routes_parse(TABLE, err, sizeof(err));
	assert_non_null(f->table);
	f->ctx = (engine_ctx){ .service = "order", .instance_id = "order-1", .clock = f->clock,
			       .rng = rng_new(7), .call = fake_call, .call_ud = f,
			       .service_secret = SECRET, .gateway_url = GW,
			       .instances = f->reg, .routes = f->table };
	f->ctx.guard = guard_new("order", NULL, NULL, NULL, err, sizeof(err));
	assert_non_null(f->ctx.guard);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	guard_free(f->ctx.guard);
	registry_free(f->reg);
	routes_free(f->table);
	rng_free(f->ctx.rng);
	clock_free(f->clock);
	free(f);
	return 0;
}

static int call(fx *f, const char *method, const char *path)
{
	msg_req req;
	msg_resp resp;
	msg_req_init(&req, method, path);
	msg_resp_init(&resp);
	int rc = engine_call_service(&f->ctx, &req, &resp, 1000);
	int status = resp.status;
	msg_req_clear(&req);
	msg_resp_clear(&resp);
	return rc ? rc : status;
}

static void test_path_and_identity_as_the_gateway_would(void **state)
{
	fx *f = *state;
	assert_int_equal(registry_heartbeat(f->reg, "catalog", "catalog-1", "http://c1:1", T0), 0);
	assert_int_equal(call(f, "GET", "/v1/things/42"), 200);
	assert_int_equal(f->calls, 1);
	assert_string_equal(f->targets[0], "http://c1:1");
	assert_string_equal(f->paths[0], "/v2/things/42");
	identity who;
	assert_int_equal(identity_verify(SECRET, f->idents[0], T0, 60000000, &who), 0);
	assert_int_equal(who.role, IDENTITY_SERVICE);
	assert_string_equal(who.sub, "order");
}

static void test_round_robin(void **state)
{
	fx *f = *state;
	registry_heartbeat(f->reg, "payment", "payment-1", "http://p1:1", T0);
	registry_heartbeat(f->reg, "payment", "payment-2", "http://p2:1", T0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(call(f, "POST", "/v1/payments"), 200);
	int one = 0;
	for (int i = 0; i < 6; i++)
		one += strcmp(f->targets[i], "http://p1:1") == 0;
	assert_int_equal(one, 3);
}

static void test_refused_fails_over(void **state)
{
	fx *f = *state;
	registry_heartbeat(f->reg, "payment", "payment-1", "http://p1:1", T0);
	registry_heartbeat(f->reg, "payment", "payment-2", "http://p2:1", T0);
	snprintf(f->refuse, sizeof(f->refuse), "http://p1:1");
	for (int i = 0; i < 4; i++)
		assert_int_equal(call(f, "POST", "/v1/payments"), 200);
	/* p1 refused once and left rotation: five calls in all, four to p2,
	 * none through the gateway. */
	assert_int_equal(f->calls, 5);
	int p2 = 0;
	for (int i = 0; i < 5; i++)
		p2 += strcmp(f->targets[i], "http://p2:1") == 0;
	assert_int_equal(p2, 4);
	assert_int_equal(registry_healthy(f->reg, "payment", T0), 1);
	/* Both refuse: the gateway is the last resort, at the path as given. */
	snprintf(f->refuse, sizeof(f->refuse), "http://p2:1");
	f->calls = 0;
	assert_int_equal(call(f, "POST", "/v1/payments"), 200);
	assert_string_equal(f->targets[f->calls - 1], GW);
}

static void test_gateway_when_unknown_or_admin(void **state)
{
	fx *f = *state;
	assert_int_equal(call(f, "GET", "/v1/things/42"), 200);
	assert_string_equal(f->targets[0], GW);
	assert_string_equal(f->paths[0], "/v1/things/42"); /* the gateway rewrites */
	registry_heartbeat(f->reg, "payment", "payment-1", "http://p1:1", T0);
	assert_int_equal(call(f, "GET", "/admin/payments"), 200);
	assert_string_equal(f->targets[1], GW);
	/* No route: the gateway answers (its 404). */
	assert_int_equal(call(f, "GET", "/v1/nowhere"), 200);
	assert_string_equal(f->targets[2], GW);
	/* Neither instances nor a gateway. */
	f->ctx.gateway_url = NULL;
	assert_int_equal(call(f, "GET", "/v1/things/1"), ERR_UNAVAILABLE);
}

static void test_breaker_of_the_edge(void **state)
{
	fx *f = *state;
	registry_heartbeat(f->reg, "payment", "payment-1", "http://p1:1", T0);
	assert_int_equal(guard_trip(f->ctx.guard, "payment", T0), 0);
	assert_int_equal(call(f, "POST", "/v1/payments"), ERR_UNAVAILABLE);
	assert_int_equal(f->calls, 0);
	assert_int_equal(guard_reset(f->ctx.guard, "payment", T0), 0);
	assert_int_equal(call(f, "POST", "/v1/payments"), 200);
	assert_int_equal(f->calls, 1);
}

static json_t *listing(const char *id, const char *addr, int healthy, int64_t hb)
{
	char ts[40];
	clock_fmt_rfc3339(hb, ts, sizeof(ts));
	return json_pack("{s:[{s:s,s:[{s:s,s:s,s:b,s:s,s:i}]}]}", "services", "name", "payment",
			 "instances", "id", id, "addr", addr, "healthy", healthy, "last_heartbeat",
			 ts, "outstanding", 0);
}

static void test_apply(void **state)
{
	fx *f = *state;
	clock_src *clk = clock_virtual_new(T0);
	discovery_opts o = { .gateway_url = GW, .timeout_ms = 1000,
			     .ttl_ms = 3500 };
	char err[128];
	discovery *d = discovery_new(&o, clk, NULL, err, sizeof(err));
	assert_non_null(d);
	registry *r = discovery_registry(d);
	assert_non_null(discovery_routes(d));
	json_t *doc = listing("payment-1", "http://p1:1", 1, T0 - 500000);
	assert_int_equal(discovery_apply(d, doc, T0), 0);
	assert_int_equal(registry_healthy(r, "payment", T0), 1);
	/* Found dead here: the same listing again does not bring it back... */
	registry_mark_down(r, "payment-1", T0 + 1000);
	assert_int_equal(discovery_apply(d, doc, T0 + 2000), 0);
	assert_int_equal(registry_healthy(r, "payment", T0 + 2000), 0);
	json_decref(doc);
	/* ...a later heartbeat does. */
	doc = listing("payment-1", "http://p1:1", 1, T0 + 900000);
	assert_int_equal(discovery_apply(d, doc, T0 + 1000000), 0);
	assert_int_equal(registry_healthy(r, "payment", T0 + 1000000), 1);
	json_decref(doc);
	/* Out of rotation at the gateway although it heartbeats: here too. */
	doc = listing("payment-1", "http://p1:1", 0, T0 + 1500000);
	assert_int_equal(discovery_apply(d, doc, T0 + 1600000), 0);
	assert_int_equal(registry_healthy(r, "payment", T0 + 1600000), 0);
	json_decref(doc);
	/* No longer listed: forgotten. */
	doc = listing("payment-2", "http://p2:1", 1, T0 + 2000000);
	assert_int_equal(discovery_apply(d, doc, T0 + 2000000), 0);
	json_t *mine = registry_to_json(r, T0 + 2000000);
	json_t *ins = json_object_get(json_array_get(json_object_get(mine, "services"), 0),
				      "instances");
	assert_int_equal(json_array_size(ins), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ins, 0), "id")),
			    "payment-2");
	json_decref(mine);
	json_decref(doc);
	doc = json_pack("{s:i}", "services", 1);
	assert_int_equal(discovery_apply(d, doc, T0), ERR_INVALID);
	json_decref(doc);
	discovery_free(d);
	clock_free(clk);
	(void)f;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_and_identity_as_the_gateway_would, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_round_robin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_fails_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_when_unknown_or_admin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_breaker_of_the_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
