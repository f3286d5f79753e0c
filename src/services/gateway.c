/* gateway: prefix routing, balancing over registered instances, admin API. */
#include "services/gateway.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/router.h"
#include "services/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How many different instances one request may try when connections are
 * refused. Only refused connections fail over: nothing was sent, so a retry
 * cannot apply a request twice. */
#define GATEWAY_MAX_TRIES 3

typedef struct gateway {
	engine_ctx *ctx;
	registry *reg;
	router *admin;
	int64_t upstream_timeout_ms;
	int64_t ttl_ms;
} gateway;

/* /v1/<resource> -> owning service. Only services that exist are listed;
 * an unknown resource is a 404, not a 503. */
static const struct prefix {
	const char *resource;
	const char *service;
	const char *route; /* metrics label */
} prefixes[] = {
	{ "products", "catalog", "/v1/products" },
	{ "inventory", "inventory", "/v1/inventory" },
	{ "reservations", "inventory", "/v1/reservations" },
	{ NULL, NULL, NULL },
};

static const struct prefix *find_prefix(const char *path)
{
	if (strncmp(path, "/v1/", 4) != 0)
		return NULL;
	const char *res = path + 4;
	size_t n = strcspn(res, "/");
	for (int i = 0; prefixes[i].resource; i++)
		if (strlen(prefixes[i].resource) == n && strncmp(res, prefixes[i].resource, n) == 0)
			return &prefixes[i];
	return NULL;
}

const char *gateway_route_service(const char *path)
{
	const struct prefix *p = find_prefix(path);
	return p ? p->service : NULL;
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

/* Sets header name of the outgoing request to value, replacing whatever the
 * client sent under that name (repeats included). */
static int set_req_header(msg_req *req, const char *name, const char *value)
{
	int found = 0;
	for (int i = 0; i < req->nheaders;) {
		msg_header *h = &req->headers[i];
		if (strcasecmp(h->name, name) != 0) {
			i++;
		} else if (!found) {
			char *v = strdup(value);
			if (!v)
				return ERR_NOMEM;
			free(h->value);
			h->value = v;
			found = 1;
			i++;
		} else {
			free(h->name);
			free(h->value);
			memmove(h, h + 1, (size_t)(req->nheaders - i - 1) * sizeof(*h));
			req->nheaders--;
		}
	}
	return found ? 0 : msg_req_add_header(req, name, value);
}

static void proxy(gateway *gw, const struct prefix *pfx, msg_req *req, msg_resp *resp)
{
	engine_ctx *ctx = gw->ctx;
	resp->route = pfx->route;
	/* The host replaced an invalid client id with its own: the upstream
	 * must log the id the client gets back. */
	if (req->request_id[0])
		set_req_header(req, "X-Request-Id", req->request_id);
	/* A client's X-Forwarded-For is only a claim: append the real peer. */
	const char *xff = msg_req_header(req, "X-Forwarded-For");
	char *chain = NULL;
	if (req->peer[0] && !xff)
		msg_req_add_header(req, "X-Forwarded-For", req->peer);
	else if (req->peer[0] && asprintf(&chain, "%s, %s", xff, req->peer) >= 0) {
		set_req_header(req, "X-Forwarded-For", chain);
		free(chain);
	}

	char tried[GATEWAY_MAX_TRIES][REGISTRY_ID_MAX];
	const char *exclude[GATEWAY_MAX_TRIES];
	int ntried = 0;
	while (ntried < GATEWAY_MAX_TRIES) {
		char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
		int64_t now = clock_now(ctx->clock);
		if (registry_acquire(gw->reg, pfx->service, now, exclude, ntried, id, addr) != 0)
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
			return;
		}
		msg_resp_clear(&up);
		if (rc == ERR_TIMEOUT) {
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
			log_msg(ctx->log, LOG_WARN, NULL, "%s %s: %s (%s) failed: %s; out of rotation",
				req->method, req->path, id, addr, err_name(rc));
			if (!idempotent(req->method))
				break;
		} else {
			log_msg(ctx->log, LOG_WARN, NULL,
				"%s (%s) refused the connection; out of rotation", id, addr);
		}
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

/* ---- engine ----------------------------------------------------------------------- */

static void gateway_destroy(void *eng)
{
	gateway *gw = eng;
	if (!gw)
		return;
	router_free(gw->admin);
	registry_free(gw->reg);
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
	return gw;
}

static void gateway_handle(void *eng, msg_req *req, msg_resp *resp)
{
	gateway *gw = eng;
	if (strncmp(req->path, "/admin/", 7) == 0 || strcmp(req->path, "/admin") == 0) {
		if (engine_require_admin(gw->ctx, req, resp))
			return;
		router_dispatch(gw->admin, req, resp);
		return;
	}
	const struct prefix *pfx = find_prefix(req->path);
	if (!pfx) {
		char msg[160];
		snprintf(msg, sizeof(msg), "no route for %s %.100s", req->method, req->path);
		msg_resp_error(resp, 404, "not_found", msg, NULL);
		return;
	}
	proxy(gw, pfx, req, resp);
}

static void gateway_tick(void *eng, int64_t now_us)
{
	gateway *gw = eng;
	registry_expire(gw->reg, now_us);
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
