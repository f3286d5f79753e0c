/* otlp: see otlp.h. */
#include "core/otlp.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static json_t *kv_string(const char *key, const char *value)
{
	return json_pack("{s:s,s:{s:s}}", "key", key, "value", "stringValue", value);
}

static json_t *otlp_span(const span *s)
{
	char tid[TRACE_ID_HEX], sid[TRACE_SPAN_HEX], pid[TRACE_SPAN_HEX];
	char start[24], end[24];
	trace_id_hex(s->trace_id, tid);
	trace_span_hex(s->span_id, sid);
	trace_span_hex(s->parent_id, pid);
	snprintf(start, sizeof(start), "%" PRId64, s->start_us * 1000);
	snprintf(end, sizeof(end), "%" PRId64, (s->start_us + s->dur_us) * 1000);
	json_t *attrs = json_array();
	for (int i = 0; attrs && i < s->nattrs; i++)
		json_array_append_new(attrs, kv_string(s->attrs[i].key, s->attrs[i].value));
	json_t *status = json_pack("{s:i}", "code", (int)s->status);
	if (status && s->status_msg[0])
		json_object_set_new(status, "message", json_string(s->status_msg));
	json_t *v = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:o*,s:o*}", "traceId", tid, "spanId", sid,
			      "name", s->name, "kind", (int)s->kind, "startTimeUnixNano", start,
			      "endTimeUnixNano", end, "attributes", attrs, "status", status);
	if (v && strcmp(pid, "0000000000000000") != 0)
		json_object_set_new(v, "parentSpanId", json_string(pid));
	return v;
}

/* The spans array of service's resourceSpans entry, made when missing. */
static json_t *service_spans(json_t *resource_spans, const char *service)
{
	size_t i;
	json_t *rs;
	json_array_foreach(resource_spans, i, rs)
	{
		json_t *attr = json_array_get(
			json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
		const char *name = json_string_value(
			json_object_get(json_object_get(attr, "value"), "stringValue"));
		if (name && strcmp(name, service) == 0)
			return json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0),
					       "spans");
	}
	json_t *spans = json_array();
	rs = json_pack("{s:{s:[o]},s:[{s:{s:s},s:o}]}", "resource", "attributes",
		       kv_string("service.name", service), "scopeSpans", "scope", "name", "ecom",
		       "spans", spans);
	if (!rs || json_array_append_new(resource_spans, rs))
		return NULL;
	return spans;
}

json_t *otlp_export(const span *spans, size_t n)
{
	json_t *rs = json_array();
	json_t *out = json_pack("{s:o}", "resourceSpans", rs);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *arr = service_spans(rs, spans[i].service);
		json_t *sp = otlp_span(&spans[i]);
		if (!arr || !sp || json_array_append_new(arr, sp)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}
