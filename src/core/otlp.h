/* otlp: spans in OpenTelemetry's OTLP/JSON encoding, the body of a POST to
 * an OTLP/HTTP collector's /v1/traces or a line of an export file:
 *
 *   {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
 *      "value": {"stringValue": "order"}}]},
 *     "scopeSpans": [{"scope": {"name": "ecom"}, "spans": [{"traceId": "<32 hex>",
 *      "spanId": "<16 hex>", "parentSpanId": "<16 hex>", "name": "...", "kind": 2,
 *      "startTimeUnixNano": "...", "endTimeUnixNano": "...",
 *      "attributes": [{"key": ..., "value": {"stringValue": ...}}],
 *      "status": {"code": 1, "message": "..."}}]}]}]}
 *
 * As the OTLP/JSON rules say: ids are lowercase hex (not base64), 64-bit
 * integers are decimal strings, enums are integers, keys are lowerCamelCase,
 * and a root span has no parentSpanId. One resourceSpans entry per service,
 * in the order services first appear. Written here because no C library
 * for it is packaged in Debian (opentelemetry-cpp is C++ and not packaged). */
#ifndef ECOM_OTLP_H
#define ECOM_OTLP_H

#include <stddef.h>

#include <jansson.h>

#include "core/tracer.h"

/* The OTLP/JSON ExportTraceServiceRequest of the n spans. New reference;
 * NULL when out of memory. */
json_t *otlp_export(const span *spans, size_t n);

#endif
