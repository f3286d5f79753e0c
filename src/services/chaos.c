/* chaos: faults at the HTTP layer, deadlines, and the instance's resilience
 * admin routes. */
#include "services/chaos.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/router.h"
#include "resil/guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chaos {
	engine_ctx *ctx;
	router *admin;
};

int chaos_exempt(const char *path)
{
	return strcmp(path, "/health") == 0 || strcmp(path, "/ready") == 0 ||
	       strcmp(path, "/metrics") == 0 || strcmp(path, "/admin") == 0 ||
	       strncmp(path, "/admin/", 7) == 0;
}

/* ---- fault handlers ------------------------------------------------------------ */

static json_t *fault_json(const engine_ctx *ctx, const char *target, const fault_spec *spec)
{
	json_t *o = fault_spec_json(target, spec);
	int64_t now = clock_now(ctx->clock);
	int64_t left = spec->until_us ? (spec->until_us - now + 999999) / 1000000 : 0;
	json_object_set_new(o, "instance", json_string(ctx->instance_id ? ctx->instance_id : ""));
	json_object_set_new(o, "duration_s", json_integer(left > 0 ? left : 0));
	return o;
}

static void no_table(msg_resp *resp)
{
	msg_resp_error(resp, 503, "unavailable", "this instance has no fault table", NULL);
}

void chaos_faults_list(const engine_ctx *ctx, fault_table *t, msg_resp *resp)
{
	json_t *arr = json_array();
	json_t *raw = t ? fault_list(t, clock_now(ctx->clock)) : NULL;
	size_t i;
	json_t *f;
	json_array_foreach(raw, i, f)
	{
		fault_spec spec;
		const char *target = json_string_value(json_object_get(f, "target"));
		if (target && fault_get(t, target, clock_now(ctx->clock), &spec) == 0)
			json_array_append_new(arr, fault_json(ctx, target, &spec));
	}
	json_decref(raw);
	msg_resp_json(resp, 200, json_pack("{s:o}", "faults", arr));
}

void chaos_fault_get(const engine_ctx *ctx, fault_table *t, const char *target, msg_resp *resp)
{
	fault_spec spec;
	if (!t || fault_get(t, target, clock_now(ctx->clock), &spec) != 0) {
		msg_resp_error(resp, 404, "not_found", "no fault is set on this target",
			       json_pack("{s:s}", "target", target));
		return;
	}
	msg_resp_json(resp, 200, fault_json(ctx, target, &spec));
}

void chaos_fault_put(const engine_ctx *ctx, fault_table *t, const char *target, msg_req *req,
		     msg_resp *resp)
{
	if (!t) {
		no_table(resp);
		return;
	}
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	jval_error e = { { 0 }, { 0 } };
	fault_spec spec;
	int rc = fault_parse_json(body, clock_now(ctx->clock), &spec, &e);
	json_decref(body);
	if (rc != 0) {
		engine_bad_field(resp, e.field[0] ? e.field : "body", e.message);
		return;
	}
	rc = fault_set(t, target, &spec);
	if (rc) {
		msg_resp_error(resp, rc == ERR_INVALID ? 400 : 500,
			       rc == ERR_INVALID ? "invalid_argument" : "internal",
			       "the fault could not be set", json_pack("{s:s}", "target", target));
		return;
	}
	log_info(ctx->log,
		 "fault on %s: latency %d ms +- %d, error rate %.3f (status %d), outage %d, for %s",
		 target, spec.latency_ms, spec.jitter_ms, spec.error_rate, spec.error_status,
		 (int)spec.outage, spec.until_us ? "a while" : "ever");
	msg_resp_json(resp, 200, fault_json(ctx, target, &spec));
}

void chaos_fault_delete(const engine_ctx *ctx, fault_table *t, const char *target,
			msg_resp *resp)
{
	int cleared = t && fault_clear(t, target) == 0;
	if (cleared)
		log_info(ctx->log, "fault on %s cleared", target);
	msg_resp_json(resp, 200,
		      json_pack("{s:s,s:s,s:b}", "target", target, "instance",
				ctx->instance_id ? ctx->instance_id : "", "cleared", cleared));
}

/* ---- the instance's admin routes -------------------------------------------------- */

/* ---- a simulator's fault routes ----------------------------------------------------- */

/* The route's {target} when the admin asks for one the simulator takes. */
static const char *sim_target(chaos_sim_faults *f, msg_req *req, msg_resp *resp)
{
	if (engine_require_admin(f->ctx, req, resp))
		return NULL;
	const char *t = msg_req_param(req, 0);
	if (!t || !f->valid(t)) {
		msg_resp_error(resp, 404, "not_found", f->hint,
			       json_pack("{s:s}", "target", t ? t : ""));
		return NULL;
	}
	return t;
}

static void sim_faults_list(void *ud, msg_req *req, msg_resp *resp)
{
	chaos_sim_faults *f = ud;
	if (engine_require_admin(f->ctx, req, resp) == 0)
		chaos_faults_list(f->ctx, f->table, resp);
}

static void sim_fault_get(void *ud, msg_req *req, msg_resp *resp)
{
	chaos_sim_faults *f = ud;
	const char *t = sim_target(f, req, resp);
	if (t)
		chaos_fault_get(f->ctx, f->table, t, resp);
}

static void sim_fault_put(void *ud, msg_req *req, msg_resp *resp)
{
	chaos_sim_faults *f = ud;
	const char *t = sim_target(f, req, resp);
	if (t)
		chaos_fault_put(f->ctx, f->table, t, req, resp);
}

static void sim_fault_delete(void *ud, msg_req *req, msg_resp *resp)
{
	chaos_sim_faults *f = ud;
	const char *t = sim_target(f, req, resp);
	if (t)
		chaos_fault_delete(f->ctx, f->table, t, resp);
}

int chaos_sim_fault_routes(struct router *r, chaos_sim_faults *f)
{
	int rc = router_add(r, "GET", "/admin/faults", sim_faults_list, f);
	rc = rc ? rc : router_add(r, "GET", "/admin/faults/{target}", sim_fault_get, f);
	rc = rc ? rc : router_add(r, "PUT", "/admin/faults/{target}", sim_fault_put, f);
	return rc ? rc : router_add(r, "DELETE", "/admin/faults/{target}", sim_fault_delete, f);
}

/* The {target} of a fault route, when it is this instance's own. */
static const char *own_target(chaos *c, msg_req *req, msg_resp *resp)
{
	if (engine_require_admin(c->ctx, req, resp))
		return NULL;
	const char *t = msg_req_param(req, 0);
	if (!t || strcmp(t, c->ctx->service) != 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "this instance takes faults for %s only", c->ctx->service);
		msg_resp_error(resp, 404, "not_found", msg, json_pack("{s:s}", "target", t ? t : ""));
		return NULL;
	}
	return t;
}

static void r_faults(void *ud, msg_req *req, msg_resp *resp)
{
	chaos *c = ud;
	if (engine_require_admin(c->ctx, req, resp) == 0)
		chaos_faults_list(c->ctx, c->ctx->faults, resp);
}

static void r_fault_get(void *ud, msg_req *req, msg_resp *resp)
{
	chaos *c = ud;
	const char *t = own_target(c, req, resp);
	if (t)
		chaos_fault_get(c->ctx, c->ctx->faults, t, resp);
}

static void r_fault_put(void *ud, msg_req *req, msg_resp *resp)
{
	chaos *c = ud;
	const char *t = own_target(c, req, resp);
	if (t)
		chaos_fault_put(c->ctx, c->ctx->faults, t, req, resp);
}

static void r_fault_delete(void *ud, msg_req *req, msg_resp *resp)
{
	chaos *c = ud;
	const char *t = own_target(c, req, resp);
	if (t)
		chaos_fault_delete(c->ctx, c->ctx->faults, t, resp);
}

static void with_instance(const engine_ctx *ctx, json_t *o)
{
	json_object_set_new(o, "instance", json_string(ctx->instance_id ? ctx->instance_id : ""));
}

static void r_breakers(void *ud, msg_req *req, msg_resp *resp)
{
	chaos *c = ud;
	if (engine_require_admin(c->ctx, req, resp))
		return;
	json_t *arr = c->ctx->guard ? guard_list(c->ctx->guard, clock_now(c->ctx->clock))
				    : json_array();
	size_t i;
	json_t *b;
	json_array_foreach(arr, i, b)
		with_instance(c->ctx, b);
	msg_resp_json(resp, 200, json_pack("{s:o}", "breakers", arr));
}

static void r_breaker_action(void *ud, msg_req *req, msg_resp *resp)
{
	chaos *c = ud;
	if (engine_require_admin(c->ctx, req, resp))
		return;
	const char *svc = msg_req_param(req, 0), *action = msg_req_param(req, 1);
	guard *g = c->ctx->guard;
	int64_t now = clock_now(c->ctx->clock);
	int rc;
	if (!g) {
		msg_resp_error(resp, 404, "not_found", "this instance has no breakers", NULL);
		return;
	}
	if (strcmp(action, "trip") == 0)
		rc = guard_trip(g, svc, now);
	else if (strcmp(action, "reset") == 0)
		rc = guard_reset(g, svc, now);
	else if (strcmp(action, "disable") == 0)
		rc = guard_disable(g, svc, now);
	else {
		msg_resp_error(resp, 404, "not_found", "the actions are trip, reset and disable",
			       json_pack("{s:s}", "action", action));
		return;
	}
	if (rc == ERR_INVALID) {
		engine_bad_field(resp, "service", "must be a service name ([a-z0-9_-], 1 to 31 characters)");
		return;
	}
	if (rc == ERR_NOT_FOUND) {
		msg_resp_error(resp, 404, "not_found", "this instance has no breaker for that service",
			       json_pack("{s:s}", "service", svc));
		return;
	}
	if (rc != 0) {
		msg_resp_error(resp, 409, "conflict", "the breaker cannot do that now",
			       json_pack("{s:s}", "service", svc));
		return;
	}
	json_t *o = guard_edge_json(g, svc, now);
	with_instance(c->ctx, o);
	msg_resp_json(resp, 200, o);
}

chaos *chaos_new(engine_ctx *ctx, char *err, size_t errlen)
{
	chaos *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->ctx = ctx;
	static const engine_route routes[] = {
		{ "GET", "/admin/faults", r_faults },
		{ "GET", "/admin/faults/{target}", r_fault_get },
		{ "PUT", "/admin/faults/{target}", r_fault_put },
		{ "DELETE", "/admin/faults/{target}", r_fault_delete },
		{ "GET", "/admin/breakers", r_breakers },
		{ "POST", "/admin/breakers/{service}/{action}", r_breaker_action },
	};
	c->admin = engine_router(routes, sizeof(routes) / sizeof(routes[0]), c, err, errlen);
	if (!c->admin) {
		free(c);
		return NULL;
	}
	return c;
}

void chaos_free(chaos *c)
{
	if (!c)
		return;
	router_free(c->admin);
	free(c);
}

int chaos_admin(chaos *c, msg_req *req, msg_resp *resp)
{
	if (strcmp(req->path, "/admin/faults") != 0 && strncmp(req->path, "/admin/faults/", 14) != 0 &&
	    strcmp(req->path, "/admin/breakers") != 0 &&
	    strncmp(req->path, "/admin/breakers/", 16) != 0)
		return 0;
	router_dispatch(c->admin, req, resp);
	return 1;
}

/* ---- applying faults --------------------------------------------------------------- */

int chaos_fault(chaos *c, const msg_req *req, int64_t now_us, int64_t *delay_us, msg_resp *resp)
{
	*delay_us = 0;
	if (!c->ctx->faults || chaos_exempt(req->path))
		return 0;
	fault_decision d;
	if (fault_decide(c->ctx->faults, c->ctx->service, now_us, c->ctx->rng, &d) != 0 ||
	    !d.active)
		return 0;
	*delay_us = d.delay_us;
	if (!d.fail)
		return 0;
	char msg[96];
	snprintf(msg, sizeof(msg), "injected fault: %s", d.outage ? "outage" : "error");
	msg_resp_error(resp, d.status, msg_status_code(d.status), msg,
		       json_pack("{s:s}", "service", c->ctx->service));
	msg_resp_set_header(resp, CHAOS_FAULT_HEADER, d.outage ? "outage" : "error");
	if (d.status == 503 || d.status == 429)
		msg_resp_set_header(resp, "Retry-After", "1");
	return 1;
}

void chaos_deadline_passed(msg_resp *resp)
{
	msg_resp_error(resp, 504, "upstream_timeout",
		       "the request's deadline passed before it could be served", NULL);
	msg_resp_set_header(resp, GUARD_REFUSED_HEADER, "deadline");
}
