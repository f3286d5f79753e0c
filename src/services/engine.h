/* engine: the contract between a domain engine and the host that runs it.
 *
 * The one rule of the design: engines know nothing of transport. Everything
 * an engine touches outside its own memory - time, randomness, its database,
 * calls to other services, logging and metrics - reaches it through the
 * engine_ctx it is created with. The daemon host (ecom serve) fills the
 * context with a real clock, libcurl and libmicrohttpd; tests and the
 * deterministic simulator fill it with a virtual clock and in-process calls.
 * Requests arrive as msg_req and leave as msg_resp (src/net/msg.h), plain
 * data with no socket behind them. */
#ifndef ECOM_ENGINE_H
#define ECOM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "core/trace.h"
#include "core/tracer.h"
#include "net/msg.h"
#include "net/router.h"
#include "services/identity.h"
#include "store/store.h"

/* Outbound calls. target is a base URL ("http://127.0.0.1:8081"); the
 * simulator maps it to an engine instead. Returns as http_client_do:
 * 0 when a response came back (any status), ERR_UNAVAILABLE when nothing was
 * sent, ERR_TIMEOUT, ERR_IO. */
typedef int (*engine_call_fn)(void *ud, const char *target, const msg_req *req, msg_resp *resp,
			      int64_t timeout_ms);

struct guard;
struct registry;
struct routes;
struct fault_table;
struct window;
struct smtp_message;
struct line_proto;

typedef struct engine_ctx {
	const char *service;     /* "catalog" */
	const char *instance_id; /* "catalog-1" */
	clock_src *clock;
	rng *rng;
	store *store;            /* NULL for engines without a database */
	logger *log;
	metrics *metrics;
	const config *config;
	engine_call_fn call;
	void *call_ud;
	const char *admin_token; /* the platform's admin bearer token */
	const char *service_secret;  /* signs and verifies X-Ecom-Identity */
	const unsigned char *jwt_key; /* HS256 key of access tokens */
	size_t jwt_key_len;
	const char *data_dir;    /* where data/ (schema, catalog) lives */
	const char *gateway_url; /* where engine_call_service sends; NULL when none */
	/* Client-side discovery: the live instances of the platform's
	 * services (services/registry.h), kept by the host from the gateway's
	 * registry (src/ops/discovery.h), and the route table the gateway
	 * routes by (services/routes.h). With both set, engine_call_service
	 * calls an instance directly, as the gateway would have forwarded the
	 * call; NULL: every call goes through the gateway. Host-owned. */
	struct registry *instances;
	const struct routes *routes;
	/* The resilience layer of outbound calls (src/resil/guard.h): a
	 * breaker and a bulkhead per callee, retries, deadlines. Host-owned;
	 * NULL: calls go out unguarded. */
	struct guard *guard;
	/* Faults injected at this instance's HTTP layer (src/resil/fault.h),
	 * keyed by service name. Host-owned; NULL when the host injects none. */
	struct fault_table *faults;
	/* The deadline of the request the calling thread is serving, in
	 * ctx->clock microseconds (0: none), called with call_ud. The host sets
	 * it from the X-Ecom-Deadline-Ms header; outbound calls made while
	 * serving that request get the time left as their timeout. NULL: no
	 * deadlines. */
	int64_t (*deadline)(void *call_ud);
	/* Asks the host to run tick soon (work was queued for it); NULL when
	 * the host has no such hook (ticks come on their own schedule). */
	void (*wake)(void *ud);
	void *wake_ud;
	/* Tracing. tracer: this process's ring of finished spans
	 * (core/tracer.h; host-owned; NULL: spans are not kept). trace, called
	 * with call_ud: the calling thread's slot holding the trace context of
	 * the work it is doing (the host sets it to the server span of the
	 * request being served, engine_span_begin/end move it, the bus sets it
	 * around a consume); NULL when the host does not trace. */
	struct tracer *tracer;
	trace_ctx *(*trace)(void *call_ud);
	/* What this process served over the last seconds (core/window.h),
	 * host-owned, for GET /admin/stats; NULL when not kept. */
	struct window *window;
	/* Outbound mail: hands a message (src/net/smtp_client.h) to an SMTP
	 * relay and returns as smtp_client_send: 0 accepted, ERR_UNAVAILABLE
	 * nothing handed over, ERR_TIMEOUT, ERR_IO, with err filled. The
	 * daemon sends it with libcurl; tests may do it in process. NULL when
	 * the host sends no mail. */
	int (*mail)(void *mail_ud, const struct smtp_message *m, char *err, size_t errlen);
	void *mail_ud;
} engine_ctx;

/* engine_def.needs_store: 0 none; 1 the platform store (a database per
 * service, SQLite or PostgreSQL); ENGINE_STORE_LOCAL a SQLite database of
 * the instance's own for derived data (the search index), placed by
 * engine_local_store_url and not migrated from data/schema: the engine
 * makes its own tables. */
#define ENGINE_STORE_LOCAL 2

/* An event as a consumer sees it (src/bus/bus.h defines it; an engine that
 * consumes includes that header). */
typedef struct bus_msg bus_msg;

/* One subscription of a consuming engine: a topic and the consumer name
 * that owns its offsets, inbox and dead letters (NULL: the service's name).
 * Lists end with a NULL topic. */
typedef struct engine_sub {
	const char *topic;
	const char *consumer;
} engine_sub;

typedef struct engine_def {
	const char *name;
	int needs_store;
	/* Creates the engine. ctx is borrowed and outlives the engine. Returns
	 * NULL with err filled on failure. */
	void *(*create)(engine_ctx *ctx, char *err, size_t errlen);
	/* Handles one request; called concurrently from several threads. */
	void (*handle)(void *eng, msg_req *req, msg_resp *resp);
	/* Background work at time now_us (expiry, retries). May be NULL. */
	void (*tick)(void *eng, int64_t now_us);
	/* 0 when the engine can serve. May be NULL (always ready). */
	int (*ready)(void *eng);
	void (*destroy)(void *eng);
	/* 1 when the engine serves /admin/faults and /admin/breakers itself
	 * (the gateway, which gathers them from every instance, and the
	 * simulators, whose faults speak their provider's error shapes); 0:
	 * the host serves them for this instance. */
	int serves_resil_admin;
	/* Events: the topics the engine consumes (NULL: none) and the handler
	 * the bus calls for each message, inside a store transaction the bus
	 * opened (the effect, the inbox entry and the offset commit together;
	 * the engine neither begins nor commits). 0 applies; non-zero rolls
	 * back and the message is retried with backoff, then dead-lettered. */
	const engine_sub *subs;
	int (*consume)(void *eng, const bus_msg *m);
	/* 1 when the engine serves GET /admin/traces/{trace_id} and GET
	 * /admin/stats itself (the gateway, which gathers every instance's);
	 * 0: the host answers them for this instance. */
	int serves_obs_admin;
	/* A line protocol the engine also speaks on a TCP port of its own (the
	 * SMTP sink; src/net/line_server.h), called with the engine as ud; the
	 * daemon host listens for it on --side-port. NULL: HTTP only. */
	const struct line_proto *lines;
} engine_def;

/* The engine called name, or NULL. */
const engine_def *engine_find(const char *name);
/* Names of the services `ecom up` starts besides the gateway, NULL-ended. */
const char *const *engine_platform_services(void);

/* Who is calling: the identity the gateway signed into X-Ecom-Identity
 * (verified with the service secret, at most a minute old), or admin when
 * the request carries the admin bearer token itself (operators' tools),
 * else anonymous. ERR_UNAUTH when an identity header is present but not
 * genuine. */
int engine_caller(const engine_ctx *ctx, const msg_req *req, identity *out);

/* 1 when token is the platform's admin token (compared in constant time). */
int engine_is_admin_token(const engine_ctx *ctx, const char *token);

/* Admin authorisation: 0 for an admin caller (above). Otherwise fills resp
 * with 401 (no or bad credentials) or 403 (a user) and returns ERR_UNAUTH or
 * ERR_FORBIDDEN. */
int engine_require_admin(const engine_ctx *ctx, const msg_req *req, msg_resp *resp);

/* Service-to-service authorisation: 0 for a service identity signed with
 * the service secret, or an admin. A user gets 403 (ERR_FORBIDDEN), anyone
 * else 401 (ERR_UNAUTH), in resp. */
int engine_require_service(const engine_ctx *ctx, const msg_req *req, msg_resp *resp);

/* Calls another service as this service: req gets an identity of role
 * service, sub ctx->service, signed with the service secret. req's path
 * names the route ("/v1/reservations"); the gateway's route table picks the
 * service. The call goes through engine_call_guarded with the callee the
 * route table names for the path ("gateway" when none): the edge
 * (ctx->service, callee) has its own breaker and bulkhead in this instance.
 *   - Directly, when the host keeps the instances and the route table
 *     (ctx->instances, ctx->routes) and the path is not an /admin one: the
 *     table's target and path rewriting as the gateway applies them
 *     (routes_forward), then an instance of the callee in rotation (least
 *     outstanding, round robin among ties, as the gateway picks); a
 *     refused connection takes the instance out of rotation and the next
 *     one is tried (at most REGISTRY_TRIES).
 *   - Through the gateway (which balances, fails over and breaks
 *     circuits) otherwise, and when no instance of the callee is known or
 *     every one tried refused the connection.
 * Returns as engine_call_guarded; ERR_UNAVAILABLE when neither an instance
 * nor a gateway is known. */
int engine_call_service(const engine_ctx *ctx, msg_req *req, msg_resp *resp, int64_t timeout_ms);

/* Calls target (a base URL) as the edge ctx->service -> callee, through
 * ctx->guard when there is one (src/resil/guard.h, guard_call):
 *   - the deadline of the request being served (ctx->deadline) bounds the
 *     call: timeout_ms or the time left, whichever is less, and the time
 *     left travels in X-Ecom-Deadline-Ms; past it, nothing is sent;
 *   - an open breaker or a full bulkhead refuses at once, nothing sent;
 *   - 5xx (but 501), timeouts and transport errors count as failures, any
 *     other answer (4xx, a decline) as a success;
 *   - idempotent requests (GET, HEAD, PUT, DELETE, or an Idempotency-Key
 *     header, sent unchanged each time) are retried after failures that
 *     may pass (no answer, 502, 503, 504) with backoff and full jitter,
 *     never past the deadline; a refused connection (nothing sent) is
 *     retried for any request.
 * Returns 0 when an answer came back (any status); ERR_UNAVAILABLE when
 * nothing was sent (connection refused, or refused by the breaker or the
 * bulkhead); ERR_TIMEOUT (no answer in time, or the deadline had passed);
 * ERR_IO. engine_call_refusal(resp) tells a refusal apart. Use it for
 * providers outside the platform, e.g. callee "stripe". */
int engine_call_guarded(const engine_ctx *ctx, const char *callee, const char *target,
			msg_req *req, msg_resp *resp, int64_t timeout_ms);

/* Why the call that filled resp was refused before anything reached the
 * service: "breaker" (this caller's breaker, or the gateway's, for that
 * service is open), "bulkhead" (too many calls in flight) or "deadline"
 * (no time left); NULL when it was not refused (an answer came, or the
 * transport failed). A refused call had no effect, so it can be queued and
 * tried later without risk: this is how a caller tells "payment is
 * unavailable" from "payment may have charged". */
const char *engine_call_refusal(const msg_resp *resp);

/* ---- tracing ---------------------------------------------------------------------- */

/* A span an engine (or the host, or the bus) opens around work it does. */
typedef struct engine_span {
	span s;
	trace_ctx self;  /* its context: what calls made inside it carry */
	trace_ctx saved; /* the thread's context before it began */
	int on;          /* begun on a tracing host */
} engine_span;

/* Begins a span called name, of kind, on the calling thread and makes it
 * the thread's current context until engine_span_end: the child of parent
 * when that is valid (a saga resuming its order's trace from the tick),
 * else of the thread's current context, else the root of a new trace that
 * is not sampled (background work: its context travels, nothing is
 * recorded). Does nothing when the host does not trace (ctx->trace NULL). */
void engine_span_begin(const engine_ctx *ctx, engine_span *es, const trace_ctx *parent,
		       const char *name, enum span_kind kind);
/* Adds an attribute (see span_attr_set). */
void engine_span_attr(engine_span *es, const char *key, const char *value);
/* Ends it with status (msg: why, for SPAN_ERROR; may be NULL), records it
 * in ctx->tracer when its trace is sampled, and gives the thread its
 * previous context back. */
void engine_span_end(const engine_ctx *ctx, engine_span *es, enum span_status status,
		     const char *msg);
/* The thread's current context as a traceparent header value in buf (at
 * least TRACE_PARENT_SIZE bytes), or NULL when there is none: what an
 * outbox row or a stored saga keeps so that later work joins the trace. */
const char *engine_traceparent(const engine_ctx *ctx, char *buf, size_t size);

/* One ctx->call to target as a CLIENT span, the child of the thread's
 * current context: req carries the span's traceparent; peer (a service or
 * an instance id) is noted on it. Returns as ctx->call. */
int engine_call_traced(const engine_ctx *ctx, const char *peer, const char *target,
		       msg_req *req, msg_resp *resp, int64_t timeout_ms);

/* User authorisation: 0 with *out the user for a signed user identity;
 * otherwise 401 in resp and ERR_UNAUTH. */
int engine_require_user(const engine_ctx *ctx, const msg_req *req, msg_resp *resp,
			identity *out);

/* 1 when s is an id the services exchange (reservation, order, payment,
 * refund ids): 1-64 letters, digits, '-', '_', '.', ':' (so ids derived
 * from an order and a step, "ord_1:payment", fit). */
int engine_valid_id(const char *s);
#define ENGINE_ID_MAX 64
#define ENGINE_ID_RULE "must be 1-64 letters, digits, '-', '_', '.', ':'"

/* Fills resp with 400 invalid_argument naming field in details. Returns
 * ERR_INVALID. */
int engine_bad_field(msg_resp *resp, const char *field, const char *message);

/* Query parameters of listings: an integer within [min, max], or an id
 * (engine_valid_id) into buf. 0 when absent, 1 when present (in *out or
 * buf), ERR_INVALID with 400 in resp naming the parameter. */
int engine_query_int(const msg_req *req, msg_resp *resp, const char *name, int64_t min,
		     int64_t max, int64_t *out);
int engine_query_id(const msg_req *req, msg_resp *resp, const char *name, char *buf, size_t len);

/* The JSON object body of a write. 0 with *out a new reference; otherwise
 * ERR_INVALID with resp filled: 415 unsupported_media_type when a
 * Content-Type other than application/json is given (none is taken as
 * JSON), 400 invalid_argument naming the offending field ("body" when the
 * body itself is malformed or not an object). */
int engine_json_body(const msg_req *req, msg_resp *resp, json_t **out);


/* The store URL of an instance's local database (ENGINE_STORE_LOCAL):
 * store.local_url when set; else the platform store's when that is SQLite
 * (sqlite:DIR, sqlite::memory:); else sqlite:<state_dir>/data. The file is
 * <dir>/<instance id>.db. */
void engine_local_store_url(const config *cfg, const char *state_dir, char *buf, size_t len);

/* One row of an engine's route table. */
typedef struct engine_route {
	const char *method;
	const char *pattern;
	router_fn fn;
} engine_route;

/* A router holding the n routes of table, each handler called with ud.
 * Owned by the caller: router_free(). NULL with err filled when a route
 * cannot be added. */
router *engine_router(const engine_route *table, size_t n, void *ud, char *err, size_t errlen);

/* Fills resp for a store failure: 503 unavailable for ERR_UNAVAILABLE,
 * ERR_BUSY and ERR_RETRY (a serialization failure left to the caller),
 * 500 internal otherwise; logs it. */
void engine_store_error(const engine_ctx *ctx, msg_resp *resp, int code, const char *what);

#endif
