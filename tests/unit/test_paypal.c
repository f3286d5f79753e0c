/* Tests for services/paypal, the PayPal adapter, against the PayPal
 * simulator on a loopback http_server (tests/unit/simfix) over libcurl:
 * each raw request checked against PayPal's documented shape (the OAuth2
 * token request with Basic credentials and its form body; the order, its
 * authorisation, capture, void and refund with Bearer, JSON and
 * PayPal-Request-Id); the access token fetched once and shared (also by
 * eight threads at once), refreshed before it expires and fetched again
 * when PayPal forgot it; the outcomes (declines of each test payer, a
 * capture DECLINED, refusals with PayPal's issue, faults 500/429/outage, a
 * closed port, bad credentials, no credentials); a capture whose reply is
 * lost (a latency longer than the timeout) asked again under the same
 * request id: captured once; request ids longer than PayPal allows; amounts
 * converted exactly both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thelp.h"
#include "core/err.h"
#include "net/http_client.h"
#include "services/paypal.h"
#include "sim/paypal_sim.h"

#include "simfix.h"

#define SIM_ADMIN "sim-admin"
#define KEY "pay-1-authorize"

typedef struct pfix {
	simfix *sim;
	config *config;
	engine_ctx ctx; /* the client's */
	paypal_client cl;
} pfix;

/* A client of a new simulator (sim_config: key, value, ..., NULL) with
 * timeout_ms and the credentials id:secret (NULL: none). */
static pfix *pfix_new(const char *const *sim_config, const char *timeout_ms, const char *id,
		      const char *secret)
{
	pfix *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->sim = simfix_start(&paypal_sim_engine, "paypal", SIM_ADMIN, sim_config);
	assert_non_null(p->sim);
	p->config = config_new();
	assert_int_equal(config_set(p->config, "paypal.base_url", p->sim->url), 0);
	assert_int_equal(config_set(p->config, "paypal.timeout_ms", timeout_ms), 0);
	if (id) {
		assert_int_equal(config_set(p->config, "paypal.client_id", id), 0);
		assert_int_equal(config_set(p->config, "paypal.secret", secret), 0);
	}
	p->ctx = (engine_ctx){ .service = "payment", .clock = p->sim->clock, .rng = p->sim->rng,
			       .log = p->sim->log, .metrics = p->sim->metrics, .config = p->config,
			       .call = simfix_call };
	assert_int_equal(paypal_client_init(&p->cl, &p->ctx), 0);
	return p;
}

static void pfix_free(pfix *p)
{
	paypal_client_clear(&p->cl);
	config_free(p->config);
	simfix_free(p->sim);
	free(p);
}

static int setup(void **state)
{
	*state = pfix_new(NULL, "3000", "client-1", "secret-1");
	return 0;
}

static int teardown(void **state)
{
	pfix_free(*state);
	return 0;
}

static const simfix_seen *seen(pfix *p, int i)
{
	assert_true(i < simfix_nseen(p->sim));
	return &p->sim->seen[i];
}

static json_t *seen_json(const simfix_seen *s)
{
	json_t *v = json_loads(s->body, 0, NULL);
	if (!v)
		fail_msg("not JSON: %s", s->body);
	return v;
}

/* ---- the requests' shape ------------------------------------------------------------------ */

static void test_shapes(void **state)
{
	pfix *p = *state;
	paypal_result r;
	assert_int_equal(paypal_authorize(&p->cl, KEY, 1234, "USD", "paypal_ok", "pay-1", &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(r.http_status, 201);
	assert_string_equal(r.order_status, "COMPLETED");
	assert_string_equal(r.status, "CREATED");
	assert_int_equal(r.amount, 1234);
	assert_int_equal(strlen(r.authorization_id), 17);
	assert_int_equal(strlen(r.order_id), 17);
	char auth[64], order[64];
	snprintf(auth, sizeof(auth), "%s", r.authorization_id);
	snprintf(order, sizeof(order), "%s", r.order_id);

	const simfix_seen *s = seen(p, 0);
	assert_string_equal(s->method, "POST");
	assert_string_equal(s->path, "/v1/oauth2/token");
	assert_string_equal(s->ctype, "application/x-www-form-urlencoded");
	assert_string_equal(s->auth, "Basic Y2xpZW50LTE6c2VjcmV0LTE="); /* client-1:secret-1 */
	assert_string_equal(s->body, "grant_type=client_credentials");
	assert_string_equal(s->request_id, "");
	s = seen(p, 1);
	assert_string_equal(s->method, "POST");
	assert_string_equal(s->path, "/v2/checkout/orders");
	assert_string_equal(s->ctype, "application/json");
	assert_memory_equal(s->auth, "Bearer A21AA", 12);
	assert_string_equal(s->request_id, KEY ".order");
	json_t *b = seen_json(s);
	assert_string_equal(thelp_jstr(b, "intent"), "AUTHORIZE");
	json_t *unit = json_array_get(json_object_get(b, "purchase_units"), 0);
	assert_int_equal(json_array_size(json_object_get(b, "purchase_units")), 1);
	assert_string_equal(thelp_jstr(unit, "reference_id"), "pay-1");
	assert_string_equal(thelp_jstr(unit, "custom_id"), "pay-1");
	assert_string_equal(thelp_jstr(json_object_get(unit, "amount"), "currency_code"), "USD");
	assert_string_equal(thelp_jstr(json_object_get(unit, "amount"), "value"), "12.34");
	assert_string_equal(
		thelp_jstr(json_object_get(json_object_get(b, "payment_source"), "paypal"), "vault_id"),
		"paypal_ok");
	json_decref(b);
	s = seen(p, 2);
	char path[128];
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", order);
	assert_string_equal(s->path, path);
	assert_string_equal(s->request_id, KEY);
	assert_string_equal(s->auth, seen(p, 1)->auth);

	assert_int_equal(paypal_capture(&p->cl, "pay-1-capture", auth, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_string_equal(r.status, "COMPLETED");
	assert_int_equal(r.amount, 1234);
	char cap[64];
	snprintf(cap, sizeof(cap), "%s", r.capture_id);
	s = seen(p, 3);
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/capture", auth);
	assert_string_equal(s->path, path);
	assert_string_equal(s->request_id, "pay-1-capture");
	b = seen_json(s);
	assert_true(json_is_true(json_object_get(b, "final_capture")));
	json_decref(b);

	/* refunds: part, too much, the rest */
	assert_int_equal(paypal_refund(&p->cl, "pay-1-refund-a", cap, 500, "USD", &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(r.amount, 500);
	assert_int_equal(strlen(r.refund_id), 17);
	s = seen(p, 4);
	snprintf(path, sizeof(path), "/v2/payments/captures/%s/refund", cap);
	assert_string_equal(s->path, path);
	b = seen_json(s);
	assert_string_equal(thelp_jstr(json_object_get(b, "amount"), "value"), "5.00");
	assert_string_equal(thelp_jstr(json_object_get(b, "amount"), "currency_code"), "USD");
	json_decref(b);
	assert_int_equal(paypal_refund(&p->cl, "pay-1-refund-b", cap, 735, "USD", &r), 0);
	assert_int_equal(r.outcome, PAYPAL_REJECTED);
	assert_int_equal(r.http_status, 422);
	assert_string_equal(r.issue, "REFUND_AMOUNT_EXCEEDED");
	assert_string_equal(r.error_name, "UNPROCESSABLE_ENTITY");
	assert_int_equal(strlen(r.debug_id), 13);
	assert_int_equal(paypal_refund(&p->cl, "pay-1-refund-c", cap, 0, "USD", &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(r.amount, 734);
	assert_string_equal(seen(p, 6)->body, "{}");
	/* a void of a captured authorisation */
	assert_int_equal(paypal_void(&p->cl, "pay-1-void", auth, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_REJECTED);
	assert_string_equal(r.issue, "AUTHORIZATION_ALREADY_CAPTURED");
	assert_string_equal(seen(p, 7)->request_id, "pay-1-void");
	/* one token for all of it */
	assert_int_equal(p->cl.token_fetches, 1);
	assert_int_equal(simfix_stat(p->sim, "tokens_issued"), 1);
	assert_int_equal(simfix_stat(p->sim, "refunded_amount"), 1234);

	/* void of a fresh authorisation: PayPal's representation of it */
	assert_int_equal(paypal_authorize(&p->cl, "pay-2-authorize", 100, "USD", "paypal_ok", NULL, &r),
			 0);
	snprintf(auth, sizeof(auth), "%s", r.authorization_id);
	assert_int_equal(paypal_void(&p->cl, "pay-2-void", auth, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.status, "VOIDED");
	/* and again: PayPal says it was voided */
	assert_int_equal(paypal_void(&p->cl, "pay-2-void-again", auth, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_REJECTED);
	assert_string_equal(r.issue, "AUTHORIZATION_VOIDED");
}

static void test_declines(void **state)
{
	pfix *p = *state;
	static const struct {
		const char *payer, *code;
	} d[] = {
		{ "paypal_declined", "instrument_declined" },
		{ "paypal_refused", "transaction_refused" },
		{ "paypal_cannot_pay", "payer_cannot_pay" },
		{ "paypal_denied", "authorization_denied" },
	};
	paypal_result r;
	char key[32];
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		snprintf(key, sizeof(key), "d-%zu", i);
		assert_int_equal(paypal_authorize(&p->cl, key, 999, "USD", d[i].payer, NULL, &r), 0);
		assert_int_equal(r.outcome, PAYPAL_DECLINED);
		assert_string_equal(r.decline_code, d[i].code);
	}
	/* a COMPLETED order whose capture comes back DECLINED */
	assert_int_equal(paypal_authorize(&p->cl, "cd", 999, "USD", "paypal_capture_declined", NULL, &r),
			 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	char auth[64];
	snprintf(auth, sizeof(auth), "%s", r.authorization_id);
	assert_int_equal(paypal_capture(&p->cl, "cd-capture", auth, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_DECLINED);
	assert_string_equal(r.decline_code, "capture_declined");
	assert_string_equal(r.status, "DECLINED");
	/* a payer PayPal does not know: the request itself is refused */
	assert_int_equal(paypal_authorize(&p->cl, "u", 999, "USD", "tok_visa", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_REJECTED);
	assert_int_equal(r.http_status, 400);
	assert_string_equal(r.issue, "INVALID_PARAMETER_VALUE");
	assert_int_equal(simfix_stat(p->sim, "declines"), 4);
}

/* ---- the token ------------------------------------------------------------------------------- */

static void test_token_refresh(void **state)
{
	(void)state;
	static const char *const cfg[] = { "paypal_sim.token_ttl_s", "2", NULL };
	pfix *p = pfix_new(cfg, "3000", "c", "s");
	paypal_result r;
	assert_int_equal(paypal_authorize(&p->cl, "k1", 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(paypal_authorize(&p->cl, "k2", 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(p->cl.token_fetches, 1);
	/* 2 s of life: a new one is fetched from 1.5 s on, before PayPal
	 * would refuse the old one */
	usleep(1600000);
	assert_int_equal(paypal_authorize(&p->cl, "k3", 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(p->cl.token_fetches, 2);
	assert_int_equal(simfix_stat(p->sim, "token_refusals"), 0);
	/* a token PayPal forgot (restarted, say): refused once, fetched again */
	pthread_mutex_lock(&p->cl.mu);
	snprintf(p->cl.token, sizeof(p->cl.token), "A21AAforgotten");
	pthread_mutex_unlock(&p->cl.mu);
	assert_int_equal(paypal_authorize(&p->cl, "k4", 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(p->cl.token_fetches, 3);
	assert_int_equal(simfix_stat(p->sim, "token_refusals"), 1);
	assert_int_equal(simfix_stat(p->sim, "authorizations"), 4);
	pfix_free(p);
}

typedef struct worker {
	pfix *p;
	int i;
	int ok;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	char key[32];
	snprintf(key, sizeof(key), "thread-%d", w->i);
	paypal_result r;
	w->ok = paypal_authorize(&w->p->cl, key, 100 + w->i, "USD", "paypal_ok", NULL, &r) == 0 &&
		r.outcome == PAYPAL_OK;
	return NULL;
}

static void test_token_shared(void **state)
{
	pfix *p = *state;
	pthread_t t[8];
	worker w[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (worker){ p, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_true(w[i].ok);
	}
	assert_int_equal(p->cl.token_fetches, 1);
	assert_int_equal(simfix_stat(p->sim, "tokens_issued"), 1);
	assert_int_equal(simfix_stat(p->sim, "authorizations"), 8);
}

/* ---- lost replies, faults, refusals ------------------------------------------------------------ */

static void test_capture_reply_lost(void **state)
{
	(void)state;
	pfix *p = pfix_new(NULL, "500", "c", "s");
	paypal_result r;
	assert_int_equal(paypal_authorize(&p->cl, "lost-authorize", 4200, "USD", "paypal_ok", NULL, &r),
			 0);
	char auth[64];
	snprintf(auth, sizeof(auth), "%s", r.authorization_id);
	/* The capture is made; its answer comes after the client gave up. */
	simfix_fault_on(p->sim, "paypal.capture", "{\"latency_ms\":1500}");
	assert_int_equal(paypal_capture(&p->cl, "lost-capture", auth, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_FAILED);
	assert_int_equal(r.http_status, 0);
	assert_int_equal(simfix_stat(p->sim, "captures"), 1);
	simfix_fault_on(p->sim, "paypal.capture", NULL);
	/* Asked again under the same request id: the first capture. */
	assert_int_equal(paypal_capture(&p->cl, "lost-capture", auth, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(r.amount, 4200);
	assert_int_equal(simfix_stat(p->sim, "captures"), 1);
	assert_int_equal(simfix_stat(p->sim, "replays"), 1);
	/* The same for the authorisation: one order, one authorisation. */
	simfix_fault_on(p->sim, "paypal.authorize", "{\"latency_ms\":1500}");
	assert_int_equal(paypal_authorize(&p->cl, "lost2", 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_FAILED);
	simfix_fault_on(p->sim, "paypal.authorize", NULL);
	assert_int_equal(paypal_authorize(&p->cl, "lost2", 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	assert_int_equal(simfix_stat(p->sim, "orders"), 2);
	assert_int_equal(simfix_stat(p->sim, "authorizations"), 2);
	pfix_free(p);
}

static void test_faults(void **state)
{
	pfix *p = *state;
	paypal_result r;
	static const char *const faults[] = { "{\"error_rate\":1,\"error_status\":500}",
					      "{\"error_rate\":1,\"error_status\":502}",
					      "{\"error_rate\":1,\"error_status\":429}",
					      "{\"outage\":true}" };
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		simfix_fault(p->sim, faults[i]);
		assert_int_equal(paypal_authorize(&p->cl, "f", 100, "USD", "paypal_ok", NULL, &r), 0);
		assert_int_equal(r.outcome, PAYPAL_FAILED);
		simfix_fault(p->sim, NULL);
	}
	assert_int_equal(simfix_stat(p->sim, "orders"), 0);
	assert_int_equal(paypal_authorize(&p->cl, "f", 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);

	/* nobody listening */
	paypal_client other;
	config *c = config_new();
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", thelp_closed_port());
	config_set(c, "paypal.base_url", url);
	config_set(c, "paypal.client_id", "c");
	config_set(c, "paypal.secret", "s");
	engine_ctx ctx = p->ctx;
	ctx.config = c;
	assert_int_equal(paypal_client_init(&other, &ctx), 0);
	assert_int_equal(paypal_capture(&other, "x", "ABC", &r), 0);
	assert_int_equal(r.outcome, PAYPAL_FAILED);
	paypal_client_clear(&other);
	/* no credentials: nothing is sent */
	config_set(c, "paypal.base_url", p->sim->url);
	config_set(c, "paypal.client_id", "");
	assert_int_equal(paypal_client_init(&other, &ctx), 0);
	int before = simfix_nseen(p->sim);
	assert_int_equal(paypal_capture(&other, "x", "ABC", &r), ERR_INVALID);
	assert_int_equal(r.outcome, PAYPAL_REJECTED);
	assert_int_equal(simfix_nseen(p->sim), before);
	paypal_client_clear(&other);
	config_free(c);
	/* arguments that cannot make a request */
	assert_int_equal(paypal_capture(&p->cl, "x", "../orders", &r), ERR_INVALID);
	assert_int_equal(paypal_capture(&p->cl, "", "ABC", &r), ERR_INVALID);
	assert_int_equal(paypal_capture(&p->cl, "a b", "ABC", &r), ERR_INVALID);
	assert_int_equal(paypal_authorize(&p->cl, "x", 0, "USD", "paypal_ok", NULL, &r), ERR_INVALID);
	assert_int_equal(paypal_authorize(&p->cl, "x", 1, "usd", "paypal_ok", NULL, &r), ERR_INVALID);
	assert_int_equal(paypal_refund(&p->cl, "x", "ABC", -1, "USD", &r), ERR_INVALID);
	assert_int_equal(simfix_nseen(p->sim), before);
}

static void test_bad_credentials(void **state)
{
	(void)state;
	static const char *const cfg[] = { "paypal_sim.client_id", "real", "paypal_sim.secret",
					   "secret", NULL };
	pfix *p = pfix_new(cfg, "3000", "real", "wrong");
	paypal_result r;
	assert_int_equal(paypal_authorize(&p->cl, "k", 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_REJECTED);
	assert_int_equal(r.http_status, 401);
	assert_string_equal(r.error_name, "invalid_client");
	assert_int_equal(simfix_nseen(p->sim), 1);
	pfix_free(p);
}

static void test_long_key(void **state)
{
	pfix *p = *state;
	char key[201];
	memset(key, 'k', 200);
	key[200] = '\0';
	paypal_result r;
	assert_int_equal(paypal_authorize(&p->cl, key, 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_int_equal(r.outcome, PAYPAL_OK);
	const simfix_seen *s = seen(p, 2);
	assert_int_equal(strlen(s->request_id), 69);
	assert_memory_equal(s->request_id, "ecom-", 5);
	char first[128];
	snprintf(first, sizeof(first), "%s", s->request_id);
	assert_string_not_equal(seen(p, 1)->request_id, first);
	assert_int_equal(paypal_authorize(&p->cl, key, 100, "USD", "paypal_ok", NULL, &r), 0);
	assert_string_equal(seen(p, 4)->request_id, first);
	assert_int_equal(simfix_stat(p->sim, "orders"), 1);
	assert_int_equal(simfix_stat(p->sim, "replays"), 2);
}

static void test_amounts(void **state)
{
	(void)state;
	char buf[32];
	static const struct {
		int64_t cents;
		const char *cur, *value;
	} ok[] = {
		{ 1234, "USD", "12.34" }, { 5, "USD", "0.05" },	  { 100, "EUR", "1.00" },
		{ 99999999, "USD", "999999.99" }, { 1234, "JPY", "1234" }, { 7, "HUF", "7" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(paypal_format_amount(ok[i].cents, ok[i].cur, buf, sizeof(buf)), 0);
		assert_string_equal(buf, ok[i].value);
		int64_t back = -1;
		assert_int_equal(paypal_parse_amount(ok[i].value, ok[i].cur, &back), 0);
		assert_int_equal(back, ok[i].cents);
	}
	int64_t c = 0;
	assert_int_equal(paypal_parse_amount("12", "USD", &c), 0);
	assert_int_equal(c, 1200);
	assert_int_equal(paypal_parse_amount("12.5", "USD", &c), 0);
	assert_int_equal(c, 1250);
	/* 0.29 is not 28 cents, as (int)(0.29 * 100) would make it */
	assert_int_equal(paypal_parse_amount("0.29", "USD", &c), 0);
	assert_int_equal(c, 29);
	static const char *const bad[] = { "", ".5", "1.", "1.234", "-1", "1e3", "1,00", "abc",
					   "1234567890123", " 1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(paypal_parse_amount(bad[i], "USD", &c), ERR_PARSE);
	assert_int_equal(paypal_parse_amount("1.5", "JPY", &c), ERR_PARSE);
	assert_int_equal(paypal_format_amount(-1, "USD", buf, sizeof(buf)), ERR_INVALID);
	assert_int_equal(paypal_format_amount(1, "USD", buf, 3), ERR_INVALID);
	assert_int_equal(paypal_currency_decimals("TWD"), 0);
	assert_int_equal(paypal_currency_decimals("GBP"), 2);
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
		T(test_shapes),
		T(test_declines),
		cmocka_unit_test(test_token_refresh),
		T(test_token_shared),
		cmocka_unit_test(test_capture_reply_lost),
		T(test_faults),
		cmocka_unit_test(test_bad_credentials),
		T(test_long_key),
		cmocka_unit_test(test_amounts),
	};
#undef T
	return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
