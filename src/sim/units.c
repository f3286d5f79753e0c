/* units: durations and ratios as scenario files write them. */
#include "sim/units.h"
#include "core/err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_US (86400LL * 1000000LL)

/* strtod that refuses hex, inf, nan and leading blanks. end gets the rest. */
static int decimal(const char *s, double *out, const char **end)
{
	if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return ERR_INVALID;
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	if (e == s || errno || !isfinite(v) || v < 0)
		return ERR_INVALID;
	/* strtod takes "0x10" and "1e3": only digits and one dot. */
	for (const char *p = s; p < e; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return ERR_INVALID;
	*out = v;
	*end = e;
	return 0;
}

int units_number(const char *s, double *out)
{
	const char *end;
	double v;
	if (decimal(s, &v, &end) || *end)
		return ERR_INVALID;
	*out = v;
	return 0;
}

int units_duration_us(const char *s, int64_t *out)
{
	static const struct {
		const char *unit;
		double us;
	} units[] = { { "us", 1 }, { "µs", 1 }, { "ms", 1e3 }, { "s", 1e6 }, { "m", 60e6 }, { "h", 3600e6 } };
	const char *end;
	double v;
	if (decimal(s, &v, &end))
		return ERR_INVALID;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		double us = v * units[i].us;
		if (us > (double)DAY_US)
			return ERR_INVALID;
		*out = (int64_t)llround(us);
		return 0;
	}
	return ERR_INVALID;
}

int units_ratio(const char *s, double *out)
{
	const char *end;
	double v;
	if (decimal(s, &v, &end))
		return ERR_INVALID;
	if (strcmp(end, "%") == 0) {
		if (v > 100)
			return ERR_INVALID;
		*out = v / 100.0;
		return 0;
	}
	if (*end || v > 1)
		return ERR_INVALID;
	*out = v;
	return 0;
}

void units_fmt_us(int64_t us, char *buf, size_t len)
{
	if (us < 0)
		us = 0;
	if (us < 1000)
		snprintf(buf, len, "%lldus", (long long)us);
	else if (us < 10000)
		snprintf(buf, len, "%.2fms", us / 1e3);
	else if (us < 1000000)
		snprintf(buf, len, "%.1fms", us / 1e3);
	else if (us < 60000000)
		snprintf(buf, len, "%.2fs", us / 1e6);
	else
		snprintf(buf, len, "%lldm%02llds", (long long)(us / 60000000),
			 (long long)((us / 1000000) % 60));
}
