/* engine: the table of engines and the helpers they share. */
#include "services/engine.h"
#include "core/err.h"
#include "core/jval.h"
#include "services/analytics.h"
#include "services/cart.h"
#include "services/catalog.h"
#include "services/eventlog.h"
#include "services/gateway.h"
#include "services/inventory.h"
#include "services/notification.h"
#include "services/order.h"
#include "services/payment.h"
#include "services/registry.h"
#include "services/routes.h"
#include "services/search.h"
#include "services/user.h"
#include "resil/guard.h"
#include "sim/paypal_sim.h"
#include "sim/sms_sim.h"
#include "sim/smtp_sim.h"
#include "sim/stripe_sim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const engine_def *const engines[] = {
	&gateway_engine,
	&catalog_engine,
	&user_engine,
	&inventory_engine,
	&stripe_sim_engine,
	&paypal_sim_engine,
	&cart_engine,
	&payment_engine,
	&order_engine,
	&eventlog_engine,
	&search_engine,
	&notification_engine,
	&analytics_engine,
	&smtp_sim_engine,
	&sms_sim_engine,
	NULL,
};

static const char *const platform_services[] = { "catalog", "inventory", "user", "cart", "payment",
						"order", "search", "notification", "analytics", NULL };

const engine_def *engine_find(const char *name)
{
	for (int i = 0; name && engines[i]; i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}

const char *const *engine_platform_services(void) { return platform_services; }

/* Compares without an early exit, so the time taken does not tell how much
 * of a guessed token was right. */
static int same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);
	for (size_t i = 0; i < lb; i++)
		diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
	return diff == 0;
}

/* How old a signed identity may be: the gateway signs each request as it
 * forwards it, so anything older is a replay. */
#define IDENTITY_MAX_AGE_US (60 * 1000000LL)

int engine_is_admin_token(const engine_ctx *ctx, const char *token)
{
	return token && token[0] && ctx->admin_token && ctx->admin_token[0] &&
	       same_secret(token, ctx->admin_token);
}

static int bearer_is_admin(const engine_ctx *ctx, const msg_req *req)
{
	const char *auth = msg_req_header(req, "Authorization");
	return auth && strncmp(auth, "Bearer ", 7) == 0 && engine_is_admin_token(ctx, auth + 7);
}

int engine_caller(const engine_ctx *ctx, const msg_req *req, identity *out)
{
	memset(out, 0, sizeof(*out));
	const char *hdr = msg_req_header(req, IDENTITY_HEADER);
	if (hdr) {
		if (identity_verify(ctx->service_secret, hdr, clock_now(ctx->clock),
				    IDENTITY_MAX_AGE_US, out) != 0) {
			memset(out, 0, sizeof(*out));
			return ERR_UNAUTH;
		}
		return 0;
	}
	if (bearer_is_admin(ctx, req)) {
		out->role = IDENTITY_ADMIN;
		snprintf(out->sub, sizeof(out->sub), "admin");
	}
	return 0;
}

int engine_require_admin(const engine_ctx *ctx, const msg_req *req, msg_resp *resp)
{
	identity id;
	int rc = engine_caller(ctx, req, &id);
	if (rc == 0 && id.role == IDENTITY_ADMIN)
		return 0;
	if (rc == 0 && id.role == IDENTITY_USER) {
		msg_resp_error(resp, 403, "forbidden", "this route needs the admin token", NULL);
		return ERR_FORBIDDEN;
	}
	const char *auth = msg_req_header(req, "Authorization");
	int presented = rc != 0 || (auth && strncmp(auth, "Bearer ", 7) == 0 && auth[7]);
	msg_resp_error(resp, 401, "unauthenticated",
		       presented ? "the credentials are not valid" : "this route needs the admin token",
		       NULL);
	msg_resp_set_header(resp, "WWW-Authenticate",
			    presented ? "Bearer error=\"invalid_token\"" : "Bearer");
	return ERR_UNAUTH;
}

int engine_require_service(const engine_ctx *ctx, const msg_req *req, msg_resp *resp)
{
	identity id;
	int rc = engine_caller(ctx, req, &id);
	if (rc == 0 && (id.role == IDENTITY_SERVICE || id.role == IDENTITY_ADMIN))
		return 0;
	if (rc == 0 && id.role == IDENTITY_USER) {
		msg_resp_error(resp, 403, "forbidden", "this route is for services only", NULL);
		return ERR_FORBIDDEN;
	}
	msg_resp_error(resp, 401, "unauthenticated", "this route needs a service identity", NULL);
	msg_resp_set_header(resp, "WWW-Authenticate", "Bearer");
	return ERR_UNAUTH;
}

/* ---- tracing ------------------------------------------------------------------- */

void engine_span_begin(const engine_ctx *ctx, engine_span *es, const trace_ctx *parent,
		       const char *name, enum span_kind kind)
{
	memset(es, 0, sizeof(*es));
	trace_ctx *cur = ctx->trace ? ctx->trace(ctx->call_ud) : NULL;
	if (!cur)
		return;
	es->on = 1;
	es->saved = *cur;
	const trace_ctx *from = parent && trace_valid(parent) ? parent
				: trace_valid(cur)	       ? cur
							       : NULL;
	if (from) {
		trace_child(from, &es->self, ctx->rng);
	} else {
		trace_new_root(&es->self, ctx->rng);
		es->self.flags = 0; /* background work: not sampled */
	}
	span_begin(&es->s, from, &es->self, ctx->service, name, kind, clock_now(ctx->clock));
	*cur = es->self;
}

void engine_span_attr(engine_span *es, const char *key, const char *value)
{
	if (es->on)
		span_attr_set(&es->s, key, value);
}

void engine_span_end(const engine_ctx *ctx, engine_span *es, enum span_status status,
		     const char *msg)
{
	if (!es->on)
		return;
	es->s.dur_us = clock_now(ctx->clock) - es->s.start_us;
	es->s.status = status;
	if (msg)
		snprintf(es->s.status_msg, sizeof(es->s.status_msg), "%s", msg);
	if (ctx->tracer && (es->self.flags & TRACE_FLAG_SAMPLED))
		tracer_record(ctx->tracer, &es->s);
	trace_ctx *cur = ctx->trace(ctx->call_ud);
	if (cur)
		*cur = es->saved;
	es->on = 0;
}

const char *engine_traceparent(const engine_ctx *ctx, char *buf, size_t size)
{
	trace_ctx *cur = ctx->trace ? ctx->trace(ctx->call_ud) : NULL;
	if (!cur || !trace_valid(cur) || size < TRACE_PARENT_SIZE)
		return NULL;
	trace_format(cur, buf, size);
	return buf;
}

int engine_call_traced(const engine_ctx *ctx, const char *peer, const char *target,
		       msg_req *req, msg_resp *resp, int64_t timeout_ms)
{
	if (!ctx->trace)
		return ctx->call(ctx->call_ud, target, req, resp, timeout_ms);
	char name[96];
	snprintf(name, sizeof(name), "%s %s", req->method, req->path);
	engine_span es;
	engine_span_begin(ctx, &es, NULL, name, SPAN_CLIENT);
	char tp[TRACE_PARENT_SIZE];
	trace_format(&es.self, tp, sizeof(tp));
	msg_req_set_header(req, TRACE_HEADER, tp);
	engine_span_attr(&es, "peer.service", peer);
	int rc = ctx->call(ctx->call_ud, target, req, resp, timeout_ms);
	char why[64] = "";
	if (rc) {
		snprintf(why, sizeof(why), "no answer: %s", err_name(rc));
	} else {
		char st[16];
		snprintf(st, sizeof(st), "%d", resp->status);
		engine_span_attr(&es, "http.status_code", st);
		if (resp->status >= 500)
			snprintf(why, sizeof(why), "HTTP %d", resp->status);
	}
	engine_span_end(ctx, &es, why[0] ? SPAN_ERROR : SPAN_OK, why[0] ? why : NULL);
	return rc;
}

/* guard_send_fn over ctx->call, each attempt a CLIENT span: to an instance
 * of callee directly when direct_path is set (send_direct), else (or when
 * no instance takes it) to target. */
typedef struct send_to {
	const engine_ctx *ctx;
	const char *callee;
	const char *target;
	char *direct_path; /* the upstream path for a direct call, or NULL */
	int sent; /* attempts made */
} send_to;

/* One attempt at an instance of s->callee from ctx->instances, failing
 * over to another when a connection is refused (nothing was sent), as the
 * gateway's forwarding does; req goes at s->direct_path. Returns as
 * ctx->call, or ERR_NOT_FOUND when no instance took the call (none in
 * rotation, or each refused), resp then as it came in. */
static int send_direct(send_to *s, msg_req *req, msg_resp *resp, int64_t timeout_ms)
{
	const engine_ctx *ctx = s->ctx;
	registry_tried tried = { 0 };
	int rc = ERR_NOT_FOUND;
	int64_t until = clock_now(ctx->clock) + timeout_ms * 1000;
	char *path = req->path;
	req->path = s->direct_path;
	for (;;) {
		char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
		int64_t now = clock_now(ctx->clock);
		if (registry_acquire_next(ctx->instances, s->callee, now, &tried, id, addr) != 0)
			break;
		int64_t left = until > now ? (until - now + 999) / 1000 : 1;
		rc = engine_call_traced(ctx, s->callee, addr, req, resp, left);
		registry_release(ctx->instances, id);
		if (rc == 0 || rc == ERR_TIMEOUT)
			break;
		registry_mark_down(ctx->instances, id, clock_now(ctx->clock));
		log_warn(ctx->log, "%s %s: %s (%s) %s; out of rotation here", req->method,
			 req->path, id, addr,
			 rc == ERR_UNAVAILABLE ? "refused the connection" : err_name(rc));
		if (rc != ERR_UNAVAILABLE)
			break; /* it may have been applied: the guard decides */
		msg_resp_clear(resp);
		msg_resp_init(resp);
		rc = ERR_NOT_FOUND;
		registry_tried_add(&tried, id);
	}
	req->path = path;
	return rc;
}

static int send_via_call(void *ud, msg_req *req, msg_resp *resp, int64_t timeout_ms)
{
	send_to *s = ud;
	s->sent++;
	if (s->direct_path) {
		int rc = send_direct(s, req, resp, timeout_ms);
		if (rc != ERR_NOT_FOUND)
			return rc;
	}
	if (!s->target)
		return ERR_UNAVAILABLE;
	return engine_call_traced(s->ctx, s->callee, s->target, req, resp, timeout_ms);
}

/* A call the guard refused before sending, as a span of no length, so that
 * a trace shows why a step did not happen. */
static void refused_span(const engine_ctx *ctx, const char *callee, const msg_req *req,
			 const msg_resp *resp)
{
	const char *why = engine_call_refusal(resp);
	if (!ctx->trace || !why)
		return;
	char name[96], msg[64];
	snprintf(name, sizeof(name), "%s %s", req->method, req->path);
	snprintf(msg, sizeof(msg), "refused: %s", why);
	engine_span es;
	engine_span_begin(ctx, &es, NULL, name, SPAN_CLIENT);
	engine_span_attr(&es, "peer.service", callee);
	engine_span_end(ctx, &es, SPAN_ERROR, msg);
}

/* engine_call_guarded, trying callee's instances directly first when
 * direct_path is set (then target may be NULL). */
static int call_guarded(const engine_ctx *ctx, const char *callee, const char *target,
			char *direct_path, msg_req *req, msg_resp *resp, int64_t timeout_ms)
{
	if (!ctx->call || (!target && !direct_path))
		return ERR_UNAVAILABLE;
	int64_t deadline = ctx->deadline ? ctx->deadline(ctx->call_ud) : 0;
	send_to s = { ctx, callee, target, direct_path, 0 };
	if (!ctx->guard) {
		/* Unguarded: the deadline still bounds the call. */
		int64_t now = clock_now(ctx->clock);
		if (deadline && guard_deadline_left_ms(deadline, now) < 1) {
			msg_resp_set_header(resp, GUARD_REFUSED_HEADER, "deadline");
			return ERR_TIMEOUT;
		}
		int64_t until = guard_deadline_min(deadline, now + (timeout_ms > 0 ? timeout_ms : 5000) * 1000);
		int64_t left = guard_deadline_left_ms(until, now);
		guard_deadline_stamp(req, until, now);
		return send_via_call(&s, req, resp, left);
	}
	guard_call_opts o = {
		.clock = ctx->clock,
		.rng = ctx->rng,
		.deadline_us = deadline,
		.timeout_ms = timeout_ms,
		.idempotent = guard_idempotent(req),
	};
	int rc = guard_call(ctx->guard, callee, &o, send_via_call, &s, req, resp);
	if (s.sent == 0)
		refused_span(ctx, callee, req, resp);
	return rc;
}

int engine_call_guarded(const engine_ctx *ctx, const char *callee, const char *target,
			msg_req *req, msg_resp *resp, int64_t timeout_ms)
{
	return target ? call_guarded(ctx, callee, target, NULL, req, resp, timeout_ms)
		      : ERR_UNAVAILABLE;
}

int engine_call_service(const engine_ctx *ctx, msg_req *req, msg_resp *resp, int64_t timeout_ms)
{
	const char *gateway = ctx->gateway_url && ctx->gateway_url[0] ? ctx->gateway_url : NULL;
	int direct = ctx->instances && ctx->routes && strncmp(req->path, "/admin", 6) != 0;
	if ((!gateway && !direct) || !ctx->call)
		return ERR_UNAVAILABLE;
	identity me = { .role = IDENTITY_SERVICE };
	snprintf(me.sub, sizeof(me.sub), "%s", ctx->service);
	char value[IDENTITY_MAX];
	int rc = identity_sign(ctx->service_secret, &me, clock_now(ctx->clock), value, sizeof(value));
	if (rc)
		return rc;
	if ((rc = msg_req_set_header(req, IDENTITY_HEADER, value)) != 0)
		return rc;
	/* Where the gateway would send it: the route's target and the path
	 * the target is given. */
	const route_entry *route = direct ? routes_match(ctx->routes, req->path) : NULL;
	if (route) {
		const route_target *t;
		char path[1024];
		int rewritten = routes_forward(route, ctx->rng, req->path, &t, path, sizeof(path));
		char *direct_path = rewritten > 0 ? strdup(path) : rewritten == 0 ? req->path : NULL;
		if (direct_path) {
			rc = call_guarded(ctx, t->service, gateway, direct_path, req, resp, timeout_ms);
			if (direct_path != req->path)
				free(direct_path);
			return rc;
		}
	}
	if (!gateway)
		return ERR_UNAVAILABLE;
	const char *callee = gateway_route_service(req->path);
	return call_guarded(ctx, callee ? callee : "gateway", gateway, NULL, req, resp, timeout_ms);
}

const char *engine_call_refusal(const msg_resp *resp)
{
	static const char *const reasons[] = { "breaker", "bulkhead", "deadline", NULL };
	const char *v = resp ? msg_resp_header(resp, GUARD_REFUSED_HEADER) : NULL;
	for (int i = 0; v && reasons[i]; i++)
		if (strcmp(v, reasons[i]) == 0)
			return reasons[i];
	return NULL;
}

int engine_require_user(const engine_ctx *ctx, const msg_req *req, msg_resp *resp,
			identity *out)
{
	if (engine_caller(ctx, req, out) == 0 && out->role == IDENTITY_USER && out->sub[0])
		return 0;
	msg_resp_error(resp, 401, "unauthenticated", "this route needs a signed-in user", NULL);
	msg_resp_set_header(resp, "WWW-Authenticate", "Bearer");
	return ERR_UNAUTH;
}

int engine_valid_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > ENGINE_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.:", s[i]))
			return 0;
	return 1;
}

int engine_bad_field(msg_resp *resp, const char *field, const char *message)
{
	msg_resp_error(resp, 400, "invalid_argument", message, json_pack("{s:s}", "field", field));
	return ERR_INVALID;
}

int engine_query_int(const msg_req *req, msg_resp *resp, const char *name, int64_t min,
		     int64_t max, int64_t *out)
{
	char buf[32];
	int rc = msg_req_query(req, name, buf, sizeof(buf));
	if (rc == 0)
		return 0;
	char msg[96];
	snprintf(msg, sizeof(msg), "must be an integer between %lld and %lld", (long long)min,
		 (long long)max);
	char *end;
	errno = 0;
	long long v = rc > 0 && buf[0] ? strtoll(buf, &end, 10) : 0;
	if (rc < 0 || !buf[0] || errno || *end || v < min || v > max)
		return engine_bad_field(resp, name, msg);
	*out = v;
	return 1;
}

int engine_query_id(const msg_req *req, msg_resp *resp, const char *name, char *buf, size_t len)
{
	int rc = msg_req_query(req, name, buf, len);
	if (rc == 0)
		return 0;
	if (rc < 0 || !engine_valid_id(buf))
		return engine_bad_field(resp, name, ENGINE_ID_RULE);
	return 1;
}

int engine_json_body(const msg_req *req, msg_resp *resp, json_t **out)
{
	const char *ct = msg_req_header(req, "Content-Type");
	if (ct && strncasecmp(ct, "application/json", 16) != 0) {
		*out = NULL;
		msg_resp_error(resp, 415, "unsupported_media_type", "the body must be application/json",
			       NULL);
		return ERR_INVALID;
	}
	jval_error e = { { 0 }, { 0 } };
	*out = jval_parse_object(req->body ? req->body : "", req->body_len, &e);
	if (!*out)
		return engine_bad_field(resp, e.field[0] ? e.field : "body", e.message);
	return 0;
}


void engine_local_store_url(const config *cfg, const char *state_dir, char *buf, size_t len)
{
	const char *local = config_get(cfg, "store.local_url");
	const char *platform = config_get(cfg, "store.url");
	if (local && local[0])
		snprintf(buf, len, "%s", local);
	else if (platform && strncmp(platform, "sqlite:", 7) == 0)
		snprintf(buf, len, "%s", platform);
	else
		snprintf(buf, len, "sqlite:%s/data", state_dir && state_dir[0] ? state_dir : ".");
}

router *engine_router(const engine_route *table, size_t n, void *ud, char *err, size_t errlen)
{
	router *rt = router_new();
	for (size_t i = 0; rt && i < n; i++)
		if (router_add(rt, table[i].method, table[i].pattern, table[i].fn, ud) != 0) {
			router_free(rt);
			rt = NULL;
		}
	if (!rt)
		snprintf(err, errlen, "cannot build routes");
	return rt;
}

void engine_store_error(const engine_ctx *ctx, msg_resp *resp, int code, const char *what)
{
	log_error(ctx->log, "store error during %s: %s (%s)", what, err_name(code),
		  ctx->store ? store_errmsg(ctx->store) : "");
	if (code == ERR_UNAVAILABLE || code == ERR_BUSY || code == ERR_RETRY) {
		msg_resp_error(resp, 503, "unavailable", "the database is unavailable; try again",
			       NULL);
		msg_resp_set_header(resp, "Retry-After", "1");
	} else {
		msg_resp_error(resp, 500, "internal", "internal error", NULL);
	}
}
