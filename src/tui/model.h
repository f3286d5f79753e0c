/* model: what the operator console shows, as plain structs, read from the
 * admin API's JSON (API.md, "Operations") and from the platform's log
 * files; and the figures derived from them (the overview's meters, ages,
 * an operator's fault line). No I/O, no terminal, no clock of its own (the
 * time is passed in), so every function here is unit-tested on real
 * answers. Each list is an owned array: model_list_free() frees it. */
#ifndef ECOM_TUI_MODEL_H
#define ECOM_TUI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/tracer.h"

#define MODEL_NAME 64
#define MODEL_TIME 40
#define MODEL_TEXT 160

/* A service: its instances from GET /admin/services, and what it served
 * lately from GET /admin/stats (has_stats 0 until that route answers). */
typedef struct model_service {
	char name[MODEL_NAME];
	int instances; /* registered instances (0: known only from stats or the state directory) */
	int healthy;
	int expected;  /* instances the supervisor runs (instances.json), 0 when unknown */
	int outstanding; /* the gateway's calls in flight to it */
	int has_stats;
	double rps, p50_ms, p99_ms, error_rate, in_flight;
} model_service;

typedef struct model_breaker {
	char from[MODEL_NAME], to[MODEL_NAME], state[24], instance[MODEL_NAME];
	double failure_rate, slow_call_rate; /* percent; < 0 below the minimum of calls */
	long long calls;
} model_breaker;

typedef struct model_fault {
	char target[MODEL_NAME], instance[MODEL_TEXT];
	long long latency_ms, jitter_ms;
	double error_rate;
	int error_status, outage;
	char expires_at[MODEL_TIME]; /* "" for never */
} model_fault;

typedef struct model_queue {
	char topic[MODEL_NAME], consumer[MODEL_NAME], service[MODEL_NAME];
	long long depth, lag, lag_ms, dead; /* depth, lag < 0: not known yet */
	char error[MODEL_TEXT];
} model_queue;

typedef struct model_saga {
	char order_id[MODEL_NAME], state[24], status[24], user_id[MODEL_NAME], reason[MODEL_NAME];
	int64_t created_us, updated_us; /* 0 when unreadable */
} model_saga;

typedef struct model_step {
	char name[32], status[24], at[MODEL_TIME], detail[MODEL_TEXT];
	long long attempts;
} model_step;

/* GET /admin/sagas/{order_id}: the saga, its steps and its trace's spans. */
typedef struct model_saga_detail {
	model_saga saga;
	long long total_cents;
	char currency[8];
	int nsteps;
	model_step steps[16];
	span *spans; /* owned */
	size_t nspans;
} model_saga_detail;

typedef struct model_product {
	char sku[MODEL_NAME], name[96], category[32];
} model_product;

typedef struct model_stock {
	char sku[MODEL_NAME], name[96];
	int known; /* 0 until GET /v1/inventory/{sku} answered */
	long long on_hand, reserved, available;
	int low; /* the service's low_stock (at or below its threshold) */
} model_stock;

typedef struct model_logline {
	int64_t ts_us;
	char ts[MODEL_TIME], level[8], service[32], trace_id[40], source[MODEL_NAME];
	char msg[512];
} model_logline;

/* The overview's header. Figures that cannot be known are NAN (rates and
 * times) or -1 (counts): the console shows "n/a". */
typedef struct model_meters {
	int services_up, services_total;
	double rps, error_pct, p99_ms;
	int open_breakers;   /* OPEN, HALF_OPEN or FORCED_OPEN */
	int orders_per_min;  /* orders created in the last minute; -1 unknown */
	int orders_capped;   /* 1 when the list was full and held no older order (a lower bound) */
	long long queue_lag, queue_lag_ms, dead_letters;
} model_meters;

void model_list_free(void *list);
void model_saga_detail_free(model_saga_detail *d);

/* The parsers: the answer's JSON in, a new array and its length out (both
 * untouched on failure). 0, or ERR_PARSE when the shape is not the
 * route's, ERR_NOMEM. Fields missing from a row leave it empty / zero. */
int model_parse_services(const json_t *v, model_service **out, size_t *n);
/* Merges GET /admin/stats into services (rows it names that are not there
 * are added). Accepts {services: [{service|name, rps, p50_ms, p99_ms,
 * error_rate, in_flight}]} and {services: {NAME: {...}}}. */
int model_merge_stats(const json_t *v, model_service **svcs, size_t *n);
/* Adds instances.json's services (expected instances, the gateway
 * included; not the simulators, which are the outside world) to the list. */
int model_merge_instances(const json_t *v, model_service **svcs, size_t *n);
int model_parse_breakers(const json_t *v, model_breaker **out, size_t *n);
int model_parse_faults(const json_t *v, model_fault **out, size_t *n);
int model_parse_queues(const json_t *v, model_queue **out, size_t *n);
int model_parse_sagas(const json_t *v, model_saga **out, size_t *n);
int model_parse_products(const json_t *v, model_product **out, size_t *n);
/* One GET /v1/inventory/{sku} answer into st (sku kept). */
int model_parse_stock(const json_t *v, model_stock *st);
/* GET /admin/sagas/{id} into a new detail (free with model_saga_detail_free). */
int model_parse_saga_detail(const json_t *v, model_saga_detail **out);

/* One line of a log file (STATE/log/SOURCE.log): a JSON line {ts, level,
 * service, msg, trace_id?}, or any other text kept whole as msg. 0, or
 * ERR_INVALID for an empty line. */
int model_parse_logline(const char *line, size_t len, const char *source, model_logline *out);
/* 1 when the line matches filter: empty, a service's name (exactly), or a
 * substring of the trace id, the service, the level or the message. */
int model_logline_matches(const model_logline *l, const char *filter);

/* "2026-01-02T03:04:05.678Z" into microseconds since the epoch. 0 or
 * ERR_PARSE. */
int model_parse_time(const char *s, int64_t *us);
/* An age as "4s", "12m", "3h", "2d" ("-" for an unknown time). */
void model_fmt_age(int64_t now_us, int64_t then_us, char *buf, size_t len);

/* sagas: the newest nsagas orders, from a list of at most sagas_limit
 * (sagas_known 0 when it could not be read). */
void model_meters_compute(const model_service *svcs, size_t nsvcs, const model_breaker *b,
			  size_t nb, const model_queue *q, size_t nq, const model_saga *sagas,
			  size_t nsagas, size_t sagas_limit, int sagas_known, int64_t now_us,
			  model_meters *m);
/* 1 for the states an operator should look at (not CLOSED, not DISABLED). */
int model_breaker_is_open(const char *state);

/* An operator's fault line, "TARGET [latency=MS] [jitter=MS] [error=RATE]
 * [status=N] [outage] [for=SECONDS]", into target and the PUT
 * /admin/faults/{target} body (a new object). Times are numbers in their
 * unit or durations with one (latency=1s, for=15m: sim/units), rates a
 * fraction or a percentage (error=0.1, error=10%). The body is checked as
 * the platform checks it. 0, or ERR_INVALID with err naming what is
 * wrong. */
int model_parse_fault_line(const char *line, char *target, size_t tlen, json_t **body, char *err,
			   size_t errlen);

#endif
