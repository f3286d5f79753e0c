/* narrator: the demos' running commentary. */
#include "ops/narrator.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/state.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EDGES 128
#define MAX_FAULTS 32
#define MAX_INSTANCES 64
/* A status line at least this often while orders keep coming. */
#define STATUS_EVERY_US (10 * 1000000LL)

typedef struct edge {
	char key[96];   /* from>to@instance */
	char label[96]; /* from→to, with the instance when the caller has several */
	char state[16];
} edge;

typedef struct instance {
	char id[48];
	long long pid;
	int restarts;
} instance;

struct narrator {
	narrator_opts o;
	char url[512], token[256], state[1024];
	int looked;
	int told_events;
	edge edges[MAX_EDGES];
	int nedges;
	char faults[MAX_FAULTS][96]; /* "target:description" */
	int nfaults;
	instance insts[MAX_INSTANCES];
	int ninsts;
	long long awaiting, awaiting_told, confirmed, cancelled, placed;
	int64_t status_told_us;
	long long placed_told;
	long long available;
	/* the thread */
	pthread_t th;
	int running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int64_t t0; /* 0 until the run starts */
};

narrator *narrator_new(const narrator_opts *o)
{
	narrator *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->o = *o;
	snprintf(n->url, sizeof(n->url), "%s", o->url ? o->url : "");
	snprintf(n->token, sizeof(n->token), "%s", o->token ? o->token : "");
	snprintf(n->state, sizeof(n->state), "%s", o->state_dir ? o->state_dir : "");
	n->o.url = n->url;
	n->o.token = n->token;
	n->o.state_dir = o->state_dir ? n->state : NULL;
	if (!n->o.out)
		n->o.out = stdout;
	if (n->o.period_us <= 0)
		n->o.period_us = 1000000;
	n->available = -1;
	pthread_mutex_init(&n->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cv, &ca);
	pthread_condattr_destroy(&ca);
	return n;
}

void narrator_free(narrator *n)
{
	if (!n)
		return;
	narrator_stop(n);
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->cv);
	free(n);
}

/* ---- telling ------------------------------------------------------------------ */

typedef struct says {
	char *buf;
	size_t len, at;
} says;

static void say(says *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(says *s, const char *fmt, ...)
{
	if (s->at + 8 >= s->len)
		return;
	if (s->at) {
		int k = snprintf(s->buf + s->at, s->len - s->at, " → ");
		s->at += (size_t)k < s->len - s->at ? (size_t)k : s->len - s->at - 1;
	}
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(s->buf + s->at, s->len - s->at, fmt, ap);
	va_end(ap);
	if (k > 0)
		s->at += (size_t)k < s->len - s->at ? (size_t)k : s->len - s->at - 1;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static void tell_schedule(narrator *n, int64_t t_us, says *s)
{
	const scenario *sc = n->o.s;
	while (sc && t_us >= 0 && n->told_events < sc->nevents &&
	       sc->events[n->told_events].at_us <= t_us) {
		const scenario_event *ev = &sc->events[n->told_events++];
		/* "at 15s fault set ..." as written, without its "at T". */
		const char *what = ev->text;
		if (strncmp(what, "at ", 3) == 0 && strchr(what + 3, ' '))
			what = strchr(what + 3, ' ') + 1;
		say(s, "▶ %s", what);
	}
}

/* The number of instances of the caller named in key "from>..." among the
 * breakers (to label edges of a caller with several instances). */
static int callers(json_t *breakers, const char *from)
{
	json_t *seen = json_object();
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(breakers, "breakers"), i, b)
		if (strcmp(jstr(b, "from"), from) == 0)
			json_object_set_new(seen, jstr(b, "instance"), json_true());
	int k = (int)json_object_size(seen);
	json_decref(seen);
	return k;
}

static void tell_breakers(narrator *n, json_t *breakers, int quiet, says *s)
{
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(breakers, "breakers"), i, b) {
		char key[96], label[96];
		const char *from = jstr(b, "from"), *to = jstr(b, "to"), *st = jstr(b, "state");
		snprintf(key, sizeof(key), "%s>%s@%s", from, to, jstr(b, "instance"));
		if (callers(breakers, from) > 1)
			snprintf(label, sizeof(label), "%s→%s (%s)", from, to, jstr(b, "instance"));
		else
			snprintf(label, sizeof(label), "%s→%s", from, to);
		edge *e = NULL;
		for (int k = 0; k < n->nedges && !e; k++)
			if (strcmp(n->edges[k].key, key) == 0)
				e = &n->edges[k];
		if (!e && n->nedges < MAX_EDGES) {
			e = &n->edges[n->nedges++];
			snprintf(e->key, sizeof(e->key), "%s", key);
			snprintf(e->state, sizeof(e->state), "CLOSED");
		}
		if (!e || strcmp(e->state, st) == 0)
			continue;
		if (!quiet)
			say(s, "breaker %s %s", label, st);
		snprintf(e->label, sizeof(e->label), "%s", label);
		snprintf(e->state, sizeof(e->state), "%s", st);
	}
}

static void fault_text(json_t *f, char *buf, size_t len)
{
	if (json_is_true(json_object_get(f, "outage"))) {
		snprintf(buf, len, "down");
		return;
	}
	size_t at = 0;
	buf[0] = '\0';
	long long lat = json_integer_value(json_object_get(f, "latency_ms"));
	long long jit = json_integer_value(json_object_get(f, "jitter_ms"));
	double rate = json_number_value(json_object_get(f, "error_rate"));
	if (lat || jit)
		at += (size_t)snprintf(buf + at, len - at, "%lld ms slower%s", lat, jit ? " ±" : "");
	if (jit && at < len)
		at += (size_t)snprintf(buf + at, len - at, "%lld ms", jit);
	if (rate > 0 && at < len)
		snprintf(buf + at, len - at, "%s%.0f%% errors", at ? ", " : "", rate * 100);
	if (!buf[0])
		snprintf(buf, len, "fault set");
}

static void tell_faults(narrator *n, json_t *faults, int quiet, says *s)
{
	char now[MAX_FAULTS][96];
	int nnow = 0;
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(faults, "faults"), i, f) {
		char text[64], key[96];
		fault_text(f, text, sizeof(text));
		snprintf(key, sizeof(key), "%s:%s", jstr(f, "target"), text);
		int dup = 0;
		for (int k = 0; k < nnow; k++)
			dup |= strcmp(now[k], key) == 0;
		if (!dup && nnow < MAX_FAULTS)
			snprintf(now[nnow++], sizeof(now[0]), "%s", key);
	}
	for (int k = 0; k < nnow && !quiet; k++) {
		int was = 0;
		for (int j = 0; j < n->nfaults; j++)
			was |= strcmp(n->faults[j], now[k]) == 0;
		if (!was) {
			char *colon = strchr(now[k], ':');
			say(s, "%.*s %s", (int)(colon - now[k]), now[k], colon + 1);
		}
	}
	for (int j = 0; j < n->nfaults && !quiet; j++) {
		int still = 0, target_still = 0;
		char *colon = strchr(n->faults[j], ':');
		size_t tl = (size_t)(colon - n->faults[j]);
		for (int k = 0; k < nnow; k++) {
			still |= strcmp(n->faults[j], now[k]) == 0;
			target_still |= strncmp(now[k], n->faults[j], tl + 1) == 0;
		}
		if (!still && !target_still)
			say(s, "%.*s %s", (int)tl, n->faults[j],
			    strcmp(colon + 1, "down") == 0 ? "back up" : "fault cleared");
	}
	memcpy(n->faults, now, sizeof(now[0]) * (size_t)nnow);
	n->nfaults = nnow;
}

static void tell_instances(narrator *n, json_t *doc, int quiet, says *s)
{
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in) {
		const char *id = jstr(in, "id");
		long long pid = json_integer_value(json_object_get(in, "pid"));
		int restarts = (int)json_integer_value(json_object_get(in, "restarts"));
		instance *x = NULL;
		for (int k = 0; k < n->ninsts && !x; k++)
			if (strcmp(n->insts[k].id, id) == 0)
				x = &n->insts[k];
		if (!x) {
			if (n->ninsts == MAX_INSTANCES)
				continue;
			x = &n->insts[n->ninsts++];
			snprintf(x->id, sizeof(x->id), "%s", id);
			x->pid = pid;
			x->restarts = restarts;
			continue;
		}
		if (!quiet && (x->restarts != restarts || (x->pid != pid && pid > 0)))
			say(s, "%s restarted by the supervisor (pid %lld)", id, pid);
		else if (!quiet && pid <= 0 && x->pid > 0)
			say(s, "%s down", id);
		x->pid = pid;
		x->restarts = restarts;
	}
}

static long long status_count(json_t *orders, const char *status)
{
	return (long long)json_integer_value(json_object_get(json_object_get(orders, "by_status"), status));
}

static void tell_orders(narrator *n, json_t *orders, int64_t t_us, int quiet, says *s)
{
	long long awaiting = status_count(orders, "AWAITING_PAYMENT");
	long long confirmed = status_count(orders, "CONFIRMED");
	long long cancelled = status_count(orders, "CANCELLED");
	long long placed = (long long)json_integer_value(json_object_get(orders, "orders"));
	if (!quiet) {
		long long was = n->awaiting_told, step = was / 4 > 5 ? was / 4 : 5;
		if (awaiting > 0 && (was == 0 || awaiting >= was + step || awaiting <= was - step)) {
			say(s, "%lld order%s AWAITING_PAYMENT", awaiting, awaiting == 1 ? "" : "s");
			n->awaiting_told = awaiting;
		} else if (awaiting == 0 && was > 0) {
			say(s, "no order AWAITING_PAYMENT any more (%lld CONFIRMED)", confirmed);
			n->awaiting_told = 0;
		}
		if (placed != n->placed_told && t_us - n->status_told_us >= STATUS_EVERY_US &&
		    t_us >= 0) {
			say(s, "orders: %lld placed, %lld CONFIRMED, %lld CANCELLED, %lld in flight",
			    placed - n->placed, confirmed - n->confirmed, cancelled - n->cancelled,
			    placed - confirmed - cancelled);
			n->status_told_us = t_us;
			n->placed_told = placed;
		}
	} else {
		/* The baseline: what was there before the demo's orders. */
		n->placed = placed;
		n->confirmed = confirmed;
		n->cancelled = cancelled;
		n->placed_told = placed;
		n->awaiting_told = awaiting;
	}
	n->awaiting = awaiting;
}

static void tell_stock(narrator *n, json_t *stock, int quiet, says *s)
{
	if (!json_is_object(stock))
		return;
	long long avail = (long long)json_integer_value(json_object_get(stock, "available"));
	long long on_hand = (long long)json_integer_value(json_object_get(stock, "on_hand"));
	if (!quiet && avail != n->available) {
		if (avail == 0 && on_hand == 0)
			say(s, "%s sold out", jstr(stock, "sku"));
		else if (avail == 0)
			say(s, "%s: none available (%lld on hand, all reserved)", jstr(stock, "sku"),
			    on_hand);
		else
			say(s, "%s: %lld available of %lld on hand", jstr(stock, "sku"), avail,
			    on_hand);
	}
	n->available = avail;
}

size_t narrator_tell(narrator *n, const narrator_look *look, int64_t t_us, char *line,
		     size_t len)
{
	says s = { line, len, 0 };
	line[0] = '\0';
	int quiet = !n->looked;
	n->looked = 1;
	tell_schedule(n, t_us, &s);
	if (look->faults)
		tell_faults(n, look->faults, quiet, &s);
	if (look->breakers)
		tell_breakers(n, look->breakers, quiet, &s);
	if (look->instances)
		tell_instances(n, look->instances, quiet, &s);
	if (look->stock)
		tell_stock(n, look->stock, quiet, &s);
	if (look->orders)
		tell_orders(n, look->orders, t_us, quiet, &s);
	return s.at;
}

/* ---- looking -------------------------------------------------------------------- */

static json_t *get(narrator *n, const char *path, int admin)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", n->url, path);
	msg_resp r;
	msg_resp_init(&r);
	json_t *v = NULL;
	if (http_client_simple("GET", url, NULL, admin ? n->token : NULL, &r, 2000) == 0 &&
	    r.status == 200 && r.body)
		v = json_loadb(r.body, r.body_len, 0, NULL);
	msg_resp_clear(&r);
	return v;
}

static void look_once(narrator *n, int64_t t_us)
{
	narrator_look lk = { 0 };
	lk.breakers = get(n, "/admin/breakers", 1);
	lk.faults = get(n, "/admin/faults", 1);
	lk.orders = get(n, "/admin/orders/summary", 1);
	if (n->o.s && n->o.s->hot_sku[0]) {
		char path[128];
		snprintf(path, sizeof(path), "/v1/inventory/%s", n->o.s->hot_sku);
		lk.stock = get(n, path, 0);
	}
	if (n->o.state_dir) {
		char p[1100];
		state_path(n->o.state_dir, "instances.json", p, sizeof(p));
		lk.instances = json_load_file(p, 0, NULL);
	}
	char line[1024];
	if (narrator_tell(n, &lk, t_us, line, sizeof(line)) > 0 && t_us >= 0) {
		char t[32];
		snprintf(t, sizeof(t), "t=%llds", (long long)(t_us / 1000000));
		fprintf(n->o.out, "  %-6s %s\n", t, line);
		fflush(n->o.out);
	}
	json_decref(lk.breakers);
	json_decref(lk.faults);
	json_decref(lk.orders);
	json_decref(lk.stock);
	json_decref(lk.instances);
}

static void *run(void *arg)
{
	narrator *n = arg;
	pthread_mutex_lock(&n->mu);
	while (!n->stop) {
		int64_t t0 = n->t0;
		pthread_mutex_unlock(&n->mu);
		int64_t now = clock_mono_us();
		look_once(n, t0 ? now - t0 : -1);
		pthread_mutex_lock(&n->mu);
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = (int64_t)ts.tv_nsec + n->o.period_us * 1000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		while (!n->stop && pthread_cond_timedwait(&n->cv, &n->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

int narrator_start(narrator *n)
{
	if (n->running)
		return 0;
	n->stop = 0;
	if (pthread_create(&n->th, NULL, run, n) != 0)
		return ERR_NOMEM;
	n->running = 1;
	return 0;
}

void narrator_set_start(narrator *n, int64_t t0_mono_us)
{
	pthread_mutex_lock(&n->mu);
	n->t0 = t0_mono_us;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

void narrator_stop(narrator *n)
{
	if (!n->running)
		return;
	pthread_mutex_lock(&n->mu);
	n->stop = 1;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->th, NULL);
	n->running = 0;
	int64_t t0 = n->t0;
	if (t0)
		look_once(n, clock_mono_us() - t0);
}
