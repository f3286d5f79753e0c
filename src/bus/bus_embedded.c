/* bus_embedded: the embedded driver. No broker: a producer's host serves
 * its outbox as an ordered feed,
 *
 *     GET /v1/internal/feed/{service}/{topic}?after=ID&limit=N[&count=1]
 *
 * (service identities only), and a consumer's host polls each producer of
 * its topics through the gateway (engine_call_service; the route table
 * sends /v1/internal/feed/{service} to that service). The consumer's
 * position in each feed is a row of its own bus_offsets, moved in the
 * transaction of the effect; an instance leases the row before polling, so
 * one instance of a service reads a feed at a time (and the inbox makes a
 * second harmless when leases overlap). */
#include "bus/driver.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FEED_PREFIX "/v1/internal/feed/"
#define FEED_LIMIT_MAX 1000
/* A failed fetch is tried again after this long. */
#define FETCH_RETRY_US 1000000LL
/* Counting what waits costs a scan: at most once a second per feed. */
#define COUNT_EVERY_US 1000000LL
/* Rows counted at most (a consumer this far behind shows this many). */
#define COUNT_CAP 1000000

/* ---- producer: the feed ---------------------------------------------------- */

/* Query parameter name as an integer in [min, max], def when absent. 0, or
 * ERR_INVALID with resp filled. */
static int query_int(const msg_req *req, msg_resp *resp, const char *name, int64_t def,
		     int64_t min, int64_t max, int64_t *out)
{
	char buf[32];
	int q = msg_req_query(req, name, buf, sizeof(buf));
	*out = def;
	if (q == 0)
		return 0;
	char *end = NULL;
	long long v = q == 1 ? strtoll(buf, &end, 10) : 0;
	if (q != 1 || !buf[0] || *end || v < min || v > max) {
		char msg[96];
		snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld", (long long)min,
			 (long long)max);
		return engine_bad_field(resp, name, msg);
	}
	*out = v;
	return 0;
}

static json_t *feed_rows(bus *b, const char *topic, int64_t after, int64_t head, int64_t limit,
			 int *rc)
{
	const char *sql =
		b->has_traceparent
			? "SELECT id, key, payload, created_at, traceparent FROM outbox "
			  "WHERE topic = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?"
			: "SELECT id, key, payload, created_at, NULL FROM outbox "
			  "WHERE topic = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?";
	store_stmt *st = store_queryf(b->ctx->store, sql, rc, "tiii", topic, after, head, limit);
	if (!st)
		return NULL;
	json_t *arr = json_array();
	while ((*rc = store_step(st)) == STORE_ROW) {
		const char *tp = store_col_text(st, 4);
		json_t *m = json_pack("{s:I,s:s,s:s,s:I}", "seq", (json_int_t)store_col_int(st, 0), "key",
				      store_col_text(st, 1) ? store_col_text(st, 1) : "", "payload",
				      store_col_text(st, 2) ? store_col_text(st, 2) : "", "created_at",
				      (json_int_t)store_col_int(st, 3));
		if (m && tp)
			json_object_set_new(m, "traceparent", json_string(tp));
		if (!m || json_array_append_new(arr, m) != 0) {
			*rc = ERR_NOMEM;
			break;
		}
	}
	store_reset(st);
	if (*rc < 0) {
		json_decref(arr);
		return NULL;
	}
	*rc = 0;
	return arr;
}

static void serve_feed(bus *b, msg_req *req, msg_resp *resp, const char *service,
		       const char *topic)
{
	if (strcmp(req->method, "GET") != 0) {
		msg_resp_error(resp, 405, "method_not_allowed", "use GET", NULL);
		msg_resp_set_header(resp, "Allow", "GET");
		return;
	}
	if (engine_require_service(b->ctx, req, resp) != 0)
		return;
	if (strcmp(service, b->ctx->service) != 0) {
		msg_resp_error(resp, 404, "not_found", "this service serves only its own feed",
			       json_pack("{s:s}", "service", service));
		return;
	}
	int64_t after, limit, want_count;
	if (query_int(req, resp, "after", 0, 0, INT64_MAX, &after) ||
	    query_int(req, resp, "limit", 100, 1, FEED_LIMIT_MAX, &limit) ||
	    query_int(req, resp, "count", 0, 0, 1, &want_count))
		return;
	int64_t head = 0;
	int rc = bus_horizon(b, &head);
	json_t *rows = rc ? NULL : feed_rows(b, topic, after, head, limit, &rc);
	int64_t pending = -1;
	if (rc == 0 && want_count) {
		int rc2 = 0;
		store_stmt *st = store_queryf(b->ctx->store,
					 "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE topic = ? AND "
					 "id > ? AND id <= ? LIMIT ?) AS waiting", &rc2,
					 "tiii", topic, after, head, (int64_t)COUNT_CAP);
		if (st && store_step(st) == STORE_ROW)
			pending = store_col_int(st, 0);
		store_reset(st);
	}
	if (rc) {
		json_decref(rows);
		engine_store_error(b->ctx, resp, rc, "reading the outbox feed");
		return;
	}
	json_t *v = json_pack("{s:s,s:s,s:I,s:I,s:o}", "producer", b->ctx->service, "topic", topic,
			      "after", (json_int_t)after, "head", (json_int_t)head, "messages", rows);
	if (v && pending >= 0)
		json_object_set_new(v, "pending", json_integer(pending));
	msg_resp_json(resp, 200, v);
}

static int emb_handle(bus *b, msg_req *req, msg_resp *resp)
{
	size_t plen = sizeof(FEED_PREFIX) - 1;
	if (strncmp(req->path, FEED_PREFIX, plen) != 0)
		return 0;
	resp->route = FEED_PREFIX "{service}/{topic}";
	const char *rest = req->path + plen;
	const char *slash = strchr(rest, '/');
	char service[BUS_TOPIC_MAX] = "", topic[BUS_TOPIC_MAX] = "";
	if (slash && (size_t)(slash - rest) < sizeof(service) && strlen(slash + 1) < sizeof(topic)) {
		memcpy(service, rest, (size_t)(slash - rest));
		service[slash - rest] = '\0';
		memcpy(topic, slash + 1, strlen(slash + 1) + 1);
	}
	if (!bus_valid_name(service) || !bus_valid_name(topic)) {
		msg_resp_error(resp, 404, "not_found", "want /v1/internal/feed/{service}/{topic}",
			       NULL);
		return 1;
	}
	serve_feed(b, req, resp, service, topic);
	return 1;
}

/* ---- consumer: polling the feeds ------------------------------------------------- */

/* Takes or renews this instance's lease of src's offset row: 1 held (src->pos
 * current), 0 held by another instance, <0 a store error. */
static int take_feed(bus *b, bus_sub *s, bus_source *src)
{
	int64_t now = bus_now(b);
	if (src->lease_until - now > b->lease_us / 2)
		return 1;
	int lapsed = src->lease_until <= now;
	const char *me = b->ctx->instance_id ? b->ctx->instance_id : b->ctx->service;
	static const char take_sql[] =
		"UPDATE bus_offsets SET owner = ?, lease_until = ? "
		"WHERE consumer = ? AND topic = ? AND producer = ? AND (owner = ? OR lease_until < ?)";
	int64_t changed = 0;
	int rc = store_runf(b->ctx->store, take_sql, &changed, "titttti", me, now + b->lease_us, s->consumer,
			     s->topic, src->producer, me, now);
	if (rc == 0 && changed == 0) {
		rc = store_runf(b->ctx->store,
				 "INSERT INTO bus_offsets (consumer, topic, producer, pos, owner, "
				 "lease_until, updated_at) VALUES (?, ?, ?, 0, '', 0, ?) "
				 "ON CONFLICT (consumer, topic, producer) DO NOTHING", NULL,
				 "ttti", s->consumer, s->topic, src->producer, now);
		if (rc == 0)
			rc = store_runf(b->ctx->store, take_sql, &changed, "titttti", me, now + b->lease_us,
					 s->consumer, s->topic, src->producer, me, now);
	}
	if (rc || changed != 1) {
		pthread_mutex_lock(&b->mu);
		src->lease_until = 0;
		src->loaded = 0;
		pthread_mutex_unlock(&b->mu);
		return rc ? rc : 0;
	}
	if (lapsed || !src->loaded) {
		/* Another instance may have moved it while we did not hold it. */
		int64_t pos = 0;
		rc = store_intf(b->ctx->store, &pos,
				"SELECT pos FROM bus_offsets WHERE consumer = ? AND topic = ? "
				"AND producer = ?",
				"ttt", s->consumer, s->topic, src->producer);
		if (rc)
			return rc;
		pthread_mutex_lock(&b->mu);
		src->pos = pos;
		src->loaded = 1;
		pthread_mutex_unlock(&b->mu);
	}
	pthread_mutex_lock(&b->mu);
	src->lease_until = now + b->lease_us;
	pthread_mutex_unlock(&b->mu);
	return 1;
}

/* In the delivery's transaction: the offset moves to the message (never
 * back). */
static int emb_ack(bus *b, bus_sub *s, const bus_msg *m, void *ud)
{
	bus_source *src = ud;
	return store_runf(b->ctx->store,
			   "UPDATE bus_offsets SET pos = ?, updated_at = ? "
			   "WHERE consumer = ? AND topic = ? AND producer = ? AND pos < ?", NULL,
			   "iittti", m->seq, bus_now(b), s->consumer, s->topic, src->producer, m->seq);
}

/* The feed's answer as messages; ids go into idbuf (BUS_ID_MAX each). */
static int parse_feed(const char *producer, const char *topic, json_t *v, bus_msg *ms,
		      char (*idbuf)[BUS_ID_MAX], int max)
{
	json_t *arr = json_object_get(v, "messages");
	if (!json_is_array(arr))
		return ERR_PARSE;
	int n = 0;
	size_t i;
	json_t *m;
	int64_t last = -1;
	json_array_foreach(arr, i, m)
	{
		if (n >= max)
			break;
		json_t *seq = json_object_get(m, "seq"), *created = json_object_get(m, "created_at");
		const char *key = json_string_value(json_object_get(m, "key"));
		json_t *payload = json_object_get(m, "payload");
		if (!json_is_integer(seq) || !json_is_integer(created) || !key ||
		    !json_is_string(payload) || json_integer_value(seq) <= last)
			return ERR_PARSE;
		last = json_integer_value(seq);
		snprintf(idbuf[n], BUS_ID_MAX, "%s:%lld", producer, (long long)last);
		ms[n] = (bus_msg){ .topic = topic,
				   .key = key,
				   .payload = json_string_value(payload),
				   .payload_len = json_string_length(payload),
				   .id = idbuf[n],
				   .producer = producer,
				   .seq = last,
				   .created_at = json_integer_value(created),
				   .traceparent = json_string_value(json_object_get(m, "traceparent")) };
		n++;
	}
	return n;
}

static int fetch_source(bus *b, bus_sub *s, bus_source *src)
{
	int64_t now = bus_now(b);
	if (now < src->next_fetch)
		return 0;
	int rc = take_feed(b, s, src);
	if (rc <= 0)
		return rc;
	int want_count = now >= src->next_count;
	char path[256];
	snprintf(path, sizeof(path), FEED_PREFIX "%s/%s?after=%lld&limit=%lld%s", src->producer,
		 s->topic, (long long)src->pos, (long long)b->batch, want_count ? "&count=1" : "");
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	if (msg_req_init(&req, "GET", path) != 0)
		return ERR_NOMEM;
	rc = engine_call_service(b->ctx, &req, &resp, b->fetch_timeout_ms);
	msg_req_clear(&req);
	json_t *v = NULL;
	if (rc == 0 && resp.status == 200)
		v = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
	if (!v) {
		char why[BUS_ERROR_MAX];
		if (rc)
			snprintf(why, sizeof(why), "fetch from %s: %s", src->producer, err_name(rc));
		else
			snprintf(why, sizeof(why), "fetch from %s: status %d %.80s", src->producer,
				 resp.status, resp.body ? resp.body : "");
		pthread_mutex_lock(&b->mu);
		snprintf(src->error, sizeof(src->error), "%s", why);
		pthread_mutex_unlock(&b->mu);
		bus_sub_error(b, s, "%s", why);
		msg_resp_clear(&resp);
		src->next_fetch = now + FETCH_RETRY_US;
		return 0;
	}
	msg_resp_clear(&resp);
	int max = (int)b->batch;
	bus_msg *ms = calloc((size_t)max, sizeof(*ms));
	char(*ids)[BUS_ID_MAX] = calloc((size_t)max, sizeof(*ids));
	int n = ms && ids ? parse_feed(src->producer, s->topic, v, ms, ids, max) : ERR_NOMEM;
	int handled = 0;
	if (n < 0) {
		bus_sub_error(b, s, "fetch from %s: a malformed feed", src->producer);
		src->next_fetch = now + FETCH_RETRY_US;
	} else {
		pthread_mutex_lock(&b->mu);
		src->error[0] = '\0';
		pthread_mutex_unlock(&b->mu);
		bus_sub_ok(b, s);
		handled = bus_deliver(b, s, ms, n, emb_ack, src);
	}
	if (n >= 0) {
		json_t *pend = json_object_get(v, "pending");
		pthread_mutex_lock(&b->mu);
		if (handled > 0)
			src->pos = ms[handled - 1].seq;
		src->head = json_integer_value(json_object_get(v, "head"));
		int64_t left = n - (handled > 0 ? handled : 0);
		if (json_is_integer(pend))
			src->pending = json_integer_value(pend) - (handled > 0 ? handled : 0);
		else if (n < max)
			src->pending = left; /* the feed held everything there was */
		else if (src->pending >= 0)
			src->pending = src->pending - (handled > 0 ? handled : 0);
		if (src->pending < left)
			src->pending = left;
		src->oldest_at = left > 0 ? ms[n - left].created_at : 0;
		pthread_mutex_unlock(&b->mu);
		if (want_count || n < max)
			src->next_count = now + COUNT_EVERY_US;
	}
	json_decref(v);
	free(ms);
	free(ids);
	return handled;
}

static int emb_fetch(bus *b, bus_sub *s)
{
	pthread_mutex_lock(&b->mu);
	int waiting = s->failing[0] && bus_now(b) < s->retry_at;
	pthread_mutex_unlock(&b->mu);
	if (waiting)
		return 0;
	int moved = 0;
	for (int k = 0; k < s->nsrc; k++) {
		int rc = fetch_source(b, s, &s->src[k]);
		if (rc < 0)
			return moved ? moved : rc;
		moved += rc;
	}
	return moved;
}

static void emb_sub_stats(bus *b, bus_sub *s, json_t *row)
{
	int64_t now = bus_now(b), depth = 0, oldest = 0;
	int known = 1;
	json_t *sources = json_array();
	pthread_mutex_lock(&b->mu);
	for (int k = 0; k < s->nsrc; k++) {
		bus_source *src = &s->src[k];
		if (src->pending < 0)
			known = 0;
		else
			depth += src->pending;
		if (src->pending > 0 && src->oldest_at && (!oldest || src->oldest_at < oldest))
			oldest = src->oldest_at;
		json_array_append_new(sources,
				      json_pack("{s:s,s:I,s:I,s:I,s:b,s:s}", "producer", src->producer,
						"offset", (json_int_t)src->pos, "head",
						(json_int_t)src->head, "pending",
						(json_int_t)src->pending, "leased",
						src->lease_until > now, "error", src->error));
	}
	pthread_mutex_unlock(&b->mu);
	json_object_set_new(row, "depth", json_integer(known ? depth : -1));
	json_object_set_new(row, "lag", json_integer(known ? depth : -1));
	json_object_set_new(row, "lag_ms", json_integer(oldest ? (now - oldest) / 1000 : 0));
	json_object_set_new(row, "sources", sources);
}

/* ---- the driver ---------------------------------------------------------------------- */

static int emb_open(bus *b, const char *url, char *err, size_t errlen)
{
	for (int i = 0; i < b->nsubs; i++)
		if (b->subs[i].nsrc == 0) {
			snprintf(err, errlen, "topic %s has no producer in bus.topics",
				 b->subs[i].topic);
			return ERR_INVALID;
		}
	return 0;
}

static void emb_close(bus *b) {}

/* Nothing to publish: the feed serves the outbox itself, up to the
 * horizon the core keeps. */
static int emb_relay(bus *b) { return 0; }

static int emb_published(bus *b, int64_t *pos) { return bus_horizon(b, pos); }

static int emb_ready(bus *b) { return 0; }

const struct bus_driver bus_embedded_driver = {
	.name = "embedded",
	.open = emb_open,
	.close = emb_close,
	.relay = emb_relay,
	.fetch = emb_fetch,
	.published = emb_published,
	.sub_stats = emb_sub_stats,
	.dead_copy = NULL,
	.ready = emb_ready,
	.handle = emb_handle,
};
