/* Tests for sim/stripe_sim through its engine_def, driven by hand-built
 * requests on a virtual clock (no store, no network): every route and
 * status transition, the test cards' declines with Stripe's error bodies,
 * refund limits, authentication, idempotent replay (byte for byte) and
 * idempotency_error, the bounds, faults (error rate, outage, expiry on the
 * virtual clock, the delay header) and the counters at /admin/stripe/stats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
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
#include "services/engine.h"
#include "sim/stripe_sim.h"

#define T0 1764112255000000LL /* 2025-11-25T23:10:55Z */
#define SEC 1000000LL
#define KEY "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
#define KEY2 "sk_test_otherAccount0000000000"
#define ADMIN "Bearer test-admin"
#define FORM "application/x-www-form-urlencoded"
#define AUTH_MANUAL "amount=2000&currency=usd&payment_method=tok_visa&confirm=true&capture_method=manual"

typedef struct fixture {
	clock_src *clock;
	rng *rng;
	FILE *logf;
	logger *log;
	metrics *metrics;
	config *config;
	engine_ctx ctx;
	void *eng;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->clock = clock_virtual_new(T0);
	f->rng = rng_new(42);
	f->logf = fopen("/dev/null", "w");
	f->log = log_new("stripe-sim", f->logf, f->clock, LOG_DEBUG);
	f->metrics = metrics_new();
	f->config = config_new();
	if (!f->clock || !f->rng || !f->logf || !f->log || !f->metrics || !f->config)
		return -1;
	f->ctx = (engine_ctx){
		.service = "stripe-sim",
		.instance_id = "stripe-sim-1",
		.clock = f->clock,
		.rng = f->rng,
		.log = f->log,
		.metrics = f->metrics,
		.config = f->config,
		.admin_token = "test-admin",
	};
	char err[256] = "";
	f->eng = stripe_sim_engine.create(&f->ctx, err, sizeof(err));
	if (!f->eng) {
		fprintf(stderr, "create: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	stripe_sim_engine.destroy(f->eng);
	config_free(f->config);
	metrics_free(f->metrics);
	log_free(f->log);
	fclose(f->logf);
	rng_free(f->rng);
	clock_free(f->clock);
	free(f);
	return 0;
}

/* ---- requests ------------------------------------------------------------------- */

/* One request: auth is the whole Authorization value (NULL: none), idem the
 * Idempotency-Key (NULL: none), body form-encoded (NULL: none). resp is the
 * caller's to clear. Returns the status. */
static int call_full(fixture *f, const char *method, const char *path, const char *auth,
		     const char *idem, const char *ctype, const char *body, msg_resp *resp)
{
	msg_req req;
	assert_int_equal(msg_req_init(&req, method, path), 0);
	if (auth)
		assert_int_equal(msg_req_add_header(&req, "Authorization", auth), 0);
	if (idem)
		assert_int_equal(msg_req_add_header(&req, "Idempotency-Key", idem), 0);
	if (ctype)
		assert_int_equal(msg_req_add_header(&req, "Content-Type", ctype), 0);
	if (body)
		assert_int_equal(msg_req_set_body(&req, body, strlen(body)), 0);
	msg_resp_init(resp);
	stripe_sim_engine.handle(f->eng, &req, resp);
	msg_req_clear(&req);
	return resp->status;
}

static int call(fixture *f, const char *method, const char *path, const char *idem,
		const char *body, msg_resp *resp)
{
	return call_full(f, method, path, "Bearer " KEY, idem, body ? FORM : NULL, body, resp);
}

static int64_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		fail_msg("no integer %s", key);
	return json_integer_value(v);
}

/* The error object of a Stripe error answer, checked for type and code
 * (NULL: must be absent). A new reference to the whole document is left in
 * *doc. */
static json_t *stripe_err(const msg_resp *resp, const char *type, const char *code,
			  json_t **doc)
{
	*doc = thelp_body_json(resp);
	json_t *e = json_object_get(*doc, "error");
	assert_true(json_is_object(e));
	assert_int_equal(json_object_size(*doc), 1);
	assert_string_equal(thelp_jstr(e, "type"), type);
	if (code)
		assert_string_equal(thelp_jstr(e, "code"), code);
	else
		assert_null(json_object_get(e, "code"));
	assert_true(strlen(thelp_jstr(e, "message")) > 0);
	return e;
}

/* Expects a Stripe error with status, type, code and param (NULL: absent). */
static void expect_err(fixture *f, const char *method, const char *path, const char *body,
		       int status, const char *type, const char *code, const char *param)
{
	msg_resp r;
	int st = call(f, method, path, NULL, body, &r);
	if (st != status)
		fail_msg("%s %s [%s]: %d %.*s", method, path, body ? body : "", st,
			 (int)r.body_len, r.body);
	json_t *doc;
	json_t *e = stripe_err(&r, type, code, &doc);
	if (param)
		assert_string_equal(thelp_jstr(e, "param"), param);
	else
		assert_null(json_object_get(e, "param"));
	json_decref(doc);
	msg_resp_clear(&r);
}

/* Creates an intent from body; returns its JSON (new reference) and copies
 * its id. */
static json_t *create(fixture *f, const char *body, char *id)
{
	msg_resp r;
	int st = call(f, "POST", "/v1/payment_intents", NULL, body, &r);
	if (st != 200)
		fail_msg("create: %d %.*s", st, (int)r.body_len, r.body);
	json_t *pi = thelp_body_json(&r);
	snprintf(id, 64, "%s", thelp_jstr(pi, "id"));
	msg_resp_clear(&r);
	return pi;
}

static void authorize(fixture *f, int64_t amount, char *id)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "amount=%lld&currency=usd&payment_method=tok_visa&confirm=true&capture_method=manual",
		 (long long)amount);
	json_decref(create(f, body, id));
}

static json_t *post_intent(fixture *f, const char *id, const char *action, const char *body,
			   int expect)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/payment_intents/%s/%s", id, action);
	msg_resp r;
	int st = call(f, "POST", path, NULL, body, &r);
	if (st != expect)
		fail_msg("%s: %d %.*s", path, st, (int)r.body_len, r.body);
	json_t *v = thelp_body_json(&r);
	msg_resp_clear(&r);
	return v;
}

static json_t *admin(fixture *f, const char *method, const char *path, const char *body,
		     int expect)
{
	msg_resp r;
	int st = call_full(f, method, path, ADMIN, NULL, body ? "application/json" : NULL, body, &r);
	if (st != expect)
		fail_msg("%s %s: %d %.*s", method, path, st, (int)r.body_len, r.body);
	json_t *v = thelp_body_json(&r);
	msg_resp_clear(&r);
	return v;
}

static int64_t stat(fixture *f, const char *name)
{
	json_t *s = admin(f, "GET", "/admin/stripe/stats", NULL, 200);
	int64_t v = jint(s, name);
	json_decref(s);
	return v;
}

static int64_t stat_status(fixture *f, const char *status)
{
	json_t *s = admin(f, "GET", "/admin/stripe/stats", NULL, 200);
	int64_t v = jint(json_object_get(s, "by_status"), status);
	json_decref(s);
	return v;
}

static int is_id(const char *s, const char *prefix)
{
	size_t p = strlen(prefix);
	if (strncmp(s, prefix, p) != 0 || strlen(s) != p + 24)
		return 0;
	for (const char *c = s + p; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
			return 0;
	return 1;
}

/* ---- payment intents ------------------------------------------------------------ */

static void test_create_manual(void **state)
{
	fixture *f = *state;
	msg_resp r;
	assert_int_equal(call(f, "POST", "/v1/payment_intents", NULL,
			      AUTH_MANUAL "&metadata%5Border_id%5D=ord_1&metadata[note]=a+b", &r),
			 200);
	assert_string_equal(r.content_type, "application/json");
	assert_non_null(msg_resp_header(&r, "Request-Id"));
	assert_null(msg_resp_header(&r, STRIPE_SIM_DELAY_HEADER));
	assert_string_equal(r.route, "/v1/payment_intents");
	json_t *pi = thelp_body_json(&r);
	assert_true(is_id(thelp_jstr(pi, "id"), "pi_"));
	assert_string_equal(thelp_jstr(pi, "object"), "payment_intent");
	assert_int_equal(jint(pi, "amount"), 2000);
	assert_int_equal(jint(pi, "amount_capturable"), 2000);
	assert_int_equal(jint(pi, "amount_received"), 0);
	assert_string_equal(thelp_jstr(pi, "currency"), "usd");
	assert_string_equal(thelp_jstr(pi, "status"), "requires_capture");
	assert_string_equal(thelp_jstr(pi, "capture_method"), "manual");
	assert_true(is_id(thelp_jstr(pi, "payment_method"), "pm_"));
	assert_true(is_id(thelp_jstr(pi, "latest_charge"), "ch_"));
	assert_int_equal(jint(pi, "created"), T0 / SEC);
	assert_true(json_is_null(json_object_get(pi, "canceled_at")));
	assert_true(json_is_null(json_object_get(pi, "last_payment_error")));
	assert_true(json_is_false(json_object_get(pi, "livemode")));
	json_t *md = json_object_get(pi, "metadata");
	assert_int_equal(json_object_size(md), 2);
	assert_string_equal(thelp_jstr(md, "order_id"), "ord_1");
	assert_string_equal(thelp_jstr(md, "note"), "a b");
	char id[64];
	snprintf(id, sizeof(id), "%s", thelp_jstr(pi, "id"));
	msg_resp_clear(&r);

	/* GET gives the same object. */
	char path[96];
	snprintf(path, sizeof(path), "/v1/payment_intents/%s", id);
	assert_int_equal(call(f, "GET", path, NULL, NULL, &r), 200);
	json_t *got = thelp_body_json(&r);
	assert_true(json_equal(got, pi));
	json_decref(got);
	msg_resp_clear(&r);
	json_decref(pi);

	/* pm_card_visa is the same card; another call gives another id. */
	char id2[64];
	json_t *pi2 = create(f, "amount=5&currency=eur&payment_method=pm_card_visa&confirm=true"
				"&capture_method=manual",
			     id2);
	assert_string_not_equal(id, id2);
	assert_string_equal(thelp_jstr(pi2, "status"), "requires_capture");
	assert_string_equal(thelp_jstr(pi2, "currency"), "eur");
	json_decref(pi2);
}

static void test_create_other_modes(void **state)
{
	fixture *f = *state;
	char id[64];
	/* Automatic capture: charged at once. */
	json_t *pi = create(f, "amount=700&currency=usd&payment_method=tok_mastercard&confirm=true",
			    id);
	assert_string_equal(thelp_jstr(pi, "status"), "succeeded");
	assert_string_equal(thelp_jstr(pi, "capture_method"), "automatic");
	assert_int_equal(jint(pi, "amount_received"), 700);
	assert_int_equal(jint(pi, "amount_capturable"), 0);
	json_decref(pi);
	/* Without confirm: waits for confirmation, no charge yet. */
	pi = create(f, "amount=700&currency=usd&payment_method=tok_visa&capture_method=manual", id);
	assert_string_equal(thelp_jstr(pi, "status"), "requires_confirmation");
	assert_true(json_is_null(json_object_get(pi, "latest_charge")));
	json_decref(pi);
	json_t *c = post_intent(f, id, "capture", NULL, 400);
	assert_string_equal(thelp_jstr(json_object_get(c, "error"), "code"),
			    "payment_intent_unexpected_state");
	json_decref(c);
	c = post_intent(f, id, "cancel", NULL, 200);
	assert_string_equal(thelp_jstr(c, "status"), "canceled");
	json_decref(c);
}

static void test_create_validation(void **state)
{
	fixture *f = *state;
	const char *P = "/v1/payment_intents";
	const char *E = "invalid_request_error";
	expect_err(f, "POST", P, "currency=usd&payment_method=tok_visa", 400, E, "parameter_missing",
		   "amount");
	expect_err(f, "POST", P, "amount=12.5&currency=usd&payment_method=tok_visa", 400, E,
		   "parameter_invalid_integer", "amount");
	expect_err(f, "POST", P, "amount=-5&currency=usd&payment_method=tok_visa", 400, E,
		   "parameter_invalid_integer", "amount");
	expect_err(f, "POST", P, "amount=0&currency=usd&payment_method=tok_visa", 400, E,
		   "amount_too_small", "amount");
	expect_err(f, "POST", P, "amount=100000000&currency=usd&payment_method=tok_visa", 400, E,
		   "amount_too_large", "amount");
	expect_err(f, "POST", P, "amount=100&payment_method=tok_visa", 400, E, "parameter_missing",
		   "currency");
	expect_err(f, "POST", P, "amount=100&currency=USD&payment_method=tok_visa", 400, E, NULL,
		   "currency");
	expect_err(f, "POST", P, "amount=100&currency=us&payment_method=tok_visa", 400, E, NULL,
		   "currency");
	expect_err(f, "POST", P, "amount=100&currency=usd", 400, E, "parameter_missing",
		   "payment_method");
	expect_err(f, "POST", P, "amount=100&currency=usd&payment_method=tok_bogus", 400, E,
		   "resource_missing", "payment_method");
	expect_err(f, "POST", P, "amount=100&currency=usd&payment_method=pm_nope", 400, E,
		   "resource_missing", "payment_method");
	expect_err(f, "POST", P, "amount=100&currency=usd&payment_method=tok_visa&confirm=yes", 400,
		   E, "parameter_invalid_boolean", "confirm");
	expect_err(f, "POST", P,
		   "amount=100&currency=usd&payment_method=tok_visa&capture_method=later", 400, E,
		   NULL, "capture_method");
	expect_err(f, "POST", P, "amount=100&currency=usd&payment_method=tok_visa&customer=cus_1",
		   400, E, "parameter_unknown", "customer");
	expect_err(f, "POST", P, "amount=100&amount=200&currency=usd&payment_method=tok_visa", 400,
		   E, NULL, "amount");
	expect_err(f, "POST", P, "amount=100&currency=usd&payment_method=tok_%zz", 400, E, NULL,
		   NULL);
	expect_err(f, "POST", P, "amount=100&currency=usd&payment_method=tok_visa&metadata[]=x",
		   400, E, NULL, "metadata[]");
	/* A JSON body is not what Stripe takes. */
	msg_resp r;
	assert_int_equal(call_full(f, "POST", P, "Bearer " KEY, NULL, "application/json",
				   "{\"amount\":100}", &r),
			 400);
	json_t *doc;
	stripe_err(&r, E, NULL, &doc);
	json_decref(doc);
	msg_resp_clear(&r);
	/* Nothing above made an intent. */
	assert_int_equal(stat(f, "intents"), 0);
}

static void test_declines(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *pm, *code, *decline, *message;
	} cases[] = {
		{ "tok_chargeDeclined", "card_declined", "generic_decline", "Your card was declined." },
		{ "tok_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds",
		  "Your card has insufficient funds." },
		{ "pm_card_visa_chargeDeclined", "card_declined", "generic_decline",
		  "Your card was declined." },
		{ "tok_chargeDeclinedExpiredCard", "expired_card", "expired_card",
		  "Your card has expired." },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[256];
		snprintf(body, sizeof(body),
			 "amount=1500&currency=usd&payment_method=%s&confirm=true&capture_method=manual",
			 cases[i].pm);
		msg_resp r;
		assert_int_equal(call(f, "POST", "/v1/payment_intents", NULL, body, &r), 402);
		json_t *doc;
		json_t *e = stripe_err(&r, "card_error", cases[i].code, &doc);
		/* Exactly Stripe's fields. */
		assert_int_equal(json_object_size(e), 8);
		assert_string_equal(thelp_jstr(e, "decline_code"), cases[i].decline);
		assert_string_equal(thelp_jstr(e, "message"), cases[i].message);
		char url[128];
		snprintf(url, sizeof(url), "https://stripe.com/docs/error-codes/%s", cases[i].code);
		for (char *p = url + 36; *p; p++)
			*p = *p == '_' ? '-' : *p;
		assert_string_equal(thelp_jstr(e, "doc_url"), url);
		assert_true(is_id(thelp_jstr(e, "charge"), "ch_"));
		json_t *pm = json_object_get(e, "payment_method");
		assert_true(is_id(thelp_jstr(pm, "id"), "pm_"));
		json_t *pi = json_object_get(e, "payment_intent");
		assert_string_equal(thelp_jstr(pi, "object"), "payment_intent");
		assert_string_equal(thelp_jstr(pi, "status"), "requires_payment_method");
		assert_true(json_is_null(json_object_get(pi, "payment_method")));
		assert_string_equal(thelp_jstr(pi, "latest_charge"), thelp_jstr(e, "charge"));
		json_t *lpe = json_object_get(pi, "last_payment_error");
		assert_string_equal(thelp_jstr(lpe, "type"), "card_error");
		assert_string_equal(thelp_jstr(lpe, "decline_code"), cases[i].decline);
		assert_string_equal(thelp_jstr(lpe, "code"), cases[i].code);
		json_decref(doc);
		msg_resp_clear(&r);
	}
	assert_int_equal(stat(f, "declines"), 4);
	assert_int_equal(stat_status(f, "requires_payment_method"), 4);
	assert_int_equal(stat(f, "authorizations"), 0);
}

static void test_capture(void **state)
{
	fixture *f = *state;
	char id[64];
	authorize(f, 2500, id);
	clock_advance(f->clock, 5 * SEC);
	json_t *pi = post_intent(f, id, "capture", NULL, 200);
	assert_string_equal(thelp_jstr(pi, "id"), id);
	assert_string_equal(thelp_jstr(pi, "status"), "succeeded");
	assert_int_equal(jint(pi, "amount_received"), 2500);
	assert_int_equal(jint(pi, "amount_capturable"), 0);
	assert_int_equal(jint(pi, "created"), T0 / SEC);
	json_decref(pi);
	/* Twice: Stripe refuses, naming the state and carrying the intent. */
	json_t *doc = post_intent(f, id, "capture", NULL, 400);
	json_t *e = json_object_get(doc, "error");
	assert_string_equal(thelp_jstr(e, "type"), "invalid_request_error");
	assert_string_equal(thelp_jstr(e, "code"), "payment_intent_unexpected_state");
	assert_non_null(strstr(thelp_jstr(e, "message"), "status of succeeded"));
	assert_string_equal(thelp_jstr(json_object_get(e, "payment_intent"), "status"), "succeeded");
	json_decref(doc);
	/* A succeeded intent cannot be canceled. */
	doc = post_intent(f, id, "cancel", NULL, 400);
	assert_string_equal(thelp_jstr(json_object_get(doc, "error"), "code"),
			    "payment_intent_unexpected_state");
	json_decref(doc);

	/* Partial capture. */
	authorize(f, 1000, id);
	expect_err(f, "POST", "/v1/payment_intents/pi_000000000000000000000000/capture", NULL, 404,
		   "invalid_request_error", "resource_missing", "intent");
	char path[128];
	snprintf(path, sizeof(path), "/v1/payment_intents/%s/capture", id);
	expect_err(f, "POST", path, "amount_to_capture=1001", 400, "invalid_request_error",
		   "amount_too_large", "amount_to_capture");
	expect_err(f, "POST", path, "amount=5", 400, "invalid_request_error", "parameter_unknown",
		   "amount");
	pi = post_intent(f, id, "capture", "amount_to_capture=600", 200);
	assert_int_equal(jint(pi, "amount_received"), 600);
	json_decref(pi);
	assert_int_equal(stat(f, "captures"), 2);
	assert_int_equal(stat(f, "captured_amount"), 3100);
}

static void test_cancel(void **state)
{
	fixture *f = *state;
	char id[64], path[128];
	authorize(f, 900, id);
	clock_advance(f->clock, 7 * SEC);
	json_t *pi = post_intent(f, id, "cancel", NULL, 200);
	assert_string_equal(thelp_jstr(pi, "status"), "canceled");
	assert_int_equal(jint(pi, "canceled_at"), T0 / SEC + 7);
	assert_true(json_is_null(json_object_get(pi, "cancellation_reason")));
	assert_int_equal(jint(pi, "amount_capturable"), 0);
	json_decref(pi);
	/* Neither captured nor canceled again. */
	json_t *doc = post_intent(f, id, "capture", NULL, 400);
	assert_non_null(strstr(thelp_jstr(json_object_get(doc, "error"), "message"), "status of canceled"));
	json_decref(doc);
	doc = post_intent(f, id, "cancel", NULL, 400);
	assert_string_equal(thelp_jstr(json_object_get(doc, "error"), "code"),
			    "payment_intent_unexpected_state");
	json_decref(doc);

	authorize(f, 900, id);
	snprintf(path, sizeof(path), "/v1/payment_intents/%s/cancel", id);
	expect_err(f, "POST", path, "cancellation_reason=bored", 400, "invalid_request_error", NULL,
		   "cancellation_reason");
	pi = post_intent(f, id, "cancel", "cancellation_reason=requested_by_customer", 200);
	assert_string_equal(thelp_jstr(pi, "cancellation_reason"), "requested_by_customer");
	json_decref(pi);

	/* A declined intent can be canceled too. */
	msg_resp r;
	assert_int_equal(call(f, "POST", "/v1/payment_intents", NULL,
			      "amount=5&currency=usd&payment_method=tok_chargeDeclined&confirm=true",
			      &r),
			 402);
	json_t *d = thelp_body_json(&r);
	snprintf(id, sizeof(id), "%s",
		 thelp_jstr(json_object_get(json_object_get(d, "error"), "payment_intent"), "id"));
	json_decref(d);
	msg_resp_clear(&r);
	pi = post_intent(f, id, "cancel", NULL, 200);
	assert_string_equal(thelp_jstr(pi, "status"), "canceled");
	json_decref(pi);

	expect_err(f, "POST", "/v1/payment_intents/pi_missing/cancel", NULL, 404,
		   "invalid_request_error", "resource_missing", "intent");
	expect_err(f, "GET", "/v1/payment_intents/pi_missing", NULL, 404, "invalid_request_error",
		   "resource_missing", "intent");
	assert_int_equal(stat(f, "cancels"), 3);
	assert_int_equal(stat_status(f, "canceled"), 3);
}

static void test_refunds(void **state)
{
	fixture *f = *state;
	char id[64], body[128];
	authorize(f, 1000, id);
	/* Not captured yet: nothing to refund. */
	snprintf(body, sizeof(body), "payment_intent=%s&amount=100", id);
	expect_err(f, "POST", "/v1/refunds", body, 400, "invalid_request_error",
		   "payment_intent_unexpected_state", "payment_intent");
	json_decref(post_intent(f, id, "capture", NULL, 200));

	msg_resp r;
	snprintf(body, sizeof(body), "payment_intent=%s&amount=300&reason=requested_by_customer", id);
	assert_int_equal(call(f, "POST", "/v1/refunds", NULL, body, &r), 200);
	json_t *re = thelp_body_json(&r);
	msg_resp_clear(&r);
	assert_true(is_id(thelp_jstr(re, "id"), "re_"));
	assert_string_equal(thelp_jstr(re, "object"), "refund");
	assert_int_equal(jint(re, "amount"), 300);
	assert_string_equal(thelp_jstr(re, "payment_intent"), id);
	assert_string_equal(thelp_jstr(re, "status"), "succeeded");
	assert_string_equal(thelp_jstr(re, "currency"), "usd");
	assert_string_equal(thelp_jstr(re, "reason"), "requested_by_customer");
	assert_true(is_id(thelp_jstr(re, "charge"), "ch_"));
	json_decref(re);

	/* More than is left. */
	snprintf(body, sizeof(body), "payment_intent=%s&amount=701", id);
	expect_err(f, "POST", "/v1/refunds", body, 400, "invalid_request_error", "amount_too_large",
		   "amount");
	/* Without amount: the rest. */
	snprintf(body, sizeof(body), "payment_intent=%s", id);
	assert_int_equal(call(f, "POST", "/v1/refunds", NULL, body, &r), 200);
	re = thelp_body_json(&r);
	msg_resp_clear(&r);
	assert_int_equal(jint(re, "amount"), 700);
	json_decref(re);
	/* Nothing left. */
	expect_err(f, "POST", "/v1/refunds", body, 400, "invalid_request_error",
		   "charge_already_refunded", NULL);

	expect_err(f, "POST", "/v1/refunds", "amount=5", 400, "invalid_request_error",
		   "parameter_missing", "payment_intent");
	expect_err(f, "POST", "/v1/refunds", "payment_intent=pi_nope", 400, "invalid_request_error",
		   "resource_missing", "payment_intent");
	snprintf(body, sizeof(body), "payment_intent=%s&reason=because", id);
	expect_err(f, "POST", "/v1/refunds", body, 400, "invalid_request_error", NULL, "reason");
	assert_int_equal(stat(f, "refunds"), 2);
	assert_int_equal(stat(f, "refunded_amount"), 1000);
}

/* ---- authentication and routes -------------------------------------------------- */

static void test_auth(void **state)
{
	fixture *f = *state;
	const char *bad[] = { NULL,
			      "",
			      "Bearer ",
			      "Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc",
			      "Bearer pk_test_4eC39HqLyjWDarjtT1zdp7dc",
			      "Basic c2tfdGVzdF94eXo6",
			      "Bearer sk_test_bad key",
			      "Bearer test-admin" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg_resp r;
		assert_int_equal(call_full(f, "POST", "/v1/payment_intents", bad[i], NULL, FORM,
					   AUTH_MANUAL, &r),
				 401);
		json_t *doc;
		json_t *e = stripe_err(&r, "invalid_request_error", NULL, &doc);
		const char *m = thelp_jstr(e, "message");
		if (!bad[i] || !bad[i][0])
			assert_non_null(strstr(m, "You did not provide an API key"));
		else
			assert_non_null(strstr(m, "Invalid API Key provided"));
		/* The key is never echoed whole. */
		assert_null(strstr(r.body, "4eC39HqLyjWDarjtT1zdp7dc"));
		assert_non_null(msg_resp_header(&r, "WWW-Authenticate"));
		json_decref(doc);
		msg_resp_clear(&r);
	}
	/* GETs need the key too. */
	msg_resp r;
	assert_int_equal(call_full(f, "GET", "/v1/payment_intents/pi_x", NULL, NULL, NULL, NULL, &r),
			 401);
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "auth_failures"), 9);
	assert_int_equal(stat(f, "intents"), 0);
	/* Any test key works, each its own account for idempotency. */
	assert_int_equal(call_full(f, "POST", "/v1/payment_intents", "Bearer " KEY2, NULL, FORM,
				   AUTH_MANUAL, &r),
			 200);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "POST", "/v1/payment_intents", "bearer " KEY, NULL, FORM,
				   AUTH_MANUAL, &r),
			 200);
	msg_resp_clear(&r);
}

static void test_unknown_routes(void **state)
{
	fixture *f = *state;
	expect_err(f, "GET", "/v1/customers", NULL, 404, "invalid_request_error", NULL, NULL);
	expect_err(f, "GET", "/v1/payment_intents", NULL, 404, "invalid_request_error", NULL, NULL);
	expect_err(f, "DELETE", "/v1/payment_intents/pi_1", NULL, 404, "invalid_request_error", NULL,
		   NULL);
	expect_err(f, "POST", "/v1/payment_intents/pi_1/confirm", NULL, 404, "invalid_request_error",
		   NULL, NULL);
	expect_err(f, "GET", "/v1/payment_intents/pi%2F..", NULL, 404, "invalid_request_error", NULL,
		   NULL);
	msg_resp r;
	assert_int_equal(call(f, "GET", "/v1/customers", NULL, NULL, &r), 404);
	json_t *doc = thelp_body_json(&r);
	assert_non_null(strstr(thelp_jstr(json_object_get(doc, "error"), "message"),
			       "Unrecognized request URL (GET: /v1/customers)"));
	json_decref(doc);
	msg_resp_clear(&r);
	/* Outside /v1: the platform's shapes. */
	doc = admin(f, "GET", "/nothing", NULL, 404);
	assert_string_equal(thelp_jstr(json_object_get(doc, "error"), "code"), "not_found");
	json_decref(doc);
	doc = admin(f, "PUT", "/admin/faults/paypal", "{\"outage\":true}", 404);
	json_decref(doc);
	doc = admin(f, "POST", "/admin/stripe/stats", NULL, 405);
	json_decref(doc);
}

/* ---- idempotency ---------------------------------------------------------------- */

static void test_idempotent_replay(void **state)
{
	fixture *f = *state;
	msg_resp a, b;
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "order-1", AUTH_MANUAL, &a), 200);
	assert_null(msg_resp_header(&a, "Idempotent-Replayed"));
	assert_string_equal(msg_resp_header(&a, "Idempotency-Key"), "order-1");
	clock_advance(f->clock, 3600 * SEC);
	/* Same parameters in another order and encoding: the same request. */
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "order-1",
			      "capture_method=manual&confirm=true&payment_method=tok%5Fvisa"
			      "&currency=usd&amount=2000",
			      &b),
			 200);
	assert_int_equal(a.body_len, b.body_len);
	assert_memory_equal(a.body, b.body, a.body_len);
	assert_string_equal(msg_resp_header(&b, "Idempotent-Replayed"), "true");
	msg_resp_clear(&b);
	assert_int_equal(stat(f, "intents"), 1);
	assert_int_equal(stat(f, "idempotent_replays"), 1);

	/* Same key, other parameters. */
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "order-1",
			      "amount=2001&currency=usd&payment_method=tok_visa&confirm=true"
			      "&capture_method=manual",
			      &b),
			 400);
	json_t *doc;
	json_t *e = stripe_err(&b, "idempotency_error", NULL, &doc);
	assert_non_null(strstr(thelp_jstr(e, "message"), "same parameters"));
	json_decref(doc);
	msg_resp_clear(&b);
	/* Same key on another endpoint. */
	json_t *pi = thelp_body_json(&a);
	char path[128];
	snprintf(path, sizeof(path), "/v1/payment_intents/%s/capture", thelp_jstr(pi, "id"));
	assert_int_equal(call(f, "POST", path, "order-1", NULL, &b), 400);
	stripe_err(&b, "idempotency_error", NULL, &doc);
	json_decref(doc);
	msg_resp_clear(&b);
	assert_int_equal(stat(f, "idempotency_errors"), 2);
	assert_int_equal(stat(f, "intents"), 1);

	/* Captures replay too: one capture however often it is retried. */
	msg_resp c1, c2;
	assert_int_equal(call(f, "POST", path, "order-1-capture", NULL, &c1), 200);
	assert_int_equal(call(f, "POST", path, "order-1-capture", NULL, &c2), 200);
	assert_int_equal(c1.body_len, c2.body_len);
	assert_memory_equal(c1.body, c2.body, c1.body_len);
	msg_resp_clear(&c1);
	msg_resp_clear(&c2);
	assert_int_equal(stat(f, "captures"), 1);

	/* The same key under another API key is another account's. */
	assert_int_equal(call_full(f, "POST", "/v1/payment_intents", "Bearer " KEY2, "order-1",
				   FORM, AUTH_MANUAL, &b),
			 200);
	assert_null(msg_resp_header(&b, "Idempotent-Replayed"));
	msg_resp_clear(&b);
	assert_int_equal(stat(f, "intents"), 2);
	json_decref(pi);
	msg_resp_clear(&a);
}

static void test_idempotency_declines_and_validation(void **state)
{
	fixture *f = *state;
	const char *decl = "amount=100&currency=usd&payment_method=tok_chargeDeclined&confirm=true";
	msg_resp a, b;
	/* A decline is a result: replayed as it was. */
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "d-1", decl, &a), 402);
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "d-1", decl, &b), 402);
	assert_int_equal(a.body_len, b.body_len);
	assert_memory_equal(a.body, b.body, a.body_len);
	msg_resp_clear(&a);
	msg_resp_clear(&b);
	assert_int_equal(stat(f, "declines"), 1);
	/* A request that failed validation stored nothing: the key is free. */
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "v-1", "amount=100&currency=usd", &a),
			 400);
	msg_resp_clear(&a);
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "v-1", AUTH_MANUAL, &a), 200);
	msg_resp_clear(&a);
	/* A malformed key. */
	char longkey[300];
	memset(longkey, 'k', 256);
	longkey[256] = '\0';
	assert_int_equal(call(f, "POST", "/v1/payment_intents", longkey, AUTH_MANUAL, &a), 400);
	msg_resp_clear(&a);
	longkey[255] = '\0';
	assert_int_equal(call(f, "POST", "/v1/payment_intents", longkey, AUTH_MANUAL, &a), 200);
	msg_resp_clear(&a);
	/* GETs ignore the key. */
	assert_int_equal(call(f, "GET", "/v1/payment_intents/pi_x", "v-1", NULL, &a), 404);
	msg_resp_clear(&a);
	assert_int_equal(stat(f, "intents"), 3);
}

static void test_idempotency_expiry(void **state)
{
	fixture *f = *state;
	msg_resp r;
	const char *other = "amount=1&currency=usd&payment_method=tok_visa&confirm=true";
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "old", AUTH_MANUAL, &r), 200);
	msg_resp_clear(&r);
	clock_advance(f->clock, 12 * 3600 * SEC);
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "newer", AUTH_MANUAL, &r), 200);
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "idempotency_keys"), 2);
	/* Just under 24 hours: still remembered. */
	clock_advance(f->clock, 12 * 3600 * SEC - 1);
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "old", other, &r), 400);
	msg_resp_clear(&r);
	/* At 24 hours it is forgotten: the key makes a new intent. */
	clock_advance(f->clock, 1);
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "old", other, &r), 200);
	assert_null(msg_resp_header(&r, "Idempotent-Replayed"));
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "intents"), 3);
	/* The tick forgets without a request. */
	assert_int_equal(stat(f, "idempotency_keys"), 2);
	clock_advance(f->clock, 24 * 3600 * SEC);
	stripe_sim_engine.tick(f->eng, clock_now(f->clock));
	assert_int_equal(stat(f, "idempotency_keys"), 0);
}

static void test_bounds(void **state)
{
	fixture *f = *state;
	msg_resp r;
	stripe_sim_set_limits(f->eng, 3, 2);
	json_t *s = admin(f, "GET", "/admin/stripe/stats", NULL, 200);
	assert_int_equal(jint(json_object_get(s, "limits"), "max_intents"), 3);
	json_decref(s);
	const char *keys[] = { "k1", "k2", "k3" };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(call(f, "POST", "/v1/payment_intents", keys[i], AUTH_MANUAL, &r),
				 200);
		msg_resp_clear(&r);
	}
	/* Two keys kept: the oldest is forgotten first. */
	assert_int_equal(stat(f, "idempotency_keys"), 2);
	/* Full: a clear 503, nothing stored. */
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "k4", AUTH_MANUAL, &r), 503);
	json_t *doc;
	json_t *e = stripe_err(&r, "api_error", NULL, &doc);
	assert_non_null(strstr(thelp_jstr(e, "message"), "maximum"));
	json_decref(doc);
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "refused_full"), 1);
	assert_int_equal(stat(f, "intents"), 3);
	/* Replays still work when full. */
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "k3", AUTH_MANUAL, &r), 200);
	assert_string_equal(msg_resp_header(&r, "Idempotent-Replayed"), "true");
	msg_resp_clear(&r);
	/* k1 was forgotten: another request under it is new (and refused, full). */
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "k1", AUTH_MANUAL, &r), 503);
	msg_resp_clear(&r);
	stripe_sim_set_limits(f->eng, 4, 0);
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "k4", AUTH_MANUAL, &r), 200);
	msg_resp_clear(&r);
	assert_int_equal(stat(f, "intents"), 4);
}

/* Many threads retrying the same few keys: one intent per key. */
typedef struct racer {
	fixture *f;
	int n;
} racer;

static void *race(void *arg)
{
	racer *rc = arg;
	for (int i = 0; i < rc->n; i++) {
		char key[32];
		snprintf(key, sizeof(key), "race-%d", i % 10);
		msg_req req;
		msg_resp r;
		msg_req_init(&req, "POST", "/v1/payment_intents");
		msg_req_add_header(&req, "Authorization", "Bearer " KEY);
		msg_req_add_header(&req, "Idempotency-Key", key);
		msg_req_add_header(&req, "Content-Type", FORM);
		msg_req_set_body(&req, AUTH_MANUAL, strlen(AUTH_MANUAL));
		msg_resp_init(&r);
		stripe_sim_engine.handle(rc->f->eng, &req, &r);
		if (r.status != 200)
			rc->n = -1;
		msg_resp_clear(&r);
		msg_req_clear(&req);
		if (rc->n < 0)
			break;
	}
	return NULL;
}

static void test_concurrent_retries(void **state)
{
	fixture *f = *state;
	pthread_t t[8];
	racer r[8];
	for (int i = 0; i < 8; i++) {
		r[i] = (racer){ f, 50 };
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].n, 50);
	}
	assert_int_equal(stat(f, "intents"), 10);
	assert_int_equal(stat(f, "idempotent_replays"), 390);
	assert_int_equal(stat_status(f, "requires_capture"), 10);
}

/* ---- faults --------------------------------------------------------------------- */

static void test_fault_admin(void **state)
{
	fixture *f = *state;
	msg_resp r;
	/* Operators only. */
	assert_int_equal(call_full(f, "PUT", "/admin/faults/stripe", NULL, NULL, "application/json",
				   "{\"outage\":true}", &r),
			 401);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "PUT", "/admin/faults/stripe", "Bearer " KEY, NULL,
				   "application/json", "{\"outage\":true}", &r),
			 401);
	msg_resp_clear(&r);
	assert_int_equal(call_full(f, "GET", "/admin/stripe/stats", NULL, NULL, NULL, NULL, &r), 401);
	msg_resp_clear(&r);
	/* Validation through fault_parse_json. */
	json_t *doc = admin(f, "PUT", "/admin/faults/stripe", "{\"error_rate\":2}", 400);
	json_t *e = json_object_get(doc, "error");
	assert_string_equal(thelp_jstr(e, "code"), "invalid_argument");
	assert_string_equal(thelp_jstr(json_object_get(e, "details"), "field"), "error_rate");
	json_decref(doc);
	doc = admin(f, "PUT", "/admin/faults/stripe", "{\"latency\":5}", 400);
	json_decref(doc);
	doc = admin(f, "PUT", "/admin/faults/stripe", "not json", 400);
	json_decref(doc);
	doc = admin(f, "GET", "/admin/faults/stripe", NULL, 404);
	json_decref(doc);

	doc = admin(f, "PUT", "/admin/faults/stripe",
		    "{\"latency_ms\":5,\"error_rate\":0.5,\"error_status\":502,\"duration_s\":60}",
		    200);
	assert_string_equal(thelp_jstr(doc, "target"), "stripe");
	assert_int_equal(jint(doc, "error_status"), 502);
	assert_int_equal(jint(doc, "latency_ms"), 5);
	json_decref(doc);
	doc = admin(f, "GET", "/admin/faults/stripe", NULL, 200);
	assert_int_equal(jint(doc, "error_status"), 502);
	json_decref(doc);
	doc = admin(f, "GET", "/admin/faults", NULL, 200);
	assert_int_equal(json_array_size(json_object_get(doc, "faults")), 1);
	json_decref(doc);
	doc = admin(f, "DELETE", "/admin/faults/stripe", NULL, 200);
	assert_true(json_is_true(json_object_get(doc, "cleared")));
	json_decref(doc);
	doc = admin(f, "DELETE", "/admin/faults/stripe", NULL, 200);
	assert_true(json_is_false(json_object_get(doc, "cleared")));
	json_decref(doc);
	doc = admin(f, "GET", "/admin/faults", NULL, 200);
	assert_int_equal(json_array_size(json_object_get(doc, "faults")), 0);
	json_decref(doc);
}

static void test_fault_error_rate(void **state)
{
	fixture *f = *state;
	json_decref(admin(f, "PUT", "/admin/faults/stripe",
			  "{\"error_rate\":1.0,\"error_status\":500}", 200));
	char id[64] = "pi_x";
	for (int i = 0; i < 10; i++) {
		msg_resp r;
		char key[16];
		snprintf(key, sizeof(key), "f-%d", i);
		assert_int_equal(call(f, "POST", "/v1/payment_intents", key, AUTH_MANUAL, &r), 500);
		json_t *doc;
		stripe_err(&r, "api_error", NULL, &doc);
		json_decref(doc);
		msg_resp_clear(&r);
	}
	/* Faults come before authentication and routing: everything fails. */
	msg_resp r;
	assert_int_equal(call_full(f, "GET", "/v1/nothing", NULL, NULL, NULL, NULL, &r), 500);
	msg_resp_clear(&r);
	json_t *s = admin(f, "GET", "/admin/stripe/stats", NULL, 200);
	assert_int_equal(jint(json_object_get(s, "faults"), "failed"), 11);
	assert_int_equal(jint(s, "intents"), 0);
	assert_int_equal(jint(s, "idempotency_keys"), 0);
	json_decref(s);
	/* 429 looks like Stripe's rate limiting. */
	json_decref(admin(f, "PUT", "/admin/faults/stripe",
			  "{\"error_rate\":1.0,\"error_status\":429}", 200));
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "f-0", AUTH_MANUAL, &r), 429);
	json_t *doc;
	stripe_err(&r, "invalid_request_error", "rate_limit", &doc);
	json_decref(doc);
	msg_resp_clear(&r);
	/* Cleared: the key a failed call used is free, nothing was stored. */
	json_decref(admin(f, "DELETE", "/admin/faults/stripe", NULL, 200));
	assert_int_equal(call(f, "POST", "/v1/payment_intents", "f-0", AUTH_MANUAL, &r), 200);
	assert_null(msg_resp_header(&r, "Idempotent-Replayed"));
	msg_resp_clear(&r);
	authorize(f, 10, id);

	/* Half the calls fail at error_rate 0.5 (seeded, so repeatable). */
	json_decref(admin(f, "PUT", "/admin/faults/stripe",
			  "{\"error_rate\":0.5,\"error_status\":503}", 200));
	int failed = 0;
	for (int i = 0; i < 400; i++) {
		int st = call(f, "GET", "/v1/payment_intents/pi_nope", NULL, NULL, &r);
		assert_true(st == 503 || st == 404);
		failed += st == 503;
		msg_resp_clear(&r);
	}
	assert_in_range(failed, 150, 250);
}

static void test_fault_outage_and_expiry(void **state)
{
	fixture *f = *state;
	json_decref(admin(f, "PUT", "/admin/faults/stripe", "{\"outage\":true,\"duration_s\":10}",
			  200));
	msg_resp r;
	assert_int_equal(call(f, "POST", "/v1/payment_intents", NULL, AUTH_MANUAL, &r), 503);
	assert_string_equal(msg_resp_header(&r, STRIPE_SIM_OUTAGE_HEADER), "1");
	assert_null(msg_resp_header(&r, STRIPE_SIM_DELAY_HEADER));
	json_t *doc;
	stripe_err(&r, "api_error", NULL, &doc);
	json_decref(doc);
	msg_resp_clear(&r);
	clock_advance(f->clock, 9 * SEC);
	assert_int_equal(call(f, "POST", "/v1/payment_intents", NULL, AUTH_MANUAL, &r), 503);
	msg_resp_clear(&r);
	/* The fault ends on the virtual clock. */
	clock_advance(f->clock, 1 * SEC);
	assert_int_equal(call(f, "POST", "/v1/payment_intents", NULL, AUTH_MANUAL, &r), 200);
	assert_null(msg_resp_header(&r, STRIPE_SIM_OUTAGE_HEADER));
	msg_resp_clear(&r);
	json_decref(admin(f, "GET", "/admin/faults/stripe", NULL, 404));
	json_t *s = admin(f, "GET", "/admin/stripe/stats", NULL, 200);
	assert_int_equal(jint(json_object_get(s, "faults"), "outages"), 2);
	assert_int_equal(jint(s, "intents"), 1);
	json_decref(s);
}

static void test_fault_latency(void **state)
{
	fixture *f = *state;
	msg_resp r;
	json_decref(admin(f, "PUT", "/admin/faults/stripe", "{\"latency_ms\":200}", 200));
	assert_int_equal(call(f, "POST", "/v1/payment_intents", NULL, AUTH_MANUAL, &r), 200);
	assert_string_equal(msg_resp_header(&r, STRIPE_SIM_DELAY_HEADER), "200000");
	assert_int_equal(stripe_sim_delay_us(&r), 200000);
	msg_resp_clear(&r);
	json_decref(admin(f, "PUT", "/admin/faults/stripe", "{\"latency_ms\":200,\"jitter_ms\":50}",
			  200));
	int64_t lo = INT64_MAX, hi = 0;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(call(f, "GET", "/v1/payment_intents/pi_none", NULL, NULL, &r), 404);
		int64_t d = stripe_sim_delay_us(&r);
		assert_in_range(d, 150000, 250000);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		msg_resp_clear(&r);
	}
	/* It does vary. */
	assert_true(hi - lo > 50000);
	/* Delay and failure together: the error waits too. */
	json_decref(admin(f, "PUT", "/admin/faults/stripe",
			  "{\"latency_ms\":30,\"error_rate\":1,\"error_status\":502}", 200));
	assert_int_equal(call(f, "GET", "/v1/payment_intents/pi_none", NULL, NULL, &r), 502);
	assert_int_equal(stripe_sim_delay_us(&r), 30000);
	msg_resp_clear(&r);
	/* Admin routes are never delayed. */
	json_t *s = admin(f, "GET", "/admin/stripe/stats", NULL, 200);
	json_decref(s);
}

static void test_delay_header_parse(void **state)
{
	msg_resp r;
	msg_resp_init(&r);
	assert_int_equal(stripe_sim_delay_us(&r), 0);
	const char *vals[] = { "", "abc", "-5", "12x", "99999999999999999999999" };
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		msg_resp_set_header(&r, STRIPE_SIM_DELAY_HEADER, vals[i]);
		assert_int_equal(stripe_sim_delay_us(&r), 0);
	}
	msg_resp_set_header(&r, STRIPE_SIM_DELAY_HEADER, "1234");
	assert_int_equal(stripe_sim_delay_us(&r), 1234);
	msg_resp_clear(&r);
}

/* ---- stats ---------------------------------------------------------------------- */

static void test_stats(void **state)
{
	fixture *f = *state;
	char a[64], b[64], c[64], body[128];
	authorize(f, 100, a); /* stays requires_capture */
	authorize(f, 200, b);
	json_decref(post_intent(f, b, "capture", NULL, 200));
	snprintf(body, sizeof(body), "payment_intent=%s&amount=50", b);
	msg_resp r;
	assert_int_equal(call(f, "POST", "/v1/refunds", NULL, body, &r), 200);
	msg_resp_clear(&r);
	authorize(f, 300, c);
	json_decref(post_intent(f, c, "cancel", NULL, 200));
	assert_int_equal(call(f, "POST", "/v1/payment_intents", NULL,
			      "amount=5&currency=usd&payment_method=tok_chargeDeclinedInsufficientFunds"
			      "&confirm=true",
			      &r),
			 402);
	msg_resp_clear(&r);

	json_t *s = admin(f, "GET", "/admin/stripe/stats", NULL, 200);
	assert_int_equal(jint(s, "intents"), 4);
	json_t *by = json_object_get(s, "by_status");
	assert_int_equal(jint(by, "requires_capture"), 1);
	assert_int_equal(jint(by, "succeeded"), 1);
	assert_int_equal(jint(by, "canceled"), 1);
	assert_int_equal(jint(by, "requires_payment_method"), 1);
	assert_int_equal(jint(by, "requires_confirmation"), 0);
	assert_int_equal(jint(s, "created"), 4);
	assert_int_equal(jint(s, "authorizations"), 3);
	assert_int_equal(jint(s, "declines"), 1);
	assert_int_equal(jint(s, "captures"), 1);
	assert_int_equal(jint(s, "captured_amount"), 200);
	assert_int_equal(jint(s, "cancels"), 1);
	assert_int_equal(jint(s, "refunds"), 1);
	assert_int_equal(jint(s, "refunded_amount"), 50);
	assert_int_equal(jint(s, "idempotent_replays"), 0);
	assert_int_equal(jint(s, "requests"), 7);
	json_decref(s);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_create_manual),
		T(test_create_other_modes),
		T(test_create_validation),
		T(test_declines),
		T(test_capture),
		T(test_cancel),
		T(test_refunds),
		T(test_auth),
		T(test_unknown_routes),
		T(test_idempotent_replay),
		T(test_idempotency_declines_and_validation),
		T(test_idempotency_expiry),
		T(test_bounds),
		T(test_concurrent_retries),
		T(test_fault_admin),
		T(test_fault_error_rate),
		T(test_fault_outage_and_expiry),
		T(test_fault_latency),
		cmocka_unit_test(test_delay_header_parse),
		T(test_stats),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
