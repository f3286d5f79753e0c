/* breaker: circuit breaker state machine over a count-based window. */
#include "resil/breaker.h"
#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_FAILED 1u
#define OUT_SLOW 2u

/* The last outcomes, oldest at start. cap is the window in use (the sliding
 * window in CLOSED, the probe count in HALF_OPEN); min is how many it needs
 * before rates mean anything. */
typedef struct window {
	unsigned char *ring; /* room for max(window, half-open) outcomes */
	int cap;
	int min;
	int start;
	int n;
	int failed;
	int slow;
} window;

struct breaker {
	pthread_mutex_t mu;
	breaker_config cfg;
	char *from;
	char *to;
	logger *lg;
	int state;
	window w;
	int64_t opened_at;   /* OPEN: when the wait began */
	int half_admitted;   /* HALF_OPEN: probes permitted (minus releases) */
	int64_t not_permitted;
	int64_t transitions;
	breaker_transition_fn on_transition;
	void *ud;
};

static const char *const state_names[BREAKER_NSTATES] = {
	[BREAKER_CLOSED] = "CLOSED",
	[BREAKER_OPEN] = "OPEN",
	[BREAKER_HALF_OPEN] = "HALF_OPEN",
	[BREAKER_FORCED_OPEN] = "FORCED_OPEN",
	[BREAKER_DISABLED] = "DISABLED",
};

/* legal[from] is a bit set of the states reachable from it. */
#define BIT(s) (1u << (s))
static const unsigned legal[BREAKER_NSTATES] = {
	[BREAKER_CLOSED] = BIT(BREAKER_OPEN) | BIT(BREAKER_FORCED_OPEN) | BIT(BREAKER_DISABLED),
	[BREAKER_OPEN] = BIT(BREAKER_HALF_OPEN) | BIT(BREAKER_CLOSED) | BIT(BREAKER_FORCED_OPEN) |
			 BIT(BREAKER_DISABLED),
	[BREAKER_HALF_OPEN] = BIT(BREAKER_OPEN) | BIT(BREAKER_CLOSED) | BIT(BREAKER_FORCED_OPEN) |
			      BIT(BREAKER_DISABLED),
	[BREAKER_FORCED_OPEN] = BIT(BREAKER_CLOSED) | BIT(BREAKER_DISABLED),
	[BREAKER_DISABLED] = BIT(BREAKER_CLOSED) | BIT(BREAKER_FORCED_OPEN),
};

const char *breaker_state_name(int state)
{
	if (state < 0 || state >= BREAKER_NSTATES)
		return "UNKNOWN";
	return state_names[state];
}

void breaker_config_default(breaker_config *c)
{
	c->sliding_window_size = 20;
	c->minimum_calls = 10;
	c->failure_rate_threshold = 50.0;
	c->slow_call_rate_threshold = 100.0;
	c->slow_call_duration_us = 2000000;
	c->wait_in_open_us = 5000000;
	c->permitted_calls_in_half_open = 3;
}

int breaker_config_check(const breaker_config *c)
{
	if (!c)
		return ERR_INVALID;
	if (c->sliding_window_size < 1 || c->sliding_window_size > BREAKER_MAX_WINDOW)
		return ERR_INVALID;
	if (c->permitted_calls_in_half_open < 1 ||
	    c->permitted_calls_in_half_open > BREAKER_MAX_WINDOW)
		return ERR_INVALID;
	if (c->minimum_calls < 1)
		return ERR_INVALID;
	/* Written so that NaN fails too. */
	if (!(c->failure_rate_threshold > 0.0 && c->failure_rate_threshold <= 100.0))
		return ERR_INVALID;
	if (!(c->slow_call_rate_threshold > 0.0 && c->slow_call_rate_threshold <= 100.0))
		return ERR_INVALID;
	if (c->slow_call_duration_us < 0 || c->wait_in_open_us < 0)
		return ERR_INVALID;
	return 0;
}

static void window_start(window *w, int cap, int min)
{
	w->cap = cap;
	w->min = min < cap ? min : cap;
	w->start = 0;
	w->n = 0;
	w->failed = 0;
	w->slow = 0;
}

static void window_add(window *w, unsigned out)
{
	if (w->n == w->cap) {
		unsigned old = w->ring[w->start];
		w->failed -= (old & OUT_FAILED) != 0;
		w->slow -= (old & OUT_SLOW) != 0;
		w->ring[w->start] = (unsigned char)out;
		w->start = (w->start + 1) % w->cap;
	} else {
		w->ring[(w->start + w->n) % w->cap] = (unsigned char)out;
		w->n++;
	}
	w->failed += (out & OUT_FAILED) != 0;
	w->slow += (out & OUT_SLOW) != 0;
}

/* Whether the rates can be computed yet. */
static int window_ready(const window *w) { return w->n > 0 && w->n >= w->min; }

/* Compared as counts so that exactly-at-threshold is exact: failed/n*100 >=
 * t  <=>  failed*100 >= t*n. */
static int window_over(const window *w, const breaker_config *c, char *why, size_t len)
{
	if (!window_ready(w))
		return 0;
	if (w->failed * 100.0 >= c->failure_rate_threshold * w->n) {
		snprintf(why, len, "failure rate %d/%d >= %g%%", w->failed, w->n,
			 c->failure_rate_threshold);
		return 1;
	}
	if (w->slow * 100.0 >= c->slow_call_rate_threshold * w->n) {
		snprintf(why, len, "slow call rate %d/%d >= %g%%", w->slow, w->n,
			 c->slow_call_rate_threshold);
		return 1;
	}
	return 0;
}

static int set_state_locked(breaker *b, int64_t now_us, int to, const char *why)
{
	if (to < 0 || to >= BREAKER_NSTATES)
		return ERR_INVALID;
	int from = b->state;
	if (!(legal[from] & BIT(to))) {
		log_warn(b->lg, "breaker %s/%s: illegal transition %s -> %s refused", b->from, b->to,
			 state_names[from], state_names[to]);
		return ERR_STATE;
	}
	switch (to) {
	case BREAKER_CLOSED:
		window_start(&b->w, b->cfg.sliding_window_size, b->cfg.minimum_calls);
		break;
	case BREAKER_OPEN:
		/* The window that tripped it stays, for operators to see. */
		b->opened_at = now_us;
		break;
	case BREAKER_HALF_OPEN:
		window_start(&b->w, b->cfg.permitted_calls_in_half_open,
			     b->cfg.permitted_calls_in_half_open);
		b->half_admitted = 0;
		break;
	default: /* FORCED_OPEN, DISABLED record nothing */
		window_start(&b->w, b->cfg.sliding_window_size, b->cfg.minimum_calls);
		break;
	}
	b->state = to;
	b->transitions++;
	log_info(b->lg, "breaker %s/%s: %s -> %s (%s)", b->from, b->to, state_names[from],
		 state_names[to], why);
	if (b->on_transition)
		b->on_transition(b->ud, b, from, to);
	return 0;
}

breaker *breaker_new(const char *name_from, const char *name_to, const breaker_config *cfg,
		     logger *lg)
{
	breaker_config def;
	if (!cfg) {
		breaker_config_default(&def);
		cfg = &def;
	}
	if (!name_from || !name_to || breaker_config_check(cfg) != 0)
		return NULL;
	breaker *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	int room = cfg->sliding_window_size > cfg->permitted_calls_in_half_open
			   ? cfg->sliding_window_size
			   : cfg->permitted_calls_in_half_open;
	b->w.ring = calloc((size_t)room, 1);
	b->from = strdup(name_from);
	b->to = strdup(name_to);
	if (!b->w.ring || !b->from || !b->to) {
		free(b->w.ring);
		free(b->from);
		free(b->to);
		free(b);
		return NULL;
	}
	pthread_mutex_init(&b->mu, NULL);
	b->cfg = *cfg;
	b->lg = lg;
	b->state = BREAKER_CLOSED;
	window_start(&b->w, cfg->sliding_window_size, cfg->minimum_calls);
	return b;
}

void breaker_free(breaker *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b->w.ring);
	free(b->from);
	free(b->to);
	free(b);
}

void breaker_on_transition(breaker *b, breaker_transition_fn fn, void *ud)
{
	pthread_mutex_lock(&b->mu);
	b->on_transition = fn;
	b->ud = ud;
	pthread_mutex_unlock(&b->mu);
}

const char *breaker_from(const breaker *b) { return b->from; }
const char *breaker_to(const breaker *b) { return b->to; }

int breaker_acquire(breaker *b, int64_t now_us)
{
	int rc = ERR_UNAVAILABLE;
	pthread_mutex_lock(&b->mu);
	if (b->state == BREAKER_OPEN && now_us - b->opened_at >= b->cfg.wait_in_open_us)
		set_state_locked(b, now_us, BREAKER_HALF_OPEN, "wait in open elapsed");
	switch (b->state) {
	case BREAKER_CLOSED:
	case BREAKER_DISABLED:
		rc = 0;
		break;
	case BREAKER_HALF_OPEN:
		if (b->half_admitted < b->cfg.permitted_calls_in_half_open) {
			b->half_admitted++;
			rc = 0;
		}
		break;
	default:
		break;
	}
	if (rc != 0)
		b->not_permitted++;
	pthread_mutex_unlock(&b->mu);
	return rc;
}

void breaker_record(breaker *b, int64_t now_us, int64_t duration_us, int failed)
{
	unsigned out = (failed ? OUT_FAILED : 0u) |
		       (duration_us > b->cfg.slow_call_duration_us ? OUT_SLOW : 0u);
	char why[96];
	pthread_mutex_lock(&b->mu);
	switch (b->state) {
	case BREAKER_CLOSED:
		window_add(&b->w, out);
		if (window_over(&b->w, &b->cfg, why, sizeof(why)))
			set_state_locked(b, now_us, BREAKER_OPEN, why);
		break;
	case BREAKER_HALF_OPEN:
		if (b->w.n >= b->half_admitted)
			break; /* not one of this half-open's probes */
		window_add(&b->w, out);
		if (b->w.n < b->cfg.permitted_calls_in_half_open)
			break;
		if (window_over(&b->w, &b->cfg, why, sizeof(why)))
			set_state_locked(b, now_us, BREAKER_OPEN, why);
		else
			set_state_locked(b, now_us, BREAKER_CLOSED, "probes succeeded");
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&b->mu);
}

void breaker_release(breaker *b)
{
	pthread_mutex_lock(&b->mu);
	if (b->state == BREAKER_HALF_OPEN && b->half_admitted > b->w.n)
		b->half_admitted--;
	pthread_mutex_unlock(&b->mu);
}

int breaker_set_state(breaker *b, int64_t now_us, int to)
{
	pthread_mutex_lock(&b->mu);
	int rc = set_state_locked(b, now_us, to, "set");
	pthread_mutex_unlock(&b->mu);
	return rc;
}

/* Moves to `to` unless already there (then only CLOSED has work to do: an
 * empty window). */
static int operator_move(breaker *b, int64_t now_us, int to, const char *why)
{
	int rc = 0;
	pthread_mutex_lock(&b->mu);
	if (b->state != to)
		rc = set_state_locked(b, now_us, to, why);
	else if (to == BREAKER_CLOSED)
		window_start(&b->w, b->cfg.sliding_window_size, b->cfg.minimum_calls);
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int breaker_trip(breaker *b, int64_t now_us)
{
	return operator_move(b, now_us, BREAKER_FORCED_OPEN, "operator trip");
}

int breaker_reset(breaker *b, int64_t now_us)
{
	return operator_move(b, now_us, BREAKER_CLOSED, "operator reset");
}

int breaker_disable(breaker *b, int64_t now_us)
{
	return operator_move(b, now_us, BREAKER_DISABLED, "operator disable");
}

void breaker_snapshot(breaker *b, int64_t now_us, breaker_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&b->mu);
	out->state = b->state;
	out->calls = b->w.n;
	out->failed_calls = b->w.failed;
	out->slow_calls = b->w.slow;
	if (window_ready(&b->w)) {
		out->failure_rate = b->w.failed * 100.0 / b->w.n;
		out->slow_call_rate = b->w.slow * 100.0 / b->w.n;
	} else {
		out->failure_rate = -1.0;
		out->slow_call_rate = -1.0;
	}
	out->not_permitted = b->not_permitted;
	out->transitions = b->transitions;
	if (b->state == BREAKER_OPEN) {
		int64_t left = b->cfg.wait_in_open_us - (now_us - b->opened_at);
		out->open_remaining_us = left > 0 ? left : 0;
	}
	pthread_mutex_unlock(&b->mu);
}
