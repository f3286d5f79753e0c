/* recommend: co-purchase counts in, product lists out. */
#include "services/recommend.h"
#include "core/err.h"
#include "core/jval.h"
#include "services/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The kept popular list's key in the gateway's stale cache: not a path a
 * request can have. */
#define POPULAR_KEY RECOMMEND_PATH "#popular"

/* The product columns catalog_product_json reads, on the products table
 * named p. */
#define P_COLS "p.sku, p.name, p.description, p.category, p.price_cents, p.currency, " \
	       "p.created_at, p.updated_at"

/* ---- building --------------------------------------------------------------------- */

int recommend_consume(engine_ctx *ctx, const bus_msg *m)
{
	json_t *ev = json_loadb(m->payload, m->payload_len, 0, NULL);
	const char *type = json_string_value(json_object_get(ev, "type"));
	if (!type || strcmp(type, "order.confirmed") != 0) {
		json_decref(ev);
		return 0;
	}
	/* the order's distinct skus (the first RECOMMEND_MAX_SKUS) and units */
	json_t *items = json_object_get(ev, "items");
	const char *skus[RECOMMEND_MAX_SKUS];
	int64_t units[RECOMMEND_MAX_SKUS];
	int n = 0, rc = json_is_array(items) ? 0 : ERR_PARSE;
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		const char *sku = json_string_value(json_object_get(it, "sku"));
		json_t *qty = json_object_get(it, "qty");
		if (!sku || !json_is_integer(qty)) {
			rc = ERR_PARSE;
			break;
		}
		int k = 0;
		while (k < n && strcmp(skus[k], sku) != 0)
			k++;
		if (k == n && n == RECOMMEND_MAX_SKUS)
			continue;
		if (k == n) {
			skus[n] = sku;
			units[n++] = 0;
		}
		units[k] += json_integer_value(qty);
	}
	int64_t now = clock_now(ctx->clock);
	for (int a = 0; rc == 0 && a < n; a++)
		rc = store_runf(ctx->store,
				"INSERT INTO sku_sales (sku, orders, units, updated_at) VALUES (?, 1, ?, ?) "
				"ON CONFLICT (sku) DO UPDATE SET orders = sku_sales.orders + 1, "
				"units = sku_sales.units + excluded.units, updated_at = excluded.updated_at",
				NULL, "tii", skus[a], units[a], now);
	for (int a = 0; rc == 0 && a < n; a++)
		for (int b = 0; rc == 0 && b < n; b++)
			if (a != b)
				rc = store_runf(ctx->store,
						"INSERT INTO co_purchase (sku, other, orders, updated_at) "
						"VALUES (?, ?, 1, ?) ON CONFLICT (sku, other) DO UPDATE SET "
						"orders = co_purchase.orders + 1, updated_at = excluded.updated_at",
						NULL, "tti", skus[a], skus[b], now);
	if (rc == ERR_PARSE)
		log_error(ctx->log, "%s: an order.confirmed without readable items", m->id);
	json_decref(ev);
	return rc;
}

/* ---- answering ---------------------------------------------------------------------- */

/* Appends the products st yields to items (at most limit in all). */
static int collect(store_stmt *st, json_t *items, int64_t limit)
{
	int rc;
	while ((int64_t)json_array_size(items) < limit && (rc = store_step(st)) == STORE_ROW)
		json_array_append_new(items, catalog_product_json(st));
	store_reset(st);
	return (int64_t)json_array_size(items) >= limit ? 0 : rc < 0 ? rc : 0;
}

void recommend_answer(engine_ctx *ctx, const char *sku, int64_t limit, msg_resp *resp)
{
	store *s = ctx->store;
	int rc = 0;
	const char *self = sku && sku[0] ? sku : "";
	if (self[0]) {
		int64_t exists = 0;
		rc = store_intf(s, &exists, "SELECT COUNT(*) FROM products WHERE sku = ?", "t", self);
		if (rc == 0 && !exists) {
			msg_resp_error(resp, 404, "not_found", "no such product",
				       json_pack("{s:s}", "sku", self));
			return;
		}
	}
	/* The first of these that yields anything answers. */
	static const struct {
		const char *source, *sql;
		int needs_sku;
	} ways[] = {
		{ "co_purchase",
		  "SELECT " P_COLS " FROM co_purchase c JOIN products p ON p.sku = c.other "
		  "WHERE c.sku = ? ORDER BY c.orders DESC, c.other LIMIT ?",
		  1 },
		{ "popular",
		  "SELECT " P_COLS " FROM sku_sales x JOIN products p ON p.sku = x.sku "
		  "WHERE x.sku <> ? ORDER BY x.orders DESC, x.units DESC, x.sku LIMIT ?",
		  0 },
		/* nothing sold yet: the catalog's own first products */
		{ "popular", "SELECT " P_COLS " FROM products p WHERE p.sku <> ? ORDER BY p.sku LIMIT ?", 0 },
	};
	json_t *items = json_array();
	const char *source = "popular";
	size_t nways = sizeof(ways) / sizeof(ways[0]);
	for (size_t w = 0; rc == 0 && json_array_size(items) == 0 && w < nways; w++) {
		if (ways[w].needs_sku && !self[0])
			continue;
		store_stmt *st = store_queryf(s, ways[w].sql, &rc, "ti", self, limit);
		if (st)
			rc = collect(st, items, limit);
		source = ways[w].source;
	}
	if (rc) {
		json_decref(items);
		engine_store_error(ctx, resp, rc, "recommendations");
		return;
	}
	msg_resp_json(resp, 200,
		      json_pack("{s:o,s:s,s:s?}", "items", items, "source", source, "sku",
				self[0] ? self : NULL));
}

/* ---- the gateway's fallback ------------------------------------------------------------- */

static int is_recommendations(const msg_req *req)
{
	return req && strcmp(req->method, "GET") == 0 && strcmp(req->path, RECOMMEND_PATH) == 0;
}

void recommend_fallback_keep(fallback *f, const msg_req *req, const msg_resp *resp, int64_t now_us)
{
	if (!f || !is_recommendations(req) || resp->status != 200 || !resp->body)
		return;
	json_t *v = json_loadb(resp->body, resp->body_len, 0, NULL);
	const char *source = json_string_value(json_object_get(v, "source"));
	if (source && strcmp(source, "popular") == 0)
		fallback_put(f, POPULAR_KEY, resp->content_type, resp->body, resp->body_len, now_us);
	json_decref(v);
}

int recommend_fallback_get(fallback *f, const msg_req *req, int64_t now_us, msg_resp *out,
			   int64_t *age_us)
{
	if (!f || !is_recommendations(req))
		return ERR_NOT_FOUND;
	return fallback_get(f, POPULAR_KEY, now_us, out, age_us);
}

void recommend_fallback_mark(const msg_req *req, msg_resp *resp)
{
	if (!is_recommendations(req) || !resp->body)
		return;
	json_t *v = json_loadb(resp->body, resp->body_len, 0, NULL);
	json_t *items = json_object_get(v, "items");
	if (!json_is_array(items)) {
		json_decref(v);
		return;
	}
	char sku[80] = "", limit_s[16] = "";
	if (msg_req_query(req, "sku", sku, sizeof(sku)) < 0)
		sku[0] = '\0';
	long limit = msg_req_query(req, "limit", limit_s, sizeof(limit_s)) > 0 ? atol(limit_s) : 0;
	json_t *kept = json_array();
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		const char *s = json_string_value(json_object_get(it, "sku"));
		if ((!sku[0] || !s || strcmp(s, sku) != 0) &&
		    (limit <= 0 || (long)json_array_size(kept) < limit))
			json_array_append(kept, it);
	}
	json_object_set_new(v, "items", kept);
	json_object_set_new(v, "source", json_string("fallback"));
	if (sku[0])
		json_object_set_new(v, "sku", json_string(sku));
	char *text = jval_dump(v);
	json_decref(v);
	if (text)
		msg_resp_set(resp, resp->status, "application/json", text, strlen(text));
	free(text);
}
