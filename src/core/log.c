/* log: JSON-lines logger. Lines are built in memory and written with a
 * single fwrite + fflush under the logger's mutex, so concurrent threads
 * never interleave within a line. The escaper is hand-written rather than
 * jansson's because a message may hold arbitrary bytes: invalid UTF-8 is
 * replaced with U+FFFD instead of losing the whole line. */
#include "core/log.h"
#include "core/text.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct logger {
	char *service;
	FILE *out;
	clock_src *clock;
	int min; /* enum log_level, read and written atomically */
	const trace_ctx *(*trace_fn)(void *ud);
	void *trace_ud;
	pthread_mutex_t mu;
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

logger *log_new(const char *service, FILE *out, clock_src *clock, enum log_level min)
{
	logger *lg = calloc(1, sizeof(*lg));
	if (!lg)
		return NULL;
	lg->service = strdup(service ? service : "");
	if (!lg->service) {
		free(lg);
		return NULL;
	}
	lg->out = out ? out : stderr;
	lg->clock = clock;
	lg->min = (int)min;
	pthread_mutex_init(&lg->mu, NULL);
	return lg;
}

void log_free(logger *lg)
{
	if (!lg)
		return;
	pthread_mutex_destroy(&lg->mu);
	free(lg->service);
	free(lg);
}

void log_set_level(logger *lg, enum log_level min)
{
	if (lg)
		__atomic_store_n(&lg->min, (int)min, __ATOMIC_RELAXED);
}

void log_set_trace_source(logger *lg, const trace_ctx *(*fn)(void *ud), void *ud)
{
	if (!lg)
		return;
	lg->trace_fn = fn;
	lg->trace_ud = ud;
}

int log_level_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* A growable line buffer; on allocation failure it stops growing and the
 * line is dropped. */
struct line {
	char *p;
	size_t len, cap;
	int failed;
};

static void line_put(struct line *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void line_puts(struct line *b, const char *s) { line_put(b, s, strlen(s)); }

/* Appends s as a JSON string literal, quotes included. */
static void line_json_str(struct line *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	line_put(b, "\"", 1);
	size_t i = 0;
	while (i < n) {
		/* Copy the longest run that needs no escaping in one go. */
		size_t run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			line_put(b, s + i, run - i);
			i = run;
			continue;
		}
		unsigned c = p[i];
		if (c >= 0x80) {
			size_t len = text_utf8_len(p + i, n - i);
			if (len == 0) {
				line_puts(b, "\\ufffd");
				i++;
			} else {
				line_put(b, s + i, len);
				i += len;
			}
			continue;
		}
		switch (c) {
		case '"': line_puts(b, "\\\""); break;
		case '\\': line_puts(b, "\\\\"); break;
		case '\n': line_puts(b, "\\n"); break;
		case '\r': line_puts(b, "\\r"); break;
		case '\t': line_puts(b, "\\t"); break;
		case '\b': line_puts(b, "\\b"); break;
		case '\f': line_puts(b, "\\f"); break;
		default: {
			char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
			line_puts(b, u);
		}
		}
		i++;
	}
	line_put(b, "\"", 1);
}

static int64_t now_us(logger *lg)
{
	if (lg->clock)
		return clock_now(lg->clock);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* RFC 3339 UTC with microseconds, so that lines of several services merge
 * in order (ecom logs). */
static void fmt_time_us(int64_t t_us, char *buf, size_t len)
{
	if (t_us < 0)
		t_us = 0;
	time_t secs = (time_t)(t_us / 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t_us % 1000000));
}

void log_msg(logger *lg, enum log_level lv, const char *trace_id, const char *fmt, ...)
{
	if (!lg || (int)lv < __atomic_load_n(&lg->min, __ATOMIC_RELAXED))
		return;
	if ((int)lv < 0 || (int)lv > LOG_ERROR)
		lv = LOG_ERROR;

	char small[512];
	char *msg = small;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		small[0] = '\0';
	} else if ((size_t)n >= sizeof(small)) {
		msg = malloc((size_t)n + 1);
		if (msg) {
			va_start(ap, fmt);
			vsnprintf(msg, (size_t)n + 1, fmt, ap);
			va_end(ap);
		} else {
			msg = small; /* truncated rather than lost */
		}
	}

	char ts[48];
	fmt_time_us(now_us(lg), ts, sizeof(ts));
	char tid[TRACE_ID_HEX] = "", sid[TRACE_SPAN_HEX] = "";
	if (!trace_id && lg->trace_fn) {
		const trace_ctx *t = lg->trace_fn(lg->trace_ud);
		if (t && trace_valid(t)) {
			trace_id_hex(t->trace_id, tid);
			trace_span_hex(t->span_id, sid);
			trace_id = tid;
		}
	}

	struct line b = {0};
	line_puts(&b, "{\"timestamp\":\"");
	line_puts(&b, ts);
	line_puts(&b, "\",\"level\":\"");
	line_puts(&b, level_names[lv]);
	line_puts(&b, "\",\"service\":");
	line_json_str(&b, lg->service);
	line_puts(&b, ",\"message\":");
	line_json_str(&b, msg);
	if (trace_id) {
		line_puts(&b, ",\"trace_id\":");
		line_json_str(&b, trace_id);
	}
	if (sid[0]) {
		line_puts(&b, ",\"span_id\":\"");
		line_puts(&b, sid);
		line_puts(&b, "\"");
	}
	line_puts(&b, "}\n");

	if (!b.failed) {
		pthread_mutex_lock(&lg->mu);
		fwrite(b.p, 1, b.len, lg->out);
		fflush(lg->out);
		pthread_mutex_unlock(&lg->mu);
	}
	free(b.p);
	if (msg != small)
		free(msg);
}
