/* clock: real and virtual time sources. */
#include "core/clock.h"
#include "core/err.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct clock_src {
	int is_virtual;
	int64_t now_us;
	pthread_mutex_t mu;
};

static clock_src *clock_alloc(int is_virtual, int64_t start)
{
	clock_src *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->is_virtual = is_virtual;
	c->now_us = start;
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

clock_src *clock_real_new(void) { return clock_alloc(0, 0); }

clock_src *clock_virtual_new(int64_t start_us) { return clock_alloc(1, start_us); }

void clock_free(clock_src *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int64_t clock_now(clock_src *c)
{
	if (!c->is_virtual) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	}
	pthread_mutex_lock(&c->mu);
	int64_t t = c->now_us;
	pthread_mutex_unlock(&c->mu);
	return t;
}

void clock_sleep_us(clock_src *c, int64_t us)
{
	if (us <= 0)
		return;
	if (c->is_virtual) {
		clock_advance(c, us);
		return;
	}
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		; /* interrupted: sleep the rest */
}

int clock_advance(clock_src *c, int64_t delta_us)
{
	if (!c->is_virtual || delta_us < 0)
		return ERR_INVALID;
	pthread_mutex_lock(&c->mu);
	c->now_us += delta_us;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

int clock_set(clock_src *c, int64_t t_us)
{
	if (!c->is_virtual)
		return ERR_INVALID;
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	if (t_us < c->now_us)
		rc = ERR_INVALID;
	else
		c->now_us = t_us;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int clock_is_virtual(const clock_src *c) { return c->is_virtual; }

int64_t clock_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_deadline(struct timespec *ts, clockid_t id, int64_t after_us)
{
	clock_gettime(id, ts);
	if (after_us < 0)
		after_us = 0;
	ts->tv_sec += (time_t)(after_us / 1000000);
	ts->tv_nsec += (long)(after_us % 1000000) * 1000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

char *clock_fmt_rfc3339(int64_t t_us, char *buf, unsigned long len)
{
	time_t secs = (time_t)(t_us / 1000000);
	int ms = (int)((t_us % 1000000) / 1000);
	if (t_us < 0) {
		secs = 0;
		ms = 0;
	}
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	return buf;
}

int clock_parse_rfc3339(const char *s, int64_t *t_us)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19 || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return ERR_INVALID;
	const char *p = s + n;
	int64_t frac = 0, scale = 1000000;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return ERR_INVALID;
		for (p++; isdigit((unsigned char)*p); p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	if (strcmp(p, "Z") != 0)
		return ERR_INVALID;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi, .tm_sec = sec };
	*t_us = (int64_t)timegm(&tm) * 1000000 + frac;
	return 0;
}
