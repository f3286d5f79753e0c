/* trace: W3C Trace Context (https://www.w3.org/TR/trace-context/), the
 * `traceparent` header that makes one checkout one trace across every
 * service and event:
 *
 *   traceparent: 00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>
 *
 * Parsing follows the spec's rules for a receiver: lowercase hex only; an
 * all-zero trace-id or parent-id is invalid; version ff is forbidden;
 * version 00 is exactly 55 characters; a higher version is read by its
 * first four fields when it is at least that long and anything after them
 * starts with '-'. An invalid header is replaced by a new trace (the
 * caller's decision: trace_parse only says it is invalid). Ids come from
 * the caller's rng, so the simulator's traces are reproducible. Plain data;
 * no allocation. */
#ifndef ECOM_TRACE_H
#define ECOM_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"

#define TRACE_HEADER "traceparent"
/* "00-" + 32 + "-" + 16 + "-" + 2, and its NUL. */
#define TRACE_PARENT_LEN 55
#define TRACE_PARENT_SIZE 56
#define TRACE_ID_HEX 33   /* 32 hex digits and NUL */
#define TRACE_SPAN_HEX 17 /* 16 hex digits and NUL */
#define TRACE_FLAG_SAMPLED 0x01

typedef struct trace_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8]; /* the span this context names (a child's parent) */
	uint8_t flags;
} trace_ctx;

/* Reads a traceparent header. 0 with *out filled, ERR_PARSE when s is NULL
 * or not valid by the rules above (*out then zeroed). */
int trace_parse(const char *s, trace_ctx *out);

/* Writes "00-<trace>-<span>-<flags>" into buf (at least TRACE_PARENT_SIZE
 * bytes). Version 00 always: a receiver of a higher version re-emits 00. */
void trace_format(const trace_ctx *t, char *buf, size_t size);

/* A new trace (random trace id and span id, sampled) from r. */
void trace_new_root(trace_ctx *out, rng *r);

/* A child of parent: same trace id and flags, a new random span id. */
void trace_child(const trace_ctx *parent, trace_ctx *out, rng *r);

/* 1 when t carries a trace (its trace id is not all zero). */
int trace_valid(const trace_ctx *t);

/* Lowercase hex of the trace id (TRACE_ID_HEX bytes) / a span id
 * (TRACE_SPAN_HEX bytes). */
void trace_id_hex(const uint8_t id[16], char *out);
void trace_span_hex(const uint8_t id[8], char *out);

/* Reads 32 / 16 lowercase hex digits (nothing more) into id. 0, or
 * ERR_PARSE. All-zero ids are accepted here (the caller decides). */
int trace_id_from_hex(const char *hex, uint8_t id[16]);
int trace_span_from_hex(const char *hex, uint8_t id[8]);

#endif
