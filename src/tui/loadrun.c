/* loadrun: see loadrun.h. */
#include "tui/loadrun.h"
#include "core/err.h"
#include "sim/loadgen.h"
#include "sim/report.h"
#include "sim/scenario.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loadrun {
	pthread_mutex_t mu;
	loadrun_status st;
	volatile sig_atomic_t interrupted;
	pthread_t th;
	int joinable;
	/* the run's inputs, owned while it goes on */
	scenario *s;
	char url[512], token[256], state_dir[1024];
	int has_state;
};

loadrun *loadrun_new(void)
{
	loadrun *l = calloc(1, sizeof(*l));
	if (l)
		pthread_mutex_init(&l->mu, NULL);
	return l;
}

static void join(loadrun *l)
{
	if (l->joinable) {
		pthread_join(l->th, NULL);
		l->joinable = 0;
	}
	scenario_free(l->s);
	l->s = NULL;
}

void loadrun_free(loadrun *l)
{
	if (!l)
		return;
	loadrun_stop(l);
	join(l);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int loadrun_list(const char *dir, char names[][64], int max)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < max) {
		size_t l = strlen(de->d_name);
		if (l > 4 && l - 4 < 64 && strcmp(de->d_name + l - 4, ".scn") == 0)
			snprintf(names[n++], 64, "%.*s", (int)(l - 4), de->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, 64, by_name);
	return n;
}

static void on_progress(void *ud, const loadgen_progress *pr)
{
	loadrun *l = ud;
	pthread_mutex_lock(&l->mu);
	loadrun_status *st = &l->st;
	if (st->state == LOADRUN_STARTING)
		st->state = LOADRUN_RUNNING;
	st->elapsed_s = pr->elapsed_s;
	st->planned_s = pr->planned_s;
	st->requests = pr->requests;
	st->errors = pr->errors;
	st->dropped = pr->dropped;
	st->in_flight = pr->in_flight;
	st->p99_all_ms = pr->p99_all_ms;
	if (st->nhist == LOADRUN_HIST) {
		memmove(st->rps, st->rps + 1, (LOADRUN_HIST - 1) * sizeof(double));
		memmove(st->p99_ms, st->p99_ms + 1, (LOADRUN_HIST - 1) * sizeof(double));
		st->nhist--;
	}
	st->rps[st->nhist] = pr->rps;
	st->p99_ms[st->nhist] = pr->p99_ms;
	st->nhist++;
	pthread_mutex_unlock(&l->mu);
}

static void *run_thread(void *arg)
{
	loadrun *l = arg;
	char err[512] = "", result[256] = "";
	int failed = 1;
	report *r = report_new(l->s);
	if (!r) {
		snprintf(result, sizeof(result), "out of memory");
	} else {
		loadgen_opts o = {
			.url = l->url,
			.admin_token = l->token,
			.state_dir = l->has_state ? l->state_dir : NULL,
			.interrupted = &l->interrupted,
			.on_progress = on_progress,
			.progress_ud = l,
		};
		int rc = loadgen_run(l->s, &o, r, err, sizeof(err));
		if (rc != 0) {
			snprintf(result, sizeof(result), "%s", err);
		} else {
			int passed = 0;
			for (int i = 0; i < r->nthresholds; i++)
				passed += r->passed[i];
			uint64_t count = 0, errors = 0;
			report_totals(r, &count, &errors);
			snprintf(result, sizeof(result),
				 "%s%llu requests, %.2f%% errors; orders %llu, confirmed %llu, "
				 "cancelled %llu; thresholds %d/%d passed",
				 r->interrupted ? "stopped: " : "", (unsigned long long)count,
				 count ? 100.0 * errors / count : 0.0,
				 (unsigned long long)r->orders.created,
				 (unsigned long long)r->orders.confirmed,
				 (unsigned long long)r->orders.cancelled, passed, r->nthresholds);
			failed = 0;
		}
		report_free(r);
	}
	pthread_mutex_lock(&l->mu);
	l->st.state = failed ? LOADRUN_FAILED : LOADRUN_DONE;
	snprintf(l->st.result, sizeof(l->st.result), "%s", result);
	pthread_mutex_unlock(&l->mu);
	return NULL; /* the thread's curl handles go with it */
}

int loadrun_start(loadrun *l, const char *path, const char *url, const char *token,
		  const char *state_dir, char *err, size_t errlen)
{
	if (loadrun_active(l)) {
		snprintf(err, errlen, "a run is under way");
		return ERR_BUSY;
	}
	join(l); /* the previous run, finished */
	scenario *s = scenario_load(path, err, errlen);
	if (!s)
		return ERR_INVALID;
	l->s = s;
	snprintf(l->url, sizeof(l->url), "%s", url);
	snprintf(l->token, sizeof(l->token), "%s", token ? token : "");
	l->has_state = state_dir && *state_dir;
	snprintf(l->state_dir, sizeof(l->state_dir), "%s", l->has_state ? state_dir : "");
	l->interrupted = 0;
	pthread_mutex_lock(&l->mu);
	memset(&l->st, 0, sizeof(l->st));
	l->st.state = LOADRUN_STARTING;
	snprintf(l->st.name, sizeof(l->st.name), "%s", s->name);
	l->st.planned_s = scenario_duration_us(s) / 1e6;
	pthread_mutex_unlock(&l->mu);
	/* Signals are for the caller's thread: the run's threads take none. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&l->th, NULL, run_thread, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_mutex_lock(&l->mu);
		l->st.state = LOADRUN_FAILED;
		snprintf(l->st.result, sizeof(l->st.result), "cannot start a thread");
		pthread_mutex_unlock(&l->mu);
		scenario_free(l->s);
		l->s = NULL;
		snprintf(err, errlen, "cannot start a thread");
		return ERR_NOMEM;
	}
	l->joinable = 1;
	return 0;
}

void loadrun_stop(loadrun *l)
{
	pthread_mutex_lock(&l->mu);
	if (l->st.state == LOADRUN_STARTING || l->st.state == LOADRUN_RUNNING) {
		l->interrupted = 1;
		l->st.state = LOADRUN_STOPPING;
	}
	pthread_mutex_unlock(&l->mu);
}

int loadrun_active(loadrun *l)
{
	pthread_mutex_lock(&l->mu);
	loadrun_state s = l->st.state;
	pthread_mutex_unlock(&l->mu);
	return s == LOADRUN_STARTING || s == LOADRUN_RUNNING || s == LOADRUN_STOPPING;
}

void loadrun_status_get(loadrun *l, loadrun_status *out)
{
	pthread_mutex_lock(&l->mu);
	*out = l->st;
	pthread_mutex_unlock(&l->mu);
}

void loadrun_sparkline(const double *v, int n, int width, int utf8, char *buf, size_t len)
{
	static const char *const blocks[] = { "\u2581", "\u2582", "\u2583", "\u2584",
					      "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ramp[] = " .:-=+*#";
	size_t k = 0;
	if (len == 0)
		return;
	buf[0] = '\0';
	if (width <= 0)
		return;
	int from = n > width ? n - width : 0;
	double max = 0;
	for (int i = from; i < n; i++)
		if (isfinite(v[i]) && v[i] > max)
			max = v[i];
	for (int cell = 0; cell < width; cell++) {
		int i = from + cell - (width - (n - from));
		const char *glyph = " ";
		char one[2] = { 0, 0 };
		if (i >= from && i < n) {
			double x = isfinite(v[i]) && v[i] > 0 && max > 0 ? v[i] / max : 0;
			int level = (int)(x * 7.0 + 0.5); /* 0..7 */
			if (level > 7)
				level = 7;
			if (utf8) {
				glyph = blocks[level];
			} else {
				one[0] = ramp[x > 0 && level == 0 ? 1 : level];
				glyph = one;
			}
		}
		size_t gl = strlen(glyph);
		if (k + gl + 1 > len)
			break;
		memcpy(buf + k, glyph, gl);
		k += gl;
	}
	buf[k] = '\0';
}
