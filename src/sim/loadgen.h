/* loadgen: the load simulator's run (`ecom sim run`). An open model: the
 * arrivals come at their times (sim/arrivals) whatever the platform does;
 * each starts a journey (sim/journey) on a free worker, and one that finds
 * no worker free within the scenario's slack, or that the generator itself
 * reaches too late, is counted as dropped, never started late. Latency is
 * measured from the intended start of each request (the arrival's due time,
 * or the end of the think time before a step), so a slow platform cannot
 * hide its queueing (no coordinated omission). All requests go through one
 * libcurl multi handle (net/http_multi) on the calling thread; the
 * scenario's schedule runs on its own thread (sim/schedule).
 *
 * A run: read the catalog, apply [setup], sign the user pool in
 * (sim/pool), run the arrivals for the duration, let journeys under way
 * finish for the grace period (then cut them), read back every order placed
 * until it is final or the settle time is up, run the audit hook, and
 * decide the thresholds. */
#ifndef ECOM_LOADGEN_H
#define ECOM_LOADGEN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/report.h"
#include "sim/scenario.h"

/* The audit hook: run once the orders settled, against the platform at
 * url with the admin token. Returns the number of invariants that failed
 * (>= 0, 0 all held) with a one-line summary in text, or a negative error
 * when it could not run (text says why). `ecom audit` plugs in here; its
 * result is counted as the threshold audit_failures == 0. */
typedef int (*loadgen_audit_fn)(void *ud, const char *url, const char *admin_token, char *text,
				size_t len);

/* What a run has done so far, given about once a second to a watcher (the
 * operator console's Load view) from the run's thread. */
typedef struct loadgen_progress {
	double elapsed_s, planned_s;
	double rps;       /* requests answered per second since the last report */
	double p99_ms;    /* p99 latency of the requests answered since the last report */
	double p99_all_ms; /* p99 latency of the run so far */
	uint64_t requests, errors, dropped;
	int in_flight;
} loadgen_progress;

typedef void (*loadgen_progress_fn)(void *ud, const loadgen_progress *p);

typedef struct loadgen_opts {
	const char *url;         /* the gateway (or any server, for health-only scenarios) */
	const char *admin_token; /* for [setup] and [schedule]; "" when unknown */
	const char *state_dir;   /* for kill/restart/pause/resume; NULL when unknown */
	FILE *log;               /* setup messages; NULL for none */
	int progress;            /* a live line on stderr, once a second */
	uint64_t nonce;          /* tells runs apart in idempotency keys; 0: from the OS */
	loadgen_audit_fn audit;  /* NULL: no audit in this build */
	void *audit_ud;
	/* When it becomes non-zero (a signal handler sets it) the run ends at
	 * once: no more arrivals, journeys under way cut, orders read back for
	 * at most 2 s, the summary marked interrupted; while users sign in, the
	 * run does not start. NULL: never. */
	volatile sig_atomic_t *interrupted;
	/* Called once on the calling thread as the arrivals start, with that
	 * moment's clock_mono_us() (t=0 of the run and of its schedule), after
	 * the users signed in. NULL: none. */
	void (*on_start)(void *ud, int64_t t0_mono_us);
	void *on_start_ud;
	/* Called about once a second while the run goes on (NULL: nobody
	 * watches); on_progress must not block. */
	loadgen_progress_fn on_progress;
	void *progress_ud;
} loadgen_opts;

/* Runs s against the platform and fills r (made by report_new(s)), then
 * decides the thresholds (report_decide). 0 when the run took place,
 * whatever it measured; otherwise an error with err saying why it could not
 * start (the catalog could not be read, no user could sign in, ...). */
int loadgen_run(const scenario *s, const loadgen_opts *o, report *r, char *err, size_t errlen);

#endif
