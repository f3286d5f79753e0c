/* catalog: products, listing with filters and page tokens, admin writes
 * with their events in the outbox, the export the search index rebuilds
 * from. */
#include "services/catalog.h"
#include "bus/bus.h"
#include "bus/outbox.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/router.h"
#include "services/recommend.h"
#include "services/viewcount.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKU_MAX 64
#define BULK_MAX 1000

typedef struct catalog {
	engine_ctx *ctx;
	router *rt;
	int64_t page_default;
	int64_t page_max;
	viewcount *views;           /* product views since the last flush */
	int64_t flush_us, next_flush; /* catalog.view_flush_ms; 0: not counted */
} catalog;

typedef struct product {
	const char *sku;
	const char *name;
	const char *description;
	const char *category;
	int64_t price_cents;
	const char *currency;
} product;

static const char *const COLS =
	"sku, name, description, category, price_cents, currency, created_at, updated_at";

/* ---- validation -------------------------------------------------------- */

static int valid_sku(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SKU_MAX || s[0] == '_')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

int catalog_valid_category(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

static int valid_currency(const char *s)
{
	return strlen(s) == 3 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]) &&
	       isupper((unsigned char)s[2]);
}

/* Reads a product from obj. path_sku, when set, is the sku from the URL: the
 * body may omit sku or repeat it, nothing else. */
static int product_from_json(json_t *obj, const char *path_sku, product *p, jval_error *e)
{
	memset(p, 0, sizeof(*p));
	if (jval_str(obj, "sku", path_sku == NULL, 1, SKU_MAX, &p->sku, e))
		return ERR_INVALID;
	if (path_sku) {
		if (p->sku && strcmp(p->sku, path_sku) != 0)
			return jval_fail(e, "sku", "must match the sku in the path");
		p->sku = path_sku;
	}
	if (!valid_sku(p->sku))
		return jval_fail(e, "sku", "must be 1-64 characters of letters, digits, '-', '_', '.'");
	if (jval_str(obj, "name", 1, 1, 200, &p->name, e))
		return ERR_INVALID;
	if (jval_str(obj, "description", 0, 0, 4000, &p->description, e))
		return ERR_INVALID;
	if (!p->description)
		p->description = "";
	if (jval_str(obj, "category", 1, 1, 64, &p->category, e))
		return ERR_INVALID;
	if (!catalog_valid_category(p->category))
		return jval_fail(e, "category", "must be lower-case letters, digits and '-'");
	if (jval_int(obj, "price_cents", 1, 0, 1000000000000LL, &p->price_cents, NULL, e))
		return ERR_INVALID;
	if (jval_str(obj, "currency", 0, 3, 3, &p->currency, e))
		return ERR_INVALID;
	if (!p->currency)
		p->currency = "USD";
	if (!valid_currency(p->currency))
		return jval_fail(e, "currency", "must be an ISO 4217 code such as USD");
	return 0;
}

static json_t *product_row_json(store_stmt *st)
{
	char created[40], updated[40];
	clock_fmt_rfc3339(store_col_int(st, 6), created, sizeof(created));
	clock_fmt_rfc3339(store_col_int(st, 7), updated, sizeof(updated));
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "sku", store_col_text(st, 0), "name",
			 store_col_text(st, 1), "description", store_col_text(st, 2), "category",
			 store_col_text(st, 3), "price_cents", (json_int_t)store_col_int(st, 4),
			 "currency", store_col_text(st, 5), "created_at", created, "updated_at",
			 updated);
}

json_t *catalog_product_json(store_stmt *st) { return product_row_json(st); }

/* ---- page tokens: "p1" + hex of the last sku on the previous page -------- */

static void token_encode(const char *sku, char *out, size_t len)
{
	size_t n = strlen(sku);
	if (len < 2 * n + 3) {
		out[0] = '\0';
		return;
	}
	memcpy(out, "p1", 2);
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 + 2 * i, "%02x", (unsigned char)sku[i]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int token_decode(const char *tok, char *sku, size_t len)
{
	size_t n = strlen(tok);
	if (n < 4 || strncmp(tok, "p1", 2) != 0 || (n - 2) % 2 || (n - 2) / 2 >= len)
		return ERR_INVALID;
	size_t k = 0;
	for (size_t i = 2; i < n; i += 2) {
		int hi = hexval(tok[i]), lo = hexval(tok[i + 1]);
		if (hi < 0 || lo < 0)
			return ERR_INVALID;
		sku[k++] = (char)(hi * 16 + lo);
	}
	sku[k] = '\0';
	return valid_sku(sku) ? 0 : ERR_INVALID;
}

/* The prologue of every write: the admin token, then a JSON object body. */
static int admin_json_body(catalog *cat, const msg_req *req, msg_resp *resp, json_t **body)
{
	if (engine_require_admin(cat->ctx, req, resp))
		return ERR_UNAUTH;
	return engine_json_body(req, resp, body);
}

static void reply_field_error(msg_resp *resp, const jval_error *e)
{
	engine_bad_field(resp, e->field, e->message);
}

/* Answers {items, next_page_token} from st, a query by sku that asked for
 * page_size + 1 rows (the one more says there is a next page): row() makes
 * each item; the sku is column 0. */
static void reply_page(catalog *cat, store_stmt *st, int64_t page_size,
		       json_t *(*row)(store_stmt *st), const char *what, msg_resp *resp)
{
	json_t *items = json_array();
	int64_t count = 0;
	char last[SKU_MAX + 1] = "";
	int more = 0, rc;
	while ((rc = store_step(st)) == STORE_ROW) {
		if (count == page_size) {
			more = 1;
			break;
		}
		json_array_append_new(items, row(st));
		snprintf(last, sizeof(last), "%s", store_col_text(st, 0));
		count++;
	}
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		engine_store_error(cat->ctx, resp, rc, what);
		return;
	}
	char next[2 * SKU_MAX + 8];
	if (more)
		token_encode(last, next, sizeof(next));
	msg_resp_json(resp, 200,
		      json_pack("{s:o,s:o}", "items", items, "next_page_token",
				more ? json_string(next) : json_null()));
}

/* ---- handlers ----------------------------------------------------------- */

static void list_products(void *ud, msg_req *req, msg_resp *resp)
{
	catalog *cat = ud;
	char category[72] = "", token[2 * SKU_MAX + 8] = "", after[SKU_MAX + 1] = "";
	int64_t min_price = 0, max_price = 0, page_size = cat->page_default;
	int rc = msg_req_query(req, "category", category, sizeof(category));
	if (rc < 0 || (rc == 1 && !catalog_valid_category(category))) {
		engine_bad_field(resp, "category", "must be lower-case letters, digits and '-'");
		return;
	}
	int has_min = engine_query_int(req, resp, "min_price", 0, INT64_MAX / 2, &min_price);
	if (has_min < 0)
		return;
	int has_max = engine_query_int(req, resp, "max_price", 0, INT64_MAX / 2, &max_price);
	if (has_max < 0)
		return;
	if (has_min && has_max && min_price > max_price) {
		engine_bad_field(resp, "min_price", "must not be greater than max_price");
		return;
	}
	if (engine_query_int(req, resp, "page_size", 1, cat->page_max, &page_size) < 0)
		return;
	rc = msg_req_query(req, "page_token", token, sizeof(token));
	if (rc < 0 || (rc == 1 && token_decode(token, after, sizeof(after)) != 0)) {
		engine_bad_field(resp, "page_token", "is not a page token from this API");
		return;
	}

	char sql[512];
	int n = snprintf(sql, sizeof(sql), "SELECT %s FROM products WHERE sku > ?", COLS);
	if (category[0])
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND category = ?");
	if (has_min)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND price_cents >= ?");
	if (has_max)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND price_cents <= ?");
	snprintf(sql + n, sizeof(sql) - (size_t)n, " ORDER BY sku LIMIT ?");

	int err = 0;
	store_stmt *st = store_prepare(cat->ctx->store, sql, &err);
	if (!st) {
		engine_store_error(cat->ctx, resp, err, "list products");
		return;
	}
	int idx = 1;
	store_bind_text(st, idx++, after);
	if (category[0])
		store_bind_text(st, idx++, category);
	if (has_min)
		store_bind_int(st, idx++, min_price);
	if (has_max)
		store_bind_int(st, idx++, max_price);
	store_bind_int(st, idx, page_size + 1);

	reply_page(cat, st, page_size, product_row_json, "list products", resp);
}

/* Reads one product by sku into resp (200) or 404. */
static void reply_product(catalog *cat, const char *sku, int status, msg_resp *resp)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT %s FROM products WHERE sku = ?", COLS);
	int err = 0;
	store_stmt *st = store_prepare(cat->ctx->store, sql, &err);
	if (!st) {
		engine_store_error(cat->ctx, resp, err, "get product");
		return;
	}
	store_bind_text(st, 1, sku);
	int rc = store_step(st);
	if (rc == STORE_ROW)
		msg_resp_json(resp, status, product_row_json(st));
	else if (rc == STORE_DONE)
		msg_resp_error(resp, 404, "not_found", "no such product",
			       json_pack("{s:s}", "sku", sku));
	else
		engine_store_error(cat->ctx, resp, rc, "get product");
	store_reset(st);
}

static void get_product(void *ud, msg_req *req, msg_resp *resp)
{
	const char *sku = msg_req_param(req, 0);
	if (!valid_sku(sku)) {
		msg_resp_error(resp, 404, "not_found", "no such product", NULL);
		return;
	}
	reply_product(ud, sku, 200, resp);
	/* a customer's view, not a service's lookup (the cart's, the order's) */
	catalog *cat = ud;
	identity who;
	if (cat->views && resp->status == 200 &&
	    (engine_caller(cat->ctx, req, &who) != 0 || who.role != IDENTITY_SERVICE))
		viewcount_add(cat->views, sku, 1);
}

/* ---- writes and their events ---------------------------------------------------
 *
 * Every write of a product adds, in its transaction, a row to the outbox
 * (topic "catalog", key the sku) that the bus relays to consumers such as
 * the search index:
 *
 *   {"type": "product_created" | "product_updated" | "product_price_changed",
 *    "sku", "version", "name", "description", "category", "price_cents",
 *    "currency"[, "previous_price_cents", "previous_currency"]}
 *   {"type": "product_deleted", "sku", "version"}
 *
 * product_price_changed is an update that changed only the price or the
 * currency; previous_* come with any update that changed the price. A
 * write that changes nothing writes nothing. version is the product's
 * updated_at in microseconds, made to grow with every change of the sku
 * (one more than the last when the clock has not moved past it), so a
 * consumer can drop events older than what it has. */

#define OUTBOX_TOPIC "catalog"

static const char *const UPSERT_SQL =
	"INSERT INTO products (sku, name, description, category, price_cents, currency, "
	"created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
	"ON CONFLICT (sku) DO UPDATE SET name = excluded.name, description = excluded.description, "
	"category = excluded.category, price_cents = excluded.price_cents, "
	"currency = excluded.currency, updated_at = excluded.updated_at";

static const char *const INSERT_SQL =
	"INSERT INTO products (sku, name, description, category, price_cents, currency, "
	"created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

static const char *const INSERT_NEW_SQL =
	"INSERT INTO products (sku, name, description, category, price_cents, currency, "
	"created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sku) DO NOTHING";

/* Runs one write of p with sql (one of the INSERT forms); *changed (may be
 * NULL) gets the rows written. */
static int write_product(store *s, const char *sql, const product *p, int64_t version,
			 int64_t *changed)
{
	int err = 0;
	store_stmt *st = store_prepare(s, sql, &err);
	if (!st)
		return err;
	store_bind_text(st, 1, p->sku);
	store_bind_text(st, 2, p->name);
	store_bind_text(st, 3, p->description);
	store_bind_text(st, 4, p->category);
	store_bind_int(st, 5, p->price_cents);
	store_bind_text(st, 6, p->currency);
	store_bind_int(st, 7, version);
	store_bind_int(st, 8, version);
	int rc = store_step(st);
	if (changed)
		*changed = rc >= 0 ? store_changes(st) : 0;
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* A product as stored, with owned strings. */
typedef struct stored {
	int found;
	product p;
	int64_t updated_at;
} stored;

static void stored_free(stored *o)
{
	free((char *)o->p.name);
	free((char *)o->p.description);
	free((char *)o->p.category);
	free((char *)o->p.currency);
	memset(o, 0, sizeof(*o));
}

/* Reads sku's row, inside the caller's transaction. lock first takes the
 * row's write lock (PostgreSQL: a no-op update; SQLite's BEGIN IMMEDIATE
 * already holds the database), so the row cannot change before the
 * caller's write. */
static int stored_load(store *s, const char *sku, int lock, stored *o)
{
	memset(o, 0, sizeof(*o));
	int err = 0;
	store_stmt *st;
	if (lock) {
		st = store_prepare(s, "UPDATE products SET updated_at = updated_at WHERE sku = ?", &err);
		if (!st)
			return err;
		store_bind_text(st, 1, sku);
		int rc = store_step(st);
		store_reset(st);
		if (rc < 0)
			return rc;
	}
	st = store_prepare(s,
			   "SELECT name, description, category, price_cents, currency, updated_at "
			   "FROM products WHERE sku = ?",
			   &err);
	if (!st)
		return err;
	store_bind_text(st, 1, sku);
	int rc = store_step(st);
	if (rc == STORE_ROW) {
		o->found = 1;
		o->p.sku = sku;
		o->p.name = strdup(store_col_text(st, 0));
		o->p.description = strdup(store_col_text(st, 1));
		o->p.category = strdup(store_col_text(st, 2));
		o->p.price_cents = store_col_int(st, 3);
		o->p.currency = strdup(store_col_text(st, 4));
		o->updated_at = store_col_int(st, 5);
		if (!o->p.name || !o->p.description || !o->p.category || !o->p.currency)
			rc = ERR_NOMEM;
	}
	store_reset(st);
	if (rc < 0)
		stored_free(o);
	return rc < 0 ? rc : 0;
}

/* The version of the next change of a row last changed at `last`. */
static int64_t next_version(int64_t now, int64_t last) { return now > last ? now : last + 1; }

static int price_differs(const product *a, const product *b)
{
	return a->price_cents != b->price_cents || strcmp(a->currency, b->currency) != 0;
}

/* The event type of writing p over old (NULL when there is none), or NULL
 * when nothing would change. */
static const char *change_type(const product *p, const stored *old)
{
	if (!old || !old->found)
		return "product_created";
	const product *o = &old->p;
	if (strcmp(p->name, o->name) != 0 || strcmp(p->description, o->description) != 0 ||
	    strcmp(p->category, o->category) != 0)
		return "product_updated";
	return price_differs(p, o) ? "product_price_changed" : NULL;
}

/* Adds the event of a write to the outbox, in the caller's transaction. p
 * is NULL for a delete; old (may be NULL) is the row before; tp (may be
 * NULL) is the writing request's trace context, so that the consumers'
 * spans join the request's trace. */
static int put_event(store *s, const char *tp, const char *type, const char *sku,
		     const product *p, const stored *old, int64_t version, int64_t now)
{
	json_t *ev = json_pack("{s:s,s:s,s:I}", "type", type, "sku", sku, "version",
			       (json_int_t)version);
	if (ev && p) {
		json_object_set_new(ev, "name", json_string(p->name));
		json_object_set_new(ev, "description", json_string(p->description));
		json_object_set_new(ev, "category", json_string(p->category));
		json_object_set_new(ev, "price_cents", json_integer((json_int_t)p->price_cents));
		json_object_set_new(ev, "currency", json_string(p->currency));
		if (old && old->found && price_differs(p, &old->p)) {
			json_object_set_new(ev, "previous_price_cents",
					    json_integer((json_int_t)old->p.price_cents));
			json_object_set_new(ev, "previous_currency", json_string(old->p.currency));
		}
	}
	char *payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (!payload)
		return ERR_NOMEM;
	int rc = outbox_put(s, OUTBOX_TOPIC, sku, payload, tp, now);
	free(payload);
	return rc;
}

/* Upserts p with its event, inside the caller's transaction. *type gets
 * the event written (NULL: nothing changed). */
static int upsert_with_event(store *s, const char *tp, const product *p, int64_t now,
			     const char **type)
{
	stored old;
	int rc = stored_load(s, p->sku, 1, &old);
	if (rc)
		return rc;
	*type = change_type(p, &old);
	int64_t version = next_version(now, old.found ? old.updated_at : 0);
	if (*type)
		rc = write_product(s, UPSERT_SQL, p, version, NULL);
	if (rc == 0 && *type)
		rc = put_event(s, tp, *type, p->sku, p, &old, version, now);
	stored_free(&old);
	return rc;
}

/* Attempts of a write's transaction while the store is busy. */
#define TXN_TRIES 3

typedef struct one_write {
	store *s;
	const product *p;
	int64_t now;
	const char *tp; /* the request's trace context, or NULL */
	char tp_buf[TRACE_PARENT_SIZE];
	const char *type;
	int missing; /* update/delete of a sku that does not exist */
} one_write;

static int create_write(void *ud)
{
	one_write *w = ud;
	store *s = w->s;
	int rc = write_product(s, INSERT_SQL, w->p, w->now, NULL);
	if (rc == 0)
		rc = put_event(s, w->tp, "product_created", w->p->sku, w->p, NULL, w->now, w->now);
	return rc;
}

static void create_product(void *ud, msg_req *req, msg_resp *resp)
{
	catalog *cat = ud;
	json_t *body;
	if (admin_json_body(cat, req, resp, &body))
		return;
	product p;
	jval_error e = { { 0 }, { 0 } };
	if (product_from_json(body, NULL, &p, &e)) {
		reply_field_error(resp, &e);
		json_decref(body);
		return;
	}
	one_write w = { .s = cat->ctx->store, .p = &p, .now = clock_now(cat->ctx->clock) };
	w.tp = engine_traceparent(cat->ctx, w.tp_buf, sizeof(w.tp_buf));
	int rc = store_txn(w.s, TXN_TRIES, create_write, &w);
	if (rc == ERR_CONFLICT)
		msg_resp_error(resp, 409, "conflict", "a product with this sku exists",
			       json_pack("{s:s}", "sku", p.sku));
	else if (rc)
		engine_store_error(cat->ctx, resp, rc, "create product");
	else {
		log_info(cat->ctx->log, "product %s created", p.sku);
		reply_product(cat, p.sku, 201, resp);
	}
	json_decref(body);
}

static int update_write(void *ud)
{
	one_write *w = ud;
	store *s = w->s;
	w->missing = 0;
	stored old;
	int rc = stored_load(s, w->p->sku, 1, &old);
	if (rc)
		return rc;
	if (!old.found) {
		w->missing = 1;
		return ERR_NOT_FOUND;
	}
	stored_free(&old);
	return upsert_with_event(s, w->tp, w->p, w->now, &w->type);
}

static void update_product(void *ud, msg_req *req, msg_resp *resp)
{
	catalog *cat = ud;
	const char *sku = msg_req_param(req, 0);
	json_t *body;
	if (admin_json_body(cat, req, resp, &body))
		return;
	product p;
	jval_error e = { { 0 }, { 0 } };
	if (product_from_json(body, sku, &p, &e)) {
		reply_field_error(resp, &e);
		json_decref(body);
		return;
	}
	one_write w = { .s = cat->ctx->store, .p = &p, .now = clock_now(cat->ctx->clock) };
	w.tp = engine_traceparent(cat->ctx, w.tp_buf, sizeof(w.tp_buf));
	int rc = store_txn(w.s, TXN_TRIES, update_write, &w);
	if (w.missing)
		msg_resp_error(resp, 404, "not_found", "no such product",
			       json_pack("{s:s}", "sku", p.sku));
	else if (rc)
		engine_store_error(cat->ctx, resp, rc, "update product");
	else
		reply_product(cat, p.sku, 200, resp);
	json_decref(body);
}

typedef struct delete_write {
	store *s;
	const char *sku;
	int64_t now;
	const char *tp; /* the request's trace context, or NULL */
	char tp_buf[TRACE_PARENT_SIZE];
	int missing;
	json_t *before; /* the product as it was */
} delete_write;

static int delete_txn(void *ud)
{
	delete_write *w = ud;
	store *s = w->s;
	w->missing = 0;
	json_decref(w->before);
	w->before = NULL;
	stored old;
	int rc = stored_load(s, w->sku, 1, &old);
	if (rc)
		return rc;
	if (!old.found) {
		w->missing = 1;
		return ERR_NOT_FOUND;
	}
	int64_t version = next_version(w->now, old.updated_at);
	int err = 0;
	store_stmt *st = store_prepare(s, "DELETE FROM products WHERE sku = ?", &err);
	rc = st ? 0 : err;
	if (st) {
		store_bind_text(st, 1, w->sku);
		rc = store_step(st);
		store_reset(st);
	}
	if (rc >= 0)
		rc = put_event(s, w->tp, "product_deleted", w->sku, NULL, &old, version, w->now);
	if (rc >= 0) {
		w->before = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "sku", w->sku, "name", old.p.name,
				      "description", old.p.description, "category", old.p.category,
				      "price_cents", (json_int_t)old.p.price_cents, "currency",
				      old.p.currency);
		if (!w->before)
			rc = ERR_NOMEM;
	}
	stored_free(&old);
	return rc < 0 ? rc : 0;
}

/* DELETE /v1/products/{sku} (admin): 200 with the product as it was. */
static void delete_product(void *ud, msg_req *req, msg_resp *resp)
{
	catalog *cat = ud;
	const char *sku = msg_req_param(req, 0);
	if (engine_require_admin(cat->ctx, req, resp))
		return;
	delete_write w = { .s = cat->ctx->store, .sku = sku, .now = clock_now(cat->ctx->clock) };
	w.tp = engine_traceparent(cat->ctx, w.tp_buf, sizeof(w.tp_buf));
	int rc = valid_sku(sku) ? store_txn(w.s, TXN_TRIES, delete_txn, &w) : ERR_NOT_FOUND;
	if (rc == ERR_NOT_FOUND || w.missing) {
		msg_resp_error(resp, 404, "not_found", "no such product",
			       valid_sku(sku) ? json_pack("{s:s}", "sku", sku) : NULL);
		json_decref(w.before);
	} else if (rc) {
		engine_store_error(cat->ctx, resp, rc, "delete product");
		json_decref(w.before);
	} else {
		log_info(cat->ctx->log, "product %s deleted", sku);
		msg_resp_json(resp, 200, w.before);
	}
}

typedef struct bulk_write {
	store *s;
	const product *ps;
	size_t n;
	int64_t now;
	const char *tp; /* the request's trace context, or NULL */
	char tp_buf[TRACE_PARENT_SIZE];
} bulk_write;

static int bulk_txn(void *ud)
{
	bulk_write *w = ud;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < w->n; i++) {
		const char *type;
		rc = upsert_with_event(w->s, w->tp, &w->ps[i], w->now, &type);
	}
	return rc;
}

/* POST /v1/products/_bulk {"products":[...]}: upserts up to BULK_MAX products
 * in one transaction; all or nothing. Used by `ecom seed`. */
static void bulk_products(void *ud, msg_req *req, msg_resp *resp)
{
	catalog *cat = ud;
	json_t *body;
	if (admin_json_body(cat, req, resp, &body))
		return;
	json_t *arr = json_object_get(body, "products");
	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > BULK_MAX) {
		engine_bad_field(resp, "products", "must be an array of 1 to 1000 products");
		json_decref(body);
		return;
	}
	size_t n = json_array_size(arr);
	product *ps = calloc(n, sizeof(*ps));
	if (!ps) {
		msg_resp_error(resp, 500, "internal", "out of memory", NULL);
		json_decref(body);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		jval_error e = { { 0 }, { 0 } };
		json_t *item = json_array_get(arr, i);
		if (!json_is_object(item) || product_from_json(item, NULL, &ps[i], &e)) {
			if (!json_is_object(item))
				snprintf(e.message, sizeof(e.message), "must be an object");
			char field[96];
			snprintf(field, sizeof(field), "products[%zu].%s", i, e.field);
			engine_bad_field(resp, field, e.message);
			free(ps);
			json_decref(body);
			return;
		}
	}
	bulk_write w = { .s = cat->ctx->store, .ps = ps, .n = n, .now = clock_now(cat->ctx->clock) };
	w.tp = engine_traceparent(cat->ctx, w.tp_buf, sizeof(w.tp_buf));
	int rc = store_txn(w.s, TXN_TRIES, bulk_txn, &w);
	if (rc)
		engine_store_error(cat->ctx, resp, rc, "bulk upsert");
	else
		msg_resp_json(resp, 200, json_pack("{s:I}", "upserted", (json_int_t)n));
	free(ps);
	json_decref(body);
}

static json_t *export_row_json(store_stmt *st)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I}", "sku", store_col_text(st, 0), "name",
			 store_col_text(st, 1), "description", store_col_text(st, 2), "category",
			 store_col_text(st, 3), "price_cents", (json_int_t)store_col_int(st, 4),
			 "currency", store_col_text(st, 5), "version",
			 (json_int_t)store_col_int(st, 6));
}

/* GET /v1/products/_export?page_size=&page_token= (a service or admin):
 * every product in sku order, with its version (what the search index
 * rebuilds from), CATALOG_EXPORT_MAX per page. */
static void export_products(void *ud, msg_req *req, msg_resp *resp)
{
	catalog *cat = ud;
	if (engine_require_service(cat->ctx, req, resp))
		return;
	char token[2 * SKU_MAX + 8] = "", after[SKU_MAX + 1] = "";
	int64_t page_size = 1000;
	if (engine_query_int(req, resp, "page_size", 1, CATALOG_EXPORT_MAX, &page_size) < 0)
		return;
	int rc = msg_req_query(req, "page_token", token, sizeof(token));
	if (rc < 0 || (rc == 1 && token_decode(token, after, sizeof(after)) != 0)) {
		engine_bad_field(resp, "page_token", "is not a page token from this API");
		return;
	}
	int err = 0;
	store_stmt *st = store_prepare(cat->ctx->store,
				       "SELECT sku, name, description, category, price_cents, currency, "
				       "updated_at FROM products WHERE sku > ? ORDER BY sku LIMIT ?",
				       &err);
	if (!st) {
		engine_store_error(cat->ctx, resp, err, "export products");
		return;
	}
	store_bind_text(st, 1, after);
	store_bind_int(st, 2, page_size + 1);
	reply_page(cat, st, page_size, export_row_json, "export products", resp);
}

/* ---- /v2: the same products, price as one object ------------------------------
 *
 * v2 exists to show versioning at the gateway: /v1 and /v2 run side by side,
 * and the route table can move traffic between them. v2 differs in one
 * field: {"price": {"amount_cents": N, "currency": "USD"}} instead of
 * price_cents and currency. */

static void product_to_v2(json_t *p)
{
	json_t *amount = json_object_get(p, "price_cents");
	json_t *cur = json_object_get(p, "currency");
	if (!amount || !cur)
		return;
	json_object_set_new(p, "price", json_pack("{s:O,s:O}", "amount_cents", amount, "currency", cur));
	json_object_del(p, "price_cents");
	json_object_del(p, "currency");
}

/* Runs the v1 handler, then rewrites its successful body to v2. */
static void as_v2(router_fn v1, void *ud, msg_req *req, msg_resp *resp)
{
	v1(ud, req, resp);
	if (resp->status != 200 || !resp->body)
		return;
	json_t *doc = json_loadb(resp->body, resp->body_len, 0, NULL);
	json_t *items = json_object_get(doc, "items");
	if (json_is_array(items)) {
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it)
			product_to_v2(it);
	} else if (doc) {
		product_to_v2(doc);
	}
	if (doc)
		msg_resp_json(resp, 200, doc);
}

static void list_products_v2(void *ud, msg_req *req, msg_resp *resp)
{
	as_v2(list_products, ud, req, resp);
}

static void get_product_v2(void *ud, msg_req *req, msg_resp *resp)
{
	as_v2(get_product, ud, req, resp);
}

/* ---- recommendations (src/services/recommend.h) and product views ------------ */

static void get_recommendations(void *ud, msg_req *req, msg_resp *resp)
{
	catalog *cat = ud;
	char sku[SKU_MAX + 2] = "";
	int64_t limit = 5;
	int r = msg_req_query(req, "sku", sku, sizeof(sku));
	if (r < 0 || (r > 0 && !valid_sku(sku))) {
		msg_resp_error(resp, 404, "not_found", "no such product", NULL);
		return;
	}
	if (engine_query_int(req, resp, "limit", 1, 50, &limit) < 0)
		return;
	recommend_answer(cat->ctx, sku, limit, resp);
}

static void catalog_tick(void *eng, int64_t now_us)
{
	catalog *cat = eng;
	if (cat->flush_us <= 0 || now_us < cat->next_flush)
		return;
	cat->next_flush = now_us + cat->flush_us;
	int rc = viewcount_flush(cat->views, cat->ctx->store, now_us);
	if (rc < 0)
		log_warn(cat->ctx->log, "flushing the product views: %s; kept for the next flush",
			 err_name(rc));
}

static int catalog_consume(void *eng, const bus_msg *m)
{
	catalog *cat = eng;
	return recommend_consume(cat->ctx, m);
}

/* ---- loading the hand-made catalog ---------------------------------------- */

int catalog_load_file(engine_ctx *ctx, const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *arr = json_load_file(path, 0, &je);
	if (!arr || !json_is_array(arr)) {
		snprintf(err, errlen, "%s:%d: %s", path, je.line, arr ? "not an array" : je.text);
		json_decref(arr);
		return ERR_PARSE;
	}
	store *s = ctx->store;
	int rc = store_begin(s);
	if (rc) {
		snprintf(err, errlen, "begin: %s", store_errmsg(s));
		json_decref(arr);
		return rc;
	}
	int64_t existing = 0;
	store_stmt *st = store_prepare(s, "SELECT COUNT(*) FROM products", &rc);
	if (st && (rc = store_step(st)) == STORE_ROW)
		existing = store_col_int(st, 0);
	store_reset(st);
	int loaded = 0;
	if (rc >= 0 && existing == 0) {
		rc = 0;
		int64_t now = clock_now(ctx->clock);
		for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
			product p;
			jval_error e = { { 0 }, { 0 } };
			if (product_from_json(json_array_get(arr, i), NULL, &p, &e)) {
				snprintf(err, errlen, "%s: product %zu: %s %s", path, i, e.field,
					 e.message);
				rc = ERR_PARSE;
				break;
			}
			int64_t changed = 0;
			rc = write_product(s, INSERT_NEW_SQL, &p, now, &changed);
			if (rc == 0 && changed)
				rc = put_event(s, NULL, "product_created", p.sku, &p, NULL, now, now);
			loaded++;
		}
	}
	if (rc < 0) {
		store_rollback(s);
		if (rc != ERR_PARSE)
			snprintf(err, errlen, "loading %s: %s", path, store_errmsg(s));
		json_decref(arr);
		return rc;
	}
	rc = store_commit(s);
	json_decref(arr);
	if (rc) {
		snprintf(err, errlen, "commit: %s", store_errmsg(s));
		return rc;
	}
	return loaded;
}

/* ---- engine ----------------------------------------------------------------- */

static void catalog_destroy(void *eng)
{
	catalog *cat = eng;
	if (!cat)
		return;
	router_free(cat->rt);
	viewcount_free(cat->views);
	free(cat);
}

void catalog_seed_path(const engine_ctx *ctx, char *buf, size_t len)
{
	const char *seed = config_get(ctx->config, "catalog.seed_file");
	if (seed && seed[0])
		snprintf(buf, len, "%s", seed);
	else
		snprintf(buf, len, "%s/catalog/products.json", ctx->data_dir ? ctx->data_dir : "data");
}

static void *catalog_create(engine_ctx *ctx, char *err, size_t errlen)
{
	catalog *cat = calloc(1, sizeof(*cat));
	if (!cat) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cat->ctx = ctx;
	cat->page_default = config_int(ctx->config, "catalog.page_size_default", 20);
	cat->page_max = config_int(ctx->config, "catalog.page_size_max", 100);
	if (cat->page_max < 1)
		cat->page_max = 100;
	if (cat->page_default < 1 || cat->page_default > cat->page_max)
		cat->page_default = cat->page_max < 20 ? cat->page_max : 20;
	cat->flush_us = config_int(ctx->config, "catalog.view_flush_ms", 5000) * 1000;
	cat->next_flush = clock_now(ctx->clock) + cat->flush_us;
	if (cat->flush_us > 0 && !(cat->views = viewcount_new(10000))) {
		snprintf(err, errlen, "out of memory");
		catalog_destroy(cat);
		return NULL;
	}
	static const engine_route routes[] = {
		{ "GET", "/v1/products", list_products },
		{ "POST", "/v1/products", create_product },
		{ "POST", "/v1/products/_bulk", bulk_products },
		{ "GET", "/v1/products/_export", export_products },
		{ "GET", "/v1/products/{sku}", get_product },
		{ "PUT", "/v1/products/{sku}", update_product },
		{ "DELETE", "/v1/products/{sku}", delete_product },
		{ "GET", "/v2/products", list_products_v2 },
		{ "GET", "/v2/products/{sku}", get_product_v2 },
		{ "GET", RECOMMEND_PATH, get_recommendations },
	};
	cat->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), cat, err, errlen);
	if (!cat->rt) {
		catalog_destroy(cat);
		return NULL;
	}
	char path[1024];
	catalog_seed_path(ctx, path, sizeof(path));
	int n = catalog_load_file(ctx, path, err, errlen);
	if (n < 0) {
		catalog_destroy(cat);
		return NULL;
	}
	if (n > 0)
		log_info(ctx->log, "loaded %d products from %s", n, path);
	return cat;
}

static void catalog_handle(void *eng, msg_req *req, msg_resp *resp)
{
	catalog *cat = eng;
	router_dispatch(cat->rt, req, resp);
}

static const engine_sub catalog_subs[] = { { "orders", NULL }, { NULL, NULL } };

const engine_def catalog_engine = {
	.name = "catalog",
	.needs_store = 1,
	.create = catalog_create,
	.handle = catalog_handle,
	.tick = catalog_tick,
	.ready = NULL,
	.destroy = catalog_destroy,
	.subs = catalog_subs,
	.consume = catalog_consume,
};
