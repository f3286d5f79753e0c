/* threshold: parsing and deciding k6-style thresholds. */
#include "sim/threshold.h"
#include "core/err.h"
#include "sim/units.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	threshold_metric m;
} names[] = {
	{ "max", TM_MAX },
	{ "min", TM_MIN },
	{ "mean", TM_MEAN },
	{ "avg", TM_MEAN },
	{ "error_rate", TM_ERROR_RATE },
	{ "errors", TM_ERRORS },
	{ "count", TM_COUNT },
	{ "expected", TM_EXPECTED },
	{ "unrouted", TM_UNROUTED },
	{ "rate", TM_RATE },
	{ "dropped", TM_DROPPED },
	{ "dropped_rate", TM_DROPPED_RATE },
	{ "orders_created", TM_ORDERS_CREATED },
	{ "orders_confirmed", TM_ORDERS_CONFIRMED },
	{ "orders_cancelled", TM_ORDERS_CANCELLED },
	{ "orders_open", TM_ORDERS_OPEN },
	{ "orders_unknown", TM_ORDERS_UNKNOWN },
	{ "orders_lost", TM_ORDERS_LOST },
	{ "duplicate_mismatch", TM_DUPLICATE_MISMATCH },
	{ "schedule_failures", TM_SCHEDULE_FAILURES },
	{ "audit_failures", TM_AUDIT_FAILURES },
};

static const char *const op_names[] = { "<", "<=", ">", ">=", "==", "!=" };

const char *threshold_op_name(threshold_op op)
{
	return (int)op >= TOP_LT && (int)op <= TOP_NE ? op_names[op] : "?";
}

threshold_kind threshold_metric_kind(threshold_metric m)
{
	switch (m) {
	case TM_PERCENTILE:
	case TM_MAX:
	case TM_MIN:
	case TM_MEAN:
		return TK_LATENCY;
	case TM_ERROR_RATE:
	case TM_DROPPED_RATE:
		return TK_RATIO;
	case TM_RATE:
		return TK_RATE;
	default:
		return TK_COUNT;
	}
}

static int run_wide(threshold_metric m) { return m >= TM_DROPPED; }

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && len)
		vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return ERR_INVALID;
}

/* "p99", "p99.9", "p(95)": 1 with the percentile, 0 when s is not one. */
static int percentile(const char *s, double *pct)
{
	char num[32];
	size_t n = strlen(s);
	if (n < 2 || s[0] != 'p')
		return 0;
	if (s[1] == '(') {
		if (s[n - 1] != ')' || n - 3 >= sizeof num || n < 4)
			return 0;
		memcpy(num, s + 2, n - 3);
		num[n - 3] = '\0';
	} else {
		if (n - 1 >= sizeof num)
			return 0;
		memcpy(num, s + 1, n);
	}
	double v;
	if (units_number(num, &v) || v <= 0 || v > 100)
		return 0;
	*pct = v;
	return 1;
}

/* The metric named s: 0 with out filled, else ERR_NOT_FOUND. */
static int metric_of(const char *s, threshold *out)
{
	if (percentile(s, &out->pct)) {
		out->metric = TM_PERCENTILE;
		return 0;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i].name) == 0) {
			out->metric = names[i].m;
			return 0;
		}
	return ERR_NOT_FOUND;
}

static int value_of(const char *s, threshold *t, char *err, size_t errlen)
{
	double v;
	int64_t us;
	char label[48];
	threshold_metric_label(t, label, sizeof label);
	switch (threshold_metric_kind(t->metric)) {
	case TK_LATENCY:
		if (units_duration_us(s, &us) == 0) {
			t->value = (double)us;
			return 0;
		}
		if (units_number(s, &v) == 0) { /* bare number: milliseconds, as k6 */
			t->value = v * 1000.0;
			return 0;
		}
		return fail(err, errlen, "expected a duration such as 250ms or 1.5s after '%s %s', got '%s'",
			    label, threshold_op_name(t->op), s);
	case TK_RATIO:
		if (units_ratio(s, &v) == 0) {
			t->value = v;
			return 0;
		}
		return fail(err, errlen,
			    "expected a ratio such as 1%% or 0.01 after '%s %s', got '%s'", label,
			    threshold_op_name(t->op), s);
	case TK_RATE: {
		char num[32];
		size_t n = strlen(s);
		if (n > 2 && strcmp(s + n - 2, "/s") == 0 && n - 2 < sizeof num) {
			memcpy(num, s, n - 2);
			num[n - 2] = '\0';
			s = num;
		}
		if (units_number(s, &v) == 0) {
			t->value = v;
			return 0;
		}
		return fail(err, errlen, "expected requests per second such as 100 or 100/s after '%s %s', got '%s'",
			    label, threshold_op_name(t->op), s);
	}
	case TK_COUNT:
	default:
		if (units_number(s, &v) == 0 && v == floor(v)) {
			t->value = v;
			return 0;
		}
		return fail(err, errlen, "expected a whole number after '%s %s', got '%s'", label,
			    threshold_op_name(t->op), s);
	}
}

int threshold_parse(const char *expr, const char *const *endpoints, threshold *out, char *err,
		    size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!expr)
		return fail(err, errlen, "expected a threshold such as 'p99 < 250ms'");
	/* The text without blanks (kept squeezed for display). */
	char flat[THRESHOLD_TEXT_MAX];
	size_t n = 0, t = 0;
	int blank = 0;
	for (const char *p = expr; *p; p++) {
		if (isspace((unsigned char)*p)) {
			blank = t > 0;
			continue;
		}
		if (n + 1 >= sizeof flat || t + 2 >= sizeof out->text)
			return fail(err, errlen, "threshold too long (at most %d characters)",
				    THRESHOLD_TEXT_MAX - 2);
		if (blank)
			out->text[t++] = ' ';
		blank = 0;
		out->text[t++] = *p;
		flat[n++] = *p;
	}
	out->text[t] = '\0';
	flat[n] = '\0';
	if (n == 0)
		return fail(err, errlen, "expected a threshold such as 'p99 < 250ms', got nothing");
	size_t at = strcspn(flat, "<>=!");
	if (flat[at] == '\0')
		return fail(err, errlen, "expected an operator (< <= > >= == !=) in '%s'", out->text);
	char lhs[64];
	if (at == 0)
		return fail(err, errlen, "expected a metric such as p99 or error_rate before '%c'",
			    flat[0]);
	if (at >= sizeof lhs)
		return fail(err, errlen, "metric name too long in '%s'", out->text);
	memcpy(lhs, flat, at);
	lhs[at] = '\0';
	const char *o = flat + at, *rhs;
	if (strncmp(o, "<=", 2) == 0)
		out->op = TOP_LE, rhs = o + 2;
	else if (strncmp(o, ">=", 2) == 0)
		out->op = TOP_GE, rhs = o + 2;
	else if (strncmp(o, "==", 2) == 0)
		out->op = TOP_EQ, rhs = o + 2;
	else if (strncmp(o, "!=", 2) == 0)
		out->op = TOP_NE, rhs = o + 2;
	else if (*o == '<')
		out->op = TOP_LT, rhs = o + 1;
	else if (*o == '>')
		out->op = TOP_GT, rhs = o + 1;
	else
		return fail(err, errlen, "expected an operator (< <= > >= == !=) after '%s', got '%s'",
			    lhs, o);
	if (!*rhs)
		return fail(err, errlen, "expected a value after '%s %s'", lhs,
			    threshold_op_name(out->op));
	/* METRIC, or ENDPOINT.METRIC (a percentile may hold a dot itself). */
	if (metric_of(lhs, out) != 0) {
		char *dot = strchr(lhs, '.');
		if (!dot)
			return fail(err, errlen,
				    "unknown metric '%s' (expected pN, max, min, mean, error_rate, errors, "
				    "count, rate, dropped, orders_lost, ... or ENDPOINT.METRIC)",
				    lhs);
		*dot = '\0';
		if (metric_of(dot + 1, out) != 0)
			return fail(err, errlen,
				    "unknown metric '%s' after '%s.' (expected pN, max, min, mean, "
				    "error_rate, errors, count, expected, unrouted or rate)",
				    dot + 1, lhs);
		if (run_wide(out->metric))
			return fail(err, errlen, "'%s' is measured for the whole run, not per endpoint",
				    dot + 1);
		int known = endpoints == NULL;
		for (int i = 0; endpoints && endpoints[i] && !known; i++)
			known = strcmp(endpoints[i], lhs) == 0;
		if (!known || strlen(lhs) >= sizeof out->endpoint) {
			char list[256] = "";
			for (int i = 0; endpoints && endpoints[i]; i++) {
				size_t l = strlen(list);
				snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", endpoints[i]);
			}
			return fail(err, errlen, "unknown endpoint '%s' (expected one of %s)", lhs, list);
		}
		snprintf(out->endpoint, sizeof out->endpoint, "%s", lhs);
	}
	return value_of(rhs, out, err, errlen);
}

int threshold_pass(const threshold *t, double v)
{
	/* Latencies and rates compare as measured; a tiny epsilon keeps "== 0"
	 * and "< 1%" free of rounding surprises. */
	double x = t->value, eps = 1e-9 * (fabs(x) > 1 ? fabs(x) : 1);
	if (isnan(v))
		return 0;
	switch (t->op) {
	case TOP_LT: return v < x - eps;
	case TOP_LE: return v <= x + eps;
	case TOP_GT: return v > x + eps;
	case TOP_GE: return v >= x - eps;
	case TOP_EQ: return fabs(v - x) <= eps;
	case TOP_NE: return fabs(v - x) > eps;
	}
	return 0;
}

void threshold_metric_label(const threshold *t, char *buf, size_t len)
{
	if (t->metric == TM_PERCENTILE) {
		snprintf(buf, len, "p%g", t->pct);
		return;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].m == t->metric) {
			snprintf(buf, len, "%s", names[i].name);
			return;
		}
	snprintf(buf, len, "?");
}

void threshold_fmt_value(threshold_metric m, double v, char *buf, size_t len)
{
	if (isnan(v)) {
		snprintf(buf, len, "n/a");
		return;
	}
	switch (threshold_metric_kind(m)) {
	case TK_LATENCY: units_fmt_us((int64_t)llround(v), buf, len); break;
	case TK_RATIO: snprintf(buf, len, "%.2f%%", v * 100.0); break;
	case TK_RATE: snprintf(buf, len, "%.1f/s", v); break;
	default: snprintf(buf, len, "%.0f", v); break;
	}
}
