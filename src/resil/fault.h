/* fault: injected faults, by target (a service such as "catalog" or an
 * external provider such as "stripe"). A fault adds latency with jitter,
 * fails a fraction of calls with a chosen status, or takes the target out
 * entirely (outage), for a while or until cleared. The table is what
 * /admin/faults reads and writes; the outbound client (and each simulator)
 * asks fault_decide() before every call and acts on the answer.
 *
 * Pure: no I/O, no clock, no sleeping; time comes in as now_us (the
 * engine clock, microseconds since the epoch) and randomness from a core/rng,
 * so a seeded run injects the same faults. Thread-safe: an internal mutex. */
#ifndef ECOM_FAULT_H
#define ECOM_FAULT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "core/jval.h"
#include "core/rng.h"

/* Ranges enforced by fault_set and fault_parse_json. */
#define FAULT_MAX_LATENCY_MS 60000
#define FAULT_MAX_JITTER_MS 60000
#define FAULT_MIN_STATUS 400
#define FAULT_MAX_STATUS 599
#define FAULT_MAX_DURATION_S 86400
#define FAULT_DEFAULT_STATUS 503
/* A target name is 1..FAULT_MAX_TARGET bytes of [A-Za-z0-9._-]; a table
 * holds at most FAULT_MAX_TARGETS faults. */
#define FAULT_MAX_TARGET 64
#define FAULT_MAX_TARGETS 256

typedef struct fault_spec {
	int latency_ms;    /* added to every call, 0..60000 */
	int jitter_ms;     /* delay varies uniformly by +-jitter, 0..60000 */
	double error_rate; /* fraction of calls failed, 0..1 */
	int error_status;  /* status of a failed call, 400..599 */
	bool outage;       /* every call fails at once, as unreachable */
	int64_t until_us;  /* active while now < until_us; 0 = until cleared */
} fault_spec;

/* 0, or ERR_INVALID when a field is out of its range (until_us < 0
 * included). */
int fault_spec_check(const fault_spec *s);

typedef struct fault_table fault_table;

/* An empty table. Owned by the caller: fault_table_free(). */
fault_table *fault_table_new(void);
void fault_table_free(fault_table *t);

/* Sets (or replaces) target's fault, copying spec. ERR_INVALID for a bad
 * target name or spec; ERR_TOO_LARGE when the table is full. */
int fault_set(fault_table *t, const char *target, const fault_spec *spec);
/* Removes target's fault: 0, or ERR_NOT_FOUND when it had none. */
int fault_clear(fault_table *t, const char *target);
/* Copies target's active fault into *out: 0, or ERR_NOT_FOUND when it has
 * none (an expired fault is removed and is not found). */
int fault_get(fault_table *t, const char *target, int64_t now_us, fault_spec *out);

/* One fault as {target, latency_ms, jitter_ms, error_rate, error_status,
 * outage, expires_at} with expires_at an RFC 3339 string, or null for a
 * fault without end. A new reference (NULL out of memory). */
json_t *fault_spec_json(const char *target, const fault_spec *spec);
/* Every active fault at now_us (expired ones are removed first), ordered by
 * target, as a JSON array of fault_spec_json objects. A new reference. */
json_t *fault_list(fault_table *t, int64_t now_us);

typedef struct fault_decision {
	bool active;      /* target has a fault right now */
	bool fail;        /* fail this call, answering `status` */
	bool outage;      /* fail as unreachable (no answer at all) */
	int status;       /* when fail: the HTTP status to answer */
	int64_t delay_us; /* wait this long before answering (or failing) */
} fault_decision;

/* What to do with one call to target at now_us. Without an active fault
 * everything is zero. An outage fails at once (no delay, no random draw).
 * Otherwise delay = latency +- uniform jitter (never below 0), drawn only
 * when jitter > 0, and the call fails with error_status when
 * rng_double < error_rate, drawn only when error_rate > 0. Returns 0, or
 * ERR_INVALID on NULL arguments (out is then zeroed when given). */
int fault_decide(fault_table *t, const char *target, int64_t now_us, rng *r,
		 fault_decision *out);

/* Reads the body of PUT /admin/faults/{target}:
 *   {latency_ms, jitter_ms, error_rate, error_status, outage, duration_s}
 * every field optional (absent or null: 0, 0, 0, 503, false, 0), integers
 * for all but error_rate (a number) and outage (a boolean). duration_s
 * (0..86400) sets until_us = now_us + duration_s seconds; 0 means until
 * cleared. Unknown fields are refused, so a misspelt one is not silently
 * ignored. Returns 0, or ERR_INVALID with e naming the field. */
int fault_parse_json(json_t *body, int64_t now_us, fault_spec *out, jval_error *e);

#endif
