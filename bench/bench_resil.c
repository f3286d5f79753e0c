/* bench_resil: what the resilience layer costs an engine per outbound call,
 * in nanoseconds, with the network taken out: the "call" is a function that
 * answers at once. Each variant runs the same number of calls on a real
 * clock (the layer reads it twice per attempt), and the baseline (the bare
 * function) is subtracted.
 *
 *   bench/bench_resil [CALLS]
 *
 * Variants:
 *   bare              the send function alone (the baseline)
 *   breaker           breaker_acquire + breaker_record
 *   enter/done        guard_enter + guard_done (edge lookup, breaker,
 *                     bulkhead)
 *   guard_call ok     the engines' path: deadline, edge, breaker, bulkhead,
 *                     the deadline header, outcome, no retry
 *   guard_call retry  every attempt answers 503, three attempts with zero
 *                     backoff (retry bookkeeping: backoff draw, metrics,
 *                     response reset), per attempt
 *   2 threads         guard_call ok from two threads on one edge
 *   disabled          guard_call with resil.enabled=0 */
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

typedef struct run {
	guard *g;
	clock_src *clock;
	rng *rng;
	long calls;
	int64_t deadline_ahead_ns; /* 0: no deadline */
} run;

static void *call_loop(void *arg)
{
	run *r = arg;
	msg_req q;
	msg_req_init(&q, "GET", "/v1/products/BOOK-001");
	msg_resp resp;
	msg_resp_init(&resp);
	guard_call_opts o = { .clock = r->clock, .rng = r->rng, .timeout_ms = 2000, .idempotent = 1 };
	for (long i = 0; i < r->calls; i++) {
		if (r->deadline_ahead_ns)
			o.deadline_us = clock_now(r->clock) + r->deadline_ahead_ns / 1000;
		guard_call(r->g, "catalog", &o, send_now, NULL, &q, &resp);
	}
	msg_resp_clear(&resp);
	msg_req_clear(&q);
	return NULL;
}

static double per_call(int64_t t0, int64_t t1, long n) { return (double)(t1 - t0) / (double)n; }

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	if (n < 1000)
		n = 1000;
	clock_src *clk = clock_real_new();
	rng *r = rng_new(1);
	metrics *m = metrics_new();
	config *cfg = config_new();
	/* Large windows and thresholds: the breaker never opens here. */
	config_set(cfg, "breaker.failure_rate", "100");
	config_set(cfg, "breaker.min_calls", "100000");
	config_set(cfg, "breaker.window", "100000");
	config_set(cfg, "retry.base_ms", "0");
	config_set(cfg, "retry.cap_ms", "0");
	char err[256];
	guard *g = guard_new("order", cfg, NULL, m, err, sizeof(err));
	if (!g) {
		fprintf(stderr, "bench_resil: %s\n", err);
		return 1;
	}
	printf("bench_resil: %ld calls per variant, ns per call (minus the bare call)\n", n);

	/* bare */
	msg_req q;
	msg_req_init(&q, "GET", "/v1/products/BOOK-001");
	msg_resp resp;
	msg_resp_init(&resp);
	int64_t t0 = ns_now();
	for (long i = 0; i < n; i++)
		send_now(NULL, &q, &resp, 2000);
	double bare = per_call(t0, ns_now(), n);
	printf("  %-28s %8.1f ns (absolute)\n", "bare send", bare);

	breaker *b = breaker_new("order", "catalog", NULL, NULL);
	t0 = ns_now();
	for (long i = 0; i < n; i++) {
		int64_t now = clock_now(clk);
		if (breaker_acquire(b, now) == 0)
			breaker_record(b, now, 1000, 0);
	}
	printf("  %-28s %8.1f ns (clock read included)\n", "breaker acquire+record",
	       per_call(t0, ns_now(), n));
	breaker_free(b);

	t0 = ns_now();
	for (long i = 0; i < n; i++) {
		guard_permit p;
		int why;
		int64_t now = clock_now(clk);
		if (guard_enter(g, "catalog", now, &p, &why, NULL) == 0)
			guard_done(&p, clock_now(clk), 0);
	}
	printf("  %-28s %8.1f ns (two clock reads included)\n", "guard enter+done",
	       per_call(t0, ns_now(), n));

	run one = { .g = g, .clock = clk, .rng = r, .calls = n };
	t0 = ns_now();
	call_loop(&one);
	double ok = per_call(t0, ns_now(), n) - bare;
	printf("  %-28s %8.1f ns\n", "guard_call, success", ok);

	one.deadline_ahead_ns = 5000000000LL;
	t0 = ns_now();
	call_loop(&one);
	printf("  %-28s %8.1f ns\n", "guard_call, with deadline", per_call(t0, ns_now(), n) - bare);
	one.deadline_ahead_ns = 0;

	/* Failures on a fresh edge, fewer than its window's minimum, so that
	 * the breaker never opens and every call makes all its attempts. */
	guard *g2 = guard_new("order", cfg, NULL, m, err, sizeof(err));
	run failing = { .g = g2, .clock = clk, .rng = r, .calls = n < 30000 ? n : 30000 };
	answer_status = 503;
	long before = sends;
	t0 = ns_now();
	call_loop(&failing);
	int64_t t1 = ns_now();
	long attempts = sends - before;
	answer_status = 200;
	printf("  %-28s %8.1f ns per attempt (%.2f attempts per call)\n",
	       "guard_call, 503 + retries", (double)(t1 - t0) / (double)attempts - bare,
	       (double)attempts / (double)failing.calls);
	guard_free(g2);

	run two[2] = { { .g = g, .clock = clk, .rng = r, .calls = n / 2 },
		       { .g = g, .clock = clk, .rng = r, .calls = n / 2 } };
	pthread_t th[2];
	t0 = ns_now();
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, call_loop, &two[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("  %-28s %8.1f ns per call, wall time over both threads\n",
	       "guard_call, 2 threads", per_call(t0, ns_now(), n) - bare);

	config_set(cfg, "resil.enabled", "0");
	guard *off = guard_new("order", cfg, NULL, m, err, sizeof(err));
	run dis = { .g = off, .clock = clk, .rng = r, .calls = n };
	t0 = ns_now();
	call_loop(&dis);
	printf("  %-28s %8.1f ns\n", "guard_call, resil.enabled=0", per_call(t0, ns_now(), n) - bare);

	t0 = ns_now();
	for (long i = 0; i < n; i++)
		(void)clock_now(clk);
	printf("  %-28s %8.1f ns (for scale)\n", "one clock read", per_call(t0, ns_now(), n));

	guard_free(off);
	guard_free(g);
	msg_resp_clear(&resp);
	msg_req_clear(&q);
	config_free(cfg);
	metrics_free(m);
	rng_free(r);
	clock_free(clk);
	return 0;
}
