/* clock: the time source engines read, in microseconds since the Unix epoch.
 * A real clock reads CLOCK_REALTIME; a virtual clock only moves when told to,
 * which is what makes tests and the deterministic simulator repeatable.
 * Thread-safe. */
#ifndef ECOM_CLOCK_H
#define ECOM_CLOCK_H

#include <stdint.h>
#include <time.h>

typedef struct clock_src clock_src;

/* A new real clock. Owned by the caller: clock_free(). */
clock_src *clock_real_new(void);
/* A new virtual clock standing at start_us. Owned by the caller. */
clock_src *clock_virtual_new(int64_t start_us);
void clock_free(clock_src *c);

/* Now, in microseconds since the epoch. */
int64_t clock_now(clock_src *c);
/* Moves a virtual clock forward by delta_us (>= 0). ERR_INVALID on a real
 * clock or a negative delta. */
int clock_advance(clock_src *c, int64_t delta_us);
/* Sets a virtual clock to t_us (never backwards). */
int clock_set(clock_src *c, int64_t t_us);
int clock_is_virtual(const clock_src *c);

/* Lets us microseconds pass: a real clock sleeps (the calling thread
 * blocks), a virtual clock moves forward at once, so a retry's backoff
 * costs a test or the simulator no wall time. us <= 0 does nothing. */
void clock_sleep_us(clock_src *c, int64_t us);

/* Monotonic microseconds for measuring durations on the host side (never
 * given to engines). */
int64_t clock_mono_us(void);
/* The moment after_us (>= 0) from now on the system clock id
 * (CLOCK_MONOTONIC or CLOCK_REALTIME), into *ts: the deadline of a timed
 * wait (pthread_cond_timedwait, pthread_mutex_clocklock). Host side, like
 * clock_mono_us. */
void clock_deadline(struct timespec *ts, clockid_t id, int64_t after_us);

/* Formats t_us as RFC 3339 UTC with milliseconds ("2026-11-25T23:24:15.123Z")
 * into buf (at least 32 bytes). Returns buf. */
char *clock_fmt_rfc3339(int64_t t_us, char *buf, unsigned long len);
/* Reads what clock_fmt_rfc3339 writes (UTC, "Z", any number of fraction
 * digits, or none) into microseconds. 0 or ERR_INVALID. */
int clock_parse_rfc3339(const char *s, int64_t *t_us);

#endif
