/* exporter: see exporter.h. */
#include "ops/exporter.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/otlp.h"
#include "net/http_client.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OTLP_PATH "/v1/traces"

typedef struct sink {
	const char *name; /* "file" or "otlp_http": the metrics' label */
	char *target;     /* the file, or the collector's base URL */
	char path[256];   /* the collector's path */
	uint64_t pos;     /* in the tracer's count: everything before was handled */
	int failing;      /* the last attempt failed (logged once) */
} sink;

struct exporter {
	tracer *t;
	logger *lg;
	metrics *m;
	sink sinks[2];
	int nsinks;
	int64_t flush_ms;
	size_t batch;
	int64_t timeout_ms;
	span *buf;
	pthread_mutex_t round_mu; /* one round at a time */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;
	int started;
	pthread_t tid;
};

static void count(exporter *e, const char *name, const sink *s, uint64_t n)
{
	char labels[48];
	snprintf(labels, sizeof(labels), "sink=\"%s\"", s->name);
	metrics_count(e->m, name, labels, n);
}

/* Splits the endpoint into base URL and path: a URL with a path keeps it,
 * a bare one gets /v1/traces. */
static int endpoint_split(const char *url, char **base, char *path, size_t pathlen)
{
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return ERR_INVALID;
	const char *host = strstr(url, "://") + 3;
	const char *slash = strchr(host, '/');
	size_t blen = slash ? (size_t)(slash - url) : strlen(url);
	snprintf(path, pathlen, "%s", slash && slash[1] ? slash : OTLP_PATH);
	*base = strndup(url, blen);
	return *base ? 0 : ERR_NOMEM;
}

exporter *exporter_new(tracer *t, const exporter_opts *o, logger *lg, metrics *m, char *err,
		       size_t errlen)
{
	int has_file = o && o->file && o->file[0], has_http = o && o->endpoint && o->endpoint[0];
	if (!t || (!has_file && !has_http)) {
		snprintf(err, errlen, "nothing to export to (otel.export_file, otel.endpoint)");
		return NULL;
	}
	exporter *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->t = t;
	e->lg = lg;
	e->m = m;
	e->flush_ms = o->flush_ms > 0 ? o->flush_ms : 1000;
	e->batch = o->batch > 0 ? (o->batch > 10000 ? 10000 : o->batch) : 512;
	e->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
	pthread_mutex_init(&e->round_mu, NULL);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	e->buf = calloc(e->batch, sizeof(*e->buf));
	int rc = e->buf ? 0 : ERR_NOMEM;
	if (rc == 0 && has_file) {
		sink *s = &e->sinks[e->nsinks++];
		s->name = "file";
		s->target = strdup(o->file);
		rc = s->target ? 0 : ERR_NOMEM;
	}
	if (rc == 0 && has_http) {
		sink *s = &e->sinks[e->nsinks++];
		s->name = "otlp_http";
		rc = endpoint_split(o->endpoint, &s->target, s->path, sizeof(s->path));
		if (rc == ERR_INVALID)
			snprintf(err, errlen, "otel.endpoint must be an http:// or https:// URL");
	}
	if (rc) {
		if (rc == ERR_NOMEM)
			snprintf(err, errlen, "out of memory");
		exporter_free(e);
		return NULL;
	}
	metrics_help(m, "otel_spans_exported_total", "Spans exported as OTLP/JSON, by sink.");
	metrics_help(m, "otel_spans_dropped_total",
		     "Spans the ring overwrote before a sink could export them, by sink.");
	metrics_help(m, "otel_export_failures_total",
		     "Exports that failed (kept for the next round), by sink.");
	return e;
}

/* Appends text and a newline with one write(2) on an O_APPEND descriptor:
 * every process of the platform may append to the same file, and a line
 * split over several writes could interleave with another's. */
static int write_line(const char *path, const char *text)
{
	size_t n = strlen(text);
	char *line = malloc(n + 1);
	if (!line)
		return ERR_NOMEM;
	memcpy(line, text, n);
	line[n] = '\n';
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	ssize_t w = fd >= 0 ? write(fd, line, n + 1) : -1;
	int bad = fd < 0 || w != (ssize_t)(n + 1);
	if (fd >= 0 && close(fd) != 0)
		bad = 1;
	free(line);
	return bad ? ERR_IO : 0;
}

static int post(exporter *e, const sink *s, const char *text, char *why, size_t whylen)
{
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	int rc = msg_req_init(&req, "POST", s->path);
	if (rc == 0)
		rc = msg_req_add_header(&req, "Content-Type", "application/json");
	if (rc == 0)
		rc = msg_req_set_body(&req, text, strlen(text));
	if (rc == 0) {
		http_call_opts o = { .connect_timeout_ms = 1000, .timeout_ms = e->timeout_ms };
		rc = http_client_do(s->target, &req, &resp, &o);
		if (rc)
			snprintf(why, whylen, "%s", err_name(rc));
		else if (resp.status < 200 || resp.status > 299) {
			snprintf(why, whylen, "HTTP %d", resp.status);
			rc = ERR_IO;
		}
	}
	msg_req_clear(&req);
	msg_resp_clear(&resp);
	return rc;
}

/* Sends what s has not sent, batch by batch; stops at the first failure
 * (the batch waits for the next round). Returns the spans sent. */
static size_t sink_round(exporter *e, sink *s)
{
	size_t sent = 0;
	for (;;) {
		uint64_t p = s->pos, lost = 0;
		size_t n = tracer_since(e->t, &p, e->buf, e->batch, &lost);
		if (lost) {
			s->pos += lost;
			count(e, "otel_spans_dropped_total", s, lost);
		}
		if (n == 0)
			return sent;
		json_t *doc = otlp_export(e->buf, n);
		char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
		char why[64] = "out of memory";
		int rc = !text ? ERR_NOMEM
			 : s->path[0] ? post(e, s, text, why, sizeof(why))
				      : write_line(s->target, text);
		free(text);
		if (rc) {
			if (rc == ERR_IO && !s->path[0])
				snprintf(why, sizeof(why), "cannot append to the file");
			count(e, "otel_export_failures_total", s, 1);
			if (!s->failing)
				log_warn(e->lg, "otel: export to %s failed (%s); retrying", s->target, why);
			s->failing = 1;
			return sent;
		}
		if (s->failing)
			log_info(e->lg, "otel: export to %s works again", s->target);
		s->failing = 0;
		s->pos = p;
		sent += n;
		count(e, "otel_spans_exported_total", s, n);
	}
}

size_t exporter_flush(exporter *e)
{
	if (!e)
		return 0;
	size_t sent = 0;
	pthread_mutex_lock(&e->round_mu);
	for (int i = 0; i < e->nsinks; i++)
		sent += sink_round(e, &e->sinks[i]);
	pthread_mutex_unlock(&e->round_mu);
	return sent;
}

static void *export_thread(void *arg)
{
	exporter *e = arg;
	for (;;) {
		struct timespec ts;
		clock_deadline(&ts, CLOCK_REALTIME, (int64_t)e->flush_ms * 1000);
		pthread_mutex_lock(&e->mu);
		while (!e->stopping)
			if (pthread_cond_timedwait(&e->cv, &e->mu, &ts) != 0)
				break;
		int stop = e->stopping;
		pthread_mutex_unlock(&e->mu);
		if (stop)
			return NULL;
		exporter_flush(e);
	}
}

int exporter_start(exporter *e)
{
	if (!e || e->started)
		return e ? 0 : ERR_INVALID;
	if (pthread_create(&e->tid, NULL, export_thread, e) != 0)
		return ERR_INTERNAL;
	e->started = 1;
	return 0;
}

void exporter_free(exporter *e)
{
	if (!e)
		return;
	if (e->started) {
		pthread_mutex_lock(&e->mu);
		e->stopping = 1;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->tid, NULL);
	}
	if (e->buf)
		exporter_flush(e);
	for (int i = 0; i < e->nsinks; i++)
		free(e->sinks[i].target);
	free(e->buf);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	pthread_mutex_destroy(&e->round_mu);
	free(e);
}
