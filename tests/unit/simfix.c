/* simfix: a provider's simulator on loopback, for tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simfix.h"
#include "net/http_client.h"
#include "sim/stripe_sim.h"

static void copy_header(char *dst, size_t len, const msg_req *req, const char *name)
{
	const char *v = msg_req_header(req, name);
	snprintf(dst, len, "%s", v ? v : "");
}

/* What the daemon host does for the simulator, plus a record of the raw
 * request taken before the engine sees it. */
static void handler(void *ud, msg_req *req, msg_resp *resp)
{
	simfix *s = ud;
	if (strncmp(req->path, "/admin/", 7) != 0) {
		pthread_mutex_lock(&s->mu);
		if (s->nseen < SIMFIX_MAX_SEEN) {
			simfix_seen *r = &s->seen[s->nseen++];
			snprintf(r->method, sizeof(r->method), "%s", req->method);
			snprintf(r->path, sizeof(r->path), "%s", req->path);
			copy_header(r->ctype, sizeof(r->ctype), req, "Content-Type");
			copy_header(r->auth, sizeof(r->auth), req, "Authorization");
			copy_header(r->idem, sizeof(r->idem), req, "Idempotency-Key");
			copy_header(r->version, sizeof(r->version), req, "Stripe-Version");
			copy_header(r->request_id, sizeof(r->request_id), req, "PayPal-Request-Id");
			r->body = strndup(req->body ? req->body : "", req->body_len);
		}
		pthread_mutex_unlock(&s->mu);
	}
	s->def->handle(s->sim, req, resp);
	int64_t d = stripe_sim_delay_us(resp);
	if (d > 0)
		usleep((useconds_t)d);
}

int simfix_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		int64_t timeout_ms)
{
	(void)ud;
	http_call_opts o = { .connect_timeout_ms = 200, .timeout_ms = timeout_ms };
	return http_client_do(target, req, resp, &o);
}

simfix *simfix_new(const char *admin)
{
	return simfix_start(&stripe_sim_engine, "stripe", admin, NULL);
}

simfix *simfix_start(const engine_def *def, const char *provider, const char *admin,
		     const char *const *settings)
{
	simfix *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->def = def;
	s->provider = provider;
	pthread_mutex_init(&s->mu, NULL);
	s->clock = clock_real_new();
	s->rng = rng_new(99);
	s->logf = fopen("/dev/null", "w");
	s->log = s->logf ? log_new(def->name, s->logf, s->clock, LOG_DEBUG) : NULL;
	s->metrics = metrics_new();
	s->config = config_new();
	if (!s->clock || !s->rng || !s->log || !s->metrics || !s->config) {
		simfix_free(s);
		return NULL;
	}
	for (int i = 0; settings && settings[i] && settings[i + 1]; i += 2)
		if (config_set(s->config, settings[i], settings[i + 1]) != 0) {
			fprintf(stderr, "simfix: bad configuration %s\n", settings[i]);
			simfix_free(s);
			return NULL;
		}
	s->ctx = (engine_ctx){
		.service = def->name,
		.instance_id = def->name,
		.clock = s->clock,
		.rng = s->rng,
		.log = s->log,
		.metrics = s->metrics,
		.config = s->config,
		.admin_token = admin,
	};
	char err[256] = "";
	s->sim = def->create(&s->ctx, err, sizeof(err));
	if (!s->sim) {
		fprintf(stderr, "%s: %s\n", def->name, err);
		simfix_free(s);
		return NULL;
	}
	http_server_opts o = { "127.0.0.1", 0, 4, 1 << 16, 5, 0 };
	s->srv = http_server_start(&o, handler, s, s->rng, err, sizeof(err));
	if (!s->srv) {
		fprintf(stderr, "server: %s\n", err);
		simfix_free(s);
		return NULL;
	}
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", http_server_port(s->srv));
	return s;
}

void simfix_free(simfix *s)
{
	if (!s)
		return;
	http_server_stop(s->srv);
	if (s->sim)
		s->def->destroy(s->sim);
	for (int i = 0; i < s->nseen; i++)
		free(s->seen[i].body);
	config_free(s->config);
	metrics_free(s->metrics);
	log_free(s->log);
	if (s->logf)
		fclose(s->logf);
	rng_free(s->rng);
	clock_free(s->clock);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int simfix_nseen(simfix *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->nseen;
	pthread_mutex_unlock(&s->mu);
	return n;
}

const simfix_seen *simfix_last(simfix *s)
{
	int n = simfix_nseen(s);
	assert_true(n > 0);
	return &s->seen[n - 1];
}

json_t *simfix_admin(simfix *s, const char *method, const char *path, const char *body)
{
	msg_req req;
	msg_resp resp;
	char auth[256];
	snprintf(auth, sizeof(auth), "Bearer %s", s->ctx.admin_token);
	assert_int_equal(msg_req_init(&req, method, path), 0);
	assert_int_equal(msg_req_add_header(&req, "Authorization", auth), 0);
	if (body) {
		assert_int_equal(msg_req_add_header(&req, "Content-Type", "application/json"), 0);
		assert_int_equal(msg_req_set_body(&req, body, strlen(body)), 0);
	}
	msg_resp_init(&resp);
	s->def->handle(s->sim, &req, &resp);
	if (resp.status != 200)
		fail_msg("%s %s: %d %.*s", method, path, resp.status, (int)resp.body_len, resp.body);
	json_t *v = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_non_null(v);
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	return v;
}

int64_t simfix_stat(simfix *s, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/admin/%s/stats", s->provider);
	json_t *st = simfix_admin(s, "GET", path, NULL);
	json_t *v = json_object_get(st, name);
	if (!json_is_integer(v))
		fail_msg("no counter %s in the simulator's stats", name);
	int64_t n = json_integer_value(v);
	json_decref(st);
	return n;
}

void simfix_fault(simfix *s, const char *json)
{
	simfix_fault_on(s, s->provider, json);
}

void simfix_fault_on(simfix *s, const char *target, const char *json)
{
	char path[128];
	snprintf(path, sizeof(path), "/admin/faults/%s", target);
	json_decref(simfix_admin(s, json ? "PUT" : "DELETE", path, json));
}

void simfix_tick(simfix *s)
{
	if (s->def->tick)
		s->def->tick(s->sim, clock_now(s->clock));
}
