/* log: structured JSON-lines logging. One line per event:
 *   {"ts":"...","level":"info","service":"catalog","msg":"...","trace_id":"..."}
 * The timestamp comes from the logger's clock (virtual in the simulator).
 * Thread-safe; each line is written with one fwrite. */
#ifndef ECOM_LOG_H
#define ECOM_LOG_H

#include <stdio.h>
#include "core/clock.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

typedef struct logger logger;

/* A logger writing to out (borrowed; not closed by log_free) for service,
 * reading time from clock (borrowed). Lines below min are dropped. */
logger *log_new(const char *service, FILE *out, clock_src *clock, enum log_level min);
void log_free(logger *lg);
void log_set_level(logger *lg, enum log_level min);
/* Parses "debug", "info", "warn", "error"; -1 when unknown. */
int log_level_parse(const char *s);

/* Writes one line. trace_id may be NULL. msg is printf-style; the result is
 * JSON-escaped. A NULL logger is allowed and does nothing. */
void log_msg(logger *lg, enum log_level lv, const char *trace_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_debug(lg, ...) log_msg((lg), LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(lg, ...) log_msg((lg), LOG_WARN, NULL, __VA_ARGS__)
#define log_error(lg, ...) log_msg((lg), LOG_ERROR, NULL, __VA_ARGS__)

#endif
