/* report: the figures of a load run, the summary and the outputs. */
#include "sim/report.h"
#include "core/err.h"
#include "sim/units.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const outcome_names[REPORT_NOUTCOMES] = { "ok", "expected", "unrouted", "error" };
static const char *const drop_names[REPORT_NDROPS] = { "no_worker", "late" };
static const char *const reason_names[REPORT_REASONS] = { "out_of_stock", "payment_declined",
							  "customer_cancelled", "expired", "other" };

const char *report_outcome_name(report_outcome o)
{
	return (int)o >= 0 && (int)o < REPORT_NOUTCOMES ? outcome_names[o] : "?";
}

const char *report_reason_name(int i)
{
	return i >= 0 && i < REPORT_REASONS ? reason_names[i] : "other";
}

int report_reason_of(const char *reason)
{
	for (int i = 0; reason && i < REPORT_REASONS - 1; i++)
		if (strcmp(reason, reason_names[i]) == 0)
			return i;
	return REPORT_REASONS - 1;
}

report *report_new(const scenario *s)
{
	report *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->s = s;
	r->seed = s->seed;
	r->planned_us = scenario_duration_us(s);
	for (int i = 0; i < SCN_NACTIONS; i++)
		if (!(r->ep[i].h = hist_new())) {
			report_free(r);
			return NULL;
		}
	return r;
}

void report_free(report *r)
{
	if (!r)
		return;
	if (r->ndjson)
		fclose(r->ndjson);
	if (r->csv)
		fclose(r->csv);
	for (int i = 0; i < SCN_NACTIONS; i++)
		hist_free(r->ep[i].h);
	free(r);
}

int report_open_output(report *r, const char *spec, char *err, size_t errlen)
{
	const char *eq = strchr(spec, '=');
	int json = eq && (size_t)(eq - spec) == 4 && strncmp(spec, "json", 4) == 0;
	int csv = eq && (size_t)(eq - spec) == 3 && strncmp(spec, "csv", 3) == 0;
	if (!(json || csv) || !eq[1]) {
		snprintf(err, errlen, "expected --out json=FILE or --out csv=FILE, got '%s'", spec);
		return ERR_INVALID;
	}
	FILE **slot = json ? &r->ndjson : &r->csv;
	if (*slot) {
		snprintf(err, errlen, "--out %s given twice", json ? "json" : "csv");
		return ERR_INVALID;
	}
	if (!(*slot = fopen(eq + 1, "w"))) {
		snprintf(err, errlen, "cannot write %s", eq + 1);
		return ERR_IO;
	}
	if (csv)
		fputs("t_s,arrival,journey,user,endpoint,attempt,status,latency_ms,outcome,error\n", r->csv);
	return 0;
}

static const char *err_word(int err)
{
	switch (err) {
	case 0: return "";
	case ERR_TIMEOUT: return "timeout";
	case ERR_UNAVAILABLE: return "refused";
	default: return "io";
	}
}

void report_record(report *r, const report_sample *m)
{
	if ((int)m->endpoint < 0 || (int)m->endpoint >= SCN_NACTIONS)
		return;
	report_endpoint *e = &r->ep[m->endpoint];
	e->count++;
	e->outcome[m->outcome]++;
	hist_record(e->h, m->latency_us);
	if (m->status > 0 && m->status < 600)
		e->status[m->status]++;
	else if (m->err == ERR_TIMEOUT)
		e->timeouts++;
	else if (m->err == ERR_UNAVAILABLE)
		e->refused++;
	else
		e->io++;
	const char *jn = m->journey >= 0 && m->journey < r->s->njourneys ? r->s->journeys[m->journey].name : "";
	if (r->ndjson)
		fprintf(r->ndjson,
			"{\"type\":\"request\",\"t\":%.6f,\"arrival\":%llu,\"journey\":\"%s\",\"user\":%d,"
			"\"endpoint\":\"%s\",\"attempt\":%d,\"status\":%d,\"latency_ms\":%.3f,"
			"\"outcome\":\"%s\",\"error\":%s%s%s}\n",
			m->t_us / 1e6, (unsigned long long)m->arrival, jn, m->user,
			scenario_action_name(m->endpoint), m->attempt, m->status, m->latency_us / 1e3,
			outcome_names[m->outcome], m->err ? "\"" : "", m->err ? err_word(m->err) : "null",
			m->err ? "\"" : "");
	if (r->csv)
		fprintf(r->csv, "%.6f,%llu,%s,%d,%s,%d,%d,%.3f,%s,%s\n", m->t_us / 1e6,
			(unsigned long long)m->arrival, jn, m->user, scenario_action_name(m->endpoint),
			m->attempt, m->status, m->latency_us / 1e3, outcome_names[m->outcome],
			err_word(m->err));
}

void report_drop(report *r, report_drop_reason why, int64_t t_us, uint64_t arrival)
{
	r->dropped[why]++;
	if (r->ndjson)
		fprintf(r->ndjson, "{\"type\":\"drop\",\"t\":%.6f,\"arrival\":%llu,\"reason\":\"%s\"}\n",
			t_us / 1e6, (unsigned long long)arrival, drop_names[why]);
	if (r->csv)
		fprintf(r->csv, "%.6f,%llu,,,,0,0,0,dropped,%s\n", t_us / 1e6,
			(unsigned long long)arrival, drop_names[why]);
}

void report_event_done(report *r, const report_event *e)
{
	if (r->nevents >= SCN_MAX_EVENTS)
		return;
	r->events[r->nevents++] = *e;
	if (r->ndjson) {
		json_t *v = json_pack("{s:s,s:f,s:f,s:s,s:b,s:s}", "type", "event", "t", e->at_us / 1e6,
				      "done", e->done_us / 1e6, "action", e->text, "ok", e->ok,
				      "message", e->message);
		if (v) {
			json_dumpf(v, r->ndjson, JSON_COMPACT);
			fputc('\n', r->ndjson);
			json_decref(v);
		}
	}
}

void report_add(report *dst, const report *src)
{
	for (int i = 0; i < SCN_NACTIONS; i++) {
		report_endpoint *d = &dst->ep[i];
		const report_endpoint *e = &src->ep[i];
		hist_merge(d->h, e->h);
		d->count += e->count;
		for (int k = 0; k < REPORT_NOUTCOMES; k++)
			d->outcome[k] += e->outcome[k];
		for (int k = 0; k < 600; k++)
			d->status[k] += e->status[k];
		d->timeouts += e->timeouts;
		d->refused += e->refused;
		d->io += e->io;
	}
	dst->arrivals += src->arrivals;
	dst->started += src->started;
	for (int k = 0; k < REPORT_NDROPS; k++)
		dst->dropped[k] += src->dropped[k];
	dst->journeys_done += src->journeys_done;
	dst->journeys_cut += src->journeys_cut;
	dst->requests_cut += src->requests_cut;
	dst->orders.duplicates_sent += src->orders.duplicates_sent;
	dst->orders.duplicate_mismatch += src->orders.duplicate_mismatch;
	dst->orders.cancels_skipped += src->orders.cancels_skipped;
}

void report_merge(const report *r, hist *dst)
{
	hist_reset(dst);
	for (int i = 0; i < SCN_NACTIONS; i++)
		hist_merge(dst, r->ep[i].h);
}

void report_totals(const report *r, uint64_t *count, uint64_t *errors)
{
	uint64_t c = 0, e = 0;
	for (int i = 0; i < SCN_NACTIONS; i++) {
		c += r->ep[i].count;
		e += r->ep[i].outcome[REPORT_ERROR];
	}
	*count = c;
	*errors = e;
}

/* The endpoint's figures, or all of them merged into tmp. */
static const report_endpoint *endpoint_of(const report *r, const char *name, report_endpoint *tmp)
{
	int a = name[0] ? scenario_action_of(name) : -1;
	if (a >= 0)
		return &r->ep[a];
	memset(tmp, 0, sizeof *tmp);
	tmp->h = hist_new();
	if (!tmp->h)
		return NULL;
	report_merge(r, tmp->h);
	for (int i = 0; i < SCN_NACTIONS; i++) {
		tmp->count += r->ep[i].count;
		for (int k = 0; k < REPORT_NOUTCOMES; k++)
			tmp->outcome[k] += r->ep[i].outcome[k];
	}
	return tmp;
}

static double seconds(const report *r)
{
	int64_t us = r->elapsed_us > 0 ? r->elapsed_us : r->planned_us;
	return us > 0 ? us / 1e6 : NAN;
}

double report_metric(const report *r, const threshold *t)
{
	const report_orders *o = &r->orders;
	uint64_t dropped = r->dropped[REPORT_DROP_NO_WORKER] + r->dropped[REPORT_DROP_LATE];
	switch (t->metric) {
	case TM_DROPPED: return (double)dropped;
	case TM_DROPPED_RATE: return r->arrivals ? (double)dropped / (double)r->arrivals : 0;
	case TM_ORDERS_CREATED: return (double)o->created;
	case TM_ORDERS_CONFIRMED: return o->polled ? (double)o->confirmed : NAN;
	case TM_ORDERS_CANCELLED: return o->polled ? (double)o->cancelled : NAN;
	case TM_ORDERS_OPEN: return o->polled ? (double)(o->pending + o->awaiting + o->other) : NAN;
	case TM_ORDERS_UNKNOWN: return o->polled ? (double)o->unknown : NAN;
	case TM_ORDERS_LOST:
		return o->polled ? (double)(o->unknown + o->pending + o->awaiting + o->other) : NAN;
	case TM_DUPLICATE_MISMATCH: return (double)o->duplicate_mismatch;
	case TM_SCHEDULE_FAILURES: {
		int n = 0;
		for (int i = 0; i < r->nevents; i++)
			n += !r->events[i].ok;
		return (double)(n + (r->s->nevents - r->nevents)); /* never ran: failed */
	}
	case TM_AUDIT_FAILURES: return r->audit_ran ? (double)r->audit_failures : NAN;
	default: break;
	}
	report_endpoint tmp;
	const report_endpoint *e = endpoint_of(r, t->endpoint, &tmp);
	if (!e)
		return NAN;
	double v = NAN;
	switch (t->metric) {
	case TM_PERCENTILE: v = e->count ? (double)hist_percentile(e->h, t->pct) : NAN; break;
	case TM_MAX: v = e->count ? (double)e->h->max : NAN; break;
	case TM_MIN: v = e->count ? (double)e->h->min : NAN; break;
	case TM_MEAN: v = e->count ? hist_mean(e->h) : NAN; break;
	case TM_ERROR_RATE:
		v = e->count ? (double)e->outcome[REPORT_ERROR] / (double)e->count : NAN;
		break;
	case TM_ERRORS: v = (double)e->outcome[REPORT_ERROR]; break;
	case TM_COUNT: v = (double)e->count; break;
	case TM_EXPECTED: v = (double)e->outcome[REPORT_EXPECTED]; break;
	case TM_UNROUTED: v = (double)e->outcome[REPORT_UNROUTED]; break;
	case TM_RATE: v = (double)e->count / seconds(r); break;
	default: break;
	}
	if (e == &tmp)
		hist_free(tmp.h);
	return v;
}

int report_decide(report *r)
{
	int failed = 0;
	r->nthresholds = r->s->nthresholds;
	int audit = 0;
	for (int i = 0; i < r->nthresholds; i++) {
		r->thresholds[i] = r->s->thresholds[i];
		audit |= r->thresholds[i].metric == TM_AUDIT_FAILURES;
	}
	if (r->audit_hooked && !audit &&
	    threshold_parse("audit_failures == 0", NULL, &r->thresholds[r->nthresholds], NULL, 0) == 0)
		r->nthresholds++;
	for (int i = 0; i < r->nthresholds; i++) {
		r->values[i] = report_metric(r, &r->thresholds[i]);
		r->passed[i] = threshold_pass(&r->thresholds[i], r->values[i]);
		failed += !r->passed[i];
	}
	return failed;
}

/* ---- the summary ------------------------------------------------------------- */

static void lat(char *buf, size_t len, const report_endpoint *e, double pct)
{
	if (!e->count)
		snprintf(buf, len, "-");
	else
		units_fmt_us(pct < 0 ? e->h->max : hist_percentile(e->h, pct), buf, len);
}

static void row(FILE *out, const char *name, const report_endpoint *e, double secs)
{
	char p[6][24];
	static const double pcts[6] = { 50, 90, 95, 99, 99.9, -1 };
	for (int i = 0; i < 6; i++)
		lat(p[i], sizeof p[i], e, pcts[i]);
	uint64_t errs = e->outcome[REPORT_ERROR];
	fprintf(out, "  %-12s %8llu %8.1f %9s %9s %9s %9s %9s %9s %7llu %6.2f%%\n", name,
		(unsigned long long)e->count, secs > 0 ? e->count / secs : 0.0, p[0], p[1], p[2], p[3],
		p[4], p[5], (unsigned long long)errs, e->count ? 100.0 * errs / e->count : 0.0);
}

/* "200 ×12  503 ×3  timeout ×1" for the statuses of class want. */
static void statuses(FILE *out, const report_endpoint *all)
{
	int any = 0;
	for (int s = 100; s < 600; s++)
		if (all->status[s]) {
			fprintf(out, "%s%d ×%llu", any++ ? "  " : "", s, (unsigned long long)all->status[s]);
		}
	if (all->timeouts)
		fprintf(out, "%stimeout ×%llu", any++ ? "  " : "", (unsigned long long)all->timeouts);
	if (all->refused)
		fprintf(out, "%srefused ×%llu", any++ ? "  " : "", (unsigned long long)all->refused);
	if (all->io)
		fprintf(out, "%sio ×%llu", any++ ? "  " : "", (unsigned long long)all->io);
	if (!any)
		fputs("none", out);
	fputc('\n', out);
}

static void print_orders(const report *r, FILE *out)
{
	const report_orders *o = &r->orders;
	fprintf(out, "orders     created %llu (%llu queued as AWAITING_PAYMENT at once)",
		(unsigned long long)o->created, (unsigned long long)o->created_202);
	if (o->duplicates_sent)
		fprintf(out, "; %llu sent twice with their key, %llu answered with another order",
			(unsigned long long)o->duplicates_sent, (unsigned long long)o->duplicate_mismatch);
	if (o->cancels_skipped)
		fprintf(out, "; %llu cancel steps without an order", (unsigned long long)o->cancels_skipped);
	fputc('\n', out);
	if (!o->created)
		return;
	if (!o->polled) {
		fprintf(out, "           final states not read\n");
		return;
	}
	char t[32];
	units_fmt_us(o->settle_us, t, sizeof t);
	fprintf(out, "           after %s: CONFIRMED %llu, CANCELLED %llu", t,
		(unsigned long long)o->confirmed, (unsigned long long)o->cancelled);
	if (o->cancelled) {
		fputs(" (", out);
		int any = 0;
		for (int i = 0; i < REPORT_REASONS; i++)
			if (o->cancelled_by[i])
				fprintf(out, "%s%s %llu", any++ ? ", " : "", reason_names[i],
					(unsigned long long)o->cancelled_by[i]);
		fputc(')', out);
	}
	fprintf(out, ", still open %llu (PENDING %llu, AWAITING_PAYMENT %llu, other %llu), unknown %llu\n",
		(unsigned long long)(o->pending + o->awaiting + o->other), (unsigned long long)o->pending,
		(unsigned long long)o->awaiting, (unsigned long long)o->other,
		(unsigned long long)o->unknown);
	fprintf(out, "           sagas COMPLETED %llu, COMPENSATED %llu, not ended %llu; lost %llu\n",
		(unsigned long long)o->saga_completed, (unsigned long long)o->saga_compensated,
		(unsigned long long)o->saga_open,
		(unsigned long long)(o->unknown + o->pending + o->awaiting + o->other));
}

void report_print(const report *r, FILE *out)
{
	const scenario *s = r->s;
	char a[32], b[32], c[32];
	units_fmt_us(r->planned_us, a, sizeof a);
	units_fmt_us(r->elapsed_us, b, sizeof b);
	units_fmt_us(r->drain_us, c, sizeof c);
	fprintf(out, "\nscenario   %s (%s), seed %llu\n", s->name, s->path, (unsigned long long)r->seed);
	if (s->closed)
		fprintf(out, "load       %s closed loop (rate = max), %d workers", a, s->workers);
	else if (s->nstages == 1 && s->stages[0].from == s->stages[0].to)
		fprintf(out, "load       %s at %g/s (%s), %d workers", a, s->stages[0].from,
			s->arrival == SCN_POISSON ? "poisson" : "uniform", s->workers);
	else
		fprintf(out, "load       %s in %d stages (%s), %d workers", a, s->nstages,
			s->arrival == SCN_POISSON ? "poisson" : "uniform", s->workers);
	if (s->threads > 1)
		fprintf(out, " on %d threads", s->threads);
	fprintf(out, ", %d of %d users signed in; ran %s + %s to finish%s\n", r->users_ready, s->users,
		b, c, r->interrupted ? " (INTERRUPTED)" : "");
	uint64_t dropped = r->dropped[0] + r->dropped[1];
	fprintf(out, "arrivals   %llu due, %llu started, %llu dropped (no free worker %llu, late %llu)\n",
		(unsigned long long)r->arrivals, (unsigned long long)r->started,
		(unsigned long long)dropped, (unsigned long long)r->dropped[REPORT_DROP_NO_WORKER],
		(unsigned long long)r->dropped[REPORT_DROP_LATE]);
	fprintf(out, "journeys   %llu finished, %llu cut short at the end (%llu with a request unanswered)\n\n",
		(unsigned long long)r->journeys_done, (unsigned long long)r->journeys_cut,
		(unsigned long long)r->requests_cut);

	double secs = seconds(r);
	fprintf(out, "  %-12s %8s %8s %9s %9s %9s %9s %9s %9s %7s %7s\n", "endpoint", "count", "rate/s",
		"p50", "p90", "p95", "p99", "p99.9", "max", "errors", "");
	report_endpoint all;
	memset(&all, 0, sizeof all);
	all.h = hist_new();
	for (int i = 0; i < SCN_NACTIONS; i++) {
		const report_endpoint *e = &r->ep[i];
		if (!e->count)
			continue;
		row(out, scenario_action_name((scenario_action)i), e, secs);
		all.count += e->count;
		for (int k = 0; k < REPORT_NOUTCOMES; k++)
			all.outcome[k] += e->outcome[k];
		for (int k = 0; k < 600; k++)
			all.status[k] += e->status[k];
		all.timeouts += e->timeouts;
		all.refused += e->refused;
		all.io += e->io;
		if (all.h)
			hist_merge(all.h, e->h);
	}
	if (all.h)
		row(out, "all", &all, secs);
	fprintf(out, "\nstatus     ");
	statuses(out, &all);
	fprintf(out, "outcome    ok %llu, expected refusals %llu, unrouted %llu, errors %llu\n",
		(unsigned long long)all.outcome[REPORT_OK], (unsigned long long)all.outcome[REPORT_EXPECTED],
		(unsigned long long)all.outcome[REPORT_UNROUTED],
		(unsigned long long)all.outcome[REPORT_ERROR]);
	hist_free(all.h);
	if (r->orders.created || r->ep[SCN_CHECKOUT].count)
		print_orders(r, out);
	if (s->nevents) {
		fprintf(out, "schedule\n");
		for (int i = 0; i < r->nevents; i++) {
			const report_event *e = &r->events[i];
			units_fmt_us(e->at_us, a, sizeof a);
			units_fmt_us(e->done_us, b, sizeof b);
			fprintf(out, "  %s %-44s %s (due %s, done %s)\n", e->ok ? "✓" : "✗", e->text,
				e->message, a, b);
		}
		for (int i = r->nevents; i < s->nevents; i++)
			fprintf(out, "  ✗ %-44s never ran\n", s->events[i].text);
	}
	if (r->audit_ran)
		fprintf(out, "audit      %s\n", r->audit_text);
	else
		fprintf(out, "audit      not run (%s)\n", r->audit_text[0] ? r->audit_text : "no audit in this build");
	if (r->nthresholds) {
		fprintf(out, "thresholds\n");
		for (int i = 0; i < r->nthresholds; i++) {
			const threshold *t = &r->thresholds[i];
			char label[64], v[32];
			threshold_metric_label(t, label, sizeof label);
			threshold_fmt_value(t->metric, r->values[i], v, sizeof v);
			fprintf(out, "  %s %-32s %s%s%s = %s\n", r->passed[i] ? "✓" : "✗", t->text,
				t->endpoint, t->endpoint[0] ? "." : "", label, v);
		}
	}
	fflush(out);
}

static json_t *endpoint_json(const report_endpoint *e, double secs)
{
	json_t *st = json_object();
	char k[16];
	for (int s = 100; s < 600; s++)
		if (e->status[s]) {
			snprintf(k, sizeof k, "%d", s);
			json_object_set_new(st, k, json_integer((json_int_t)e->status[s]));
		}
	if (e->timeouts)
		json_object_set_new(st, "timeout", json_integer((json_int_t)e->timeouts));
	if (e->refused)
		json_object_set_new(st, "refused", json_integer((json_int_t)e->refused));
	if (e->io)
		json_object_set_new(st, "io", json_integer((json_int_t)e->io));
	double ms = 1e3;
	return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:I,s:I,s:I,s:I,s:o}", "count",
			 (json_int_t)e->count, "rate", secs > 0 ? e->count / secs : 0.0, "p50_ms",
			 hist_percentile(e->h, 50) / ms, "p90_ms", hist_percentile(e->h, 90) / ms,
			 "p95_ms", hist_percentile(e->h, 95) / ms, "p99_ms",
			 hist_percentile(e->h, 99) / ms, "p999_ms", hist_percentile(e->h, 99.9) / ms,
			 "max_ms", e->h->max / ms, "mean_ms", hist_mean(e->h) / ms, "ok",
			 (json_int_t)e->outcome[REPORT_OK], "expected",
			 (json_int_t)e->outcome[REPORT_EXPECTED], "unrouted",
			 (json_int_t)e->outcome[REPORT_UNROUTED], "errors",
			 (json_int_t)e->outcome[REPORT_ERROR], "status", st);
}

json_t *report_json(const report *r)
{
	double secs = seconds(r);
	json_t *eps = json_object();
	for (int i = 0; i < SCN_NACTIONS; i++)
		if (r->ep[i].count)
			json_object_set_new(eps, scenario_action_name((scenario_action)i),
					    endpoint_json(&r->ep[i], secs));
	const report_orders *o = &r->orders;
	json_t *reasons = json_object();
	for (int i = 0; i < REPORT_REASONS; i++)
		json_object_set_new(reasons, reason_names[i], json_integer((json_int_t)o->cancelled_by[i]));
	json_t *orders = json_pack(
		"{s:b,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "polled", o->polled,
		"created", (json_int_t)o->created, "created_202", (json_int_t)o->created_202, "confirmed",
		(json_int_t)o->confirmed, "cancelled", (json_int_t)o->cancelled, "cancelled_by", reasons,
		"pending", (json_int_t)o->pending, "awaiting_payment", (json_int_t)o->awaiting, "unknown",
		(json_int_t)o->unknown, "lost", (json_int_t)(o->unknown + o->pending + o->awaiting + o->other),
		"saga_completed", (json_int_t)o->saga_completed, "saga_compensated",
		(json_int_t)o->saga_compensated, "saga_open", (json_int_t)o->saga_open, "duplicates_sent",
		(json_int_t)o->duplicates_sent, "duplicate_mismatch", (json_int_t)o->duplicate_mismatch,
		"cancels_skipped", (json_int_t)o->cancels_skipped);
	json_t *events = json_array();
	for (int i = 0; i < r->nevents; i++)
		json_array_append_new(events, json_pack("{s:s,s:f,s:b,s:s}", "action", r->events[i].text,
							"at", r->events[i].at_us / 1e6, "ok",
							r->events[i].ok, "message", r->events[i].message));
	json_t *ths = json_array();
	for (int i = 0; i < r->nthresholds; i++)
		json_array_append_new(ths, json_pack("{s:s,s:o,s:b}", "threshold", r->thresholds[i].text,
						     "value", isnan(r->values[i]) ? json_null() : json_real(r->values[i]),
						     "pass", r->passed[i]));
	uint64_t count, errors;
	report_totals(r, &count, &errors);
	return json_pack("{s:s,s:s,s:I,s:b,s:f,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:o,s:o,s:o,s:o,s:o}",
			 "type", "summary", "scenario", r->s->name, "seed", (json_int_t)r->seed,
			 "interrupted", r->interrupted,
			 "duration_s", r->elapsed_us / 1e6, "planned_s", r->planned_us / 1e6, "arrivals",
			 (json_int_t)r->arrivals, "started", (json_int_t)r->started, "dropped_no_worker",
			 (json_int_t)r->dropped[REPORT_DROP_NO_WORKER], "dropped_late",
			 (json_int_t)r->dropped[REPORT_DROP_LATE], "journeys_done",
			 (json_int_t)r->journeys_done, "journeys_cut", (json_int_t)r->journeys_cut, "requests_cut", (json_int_t)r->requests_cut,
			 "requests", (json_int_t)count, "errors", (json_int_t)errors, "users",
			 r->users_ready, "endpoints", eps, "orders", orders, "schedule", events,
			 "audit", r->audit_ran ? json_pack("{s:i,s:s}", "failures", r->audit_failures, "text", r->audit_text) : json_null(),
			 "thresholds", ths);
}

void report_finish_outputs(report *r)
{
	if (r->ndjson) {
		json_t *v = report_json(r);
		if (v) {
			json_dumpf(v, r->ndjson, JSON_COMPACT);
			fputc('\n', r->ndjson);
			json_decref(v);
		}
		fclose(r->ndjson);
		r->ndjson = NULL;
	}
	if (r->csv) {
		fclose(r->csv);
		r->csv = NULL;
	}
}
