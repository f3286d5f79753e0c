/* bus: the core every driver shares: tables, delivery with inbox, retries
 * and dead letters, the outbox horizon, the admin routes, the thread. */
#include "bus/bus.h"
#include "bus/driver.h"
#include "core/err.h"
#include "resil/backoff.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Attempts of one delivery transaction when the database reports
 * contention ("busy", "serialize again") before the round gives up. */
#define TXN_TRIES 5
/* A consume that failed (as opposed to the database). */
#define ENGINE_FAILED 1
/* How often the inbox and the outbox are pruned of rows past retention. */
#define PRUNE_EVERY_US (600 * 1000000LL)

/* ---- URLs and topics ------------------------------------------------------ */

int bus_url_check(const char *url, char *err, size_t errlen)
{
	if (!url || strcmp(url, "embedded") == 0)
		return 0;
	if (strncmp(url, "kafka://", 8) != 0) {
		snprintf(err, errlen, "bus '%s': want 'embedded' or 'kafka://HOST:PORT[,HOST:PORT...]'",
			 url);
		return ERR_INVALID;
	}
	const char *p = url + 8;
	if (!*p) {
		snprintf(err, errlen, "bus '%s': no broker given", url);
		return ERR_INVALID;
	}
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *colon = memchr(p, ':', n);
		int ok = colon && colon > p && colon + 1 < p + n;
		for (const char *q = colon ? colon + 1 : p; ok && q < p + n; q++)
			ok = isdigit((unsigned char)*q);
		for (const char *q = p; ok && q < colon; q++)
			ok = isalnum((unsigned char)*q) || *q == '.' || *q == '-' || *q == '_';
		if (!ok || (colon && atol(colon + 1) > 65535)) {
			snprintf(err, errlen, "bus '%s': '%.*s' is not HOST:PORT", url, (int)n, p);
			return ERR_INVALID;
		}
		p = end ? end + 1 : p + n;
		if (end && !*p) {
			snprintf(err, errlen, "bus '%s': empty broker after ','", url);
			return ERR_INVALID;
		}
	}
	return 0;
}

int bus_group_id(const engine_def *def, const char *instance, const char *consumer, char *buf,
		 size_t len)
{
	int n = def && def->needs_store == ENGINE_STORE_LOCAL && instance && instance[0]
			? snprintf(buf, len, "%s.%s", consumer, instance)
			: snprintf(buf, len, "%s", consumer);
	return n < 0 || (size_t)n >= len ? ERR_INVALID : 0;
}

int bus_topic_producers(const config *cfg, const char *topic, char out[][BUS_NAME_MAX], int max)
{
	const char *table = cfg ? config_get(cfg, "bus.topics") : NULL;
	if (!table || !topic)
		return 0;
	size_t tlen = strlen(topic);
	const char *p = table;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		size_t n = strcspn(p, " \t;");
		const char *eq = memchr(p, '=', n);
		if (eq && (size_t)(eq - p) == tlen && strncmp(p, topic, tlen) == 0) {
			int k = 0;
			const char *q = eq + 1, *end = p + n;
			while (q < end && k < max) {
				size_t m = strcspn(q, ",");
				if (q + m > end)
					m = (size_t)(end - q);
				if (m > 0 && m < BUS_NAME_MAX) {
					memcpy(out[k], q, m);
					out[k++][m] = '\0';
				}
				q += m + 1;
			}
			return k;
		}
		p += n;
	}
	return 0;
}

int bus_valid_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n >= BUS_TOPIC_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '-' || s[i] == '_'))
			return 0;
	return 1;
}

/* 1 when this service produces topic by bus.topics. */
static int produces(bus *b, const char *topic)
{
	char names[BUS_MAX_PRODUCERS][BUS_NAME_MAX];
	int n = bus_topic_producers(b->ctx->config, topic, names, BUS_MAX_PRODUCERS);
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], b->ctx->service) == 0)
			return 1;
	return 0;
}

/* ---- SQL ------------------------------------------------------------------- */

int64_t bus_now(bus *b) { return clock_now(b->ctx->clock); }

static int retryable(int rc) { return rc == ERR_BUSY || rc == ERR_RETRY; }

void bus_sub_error(bus *b, bus_sub *s, const char *fmt, ...)
{
	char msg[BUS_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&b->mu);
	int changed = strcmp(msg, s->error) != 0;
	snprintf(s->error, sizeof(s->error), "%s", msg);
	pthread_mutex_unlock(&b->mu);
	if (changed)
		log_warn(b->ctx->log, "bus %s/%s: %s", s->topic, s->consumer, msg);
}

void bus_sub_ok(bus *b, bus_sub *s)
{
	pthread_mutex_lock(&b->mu);
	if (!s->failing[0])
		s->error[0] = '\0';
	pthread_mutex_unlock(&b->mu);
}

/* ---- the outbox's horizon and the relay's lease ----------------------------- */

int bus_horizon(bus *b, int64_t *pos)
{
	*pos = 0;
	/* SQLite has one writer at a time and ids grow with it, so what is
	 * committed is always a prefix of the ids. */
	if (!b->pg)
		return store_intf(b->ctx->store, pos, "SELECT MAX(id) FROM outbox", "");
	return store_intf(b->ctx->store, pos, "SELECT pos FROM bus_relay WHERE name = 'horizon'", "");
}

int bus_advance_horizon(bus *b)
{
	if (!b->pg)
		return 0;
	int64_t end = 0, stored = 0;
	int rc = store_intf(b->ctx->store, &end, "SELECT MAX(id) FROM outbox", "");
	if (rc == 0)
		rc = store_intf(b->ctx->store, &stored, "SELECT pos FROM bus_relay WHERE name = 'horizon'", "");
	if (rc || end <= stored)
		return rc;
	/* An id is drawn when a row is inserted, and a writer holds its lock on
	 * the table from before that until it ends. SHARE mode waits for every
	 * writer inside and keeps new ones out: the ids then present are all
	 * committed (or gone), and any later one is higher. Writers wait only
	 * for these few statements. */
	store *s = b->ctx->store;
	rc = store_begin(s);
	if (rc == 0)
		rc = store_exec(s, "SET LOCAL lock_timeout = '2s'");
	if (rc == 0)
		rc = store_exec(s, "LOCK TABLE outbox IN SHARE MODE");
	if (rc == 0)
		rc = store_intf(b->ctx->store, &end, "SELECT MAX(id) FROM outbox", "");
	int64_t changed = 0;
	if (rc == 0)
		rc = store_runf(b->ctx->store,
				 "UPDATE bus_relay SET pos = ? WHERE name = 'horizon' AND pos < ?", &changed, "ii",
				 end, end);
	if (rc == 0)
		rc = store_commit(s);
	if (rc) {
		store_rollback(s);
		return retryable(rc) ? 0 : rc;
	}
	return (int)changed;
}

int bus_relay_lease(bus *b, const char *name)
{
	int64_t now = bus_now(b), changed = 0;
	int rc = store_runf(b->ctx->store,
			     "UPDATE bus_relay SET owner = ?, lease_until = ? "
			     "WHERE name = ? AND (owner = ? OR lease_until < ?)", &changed,
			     "titti", b->ctx->instance_id, now + b->lease_us, name,
			     b->ctx->instance_id, now);
	if (rc)
		return retryable(rc) ? 0 : rc;
	return changed == 1;
}

/* ---- delivery ---------------------------------------------------------------- */

/* One delivery's work inside a transaction, and what it found. */
typedef struct txn_work {
	bus *b;
	bus_sub *s;
	const bus_msg *m;
	int attempt;
	bus_ack_fn ack;
	void *ud;
	const char *error;  /* dead letters */
	int64_t dead_id;    /* replays */
	int fresh;          /* out: the engine applied it */
	int eng_rc;         /* out: the engine's failure */
	int64_t claimed;    /* out: the replay's row was ours */
} txn_work;

/* Inside the open transaction: the inbox entry, the engine (only when the
 * entry is new), the ack. 0 with *fresh telling which; ENGINE_FAILED with
 * *eng_rc; or a store error. */
static int handle_in_txn(bus *b, bus_sub *s, const bus_msg *m, int attempt, bus_ack_fn ack,
			 void *ud, int *fresh, int *eng_rc)
{
	int64_t changed = 0;
	int rc = store_runf(b->ctx->store,
			     "INSERT INTO bus_inbox (consumer, msg_id, at) VALUES (?, ?, ?) "
			     "ON CONFLICT (consumer, msg_id) DO NOTHING", &changed,
			     "tti", s->consumer, m->id, bus_now(b));
	if (rc)
		return rc;
	*fresh = changed == 1;
	if (*fresh) {
		bus_msg copy = *m;
		copy.consumer = s->consumer;
		copy.attempt = attempt;
		/* A CONSUMER span in the trace the event was written in, current
		 * while the engine works (its calls and log lines join it). */
		trace_ctx from;
		int traced = trace_parse(m->traceparent, &from) == 0;
		char name[96], at[16];
		snprintf(name, sizeof(name), "consume %s", m->topic);
		engine_span es;
		engine_span_begin(b->ctx, &es, traced ? &from : NULL, name, SPAN_CONSUMER);
		engine_span_attr(&es, "messaging.consumer", s->consumer);
		engine_span_attr(&es, "messaging.message_id", m->id);
		snprintf(at, sizeof(at), "%d", attempt);
		engine_span_attr(&es, "attempt", at);
		int e = b->def->consume(b->eng, &copy);
		char why[32];
		snprintf(why, sizeof(why), "consume failed: %d", e);
		engine_span_end(b->ctx, &es, e ? SPAN_ERROR : SPAN_OK, e ? why : NULL);
		if (e) {
			*eng_rc = e;
			return ENGINE_FAILED;
		}
	}
	return ack ? ack(b, s, m, ud) : 0;
}

static int is_failing(bus_sub *s, const char *id) { return s->failing[0] && strcmp(s->failing, id) == 0; }

static void clear_failing(bus *b, bus_sub *s, const char *id)
{
	pthread_mutex_lock(&b->mu);
	if (is_failing(s, id)) {
		s->failing[0] = '\0';
		s->attempts = 0;
		s->retry_at = 0;
		s->error[0] = '\0';
	}
	pthread_mutex_unlock(&b->mu);
}

static double duplicate_rate(bus *b)
{
	pthread_mutex_lock(&b->mu);
	double r = b->hooks.duplicate_rate;
	pthread_mutex_unlock(&b->mu);
	return r;
}

/* Adds n to a counter of s and to bus_messages_total{outcome}. */
static void count(bus *b, bus_sub *s, int64_t *field, const char *outcome, int64_t n)
{
	if (n <= 0)
		return;
	pthread_mutex_lock(&b->mu);
	*field += n;
	pthread_mutex_unlock(&b->mu);
	char labels[200];
	snprintf(labels, sizeof(labels), "topic=\"%s\",consumer=\"%s\",outcome=\"%s\"", s->topic,
		 s->consumer, outcome);
	metrics_count(b->ctx->metrics, "bus_messages_total", labels, (uint64_t)n);
}

static int deliver_single(bus *b, bus_sub *s, const bus_msg *m, bus_ack_fn ack, void *ud);

/* The test hook: the message delivered again at once, as a network that
 * duplicates would. The inbox must make it a duplicate. */
static void maybe_duplicate(bus *b, bus_sub *s, const bus_msg *m, bus_ack_fn ack, void *ud)
{
	double rate = duplicate_rate(b);
	if (rate > 0 && rng_double(b->ctx->rng) < rate)
		deliver_single(b, s, m, ack, ud);
}

/* Parks m as a dead letter of s, with its inbox entry and ack. */
static int dead_letter_body(void *arg)
{
	txn_work *w = arg;
	bus *b = w->b;
	bus_sub *s = w->s;
	const bus_msg *m = w->m;
	int64_t now = bus_now(b);
	int rc = store_runf(b->ctx->store,
			     "INSERT INTO bus_inbox (consumer, msg_id, at) VALUES (?, ?, ?) "
			     "ON CONFLICT (consumer, msg_id) DO NOTHING", NULL,
			     "tti", s->consumer, m->id, now);
	if (rc == 0)
		rc = store_runf(b->ctx->store,
				 "INSERT INTO bus_dead (consumer, topic, msg_id, producer, seq, key, "
				 "payload, traceparent, created_at, attempts, error, state, dead_at) "
				 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'DEAD', ?) "
				 "ON CONFLICT (consumer, msg_id) DO NOTHING", NULL,
				 "ttttittiiiti", s->consumer, s->topic, m->id, m->producer, m->seq,
				 m->key, m->payload, m->traceparent, m->created_at,
				 (int64_t)w->attempt, w->error, now);
	if (rc == 0 && w->ack)
		rc = w->ack(b, s, m, w->ud);
	return rc;
}

static int dead_letter(bus *b, bus_sub *s, const bus_msg *m, int attempts, const char *error,
		       bus_ack_fn ack, void *ud)
{
	txn_work w = { .b = b, .s = s, .m = m, .attempt = attempts, .ack = ack, .ud = ud,
		       .error = error };
	return store_txn(b->ctx->store, TXN_TRIES, dead_letter_body, &w);
}

/* Message id of s failed on attempt: it waits a delay drawn with full
 * jitter (bus.retry_base_ms doubling to bus.retry_max_ms) before the next. */
static void schedule_retry(bus *b, bus_sub *s, const char *id, int attempt, const char *error)
{
	backoff_policy p = { .max_attempts = (int)b->max_attempts,
			     .base_us = b->retry_base_us,
			     .cap_us = b->retry_max_us };
	int64_t delay = backoff_delay_us(&p, attempt - 1, b->ctx->rng);
	pthread_mutex_lock(&b->mu);
	snprintf(s->failing, sizeof(s->failing), "%s", id);
	s->attempts = attempt;
	s->retry_at = bus_now(b) + delay;
	pthread_mutex_unlock(&b->mu);
	bus_sub_error(b, s, "%s; retry in %lld ms", error, (long long)(delay / 1000));
}

/* After a consume failed: wait and retry, or dead-letter at the last
 * attempt. */
static int failed(bus *b, bus_sub *s, const bus_msg *m, int attempt, int eng_rc, bus_ack_fn ack,
		  void *ud)
{
	char error[BUS_ERROR_MAX];
	snprintf(error, sizeof(error), "consume of %s failed (%s) on attempt %d", m->id,
		 err_name(eng_rc), attempt);
	count(b, s, &s->failures, "failed", 1);
	if (attempt >= b->max_attempts) {
		int rc = dead_letter(b, s, m, attempt, error, ack, ud);
		if (rc)
			return rc;
		log_warn(b->ctx->log, "bus %s/%s: %s: dead letter after %d attempts", s->topic,
			 s->consumer, m->id, attempt);
		clear_failing(b, s, m->id);
		count(b, s, &s->dead, "dead", 1);
		if (b->drv->dead_copy)
			b->drv->dead_copy(b, s, m, error);
		return BUS_DEAD;
	}
	schedule_retry(b, s, m->id, attempt, error);
	return BUS_WAIT;
}

static int single_body(void *arg)
{
	txn_work *w = arg;
	return handle_in_txn(w->b, w->s, w->m, w->attempt, w->ack, w->ud, &w->fresh, &w->eng_rc);
}

/* One message in its own transaction: an outcome or a store error. */
static int deliver_single(bus *b, bus_sub *s, const bus_msg *m, bus_ack_fn ack, void *ud)
{
	pthread_mutex_lock(&b->mu);
	int retrying = is_failing(s, m->id);
	int attempt = retrying ? s->attempts + 1 : 1;
	int64_t retry_at = s->retry_at;
	pthread_mutex_unlock(&b->mu);
	if (retrying && bus_now(b) < retry_at)
		return BUS_WAIT;
	txn_work w = { .b = b, .s = s, .m = m, .attempt = attempt, .ack = ack, .ud = ud };
	int rc = store_txn(b->ctx->store, TXN_TRIES, single_body, &w);
	int fresh = w.fresh;
	if (rc == ENGINE_FAILED)
		return failed(b, s, m, attempt, w.eng_rc, ack, ud);
	if (rc) {
		bus_sub_error(b, s, "delivering %s: store error %s", m->id, err_name(rc));
		return rc;
	}
	clear_failing(b, s, m->id);
	count(b, s, fresh ? &s->applied : &s->duplicates, fresh ? "applied" : "duplicate", 1);
	if (fresh)
		maybe_duplicate(b, s, m, ack, ud);
	return fresh ? BUS_APPLIED : BUS_DUPLICATE;
}

/* All n in one transaction, the common case: one commit for the batch.
 * 0 when committed; ENGINE_FAILED or a store error when rolled back. */
static int deliver_batch(bus *b, bus_sub *s, const bus_msg *ms, int n, bus_ack_fn ack, void *ud,
			 unsigned char *fresh)
{
	store *st = b->ctx->store;
	int rc = store_begin(st);
	for (int i = 0; rc == 0 && i < n; i++) {
		int f = 0, eng_rc = 0;
		rc = handle_in_txn(b, s, &ms[i], 1, ack, ud, &f, &eng_rc);
		fresh[i] = (unsigned char)f;
	}
	if (rc == 0)
		rc = store_commit(st);
	if (rc)
		store_rollback(st);
	return rc;
}

int bus_deliver(bus *b, bus_sub *s, const bus_msg *ms, int n, bus_ack_fn ack, void *ud)
{
	if (n <= 0 || !b->def || !b->def->consume)
		return 0;
	pthread_mutex_lock(&b->mu);
	int retrying = is_failing(s, ms[0].id);
	pthread_mutex_unlock(&b->mu);
	if (n > 1 && !retrying) {
		unsigned char fresh_buf[256];
		unsigned char *fresh = n <= 256 ? fresh_buf : malloc((size_t)n);
		int rc = fresh ? deliver_batch(b, s, ms, n, ack, ud, fresh) : ERR_NOMEM;
		if (rc == 0) {
			int64_t applied = 0;
			for (int i = 0; i < n; i++)
				applied += fresh[i];
			count(b, s, &s->applied, "applied", applied);
			count(b, s, &s->duplicates, "duplicate", n - applied);
			for (int i = 0; i < n; i++)
				if (fresh[i])
					maybe_duplicate(b, s, &ms[i], ack, ud);
		}
		if (fresh != fresh_buf)
			free(fresh);
		if (rc == 0)
			return n;
		if (rc != ENGINE_FAILED && !retryable(rc) && rc != ERR_NOMEM) {
			bus_sub_error(b, s, "delivering a batch: store error %s", err_name(rc));
			return rc;
		}
		/* One of them failed (or the database was busy): one at a time,
		 * so those before it commit and it alone waits. */
	}
	int handled = 0;
	for (int i = 0; i < n; i++) {
		int r = deliver_single(b, s, &ms[i], ack, ud);
		if (r < 0)
			return handled ? handled : r;
		if (r == BUS_WAIT)
			break;
		handled++;
	}
	return handled;
}

/* ---- replay of dead letters --------------------------------------------------- */

typedef struct dead_row {
	int64_t id, seq, created_at, attempts;
	char *msg_id, *producer, *key, *payload, *traceparent;
} dead_row;

static void dead_rows_free(dead_row *r, int n)
{
	for (int i = 0; i < n; i++) {
		free(r[i].msg_id);
		free(r[i].producer);
		free(r[i].key);
		free(r[i].payload);
		free(r[i].traceparent);
	}
	free(r);
}

static char *col_dup(store_stmt *st, int col)
{
	const char *v = store_col_text(st, col);
	return v ? strdup(v) : NULL;
}

/* Rows of s in state REPLAY, oldest first (at most max). */
static int replay_rows(bus *b, bus_sub *s, int max, dead_row **out, int *n)
{
	*out = NULL;
	*n = 0;
	int rc = 0;
	store_stmt *st = store_queryf(b->ctx->store,
				 "SELECT id, msg_id, producer, seq, key, payload, traceparent, created_at, "
				 "attempts FROM bus_dead WHERE consumer = ? AND topic = ? AND state = 'REPLAY' "
				 "ORDER BY id LIMIT ?", &rc,
				 "tti", s->consumer, s->topic, (int64_t)max);
	if (!st)
		return rc;
	dead_row *rows = calloc((size_t)max, sizeof(*rows));
	int k = 0;
	while (rows && k < max && (rc = store_step(st)) == STORE_ROW) {
		dead_row *r = &rows[k++];
		r->id = store_col_int(st, 0);
		r->msg_id = col_dup(st, 1);
		r->producer = col_dup(st, 2);
		r->seq = store_col_int(st, 3);
		r->key = col_dup(st, 4);
		r->payload = col_dup(st, 5);
		r->traceparent = col_dup(st, 6);
		r->created_at = store_col_int(st, 7);
		r->attempts = store_col_int(st, 8);
		if (!r->msg_id || !r->producer || !r->key || !r->payload)
			rc = ERR_NOMEM;
	}
	store_reset(st);
	if (!rows)
		rc = ERR_NOMEM;
	if (rc < 0) {
		dead_rows_free(rows, k);
		return rc;
	}
	*out = rows;
	*n = k;
	return 0;
}

/* Claims (deletes) the replayed row, then applies it: the claim's row lock
 * makes a second instance wait and then find nothing to do. */
static int replay_body(void *arg)
{
	txn_work *w = arg;
	bus *b = w->b;
	w->claimed = 0;
	int rc = store_runf(b->ctx->store, "DELETE FROM bus_dead WHERE id = ? AND state = 'REPLAY'", &w->claimed,
			     "i", w->dead_id);
	if (rc == 0 && w->claimed == 1 && (w->eng_rc = b->def->consume(b->eng, w->m)) != 0)
		rc = ENGINE_FAILED;
	return rc;
}

/* Delivers one replayed dead letter: claim (delete) its row, consume, in
 * one transaction. 1 done, 0 wait, <0 store error. */
static int replay_one(bus *b, bus_sub *s, const dead_row *r)
{
	bus_msg m = { .topic = s->topic,
		      .key = r->key,
		      .payload = r->payload,
		      .payload_len = strlen(r->payload),
		      .id = r->msg_id,
		      .producer = r->producer,
		      .seq = r->seq,
		      .created_at = r->created_at,
		      .traceparent = r->traceparent,
		      .consumer = s->consumer };
	pthread_mutex_lock(&b->mu);
	int retrying = is_failing(s, m.id);
	m.attempt = retrying ? s->attempts + 1 : 1;
	int64_t retry_at = s->retry_at;
	pthread_mutex_unlock(&b->mu);
	if (retrying && bus_now(b) < retry_at)
		return 0;
	txn_work w = { .b = b, .s = s, .m = &m, .dead_id = r->id };
	int rc = store_txn(b->ctx->store, TXN_TRIES, replay_body, &w);
	int64_t claimed = w.claimed;
	int eng_rc = w.eng_rc;
	if (rc == 0) {
		clear_failing(b, s, m.id);
		if (claimed == 1) {
			count(b, s, &s->replayed, "replayed", 1);
			log_info(b->ctx->log, "bus %s/%s: dead letter %s replayed", s->topic, s->consumer,
				 m.id);
		}
		return 1;
	}
	if (rc != ENGINE_FAILED)
		return rc;
	count(b, s, &s->failures, "failed", 1);
	char error[BUS_ERROR_MAX];
	snprintf(error, sizeof(error), "replay of %s failed (%s) on attempt %d", m.id,
		 err_name(eng_rc), m.attempt);
	if (m.attempt >= b->max_attempts) {
		rc = store_runf(b->ctx->store,
				 "UPDATE bus_dead SET state = 'DEAD', attempts = attempts + ?, error = ?, "
				 "dead_at = ? WHERE id = ?", NULL,
				 "itii", (int64_t)m.attempt, error, bus_now(b), r->id);
		if (rc)
			return rc;
		clear_failing(b, s, m.id);
		log_warn(b->ctx->log, "bus %s/%s: %s: dead again after replay", s->topic,
			 s->consumer, m.id);
		return 1;
	}
	schedule_retry(b, s, m.id, m.attempt, error);
	return 0;
}

/* Replays what an operator asked for, before new messages. */
static int replay_pending(bus *b, bus_sub *s)
{
	dead_row *rows;
	int n;
	int rc = replay_rows(b, s, (int)b->batch, &rows, &n);
	if (rc)
		return rc;
	int done = 0;
	for (int i = 0; i < n; i++) {
		rc = replay_one(b, s, &rows[i]);
		if (rc <= 0)
			break;
		done++;
	}
	dead_rows_free(rows, n);
	return rc < 0 && !done ? rc : done;
}

int bus_replay(bus *b, const char *topic, const char *consumer, int64_t *moved)
{
	*moved = 0;
	for (int i = 0; i < b->nsubs; i++) {
		bus_sub *s = &b->subs[i];
		if (strcmp(s->topic, topic) != 0 || (consumer && strcmp(s->consumer, consumer) != 0))
			continue;
		int64_t changed = 0;
		int rc = store_runf(b->ctx->store,
				     "UPDATE bus_dead SET state = 'REPLAY' "
				     "WHERE consumer = ? AND topic = ? AND state = 'DEAD'", &changed,
				     "tt", s->consumer, s->topic);
		if (rc)
			return rc;
		*moved += changed;
		if (changed) {
			/* A fresh start for the replayed: full attempts again. */
			pthread_mutex_lock(&b->mu);
			s->failing[0] = '\0';
			s->attempts = 0;
			pthread_mutex_unlock(&b->mu);
			log_info(b->ctx->log, "bus %s/%s: %lld dead letters back for replay", s->topic,
				 s->consumer, (long long)changed);
		}
	}
	return 0;
}

/* ---- housekeeping ---------------------------------------------------------------- */

static void prune(bus *b)
{
	int64_t now = bus_now(b);
	if (now < b->next_prune)
		return;
	b->next_prune = now + PRUNE_EVERY_US;
	int64_t cut = now - b->retention_us, published = 0, n1 = 0, n2 = 0;
	store_runf(b->ctx->store, "DELETE FROM bus_inbox WHERE at < ?", &n1, "i", cut);
	/* Strictly below the published position, so the highest row always
	 * stays: SQLite gives a new row MAX(id) + 1, and ids handed out again
	 * would look like events consumers have seen. */
	if (b->drv->published(b, &published) == 0)
		store_runf(b->ctx->store, "DELETE FROM outbox WHERE id < ? AND created_at < ?", &n2, "ii",
			    published, cut);
	if (n1 || n2)
		log_info(b->ctx->log, "bus: pruned %lld inbox and %lld outbox rows past retention",
			 (long long)n1, (long long)n2);
}

int bus_step(bus *b)
{
	int moved = 0;
	int rc = bus_advance_horizon(b);
	if (rc < 0)
		log_warn(b->ctx->log, "bus: moving the outbox horizon: %s (%s)", err_name(rc),
			 store_errmsg(b->ctx->store));
	rc = b->drv->relay(b);
	if (rc > 0)
		moved += rc;
	for (int i = 0; i < b->nsubs; i++) {
		bus_sub *s = &b->subs[i];
		rc = replay_pending(b, s);
		if (rc > 0)
			moved += rc;
		rc = b->drv->fetch(b, s);
		if (rc > 0)
			moved += rc;
	}
	prune(b);
	return moved;
}

/* ---- the thread --------------------------------------------------------------------- */

/* Sleeps up to ms (on the monotonic clock: b->cv uses it), waking early
 * when the bus stops. 1 when stopping. */
static int wait_ms(bus *b, int64_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	int64_t ns = until.tv_nsec + (ms % 1000) * 1000000LL;
	until.tv_sec += (time_t)(ms / 1000 + ns / 1000000000LL);
	until.tv_nsec = (long)(ns % 1000000000LL);
	pthread_mutex_lock(&b->mu);
	int rc = 0;
	while (!b->stopping && rc == 0)
		rc = pthread_cond_timedwait(&b->cv, &b->mu, &until);
	int stop = b->stopping;
	pthread_mutex_unlock(&b->mu);
	return stop;
}

static void *bus_thread(void *arg)
{
	bus *b = arg;
	for (;;) {
		pthread_mutex_lock(&b->mu);
		int stop = b->stopping;
		pthread_mutex_unlock(&b->mu);
		if (stop)
			break;
		int moved = bus_step(b);
		if (moved <= 0 && wait_ms(b, b->poll_ms))
			break;
	}
	return NULL;
}

int bus_start(bus *b)
{
	if (b->running)
		return 0;
	b->stopping = 0;
	if (pthread_create(&b->thread, NULL, bus_thread, b) != 0)
		return ERR_INTERNAL;
	b->running = 1;
	return 0;
}

void bus_stop(bus *b)
{
	if (!b || !b->running)
		return;
	pthread_mutex_lock(&b->mu);
	b->stopping = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->thread, NULL);
	b->running = 0;
}

/* ---- life ----------------------------------------------------------------------------- */

static int apply_schema(bus *b, char *err, size_t errlen)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/schema/bus", b->ctx->data_dir ? b->ctx->data_dir : "data");
	int rc = store_migrate_dir(b->ctx->store, dir, err, errlen);
	if (rc)
		return rc;
	int64_t one = 0;
	rc = store_intf(b->ctx->store, &one, "SELECT COUNT(*) FROM bus_relay", "");
	if (rc || one < 2) {
		snprintf(err, errlen, "the bus's tables are missing (no %s/901_bus.sql?)", dir);
		return rc ? rc : ERR_NOT_FOUND;
	}
	/* Outboxes made before the column existed still work, without it. */
	int prc = 0;
	store_stmt *st = store_prepare(b->ctx->store, "SELECT traceparent FROM outbox WHERE id < 0",
				       &prc);
	b->has_traceparent = st != NULL;
	store_reset(st);
	if (!st)
		log_warn(b->ctx->log, "bus: the outbox has no traceparent column; events go without");
	return 0;
}

static int add_subs(bus *b, char *err, size_t errlen)
{
	const engine_sub *subs = b->def ? b->def->subs : NULL;
	int n = 0;
	while (subs && subs[n].topic)
		n++;
	if (n == 0)
		return 0;
	if (!b->def->consume) {
		snprintf(err, errlen, "%s subscribes to topics but has no consume handler",
			 b->def->name);
		return ERR_INVALID;
	}
	b->subs = calloc((size_t)n, sizeof(*b->subs));
	if (!b->subs) {
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	for (int i = 0; i < n; i++) {
		bus_sub *s = &b->subs[i];
		const char *consumer = subs[i].consumer ? subs[i].consumer : b->ctx->service;
		if (strlen(subs[i].topic) >= sizeof(s->topic) || strlen(consumer) >= sizeof(s->consumer)) {
			snprintf(err, errlen, "topic or consumer name too long: %s/%s", subs[i].topic,
				 consumer);
			return ERR_INVALID;
		}
		snprintf(s->topic, sizeof(s->topic), "%s", subs[i].topic);
		snprintf(s->consumer, sizeof(s->consumer), "%s", consumer);
		char names[BUS_MAX_PRODUCERS][BUS_NAME_MAX];
		s->nsrc = bus_topic_producers(b->ctx->config, s->topic, names, BUS_MAX_PRODUCERS);
		for (int k = 0; k < s->nsrc; k++) {
			memcpy(s->src[k].producer, names[k], sizeof(s->src[k].producer));
			s->src[k].pending = -1;
		}
	}
	b->nsubs = n;
	return 0;
}

bus *bus_new(engine_ctx *ctx, const engine_def *def, void *eng, const char *url, char *err,
	     size_t errlen)
{
	if (!ctx || !ctx->store) {
		snprintf(err, errlen, "the bus needs a store");
		return NULL;
	}
	if (!url)
		url = config_get(ctx->config, "bus.url");
	if (!url || !url[0])
		url = "embedded";
	if (bus_url_check(url, err, errlen) != 0)
		return NULL;
	bus *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->ctx = ctx;
	b->def = def;
	b->eng = eng;
	snprintf(b->url, sizeof(b->url), "%s", url);
	b->drv = strncmp(url, "kafka://", 8) == 0 ? &bus_kafka_driver : &bus_embedded_driver;
	b->pg = strcmp(store_driver(ctx->store), "postgresql") == 0;
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	const config *c = ctx->config;
	b->poll_ms = config_int(c, "bus.poll_ms", 100);
	b->batch = config_int(c, "bus.batch", 200);
	b->max_attempts = config_int(c, "bus.max_attempts", 5);
	b->retry_base_us = config_int(c, "bus.retry_base_ms", 200) * 1000;
	b->retry_max_us = config_int(c, "bus.retry_max_ms", 30000) * 1000;
	b->lease_us = config_int(c, "bus.lease_ms", 5000) * 1000;
	b->fetch_timeout_ms = config_int(c, "bus.fetch_timeout_ms", 2000);
	b->retention_us = config_int(c, "bus.retention_s", 604800) * 1000000;
	b->kafka_timeout_ms = config_int(c, "bus.kafka_timeout_ms", 30000);
	if (b->poll_ms < 1)
		b->poll_ms = 1;
	if (b->batch < 1)
		b->batch = 1;
	if (b->batch > 1000)
		b->batch = 1000;
	if (b->max_attempts < 1)
		b->max_attempts = 1;
	b->next_prune = bus_now(b) + PRUNE_EVERY_US;
	if (apply_schema(b, err, errlen) != 0 || add_subs(b, err, errlen) != 0 ||
	    b->drv->open(b, url, err, errlen) != 0) {
		bus_free(b);
		return NULL;
	}
	metrics_help(ctx->metrics, "bus_messages_total",
		     "Messages handled by the bus's consumers, by topic, consumer and outcome "
		     "(applied, duplicate, failed, dead, replayed).");
	metrics_help(ctx->metrics, "bus_published_total",
		     "Outbox rows the relay published (acknowledged by Kafka).");
	metrics_help(ctx->metrics, "bus_queue_depth",
		     "Messages waiting: outbox rows not yet published (consumer \"(relay)\"), or "
		     "published and not yet consumed, by topic and consumer.");
	metrics_help(ctx->metrics, "bus_queue_lag_seconds",
		     "Age of the oldest waiting message, by topic and consumer.");
	metrics_help(ctx->metrics, "bus_dead_letters",
		     "Dead letters waiting for a replay, by topic and consumer.");
	log_info(ctx->log, "bus: %s, %d subscription(s)", b->drv->name, b->nsubs);
	return b;
}

void bus_free(bus *b)
{
	if (!b)
		return;
	bus_stop(b);
	if (b->drv_state || b->drv)
		b->drv->close(b);
	free(b->subs);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

const char *bus_driver_name(const bus *b) { return b->drv->name; }

void bus_set_hooks(bus *b, const bus_hooks *hooks)
{
	pthread_mutex_lock(&b->mu);
	if (hooks)
		b->hooks = *hooks;
	else
		memset(&b->hooks, 0, sizeof(b->hooks));
	pthread_mutex_unlock(&b->mu);
}

int bus_ready(bus *b) { return b->drv->ready(b); }

/* ---- operations ------------------------------------------------------------------------- */

/* Dead letters of s by state. */
static int dead_counts(bus *b, bus_sub *s, int64_t *dead, int64_t *replaying)
{
	*dead = *replaying = 0;
	int rc = store_intf(b->ctx->store, dead,
			 "SELECT COUNT(*) FROM bus_dead WHERE consumer = ? AND topic = ? AND state = 'DEAD'",
			 "tt", s->consumer, s->topic);
	if (rc == 0)
		rc = store_intf(b->ctx->store, replaying,
			     "SELECT COUNT(*) FROM bus_dead WHERE consumer = ? AND topic = ? "
			     "AND state = 'REPLAY'",
			     "tt", s->consumer, s->topic);
	return rc;
}

/* The relay's row for a topic this service produces. */
static json_t *relay_row(bus *b, const char *topic, int64_t published)
{
	int64_t depth = 0, oldest = 0, now = bus_now(b);
	int rc = store_intf(b->ctx->store, &depth, "SELECT COUNT(*) FROM outbox WHERE topic = ? AND id > ?", "ti",
			 topic, published);
	if (rc == 0 && depth > 0)
		rc = store_intf(b->ctx->store, &oldest, "SELECT MIN(created_at) FROM outbox WHERE topic = ? AND id > ?",
			     "ti", topic, published);
	if (rc)
		return NULL;
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "topic", topic, "consumer", "(relay)",
			 "role", "producer", "depth", (json_int_t)depth, "lag", (json_int_t)depth,
			 "lag_ms", (json_int_t)(depth > 0 && oldest ? (now - oldest) / 1000 : 0),
			 "dead_letters", (json_int_t)0, "published_to", (json_int_t)published);
}

json_t *bus_queues(bus *b)
{
	json_t *rows = json_array();
	int64_t published = 0;
	int rc = b->drv->published(b, &published);
	/* The topics this service produces, by bus.topics. */
	const char *table = config_get(b->ctx->config, "bus.topics");
	const char *p = table ? table : "";
	while (rc == 0 && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		size_t n = strcspn(p, " \t;"), tn = strcspn(p, "=");
		if (tn < n && tn < BUS_TOPIC_MAX) {
			char topic[BUS_TOPIC_MAX];
			memcpy(topic, p, tn);
			topic[tn] = '\0';
			if (produces(b, topic)) {
				json_t *row = relay_row(b, topic, published);
				if (!row)
					rc = ERR_STORE;
				else
					json_array_append_new(rows, row);
			}
		}
		p += n;
	}
	for (int i = 0; rc == 0 && i < b->nsubs; i++) {
		bus_sub *s = &b->subs[i];
		int64_t dead = 0, replaying = 0;
		rc = dead_counts(b, s, &dead, &replaying);
		if (rc)
			break;
		json_t *row = json_pack("{s:s,s:s,s:s,s:I,s:I}", "topic", s->topic, "consumer",
					s->consumer, "role", "consumer", "dead_letters",
					(json_int_t)dead, "replaying", (json_int_t)replaying);
		b->drv->sub_stats(b, s, row);
		pthread_mutex_lock(&b->mu);
		json_object_set_new(row, "applied", json_integer(s->applied));
		json_object_set_new(row, "duplicates", json_integer(s->duplicates));
		json_object_set_new(row, "failures", json_integer(s->failures));
		json_object_set_new(row, "replayed", json_integer(s->replayed));
		json_object_set_new(row, "retrying", json_string(s->failing));
		json_object_set_new(row, "error", json_string(s->error));
		pthread_mutex_unlock(&b->mu);
		json_array_append_new(rows, row);
	}
	if (rc) {
		json_decref(rows);
		return NULL;
	}
	return json_pack("{s:s,s:s,s:s,s:o}", "service", b->ctx->service, "instance",
			 b->ctx->instance_id ? b->ctx->instance_id : "", "driver", b->drv->name,
			 "queues", rows);
}

void bus_export_metrics(bus *b)
{
	json_t *q = bus_queues(b);
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(q, "queues"), i, row)
	{
		char labels[200];
		snprintf(labels, sizeof(labels), "topic=\"%s\",consumer=\"%s\"",
			 json_string_value(json_object_get(row, "topic")),
			 json_string_value(json_object_get(row, "consumer")));
		json_t *depth = json_object_get(row, "depth");
		if (json_is_integer(depth) && json_integer_value(depth) >= 0)
			metrics_gauge(b->ctx->metrics, "bus_queue_depth", labels,
				      (double)json_integer_value(depth));
		json_t *lag = json_object_get(row, "lag_ms");
		if (json_is_integer(lag) && json_integer_value(lag) >= 0)
			metrics_gauge(b->ctx->metrics, "bus_queue_lag_seconds", labels,
				      (double)json_integer_value(lag) / 1000.0);
		metrics_gauge(b->ctx->metrics, "bus_dead_letters", labels,
			      (double)json_integer_value(json_object_get(row, "dead_letters")));
	}
	json_decref(q);
}

static void admin_replay(bus *b, msg_req *req, msg_resp *resp, const char *topic)
{
	char consumer[BUS_NAME_MAX] = "";
	int q = msg_req_query(req, "consumer", consumer, sizeof(consumer));
	if (q < 0) {
		engine_bad_field(resp, "consumer", "too long");
		return;
	}
	int64_t moved = 0;
	int rc = bus_replay(b, topic, q == 1 && consumer[0] ? consumer : NULL, &moved);
	if (rc) {
		engine_store_error(b->ctx, resp, rc, "replaying dead letters");
		return;
	}
	msg_resp_json(resp, 200, json_pack("{s:s,s:s,s:s?,s:I}", "service", b->ctx->service, "topic",
					   topic, "consumer", q == 1 && consumer[0] ? consumer : NULL,
					   "moved", (json_int_t)moved));
}

int bus_handle(bus *b, msg_req *req, msg_resp *resp)
{
	static const char replay_prefix[] = "/admin/queues/";
	if (strcmp(req->path, "/admin/queues") == 0) {
		resp->route = "/admin/queues";
		if (strcmp(req->method, "GET") != 0) {
			msg_resp_error(resp, 405, "method_not_allowed", "use GET", NULL);
			msg_resp_set_header(resp, "Allow", "GET");
		} else if (engine_require_admin(b->ctx, req, resp) == 0) {
			json_t *v = bus_queues(b);
			if (v)
				msg_resp_json(resp, 200, v);
			else
				engine_store_error(b->ctx, resp, ERR_STORE, "reading the queues");
		}
		return 1;
	}
	size_t plen = sizeof(replay_prefix) - 1;
	if (strncmp(req->path, replay_prefix, plen) == 0) {
		const char *topic = req->path + plen;
		const char *slash = strchr(topic, '/');
		resp->route = "/admin/queues/{topic}/replay";
		if (!slash || strcmp(slash, "/replay") != 0 || slash == topic ||
		    (size_t)(slash - topic) >= BUS_TOPIC_MAX) {
			msg_resp_error(resp, 404, "not_found", "no such route", NULL);
			return 1;
		}
		if (strcmp(req->method, "POST") != 0) {
			msg_resp_error(resp, 405, "method_not_allowed", "use POST", NULL);
			msg_resp_set_header(resp, "Allow", "POST");
			return 1;
		}
		if (engine_require_admin(b->ctx, req, resp) != 0)
			return 1;
		char name[BUS_TOPIC_MAX];
		memcpy(name, topic, (size_t)(slash - topic));
		name[slash - topic] = '\0';
		if (!bus_valid_name(name)) {
			msg_resp_error(resp, 404, "not_found", "no such topic", NULL);
			return 1;
		}
		admin_replay(b, req, resp, name);
		return 1;
	}
	return b->drv->handle ? b->drv->handle(b, req, resp) : 0;
}
