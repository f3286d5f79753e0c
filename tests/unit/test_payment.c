/* Tests for services/payment through its engine_def, with the real Stripe
 * simulator behind it on loopback (tests/unit/simfix) and the real adapter
 * over libcurl, as on the daemon: approvals and declines by test token,
 * idempotency on payment_id (same request, other request, concurrent
 * duplicates: one intent at the simulator), a provider outage (PENDING and
 * 503, then the final outcome on a retry with one charge), a lost answer
 * (the charge made, the reply timed out: still one charge), capture, void
 * and refund with their repeats and illegal moves (409), partial refunds,
 * reconciliation when the provider knows better, the outbox, the state
 * machine, authorisation (service or admin; user 403, none 401) and every
 * field of bad input. PayPal (its simulator beside Stripe's): a payment
 * authorised, captured, refunded in part and in full (also by the admin),
 * voided; declines at authorisation and at capture; replies lost at
 * capture, authorisation and refund, and a lost capture followed by a void
 * (the refund learns the capture by asking again). Webhooks: the issue's
 * table for Stripe-Signature (valid, tampered, wrong secret, no v1, stale,
 * two v1 of which one is right, the same event twice), PayPal's, bodies
 * that are not events (400, 413, never a crash), no secret (503), unknown
 * payments, captures and refunds from the provider's side, and the
 * simulators' own signed webhooks delivered into the engine, including a
 * refund whose reply was lost and whose webhook came first: refunded
 * once. Each test gets its own in-memory store (a file store for the
 * threads), a virtual clock for the engine and fresh simulators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "net/http_client.h"
#include "net/msg.h"
#include "services/payment.h"
#include "services/webhook.h"
#include "sim/paypal_sim.h"
#include "sim/stripe_sim.h"
#include "store/store.h"

#include "efix.h"
#include "simfix.h"

#define KEY "sk_test_51PaymentEngineTest00000000"
#define SIM_ADMIN "sim-admin"
#define ADMIN "Bearer " EFIX_ADMIN
#define ST_WHSEC "whsec_payment_engine_test"
#define PP_WHSEC "paypal-webhook-test"

typedef struct pfix {
	efix *f;
	simfix *sim;
	simfix *pp; /* the PayPal simulator */
} pfix;

/* ---- fixture ---------------------------------------------------------------- */

/* The payment engine on store_url (a file store when NULL) against a new
 * simulator, its Stripe timeout timeout_ms. */
static pfix *pfix_new(const char *store_url, const char *timeout_ms)
{
	pfix *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	static const char *const stcfg[] = { "stripe.webhook_secret", ST_WHSEC, NULL };
	p->sim = simfix_start(&stripe_sim_engine, "stripe", SIM_ADMIN, stcfg);
	assert_non_null(p->sim);
	static const char *const ppcfg[] = { "paypal.webhook_secret", PP_WHSEC, NULL };
	p->pp = simfix_start(&paypal_sim_engine, "paypal", SIM_ADMIN, ppcfg);
	assert_non_null(p->pp);
	p->f = efix_new("payment", store_url, EFIX_T0, 7);
	p->f->ctx.call = simfix_call;
	assert_int_equal(config_set(p->f->config, "stripe.base_url", p->sim->url), 0);
	assert_int_equal(config_set(p->f->config, "stripe.secret_key", KEY), 0);
	assert_int_equal(config_set(p->f->config, "stripe.timeout_ms", timeout_ms), 0);
	assert_int_equal(config_set(p->f->config, "paypal.base_url", p->pp->url), 0);
	assert_int_equal(config_set(p->f->config, "paypal.client_id", "ecom-test"), 0);
	assert_int_equal(config_set(p->f->config, "paypal.secret", "ecom-test-secret"), 0);
	assert_int_equal(config_set(p->f->config, "paypal.timeout_ms", timeout_ms), 0);
	assert_int_equal(config_set(p->f->config, "stripe.webhook_secret", ST_WHSEC), 0);
	assert_int_equal(config_set(p->f->config, "paypal.webhook_secret", PP_WHSEC), 0);
	p->f->eng = efix_create_engine(p->f);
	return p;
}

/* A new engine on the same store with another Stripe timeout. */
static void pfix_timeout(pfix *p, const char *timeout_ms)
{
	p->f->def->destroy(p->f->eng);
	assert_int_equal(config_set(p->f->config, "stripe.timeout_ms", timeout_ms), 0);
	assert_int_equal(config_set(p->f->config, "paypal.timeout_ms", timeout_ms), 0);
	p->f->eng = efix_create_engine(p->f);
}

static int setup(void **state)
{
	*state = pfix_new("sqlite::memory:", "2000");
	return 0;
}

static int teardown(void **state)
{
	pfix *p = *state;
	efix_free(p->f);
	simfix_free(p->sim);
	simfix_free(p->pp);
	free(p);
	return 0;
}

/* ---- requests ------------------------------------------------------------------ */

/* A request as the order service makes it (a fresh service identity), the
 * parsed answer and its status; raw (may be NULL) gets the body's bytes
 * (malloc'd) and retry_after the Retry-After header (or ""). */
static json_t *call_full(pfix *p, const char *method, const char *path, const char *body,
			 int *status, char **raw, char *retry_after)
{
	char ident[IDENTITY_MAX];
	efix_sign(p->f, IDENTITY_SERVICE, "order", NULL, ident);
	msg_resp resp;
	efix_do(p->f, NULL, method, path, ident, NULL, NULL, body, &resp);
	*status = resp.status;
	json_t *v = efix_json(&resp);
	if (raw)
		*raw = strndup(resp.body, resp.body_len);
	if (retry_after) {
		const char *ra = msg_resp_header(&resp, "Retry-After");
		snprintf(retry_after, 8, "%s", ra ? ra : "");
	}
	msg_resp_clear(&resp);
	return v;
}

static json_t *call(pfix *p, const char *method, const char *path, const char *body, int *status)
{
	return call_full(p, method, path, body, status, NULL, NULL);
}

static json_t *expect(pfix *p, const char *method, const char *path, const char *body, int want)
{
	int status = 0;
	json_t *v = call(p, method, path, body, &status);
	if (status != want) {
		char *s = json_dumps(v, JSON_COMPACT);
		fail_msg("%s %s %s: status %d, expected %d: %s", method, path, body ? body : "",
			 status, want, s ? s : "");
	}
	return v;
}

static void expect_error(pfix *p, const char *method, const char *path, const char *body,
			 int want, const char *code, const char *key, const char *value)
{
	efix_assert_error(expect(p, method, path, body, want), code, key, value);
}

/* The body of a card payment. */
static char *pay_body(const char *id, const char *order, long long amount, const char *token)
{
	char *b = NULL;
	assert_true(asprintf(&b,
			     "{\"payment_id\":\"%s\",\"order_id\":\"%s\",\"amount_cents\":%lld,"
			     "\"currency\":\"USD\",\"method\":\"card\",\"token\":\"%s\"}",
			     id, order, amount, token) > 0);
	return b;
}

/* POST /v1/payments expecting want; returns the answer. */
static json_t *pay(pfix *p, const char *id, long long amount, const char *token, int want)
{
	char *b = pay_body(id, "ord-1", amount, token);
	json_t *v = expect(p, "POST", "/v1/payments", b, want);
	free(b);
	return v;
}

static json_t *op(pfix *p, const char *id, const char *what, const char *body, int want)
{
	char path[160];
	snprintf(path, sizeof(path), "/v1/payments/%s%s%s", id, what[0] ? "/" : "", what);
	return expect(p, what[0] ? "POST" : "GET", path, body, want);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s)
		fail_msg("no string %s", key);
	return s;
}

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		fail_msg("no integer %s", key);
	return (long long)json_integer_value(v);
}

/* The status of payment id, read with GET. */
static void expect_status(pfix *p, const char *id, const char *status)
{
	json_t *v = op(p, id, "", NULL, 200);
	assert_string_equal(jstr(v, "status"), status);
	json_decref(v);
}

/* The event types in the outbox for payment id, in order, joined by ' '. */
static void events_of(pfix *p, const char *id, char *out, size_t len)
{
	out[0] = '\0';
	int rc = 0;
	store_stmt *st = store_prepare(p->f->store,
				       "SELECT topic, payload FROM outbox WHERE key = ? ORDER BY id",
				       &rc);
	assert_non_null(st);
	store_bind_text(st, 1, id);
	while ((rc = store_step(st)) == STORE_ROW) {
		assert_string_equal(store_col_text(st, 0), "payments");
		json_t *ev = json_loads(store_col_text(st, 1), 0, NULL);
		assert_non_null(ev);
		assert_string_equal(jstr(ev, "payment_id"), id);
		size_t n = strlen(out);
		snprintf(out + n, len - n, "%s%s", n ? " " : "", jstr(ev, "type"));
		json_decref(ev);
	}
	store_reset(st);
	assert_int_equal(rc, STORE_DONE);
}

/* ---- authorising ------------------------------------------------------------------- */

static void test_approve(void **state)
{
	pfix *p = *state;
	json_t *v = pay(p, "pay-1", 4999, "tok_visa", 201);
	assert_string_equal(jstr(v, "payment_id"), "pay-1");
	assert_string_equal(jstr(v, "order_id"), "ord-1");
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	assert_string_equal(jstr(v, "provider"), "stripe");
	assert_string_equal(jstr(v, "method"), "card");
	assert_int_equal(jint(v, "amount_cents"), 4999);
	assert_string_equal(jstr(v, "currency"), "USD");
	assert_int_equal(jint(v, "captured_cents"), 0);
	assert_int_equal(jint(v, "refunded_cents"), 0);
	assert_memory_equal(jstr(v, "provider_ref"), "pi_", 3);
	assert_string_equal(jstr(v, "created_at"), "2025-11-25T23:10:55.000Z");
	assert_null(json_object_get(v, "decline_code"));
	assert_null(json_object_get(v, "token"));
	char pi[64];
	snprintf(pi, sizeof(pi), "%s", jstr(v, "provider_ref"));
	json_decref(v);

	/* One manual-capture intent, under the key derived from payment_id. */
	assert_int_equal(simfix_nseen(p->sim), 1);
	const simfix_seen *s = simfix_last(p->sim);
	assert_string_equal(s->path, "/v1/payment_intents");
	assert_string_equal(s->idem, "pay-1-authorize");
	assert_string_equal(s->auth, "Bearer " KEY);
	assert_non_null(strstr(s->body, "capture_method=manual"));
	assert_non_null(strstr(s->body, "amount=4999"));
	assert_non_null(strstr(s->body, "currency=usd"));
	assert_int_equal(simfix_stat(p->sim, "authorizations"), 1);

	v = op(p, "pay-1", "", NULL, 200);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	assert_string_equal(jstr(v, "provider_ref"), pi);
	assert_int_equal(json_array_size(json_object_get(v, "refunds")), 0);
	json_decref(v);
	char ev[256];
	events_of(p, "pay-1", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized");
}

static void test_declines(void **state)
{
	pfix *p = *state;
	json_t *v = pay(p, "pay-d1", 1000, "tok_chargeDeclined", 201);
	assert_string_equal(jstr(v, "status"), "DECLINED");
	assert_string_equal(jstr(v, "decline_code"), "generic_decline");
	assert_memory_equal(jstr(v, "provider_ref"), "pi_", 3);
	json_decref(v);
	v = pay(p, "pay-d2", 1000, "tok_chargeDeclinedInsufficientFunds", 201);
	assert_string_equal(jstr(v, "status"), "DECLINED");
	assert_string_equal(jstr(v, "decline_code"), "insufficient_funds");
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "declines"), 2);
	assert_int_equal(simfix_stat(p->sim, "authorizations"), 0);

	/* Nothing to capture or refund; nothing held, so a void is done. */
	expect_error(p, "POST", "/v1/payments/pay-d1/capture", NULL, 409, "conflict", "status",
		     "DECLINED");
	expect_error(p, "POST", "/v1/payments/pay-d1/refund", NULL, 409, "conflict", "status",
		     "DECLINED");
	v = op(p, "pay-d1", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "DECLINED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "cancels"), 0);
	char ev[256];
	events_of(p, "pay-d2", ev, sizeof(ev));
	assert_string_equal(ev, "payment.declined");
}

/* A token Stripe does not know: the provider refuses the request itself. */
static void test_provider_rejected(void **state)
{
	pfix *p = *state;
	char *raw1 = NULL, *raw2 = NULL;
	char *b = pay_body("pay-r", "ord-r", 100, "tok_doesNotExist");
	int s1 = 0, s2 = 0;
	json_t *v = call_full(p, "POST", "/v1/payments", b, &s1, &raw1, NULL);
	assert_int_equal(s1, 422);
	efix_assert_error(v, "provider_rejected", "provider_code", "resource_missing");
	/* Final: the same request gets the same answer, and the provider is
	 * not asked again. */
	int before = simfix_nseen(p->sim);
	json_decref(call_full(p, "POST", "/v1/payments", b, &s2, &raw2, NULL));
	assert_int_equal(s2, 422);
	assert_string_equal(raw1, raw2);
	assert_int_equal(simfix_nseen(p->sim), before);
	free(b);
	free(raw1);
	free(raw2);
	v = op(p, "pay-r", "", NULL, 200);
	assert_string_equal(jstr(v, "status"), "FAILED");
	assert_string_equal(jstr(v, "failure_code"), "resource_missing");
	json_decref(v);
	v = op(p, "pay-r", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "FAILED");
	json_decref(v);
	expect_error(p, "POST", "/v1/payments/pay-r/capture", NULL, 409, "conflict", NULL, NULL);
}

/* ---- idempotency ------------------------------------------------------------------- */

static void test_same_request_same_answer(void **state)
{
	pfix *p = *state;
	char *b = pay_body("pay-i", "ord-i", 2500, "tok_visa");
	char *raw1 = NULL, *raw2 = NULL;
	int s1 = 0, s2 = 0;
	json_decref(call_full(p, "POST", "/v1/payments", b, &s1, &raw1, NULL));
	/* Later, after the engine's clock moved: still the first answer, byte
	 * for byte. */
	clock_advance(p->f->clock, 5000000);
	json_decref(call_full(p, "POST", "/v1/payments", b, &s2, &raw2, NULL));
	assert_int_equal(s1, 201);
	assert_int_equal(s2, 201);
	assert_string_equal(raw1, raw2);
	free(raw1);
	free(raw2);
	assert_int_equal(simfix_stat(p->sim, "intents"), 1);
	assert_int_equal(simfix_nseen(p->sim), 1);
	/* Also once captured: POST answers as the first time; GET tells now. */
	json_decref(op(p, "pay-i", "capture", NULL, 200));
	json_t *v = expect(p, "POST", "/v1/payments", b, 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	json_decref(v);
	expect_status(p, "pay-i", "CAPTURED");
	free(b);

	/* The same payment_id for anything else: 422, whichever field. */
	static const char *const others[] = {
		"{\"payment_id\":\"pay-i\",\"order_id\":\"ord-x\",\"amount_cents\":2500,"
		"\"currency\":\"USD\",\"method\":\"card\",\"token\":\"tok_visa\"}",
		"{\"payment_id\":\"pay-i\",\"order_id\":\"ord-i\",\"amount_cents\":2501,"
		"\"currency\":\"USD\",\"method\":\"card\",\"token\":\"tok_visa\"}",
		"{\"payment_id\":\"pay-i\",\"order_id\":\"ord-i\",\"amount_cents\":2500,"
		"\"currency\":\"EUR\",\"method\":\"card\",\"token\":\"tok_visa\"}",
		"{\"payment_id\":\"pay-i\",\"order_id\":\"ord-i\",\"amount_cents\":2500,"
		"\"currency\":\"USD\",\"method\":\"card\",\"token\":\"tok_mastercard\"}",
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		expect_error(p, "POST", "/v1/payments", others[i], 422, "idempotency_mismatch",
			     "payment_id", "pay-i");
	assert_int_equal(simfix_stat(p->sim, "intents"), 1);

	/* A decline is final too. */
	b = pay_body("pay-id", "ord-i", 100, "tok_chargeDeclined");
	json_decref(call_full(p, "POST", "/v1/payments", b, &s1, &raw1, NULL));
	json_decref(call_full(p, "POST", "/v1/payments", b, &s2, &raw2, NULL));
	assert_int_equal(s1, 201);
	assert_int_equal(s2, 201);
	assert_string_equal(raw1, raw2);
	assert_non_null(strstr(raw1, "\"DECLINED\""));
	free(raw1);
	free(raw2);
	free(b);
	assert_int_equal(simfix_stat(p->sim, "declines"), 1);
}

#define RACERS 8

typedef struct racer {
	pfix *p;
	const char *body;
	char ident[IDENTITY_MAX];
	int status;
	char *raw;
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	msg_resp resp;
	efix_do(r->p->f, NULL, "POST", "/v1/payments", r->ident, NULL, NULL, r->body, &resp);
	r->status = resp.status;
	r->raw = strndup(resp.body ? resp.body : "", resp.body_len);
	msg_resp_clear(&resp);
	return NULL;
}

/* Threads posting the same payment at once (a file store, as the daemon
 * has): one payment, one intent at the provider, one answer for all. */
static void test_concurrent_duplicates(void **state)
{
	(void)state;
	pfix *p = pfix_new(NULL, "2000");
	char *b = pay_body("pay-race", "ord-race", 777, "tok_visa");
	racer rs[RACERS];
	pthread_t tids[RACERS];
	for (int i = 0; i < RACERS; i++) {
		rs[i] = (racer){ .p = p, .body = b };
		efix_sign(p->f, IDENTITY_SERVICE, "order", NULL, rs[i].ident);
	}
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_create(&tids[i], NULL, race, &rs[i]), 0);
	for (int i = 0; i < RACERS; i++)
		pthread_join(tids[i], NULL);
	for (int i = 0; i < RACERS; i++) {
		if (rs[i].status != 201)
			fail_msg("racer %d: %d %s", i, rs[i].status, rs[i].raw);
		assert_string_equal(rs[i].raw, rs[0].raw);
	}
	assert_non_null(strstr(rs[0].raw, "\"AUTHORIZED\""));
	assert_int_equal(simfix_stat(p->sim, "created"), 1);
	assert_int_equal(simfix_stat(p->sim, "authorizations"), 1);
	char ev[256];
	events_of(p, "pay-race", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized");
	for (int i = 0; i < RACERS; i++)
		free(rs[i].raw);
	free(b);
	efix_free(p->f);
	simfix_free(p->sim);
	simfix_free(p->pp);
	free(p);
}

/* ---- the provider in trouble ----------------------------------------------------------- */

static void test_outage_then_retry(void **state)
{
	pfix *p = *state;
	simfix_fault(p->sim, "{\"outage\":true}");
	char *b = pay_body("pay-o", "ord-o", 1234, "tok_visa");
	int status = 0;
	char ra[8];
	json_t *v = call_full(p, "POST", "/v1/payments", b, &status, NULL, ra);
	assert_int_equal(status, 503);
	assert_string_equal(ra, "1");
	efix_assert_error(v, "unavailable", "status", "PENDING");
	expect_status(p, "pay-o", "PENDING");
	/* Still out: still PENDING, nothing made. */
	json_decref(expect(p, "POST", "/v1/payments", b, 503));
	assert_int_equal(simfix_stat(p->sim, "intents"), 0);

	/* Stripe is back: the retry lands on the outcome, with one charge. */
	simfix_fault(p->sim, NULL);
	v = expect(p, "POST", "/v1/payments", b, 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	json_decref(v);
	json_decref(expect(p, "POST", "/v1/payments", b, 201));
	assert_int_equal(simfix_stat(p->sim, "intents"), 1);
	/* Every attempt used the one key. */
	for (int i = 0; i < simfix_nseen(p->sim); i++)
		assert_string_equal(p->sim->seen[i].idem, "pay-o-authorize");
	char ev[256];
	events_of(p, "pay-o", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized");
	free(b);

	/* Injected 500s and 429s are transient too. */
	simfix_fault(p->sim, "{\"error_rate\":1.0,\"error_status\":500}");
	json_decref(pay(p, "pay-o2", 10, "tok_visa", 503));
	simfix_fault(p->sim, "{\"error_rate\":1.0,\"error_status\":429}");
	json_decref(pay(p, "pay-o2", 10, "tok_visa", 503));
	simfix_fault(p->sim, NULL);
	v = pay(p, "pay-o2", 10, "tok_visa", 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	json_decref(v);
}

/* The provider made the charge but its answer came too late: the payment
 * is PENDING, and the retry (same key) finds the charge instead of making
 * a second. */
static void test_lost_answer_one_charge(void **state)
{
	pfix *p = *state;
	pfix_timeout(p, "150");
	simfix_fault(p->sim, "{\"latency_ms\":400}");
	json_t *v = pay(p, "pay-l", 5000, "tok_visa", 503);
	efix_assert_error(v, "unavailable", "status", "PENDING");
	assert_int_equal(simfix_stat(p->sim, "intents"), 1);
	simfix_fault(p->sim, NULL);
	v = pay(p, "pay-l", 5000, "tok_visa", 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "intents"), 1);
	assert_true(simfix_stat(p->sim, "idempotent_replays") >= 1);

	/* A capture whose answer is lost: AUTHORIZED here, captured there.
	 * The retry finds it captured; one capture. */
	simfix_fault(p->sim, "{\"latency_ms\":400}");
	json_decref(op(p, "pay-l", "capture", NULL, 503));
	expect_status(p, "pay-l", "AUTHORIZED");
	assert_int_equal(simfix_stat(p->sim, "captures"), 1);
	simfix_fault(p->sim, NULL);
	v = op(p, "pay-l", "capture", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	assert_int_equal(jint(v, "captured_cents"), 5000);
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "captures"), 1);

	/* Another lost capture, then the caller gives up and voids: Stripe
	 * says the intent is captured, so the payment is recorded CAPTURED and
	 * the void is refused (refund it instead). */
	json_decref(pay(p, "pay-l2", 300, "tok_visa", 201));
	simfix_fault(p->sim, "{\"latency_ms\":400}");
	json_decref(op(p, "pay-l2", "capture", NULL, 503));
	simfix_fault(p->sim, NULL);
	expect_error(p, "POST", "/v1/payments/pay-l2/void", NULL, 409, "conflict", "status",
		     "CAPTURED");
	v = op(p, "pay-l2", "", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	assert_int_equal(jint(v, "captured_cents"), 300);
	json_decref(v);
	char ev[256];
	events_of(p, "pay-l2", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized payment.captured");
	v = op(p, "pay-l2", "refund", NULL, 200);
	assert_string_equal(jstr(v, "status"), "REFUNDED");
	json_decref(v);
}

/* A capture or void while the provider is down: 503 and the payment as it
 * was; the retry does it once. */
static void test_transient_capture_and_void(void **state)
{
	pfix *p = *state;
	json_decref(pay(p, "pay-t", 900, "tok_visa", 201));
	json_decref(pay(p, "pay-t2", 900, "tok_visa", 201));
	simfix_fault(p->sim, "{\"error_rate\":1.0,\"error_status\":502}");
	int status = 0;
	char ra[8];
	json_t *v = call_full(p, "POST", "/v1/payments/pay-t/capture", NULL, &status, NULL, ra);
	assert_int_equal(status, 503);
	assert_string_equal(ra, "1");
	efix_assert_error(v, "unavailable", "status", "AUTHORIZED");
	json_decref(op(p, "pay-t2", "void", NULL, 503));
	expect_status(p, "pay-t", "AUTHORIZED");
	expect_status(p, "pay-t2", "AUTHORIZED");
	simfix_fault(p->sim, NULL);
	v = op(p, "pay-t", "capture", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	json_decref(v);
	v = op(p, "pay-t2", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "VOIDED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "captures"), 1);
	assert_int_equal(simfix_stat(p->sim, "cancels"), 1);

	/* A refund too. */
	simfix_fault(p->sim, "{\"outage\":true}");
	json_decref(op(p, "pay-t", "refund", "{\"amount_cents\":100}", 503));
	v = op(p, "pay-t", "", NULL, 200);
	assert_int_equal(jint(v, "refunded_cents"), 0);
	json_decref(v);
	simfix_fault(p->sim, NULL);
	v = op(p, "pay-t", "refund", "{\"amount_cents\":100}", 200);
	assert_int_equal(jint(v, "refunded_cents"), 100);
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "refunds"), 1);
}

/* A PENDING payment is resolved before anything else is done to it. */
static void test_pending_resolved_first(void **state)
{
	pfix *p = *state;
	simfix_fault(p->sim, "{\"outage\":true}");
	json_decref(pay(p, "pay-p", 640, "tok_visa", 503));
	json_decref(pay(p, "pay-p2", 640, "tok_visa", 503));
	json_decref(pay(p, "pay-p3", 640, "tok_chargeDeclined", 503));
	/* Still out: the capture cannot know either. */
	json_t *v = op(p, "pay-p", "capture", NULL, 503);
	efix_assert_error(v, "unavailable", "status", "PENDING");
	simfix_fault(p->sim, NULL);
	v = op(p, "pay-p", "capture", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	json_decref(v);
	v = op(p, "pay-p2", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "VOIDED");
	json_decref(v);
	/* A declined one: nothing to void. */
	v = op(p, "pay-p3", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "DECLINED");
	json_decref(v);
	/* The payment's own POST then answers with the recorded outcome. */
	v = pay(p, "pay-p", 640, "tok_visa", 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "intents"), 3);
	char ev[256];
	events_of(p, "pay-p", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized payment.captured");
	events_of(p, "pay-p2", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized payment.voided");
}

/* Without a secret key nothing is sent: 503, the payment PENDING. */
static void test_not_configured(void **state)
{
	pfix *p = *state;
	p->f->def->destroy(p->f->eng);
	assert_int_equal(config_set(p->f->config, "stripe.secret_key", ""), 0);
	p->f->eng = efix_create_engine(p->f);
	json_t *v = pay(p, "pay-n", 100, "tok_visa", 503);
	efix_assert_error(v, "unavailable", "status", "PENDING");
	assert_int_equal(simfix_nseen(p->sim), 0);
	assert_int_equal(config_set(p->f->config, "stripe.secret_key", KEY), 0);
	pfix_timeout(p, "2000");
	v = pay(p, "pay-n", 100, "tok_visa", 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	json_decref(v);
}

/* ---- capture, void, refund ----------------------------------------------------------------- */

static void test_capture_and_refunds(void **state)
{
	pfix *p = *state;
	json_decref(pay(p, "pay-c", 1000, "tok_visa", 201));
	json_t *v = op(p, "pay-c", "capture", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	assert_int_equal(jint(v, "captured_cents"), 1000);
	json_decref(v);
	const simfix_seen *s = simfix_last(p->sim);
	assert_string_equal(s->idem, "pay-c-capture");
	/* Again: the same, and no second capture. */
	v = op(p, "pay-c", "capture", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "captures"), 1);
	expect_error(p, "POST", "/v1/payments/pay-c/void", NULL, 409, "conflict", "status",
		     "CAPTURED");

	/* A partial refund without an id, then one with an id, repeated. */
	v = op(p, "pay-c", "refund", "{\"amount_cents\":300}", 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	assert_int_equal(jint(v, "refunded_cents"), 300);
	json_decref(v);
	assert_string_equal(simfix_last(p->sim)->idem, "pay-c-refund-auto-1");
	v = op(p, "pay-c", "refund", "{\"amount_cents\":200,\"refund_id\":\"r-2\"}", 200);
	assert_int_equal(jint(v, "refunded_cents"), 500);
	json_decref(v);
	assert_string_equal(simfix_last(p->sim)->idem, "pay-c-refund-r-2");
	v = op(p, "pay-c", "refund", "{\"amount_cents\":200,\"refund_id\":\"r-2\"}", 200);
	assert_int_equal(jint(v, "refunded_cents"), 500);
	json_decref(v);
	v = op(p, "pay-c", "refund", "{\"refund_id\":\"r-2\"}", 200);
	assert_int_equal(jint(v, "refunded_cents"), 500);
	json_decref(v);
	expect_error(p, "POST", "/v1/payments/pay-c/refund",
		     "{\"amount_cents\":201,\"refund_id\":\"r-2\"}", 422, "idempotency_mismatch",
		     "refund_id", "r-2");
	assert_int_equal(simfix_stat(p->sim, "refunds"), 2);
	/* More than is left. */
	v = op(p, "pay-c", "refund", "{\"amount_cents\":501}", 409);
	assert_int_equal(jint(json_object_get(json_object_get(v, "error"), "details"),
			      "refundable_cents"),
			 500);
	json_decref(v);
	/* The rest: REFUNDED; again: the same; with an amount: nothing left. */
	v = op(p, "pay-c", "refund", NULL, 200);
	assert_string_equal(jstr(v, "status"), "REFUNDED");
	assert_int_equal(jint(v, "refunded_cents"), 1000);
	json_decref(v);
	v = op(p, "pay-c", "refund", "", 200);
	assert_string_equal(jstr(v, "status"), "REFUNDED");
	json_decref(v);
	expect_error(p, "POST", "/v1/payments/pay-c/refund", "{\"amount_cents\":1}", 409,
		     "conflict", "status", "REFUNDED");
	expect_error(p, "POST", "/v1/payments/pay-c/refund", "{\"refund_id\":\"r-9\"}", 409,
		     "conflict", "status", "REFUNDED");
	v = op(p, "pay-c", "capture", NULL, 200);
	assert_string_equal(jstr(v, "status"), "REFUNDED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "refunds"), 3);
	assert_int_equal(simfix_stat(p->sim, "refunded_amount"), 1000);

	v = op(p, "pay-c", "", NULL, 200);
	json_t *rf = json_object_get(v, "refunds");
	assert_int_equal(json_array_size(rf), 3);
	assert_string_equal(jstr(json_array_get(rf, 0), "refund_id"), "auto-1");
	assert_int_equal(jint(json_array_get(rf, 0), "amount_cents"), 300);
	assert_memory_equal(jstr(json_array_get(rf, 0), "provider_ref"), "re_", 3);
	assert_string_equal(jstr(json_array_get(rf, 1), "refund_id"), "r-2");
	assert_string_equal(jstr(json_array_get(rf, 2), "refund_id"), "auto-3");
	assert_int_equal(jint(json_array_get(rf, 2), "amount_cents"), 500);
	json_decref(v);
	char ev[256];
	events_of(p, "pay-c", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized payment.captured payment.refunded "
				"payment.refunded payment.refunded");
}

static void test_void_and_illegal_moves(void **state)
{
	pfix *p = *state;
	json_decref(pay(p, "pay-v", 450, "tok_visa", 201));
	/* Not captured: a refund is refused (void it). */
	expect_error(p, "POST", "/v1/payments/pay-v/refund", NULL, 409, "conflict", "status",
		     "AUTHORIZED");
	json_t *v = op(p, "pay-v", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "VOIDED");
	json_decref(v);
	assert_string_equal(simfix_last(p->sim)->idem, "pay-v-void");
	v = op(p, "pay-v", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "VOIDED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->sim, "cancels"), 1);
	expect_error(p, "POST", "/v1/payments/pay-v/capture", NULL, 409, "conflict", "status",
		     "VOIDED");
	expect_error(p, "POST", "/v1/payments/pay-v/refund", "{\"amount_cents\":5}", 409,
		     "conflict", "status", "VOIDED");
	assert_int_equal(simfix_stat(p->sim, "captures"), 0);
	char ev[256];
	events_of(p, "pay-v", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized payment.voided");

	/* Unknown payments. */
	expect_error(p, "GET", "/v1/payments/nope", NULL, 404, "not_found", "payment_id", "nope");
	expect_error(p, "POST", "/v1/payments/nope/capture", NULL, 404, "not_found", "payment_id",
		     "nope");
	expect_error(p, "POST", "/v1/payments/nope/void", NULL, 404, "not_found", NULL, NULL);
	expect_error(p, "POST", "/v1/payments/nope/refund", NULL, 404, "not_found", NULL, NULL);
	expect_error(p, "GET", "/v1/payments/bad%20id", NULL, 404, "not_found", NULL, NULL);
}

/* The provider voided an intent behind this service's back: a capture
 * learns it, records it, and is refused. */
static void test_reconcile_voided(void **state)
{
	pfix *p = *state;
	json_t *v = pay(p, "pay-x", 800, "tok_visa", 201);
	char path[128];
	snprintf(path, sizeof(path), "/v1/payment_intents/%s/cancel", jstr(v, "provider_ref"));
	json_decref(v);
	/* Straight to the simulator, as the Stripe dashboard would. */
	msg_req req;
	msg_resp resp;
	assert_int_equal(msg_req_init(&req, "POST", path), 0);
	assert_int_equal(msg_req_add_header(&req, "Authorization", "Bearer " KEY), 0);
	assert_int_equal(msg_req_add_header(&req, "Idempotency-Key", "dashboard-1"), 0);
	assert_int_equal(
		msg_req_add_header(&req, "Content-Type", "application/x-www-form-urlencoded"), 0);
	msg_resp_init(&resp);
	assert_int_equal(simfix_call(NULL, p->sim->url, &req, &resp, 2000), 0);
	assert_int_equal(resp.status, 200);
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	expect_error(p, "POST", "/v1/payments/pay-x/capture", NULL, 409, "conflict", "status",
		     "VOIDED");
	expect_status(p, "pay-x", "VOIDED");
	char ev[256];
	events_of(p, "pay-x", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized payment.voided");
}

/* ---- the state machine ------------------------------------------------------------------- */

static void test_state_machine(void **state)
{
	(void)state;
	static const char *const names[] = { "PENDING", "AUTHORIZED", "DECLINED", "FAILED",
					     "CAPTURED", "VOIDED", "REFUNDED" };
	for (int i = 0; i < PAYMENT_NSTATES; i++) {
		assert_string_equal(payment_state_name(i), names[i]);
		assert_int_equal(payment_state_parse(names[i]), i);
	}
	assert_string_equal(payment_state_name(-1), "?");
	assert_string_equal(payment_state_name(PAYMENT_NSTATES), "?");
	assert_int_equal(payment_state_parse("authorized"), -1);
	assert_int_equal(payment_state_parse(NULL), -1);
	/* Exactly these edges. */
	int legal = 0;
	for (int a = 0; a < PAYMENT_NSTATES; a++)
		for (int b = 0; b < PAYMENT_NSTATES; b++)
			if (payment_state_edge(a, b) == 0)
				legal++;
			else
				assert_int_equal(payment_state_edge(a, b), ERR_STATE);
	assert_int_equal(legal, 7);
	assert_int_equal(payment_state_edge(PAYMENT_PENDING, PAYMENT_AUTHORIZED), 0);
	assert_int_equal(payment_state_edge(PAYMENT_PENDING, PAYMENT_DECLINED), 0);
	assert_int_equal(payment_state_edge(PAYMENT_PENDING, PAYMENT_FAILED), 0);
	assert_int_equal(payment_state_edge(PAYMENT_AUTHORIZED, PAYMENT_CAPTURED), 0);
	assert_int_equal(payment_state_edge(PAYMENT_AUTHORIZED, PAYMENT_VOIDED), 0);
	/* The provider declined the capture (PayPal's DECLINED capture). */
	assert_int_equal(payment_state_edge(PAYMENT_AUTHORIZED, PAYMENT_DECLINED), 0);
	assert_int_equal(payment_state_edge(PAYMENT_CAPTURED, PAYMENT_REFUNDED), 0);
	assert_int_equal(payment_state_edge(PAYMENT_VOIDED, PAYMENT_CAPTURED), ERR_STATE);
	assert_int_equal(payment_state_edge(PAYMENT_PENDING, PAYMENT_CAPTURED), ERR_STATE);
	assert_int_equal(payment_state_edge(-1, PAYMENT_CAPTURED), ERR_STATE);
}

/* ---- who may call ----------------------------------------------------------------------- */

static void test_auth(void **state)
{
	pfix *p = *state;
	char *b = pay_body("pay-a", "ord-a", 100, "tok_visa");
	static const char *const routes[][2] = {
		{ "POST", "/v1/payments" },	       { "GET", "/v1/payments/pay-a" },
		{ "POST", "/v1/payments/pay-a/capture" }, { "POST", "/v1/payments/pay-a/void" },
		{ "POST", "/v1/payments/pay-a/refund" },
	};
	char user[IDENTITY_MAX], forged[IDENTITY_MAX];
	efix_sign(p->f, IDENTITY_USER, "usr_1", NULL, user);
	efix_sign(p->f, IDENTITY_SERVICE, "order", "not-the-secret", forged);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const char *m = routes[i][0], *path = routes[i][1];
		const char *body = strcmp(path, "/v1/payments") == 0 ? b : NULL;
		msg_resp r;
		efix_do(p->f, NULL, m, path, NULL, NULL, NULL, body, &r);
		assert_int_equal(r.status, 401);
		efix_assert_error(efix_json(&r), "unauthenticated", NULL, NULL);
		msg_resp_clear(&r);
		efix_do(p->f, NULL, m, path, user, NULL, NULL, body, &r);
		assert_int_equal(r.status, 403);
		efix_assert_error(efix_json(&r), "forbidden", NULL, NULL);
		msg_resp_clear(&r);
		efix_do(p->f, NULL, m, path, forged, NULL, NULL, body, &r);
		assert_int_equal(r.status, 401);
		msg_resp_clear(&r);
		efix_do(p->f, NULL, m, path, NULL, "Bearer not-the-admin", NULL, body, &r);
		assert_int_equal(r.status, 401);
		msg_resp_clear(&r);
	}
	assert_int_equal(simfix_nseen(p->sim), 0);
	/* The admin token (operators' tools) is let in. */
	json_t *v = efix_expect(p->f, "POST", "/v1/payments", NULL, ADMIN, b, 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	json_decref(v);
	json_decref(efix_expect(p->f, "GET", "/v1/payments/pay-a", NULL, ADMIN, NULL, 200));
	free(b);
}

/* ---- bad input ------------------------------------------------------------------------- */

static void test_bad_input(void **state)
{
	pfix *p = *state;
	static const struct {
		const char *body, *field;
	} bad[] = {
		{ "{\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\",\"method\":\"card\","
		  "\"token\":\"tok_visa\"}",
		  "payment_id" },
		{ "{\"payment_id\":7,\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "payment_id" },
		{ "{\"payment_id\":\"a b\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "payment_id" },
		{ "{\"payment_id\":\"\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "payment_id" },
		{ "{\"payment_id\":\"p\",\"amount_cents\":1,\"currency\":\"USD\",\"method\":\"card\","
		  "\"token\":\"tok_visa\"}",
		  "order_id" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o/1\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "order_id" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"currency\":\"USD\",\"method\":\"card\","
		  "\"token\":\"tok_visa\"}",
		  "amount_cents" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":0,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "amount_cents" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":-5,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "amount_cents" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1.5,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "amount_cents" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":\"10\",\"currency\":"
		  "\"USD\",\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "amount_cents" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":100000000,\"currency\":"
		  "\"USD\",\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "amount_cents" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"method\":\"card\","
		  "\"token\":\"tok_visa\"}",
		  "currency" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"usd\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "currency" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"US\","
		  "\"method\":\"card\",\"token\":\"tok_visa\"}",
		  "currency" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"token\":\"tok_visa\"}",
		  "method" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"bitcoin\",\"token\":\"tok_visa\"}",
		  "method" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"card\"}",
		  "token" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"\"}",
		  "token" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":\"tok visa\"}",
		  "token" },
		{ "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,\"currency\":\"USD\","
		  "\"method\":\"card\",\"token\":[\"tok_visa\"]}",
		  "token" },
		{ "[]", "body" },
		{ "{\"payment_id\":", "body" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(p, "POST", "/v1/payments", bad[i].body, 400, "invalid_argument", "field",
			     bad[i].field);
	/* An unknown method names the allowed ones. */
	json_t *v = expect(p, "POST", "/v1/payments",
			   "{\"payment_id\":\"p\",\"order_id\":\"o\",\"amount_cents\":1,"
			   "\"currency\":\"USD\",\"method\":\"cash\",\"token\":\"x\"}",
			   400);
	json_t *e = json_object_get(v, "error");
	assert_string_equal(jstr(json_object_get(e, "details"), "field"), "method");
	assert_non_null(strstr(jstr(e, "message"), "\"card\""));
	assert_non_null(strstr(jstr(e, "message"), "\"paypal\""));
	json_decref(v);
	/* Not JSON at all. */
	char ident[IDENTITY_MAX];
	efix_sign(p->f, IDENTITY_SERVICE, "order", NULL, ident);
	msg_resp r;
	efix_do(p->f, NULL, "POST", "/v1/payments", ident, NULL, "text/plain", "hello", &r);
	assert_int_equal(r.status, 415);
	msg_resp_clear(&r);

	/* Refund bodies. */
	json_decref(pay(p, "pay-b", 100, "tok_visa", 201));
	json_decref(op(p, "pay-b", "capture", NULL, 200));
	static const struct {
		const char *body, *field;
	} rbad[] = {
		{ "{\"amount_cents\":0}", "amount_cents" },
		{ "{\"amount_cents\":\"5\"}", "amount_cents" },
		{ "{\"refund_id\":\"auto-1\"}", "refund_id" },
		{ "{\"refund_id\":\"a b\"}", "refund_id" },
		{ "{\"refund_id\":5}", "refund_id" },
		{ "nope", "body" },
	};
	for (size_t i = 0; i < sizeof(rbad) / sizeof(rbad[0]); i++)
		expect_error(p, "POST", "/v1/payments/pay-b/refund", rbad[i].body, 400,
			     "invalid_argument", "field", rbad[i].field);
	/* None of it reached Stripe but the one payment and its capture. */
	assert_int_equal(simfix_nseen(p->sim), 2);
	assert_int_equal(simfix_stat(p->sim, "refunds"), 0);
	/* Wrong methods on known routes. */
	efix_sign(p->f, IDENTITY_SERVICE, "order", NULL, ident);
	efix_do(p->f, NULL, "DELETE", "/v1/payments/pay-b", ident, NULL, NULL, NULL, &r);
	assert_int_equal(r.status, 405);
	msg_resp_clear(&r);
}

/* ---- PayPal ------------------------------------------------------------------------------ */

static json_t *pp_pay(pfix *p, const char *id, long long amount, const char *token, int want)
{
	char *b = NULL;
	assert_true(asprintf(&b,
			     "{\"payment_id\":\"%s\",\"order_id\":\"ord-pp\",\"amount_cents\":%lld,"
			     "\"currency\":\"USD\",\"method\":\"paypal\",\"token\":\"%s\"}",
			     id, amount, token) > 0);
	json_t *v = expect(p, "POST", "/v1/payments", b, want);
	free(b);
	return v;
}

static size_t refunds_of(pfix *p, const char *id)
{
	json_t *v = op(p, id, "", NULL, 200);
	size_t n = json_array_size(json_object_get(v, "refunds"));
	json_decref(v);
	return n;
}

static void test_paypal_payment(void **state)
{
	pfix *p = *state;
	json_t *v = pp_pay(p, "pp-1", 2599, "paypal_ok", 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	assert_string_equal(jstr(v, "provider"), "paypal");
	assert_string_equal(jstr(v, "method"), "paypal");
	assert_int_equal(strlen(jstr(v, "provider_ref")), 17); /* the authorisation */
	json_decref(v);
	/* PayPal's calls, with ids derived from the payment; Stripe untouched */
	assert_int_equal(simfix_nseen(p->pp), 3);
	assert_string_equal(p->pp->seen[0].path, "/v1/oauth2/token");
	assert_string_equal(p->pp->seen[1].request_id, "pp-1-authorize.order");
	assert_string_equal(p->pp->seen[2].request_id, "pp-1-authorize");
	assert_non_null(strstr(p->pp->seen[1].body, "\"value\":\"25.99\""));
	assert_non_null(strstr(p->pp->seen[1].body, "\"custom_id\":\"pp-1\""));
	assert_int_equal(simfix_nseen(p->sim), 0);

	v = op(p, "pp-1", "capture", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	assert_int_equal(jint(v, "captured_cents"), 2599);
	assert_int_equal(strlen(jstr(v, "capture_ref")), 17);
	json_decref(v);
	assert_string_equal(simfix_last(p->pp)->request_id, "pp-1-capture");
	v = op(p, "pp-1", "refund", "{\"amount_cents\":599}", 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	assert_int_equal(jint(v, "refunded_cents"), 599);
	json_decref(v);
	assert_string_equal(simfix_last(p->pp)->request_id, "pp-1-refund-auto-1");
	assert_non_null(strstr(simfix_last(p->pp)->body, "\"value\":\"5.99\""));
	/* more than is left is refused here, before PayPal */
	int before = simfix_nseen(p->pp);
	v = op(p, "pp-1", "refund", "{\"amount_cents\":2001}", 409);
	assert_int_equal(jint(json_object_get(json_object_get(v, "error"), "details"),
			      "refundable_cents"),
			 2000);
	json_decref(v);
	assert_int_equal(simfix_nseen(p->pp), before);
	/* an admin may refund (the rest) */
	msg_resp r;
	efix_do(p->f, NULL, "POST", "/v1/payments/pp-1/refund", NULL, ADMIN, NULL, "{}", &r);
	assert_int_equal(r.status, 200);
	v = efix_json(&r);
	assert_string_equal(jstr(v, "status"), "REFUNDED");
	assert_int_equal(jint(v, "refunded_cents"), 2599);
	json_decref(v);
	msg_resp_clear(&r);
	assert_int_equal(refunds_of(p, "pp-1"), 2);
	assert_int_equal(simfix_stat(p->pp, "refunded_amount"), 2599);
	assert_int_equal(simfix_stat(p->pp, "captures"), 1);
	assert_int_equal(simfix_stat(p->pp, "tokens_issued"), 1);
	char ev[256];
	events_of(p, "pp-1", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized payment.captured payment.refunded "
				"payment.refunded");
	/* a void */
	json_decref(pp_pay(p, "pp-2", 100, "paypal_ok", 201));
	v = op(p, "pp-2", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "VOIDED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->pp, "voids"), 1);
	/* a card payment beside it goes to Stripe */
	json_decref(pay(p, "card-1", 100, "tok_visa", 201));
	json_decref(op(p, "card-1", "capture", NULL, 200));
	assert_int_equal(simfix_stat(p->sim, "captures"), 1);
	assert_int_equal(simfix_stat(p->pp, "captures"), 1);
}

static void test_paypal_declines(void **state)
{
	pfix *p = *state;
	json_t *v = pp_pay(p, "pp-d1", 100, "paypal_declined", 201);
	assert_string_equal(jstr(v, "status"), "DECLINED");
	assert_string_equal(jstr(v, "decline_code"), "instrument_declined");
	json_decref(v);
	v = pp_pay(p, "pp-d2", 100, "paypal_denied", 201);
	assert_string_equal(jstr(v, "status"), "DECLINED");
	assert_string_equal(jstr(v, "decline_code"), "authorization_denied");
	json_decref(v);
	/* declined at capture: DECLINED, nothing held, nothing to refund */
	json_decref(pp_pay(p, "pp-d3", 100, "paypal_capture_declined", 201));
	expect_error(p, "POST", "/v1/payments/pp-d3/capture", NULL, 409, "conflict", "status",
		     "DECLINED");
	v = op(p, "pp-d3", "", NULL, 200);
	assert_string_equal(jstr(v, "decline_code"), "capture_declined");
	json_decref(v);
	v = op(p, "pp-d3", "void", NULL, 200);
	assert_string_equal(jstr(v, "status"), "DECLINED");
	json_decref(v);
	expect_error(p, "POST", "/v1/payments/pp-d3/refund", NULL, 409, "conflict", "status",
		     "DECLINED");
	char ev[256];
	events_of(p, "pp-d3", ev, sizeof(ev));
	assert_string_equal(ev, "payment.authorized payment.declined");
	/* a token PayPal does not know: refused, FAILED */
	v = pp_pay(p, "pp-r", 100, "tok_visa", 422);
	efix_assert_error(v, "provider_rejected", "provider_code", "INVALID_PARAMETER_VALUE");
	expect_status(p, "pp-r", "FAILED");
}

/* Replies lost: a latency longer than the payment's PayPal timeout. */
static void test_paypal_lost_replies(void **state)
{
	pfix *p = *state;
	pfix_timeout(p, "300");
	json_decref(pp_pay(p, "pp-l", 700, "paypal_ok", 201));
	simfix_fault_on(p->pp, "paypal.capture", "{\"latency_ms\":900}");
	json_t *v = op(p, "pp-l", "capture", NULL, 503);
	efix_assert_error(v, "unavailable", "status", "AUTHORIZED");
	assert_int_equal(simfix_stat(p->pp, "captures"), 1);
	simfix_fault_on(p->pp, "paypal.capture", NULL);
	v = op(p, "pp-l", "capture", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->pp, "captures"), 1);
	assert_int_equal(simfix_stat(p->pp, "replays"), 1);

	/* A lost capture, then a void: PayPal says it was captured, so it is
	 * recorded CAPTURED (without the capture's id) and the void refused;
	 * the refund learns the capture by asking for it again. */
	json_decref(pp_pay(p, "pp-l2", 800, "paypal_ok", 201));
	simfix_fault_on(p->pp, "paypal.capture", "{\"latency_ms\":900}");
	json_decref(op(p, "pp-l2", "capture", NULL, 503));
	simfix_fault_on(p->pp, "paypal.capture", NULL);
	expect_error(p, "POST", "/v1/payments/pp-l2/void", NULL, 409, "conflict", "status",
		     "CAPTURED");
	v = op(p, "pp-l2", "", NULL, 200);
	assert_null(json_object_get(v, "capture_ref"));
	json_decref(v);
	v = op(p, "pp-l2", "refund", NULL, 200);
	assert_string_equal(jstr(v, "status"), "REFUNDED");
	assert_int_equal(strlen(jstr(v, "capture_ref")), 17);
	json_decref(v);
	assert_int_equal(simfix_stat(p->pp, "captures"), 2);

	/* A lost authorisation: PENDING, then resolved with one order. */
	simfix_fault_on(p->pp, "paypal.authorize", "{\"latency_ms\":900}");
	v = pp_pay(p, "pp-l3", 900, "paypal_ok", 503);
	efix_assert_error(v, "unavailable", "status", "PENDING");
	simfix_fault_on(p->pp, "paypal.authorize", NULL);
	v = pp_pay(p, "pp-l3", 900, "paypal_ok", 201);
	assert_string_equal(jstr(v, "status"), "AUTHORIZED");
	json_decref(v);
	assert_int_equal(simfix_stat(p->pp, "orders"), 3);
	assert_int_equal(simfix_stat(p->pp, "authorizations"), 3);
	/* PayPal down: 503, PENDING; back: one authorisation */
	simfix_fault(p->pp, "{\"outage\":true}");
	json_decref(pp_pay(p, "pp-o", 100, "paypal_ok", 503));
	simfix_fault(p->pp, NULL);
	json_decref(pp_pay(p, "pp-o", 100, "paypal_ok", 201));
	assert_int_equal(simfix_stat(p->pp, "authorizations"), 4);
}

/* ---- webhooks --------------------------------------------------------------------------------- */

/* POST /v1/webhooks/<provider> with the headers (name, value, ..., NULL)
 * and body (len bytes), no identity. */
static json_t *hook(pfix *p, const char *provider, const char *const *headers, const char *body,
		    size_t len, int *status)
{
	char path[64];
	snprintf(path, sizeof(path), "/v1/webhooks/%s", provider);
	msg_req req;
	assert_int_equal(msg_req_init(&req, "POST", path), 0);
	for (int i = 0; headers && headers[i]; i += 2)
		assert_int_equal(msg_req_add_header(&req, headers[i], headers[i + 1]), 0);
	assert_int_equal(msg_req_add_header(&req, "Content-Type", "application/json"), 0);
	assert_int_equal(msg_req_set_body(&req, body, len), 0);
	msg_resp r;
	msg_resp_init(&r);
	p->f->def->handle(p->f->eng, &req, &r);
	msg_req_clear(&req);
	*status = r.status;
	json_t *v = efix_json(&r);
	msg_resp_clear(&r);
	return v;
}

/* A Stripe webhook signed at t with secret; the status; the answer's
 * outcome copied into outcome (or "" on an error). */
static int stripe_hook(pfix *p, const char *body, int64_t t, const char *secret, char *outcome)
{
	char sig[WEBHOOK_SIG_MAX + 32];
	assert_int_equal(webhook_stripe_sign(secret, t, body, strlen(body), sig, sizeof(sig)), 0);
	const char *h[] = { WEBHOOK_STRIPE_HEADER, sig, NULL };
	int status = 0;
	json_t *v = hook(p, "stripe", h, body, strlen(body), &status);
	const char *o = json_string_value(json_object_get(v, "outcome"));
	snprintf(outcome, 32, "%s", o ? o : "");
	json_decref(v);
	return status;
}

static char *charge_refunded(const char *evt, const char *pi, const char *re, long amount)
{
	char *b = NULL;
	assert_true(asprintf(&b,
			     "{\"id\":\"%s\",\"object\":\"event\",\"type\":\"charge.refunded\","
			     "\"data\":{\"object\":{\"id\":\"ch_1\",\"object\":\"charge\","
			     "\"payment_intent\":\"%s\",\"amount_captured\":1000,\"refunds\":{"
			     "\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"refund\","
			     "\"amount\":%ld,\"status\":\"succeeded\"}]}}}}",
			     evt, pi, re, amount) > 0);
	return b;
}

static long long refunded_of(pfix *p, const char *id)
{
	json_t *v = op(p, id, "", NULL, 200);
	long long n = jint(v, "refunded_cents");
	json_decref(v);
	return n;
}

/* The table of the issue: valid; tampered body; wrong secret; missing v1;
 * stale timestamp; two v1 values one right; the same event twice. */
static void test_stripe_webhook_table(void **state)
{
	pfix *p = *state;
	json_t *v = pay(p, "pay-w", 1000, "tok_visa", 201);
	char pi[64];
	snprintf(pi, sizeof(pi), "%s", jstr(v, "provider_ref"));
	json_decref(v);
	json_decref(op(p, "pay-w", "capture", NULL, 200));
	int64_t now = EFIX_T0 / 1000000;
	char out[32];
	char *ev = charge_refunded("evt_1", pi, "re_w1", 300);
	/* valid */
	assert_int_equal(stripe_hook(p, ev, now, ST_WHSEC, out), 200);
	assert_string_equal(out, "applied");
	assert_int_equal(refunded_of(p, "pay-w"), 300);
	/* the same event again: one effect */
	assert_int_equal(stripe_hook(p, ev, now + 5, ST_WHSEC, out), 200);
	assert_string_equal(out, "duplicate");
	assert_int_equal(refunded_of(p, "pay-w"), 300);
	assert_int_equal(refunds_of(p, "pay-w"), 1);
	/* tampered body: the signature of another */
	char sig[WEBHOOK_SIG_MAX + 32];
	assert_int_equal(webhook_stripe_sign(ST_WHSEC, now, ev, strlen(ev), sig, sizeof(sig)), 0);
	char *tampered = charge_refunded("evt_9", pi, "re_w9", 700);
	const char *h[] = { WEBHOOK_STRIPE_HEADER, sig, NULL };
	int status = 0;
	v = hook(p, "stripe", h, tampered, strlen(tampered), &status);
	assert_int_equal(status, 401);
	efix_assert_error(v, "unauthenticated", "provider", "stripe");
	/* wrong secret */
	assert_int_equal(stripe_hook(p, tampered, now, "whsec_not_ours", out), 401);
	/* missing v1: only v0 */
	char v0[WEBHOOK_SIG_MAX + 32];
	snprintf(v0, sizeof(v0), "t=%lld,v0=%s", (long long)now, strstr(sig, "v1=") + 3);
	const char *h0[] = { WEBHOOK_STRIPE_HEADER, v0, NULL };
	json_decref(hook(p, "stripe", h0, ev, strlen(ev), &status));
	assert_int_equal(status, 401);
	/* no header */
	json_decref(hook(p, "stripe", NULL, tampered, strlen(tampered), &status));
	assert_int_equal(status, 401);
	/* stale timestamp */
	assert_int_equal(stripe_hook(p, tampered, now - 301, ST_WHSEC, out), 401);
	assert_int_equal(refunded_of(p, "pay-w"), 300);
	/* two v1 values, one right */
	char *ev2 = charge_refunded("evt_2", pi, "re_w2", 200);
	char right[WEBHOOK_SIG_MAX + 32], wrong[WEBHOOK_SIG_MAX + 32], two[2 * WEBHOOK_SIG_MAX + 64];
	assert_int_equal(webhook_stripe_sign(ST_WHSEC, now, ev2, strlen(ev2), right, sizeof(right)), 0);
	assert_int_equal(webhook_stripe_sign("whsec_rolled", now, ev2, strlen(ev2), wrong,
					     sizeof(wrong)),
			 0);
	snprintf(two, sizeof(two), "%s,%s", wrong, strstr(right, "v1="));
	const char *h2[] = { WEBHOOK_STRIPE_HEADER, two, NULL };
	v = hook(p, "stripe", h2, ev2, strlen(ev2), &status);
	assert_int_equal(status, 200);
	assert_string_equal(jstr(v, "outcome"), "applied");
	assert_string_equal(jstr(v, "payment_id"), "pay-w");
	json_decref(v);
	assert_int_equal(refunded_of(p, "pay-w"), 500);
	/* a refund that was not (yet) successful changes nothing */
	char *pending = NULL;
	assert_true(asprintf(&pending,
			     "{\"id\":\"evt_3\",\"type\":\"refund.updated\",\"data\":{\"object\":{"
			     "\"id\":\"re_w3\",\"object\":\"refund\",\"amount\":100,\"status\":"
			     "\"pending\",\"payment_intent\":\"%s\"}}}",
			     pi) > 0);
	assert_int_equal(stripe_hook(p, pending, now, ST_WHSEC, out), 200);
	assert_string_equal(out, "ignored");
	free(pending);
	/* ... and once it succeeded, the rest: REFUNDED */
	assert_true(asprintf(&pending,
			     "{\"id\":\"evt_4\",\"type\":\"refund.updated\",\"data\":{\"object\":{"
			     "\"id\":\"re_w3\",\"object\":\"refund\",\"amount\":500,\"status\":"
			     "\"succeeded\",\"payment_intent\":\"%s\"}}}",
			     pi) > 0);
	assert_int_equal(stripe_hook(p, pending, now, ST_WHSEC, out), 200);
	assert_string_equal(out, "applied");
	free(pending);
	expect_status(p, "pay-w", "REFUNDED");
	char evs[256];
	events_of(p, "pay-w", evs, sizeof(evs));
	assert_string_equal(evs, "payment.authorized payment.captured payment.refunded "
				 "payment.refunded payment.refunded");
	/* a payment nobody here knows */
	char *unknown = charge_refunded("evt_5", "pi_unknown", "re_x", 100);
	assert_int_equal(stripe_hook(p, unknown, now, ST_WHSEC, out), 200);
	assert_string_equal(out, "unknown_payment");
	/* a capture made at Stripe (its dashboard): CAPTURED here */
	json_decref(pay(p, "pay-w2", 800, "tok_visa", 201));
	v = op(p, "pay-w2", "", NULL, 200);
	char *captured = NULL;
	assert_true(asprintf(&captured,
			     "{\"id\":\"evt_6\",\"type\":\"payment_intent.succeeded\",\"data\":{"
			     "\"object\":{\"id\":\"%s\",\"object\":\"payment_intent\","
			     "\"amount_received\":600,\"status\":\"succeeded\"}}}",
			     jstr(v, "provider_ref")) > 0);
	json_decref(v);
	assert_int_equal(stripe_hook(p, captured, now, ST_WHSEC, out), 200);
	assert_string_equal(out, "applied");
	v = op(p, "pay-w2", "", NULL, 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	assert_int_equal(jint(v, "captured_cents"), 600);
	json_decref(v);
	int64_t n = 0;
	assert_int_equal(store_intf(p->f->store, &n, "SELECT COUNT(*) FROM webhook_events", ""), 0);
	assert_int_equal(n, 6);
	free(captured);
	free(unknown);
	free(ev);
	free(ev2);
	free(tampered);
}

/* Bodies that are not events: 400 or 413, never a crash; and an endpoint
 * without a secret refuses everything. */
static void test_webhook_bad_bodies(void **state)
{
	pfix *p = *state;
	int64_t now = EFIX_T0 / 1000000;
	char out[32];
	static const char *const bad[] = { "not json", "[1,2]", "{\"type\":\"x\"}",
					   "{\"id\":\"evt\"}",
					   "{\"id\":\"evt\",\"type\":\"charge.refunded\"}",
					   "{\"id\":5,\"type\":\"charge.refunded\",\"data\":{}}",
					   "{\"id\":\"evt\",\"type\":\"charge.refunded\",\"data\":{"
					   "\"object\":{\"refunds\":{\"data\":[]}}}}",
					   "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(stripe_hook(p, bad[i], now, ST_WHSEC, out), 400);
	/* too deep */
	char deep[200] = "{\"id\":\"e\",\"type\":\"t\",\"data\":";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	assert_int_equal(stripe_hook(p, deep, now, ST_WHSEC, out), 400);
	/* huge */
	size_t big = 300 * 1024;
	char *huge = malloc(big + 1);
	memset(huge, ' ', big);
	huge[0] = '{';
	huge[big - 1] = '}';
	huge[big] = '\0';
	int status = 0;
	json_decref(hook(p, "stripe", NULL, huge, big, &status));
	assert_int_equal(status, 413);
	json_decref(hook(p, "paypal", NULL, huge, big, &status));
	assert_int_equal(status, 413);
	free(huge);
	/* PayPal's: not JSON, no resource */
	char tm[32], sig[WEBHOOK_SIG_MAX];
	webhook_format_time(now, tm, sizeof(tm));
	const char *pb[] = { "nope", "{\"id\":\"WH-1\",\"event_type\":\"PAYMENT.CAPTURE.REFUNDED\"}",
			     "{\"id\":\"WH-1\",\"event_type\":\"PAYMENT.CAPTURE.REFUNDED\","
			     "\"resource\":{\"id\":\"R1\"}}" };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(webhook_paypal_sign(PP_WHSEC, "t-1", tm, pb[i], strlen(pb[i]), sig,
						     sizeof(sig)),
				 0);
		const char *h[] = { WEBHOOK_PAYPAL_ID_HEADER, "t-1", WEBHOOK_PAYPAL_TIME_HEADER, tm,
				    WEBHOOK_PAYPAL_ALGO_HEADER, "HMACSHA256",
				    WEBHOOK_PAYPAL_SIG_HEADER, sig, NULL };
		json_t *v = hook(p, "paypal", h, pb[i], strlen(pb[i]), &status);
		assert_int_equal(status, 400);
		efix_assert_error(v, "invalid_argument", NULL, NULL);
	}
	/* an engine without the secrets */
	p->f->def->destroy(p->f->eng);
	assert_int_equal(config_set(p->f->config, "stripe.webhook_secret", ""), 0);
	assert_int_equal(config_set(p->f->config, "paypal.webhook_secret", ""), 0);
	p->f->eng = efix_create_engine(p->f);
	json_t *v = hook(p, "stripe", NULL, "{}", 2, &status);
	assert_int_equal(status, 503);
	efix_assert_error(v, "unavailable", "provider", "stripe");
	json_decref(hook(p, "paypal", NULL, "{}", 2, &status));
	assert_int_equal(status, 503);
}

/* A PAYMENT.CAPTURE.REFUNDED for a capture, signed at t. */
static int paypal_hook(pfix *p, const char *evt, const char *cap, const char *refund,
		       const char *value, int64_t t, const char *secret, const char *algo,
		       char *outcome)
{
	char *b = NULL;
	assert_true(asprintf(&b,
			     "{\"id\":\"%s\",\"event_type\":\"PAYMENT.CAPTURE.REFUNDED\","
			     "\"resource_type\":\"refund\",\"resource\":{\"id\":\"%s\",\"status\":"
			     "\"COMPLETED\",\"amount\":{\"currency_code\":\"USD\",\"value\":\"%s\"},"
			     "\"links\":[{\"rel\":\"self\",\"href\":\"https://x/v2/payments/refunds/"
			     "%s\"},{\"rel\":\"up\",\"href\":\"https://x/v2/payments/captures/%s\"}]}}",
			     evt, refund, value, refund, cap) > 0);
	char tm[32], sig[WEBHOOK_SIG_MAX];
	webhook_format_time(t, tm, sizeof(tm));
	assert_int_equal(webhook_paypal_sign(secret, "sim-1", tm, b, strlen(b), sig, sizeof(sig)), 0);
	const char *h[] = { WEBHOOK_PAYPAL_ID_HEADER,	"sim-1", WEBHOOK_PAYPAL_TIME_HEADER, tm,
			    WEBHOOK_PAYPAL_ALGO_HEADER, algo,	 WEBHOOK_PAYPAL_SIG_HEADER,  sig,
			    NULL };
	int status = 0;
	json_t *v = hook(p, "paypal", h, b, strlen(b), &status);
	const char *o = json_string_value(json_object_get(v, "outcome"));
	snprintf(outcome, 32, "%s", o ? o : "");
	json_decref(v);
	free(b);
	return status;
}

static void test_paypal_webhook_table(void **state)
{
	pfix *p = *state;
	json_decref(pp_pay(p, "pp-w", 1000, "paypal_ok", 201));
	json_t *v = op(p, "pp-w", "capture", NULL, 200);
	char cap[32];
	snprintf(cap, sizeof(cap), "%s", jstr(v, "capture_ref"));
	json_decref(v);
	int64_t now = EFIX_T0 / 1000000;
	char out[32];
	assert_int_equal(paypal_hook(p, "WH-1", cap, "RF1", "3.00", now, PP_WHSEC, "HMACSHA256", out),
			 200);
	assert_string_equal(out, "applied");
	assert_int_equal(refunded_of(p, "pp-w"), 300);
	assert_int_equal(paypal_hook(p, "WH-1", cap, "RF1", "3.00", now, PP_WHSEC, "HMACSHA256", out),
			 200);
	assert_string_equal(out, "duplicate");
	/* another delivery of the same refund under a new event id: known */
	assert_int_equal(paypal_hook(p, "WH-2", cap, "RF1", "3.00", now, PP_WHSEC, "HMACSHA256", out),
			 200);
	assert_string_equal(out, "already");
	assert_int_equal(refunded_of(p, "pp-w"), 300);
	assert_int_equal(paypal_hook(p, "WH-3", cap, "RF2", "7.00", now, "not-the-secret",
				     "HMACSHA256", out),
			 401);
	assert_int_equal(paypal_hook(p, "WH-3", cap, "RF2", "7.00", now - 301, PP_WHSEC,
				     "HMACSHA256", out),
			 401);
	assert_int_equal(paypal_hook(p, "WH-3", cap, "RF2", "7.00", now, PP_WHSEC, "SHA256withRSA",
				     out),
			 401);
	assert_int_equal(refunded_of(p, "pp-w"), 300);
	/* more than is left: ignored, not a crash nor a negative balance */
	assert_int_equal(paypal_hook(p, "WH-4", cap, "RF3", "70.01", now, PP_WHSEC, "HMACSHA256", out),
			 200);
	assert_string_equal(out, "ignored");
	assert_int_equal(paypal_hook(p, "WH-5", cap, "RF2", "7.00", now, PP_WHSEC, "HMACSHA256", out),
			 200);
	assert_string_equal(out, "applied");
	expect_status(p, "pp-w", "REFUNDED");
	/* the provider of a capture must match: a Stripe event cannot touch it */
	char *ev = charge_refunded("evt_x", cap, "re_x", 100);
	assert_int_equal(stripe_hook(p, ev, now, ST_WHSEC, out), 200);
	assert_string_equal(out, "unknown_payment");
	free(ev);
}

/* ctx->call of the simulators in the next test: their webhooks go into the
 * payment engine, as through the gateway. */
static int to_payment(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		      int64_t timeout_ms)
{
	(void)timeout_ms;
	pfix *p = ud;
	assert_string_equal(target, "http://gateway.test");
	msg_req copy;
	assert_int_equal(msg_req_init(&copy, req->method, req->path), 0);
	for (int i = 0; i < req->nheaders; i++)
		assert_int_equal(msg_req_add_header(&copy, req->headers[i].name, req->headers[i].value),
				 0);
	assert_int_equal(msg_req_set_body(&copy, req->body, req->body_len), 0);
	p->f->def->handle(p->f->eng, &copy, resp);
	msg_req_clear(&copy);
	return 0;
}

static long long hook_count(pfix *p, const char *provider, const char *outcome)
{
	int64_t n = 0;
	assert_int_equal(store_intf(p->f->store, &n,
				    "SELECT COUNT(*) FROM webhook_events WHERE provider = ? AND "
				    "outcome = ?",
				    "tt", provider, outcome),
			 0);
	return n;
}

/* The simulators' own webhooks: a capture the platform made (already
 * known), a refund made from the provider's side (the payment marked
 * refunded), and a refund whose reply was lost but whose webhook came:
 * asked again, refunded once. */
static void test_webhooks_from_simulators(void **state)
{
	pfix *p = *state;
	/* The simulators sign with their real clocks; the engine checks on its. */
	clock_set(p->f->clock, clock_now(p->pp->clock));
	simfix *sims[2] = { p->pp, p->sim };
	const char *names[2] = { "paypal", "stripe" };
	for (int i = 0; i < 2; i++) {
		sims[i]->ctx.call = to_payment;
		sims[i]->ctx.call_ud = p;
		char path[64], body[128];
		snprintf(path, sizeof(path), "/admin/%s/webhook", names[i]);
		snprintf(body, sizeof(body), "{\"url\":\"http://gateway.test/v1/webhooks/%s\"}",
			 names[i]);
		json_decref(simfix_admin(sims[i], "PUT", path, body));
	}
	json_decref(pp_pay(p, "pp-s", 1500, "paypal_ok", 201));
	json_t *v = op(p, "pp-s", "capture", NULL, 200);
	char cap[64], body[128];
	snprintf(cap, sizeof(cap), "%s", jstr(v, "capture_ref"));
	json_decref(v);
	simfix_tick(p->pp);
	assert_int_equal(hook_count(p, "paypal", "already"), 1);
	/* refunded at PayPal's side */
	snprintf(body, sizeof(body), "{\"capture_id\":\"%s\",\"amount_cents\":500}", cap);
	json_decref(simfix_admin(p->pp, "POST", "/admin/paypal/refund", body));
	simfix_tick(p->pp);
	assert_int_equal(refunded_of(p, "pp-s"), 500);
	assert_int_equal(hook_count(p, "paypal", "applied"), 1);
	/* a refund whose reply is lost; its webhook comes first */
	pfix_timeout(p, "300");
	simfix_fault_on(p->pp, "paypal.refund", "{\"latency_ms\":900}");
	json_decref(op(p, "pp-s", "refund", "{\"amount_cents\":400}", 503));
	simfix_fault_on(p->pp, "paypal.refund", NULL);
	simfix_tick(p->pp);
	assert_int_equal(refunded_of(p, "pp-s"), 900);
	/* asked again, with the same key: PayPal's first refund, not a second */
	v = op(p, "pp-s", "refund", "{\"amount_cents\":400}", 200);
	assert_int_equal(jint(v, "refunded_cents"), 900);
	json_decref(v);
	assert_int_equal(simfix_stat(p->pp, "refunds"), 2);
	/* the next refund is a new one: the rest */
	v = op(p, "pp-s", "refund", NULL, 200);
	assert_string_equal(jstr(v, "status"), "REFUNDED");
	json_decref(v);
	simfix_tick(p->pp);
	assert_int_equal(simfix_stat(p->pp, "refunds"), 3);
	assert_int_equal(simfix_stat(p->pp, "refunded_amount"), 1500);
	v = op(p, "pp-s", "", NULL, 200);
	json_t *rf = json_object_get(v, "refunds");
	assert_int_equal(json_array_size(rf), 3);
	assert_string_equal(jstr(json_array_get(rf, 1), "refund_id"), "auto-1");
	assert_string_equal(jstr(json_array_get(rf, 2), "refund_id"), "auto-2");
	json_decref(v);
	assert_int_equal(hook_count(p, "paypal", "already"), 2);

	/* Stripe: captured here, refunded at Stripe */
	pfix_timeout(p, "2000");
	v = pay(p, "card-s", 1200, "tok_visa", 201);
	snprintf(body, sizeof(body), "{\"payment_intent\":\"%s\"}", jstr(v, "provider_ref"));
	json_decref(v);
	json_decref(op(p, "card-s", "capture", NULL, 200));
	json_decref(simfix_admin(p->sim, "POST", "/admin/stripe/refund", body));
	simfix_tick(p->sim);
	expect_status(p, "card-s", "REFUNDED");
	assert_int_equal(hook_count(p, "stripe", "already"), 1);
	assert_int_equal(hook_count(p, "stripe", "applied"), 1);
	v = simfix_admin(p->sim, "GET", "/admin/stripe/webhook", NULL);
	assert_int_equal(json_integer_value(json_object_get(v, "delivered")), 2);
	json_decref(v);
}

static int global_setup(void **state)
{
	(void)state;
	return http_client_global_init();
}

static int global_teardown(void **state)
{
	(void)state;
	http_client_global_cleanup();
	return 0;
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_approve),
		T(test_declines),
		T(test_provider_rejected),
		T(test_same_request_same_answer),
		cmocka_unit_test(test_concurrent_duplicates),
		T(test_outage_then_retry),
		T(test_lost_answer_one_charge),
		T(test_transient_capture_and_void),
		T(test_pending_resolved_first),
		T(test_not_configured),
		T(test_capture_and_refunds),
		T(test_void_and_illegal_moves),
		T(test_reconcile_voided),
		cmocka_unit_test(test_state_machine),
		T(test_auth),
		T(test_bad_input),
		T(test_paypal_payment),
		T(test_paypal_declines),
		T(test_paypal_lost_replies),
		T(test_stripe_webhook_table),
		T(test_webhook_bad_bodies),
		T(test_paypal_webhook_table),
		T(test_webhooks_from_simulators),
	};
#undef T
	return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
