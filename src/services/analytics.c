/* analytics: upserts on consume, sums on read. */
#include "services/analytics.h"
#include "bus/bus.h"
#include "core/err.h"
#include "net/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_US (60 * 1000000LL)
#define MAX_WINDOW 10080    /* a week of minutes */
#define MAX_SERIES 1440     /* a day of minutes */
#define TOP_MAX 100

typedef struct analytics {
	engine_ctx *ctx;
	router *rt;
} analytics;

/* ---- consuming ------------------------------------------------------------------ */

static int bump_minute(analytics *a, int64_t minute, int64_t views, int64_t adds, int64_t orders,
		       int64_t cancelled)
{
	return store_runf(a->ctx->store,
			  "INSERT INTO an_minutes (minute, views, cart_adds, orders, cancelled) "
			  "VALUES (?, ?, ?, ?, ?) ON CONFLICT (minute) DO UPDATE SET "
			  "views = an_minutes.views + excluded.views, "
			  "cart_adds = an_minutes.cart_adds + excluded.cart_adds, "
			  "orders = an_minutes.orders + excluded.orders, "
			  "cancelled = an_minutes.cancelled + excluded.cancelled",
			  NULL, "iiiii", minute, views, adds, orders, cancelled);
}

/* Adds to a product's row; currency "" keeps the one it has. */
static int bump_product(analytics *a, const char *sku, int64_t views, int64_t adds, int64_t orders,
			int64_t units, int64_t revenue, const char *currency)
{
	return store_runf(a->ctx->store,
			  "INSERT INTO an_products (sku, views, cart_adds, orders, units, revenue_cents, "
			  "currency) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sku) DO UPDATE SET "
			  "views = an_products.views + excluded.views, "
			  "cart_adds = an_products.cart_adds + excluded.cart_adds, "
			  "orders = an_products.orders + excluded.orders, "
			  "units = an_products.units + excluded.units, "
			  "revenue_cents = an_products.revenue_cents + excluded.revenue_cents, "
			  "currency = CASE WHEN excluded.currency = '' THEN an_products.currency "
			  "ELSE excluded.currency END",
			  NULL, "tiiiiit", sku, views, adds, orders, units, revenue, currency);
}

static int on_confirmed(analytics *a, int64_t minute, json_t *ev)
{
	const char *currency = json_string_value(json_object_get(ev, "currency"));
	json_t *total = json_object_get(ev, "total_cents");
	json_t *items = json_object_get(ev, "items");
	if (!currency || !json_is_integer(total) || !json_is_array(items))
		return ERR_PARSE;
	int rc = bump_minute(a, minute, 0, 0, 1, 0);
	if (rc == 0)
		rc = store_runf(a->ctx->store,
				"INSERT INTO an_revenue (minute, currency, orders, revenue_cents) "
				"VALUES (?, ?, 1, ?) ON CONFLICT (minute, currency) DO UPDATE SET "
				"orders = an_revenue.orders + 1, "
				"revenue_cents = an_revenue.revenue_cents + excluded.revenue_cents",
				NULL, "iti", minute, currency, (int64_t)json_integer_value(total));
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		const char *sku = json_string_value(json_object_get(it, "sku"));
		json_t *qty = json_object_get(it, "qty"), *line = json_object_get(it, "line_total_cents");
		if (rc == 0 && (!sku || !json_is_integer(qty)))
			rc = ERR_PARSE;
		if (rc == 0)
			rc = bump_product(a, sku, 0, 0, 1, json_integer_value(qty),
					  json_is_integer(line) ? json_integer_value(line) : 0,
					  currency);
	}
	return rc;
}

static int on_views(analytics *a, int64_t minute, json_t *ev)
{
	json_t *views = json_object_get(ev, "views");
	if (!json_is_object(views))
		return ERR_PARSE;
	int64_t total = 0;
	int rc = 0;
	const char *sku;
	json_t *n;
	json_object_foreach(views, sku, n)
	{
		if (rc == 0 && (!json_is_integer(n) || json_integer_value(n) < 0))
			rc = ERR_PARSE;
		if (rc == 0)
			rc = bump_product(a, sku, json_integer_value(n), 0, 0, 0, 0, "");
		total += json_integer_value(n);
	}
	return rc ? rc : bump_minute(a, minute, total, 0, 0, 0);
}

static int analytics_consume(void *eng, const bus_msg *m)
{
	analytics *a = eng;
	json_t *ev = json_loadb(m->payload, m->payload_len, 0, NULL);
	const char *type = json_string_value(json_object_get(ev, "type"));
	int64_t minute = m->created_at / MINUTE_US;
	int rc = 0;
	if (!type)
		rc = ERR_PARSE;
	else if (strcmp(type, "order.confirmed") == 0)
		rc = on_confirmed(a, minute, ev);
	else if (strcmp(type, "order.cancelled") == 0)
		rc = bump_minute(a, minute, 0, 0, 0, 1);
	else if (strcmp(type, "product.viewed") == 0)
		rc = on_views(a, minute, ev);
	else if (strcmp(type, "cart.item_added") == 0) {
		const char *sku = json_string_value(json_object_get(ev, "sku"));
		rc = sku ? bump_product(a, sku, 0, 1, 0, 0, 0, "") : ERR_PARSE;
		if (rc == 0)
			rc = bump_minute(a, minute, 0, 1, 0, 0);
	}
	if (rc == ERR_PARSE)
		log_error(a->ctx->log, "%s on %s: not an event analytics can read", m->id, m->topic);
	json_decref(ev);
	return rc;
}

/* ---- reading --------------------------------------------------------------------- */

/* ?minutes=N (1..max; def when absent), or -1 with resp filled. */
static int64_t window_param(const msg_req *req, msg_resp *resp, int64_t max, int64_t def)
{
	int64_t n = def;
	return engine_query_int(req, resp, "minutes", 1, max, &n) < 0 ? -1 : n;
}

/* The first minute of the window of the last n minutes (0: all time). */
static int64_t since_minute(analytics *a, int64_t n)
{
	return n > 0 ? clock_now(a->ctx->clock) / MINUTE_US - n + 1 : 0;
}

/* Sums of an_minutes since `since` into out[4] (views, adds, orders,
 * cancelled). */
static int minute_sums(analytics *a, int64_t since, int64_t out[4])
{
	int rc = 0;
	store_stmt *st = store_queryf(a->ctx->store,
				      "SELECT COALESCE(SUM(views), 0), COALESCE(SUM(cart_adds), 0), "
				      "COALESCE(SUM(orders), 0), COALESCE(SUM(cancelled), 0) "
				      "FROM an_minutes WHERE minute >= ?",
				      &rc, "i", since);
	if (!st)
		return rc;
	if ((rc = store_step(st)) == STORE_ROW)
		for (int i = 0; i < 4; i++)
			out[i] = store_col_int(st, i);
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* [{currency, orders, revenue_cents}] since `since`, or NULL on a store
 * error (*err set). */
static json_t *revenue_json(analytics *a, int64_t since, int *err)
{
	store_stmt *st = store_queryf(a->ctx->store,
				      "SELECT currency, SUM(orders), SUM(revenue_cents) FROM an_revenue "
				      "WHERE minute >= ? GROUP BY currency ORDER BY currency",
				      err, "i", since);
	if (!st)
		return NULL;
	json_t *arr = json_array();
	int rc;
	while ((rc = store_step(st)) == STORE_ROW)
		json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "currency", store_col_text(st, 0),
						     "orders", (json_int_t)store_col_int(st, 1),
						     "revenue_cents", (json_int_t)store_col_int(st, 2)));
	store_reset(st);
	if (rc < 0) {
		*err = rc;
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* a / b, or null when b is 0. */
static json_t *rate(int64_t a, int64_t b)
{
	return b > 0 ? json_real((double)a / (double)b) : json_null();
}

static json_t *window_json(int64_t n) { return n > 0 ? json_integer(n) : json_null(); }

static void get_summary(void *ud, msg_req *req, msg_resp *resp)
{
	analytics *a = ud;
	int64_t n;
	if (engine_require_admin(a->ctx, req, resp) || (n = window_param(req, resp, MAX_WINDOW, 0)) < 0)
		return;
	int64_t since = since_minute(a, n), s[4] = { 0, 0, 0, 0 };
	int rc = minute_sums(a, since, s);
	json_t *revenue = rc == 0 ? revenue_json(a, since, &rc) : NULL;
	if (rc) {
		engine_store_error(a->ctx, resp, rc, "analytics summary");
		return;
	}
	msg_resp_json(resp, 200,
		      json_pack("{s:o,s:I,s:I,s:o,s:I,s:I,s:o}", "window_minutes", window_json(n),
				"orders", (json_int_t)s[2], "cancelled", (json_int_t)s[3], "revenue",
				revenue, "product_views", (json_int_t)s[0], "cart_adds",
				(json_int_t)s[1], "conversion_rate", rate(s[2], s[0])));
}

static void get_funnel(void *ud, msg_req *req, msg_resp *resp)
{
	analytics *a = ud;
	int64_t n;
	if (engine_require_admin(a->ctx, req, resp) || (n = window_param(req, resp, MAX_WINDOW, 0)) < 0)
		return;
	int64_t s[4] = { 0, 0, 0, 0 };
	int rc = minute_sums(a, since_minute(a, n), s);
	if (rc) {
		engine_store_error(a->ctx, resp, rc, "analytics funnel");
		return;
	}
	json_t *steps = json_pack("[{s:s,s:I},{s:s,s:I},{s:s,s:I}]", "step", "product_views", "count",
				  (json_int_t)s[0], "step", "cart_adds", "count", (json_int_t)s[1],
				  "step", "orders", "count", (json_int_t)s[2]);
	msg_resp_json(resp, 200,
		      json_pack("{s:o,s:o,s:{s:o,s:o,s:o}}", "window_minutes", window_json(n), "steps",
				steps, "rates", "view_to_cart", rate(s[1], s[0]), "cart_to_order",
				rate(s[2], s[1]), "view_to_order", rate(s[2], s[0])));
}

static void get_orders_per_minute(void *ud, msg_req *req, msg_resp *resp)
{
	analytics *a = ud;
	int64_t n;
	if (engine_require_admin(a->ctx, req, resp) ||
	    (n = window_param(req, resp, MAX_SERIES, 60)) < 0)
		return;
	int64_t first = since_minute(a, n), last = first + n - 1;
	int rc = 0;
	store_stmt *st = store_queryf(a->ctx->store,
				      "SELECT minute, orders, cancelled FROM an_minutes "
				      "WHERE minute >= ? AND minute <= ? ORDER BY minute",
				      &rc, "ii", first, last);
	if (!st) {
		engine_store_error(a->ctx, resp, rc, "orders per minute");
		return;
	}
	/* every minute of the window, the empty ones too */
	json_t *items = json_array();
	for (int64_t m = first; m <= last; m++) {
		char at[40];
		clock_fmt_rfc3339(m * MINUTE_US, at, sizeof(at));
		json_array_append_new(items, json_pack("{s:s,s:I,s:I,s:[]}", "minute", at, "orders",
						       (json_int_t)0, "cancelled", (json_int_t)0,
						       "revenue"));
	}
	while ((rc = store_step(st)) == STORE_ROW) {
		json_t *row = json_array_get(items, (size_t)(store_col_int(st, 0) - first));
		json_object_set_new(row, "orders", json_integer(store_col_int(st, 1)));
		json_object_set_new(row, "cancelled", json_integer(store_col_int(st, 2)));
	}
	store_reset(st);
	st = rc >= 0 ? store_queryf(a->ctx->store,
				    "SELECT minute, currency, orders, revenue_cents FROM an_revenue "
				    "WHERE minute >= ? AND minute <= ? ORDER BY minute, currency",
				    &rc, "ii", first, last)
		     : NULL;
	while (st && (rc = store_step(st)) == STORE_ROW) {
		json_t *row = json_array_get(items, (size_t)(store_col_int(st, 0) - first));
		json_array_append_new(json_object_get(row, "revenue"),
				      json_pack("{s:s,s:I,s:I}", "currency", store_col_text(st, 1),
						"orders", (json_int_t)store_col_int(st, 2),
						"revenue_cents", (json_int_t)store_col_int(st, 3)));
	}
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		engine_store_error(a->ctx, resp, rc, "orders per minute");
		return;
	}
	char from[40], to[40];
	clock_fmt_rfc3339(first * MINUTE_US, from, sizeof(from));
	clock_fmt_rfc3339((last + 1) * MINUTE_US, to, sizeof(to));
	msg_resp_json(resp, 200,
		      json_pack("{s:I,s:s,s:s,s:o}", "window_minutes", (json_int_t)n, "from", from,
				"to", to, "items", items));
}

static void get_top_products(void *ud, msg_req *req, msg_resp *resp)
{
	analytics *a = ud;
	if (engine_require_admin(a->ctx, req, resp))
		return;
	/* the ORDER BY of each choice: fixed text, never the parameter */
	static const struct {
		const char *by, *sql;
	} orders[] = {
		{ "units", "SELECT sku, views, cart_adds, orders, units, revenue_cents, currency FROM "
			   "an_products ORDER BY units DESC, revenue_cents DESC, sku LIMIT ?" },
		{ "revenue", "SELECT sku, views, cart_adds, orders, units, revenue_cents, currency FROM "
			     "an_products ORDER BY revenue_cents DESC, units DESC, sku LIMIT ?" },
		{ "orders", "SELECT sku, views, cart_adds, orders, units, revenue_cents, currency FROM "
			    "an_products ORDER BY orders DESC, units DESC, sku LIMIT ?" },
		{ "views", "SELECT sku, views, cart_adds, orders, units, revenue_cents, currency FROM "
			   "an_products ORDER BY views DESC, sku LIMIT ?" },
		{ "cart_adds", "SELECT sku, views, cart_adds, orders, units, revenue_cents, currency "
			       "FROM an_products ORDER BY cart_adds DESC, sku LIMIT ?" },
	};
	char by[16] = "units";
	if (msg_req_query(req, "by", by, sizeof(by)) < 0)
		by[0] = '\0';
	int which = -1;
	for (int i = 0; i < (int)(sizeof(orders) / sizeof(orders[0])); i++)
		if (strcmp(by, orders[i].by) == 0)
			which = i;
	if (which < 0) {
		engine_bad_field(resp, "by", "must be units, revenue, orders, views or cart_adds");
		return;
	}
	int64_t limit = 10;
	if (engine_query_int(req, resp, "limit", 1, TOP_MAX, &limit) < 0)
		return;
	int rc = 0;
	store_stmt *st = store_queryf(a->ctx->store, orders[which].sql, &rc, "i", limit);
	if (!st) {
		engine_store_error(a->ctx, resp, rc, "top products");
		return;
	}
	json_t *items = json_array();
	while ((rc = store_step(st)) == STORE_ROW)
		json_array_append_new(
			items, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:s}", "sku", store_col_text(st, 0),
					 "views", (json_int_t)store_col_int(st, 1), "cart_adds",
					 (json_int_t)store_col_int(st, 2), "orders",
					 (json_int_t)store_col_int(st, 3), "units",
					 (json_int_t)store_col_int(st, 4), "revenue_cents",
					 (json_int_t)store_col_int(st, 5), "currency",
					 store_col_text(st, 6)));
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		engine_store_error(a->ctx, resp, rc, "top products");
		return;
	}
	msg_resp_json(resp, 200, json_pack("{s:s,s:o}", "by", orders[which].by, "items", items));
}

/* ---- engine ------------------------------------------------------------------------ */

static void analytics_destroy(void *eng)
{
	analytics *a = eng;
	if (!a)
		return;
	router_free(a->rt);
	free(a);
}

static void *analytics_create(engine_ctx *ctx, char *err, size_t errlen)
{
	analytics *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->ctx = ctx;
	static const engine_route routes[] = {
		{ "GET", "/v1/analytics/summary", get_summary },
		{ "GET", "/v1/analytics/orders_per_minute", get_orders_per_minute },
		{ "GET", "/v1/analytics/funnel", get_funnel },
		{ "GET", "/v1/analytics/top_products", get_top_products },
	};
	a->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), a, err, errlen);
	if (!a->rt) {
		analytics_destroy(a);
		return NULL;
	}
	return a;
}

static void analytics_handle(void *eng, msg_req *req, msg_resp *resp)
{
	analytics *a = eng;
	router_dispatch(a->rt, req, resp);
}

static const engine_sub analytics_subs[] = {
	{ "orders", NULL },
	{ "analytics", NULL },
	{ NULL, NULL },
};

const engine_def analytics_engine = {
	.name = "analytics",
	.needs_store = 1,
	.create = analytics_create,
	.handle = analytics_handle,
	.destroy = analytics_destroy,
	.subs = analytics_subs,
	.consume = analytics_consume,
};
