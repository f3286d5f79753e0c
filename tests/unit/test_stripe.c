/* Tests for services/stripe, the adapter, against the real simulator served
 * over loopback: an http_server whose handler records each raw request (to
 * check it against Stripe's documented shape) and then hands it to
 * stripe_sim_engine, sleeping for the simulator's X-Sim-Delay-Us as the
 * daemon host does. The adapter's ctx->call is http_client_do, as on the
 * daemon. Covered: outcomes of authorize, capture, cancel, refund and get,
 * decline mapping, one intent per idempotency key across retries, transient
 * failures (injected 500 and 429, outage, timeout, closed port), permanent
 * refusals, and arguments refused before anything is sent. The simulator
 * on loopback is tests/unit/simfix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simfix.h"
#include "thelp.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/form.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/msg.h"
#include "services/engine.h"
#include "services/stripe.h"
#include "sim/stripe_sim.h"

#define KEY "sk_test_51AdapterTestKey000000000000"
#define ADMIN "adapter-admin"
#define FORM_CT "application/x-www-form-urlencoded"

typedef simfix_seen seen;

typedef struct fixture {
	simfix *sim;
	engine_ctx ctx; /* the adapter's (the simulator's clock, log, metrics, config) */
	stripe_client cl;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (!f || !(f->sim = simfix_new(ADMIN))) {
		free(f);
		return -1;
	}
	simfix *s = f->sim;
	f->ctx = (engine_ctx){
		.service = "payment",
		.instance_id = "payment-1",
		.clock = s->clock,
		.rng = s->rng,
		.log = s->log,
		.metrics = s->metrics,
		.config = s->config,
		.call = simfix_call,
		.call_ud = f,
	};
	if (stripe_client_init(&f->cl, &f->ctx) != 0)
		return -1;
	snprintf(f->cl.base_url, sizeof(f->cl.base_url), "%s", s->url);
	snprintf(f->cl.secret_key, sizeof(f->cl.secret_key), "%s", KEY);
	f->cl.timeout_ms = 2000;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	simfix_free(f->sim);
	free(f);
	return 0;
}

static int nseen(fixture *f) { return simfix_nseen(f->sim); }

static const seen *last_seen(fixture *f) { return simfix_last(f->sim); }

static int64_t sim_stat(fixture *f, const char *name) { return simfix_stat(f->sim, name); }

static void set_fault(fixture *f, const char *json) { simfix_fault(f->sim, json); }

static void clear_fault(fixture *f) { simfix_fault(f->sim, NULL); }

/* Checks a recorded POST against Stripe's documented request shape and
 * decodes its body into fm (the caller clears it). */
static void expect_post(const seen *s, const char *path, const char *idem, form *fm)
{
	assert_string_equal(s->method, "POST");
	assert_string_equal(s->path, path);
	assert_string_equal(s->ctype, FORM_CT);
	assert_string_equal(s->auth, "Bearer " KEY);
	assert_string_equal(s->idem, idem);
	assert_string_equal(s->version, STRIPE_API_VERSION);
	form_init(fm);
	assert_int_equal(form_parse(fm, s->body, strlen(s->body), 100), 0);
}

/* ---- the happy paths and the request shape -------------------------------------- */

static void test_authorize_request_shape(void **state)
{
	fixture *f = *state;
	stripe_result r;
	assert_int_equal(stripe_authorize(&f->cl, "order-1:authorize", 1999, "USD", "tok_visa", &r), 0);
	assert_int_equal(r.outcome, STRIPE_OK);
	assert_int_equal(r.http_status, 200);
	assert_true(strncmp(r.intent_id, "pi_", 3) == 0);
	assert_string_equal(r.status, "requires_capture");
	assert_int_equal(r.amount, 1999);
	assert_int_equal(r.amount_received, 0);
	assert_int_equal(r.replayed, 0);
	assert_string_equal(r.error_type, "");

	assert_int_equal(nseen(f), 1);
	form fm;
	expect_post(last_seen(f), "/v1/payment_intents", "order-1:authorize", &fm);
	/* Exactly Stripe's parameters, currency lower-cased. */
	assert_int_equal(fm.n, 5);
	assert_string_equal(form_get(&fm, "amount"), "1999");
	assert_string_equal(form_get(&fm, "currency"), "usd");
	assert_string_equal(form_get(&fm, "payment_method"), "tok_visa");
	assert_string_equal(form_get(&fm, "confirm"), "true");
	assert_string_equal(form_get(&fm, "capture_method"), "manual");
	for (size_t i = 0; i < fm.n; i++)
		assert_int_equal(form_count(&fm, fm.fields[i].name), 1);
	form_clear(&fm);
	assert_null(strstr(last_seen(f)->body, "USD"));

	/* Values are URL-encoded: an odd token arrives intact (and is unknown). */
	assert_int_equal(stripe_authorize(&f->cl, "order-2:authorize", 5, "eur", "tok visa&amount=1",
					  &r),
			 0);
	assert_int_equal(r.outcome, STRIPE_REJECTED);
	assert_int_equal(r.http_status, 400);
	assert_string_equal(r.error_code, "resource_missing");
	assert_non_null(strstr(last_seen(f)->body, "payment_method=tok%20visa%26amount%3D1"));
	expect_post(last_seen(f), "/v1/payment_intents", "order-2:authorize", &fm);
	assert_int_equal(fm.n, 5);
	assert_string_equal(form_get(&fm, "payment_method"), "tok visa&amount=1");
	assert_string_equal(form_get(&fm, "amount"), "5");
	form_clear(&fm);
}

static void test_capture_cancel_refund(void **state)
{
	fixture *f = *state;
	stripe_result a, r;
	assert_int_equal(stripe_authorize(&f->cl, "o1-auth", 5000, "usd", "pm_card_visa", &a), 0);
	assert_int_equal(a.outcome, STRIPE_OK);

	assert_int_equal(stripe_capture(&f->cl, "o1-capture", a.intent_id, &r), 0);
	assert_int_equal(r.outcome, STRIPE_OK);
	assert_string_equal(r.status, "succeeded");
	assert_string_equal(r.intent_id, a.intent_id);
	assert_int_equal(r.amount_received, 5000);
	char path[128];
	snprintf(path, sizeof(path), "/v1/payment_intents/%s/capture", a.intent_id);
	form fm;
	expect_post(last_seen(f), path, "o1-capture", &fm);
	assert_int_equal(fm.n, 0);
	form_clear(&fm);

	/* Capturing again under another key: a permanent refusal that still
	 * tells where the intent stands. */
	assert_int_equal(stripe_capture(&f->cl, "o1-capture-again", a.intent_id, &r), 0);
	assert_int_equal(r.outcome, STRIPE_REJECTED);
	assert_int_equal(r.http_status, 400);
	assert_string_equal(r.error_type, "invalid_request_error");
	assert_string_equal(r.error_code, "payment_intent_unexpected_state");
	assert_string_equal(r.status, "succeeded");
	assert_string_equal(r.intent_id, a.intent_id);

	/* Partial refund, then the rest. */
	assert_int_equal(stripe_refund(&f->cl, "o1-refund-1", a.intent_id, 1200, &r), 0);
	assert_int_equal(r.outcome, STRIPE_OK);
	assert_true(strncmp(r.refund_id, "re_", 3) == 0);
	assert_int_equal(r.amount, 1200);
	assert_string_equal(r.status, "succeeded");
	assert_string_equal(r.intent_id, a.intent_id);
	expect_post(last_seen(f), "/v1/refunds", "o1-refund-1", &fm);
	assert_int_equal(fm.n, 2);
	assert_string_equal(form_get(&fm, "payment_intent"), a.intent_id);
	assert_string_equal(form_get(&fm, "amount"), "1200");
	form_clear(&fm);

	assert_int_equal(stripe_refund(&f->cl, "o1-refund-2", a.intent_id, 0, &r), 0);
	assert_int_equal(r.outcome, STRIPE_OK);
	assert_int_equal(r.amount, 3800);
	expect_post(last_seen(f), "/v1/refunds", "o1-refund-2", &fm);
	assert_int_equal(fm.n, 1);
	assert_string_equal(form_get(&fm, "payment_intent"), a.intent_id);
	form_clear(&fm);

	assert_int_equal(stripe_refund(&f->cl, "o1-refund-3", a.intent_id, 0, &r), 0);
	assert_int_equal(r.outcome, STRIPE_REJECTED);
	assert_string_equal(r.error_code, "charge_already_refunded");

	/* Void another authorisation. */
	stripe_result b;
	assert_int_equal(stripe_authorize(&f->cl, "o2-auth", 700, "usd", "tok_visa", &b), 0);
	assert_int_equal(stripe_cancel(&f->cl, "o2-void", b.intent_id, &r), 0);
	assert_int_equal(r.outcome, STRIPE_OK);
	assert_string_equal(r.status, "canceled");
	snprintf(path, sizeof(path), "/v1/payment_intents/%s/cancel", b.intent_id);
	expect_post(last_seen(f), path, "o2-void", &fm);
	assert_int_equal(fm.n, 0);
	form_clear(&fm);
	/* And a refund of a voided one is refused. */
	assert_int_equal(stripe_refund(&f->cl, "o2-refund", b.intent_id, 0, &r), 0);
	assert_int_equal(r.outcome, STRIPE_REJECTED);

	/* Reading an intent: a GET without body or idempotency key. */
	assert_int_equal(stripe_get(&f->cl, b.intent_id, &r), 0);
	assert_int_equal(r.outcome, STRIPE_OK);
	assert_string_equal(r.status, "canceled");
	assert_int_equal(r.amount, 700);
	const seen *s = last_seen(f);
	assert_string_equal(s->method, "GET");
	assert_string_equal(s->idem, "");
	assert_string_equal(s->body, "");
	assert_string_equal(s->auth, "Bearer " KEY);
	assert_int_equal(stripe_get(&f->cl, "pi_doesnotexist", &r), 0);
	assert_int_equal(r.outcome, STRIPE_REJECTED);
	assert_int_equal(r.http_status, 404);
	assert_string_equal(r.error_code, "resource_missing");

	assert_int_equal(sim_stat(f, "captures"), 1);
	assert_int_equal(sim_stat(f, "refunds"), 2);
	assert_int_equal(sim_stat(f, "cancels"), 1);
}

static void test_declines(void **state)
{
	fixture *f = *state;
	stripe_result r;
	assert_int_equal(stripe_authorize(&f->cl, "d1", 1000, "usd", "tok_chargeDeclined", &r), 0);
	assert_int_equal(r.outcome, STRIPE_DECLINED);
	assert_int_equal(r.http_status, 402);
	assert_string_equal(r.decline_code, "generic_decline");
	assert_string_equal(r.error_type, "card_error");
	assert_string_equal(r.error_code, "card_declined");
	assert_string_equal(r.message, "Your card was declined.");
	assert_true(strncmp(r.intent_id, "pi_", 3) == 0);
	assert_string_equal(r.status, "requires_payment_method");

	assert_int_equal(stripe_authorize(&f->cl, "d2", 1000, "usd",
					  "tok_chargeDeclinedInsufficientFunds", &r),
			 0);
	assert_int_equal(r.outcome, STRIPE_DECLINED);
	assert_string_equal(r.decline_code, "insufficient_funds");

	/* Other card errors carry their own decline code. */
	assert_int_equal(stripe_authorize(&f->cl, "d3", 1000, "usd", "tok_chargeDeclinedExpiredCard",
					  &r),
			 0);
	assert_int_equal(r.outcome, STRIPE_DECLINED);
	assert_string_equal(r.decline_code, "expired_card");

	/* A declined retry is the same decline, not a second attempt. */
	assert_int_equal(stripe_authorize(&f->cl, "d1", 1000, "usd", "tok_chargeDeclined", &r), 0);
	assert_int_equal(r.outcome, STRIPE_DECLINED);
	assert_int_equal(r.replayed, 1);
	assert_int_equal(sim_stat(f, "declines"), 3);
	assert_int_equal(sim_stat(f, "intents"), 3);
}

/* ---- idempotency across retries ------------------------------------------------- */

static void test_retry_is_one_intent(void **state)
{
	fixture *f = *state;
	stripe_result a, b;
	assert_int_equal(stripe_authorize(&f->cl, "order-9:authorize", 4200, "usd", "tok_visa", &a), 0);
	assert_int_equal(stripe_authorize(&f->cl, "order-9:authorize", 4200, "usd", "tok_visa", &b), 0);
	assert_int_equal(a.outcome, STRIPE_OK);
	assert_int_equal(b.outcome, STRIPE_OK);
	assert_string_equal(a.intent_id, b.intent_id);
	assert_int_equal(a.replayed, 0);
	assert_int_equal(b.replayed, 1);
	assert_int_equal(sim_stat(f, "intents"), 1);
	assert_int_equal(sim_stat(f, "idempotent_replays"), 1);

	/* A transient failure, then the retry under the same key: one charge. */
	set_fault(f, "{\"error_rate\":1.0,\"error_status\":500}");
	assert_int_equal(stripe_authorize(&f->cl, "order-10:authorize", 100, "usd", "tok_visa", &a), 0);
	assert_int_equal(a.outcome, STRIPE_FAILED);
	assert_int_equal(a.http_status, 500);
	assert_string_equal(a.error_type, "api_error");
	clear_fault(f);
	assert_int_equal(stripe_authorize(&f->cl, "order-10:authorize", 100, "usd", "tok_visa", &a), 0);
	assert_int_equal(a.outcome, STRIPE_OK);
	assert_int_equal(stripe_authorize(&f->cl, "order-10:authorize", 100, "usd", "tok_visa", &b), 0);
	assert_string_equal(a.intent_id, b.intent_id);
	assert_int_equal(stripe_capture(&f->cl, "order-10:capture", a.intent_id, &b), 0);
	assert_int_equal(stripe_capture(&f->cl, "order-10:capture", a.intent_id, &b), 0);
	assert_int_equal(b.outcome, STRIPE_OK);
	assert_int_equal(b.replayed, 1);
	assert_int_equal(sim_stat(f, "intents"), 2);
	assert_int_equal(sim_stat(f, "captures"), 1);
	assert_int_equal(sim_stat(f, "captured_amount"), 100);

	/* The key reused for another amount: Stripe's idempotency_error. */
	assert_int_equal(stripe_authorize(&f->cl, "order-9:authorize", 4300, "usd", "tok_visa", &a), 0);
	assert_int_equal(a.outcome, STRIPE_REJECTED);
	assert_int_equal(a.http_status, 400);
	assert_string_equal(a.error_type, "idempotency_error");
	assert_int_equal(sim_stat(f, "intents"), 2);
}

/* ---- failures ------------------------------------------------------------------- */

static void test_transient_failures(void **state)
{
	fixture *f = *state;
	stripe_result r;
	char id[64];
	assert_int_equal(stripe_authorize(&f->cl, "t-auth", 300, "usd", "tok_visa", &r), 0);
	snprintf(id, sizeof(id), "%s", r.intent_id);

	set_fault(f, "{\"error_rate\":1.0,\"error_status\":502}");
	assert_int_equal(stripe_capture(&f->cl, "t-capture", id, &r), 0);
	assert_int_equal(r.outcome, STRIPE_FAILED);
	assert_int_equal(r.http_status, 502);
	assert_int_equal(stripe_get(&f->cl, id, &r), 0);
	assert_int_equal(r.outcome, STRIPE_FAILED);

	set_fault(f, "{\"error_rate\":1.0,\"error_status\":429}");
	assert_int_equal(stripe_refund(&f->cl, "t-refund", id, 0, &r), 0);
	assert_int_equal(r.outcome, STRIPE_FAILED);
	assert_int_equal(r.http_status, 429);
	assert_string_equal(r.error_code, "rate_limit");

	set_fault(f, "{\"outage\":true}");
	assert_int_equal(stripe_cancel(&f->cl, "t-cancel", id, &r), 0);
	assert_int_equal(r.outcome, STRIPE_FAILED);
	assert_int_equal(r.http_status, 503);

	/* Slower than the client waits: a timeout, no answer. */
	set_fault(f, "{\"latency_ms\":400}");
	f->cl.timeout_ms = 100;
	int64_t t0 = clock_mono_us();
	assert_int_equal(stripe_capture(&f->cl, "t-capture", id, &r), 0);
	int64_t took = clock_mono_us() - t0;
	assert_int_equal(r.outcome, STRIPE_FAILED);
	assert_int_equal(r.http_status, 0);
	assert_non_null(strstr(r.message, "timeout"));
	assert_true(took < 350000);
	f->cl.timeout_ms = 2000;
	clear_fault(f);
	/* The timed-out capture may have happened (it did: the simulator only
	 * delayed the answer); the retry under its key is the same capture. */
	assert_int_equal(stripe_capture(&f->cl, "t-capture", id, &r), 0);
	assert_int_equal(r.outcome, STRIPE_OK);
	assert_int_equal(r.replayed, 1);
	assert_int_equal(sim_stat(f, "captures"), 1);

	/* Nobody listening. */
	int port = thelp_closed_port();
	assert_true(port > 0);
	snprintf(f->cl.base_url, sizeof(f->cl.base_url), "http://127.0.0.1:%d", port);
	assert_int_equal(stripe_authorize(&f->cl, "t-auth-2", 300, "usd", "tok_visa", &r), 0);
	assert_int_equal(r.outcome, STRIPE_FAILED);
	assert_int_equal(r.http_status, 0);
	assert_non_null(strstr(r.message, "no answer"));
}

static void test_permanent_refusals(void **state)
{
	fixture *f = *state;
	stripe_result r;
	snprintf(f->cl.secret_key, sizeof(f->cl.secret_key), "sk_live_notatestkey00000000");
	assert_int_equal(stripe_authorize(&f->cl, "p1", 300, "usd", "tok_visa", &r), 0);
	assert_int_equal(r.outcome, STRIPE_REJECTED);
	assert_int_equal(r.http_status, 401);
	assert_non_null(strstr(r.message, "Invalid API Key"));
	snprintf(f->cl.secret_key, sizeof(f->cl.secret_key), "%s", KEY);
	assert_int_equal(stripe_capture(&f->cl, "p2", "pi_unknown", &r), 0);
	assert_int_equal(r.outcome, STRIPE_REJECTED);
	assert_int_equal(r.http_status, 404);
	assert_int_equal(stripe_authorize(&f->cl, "p3", 100000000, "usd", "tok_visa", &r), 0);
	assert_int_equal(r.outcome, STRIPE_REJECTED);
	assert_string_equal(r.error_code, "amount_too_large");
}

static void test_arguments_refused_locally(void **state)
{
	fixture *f = *state;
	stripe_result r;
	int before = nseen(f);
	char longkey[300];
	memset(longkey, 'k', 256);
	longkey[256] = '\0';
	assert_int_equal(stripe_authorize(&f->cl, "", 100, "usd", "tok_visa", &r), ERR_INVALID);
	assert_int_equal(r.outcome, STRIPE_REJECTED);
	assert_true(strlen(r.message) > 0);
	assert_int_equal(stripe_authorize(&f->cl, NULL, 100, "usd", "tok_visa", &r), ERR_INVALID);
	assert_int_equal(stripe_authorize(&f->cl, longkey, 100, "usd", "tok_visa", &r), ERR_INVALID);
	assert_int_equal(stripe_authorize(&f->cl, "a\r\nX-Evil: 1", 100, "usd", "tok_visa", &r),
			 ERR_INVALID);
	assert_int_equal(stripe_authorize(&f->cl, "k", 0, "usd", "tok_visa", &r), ERR_INVALID);
	assert_int_equal(stripe_authorize(&f->cl, "k", -5, "usd", "tok_visa", &r), ERR_INVALID);
	assert_int_equal(stripe_authorize(&f->cl, "k", 100, "us", "tok_visa", &r), ERR_INVALID);
	assert_int_equal(stripe_authorize(&f->cl, "k", 100, "u1d", "tok_visa", &r), ERR_INVALID);
	assert_int_equal(stripe_authorize(&f->cl, "k", 100, "usd", "", &r), ERR_INVALID);
	assert_int_equal(stripe_capture(&f->cl, "k", "../v1/refunds", &r), ERR_INVALID);
	assert_int_equal(stripe_cancel(&f->cl, "k", "", &r), ERR_INVALID);
	assert_int_equal(stripe_refund(&f->cl, "k", "pi_1/cancel", 0, &r), ERR_INVALID);
	assert_int_equal(stripe_refund(&f->cl, "k", "pi_1", -1, &r), ERR_INVALID);
	assert_int_equal(stripe_get(&f->cl, "pi 1", &r), ERR_INVALID);
	assert_int_equal(stripe_authorize(&f->cl, "k", 100, "usd", "tok_visa", NULL), ERR_INVALID);
	stripe_client empty = { 0 };
	assert_int_equal(stripe_authorize(&empty, "k", 100, "usd", "tok_visa", &r), ERR_INVALID);
	f->cl.secret_key[0] = '\0';
	assert_int_equal(stripe_authorize(&f->cl, "k", 100, "usd", "tok_visa", &r), ERR_INVALID);
	assert_int_equal(nseen(f), before);
	/* 255 characters is Stripe's limit, and fine. */
	snprintf(f->cl.secret_key, sizeof(f->cl.secret_key), "%s", KEY);
	longkey[255] = '\0';
	assert_int_equal(stripe_authorize(&f->cl, longkey, 100, "usd", "tok_visa", &r), 0);
	assert_int_equal(r.outcome, STRIPE_OK);
	assert_string_equal(last_seen(f)->idem, longkey);
}

static void test_client_init(void **state)
{
	fixture *f = *state;
	stripe_client cl;
	assert_int_equal(stripe_client_init(&cl, &f->ctx), 0);
	assert_ptr_equal(cl.ctx, &f->ctx);
	/* Without the keys in the configuration: Stripe itself, no key. */
	const char *url = config_get(f->sim->config, "stripe.base_url");
	if (!url || !url[0])
		assert_string_equal(cl.base_url, STRIPE_DEFAULT_BASE_URL);
	assert_true(cl.timeout_ms > 0);
	assert_int_equal(stripe_client_init(&cl, NULL), ERR_INVALID);
	assert_int_equal(stripe_client_init(NULL, &f->ctx), ERR_INVALID);
	assert_string_equal(stripe_outcome_name(STRIPE_OK), "ok");
	assert_string_equal(stripe_outcome_name(STRIPE_DECLINED), "declined");
	assert_string_equal(stripe_outcome_name(STRIPE_FAILED), "failed");
	assert_string_equal(stripe_outcome_name(STRIPE_REJECTED), "rejected");
}

static int global_setup(void **state)
{
	return http_client_global_init();
}

static int global_teardown(void **state)
{
	http_client_global_cleanup();
	return 0;
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_authorize_request_shape),
		T(test_capture_cancel_refund),
		T(test_declines),
		T(test_retry_is_one_intent),
		T(test_transient_failures),
		T(test_permanent_refusals),
		T(test_arguments_refused_locally),
		T(test_client_init),
	};
#undef T
	return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
