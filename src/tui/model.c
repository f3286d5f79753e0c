/* model: see model.h. */
#include "tui/model.h"
#include "core/err.h"
#include "core/jval.h"
#include "core/text.h"
#include "resil/fault.h"
#include "sim/units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void model_list_free(void *list)
{
	free(list);
}

void model_saga_detail_free(model_saga_detail *d)
{
	if (!d)
		return;
	free(d->spans);
	free(d);
}

/* ---- small readers ------------------------------------------------------------ */

static void copy_str(char *dst, size_t len, const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	snprintf(dst, len, "%s", s ? s : "");
}

static long long get_int(const json_t *obj, const char *key, long long dflt)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return dflt;
}

static double get_num(const json_t *obj, const char *key, double dflt)
{
	json_t *v = json_object_get(obj, key);
	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* The rows of the array at key of an object answer, each read by fn into
 * the next element (of size bytes) of a new array; fn answers 0 for a row
 * it skips. 0, ERR_PARSE when there is no such array, ERR_NOMEM. */
typedef int (*row_reader)(const json_t *row, void *elem);

static int read_rows(const json_t *v, const char *key, size_t size, row_reader fn, void **out,
		     size_t *n)
{
	json_t *arr = json_is_object(v) ? json_object_get(v, key) : NULL;
	if (!json_is_array(arr))
		return ERR_PARSE;
	size_t count = json_array_size(arr);
	char *rows = calloc(count ? count : 1, size);
	if (!rows)
		return ERR_NOMEM;
	size_t k = 0, i;
	json_t *row;
	json_array_foreach(arr, i, row)
		if (json_is_object(row) && fn(row, rows + k * size))
			k++;
	*out = rows;
	*n = k;
	return 0;
}

#define READ_ROWS(v, key, fn, out, n)                                                              \
	({                                                                                         \
		void *rows_ = NULL;                                                                \
		int rc_ = read_rows(v, key, sizeof(**(out)), fn, &rows_, n);                       \
		if (rc_ == 0)                                                                      \
			*(out) = rows_;                                                            \
		rc_;                                                                               \
	})

/* ---- services and stats ----------------------------------------------------------- */

static void no_figures(model_service *m)
{
	m->rps = m->p50_ms = m->p99_ms = m->error_rate = m->in_flight = NAN;
}

static int read_service(const json_t *row, void *elem)
{
	model_service *m = elem;
	size_t j;
	json_t *inst;
	copy_str(m->name, sizeof(m->name), row, "name");
	json_array_foreach(json_object_get(row, "instances"), j, inst)
	{
		m->instances++;
		m->healthy += json_is_true(json_object_get(inst, "healthy"));
		m->outstanding += (int)get_int(inst, "outstanding", 0);
	}
	no_figures(m);
	return 1;
}

int model_parse_services(const json_t *v, model_service **out, size_t *n)
{
	return READ_ROWS(v, "services", read_service, out, n);
}

/* The row named name, added (empty, figures unknown) when absent. NULL when
 * out of memory. */
static model_service *service_row(model_service **svcs, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*svcs)[i].name, name) == 0)
			return &(*svcs)[i];
	model_service *grown = realloc(*svcs, (*n + 1) * sizeof(**svcs));
	if (!grown)
		return NULL;
	*svcs = grown;
	model_service *m = &grown[(*n)++];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	no_figures(m);
	return m;
}

static int merge_one_stat(const char *name, const json_t *row, model_service **svcs, size_t *n)
{
	if (!name || !*name || !json_is_object(row))
		return 0;
	model_service *m = service_row(svcs, n, name);
	if (!m)
		return ERR_NOMEM;
	/* A service the gateway could not ask is listed without figures. */
	m->has_stats = json_is_number(json_object_get(row, "rps"));
	m->rps = get_num(row, "rps", NAN);
	m->p50_ms = get_num(row, "p50_ms", NAN);
	m->p99_ms = get_num(row, "p99_ms", NAN);
	m->error_rate = get_num(row, "error_rate", NAN);
	m->in_flight = get_num(row, "in_flight", NAN);
	return 0;
}

int model_merge_stats(const json_t *v, model_service **svcs, size_t *n)
{
	json_t *s = json_is_object(v) ? json_object_get(v, "services") : NULL;
	int rc = 0;
	if (json_is_array(s)) {
		size_t i;
		json_t *row;
		json_array_foreach(s, i, row)
		{
			const char *name = json_string_value(json_object_get(row, "service"));
			if (!name)
				name = json_string_value(json_object_get(row, "name"));
			if ((rc = merge_one_stat(name, row, svcs, n)) != 0)
				return rc;
		}
		return 0;
	}
	if (json_is_object(s)) {
		const char *key;
		json_t *row;
		json_object_foreach(s, key, row)
			if ((rc = merge_one_stat(key, row, svcs, n)) != 0)
				return rc;
		return 0;
	}
	return ERR_PARSE;
}

int model_merge_instances(const json_t *v, model_service **svcs, size_t *n)
{
	json_t *arr = json_is_object(v) ? json_object_get(v, "instances") : NULL;
	if (!json_is_array(arr))
		return ERR_PARSE;
	size_t i;
	json_t *row;
	json_array_foreach(arr, i, row)
	{
		const char *name = json_string_value(json_object_get(row, "service"));
		size_t len = name ? strlen(name) : 0;
		/* The simulators are the outside world, not the platform. */
		if (len == 0 || (len > 4 && strcmp(name + len - 4, "-sim") == 0))
			continue;
		model_service *m = service_row(svcs, n, name);
		if (!m)
			return ERR_NOMEM;
		m->expected++;
	}
	return 0;
}

/* ---- breakers, faults, queues --------------------------------------------------------- */

static int read_breaker(const json_t *row, void *elem)
{
	model_breaker *m = elem;
	copy_str(m->from, sizeof(m->from), row, "from");
	copy_str(m->to, sizeof(m->to), row, "to");
	copy_str(m->state, sizeof(m->state), row, "state");
	copy_str(m->instance, sizeof(m->instance), row, "instance");
	m->failure_rate = get_num(row, "failure_rate", -1);
	m->slow_call_rate = get_num(row, "slow_call_rate", -1);
	m->calls = get_int(row, "calls", 0);
	return 1;
}

int model_parse_breakers(const json_t *v, model_breaker **out, size_t *n)
{
	return READ_ROWS(v, "breakers", read_breaker, out, n);
}

static int read_fault(const json_t *row, void *elem)
{
	model_fault *m = elem;
	copy_str(m->target, sizeof(m->target), row, "target");
	copy_str(m->instance, sizeof(m->instance), row, "instance");
	copy_str(m->expires_at, sizeof(m->expires_at), row, "expires_at");
	m->latency_ms = get_int(row, "latency_ms", 0);
	m->jitter_ms = get_int(row, "jitter_ms", 0);
	m->error_rate = get_num(row, "error_rate", 0);
	m->error_status = (int)get_int(row, "error_status", 0);
	m->outage = json_is_true(json_object_get(row, "outage"));
	return 1;
}

int model_parse_faults(const json_t *v, model_fault **out, size_t *n)
{
	return READ_ROWS(v, "faults", read_fault, out, n);
}

static int read_queue(const json_t *row, void *elem)
{
	model_queue *m = elem;
	copy_str(m->topic, sizeof(m->topic), row, "topic");
	copy_str(m->consumer, sizeof(m->consumer), row, "consumer");
	copy_str(m->service, sizeof(m->service), row, "service");
	copy_str(m->error, sizeof(m->error), row, "error");
	m->depth = get_int(row, "depth", -1);
	m->lag = get_int(row, "lag", -1);
	m->lag_ms = get_int(row, "lag_ms", 0);
	m->dead = get_int(row, "dead_letters", 0);
	return 1;
}

int model_parse_queues(const json_t *v, model_queue **out, size_t *n)
{
	return READ_ROWS(v, "queues", read_queue, out, n);
}

/* ---- sagas -------------------------------------------------------------------------- */

static int read_saga(const json_t *row, void *elem)
{
	model_saga *m = elem;
	copy_str(m->order_id, sizeof(m->order_id), row, "order_id");
	copy_str(m->state, sizeof(m->state), row, "state");
	copy_str(m->status, sizeof(m->status), row, "status");
	copy_str(m->user_id, sizeof(m->user_id), row, "user_id");
	copy_str(m->reason, sizeof(m->reason), row, "reason");
	const char *c = json_string_value(json_object_get(row, "created_at"));
	const char *u = json_string_value(json_object_get(row, "updated_at"));
	if (!c || model_parse_time(c, &m->created_us) != 0)
		m->created_us = 0;
	if (!u || model_parse_time(u, &m->updated_us) != 0)
		m->updated_us = 0;
	return 1;
}

int model_parse_sagas(const json_t *v, model_saga **out, size_t *n)
{
	return READ_ROWS(v, "items", read_saga, out, n);
}

int model_parse_saga_detail(const json_t *v, model_saga_detail **out)
{
	if (!json_is_object(v) || !json_is_string(json_object_get(v, "order_id")))
		return ERR_PARSE;
	model_saga_detail *d = calloc(1, sizeof(*d));
	if (!d)
		return ERR_NOMEM;
	read_saga(v, &d->saga);
	const json_t *order = json_object_get(v, "order");
	if (!d->saga.status[0])
		copy_str(d->saga.status, sizeof(d->saga.status), order, "status");
	if (!d->saga.user_id[0])
		copy_str(d->saga.user_id, sizeof(d->saga.user_id), order, "user_id");
	if (!d->saga.reason[0])
		copy_str(d->saga.reason, sizeof(d->saga.reason), order, "cancel_reason");
	d->total_cents = get_int(order, "total_cents", 0);
	copy_str(d->currency, sizeof(d->currency), order, "currency");
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(v, "steps"), i, row)
	{
		if (d->nsteps == (int)(sizeof(d->steps) / sizeof(d->steps[0])))
			break;
		model_step *st = &d->steps[d->nsteps++];
		copy_str(st->name, sizeof(st->name), row, "name");
		copy_str(st->status, sizeof(st->status), row, "status");
		copy_str(st->at, sizeof(st->at), row, "at");
		copy_str(st->detail, sizeof(st->detail), row, "detail");
		st->attempts = get_int(row, "attempts", 0);
	}
	json_t *spans = json_object_get(v, "spans");
	if (json_is_array(spans) && json_array_size(spans) > 0) {
		d->spans = calloc(json_array_size(spans), sizeof(span));
		if (!d->spans) {
			free(d);
			return ERR_NOMEM;
		}
		json_array_foreach(spans, i, row)
			if (span_from_json(row, &d->spans[d->nspans]) == 0)
				d->nspans++;
	}
	*out = d;
	return 0;
}

/* ---- catalog and stock ---------------------------------------------------------------- */

static int read_product(const json_t *row, void *elem)
{
	model_product *m = elem;
	if (!json_is_string(json_object_get(row, "sku")))
		return 0;
	copy_str(m->sku, sizeof(m->sku), row, "sku");
	copy_str(m->name, sizeof(m->name), row, "name");
	copy_str(m->category, sizeof(m->category), row, "category");
	return 1;
}

int model_parse_products(const json_t *v, model_product **out, size_t *n)
{
	return READ_ROWS(v, "items", read_product, out, n);
}

int model_parse_stock(const json_t *v, model_stock *st)
{
	if (!json_is_object(v) || !json_is_integer(json_object_get(v, "on_hand")))
		return ERR_PARSE;
	st->on_hand = get_int(v, "on_hand", 0);
	st->reserved = get_int(v, "reserved", 0);
	st->available = get_int(v, "available", st->on_hand - st->reserved);
	/* An inventory without the field: its threshold's default, 5. */
	json_t *low = json_object_get(v, "low_stock");
	st->low = json_is_boolean(low) ? json_is_true(low) : st->available <= 5;
	st->known = 1;
	return 0;
}

/* ---- logs ------------------------------------------------------------------------------ */

int model_parse_logline(const char *line, size_t len, const char *source, model_logline *out)
{
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len == 0)
		return ERR_INVALID;
	memset(out, 0, sizeof(*out));
	snprintf(out->source, sizeof(out->source), "%s", source ? source : "");
	json_t *v = line[0] == '{' ? json_loadb(line, len, 0, NULL) : NULL;
	if (json_is_object(v)) {
		copy_str(out->ts, sizeof(out->ts), v, "ts");
		copy_str(out->level, sizeof(out->level), v, "level");
		copy_str(out->service, sizeof(out->service), v, "service");
		copy_str(out->trace_id, sizeof(out->trace_id), v, "trace_id");
		copy_str(out->msg, sizeof(out->msg), v, "msg");
		if (model_parse_time(out->ts, &out->ts_us) != 0)
			out->ts_us = 0;
	} else {
		size_t n = len < sizeof(out->msg) - 1 ? len : sizeof(out->msg) - 1;
		memcpy(out->msg, line, n);
		out->msg[n] = '\0';
	}
	json_decref(v);
	if (!out->service[0])
		snprintf(out->service, sizeof(out->service), "%.*s", (int)sizeof(out->service) - 1,
			 out->source);
	/* What reaches the screen is printable: control bytes become spaces. */
	for (char *p = out->msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return 0;
}

int model_logline_matches(const model_logline *l, const char *filter)
{
	if (!filter || !*filter)
		return 1;
	if (strcmp(l->service, filter) == 0)
		return 1;
	return strstr(l->trace_id, filter) || strstr(l->service, filter) ||
	       strstr(l->level, filter) || strstr(l->msg, filter) || strstr(l->source, filter);
}

/* ---- times ------------------------------------------------------------------------------ */

int model_parse_time(const char *s, int64_t *us)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!s)
		return ERR_PARSE;
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return ERR_PARSE;
	long frac = 0;
	int digits = 0;
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (digits < 6) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		if (digits == 0)
			return ERR_PARSE;
		while (digits < 6) {
			frac *= 10;
			digits++;
		}
	}
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
		   isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
		   isdigit((unsigned char)p[5])) {
		offset = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L + ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
		if (*p == '-')
			offset = -offset;
		p += 6;
	} else {
		return ERR_PARSE;
	}
	if (*p)
		return ERR_PARSE;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return ERR_PARSE;
	*us = ((int64_t)t - offset) * 1000000LL + frac;
	return 0;
}

void model_fmt_age(int64_t now_us, int64_t then_us, char *buf, size_t len)
{
	if (then_us <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	int64_t s = (now_us - then_us) / 1000000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, len, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, len, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, len, "%lldd", (long long)(s / 86400));
}

/* ---- meters ------------------------------------------------------------------------------- */

int model_breaker_is_open(const char *state)
{
	return strcmp(state, "OPEN") == 0 || strcmp(state, "HALF_OPEN") == 0 ||
	       strcmp(state, "FORCED_OPEN") == 0;
}

void model_meters_compute(const model_service *svcs, size_t nsvcs, const model_breaker *b,
			  size_t nb, const model_queue *q, size_t nq, const model_saga *sagas,
			  size_t nsagas, size_t sagas_limit, int sagas_known, int64_t now_us,
			  model_meters *m)
{
	memset(m, 0, sizeof(*m));
	m->rps = m->error_pct = m->p99_ms = NAN;
	double rps = 0, errs = 0, p99 = NAN, gw_p99 = NAN;
	int any_stats = 0;
	for (size_t i = 0; i < nsvcs; i++) {
		const model_service *s = &svcs[i];
		m->services_total++;
		/* Up: a healthy instance; for what does not register (the
		 * simulators) figures of its own. */
		if (s->healthy > 0 || (s->instances == 0 && s->expected == 0 && s->has_stats))
			m->services_up++;
		if (!s->has_stats)
			continue;
		any_stats = 1;
		if (strcmp(s->name, "gateway") == 0) {
			/* What clients see: the gateway's own figures. */
			if (!isnan(s->rps))
				rps = s->rps;
			if (!isnan(s->error_rate) && !isnan(s->rps))
				errs = s->error_rate * s->rps;
			gw_p99 = s->p99_ms;
			continue;
		}
		if (!isnan(s->p99_ms) && (isnan(p99) || s->p99_ms > p99))
			p99 = s->p99_ms;
	}
	if (any_stats) {
		int have_gw = !isnan(gw_p99);
		if (!have_gw) {
			/* No gateway row: the services' figures, summed. */
			rps = errs = 0;
			for (size_t i = 0; i < nsvcs; i++)
				if (svcs[i].has_stats && !isnan(svcs[i].rps)) {
					rps += svcs[i].rps;
					if (!isnan(svcs[i].error_rate))
						errs += svcs[i].rps * svcs[i].error_rate;
				}
		}
		m->rps = rps;
		m->error_pct = rps > 0 ? 100.0 * errs / rps : 0.0;
		m->p99_ms = have_gw ? gw_p99 : p99;
	}
	for (size_t i = 0; i < nb; i++)
		m->open_breakers += model_breaker_is_open(b[i].state);
	for (size_t i = 0; i < nq; i++) {
		if (q[i].lag > 0)
			m->queue_lag += q[i].lag;
		if (q[i].lag_ms > m->queue_lag_ms)
			m->queue_lag_ms = q[i].lag_ms;
		m->dead_letters += q[i].dead;
	}
	if (!sagas_known) {
		m->orders_per_min = -1;
		return;
	}
	int recent = 0, older = 0;
	for (size_t i = 0; i < nsagas; i++) {
		if (sagas[i].created_us > 0 && now_us - sagas[i].created_us <= 60000000LL)
			recent++;
		else
			older++;
	}
	m->orders_per_min = recent;
	m->orders_capped = sagas_limit > 0 && nsagas >= sagas_limit && older == 0;
}

/* ---- the fault line ------------------------------------------------------------------------- */

static int parse_whole(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

/* A bare number in unit (microseconds per one), or a duration with its
 * own unit ("250ms", "90s", "15m", "2h"), in whole units. */
static int parse_time_in(const char *s, int64_t unit, long long *out)
{
	int64_t us;
	if (parse_whole(s, out) == 0)
		return *out < 0 ? -1 : 0;
	if (units_duration_us(s, &us) != 0)
		return -1;
	*out = (long long)(us / unit);
	return 0;
}

int model_parse_fault_line(const char *line, char *target, size_t tlen, json_t **body, char *err,
			   size_t errlen)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", line ? line : "");
	char *save = NULL, *tok = strtok_r(buf, " \t", &save);
	if (!tok || !text_is_name(tok, FAULT_MAX_TARGET + 1) || strchr(tok, '='))
		return snprintf(err, errlen, "start with the target: a service or provider name"),
		       ERR_INVALID;
	snprintf(target, tlen, "%s", tok);
	long long latency = 0, jitter = 0, status = FAULT_DEFAULT_STATUS, dur = 0;
	double rate = 0;
	int outage = 0, any = 0;
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		char *eq = strchr(tok, '=');
		const char *val = eq ? eq + 1 : "";
		if (eq)
			*eq = '\0';
		int bad = 0;
		if (strcmp(tok, "outage") == 0 && !eq) {
			outage = 1;
		} else if (strcmp(tok, "latency") == 0 || strcmp(tok, "latency_ms") == 0) {
			bad = parse_time_in(val, 1000, &latency);
		} else if (strcmp(tok, "jitter") == 0 || strcmp(tok, "jitter_ms") == 0) {
			bad = parse_time_in(val, 1000, &jitter);
		} else if (strcmp(tok, "error") == 0 || strcmp(tok, "error_rate") == 0) {
			bad = units_ratio(val, &rate) != 0;
		} else if (strcmp(tok, "status") == 0 || strcmp(tok, "error_status") == 0) {
			bad = parse_whole(val, &status);
		} else if (strcmp(tok, "for") == 0 || strcmp(tok, "duration") == 0 ||
			   strcmp(tok, "duration_s") == 0) {
			bad = parse_time_in(val, 1000000, &dur);
		} else {
			return snprintf(err, errlen,
					"unknown '%s' (latency= jitter= error= status= outage for=)", tok),
			       ERR_INVALID;
		}
		if (bad)
			return snprintf(err, errlen, "'%s=%s' is not a %s", tok, val,
					strcmp(tok, "error") == 0 || strcmp(tok, "error_rate") == 0
						? "rate (0.1 or 10%)"
					: strncmp(tok, "status", 6) == 0 || strcmp(tok, "error_status") == 0
						? "status"
						: "time (a number, or 250ms, 90s, 15m, 2h)"),
			       ERR_INVALID;
		any = 1;
	}
	if (!any)
		return snprintf(err, errlen, "say what fault: latency=MS, error=RATE or outage"),
		       ERR_INVALID;
	json_t *b = json_pack("{s:I,s:I,s:f,s:I,s:b,s:I}", "latency_ms", (json_int_t)latency,
			      "jitter_ms", (json_int_t)jitter, "error_rate", rate, "error_status",
			      (json_int_t)status, "outage", outage, "duration_s", (json_int_t)dur);
	if (!b)
		return snprintf(err, errlen, "out of memory"), ERR_NOMEM;
	/* The same checks as the platform's, so a bad line is told here. */
	fault_spec spec;
	jval_error e = { { 0 }, { 0 } };
	if (fault_parse_json(b, 0, &spec, &e) != 0) {
		snprintf(err, errlen, "%s: %s", e.field, e.message);
		json_decref(b);
		return ERR_INVALID;
	}
	*body = b;
	return 0;
}
