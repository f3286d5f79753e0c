/* simfix: a payment provider's simulator (stripe_sim_engine, or
 * paypal_sim_engine) served on a loopback http_server, as the daemon host
 * serves it, for tests of code that talks to the provider over real HTTP
 * (the adapters, the payment engine). The handler records each API request
 * (every path but /admin/...) as it arrived (to check it against the
 * provider's documented shape), hands it to the engine and sleeps for the
 * simulator's X-Sim-Delay-Us, so an injected latency is a real one. The
 * simulator has its own real clock, rng, logger (to /dev/null), metrics
 * and config, which a test may borrow for the client side. Failures fail
 * the running cmocka test (test code only); include after cmocka.h. */
#ifndef ECOM_TEST_SIMFIX_H
#define ECOM_TEST_SIMFIX_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/http_server.h"
#include "net/msg.h"
#include "services/engine.h"

#define SIMFIX_MAX_SEEN 64

/* One request as it arrived on the wire. */
typedef struct simfix_seen {
	char method[8];
	char path[128];
	char ctype[96];
	char auth[160];
	char idem[300];
	char version[32];
	char request_id[128]; /* PayPal-Request-Id */
	char *body;
} simfix_seen;

typedef struct simfix {
	const engine_def *def;
	const char *provider; /* "stripe", "paypal": its admin routes' name */
	clock_src *clock;
	rng *rng;
	FILE *logf;
	logger *log;
	metrics *metrics;
	config *config;
	engine_ctx ctx; /* the simulator's */
	void *sim;
	http_server *srv;
	char url[64]; /* "http://127.0.0.1:PORT" */
	pthread_mutex_t mu;
	simfix_seen seen[SIMFIX_MAX_SEEN]; /* the first SIMFIX_MAX_SEEN /v1 requests */
	int nseen;
} simfix;

/* A simulator whose admin routes take the bearer token admin, listening on
 * a free loopback port. Owned: simfix_free(). NULL (with a line on stderr)
 * when it cannot start, for use in setups. */
simfix *simfix_new(const char *admin);
/* The same for the simulator def, whose admin routes are named provider,
 * its configuration given as key, value, ..., NULL (config may be NULL). */
simfix *simfix_start(const engine_def *def, const char *provider, const char *admin,
		     const char *const *settings);
void simfix_free(simfix *s);
/* Runs the simulator's tick now (its webhooks are delivered then, through
 * s->ctx.call, which a test sets). */
void simfix_tick(simfix *s);

/* An engine_call_fn over libcurl (http_client_do, connect timeout 200 ms),
 * as the daemon's; ud is unused. */
int simfix_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		int64_t timeout_ms);

/* The /v1 requests recorded so far, and the last one (fails the test when
 * there is none). */
int simfix_nseen(simfix *s);
const simfix_seen *simfix_last(simfix *s);

/* An admin request straight to the engine; fails the test unless it is
 * 200. Returns the parsed answer (new reference). */
json_t *simfix_admin(simfix *s, const char *method, const char *path, const char *body);
/* The integer counter name of GET /admin/<provider>/stats. */
int64_t simfix_stat(simfix *s, const char *name);
/* PUT /admin/faults/<provider> with json, or DELETE it when json is NULL. */
void simfix_fault(simfix *s, const char *json);
/* The same for another target ("paypal.capture"). */
void simfix_fault_on(simfix *s, const char *target, const char *json);

#endif
