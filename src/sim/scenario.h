/* scenario: a load scenario (data/scenarios/NAME.scn), read and validated.
 * The format is line-based, in sections (doc/scenarios.md has it all):
 *
 *     # comment
 *     [scenario]   name = ..., description = ...
 *     [load]       rate = 20  duration = 60s   (or stage = 10s 0 -> 50, ...)
 *                  users, workers, threads, slack, timeout, seed, arrival,
 *                  settle, grace
 *     [journey NAME]  weight = 60  steps = browse view add_to_cart checkout
 *                     think = 200ms..1s
 *     [checkout]   method, tokens = tok_visa:98 tok_chargeDeclined:2,
 *                  qty = 1..2, duplicate = 5%, retries = 1
 *     [catalog]    hot_sku, hot_share, queries
 *     [setup]      stock = SKU N
 *     [schedule]   at 10s fault set stripe outage duration=20s
 *     [thresholds] p99 < 250ms
 *
 * Every error names the file, the line and what was expected. */
#ifndef ECOM_SCENARIO_H
#define ECOM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "sim/threshold.h"

/* What one step of a journey does (one request, except where noted). */
typedef enum scenario_action {
	SCN_BROWSE,      /* GET /v1/products?page_size=20[&category=C] */
	SCN_SEARCH,      /* GET /v1/search?q=WORD&limit=20 */
	SCN_VIEW,        /* GET /v1/products/{sku} */
	SCN_ADD_TO_CART, /* PUT /v1/cart/items/{sku} {qty} */
	SCN_CART,        /* GET /v1/cart */
	SCN_CHECKOUT,    /* POST /v1/orders, Idempotency-Key */
	SCN_CANCEL,      /* POST /v1/orders/{id}/cancel (the journey's order) */
	SCN_ORDERS,      /* GET /v1/orders?limit=10 */
	SCN_HEALTH,      /* GET /health (no user; for the generator's ceiling) */
	SCN_BROWSE_V2,   /* GET /v2/products?page_size=20[&category=C] */
	SCN_VIEW_V2,     /* GET /v2/products/{sku} */
	SCN_NACTIONS
} scenario_action;

/* What a [schedule] line does. */
typedef enum scenario_op {
	SCN_FAULT_SET,     /* PUT /admin/faults/{target} */
	SCN_FAULT_CLEAR,   /* DELETE /admin/faults/{target} */
	SCN_BREAKER_TRIP,  /* POST /admin/breakers/{target}/trip */
	SCN_BREAKER_RESET, /* POST /admin/breakers/{target}/reset */
	SCN_KILL,          /* SIGKILL the instances (the supervisor restarts them) */
	SCN_RESTART,       /* SIGTERM the instances (the supervisor restarts them) */
	SCN_PAUSE,         /* SIGSTOP: a hung service */
	SCN_RESUME,        /* SIGCONT */
	SCN_BROKER_DOWN,   /* the Kafka mock broker down (POST /admin/bus/broker/down) */
	SCN_BROKER_UP,     /* and up again */
	SCN_NOPS
} scenario_op;

#define SCN_NAME_MAX 32
#define SCN_MAX_STAGES 32
#define SCN_MAX_JOURNEYS 16
#define SCN_MAX_STEPS 16
#define SCN_MAX_TOKENS 8
#define SCN_MAX_QUERIES 32
#define SCN_MAX_EVENTS 64
#define SCN_MAX_THRESHOLDS 48
#define SCN_MAX_STOCK 16
#define SCN_MAX_USERS 10000
#define SCN_MAX_WORKERS 20000
#define SCN_MAX_THREADS 16

typedef struct scenario_stage {
	int64_t dur_us;
	double from, to; /* arrivals per second at the start and the end */
} scenario_stage;

typedef struct scenario_journey {
	char name[SCN_NAME_MAX];
	double weight;
	int nsteps;
	scenario_action steps[SCN_MAX_STEPS];
	int64_t think_min_us, think_max_us; /* before every step but the first */
} scenario_journey;

typedef struct scenario_token {
	char token[64];
	double weight;
} scenario_token;

typedef struct scenario_event {
	int64_t at_us;
	scenario_op op;
	char target[64];
	/* SCN_FAULT_SET: the PUT body's fields; -1 when not given */
	int64_t latency_ms, jitter_ms, duration_s;
	double error_rate;
	int error_status;
	int outage;
	int line;
	char text[160]; /* the line as written, for the report */
} scenario_event;

typedef struct scenario_stock {
	char sku[64];
	int64_t on_hand;
} scenario_stock;

typedef enum scenario_arrival { SCN_UNIFORM, SCN_POISSON } scenario_arrival;

typedef struct scenario {
	char path[512];
	char name[64];
	char description[256];
	/* [load] */
	int nstages;
	scenario_stage stages[SCN_MAX_STAGES];
	int closed;       /* rate = max: every worker loops without pause (ceiling runs) */
	int64_t closed_us; /* its duration */
	uint64_t seed;
	int users;
	int workers;
	int threads;      /* generator threads, each with its own share of the workers */
	int64_t slack_us;
	int64_t timeout_us;
	int64_t settle_us; /* how long to wait for orders to end after the run */
	int64_t grace_us;  /* how long journeys under way may finish after the run */
	scenario_arrival arrival;
	/* [journey NAME] */
	int njourneys;
	scenario_journey journeys[SCN_MAX_JOURNEYS];
	/* [checkout] */
	char method[16];
	int ntokens;
	scenario_token tokens[SCN_MAX_TOKENS];
	int qty_min, qty_max;
	double duplicate; /* probability a checkout is sent again with its key */
	int retries;      /* resends with the same key after a failure */
	/* [catalog] */
	char hot_sku[64];
	double hot_share;
	int nqueries;
	char queries[SCN_MAX_QUERIES][32];
	/* [setup] */
	int nstock;
	scenario_stock stock[SCN_MAX_STOCK];
	/* [schedule] */
	int nevents;
	scenario_event events[SCN_MAX_EVENTS];
	/* [thresholds] */
	int nthresholds;
	threshold thresholds[SCN_MAX_THRESHOLDS];
} scenario;

/* Reads and validates the scenario at path into a new scenario (caller
 * frees with scenario_free). NULL with err "FILE:LINE: what was expected"
 * (or "FILE: reason" for the file as a whole). */
scenario *scenario_load(const char *path, char *err, size_t errlen);
/* The same from text in memory; name is used in messages as the file. */
scenario *scenario_parse(const char *name, const char *text, char *err, size_t errlen);
void scenario_free(scenario *s);

/* The run's length: the stages' total (or the closed run's duration). */
int64_t scenario_duration_us(const scenario *s);
/* Arrivals per second at t (0 outside the stages). */
double scenario_rate_at(const scenario *s, int64_t t_us);
/* Replaces the stages with one constant rate for dur_us (dur_us 0 keeps the
 * current total). ERR_INVALID for a negative rate. */
int scenario_set_rate(scenario *s, double rate, int64_t dur_us);
/* Stretches the timeline (stages and schedule times) to dur_us. */
int scenario_set_duration(scenario *s, int64_t dur_us);
/* Adds one threshold (from --threshold). 0 or ERR_INVALID with err. */
int scenario_add_threshold(scenario *s, const char *expr, char *err, size_t errlen);

const char *scenario_action_name(scenario_action a);
/* -1 for an unknown name. */
int scenario_action_of(const char *name);
/* 1 when the action needs a signed-in user. */
int scenario_action_needs_user(scenario_action a);
/* The names of every action, NULL-ended (the endpoints of thresholds). */
const char *const *scenario_action_names(void);
const char *scenario_op_name(scenario_op op);

#endif
