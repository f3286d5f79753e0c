/* catalog: products, listing with filters and page tokens, admin writes. */
#include "services/catalog.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/router.h"

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

static int valid_category(const char *s)
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
	if (!valid_category(p->category))
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

/* ---- query parameters --------------------------------------------------- */

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

/* ---- handlers ----------------------------------------------------------- */

static void list_products(void *ud, msg_req *req, msg_resp *resp)
{
	catalog *cat = ud;
	char category[72] = "", token[2 * SKU_MAX + 8] = "", after[SKU_MAX + 1] = "";
	int64_t min_price = 0, max_price = 0, page_size = cat->page_default;
	int rc = msg_req_query(req, "category", category, sizeof(category));
	if (rc < 0 || (rc == 1 && !valid_category(category))) {
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

	json_t *items = json_array();
	int64_t count = 0;
	char last[SKU_MAX + 1] = "";
	int more = 0;
	while ((rc = store_step(st)) == STORE_ROW) {
		if (count == page_size) {
			more = 1;
			break;
		}
		json_array_append_new(items, product_row_json(st));
		snprintf(last, sizeof(last), "%s", store_col_text(st, 0));
		count++;
	}
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		engine_store_error(cat->ctx, resp, rc, "list products");
		return;
	}
	json_t *out = json_pack("{s:o}", "items", items);
	if (more) {
		char next[2 * SKU_MAX + 8];
		token_encode(last, next, sizeof(next));
		json_object_set_new(out, "next_page_token", json_string(next));
	} else {
		json_object_set_new(out, "next_page_token", json_null());
	}
	msg_resp_json(resp, 200, out);
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
}

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

static const char *const UPDATE_SQL =
	"UPDATE products SET name = ?, description = ?, category = ?, price_cents = ?, "
	"currency = ?, updated_at = ? WHERE sku = ?";

/* Runs one write of p with sql (one of the INSERT forms). */
static int write_product(store *s, const char *sql, const product *p, int64_t now)
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
	store_bind_int(st, 7, now);
	store_bind_int(st, 8, now);
	int rc = store_step(st);
	store_reset(st);
	return rc < 0 ? rc : 0;
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
	int rc = write_product(cat->ctx->store, INSERT_SQL, &p, clock_now(cat->ctx->clock));
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
	int err = 0;
	store_stmt *st = store_prepare(cat->ctx->store, UPDATE_SQL, &err);
	if (!st) {
		engine_store_error(cat->ctx, resp, err, "update product");
		json_decref(body);
		return;
	}
	store_bind_text(st, 1, p.name);
	store_bind_text(st, 2, p.description);
	store_bind_text(st, 3, p.category);
	store_bind_int(st, 4, p.price_cents);
	store_bind_text(st, 5, p.currency);
	store_bind_int(st, 6, clock_now(cat->ctx->clock));
	store_bind_text(st, 7, p.sku);
	int rc = store_step(st);
	int64_t changed = rc >= 0 ? store_changes(st) : 0;
	store_reset(st);
	if (rc < 0)
		engine_store_error(cat->ctx, resp, rc, "update product");
	else if (changed == 0)
		msg_resp_error(resp, 404, "not_found", "no such product",
			       json_pack("{s:s}", "sku", p.sku));
	else
		reply_product(cat, p.sku, 200, resp);
	json_decref(body);
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
	store *s = cat->ctx->store;
	int64_t now = clock_now(cat->ctx->clock);
	int rc = store_begin(s);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = write_product(s, UPSERT_SQL, &ps[i], now);
	if (rc == 0)
		rc = store_commit(s);
	else
		store_rollback(s);
	if (rc)
		engine_store_error(cat->ctx, resp, rc, "bulk upsert");
	else
		msg_resp_json(resp, 200, json_pack("{s:I}", "upserted", (json_int_t)n));
	free(ps);
	json_decref(body);
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
			rc = write_product(s, INSERT_NEW_SQL, &p, now);
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
	static const engine_route routes[] = {
		{ "GET", "/v1/products", list_products },
		{ "POST", "/v1/products", create_product },
		{ "POST", "/v1/products/_bulk", bulk_products },
		{ "GET", "/v1/products/{sku}", get_product },
		{ "PUT", "/v1/products/{sku}", update_product },
		{ "GET", "/v2/products", list_products_v2 },
		{ "GET", "/v2/products/{sku}", get_product_v2 },
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

const engine_def catalog_engine = {
	.name = "catalog",
	.needs_store = 1,
	.create = catalog_create,
	.handle = catalog_handle,
	.tick = NULL,
	.ready = NULL,
	.destroy = catalog_destroy,
};
