/* chaos: the resilience surface a host wraps around every engine it runs.
 *
 * - Injected faults, applied at the instance's HTTP layer before the engine
 *   sees a request: latency with jitter, a share of calls failed with a
 *   chosen status, or an outage (every call answered 503 at once), for a
 *   while or until cleared, drawn from ctx->rng. The infrastructure paths
 *   (/health, /ready, /metrics) and every /admin path are never faulted,
 *   so an instance under a fault can still be seen and healed.
 * - The request's deadline (X-Ecom-Deadline-Ms): a request that arrives,
 *   or is still waiting out an injected latency, past its deadline is
 *   answered 504 without running the engine.
 * - The instance's admin routes (admin token): GET /admin/faults,
 *   GET/PUT/DELETE /admin/faults/{target} (the target is this service's
 *   name), GET /admin/breakers (this instance's outbound edges, ctx->guard)
 *   and POST /admin/breakers/{service}/trip|reset|disable.
 *
 * An engine never sleeps: chaos says how long to wait and the host waits.
 * The fault handlers are also what the gateway uses for its own target. */
#ifndef ECOM_CHAOS_H
#define ECOM_CHAOS_H

#include <stdint.h>

#include "net/msg.h"
#include "resil/fault.h"
#include "services/engine.h"

/* Answers an injected failure carry this header: "outage" or "error". */
#define CHAOS_FAULT_HEADER "X-Ecom-Fault"

typedef struct chaos chaos;

/* The chaos layer of the instance whose context is ctx (borrowed; it must
 * outlive the layer; ctx->faults and ctx->guard may be NULL). NULL with err
 * filled on failure. Owned by the caller: chaos_free(). */
chaos *chaos_new(engine_ctx *ctx, char *err, size_t errlen);
void chaos_free(chaos *c);

/* 1 for the paths that are never faulted: /health, /ready, /metrics and
 * /admin/... */
int chaos_exempt(const char *path);

/* Serves req when it is one of the instance's resilience admin routes
 * (/admin/faults..., /admin/breakers...): returns 1 with resp filled.
 * Returns 0, resp untouched, for every other path. */
int chaos_admin(chaos *c, msg_req *req, msg_resp *resp);

/* The fault to apply to req at now_us, for a path that is not exempt:
 * *delay_us is how long the host waits before going on (or answering);
 * returns 1 when resp was filled with the injected failure (an outage:
 * 503 unavailable at once; an error draw: error_status in the API error
 * shape after the delay), 0 when the engine should run after the delay. */
int chaos_fault(chaos *c, const msg_req *req, int64_t now_us, int64_t *delay_us, msg_resp *resp);

/* Fills resp with the 504 of a request whose deadline has passed before the
 * engine ran (X-Ecom-Refused: deadline). */
void chaos_deadline_passed(msg_resp *resp);

/* ---- the fault handlers, for one table and one target -------------------------- */

/* GET /admin/faults: {"faults": [fault]} of table t at now (each fault with
 * "instance" set to ctx->instance_id). */
void chaos_faults_list(const engine_ctx *ctx, fault_table *t, msg_resp *resp);
/* GET /admin/faults/{target}: the fault, or 404. */
void chaos_fault_get(const engine_ctx *ctx, fault_table *t, const char *target, msg_resp *resp);
/* PUT /admin/faults/{target} with {latency_ms, jitter_ms, error_rate,
 * error_status, outage, duration_s}: sets it and answers 200 with the fault
 * ({target, instance, latency_ms, jitter_ms, error_rate, error_status,
 * outage, duration_s, expires_at}); 400 naming the field otherwise. */
void chaos_fault_put(const engine_ctx *ctx, fault_table *t, const char *target, msg_req *req,
		     msg_resp *resp);
/* DELETE /admin/faults/{target}: 200 {target, instance, cleared}. */
void chaos_fault_delete(const engine_ctx *ctx, fault_table *t, const char *target,
			msg_resp *resp);

/* The fault routes of an outside-world simulator, on its own table t:
 * GET /admin/faults and GET/PUT/DELETE /admin/faults/{target}, admin token
 * only, for the targets valid() accepts (others: 404 with the sentence
 * hint). The caller owns the struct, which outlives the router. */
typedef struct chaos_sim_faults {
	const engine_ctx *ctx;
	fault_table *table;
	int (*valid)(const char *target);
	const char *hint;
} chaos_sim_faults;

struct router;
/* Adds those four routes to r. 0 or an error. */
int chaos_sim_fault_routes(struct router *r, chaos_sim_faults *f);

#endif
