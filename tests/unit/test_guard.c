/* Tests for resil/guard on a virtual clock: configuration (defaults, keys,
 * per-edge overrides and their errors), the outcome rules (business answers
 * never open a breaker), refusals by breaker and bulkhead, deadlines, the
 * retry loop (idempotent only, full jitter within the deadline, the same
 * Idempotency-Key each time), operators' trip/reset/disable, the JSON view
 * and the metrics. The calls are a scripted function, not a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "resil/guard.h"

#define T0 1764112255000000LL
#define MS 1000LL
#define SEC 1000000LL

/* ---- a scripted callee ---------------------------------------------------------- */

#define MAX_SCRIPT 16

typedef struct script {
	clock_src *clock;
	int n;                     /* steps scripted */
	int rc[MAX_SCRIPT];        /* what send returns at each attempt */
	int status[MAX_SCRIPT];    /* and the status it answers */
	int64_t took_us[MAX_SCRIPT]; /* virtual time the attempt takes */
	const char *refused;       /* a refusal header on every answer, or NULL */
	/* what was seen */
	int calls;
	int64_t at[MAX_SCRIPT];
	int64_t timeout_ms[MAX_SCRIPT];
	char deadline_hdr[MAX_SCRIPT][24];
	char idem[MAX_SCRIPT][64];
} script;

static int scripted_send(void *ud, msg_req *req, msg_resp *resp, int64_t timeout_ms)
{
	script *s = ud;
	int i = s->calls < s->n ? s->calls : s->n - 1;
	if (s->calls < MAX_SCRIPT) {
		s->at[s->calls] = clock_now(s->clock);
		s->timeout_ms[s->calls] = timeout_ms;
		const char *d = msg_req_header(req, GUARD_DEADLINE_HEADER);
		snprintf(s->deadline_hdr[s->calls], 24, "%s", d ? d : "");
		const char *k = msg_req_header(req, "Idempotency-Key");
		snprintf(s->idem[s->calls], 64, "%s", k ? k : "");
	}
	s->calls++;
	clock_advance(s->clock, s->took_us[i]);
	if (s->rc[i] == 0) {
		msg_resp_set(resp, s->status[i], "application/json", "{}", 2);
		if (s->refused)
			msg_resp_set_header(resp, GUARD_REFUSED_HEADER, s->refused);
	}
	return s->rc[i];
}

/* ---- fixture ---------------------------------------------------------------------- */

typedef struct fx {
	clock_src *clock;
	rng *rng;
	metrics *m;
	config *cfg;
	guard *g;
} fx;

static fx *fx_new(const char *caller, const char *const *kv)
{
	fx *f = calloc(1, sizeof(*f));
	f->clock = clock_virtual_new(T0);
	f->rng = rng_new(7);
	f->m = metrics_new();
	f->cfg = config_new();
	for (int i = 0; kv && kv[i]; i += 2)
		assert_int_equal(config_set(f->cfg, kv[i], kv[i + 1]), 0);
	char err[256] = "";
	f->g = guard_new(caller, f->cfg, NULL, f->m, err, sizeof(err));
	if (!f->g)
		fail_msg("guard_new: %s", err);
	return f;
}

static void fx_free(fx *f)
{
	guard_free(f->g);
	config_free(f->cfg);
	metrics_free(f->m);
	rng_free(f->rng);
	clock_free(f->clock);
	free(f);
}

static const char *const small[] = {
	"breaker.window", "4", "breaker.min_calls", "4", "breaker.wait_open_ms", "1000",
	"breaker.half_open_calls", "2", NULL,
};

/* One permitted call to callee with this outcome. */
static void one(fx *f, const char *callee, int rc, int status)
{
	guard_permit p;
	int why;
	int64_t now = clock_now(f->clock);
	assert_int_equal(guard_enter(f->g, callee, now, &p, &why, NULL), 0);
	clock_advance(f->clock, 5 * MS);
	guard_done(&p, clock_now(f->clock), guard_failed(rc, status));
}

static const char *state_of(fx *f, const char *callee)
{
	static char buf[32];
	json_t *o = guard_edge_json(f->g, callee, clock_now(f->clock));
	assert_non_null(o);
	snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(o, "state")));
	json_decref(o);
	return buf;
}

/* ---- configuration ------------------------------------------------------------------ */

static void test_defaults(void **state)
{
	guard_edge_config c;
	guard_edge_config_default(&c);
	assert_int_equal(c.breaker.sliding_window_size, 20);
	assert_int_equal(c.breaker.minimum_calls, 10);
	assert_true(c.breaker.failure_rate_threshold == 50.0);
	assert_true(c.breaker.slow_call_rate_threshold == 100.0);
	assert_int_equal(c.breaker.slow_call_duration_us, 2 * SEC);
	assert_int_equal(c.breaker.wait_in_open_us, 5 * SEC);
	assert_int_equal(c.breaker.permitted_calls_in_half_open, 3);
	assert_int_equal(c.breaker_enabled, 1);
	assert_int_equal(c.max_concurrent, 64);
	assert_int_equal(c.retry.max_attempts, 3);
	assert_int_equal(c.retry.base_us, 50 * MS);
	assert_int_equal(c.retry.cap_us, 1 * SEC);

	/* The configuration table's defaults are the same numbers. */
	fx *f = fx_new("order", NULL);
	guard_edge_config d;
	assert_int_equal(guard_edge_config_of(f->g, "payment", &d), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	assert_string_equal(guard_caller(f->g), "order");
	assert_int_equal(guard_enabled(f->g), 1);
	assert_int_equal(guard_edge_config_of(f->g, "Bad Name", &d), ERR_INVALID);
	fx_free(f);

	/* No configuration at all: the built-in defaults. */
	guard *g = guard_new("order", NULL, NULL, NULL, NULL, 0);
	assert_non_null(g);
	assert_int_equal(guard_edge_config_of(g, "payment", &d), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	guard_free(g);
	guard_free(NULL);
}

static void test_overrides(void **state)
{
	static const char *const kv[] = {
		"breaker.failure_rate", "40", "bulkhead.max_concurrent", "5", "resil.edges",
		" order>payment: breaker.min_calls=5, breaker.failure_rate=25.5 ;"
		"*>payment: retry.max_attempts=4; order>*: breaker.wait_open_ms=2500;"
		"gateway>catalog: bulkhead.max_concurrent=2; order>payment: retry.max_attempts=2",
		NULL,
	};
	fx *f = fx_new("order", kv);
	guard_edge_config c;
	assert_int_equal(guard_edge_config_of(f->g, "payment", &c), 0);
	assert_int_equal(c.breaker.minimum_calls, 5);
	assert_true(c.breaker.failure_rate_threshold == 25.5);
	assert_int_equal(c.retry.max_attempts, 2); /* the later rule wins */
	assert_int_equal(c.breaker.wait_in_open_us, 2500 * MS);
	assert_int_equal(c.max_concurrent, 5); /* global key */
	assert_int_equal(guard_edge_config_of(f->g, "inventory", &c), 0);
	assert_true(c.breaker.failure_rate_threshold == 40.0);
	assert_int_equal(c.breaker.minimum_calls, 10);
	assert_int_equal(c.retry.max_attempts, 3);
	assert_int_equal(c.breaker.wait_in_open_us, 2500 * MS);
	fx_free(f);
	/* Another caller sees only its own and the wildcard rules. */
	f = fx_new("gateway", kv);
	assert_int_equal(guard_edge_config_of(f->g, "catalog", &c), 0);
	assert_int_equal(c.max_concurrent, 2);
	assert_int_equal(c.breaker.wait_in_open_us, 5 * SEC);
	assert_int_equal(guard_edge_config_of(f->g, "payment", &c), 0);
	assert_int_equal(c.retry.max_attempts, 4);
	assert_int_equal(c.breaker.minimum_calls, 10);
	fx_free(f);
}

static void test_bad_configuration(void **state)
{
	static const struct {
		const char *key, *value, *err;
	} bad[] = {
		{ "breaker.window", "0", "breaker.window" },
		{ "breaker.failure_rate", "0", "breaker.failure_rate" },
		{ "breaker.failure_rate", "101", "breaker.failure_rate" },
		{ "breaker.slow_call_rate", "x", "breaker.slow_call_rate" },
		{ "bulkhead.max_concurrent", "0", "bulkhead.max_concurrent" },
		{ "retry.max_attempts", "11", "retry.max_attempts" },
		{ "retry.base_ms", "-1", "retry.base_ms" },
		{ "resil.edges", "order>payment breaker.window=3", "CALLER>CALLEE" },
		{ "resil.edges", "order: breaker.window=3", "CALLER>CALLEE" },
		{ "resil.edges", "Order>payment: breaker.window=3", "bad edge" },
		{ "resil.edges", "order>payment: breaker.windw=3", "unknown setting" },
		{ "resil.edges", "order>payment: breaker.window", "unknown setting" },
		{ "resil.edges", "order>payment: breaker.window=0", "bad value" },
		{ "resil.edges", "order>payment: breaker.failure_rate=150", "bad value" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config *cfg = config_new();
		assert_int_equal(config_set(cfg, bad[i].key, bad[i].value), 0);
		char err[256] = "";
		guard *g = guard_new("order", cfg, NULL, NULL, err, sizeof(err));
		if (g || !strstr(err, bad[i].err))
			fail_msg("%s = '%s': got %p, '%s'", bad[i].key, bad[i].value, (void *)g, err);
		config_free(cfg);
	}
	/* Rules of other callers are still checked for syntax, not applied. */
	config *cfg = config_new();
	assert_int_equal(config_set(cfg, "resil.edges", "cart>catalog: breaker.window=2"), 0);
	guard *g = guard_new("order", cfg, NULL, NULL, NULL, 0);
	assert_non_null(g);
	guard_free(g);
	config_free(cfg);
	assert_null(guard_new("", NULL, NULL, NULL, NULL, 0));
	assert_null(guard_new(NULL, NULL, NULL, NULL, NULL, 0));
}

/* ---- outcomes ------------------------------------------------------------------------ */

static void test_outcome_rules(void **state)
{
	assert_int_equal(guard_failed(0, 200), 0);
	assert_int_equal(guard_failed(0, 201), 0);
	assert_int_equal(guard_failed(0, 302), 0);
	assert_int_equal(guard_failed(0, 400), 0);
	assert_int_equal(guard_failed(0, 402), 0); /* a card decline */
	assert_int_equal(guard_failed(0, 404), 0);
	assert_int_equal(guard_failed(0, 409), 0);
	assert_int_equal(guard_failed(0, 422), 0);
	assert_int_equal(guard_failed(0, 429), 0);
	assert_int_equal(guard_failed(0, 499), 0);
	assert_int_equal(guard_failed(0, 500), 1);
	assert_int_equal(guard_failed(0, 501), 0);
	assert_int_equal(guard_failed(0, 502), 1);
	assert_int_equal(guard_failed(0, 503), 1);
	assert_int_equal(guard_failed(0, 504), 1);
	assert_int_equal(guard_failed(0, 599), 1);
	assert_int_equal(guard_failed(ERR_UNAVAILABLE, 0), 1);
	assert_int_equal(guard_failed(ERR_TIMEOUT, 0), 1);
	assert_int_equal(guard_failed(ERR_IO, 0), 1);

	msg_resp r;
	msg_resp_init(&r);
	r.status = 503;
	assert_int_equal(guard_retryable(0, &r), 1);
	r.status = 502;
	assert_int_equal(guard_retryable(0, &r), 1);
	r.status = 504;
	assert_int_equal(guard_retryable(0, &r), 1);
	r.status = 500;
	assert_int_equal(guard_retryable(0, &r), 0);
	r.status = 429;
	assert_int_equal(guard_retryable(0, &r), 0);
	r.status = 0;
	assert_int_equal(guard_retryable(ERR_UNAVAILABLE, &r), 1);
	assert_int_equal(guard_retryable(ERR_TIMEOUT, &r), 1);
	assert_int_equal(guard_retryable(ERR_IO, &r), 1);
	assert_int_equal(guard_retryable(ERR_NOMEM, &r), 0);
	/* Someone's breaker said no: asking again at once is pointless. */
	r.status = 503;
	msg_resp_set_header(&r, GUARD_REFUSED_HEADER, "breaker");
	assert_int_equal(guard_retryable(0, &r), 0);
	msg_resp_clear(&r);

	static const struct {
		const char *method;
		int key, want;
	} idem[] = {
		{ "GET", 0, 1 },  { "HEAD", 0, 1 },  { "OPTIONS", 0, 1 }, { "PUT", 0, 1 },
		{ "DELETE", 0, 1 }, { "POST", 0, 0 }, { "PATCH", 0, 0 },   { "POST", 1, 1 },
		{ "PATCH", 1, 1 },
	};
	for (size_t i = 0; i < sizeof(idem) / sizeof(idem[0]); i++) {
		msg_req q;
		assert_int_equal(msg_req_init(&q, idem[i].method, "/v1/x"), 0);
		if (idem[i].key)
			msg_req_add_header(&q, "Idempotency-Key", "k-1");
		assert_int_equal(guard_idempotent(&q), idem[i].want);
		msg_req_clear(&q);
	}
	msg_req q;
	assert_int_equal(msg_req_init(&q, "POST", "/v1/x"), 0);
	msg_req_add_header(&q, "Idempotency-Key", "");
	assert_int_equal(guard_idempotent(&q), 0);
	msg_req_clear(&q);
}

/* The rule at the breaker: declines and other business answers
 * never open it, however many; 5xx do, at exactly the threshold. */
static void test_declines_never_open(void **state)
{
	fx *f = fx_new("order", small);
	static const int business[] = { 200, 201, 400, 402, 404, 409, 422, 429, 501 };
	for (int i = 0; i < 1000; i++)
		one(f, "payment", 0, business[i % 9]);
	assert_string_equal(state_of(f, "payment"), "CLOSED");
	json_t *o = guard_edge_json(f->g, "payment", clock_now(f->clock));
	assert_true(json_real_value(json_object_get(o, "failure_rate")) == 0.0);
	assert_int_equal(json_integer_value(json_object_get(o, "calls")), 4);
	json_decref(o);
	/* Window of 4: 1 failure (25%) stays closed, 2 (50% >= 50%) opens. */
	one(f, "payment", 0, 503);
	assert_string_equal(state_of(f, "payment"), "CLOSED");
	one(f, "payment", ERR_TIMEOUT, 0);
	assert_string_equal(state_of(f, "payment"), "OPEN");
	fx_free(f);
}

/* ---- refusals ------------------------------------------------------------------------- */

static void test_breaker_refuses_and_recovers(void **state)
{
	fx *f = fx_new("gateway", small);
	/* Three failures of three: below the minimum of four, still closed. */
	for (int i = 0; i < 3; i++)
		one(f, "catalog", 0, 503);
	assert_string_equal(state_of(f, "catalog"), "CLOSED");
	one(f, "catalog", ERR_UNAVAILABLE, 0);
	assert_string_equal(state_of(f, "catalog"), "OPEN");

	guard_permit p;
	int why = -1;
	int64_t ra = -1;
	int64_t now = clock_now(f->clock);
	assert_int_equal(guard_enter(f->g, "catalog", now, &p, &why, &ra), ERR_UNAVAILABLE);
	assert_int_equal(why, GUARD_BREAKER);
	assert_int_equal(ra, 1); /* 1000 ms left, in whole seconds */
	assert_null(p.edge);
	/* Another callee is not affected. */
	one(f, "cart", 0, 200);

	/* After the wait: HALF_OPEN admits exactly two probes. */
	clock_advance(f->clock, 1 * SEC);
	now = clock_now(f->clock);
	guard_permit a, b, c;
	assert_int_equal(guard_enter(f->g, "catalog", now, &a, &why, NULL), 0);
	assert_int_equal(guard_enter(f->g, "catalog", now, &b, &why, NULL), 0);
	assert_int_equal(guard_enter(f->g, "catalog", now, &c, &why, &ra), ERR_UNAVAILABLE);
	assert_int_equal(why, GUARD_BREAKER);
	assert_string_equal(state_of(f, "catalog"), "HALF_OPEN");
	guard_done(&a, now + MS, 0);
	guard_done(&b, now + MS, 0);
	assert_string_equal(state_of(f, "catalog"), "CLOSED");

	/* Every transition is counted and the state gauge follows. */
	assert_int_equal(metrics_counter_value(f->m, "breaker_transitions_total",
					       "from=\"gateway\",to=\"catalog\",state=\"OPEN\""),
			 1);
	assert_int_equal(metrics_counter_value(f->m, "breaker_transitions_total",
					       "from=\"gateway\",to=\"catalog\",state=\"HALF_OPEN\""),
			 1);
	assert_int_equal(metrics_counter_value(f->m, "breaker_transitions_total",
					       "from=\"gateway\",to=\"catalog\",state=\"CLOSED\""),
			 1);
	assert_int_equal(metrics_counter_value(f->m, "resil_rejections_total",
					       "from=\"gateway\",to=\"catalog\",reason=\"breaker\""),
			 2);
	char *text = metrics_render(f->m);
	assert_non_null(strstr(text, "breaker_state{from=\"gateway\",to=\"catalog\",state=\"CLOSED\"} 1"));
	assert_non_null(strstr(text, "breaker_state{from=\"gateway\",to=\"catalog\",state=\"OPEN\"} 0"));
	free(text);
	fx_free(f);
}

static void test_bulkhead_refuses_at_once(void **state)
{
	static const char *const kv[] = { "resil.edges", "order>payment: bulkhead.max_concurrent=2",
					  NULL };
	fx *f = fx_new("order", kv);
	int64_t now = clock_now(f->clock);
	guard_permit a, b, c;
	int why;
	int64_t ra;
	assert_int_equal(guard_enter(f->g, "payment", now, &a, &why, NULL), 0);
	assert_int_equal(guard_enter(f->g, "payment", now, &b, &why, NULL), 0);
	assert_int_equal(guard_enter(f->g, "payment", now, &c, &why, &ra), ERR_UNAVAILABLE);
	assert_int_equal(why, GUARD_BULKHEAD);
	assert_int_equal(ra, 1);
	/* The refusal gave the breaker's permit back and recorded nothing. */
	json_t *o = guard_edge_json(f->g, "payment", now);
	assert_int_equal(json_integer_value(json_object_get(o, "in_flight")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "bulkhead_rejected")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "calls")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "max_concurrent")), 2);
	json_decref(o);
	guard_cancel(&a); /* never made */
	assert_int_equal(guard_enter(f->g, "payment", now, &c, &why, NULL), 0);
	guard_done(&b, now, 0);
	guard_done(&c, now, 0);
	guard_done(&c, now, 0); /* a second report of one permit does nothing */
	o = guard_edge_json(f->g, "payment", now);
	assert_int_equal(json_integer_value(json_object_get(o, "in_flight")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "calls")), 2);
	json_decref(o);
	assert_int_equal(metrics_counter_value(f->m, "resil_rejections_total",
					       "from=\"order\",to=\"payment\",reason=\"bulkhead\""),
			 1);
	fx_free(f);
}

static void test_disabled_guard_passes_everything(void **state)
{
	static const char *const kv[] = { "resil.enabled", "0", "breaker.window", "1",
					  "breaker.min_calls", "1", NULL };
	fx *f = fx_new("gateway", kv);
	assert_int_equal(guard_enabled(f->g), 0);
	for (int i = 0; i < 50; i++)
		one(f, "catalog", ERR_UNAVAILABLE, 0);
	json_t *list = guard_list(f->g, clock_now(f->clock));
	assert_int_equal(json_array_size(list), 0); /* no edge, no bookkeeping */
	json_decref(list);
	fx_free(f);
	/* breaker.enabled=0: edges exist, breakers start DISABLED. */
	static const char *const kv2[] = { "breaker.enabled", "0", "breaker.window", "1",
					   "breaker.min_calls", "1", NULL };
	f = fx_new("gateway", kv2);
	for (int i = 0; i < 50; i++)
		one(f, "catalog", ERR_UNAVAILABLE, 0);
	assert_string_equal(state_of(f, "catalog"), "DISABLED");
	fx_free(f);
}

/* ---- deadlines -------------------------------------------------------------------------- */

static void test_deadline_helpers(void **state)
{
	int64_t d = -1;
	assert_int_equal(guard_deadline_parse("1500", T0, &d), 0);
	assert_int_equal(d, T0 + 1500 * MS);
	assert_int_equal(guard_deadline_parse(" 0 ", T0, &d), 0);
	assert_int_equal(d, T0);
	assert_int_equal(guard_deadline_parse("-5", T0, &d), 0);
	assert_int_equal(d, T0); /* already due */
	assert_int_equal(guard_deadline_parse("99999999999999999999999", T0, &d), 0);
	assert_int_equal(d, T0 + GUARD_MAX_DEADLINE_MS * MS); /* capped */
	d = 42;
	assert_int_equal(guard_deadline_parse("", T0, &d), ERR_INVALID);
	assert_int_equal(guard_deadline_parse("abc", T0, &d), ERR_INVALID);
	assert_int_equal(guard_deadline_parse("12ms", T0, &d), ERR_INVALID);
	assert_int_equal(guard_deadline_parse("1.5", T0, &d), ERR_INVALID);
	assert_int_equal(guard_deadline_parse("-", T0, &d), ERR_INVALID);
	assert_int_equal(guard_deadline_parse(NULL, T0, &d), ERR_INVALID);
	assert_int_equal(d, 42);

	assert_int_equal(guard_deadline_min(0, 0), 0);
	assert_int_equal(guard_deadline_min(0, 5), 5);
	assert_int_equal(guard_deadline_min(5, 0), 5);
	assert_int_equal(guard_deadline_min(7, 5), 5);
	assert_int_equal(guard_deadline_left_ms(T0 + 1999, T0), 1);
	assert_int_equal(guard_deadline_left_ms(T0 + 999, T0), 0);
	assert_int_equal(guard_deadline_left_ms(T0 - 5 * SEC, T0), 0);

	msg_req q;
	assert_int_equal(msg_req_init(&q, "GET", "/v1/x"), 0);
	assert_int_equal(guard_deadline_stamp(&q, T0 + 2500 * MS + 700, T0), 0);
	assert_string_equal(msg_req_header(&q, GUARD_DEADLINE_HEADER), "2500");
	assert_int_equal(guard_deadline_stamp(&q, T0 - 1, T0), 0);
	assert_string_equal(msg_req_header(&q, GUARD_DEADLINE_HEADER), "0");
	assert_int_equal(guard_deadline_stamp(&q, 0, T0), 0);
	assert_null(msg_req_header(&q, GUARD_DEADLINE_HEADER));
	msg_req_clear(&q);

	assert_string_equal(guard_refusal_name(GUARD_BREAKER), "breaker");
	assert_string_equal(guard_refusal_name(GUARD_BULKHEAD), "bulkhead");
	assert_string_equal(guard_refusal_name(GUARD_DEADLINE), "deadline");
	assert_null(guard_refusal_name(GUARD_PERMITTED));
	assert_null(guard_refusal_name(99));
}

/* ---- the retry loop ---------------------------------------------------------------------- */

static int call(fx *f, script *s, const char *method, const char *idem, int64_t deadline,
		int64_t timeout_ms, msg_resp *resp)
{
	msg_req q;
	assert_int_equal(msg_req_init(&q, method, "/v1/payments"), 0);
	if (idem)
		msg_req_add_header(&q, "Idempotency-Key", idem);
	guard_call_opts o = {
		.clock = f->clock,
		.rng = f->rng,
		.deadline_us = deadline,
		.timeout_ms = timeout_ms,
		.idempotent = guard_idempotent(&q),
	};
	msg_resp_init(resp);
	int rc = guard_call(f->g, "payment", &o, scripted_send, s, &q, resp);
	msg_req_clear(&q);
	return rc;
}

static void test_retries_idempotent_calls_with_the_same_key(void **state)
{
	fx *f = fx_new("order", NULL);
	script s = { .clock = f->clock, .n = 3, .rc = { 0, ERR_TIMEOUT, 0 },
		     .status = { 503, 0, 201 }, .took_us = { 10 * MS, 100 * MS, 10 * MS } };
	msg_resp r;
	assert_int_equal(call(f, &s, "POST", "order-42-authorize", 0, 2000, &r), 0);
	assert_int_equal(r.status, 201);
	msg_resp_clear(&r);
	assert_int_equal(s.calls, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(s.idem[i], "order-42-authorize");
	/* Full jitter: retry n waits at most min(cap, 50 ms * 2^n). */
	int64_t gap1 = s.at[1] - (s.at[0] + 10 * MS), gap2 = s.at[2] - (s.at[1] + 100 * MS);
	assert_true(gap1 >= 0 && gap1 <= 50 * MS);
	assert_true(gap2 >= 0 && gap2 <= 100 * MS);
	/* No caller deadline: each attempt gets the timeout, and says so. */
	assert_int_equal(s.timeout_ms[0], 2000);
	assert_string_equal(s.deadline_hdr[0], "2000");
	assert_int_equal(metrics_counter_value(f->m, "resil_retries_total",
					       "from=\"order\",to=\"payment\""),
			 2);

	/* Attempts are bounded: three in all, the last answer returned. */
	script all_bad = { .clock = f->clock, .n = 1, .rc = { 0 }, .status = { 502 },
			   .took_us = { MS } };
	assert_int_equal(call(f, &all_bad, "GET", NULL, 0, 1000, &r), 0);
	assert_int_equal(r.status, 502);
	msg_resp_clear(&r);
	assert_int_equal(all_bad.calls, 3);
	fx_free(f);
}

static void test_no_retry_when_not_safe_or_not_useful(void **state)
{
	fx *f = fx_new("order", NULL);
	msg_resp r;
	/* A POST without a key may have been applied: sent once. */
	script once = { .clock = f->clock, .n = 1, .rc = { ERR_TIMEOUT }, .took_us = { MS } };
	assert_int_equal(call(f, &once, "POST", NULL, 0, 1000, &r), ERR_TIMEOUT);
	msg_resp_clear(&r);
	assert_int_equal(once.calls, 1);
	/* ...unless nothing was sent at all (connection refused). */
	script refused = { .clock = f->clock, .n = 2, .rc = { ERR_UNAVAILABLE, 0 },
			   .status = { 0, 201 }, .took_us = { MS, MS } };
	assert_int_equal(call(f, &refused, "POST", NULL, 0, 1000, &r), 0);
	assert_int_equal(r.status, 201);
	msg_resp_clear(&r);
	assert_int_equal(refused.calls, 2);
	/* A business answer or a 500 is final. */
	static const int final[] = { 200, 402, 404, 409, 500, 501 };
	for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
		script s = { .clock = f->clock, .n = 1, .status = { final[i] }, .took_us = { MS } };
		assert_int_equal(call(f, &s, "GET", NULL, 0, 1000, &r), 0);
		assert_int_equal(r.status, final[i]);
		msg_resp_clear(&r);
		assert_int_equal(s.calls, 1);
	}
	/* Another breaker's refusal is not asked again. */
	script no = { .clock = f->clock, .n = 1, .status = { 503 }, .took_us = { MS },
		      .refused = "breaker" };
	assert_int_equal(call(f, &no, "GET", NULL, 0, 1000, &r), 0);
	msg_resp_clear(&r);
	assert_int_equal(no.calls, 1);
	/* retry.max_attempts=1: never. */
	fx_free(f);
	static const char *const kv[] = { "retry.max_attempts", "1", NULL };
	f = fx_new("order", kv);
	script s1 = { .clock = f->clock, .n = 1, .status = { 503 }, .took_us = { MS } };
	assert_int_equal(call(f, &s1, "GET", NULL, 0, 1000, &r), 0);
	msg_resp_clear(&r);
	assert_int_equal(s1.calls, 1);
	fx_free(f);
}

static void test_deadline_bounds_every_attempt(void **state)
{
	static const char *const kv[] = { "retry.max_attempts", "10", "retry.base_ms", "100",
					  "retry.cap_ms", "100", NULL };
	fx *f = fx_new("order", kv);
	msg_resp r;
	/* Passed already: nothing is sent, and the refusal says why. */
	script none = { .clock = f->clock, .n = 1, .status = { 200 }, .took_us = { MS } };
	int64_t now = clock_now(f->clock);
	assert_int_equal(call(f, &none, "GET", NULL, now, 1000, &r), ERR_TIMEOUT);
	assert_string_equal(msg_resp_header(&r, GUARD_REFUSED_HEADER), "deadline");
	msg_resp_clear(&r);
	assert_int_equal(none.calls, 0);
	assert_int_equal(metrics_counter_value(f->m, "resil_rejections_total",
					       "from=\"order\",to=\"payment\",reason=\"deadline\""),
			 1);

	/* 300 ms left, each failure takes 40 ms, retries wait up to 100 ms:
	 * attempts get the time left (not the 1000 ms timeout), and none
	 * starts at or past the deadline. */
	for (int round = 0; round < 50; round++) {
		now = clock_now(f->clock);
		int64_t deadline = now + 300 * MS;
		script s = { .clock = f->clock, .n = 1, .status = { 503 }, .took_us = { 40 * MS } };
		assert_int_equal(call(f, &s, "GET", NULL, deadline, 1000, &r), 0);
		msg_resp_clear(&r);
		if (s.calls < 2 || s.calls > 8)
			fail_msg("round %d: %d attempts", round, s.calls);
		for (int i = 0; i < s.calls; i++) {
			assert_true(s.at[i] < deadline);
			assert_int_equal(s.timeout_ms[i], (deadline - s.at[i]) / 1000);
			char want[24];
			snprintf(want, sizeof(want), "%lld", (long long)((deadline - s.at[i]) / 1000));
			assert_string_equal(s.deadline_hdr[i], want);
		}
		/* The breaker may open on so many failures; start afresh. */
		guard_reset(f->g, "payment", clock_now(f->clock));
	}
	fx_free(f);
}

static void test_call_refused_by_breaker_and_bulkhead(void **state)
{
	static const char *const kv[] = { "breaker.window", "2", "breaker.min_calls", "2",
					  "breaker.wait_open_ms", "3000", NULL };
	fx *f = fx_new("order", kv);
	msg_resp r;
	script bad = { .clock = f->clock, .n = 1, .status = { 500 }, .took_us = { MS } };
	call(f, &bad, "POST", NULL, 0, 1000, &r);
	msg_resp_clear(&r);
	call(f, &bad, "POST", NULL, 0, 1000, &r);
	msg_resp_clear(&r);
	assert_int_equal(bad.calls, 2);
	script s = { .clock = f->clock, .n = 1, .status = { 200 }, .took_us = { MS } };
	assert_int_equal(call(f, &s, "GET", NULL, 0, 1000, &r), ERR_UNAVAILABLE);
	assert_string_equal(msg_resp_header(&r, GUARD_REFUSED_HEADER), "breaker");
	assert_string_equal(msg_resp_header(&r, "Retry-After"), "3");
	assert_int_equal(r.status, 0);
	msg_resp_clear(&r);
	assert_int_equal(s.calls, 0);
	/* The operator's trip and reset. */
	assert_int_equal(guard_reset(f->g, "payment", clock_now(f->clock)), 0);
	assert_int_equal(call(f, &s, "GET", NULL, 0, 1000, &r), 0);
	msg_resp_clear(&r);
	assert_int_equal(guard_trip(f->g, "payment", clock_now(f->clock)), 0);
	assert_string_equal(state_of(f, "payment"), "FORCED_OPEN");
	assert_int_equal(call(f, &s, "GET", NULL, 0, 1000, &r), ERR_UNAVAILABLE);
	assert_string_equal(msg_resp_header(&r, "Retry-After"), "3");
	msg_resp_clear(&r);
	assert_int_equal(guard_disable(f->g, "payment", clock_now(f->clock)), 0);
	assert_string_equal(state_of(f, "payment"), "DISABLED");
	assert_int_equal(guard_reset(f->g, "payment", clock_now(f->clock)), 0);
	assert_string_equal(state_of(f, "payment"), "CLOSED");
	fx_free(f);
}

/* ---- operators and the JSON view --------------------------------------------------------- */

static void test_operators_and_list(void **state)
{
	fx *f = fx_new("gateway", small);
	int64_t now = clock_now(f->clock);
	/* trip creates the edge: the operator means future calls too. */
	assert_int_equal(guard_trip(f->g, "payment", now), 0);
	assert_int_equal(guard_trip(f->g, "payment", now), 0);
	assert_int_equal(guard_reset(f->g, "nobody", now), ERR_NOT_FOUND);
	assert_int_equal(guard_trip(f->g, "Not A Name", now), ERR_INVALID);
	assert_int_equal(guard_reset(f->g, "Not A Name", now), ERR_INVALID);
	assert_null(guard_edge_json(f->g, "nobody", now));
	one(f, "catalog", 0, 200);
	one(f, "cart", 0, 200);
	json_t *list = guard_list(f->g, now);
	assert_int_equal(json_array_size(list), 3);
	static const char *const order[] = { "cart", "catalog", "payment" };
	for (int i = 0; i < 3; i++) {
		json_t *b = json_array_get(list, (size_t)i);
		assert_string_equal(json_string_value(json_object_get(b, "from")), "gateway");
		assert_string_equal(json_string_value(json_object_get(b, "to")), order[i]);
		static const char *const fields[] = { "state", "failure_rate", "slow_call_rate",
						      "calls", "failed_calls", "slow_calls",
						      "not_permitted", "transitions",
						      "open_remaining_ms", "max_concurrent",
						      "in_flight", "bulkhead_rejected" };
		for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
			assert_non_null(json_object_get(b, fields[k]));
	}
	json_t *p = json_array_get(list, 2);
	assert_string_equal(json_string_value(json_object_get(p, "state")), "FORCED_OPEN");
	/* Below the minimum the rates read -1, as resilience4j reports them. */
	assert_true(json_real_value(json_object_get(json_array_get(list, 1), "failure_rate")) == -1.0);
	json_decref(list);

	/* Edges are bounded; past the bound calls run unguarded. */
	char name[16];
	for (int i = 3; i < GUARD_MAX_EDGES; i++) {
		snprintf(name, sizeof(name), "svc%d", i);
		one(f, name, 0, 200);
	}
	assert_int_equal(guard_trip(f->g, "one-too-many", now), ERR_TOO_LARGE);
	guard_permit pm;
	int why;
	assert_int_equal(guard_enter(f->g, "one-too-many", now, &pm, &why, NULL), 0);
	assert_null(pm.edge);
	guard_done(&pm, now, 1);
	assert_int_equal(guard_enter(f->g, "Bad", now, &pm, &why, NULL), ERR_INVALID);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_bad_configuration),
		cmocka_unit_test(test_outcome_rules),
		cmocka_unit_test(test_declines_never_open),
		cmocka_unit_test(test_breaker_refuses_and_recovers),
		cmocka_unit_test(test_bulkhead_refuses_at_once),
		cmocka_unit_test(test_disabled_guard_passes_everything),
		cmocka_unit_test(test_deadline_helpers),
		cmocka_unit_test(test_retries_idempotent_calls_with_the_same_key),
		cmocka_unit_test(test_no_retry_when_not_safe_or_not_useful),
		cmocka_unit_test(test_deadline_bounds_every_attempt),
		cmocka_unit_test(test_call_refused_by_breaker_and_bulkhead),
		cmocka_unit_test(test_operators_and_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
