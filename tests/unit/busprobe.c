/* busprobe: the bus tests' consumer engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "busprobe.h"
#include "bus/bus.h"
#include "core/err.h"

static void *probe_create(engine_ctx *ctx, char *err, size_t errlen)
{
	int rc = store_exec(ctx->store,
			    "CREATE TABLE IF NOT EXISTS effects (id INTEGER PRIMARY KEY, "
			    "msg_id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL, key TEXT NOT NULL, "
			    "seq BIGINT NOT NULL, attempt BIGINT NOT NULL, n BIGINT NOT NULL)");
	if (rc) {
		snprintf(err, errlen, "effects: %s", store_errmsg(ctx->store));
		return NULL;
	}
	busprobe *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->ctx = ctx;
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

static void probe_destroy(void *eng)
{
	busprobe *p = eng;
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static void probe_handle(void *eng, msg_req *req, msg_resp *resp)
{
	msg_resp_error(resp, 404, "not_found", "nothing here", NULL);
}

static int probe_consume(void *eng, const bus_msg *m)
{
	busprobe *p = eng;
	pthread_mutex_lock(&p->mu);
	p->calls++;
	int fail = p->fail_key[0] && strcmp(p->fail_key, m->key) == 0;
	pthread_mutex_unlock(&p->mu);
	if (fail)
		return ERR_UNAVAILABLE;
	if (!strstr(m->payload, "\"type\":") || m->payload_len != strlen(m->payload))
		return ERR_PARSE;
	return store_runf(p->ctx->store,
			  "INSERT INTO effects (msg_id, topic, key, seq, attempt, n) "
			  "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (msg_id) DO UPDATE SET n = effects.n + 1",
			  NULL, "tttii", m->id, m->topic, m->key, m->seq, (int64_t)m->attempt);
}

static const engine_sub probe_subs[] = { { "inventory", NULL }, { NULL, NULL } };

const engine_def busprobe_engine = {
	.name = "busprobe",
	.needs_store = 1,
	.create = probe_create,
	.handle = probe_handle,
	.destroy = probe_destroy,
	.subs = probe_subs,
	.consume = probe_consume,
};

void busprobe_fail(busprobe *p, const char *key)
{
	pthread_mutex_lock(&p->mu);
	snprintf(p->fail_key, sizeof(p->fail_key), "%s", key ? key : "");
	pthread_mutex_unlock(&p->mu);
}

int busprobe_calls(busprobe *p)
{
	pthread_mutex_lock(&p->mu);
	int n = p->calls;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int64_t busprobe_int(store *s, const char *sql)
{
	int rc = 0;
	store_stmt *st = store_prepare(s, sql, &rc);
	if (!st)
		fail_msg("%s: %s", sql, store_errmsg(s));
	int64_t v = -1;
	rc = store_step(st);
	if (rc == STORE_ROW)
		v = store_col_int(st, 0);
	store_reset(st);
	if (rc < 0)
		fail_msg("%s: %s", sql, store_errmsg(s));
	return v;
}

int64_t busprobe_events(store *producer)
{
	return busprobe_int(producer, "SELECT COUNT(*) FROM outbox WHERE topic = 'inventory'");
}

int64_t busprobe_effects(store *consumer)
{
	return busprobe_int(consumer, "SELECT COUNT(*) FROM effects");
}

void busprobe_set_stock(efix *p, const char *sku, int on_hand)
{
	char path[96], body[64];
	snprintf(path, sizeof(path), "/v1/inventory/%s", sku);
	snprintf(body, sizeof(body), "{\"on_hand\":%d}", on_hand);
	json_decref(efix_expect(p, "PUT", path, NULL, "Bearer " EFIX_ADMIN, body, 200));
}

json_t *busprobe_row(bus *b)
{
	json_t *v = bus_queues(b);
	if (!v)
		fail_msg("bus_queues failed");
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(v, "queues"), i, row)
	{
		if (strcmp(json_string_value(json_object_get(row, "consumer")), "busprobe") == 0) {
			json_incref(row);
			json_decref(v);
			return row;
		}
	}
	json_decref(v);
	fail_msg("no busprobe row in the queues");
	return NULL;
}
