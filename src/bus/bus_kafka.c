/* bus_kafka: the Kafka driver, over librdkafka.
 *
 * Relay: one instance of a producing service at a time (a lease on the
 * bus_relay row 'kafka') reads the outbox past the row's position, in id
 * order and up to the horizon, produces each row (key = the row's key, so
 * one key stays in one partition and in order; headers ecom-id
 * "<service>:<id>", ecom-producer, ecom-created-at and traceparent) with
 * the idempotent producer and acks=all, waits for the delivery reports and
 * moves the position over the acknowledged prefix. A crash before that
 * produces the rows again after the restart: consumers' inboxes drop the
 * copies.
 *
 * Consumers: one consumer per subscription, group.id = the consumer name
 * (per instance for an engine with a database per instance: bus_group_id),
 * auto commit and automatic offset store off; an offset is stored only
 * after the message's transaction (effect + inbox) committed, and stored
 * offsets are committed asynchronously after each round and synchronously
 * on close. A message that must wait for its retry is held with those
 * polled after it. A dead letter is also produced to <topic>.dlq.<consumer>. */
#include "bus/driver.h"
#include "core/err.h"

#include <librdkafka/rdkafka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a consumer's lag queries may take, and how often they run. */
#define STATS_TIMEOUT_MS 500
#define LAG_EVERY_US 5000000LL
/* A failed relay batch is tried again after this long. */
#define RELAY_RETRY_US 1000000LL
/* How long a readiness answer is kept. */
#define READY_TTL_US 2000000LL

typedef struct kafka_sub {
	rd_kafka_t *rk;
	/* Polled but not yet handled: the one waiting for its retry and those
	 * after it, in order. */
	rd_kafka_message_t **held;
	int nheld;
	int stored; /* offsets stored since the last commit */
	/* The group's lag, measured by the bus thread every LAG_EVERY_US (it
	 * asks the brokers, which must not hold up an admin request); -1 until
	 * known. Under the bus's mu. */
	int64_t lag;
	int64_t lag_next; /* mono µs */
} kafka_sub;

typedef struct kafka_state {
	rd_kafka_t *prod;
	char bootstrap[480];
	/* The relay's batch: ids and delivery status (0 pending, 1 acked, -1
	 * failed) of each produced row; gen tells reports of an abandoned
	 * batch from the current one's. */
	int64_t *ids;
	int *status;
	char **errors;
	uint32_t gen;
	int64_t relay_retry_at;
	int64_t ready_at;
	int ready_rc;
	pthread_mutex_t ready_mu;
} kafka_state;

/* ---- librdkafka plumbing ------------------------------------------------------ */

static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	bus *b = rd_kafka_opaque(rk);
	if (!b || level > 4) /* LOG_WARNING and worse */
		return;
	log_warn(b->ctx->log, "kafka %s: %s", fac, buf);
}

static rd_kafka_conf_t *base_conf(bus *b, const char *bootstrap, char *err, size_t errlen)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	const char *client = b->ctx->instance_id ? b->ctx->instance_id : b->ctx->service;
	if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, errlen) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(c, "client.id", client, err, errlen) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(c);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(c, kafka_log);
	rd_kafka_conf_set_opaque(c, b);
	return c;
}

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t errlen)
{
	return rd_kafka_conf_set(c, k, v, err, errlen) == RD_KAFKA_CONF_OK ? 0 : ERR_INVALID;
}

/* The relay's delivery reports (and the dead letters' copies, whose opaque
 * is NULL). Called on the thread that polls the producer: the bus's. */
static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	bus *b = opaque;
	kafka_state *k = b->drv_state;
	uintptr_t tag = (uintptr_t)m->_private;
	if (!tag) {
		if (m->err)
			log_warn(b->ctx->log, "kafka: a dead letter's copy to %s was not delivered: %s",
				 rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
		return;
	}
	uint32_t gen = (uint32_t)(tag >> 20);
	size_t i = (size_t)(tag & 0xFFFFF) - 1;
	if (gen != (k->gen & 0xFFFFFu) || i >= (size_t)b->batch)
		return;
	k->status[i] = m->err ? -1 : 1;
	if (m->err && !k->errors[i])
		k->errors[i] = strdup(rd_kafka_err2str(m->err));
}

/* ---- relay ---------------------------------------------------------------------- */

static int relay_cursor(bus *b, int64_t *pos)
{
	int rc = 0;
	store_stmt *st = store_queryf(b->ctx->store, "SELECT pos FROM bus_relay WHERE name = 'kafka'", &rc, "");
	if (!st)
		return rc;
	rc = store_step(st);
	if (rc == STORE_ROW)
		*pos = store_col_int(st, 0);
	store_reset(st);
	return rc < 0 ? rc : 0;
}

static int kaf_published(bus *b, int64_t *pos)
{
	*pos = 0;
	return relay_cursor(b, pos);
}

/* Produces one outbox row; 0 or the producer's error. */
static rd_kafka_resp_err_t produce_row(bus *b, kafka_state *k, store_stmt *st, size_t i)
{
	char id[BUS_ID_MAX], created[24];
	snprintf(id, sizeof(id), "%s:%lld", b->ctx->service, (long long)store_col_int(st, 0));
	snprintf(created, sizeof(created), "%lld", (long long)store_col_int(st, 4));
	const char *topic = store_col_text(st, 1), *key = store_col_text(st, 2);
	const char *payload = store_col_text(st, 3), *tp = store_col_text(st, 5);
	uintptr_t tag = ((uintptr_t)(k->gen & 0xFFFFFu) << 20) | (uintptr_t)(i + 1);
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	rd_kafka_header_add(h, "ecom-id", -1, id, -1);
	rd_kafka_header_add(h, "ecom-producer", -1, b->ctx->service, -1);
	rd_kafka_header_add(h, "ecom-created-at", -1, created, -1);
	if (tp)
		rd_kafka_header_add(h, "traceparent", -1, tp, -1);
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
	for (int tries = 0; tries < 50; tries++) {
		e = rd_kafka_producev(k->prod, RD_KAFKA_V_TOPIC(topic),
				      RD_KAFKA_V_KEY(key, strlen(key)),
				      RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)tag),
				      RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(k->prod, 100);
	}
	if (e)
		rd_kafka_headers_destroy(h); /* owned by the message only on success */
	return e;
}

static int kaf_relay(bus *b)
{
	kafka_state *k = b->drv_state;
	int64_t now = bus_now(b);
	rd_kafka_poll(k->prod, 0); /* dead letters' reports */
	if (now < k->relay_retry_at)
		return 0;
	int64_t head = 0, cursor = 0;
	int rc = bus_horizon(b, &head);
	if (rc == 0)
		rc = relay_cursor(b, &cursor);
	if (rc || head <= cursor)
		return rc;
	rc = bus_relay_lease(b, "kafka");
	if (rc <= 0)
		return rc;
	rc = relay_cursor(b, &cursor); /* again, under the lease */
	if (rc)
		return rc;
	const char *sql = b->has_traceparent
				  ? "SELECT id, topic, key, payload, created_at, traceparent FROM outbox "
				    "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?"
				  : "SELECT id, topic, key, payload, created_at, NULL FROM outbox "
				    "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?";
	store_stmt *st = store_queryf(b->ctx->store, sql, &rc, "iii", cursor, head, b->batch);
	if (!st)
		return rc;
	k->gen++;
	size_t n = 0;
	rd_kafka_resp_err_t perr = RD_KAFKA_RESP_ERR_NO_ERROR;
	while (n < (size_t)b->batch && (rc = store_step(st)) == STORE_ROW) {
		k->ids[n] = store_col_int(st, 0);
		k->status[n] = 0;
		free(k->errors[n]);
		k->errors[n] = NULL;
		perr = produce_row(b, k, st, n);
		if (perr)
			break;
		n++;
	}
	store_reset(st);
	if (rc < 0 && n == 0)
		return rc;
	if (n == 0) {
		if (perr) {
			log_warn(b->ctx->log, "kafka relay: produce failed: %s", rd_kafka_err2str(perr));
			k->relay_retry_at = now + RELAY_RETRY_US;
		}
		return 0;
	}
	pthread_mutex_lock(&b->mu);
	bus_hooks hooks = b->hooks;
	pthread_mutex_unlock(&b->mu);
	if (hooks.after_produce && hooks.after_produce(hooks.ud, k->ids[0], k->ids[n - 1])) {
		log_warn(b->ctx->log, "kafka relay: abandoned rows %lld..%lld before recording them (test hook)",
			 (long long)k->ids[0], (long long)k->ids[n - 1]);
		k->gen++; /* their reports no longer count */
		return 0;
	}
	/* Wait for the reports until the batch is acknowledged or one row
	 * failed, bounded by the delivery timeout. */
	int64_t until = clock_mono_us() + (b->kafka_timeout_ms + 5000) * 1000;
	size_t acked = 0;
	for (;;) {
		rd_kafka_poll(k->prod, 20);
		while (acked < n && k->status[acked] == 1)
			acked++;
		if (acked == n || k->status[acked] == -1 || clock_mono_us() >= until)
			break;
	}
	if (acked > 0) {
		rc = store_runf(b->ctx->store, "UPDATE bus_relay SET pos = ? WHERE name = 'kafka' AND pos < ?", NULL,
				 "ii", k->ids[acked - 1], k->ids[acked - 1]);
		if (rc) {
			log_warn(b->ctx->log, "kafka relay: recording the position: %s", err_name(rc));
			return rc;
		}
		metrics_count(b->ctx->metrics, "bus_published_total", NULL, acked);
	}
	if (acked < n || perr) {
		const char *why = acked < n ? (k->errors[acked] ? k->errors[acked] : "no report in time")
					    : rd_kafka_err2str(perr);
		log_warn(b->ctx->log, "kafka relay: %zu of %zu rows acknowledged; row %lld: %s", acked,
			 n, (long long)(acked < n ? k->ids[acked] : k->ids[n - 1] + 1), why);
		k->gen++;
		k->relay_retry_at = bus_now(b) + RELAY_RETRY_US;
	}
	return (int)acked;
}

/* ---- consumers ----------------------------------------------------------------- */

static const char *header(const rd_kafka_message_t *m, const char *name, char *buf, size_t len)
{
	rd_kafka_headers_t *h = NULL;
	const void *v = NULL;
	size_t n = 0;
	if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
		return NULL;
	if (n >= len)
		n = len - 1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return buf;
}

/* Storage for one message's strings (librdkafka's are not NUL-ended). */
typedef struct msg_text {
	char id[BUS_ID_MAX];
	char producer[BUS_NAME_MAX];
	char traceparent[128];
	char num[24];
	char *key;
	char *payload;
} msg_text;

static int to_bus_msg(bus_sub *s, const rd_kafka_message_t *m, msg_text *t, bus_msg *out)
{
	t->key = strndup(m->key ? (const char *)m->key : "", m->key ? m->key_len : 0);
	t->payload = strndup(m->payload ? (const char *)m->payload : "", m->payload ? m->len : 0);
	if (!t->key || !t->payload)
		return ERR_NOMEM;
	if (!header(m, "ecom-id", t->id, sizeof(t->id)))
		snprintf(t->id, sizeof(t->id), "kafka:%s/%d/%lld", s->topic, (int)m->partition,
			 (long long)m->offset);
	if (!header(m, "ecom-producer", t->producer, sizeof(t->producer)))
		snprintf(t->producer, sizeof(t->producer), "kafka");
	const char *colon = strrchr(t->id, ':');
	int64_t created = 0;
	if (header(m, "ecom-created-at", t->num, sizeof(t->num)))
		created = strtoll(t->num, NULL, 10);
	else
		created = rd_kafka_message_timestamp(m, NULL) * 1000;
	*out = (bus_msg){ .topic = s->topic,
			  .key = t->key,
			  .payload = t->payload,
			  .payload_len = m->payload ? m->len : 0,
			  .id = t->id,
			  .producer = t->producer,
			  .seq = colon ? strtoll(colon + 1, NULL, 10) : m->offset,
			  .created_at = created,
			  .traceparent = header(m, "traceparent", t->traceparent,
						sizeof(t->traceparent)) };
	return 0;
}

/* Stores the offsets after ms[0..n-1] (the next to read, per partition). */
static void store_offsets(kafka_sub *ks, rd_kafka_message_t **ms, int n)
{
	if (n <= 0)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++) {
		rd_kafka_topic_partition_t *p =
			rd_kafka_topic_partition_list_find(l, rd_kafka_topic_name(ms[i]->rkt),
							   ms[i]->partition);
		if (!p)
			p = rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(ms[i]->rkt),
							      ms[i]->partition);
		if (ms[i]->offset + 1 > p->offset)
			p->offset = ms[i]->offset + 1;
	}
	if (rd_kafka_offsets_store(ks->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR)
		ks->stored = 1;
	rd_kafka_topic_partition_list_destroy(l);
}

/* The group's lag on s's topic: for each partition, the end of the log
 * minus the group's committed offset (or the start when none); -1 when the
 * brokers did not say. Asks the brokers: called on the bus thread. */
static int64_t group_lag(bus_sub *s)
{
	kafka_sub *ks = s->drv;
	int64_t depth = -1;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(ks->rk, s->topic, NULL);
	if (t && rd_kafka_metadata(ks->rk, 0, t, &md, STATS_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    md->topic_cnt == 1 && !md->topics[0].err) {
		int np = md->topics[0].partition_cnt;
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
		for (int i = 0; i < np; i++)
			rd_kafka_topic_partition_list_add(l, s->topic, md->topics[0].partitions[i].id);
		if (rd_kafka_committed(ks->rk, l, STATS_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			depth = 0;
			for (int i = 0; i < l->cnt && depth >= 0; i++) {
				int64_t lo = 0, hi = 0;
				if (rd_kafka_query_watermark_offsets(ks->rk, s->topic, l->elems[i].partition,
								     &lo, &hi, STATS_TIMEOUT_MS) != 0) {
					depth = -1;
					break;
				}
				int64_t from = l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
				depth += hi > from ? hi - from : 0;
			}
		}
		rd_kafka_topic_partition_list_destroy(l);
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	if (t)
		rd_kafka_topic_destroy(t);
	return depth;
}

/* Measures the group's lag again when it is due (bus thread). */
static void refresh_lag(bus *b, bus_sub *s)
{
	kafka_sub *ks = s->drv;
	if (clock_mono_us() < ks->lag_next)
		return;
	int64_t lag = group_lag(s);
	pthread_mutex_lock(&b->mu);
	if (lag >= 0)
		ks->lag = lag;
	ks->lag_next = clock_mono_us() + LAG_EVERY_US;
	pthread_mutex_unlock(&b->mu);
}

static int kaf_fetch(bus *b, bus_sub *s)
{
	kafka_sub *ks = s->drv;
	pthread_mutex_lock(&b->mu);
	int waiting = s->failing[0] && bus_now(b) < s->retry_at;
	pthread_mutex_unlock(&b->mu);
	if (waiting)
		return 0;
	int max = (int)b->batch;
	rd_kafka_message_t **ms = malloc(sizeof(*ms) * (size_t)max);
	if (!ms)
		return ERR_NOMEM;
	int n = 0;
	pthread_mutex_lock(&b->mu);
	for (int i = 0; i < ks->nheld && n < max; i++)
		ms[n++] = ks->held[i];
	ks->nheld = 0;
	pthread_mutex_unlock(&b->mu);
	while (n < max) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(ks->rk, 0);
		if (!m)
			break;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				bus_sub_error(b, s, "kafka: %s", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		ms[n++] = m;
	}
	int handled = 0;
	if (n > 0) {
		bus_msg *bm = calloc((size_t)n, sizeof(*bm));
		msg_text *tx = calloc((size_t)n, sizeof(*tx));
		int rc = bm && tx ? 0 : ERR_NOMEM;
		for (int i = 0; rc == 0 && i < n; i++)
			rc = to_bus_msg(s, ms[i], &tx[i], &bm[i]);
		if (rc == 0)
			bus_sub_ok(b, s);
		handled = rc ? rc : bus_deliver(b, s, bm, n, NULL, NULL);
		for (int i = 0; tx && i < n; i++) {
			free(tx[i].key);
			free(tx[i].payload);
		}
		free(bm);
		free(tx);
	}
	int moved = handled > 0 ? handled : 0;
	store_offsets(ks, ms, moved);
	for (int i = 0; i < moved; i++)
		rd_kafka_message_destroy(ms[i]);
	/* The rest wait, in order, for the next round. */
	pthread_mutex_lock(&b->mu);
	for (int i = moved; i < n; i++)
		ks->held[ks->nheld++] = ms[i];
	pthread_mutex_unlock(&b->mu);
	free(ms);
	if (ks->stored) {
		rd_kafka_commit(ks->rk, NULL, 1);
		ks->stored = 0;
	}
	if (moved < max)
		refresh_lag(b, s); /* not while a backlog is being worked off */
	return handled < 0 ? handled : moved;
}

static void kaf_sub_stats(bus *b, bus_sub *s, json_t *row)
{
	kafka_sub *ks = s->drv;
	int64_t oldest = 0, now = bus_now(b);
	char num[24];
	pthread_mutex_lock(&b->mu);
	int64_t depth = ks->lag;
	if (ks->nheld > 0 && header(ks->held[0], "ecom-created-at", num, sizeof(num)))
		oldest = strtoll(num, NULL, 10);
	pthread_mutex_unlock(&b->mu);
	json_object_set_new(row, "depth", json_integer(depth));
	json_object_set_new(row, "lag", json_integer(depth));
	json_object_set_new(row, "lag_ms", json_integer(oldest ? (now - oldest) / 1000 : 0));
	char group[2 * BUS_NAME_MAX + 2];
	if (bus_group_id(b->def, b->ctx->instance_id, s->consumer, group, sizeof(group)) == 0)
		json_object_set_new(row, "group", json_string(group));
}

static void kaf_dead_copy(bus *b, bus_sub *s, const bus_msg *m, const char *error)
{
	kafka_state *k = b->drv_state;
	char topic[BUS_TOPIC_MAX + BUS_NAME_MAX + 8];
	snprintf(topic, sizeof(topic), "%s.dlq.%s", s->topic, s->consumer);
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	rd_kafka_header_add(h, "ecom-id", -1, m->id, -1);
	rd_kafka_header_add(h, "ecom-consumer", -1, s->consumer, -1);
	rd_kafka_header_add(h, "ecom-error", -1, error, -1);
	if (m->traceparent)
		rd_kafka_header_add(h, "traceparent", -1, m->traceparent, -1);
	rd_kafka_resp_err_t e = rd_kafka_producev(
		k->prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, strlen(m->key)),
		RD_KAFKA_V_VALUE((void *)m->payload, m->payload_len),
		RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
		RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
	if (e) {
		rd_kafka_headers_destroy(h);
		log_warn(b->ctx->log, "kafka: copying dead letter %s to %s: %s", m->id, topic,
			 rd_kafka_err2str(e));
	}
}

static int kaf_ready(bus *b)
{
	kafka_state *k = b->drv_state;
	int64_t now = clock_mono_us();
	pthread_mutex_lock(&k->ready_mu);
	if (now < k->ready_at) {
		int rc = k->ready_rc;
		pthread_mutex_unlock(&k->ready_mu);
		return rc;
	}
	pthread_mutex_unlock(&k->ready_mu);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(k->prod, 0, NULL, &md, 1000);
	int rc = e == RD_KAFKA_RESP_ERR_NO_ERROR && md->broker_cnt > 0 ? 0 : ERR_UNAVAILABLE;
	if (md)
		rd_kafka_metadata_destroy(md);
	pthread_mutex_lock(&k->ready_mu);
	k->ready_rc = rc;
	k->ready_at = now + READY_TTL_US;
	pthread_mutex_unlock(&k->ready_mu);
	return rc;
}

/* ---- the driver ---------------------------------------------------------------------- */

static int open_consumer(bus *b, bus_sub *s, const char *bootstrap, char *err, size_t errlen)
{
	char group[2 * BUS_NAME_MAX + 2];
	if (bus_group_id(b->def, b->ctx->instance_id, s->consumer, group, sizeof(group))) {
		snprintf(err, errlen, "consumer group name too long: %s", s->consumer);
		return ERR_INVALID;
	}
	kafka_sub *ks = calloc(1, sizeof(*ks));
	if (!ks || !(ks->held = calloc((size_t)b->batch, sizeof(*ks->held)))) {
		free(ks);
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	ks->lag = -1;
	s->drv = ks;
	char session[24];
	snprintf(session, sizeof(session), "%lld",
		 (long long)config_int(b->ctx->config, "bus.kafka_session_timeout_ms", 45000));
	rd_kafka_conf_t *c = base_conf(b, bootstrap, err, errlen);
	if (!c || conf_set(c, "group.id", group, err, errlen) ||
	    conf_set(c, "session.timeout.ms", session, err, errlen) ||
	    conf_set(c, "enable.auto.commit", "false", err, errlen) ||
	    conf_set(c, "enable.auto.offset.store", "false", err, errlen) ||
	    conf_set(c, "auto.offset.reset", "earliest", err, errlen) ||
	    conf_set(c, "allow.auto.create.topics", "true", err, errlen)) {
		if (c)
			rd_kafka_conf_destroy(c);
		return ERR_INVALID;
	}
	ks->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, errlen);
	if (!ks->rk) {
		rd_kafka_conf_destroy(c); /* rd_kafka_new takes it only on success */
		return ERR_UNAVAILABLE;
	}
	rd_kafka_poll_set_consumer(ks->rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, s->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(ks->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e) {
		snprintf(err, errlen, "subscribing %s to %s: %s", s->consumer, s->topic,
			 rd_kafka_err2str(e));
		return ERR_UNAVAILABLE;
	}
	return 0;
}

static void close_consumer(bus_sub *s)
{
	kafka_sub *ks = s->drv;
	if (!ks)
		return;
	for (int i = 0; i < ks->nheld; i++)
		rd_kafka_message_destroy(ks->held[i]);
	if (ks->rk) {
		if (ks->stored)
			rd_kafka_commit(ks->rk, NULL, 0);
		rd_kafka_consumer_close(ks->rk);
		rd_kafka_destroy(ks->rk);
	}
	free(ks->held);
	free(ks);
	s->drv = NULL;
}

static void kaf_close(bus *b)
{
	for (int i = 0; i < b->nsubs; i++)
		close_consumer(&b->subs[i]);
	kafka_state *k = b->drv_state;
	if (!k)
		return;
	if (k->prod) {
		rd_kafka_flush(k->prod, 5000);
		rd_kafka_destroy(k->prod);
	}
	for (int64_t i = 0; k->errors && i < b->batch; i++)
		free(k->errors[i]);
	free(k->errors);
	free(k->ids);
	free(k->status);
	pthread_mutex_destroy(&k->ready_mu);
	free(k);
	b->drv_state = NULL;
}

static int kaf_open(bus *b, const char *url, char *err, size_t errlen)
{
	kafka_state *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	pthread_mutex_init(&k->ready_mu, NULL);
	b->drv_state = k;
	snprintf(k->bootstrap, sizeof(k->bootstrap), "%s", url + 8);
	k->ids = calloc((size_t)b->batch, sizeof(*k->ids));
	k->status = calloc((size_t)b->batch, sizeof(*k->status));
	k->errors = calloc((size_t)b->batch, sizeof(*k->errors));
	if (!k->ids || !k->status || !k->errors) {
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	char timeout[24];
	snprintf(timeout, sizeof(timeout), "%lld", (long long)b->kafka_timeout_ms);
	rd_kafka_conf_t *c = base_conf(b, k->bootstrap, err, errlen);
	if (!c || conf_set(c, "enable.idempotence", "true", err, errlen) ||
	    conf_set(c, "acks", "all", err, errlen) || conf_set(c, "linger.ms", "5", err, errlen) ||
	    conf_set(c, "message.timeout.ms", timeout, err, errlen)) {
		if (c)
			rd_kafka_conf_destroy(c);
		return ERR_INVALID;
	}
	rd_kafka_conf_set_dr_msg_cb(c, delivered);
	k->prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, errlen);
	if (!k->prod) {
		rd_kafka_conf_destroy(c);
		return ERR_UNAVAILABLE;
	}
	for (int i = 0; i < b->nsubs; i++) {
		int rc = open_consumer(b, &b->subs[i], k->bootstrap, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

const struct bus_driver bus_kafka_driver = {
	.name = "kafka",
	.open = kaf_open,
	.close = kaf_close,
	.relay = kaf_relay,
	.fetch = kaf_fetch,
	.published = kaf_published,
	.sub_stats = kaf_sub_stats,
	.dead_copy = kaf_dead_copy,
	.ready = kaf_ready,
	.handle = NULL,
};
