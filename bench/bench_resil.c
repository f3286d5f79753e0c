/* bench_resil: what the resilience layer costs an engine per outbound call,
 * in nanoseconds, with the network taken out: the "call" is a function that
 * answers at once. Every variant runs CALLS calls, REPS times; the machine
 * is shared, so the minimum and the median of the repetitions are printed,
 * less the bare function call (a few ns). Time is read from the real clock,
 * as the layer does (twice per attempt).
 *
 *   bench/bench_resil [CALLS] [REPS]
 *
 * Variants:
 *   breaker           breaker_acquire + breaker_record, one clock read
 *   enter/done        guard_enter + guard_done: edge lookup, breaker,
 *                     bulkhead, two clock reads
 *   call              guard_call, the engines' path (engine_call_service):
 *                     edge, breaker, bulkhead, the deadline header, the
 *                     outcome, no retry
 *   call+deadline     the same with a caller's deadline
 *   retry             every attempt answers 503: three attempts, zero
 *                     backoff; per attempt (backoff draw, metrics, reset)
 *   call, 2 threads   guard_call from two threads on one edge (wall time
 *                     per call)
 *   disabled          guard_call with resil.enabled=0 (the header and the
 *                     clock reads remain) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "resil/breaker.h"
#include "resil/guard.h"

static int64_t ns_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int answer_status = 200;
static long sends;

static int send_now(void *ud, msg_req *req, msg_resp *resp, int64_t timeout_ms)
{
	(void)ud;
	(void)req;
	(void)timeout_ms;
	__atomic_add_fetch(&sends, 1, __ATOMIC_RELAXED);
	resp->status = answer_status;
	return 0;
}

typedef struct env {
	guard *g;
	clock_src *clock;
	rng *rng;
	long calls;
	int with_deadline;
} env;

static void *call_loop(void *arg)
{
	env *e = arg;
	msg_req q;
	msg_req_init(&q, "GET", "/v1/products/BOOK-001");
	msg_resp resp;
	msg_resp_init(&resp);
	guard_call_opts o = { .clock = e->clock, .rng = e->rng, .timeout_ms = 2000, .idempotent = 1 };
	for (long i = 0; i < e->calls; i++) {
		if (e->with_deadline)
			o.deadline_us = clock_now(e->clock) + 5000000;
		guard_call(e->g, "catalog", &o, send_now, NULL, &q, &resp);
	}
	msg_resp_clear(&resp);
	msg_req_clear(&q);
	return NULL;
}

/* ns per unit of one repetition of variant v. */
typedef double (*variant_fn)(env *e);

static double v_bare(env *e)
{
	msg_req q;
	msg_req_init(&q, "GET", "/x");
	msg_resp resp;
	msg_resp_init(&resp);
	int64_t t0 = ns_now();
	for (long i = 0; i < e->calls; i++)
		send_now(NULL, &q, &resp, 2000);
	double ns = (double)(ns_now() - t0) / (double)e->calls;
	msg_req_clear(&q);
	return ns;
}

static double v_breaker(env *e)
{
	breaker *b = breaker_new("order", "catalog", NULL, NULL);
	int64_t t0 = ns_now();
	for (long i = 0; i < e->calls; i++) {
		int64_t now = clock_now(e->clock);
		if (breaker_acquire(b, now) == 0)
			breaker_record(b, now, 1000, 0);
	}
	double ns = (double)(ns_now() - t0) / (double)e->calls;
	breaker_free(b);
	return ns;
}

static double v_enter_done(env *e)
{
	int64_t t0 = ns_now();
	for (long i = 0; i < e->calls; i++) {
		guard_permit p;
		int why;
		if (guard_enter(e->g, "catalog", clock_now(e->clock), &p, &why, NULL) == 0)
			guard_done(&p, clock_now(e->clock), 0);
	}
	return (double)(ns_now() - t0) / (double)e->calls;
}

static double v_call(env *e)
{
	int64_t t0 = ns_now();
	call_loop(e);
	return (double)(ns_now() - t0) / (double)e->calls;
}

static double v_deadline(env *e)
{
	env d = *e;
	d.with_deadline = 1;
	return v_call(&d);
}

static config *bench_config(int enabled)
{
	config *cfg = config_new();
	/* Windows so large the breaker never opens here. */
	config_set(cfg, "breaker.failure_rate", "100");
	config_set(cfg, "breaker.min_calls", "100000");
	config_set(cfg, "breaker.window", "100000");
	config_set(cfg, "retry.base_ms", "0");
	config_set(cfg, "retry.cap_ms", "0");
	config_set(cfg, "resil.enabled", enabled ? "1" : "0");
	return cfg;
}

static double v_retry(env *e)
{
	/* A fresh edge, and fewer failures than its window's minimum, so that
	 * every call makes all three attempts. */
	config *cfg = bench_config(1);
	metrics *m = metrics_new();
	env f = *e;
	f.g = guard_new("order", cfg, NULL, m, NULL, 0);
	f.calls = e->calls < 30000 ? e->calls : 30000;
	answer_status = 503;
	long before = sends;
	int64_t t0 = ns_now();
	call_loop(&f);
	double ns = (double)(ns_now() - t0) / (double)(sends - before);
	answer_status = 200;
	guard_free(f.g);
	metrics_free(m);
	config_free(cfg);
	return ns;
}

static double v_two_threads(env *e)
{
	env half[2] = { *e, *e };
	half[0].calls = half[1].calls = e->calls / 2;
	pthread_t th[2];
	int64_t t0 = ns_now();
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, call_loop, &half[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	return (double)(ns_now() - t0) / (double)e->calls;
}

static double v_disabled(env *e)
{
	config *cfg = bench_config(0);
	env d = *e;
	d.g = guard_new("order", cfg, NULL, NULL, NULL, 0);
	double ns = v_call(&d);
	guard_free(d.g);
	config_free(cfg);
	return ns;
}

static double v_clock(env *e)
{
	int64_t t0 = ns_now();
	for (long i = 0; i < e->calls; i++)
		(void)clock_now(e->clock);
	return (double)(ns_now() - t0) / (double)e->calls;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	if (n < 1000)
		n = 1000;
	if (reps < 1 || reps > 50)
		reps = 5;
	clock_src *clk = clock_real_new();
	rng *r = rng_new(1);
	metrics *m = metrics_new();
	config *cfg = bench_config(1);
	char err[256];
	guard *g = guard_new("order", cfg, NULL, m, err, sizeof(err));
	if (!g) {
		fprintf(stderr, "bench_resil: %s\n", err);
		return 1;
	}
	env e = { .g = g, .clock = clk, .rng = r, .calls = n };
	env warm = e;
	warm.calls = n / 2;
	call_loop(&warm); /* page faults, caches, the CPU's clock */

	static const struct {
		const char *name;
		variant_fn fn;
		const char *note;
	} variants[] = {
		{ "bare call", v_bare, "absolute" },
		{ "one clock read", v_clock, "absolute, for scale" },
		{ "breaker acquire+record", v_breaker, "one clock read included" },
		{ "guard enter+done", v_enter_done, "two clock reads included" },
		{ "guard_call, success", v_call, "" },
		{ "guard_call, with deadline", v_deadline, "" },
		{ "guard_call, 503 + retries", v_retry, "per attempt, 3 per call" },
		{ "guard_call, 2 threads", v_two_threads, "wall time per call" },
		{ "guard_call, resil off", v_disabled, "" },
	};
	printf("bench_resil: %ld calls x %d repetitions; ns per call, less the bare call "
	       "unless absolute\n",
	       n, reps);
	printf("  %-28s %9s %9s\n", "variant", "min", "median");
	double bare = 0;
	for (size_t k = 0; k < sizeof(variants) / sizeof(variants[0]); k++) {
		double v[50];
		for (int i = 0; i < reps; i++)
			v[i] = variants[k].fn(&e);
		qsort(v, (size_t)reps, sizeof(v[0]), by_value);
		double sub = strstr(variants[k].note, "absolute") ? 0 : bare;
		if (k == 0)
			bare = v[0];
		printf("  %-28s %9.1f %9.1f  %s\n", variants[k].name, v[0] - sub, v[reps / 2] - sub,
		       variants[k].note);
	}
	guard_free(g);
	config_free(cfg);
	metrics_free(m);
	rng_free(r);
	clock_free(clk);
	return 0;
}
