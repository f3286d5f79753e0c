/* Tests for sim/paypal_sim through its engine_def, driven by hand-built
 * requests on a virtual clock (no network): the OAuth2 token endpoint
 * (Basic credentials, grant type, configured credentials) and tokens that
 * expire; orders, authorisation, capture, void and refund with their
 * status transitions and PayPal's error bodies; every test payer; request
 * validation; PayPal-Request-Id replay (byte for byte, per client, stored
 * for business refusals, not for validation errors or faults, expiring,
 * bounded) and DUPLICATE_REQUEST_ID; faults for every call and for one
 * operation, their expiry and the delay header; the bound on orders; the
 * admin routes; and the signed webhooks sent from the tick for captures
 * and refunds (also a refund made from PayPal's side). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thelp.h"
#include "efix.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "services/engine.h"
#include "services/webhook.h"
#include "sim/paypal_sim.h"
#include "sim/stripe_sim.h"

#define T0 1764112255000000LL /* 2025-11-25T23:10:55Z */
#define SEC 1000000LL
#define ADMIN "Bearer " EFIX_ADMIN
#define BASIC_ANY "Basic Y2xpZW50OnNlY3JldA==" /* client:secret */
#define WH_SECRET "pp-webhook-secret"
#define ORDER_OK                                                                              \
	"{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{\"reference_id\":\"pay-1\","         \
	"\"custom_id\":\"pay-1\",\"amount\":{\"currency_code\":\"USD\",\"value\":\"12.34\"}}],"   \
	"\"payment_source\":{\"paypal\":{\"vault_id\":\"paypal_ok\"}}}"

typedef struct delivery {
	char path[128];
	char id[64], tm[64], algo[32], sig[128];
	char *body;
} delivery;

typedef struct fixture {
	efix *e; /* the engine's context: virtual clock, rng, config, admin token */
	char token[256];
	delivery sent[16];
	int nsent;
	int refuse; /* the webhook receiver answers 500 */
} fixture;

/* ctx->call of the simulator: the webhook receiver. */
static int receiver(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		    int64_t timeout_ms)
{
	(void)timeout_ms;
	fixture *f = ud;
	assert_string_equal(target, "http://merchant.test");
	if (f->nsent < 16) {
		delivery *d = &f->sent[f->nsent++];
		snprintf(d->path, sizeof(d->path), "%s", req->path);
		const char *v;
#define H(field, name) v = msg_req_header(req, name), snprintf(d->field, sizeof(d->field), "%s", v ? v : "")
		H(id, WEBHOOK_PAYPAL_ID_HEADER);
		H(tm, WEBHOOK_PAYPAL_TIME_HEADER);
		H(algo, WEBHOOK_PAYPAL_ALGO_HEADER);
		H(sig, WEBHOOK_PAYPAL_SIG_HEADER);
#undef H
		d->body = strndup(req->body, req->body_len);
	}
	msg_resp_set(resp, f->refuse ? 500 : 200, "application/json", "{}", 2);
	return 0;
}

static fixture *fixture_new(const char *const *kv)
{
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->e = efix_new("paypal-sim", "sqlite::memory:", T0, 42);
	for (int i = 0; kv && kv[i]; i += 2)
		assert_int_equal(config_set(f->e->config, kv[i], kv[i + 1]), 0);
	f->e->ctx.call = receiver;
	f->e->ctx.call_ud = f;
	f->e->eng = efix_create_engine(f->e);
	return f;
}

static int setup(void **state)
{
	static const char *const kv[] = { "paypal_sim.token_ttl_s", "600", NULL };
	*state = fixture_new(kv);
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	for (int i = 0; i < f->nsent; i++)
		free(f->sent[i].body);
	efix_free(f->e);
	free(f);
	return 0;
}

/* ---- requests --------------------------------------------------------------------- */

static int call_full(fixture *f, const char *method, const char *path, const char *auth,
		     const char *rid, const char *ctype, const char *body, msg_resp *resp)
{
	msg_req req;
	assert_int_equal(msg_req_init(&req, method, path), 0);
	if (auth)
		assert_int_equal(msg_req_add_header(&req, "Authorization", auth), 0);
	if (rid)
		assert_int_equal(msg_req_add_header(&req, "PayPal-Request-Id", rid), 0);
	if (ctype)
		assert_int_equal(msg_req_add_header(&req, "Content-Type", ctype), 0);
	if (body)
		assert_int_equal(msg_req_set_body(&req, body, strlen(body)), 0);
	msg_resp_init(resp);
	paypal_sim_engine.handle(f->e->eng, &req, resp);
	msg_req_clear(&req);
	return resp->status;
}

/* A new access token for basic (BASIC_ANY when NULL) into f->token. */
static void get_token(fixture *f, const char *basic)
{
	msg_resp r;
	int st = call_full(f, "POST", "/v1/oauth2/token", basic ? basic : BASIC_ANY, NULL,
			   "application/x-www-form-urlencoded", "grant_type=client_credentials", &r);
	if (st != 200)
		fail_msg("token: %d %.*s", st, (int)r.body_len, r.body);
	json_t *v = thelp_body_json(&r);
	snprintf(f->token, sizeof(f->token), "Bearer %s", thelp_jstr(v, "access_token"));
	json_decref(v);
	msg_resp_clear(&r);
}

/* An API call with the fixture's token; the parsed answer (NULL for an
 * empty body), asserting the status when want is not 0. */
static json_t *api(fixture *f, const char *method, const char *path, const char *rid,
		   const char *body, int want, msg_resp *keep)
{
	if (!f->token[0])
		get_token(f, NULL);
	msg_resp r;
	int st = call_full(f, method, path, f->token, rid, body ? "application/json" : NULL, body,
			   &r);
	if (want && st != want)
		fail_msg("%s %s: %d, expected %d: %.*s", method, path, st, want, (int)r.body_len,
			 r.body);
	json_t *v = r.body_len ? thelp_body_json(&r) : NULL;
	if (keep)
		*keep = r;
	else
		msg_resp_clear(&r);
	return v;
}

static const char *issue_of(json_t *v)
{
	return thelp_jstr(json_array_get(json_object_get(v, "details"), 0), "issue");
}

static void expect_issue(fixture *f, const char *method, const char *path, const char *body,
			 int want, const char *name, const char *issue)
{
	json_t *v = api(f, method, path, NULL, body, want, NULL);
	if (name)
		assert_string_equal(thelp_jstr(v, "name"), name);
	if (issue)
		assert_string_equal(issue_of(v), issue);
	assert_int_equal(strlen(thelp_jstr(v, "debug_id")), 13);
	json_decref(v);
}

static json_t *admin(fixture *f, const char *method, const char *path, const char *body,
		     int want)
{
	msg_resp r;
	int st = call_full(f, method, path, ADMIN, NULL, body ? "application/json" : NULL, body, &r);
	if (st != want)
		fail_msg("%s %s: %d, expected %d: %.*s", method, path, st, want, (int)r.body_len,
			 r.body);
	json_t *v = thelp_body_json(&r);
	msg_resp_clear(&r);
	return v;
}

static long long stat(fixture *f, const char *name)
{
	json_t *v = admin(f, "GET", "/admin/paypal/stats", NULL, 200);
	json_t *n = json_object_get(v, name);
	if (!json_is_integer(n))
		fail_msg("no counter %s", name);
	long long x = json_integer_value(n);
	json_decref(v);
	return x;
}

/* Creates an order paid by payer (NULL: none); its id into id. */
static void create(fixture *f, const char *payer, char id[32])
{
	char body[512];
	if (payer)
		snprintf(body, sizeof(body),
			 "{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{\"custom_id\":\"pay-9\","
			 "\"amount\":{\"currency_code\":\"USD\",\"value\":\"50.00\"}}],"
			 "\"payment_source\":{\"paypal\":{\"vault_id\":\"%s\"}}}",
			 payer);
	else
		snprintf(body, sizeof(body),
			 "{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{\"amount\":"
			 "{\"currency_code\":\"USD\",\"value\":\"50.00\"}}]}");
	json_t *v = api(f, "POST", "/v2/checkout/orders", NULL, body, 201, NULL);
	snprintf(id, 32, "%s", thelp_jstr(v, "id"));
	json_decref(v);
}

static json_t *first_auth(json_t *order)
{
	return json_array_get(json_object_get(json_object_get(json_array_get(
							      json_object_get(order, "purchase_units"), 0),
						      "payments"),
				      "authorizations"),
			      0);
}

/* An authorised order of payer: the authorisation's id into auth. */
static void authorized(fixture *f, const char *payer, char auth[32])
{
	char order[32], path[128];
	create(f, payer, order);
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", order);
	json_t *v = api(f, "POST", path, NULL, NULL, 201, NULL);
	snprintf(auth, 32, "%s", thelp_jstr(first_auth(v), "id"));
	json_decref(v);
}

static const char *value_of(json_t *o)
{
	return thelp_jstr(json_object_get(o, "amount"), "value");
}

/* ---- tokens ---------------------------------------------------------------------------- */

static void test_token(void **state)
{
	fixture *f = *state;
	msg_resp r;
	const char *form = "application/x-www-form-urlencoded", *g = "grant_type=client_credentials";
	static const char *const bad[] = { NULL, "Bearer abc", "Basic !!!", "Basic Y2xpZW50",
					   /* "client" */ "Basic OnNlY3JldA==" /* ":secret" */ };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(call_full(f, "POST", "/v1/oauth2/token", bad[i], NULL, form, g, &r),
				 401);
		json_t *v = thelp_body_json(&r);
		assert_string_equal(thelp_jstr(v, "error"), "invalid_client");
		json_decref(v);
		msg_resp_clear(&r);
	}
	assert_int_equal(stat(f, "auth_failures"), 5);
	assert_int_equal(call_full(f, "POST", "/v1/oauth2/token", BASIC_ANY, NULL, form,
				   "grant_type=password", &r),
			 400);
	json_t *v = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(v, "error"), "unsupported_grant_type");
	json_decref(v);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "POST", "/v1/oauth2/token", BASIC_ANY, NULL, NULL, g, &r), 400);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "POST", "/v1/oauth2/token", BASIC_ANY, NULL, form, g, &r), 200);
	v = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(v, "token_type"), "Bearer");
	assert_memory_equal(thelp_jstr(v, "access_token"), "A21AA", 5);
	assert_int_equal(json_integer_value(json_object_get(v, "expires_in")), 600);
	assert_non_null(strstr(thelp_jstr(v, "scope"), "payments"));
	json_decref(v);
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "tokens_issued"), 1);
}

static void test_configured_credentials(void **state)
{
	(void)state;
	static const char *const kv[] = { "paypal_sim.client_id", "client", "paypal_sim.secret",
					  "s3cret", NULL };
	fixture *f = fixture_new(kv);
	msg_resp r;
	const char *form = "application/x-www-form-urlencoded", *g = "grant_type=client_credentials";
	/* client:secret is refused, client:s3cret accepted */
	assert_int_equal(call_full(f, "POST", "/v1/oauth2/token", BASIC_ANY, NULL, form, g, &r), 401);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "POST", "/v1/oauth2/token", "Basic Y2xpZW50OnMzY3JldA==", NULL,
				   form, g, &r),
			 200);
	msg_resp_clear(&r);
	void *st = f;
	teardown(&st);
}

static void test_token_expiry(void **state)
{
	fixture *f = *state;
	get_token(f, NULL);
	char order[32];
	create(f, "paypal_ok", order);
	clock_advance(f->e->clock, 599 * SEC);
	create(f, "paypal_ok", order);
	clock_advance(f->e->clock, 1 * SEC);
	json_t *v = api(f, "POST", "/v2/checkout/orders", NULL, ORDER_OK, 401, NULL);
	assert_string_equal(thelp_jstr(v, "error"), "invalid_token");
	json_decref(v);
	/* no token at all, and one never issued */
	msg_resp r;
	assert_int_equal(call_full(f, "GET", "/v2/checkout/orders/X", NULL, NULL, NULL, NULL, &r), 401);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "GET", "/v2/checkout/orders/X", "Bearer A21AAforged", NULL, NULL,
				   NULL, &r),
			 401);
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "token_refusals"), 3);
	/* a new token works */
	get_token(f, NULL);
	create(f, "paypal_ok", order);
	assert_int_equal(stat(f, "orders"), 3);
}

/* ---- the payment's life ------------------------------------------------------------------- */

static void test_order_capture_refund(void **state)
{
	fixture *f = *state;
	json_t *o = api(f, "POST", "/v2/checkout/orders", NULL, ORDER_OK, 201, NULL);
	assert_string_equal(thelp_jstr(o, "status"), "APPROVED");
	assert_string_equal(thelp_jstr(o, "intent"), "AUTHORIZE");
	char id[32], path[128], auth[32], cap[32];
	snprintf(id, sizeof(id), "%s", thelp_jstr(o, "id"));
	assert_int_equal(strlen(id), 17);
	json_t *unit = json_array_get(json_object_get(o, "purchase_units"), 0);
	assert_string_equal(thelp_jstr(unit, "custom_id"), "pay-1");
	assert_string_equal(value_of(unit), "12.34");
	json_decref(o);
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s", id);
	o = api(f, "GET", path, NULL, NULL, 200, NULL);
	assert_string_equal(thelp_jstr(o, "id"), id);
	json_decref(o);

	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", id);
	o = api(f, "POST", path, NULL, NULL, 201, NULL);
	assert_string_equal(thelp_jstr(o, "status"), "COMPLETED");
	json_t *a = first_auth(o);
	assert_string_equal(thelp_jstr(a, "status"), "CREATED");
	assert_string_equal(value_of(a), "12.34");
	assert_string_equal(thelp_jstr(a, "custom_id"), "pay-1");
	snprintf(auth, sizeof(auth), "%s", thelp_jstr(a, "id"));
	json_decref(o);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_AUTHORIZED");

	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	o = api(f, "POST", path, NULL, "{\"final_capture\":true}", 201, NULL);
	assert_string_equal(thelp_jstr(o, "status"), "COMPLETED");
	assert_string_equal(value_of(o), "12.34");
	assert_string_equal(
		thelp_jstr(json_object_get(json_object_get(o, "supplementary_data"), "related_ids"),
			   "authorization_id"),
		auth);
	snprintf(cap, sizeof(cap), "%s", thelp_jstr(o, "id"));
	json_decref(o);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY",
		     "AUTHORIZATION_ALREADY_CAPTURED");
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/void", auth);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY",
		     "AUTHORIZATION_ALREADY_CAPTURED");
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s", auth);
	o = api(f, "GET", path, NULL, NULL, 200, NULL);
	assert_string_equal(thelp_jstr(o, "status"), "CAPTURED");
	json_decref(o);

	/* partial, too much, the rest, nothing left */
	snprintf(path, sizeof(path), "/v2/payments/captures/%s/refund", cap);
	o = api(f, "POST", path, NULL, "{\"amount\":{\"currency_code\":\"USD\",\"value\":\"5.00\"}}",
		201, NULL);
	assert_string_equal(thelp_jstr(o, "status"), "COMPLETED");
	assert_string_equal(value_of(o), "5.00");
	char rid[32];
	snprintf(rid, sizeof(rid), "%s", thelp_jstr(o, "id"));
	json_decref(o);
	expect_issue(f, "POST", path, "{\"amount\":{\"currency_code\":\"USD\",\"value\":\"7.35\"}}",
		     422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED");
	expect_issue(f, "POST", path, "{\"amount\":{\"currency_code\":\"EUR\",\"value\":\"1.00\"}}",
		     422, "UNPROCESSABLE_ENTITY", "REFUND_CURRENCY_MISMATCH");
	snprintf(path, sizeof(path), "/v2/payments/captures/%s", cap);
	o = api(f, "GET", path, NULL, NULL, 200, NULL);
	assert_string_equal(thelp_jstr(o, "status"), "PARTIALLY_REFUNDED");
	json_decref(o);
	snprintf(path, sizeof(path), "/v2/payments/captures/%s/refund", cap);
	o = api(f, "POST", path, NULL, NULL, 201, NULL);
	assert_string_equal(value_of(o), "7.34");
	json_decref(o);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED");
	snprintf(path, sizeof(path), "/v2/payments/captures/%s", cap);
	o = api(f, "GET", path, NULL, NULL, 200, NULL);
	assert_string_equal(thelp_jstr(o, "status"), "REFUNDED");
	json_decref(o);
	snprintf(path, sizeof(path), "/v2/payments/refunds/%s", rid);
	o = api(f, "GET", path, NULL, NULL, 200, NULL);
	assert_string_equal(value_of(o), "5.00");
	json_decref(o);
	assert_int_equal(stat(f, "captures"), 1);
	assert_int_equal(stat(f, "captured_amount"), 1234);
	assert_int_equal(stat(f, "refunds"), 2);
	assert_int_equal(stat(f, "refunded_amount"), 1234);
	assert_int_equal(stat(f, "authorizations"), 1);
	/* unknown ids */
	expect_issue(f, "GET", "/v2/payments/captures/NOPE", NULL, 404, "RESOURCE_NOT_FOUND",
		     "INVALID_RESOURCE_ID");
	expect_issue(f, "POST", "/v2/checkout/orders/NOPE/authorize", NULL, 404,
		     "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID");
}

static void test_void_and_partial_capture(void **state)
{
	fixture *f = *state;
	char auth[32], path[128];
	authorized(f, "paypal_ok", auth);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/void", auth);
	msg_resp r;
	/* Without Prefer: 204, no body. */
	assert_int_equal(call_full(f, "POST", path, f->token, NULL, NULL, NULL, &r), 204);
	assert_int_equal(r.body_len, 0);
	msg_resp_clear(&r);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_VOIDED");
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_VOIDED");
	/* With Prefer: return=representation, the authorisation. */
	authorized(f, "paypal_ok", auth);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/void", auth);
	msg_req req;
	assert_int_equal(msg_req_init(&req, "POST", path), 0);
	assert_int_equal(msg_req_add_header(&req, "Authorization", f->token), 0);
	assert_int_equal(msg_req_add_header(&req, "Prefer", "return=representation"), 0);
	msg_resp_init(&r);
	paypal_sim_engine.handle(f->e->eng, &req, &r);
	msg_req_clear(&req);
	assert_int_equal(r.status, 200);
	json_t *v = thelp_body_json(&r);
	assert_string_equal(thelp_jstr(v, "status"), "VOIDED");
	json_decref(v);
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "voids"), 2);
	/* A partial capture, and one above the authorisation. */
	authorized(f, "paypal_ok", auth);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	expect_issue(f, "POST", path, "{\"amount\":{\"currency_code\":\"USD\",\"value\":\"50.01\"}}",
		     422, "UNPROCESSABLE_ENTITY", "MAX_CAPTURE_AMOUNT_EXCEEDED");
	v = api(f, "POST", path, NULL, "{\"amount\":{\"currency_code\":\"USD\",\"value\":\"20\"}}", 201,
		NULL);
	assert_string_equal(value_of(v), "20.00");
	json_decref(v);
}

static void test_payers(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *payer, *issue;
	} declines[] = {
		{ "paypal_declined", "INSTRUMENT_DECLINED" },
		{ "paypal_refused", "TRANSACTION_REFUSED" },
		{ "paypal_cannot_pay", "PAYER_CANNOT_PAY" },
	};
	char order[32], path[128], auth[32];
	for (size_t i = 0; i < 3; i++) {
		create(f, declines[i].payer, order);
		snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", order);
		expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY", declines[i].issue);
		/* The order stays approved: the payer may choose another way. */
		snprintf(path, sizeof(path), "/v2/checkout/orders/%s", order);
		json_t *v = api(f, "GET", path, NULL, NULL, 200, NULL);
		assert_string_equal(thelp_jstr(v, "status"), "APPROVED");
		json_decref(v);
	}
	/* denied: the order completes with a DENIED authorisation */
	create(f, "paypal_denied", order);
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", order);
	json_t *v = api(f, "POST", path, NULL, NULL, 201, NULL);
	assert_string_equal(thelp_jstr(v, "status"), "COMPLETED");
	assert_string_equal(thelp_jstr(first_auth(v), "status"), "DENIED");
	snprintf(auth, sizeof(auth), "%s", thelp_jstr(first_auth(v), "id"));
	json_decref(v);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_DENIED");
	assert_int_equal(stat(f, "declines"), 4);
	assert_int_equal(stat(f, "authorizations"), 0);
	/* capture declined */
	authorized(f, "paypal_capture_declined", auth);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	v = api(f, "POST", path, NULL, NULL, 201, NULL);
	assert_string_equal(thelp_jstr(v, "status"), "DECLINED");
	char cap[32];
	snprintf(cap, sizeof(cap), "%s", thelp_jstr(v, "id"));
	json_decref(v);
	snprintf(path, sizeof(path), "/v2/payments/captures/%s/refund", cap);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY", "CAPTURE_NOT_REFUNDABLE");
	assert_int_equal(stat(f, "capture_declines"), 1);
	assert_int_equal(stat(f, "captures"), 0);
	/* no payer: CREATED, and it cannot be authorised */
	create(f, NULL, order);
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", order);
	expect_issue(f, "POST", path, NULL, 422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED");
	/* a vault id no payer has */
	expect_issue(f, "POST", "/v2/checkout/orders",
		     "{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{\"amount\":{\"currency_code\":"
		     "\"USD\",\"value\":\"1.00\"}}],\"payment_source\":{\"paypal\":{\"vault_id\":"
		     "\"tok_visa\"}}}",
		     400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE");
}

static void test_validation(void **state)
{
	fixture *f = *state;
#define UNIT(amount) "{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{\"amount\":" amount "}]}"
	static const struct {
		const char *body, *issue;
		int status;
	} bad[] = {
		{ "{\"purchase_units\":[]}", "MISSING_REQUIRED_PARAMETER", 400 },
		{ "{\"intent\":\"CAPTURE\",\"purchase_units\":[]}", "INVALID_PARAMETER_VALUE", 400 },
		{ "{\"intent\":\"AUTHORIZE\",\"purchase_units\":[]}", "MISSING_REQUIRED_PARAMETER", 400 },
		{ "{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{},{}]}", "INVALID_ARRAY_MAX_ITEMS",
		  400 },
		{ "{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{}]}", "MISSING_REQUIRED_PARAMETER",
		  400 },
		{ UNIT("{\"currency_code\":\"USD\"}"), "MISSING_REQUIRED_PARAMETER", 400 },
		{ UNIT("{\"currency_code\":\"usd\",\"value\":\"1.00\"}"), "INVALID_PARAMETER_VALUE", 400 },
		{ UNIT("{\"currency_code\":\"USD\",\"value\":\"1.005\"}"), "DECIMAL_PRECISION", 400 },
		{ UNIT("{\"currency_code\":\"USD\",\"value\":\"abc\"}"), "INVALID_PARAMETER_VALUE", 400 },
		{ UNIT("{\"currency_code\":\"USD\",\"value\":\"-1.00\"}"), "INVALID_PARAMETER_VALUE", 400 },
		{ UNIT("{\"currency_code\":\"USD\",\"value\":\"12345678901.00\"}"),
		  "INVALID_PARAMETER_VALUE", 400 },
		{ UNIT("{\"currency_code\":\"JPY\",\"value\":\"12.5\"}"), "DECIMAL_PRECISION", 400 },
		{ UNIT("{\"currency_code\":\"USD\",\"value\":\"0.00\"}"), "CANNOT_BE_ZERO_OR_NEGATIVE",
		  422 },
		{ UNIT("{\"currency_code\":\"USD\",\"value\":5}"), "MISSING_REQUIRED_PARAMETER", 400 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_issue(f, "POST", "/v2/checkout/orders", bad[i].body, bad[i].status, NULL,
			     bad[i].issue);
	json_t *v = api(f, "POST", "/v2/checkout/orders", NULL,
			UNIT("{\"currency_code\":\"JPY\",\"value\":\"1234\"}"), 201, NULL);
	assert_string_equal(value_of(json_array_get(json_object_get(v, "purchase_units"), 0)), "1234");
	json_decref(v);
	char longid[300];
	memset(longid, 'x', 200);
	longid[200] = '\0';
	char body[600];
	snprintf(body, sizeof(body),
		 "{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{\"custom_id\":\"%s\",\"amount\":"
		 "{\"currency_code\":\"USD\",\"value\":\"1.00\"}}]}",
		 longid);
	expect_issue(f, "POST", "/v2/checkout/orders", body, 400, "INVALID_REQUEST",
		     "INVALID_STRING_LENGTH");
	/* not JSON, JSON that is not an object, the wrong content type */
	expect_issue(f, "POST", "/v2/checkout/orders", "{\"intent\":", 400, "INVALID_REQUEST",
		     "MALFORMED_REQUEST_JSON");
	expect_issue(f, "POST", "/v2/checkout/orders", "[1]", 400, "INVALID_REQUEST",
		     "MALFORMED_REQUEST_JSON");
	msg_resp r;
	assert_int_equal(call_full(f, "POST", "/v2/checkout/orders", f->token, NULL, "text/plain",
				   ORDER_OK, &r),
			 400);
	msg_resp_clear(&r);
	/* unknown paths and methods */
	v = api(f, "GET", "/v2/nothing/here", NULL, NULL, 404, NULL);
	assert_string_equal(thelp_jstr(v, "name"), "RESOURCE_NOT_FOUND");
	json_decref(v);
	v = api(f, "DELETE", "/v2/checkout/orders", NULL, NULL, 405, NULL);
	assert_string_equal(thelp_jstr(v, "name"), "METHOD_NOT_SUPPORTED");
	json_decref(v);
	/* a request id too long */
	char rid[200];
	memset(rid, 'r', 150);
	rid[150] = '\0';
	v = api(f, "POST", "/v2/checkout/orders", rid, ORDER_OK, 400, NULL);
	assert_string_equal(issue_of(v), "INVALID_PARAMETER_SYNTAX");
	json_decref(v);
	assert_int_equal(stat(f, "orders"), 1);
#undef UNIT
}

/* ---- PayPal-Request-Id ------------------------------------------------------------------------- */

static void test_request_id(void **state)
{
	fixture *f = *state;
	msg_resp r1, r2;
	json_t *a = api(f, "POST", "/v2/checkout/orders", "rid-1", ORDER_OK, 201, &r1);
	json_t *b = api(f, "POST", "/v2/checkout/orders", "rid-1", ORDER_OK, 201, &r2);
	assert_int_equal(r1.body_len, r2.body_len);
	assert_memory_equal(r1.body, r2.body, r1.body_len);
	msg_resp_clear(&r1);
	msg_resp_clear(&r2);
	char id[32], path[128];
	snprintf(id, sizeof(id), "%s", thelp_jstr(a, "id"));
	json_decref(a);
	json_decref(b);
	assert_int_equal(stat(f, "orders"), 1);
	assert_int_equal(stat(f, "replays"), 1);
	/* the same id with another body, or on another path */
	json_t *v = api(f, "POST", "/v2/checkout/orders", "rid-1",
			"{\"intent\":\"AUTHORIZE\",\"purchase_units\":[{\"amount\":{\"currency_code\":"
			"\"USD\",\"value\":\"99.00\"}}]}",
			422, NULL);
	assert_string_equal(issue_of(v), "DUPLICATE_REQUEST_ID");
	json_decref(v);
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", id);
	v = api(f, "POST", path, "rid-1", NULL, 422, NULL);
	assert_string_equal(issue_of(v), "DUPLICATE_REQUEST_ID");
	json_decref(v);
	assert_int_equal(stat(f, "request_id_errors"), 2);
	/* another client's id space */
	char mine[256];
	snprintf(mine, sizeof(mine), "%s", f->token);
	get_token(f, "Basic b3RoZXI6c2VjcmV0"); /* other:secret */
	v = api(f, "POST", "/v2/checkout/orders", "rid-1", ORDER_OK, 201, NULL);
	assert_string_not_equal(thelp_jstr(v, "id"), id);
	json_decref(v);
	snprintf(f->token, sizeof(f->token), "%s", mine);
	/* business refusals are kept: the decline replays */
	char order[32];
	create(f, "paypal_declined", order);
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", order);
	v = api(f, "POST", path, "rid-2", NULL, 422, NULL);
	json_decref(v);
	v = api(f, "POST", path, "rid-2", NULL, 422, NULL);
	assert_string_equal(issue_of(v), "INSTRUMENT_DECLINED");
	json_decref(v);
	assert_int_equal(stat(f, "declines"), 1);
	/* validation errors are not: the id stays usable */
	v = api(f, "POST", "/v2/checkout/orders", "rid-3", "{\"intent\":\"AUTHORIZE\"}", 400, NULL);
	json_decref(v);
	v = api(f, "POST", "/v2/checkout/orders", "rid-3", ORDER_OK, 201, NULL);
	json_decref(v);
	/* a capture whose answer was lost, asked again: captured once */
	char auth[32];
	authorized(f, "paypal_ok", auth);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	a = api(f, "POST", path, "pay-1-capture", NULL, 201, NULL);
	b = api(f, "POST", path, "pay-1-capture", NULL, 201, NULL);
	assert_string_equal(thelp_jstr(a, "id"), thelp_jstr(b, "id"));
	json_decref(a);
	json_decref(b);
	assert_int_equal(stat(f, "captures"), 1);
	/* kept request_id_ttl_s (6 h), then forgotten */
	clock_advance(f->e->clock, 500 * SEC);
	get_token(f, NULL);
	clock_advance(f->e->clock, 21600 * SEC - 500 * SEC);
	get_token(f, NULL);
	long long before = stat(f, "request_ids");
	assert_true(before >= 5);
	v = api(f, "POST", "/v2/checkout/orders", "rid-1", ORDER_OK, 201, NULL);
	assert_string_not_equal(thelp_jstr(v, "id"), id);
	json_decref(v);
}

static void test_request_id_bound(void **state)
{
	(void)state;
	static const char *const kv[] = { "paypal_sim.max_request_ids", "2", "paypal_sim.max_orders",
					  "4", NULL };
	fixture *f = fixture_new(kv);
	char first[32];
	json_t *v = api(f, "POST", "/v2/checkout/orders", "a", ORDER_OK, 201, NULL);
	snprintf(first, sizeof(first), "%s", thelp_jstr(v, "id"));
	json_decref(v);
	json_decref(api(f, "POST", "/v2/checkout/orders", "b", ORDER_OK, 201, NULL));
	json_decref(api(f, "POST", "/v2/checkout/orders", "c", ORDER_OK, 201, NULL));
	assert_int_equal(stat(f, "request_ids"), 2);
	/* "a" was forgotten: a new order */
	v = api(f, "POST", "/v2/checkout/orders", "a", ORDER_OK, 201, NULL);
	assert_string_not_equal(thelp_jstr(v, "id"), first);
	json_decref(v);
	/* "c" is still known */
	json_decref(api(f, "POST", "/v2/checkout/orders", "c", ORDER_OK, 201, NULL));
	/* max_orders: the fifth is refused */
	v = api(f, "POST", "/v2/checkout/orders", NULL, ORDER_OK, 503, NULL);
	assert_string_equal(thelp_jstr(v, "name"), "SERVICE_UNAVAILABLE");
	json_decref(v);
	assert_int_equal(stat(f, "refused_full"), 1);
	void *st = f;
	teardown(&st);
}

/* ---- faults ------------------------------------------------------------------------------------ */

static void test_faults(void **state)
{
	fixture *f = *state;
	get_token(f, NULL);
	json_decref(admin(f, "PUT", "/admin/faults/paypal", "{\"outage\":true}", 200));
	msg_resp r;
	json_t *v = api(f, "POST", "/v2/checkout/orders", NULL, ORDER_OK, 503, &r);
	assert_string_equal(msg_resp_header(&r, STRIPE_SIM_OUTAGE_HEADER), "1");
	assert_string_equal(thelp_jstr(v, "name"), "SERVICE_UNAVAILABLE");
	json_decref(v);
	msg_resp_clear(&r);
	/* the token endpoint too */
	assert_int_equal(call_full(f, "POST", "/v1/oauth2/token", BASIC_ANY, NULL,
				   "application/x-www-form-urlencoded", "grant_type=client_credentials",
				   &r),
			 503);
	msg_resp_clear(&r);
	json_decref(admin(f, "PUT", "/admin/faults/paypal", "{\"error_rate\":1,\"error_status\":429}",
			  200));
	v = api(f, "GET", "/v2/checkout/orders/X", NULL, NULL, 429, NULL);
	assert_string_equal(thelp_jstr(v, "name"), "RATE_LIMIT_REACHED");
	json_decref(v);
	json_decref(admin(f, "PUT", "/admin/faults/paypal",
			  "{\"error_rate\":1,\"error_status\":500,\"duration_s\":10}", 200));
	v = api(f, "POST", "/v2/checkout/orders", "rid-f", ORDER_OK, 500, NULL);
	assert_string_equal(thelp_jstr(v, "name"), "INTERNAL_SERVER_ERROR");
	json_decref(v);
	/* it expires on the simulator's clock; the faulted call stored nothing */
	clock_advance(f->e->clock, 10 * SEC);
	json_decref(api(f, "POST", "/v2/checkout/orders", "rid-f", ORDER_OK, 201, NULL));
	assert_int_equal(stat(f, "orders"), 1);

	/* one operation only: captures are slow, orders are not */
	json_decref(admin(f, "PUT", "/admin/faults/paypal.capture", "{\"latency_ms\":1500}", 200));
	char order[32], auth[32], path[128];
	create(f, "paypal_ok", order);
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", order);
	json_decref(api(f, "POST", path, NULL, NULL, 201, &r));
	assert_null(msg_resp_header(&r, STRIPE_SIM_DELAY_HEADER));
	msg_resp_clear(&r);
	authorized(f, "paypal_ok", auth);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	json_decref(api(f, "POST", path, NULL, NULL, 201, &r));
	/* the capture was made; its answer waits 1.5 s at the host */
	assert_int_equal(stripe_sim_delay_us(&r), 1500000);
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "captures"), 1);
	v = admin(f, "GET", "/admin/faults", NULL, 200);
	assert_int_equal(json_array_size(json_object_get(v, "faults")), 1);
	json_decref(v);
	json_decref(admin(f, "DELETE", "/admin/faults/paypal.capture", NULL, 200));
	/* targets and callers */
	msg_resp_init(&r);
	assert_int_equal(call_full(f, "PUT", "/admin/faults/paypal.bogus", ADMIN, NULL,
				   "application/json", "{}", &r),
			 404);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "PUT", "/admin/faults/stripe", ADMIN, NULL, "application/json",
				   "{}", &r),
			 404);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "PUT", "/admin/faults/paypal", NULL, NULL, "application/json",
				   "{}", &r),
			 401);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "GET", "/admin/paypal/stats", "Bearer nope", NULL, NULL, NULL,
				   &r),
			 401);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "PUT", "/admin/faults/paypal", ADMIN, NULL, "application/json",
				   "{\"latency_ms\":-1}", &r),
			 400);
	msg_resp_clear(&r);
	assert_true(stat(f, "requests") > 10);
	v = admin(f, "GET", "/admin/paypal/stats", NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "faults"), "outages")),
			 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "faults"), "failed")),
			 2);
	json_decref(v);
}

/* ---- webhooks ------------------------------------------------------------------------------------- */

static void check_delivery(fixture *f, const delivery *d, const char *type)
{
	assert_string_equal(d->path, "/v1/webhooks/paypal");
	assert_string_equal(d->algo, "HMACSHA256");
	char why[160] = "";
	int rc = webhook_paypal_verify(WH_SECRET, d->id, d->tm, d->algo, d->sig, d->body,
				       strlen(d->body), clock_now(f->e->clock) / SEC, 300, why,
				       sizeof(why));
	if (rc)
		fail_msg("signature: %s", why);
	json_t *ev = json_loads(d->body, 0, NULL);
	assert_non_null(ev);
	assert_string_equal(thelp_jstr(ev, "event_type"), type);
	assert_memory_equal(thelp_jstr(ev, "id"), "WH-", 3);
	json_decref(ev);
}

static void test_webhooks(void **state)
{
	(void)state;
	static const char *const kv[] = { "paypal.webhook_secret", WH_SECRET,
					  "paypal_sim.webhook_url",
					  "http://merchant.test/v1/webhooks/paypal", NULL };
	fixture *f = fixture_new(kv);
	char auth[32], path[128];
	authorized(f, "paypal_ok", auth);
	assert_int_equal(f->nsent, 0);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	json_t *c = api(f, "POST", path, NULL, NULL, 201, NULL);
	char cap[32];
	snprintf(cap, sizeof(cap), "%s", thelp_jstr(c, "id"));
	json_decref(c);
	paypal_sim_engine.tick(f->e->eng, clock_now(f->e->clock));
	assert_int_equal(f->nsent, 1);
	check_delivery(f, &f->sent[0], "PAYMENT.CAPTURE.COMPLETED");
	json_t *ev = json_loads(f->sent[0].body, 0, NULL);
	json_t *res = json_object_get(ev, "resource");
	assert_string_equal(thelp_jstr(res, "id"), cap);
	assert_string_equal(thelp_jstr(res, "custom_id"), "pay-9");
	assert_string_equal(
		thelp_jstr(json_object_get(json_object_get(res, "supplementary_data"), "related_ids"),
			   "authorization_id"),
		auth);
	json_decref(ev);

	/* a refund made from PayPal's side, by capture or by authorisation */
	json_t *v = admin(f, "POST", "/admin/paypal/refund", "{\"authorization_id\":\"NOPE\"}", 404);
	json_decref(v);
	v = admin(f, "POST", "/admin/paypal/refund", "{}", 400);
	json_decref(v);
	char body[128];
	snprintf(body, sizeof(body), "{\"authorization_id\":\"%s\",\"amount_cents\":1000}", auth);
	v = admin(f, "POST", "/admin/paypal/refund", body, 200);
	assert_string_equal(value_of(v), "10.00");
	json_decref(v);
	/* the receiver fails once: the event comes again after half a second */
	f->refuse = 1;
	paypal_sim_engine.tick(f->e->eng, clock_now(f->e->clock));
	assert_int_equal(f->nsent, 2);
	f->refuse = 0;
	paypal_sim_engine.tick(f->e->eng, clock_now(f->e->clock));
	assert_int_equal(f->nsent, 2);
	clock_advance(f->e->clock, SEC / 2);
	paypal_sim_engine.tick(f->e->eng, clock_now(f->e->clock));
	assert_int_equal(f->nsent, 3);
	check_delivery(f, &f->sent[2], "PAYMENT.CAPTURE.REFUNDED");
	assert_string_equal(f->sent[1].body, f->sent[2].body);
	assert_string_not_equal(f->sent[1].id, f->sent[2].id); /* a new transmission */
	ev = json_loads(f->sent[2].body, 0, NULL);
	res = json_object_get(ev, "resource");
	char up[160];
	snprintf(up, sizeof(up), "https://api-m.sandbox.paypal.com/v2/payments/captures/%s", cap);
	assert_string_equal(thelp_jstr(json_array_get(json_object_get(res, "links"), 1), "href"), up);
	json_decref(ev);
	v = admin(f, "GET", "/admin/paypal/stats", NULL, 200);
	json_t *w = json_object_get(v, "webhooks");
	assert_int_equal(json_integer_value(json_object_get(w, "delivered")), 2);
	assert_int_equal(json_integer_value(json_object_get(w, "attempts")), 3);
	json_decref(v);
	/* the target can be changed, or switched off */
	v = admin(f, "PUT", "/admin/paypal/webhook", "{\"url\":\"mailto:x\"}", 400);
	json_decref(v);
	v = admin(f, "PUT", "/admin/paypal/webhook", "{\"url\":\"\"}", 200);
	json_decref(v);
	snprintf(body, sizeof(body), "{\"capture_id\":\"%s\"}", cap);
	json_decref(admin(f, "POST", "/admin/paypal/refund", body, 200));
	paypal_sim_engine.tick(f->e->eng, clock_now(f->e->clock));
	assert_int_equal(f->nsent, 3);
	v = admin(f, "GET", "/admin/paypal/webhook", NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(v, "dropped")), 1);
	json_decref(v);
	void *st = f;
	teardown(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_token, setup, teardown),
		cmocka_unit_test(test_configured_credentials),
		cmocka_unit_test_setup_teardown(test_token_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_capture_refund, setup, teardown),
		cmocka_unit_test_setup_teardown(test_void_and_partial_capture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_id, setup, teardown),
		cmocka_unit_test(test_request_id_bound),
		cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
		cmocka_unit_test(test_webhooks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
