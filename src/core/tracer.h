/* tracer: the spans one process has finished, kept in a bounded ring (the
 * oldest is overwritten), so an operator can gather a trace's spans from
 * every service (GET /admin/traces/{trace_id} on each) and export them as
 * OTLP/JSON (core/otlp). A span is plain data: ids (core/trace), the
 * service and operation, start and duration on the process's clock, a
 * status, and a few string attributes. Thread-safe (one mutex). Owned by
 * its creator: tracer_new / tracer_free. */
#ifndef ECOM_TRACER_H
#define ECOM_TRACER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/trace.h"

#define SPAN_ATTRS 6

/* OTLP's SpanKind values. */
enum span_kind {
	SPAN_INTERNAL = 1,
	SPAN_SERVER = 2,
	SPAN_CLIENT = 3,
	SPAN_PRODUCER = 4,
	SPAN_CONSUMER = 5
};

/* OTLP's StatusCode values. */
enum span_status { SPAN_UNSET = 0, SPAN_OK = 1, SPAN_ERROR = 2 };

typedef struct span_attr {
	char key[32];
	char value[96];
} span_attr;

typedef struct span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_id[8]; /* all zero for a root span */
	char service[32];
	char name[96];
	enum span_kind kind;
	int64_t start_us; /* microseconds since the epoch */
	int64_t dur_us;
	enum span_status status;
	char status_msg[96];
	span_attr attrs[SPAN_ATTRS];
	int nattrs;
} span;

typedef struct tracer tracer;

/* A ring of capacity spans (at least 1). NULL when out of memory. */
tracer *tracer_new(size_t capacity);
void tracer_free(tracer *t);

/* Starts *s (zeroed first) as the span self names: self's trace id and
 * span id, parent's span id as its parent (a root span when parent is NULL
 * or not valid), of service, named name, of kind, started at start_us. */
void span_begin(span *s, const trace_ctx *parent, const trace_ctx *self, const char *service,
		const char *name, enum span_kind kind, int64_t start_us);

/* Adds an attribute (dropped silently past SPAN_ATTRS; both truncated to
 * fit). */
void span_attr_set(span *s, const char *key, const char *value);

/* Records a finished span (copied). */
void tracer_record(tracer *t, const span *s);

/* Copies into out (up to max) the spans of trace_id still in the ring,
 * oldest first; returns how many. */
size_t tracer_find(tracer *t, const uint8_t trace_id[16], span *out, size_t max);

/* Copies the latest spans (up to max), oldest first; returns how many. */
size_t tracer_recent(tracer *t, span *out, size_t max);

/* For an exporter reading the ring as a queue: copies into out (up to max)
 * the spans recorded since *pos (a count of tracer_count, 0 at the start),
 * oldest first, and moves *pos past them. Spans overwritten before they
 * were read are skipped and their number added to *lost (may be NULL).
 * Returns how many were copied. */
size_t tracer_since(tracer *t, uint64_t *pos, span *out, size_t max, uint64_t *lost);

/* Spans recorded over the tracer's life (also those overwritten). */
uint64_t tracer_count(tracer *t);

/* A span as the admin API shows it: {trace_id, span_id, parent_span_id
 * (null for a root), service, name, kind, start (RFC 3339), start_us,
 * duration_us, status ("unset", "ok", "error"), status_message?,
 * attributes: {k: v}}. New reference, NULL when out of memory. */
json_t *span_json(const span *s);

/* The most spans one tracer_find_json answer holds. */
#define TRACER_FIND_MAX 1000

/* tracer_find of trace_id (up to max) as an array of span_json. New
 * reference, NULL when out of memory. */
json_t *tracer_find_json(tracer *t, const uint8_t trace_id[16], size_t max);

/* Reads span_json's shape back (what a gateway gathers from services).
 * 0, or ERR_PARSE. */
int span_from_json(const json_t *v, span *out);

#endif
