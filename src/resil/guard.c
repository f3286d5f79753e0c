/* guard: per-callee breakers and bulkheads, deadlines, retries. */
#include "resil/guard.h"
#include "core/err.h"
#include "core/text.h"
#include "resil/bulkhead.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration keys ------------------------------------------------------ */

enum key_kind { KIND_INT, KIND_PERCENT };

typedef struct key_def {
	const char *name;
	int kind;
	int64_t min, max; /* KIND_INT */
} key_def;

enum {
	K_BREAKER_ENABLED,
	K_WINDOW,
	K_MIN_CALLS,
	K_FAILURE_RATE,
	K_SLOW_CALL_RATE,
	K_SLOW_CALL_MS,
	K_WAIT_OPEN_MS,
	K_HALF_OPEN_CALLS,
	K_MAX_CONCURRENT,
	K_RETRY_ATTEMPTS,
	K_RETRY_BASE_MS,
	K_RETRY_CAP_MS,
	NKEYS
};

static const key_def keys[NKEYS] = {
	[K_BREAKER_ENABLED] = { "breaker.enabled", KIND_INT, 0, 1 },
	[K_WINDOW] = { "breaker.window", KIND_INT, 1, BREAKER_MAX_WINDOW },
	[K_MIN_CALLS] = { "breaker.min_calls", KIND_INT, 1, BREAKER_MAX_WINDOW },
	[K_FAILURE_RATE] = { "breaker.failure_rate", KIND_PERCENT, 0, 0 },
	[K_SLOW_CALL_RATE] = { "breaker.slow_call_rate", KIND_PERCENT, 0, 0 },
	[K_SLOW_CALL_MS] = { "breaker.slow_call_ms", KIND_INT, 0, 3600000 },
	[K_WAIT_OPEN_MS] = { "breaker.wait_open_ms", KIND_INT, 0, 3600000 },
	[K_HALF_OPEN_CALLS] = { "breaker.half_open_calls", KIND_INT, 1, BREAKER_MAX_WINDOW },
	[K_MAX_CONCURRENT] = { "bulkhead.max_concurrent", KIND_INT, 1, 100000 },
	[K_RETRY_ATTEMPTS] = { "retry.max_attempts", KIND_INT, 1, 10 },
	[K_RETRY_BASE_MS] = { "retry.base_ms", KIND_INT, 0, 60000 },
	[K_RETRY_CAP_MS] = { "retry.cap_ms", KIND_INT, 0, 600000 },
};

static int key_index(const char *name)
{
	for (int k = 0; k < NKEYS; k++)
		if (strcmp(keys[k].name, name) == 0)
			return k;
	return -1;
}

/* Parses text as key k's value. 0 or ERR_INVALID. */
static int key_parse(int k, const char *text, double *out)
{
	while (isspace((unsigned char)*text))
		text++;
	if (!*text)
		return ERR_INVALID;
	char *end;
	errno = 0;
	if (keys[k].kind == KIND_PERCENT) {
		double v = strtod(text, &end);
		while (isspace((unsigned char)*end))
			end++;
		if (errno || *end || !(v > 0.0 && v <= 100.0))
			return ERR_INVALID;
		*out = v;
		return 0;
	}
	long long v = strtoll(text, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || *end || v < keys[k].min || v > keys[k].max)
		return ERR_INVALID;
	*out = (double)v;
	return 0;
}

static void key_apply(guard_edge_config *c, int k, double v)
{
	int64_t i = (int64_t)v;
	switch (k) {
	case K_BREAKER_ENABLED: c->breaker_enabled = (int)i; break;
	case K_WINDOW: c->breaker.sliding_window_size = (int)i; break;
	case K_MIN_CALLS: c->breaker.minimum_calls = (int)i; break;
	case K_FAILURE_RATE: c->breaker.failure_rate_threshold = v; break;
	case K_SLOW_CALL_RATE: c->breaker.slow_call_rate_threshold = v; break;
	case K_SLOW_CALL_MS: c->breaker.slow_call_duration_us = i * 1000; break;
	case K_WAIT_OPEN_MS: c->breaker.wait_in_open_us = i * 1000; break;
	case K_HALF_OPEN_CALLS: c->breaker.permitted_calls_in_half_open = (int)i; break;
	case K_MAX_CONCURRENT: c->max_concurrent = (int)i; break;
	case K_RETRY_ATTEMPTS: c->retry.max_attempts = (int)i; break;
	case K_RETRY_BASE_MS: c->retry.base_us = i * 1000; break;
	case K_RETRY_CAP_MS: c->retry.cap_us = i * 1000; break;
	default: break;
	}
}

void guard_edge_config_default(guard_edge_config *c)
{
	memset(c, 0, sizeof(*c));
	breaker_config_default(&c->breaker);
	c->breaker_enabled = 1;
	c->max_concurrent = 64;
	c->retry.max_attempts = 3;
	c->retry.base_us = 50 * 1000;
	c->retry.cap_us = 1000 * 1000;
}

static int edge_config_check(const guard_edge_config *c)
{
	if (breaker_config_check(&c->breaker) != 0 || c->max_concurrent < 1 ||
	    backoff_policy_check(&c->retry) != 0)
		return ERR_INVALID;
	return 0;
}

/* ---- names ------------------------------------------------------------------------ */

static int name_ok(const char *s) { return text_is_name(s, GUARD_NAME_MAX); }

/* ---- the guard -------------------------------------------------------------------- */

/* One override of resil.edges. */
typedef struct rule {
	char caller[GUARD_NAME_MAX]; /* "*" matches any */
	char callee[GUARD_NAME_MAX];
	int key;
	double value;
} rule;

#define MAX_RULES 64

typedef struct edge {
	struct guard *g;
	char callee[GUARD_NAME_MAX];
	guard_edge_config cfg;
	breaker *br;
	bulkhead *bh;
	char labels[2 * GUARD_NAME_MAX + 16]; /* from="...",to="..." */
} edge;

struct guard {
	char caller[GUARD_NAME_MAX];
	int enabled;
	guard_edge_config defaults;
	rule rules[MAX_RULES];
	int nrules;
	logger *lg;
	metrics *m;
	pthread_mutex_t mu; /* serialises edge creation */
	edge *edges[GUARD_MAX_EDGES];
	atomic_int n; /* edges[0..n) are published and never change */
};

static int rule_matches(const rule *r, const char *caller, const char *callee)
{
	return (strcmp(r->caller, "*") == 0 || strcmp(r->caller, caller) == 0) &&
	       (strcmp(r->callee, "*") == 0 || strcmp(r->callee, callee) == 0);
}

static void config_for(const guard *g, const char *callee, guard_edge_config *out)
{
	*out = g->defaults;
	for (int i = 0; i < g->nrules; i++)
		if (rule_matches(&g->rules[i], g->caller, callee))
			key_apply(out, g->rules[i].key, g->rules[i].value);
}

/* Parses resil.edges into g->rules. */
static int parse_rules(guard *g, const char *spec, char *err, size_t errlen)
{
	char *copy = strdup(spec ? spec : "");
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	int rc = 0;
	char *save = NULL;
	for (char *sec = strtok_r(copy, ";", &save); sec && rc == 0;
	     sec = strtok_r(NULL, ";", &save)) {
		sec = text_trim(sec);
		if (!*sec)
			continue;
		char *colon = strchr(sec, ':');
		char *gt = colon ? memchr(sec, '>', (size_t)(colon - sec)) : NULL;
		if (!colon || !gt) {
			snprintf(err, errlen, "resil.edges: '%.60s' is not CALLER>CALLEE: KEY=VALUE,...",
				 sec);
			rc = ERR_PARSE;
			break;
		}
		*colon = '\0';
		*gt = '\0';
		char *from = text_trim(sec), *to = text_trim(gt + 1);
		if ((strcmp(from, "*") != 0 && !name_ok(from)) || (strcmp(to, "*") != 0 && !name_ok(to))) {
			snprintf(err, errlen, "resil.edges: bad edge '%.30s>%.30s'", from, to);
			rc = ERR_PARSE;
			break;
		}
		char *save2 = NULL;
		for (char *kv = strtok_r(colon + 1, ",", &save2); kv; kv = strtok_r(NULL, ",", &save2)) {
			kv = text_trim(kv);
			if (!*kv)
				continue;
			char *eq = strchr(kv, '=');
			if (eq)
				*eq = '\0';
			int k = key_index(text_trim(kv));
			double v;
			if (!eq || k < 0) {
				snprintf(err, errlen, "resil.edges: %s>%s: unknown setting '%.40s'", from,
					 to, text_trim(kv));
				rc = ERR_PARSE;
				break;
			}
			if (key_parse(k, eq + 1, &v) != 0) {
				snprintf(err, errlen, "resil.edges: %s>%s: bad value for %s", from, to,
					 keys[k].name);
				rc = ERR_PARSE;
				break;
			}
			if (g->nrules == MAX_RULES) {
				snprintf(err, errlen, "resil.edges: more than %d settings", MAX_RULES);
				rc = ERR_TOO_LARGE;
				break;
			}
			rule *r = &g->rules[g->nrules++];
			snprintf(r->caller, sizeof(r->caller), "%s", from);
			snprintf(r->callee, sizeof(r->callee), "%s", to);
			r->key = k;
			r->value = v;
		}
	}
	free(copy);
	return rc;
}

guard *guard_new(const char *caller, const config *cfg, logger *lg, metrics *m, char *err,
		 size_t errlen)
{
	char dummy[1];
	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!caller || !caller[0] || strlen(caller) >= GUARD_NAME_MAX) {
		snprintf(err, errlen, "bad caller name");
		return NULL;
	}
	guard *g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(g->caller, sizeof(g->caller), "%s", caller);
	g->lg = lg;
	g->m = m;
	g->enabled = 1;
	pthread_mutex_init(&g->mu, NULL);
	atomic_init(&g->n, 0);
	guard_edge_config_default(&g->defaults);
	int rc = 0;
	for (int k = 0; cfg && k < NKEYS && rc == 0; k++) {
		const char *v = config_get(cfg, keys[k].name);
		double d;
		if (!v)
			continue; /* not in the table: the built-in default */
		if (key_parse(k, v, &d) != 0) {
			snprintf(err, errlen, "bad %s '%.40s'", keys[k].name, v);
			rc = ERR_INVALID;
		} else {
			key_apply(&g->defaults, k, d);
		}
	}
	if (rc == 0 && cfg) {
		int64_t on = config_int(cfg, "resil.enabled", 1);
		g->enabled = on != 0;
		rc = parse_rules(g, config_get(cfg, "resil.edges"), err, errlen);
	}
	/* Every configuration this caller can end up with must be valid. */
	if (rc == 0 && edge_config_check(&g->defaults) != 0) {
		snprintf(err, errlen, "the breaker.*, bulkhead.* and retry.* settings do not fit together");
		rc = ERR_INVALID;
	}
	for (int i = 0; rc == 0 && i < g->nrules; i++) {
		guard_edge_config c;
		if (strcmp(g->rules[i].caller, "*") != 0 && strcmp(g->rules[i].caller, g->caller) != 0)
			continue;
		config_for(g, g->rules[i].callee, &c);
		if (edge_config_check(&c) != 0) {
			snprintf(err, errlen, "resil.edges: the settings of %s>%s do not fit together",
				 g->caller, g->rules[i].callee);
			rc = ERR_INVALID;
		}
	}
	if (rc != 0) {
		guard_free(g);
		return NULL;
	}
	if (m) {
		metrics_help(m, "breaker_state",
			     "Circuit breaker state of each edge (from caller, to callee): 1 for the "
			     "current state, 0 for the others.");
		metrics_help(m, "breaker_transitions_total",
			     "Circuit breaker state changes of each edge, by the state entered.");
		metrics_help(m, "resil_rejections_total",
			     "Calls refused before anything was sent, by reason (breaker, bulkhead, "
			     "deadline).");
		metrics_help(m, "resil_retries_total", "Retries of failed calls, per edge.");
	}
	return g;
}

void guard_free(guard *g)
{
	if (!g)
		return;
	int n = atomic_load(&g->n);
	for (int i = 0; i < n; i++) {
		breaker_free(g->edges[i]->br);
		bulkhead_free(g->edges[i]->bh);
		free(g->edges[i]);
	}
	pthread_mutex_destroy(&g->mu);
	free(g);
}

const char *guard_caller(const guard *g) { return g->caller; }
int guard_enabled(const guard *g) { return g->enabled; }

int guard_edge_config_of(const guard *g, const char *callee, guard_edge_config *out)
{
	if (!name_ok(callee))
		return ERR_INVALID;
	config_for(g, callee, out);
	return 0;
}

/* ---- edges ------------------------------------------------------------------------ */

static void set_state_gauges(edge *e, int current)
{
	if (!e->g->m)
		return;
	char labels[sizeof(e->labels) + 32];
	for (int s = 0; s < BREAKER_NSTATES; s++) {
		snprintf(labels, sizeof(labels), "%s,state=\"%s\"", e->labels, breaker_state_name(s));
		metrics_gauge(e->g->m, "breaker_state", labels, s == current ? 1.0 : 0.0);
	}
}

/* Runs under the breaker's lock: touches only metrics. */
static void on_transition(void *ud, const breaker *b, int from, int to)
{
	edge *e = ud;
	if (!e->g->m)
		return;
	char labels[sizeof(e->labels) + 32];
	snprintf(labels, sizeof(labels), "%s,state=\"%s\"", e->labels, breaker_state_name(to));
	metrics_count(e->g->m, "breaker_transitions_total", labels, 1);
	set_state_gauges(e, to);
}

static edge *edge_find(guard *g, const char *callee)
{
	int n = atomic_load_explicit(&g->n, memory_order_acquire);
	for (int i = 0; i < n; i++)
		if (strcmp(g->edges[i]->callee, callee) == 0)
			return g->edges[i];
	return NULL;
}

/* callee's edge, created when absent. NULL with *rc ERR_INVALID (bad name),
 * ERR_TOO_LARGE (table full) or ERR_NOMEM. */
static edge *edge_get(guard *g, const char *callee, int64_t now_us, int *rc)
{
	*rc = 0;
	edge *e = edge_find(g, callee);
	if (e)
		return e;
	if (!name_ok(callee)) {
		*rc = ERR_INVALID;
		return NULL;
	}
	pthread_mutex_lock(&g->mu);
	e = edge_find(g, callee);
	int n = atomic_load_explicit(&g->n, memory_order_relaxed);
	if (!e && n == GUARD_MAX_EDGES) {
		*rc = ERR_TOO_LARGE;
	} else if (!e) {
		e = calloc(1, sizeof(*e));
		if (e) {
			e->g = g;
			snprintf(e->callee, sizeof(e->callee), "%s", callee);
			snprintf(e->labels, sizeof(e->labels), "from=\"%s\",to=\"%s\"", g->caller, callee);
			config_for(g, callee, &e->cfg);
			e->br = breaker_new(g->caller, callee, &e->cfg.breaker, g->lg);
			e->bh = bulkhead_new(callee, e->cfg.max_concurrent);
		}
		if (!e || !e->br || !e->bh) {
			if (e) {
				breaker_free(e->br);
				bulkhead_free(e->bh);
				free(e);
			}
			e = NULL;
			*rc = ERR_NOMEM;
		} else {
			set_state_gauges(e, BREAKER_CLOSED);
			breaker_on_transition(e->br, on_transition, e);
			if (!e->cfg.breaker_enabled)
				breaker_disable(e->br, now_us);
			g->edges[n] = e;
			atomic_store_explicit(&g->n, n + 1, memory_order_release);
		}
	}
	pthread_mutex_unlock(&g->mu);
	return e;
}

const char *guard_refusal_name(int why)
{
	switch (why) {
	case GUARD_BREAKER: return "breaker";
	case GUARD_BULKHEAD: return "bulkhead";
	case GUARD_DEADLINE: return "deadline";
	default: return NULL;
	}
}

static void count_refusal(guard *g, const char *callee, int why)
{
	if (!g->m)
		return;
	char labels[2 * GUARD_NAME_MAX + 64];
	snprintf(labels, sizeof(labels), "from=\"%s\",to=\"%s\",reason=\"%s\"", g->caller,
		 name_ok(callee) ? callee : "invalid", guard_refusal_name(why));
	metrics_count(g->m, "resil_rejections_total", labels, 1);
}

static int64_t ceil_s(int64_t us)
{
	int64_t s = (us + 999999) / 1000000;
	return s < 1 ? 1 : s;
}

int guard_enter(guard *g, const char *callee, int64_t now_us, guard_permit *p, int *why,
		int64_t *retry_after_s)
{
	p->edge = NULL;
	p->start_us = now_us;
	*why = GUARD_PERMITTED;
	if (retry_after_s)
		*retry_after_s = 0;
	if (!g->enabled)
		return 0;
	int rc;
	edge *e = edge_get(g, callee, now_us, &rc);
	if (!e && rc == ERR_INVALID) {
		*why = GUARD_BREAKER;
		if (retry_after_s)
			*retry_after_s = 1;
		return ERR_INVALID;
	}
	if (!e)
		return 0; /* no room for another edge: unguarded rather than refused */
	if (breaker_acquire(e->br, now_us) != 0) {
		*why = GUARD_BREAKER;
		if (retry_after_s) {
			breaker_stats st;
			breaker_snapshot(e->br, now_us, &st);
			/* OPEN: when the wait ends; HALF_OPEN: the probes
			 * decide soon; FORCED_OPEN: no one knows, so a wait. */
			*retry_after_s = ceil_s(st.state == BREAKER_OPEN	  ? st.open_remaining_us
						: st.state == BREAKER_HALF_OPEN ? 0
										: e->cfg.breaker.wait_in_open_us);
		}
		count_refusal(g, callee, GUARD_BREAKER);
		return ERR_UNAVAILABLE;
	}
	if (bulkhead_enter(e->bh) != 0) {
		breaker_release(e->br);
		*why = GUARD_BULKHEAD;
		if (retry_after_s)
			*retry_after_s = 1;
		count_refusal(g, callee, GUARD_BULKHEAD);
		return ERR_UNAVAILABLE;
	}
	p->edge = e;
	return 0;
}

void guard_done(guard_permit *p, int64_t now_us, int failed)
{
	edge *e = p->edge;
	if (!e)
		return;
	p->edge = NULL;
	int64_t d = now_us - p->start_us;
	breaker_record(e->br, now_us, d > 0 ? d : 0, failed);
	bulkhead_leave(e->bh);
}

void guard_cancel(guard_permit *p)
{
	edge *e = p->edge;
	if (!e)
		return;
	p->edge = NULL;
	breaker_release(e->br);
	bulkhead_leave(e->bh);
}

/* ---- outcomes --------------------------------------------------------------------- */

int guard_failed(int rc, int status)
{
	if (rc != 0)
		return 1;
	return status >= 500 && status != 501;
}

int guard_retryable(int rc, const msg_resp *resp)
{
	if (resp && msg_resp_header(resp, GUARD_REFUSED_HEADER))
		return 0;
	if (rc != 0)
		return rc == ERR_UNAVAILABLE || rc == ERR_TIMEOUT || rc == ERR_IO;
	return resp && (resp->status == 502 || resp->status == 503 || resp->status == 504);
}

int guard_idempotent(const msg_req *req)
{
	static const char *const safe[] = { "GET", "HEAD", "OPTIONS", "PUT", "DELETE", NULL };
	for (int i = 0; safe[i]; i++)
		if (strcmp(req->method, safe[i]) == 0)
			return 1;
	const char *key = msg_req_header(req, "Idempotency-Key");
	return key && key[0];
}

/* ---- deadlines -------------------------------------------------------------------- */

int guard_deadline_parse(const char *value, int64_t now_us, int64_t *deadline_us)
{
	if (!value)
		return ERR_INVALID;
	const char *p = value;
	while (*p == ' ' || *p == '\t')
		p++;
	int neg = *p == '-';
	if (neg)
		p++;
	if (!isdigit((unsigned char)*p))
		return ERR_INVALID;
	int64_t ms = 0;
	for (; isdigit((unsigned char)*p); p++)
		if (ms <= GUARD_MAX_DEADLINE_MS)
			ms = ms * 10 + (*p - '0');
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p)
		return ERR_INVALID;
	if (neg)
		ms = 0;
	if (ms > GUARD_MAX_DEADLINE_MS)
		ms = GUARD_MAX_DEADLINE_MS;
	*deadline_us = now_us + ms * 1000;
	return 0;
}

int64_t guard_deadline_min(int64_t a, int64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

int64_t guard_deadline_left_ms(int64_t deadline_us, int64_t now_us)
{
	int64_t left = deadline_us - now_us;
	return left > 0 ? left / 1000 : 0;
}

int guard_deadline_stamp(msg_req *req, int64_t deadline_us, int64_t now_us)
{
	if (deadline_us == 0)
		return msg_req_set_header(req, GUARD_DEADLINE_HEADER, NULL);
	char v[24];
	snprintf(v, sizeof(v), "%lld", (long long)guard_deadline_left_ms(deadline_us, now_us));
	return msg_req_set_header(req, GUARD_DEADLINE_HEADER, v);
}

/* ---- one call ---------------------------------------------------------------------- */

static void refuse(msg_resp *resp, int why, int64_t retry_after_s)
{
	msg_resp_set_header(resp, GUARD_REFUSED_HEADER, guard_refusal_name(why));
	if (retry_after_s > 0) {
		char v[24];
		snprintf(v, sizeof(v), "%lld", (long long)retry_after_s);
		msg_resp_set_header(resp, "Retry-After", v);
	}
}

static void count_retry(guard *g, const char *callee)
{
	if (!g->m)
		return;
	char labels[2 * GUARD_NAME_MAX + 32];
	snprintf(labels, sizeof(labels), "from=\"%s\",to=\"%s\"", g->caller, callee);
	metrics_count(g->m, "resil_retries_total", labels, 1);
}

int guard_call(guard *g, const char *callee, const guard_call_opts *o, guard_send_fn send,
	       void *ud, msg_req *req, msg_resp *resp)
{
	if (!g || !o || !o->clock || !send || !req || !resp)
		return ERR_INVALID;
	/* The edge's retry policy (its configuration is fixed at creation);
	 * without an edge (disabled, or no room) no retries. */
	int erc;
	edge *e = g->enabled ? edge_get(g, callee, clock_now(o->clock), &erc) : NULL;
	backoff_policy none = { .max_attempts = 1 };
	const backoff_policy *policy = e ? &e->cfg.retry : &none;
	int64_t per_try_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	int rc = 0;
	for (int retry = 0;; retry++) {
		/* A retry that may not happen after all leaves the last attempt's
		 * answer in resp: that is the outcome the caller gets. */
		int64_t now = clock_now(o->clock);
		if (o->deadline_us && guard_deadline_left_ms(o->deadline_us, now) < 1) {
			count_refusal(g, callee, GUARD_DEADLINE);
			if (retry > 0)
				return rc;
			refuse(resp, GUARD_DEADLINE, 0);
			return ERR_TIMEOUT;
		}
		guard_permit p;
		int why;
		int64_t ra;
		if (guard_enter(g, callee, now, &p, &why, &ra) != 0) {
			if (retry > 0)
				return rc;
			refuse(resp, why, ra);
			return ERR_UNAVAILABLE;
		}
		if (retry > 0) {
			msg_resp_clear(resp);
			msg_resp_init(resp);
		}
		/* This attempt's own deadline: the caller's, or the attempt's
		 * timeout when that comes first. The upstream learns it too. */
		int64_t until = guard_deadline_min(o->deadline_us, now + per_try_ms * 1000);
		int64_t timeout_ms = guard_deadline_left_ms(until, now);
		guard_deadline_stamp(req, until, now);
		rc = send(ud, req, resp, timeout_ms);
		int64_t end = clock_now(o->clock);
		int failed = guard_failed(rc, resp->status);
		guard_done(&p, end, failed);
		if (!failed || !guard_retryable(rc, resp) || (!o->idempotent && rc != ERR_UNAVAILABLE) ||
		    !o->rng)
			return rc;
		int64_t delay;
		if (backoff_next(policy, retry, end,
				 o->deadline_us ? o->deadline_us : BACKOFF_NO_DEADLINE, o->rng,
				 &delay) != 0)
			return rc;
		count_retry(g, callee);
		clock_sleep_us(o->clock, delay);
	}
}

/* ---- operators --------------------------------------------------------------------- */

int guard_trip(guard *g, const char *callee, int64_t now_us)
{
	int rc;
	edge *e = edge_get(g, callee, now_us, &rc);
	return e ? breaker_trip(e->br, now_us) : rc;
}

int guard_disable(guard *g, const char *callee, int64_t now_us)
{
	int rc;
	edge *e = edge_get(g, callee, now_us, &rc);
	return e ? breaker_disable(e->br, now_us) : rc;
}

int guard_reset(guard *g, const char *callee, int64_t now_us)
{
	if (!name_ok(callee))
		return ERR_INVALID;
	edge *e = edge_find(g, callee);
	return e ? breaker_reset(e->br, now_us) : ERR_NOT_FOUND;
}

static json_t *edge_json(guard *g, edge *e, int64_t now_us)
{
	breaker_stats st;
	bulkhead_stats bs;
	breaker_snapshot(e->br, now_us, &st);
	bulkhead_snapshot(e->bh, &bs);
	json_t *o = json_object();
	json_object_set_new(o, "from", json_string(g->caller));
	json_object_set_new(o, "to", json_string(e->callee));
	json_object_set_new(o, "state", json_string(breaker_state_name(st.state)));
	json_object_set_new(o, "failure_rate", json_real(st.failure_rate));
	json_object_set_new(o, "slow_call_rate", json_real(st.slow_call_rate));
	json_object_set_new(o, "calls", json_integer(st.calls));
	json_object_set_new(o, "failed_calls", json_integer(st.failed_calls));
	json_object_set_new(o, "slow_calls", json_integer(st.slow_calls));
	json_object_set_new(o, "not_permitted", json_integer(st.not_permitted));
	json_object_set_new(o, "transitions", json_integer(st.transitions));
	json_object_set_new(o, "open_remaining_ms", json_integer(st.open_remaining_us / 1000));
	json_object_set_new(o, "max_concurrent", json_integer(bs.max_concurrent));
	json_object_set_new(o, "in_flight", json_integer(bs.in_flight));
	json_object_set_new(o, "bulkhead_rejected", json_integer(bs.rejected));
	return o;
}

json_t *guard_edge_json(guard *g, const char *callee, int64_t now_us)
{
	edge *e = callee ? edge_find(g, callee) : NULL;
	return e ? edge_json(g, e, now_us) : NULL;
}

static int by_callee(const void *a, const void *b)
{
	return strcmp((*(edge *const *)a)->callee, (*(edge *const *)b)->callee);
}

json_t *guard_list(guard *g, int64_t now_us)
{
	edge *v[GUARD_MAX_EDGES];
	int n = atomic_load_explicit(&g->n, memory_order_acquire);
	memcpy(v, g->edges, (size_t)n * sizeof(v[0]));
	qsort(v, (size_t)n, sizeof(v[0]), by_callee);
	json_t *arr = json_array();
	for (int i = 0; arr && i < n; i++)
		json_array_append_new(arr, edge_json(g, v[i], now_us));
	return arr;
}
