/* serve: one engine as a daemon. */
#include "ops/serve.h"
#include "bus/bus.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/trace.h"
#include "core/tracer.h"
#include "core/window.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/line_server.h"
#include "net/smtp_client.h"
#include "ops/cli.h"
#include "ops/discovery.h"
#include "ops/exporter.h"
#include "ops/state.h"
#include "resil/fault.h"
#include "resil/guard.h"
#include "services/chaos.h"
#include "services/engine.h"
#include "sim/stripe_sim.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char HELP[] =
	"usage: ecom serve SERVICE [options]\n"
	"\n"
	"Runs one service engine as a daemon (the supervisor started by 'ecom up'\n"
	"uses this; run it by hand to place instances yourself).\n"
	"\n"
	"  --port PORT         listen port (0 picks a free one; gateway default 8080)\n"
	"  --host ADDR         listen address (default 127.0.0.1)\n"
	"  --store URL         sqlite:DIR, sqlite::memory: (default sqlite:STATE/data)\n"
	"  --bus URL           embedded (default) or kafka://HOST:PORT[,HOST:PORT...]\n"
	"  --state DIR         state directory (default ./var or $ECOM_STATE)\n"
	"  --gateway URL       register with this gateway and heartbeat; copy its\n"
	"                      registry to call other services directly\n"
	"                      (services.direct_calls)\n"
	"  --instance ID       instance id (default SERVICE-PID)\n"
	"  --addr-file PATH    write the bound base URL here once listening\n"
	"  --config FILE       configuration file (key = value)\n"
	"  --log-level LEVEL   debug, info, warn or error\n"
	"  --side-port PORT    the port of a service's second protocol (the SMTP\n"
	"                      sink's SMTP; 0 picks a free one, the default)\n"
	"  --side-addr-file P  write that port's URL (smtp://HOST:PORT) here\n"
	"\n"
	"Every instance serves GET /health, GET /ready and GET /metrics, and\n"
	"(admin token) /admin/faults, /admin/breakers, /admin/traces/{trace_id}\n"
	"and /admin/stats for itself.\n"
	"The admin token comes from $ECOM_ADMIN_TOKEN or STATE/admin.token.\n";

typedef struct host {
	const engine_def *def;
	void *eng;
	engine_ctx ctx;
	char instance[64];
	char addr[128];
	char gateway[512];
	char token[256];
	char service_secret[256];
	char jwt_key[256];
	int64_t heartbeat_ms;
	int64_t tick_ms;
	chaos *chaos;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;
	int woken; /* the engine asked for a tick now (ctx->wake) */
	int registered;
	bus *bus; /* events: every service with a store has one */
	exporter *exporter; /* spans to OpenTelemetry, when configured */
	discovery *discovery; /* the gateway's registry, for direct calls */
	int64_t discovery_ms; /* refreshed this often */
} host;

/* The deadline of the request this thread is serving (ctx->deadline). */
static __thread int64_t current_deadline;

static int64_t host_deadline(void *ud)
{
	(void)ud;
	return current_deadline;
}

/* The trace context of the work this thread is doing (ctx->trace): the
 * server span of the request it serves, or what the engine, the tick or
 * the bus set. */
static __thread trace_ctx current_trace;

static trace_ctx *host_trace(void *ud)
{
	(void)ud;
	return &current_trace;
}

static const trace_ctx *host_trace_now(void *ud)
{
	(void)ud;
	return &current_trace;
}

/* ---- outbound calls: libcurl -------------------------------------------- */

static int host_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	const host *h = ud;
	http_call_opts o = {
		.connect_timeout_ms = config_int(h->ctx.config, "gateway.connect_timeout_ms", 500),
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 5000,
	};
	return http_client_do(target, req, resp, &o);
}

/* ---- the request path ----------------------------------------------------- */

/* Sleeps us (at most two minutes: an injected latency is bounded anyway). */
static void host_sleep_us(int64_t us)
{
	if (us > 0)
		usleep((useconds_t)(us > 120000000 ? 120000000 : us));
}

/* An engine request: its deadline, injected faults, then the engine. */
static void host_engine(host *h, msg_req *req, msg_resp *resp)
{
	int64_t now = clock_now(h->ctx.clock), deadline = 0;
	const char *dh = msg_req_header(req, GUARD_DEADLINE_HEADER);
	if (dh && guard_deadline_parse(dh, now, &deadline) != 0)
		deadline = 0; /* malformed: as if absent */
	if (deadline && now >= deadline) {
		chaos_deadline_passed(resp);
		return;
	}
	int64_t delay = 0;
	int failed = chaos_fault(h->chaos, req, now, &delay, resp);
	host_sleep_us(delay);
	if (failed)
		return;
	if (deadline && clock_now(h->ctx.clock) >= deadline) {
		chaos_deadline_passed(resp);
		return;
	}
	current_deadline = deadline;
	h->def->handle(h->eng, req, resp);
	current_deadline = 0;
}

/* GET /admin/traces/{trace_id}: this instance's spans of the trace. */
static void host_admin_traces(host *h, msg_req *req, msg_resp *resp)
{
	if (engine_require_admin(&h->ctx, req, resp))
		return;
	resp->route = "/admin/traces/{trace_id}";
	uint8_t id[16];
	const char *hex = req->path + strlen("/admin/traces/");
	if (trace_id_from_hex(hex, id) != 0) {
		engine_bad_field(resp, "trace_id", "must be 32 lowercase hex digits");
		return;
	}
	json_t *spans = tracer_find_json(h->ctx.tracer, id, TRACER_FIND_MAX);
	msg_resp_json(resp, spans ? 200 : 500,
		      spans ? json_pack("{s:s,s:s,s:s,s:o}", "trace_id", hex, "service",
					h->def->name, "instance", h->instance, "spans", spans)
			    : NULL);
}

/* GET /admin/stats: what this instance served over its window. */
static void host_admin_stats(host *h, msg_req *req, msg_resp *resp)
{
	if (engine_require_admin(&h->ctx, req, resp))
		return;
	resp->route = "/admin/stats";
	json_t *v = window_json(h->ctx.window, clock_now(h->ctx.clock));
	if (v) {
		json_object_set_new(v, "service", json_string(h->def->name));
		json_object_set_new(v, "instance", json_string(h->instance));
	}
	msg_resp_json(resp, v ? 200 : 500, v);
}

/* The SERVER span of a request the host served. */
static void host_record_span(host *h, const msg_req *req, const msg_resp *resp,
			     const trace_ctx *parent, const trace_ctx *self, const char *route,
			     int64_t start)
{
	char name[96], st[16];
	snprintf(name, sizeof(name), "%s %s", req->method, route);
	span s;
	span_begin(&s, parent, self, h->def->name, name, SPAN_SERVER, start);
	s.dur_us = clock_now(h->ctx.clock) - start;
	snprintf(st, sizeof(st), "%d", resp->status);
	span_attr_set(&s, "http.status_code", st);
	span_attr_set(&s, "http.route", route);
	span_attr_set(&s, "http.target", req->path);
	span_attr_set(&s, "request_id", req->request_id);
	span_attr_set(&s, "instance", h->instance);
	if (resp->status >= 500) {
		s.status = SPAN_ERROR;
		snprintf(s.status_msg, sizeof(s.status_msg), "HTTP %d", resp->status);
	} else {
		s.status = SPAN_OK;
	}
	tracer_record(h->ctx.tracer, &s);
}

static void host_handle(void *ud, msg_req *req, msg_resp *resp)
{
	host *h = ud;
	int64_t t0 = clock_mono_us(), start = clock_now(h->ctx.clock);
	/* The request's server span continues the caller's trace (a valid
	 * traceparent), or starts one. The engine sees the span's own context
	 * in the header, and so do calls made while serving it. */
	trace_ctx parent, self;
	int continued = trace_parse(msg_req_header(req, TRACE_HEADER), &parent) == 0;
	if (continued)
		trace_child(&parent, &self, h->ctx.rng);
	else
		trace_new_root(&self, h->ctx.rng);
	char tp[TRACE_PARENT_SIZE];
	trace_format(&self, tp, sizeof(tp));
	msg_req_set_header(req, TRACE_HEADER, tp);
	current_trace = self;
	/* The platform's traffic, not its plumbing (/health, /ready,
	 * /metrics, /admin/...), makes spans and the stats window. */
	int observed = !chaos_exempt(req->path);
	if (observed)
		window_enter(h->ctx.window);
	int is_get = strcmp(req->method, "GET") == 0;
	int own_obs = !h->def->serves_obs_admin && is_get;
	if (is_get && strcmp(req->path, "/health") == 0) {
		resp->route = "/health";
		msg_resp_json(resp, 200, json_pack("{s:s,s:s,s:s}", "status", "ok", "service",
						   h->def->name, "instance", h->instance));
	} else if (is_get && strcmp(req->path, "/ready") == 0) {
		resp->route = "/ready";
		int store_ok = !h->ctx.store || store_ping(h->ctx.store) == 0;
		int eng_ok = (!h->def->ready || h->def->ready(h->eng) == 0) &&
			     (!h->bus || bus_ready(h->bus) == 0);
		if (store_ok && eng_ok)
			msg_resp_json(resp, 200, json_pack("{s:s,s:s}", "status", "ready", "instance",
							   h->instance));
		else
			msg_resp_error(resp, 503, "unavailable",
				       store_ok ? "the engine is not ready" : "the store is unreachable",
				       json_pack("{s:b,s:b}", "store", store_ok, "engine", eng_ok));
	} else if (is_get && strcmp(req->path, "/metrics") == 0) {
		resp->route = "/metrics";
		metrics_gauge(h->ctx.metrics, "http_requests_in_flight", NULL,
			      (double)window_in_flight(h->ctx.window));
		if (h->bus)
			bus_export_metrics(h->bus);
		char *text = metrics_render(h->ctx.metrics);
		msg_resp_set(resp, text ? 200 : 500, "text/plain; version=0.0.4; charset=utf-8",
			     text ? text : "", text ? strlen(text) : 0);
		free(text);
	} else if (own_obs && strncmp(req->path, "/admin/traces/", 14) == 0) {
		host_admin_traces(h, req, resp);
	} else if (own_obs && strcmp(req->path, "/admin/stats") == 0) {
		host_admin_stats(h, req, resp);
	} else if (!h->def->serves_resil_admin && chaos_admin(h->chaos, req, resp)) {
		/* this instance's /admin/faults and /admin/breakers */
	} else if (h->bus && bus_handle(h->bus, req, resp)) {
		/* the event bus's routes: feed, /admin/queues */
	} else {
		host_engine(h, req, resp);
		/* An engine never sleeps: injected latency comes back as a header
		 * and the host, which owns the thread, waits it out. */
		int64_t delay = stripe_sim_delay_us(resp);
		if (delay > 0) {
			msg_resp_set_header(resp, STRIPE_SIM_DELAY_HEADER, NULL);
			host_sleep_us(delay > 60000000 ? 60000000 : delay);
		}
	}
	current_trace = (trace_ctx){ { 0 }, { 0 }, 0 };
	msg_resp_set_header(resp, TRACE_HEADER, tp);
	const char *route = resp->route ? resp->route : req->route ? req->route : "unmatched";
	char labels[256];
	snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%d\"", route,
		 req->method, resp->status);
	int64_t took = clock_mono_us() - t0;
	metrics_count(h->ctx.metrics, "http_requests_total", labels, 1);
	metrics_observe_us(h->ctx.metrics, "http_request_duration_seconds", labels, took);
	if (observed) {
		window_leave(h->ctx.window, clock_now(h->ctx.clock), took, resp->status >= 500);
		if (self.flags & TRACE_FLAG_SAMPLED)
			host_record_span(h, req, resp, continued ? &parent : NULL, &self, route,
					 start);
	}
}

/* ---- background threads ------------------------------------------------------ */

/* Sleeps up to ms, waking early when the host stops or, when flag is not
 * NULL, once *flag is set (it is cleared). Returns 1 when stopping. */
static int host_wait(host *h, int64_t ms, int *flag)
{
	struct timespec ts;
	clock_deadline(&ts, CLOCK_REALTIME, ms * 1000);
	pthread_mutex_lock(&h->mu);
	while (!h->stopping && !(flag && *flag))
		if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) != 0)
			break;
	if (flag)
		*flag = 0;
	int stop = h->stopping;
	pthread_mutex_unlock(&h->mu);
	return stop;
}

/* ctx->wake: the tick thread runs at once instead of at its next period. */
static void host_wake(void *ud)
{
	host *h = ud;
	pthread_mutex_lock(&h->mu);
	h->woken = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void *tick_thread(void *arg)
{
	host *h = arg;
	while (!host_wait(h, h->tick_ms, &h->woken))
		h->def->tick(h->eng, clock_now(h->ctx.clock));
	return NULL;
}

static void heartbeat_once(host *h)
{
	char url[600], body[512];
	snprintf(url, sizeof(url), "%s/admin/registry", h->gateway);
	json_t *j = json_pack("{s:s,s:s,s:s}", "service", h->def->name, "id", h->instance, "addr",
			      h->addr);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	snprintf(body, sizeof(body), "%s", s ? s : "{}");
	free(s);
	msg_resp resp;
	msg_resp_init(&resp);
	int rc = http_client_simple("POST", url, body, h->token, &resp, 1000);
	int ok = rc == 0 && resp.status == 200;
	if (ok && !h->registered)
		log_info(h->ctx.log, "registered with the gateway at %s", h->gateway);
	else if (!ok && h->registered)
		log_warn(h->ctx.log, "heartbeat to %s failed: %s status %d", h->gateway,
			 err_name(rc), resp.status);
	h->registered = ok;
	msg_resp_clear(&resp);
}

static void *heartbeat_thread(void *arg)
{
	host *h = arg;
	do
		heartbeat_once(h);
	while (!host_wait(h, h->heartbeat_ms, NULL));
	return NULL;
}

static void deregister(host *h)
{
	char url[700];
	snprintf(url, sizeof(url), "%s/admin/registry/%s", h->gateway, h->instance);
	msg_resp resp;
	msg_resp_init(&resp);
	http_client_simple("DELETE", url, NULL, h->token, &resp, 1000);
	msg_resp_clear(&resp);
}

/* Client-side discovery (services.direct_calls): the engine calls other
 * services' instances directly, from a copy of the gateway's registry
 * (empty until the refresh thread starts). Without one (it cannot be
 * made), calls go through the gateway. */
static void host_discovery(host *h)
{
	const config *cfg = h->ctx.config;
	discovery_opts o = {
		.gateway_url = h->gateway,
		.admin_token = h->token,
		.timeout_ms = 1000,
		.ttl_ms = config_int(cfg, "registry.ttl_ms", 3500),
		.routes_file = config_get(cfg, "gateway.routes_file"),
	};
	char err[256] = "";
	h->discovery = discovery_new(&o, h->ctx.clock, h->ctx.log, err, sizeof(err));
	if (!h->discovery) {
		log_warn(h->ctx.log, "calls go through the gateway: no discovery (%s)", err);
		return;
	}
	h->ctx.routes = discovery_routes(h->discovery);
	h->ctx.instances = discovery_registry(h->discovery);
	h->discovery_ms = config_int(cfg, "services.discovery_refresh_ms", 1000);
	if (h->discovery_ms < 10)
		h->discovery_ms = 10;
}

static void *discovery_thread(void *arg)
{
	host *h = arg;
	do
		discovery_refresh(h->discovery);
	while (!host_wait(h, h->discovery_ms, NULL));
	return NULL;
}

/* The engine's second protocol (def->lines: the SMTP sink's SMTP) on its
 * own port, its URL written to addr_file when given. */
static line_server *serve_side(host *h, int port, const char *addr_file, char *err, size_t errlen)
{
	line_server_opts o = {
		.host = config_get(h->ctx.config, "http.host"),
		.port = port,
		.max_connections = 64,
		.conn_timeout_s = (unsigned)config_int(h->ctx.config, "http.conn_timeout_s", 30),
	};
	line_server *ls = line_server_start(&o, h->def->lines, h->eng, err, errlen);
	if (!ls)
		return NULL;
	char url[160];
	snprintf(url, sizeof(url), "%s://%s:%d", h->def->lines->scheme, o.host, line_server_port(ls));
	if (addr_file && state_write_file(addr_file, url, 0600) != 0) {
		snprintf(err, errlen, "cannot write %s", addr_file);
		line_server_stop(ls);
		return NULL;
	}
	log_info(h->ctx.log, "%s also listening on %s", h->instance, url);
	return ls;
}

/* ---- main ------------------------------------------------------------------------ */

int serve_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "store", required_argument, NULL, 's' },
		{ "bus", required_argument, NULL, 'b' },
		{ "state", required_argument, NULL, 'S' },
		{ "gateway", required_argument, NULL, 'g' },
		{ "instance", required_argument, NULL, 'i' },
		{ "addr-file", required_argument, NULL, 'a' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "side-port", required_argument, NULL, 'P' },
		{ "side-addr-file", required_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};
	const char *side_port_s = NULL, *side_addr_file = NULL;
	const char *port_s = NULL, *host_s = NULL, *store_url = NULL, *bus_url = NULL, *state_s = NULL;
	const char *gateway_s = NULL, *inst_s = NULL, *addr_file = NULL, *config_s = NULL;
	const char *level_s = NULL;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': port_s = optarg; break;
		case 'H': host_s = optarg; break;
		case 's': store_url = optarg; break;
		case 'b': bus_url = optarg; break;
		case 'S': state_s = optarg; break;
		case 'g': gateway_s = optarg; break;
		case 'i': inst_s = optarg; break;
		case 'a': addr_file = optarg; break;
		case 'c': config_s = optarg; break;
		case 'l': level_s = optarg; break;
		case 'P': side_port_s = optarg; break;
		case 'A': side_addr_file = optarg; break;
		default:
			return cli_usage("serve", "unknown or incomplete option '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("serve", optind >= argc ? "which service?" : "too many arguments");
	const char *name = argv[optind];
	const engine_def *def = engine_find(name);
	if (!def)
		return cli_usage("serve", "unknown service '%s'", name);
	char err[512] = "";
	if (bus_url && bus_url_check(bus_url, err, sizeof(err)) != 0)
		return cli_usage("serve", "%s", err);

	config *cfg = config_new();
	if (!cfg)
		return cli_fail("serve", "out of memory");
	if (config_s && config_load_file(cfg, config_s, err, sizeof(err)) != 0) {
		config_free(cfg);
		return cli_fail("serve", "%s", err[0] ? err : "cannot read configuration");
	}
	config_load_env(cfg);
	if (host_s)
		config_set(cfg, "http.host", host_s);
	if (store_url)
		config_set(cfg, "store.url", store_url);
	if (bus_url)
		config_set(cfg, "bus.url", bus_url);
	if (level_s)
		config_set(cfg, "log.level", level_s);
	int level = log_level_parse(config_get(cfg, "log.level"));
	if (level < 0) {
		config_free(cfg);
		return cli_usage("serve", "bad log level '%s'", config_get(cfg, "log.level"));
	}
	int64_t port = strcmp(name, "gateway") == 0 ? config_int(cfg, "gateway.port", 8080) : 0;
	if (port_s && cli_parse_int(port_s, 0, 65535, &port) != 0) {
		config_free(cfg);
		return cli_usage("serve", "bad port '%s'", port_s);
	}
	int64_t side_port = 0;
	if (side_port_s && cli_parse_int(side_port_s, 0, 65535, &side_port) != 0) {
		config_free(cfg);
		return cli_usage("serve", "bad side port '%s'", side_port_s);
	}
	const char *state_dir = cli_state_dir(state_s);

	/* Signals are taken by sigwait in this thread only. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	host h;
	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	h.def = def;
	if (inst_s)
		snprintf(h.instance, sizeof(h.instance), "%s", inst_s);
	else
		snprintf(h.instance, sizeof(h.instance), "%s-%ld", name, (long)getpid());
	h.heartbeat_ms = config_int(cfg, "registry.heartbeat_ms", 1000);
	h.tick_ms = config_int(cfg, "engine.tick_ms", 100);
	if (h.heartbeat_ms < 10)
		h.heartbeat_ms = 10;
	if (h.tick_ms < 1)
		h.tick_ms = 1;
	if (state_admin_token(state_dir, h.token, sizeof(h.token)) != 0)
		h.token[0] = '\0';
	if (state_secret(state_dir, "service.secret", "ECOM_SERVICE_SECRET", h.service_secret,
			 sizeof(h.service_secret)) != 0)
		h.service_secret[0] = '\0';
	if (state_secret(state_dir, "jwt.key", "ECOM_JWT_KEY", h.jwt_key, sizeof(h.jwt_key)) != 0)
		h.jwt_key[0] = '\0';

	http_client_global_init();
	engine_ctx *ctx = &h.ctx;
	ctx->service = def->name;
	ctx->instance_id = h.instance;
	ctx->clock = clock_real_new();
	ctx->rng = rng_new(rng_os_seed());
	ctx->log = log_new(def->name, stderr, ctx->clock, (enum log_level)level);
	ctx->metrics = metrics_new();
	ctx->config = cfg;
	ctx->call = host_call;
	ctx->call_ud = &h;
	ctx->admin_token = h.token;
	ctx->service_secret = h.service_secret;
	ctx->jwt_key = (const unsigned char *)h.jwt_key;
	ctx->jwt_key_len = strlen(h.jwt_key);
	ctx->data_dir = cli_data_dir();
	if (gateway_s)
		snprintf(h.gateway, sizeof(h.gateway), "%s", gateway_s);
	ctx->gateway_url = h.gateway[0] ? h.gateway : NULL;
	ctx->deadline = host_deadline;
	ctx->faults = fault_table_new();
	ctx->wake = host_wake;
	ctx->wake_ud = &h;
	ctx->mail = smtp_client_mail;
	ctx->tracer = tracer_new((size_t)config_int(cfg, "trace.ring_spans", 4096));
	ctx->trace = host_trace;
	ctx->window = window_new((int)config_int(cfg, "stats.window_s", 10), clock_now(ctx->clock));
	log_set_trace_source(ctx->log, host_trace_now, NULL);
	metrics_help(ctx->metrics, "http_requests_total",
		     "HTTP requests served, by route, method and status.");
	metrics_help(ctx->metrics, "http_request_duration_seconds",
		     "Time to serve an HTTP request, by route, method and status.");
	metrics_help(ctx->metrics, "http_requests_in_flight",
		     "HTTP requests of the platform's traffic being served now.");

	int rc = 1;
	http_server *srv = NULL;
	line_server *side = NULL;
	pthread_t tick_tid = 0, hb_tid = 0, disc_tid = 0;
	int tick_started = 0, hb_started = 0, disc_started = 0;
	if (!ctx->tracer || !ctx->window) {
		cli_fail("serve", "out of memory");
		goto out;
	}
	if (!h.token[0])
		log_warn(ctx->log, "no admin token (ECOM_ADMIN_TOKEN or %s/admin.token): admin routes refuse everyone",
			 state_dir);
	if (def->needs_store == ENGINE_STORE_LOCAL) {
		/* Derived data of this instance alone: a SQLite file named after
		 * the instance, whatever the platform store is. */
		char url[CLI_PATH_MAX];
		engine_local_store_url(cfg, state_dir, url, sizeof(url));
		ctx->store = store_open(url, h.instance, state_dir, err, sizeof(err));
		if (!ctx->store) {
			cli_fail("serve", "%s", err);
			goto out;
		}
	} else if (def->needs_store) {
		const char *url = config_get(cfg, "store.url");
		ctx->store = store_open(url && url[0] ? url : NULL, def->name, state_dir, err,
					sizeof(err));
		if (!ctx->store) {
			cli_fail("serve", "%s", err);
			goto out;
		}
		char schema[CLI_PATH_MAX];
		snprintf(schema, sizeof(schema), "%s/schema", ctx->data_dir);
		if (store_migrate(ctx->store, schema, err, sizeof(err)) != 0) {
			cli_fail("serve", "migrating %s: %s", def->name, err);
			goto out;
		}
	}
	ctx->guard = guard_new(def->name, cfg, ctx->log, ctx->metrics, err, sizeof(err));
	h.chaos = ctx->guard && ctx->faults ? chaos_new(ctx, err, sizeof(err)) : NULL;
	if (!h.chaos) {
		cli_fail("serve", "%s", err[0] ? err : "out of memory");
		goto out;
	}
	if (gateway_s && strcmp(def->name, "gateway") != 0 &&
	    config_int(cfg, "services.direct_calls", 1) != 0)
		host_discovery(&h);
	h.eng = def->create(ctx, err, sizeof(err));
	if (!h.eng) {
		cli_fail("serve", "%s: %s", def->name, err);
		goto out;
	}
	if (ctx->store && !(h.bus = bus_new(ctx, def, h.eng, NULL, err, sizeof(err)))) {
		cli_fail("serve", "%s: bus: %s", def->name, err);
		goto out;
	}
	int threads = (int)config_int(cfg, "http.threads", 2);
	/* The inventory commits concurrent reservations as one group (a group
	 * is only as big as the requests inside the engine at once), so it
	 * gets more workers. The gateway blocks a thread for each upstream
	 * call: it runs a thread per connection, so that a slow upstream holds
	 * up only its own callers (the bulkheads bound how many), never
	 * requests that share a pool worker with them. */
	int is_gateway = strcmp(def->name, "gateway") == 0;
	int per_connection = is_gateway && config_int(cfg, "gateway.thread_per_connection", 1) != 0;
	/* A simulator waits out the latency it injects on the thread that
	 * serves the request: a thread per connection, so that one slow
	 * answer holds up only its own caller. */
	size_t namelen = strlen(def->name);
	if (namelen > 4 && strcmp(def->name + namelen - 4, "-sim") == 0)
		per_connection = 1;
	if ((strcmp(def->name, "inventory") == 0 || is_gateway) && threads < 8)
		threads = 8;
	http_server_opts so = {
		.host = config_get(cfg, "http.host"),
		.port = (int)port,
		.threads = threads < 1 ? 1 : threads,
		.body_limit = (size_t)config_int(cfg, "http.body_limit", 65536),
		.conn_timeout_s = (unsigned)config_int(cfg, "http.conn_timeout_s", 30),
		.header_limit = (size_t)config_int(cfg, "http.header_limit", 8192),
	};
	if (per_connection)
		srv = http_server_start_threaded(
			&so, (unsigned)config_int(cfg, "gateway.max_connections", 1000), host_handle,
			&h, ctx->rng, err, sizeof(err));
	else
		srv = http_server_start(&so, host_handle, &h, ctx->rng, err, sizeof(err));
	if (!srv) {
		cli_fail("serve", "%s", err);
		goto out;
	}
	/* before the address file, which tells a supervisor both are there */
	if (def->lines && !(side = serve_side(&h, (int)side_port, side_addr_file, err, sizeof(err)))) {
		cli_fail("serve", "%s", err);
		goto out;
	}
	snprintf(h.addr, sizeof(h.addr), "http://%s:%d", so.host, http_server_port(srv));
	if (addr_file && state_write_file(addr_file, h.addr, 0600) != 0) {
		cli_fail("serve", "cannot write %s", addr_file);
		goto out;
	}
	log_info(ctx->log, "%s listening on %s (pid %ld)", h.instance, h.addr, (long)getpid());
	if (def->tick && pthread_create(&tick_tid, NULL, tick_thread, &h) == 0)
		tick_started = 1;
	if (h.bus && bus_start(h.bus) != 0)
		log_warn(ctx->log, "cannot start the bus thread: events wait");
	exporter_opts eo = {
		.file = config_get(cfg, "otel.export_file"),
		.endpoint = config_get(cfg, "otel.endpoint"),
		.flush_ms = config_int(cfg, "otel.flush_ms", 1000),
		.batch = (size_t)config_int(cfg, "otel.batch_spans", 512),
		.timeout_ms = 2000,
	};
	if ((eo.file && eo.file[0]) || (eo.endpoint && eo.endpoint[0])) {
		h.exporter = exporter_new(ctx->tracer, &eo, ctx->log, ctx->metrics, err, sizeof(err));
		if (!h.exporter || exporter_start(h.exporter) != 0)
			log_warn(ctx->log, "spans are not exported: %s", err[0] ? err : "no thread");
	}
	if (gateway_s) {
		if (pthread_create(&hb_tid, NULL, heartbeat_thread, &h) == 0)
			hb_started = 1;
	}
	if (h.discovery) {
		if (pthread_create(&disc_tid, NULL, discovery_thread, &h) == 0)
			disc_started = 1;
		else
			log_warn(ctx->log, "no thread to copy the gateway's registry: calls go through it");
	}

	int sig = 0;
	sigwait(&sigs, &sig);
	log_info(ctx->log, "%s stopping on signal %d", h.instance, sig);
	rc = 0;
out:
	pthread_mutex_lock(&h.mu);
	h.stopping = 1;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.mu);
	if (hb_started) {
		pthread_join(hb_tid, NULL);
		deregister(&h);
	}
	if (disc_started)
		pthread_join(disc_tid, NULL);
	line_server_stop(side);
	http_server_stop(srv);
	if (tick_started)
		pthread_join(tick_tid, NULL);
	bus_free(h.bus);
	exporter_free(h.exporter); /* after the last spans: a final flush */
	if (h.eng)
		def->destroy(h.eng);
	discovery_free(h.discovery); /* after every thread that calls out */
	store_free(ctx->store);
	chaos_free(h.chaos);
	guard_free(ctx->guard);
	fault_table_free(ctx->faults);
	metrics_free(ctx->metrics);
	tracer_free(ctx->tracer);
	window_free(ctx->window);
	log_free(ctx->log);
	rng_free(ctx->rng);
	clock_free(ctx->clock);
	config_free(cfg);
	http_client_global_cleanup();
	pthread_cond_destroy(&h.cv);
	pthread_mutex_destroy(&h.mu);
	return rc;
}
