/* cart: per-user carts with catalog price snapshots. */
#include "services/cart.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/router.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKU_MAX 64
#define NAME_MAX_BYTES 200
#define USER_ID_MAX 63
#define QTY_MAX 99
/* How often a cart write runs again after the database asked for it
 * (SQLITE_BUSY, a PostgreSQL serialization failure). */
#define TXN_TRIES 3

typedef struct cart_svc {
	engine_ctx *ctx;
	router *rt;
	int64_t max_skus;
	int64_t catalog_timeout_ms;
} cart_svc;

/* One row of a cart. */
typedef struct cart_line {
	char sku[SKU_MAX + 1];
	char name[NAME_MAX_BYTES + 1];
	char currency[4];
	int64_t qty;
	int64_t price_cents;
	int64_t added_at;
} cart_line;

typedef struct cart_lines {
	cart_line *v;
	size_t n;
} cart_lines;

/* What the catalog says of a product now. */
typedef struct product_snap {
	int64_t price_cents;
	char currency[4];
	char name[NAME_MAX_BYTES + 1];
} product_snap;

/* ---- validation ------------------------------------------------------------ */

/* The catalog's rule for a sku, so that anything it could hold can be put
 * in a cart, and nothing else is sent to it. */
static int valid_sku(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > SKU_MAX || s[0] == '_')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

/* User ids are ids_new() strings ("usr_..."); this accepts their alphabet. */
static int valid_user_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > USER_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

static int valid_currency(const char *s)
{
	return s && strlen(s) == 3 && isupper((unsigned char)s[0]) &&
	       isupper((unsigned char)s[1]) && isupper((unsigned char)s[2]);
}

/* ---- the catalog ------------------------------------------------------------- */

static void count_failure(cart_svc *c, const char *reason)
{
	char labels[48];
	snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
	metrics_count(c->ctx->metrics, "cart_catalog_failures_total", labels, 1);
	metrics_count(c->ctx->metrics, "cart_catalog_lookups_total", "result=\"failed\"", 1);
}

/* Reads a product body of the catalog into out. 0 or ERR_PARSE. */
static int parse_product(const msg_resp *r, const char *sku, product_snap *out)
{
	json_t *v = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
	json_t *jsku = json_object_get(v, "sku"), *price = json_object_get(v, "price_cents");
	const char *cur = json_string_value(json_object_get(v, "currency"));
	const char *name = json_string_value(json_object_get(v, "name"));
	int ok = json_is_object(v) && json_is_string(jsku) &&
		 strcmp(json_string_value(jsku), sku) == 0 && json_is_integer(price) &&
		 json_integer_value(price) >= 0 && json_integer_value(price) <= 1000000000000LL &&
		 valid_currency(cur) && name && strlen(name) <= NAME_MAX_BYTES;
	if (ok) {
		out->price_cents = (int64_t)json_integer_value(price);
		snprintf(out->currency, sizeof(out->currency), "%s", cur);
		snprintf(out->name, sizeof(out->name), "%s", name);
	}
	json_decref(v);
	return ok ? 0 : ERR_PARSE;
}

/* 1 when r is the catalog's own "no such product" for sku: a 404 naming it.
 * A 404 without the sku (no route at the gateway, say) is a failure, not
 * news about the product. */
static int is_no_such_product(const msg_resp *r, const char *sku)
{
	if (r->status != 404)
		return 0;
	json_t *v = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
	const char *named =
		json_string_value(json_object_get(json_object_get(json_object_get(v, "error"),
								  "details"),
						  "sku"));
	int yes = named && strcmp(named, sku) == 0;
	json_decref(v);
	return yes;
}

/* Asks the catalog for sku, through the gateway, as this service. Returns 0
 * with out filled, ERR_NOT_FOUND when the catalog does not know it, or
 * ERR_UNAVAILABLE (unreachable, timed out, an error status, a body that is
 * not a product) with the seconds to wait in retry_after. in, when not
 * NULL, is the request being served: its trace and request id go along. */
static int catalog_lookup(cart_svc *c, const msg_req *in, const char *sku, product_snap *out,
			  char *retry_after, size_t ralen)
{
	snprintf(retry_after, ralen, "1");
	char path[32 + SKU_MAX];
	snprintf(path, sizeof(path), "/v1/products/%s", sku);
	msg_req req;
	msg_resp r;
	msg_resp_init(&r);
	if (msg_req_init(&req, "GET", path) != 0) {
		count_failure(c, "internal");
		return ERR_UNAVAILABLE;
	}
	msg_req_add_header(&req, "Accept", "application/json");
	static const char *const carry[] = { "traceparent", "X-Request-Id", NULL };
	for (int i = 0; in && carry[i]; i++) {
		const char *v = msg_req_header(in, carry[i]);
		if (v)
			msg_req_add_header(&req, carry[i], v);
	}
	int rc = engine_call_service(c->ctx, &req, &r, c->catalog_timeout_ms);
	msg_req_clear(&req);
	int result = ERR_UNAVAILABLE;
	if (rc == ERR_TIMEOUT) {
		count_failure(c, "timeout");
		log_warn(c->ctx->log, "catalog lookup of %s timed out after %lld ms", sku,
			 (long long)c->catalog_timeout_ms);
	} else if (rc != 0) {
		count_failure(c, "unreachable");
		log_warn(c->ctx->log, "catalog lookup of %s failed: %s", sku, err_name(rc));
	} else if (r.status == 200) {
		if (parse_product(&r, sku, out) == 0) {
			metrics_count(c->ctx->metrics, "cart_catalog_lookups_total",
				      "result=\"ok\"", 1);
			result = 0;
		} else {
			count_failure(c, "malformed");
			log_error(c->ctx->log, "catalog answered %s with a body that is no product",
				  sku);
		}
	} else if (is_no_such_product(&r, sku)) {
		metrics_count(c->ctx->metrics, "cart_catalog_lookups_total",
			      "result=\"not_found\"", 1);
		result = ERR_NOT_FOUND;
	} else {
		count_failure(c, "status");
		log_warn(c->ctx->log, "catalog lookup of %s: status %d", sku, r.status);
		/* The gateway's or the catalog's own estimate, when it gave one. */
		const char *ra = msg_resp_header(&r, "Retry-After");
		if (ra && ra[0] && strlen(ra) < 6 && strspn(ra, "0123456789") == strlen(ra))
			snprintf(retry_after, ralen, "%s", ra);
	}
	msg_resp_clear(&r);
	return result;
}

static void reply_unavailable(msg_resp *resp, const char *retry_after, const char *sku)
{
	msg_resp_error(resp, 503, "unavailable",
		       "the catalog cannot be reached to price the item; the cart is unchanged, "
		       "try again",
		       json_pack("{s:s,s:s}", "service", "catalog", "sku", sku));
	msg_resp_set_header(resp, "Retry-After", retry_after);
}

/* ---- reading a cart -------------------------------------------------------------- */

static void lines_free(cart_lines *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(((const cart_line *)a)->sku, ((const cart_line *)b)->sku);
}

/* Reads user_id's cart, sorted by sku (byte order, whatever the database's
 * collation). 0 or a store error. */
static int lines_load(cart_svc *c, const char *user_id, cart_lines *out)
{
	memset(out, 0, sizeof(*out));
	int err = 0;
	store_stmt *st = store_prepare(c->ctx->store,
				       "SELECT sku, name, qty, price_cents, currency, added_at "
				       "FROM cart_items WHERE user_id = ?",
				       &err);
	if (!st)
		return err ? err : ERR_STORE;
	store_bind_text(st, 1, user_id);
	size_t cap = 0;
	int rc;
	while ((rc = store_step(st)) == STORE_ROW) {
		if (out->n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			cart_line *nv = realloc(out->v, ncap * sizeof(*nv));
			if (!nv) {
				rc = ERR_NOMEM;
				break;
			}
			out->v = nv;
			cap = ncap;
		}
		cart_line *l = &out->v[out->n++];
		const char *name = store_col_text(st, 1), *cur = store_col_text(st, 4);
		snprintf(l->sku, sizeof(l->sku), "%s", store_col_text(st, 0));
		snprintf(l->name, sizeof(l->name), "%s", name ? name : "");
		snprintf(l->currency, sizeof(l->currency), "%s", cur ? cur : "");
		l->qty = store_col_int(st, 2);
		l->price_cents = store_col_int(st, 3);
		l->added_at = store_col_int(st, 5);
	}
	store_reset(st);
	if (rc < 0) {
		lines_free(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), line_cmp);
	return 0;
}

static json_t *line_json(const cart_line *l)
{
	char added[40];
	clock_fmt_rfc3339(l->added_at, added, sizeof(added));
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:s}", "sku", l->sku, "name", l->name, "qty",
			 (json_int_t)l->qty, "price_cents", (json_int_t)l->price_cents,
			 "line_total_cents", (json_int_t)(l->qty * l->price_cents), "added_at",
			 added);
}

/* The cart as the API shows it. */
static json_t *cart_json(const cart_lines *l)
{
	json_t *items = json_array();
	int64_t total = 0;
	for (size_t i = 0; i < l->n; i++) {
		json_array_append_new(items, line_json(&l->v[i]));
		total += l->v[i].qty * l->v[i].price_cents;
	}
	return json_pack("{s:o,s:I,s:o}", "items", items, "total_cents", (json_int_t)total,
			 "currency", l->n ? json_string(l->v[0].currency) : json_null());
}

/* Reads user_id's cart into resp as 200 (with user_id when with_user). */
static void reply_cart(cart_svc *c, const char *user_id, int with_user, msg_resp *resp)
{
	cart_lines l;
	int rc = lines_load(c, user_id, &l);
	if (rc) {
		engine_store_error(c->ctx, resp, rc, "read cart");
		return;
	}
	json_t *out = cart_json(&l);
	if (with_user)
		json_object_set_new(out, "user_id", json_string(user_id));
	lines_free(&l);
	msg_resp_json(resp, 200, out);
}

/* ---- writing a cart -------------------------------------------------------------- */

static int exec_user(cart_svc *c, const char *sql, const char *user_id, const char *sku,
		     int64_t *changed)
{
	int err = 0;
	store_stmt *st = store_prepare(c->ctx->store, sql, &err);
	if (!st)
		return err ? err : ERR_STORE;
	store_bind_text(st, 1, user_id);
	if (sku)
		store_bind_text(st, 2, sku);
	int rc = store_step(st);
	if (rc >= 0 && changed)
		*changed = store_changes(st);
	store_reset(st);
	return rc < 0 ? rc : 0;
}

static int remove_item(cart_svc *c, const char *user_id, const char *sku)
{
	return exec_user(c, "DELETE FROM cart_items WHERE user_id = ? AND sku = ?", user_id, sku,
			 NULL);
}

static int remove_all(cart_svc *c, const char *user_id, int64_t *removed)
{
	return exec_user(c, "DELETE FROM cart_items WHERE user_id = ?", user_id, NULL, removed);
}

/* Why a put was refused, for the 409. */
enum put_outcome { PUT_DONE = 0, PUT_OTHER_CURRENCY, PUT_FULL };

typedef struct put_args {
	const char *user_id;
	const char *sku;
	int64_t qty;
	const product_snap *p;
	enum put_outcome outcome;
	char cart_currency[4];
} put_args;

/* The body of a put's transaction: lock the cart, check its rules against
 * what is in it now, upsert the line. Returns 0 with a->outcome set, or a
 * store error. */
static int put_txn(cart_svc *c, put_args *a)
{
	store *s = c->ctx->store;
	int64_t now = clock_now(c->ctx->clock);
	int err = 0;
	store_stmt *st = store_prepare(s,
				       "INSERT INTO carts (user_id, updated_at) VALUES (?, ?) "
				       "ON CONFLICT (user_id) DO UPDATE SET updated_at = "
				       "excluded.updated_at",
				       &err);
	if (!st)
		return err ? err : ERR_STORE;
	store_bind_text(st, 1, a->user_id);
	store_bind_int(st, 2, now);
	int rc = store_step(st);
	store_reset(st);
	if (rc < 0)
		return rc;

	st = store_prepare(s, "SELECT sku, currency FROM cart_items WHERE user_id = ?", &err);
	if (!st)
		return err ? err : ERR_STORE;
	store_bind_text(st, 1, a->user_id);
	int64_t others = 0;
	a->outcome = PUT_DONE;
	while ((rc = store_step(st)) == STORE_ROW) {
		const char *sku = store_col_text(st, 0), *cur = store_col_text(st, 1);
		if (sku && strcmp(sku, a->sku) == 0)
			continue; /* this line is replaced: its own currency does not count */
		others++;
		if (cur && strcmp(cur, a->p->currency) != 0 && a->outcome == PUT_DONE) {
			a->outcome = PUT_OTHER_CURRENCY;
			snprintf(a->cart_currency, sizeof(a->cart_currency), "%s", cur);
		}
	}
	store_reset(st);
	if (rc < 0)
		return rc;
	if (a->outcome == PUT_DONE && others >= c->max_skus)
		a->outcome = PUT_FULL;
	if (a->outcome != PUT_DONE)
		return 0;

	/* Putting an item again takes the catalog's price of now: the customer
	 * sees it in the cart this returns. added_at stays the first time. */
	st = store_prepare(s,
			   "INSERT INTO cart_items (user_id, sku, qty, price_cents, currency, name, "
			   "added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
			   "ON CONFLICT (user_id, sku) DO UPDATE SET qty = excluded.qty, "
			   "price_cents = excluded.price_cents, currency = excluded.currency, "
			   "name = excluded.name, updated_at = excluded.updated_at",
			   &err);
	if (!st)
		return err ? err : ERR_STORE;
	store_bind_text(st, 1, a->user_id);
	store_bind_text(st, 2, a->sku);
	store_bind_int(st, 3, a->qty);
	store_bind_int(st, 4, a->p->price_cents);
	store_bind_text(st, 5, a->p->currency);
	store_bind_text(st, 6, a->p->name);
	store_bind_int(st, 7, now);
	store_bind_int(st, 8, now);
	rc = store_step(st);
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* Runs put_txn in a transaction, again when the database asks for it. */
static int put_line(cart_svc *c, put_args *a)
{
	store *s = c->ctx->store;
	int rc = 0;
	for (int attempt = 0; attempt < TXN_TRIES; attempt++) {
		rc = store_begin(s);
		if (rc == 0) {
			rc = put_txn(c, a);
			if (rc == 0 && a->outcome == PUT_DONE)
				rc = store_commit(s);
			else
				store_rollback(s);
		}
		if (rc != ERR_RETRY && rc != ERR_BUSY)
			return rc;
	}
	return rc;
}

/* ---- handlers: the caller's cart -------------------------------------------------- */

static void get_cart(void *ud, msg_req *req, msg_resp *resp)
{
	cart_svc *c = ud;
	identity id;
	if (engine_require_user(c->ctx, req, resp, &id))
		return;
	reply_cart(c, id.sub, 0, resp);
}

static int path_sku(const msg_req *req, msg_resp *resp, const char **sku)
{
	*sku = msg_req_param(req, 0);
	if (valid_sku(*sku))
		return 0;
	return engine_bad_field(resp, "sku",
				"must be 1-64 characters of letters, digits, '-', '_', '.'");
}

static void put_item(void *ud, msg_req *req, msg_resp *resp)
{
	cart_svc *c = ud;
	identity id;
	const char *sku;
	json_t *body;
	if (engine_require_user(c->ctx, req, resp, &id) || path_sku(req, resp, &sku) ||
	    engine_json_body(req, resp, &body))
		return;
	int64_t qty = 0;
	jval_error e = { { 0 }, { 0 } };
	int bad = jval_int(body, "qty", 1, 0, QTY_MAX, &qty, NULL, &e);
	json_decref(body);
	if (bad) {
		engine_bad_field(resp, e.field, e.message);
		return;
	}
	if (qty == 0) {
		int rc = remove_item(c, id.sub, sku);
		if (rc)
			engine_store_error(c->ctx, resp, rc, "remove item");
		else
			reply_cart(c, id.sub, 0, resp);
		return;
	}
	/* Asked before the transaction: no database lock is held while the
	 * catalog takes its time. */
	product_snap p;
	char retry_after[8];
	int rc = catalog_lookup(c, req, sku, &p, retry_after, sizeof(retry_after));
	if (rc == ERR_NOT_FOUND) {
		msg_resp_error(resp, 404, "not_found", "the catalog has no product with this sku",
			       json_pack("{s:s}", "sku", sku));
		return;
	}
	if (rc) {
		reply_unavailable(resp, retry_after, sku);
		return;
	}
	put_args a = { .user_id = id.sub, .sku = sku, .qty = qty, .p = &p };
	rc = put_line(c, &a);
	if (rc) {
		engine_store_error(c->ctx, resp, rc, "put item");
		return;
	}
	if (a.outcome == PUT_OTHER_CURRENCY) {
		char msg[200];
		snprintf(msg, sizeof(msg),
			 "the cart holds items priced in %s and this one is priced in %s; a cart "
			 "holds one currency, so check out or empty the cart first",
			 a.cart_currency, p.currency);
		msg_resp_error(resp, 409, "conflict", msg,
			       json_pack("{s:s,s:s,s:s}", "sku", sku, "currency", p.currency,
					 "cart_currency", a.cart_currency));
		return;
	}
	if (a.outcome == PUT_FULL) {
		char msg[120];
		snprintf(msg, sizeof(msg), "a cart holds at most %lld different items",
			 (long long)c->max_skus);
		msg_resp_error(resp, 409, "conflict", msg,
			       json_pack("{s:s,s:I}", "sku", sku, "limit", (json_int_t)c->max_skus));
		return;
	}
	reply_cart(c, id.sub, 0, resp);
}

static void delete_item(void *ud, msg_req *req, msg_resp *resp)
{
	cart_svc *c = ud;
	identity id;
	const char *sku;
	if (engine_require_user(c->ctx, req, resp, &id) || path_sku(req, resp, &sku))
		return;
	int rc = remove_item(c, id.sub, sku);
	if (rc)
		engine_store_error(c->ctx, resp, rc, "remove item");
	else
		reply_cart(c, id.sub, 0, resp);
}

static void clear_cart(void *ud, msg_req *req, msg_resp *resp)
{
	cart_svc *c = ud;
	identity id;
	if (engine_require_user(c->ctx, req, resp, &id))
		return;
	int rc = remove_all(c, id.sub, NULL);
	if (rc)
		engine_store_error(c->ctx, resp, rc, "clear cart");
	else
		reply_cart(c, id.sub, 0, resp);
}

/* ---- handlers: for services ---------------------------------------------------------- */

static int path_user(const cart_svc *c, const msg_req *req, msg_resp *resp, const char **user_id)
{
	if (engine_require_service(c->ctx, req, resp))
		return ERR_FORBIDDEN;
	*user_id = msg_req_param(req, 0);
	if (valid_user_id(*user_id))
		return 0;
	return engine_bad_field(resp, "user_id", "is not a user id");
}

/* Adds the catalog's current prices to out (cart_json of l). 0, or
 * ERR_UNAVAILABLE with resp filled. */
static int refresh_prices(cart_svc *c, const msg_req *req, const cart_lines *l, json_t *out,
			  msg_resp *resp)
{
	json_t *items = json_object_get(out, "items");
	int changed = 0, all_available = 1;
	int64_t current_total = 0;
	for (size_t i = 0; i < l->n; i++) {
		const cart_line *line = &l->v[i];
		json_t *item = json_array_get(items, i);
		product_snap p;
		char retry_after[8];
		int rc = catalog_lookup(c, req, line->sku, &p, retry_after, sizeof(retry_after));
		if (rc == ERR_NOT_FOUND) {
			all_available = 0;
			json_object_set_new(item, "current_price_cents", json_null());
			json_object_set_new(item, "current_currency", json_null());
			json_object_set_new(item, "available", json_false());
			json_object_set_new(item, "price_changed", json_false());
			continue;
		}
		if (rc) {
			reply_unavailable(resp, retry_after, line->sku);
			return ERR_UNAVAILABLE;
		}
		int differs = p.price_cents != line->price_cents ||
			      strcmp(p.currency, line->currency) != 0;
		changed |= differs;
		current_total += line->qty * p.price_cents;
		json_object_set_new(item, "current_price_cents", json_integer(p.price_cents));
		json_object_set_new(item, "current_currency", json_string(p.currency));
		json_object_set_new(item, "available", json_true());
		json_object_set_new(item, "price_changed", json_boolean(differs));
	}
	json_object_set_new(out, "price_changed", json_boolean(changed));
	json_object_set_new(out, "available", json_boolean(all_available));
	json_object_set_new(out, "current_total_cents", json_integer(current_total));
	if (changed)
		log_info(c->ctx->log, "prices changed in a cart since they were put in it");
	return 0;
}

static void internal_get(void *ud, msg_req *req, msg_resp *resp)
{
	cart_svc *c = ud;
	const char *user_id;
	if (path_user(c, req, resp, &user_id))
		return;
	char flag[8] = "";
	int has = msg_req_query(req, "refresh", flag, sizeof(flag));
	int refresh = has == 1 && (strcmp(flag, "1") == 0 || strcmp(flag, "true") == 0);
	if (has < 0 || (has == 1 && !refresh && strcmp(flag, "0") != 0 &&
			strcmp(flag, "false") != 0)) {
		engine_bad_field(resp, "refresh", "must be 1 or 0");
		return;
	}
	cart_lines l;
	int rc = lines_load(c, user_id, &l);
	if (rc) {
		engine_store_error(c->ctx, resp, rc, "read cart");
		return;
	}
	json_t *out = cart_json(&l);
	json_object_set_new(out, "user_id", json_string(user_id));
	if (refresh && refresh_prices(c, req, &l, out, resp) != 0) {
		json_decref(out);
		lines_free(&l);
		return;
	}
	lines_free(&l);
	msg_resp_json(resp, 200, out);
}

static void internal_clear(void *ud, msg_req *req, msg_resp *resp)
{
	cart_svc *c = ud;
	const char *user_id;
	if (path_user(c, req, resp, &user_id))
		return;
	int64_t removed = 0;
	int rc = remove_all(c, user_id, &removed);
	if (rc) {
		engine_store_error(c->ctx, resp, rc, "clear cart");
		return;
	}
	json_t *out = json_pack("{s:s,s:[],s:I,s:n,s:I}", "user_id", user_id, "items",
				"total_cents", (json_int_t)0, "currency", "removed",
				(json_int_t)removed);
	msg_resp_json(resp, 200, out);
}

/* ---- engine ---------------------------------------------------------------------------- */

static void cart_destroy(void *eng)
{
	cart_svc *c = eng;
	if (!c)
		return;
	router_free(c->rt);
	free(c);
}

static void *cart_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (!ctx->store) {
		snprintf(err, errlen, "the cart service needs a store");
		return NULL;
	}
	cart_svc *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->ctx = ctx;
	c->max_skus = config_int(ctx->config, "cart.max_skus", 50);
	c->catalog_timeout_ms = config_int(ctx->config, "cart.catalog_timeout_ms", 2000);
	if (c->max_skus < 1 || c->max_skus > 10000 || c->catalog_timeout_ms < 1) {
		snprintf(err, errlen, "bad cart.max_skus or cart.catalog_timeout_ms");
		cart_destroy(c);
		return NULL;
	}
	metrics_help(ctx->metrics, "cart_catalog_lookups_total",
		     "Product lookups the cart made in the catalog, by result (ok, not_found, failed).");
	metrics_help(ctx->metrics, "cart_catalog_failures_total",
		     "Catalog lookups that failed, by reason (unreachable, timeout, status, malformed).");
	static const engine_route routes[] = {
		{ "GET", "/v1/cart", get_cart },
		{ "DELETE", "/v1/cart", clear_cart },
		{ "PUT", "/v1/cart/items/{sku}", put_item },
		{ "DELETE", "/v1/cart/items/{sku}", delete_item },
		{ "GET", "/v1/internal/carts/{user_id}", internal_get },
		{ "DELETE", "/v1/internal/carts/{user_id}", internal_clear },
	};
	c->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), c, err, errlen);
	if (!c->rt) {
		cart_destroy(c);
		return NULL;
	}
	return c;
}

static void cart_handle(void *eng, msg_req *req, msg_resp *resp)
{
	cart_svc *c = eng;
	router_dispatch(c->rt, req, resp);
}

const engine_def cart_engine = {
	.name = "cart",
	.needs_store = 1,
	.create = cart_create,
	.handle = cart_handle,
	.tick = NULL,
	.ready = NULL,
	.destroy = cart_destroy,
};
