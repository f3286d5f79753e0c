/* schedule: timed operator actions on a thread. */
#include "sim/schedule.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define MAX_PAUSED 64

struct schedule {
	const scenario *s;
	char url[512], token[256], state[1024];
	schedule_opts o;
	pthread_t th;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	report_event done[SCN_MAX_EVENTS];
	int ndone, ncollected;
	pid_t paused[MAX_PAUSED];
	int npaused;
};

static void say(report_event *e, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(report_event *e, int ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	e->ok = ok;
}

/* An admin call; ok when the answer is 2xx. */
static void admin_call(const schedule_opts *o, const char *method, const char *path, const char *body,
		       report_event *e)
{
	char url[1024];
	snprintf(url, sizeof url, "%s%s", o->url, path);
	msg_resp r;
	msg_resp_init(&r);
	int rc = http_client_simple(method, url, body, o->token, &r, 5000);
	if (rc != 0) {
		say(e, 0, "%s %s: %s", method, path, err_name(rc));
	} else if (r.status >= 200 && r.status < 300) {
		say(e, 1, "%s %s: %d", method, path, r.status);
	} else {
		json_t *v = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
		const char *msg = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
		say(e, 0, "%s %s: %d%s%s", method, path, r.status, msg ? " " : "", msg ? msg : "");
		json_decref(v);
	}
	msg_resp_clear(&r);
}

static void fault_set(const scenario_event *ev, const schedule_opts *o, report_event *e)
{
	json_t *b = json_object();
	if (ev->latency_ms >= 0)
		json_object_set_new(b, "latency_ms", json_integer(ev->latency_ms));
	if (ev->jitter_ms >= 0)
		json_object_set_new(b, "jitter_ms", json_integer(ev->jitter_ms));
	if (ev->error_rate >= 0)
		json_object_set_new(b, "error_rate", json_real(ev->error_rate));
	if (ev->error_status > 0)
		json_object_set_new(b, "error_status", json_integer(ev->error_status));
	if (ev->outage)
		json_object_set_new(b, "outage", json_true());
	if (ev->duration_s >= 0)
		json_object_set_new(b, "duration_s", json_integer(ev->duration_s));
	char *body = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	char path[128];
	snprintf(path, sizeof path, "/admin/faults/%s", ev->target);
	admin_call(o, "PUT", path, body ? body : "{}", e);
	free(body);
}

static void broker(const scenario_event *ev, const schedule_opts *o, report_event *e)
{
	char path[128];
	snprintf(path, sizeof path, SCHEDULE_BROKER_ROUTE "%s", ev->op == SCN_BROKER_DOWN ? "down" : "up");
	admin_call(o, "POST", path, NULL, e);
	/* A platform without the route: say so plainly. */
	if (!e->ok && (strstr(e->message, ": 404") || strstr(e->message, ": 405") ||
		       strstr(e->message, ": 501")))
		say(e, 0, "not available: this platform has no control of the Kafka mock broker "
			  "(POST %s answered %s)",
		    path, strstr(e->message, ": 404") ? "404" : strstr(e->message, ": 405") ? "405" : "501");
}

/* Signals every instance of ev->target (a service or an instance id) in
 * instances.json. Returns how many; pids go into out (up to max). */
static int signal_target(const scenario_event *ev, const schedule_opts *o, int sig, pid_t *out,
			 int max, report_event *e)
{
	if (!o->state_dir || !o->state_dir[0]) {
		say(e, 0, "needs the platform's state directory (--state), not only --url");
		return -1;
	}
	char p[1100];
	snprintf(p, sizeof p, "%s/instances.json", o->state_dir);
	json_t *doc = json_load_file(p, 0, NULL);
	if (!doc) {
		say(e, 0, "cannot read %s", p);
		return -1;
	}
	int n = 0, gone = 0;
	char ids[200] = "";
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
	{
		const char *svc = json_string_value(json_object_get(in, "service"));
		const char *id = json_string_value(json_object_get(in, "id"));
		pid_t pid = (pid_t)json_integer_value(json_object_get(in, "pid"));
		if (!svc || !id || (strcmp(svc, ev->target) != 0 && strcmp(id, ev->target) != 0))
			continue;
		if (pid <= 0 || kill(pid, sig) != 0) {
			gone++;
			continue;
		}
		if (n < max && out)
			out[n] = pid;
		n++;
		size_t l = strlen(ids);
		snprintf(ids + l, sizeof ids - l, "%s%s (pid %ld)", l ? ", " : "", id, (long)pid);
	}
	json_decref(doc);
	if (n == 0)
		say(e, 0, "no running instance of '%s'%s", ev->target, gone ? " (down already)" : "");
	else
		say(e, 1, "%s %s", strsignal(sig), ids);
	return n;
}

void schedule_run_event(const scenario_event *ev, const schedule_opts *o, report_event *e)
{
	char path[160];
	switch (ev->op) {
	case SCN_FAULT_SET: fault_set(ev, o, e); break;
	case SCN_FAULT_CLEAR:
		snprintf(path, sizeof path, "/admin/faults/%s", ev->target);
		admin_call(o, "DELETE", path, NULL, e);
		break;
	case SCN_BREAKER_TRIP:
	case SCN_BREAKER_RESET:
		snprintf(path, sizeof path, "/admin/breakers/%s/%s", ev->target,
			 ev->op == SCN_BREAKER_TRIP ? "trip" : "reset");
		admin_call(o, "POST", path, NULL, e);
		break;
	case SCN_KILL: signal_target(ev, o, SIGKILL, NULL, 0, e); break;
	case SCN_RESTART: signal_target(ev, o, SIGTERM, NULL, 0, e); break;
	case SCN_RESUME: signal_target(ev, o, SIGCONT, NULL, 0, e); break;
	case SCN_PAUSE: signal_target(ev, o, SIGSTOP, NULL, 0, e); break;
	case SCN_BROKER_DOWN:
	case SCN_BROKER_UP: broker(ev, o, e); break;
	default: say(e, 0, "unknown action"); break;
	}
}

/* Waits until mono time t or stop. 1 when stopping. */
static int wait_until(schedule *sc, int64_t t)
{
	pthread_mutex_lock(&sc->mu);
	while (!sc->stop) {
		int64_t now = clock_mono_us();
		if (now >= t)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = (int64_t)ts.tv_nsec + (t - now) * 1000;
		ts.tv_sec += (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
	}
	int stop = sc->stop;
	pthread_mutex_unlock(&sc->mu);
	return stop;
}

static void *run(void *arg)
{
	schedule *sc = arg;
	const scenario *s = sc->s;
	/* In time order; lines due at once keep the file's order. */
	int order[SCN_MAX_EVENTS];
	for (int i = 0; i < s->nevents; i++) {
		int k = i;
		while (k > 0 && s->events[order[k - 1]].at_us > s->events[i].at_us) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	for (int i = 0; i < s->nevents; i++) {
		const scenario_event *ev = &s->events[order[i]];
		if (wait_until(sc, sc->o.t0_mono + ev->at_us))
			break;
		report_event e;
		memset(&e, 0, sizeof e);
		e.at_us = ev->at_us;
		snprintf(e.text, sizeof e.text, "%s", ev->text);
		if (ev->op == SCN_PAUSE) {
			pid_t pids[16];
			int n = signal_target(ev, &sc->o, SIGSTOP, pids, 16, &e);
			pthread_mutex_lock(&sc->mu);
			for (int k = 0; k < n && k < 16 && sc->npaused < MAX_PAUSED; k++)
				sc->paused[sc->npaused++] = pids[k];
			pthread_mutex_unlock(&sc->mu);
		} else {
			schedule_run_event(ev, &sc->o, &e);
		}
		e.done_us = clock_mono_us() - sc->o.t0_mono;
		pthread_mutex_lock(&sc->mu);
		sc->done[sc->ndone++] = e;
		pthread_mutex_unlock(&sc->mu);
	}
	return NULL;
}

schedule *schedule_start(const scenario *s, const schedule_opts *o)
{
	schedule *sc = calloc(1, sizeof *sc);
	if (!sc)
		return NULL;
	sc->s = s;
	snprintf(sc->url, sizeof sc->url, "%s", o->url ? o->url : "");
	snprintf(sc->token, sizeof sc->token, "%s", o->token ? o->token : "");
	snprintf(sc->state, sizeof sc->state, "%s", o->state_dir ? o->state_dir : "");
	sc->o = *o;
	sc->o.url = sc->url;
	sc->o.token = sc->token;
	sc->o.state_dir = sc->state[0] ? sc->state : NULL;
	pthread_mutex_init(&sc->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (s->nevents > 0) {
		if (pthread_create(&sc->th, NULL, run, sc) != 0) {
			schedule_stop(sc, NULL);
			return NULL;
		}
		sc->started = 1;
	}
	return sc;
}

void schedule_collect(schedule *sc, report *r)
{
	if (!sc || !r)
		return;
	pthread_mutex_lock(&sc->mu);
	while (sc->ncollected < sc->ndone)
		report_event_done(r, &sc->done[sc->ncollected++]);
	pthread_mutex_unlock(&sc->mu);
}

void schedule_stop(schedule *sc, report *r)
{
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->stop = 1;
	pthread_cond_broadcast(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
	if (sc->started)
		pthread_join(sc->th, NULL);
	/* A hung service must not outlive the run that hung it. */
	for (int i = 0; i < sc->npaused; i++)
		kill(sc->paused[i], SIGCONT);
	schedule_collect(sc, r);
	pthread_mutex_destroy(&sc->mu);
	pthread_cond_destroy(&sc->cv);
	free(sc);
}
