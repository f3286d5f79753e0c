/* exporter: a process's spans sent on to OpenTelemetry as OTLP/JSON
 * (core/otlp): appended to a file, one ExportTraceServiceRequest per line
 * (otel.export_file), and/or POSTed to an OTLP/HTTP collector's /v1/traces
 * (otel.endpoint), in batches, from a thread of its own.
 *
 * The queue is the tracer's ring itself (tracer_since): each sink keeps its
 * position in it, so recording a span never waits for an export, the
 * queue is bounded by the ring, and spans the ring overwrote before a sink
 * read them are counted as dropped (otel_spans_dropped_total{sink}). A
 * batch the collector did not take (no answer, or not a 2xx) is tried again
 * at the next round, until the ring moves past it. Owned by the host:
 * exporter_new / exporter_free. */
#ifndef ECOM_EXPORTER_H
#define ECOM_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/tracer.h"

typedef struct exporter_opts {
	const char *file;     /* append here; NULL or "": no file */
	const char *endpoint; /* collector base URL (http://HOST:PORT, or .../v1/traces); NULL or "": none */
	int64_t flush_ms;     /* the thread's period (default 1000) */
	size_t batch;         /* most spans per line or POST (default 512) */
	int64_t timeout_ms;   /* a POST's timeout (default 2000) */
} exporter_opts;

typedef struct exporter exporter;

/* An exporter of t's spans (t, lg and m borrowed; m may be NULL), from
 * the oldest the ring still holds. NULL with err filled when neither
 * sink is given or out of memory. */
exporter *exporter_new(tracer *t, const exporter_opts *o, logger *lg, metrics *m, char *err,
		       size_t errlen);
/* Runs the export thread. 0 or ERR_INTERNAL. */
int exporter_start(exporter *e);
/* One round now, on the caller's thread: every sink sends what it has not
 * sent (in batches). Returns the spans sent (to any sink). */
size_t exporter_flush(exporter *e);
/* Stops the thread, makes a last round, frees. NULL is fine. */
void exporter_free(exporter *e);

#endif
