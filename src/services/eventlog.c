/* eventlog: every event consumed, kept for inspection. */
#include "services/eventlog.h"
#include "bus/bus.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_MAX 1000

typedef struct eventlog {
	engine_ctx *ctx;
	router *rt;
} eventlog;

static int eventlog_consume(void *eng, const bus_msg *m)
{
	eventlog *e = eng;
	return store_runf(e->ctx->store,
			  "INSERT INTO events (msg_id, topic, producer, seq, key, payload, created_at, "
			  "received_at, applied) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) "
			  "ON CONFLICT (msg_id) DO UPDATE SET applied = events.applied + 1",
			  NULL, "tttittii", m->id, m->topic, m->producer, m->seq, m->key, m->payload,
			  m->created_at, clock_now(e->ctx->clock));
}

/* GET /admin/eventlog?topic=&key=&after=&limit= */
static void list_events(void *ud, msg_req *req, msg_resp *resp)
{
	eventlog *e = ud;
	if (engine_require_admin(e->ctx, req, resp))
		return;
	char topic[80] = "", key[200] = "", after_s[24] = "0", limit_s[24] = "100";
	if (msg_req_query(req, "topic", topic, sizeof(topic)) < 0 ||
	    msg_req_query(req, "key", key, sizeof(key)) < 0 ||
	    msg_req_query(req, "after", after_s, sizeof(after_s)) < 0 ||
	    msg_req_query(req, "limit", limit_s, sizeof(limit_s)) < 0) {
		engine_bad_field(resp, "query", "a parameter is too long");
		return;
	}
	char *end1, *end2;
	long long after = strtoll(after_s, &end1, 10), limit = strtoll(limit_s, &end2, 10);
	if (*end1 || after < 0) {
		engine_bad_field(resp, "after", "must be a whole number >= 0");
		return;
	}
	if (*end2 || limit < 1 || limit > LIST_MAX) {
		engine_bad_field(resp, "limit", "must be 1 to 1000");
		return;
	}
	int rc = 0;
	store_stmt *st = store_prepare(
		e->ctx->store,
		"SELECT id, msg_id, topic, producer, seq, key, payload, created_at, applied FROM events "
		"WHERE id > ? AND (? = '' OR topic = ?) AND (? = '' OR key = ?) ORDER BY id LIMIT ?",
		&rc);
	if (!st || store_bind_int(st, 1, after) || store_bind_text(st, 2, topic) ||
	    store_bind_text(st, 3, topic) || store_bind_text(st, 4, key) ||
	    store_bind_text(st, 5, key) || store_bind_int(st, 6, limit)) {
		store_reset(st);
		engine_store_error(e->ctx, resp, rc ? rc : ERR_STORE, "listing events");
		return;
	}
	json_t *items = json_array();
	while ((rc = store_step(st)) == STORE_ROW)
		json_array_append_new(
			items, json_pack("{s:I,s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:I}", "id",
					 (json_int_t)store_col_int(st, 0), "msg_id", store_col_text(st, 1),
					 "topic", store_col_text(st, 2), "producer", store_col_text(st, 3),
					 "seq", (json_int_t)store_col_int(st, 4), "key",
					 store_col_text(st, 5), "payload", store_col_text(st, 6),
					 "created_at", (json_int_t)store_col_int(st, 7), "applied",
					 (json_int_t)store_col_int(st, 8)));
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		engine_store_error(e->ctx, resp, rc, "listing events");
		return;
	}
	msg_resp_json(resp, 200, json_pack("{s:o}", "items", items));
}

static void *eventlog_create(engine_ctx *ctx, char *err, size_t errlen)
{
	eventlog *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->ctx = ctx;
	static const engine_route routes[] = {
		{ "GET", "/admin/eventlog", list_events },
	};
	e->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), e, err, errlen);
	if (!e->rt) {
		free(e);
		return NULL;
	}
	return e;
}

static void eventlog_handle(void *eng, msg_req *req, msg_resp *resp)
{
	eventlog *e = eng;
	router_dispatch(e->rt, req, resp);
}

static void eventlog_destroy(void *eng)
{
	eventlog *e = eng;
	if (!e)
		return;
	router_free(e->rt);
	free(e);
}

static const engine_sub eventlog_subs[] = {
	{ "inventory", "eventlog" },
	{ "orders", "eventlog" },
	{ "payments", "eventlog" },
	{ NULL, NULL },
};

const engine_def eventlog_engine = {
	.name = "eventlog",
	.needs_store = 1,
	.create = eventlog_create,
	.handle = eventlog_handle,
	.tick = NULL,
	.ready = NULL,
	.destroy = eventlog_destroy,
	.subs = eventlog_subs,
	.consume = eventlog_consume,
};
