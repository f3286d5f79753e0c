/* gateway: authentication, rate limits, the route table, balancing over
 * registered instances, and the admin API. */
#include "services/gateway.h"
#include "bus/bus_admin.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/router.h"
#include "resil/ratelimit.h"
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

/* How many different instances one request may try when connections are
 * refused. Only refused connections fail over: nothing was sent, so a retry
 * cannot apply a request twice. */
#define GATEWAY_MAX_TRIES 3

/* Route classes, each with its own token buckets per caller. */
enum rate_class { RATE_READ = 0, RATE_WRITE, RATE_AUTH, RATE_CLASSES };
static const char *const rate_class_names[] = { "read", "write", "auth" };

typedef struct gateway {
	engine_ctx *ctx;
	registry *reg;
	router *admin;
	routes *table;
	ratelimit *limits[RATE_CLASSES];
	int64_t upstream_timeout_ms;
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
	metrics_count(gw->ctx->metrics, "ecom_gateway_rate_limited_total", labels, 1);
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

	char tried[GATEWAY_MAX_TRIES][REGISTRY_ID_MAX];
	const char *exclude[GATEWAY_MAX_TRIES];
	int ntried = 0;
	while (ntried < GATEWAY_MAX_TRIES) {
		char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
		int64_t now = clock_now(ctx->clock);
		if (registry_acquire(gw->reg, pfx->service, now, exclude, ntried, id, addr) != 0 &&
		    registry_acquire_stale(gw->reg, pfx->service, now, exclude, ntried, id, addr) != 0)
			break;
		msg_resp up;
		msg_resp_init(&up);
		int rc = ctx->call(ctx->call_ud, addr, req, &up, gw->upstream_timeout_ms);
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
			return;
		}
		if (rc == ERR_TIMEOUT) {
			msg_resp_clear(&up);
			log_msg(ctx->log, LOG_WARN, NULL, "%s %s: %s (%s) timed out after %lld ms",
				req->method, req->path, id, addr, (long long)gw->upstream_timeout_ms);
			msg_resp_error(resp, 504, "upstream_timeout",
				       "the service did not answer in time",
				       json_pack("{s:s}", "service", pfx->service));
			return;
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
					       json_pack("{s:s}", "service", pfx->service));
				msg_resp_set_header(resp, "Retry-After", "1");
				return;
			}
		} else {
			log_msg(ctx->log, LOG_WARN, NULL,
				"%s (%s) refused the connection; out of rotation", id, addr);
		}
		msg_resp_clear(&up);
		snprintf(tried[ntried], sizeof(tried[ntried]), "%s", id);
		exclude[ntried] = tried[ntried];
		ntried++;
	}
	msg_resp_error(resp, 503, "unavailable", "no healthy instance of the service",
		       json_pack("{s:s}", "service", pfx->service));
	msg_resp_set_header(resp, "Retry-After", "1");
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
	free(gw);
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
	gw->ttl_ms = config_int(ctx->config, "registry.ttl_ms", 3500);
	gw->reg = registry_new(gw->ttl_ms * 1000);
	gw->admin = router_new();
	if (!gw->reg || !gw->admin ||
	    router_add(gw->admin, "GET", "/admin/services", admin_services, gw) ||
	    router_add(gw->admin, "GET", "/admin/queues", admin_queues, gw) ||
	    router_add(gw->admin, "POST", "/admin/queues/{topic}/replay", admin_queue_replay, gw) ||
	    router_add(gw->admin, "POST", "/admin/registry", admin_register, gw) ||
	    router_add(gw->admin, "DELETE", "/admin/registry/{id}", admin_deregister, gw)) {
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
	metrics_help(ctx->metrics, "ecom_gateway_rate_limited_total",
		     "Requests refused with 429, by route class.");
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
	const route_target *t =
		routes_pick(route, rng_below(gw->ctx->rng, (uint64_t)route->total_weight));
	if (t->upstream_prefix[0]) {
		char path[1024];
		if (routes_rewrite(route, t, req->path, path, sizeof(path)) != 0) {
			msg_resp_error(resp, 404, "not_found", "path too long", NULL);
			return;
		}
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
};
