/* Tests for services/inventory through its engine_def: stock reads and admin
 * sets, the ledger, reservations (all or nothing, validation, idempotent
 * replays), commit/release/expiry and their state machine, the outbox, a
 * long random run checked by the invariant checker, the checker catching a
 * corrupted row, threads racing for the last units, and group commits
 * formed on purpose (refusals, duplicate ids and a failure after writing
 * inside one batch, each event with its own request's trace context). Each
 * test gets its
 * own in-memory store (a file store for the threads), a virtual clock and a
 * four-product seed file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "net/msg.h"
#include "services/inventory.h"
#include "store/store.h"

#include "efix.h"

#define T0 1764112255000000LL /* 2025-11-25T23:10:55Z */
#define SEC 1000000LL
#define ADMIN "Bearer test-admin"

static const char SEED[] = "[{\"sku\":\"KT-1\",\"name\":\"Pan\"},"
			   " {\"sku\":\"BK-1\",\"name\":\"Book\"},"
			   " {\"sku\":\"TOY-1\",\"name\":\"Yo-yo\"},"
			   " {\"sku\":\"BK-2\",\"name\":\"Book Two\"}]";
static const char *const SKUS[] = { "BK-1", "BK-2", "KT-1", "TOY-1" };
#define NSKUS 4

/* ---- fixture and requests ------------------------------------------------- */

/* The context on store_url ("sqlite::memory:", or a file store in the
 * fixture's directory when NULL) with this file's SEED as
 * catalog.seed_file; the engine is not created. */
static efix *fixture_new(const char *store_url)
{
	efix *f = efix_new("inventory", store_url, T0, 1);
	efix_seed(f, SEED);
	return f;
}

static int setup(void **state)
{
	efix *f = fixture_new("sqlite::memory:");
	f->eng = efix_create_engine(f);
	*state = f;
	return 0;
}

/* The parsed JSON answer (new reference), the status in *status. When raw
 * is not NULL it gets a malloc'd copy of the body bytes. */
static json_t *call_raw(efix *f, const char *method, const char *path, const char *auth,
			const char *body, int *status, char **raw)
{
	msg_resp resp;
	efix_do(f, NULL, method, path, NULL, auth, NULL, body, &resp);
	*status = resp.status;
	json_t *v = efix_json(&resp);
	if (raw)
		*raw = strndup(resp.body, resp.body_len);
	msg_resp_clear(&resp);
	return v;
}

static json_t *call(efix *f, const char *method, const char *path, const char *auth,
		    const char *body, int *status)
{
	return efix_call(f, method, path, NULL, auth, body, status);
}

static void expect_error(efix *f, const char *method, const char *path, const char *auth,
			 const char *body, int want_status, const char *code, const char *key,
			 const char *want)
{
	efix_assert_error(efix_expect(f, method, path, NULL, auth, body, want_status), code, key,
			  want);
}

static json_t *expect_ok(efix *f, const char *method, const char *path, const char *body,
			 int want_status)
{
	int status = 0;
	json_t *v = call(f, method, path, ADMIN, body, &status);
	if (status != want_status)
		fail_msg("%s %s %s: status %d, expected %d: %s", method, path, body ? body : "",
			 status, want_status, json_dumps(v, JSON_COMPACT));
	return v;
}

typedef struct figures {
	int64_t on_hand, reserved, available;
	int low_stock;
} figures;

static figures stock_of(efix *f, const char *sku)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/inventory/%s", sku);
	int status = 0;
	json_t *v = call(f, "GET", path, NULL, NULL, &status);
	if (status != 200)
		fail_msg("GET %s: %d", path, status);
	assert_string_equal(json_string_value(json_object_get(v, "sku")), sku);
	figures g = { json_integer_value(json_object_get(v, "on_hand")),
		      json_integer_value(json_object_get(v, "reserved")),
		      json_integer_value(json_object_get(v, "available")),
		      json_is_true(json_object_get(v, "low_stock")) };
	assert_true(json_is_boolean(json_object_get(v, "low_stock")));
	assert_int_equal(json_object_size(v), 5);
	assert_int_equal(g.available, g.on_hand - g.reserved);
	json_decref(v);
	return g;
}

static void set_stock(efix *f, const char *sku, int64_t n)
{
	char path[128], body[64];
	snprintf(path, sizeof(path), "/v1/inventory/%s", sku);
	snprintf(body, sizeof(body), "{\"on_hand\":%lld}", (long long)n);
	json_decref(expect_ok(f, "PUT", path, body, 200));
}

/* POSTs a reservation of items (a JSON array text); returns the status and
 * the answer in *out (may be NULL). */
static int reserve(efix *f, const char *id, const char *items, int64_t ttl, json_t **out)
{
	char body[2048];
	snprintf(body, sizeof(body),
		 "{\"reservation_id\":\"%s\",\"order_id\":\"ord-%s\",\"items\":%s,\"ttl_s\":%lld}",
		 id, id, items, (long long)ttl);
	int status = 0;
	json_t *v = call(f, "POST", "/v1/reservations", ADMIN, body, &status);
	if (out)
		*out = v;
	else
		json_decref(v);
	return status;
}

static int finish(efix *f, const char *id, const char *action, json_t **out)
{
	char path[160];
	snprintf(path, sizeof(path), "/v1/reservations/%s/%s", id, action);
	int status = 0;
	json_t *v = call(f, "POST", path, ADMIN, NULL, &status);
	if (out)
		*out = v;
	else
		json_decref(v);
	return status;
}

static const char *status_of(json_t *v)
{
	return json_string_value(json_object_get(v, "status"));
}

/* One integer from a query with an optional text parameter. */
static int64_t db_int(efix *f, const char *sql, const char *arg)
{
	int err = 0;
	store_stmt *st = store_prepare(f->store, sql, &err);
	if (!st)
		fail_msg("prepare %s: %s", sql, store_errmsg(f->store));
	if (arg)
		store_bind_text(st, 1, arg);
	assert_int_equal(store_step(st), STORE_ROW);
	int64_t v = store_col_int(st, 0);
	store_reset(st);
	return v;
}

static int64_t outbox_rows(efix *f) { return db_int(f, "SELECT COUNT(*) FROM outbox", NULL); }

/* The ledger of every sku as GET answers it (newest first, along the
 * entries' links) is its whole ledger in the table, ids descending. */
static void assert_ledger_chains(efix *f)
{
	int err = 0;
	store_stmt *st = store_prepare(f->store, "SELECT sku FROM stock ORDER BY sku", &err);
	assert_non_null(st);
	char skus[64][65];
	size_t n = 0;
	while (n < 64 && store_step(st) == STORE_ROW)
		snprintf(skus[n++], sizeof(skus[0]), "%s", store_col_text(st, 0));
	store_reset(st);
	for (size_t i = 0; i < n; i++) {
		int64_t want = db_int(f, "SELECT COUNT(*) FROM stock_ledger WHERE sku = ?", skus[i]);
		if (want > 500)
			continue;
		char path[160];
		snprintf(path, sizeof(path), "/v1/inventory/%.64s/ledger?limit=500", skus[i]);
		json_t *v = expect_ok(f, "GET", path, NULL, 200);
		json_t *entries = json_object_get(v, "entries");
		if ((int64_t)json_array_size(entries) != want)
			fail_msg("ledger of %s: %zu entries along the links, %lld in the table",
				 skus[i], json_array_size(entries), (long long)want);
		for (size_t k = 1; k < json_array_size(entries); k++)
			assert_true(json_integer_value(json_object_get(json_array_get(entries, k), "id")) <
				    json_integer_value(
					    json_object_get(json_array_get(entries, k - 1), "id")));
		json_decref(v);
	}
}

static void assert_invariants(efix *f)
{
	assert_ledger_chains(f);
	json_t *report = NULL;
	int rc = inventory_check_invariants(f->store, &report);
	if (rc != 0)
		fail_msg("invariants: %s", json_dumps(report, JSON_COMPACT));
	assert_true(json_is_true(json_object_get(report, "ok")));
	assert_int_equal(json_array_size(json_object_get(report, "violations")), 0);
	json_decref(report);
}

/* ---- stock ---------------------------------------------------------------------- */

static void test_initial_stock(void **state)
{
	efix *f = *state;
	for (int i = 0; i < NSKUS; i++) {
		figures g = stock_of(f, SKUS[i]);
		assert_int_equal(g.on_hand, 100);
		assert_int_equal(g.reserved, 0);
		assert_int_equal(db_int(f,
					"SELECT COUNT(*) FROM stock_ledger WHERE sku = ? AND "
					"reason = 'initial' AND delta = 100",
					SKUS[i]),
				 1);
	}
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM stock", NULL), NSKUS);
	assert_int_equal(outbox_rows(f), NSKUS);
	assert_invariants(f);

	/* A restart (a second engine on the same store) does not stock again,
	 * not even after a sku was changed. */
	set_stock(f, "BK-1", 3);
	void *second = efix_create_engine(f);
	inventory_engine.destroy(second);
	assert_int_equal(stock_of(f, "BK-1").on_hand, 3);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM stock_ledger WHERE reason = 'initial'",
				NULL),
			 NSKUS);
	char err[256] = "";
	assert_int_equal(inventory_load_file(&f->ctx, f->seed_path, 100, err, sizeof(err)), 0);

	/* The configured amount, and a bad file, on a fresh store. */
	efix *g = fixture_new("sqlite::memory:");
	assert_int_equal(config_set(g->config, "inventory.initial_on_hand", "7"), 0);
	g->eng = efix_create_engine(g);
	assert_int_equal(stock_of(g, "TOY-1").on_hand, 7);
	efix_free(g);
	g = fixture_new("sqlite::memory:");
	assert_int_equal(config_set(g->config, "catalog.seed_file", "/nonexistent/p.json"), 0);
	err[0] = '\0';
	assert_null(inventory_engine.create(&g->ctx, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/p.json"));
	efix_free(g);
}

static void test_get_and_set(void **state)
{
	efix *f = *state;
	expect_error(f, "GET", "/v1/inventory/NOPE-1", NULL, NULL, 404, "not_found", "sku",
		     "NOPE-1");
	expect_error(f, "GET", "/v1/inventory/bad%20sku", NULL, NULL, 404, "not_found", NULL,
		     NULL);

	/* only the admin sets */
	expect_error(f, "PUT", "/v1/inventory/NEW-1", NULL, "{\"on_hand\":7}", 401,
		     "unauthenticated", NULL, NULL);
	expect_error(f, "PUT", "/v1/inventory/NEW-1", "Bearer nope", "{\"on_hand\":7}", 401,
		     "unauthenticated", NULL, NULL);
	expect_error(f, "GET", "/v1/inventory/NEW-1", NULL, NULL, 404, "not_found", "sku",
		     "NEW-1");

	/* a set creates the row */
	clock_advance(f->clock, SEC);
	json_t *v = expect_ok(f, "PUT", "/v1/inventory/NEW-1", "{\"on_hand\":7}", 200);
	assert_string_equal(json_string_value(json_object_get(v, "sku")), "NEW-1");
	assert_int_equal(json_integer_value(json_object_get(v, "on_hand")), 7);
	assert_int_equal(json_integer_value(json_object_get(v, "reserved")), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "available")), 7);
	json_decref(v);
	figures g = stock_of(f, "NEW-1");
	assert_int_equal(g.on_hand, 7);
	assert_int_equal(g.available, 7);

	/* lower, then the same value (no ledger entry), the body may repeat
	 * the sku */
	set_stock(f, "NEW-1", 3);
	json_decref(expect_ok(f, "PUT", "/v1/inventory/NEW-1",
			      "{\"sku\":\"NEW-1\",\"on_hand\":3}", 200));
	set_stock(f, "NEW-1", 0);
	set_stock(f, "NEW-1", 12);
	assert_int_equal(stock_of(f, "NEW-1").on_hand, 12);

	/* the ledger explains the figure: +7, -4, -3, +12 */
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM stock_ledger WHERE sku = ?", "NEW-1"), 4);
	assert_int_equal(db_int(f, "SELECT SUM(delta) FROM stock_ledger WHERE sku = ?", "NEW-1"),
			 12);
	v = expect_ok(f, "GET", "/v1/inventory/NEW-1/ledger?limit=2", NULL, 200);
	json_t *entries = json_object_get(v, "entries");
	assert_int_equal(json_array_size(entries), 2);
	json_t *e0 = json_array_get(entries, 0), *e1 = json_array_get(entries, 1);
	assert_int_equal(json_integer_value(json_object_get(e0, "delta")), 12);
	assert_int_equal(json_integer_value(json_object_get(e1, "delta")), -3);
	assert_string_equal(json_string_value(json_object_get(e0, "reason")), "set");
	assert_string_equal(json_string_value(json_object_get(e0, "reference")), "admin");
	char ts[40];
	clock_fmt_rfc3339(T0 + SEC, ts, sizeof(ts));
	assert_string_equal(json_string_value(json_object_get(e0, "at")), ts);
	assert_int_equal(json_integer_value(json_object_get(v, "on_hand")), 12);
	json_decref(v);
	expect_error(f, "GET", "/v1/inventory/NEW-1/ledger", NULL, NULL, 401, "unauthenticated",
		     NULL, NULL);
	expect_error(f, "GET", "/v1/inventory/NEW-1/ledger?limit=0", ADMIN, NULL, 400,
		     "invalid_argument", "field", "limit");
	expect_error(f, "GET", "/v1/inventory/NONE-9/ledger", ADMIN, NULL, 404, "not_found", "sku",
		     "NONE-9");

	/* bad input */
	static const struct {
		const char *body;
		const char *field;
	} bad[] = {
		{ "{\"on_hand\":-1}", "on_hand" },
		{ "{\"on_hand\":\"5\"}", "on_hand" },
		{ "{\"on_hand\":1.5}", "on_hand" },
		{ "{\"on_hand\":1000000001}", "on_hand" },
		{ "{}", "on_hand" },
		{ "{\"sku\":\"BK-2\",\"on_hand\":1}", "sku" },
		{ "{\"on_hand\":", "body" },
		{ "[1]", "body" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(f, "PUT", "/v1/inventory/NEW-1", ADMIN, bad[i].body, 400,
			     "invalid_argument", "field", bad[i].field);
	expect_error(f, "PUT", "/v1/inventory/bad%20sku", ADMIN, "{\"on_hand\":1}", 400,
		     "invalid_argument", "field", "sku");
	assert_int_equal(stock_of(f, "NEW-1").on_hand, 12);
	expect_error(f, "DELETE", "/v1/inventory/NEW-1", ADMIN, NULL, 405, "method_not_allowed",
		     NULL, NULL);
	assert_invariants(f);
}

static void test_set_below_reserved(void **state)
{
	efix *f = *state;
	assert_int_equal(reserve(f, "r1", "[{\"sku\":\"KT-1\",\"qty\":10}]", 600, NULL), 201);
	int status = 0;
	json_t *v = call(f, "PUT", "/v1/inventory/KT-1", ADMIN, "{\"on_hand\":9}", &status);
	assert_int_equal(status, 409);
	json_t *e = json_object_get(v, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	assert_non_null(strstr(msg, "reserved"));
	assert_non_null(strstr(msg, "10"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "details"),
							    "reserved")),
			 10);
	efix_assert_error(v, "conflict", "sku", "KT-1");
	figures g = stock_of(f, "KT-1");
	assert_int_equal(g.on_hand, 100);
	assert_int_equal(g.reserved, 10);

	/* exactly what is reserved is fine: nothing left available */
	set_stock(f, "KT-1", 10);
	g = stock_of(f, "KT-1");
	assert_int_equal(g.available, 0);
	assert_int_equal(reserve(f, "r2", "[{\"sku\":\"KT-1\",\"qty\":1}]", 600, NULL), 409);
	assert_int_equal(finish(f, "r1", "commit", NULL), 200);
	g = stock_of(f, "KT-1");
	assert_int_equal(g.on_hand, 0);
	assert_int_equal(g.reserved, 0);
	assert_invariants(f);
}

/* ---- reserving ------------------------------------------------------------------------ */

static void test_reserve(void **state)
{
	efix *f = *state;
	char *raw = NULL;
	int status = 0;
	json_t *v = call_raw(f, "POST", "/v1/reservations", ADMIN,
			     "{\"reservation_id\":\"res-1\",\"order_id\":\"ord-1\",\"items\":["
			     "{\"sku\":\"TOY-1\",\"qty\":2},{\"sku\":\"BK-1\",\"qty\":5}],"
			     "\"ttl_s\":900}",
			     &status, &raw);
	assert_int_equal(status, 201);
	assert_string_equal(json_string_value(json_object_get(v, "reservation_id")), "res-1");
	assert_string_equal(json_string_value(json_object_get(v, "order_id")), "ord-1");
	assert_string_equal(status_of(v), "HELD");
	char ts[40];
	clock_fmt_rfc3339(T0 + 900 * SEC, ts, sizeof(ts));
	assert_string_equal(json_string_value(json_object_get(v, "expires_at")), ts);
	json_t *items = json_object_get(v, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "sku")),
			    "BK-1");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "qty")), 5);
	json_decref(v);
	free(raw);

	figures g = stock_of(f, "BK-1");
	assert_int_equal(g.on_hand, 100);
	assert_int_equal(g.reserved, 5);
	assert_int_equal(g.available, 95);
	assert_int_equal(stock_of(f, "TOY-1").reserved, 2);
	assert_int_equal(stock_of(f, "KT-1").reserved, 0);

	v = expect_ok(f, "GET", "/v1/reservations/res-1", NULL, 200);
	assert_string_equal(status_of(v), "HELD");
	assert_string_equal(json_string_value(json_object_get(v, "order_id")), "ord-1");
	assert_string_equal(json_string_value(json_object_get(v, "expires_at")), ts);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 2);
	json_decref(v);
	expect_error(f, "GET", "/v1/reservations/res-1", NULL, NULL, 401, "unauthenticated", NULL,
		     NULL);
	expect_error(f, "GET", "/v1/reservations/nope", ADMIN, NULL, 404, "not_found",
		     "reservation_id", "nope");
	expect_error(f, "POST", "/v1/reservations", NULL,
		     "{\"reservation_id\":\"x\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\","
		     "\"qty\":1}],\"ttl_s\":9}",
		     401, "unauthenticated", NULL, NULL);
	assert_invariants(f);
}

static void test_all_or_nothing(void **state)
{
	efix *f = *state;
	set_stock(f, "TOY-1", 1);
	int64_t outbox = outbox_rows(f);
	int64_t ledger = db_int(f, "SELECT COUNT(*) FROM stock_ledger", NULL);
	/* The short item sorts last: the first was already reserved inside the
	 * transaction and must be undone. */
	json_t *v = NULL;
	assert_int_equal(reserve(f, "r1", "[{\"sku\":\"BK-1\",\"qty\":5},{\"sku\":\"TOY-1\",\"qty\":2}]",
				 60, &v),
			 409);
	json_t *d = json_object_get(json_object_get(v, "error"), "details");
	assert_int_equal(json_integer_value(json_object_get(d, "requested")), 2);
	assert_int_equal(json_integer_value(json_object_get(d, "available")), 1);
	efix_assert_error(v, "insufficient_stock", "sku", "TOY-1");
	assert_int_equal(stock_of(f, "BK-1").reserved, 0);
	assert_int_equal(stock_of(f, "TOY-1").reserved, 0);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservations", NULL), 0);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservation_items", NULL), 0);
	assert_int_equal(outbox_rows(f), outbox);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM stock_ledger", NULL), ledger);
	expect_error(f, "GET", "/v1/reservations/r1", ADMIN, NULL, 404, "not_found", NULL, NULL);

	/* ...and in three items, the middle one short */
	set_stock(f, "BK-2", 0);
	assert_int_equal(reserve(f, "r2",
				 "[{\"sku\":\"KT-1\",\"qty\":1},{\"sku\":\"BK-2\",\"qty\":1},"
				 "{\"sku\":\"BK-1\",\"qty\":1}]",
				 60, &v),
			 409);
	efix_assert_error(v, "insufficient_stock", "sku", "BK-2");
	for (int i = 0; i < NSKUS; i++)
		assert_int_equal(stock_of(f, SKUS[i]).reserved, 0);

	/* once it fits, the same id goes through: a refusal is not remembered */
	assert_int_equal(reserve(f, "r1", "[{\"sku\":\"BK-1\",\"qty\":5},{\"sku\":\"TOY-1\",\"qty\":1}]",
				 60, NULL),
			 201);
	assert_int_equal(stock_of(f, "TOY-1").available, 0);
	assert_int_equal(stock_of(f, "BK-1").reserved, 5);
	assert_invariants(f);
}

static void test_reserve_validation(void **state)
{
	efix *f = *state;
	static const struct {
		const char *body;
		const char *field;
	} bad[] = {
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":0}],\"ttl_s\":60}",
		  "items[0].qty" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":1},"
		  "{\"sku\":\"BK-2\",\"qty\":-1}],\"ttl_s\":60}",
		  "items[1].qty" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":\"2\"}],\"ttl_s\":60}",
		  "items[0].qty" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\"}],\"ttl_s\":60}",
		  "items[0].qty" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":1},"
		  "{\"sku\":\"KT-1\",\"qty\":1},{\"sku\":\"BK-1\",\"qty\":2}],\"ttl_s\":60}",
		  "items[2].sku" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"bad sku\",\"qty\":1}],\"ttl_s\":60}",
		  "items[0].sku" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"qty\":1}],\"ttl_s\":60}",
		  "items[0].sku" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[7],\"ttl_s\":60}", "items[0]" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[],\"ttl_s\":60}", "items" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":{},\"ttl_s\":60}", "items" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"ttl_s\":60}", "items" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":1}],\"ttl_s\":0}",
		  "ttl_s" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":1}],\"ttl_s\":86401}",
		  "ttl_s" },
		{ "{\"reservation_id\":\"r\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":1}]}",
		  "ttl_s" },
		{ "{\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":1}],\"ttl_s\":60}",
		  "reservation_id" },
		{ "{\"reservation_id\":\"a b\",\"order_id\":\"o\",\"items\":[{\"sku\":\"BK-1\",\"qty\":1}],\"ttl_s\":60}",
		  "reservation_id" },
		{ "{\"reservation_id\":\"r\",\"items\":[{\"sku\":\"BK-1\",\"qty\":1}],\"ttl_s\":60}",
		  "order_id" },
		{ "{\"reservation_id\":", "body" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(f, "POST", "/v1/reservations", ADMIN, bad[i].body, 400,
			     "invalid_argument", "field", bad[i].field);
	/* the edges of the ranges are accepted */
	assert_int_equal(reserve(f, "ttl-1", "[{\"sku\":\"BK-1\",\"qty\":1}]", 1, NULL), 201);
	assert_int_equal(reserve(f, "ttl-max", "[{\"sku\":\"BK-1\",\"qty\":1}]", 86400, NULL), 201);

	/* an unknown sku is a 404 naming it, also when another item is short */
	json_t *v = NULL;
	assert_int_equal(reserve(f, "u1", "[{\"sku\":\"BK-1\",\"qty\":1},{\"sku\":\"ZZ-404\",\"qty\":1}]",
				 60, &v),
			 404);
	efix_assert_error(v, "not_found", "sku", "ZZ-404");
	assert_int_equal(reserve(f, "u2", "[{\"sku\":\"BK-2\",\"qty\":500},{\"sku\":\"ZZ-404\",\"qty\":1}]",
				 60, &v),
			 404);
	efix_assert_error(v, "not_found", "sku", "ZZ-404");
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservations", NULL), 2);
	assert_int_equal(stock_of(f, "BK-1").reserved, 2);
	assert_int_equal(stock_of(f, "BK-2").reserved, 0);

	msg_resp resp;
	efix_do(f, NULL, "POST", "/v1/reservations", NULL, ADMIN, NULL, NULL, &resp);
	assert_int_equal(resp.status, 400);
	msg_resp_clear(&resp);
	assert_invariants(f);
}

static void test_idempotent_replay(void **state)
{
	efix *f = *state;
	const char *body = "{\"reservation_id\":\"idem-1\",\"order_id\":\"ord-7\",\"items\":["
			   "{\"sku\":\"KT-1\",\"qty\":3},{\"sku\":\"BK-2\",\"qty\":1}],\"ttl_s\":300}";
	int status = 0;
	char *first = NULL, *again = NULL;
	json_decref(call_raw(f, "POST", "/v1/reservations", ADMIN, body, &status, &first));
	assert_int_equal(status, 201);
	int64_t outbox = outbox_rows(f);

	/* later, the same request: the same bytes, nothing reserved twice */
	clock_advance(f->clock, 10 * SEC);
	json_decref(call_raw(f, "POST", "/v1/reservations", ADMIN, body, &status, &again));
	assert_int_equal(status, 201);
	assert_string_equal(again, first);
	free(again);
	assert_int_equal(stock_of(f, "KT-1").reserved, 3);
	assert_int_equal(outbox_rows(f), outbox);

	/* the items in another order are the same request */
	json_decref(call_raw(f, "POST", "/v1/reservations", ADMIN,
			     "{\"reservation_id\":\"idem-1\",\"order_id\":\"ord-7\",\"items\":["
			     "{\"sku\":\"BK-2\",\"qty\":1},{\"sku\":\"KT-1\",\"qty\":3}],\"ttl_s\":300}",
			     &status, &again));
	assert_int_equal(status, 201);
	assert_string_equal(again, first);
	free(again);

	/* anything else under the same id is refused */
	static const char *const other[] = {
		"{\"reservation_id\":\"idem-1\",\"order_id\":\"ord-7\",\"items\":["
		"{\"sku\":\"KT-1\",\"qty\":4},{\"sku\":\"BK-2\",\"qty\":1}],\"ttl_s\":300}",
		"{\"reservation_id\":\"idem-1\",\"order_id\":\"ord-7\",\"items\":["
		"{\"sku\":\"KT-1\",\"qty\":3}],\"ttl_s\":300}",
		"{\"reservation_id\":\"idem-1\",\"order_id\":\"ord-8\",\"items\":["
		"{\"sku\":\"KT-1\",\"qty\":3},{\"sku\":\"BK-2\",\"qty\":1}],\"ttl_s\":300}",
		"{\"reservation_id\":\"idem-1\",\"order_id\":\"ord-7\",\"items\":["
		"{\"sku\":\"KT-1\",\"qty\":3},{\"sku\":\"BK-2\",\"qty\":1}],\"ttl_s\":301}",
	};
	for (size_t i = 0; i < 4; i++)
		expect_error(f, "POST", "/v1/reservations", ADMIN, other[i], 422,
			     "idempotency_mismatch", "reservation_id", "idem-1");
	assert_int_equal(stock_of(f, "KT-1").reserved, 3);

	/* the first answer stays the answer, also after a commit */
	assert_int_equal(finish(f, "idem-1", "commit", NULL), 200);
	json_decref(call_raw(f, "POST", "/v1/reservations", ADMIN, body, &status, &again));
	assert_int_equal(status, 201);
	assert_string_equal(again, first);
	free(again);
	free(first);
	assert_int_equal(stock_of(f, "KT-1").on_hand, 97);
	assert_int_equal(stock_of(f, "KT-1").reserved, 0);
	assert_invariants(f);
}

/* ---- commit, release, expiry -------------------------------------------------------- */

/* POSTs the reservation body and expects a 201 of exactly the bytes want. */
static void assert_replays(efix *f, const char *body, const char *want)
{
	int status = 0;
	char *got = NULL;
	json_decref(call_raw(f, "POST", "/v1/reservations", ADMIN, body, &status, &got));
	assert_int_equal(status, 201);
	assert_string_equal(got, want);
	free(got);
}

/* A reservation stored with its first body (as before 2026-11-26; later
 * ones are stored without it and the body is built again) replays that
 * body, and its items are found by its lines. */
static void test_replay_stored_body(void **state)
{
	efix *f = *state;
	assert_int_equal(store_exec(f->store,
				    "UPDATE stock SET reserved = reserved + 2 WHERE sku = 'KT-1';"
				    "INSERT INTO reservations (reservation_id, order_id, status, "
				    "fingerprint, response, ttl_s, created_at, expires_at, updated_at, "
				    "lines_from, lines_to) VALUES ('old-1', 'ord-9', 'HELD', "
				    "'[\"ord-9\",300,[[\"KT-1\",2]]]', '{\"stored\":\"body\"}', 300, 0, "
				    "4000000000000000, 0, 7, 7);"
				    "INSERT INTO reservation_items (line, reservation_id, sku, qty) "
				    "VALUES (7, 'old-1', 'KT-1', 2)"),
			 0);
	assert_replays(f,
		       "{\"reservation_id\":\"old-1\",\"order_id\":\"ord-9\",\"items\":["
		       "{\"sku\":\"KT-1\",\"qty\":2}],\"ttl_s\":300}",
		       "{\"stored\":\"body\"}");
	assert_int_equal(stock_of(f, "KT-1").reserved, 2);
	assert_int_equal(finish(f, "old-1", "commit", NULL), 200);
	assert_int_equal(stock_of(f, "KT-1").on_hand, 98);
	assert_int_equal(stock_of(f, "KT-1").reserved, 0);
}

/* Copies the file at from to the path to. */
static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	if (!in || !out)
		fail_msg("copy %s to %s", from, to);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* A database made by the migrations before items were keyed by line
 * (001-003), with two HELD reservations in it: after the rest of the
 * migrations the engine finds their items (GET, commit, release, the
 * invariants), replays their stored bodies, and reserves anew. */
static void test_migrate_existing(void **unused)
{
	(void)unused;
	efix *f = fixture_new(NULL);
	efix_close_store(f);
	char path[256], old[128], from[1024];
	static const char *const suffix[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/inventory.db%s", f->dir, suffix[i]);
		unlink(path);
	}
	snprintf(old, sizeof(old), "%s/old", f->dir);
	assert_int_equal(mkdir(old, 0755), 0);
	static const char *const files[] = { "001_stock.sql", "002_drop_items_sku.sql",
					     "003_outbox_traceparent.sql" };
	for (int i = 0; i < 3; i++) {
		snprintf(from, sizeof(from), "%s/schema/inventory/%s", efix_data_dir(), files[i]);
		snprintf(path, sizeof(path), "%s/%s", old, files[i]);
		copy_file(from, path);
	}
	char err[512] = "";
	store *s = store_open(f->store_url, "inventory", NULL, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_migrate_dir(s, old, err, sizeof(err)), 0);
	assert_int_equal(
		store_exec(s,
			   "INSERT INTO stock VALUES ('KT-1', 100, 5, 0), ('BK-2', 50, 1, 0);"
			   "INSERT INTO stock_ledger (sku, delta, reserved_delta, reason, reference, "
			   "at) VALUES ('KT-1', 100, 0, 'initial', 'seed', 0), "
			   "('BK-2', 50, 0, 'initial', 'seed', 0), "
			   "('KT-1', 0, 3, 'reserve', 'old-a', 0), ('BK-2', 0, 1, 'reserve', 'old-b', 0), "
			   "('KT-1', 0, 2, 'reserve', 'old-b', 0);"
			   "INSERT INTO reservations VALUES ('old-a', 'ord-a', 'HELD', "
			   "'[\"ord-a\",300,[[\"KT-1\",3]]]', '{\"stored\":\"a\"}', 300, 0, "
			   "4000000000000000, 0), ('old-b', 'ord-b', 'HELD', "
			   "'[\"ord-b\",300,[[\"BK-2\",1],[\"KT-1\",2]]]', '{\"stored\":\"b\"}', 300, 0, "
			   "4000000000000000, 0);"
			   "INSERT INTO reservation_items VALUES ('old-a', 'KT-1', 3), "
			   "('old-b', 'BK-2', 1), ('old-b', 'KT-1', 2)"),
		0);
	store_free(s);
	efix_open_store(f);
	f->eng = efix_create_engine(f);
	assert_invariants(f);

	assert_replays(f,
		       "{\"reservation_id\":\"old-b\",\"order_id\":\"ord-b\",\"items\":["
		       "{\"sku\":\"KT-1\",\"qty\":2},{\"sku\":\"BK-2\",\"qty\":1}],\"ttl_s\":300}",
		       "{\"stored\":\"b\"}");
	int status = 0;
	json_t *v = call(f, "GET", "/v1/reservations/old-b", ADMIN, NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 2);
	json_decref(v);

	assert_int_equal(finish(f, "old-b", "commit", NULL), 200);
	assert_int_equal(stock_of(f, "KT-1").on_hand, 98);
	assert_int_equal(stock_of(f, "KT-1").reserved, 3);
	assert_int_equal(stock_of(f, "BK-2").on_hand, 49);
	assert_int_equal(stock_of(f, "BK-2").reserved, 0);
	assert_int_equal(finish(f, "old-a", "release", NULL), 200);
	assert_int_equal(stock_of(f, "KT-1").reserved, 0);

	/* new reservations take lines after the migrated ones */
	assert_int_equal(reserve(f, "new-1", "[{\"sku\":\"KT-1\",\"qty\":4}]", 300, NULL), 201);
	assert_int_equal(finish(f, "new-1", "commit", NULL), 200);
	assert_int_equal(stock_of(f, "KT-1").on_hand, 94);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservation_items", NULL), 4);
	assert_invariants(f);
	efix_free(f);
}

static void test_commit_and_release(void **state)
{
	efix *f = *state;
	json_t *v = NULL;
	assert_int_equal(reserve(f, "c1", "[{\"sku\":\"BK-1\",\"qty\":4},{\"sku\":\"KT-1\",\"qty\":1}]",
				 600, NULL),
			 201);
	assert_int_equal(finish(f, "c1", "commit", &v), 200);
	assert_string_equal(status_of(v), "COMMITTED");
	assert_string_equal(json_string_value(json_object_get(v, "reservation_id")), "c1");
	json_decref(v);
	figures g = stock_of(f, "BK-1");
	assert_int_equal(g.on_hand, 96);
	assert_int_equal(g.reserved, 0);
	assert_int_equal(stock_of(f, "KT-1").on_hand, 99);
	/* a repeated commit changes nothing and answers the same */
	assert_int_equal(finish(f, "c1", "commit", &v), 200);
	assert_string_equal(status_of(v), "COMMITTED");
	json_decref(v);
	assert_int_equal(stock_of(f, "BK-1").on_hand, 96);
	/* sold stock is not given back */
	assert_int_equal(finish(f, "c1", "release", &v), 409);
	efix_assert_error(v, "conflict", "status", "COMMITTED");
	assert_int_equal(stock_of(f, "BK-1").on_hand, 96);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM stock_ledger WHERE reason = 'commit' "
				   "AND reference = ?",
				"c1"),
			 2);

	assert_int_equal(reserve(f, "r1", "[{\"sku\":\"BK-1\",\"qty\":6}]", 600, NULL), 201);
	assert_int_equal(stock_of(f, "BK-1").available, 90);
	assert_int_equal(finish(f, "r1", "release", &v), 200);
	assert_string_equal(status_of(v), "RELEASED");
	json_decref(v);
	g = stock_of(f, "BK-1");
	assert_int_equal(g.on_hand, 96);
	assert_int_equal(g.reserved, 0);
	assert_int_equal(finish(f, "r1", "release", &v), 200);
	assert_string_equal(status_of(v), "RELEASED");
	json_decref(v);
	assert_int_equal(finish(f, "r1", "commit", &v), 409);
	efix_assert_error(v, "conflict", "status", "RELEASED");
	assert_int_equal(stock_of(f, "BK-1").on_hand, 96);
	v = expect_ok(f, "GET", "/v1/reservations/r1", NULL, 200);
	assert_string_equal(status_of(v), "RELEASED");
	json_decref(v);

	assert_int_equal(finish(f, "nope", "commit", &v), 404);
	efix_assert_error(v, "not_found", "reservation_id", "nope");
	assert_int_equal(finish(f, "nope", "release", NULL), 404);
	expect_error(f, "POST", "/v1/reservations/c1/commit", NULL, NULL, 401, "unauthenticated",
		     NULL, NULL);
	expect_error(f, "GET", "/v1/reservations/c1/commit", ADMIN, NULL, 405,
		     "method_not_allowed", NULL, NULL);
	assert_invariants(f);
}

static void test_state_machine(void **state)
{
	(void)state;
	for (int a = 0; a < INVENTORY_NSTATES; a++) {
		assert_int_equal(inventory_state_parse(inventory_state_name(a)), a);
		for (int b = 0; b < INVENTORY_NSTATES; b++) {
			int legal = a == INVENTORY_HELD && b != INVENTORY_HELD;
			assert_int_equal(inventory_state_edge(a, b), legal ? 0 : ERR_STATE);
		}
	}
	assert_string_equal(inventory_state_name(INVENTORY_EXPIRED), "EXPIRED");
	assert_string_equal(inventory_state_name(99), "?");
	assert_int_equal(inventory_state_parse("held"), -1);
	assert_int_equal(inventory_state_parse(NULL), -1);
	assert_int_equal(inventory_state_edge(INVENTORY_HELD, -1), ERR_STATE);
}

static void test_expiry(void **state)
{
	efix *f = *state;
	json_t *v = NULL;
	assert_int_equal(reserve(f, "e1", "[{\"sku\":\"TOY-1\",\"qty\":30}]", 60, NULL), 201);
	assert_int_equal(reserve(f, "e2", "[{\"sku\":\"TOY-1\",\"qty\":5}]", 120, NULL), 201);
	assert_int_equal(stock_of(f, "TOY-1").reserved, 35);

	clock_advance(f->clock, 59 * SEC);
	inventory_engine.tick(f->eng, clock_now(f->clock));
	assert_int_equal(stock_of(f, "TOY-1").reserved, 35);
	clock_advance(f->clock, 1 * SEC); /* expires_at <= now */
	inventory_engine.tick(f->eng, clock_now(f->clock));
	v = expect_ok(f, "GET", "/v1/reservations/e1", NULL, 200);
	assert_string_equal(status_of(v), "EXPIRED");
	json_decref(v);
	v = expect_ok(f, "GET", "/v1/reservations/e2", NULL, 200);
	assert_string_equal(status_of(v), "HELD");
	json_decref(v);
	figures g = stock_of(f, "TOY-1");
	assert_int_equal(g.on_hand, 100);
	assert_int_equal(g.reserved, 5);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM stock_ledger WHERE reason = 'expired' "
				   "AND reserved_delta = -30 AND reference = ?",
				"e1"),
			 1);

	/* an expired reservation cannot be committed; releasing it is done */
	assert_int_equal(finish(f, "e1", "commit", &v), 409);
	efix_assert_error(v, "conflict", "status", "EXPIRED");
	assert_int_equal(finish(f, "e1", "release", &v), 200);
	assert_string_equal(status_of(v), "EXPIRED");
	json_decref(v);
	assert_int_equal(stock_of(f, "TOY-1").on_hand, 100);

	/* past its time but not yet swept: a commit expires it then and there */
	clock_advance(f->clock, 61 * SEC);
	assert_int_equal(finish(f, "e2", "commit", &v), 409);
	efix_assert_error(v, "conflict", "status", "EXPIRED");
	g = stock_of(f, "TOY-1");
	assert_int_equal(g.on_hand, 100);
	assert_int_equal(g.reserved, 0);
	inventory_engine.tick(f->eng, clock_now(f->clock)); /* nothing left to do */
	assert_int_equal(stock_of(f, "TOY-1").reserved, 0);
	assert_invariants(f);
}

static void test_expiry_batches(void **state)
{
	efix *f = *state;
	char id[32];
	set_stock(f, "KT-1", 1000);
	set_stock(f, "BK-2", 1000);
	for (int i = 0; i < 520; i++) {
		snprintf(id, sizeof(id), "b-%d", i);
		assert_int_equal(reserve(f, id, "[{\"sku\":\"KT-1\",\"qty\":1},{\"sku\":\"BK-2\",\"qty\":1}]",
					 10, NULL),
				 201);
	}
	assert_int_equal(stock_of(f, "KT-1").reserved, 520);
	clock_advance(f->clock, 11 * SEC);
	inventory_engine.tick(f->eng, clock_now(f->clock));
	/* one tick does a bounded batch */
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservations WHERE status = ?", "EXPIRED"),
			 500);
	assert_int_equal(stock_of(f, "KT-1").reserved, 20);
	assert_invariants(f);
	inventory_engine.tick(f->eng, clock_now(f->clock));
	assert_int_equal(stock_of(f, "KT-1").reserved, 0);
	assert_int_equal(stock_of(f, "BK-2").reserved, 0);
	assert_invariants(f);
}

/* ---- outbox ------------------------------------------------------------------------------ */

/* The payload of outbox row number k (from 1, oldest first) after skip rows. */
static json_t *outbox_payload(efix *f, int64_t row)
{
	int err = 0;
	store_stmt *st = store_prepare(
		f->store, "SELECT topic, key, payload FROM outbox ORDER BY id LIMIT 1 OFFSET ?", &err);
	assert_non_null(st);
	store_bind_int(st, 1, row);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_string_equal(store_col_text(st, 0), "inventory");
	json_t *v = json_loads(store_col_text(st, 2), 0, NULL);
	assert_non_null(v);
	assert_string_equal(store_col_text(st, 1), json_string_value(json_object_get(v, "sku")));
	store_reset(st);
	return v;
}

static void test_outbox(void **state)
{
	efix *f = *state;
	int64_t n0 = outbox_rows(f);
	assert_int_equal(reserve(f, "o1", "[{\"sku\":\"BK-1\",\"qty\":2},{\"sku\":\"KT-1\",\"qty\":3}]",
				 60, NULL),
			 201);
	assert_int_equal(outbox_rows(f), n0 + 2);
	json_t *p = outbox_payload(f, n0);
	assert_string_equal(json_string_value(json_object_get(p, "type")), "stock_changed");
	assert_string_equal(json_string_value(json_object_get(p, "sku")), "BK-1");
	assert_int_equal(json_integer_value(json_object_get(p, "on_hand")), 100);
	assert_int_equal(json_integer_value(json_object_get(p, "reserved")), 2);
	assert_int_equal(json_integer_value(json_object_get(p, "available")), 98);
	assert_string_equal(json_string_value(json_object_get(p, "reason")), "reserve");
	assert_string_equal(json_string_value(json_object_get(p, "reference")), "o1");
	json_decref(p);
	assert_int_equal(finish(f, "o1", "commit", NULL), 200);
	assert_int_equal(outbox_rows(f), n0 + 4);
	p = outbox_payload(f, n0 + 3);
	assert_string_equal(json_string_value(json_object_get(p, "sku")), "KT-1");
	assert_int_equal(json_integer_value(json_object_get(p, "on_hand")), 97);
	assert_int_equal(json_integer_value(json_object_get(p, "reserved")), 0);
	assert_string_equal(json_string_value(json_object_get(p, "reason")), "commit");
	json_decref(p);

	/* a refused reservation writes nothing */
	int64_t n1 = outbox_rows(f);
	assert_int_equal(reserve(f, "o2", "[{\"sku\":\"BK-1\",\"qty\":1},{\"sku\":\"KT-1\",\"qty\":500}]",
				 60, NULL),
			 409);
	assert_int_equal(outbox_rows(f), n1);

	/* the event shares the change's transaction: when the outbox cannot
	 * take the row, the reservation is not made either */
	assert_int_equal(store_exec(f->store,
				    "CREATE TRIGGER outbox_full BEFORE INSERT ON outbox "
				    "WHEN NEW.key = 'KT-1' BEGIN SELECT RAISE(ABORT, 'full'); END"),
			 0);
	int status = reserve(f, "o3", "[{\"sku\":\"BK-1\",\"qty\":1},{\"sku\":\"KT-1\",\"qty\":1}]",
			     60, NULL);
	assert_true(status >= 500);
	assert_int_equal(stock_of(f, "BK-1").reserved, 0);
	assert_int_equal(stock_of(f, "KT-1").reserved, 0);
	assert_int_equal(outbox_rows(f), n1);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservations WHERE reservation_id = ?",
				"o3"),
			 0);
	int64_t ledger = db_int(f, "SELECT COUNT(*) FROM stock_ledger", NULL);
	json_t *v = call(f, "PUT", "/v1/inventory/KT-1", ADMIN, "{\"on_hand\":50}", &status);
	assert_true(status >= 500);
	json_decref(v);
	assert_int_equal(stock_of(f, "KT-1").on_hand, 97);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM stock_ledger", NULL), ledger);
	assert_int_equal(store_exec(f->store, "DROP TRIGGER outbox_full"), 0);
	assert_int_equal(reserve(f, "o3", "[{\"sku\":\"BK-1\",\"qty\":1},{\"sku\":\"KT-1\",\"qty\":1}]",
				 60, &v),
			 201);
	json_decref(v);
	assert_invariants(f);
}

static void test_low_stock_event(void **state)
{
	efix *f = *state;
	/* default threshold 5: an event when available crosses down to it */
	set_stock(f, "BK-2", 8);
	int64_t lows = db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
			      "%\"low_stock\"%");
	assert_int_equal(reserve(f, "l1", "[{\"sku\":\"BK-2\",\"qty\":2}]", 60, NULL), 201);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
				"%\"low_stock\"%"),
			 lows);
	assert_int_equal(reserve(f, "l2", "[{\"sku\":\"BK-2\",\"qty\":1}]", 60, NULL), 201);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
				"%\"low_stock\"%"),
			 lows + 1);
	json_t *p = outbox_payload(f, outbox_rows(f) - 1);
	assert_string_equal(json_string_value(json_object_get(p, "type")), "low_stock");
	assert_string_equal(json_string_value(json_object_get(p, "sku")), "BK-2");
	assert_int_equal(json_integer_value(json_object_get(p, "available")), 5);
	assert_int_equal(json_integer_value(json_object_get(p, "threshold")), 5);
	json_decref(p);
	/* further down: already low, no new event */
	assert_int_equal(reserve(f, "l3", "[{\"sku\":\"BK-2\",\"qty\":1}]", 60, NULL), 201);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
				"%\"low_stock\"%"),
			 lows + 1);
	/* back up and down again: a new event */
	assert_int_equal(finish(f, "l1", "release", NULL), 200);
	assert_int_equal(reserve(f, "l4", "[{\"sku\":\"BK-2\",\"qty\":3}]", 60, NULL), 201);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
				"%\"low_stock\"%"),
			 lows + 2);

	/* the threshold comes from the configuration */
	inventory_engine.destroy(f->eng);
	assert_int_equal(config_set(f->config, "inventory.low_stock_threshold", "50"), 0);
	f->eng = efix_create_engine(f);
	int64_t toy = stock_of(f, "TOY-1").available;
	assert_true(toy > 50 && toy - 50 <= 50);
	assert_false(stock_of(f, "TOY-1").low_stock);
	assert_int_equal(reserve(f, "l5", "[{\"sku\":\"TOY-1\",\"qty\":50}]", 60, NULL), 201);
	/* GET shows the same threshold */
	assert_true(stock_of(f, "TOY-1").low_stock);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
				"%\"low_stock\"%"),
			 lows + 3);
	assert_invariants(f);
}

/* ---- invariants ---------------------------------------------------------------------- */

static int has_violation(json_t *report, const char *check, const char *sku)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(report, "violations"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "check")), check) == 0 &&
		    strcmp(json_string_value(json_object_get(v, "sku")), sku) == 0)
			return 1;
	}
	return 0;
}

static void test_checker_detects_corruption(void **state)
{
	efix *f = *state;
	assert_int_equal(reserve(f, "k1", "[{\"sku\":\"BK-1\",\"qty\":3}]", 60, NULL), 201);
	assert_invariants(f);
	json_t *v = expect_ok(f, "GET", "/admin/invariants", NULL, 200);
	assert_true(json_is_true(json_object_get(v, "ok")));
	assert_int_equal(json_array_size(json_object_get(v, "violations")), 0);
	json_decref(v);
	expect_error(f, "GET", "/admin/invariants", NULL, NULL, 401, "unauthenticated", NULL, NULL);

	/* a unit reserved behind the engine's back */
	assert_int_equal(store_exec(f->store,
				    "UPDATE stock SET reserved = reserved + 1 WHERE sku = 'BK-1'"),
			 0);
	json_t *report = NULL;
	assert_int_equal(inventory_check_invariants(f->store, &report), ERR_STATE);
	assert_true(json_is_false(json_object_get(report, "ok")));
	assert_true(has_violation(report, "reserved_matches_held", "BK-1"));
	assert_true(has_violation(report, "ledger_sums", "BK-1"));
	assert_false(has_violation(report, "ledger_sums", "KT-1"));
	json_decref(report);
	v = expect_ok(f, "GET", "/admin/invariants", NULL, 200);
	assert_true(json_is_false(json_object_get(v, "ok")));
	assert_true(has_violation(v, "reserved_matches_held", "BK-1"));
	json_decref(v);
	assert_int_equal(inventory_check_invariants(f->store, NULL), ERR_STATE);
	assert_int_equal(store_exec(f->store,
				    "UPDATE stock SET reserved = reserved - 1 WHERE sku = 'BK-1'"),
			 0);
	assert_invariants(f);

	/* on_hand moved by something that is not a set or a commit */
	assert_int_equal(store_exec(f->store,
				    "UPDATE stock SET on_hand = on_hand + 5 WHERE sku = 'KT-1';"
				    "INSERT INTO stock_ledger (sku, delta, reserved_delta, reason, "
				    "reference, at) VALUES ('KT-1', 5, 0, 'reserve', 'x', 0)"),
			 0);
	assert_int_equal(inventory_check_invariants(f->store, &report), ERR_STATE);
	assert_true(has_violation(report, "on_hand_moves", "KT-1"));
	assert_false(has_violation(report, "ledger_sums", "KT-1"));
	json_decref(report);

	/* a ledger entry for a sku that has no stock, a HELD item likewise */
	assert_int_equal(store_exec(f->store,
				    "DELETE FROM stock_ledger WHERE reason = 'reserve' AND sku = 'KT-1';"
				    "UPDATE stock SET on_hand = on_hand - 5 WHERE sku = 'KT-1';"
				    "INSERT INTO stock_ledger (sku, delta, reserved_delta, reason, "
				    "reference, at) VALUES ('GHOST-1', 2, 0, 'set', 'x', 0);"
				    "INSERT INTO reservation_items (reservation_id, sku, qty) "
				    "VALUES ('k1', 'GHOST-2', 4)"),
			 0);
	assert_int_equal(inventory_check_invariants(f->store, &report), ERR_STATE);
	assert_true(has_violation(report, "ledger_without_stock", "GHOST-1"));
	assert_true(has_violation(report, "held_without_stock", "GHOST-2"));
	assert_int_equal(json_array_size(json_object_get(report, "violations")), 2);
	json_decref(report);
}

/* Mostly one of the last 20 reservations, which are more likely HELD. */
static int recent(rng *r, int n)
{
	return rng_below(r, 4) == 0 ? (int)rng_below(r, (uint64_t)n)
				    : n - 1 - (int)rng_below(r, (uint64_t)(n < 20 ? n : 20));
}

/* 2000 random operations (reserve, commit, release, set, time passing with
 * expiry) from a seeded rng; the invariants hold throughout, and every
 * answer is one the contract allows. */
static void test_random_operations(void **state)
{
	efix *f = *state;
	rng *r = rng_new(20251125);
	char ids[2000][16];
	int nids = 0;
	int held = 0, refused = 0, committed = 0;
	for (int op = 0; op < 2000; op++) {
		uint64_t kind = rng_below(r, 100);
		if (kind < 45 || nids == 0) {
			/* reserve 1-3 distinct skus */
			int n = 1 + (int)rng_below(r, 3);
			int start = (int)rng_below(r, NSKUS);
			char items[256] = "[";
			for (int k = 0; k < n; k++) {
				char one[64];
				snprintf(one, sizeof(one), "%s{\"sku\":\"%s\",\"qty\":%d}",
					 k ? "," : "", SKUS[(start + k) % NSKUS],
					 1 + (int)rng_below(r, 15));
				strcat(items, one);
			}
			strcat(items, "]");
			snprintf(ids[nids], sizeof(ids[0]), "rnd-%d", nids);
			int st = reserve(f, ids[nids], items, 1 + (int64_t)rng_below(r, 120), NULL);
			assert_true(st == 201 || st == 409);
			if (st == 201) {
				held++;
				nids++;
			} else {
				refused++;
			}
		} else if (kind < 65) {
			int st = finish(f, ids[recent(r, nids)], "commit", NULL);
			assert_true(st == 200 || st == 409);
			committed += st == 200;
		} else if (kind < 80) {
			int st = finish(f, ids[recent(r, nids)], "release", NULL);
			assert_true(st == 200 || st == 409);
		} else if (kind < 92) {
			clock_advance(f->clock, (int64_t)rng_below(r, 30) * SEC);
			inventory_engine.tick(f->eng, clock_now(f->clock));
		} else if (kind < 97) {
			char path[64], body[64];
			snprintf(path, sizeof(path), "/v1/inventory/%s", SKUS[rng_below(r, NSKUS)]);
			snprintf(body, sizeof(body), "{\"on_hand\":%d}", (int)rng_below(r, 150));
			int st = 0;
			json_decref(call(f, "PUT", path, ADMIN, body, &st));
			assert_true(st == 200 || st == 409);
		} else {
			/* a replay of an earlier reservation never reserves again */
			int64_t before = db_int(f, "SELECT SUM(reserved) FROM stock", NULL);
			int k = (int)rng_below(r, (uint64_t)nids);
			char path[64];
			snprintf(path, sizeof(path), "/v1/reservations/%s", ids[k]);
			json_t *v = expect_ok(f, "GET", path, NULL, 200);
			json_t *items = json_object_get(v, "items");
			char *text = json_dumps(items, JSON_COMPACT);
			int64_t ttl = json_integer_value(json_object_get(v, "ttl_s"));
			json_decref(v);
			assert_int_equal(reserve(f, ids[k], text, ttl, NULL), 201);
			free(text);
			assert_int_equal(db_int(f, "SELECT SUM(reserved) FROM stock", NULL), before);
		}
		if (op % 250 == 249)
			assert_invariants(f);
		for (int s = 0; s < NSKUS && op % 50 == 0; s++)
			assert_true(stock_of(f, SKUS[s]).available >= 0);
	}
	rng_free(r);
	/* the run exercised every path */
	print_message("held %d, refused %d, committed %d\n", held, refused, committed);
	assert_true(held > 100 && refused > 10 && committed > 50);
	assert_true(db_int(f, "SELECT COUNT(*) FROM reservations WHERE status = ?", "EXPIRED") > 10);
	assert_true(db_int(f, "SELECT COUNT(*) FROM reservations WHERE status = ?", "RELEASED") > 10);
	assert_invariants(f);
	/* everything expires in the end, and then nothing is reserved */
	clock_advance(f->clock, 200 * SEC);
	for (int k = 0; k < 5; k++)
		inventory_engine.tick(f->eng, clock_now(f->clock));
	assert_int_equal(db_int(f, "SELECT SUM(reserved) FROM stock", NULL), 0);
	assert_invariants(f);
}

/* ---- threads ------------------------------------------------------------------------------- */

typedef struct racer {
	efix *f;
	int index;
	int held;
	int refused;
	int other;
} racer;

static void *race(void *arg)
{
	racer *rc = arg;
	for (int k = 0;; k++) {
		char body[256];
		snprintf(body, sizeof(body),
			 "{\"reservation_id\":\"t%d-%d\",\"order_id\":\"o\",\"items\":"
			 "[{\"sku\":\"KT-1\",\"qty\":1}],\"ttl_s\":600}",
			 rc->index, k);
		msg_resp resp;
		efix_do(rc->f, NULL, "POST", "/v1/reservations", NULL, ADMIN, NULL, body, &resp);
		int status = resp.status;
		int short_stock = status == 409 && resp.body &&
				  strstr(resp.body, "insufficient_stock") != NULL;
		msg_resp_clear(&resp);
		if (status == 201) {
			rc->held++;
		} else if (short_stock) {
			rc->refused++;
			break;
		} else {
			rc->other++;
			if (rc->other > 100)
				break;
		}
	}
	return NULL;
}

/* Eight threads on one engine and a file database race for 300 units: all
 * are reserved, none twice. */
static void test_threads_never_oversell(void **state)
{
	(void)state;
	efix *f = fixture_new(NULL);
	f->eng = efix_create_engine(f);
	set_stock(f, "KT-1", 300);
	pthread_t th[8];
	racer rs[8];
	for (int i = 0; i < 8; i++) {
		rs[i] = (racer){ .f = f, .index = i };
		assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
	}
	int held = 0, other = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		held += rs[i].held;
		other += rs[i].other;
		assert_int_equal(rs[i].refused, 1);
	}
	assert_int_equal(other, 0);
	assert_int_equal(held, 300);
	figures g = stock_of(f, "KT-1");
	assert_int_equal(g.reserved, 300);
	assert_int_equal(g.available, 0);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservations WHERE status = ?", "HELD"),
			 300);
	assert_invariants(f);
	efix_free(f);
}

/* ---- group commits ---------------------------------------------------------------------- */

typedef struct poster {
	efix *f;
	char path[128]; /* "" for POST /v1/reservations with body */
	char body[512];
	const char *traceparent; /* the request's trace context, or NULL */
	int status;
	char *raw; /* the answer's body, malloc'd */
} poster;

/* The calling thread's trace context, as the daemon host keeps it. */
static _Thread_local trace_ctx tl_trace;

static trace_ctx *thread_trace(void *ud)
{
	(void)ud;
	return &tl_trace;
}

static void *post_one(void *arg)
{
	poster *p = arg;
	if (p->traceparent)
		assert_int_equal(trace_parse(p->traceparent, &tl_trace), 0);
	msg_resp resp;
	efix_do(p->f, NULL, "POST", p->path[0] ? p->path : "/v1/reservations", NULL, ADMIN, NULL,
		p->path[0] ? NULL : p->body, &resp);
	p->status = resp.status;
	p->raw = strndup(resp.body ? resp.body : "", resp.body_len);
	msg_resp_clear(&resp);
	return NULL;
}

static void poster_set(poster *p, efix *f, const char *id, const char *items)
{
	*p = (poster){ .f = f };
	snprintf(p->body, sizeof(p->body),
		 "{\"reservation_id\":\"%s\",\"order_id\":\"ord-%s\",\"items\":%s,"
		 "\"ttl_s\":600}",
		 id, id, items);
}

/* A commit or a release (action) of reservation id. */
static void poster_finish(poster *p, efix *f, const char *id, const char *action)
{
	*p = (poster){ .f = f };
	snprintf(p->path, sizeof(p->path), "/v1/reservations/%s/%s", id, action);
}

static uint64_t counter(efix *f, const char *name)
{
	return metrics_counter_value(f->metrics, name, "");
}

/* Runs the n requests of ps as one group commit, in their order: the
 * engine is held while a thread per request queues it, one after the other
 * (waiting at most 10 s for each), then released, and must run them as one
 * batch. */
static void run_batch(efix *f, poster *ps, size_t n)
{
	uint64_t commits = counter(f, "inventory_group_commits_total");
	uint64_t ops = counter(f, "inventory_group_commit_ops_total");
	pthread_t th[16];
	assert_true(n <= 16);
	inventory_hold(f->eng, 1);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, post_one, &ps[i]), 0);
		for (int waited = 0; inventory_queued(f->eng) < i + 1; waited++) {
			if (waited > 10000)
				fail_msg("only %zu of %zu requests queued", inventory_queued(f->eng),
					 n);
			usleep(1000);
		}
	}
	inventory_hold(f->eng, 0);
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(counter(f, "inventory_group_commits_total"), commits + 1);
	assert_int_equal(counter(f, "inventory_group_commit_ops_total"), ops + n);
}

static void posters_free(poster *ps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ps[i].raw);
}

static int64_t ledger_rows_of(efix *f, const char *reference)
{
	return db_int(f, "SELECT COUNT(*) FROM stock_ledger WHERE reference = ?", reference);
}

static int64_t reservations_with_id(efix *f, const char *id)
{
	return db_int(f, "SELECT COUNT(*) FROM reservations WHERE reservation_id = ?", id);
}

/* One batch with reservations refused for every reason (short on one item,
 * short on the second item of two, an unknown sku) among ones that fit:
 * the refused write nothing, the others are held, and each gets its own
 * answer. */
static void test_batch_refusals(void **state)
{
	efix *f = *state;
	set_stock(f, "KT-1", 5);
	set_stock(f, "BK-1", 10);
	int64_t outbox0 = outbox_rows(f);
	poster ps[5];
	poster_set(&ps[0], f, "r-a", "[{\"sku\":\"KT-1\",\"qty\":2}]");
	poster_set(&ps[1], f, "r-b", "[{\"sku\":\"KT-1\",\"qty\":6}]");
	poster_set(&ps[2], f, "r-c", "[{\"sku\":\"NOPE-1\",\"qty\":1}]");
	poster_set(&ps[3], f, "r-d",
		   "[{\"sku\":\"BK-1\",\"qty\":3},{\"sku\":\"TOY-1\",\"qty\":1000}]");
	poster_set(&ps[4], f, "r-e",
		   "[{\"sku\":\"BK-1\",\"qty\":1},{\"sku\":\"TOY-1\",\"qty\":1}]");
	uint64_t splits = counter(f, "inventory_group_commit_splits_total");
	uint64_t failures = counter(f, "inventory_group_commit_failures_total");
	run_batch(f, ps, 5);
	/* refused before writing: nobody had to be taken out of the batch */
	assert_int_equal(counter(f, "inventory_group_commit_splits_total"), splits);
	assert_int_equal(counter(f, "inventory_group_commit_failures_total"), failures);
	assert_int_equal(ps[0].status, 201);
	assert_int_equal(ps[1].status, 409);
	assert_non_null(strstr(ps[1].raw, "insufficient_stock"));
	assert_int_equal(ps[2].status, 404);
	assert_non_null(strstr(ps[2].raw, "NOPE-1"));
	assert_int_equal(ps[3].status, 409);
	assert_non_null(strstr(ps[3].raw, "TOY-1"));
	assert_int_equal(ps[4].status, 201);
	assert_int_equal(stock_of(f, "KT-1").reserved, 2);
	assert_int_equal(stock_of(f, "BK-1").reserved, 1);
	assert_int_equal(stock_of(f, "TOY-1").reserved, 1);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservations", NULL), 2);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservation_items", NULL), 3);
	assert_int_equal(ledger_rows_of(f, "r-b") + ledger_rows_of(f, "r-c") +
				 ledger_rows_of(f, "r-d"),
			 0);
	assert_int_equal(ledger_rows_of(f, "r-a") + ledger_rows_of(f, "r-e"), 3);
	/* a stock_changed event per item held, nothing for the refused */
	assert_int_equal(outbox_rows(f) - outbox0, 3);
	assert_invariants(f);
	posters_free(ps, 5);
}

/* One reservation_id twice in one batch with the same request, and once
 * more with other items: the first holds it, the same request gets the
 * same 201 body, the other 422; the units are reserved once. */
static void test_batch_duplicate_ids(void **state)
{
	efix *f = *state;
	set_stock(f, "KT-1", 10);
	poster ps[3];
	poster_set(&ps[0], f, "r-dup", "[{\"sku\":\"KT-1\",\"qty\":1}]");
	poster_set(&ps[1], f, "r-dup", "[{\"sku\":\"KT-1\",\"qty\":1}]");
	poster_set(&ps[2], f, "r-dup", "[{\"sku\":\"KT-1\",\"qty\":2}]");
	uint64_t splits = counter(f, "inventory_group_commit_splits_total");
	run_batch(f, ps, 3);
	assert_int_equal(counter(f, "inventory_group_commit_splits_total"), splits);
	assert_int_equal(stock_of(f, "KT-1").reserved, 1);
	assert_int_equal(ps[0].status, 201);
	assert_int_equal(ps[1].status, 201);
	assert_string_equal(ps[0].raw, ps[1].raw);
	assert_int_equal(ps[2].status, 422);
	assert_non_null(strstr(ps[2].raw, "idempotency_mismatch"));
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservations", NULL), 1);
	assert_int_equal(ledger_rows_of(f, "r-dup"), 1);
	assert_invariants(f);
	posters_free(ps, 3);
}

/* Runs ok1, bad (3 units) and ok2 (1 unit each) as one batch of KT-1 with
 * trigger in place, which makes bad fail; the counter named grows by one,
 * the ok ones are held and bad is refused with 500 and leaves no row; then
 * the trigger (named drop) is dropped. Returns KT-1's units reserved. */
static int64_t run_faulty_batch(efix *f, const char *trigger, const char *drop, const char *ok1,
				const char *bad, const char *ok2, const char *counter_name)
{
	assert_int_equal(store_exec(f->store, trigger), 0);
	poster ps[3];
	poster_set(&ps[0], f, ok1, "[{\"sku\":\"KT-1\",\"qty\":1}]");
	poster_set(&ps[1], f, bad, "[{\"sku\":\"KT-1\",\"qty\":3}]");
	poster_set(&ps[2], f, ok2, "[{\"sku\":\"KT-1\",\"qty\":1}]");
	uint64_t before = counter(f, counter_name);
	run_batch(f, ps, 3);
	assert_int_equal(counter(f, counter_name), before + 1);
	assert_int_equal(ps[0].status, 201);
	assert_int_equal(ps[1].status, 500);
	assert_int_equal(ps[2].status, 201);
	assert_int_equal(reservations_with_id(f, bad), 0);
	assert_invariants(f);
	posters_free(ps, 3);
	char sql[64];
	snprintf(sql, sizeof(sql), "DROP TRIGGER %s", drop);
	assert_int_equal(store_exec(f->store, sql), 0);
	return stock_of(f, "KT-1").reserved;
}

/* A reservation whose statement fails inside the shared transaction
 * (here the database refuses its row) cannot be rolled back alone there:
 * the batch runs again without it, then it runs alone and fails alone. A
 * failure in the writes held back to the end of the batch (here its ledger
 * entry) fails the whole transaction: then every op runs alone, and again
 * only the faulty one fails. */
static void test_batch_failure_after_writing(void **state)
{
	efix *f = *state;
	set_stock(f, "KT-1", 10);
	/* the reservation row refused: taken out of the batch */
	assert_int_equal(run_faulty_batch(f,
					  "CREATE TRIGGER boom BEFORE INSERT ON reservations "
					  "WHEN NEW.reservation_id = 'r-boom' "
					  "BEGIN SELECT RAISE(ABORT, 'boom'); END",
					  "boom", "r-ok1", "r-boom", "r-ok2",
					  "inventory_group_commit_splits_total"),
			 2);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservations", NULL), 2);
	/* without the fault it goes through, as a request of its own */
	assert_int_equal(reserve(f, "r-boom", "[{\"sku\":\"KT-1\",\"qty\":3}]", 600, NULL), 201);
	assert_int_equal(stock_of(f, "KT-1").reserved, 5);
	assert_invariants(f);
	/* a held-back write (the ledger entry) refused: the whole batch fails */
	assert_int_equal(run_faulty_batch(f,
					  "CREATE TRIGGER boom2 BEFORE INSERT ON stock_ledger "
					  "WHEN NEW.reference = 'r-boom2' "
					  "BEGIN SELECT RAISE(ABORT, 'boom'); END",
					  "boom2", "r-ok3", "r-boom2", "r-ok4",
					  "inventory_group_commit_failures_total"),
			 7);
}

/* Reservations of one sku held back in a batch (read once, written at the
 * end), a low-stock crossing among them, and a release and a commit in the
 * same batch, which find the database as the batch made it so far (the
 * release undoes a reservation of the same batch), then another
 * reservation reading the stock after them. */
static void test_batch_mixed(void **state)
{
	efix *f = *state;
	set_stock(f, "KT-1", 10);
	assert_int_equal(reserve(f, "r-old", "[{\"sku\":\"KT-1\",\"qty\":1}]", 600, NULL), 201);
	int64_t low0 = db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
			      "%\"low_stock\"%");
	poster ps[5];
	poster_set(&ps[0], f, "r-m1", "[{\"sku\":\"KT-1\",\"qty\":3}]"); /* 9 -> 6 */
	poster_set(&ps[1], f, "r-m2", "[{\"sku\":\"KT-1\",\"qty\":2}]"); /* 6 -> 4: low */
	poster_finish(&ps[2], f, "r-m1", "release");                          /* 4 -> 7 */
	poster_finish(&ps[3], f, "r-old", "commit");                          /* on_hand 9 */
	poster_set(&ps[4], f, "r-m3", "[{\"sku\":\"KT-1\",\"qty\":1}]"); /* 7 -> 6 */
	uint64_t splits = counter(f, "inventory_group_commit_splits_total");
	uint64_t failures = counter(f, "inventory_group_commit_failures_total");
	run_batch(f, ps, 5);
	/* one transaction for all five, nobody taken out */
	assert_int_equal(counter(f, "inventory_group_commit_splits_total"), splits);
	assert_int_equal(counter(f, "inventory_group_commit_failures_total"), failures);
	assert_int_equal(ps[0].status, 201);
	assert_int_equal(ps[1].status, 201);
	assert_int_equal(ps[2].status, 200);
	assert_non_null(strstr(ps[2].raw, "RELEASED"));
	assert_int_equal(ps[3].status, 200);
	assert_non_null(strstr(ps[3].raw, "COMMITTED"));
	assert_int_equal(ps[4].status, 201);
	figures g = stock_of(f, "KT-1");
	assert_int_equal(g.on_hand, 9);
	assert_int_equal(g.reserved, 3);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
				"%\"low_stock\"%") - low0,
			 1);
	/* the event of each reservation tells the figures it left */
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?",
				"%\"reserved\":6,\"available\":4,\"reason\":\"reserve\","
				"\"reference\":\"r-m2\"%"),
			 1);
	assert_int_equal(ledger_rows_of(f, "r-m1"), 2);
	assert_int_equal(ledger_rows_of(f, "r-m3"), 1);
	assert_int_equal(db_int(f, "SELECT COUNT(*) FROM reservation_items WHERE "
				   "reservation_id = ?",
				"r-m3"),
			 1);
	assert_invariants(f);
	posters_free(ps, 5);
}

/* Each event of a batch carries the trace context of the request that
 * caused it, not that of the thread that happened to lead the batch. */
static void test_batch_traceparent(void **state)
{
	efix *f = *state;
	f->ctx.trace = thread_trace;
	static const char *const tps[3] = {
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01",
		"00-2cf7651916cd43dd8448eb211c80319c-d7ad6b7169203331-01",
	};
	poster ps[3];
	for (int i = 0; i < 3; i++) {
		char id[16];
		snprintf(id, sizeof(id), "r-t%d", i);
		poster_set(&ps[i], f, id, "[{\"sku\":\"KT-1\",\"qty\":1}]");
		ps[i].traceparent = tps[i];
	}
	run_batch(f, ps, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ps[i].status, 201);
		char like[64];
		snprintf(like, sizeof(like), "%%\"reference\":\"r-t%d\"%%", i);
		int err = 0;
		store_stmt *st = store_prepare(
			f->store, "SELECT traceparent FROM outbox WHERE payload LIKE ?", &err);
		assert_non_null(st);
		assert_int_equal(store_bind_text(st, 1, like), 0);
		assert_int_equal(store_step(st), STORE_ROW);
		assert_string_equal(store_col_text(st, 0), tps[i]);
		assert_int_equal(store_step(st), STORE_DONE);
		store_reset(st);
	}
	f->ctx.trace = NULL;
	posters_free(ps, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_stock, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_get_and_set, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_set_below_reserved, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_reserve, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_reserve_validation, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_idempotent_replay, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_replay_stored_body, setup, efix_teardown),
		cmocka_unit_test(test_migrate_existing),
		cmocka_unit_test_setup_teardown(test_commit_and_release, setup, efix_teardown),
		cmocka_unit_test(test_state_machine),
		cmocka_unit_test_setup_teardown(test_expiry, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_batches, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_outbox, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_low_stock_event, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_checker_detects_corruption, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_random_operations, setup, efix_teardown),
		cmocka_unit_test(test_threads_never_oversell),
		cmocka_unit_test_setup_teardown(test_batch_refusals, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_batch_duplicate_ids, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_batch_failure_after_writing, setup,
						efix_teardown),
		cmocka_unit_test_setup_teardown(test_batch_mixed, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_batch_traceparent, setup, efix_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
