/* Tests for services/stripe, the adapter, against the real simulator served
 * over loopback: an http_server whose handler records each raw request (to
 * check it against Stripe's documented shape) and then hands it to
 * stripe_sim_engine, sleeping for the simulator's X-Sim-Delay-Us as the
 * daemon host does. The adapter's ctx->call is http_client_do, as on the
 * daemon. Covered: outcomes of authorize, capture, cancel, refund and get,
 * decline mapping, one intent per idempotency key across retries, transient
 * failures (injected 500 and 429, outage, timeout, closed port), permanent
 * refusals, and arguments refused before anything is sent. */
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
#include <unistd.h>

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
#define MAX_SEEN 64

/* One request as it arrived on the wire. */
typedef struct seen {
	char method[8];
	char path[128];
	char ctype[96];
	char auth[160];
	char idem[300];
	char version[32];
	char *body;
} seen;

typedef struct fixture {
	clock_src *clock;
	rng *rng;
	FILE *logf;
	logger *log;
	metrics *metrics;
	config *config;
	engine_ctx sim_ctx; /* the simulator's */
	void *sim;
	http_server *srv;
	char url[64];
	engine_ctx ctx; /* the adapter's */
	stripe_client cl;
	pthread_mutex_t mu;
	seen seen[MAX_SEEN];
	int nseen;
} fixture;

static void copy_header(char *dst, size_t len, const msg_req *req, const char *name)
{
	const char *v = msg_req_header(req, name);
	snprintf(dst, len, "%s", v ? v : "");
}

/* What the daemon host does for the simulator, plus a record of the raw
 * request taken before the engine sees it. */
static void sim_handler(void *ud, msg_req *req, msg_resp *resp)
{
	fixture *f = ud;
	if (strncmp(req->path, "/v1/", 4) == 0) {
		pthread_mutex_lock(&f->mu);
		if (f->nseen < MAX_SEEN) {
			seen *s = &f->seen[f->nseen++];
			snprintf(s->method, sizeof(s->method), "%s", req->method);
			snprintf(s->path, sizeof(s->path), "%s", req->path);
			copy_header(s->ctype, sizeof(s->ctype), req, "Content-Type");
			copy_header(s->auth, sizeof(s->auth), req, "Authorization");
			copy_header(s->idem, sizeof(s->idem), req, "Idempotency-Key");
			copy_header(s->version, sizeof(s->version), req, "Stripe-Version");
			s->body = strndup(req->body ? req->body : "", req->body_len);
		}
		pthread_mutex_unlock(&f->mu);
	}
	stripe_sim_engine.handle(f->sim, req, resp);
	int64_t d = stripe_sim_delay_us(resp);
	if (d > 0)
		usleep((useconds_t)d);
}

static int test_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	http_call_opts o = { .connect_timeout_ms = 200, .timeout_ms = timeout_ms };
	return http_client_do(target, req, resp, &o);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	pthread_mutex_init(&f->mu, NULL);
	f->clock = clock_real_new();
	f->rng = rng_new(99);
	f->logf = fopen("/dev/null", "w");
	f->log = log_new("test", f->logf, f->clock, LOG_DEBUG);
	f->metrics = metrics_new();
	f->config = config_new();
	if (!f->clock || !f->rng || !f->logf || !f->log || !f->metrics || !f->config)
		return -1;
	f->sim_ctx = (engine_ctx){
		.service = "stripe-sim",
		.instance_id = "stripe-sim-1",
		.clock = f->clock,
		.rng = f->rng,
		.log = f->log,
		.metrics = f->metrics,
		.config = f->config,
		.admin_token = ADMIN,
	};
	char err[256] = "";
	f->sim = stripe_sim_engine.create(&f->sim_ctx, err, sizeof(err));
	if (!f->sim) {
		fprintf(stderr, "stripe-sim: %s\n", err);
		return -1;
	}
	http_server_opts o = { "127.0.0.1", 0, 4, 1 << 16, 5, 0 };
	f->srv = http_server_start(&o, sim_handler, f, f->rng, err, sizeof(err));
	if (!f->srv) {
		fprintf(stderr, "server: %s\n", err);
		return -1;
	}
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", http_server_port(f->srv));
	f->ctx = (engine_ctx){
		.service = "payment",
		.instance_id = "payment-1",
		.clock = f->clock,
		.rng = f->rng,
		.log = f->log,
		.metrics = f->metrics,
		.config = f->config,
		.call = test_call,
		.call_ud = f,
	};
	if (stripe_client_init(&f->cl, &f->ctx) != 0)
		return -1;
	snprintf(f->cl.base_url, sizeof(f->cl.base_url), "%s", f->url);
	snprintf(f->cl.secret_key, sizeof(f->cl.secret_key), "%s", KEY);
	f->cl.timeout_ms = 2000;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	http_server_stop(f->srv);
	stripe_sim_engine.destroy(f->sim);
	for (int i = 0; i < f->nseen; i++)
		free(f->seen[i].body);
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

static int nseen(fixture *f)
{
	pthread_mutex_lock(&f->mu);
	int n = f->nseen;
	pthread_mutex_unlock(&f->mu);
	return n;
}

static const seen *last_seen(fixture *f)
{
	int n = nseen(f);
	assert_true(n > 0);
	return &f->seen[n - 1];
}

/* The simulator's own state, asked directly (operators' route). */
static json_t *sim_admin(fixture *f, const char *method, const char *path, const char *body)
{
	msg_req req;
	msg_resp resp;
	assert_int_equal(msg_req_init(&req, method, path), 0);
	assert_int_equal(msg_req_add_header(&req, "Authorization", "Bearer " ADMIN), 0);
	if (body) {
		assert_int_equal(msg_req_add_header(&req, "Content-Type", "application/json"), 0);
		assert_int_equal(msg_req_set_body(&req, body, strlen(body)), 0);
	}
	msg_resp_init(&resp);
	stripe_sim_engine.handle(f->sim, &req, &resp);
	if (resp.status != 200)
		fail_msg("%s %s: %d %.*s", method, path, resp.status, (int)resp.body_len, resp.body);
	json_t *v = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_non_null(v);
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	return v;
}

static int64_t sim_stat(fixture *f, const char *name)
{
	json_t *s = sim_admin(f, "GET", "/admin/stripe/stats", NULL);
	json_t *v = json_object_get(s, name);
	assert_true(json_is_integer(v));
	int64_t n = json_integer_value(v);
	json_decref(s);
	return n;
}

static void set_fault(fixture *f, const char *json)
{
	json_decref(sim_admin(f, "PUT", "/admin/faults/stripe", json));
}

static void clear_fault(fixture *f)
{
	json_decref(sim_admin(f, "DELETE", "/admin/faults/stripe", NULL));
}

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
	const char *url = config_get(f->config, "stripe.base_url");
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
