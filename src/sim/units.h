/* units: the quantities a load scenario is written in, read and printed the
 * same way everywhere (scenario files, thresholds, --duration, the report):
 * durations ("250ms", "10s", "1.5s", "2m", "500us") and ratios ("1%",
 * "0.01"). */
#ifndef ECOM_UNITS_H
#define ECOM_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* A duration with its unit (us, ms, s, m, h; a decimal number before it)
 * into microseconds. 0 or ERR_INVALID (no unit, negative, over a day, junk
 * after it). */
int units_duration_us(const char *s, int64_t *out);
/* A ratio "N%" (0..100) or a plain fraction (0..1) into [0, 1]. 0 or
 * ERR_INVALID. */
int units_ratio(const char *s, double *out);
/* A plain decimal number (no unit), finite and >= 0. 0 or ERR_INVALID. */
int units_number(const char *s, double *out);
/* Microseconds for people: "850us", "23.4ms", "1.20s", "2m05s". */
void units_fmt_us(int64_t us, char *buf, size_t len);

#endif
