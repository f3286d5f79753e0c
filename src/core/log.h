/* log: structured JSON-lines logging. One line per event:
 *   {"timestamp":"2026-01-02T03:04:05.123456Z","level":"info","service":"catalog",
 *    "message":"...","trace_id":"<32 hex>","span_id":"<16 hex>"}
 * The timestamp (RFC 3339, microseconds) comes from the logger's clock
 * (virtual in the simulator). trace_id and span_id name the span the line
 * was written in: given explicitly, or read from the logger's trace source
 * (the host's current request, see log_set_trace_source); both are left out
 * when there is none. Thread-safe; each line is written with one fwrite. */
#ifndef ECOM_LOG_H
#define ECOM_LOG_H

#include <stdio.h>
#include "core/clock.h"
#include "core/trace.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

typedef struct logger logger;

/* A logger writing to out (borrowed; not closed by log_free) for service,
 * reading time from clock (borrowed). Lines below min are dropped. */
logger *log_new(const char *service, FILE *out, clock_src *clock, enum log_level min);
void log_free(logger *lg);
void log_set_level(logger *lg, enum log_level min);
/* Where lines without an explicit trace id find the span they belong to:
 * fn(ud) returns the calling thread's current trace context (NULL or one
 * that is not valid: none). Set once, before other threads log. */
void log_set_trace_source(logger *lg, const trace_ctx *(*fn)(void *ud), void *ud);
/* Parses "debug", "info", "warn", "error"; -1 when unknown. */
int log_level_parse(const char *s);

/* Writes one line. trace_id may be NULL (then the trace source, if any,
 * gives the ids). msg is printf-style; the result is
 * JSON-escaped. A NULL logger is allowed and does nothing. */
void log_msg(logger *lg, enum log_level lv, const char *trace_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_debug(lg, ...) log_msg((lg), LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(lg, ...) log_msg((lg), LOG_WARN, NULL, __VA_ARGS__)
#define log_error(lg, ...) log_msg((lg), LOG_ERROR, NULL, __VA_ARGS__)

#endif
