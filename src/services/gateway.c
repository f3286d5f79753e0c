/* gateway: authentication, rate limits, the route table, balancing over
 * registered instances, and the admin API. */
#include "services/gateway.h"
#include "bus/bus_admin.h"
#include "core/err.h"
#include "core/jval.h"
#include "core/window.h"
#include "net/router.h"
#include "resil/fallback.h"
#include "services/recommend.h"
#include "resil/guard.h"
#include "resil/ratelimit.h"
#include "services/chaos.h"
#include "services/identity.h"
#include "services/registry.h"
#include "services/routes.h"
#include "services/token.h"
#include "services/token_cache.h"

#include <pthread.h>
#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Route classes, each with its own token buckets per caller. */
enum rate_class { RATE_READ = 0, RATE_WRITE, RATE_AUTH, RATE_CLASSES };
static const char *const rate_class_names[] = { "read", "write", "auth" };

/* Path prefixes whose reads may be served stale (gateway.stale_prefixes). */
#define STALE_MAX_PREFIXES 8
/* How long the gateway waits for one instance's answer to an admin call it
 * fans out (breakers, faults). */
#define FANOUT_TIMEOUT_MS 2000

typedef struct gateway {
	engine_ctx *ctx;
	registry *reg;
	router *admin;
	routes *table;
	ratelimit *limits[RATE_CLASSES];
	guard *guard;     /* ctx->guard, or own_guard when the host gave none */
	guard *own_guard;
	fallback *stale;  /* last good reads of stale_prefixes */
	char stale_prefixes[STALE_MAX_PREFIXES][ROUTES_PREFIX_MAX];
	int nstale_prefixes;
	int64_t upstream_timeout_ms;
	int64_t deadline_ms;
	int64_t ttl_ms;
	int64_t token_leeway_s;
	token_cache *tokens; /* access tokens verified before */
} gateway;

/* The default table, parsed once, for gateway_route_service(). */
static routes *default_table;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void load_default_table(void)
{
	char err[128];
	default_table = routes_parse(routes_default(), err, sizeof(err));
}

const char *gateway_route_service(const char *path)
{
	pthread_once(&default_once, load_default_table);
	const route_entry *e = routes_match(default_table, path);
	return e ? e->targets[0].service : NULL;
}

/* Headers that belong to one hop and are not copied back to the client. */
static int hop_header(const char *name)
{
	static const char *const hop[] = { "Connection", "Keep-Alive", "Transfer-Encoding",
					   "Content-Length", "X-Request-Id", "Date",
					   "Content-Type", NULL };
	for (int i = 0; hop[i]; i++)
		if (strcasecmp(name, hop[i]) == 0)
			return 1;
	return 0;
}

/* Methods whose repetition has no further effect (RFC 9110 9.2.2) and that
 * this platform's services implement that way. */
static int idempotent(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	       strcmp(method, "OPTIONS") == 0;
}

/* ---- the edge: who is calling, and may they ---------------------------------- */

/* Authenticates the Authorization header: absent -> anonymous; the admin
 * token -> admin; a valid access token -> that user. Anything else is a 401
 * in resp and ERR_UNAUTH. */
static int authenticate(gateway *gw, const msg_req *req, msg_resp *resp, identity *id)
{
	memset(id, 0, sizeof(*id));
	/* A service calling another (engine_call_service) signs its own
	 * identity with the service secret; a client cannot, so any other
	 * identity header is ignored here and dropped later. */
	const char *claimed = msg_req_header(req, IDENTITY_HEADER);
	if (claimed && identity_verify(gw->ctx->service_secret, claimed, clock_now(gw->ctx->clock),
				       60 * 1000000LL, id) == 0 &&
	    id->role == IDENTITY_SERVICE)
		return 0;
	memset(id, 0, sizeof(*id));
	const char *auth = msg_req_header(req, "Authorization");
	if (!auth)
		return 0;
	const char *why = "the Authorization header must be 'Bearer TOKEN'";
	if (strncmp(auth, "Bearer ", 7) == 0 && auth[7]) {
		const char *tok = auth + 7;
		if (engine_is_admin_token(gw->ctx, tok)) {
			id->role = IDENTITY_ADMIN;
			snprintf(id->sub, sizeof(id->sub), "admin");
			return 0;
		}
		token_claims c;
		int64_t now_s = clock_now(gw->ctx->clock) / 1000000;
		if ((gw->tokens ? token_cache_verify(gw->tokens, tok, now_s, gw->token_leeway_s, &c)
				: token_verify(gw->ctx->jwt_key, gw->ctx->jwt_key_len, tok, now_s,
					       gw->token_leeway_s, &c)) == 0) {
			id->role = IDENTITY_USER;
			snprintf(id->sub, sizeof(id->sub), "%s", c.sub);
			return 0;
		}
		why = "the token is malformed, expired or not signed by this platform";
	}
	msg_resp_error(resp, 401, "unauthenticated", why, NULL);
	msg_resp_set_header(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	return ERR_UNAUTH;
}

/* Takes a token from the caller's bucket of the request's class; on denial
 * fills resp with 429 and returns ERR_BUSY. Admin and service calls are not
 * limited: operators' tools and the platform's own calls must work while
 * the platform is under load (the bulkheads and breakers bound those). */
static int rate_limit(gateway *gw, const msg_req *req, const identity *id, msg_resp *resp)
{
	if (id->role == IDENTITY_ADMIN || id->role == IDENTITY_SERVICE)
		return 0;
	enum rate_class cls = strncmp(req->path, "/v1/auth/", 9) == 0 ? RATE_AUTH
			      : (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
				      ? RATE_READ
				      : RATE_WRITE;
	char key[160];
	if (id->role == IDENTITY_USER)
		snprintf(key, sizeof(key), "u:%s", id->sub);
	else
		snprintf(key, sizeof(key), "a:%s", req->peer[0] ? req->peer : "unknown");
	ratelimit_result r;
	int rc = ratelimit_take(gw->limits[cls], key, clock_now(gw->ctx->clock), 1.0, &r);
	if (rc != 0 && rc != ERR_BUSY)
		return 0; /* a limiter out of room lets the request through */
	char v[32];
	snprintf(v, sizeof(v), "%lld", (long long)r.limit);
	msg_resp_set_header(resp, "RateLimit-Limit", v);
	snprintf(v, sizeof(v), "%lld", (long long)r.remaining);
	msg_resp_set_header(resp, "RateLimit-Remaining", v);
	snprintf(v, sizeof(v), "%lld", (long long)r.reset_after_s);
	msg_resp_set_header(resp, "RateLimit-Reset", v);
	if (rc == 0)
		return 0;
	char labels[64];
	snprintf(labels, sizeof(labels), "class=\"%s\"", rate_class_names[cls]);
	metrics_count(gw->ctx->metrics, "rate_limit_rejections_total", labels, 1);
	snprintf(v, sizeof(v), "%lld", (long long)r.retry_after_s);
	msg_resp_error(resp, 429, "rate_limited", "too many requests; slow down",
		       json_pack("{s:s,s:I}", "class", rate_class_names[cls], "retry_after_s",
				 (json_int_t)r.retry_after_s));
	msg_resp_set_header(resp, "Retry-After", v);
	return ERR_BUSY;
}

/* Deprecation (RFC 9745), Sunset (RFC 8594) and the successor link. */
static void deprecation_headers(const route_entry *e, msg_resp *resp)
{
	char v[160];
	if (e->deprecated_s) {
		snprintf(v, sizeof(v), "@%lld", (long long)e->deprecated_s);
		msg_resp_set_header(resp, "Deprecation", v);
	}
	if (e->sunset_s) {
		time_t t = (time_t)e->sunset_s;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(v, sizeof(v), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		msg_resp_set_header(resp, "Sunset", v);
	}
	if (e->successor[0]) {
		snprintf(v, sizeof(v), "<%s>; rel=\"successor-version\"", e->successor);
		msg_resp_set_header(resp, "Link", v);
	}
}

/* ---- fallbacks --------------------------------------------------------------------- */

/* Whether a read of path may be kept and served stale. */
static int stale_eligible(const gateway *gw, const msg_req *req)
{
	if (!gw->stale || strcmp(req->method, "GET") != 0)
		return 0;
	for (int i = 0; i < gw->nstale_prefixes; i++) {
		size_t n = strlen(gw->stale_prefixes[i]);
		if (strncmp(req->path, gw->stale_prefixes[i], n) == 0 &&
		    (req->path[n] == '\0' || req->path[n] == '/'))
			return 1;
	}
	return 0;
}

static void stale_key(const msg_req *req, char *key, size_t len)
{
	snprintf(key, len, "%s%s%s", req->path, req->query ? "?" : "", req->query ? req->query : "");
}

/* Replaces resp with the kept answer for req, marked stale (RFC 9111's
 * Warning 110 and Age, and X-Ecom-Stale). 1 when there was one. */
static int serve_stale(gateway *gw, const char *service, const msg_req *req, const char *reason,
		       msg_resp *resp)
{
	char key[FALLBACK_MAX_KEY + 2];
	stale_key(req, key, sizeof(key));
	msg_resp st;
	msg_resp_init(&st);
	int64_t age_us = 0;
	if (fallback_get(gw->stale, key, clock_now(gw->ctx->clock), &st, &age_us) != 0 &&
	    recommend_fallback_get(gw->stale, req, clock_now(gw->ctx->clock), &st, &age_us) != 0)
		return 0;
	recommend_fallback_mark(req, &st);
	/* The caller's rate-limit headers still hold. */
	for (int i = 0; i < resp->nheaders; i++)
		if (strncasecmp(resp->headers[i].name, "RateLimit-", 10) == 0)
			msg_resp_set_header(&st, resp->headers[i].name, resp->headers[i].value);
	st.route = resp->route;
	msg_resp_clear(resp);
	*resp = st;
	char v[32];
	snprintf(v, sizeof(v), "%lld", (long long)(age_us / 1000000));
	msg_resp_set_header(resp, "Age", v);
	msg_resp_set_header(resp, "Warning", "110 - \"Response is Stale\"");
	msg_resp_set_header(resp, GATEWAY_STALE_HEADER, "1");
	char labels[96];
	snprintf(labels, sizeof(labels), "service=\"%s\",reason=\"%s\"", service, reason);
	metrics_count(gw->ctx->metrics, "gateway_stale_served_total", labels, 1);
	return 1;
}

/* ---- proxying ------------------------------------------------------------------------ */

/* Fills resp with the refusal of a call that was never sent. */
static void refused(const char *service, int why, int64_t retry_after_s, msg_resp *resp)
{
	const char *reason = guard_refusal_name(why);
	if (why == GUARD_DEADLINE) {
		msg_resp_error(resp, 504, "upstream_timeout",
			       "the request's deadline passed before the service was called",
			       json_pack("{s:s,s:s}", "service", service, "reason", reason));
	} else {
		msg_resp_error(resp, 503, "unavailable",
			       why == GUARD_BULKHEAD
				       ? "too many calls to the service are in flight; try again shortly"
				       : "the service's circuit breaker is open; try again later",
			       json_pack("{s:s,s:s}", "service", service, "reason", reason));
		char v[24];
		snprintf(v, sizeof(v), "%lld", (long long)(retry_after_s > 0 ? retry_after_s : 1));
		msg_resp_set_header(resp, "Retry-After", v);
	}
	msg_resp_set_header(resp, GUARD_REFUSED_HEADER, reason);
}

/* Sends req to an instance of service, failing over to another when a
 * connection is refused (at most REGISTRY_TRIES instances; only refused
 * connections fail over: nothing was sent, so a retry cannot apply a
 * request twice), within deadline_us. Fills resp with the answer or
 * the gateway's error; returns 1 when the call failed in the breaker's sense
 * (no answer, a timeout, or a 5xx other than 501), FORWARD_NONE when no
 * instance was there to call (503 at once: nothing for a breaker to judge;
 * counting it would open the breaker while a service is still starting and
 * keep it open after the service is up). */
#define FORWARD_NONE 2

static int forward(gateway *gw, const route_entry *route, const char *service, msg_req *req,
		   int64_t deadline_us, msg_resp *resp)
{
	engine_ctx *ctx = gw->ctx;
	registry_tried tried = { 0 };
	for (;;) {
		char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
		int64_t now = clock_now(ctx->clock);
		if (guard_deadline_left_ms(deadline_us, now) < 1) {
			refused(service, GUARD_DEADLINE, 0, resp);
			return 1;
		}
		if (registry_acquire_next(gw->reg, service, now, &tried, id, addr) != 0)
			break;
		/* This attempt ends at the deadline or the upstream timeout, and
		 * the upstream is told which. */
		int64_t until = guard_deadline_min(deadline_us, now + gw->upstream_timeout_ms * 1000);
		int64_t timeout_ms = guard_deadline_left_ms(until, now);
		guard_deadline_stamp(req, until, now);
		msg_resp up;
		msg_resp_init(&up);
		int rc = engine_call_traced(ctx, id, addr, req, &up, timeout_ms);
		registry_release(gw->reg, id);
		if (rc == 0) {
			msg_resp_set(resp, up.status, up.content_type[0] ? up.content_type : NULL,
				     up.body, up.body_len);
			for (int i = 0; i < up.nheaders; i++)
				if (!hop_header(up.headers[i].name))
					msg_resp_set_header(resp, up.headers[i].name,
							    up.headers[i].value);
			msg_resp_clear(&up);
			deprecation_headers(route, resp);
			return guard_failed(0, resp->status);
		}
		if (rc == ERR_TIMEOUT) {
			msg_resp_clear(&up);
			log_msg(ctx->log, LOG_WARN, NULL, "%s %s: %s (%s) timed out after %lld ms",
				req->method, req->path, id, addr, (long long)timeout_ms);
			msg_resp_error(resp, 504, "upstream_timeout",
				       "the service did not answer in time",
				       json_pack("{s:s}", "service", service));
			return 1;
		}
		registry_mark_down(gw->reg, id, now);
		if (rc != ERR_UNAVAILABLE) {
			/* The request may have reached the instance (it died while
			 * answering): only a read may be sent again elsewhere. */
			log_msg(ctx->log, LOG_WARN, NULL, "%s %s: %s (%s) failed: %s (%s); out of rotation",
				req->method, req->path, id, addr, err_name(rc),
				msg_resp_header(&up, "X-Client-Error") ? msg_resp_header(&up, "X-Client-Error")
								       : "no detail");
			if (!idempotent(req->method)) {
				msg_resp_clear(&up);
				msg_resp_error(resp, 503, "unavailable",
					       "the instance failed while answering; the request may or "
					       "may not have been applied",
					       json_pack("{s:s}", "service", service));
				msg_resp_set_header(resp, "Retry-After", "1");
				return 1;
			}
		} else {
			log_msg(ctx->log, LOG_WARN, NULL,
				"%s (%s) refused the connection; out of rotation", id, addr);
		}
		msg_resp_clear(&up);
		registry_tried_add(&tried, id);
	}
	msg_resp_error(resp, 503, "unavailable", "no healthy instance of the service",
		       json_pack("{s:s}", "service", service));
	msg_resp_set_header(resp, "Retry-After", "1");
	return tried.n == 0 ? FORWARD_NONE : 1;
}

/* Copies query parameter name of req into buf when it is present and made
 * only of the characters in allowed (so it can go into a URL as it is);
 * "" otherwise. */
static void plain_query(const msg_req *req, const char *name, const char *allowed, char *buf,
			size_t len)
{
	if (msg_req_query(req, name, buf, len) != 1 || !buf[0] || buf[strspn(buf, allowed)] != '\0')
		buf[0] = '\0';
}

/* The search service could not answer GET /v1/search (nor a stale copy):
 * the catalog's listing with the request's category and price filters, in
 * the search answer's shape, said so by X-Ecom-Fallback: catalog-listing
 * (the listing cannot match the words of q: no scores, no total, no
 * facets). Suggestions fall back to none. 1 when resp now holds the
 * fallback; 0 leaves resp as it was. */
static int search_fallback(gateway *gw, const msg_req *req, int64_t deadline, msg_resp *resp)
{
	if (strcmp(req->method, "GET") != 0)
		return 0;
	if (strcmp(req->path, "/v1/search/suggest") == 0) {
		msg_resp_clear(resp);
		msg_resp_init(resp);
		msg_resp_json(resp, 200, json_pack("{s:[]}", "suggestions"));
		msg_resp_set_header(resp, GATEWAY_FALLBACK_HEADER, "none");
		return 1;
	}
	if (strcmp(req->path, "/v1/search") != 0)
		return 0;
	const route_entry *route = routes_match(gw->table, "/v1/products");
	if (!route)
		return 0;
	static const char digits[] = "0123456789";
	char category[72], minp[24], maxp[24], limit[8], q[256] = "";
	plain_query(req, "category", "abcdefghijklmnopqrstuvwxyz0123456789-", category,
		    sizeof(category));
	plain_query(req, "min_price", digits, minp, sizeof(minp));
	plain_query(req, "max_price", digits, maxp, sizeof(maxp));
	plain_query(req, "limit", digits, limit, sizeof(limit));
	if (msg_req_query(req, "q", q, sizeof(q)) != 1)
		q[0] = '\0';
	char path[256];
	snprintf(path, sizeof(path), "/v1/products?page_size=%s%s%s%s%s%s%s", limit[0] ? limit : "20",
		 category[0] ? "&category=" : "", category, minp[0] ? "&min_price=" : "", minp,
		 maxp[0] ? "&max_price=" : "", maxp);
	int64_t now = clock_now(gw->ctx->clock);
	guard_permit permit;
	int why;
	int64_t retry_after;
	if (guard_enter(gw->guard, "catalog", now, &permit, &why, &retry_after) != 0)
		return 0;
	msg_req sub;
	msg_resp cat;
	msg_resp_init(&cat);
	int failed = msg_req_init(&sub, "GET", path) != 0;
	if (!failed) {
		if (req->request_id[0])
			msg_req_set_header(&sub, "X-Request-Id", req->request_id);
		failed = forward(gw, route, "catalog", &sub, deadline, &cat);
		msg_req_clear(&sub);
	}
	if (failed == FORWARD_NONE || (failed && !cat.status))
		guard_cancel(&permit);
	else
		guard_done(&permit, clock_now(gw->ctx->clock), failed);
	json_t *listing = !failed && cat.status == 200 && cat.body
				  ? json_loadb(cat.body, cat.body_len, 0, NULL)
				  : NULL;
	msg_resp_clear(&cat);
	json_t *items = json_object_get(listing, "items");
	if (!json_is_array(items)) {
		json_decref(listing);
		return 0;
	}
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
		json_object_set_new(it, "score", json_null());
	json_t *next = json_object_get(listing, "next_page_token");
	json_t *out = json_pack("{s:s,s:O,s:n,s:{},s:O,s:s}", "query", q, "items", items, "total",
				"facets", "next_page_token", next ? next : json_null(), "ranking",
				"fallback");
	json_decref(listing);
	if (!out)
		return 0;
	msg_resp_clear(resp);
	msg_resp_init(resp);
	msg_resp_json(resp, 200, out);
	msg_resp_set_header(resp, GATEWAY_FALLBACK_HEADER, "catalog-listing");
	metrics_count(gw->ctx->metrics, "gateway_fallback_total", "service=\"search\"", 1);
	return 1;
}

static void proxy(gateway *gw, const route_entry *route, const route_target *pfx, msg_req *req,
		  msg_resp *resp)
{
	engine_ctx *ctx = gw->ctx;
	resp->route = route->prefix;
	/* The host replaced an invalid client id with its own: the upstream
	 * must log the id the client gets back. */
	if (req->request_id[0])
		msg_req_set_header(req, "X-Request-Id", req->request_id);
	/* A client's X-Forwarded-For is only a claim: append the real peer. */
	const char *xff = msg_req_header(req, "X-Forwarded-For");
	char *chain = NULL;
	if (req->peer[0] && !xff)
		msg_req_add_header(req, "X-Forwarded-For", req->peer);
	else if (req->peer[0] && asprintf(&chain, "%s, %s", xff, req->peer) >= 0) {
		msg_req_set_header(req, "X-Forwarded-For", chain);
		free(chain);
	}

	/* The request's deadline: the gateway's own budget, or the caller's
	 * when that is sooner. */
	const char *service = pfx->service;
	int64_t start = clock_now(ctx->clock), asked;
	int64_t deadline = start + gw->deadline_ms * 1000;
	const char *dh = msg_req_header(req, GUARD_DEADLINE_HEADER);
	if (dh && guard_deadline_parse(dh, start, &asked) == 0)
		deadline = guard_deadline_min(deadline, asked);
	if (guard_deadline_left_ms(deadline, start) < 1) {
		refused(service, GUARD_DEADLINE, 0, resp);
		return;
	}
	int stale_ok = stale_eligible(gw, req);
	guard_permit permit;
	int why;
	int64_t retry_after;
	int is_search = strcmp(service, "search") == 0;
	if (guard_enter(gw->guard, service, start, &permit, &why, &retry_after) != 0) {
		if (!stale_ok || !serve_stale(gw, service, req, guard_refusal_name(why), resp)) {
			refused(service, why, retry_after, resp);
			if (is_search)
				search_fallback(gw, req, deadline, resp);
		}
		return;
	}
	int failed = forward(gw, route, service, req, deadline, resp);
	if (failed == FORWARD_NONE)
		guard_cancel(&permit);
	else
		guard_done(&permit, clock_now(ctx->clock), failed);
	if (failed && is_search) {
		if (!(stale_ok && serve_stale(gw, service, req, "failed", resp)))
			search_fallback(gw, req, deadline, resp);
		return;
	}
	if (!stale_ok)
		return;
	if (failed) {
		serve_stale(gw, service, req, "failed", resp);
	} else if (resp->status == 200) {
		char key[FALLBACK_MAX_KEY + 2];
		stale_key(req, key, sizeof(key));
		fallback_put(gw->stale, key, resp->content_type, resp->body, resp->body_len,
			     clock_now(ctx->clock));
		recommend_fallback_keep(gw->stale, req, resp, clock_now(ctx->clock));
	}
}

/* ---- admin API ---------------------------------------------------------------- */

static void admin_services(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	msg_resp_json(resp, 200, registry_to_json(gw->reg, clock_now(gw->ctx->clock)));
}

static void admin_register(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	jval_error e = { { 0 }, { 0 } };
	json_t *body = jval_parse_object(req->body ? req->body : "", req->body_len, &e);
	const char *service = NULL, *id = NULL, *addr = NULL;
	if (!body || jval_str(body, "service", 1, 1, REGISTRY_ID_MAX - 1, &service, &e) ||
	    jval_str(body, "id", 1, 1, REGISTRY_ID_MAX - 1, &id, &e) ||
	    jval_str(body, "addr", 1, 7, REGISTRY_ADDR_MAX - 1, &addr, &e)) {
		engine_bad_field(resp, e.field[0] ? e.field : "body", e.message);
		json_decref(body);
		return;
	}
	if (strncmp(addr, "http://", 7) != 0) {
		engine_bad_field(resp, "addr", "must be an http:// base URL");
		json_decref(body);
		return;
	}
	int rc = registry_heartbeat(gw->reg, service, id, addr, clock_now(gw->ctx->clock));
	if (rc)
		engine_bad_field(resp, "id", "cannot register this instance");
	else
		msg_resp_json(resp, 200, json_pack("{s:s,s:I}", "id", id, "ttl_ms",
						   (json_int_t)gw->ttl_ms));
	json_decref(body);
}

static void admin_deregister(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	const char *id = msg_req_param(req, 0);
	if (registry_remove(gw->reg, id) != 0) {
		msg_resp_error(resp, 404, "not_found", "no such instance",
			       json_pack("{s:s}", "id", id));
		return;
	}
	log_info(gw->ctx->log, "instance %s deregistered", id);
	msg_resp_json(resp, 200, json_pack("{s:s}", "id", id));
}

/* ---- admin: breakers and faults, here and on every instance ------------------------ */

typedef struct peer {
	char id[REGISTRY_ID_MAX];
	char service[32];
	char addr[REGISTRY_ADDR_MAX];
} peer;

#define MAX_PEERS 64

/* The listed instances of service (of every service when NULL) into out;
 * their number. */
static int peers_of(gateway *gw, const char *service, peer *out, int max)
{
	json_t *doc = registry_to_json(gw->reg, clock_now(gw->ctx->clock));
	int n = 0;
	size_t i, j;
	json_t *svc, *in;
	json_array_foreach(json_object_get(doc, "services"), i, svc)
	{
		const char *name = json_string_value(json_object_get(svc, "name"));
		if (!name || (service && strcmp(name, service) != 0))
			continue;
		json_array_foreach(json_object_get(svc, "instances"), j, in)
		{
			if (n == max)
				break;
			snprintf(out[n].id, sizeof(out[n].id), "%s",
				 json_string_value(json_object_get(in, "id")));
			snprintf(out[n].service, sizeof(out[n].service), "%s", name);
			snprintf(out[n].addr, sizeof(out[n].addr), "%s",
				 json_string_value(json_object_get(in, "addr")));
			n++;
		}
	}
	json_decref(doc);
	return n;
}

/* One admin call to base (the admin token, a JSON body when given). resp is
 * initialised here; the caller clears it. Returns as ctx->call. */
static int admin_call(gateway *gw, const char *base, const char *method, const char *path,
		      const msg_req *orig, msg_resp *resp)
{
	msg_resp_init(resp);
	msg_req r;
	int rc = msg_req_init(&r, method, path);
	if (rc)
		return rc;
	char auth[300];
	snprintf(auth, sizeof(auth), "Bearer %s", gw->ctx->admin_token ? gw->ctx->admin_token : "");
	rc = msg_req_add_header(&r, "Authorization", auth);
	if (rc == 0 && orig && orig->body) {
		rc = msg_req_add_header(&r, "Content-Type", "application/json");
		if (rc == 0)
			rc = msg_req_set_body(&r, orig->body, orig->body_len);
	}
	if (rc == 0)
		rc = gw->ctx->call(gw->ctx->call_ud, base, &r, resp, FANOUT_TIMEOUT_MS);
	msg_req_clear(&r);
	return rc;
}

/* {instance, error} for an instance that did not answer as hoped. */
static json_t *peer_error(const char *id, int rc, const msg_resp *r)
{
	char why[64];
	if (rc)
		snprintf(why, sizeof(why), "%s", err_name(rc));
	else
		snprintf(why, sizeof(why), "HTTP %d", r->status);
	return json_pack("{s:s,s:s}", "instance", id, "error", why);
}

/* The base URL of an outside-world simulator for target ("stripe" ->
 * stripe.base_url), or NULL. Only plain-HTTP URLs count: the admin token is
 * never sent to a real provider. */
static const char *simulator_url(gateway *gw, const char *target)
{
	char key[64];
	snprintf(key, sizeof(key), "%s.base_url", target);
	const char *v = config_get(gw->ctx->config, key);
	return v && strncmp(v, "http://", 7) == 0 ? v : NULL;
}

static const char *const simulated[] = { "stripe", "paypal", "smtp", "sms", NULL };

static int is_simulated(const char *target)
{
	for (int i = 0; simulated[i]; i++)
		if (strcmp(simulated[i], target) == 0)
			return 1;
	return 0;
}

/* Whether service is one the gateway knows: in its route table or
 * registered. */
static int known_service(gateway *gw, const char *service)
{
	for (int i = 0; i < routes_count(gw->table); i++) {
		const route_entry *e = routes_at(gw->table, i);
		for (int k = 0; k < e->ntargets; k++)
			if (strcmp(e->targets[k].service, service) == 0)
				return 1;
	}
	peer one;
	return peers_of(gw, service, &one, 1) > 0;
}

/* Appends the array `key` of a JSON answer to out. */
static void gather(const msg_resp *r, const char *key, json_t *out)
{
	json_t *v = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
	json_array_extend(out, json_object_get(v, key));
	json_decref(v);
}

static void admin_breakers(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	json_t *all = guard_list(gw->guard, clock_now(gw->ctx->clock));
	size_t i;
	json_t *b;
	json_array_foreach(all, i, b)
		json_object_set_new(b, "instance", json_string(gw->ctx->instance_id ? gw->ctx->instance_id : "gateway"));
	json_t *unreachable = json_array();
	peer peers[MAX_PEERS];
	int n = peers_of(gw, NULL, peers, MAX_PEERS);
	for (int k = 0; k < n; k++) {
		msg_resp r;
		int rc = admin_call(gw, peers[k].addr, "GET", "/admin/breakers", NULL, &r);
		if (rc == 0 && r.status == 200)
			gather(&r, "breakers", all);
		else
			json_array_append_new(unreachable, peer_error(peers[k].id, rc, &r));
		msg_resp_clear(&r);
	}
	msg_resp_json(resp, 200, json_pack("{s:o,s:o}", "breakers", all, "unreachable", unreachable));
}

/* POST /admin/breakers/{service}/{trip|reset|disable}: the gateway's edge
 * to service, then the same on every instance of the other services, so
 * that their calls to service fail fast (trip) or flow again (reset). */
static void admin_breaker_action(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	const char *svc = msg_req_param(req, 0), *action = msg_req_param(req, 1);
	int64_t now = clock_now(gw->ctx->clock);
	int (*fn)(guard *, const char *, int64_t) = strcmp(action, "trip") == 0	     ? guard_trip
						    : strcmp(action, "reset") == 0   ? guard_reset
						    : strcmp(action, "disable") == 0 ? guard_disable
										     : NULL;
	if (!fn) {
		msg_resp_error(resp, 404, "not_found", "the actions are trip, reset and disable",
			       json_pack("{s:s}", "action", action));
		return;
	}
	if (!known_service(gw, svc) && !guard_edge_json(gw->guard, svc, now)) {
		msg_resp_error(resp, 404, "not_found", "no such service",
			       json_pack("{s:s}", "service", svc));
		return;
	}
	int rc = fn(gw->guard, svc, now);
	if (rc != 0 && rc != ERR_NOT_FOUND) {
		msg_resp_error(resp, rc == ERR_INVALID ? 400 : 409,
			       rc == ERR_INVALID ? "invalid_argument" : "conflict",
			       "the breaker cannot do that", json_pack("{s:s}", "service", svc));
		return;
	}
	log_info(gw->ctx->log, "operator: %s breakers to %s", action, svc);
	json_t *own = guard_edge_json(gw->guard, svc, now);
	if (!own)
		own = json_pack("{s:s,s:s,s:s}", "from", guard_caller(gw->guard), "to", svc, "state",
				"CLOSED");
	json_object_set_new(own, "instance", json_string(gw->ctx->instance_id ? gw->ctx->instance_id : "gateway"));
	json_t *fwd = json_array(), *failed = json_array();
	peer peers[MAX_PEERS];
	int n = peers_of(gw, NULL, peers, MAX_PEERS);
	char path[128];
	snprintf(path, sizeof(path), "/admin/breakers/%s/%s", svc, action);
	for (int k = 0; k < n; k++) {
		if (strcmp(peers[k].service, svc) == 0)
			continue; /* a service does not call itself */
		msg_resp r;
		int prc = admin_call(gw, peers[k].addr, "POST", path, NULL, &r);
		if (prc == 0 && r.status == 200) {
			json_t *v = json_loadb(r.body, r.body_len, 0, NULL);
			if (v)
				json_array_append_new(fwd, v);
		} else if (!(prc == 0 && r.status == 404)) { /* 404: no edge to reset */
			json_array_append_new(failed, peer_error(peers[k].id, prc, &r));
		}
		msg_resp_clear(&r);
	}
	json_object_set_new(own, "forwarded", fwd);
	json_object_set_new(own, "failed", failed);
	msg_resp_json(resp, 200, own);
}

static void admin_faults(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	msg_resp mine;
	msg_resp_init(&mine);
	chaos_faults_list(gw->ctx, gw->ctx->faults, &mine);
	json_t *all = json_array(), *unreachable = json_array();
	gather(&mine, "faults", all);
	msg_resp_clear(&mine);
	peer peers[MAX_PEERS];
	int n = peers_of(gw, NULL, peers, MAX_PEERS);
	for (int k = 0; k < n; k++) {
		msg_resp r;
		int rc = admin_call(gw, peers[k].addr, "GET", "/admin/faults", NULL, &r);
		if (rc == 0 && r.status == 200)
			gather(&r, "faults", all);
		else
			json_array_append_new(unreachable, peer_error(peers[k].id, rc, &r));
		msg_resp_clear(&r);
	}
	for (int i = 0; simulated[i]; i++) {
		const char *base = simulator_url(gw, simulated[i]);
		if (!base)
			continue;
		msg_resp r;
		int rc = admin_call(gw, base, "GET", "/admin/faults", NULL, &r);
		json_t *got = json_array();
		if (rc == 0 && r.status == 200)
			gather(&r, "faults", got);
		else
			json_array_append_new(unreachable, peer_error(simulated[i], rc, &r));
		size_t j;
		json_t *f;
		json_array_foreach(got, j, f)
			if (!json_object_get(f, "instance"))
				json_object_set_new(f, "instance", json_string(base));
		json_array_extend(all, got);
		json_decref(got);
		msg_resp_clear(&r);
	}
	msg_resp_json(resp, 200, json_pack("{s:o,s:o}", "faults", all, "unreachable", unreachable));
}

/* GET, PUT and DELETE /admin/faults/{target}: the gateway's own fault
 * (target "gateway"), an outside-world simulator's (stripe, ...: passed on
 * to it), or every instance of a service's. */
static void admin_fault(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	engine_ctx *ctx = gw->ctx;
	const char *target = msg_req_param(req, 0);
	int is_put = strcmp(req->method, "PUT") == 0, is_get = strcmp(req->method, "GET") == 0;
	if (strcmp(target, ctx->service) == 0) {
		if (is_put)
			chaos_fault_put(ctx, ctx->faults, target, req, resp);
		else if (is_get)
			chaos_fault_get(ctx, ctx->faults, target, resp);
		else
			chaos_fault_delete(ctx, ctx->faults, target, resp);
		return;
	}
	if (is_put) {
		/* Checked here too, so a bad body is one clear 400, not one per
		 * instance. */
		json_t *body;
		jval_error e = { { 0 }, { 0 } };
		fault_spec spec;
		if (engine_json_body(req, resp, &body))
			return;
		int rc = fault_parse_json(body, clock_now(ctx->clock), &spec, &e);
		json_decref(body);
		if (rc) {
			engine_bad_field(resp, e.field[0] ? e.field : "body", e.message);
			return;
		}
	}
	char path[160];
	snprintf(path, sizeof(path), "/admin/faults/%s", target);
	if (is_simulated(target)) {
		const char *base = simulator_url(gw, target);
		if (!base) {
			msg_resp_error(resp, 404, "not_found", "no simulator is configured for this provider",
				       json_pack("{s:s}", "target", target));
			return;
		}
		msg_resp r;
		int rc = admin_call(gw, base, req->method, path, req, &r);
		if (rc == 0)
			msg_resp_set(resp, r.status, r.content_type[0] ? r.content_type : NULL, r.body,
				     r.body_len);
		else
			msg_resp_error(resp, 503, "unavailable", "the simulator did not answer",
				       json_pack("{s:s,s:s}", "target", target, "error", err_name(rc)));
		msg_resp_clear(&r);
		return;
	}
	peer peers[MAX_PEERS];
	int n = peers_of(gw, target, peers, MAX_PEERS);
	if (n == 0) {
		int known = known_service(gw, target);
		msg_resp_error(resp, known ? 503 : 404, known ? "unavailable" : "not_found",
			       known ? "no instance of the service is registered" : "unknown fault target",
			       json_pack("{s:s}", "target", target));
		return;
	}
	json_t *done = json_array(), *failed = json_array();
	for (int k = 0; k < n; k++) {
		msg_resp r;
		int rc = admin_call(gw, peers[k].addr, req->method, path, req, &r);
		if (rc == 0 && r.status == 200) {
			json_t *v = json_loadb(r.body, r.body_len, 0, NULL);
			if (v)
				json_array_append_new(done, v);
		} else if (!(is_get && rc == 0 && r.status == 404)) {
			json_array_append_new(failed, peer_error(peers[k].id, rc, &r));
		}
		msg_resp_clear(&r);
	}
	if (json_array_size(done) == 0 && json_array_size(failed) > 0) {
		msg_resp_error(resp, 503, "unavailable", "no instance of the service took the change",
			       json_pack("{s:s,s:o}", "target", target, "failed", failed));
		json_decref(done);
		return;
	}
	/* The first instance's answer, with every instance's. */
	json_t *out = json_array_size(done) ? json_deep_copy(json_array_get(done, 0))
					    : json_pack("{s:s}", "target", target);
	json_object_del(out, "instance");
	json_object_set_new(out, "instances", done);
	json_object_set_new(out, "failed", failed);
	msg_resp_json(resp, 200, out);
}

/* The event bus's queues of every service (src/bus/bus_admin.c). */
static void admin_queues(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	json_t *reg = registry_to_json(gw->reg, clock_now(gw->ctx->clock));
	bus_admin_queues(gw->ctx, json_object_get(reg, "services"), resp);
	json_decref(reg);
}

static void admin_queue_replay(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	char consumer[80] = "";
	if (msg_req_query(req, "consumer", consumer, sizeof(consumer)) < 0) {
		engine_bad_field(resp, "consumer", "too long");
		return;
	}
	json_t *reg = registry_to_json(gw->reg, clock_now(gw->ctx->clock));
	bus_admin_replay(gw->ctx, json_object_get(reg, "services"), msg_req_param(req, 0),
			 consumer[0] ? consumer : NULL, resp);
	json_decref(reg);
}

/* ---- admin: traces and stats, gathered from every process ---------------------------- */

/* The trace's spans from this process, every registered instance and the
 * outside-world simulators, each once (by span id), in start order; the
 * processes that did not answer into unreachable. New reference. */
static json_t *gather_trace(gateway *gw, const char *trace_hex, const uint8_t id[16],
			    json_t *unreachable)
{
	json_t *all = tracer_find_json(gw->ctx->tracer, id, TRACER_FIND_MAX);
	if (!all)
		all = json_array();
	char path[64];
	snprintf(path, sizeof(path), "/admin/traces/%s", trace_hex);
	peer peers[MAX_PEERS];
	int n = peers_of(gw, NULL, peers, MAX_PEERS);
	for (int k = 0; k < n || simulated[k - n]; k++) {
		const char *base = k < n ? peers[k].addr : simulator_url(gw, simulated[k - n]);
		const char *who = k < n ? peers[k].id : simulated[k - n];
		if (!base)
			continue;
		msg_resp r;
		int rc = admin_call(gw, base, "GET", path, NULL, &r);
		if (rc == 0 && r.status == 200)
			gather(&r, "spans", all);
		else
			json_array_append_new(unreachable, peer_error(who, rc, &r));
		msg_resp_clear(&r);
	}
	/* Each span once (two replicas of the gateway's table could list one
	 * address twice), oldest first. */
	size_t cnt = json_array_size(all);
	span *sp = calloc(cnt ? cnt : 1, sizeof(*sp));
	json_t *out = json_array();
	size_t m = 0;
	for (size_t i = 0; sp && i < cnt; i++) {
		if (span_from_json(json_array_get(all, i), &sp[m]) != 0)
			continue;
		int dup = 0;
		for (size_t j = 0; j < m && !dup; j++)
			dup = memcmp(sp[j].span_id, sp[m].span_id, 8) == 0;
		if (!dup)
			m++;
	}
	for (size_t i = 1; i < m; i++) /* insertion sort: a trace is small */
		for (size_t j = i; j > 0 && sp[j].start_us < sp[j - 1].start_us; j--) {
			span t = sp[j];
			sp[j] = sp[j - 1];
			sp[j - 1] = t;
		}
	for (size_t i = 0; i < m; i++)
		json_array_append_new(out, span_json(&sp[i]));
	free(sp);
	json_decref(all);
	return out;
}

/* GET /admin/traces/{trace_id}: the trace's spans from every process. */
static void admin_trace(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	const char *hex = msg_req_param(req, 0);
	uint8_t id[16];
	if (trace_id_from_hex(hex, id) != 0) {
		engine_bad_field(resp, "trace_id", "must be 32 lowercase hex digits");
		return;
	}
	json_t *unreachable = json_array();
	json_t *spans = gather_trace(gw, hex, id, unreachable);
	msg_resp_json(resp, 200, json_pack("{s:s,s:o,s:o}", "trace_id", hex, "spans", spans,
					   "unreachable", unreachable));
}

/* The order service answers GET /admin/sagas/{order_id} with its own spans
 * of the order's trace; the gateway puts every process's in their place. */
static void enrich_saga(gateway *gw, const msg_req *req, msg_resp *resp)
{
	if (strcmp(req->method, "GET") != 0 || strncmp(req->path, "/admin/sagas/", 13) != 0 ||
	    strchr(req->path + 13, '/') || resp->status != 200 || !resp->body)
		return;
	json_t *v = json_loadb(resp->body, resp->body_len, 0, NULL);
	const char *hex = json_string_value(json_object_get(v, "trace_id"));
	uint8_t id[16];
	if (hex && trace_id_from_hex(hex, id) == 0) {
		json_t *unreachable = json_array();
		json_object_set_new(v, "spans", gather_trace(gw, hex, id, unreachable));
		json_object_set_new(v, "unreachable", unreachable);
		char *text = json_dumps(v, JSON_COMPACT);
		if (text)
			msg_resp_set(resp, 200, "application/json", text, strlen(text));
		free(text);
	}
	json_decref(v);
}

/* The per-service figures of stats: acc[service] merged with one process's
 * window (hists[i] parallel to the services in acc, by insertion order). */
typedef struct stats_acc {
	json_t *by_service; /* service -> accumulated object */
	char names[MAX_PEERS + 8][32];
	hist *hists[MAX_PEERS + 8];
	int n;
} stats_acc;

static void stats_add(stats_acc *a, const char *service, const json_t *one)
{
	int i = 0;
	while (i < a->n && strcmp(a->names[i], service) != 0)
		i++;
	if (i == a->n) {
		if (a->n == MAX_PEERS + 8 || !(a->hists[i] = hist_new()))
			return;
		snprintf(a->names[i], sizeof(a->names[i]), "%s", service);
		json_object_set_new(a->by_service, service, json_pack("{s:s,s:i}", "service", service,
									"instances", 0));
		a->n++;
	}
	json_t *acc = json_object_get(a->by_service, service);
	json_object_set_new(acc, "instances",
			    json_integer(json_integer_value(json_object_get(acc, "instances")) + 1));
	if (one)
		window_merge_json(acc, a->hists[i], one);
}

/* GET /admin/stats: per service, what its instances served over their
 * windows (rps, p50_ms, p99_ms, error_rate, in_flight), and each
 * instance's own. */
static void admin_stats(void *ud, msg_req *req, msg_resp *resp)
{
	gateway *gw = ud;
	stats_acc a = { .by_service = json_object() };
	json_t *instances = json_array(), *unreachable = json_array();
	json_t *mine = window_json(gw->ctx->window, clock_now(gw->ctx->clock));
	if (mine) {
		json_object_set_new(mine, "service", json_string(gw->ctx->service));
		json_object_set_new(mine, "instance", json_string(gw->ctx->instance_id ? gw->ctx->instance_id : "gateway"));
		stats_add(&a, gw->ctx->service, mine);
		json_array_append_new(instances, mine);
	}
	peer peers[MAX_PEERS];
	int n = peers_of(gw, NULL, peers, MAX_PEERS);
	for (int k = 0; k < n || simulated[k - n]; k++) {
		const char *base = k < n ? peers[k].addr : simulator_url(gw, simulated[k - n]);
		if (!base)
			continue;
		msg_resp r;
		int rc = admin_call(gw, base, "GET", "/admin/stats", NULL, &r);
		json_t *one = rc == 0 && r.status == 200 && r.body
				      ? json_loadb(r.body, r.body_len, 0, NULL)
				      : NULL;
		const char *svc = json_string_value(json_object_get(one, "service"));
		if (one && svc) {
			stats_add(&a, svc, one);
			json_object_del(one, "latency_buckets");
			json_array_append_new(instances, one);
		} else {
			json_array_append_new(unreachable,
					      peer_error(k < n ? peers[k].id : simulated[k - n], rc, &r));
			if (k < n)
				stats_add(&a, peers[k].service, NULL);
			json_decref(one);
		}
		msg_resp_clear(&r);
	}
	if (mine)
		json_object_del(mine, "latency_buckets");
	json_t *services = json_array();
	for (int i = 0; i < a.n; i++) {
		json_t *acc = json_object_get(a.by_service, a.names[i]);
		window_finish_json(acc, a.hists[i]);
		json_object_del(acc, "latency_buckets");
		json_array_append(services, acc);
		hist_free(a.hists[i]);
	}
	json_decref(a.by_service);
	msg_resp_json(resp, 200,
		      json_pack("{s:o,s:o,s:o}", "services", services, "instances", instances,
				"unreachable", unreachable));
}

/* ---- engine ----------------------------------------------------------------------- */

static void gateway_destroy(void *eng)
{
	gateway *gw = eng;
	if (!gw)
		return;
	router_free(gw->admin);
	registry_free(gw->reg);
	routes_free(gw->table);
	token_cache_free(gw->tokens);
	for (int i = 0; i < RATE_CLASSES; i++)
		ratelimit_free(gw->limits[i]);
	guard_free(gw->own_guard);
	fallback_free(gw->stale);
	free(gw);
}

/* The stale cache and the prefixes it serves, from gateway.stale_*. */
static int stale_setup(gateway *gw, char *err, size_t errlen)
{
	const config *cfg = gw->ctx->config;
	const char *list = config_get(cfg, "gateway.stale_prefixes");
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", list ? list : "/v1/products,/v2/products");
	char *save = NULL;
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		size_t n = strlen(tok);
		if (gw->nstale_prefixes == STALE_MAX_PREFIXES || tok[0] != '/' || n < 2 ||
		    n >= ROUTES_PREFIX_MAX || tok[n - 1] == '/') {
			snprintf(err, errlen, "gateway.stale_prefixes: bad or too many prefixes at '%.40s'",
				 tok);
			return ERR_INVALID;
		}
		snprintf(gw->stale_prefixes[gw->nstale_prefixes++], ROUTES_PREFIX_MAX, "%s", tok);
	}
	int64_t entries = config_int(cfg, "gateway.stale_entries", 1000);
	int64_t bytes = config_int(cfg, "gateway.stale_max_bytes", 8 << 20);
	int64_t ttl_s = config_int(cfg, "gateway.stale_ttl_s", 3600);
	if (entries <= 0 || gw->nstale_prefixes == 0)
		return 0; /* no fallback */
	gw->stale = fallback_new(entries > 1000000 ? 1000000 : (int)entries,
				 bytes < 1024 ? 1024 : (size_t)bytes, (ttl_s < 1 ? 1 : ttl_s) * 1000000);
	if (!gw->stale) {
		snprintf(err, errlen, "cannot make the stale cache (gateway.stale_*)");
		return ERR_INVALID;
	}
	return 0;
}

static void *gateway_create(engine_ctx *ctx, char *err, size_t errlen)
{
	gateway *gw = calloc(1, sizeof(*gw));
	if (!gw) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	gw->ctx = ctx;
	gw->upstream_timeout_ms = config_int(ctx->config, "gateway.upstream_timeout_ms", 5000);
	if (gw->upstream_timeout_ms < 1)
		gw->upstream_timeout_ms = 1;
	gw->ttl_ms = config_int(ctx->config, "registry.ttl_ms", 3500);
	gw->reg = registry_new(gw->ttl_ms * 1000);
	gw->admin = router_new();
	if (!gw->reg || !gw->admin ||
	    router_add(gw->admin, "GET", "/admin/services", admin_services, gw) ||
	    router_add(gw->admin, "GET", "/admin/queues", admin_queues, gw) ||
	    router_add(gw->admin, "POST", "/admin/queues/{topic}/replay", admin_queue_replay, gw) ||
	    router_add(gw->admin, "POST", "/admin/registry", admin_register, gw) ||
	    router_add(gw->admin, "DELETE", "/admin/registry/{id}", admin_deregister, gw) ||
	    router_add(gw->admin, "GET", "/admin/breakers", admin_breakers, gw) ||
	    router_add(gw->admin, "POST", "/admin/breakers/{service}/{action}", admin_breaker_action,
		       gw) ||
	    router_add(gw->admin, "GET", "/admin/faults", admin_faults, gw) ||
	    router_add(gw->admin, "GET", "/admin/traces/{trace_id}", admin_trace, gw) ||
	    router_add(gw->admin, "GET", "/admin/stats", admin_stats, gw) ||
	    router_add(gw->admin, "GET", "/admin/faults/{target}", admin_fault, gw) ||
	    router_add(gw->admin, "PUT", "/admin/faults/{target}", admin_fault, gw) ||
	    router_add(gw->admin, "DELETE", "/admin/faults/{target}", admin_fault, gw)) {
		snprintf(err, errlen, "cannot build the gateway");
		gateway_destroy(gw);
		return NULL;
	}
	if (!ctx->call) {
		snprintf(err, errlen, "the gateway needs an outbound caller");
		gateway_destroy(gw);
		return NULL;
	}
	const char *file = config_get(ctx->config, "gateway.routes_file");
	gw->table = file && file[0] ? routes_load(file, err, errlen)
				    : routes_parse(routes_default(), err, errlen);
	if (!gw->table) {
		gateway_destroy(gw);
		return NULL;
	}
	gw->token_leeway_s = config_int(ctx->config, "gateway.token_leeway_s", 30);
	int64_t slots = config_int(ctx->config, "gateway.token_cache_slots", 65536);
	gw->tokens = slots > 0 ? token_cache_new(ctx->jwt_key, ctx->jwt_key_len, (size_t)slots) : NULL;
	if (slots > 0 && !gw->tokens) {
		snprintf(err, errlen, "cannot make the token cache");
		gateway_destroy(gw);
		return NULL;
	}
	gw->deadline_ms = config_int(ctx->config, "gateway.deadline_ms", 5000);
	if (gw->deadline_ms < 1)
		gw->deadline_ms = 1;
	gw->guard = ctx->guard;
	if (!gw->guard) {
		gw->own_guard = guard_new(ctx->service ? ctx->service : "gateway", ctx->config, ctx->log,
					  ctx->metrics, err, errlen);
		gw->guard = gw->own_guard;
		if (!gw->guard) {
			gateway_destroy(gw);
			return NULL;
		}
	}
	if (stale_setup(gw, err, errlen) != 0) {
		gateway_destroy(gw);
		return NULL;
	}
	static const char *const keys[RATE_CLASSES][2] = {
		{ "gateway.rate_read_per_s", "gateway.rate_read_burst" },
		{ "gateway.rate_write_per_s", "gateway.rate_write_burst" },
		{ "gateway.rate_auth_per_s", "gateway.rate_auth_burst" },
	};
	for (int i = 0; i < RATE_CLASSES; i++) {
		gw->limits[i] = ratelimit_new((double)config_int(ctx->config, keys[i][0], 100),
					      (double)config_int(ctx->config, keys[i][1], 200), 100000);
		if (!gw->limits[i]) {
			snprintf(err, errlen, "bad %s or %s", keys[i][0], keys[i][1]);
			gateway_destroy(gw);
			return NULL;
		}
	}
	metrics_help(ctx->metrics, "rate_limit_rejections_total",
		     "Requests refused with 429, by class (the gateway's read, write, auth).");
	metrics_help(ctx->metrics, "gateway_fallback_total",
		     "Requests answered by a fallback instead of their service, by service.");
	metrics_help(ctx->metrics, "gateway_stale_served_total",
		     "Reads answered from the gateway's cache, marked stale, by service and reason.");
	if (!ctx->service_secret || !ctx->service_secret[0])
		log_warn(ctx->log, "no service secret: callers' identities are not forwarded");
	return gw;
}

static void gateway_handle(void *eng, msg_req *req, msg_resp *resp)
{
	gateway *gw = eng;
	identity id;
	if (authenticate(gw, req, resp, &id))
		return;
	if (strncmp(req->path, "/admin/", 7) == 0 || strcmp(req->path, "/admin") == 0) {
		if (id.role == IDENTITY_USER) {
			msg_resp_error(resp, 403, "forbidden", "this route needs the admin token", NULL);
			return;
		}
		if (engine_require_admin(gw->ctx, req, resp))
			return;
		/* The gateway's own admin API, unless the route table sends the
		 * path to a service (the order service's /admin/sagas). */
		if (!routes_match(gw->table, req->path)) {
			router_dispatch(gw->admin, req, resp);
			return;
		}
	}
	const route_entry *route = routes_match(gw->table, req->path);
	if (!route) {
		char msg[160];
		snprintf(msg, sizeof(msg), "no route for %s %.100s", req->method, req->path);
		msg_resp_error(resp, 404, "not_found", msg, NULL);
		return;
	}
	if (rate_limit(gw, req, &id, resp))
		return;
	const route_target *t;
	char path[1024];
	int rewritten = routes_forward(route, gw->ctx->rng, req->path, &t, path, sizeof(path));
	if (rewritten < 0) {
		msg_resp_error(resp, 404, "not_found", "path too long", NULL);
		return;
	}
	if (rewritten) {
		char *np = strdup(path);
		if (!np) {
			msg_resp_error(resp, 500, "internal", "out of memory", NULL);
			return;
		}
		free(req->path);
		req->path = np;
	}
	/* Only the gateway speaks for the caller: drop what the client claims,
	 * sign what was authenticated. */
	msg_req_set_header(req, IDENTITY_HEADER, NULL);
	if (id.role != IDENTITY_ANONYMOUS) {
		char signed_id[IDENTITY_MAX];
		if (identity_sign(gw->ctx->service_secret, &id, clock_now(gw->ctx->clock), signed_id,
				  sizeof(signed_id)) == 0)
			msg_req_set_header(req, IDENTITY_HEADER, signed_id);
	}
	proxy(gw, route, t, req, resp);
	enrich_saga(gw, req, resp);
}

static void gateway_tick(void *eng, int64_t now_us)
{
	gateway *gw = eng;
	registry_expire(gw->reg, now_us);
	for (int i = 0; i < RATE_CLASSES; i++)
		ratelimit_sweep(gw->limits[i], now_us);
}

const engine_def gateway_engine = {
	.name = "gateway",
	.needs_store = 0,
	.create = gateway_create,
	.handle = gateway_handle,
	.tick = gateway_tick,
	.ready = NULL,
	.destroy = gateway_destroy,
	.serves_resil_admin = 1,
	.serves_obs_admin = 1,
};
