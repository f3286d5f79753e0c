/* scenario: the scenario file format, read line by line. */
#include "sim/scenario.h"
#include "core/err.h"
#include "core/text.h"
#include "sim/units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCN_FILE_MAX (1024 * 1024)
#define LINE_MAX_LEN 1024

static const char *const action_names[SCN_NACTIONS + 1] = {
	"browse", "search",  "view",      "add_to_cart", "cart",    "checkout",
	"cancel", "orders",  "health",    "browse_v2",   "view_v2", NULL,
};

static const char *const op_names[SCN_NOPS] = {
	"fault set", "fault clear", "breaker trip", "breaker reset", "kill",
	"restart",   "pause",       "resume",       "broker down",   "broker up",
};

const char *scenario_action_name(scenario_action a)
{
	return (int)a >= 0 && (int)a < SCN_NACTIONS ? action_names[a] : "?";
}

const char *const *scenario_action_names(void) { return action_names; }

int scenario_action_of(const char *name)
{
	for (int i = 0; i < SCN_NACTIONS; i++)
		if (strcmp(action_names[i], name) == 0)
			return i;
	return -1;
}

int scenario_action_needs_user(scenario_action a) { return a != SCN_HEALTH; }

const char *scenario_op_name(scenario_op op)
{
	return (int)op >= 0 && (int)op < SCN_NOPS ? op_names[op] : "?";
}

/* ---- the parser's state ------------------------------------------------------ */

typedef enum section {
	SEC_NONE,
	SEC_SCENARIO,
	SEC_LOAD,
	SEC_JOURNEY,
	SEC_CHECKOUT,
	SEC_CATALOG,
	SEC_SETUP,
	SEC_SCHEDULE,
	SEC_THRESHOLDS
} section;

typedef struct parser {
	scenario *s;
	const char *file;
	int line;
	section sec;
	scenario_journey *j;
	char *err;
	size_t errlen;
	/* lines where [load] keys were given (0: not given) */
	int rate_line, duration_line, stage_line;
	double rate;
	int64_t duration_us;
	char seen[64][24]; /* keys given in the current section */
	int nseen;
	int journey_line[SCN_MAX_JOURNEYS];
} parser;

static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(parser *p, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (p->line > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->file, msg);
	return ERR_INVALID;
}

static int valid_token(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n >= max)
		return 0;
	for (const char *c = s; *c; c++)
		if (!(isalnum((unsigned char)*c) || *c == '_'))
			return 0;
	return 1;
}

/* A sku as the catalog accepts them: printable, no blanks or slashes. */
static int valid_sku(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= 64 || s[0] == '_')
		return 0;
	for (const char *c = s; *c; c++)
		if (!isgraph((unsigned char)*c) || *c == '/' || *c == '?' || *c == '#' || *c == '%')
			return 0;
	return 1;
}

static int int_in(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s)
		return ERR_INVALID;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || !isdigit((unsigned char)s[s[0] == '-']) || v < min || v > max)
		return ERR_INVALID;
	*out = v;
	return 0;
}

/* A key given twice in one section is a mistake, not an override. */
static int once(parser *p, const char *key)
{
	for (int i = 0; i < p->nseen; i++)
		if (strcmp(p->seen[i], key) == 0)
			return perr(p, "'%s' given twice in this section", key);
	if (p->nseen < 64)
		snprintf(p->seen[p->nseen++], sizeof p->seen[0], "%s", key);
	return 0;
}

/* Splits s in place at blanks and commas; at most max words. The count, or
 * -1 when there are more. */
static int words(char *s, char **w, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(s, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		if (n == max)
			return -1;
		w[n++] = t;
	}
	return n;
}

static int duration(parser *p, const char *key, const char *v, int64_t min, int64_t *out)
{
	int64_t us;
	if (units_duration_us(v, &us) || us < min)
		return perr(p, "expected a duration such as 250ms, 10s or 2m for '%s'%s, got '%s'", key,
			    min > 0 ? " (more than 0)" : "", v);
	*out = us;
	return 0;
}

/* "DUR" or "DUR..DUR". */
static int duration_range(parser *p, const char *key, char *v, int64_t *lo, int64_t *hi)
{
	char *dots = strstr(v, "..");
	if (!dots) {
		if (duration(p, key, v, 0, lo))
			return ERR_INVALID;
		*hi = *lo;
		return 0;
	}
	*dots = '\0';
	if (duration(p, key, text_trim(v), 0, lo) || duration(p, key, text_trim(dots + 2), 0, hi))
		return ERR_INVALID;
	if (*hi < *lo)
		return perr(p, "expected MIN..MAX with MIN <= MAX for '%s'", key);
	return 0;
}

/* ---- sections ---------------------------------------------------------------- */

static int key_scenario(parser *p, const char *k, char *v)
{
	scenario *s = p->s;
	if (strcmp(k, "name") == 0) {
		if (!text_is_name(v, sizeof s->name))
			return perr(p, "expected a name of lower-case letters, digits, '-' and '_' for 'name', got '%s'",
				    v);
		snprintf(s->name, sizeof s->name, "%s", v);
	} else if (strcmp(k, "description") == 0) {
		if (strlen(v) >= sizeof s->description)
			return perr(p, "description too long (at most %zu characters)",
				    sizeof s->description - 1);
		snprintf(s->description, sizeof s->description, "%s", v);
	} else {
		return perr(p, "unknown key '%s' in [scenario] (expected name or description)", k);
	}
	return 0;
}

static int stage_line(parser *p, char *v)
{
	scenario *s = p->s;
	if (s->nstages == SCN_MAX_STAGES)
		return perr(p, "too many stages (at most %d)", SCN_MAX_STAGES);
	char *w[5];
	int n = words(v, w, 5);
	scenario_stage *st = &s->stages[s->nstages];
	double a, b;
	int arrow = n == 4 && strcmp(w[2], "->") == 0;
	if (!(n == 2 || arrow))
		return perr(p, "expected 'stage = DURATION RATE' or 'stage = DURATION FROM -> TO'");
	if (duration(p, "stage", w[0], 1, &st->dur_us))
		return ERR_INVALID;
	if (units_number(w[1], &a) || (arrow && units_number(w[3], &b)))
		return perr(p, "expected arrivals per second (a number >= 0) in the stage, got '%s'",
			    arrow && units_number(w[1], &a) == 0 ? w[3] : w[1]);
	st->from = a;
	st->to = arrow ? b : a;
	if (st->from > 1e6 || st->to > 1e6)
		return perr(p, "a stage's rate is at most 1000000 per second");
	s->nstages++;
	if (!p->stage_line)
		p->stage_line = p->line;
	return 0;
}

static int key_load(parser *p, const char *k, char *v)
{
	scenario *s = p->s;
	int64_t n;
	if (strcmp(k, "stage") == 0)
		return stage_line(p, v);
	if (once(p, k))
		return ERR_INVALID;
	if (strcmp(k, "rate") == 0) {
		if (strcmp(v, "max") == 0) {
			s->closed = 1;
		} else if (units_number(v, &p->rate) || p->rate > 1e6) {
			return perr(p, "expected arrivals per second (a number from 0 to 1000000) or 'max' for 'rate', got '%s'",
				    v);
		}
		p->rate_line = p->line;
	} else if (strcmp(k, "duration") == 0) {
		if (duration(p, k, v, 1, &p->duration_us))
			return ERR_INVALID;
		p->duration_line = p->line;
	} else if (strcmp(k, "users") == 0) {
		if (int_in(v, 0, SCN_MAX_USERS, &n))
			return perr(p, "expected a whole number from 0 to %d for 'users', got '%s'",
				    SCN_MAX_USERS, v);
		s->users = (int)n;
	} else if (strcmp(k, "workers") == 0) {
		if (int_in(v, 1, SCN_MAX_WORKERS, &n))
			return perr(p, "expected a whole number from 1 to %d for 'workers', got '%s'",
				    SCN_MAX_WORKERS, v);
		s->workers = (int)n;
	} else if (strcmp(k, "threads") == 0) {
		if (int_in(v, 1, SCN_MAX_THREADS, &n))
			return perr(p, "expected a whole number from 1 to %d for 'threads', got '%s'",
				    SCN_MAX_THREADS, v);
		s->threads = (int)n;
	} else if (strcmp(k, "seed") == 0) {
		if (int_in(v, 0, INT64_MAX, &n))
			return perr(p, "expected a whole number >= 0 for 'seed', got '%s'", v);
		s->seed = (uint64_t)n;
	} else if (strcmp(k, "slack") == 0) {
		return duration(p, k, v, 0, &s->slack_us);
	} else if (strcmp(k, "timeout") == 0) {
		return duration(p, k, v, 1000, &s->timeout_us);
	} else if (strcmp(k, "settle") == 0) {
		return duration(p, k, v, 0, &s->settle_us);
	} else if (strcmp(k, "grace") == 0) {
		return duration(p, k, v, 0, &s->grace_us);
	} else if (strcmp(k, "arrival") == 0) {
		if (strcmp(v, "uniform") == 0)
			s->arrival = SCN_UNIFORM;
		else if (strcmp(v, "poisson") == 0)
			s->arrival = SCN_POISSON;
		else
			return perr(p, "expected 'uniform' or 'poisson' for 'arrival', got '%s'", v);
	} else {
		return perr(p, "unknown key '%s' in [load] (expected rate, duration, stage, users, workers, "
			       "threads, seed, slack, timeout, settle, grace or arrival)",
			    k);
	}
	return 0;
}

static int key_journey(parser *p, const char *k, char *v)
{
	scenario_journey *j = p->j;
	if (once(p, k))
		return ERR_INVALID;
	if (strcmp(k, "weight") == 0) {
		if (units_number(v, &j->weight) || j->weight <= 0 || j->weight > 1e6)
			return perr(p, "expected a number more than 0 for 'weight', got '%s'", v);
	} else if (strcmp(k, "steps") == 0) {
		char *w[SCN_MAX_STEPS + 1];
		int n = words(v, w, SCN_MAX_STEPS);
		if (n < 0)
			return perr(p, "too many steps (at most %d)", SCN_MAX_STEPS);
		if (n == 0)
			return perr(p, "expected at least one step (browse, search, view, add_to_cart, cart, "
				       "checkout, cancel, orders, health, browse_v2, view_v2)");
		int checkout = 0;
		for (int i = 0; i < n; i++) {
			int a = scenario_action_of(w[i]);
			if (a < 0)
				return perr(p, "unknown step '%s' (expected browse, search, view, add_to_cart, "
					       "cart, checkout, cancel, orders, health, browse_v2 or view_v2)",
					    w[i]);
			if (a == SCN_CANCEL && !checkout)
				return perr(p, "step 'cancel' cancels the journey's order: it needs a 'checkout' "
					       "before it");
			checkout |= a == SCN_CHECKOUT;
			j->steps[i] = (scenario_action)a;
		}
		j->nsteps = n;
	} else if (strcmp(k, "think") == 0) {
		return duration_range(p, k, v, &j->think_min_us, &j->think_max_us);
	} else {
		return perr(p, "unknown key '%s' in [journey %s] (expected weight, steps or think)", k,
			    j->name);
	}
	return 0;
}

static int key_checkout(parser *p, const char *k, char *v)
{
	scenario *s = p->s;
	int64_t n;
	if (once(p, k))
		return ERR_INVALID;
	if (strcmp(k, "method") == 0) {
		if (strcmp(v, "card") != 0 && strcmp(v, "paypal") != 0)
			return perr(p, "expected 'card' or 'paypal' for 'method', got '%s'", v);
		snprintf(s->method, sizeof s->method, "%s", v);
	} else if (strcmp(k, "tokens") == 0) {
		char *w[SCN_MAX_TOKENS + 1];
		int nw = words(v, w, SCN_MAX_TOKENS);
		if (nw <= 0)
			return perr(p, "expected 'tokens = TOKEN[:WEIGHT] ...' with 1 to %d tokens",
				    SCN_MAX_TOKENS);
		for (int i = 0; i < nw; i++) {
			scenario_token *t = &s->tokens[i];
			char *colon = strchr(w[i], ':');
			t->weight = 1;
			if (colon) {
				*colon = '\0';
				if (units_number(colon + 1, &t->weight) || t->weight <= 0)
					return perr(p, "expected a weight more than 0 after '%s:', got '%s'",
						    w[i], colon + 1);
			}
			if (!valid_token(w[i], sizeof t->token))
				return perr(p, "expected a card token of letters, digits and '_' (such as tok_visa), got '%s'",
					    w[i]);
			snprintf(t->token, sizeof t->token, "%s", w[i]);
		}
		s->ntokens = nw;
	} else if (strcmp(k, "qty") == 0) {
		char *dots = strstr(v, "..");
		int64_t lo, hi;
		if (dots)
			*dots = '\0';
		if (int_in(text_trim(v), 1, 99, &lo) || (dots && int_in(text_trim(dots + 2), 1, 99, &hi)))
			return perr(p, "expected 'qty = N' or 'qty = MIN..MAX' with whole numbers from 1 to 99");
		if (!dots)
			hi = lo;
		if (hi < lo)
			return perr(p, "expected 'qty = MIN..MAX' with MIN <= MAX");
		s->qty_min = (int)lo;
		s->qty_max = (int)hi;
	} else if (strcmp(k, "duplicate") == 0) {
		if (units_ratio(v, &s->duplicate))
			return perr(p, "expected a ratio such as 5%% or 0.05 for 'duplicate', got '%s'", v);
	} else if (strcmp(k, "retries") == 0) {
		if (int_in(v, 0, 5, &n))
			return perr(p, "expected a whole number from 0 to 5 for 'retries', got '%s'", v);
		s->retries = (int)n;
	} else {
		return perr(p, "unknown key '%s' in [checkout] (expected method, tokens, qty, duplicate or retries)",
			    k);
	}
	return 0;
}

static int key_catalog(parser *p, const char *k, char *v)
{
	scenario *s = p->s;
	if (once(p, k))
		return ERR_INVALID;
	if (strcmp(k, "hot_sku") == 0) {
		if (!valid_sku(v))
			return perr(p, "expected a sku (printable, no blanks or '/') for 'hot_sku', got '%s'", v);
		snprintf(s->hot_sku, sizeof s->hot_sku, "%s", v);
	} else if (strcmp(k, "hot_share") == 0) {
		if (units_ratio(v, &s->hot_share))
			return perr(p, "expected a ratio such as 80%% or 0.8 for 'hot_share', got '%s'", v);
	} else if (strcmp(k, "queries") == 0) {
		char *w[SCN_MAX_QUERIES + 1];
		int n = words(v, w, SCN_MAX_QUERIES);
		if (n <= 0)
			return perr(p, "expected 1 to %d search words for 'queries'", SCN_MAX_QUERIES);
		for (int i = 0; i < n; i++) {
			if (strlen(w[i]) >= sizeof s->queries[0])
				return perr(p, "search word '%s' too long (at most %zu characters)", w[i],
					    sizeof s->queries[0] - 1);
			snprintf(s->queries[i], sizeof s->queries[0], "%s", w[i]);
		}
		s->nqueries = n;
	} else {
		return perr(p, "unknown key '%s' in [catalog] (expected hot_sku, hot_share or queries)", k);
	}
	return 0;
}

static int key_setup(parser *p, const char *k, char *v)
{
	scenario *s = p->s;
	if (strcmp(k, "stock") != 0)
		return perr(p, "unknown key '%s' in [setup] (expected 'stock = SKU N')", k);
	char *w[3];
	int64_t n;
	if (words(v, w, 2) != 2 || !valid_sku(w[0]) || int_in(w[1], 0, 1000000000, &n))
		return perr(p, "expected 'stock = SKU N' with N a whole number from 0 to 1000000000");
	if (s->nstock == SCN_MAX_STOCK)
		return perr(p, "too many stock lines (at most %d)", SCN_MAX_STOCK);
	snprintf(s->stock[s->nstock].sku, sizeof s->stock[0].sku, "%s", w[0]);
	s->stock[s->nstock++].on_hand = n;
	return 0;
}

/* fault set TARGET [latency=DUR] [jitter=DUR] [error_rate=R] [status=N]
 *                  [outage] [duration=DUR] */
static int fault_args(parser *p, scenario_event *e, char **w, int n)
{
	int any = 0;
	for (int i = 0; i < n; i++) {
		char *eq = strchr(w[i], '=');
		int64_t us;
		if (strcmp(w[i], "outage") == 0) {
			e->outage = 1;
			any = 1;
			continue;
		}
		if (!eq)
			return perr(p, "expected KEY=VALUE (latency, jitter, error_rate, status, duration) "
				       "or 'outage', got '%s'",
				    w[i]);
		*eq = '\0';
		const char *k = w[i], *v = eq + 1;
		if (strcmp(k, "latency") == 0 || strcmp(k, "jitter") == 0) {
			if (units_duration_us(v, &us) || us > 60000000)
				return perr(p, "expected a duration up to 60s for '%s', got '%s'", k, v);
			*(k[0] == 'l' ? &e->latency_ms : &e->jitter_ms) = (us + 999) / 1000;
			any = 1;
		} else if (strcmp(k, "error_rate") == 0) {
			if (units_ratio(v, &e->error_rate))
				return perr(p, "expected a ratio such as 10%% or 0.1 for 'error_rate', got '%s'", v);
			any = 1;
		} else if (strcmp(k, "status") == 0) {
			int64_t st;
			if (int_in(v, 400, 599, &st))
				return perr(p, "expected an HTTP status from 400 to 599 for 'status', got '%s'", v);
			e->error_status = (int)st;
		} else if (strcmp(k, "duration") == 0) {
			if (units_duration_us(v, &us) || us < 1000000)
				return perr(p, "expected a duration of at least 1s for 'duration', got '%s'", v);
			e->duration_s = (us + 999999) / 1000000;
		} else {
			return perr(p, "unknown fault setting '%s' (expected latency, jitter, error_rate, status, "
				       "duration or outage)",
				    k);
		}
	}
	if (!any)
		return perr(p, "a fault needs at least one of latency=, jitter=, error_rate= or outage");
	return 0;
}

static int schedule_line(parser *p, char *line)
{
	scenario *s = p->s;
	if (s->nevents == SCN_MAX_EVENTS)
		return perr(p, "too many schedule lines (at most %d)", SCN_MAX_EVENTS);
	scenario_event *e = &s->events[s->nevents];
	memset(e, 0, sizeof *e);
	e->latency_ms = e->jitter_ms = e->duration_s = -1;
	e->error_rate = -1;
	e->line = p->line;
	snprintf(e->text, sizeof e->text, "%s", line);
	char *w[16];
	int n = words(line, w, 16);
	if (n < 0)
		return perr(p, "too many words in a schedule line");
	if (n < 3 || strcmp(w[0], "at") != 0)
		return perr(p, "expected 'at TIME ACTION ...' (such as 'at 10s fault set stripe outage')");
	if (duration(p, "at", w[1], 0, &e->at_us))
		return ERR_INVALID;
	const char *verb = w[2];
	char **rest = w + 3;
	int nrest = n - 3;
	if (strcmp(verb, "fault") == 0 || strcmp(verb, "breaker") == 0 || strcmp(verb, "broker") == 0) {
		if (nrest < 1)
			return perr(p, "expected %s", strcmp(verb, "fault") == 0 ? "'fault set TARGET ...' or 'fault clear TARGET'"
						    : strcmp(verb, "breaker") == 0 ? "'breaker trip SERVICE' or 'breaker reset SERVICE'"
										   : "'broker down' or 'broker up'");
		char full[48];
		snprintf(full, sizeof full, "%s %s", verb, rest[0]);
		int op = -1;
		for (int i = 0; i < SCN_NOPS; i++)
			if (strcmp(op_names[i], full) == 0)
				op = i;
		if (op < 0)
			return perr(p, "unknown action '%s' (expected fault set, fault clear, breaker trip, "
				       "breaker reset, broker down or broker up)",
				    full);
		e->op = (scenario_op)op;
		rest++;
		nrest--;
	} else {
		int op = -1;
		for (int i = SCN_KILL; i <= SCN_RESUME; i++)
			if (strcmp(op_names[i], verb) == 0)
				op = i;
		if (op < 0)
			return perr(p, "unknown action '%s' (expected fault, breaker, kill, restart, pause, resume "
				       "or broker)",
				    verb);
		e->op = (scenario_op)op;
	}
	if (e->op == SCN_BROKER_DOWN || e->op == SCN_BROKER_UP) {
		if (nrest)
			return perr(p, "unexpected '%s' after '%s'", rest[0], op_names[e->op]);
	} else {
		if (nrest < 1 || !text_is_name(rest[0], sizeof e->target))
			return perr(p, "expected a target (a service such as catalog, an instance such as "
				       "catalog-1, or a provider such as stripe) after '%s'",
				    op_names[e->op]);
		snprintf(e->target, sizeof e->target, "%s", rest[0]);
		rest++;
		nrest--;
		if (e->op == SCN_FAULT_SET) {
			if (fault_args(p, e, rest, nrest))
				return ERR_INVALID;
		} else if (nrest) {
			return perr(p, "unexpected '%s' after '%s %s'", rest[0], op_names[e->op], e->target);
		}
	}
	s->nevents++;
	return 0;
}

static int threshold_line(parser *p, const char *line)
{
	scenario *s = p->s;
	char msg[300];
	if (s->nthresholds == SCN_MAX_THRESHOLDS)
		return perr(p, "too many thresholds (at most %d)", SCN_MAX_THRESHOLDS);
	if (threshold_parse(line, action_names, &s->thresholds[s->nthresholds], msg, sizeof msg))
		return perr(p, "%s", msg);
	s->nthresholds++;
	return 0;
}

static int section_line(parser *p, char *line)
{
	size_t n = strlen(line);
	if (line[n - 1] != ']')
		return perr(p, "expected ']' at the end of the section header");
	line[n - 1] = '\0';
	char *name = text_trim(line + 1), *arg = NULL;
	char *sp = strpbrk(name, " \t");
	if (sp) {
		*sp = '\0';
		arg = text_trim(sp + 1);
	}
	static const struct {
		const char *name;
		section sec;
	} secs[] = { { "scenario", SEC_SCENARIO }, { "load", SEC_LOAD },	 { "journey", SEC_JOURNEY },
		     { "checkout", SEC_CHECKOUT }, { "catalog", SEC_CATALOG }, { "setup", SEC_SETUP },
		     { "schedule", SEC_SCHEDULE }, { "thresholds", SEC_THRESHOLDS } };
	section sec = SEC_NONE;
	for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++)
		if (strcmp(secs[i].name, name) == 0)
			sec = secs[i].sec;
	if (sec == SEC_NONE)
		return perr(p, "unknown section '[%s]' (expected scenario, load, journey NAME, checkout, "
			       "catalog, setup, schedule or thresholds)",
			    name);
	if ((sec == SEC_JOURNEY) != (arg != NULL))
		return perr(p, sec == SEC_JOURNEY ? "expected '[journey NAME]'"
						  : "unexpected '%s' after the section name", arg);
	p->sec = sec;
	p->nseen = 0;
	if (sec != SEC_JOURNEY)
		return 0;
	scenario *s = p->s;
	if (!text_is_name(arg, SCN_NAME_MAX))
		return perr(p, "expected a journey name of lower-case letters, digits, '-' and '_', got '%s'",
			    arg);
	for (int i = 0; i < s->njourneys; i++)
		if (strcmp(s->journeys[i].name, arg) == 0)
			return perr(p, "journey '%s' defined twice (first on line %d)", arg,
				    p->journey_line[i]);
	if (s->njourneys == SCN_MAX_JOURNEYS)
		return perr(p, "too many journeys (at most %d)", SCN_MAX_JOURNEYS);
	p->journey_line[s->njourneys] = p->line;
	p->j = &s->journeys[s->njourneys++];
	memset(p->j, 0, sizeof *p->j);
	snprintf(p->j->name, sizeof p->j->name, "%s", arg);
	p->j->weight = 1;
	return 0;
}

static int one_line(parser *p, char *raw)
{
	/* A comment starts at a '#' at the start of the line or after a blank. */
	for (char *c = raw; *c; c++)
		if (*c == '#' && (c == raw || isspace((unsigned char)c[-1]))) {
			*c = '\0';
			break;
		}
	char *line = text_trim(raw);
	if (!*line)
		return 0;
	if (*line == '[')
		return section_line(p, line);
	switch (p->sec) {
	case SEC_NONE:
		return perr(p, "expected a section header such as [scenario] or [load] before '%s'", line);
	case SEC_SCHEDULE:
		return schedule_line(p, line);
	case SEC_THRESHOLDS:
		return threshold_line(p, line);
	default:
		break;
	}
	char *eq = strchr(line, '=');
	if (!eq)
		return perr(p, "expected 'key = value', got '%s'", line);
	*eq = '\0';
	char *k = text_trim(line), *v = text_trim(eq + 1);
	if (!*k)
		return perr(p, "expected a key before '='");
	if (!*v)
		return perr(p, "expected a value after '%s ='", k);
	switch (p->sec) {
	case SEC_SCENARIO: return key_scenario(p, k, v);
	case SEC_LOAD: return key_load(p, k, v);
	case SEC_JOURNEY: return key_journey(p, k, v);
	case SEC_CHECKOUT: return key_checkout(p, k, v);
	case SEC_CATALOG: return key_catalog(p, k, v);
	case SEC_SETUP: return key_setup(p, k, v);
	default: return perr(p, "internal: no section");
	}
}

/* What can only be checked once everything is read. */
static int finish(parser *p)
{
	scenario *s = p->s;
	p->line = 0;
	if (p->stage_line && (p->rate_line || p->duration_line))
		return perr(p, "[load] gives both 'stage' lines and 'rate'/'duration': use one or the other");
	if (!p->stage_line) {
		if (!p->rate_line || !p->duration_line)
			return perr(p, "[load] needs 'rate' and 'duration', or 'stage' lines");
		if (s->closed) {
			s->closed_us = p->duration_us;
		} else {
			s->stages[0] = (scenario_stage){ p->duration_us, p->rate, p->rate };
			s->nstages = 1;
		}
	}
	if (s->njourneys == 0)
		return perr(p, "no journey: add a [journey NAME] section with 'steps = ...'");
	int needs_user = 0;
	for (int i = 0; i < s->njourneys; i++) {
		scenario_journey *j = &s->journeys[i];
		if (j->nsteps == 0) {
			p->line = p->journey_line[i];
			return perr(p, "journey '%s' has no 'steps'", j->name);
		}
		for (int k = 0; k < j->nsteps; k++) {
			needs_user |= scenario_action_needs_user(j->steps[k]);
		}
	}
	if (needs_user && s->users == 0)
		return perr(p, "the journeys need signed-in users but [load] has 'users = 0'");
	if (s->hot_share > 0 && !s->hot_sku[0])
		return perr(p, "[catalog] gives 'hot_share' without 'hot_sku'");
	if (s->hot_sku[0] && s->hot_share == 0)
		s->hot_share = 1.0;
	int64_t total = scenario_duration_us(s);
	for (int i = 0; i < s->nevents; i++)
		if (s->events[i].at_us >= total) {
			char a[32], b[32];
			units_fmt_us(s->events[i].at_us, a, sizeof a);
			units_fmt_us(total, b, sizeof b);
			p->line = s->events[i].line;
			return perr(p, "'at %s' is not before the end of the run (%s)", a, b);
		}
	return 0;
}

static void defaults(scenario *s)
{
	s->seed = 1;
	s->users = 10;
	s->workers = 256;
	s->threads = 1;
	s->slack_us = 50000;
	s->timeout_us = 5000000;
	s->settle_us = 30000000;
	s->grace_us = 5000000;
	s->arrival = SCN_UNIFORM;
	snprintf(s->method, sizeof s->method, "card");
	s->ntokens = 1;
	snprintf(s->tokens[0].token, sizeof s->tokens[0].token, "tok_visa");
	s->tokens[0].weight = 1;
	s->qty_min = s->qty_max = 1;
}

scenario *scenario_parse(const char *name, const char *text, char *err, size_t errlen)
{
	scenario *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	defaults(s);
	snprintf(s->path, sizeof s->path, "%s", name);
	/* The name defaults to the file's, without directory and extension. */
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	snprintf(s->name, sizeof s->name, "%.*s", (int)strcspn(base, "."), base);
	parser p = { .s = s, .file = name, .err = err, .errlen = errlen };
	const char *at = text;
	int rc = 0;
	while (rc == 0 && *at) {
		const char *nl = strchr(at, '\n');
		size_t len = nl ? (size_t)(nl - at) : strlen(at);
		p.line++;
		if (len >= LINE_MAX_LEN) {
			rc = perr(&p, "line too long (at most %d characters)", LINE_MAX_LEN - 1);
			break;
		}
		char buf[LINE_MAX_LEN];
		memcpy(buf, at, len);
		buf[len] = '\0';
		if (len && buf[len - 1] == '\r')
			buf[len - 1] = '\0'; /* CRLF files are fine */
		for (const char *c = buf; *c && rc == 0; c++)
			if ((unsigned char)*c < 0x20 && *c != '\t')
				rc = perr(&p, "unexpected control character 0x%02x", (unsigned)*c);
		if (rc)
			break;
		rc = one_line(&p, buf);
		at = nl ? nl + 1 : at + len;
	}
	if (rc == 0)
		rc = finish(&p);
	if (rc) {
		free(s);
		return NULL;
	}
	return s;
}

scenario *scenario_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(SCN_FILE_MAX + 1);
	size_t n = buf ? fread(buf, 1, SCN_FILE_MAX + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad || n > SCN_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path,
			 !buf ? "out of memory" : bad ? "cannot read" : "larger than 1 MiB");
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (strlen(buf) != n) {
		snprintf(err, errlen, "%s: not a text file (holds a NUL byte)", path);
		free(buf);
		return NULL;
	}
	scenario *s = scenario_parse(path, buf, err, errlen);
	free(buf);
	return s;
}

void scenario_free(scenario *s) { free(s); }

int64_t scenario_duration_us(const scenario *s)
{
	if (s->closed)
		return s->closed_us;
	int64_t t = 0;
	for (int i = 0; i < s->nstages; i++)
		t += s->stages[i].dur_us;
	return t;
}

double scenario_rate_at(const scenario *s, int64_t t_us)
{
	if (t_us < 0)
		return 0;
	for (int i = 0; i < s->nstages; i++) {
		const scenario_stage *st = &s->stages[i];
		if (t_us < st->dur_us)
			return st->from + (st->to - st->from) * (double)t_us / (double)st->dur_us;
		t_us -= st->dur_us;
	}
	return 0;
}

int scenario_set_rate(scenario *s, double rate, int64_t dur_us)
{
	if (!(rate >= 0) || rate > 1e6 || dur_us < 0)
		return ERR_INVALID;
	int64_t total = dur_us ? dur_us : scenario_duration_us(s);
	if (total <= 0)
		return ERR_INVALID;
	if (dur_us)
		scenario_set_duration(s, dur_us); /* the schedule follows */
	s->closed = 0;
	s->nstages = 1;
	s->stages[0] = (scenario_stage){ total, rate, rate };
	return 0;
}

int scenario_set_duration(scenario *s, int64_t dur_us)
{
	int64_t total = scenario_duration_us(s);
	if (dur_us <= 0 || total <= 0)
		return ERR_INVALID;
	double k = (double)dur_us / (double)total;
	if (s->closed) {
		s->closed_us = dur_us;
	} else {
		int64_t sum = 0;
		for (int i = 0; i < s->nstages; i++) {
			s->stages[i].dur_us = (int64_t)llround((double)s->stages[i].dur_us * k);
			if (s->stages[i].dur_us < 1)
				s->stages[i].dur_us = 1;
			sum += s->stages[i].dur_us;
		}
		s->stages[s->nstages - 1].dur_us += dur_us - sum; /* exact total */
		if (s->stages[s->nstages - 1].dur_us < 1)
			s->stages[s->nstages - 1].dur_us = 1;
	}
	for (int i = 0; i < s->nevents; i++)
		s->events[i].at_us = (int64_t)llround((double)s->events[i].at_us * k);
	return 0;
}

int scenario_add_threshold(scenario *s, const char *expr, char *err, size_t errlen)
{
	if (s->nthresholds == SCN_MAX_THRESHOLDS) {
		snprintf(err, errlen, "too many thresholds (at most %d)", SCN_MAX_THRESHOLDS);
		return ERR_INVALID;
	}
	if (threshold_parse(expr, action_names, &s->thresholds[s->nthresholds], err, errlen))
		return ERR_INVALID;
	s->nthresholds++;
	return 0;
}
