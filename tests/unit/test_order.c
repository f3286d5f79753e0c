/* Tests for services/order and services/saga: the real order, catalog,
 * cart, inventory, payment, stripe-sim and paypal-sim engines in one process, on one
 * virtual clock, each on its own SQLite file. An engine's outbound call
 * (ctx->call) goes to the engine that the gateway's default route table
 * names for the path (stripe.base_url to the simulator), as a copy of the
 * request, so identities are signed and checked as on the platform. Per
 * service a fault can be set: down (nothing sent), 503, or the reply lost
 * after the callee acted. The order engine's own calls can be made to die
 * at the Nth: delivered with the reply lost, or not sent, and nothing after
 * it is sent either, as when the process is killed there; the test then
 * throws the engine and its store connection away and starts a new one on
 * the same file.
 *
 * Covered: a cart order confirmed (stock committed, payment captured once,
 * cart emptied, order.confirmed in the outbox, the steps); explicit items
 * priced by the catalog; the confirmation inline; a decline (stock
 * released, nothing captured); out of stock (no payment at all); a changed
 * price (409 price_changed, no order); idempotency (the same key and body,
 * another body, no key, eight concurrent duplicates: one order, one
 * charge); payment unreachable (202 AWAITING_PAYMENT, retried from the
 * queue with growing delays, then confirmed, charged once), also with the
 * replies lost; the reservation's TTL running out (CANCELLED expired);
 * cancelling (queued, awaiting payment, confirmed: 409; another user's:
 * 403); listing and paging; the admin routes; the saga's and the order's
 * illegal edges refused; a crash at every call of the saga, both ways,
 * ending COMPLETED with one charge and consistent stock; a second
 * instance taking over a dead one's saga once its lease ran out; and an
 * instance whose lease was taken while it waited on a call writing nothing
 * more. PayPal (the paypal-sim engine at paypal.base_url): a PayPal order
 * confirmed, declined at authorisation and at capture, a capture whose
 * reply is lost asked again under the same request id (captured once), and
 * a PayPal capture refunded when the commit comes too late. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "net/msg.h"
#include "ops/audit.h"
#include "services/identity.h"
#include "services/inventory.h"
#include "services/order.h"
#include "services/routes.h"
#include "services/saga.h"
#include "store/store.h"

#include "efix.h"

#define T0 EFIX_T0
#define SEC 1000000LL
#define ADMIN_AUTH "Bearer " EFIX_ADMIN
#define GW_URL "http://gateway.test"
#define STRIPE_URL "http://stripe.test"
#define PAYPAL_URL "http://paypal.test"
#define TTL_S 120
#define MARGIN_S 20

static const char SEED[] =
	"[{\"sku\":\"BOOK-1\",\"name\":\"A Book\",\"description\":\"\",\"category\":\"books\","
	"\"price_cents\":1299,\"currency\":\"USD\"},"
	"{\"sku\":\"MUG-2\",\"name\":\"A Mug\",\"description\":\"\",\"category\":\"kitchen\","
	"\"price_cents\":850,\"currency\":\"USD\"},"
	"{\"sku\":\"RARE-3\",\"name\":\"A Rarity\",\"description\":\"\",\"category\":\"art\","
	"\"price_cents\":5000,\"currency\":\"USD\"}]";

/* ---- the platform in one process ------------------------------------------- */

enum svc { S_STRIPE, S_PAYPAL, S_CATALOG, S_INVENTORY, S_CART, S_PAYMENT, S_ORDER, NSVC };
static const char *const SVC[NSVC] = { "stripe-sim", "paypal-sim", "catalog", "inventory",
				       "cart",       "payment",    "order" };

enum fault { F_NONE, F_DOWN, F_503, F_LOST };

typedef struct plat plat;

typedef struct caller {
	plat *p;
	int who;
} caller;

struct plat {
	efix *f[NSVC];
	caller callers[NSVC];
	clock_src *clock;
	routes *table;
	pthread_mutex_t mu;
	int fault[NSVC];
	int delivered[NSVC]; /* requests that reached each engine */
	int order_calls;     /* the order engine's outbound calls */
	int crash_at;        /* its call number that kills it (0: none) */
	int crash_sent;      /* that call is delivered (its reply lost) */
	int crashed;
	const char *steal_on; /* a path: once the order calls it, order-9 takes its lease */
	int slow_us;          /* each of the order engine's calls takes this long more */
	int in_flight;        /* the order engine's calls under way */
	int max_in_flight;    /* and the most there were at once */
};

static int svc_index(const char *name)
{
	for (int i = 0; i < NSVC; i++)
		if (strcmp(SVC[i], name) == 0)
			return i;
	return -1;
}

static void copy_req(const msg_req *in, msg_req *out)
{
	char target[1024];
	snprintf(target, sizeof(target), "%s%s%s", in->path, in->query ? "?" : "",
		 in->query ? in->query : "");
	assert_int_equal(msg_req_init(out, in->method, target), 0);
	for (int i = 0; i < in->nheaders; i++)
		assert_int_equal(msg_req_add_header(out, in->headers[i].name, in->headers[i].value),
				 0);
	if (in->body)
		assert_int_equal(msg_req_set_body(out, in->body, in->body_len), 0);
}

/* ctx->call of every engine: the gateway's routing (or the Stripe URL),
 * faults, and the order engine's death. */
static int plat_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	caller *c = ud;
	plat *p = c->p;
	int to = -1;
	if (strcmp(target, STRIPE_URL) == 0) {
		to = S_STRIPE;
	} else if (strcmp(target, PAYPAL_URL) == 0) {
		to = S_PAYPAL;
	} else if (strcmp(target, GW_URL) == 0) {
		const route_entry *e = routes_match(p->table, req->path);
		if (!e) {
			msg_resp_error(resp, 404, "not_found", "no route", NULL);
			return 0;
		}
		to = svc_index(e->targets[0].service);
	}
	if (to < 0)
		return ERR_UNAVAILABLE;
	pthread_mutex_lock(&p->mu);
	int deliver = 1, lose = 0;
	if (c->who == S_ORDER) {
		if (p->crashed) {
			deliver = 0;
		} else if (++p->order_calls == p->crash_at) {
			p->crashed = 1;
			deliver = p->crash_sent;
			lose = 1;
		}
	}
	int fault = p->fault[to];
	if (deliver && fault != F_DOWN && fault != F_503)
		p->delivered[to]++;
	int slow = c->who == S_ORDER ? p->slow_us : 0;
	if (slow && ++p->in_flight > p->max_in_flight)
		p->max_in_flight = p->in_flight;
	pthread_mutex_unlock(&p->mu);
	if (slow) {
		usleep((useconds_t)slow);
		pthread_mutex_lock(&p->mu);
		p->in_flight--;
		pthread_mutex_unlock(&p->mu);
	}
	if (!deliver || fault == F_DOWN)
		return ERR_UNAVAILABLE;
	if (fault == F_503) {
		msg_resp_error(resp, 503, "unavailable", "injected", NULL);
		return 0;
	}
	msg_req copy;
	copy_req(req, &copy);
	p->f[to]->def->handle(p->f[to]->eng, &copy, resp);
	msg_req_clear(&copy);
	if (c->who == S_ORDER && p->steal_on && strstr(req->path, p->steal_on)) {
		/* The call took so long that the lease ran out and another
		 * instance took the saga. */
		p->steal_on = NULL;
		store *db = p->f[S_ORDER]->store;
		int n = 0;
		char ids[1][SAGA_ID_MAX];
		assert_int_equal(store_runf(db, "UPDATE order_queue SET lease_until = 0", NULL, ""), 0);
		assert_int_equal(saga_due(db, INT64_MAX - 1, 1, ids, &n), 0);
		assert_int_equal(n, 1);
		saga_lease thief = { "order-9", "life_thief" };
		int64_t now = clock_now(p->clock);
		assert_int_equal(saga_claim(db, ids[0], &thief, now + 30 * SEC, now), 0);
	}
	if (fault == F_LOST || lose) {
		msg_resp_clear(resp);
		msg_resp_init(resp);
		return ERR_TIMEOUT;
	}
	return 0;
}

static void set_fault(plat *p, int svc, int fault)
{
	pthread_mutex_lock(&p->mu);
	p->fault[svc] = fault;
	pthread_mutex_unlock(&p->mu);
}

static void config_order(efix *f, int confirm_inline)
{
	static const char *const kv[][2] = {
		{ "order.reservation_ttl_s", "120" }, { "order.expiry_margin_s", "20" },
		{ "order.retry_base_ms", "200" },     { "order.retry_cap_ms", "4000" },
		{ "order.call_timeout_ms", "1000" },  { "order.lease_ms", "5000" },
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		assert_int_equal(config_set(f->config, kv[i][0], kv[i][1]), 0);
	assert_int_equal(config_set(f->config, "order.confirm_inline", confirm_inline ? "1" : "0"),
			 0);
}

static plat *plat_new(int confirm_inline)
{
	plat *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	pthread_mutex_init(&p->mu, NULL);
	char err[256] = "";
	p->table = routes_parse(routes_default(), err, sizeof(err));
	assert_non_null(p->table);
	p->f[S_ORDER] = efix_new("order", NULL, T0, 42);
	p->clock = p->f[S_ORDER]->clock;
	for (int i = 0; i < NSVC; i++) {
		if (i != S_ORDER)
			p->f[i] = efix_new(SVC[i], NULL, T0, 100 + (uint64_t)i);
		efix *f = p->f[i];
		f->ctx.clock = p->clock;
		p->callers[i] = (caller){ .p = p, .who = i };
		f->ctx.call = plat_call;
		f->ctx.call_ud = &p->callers[i];
		f->ctx.gateway_url = GW_URL;
	}
	efix_seed(p->f[S_CATALOG], SEED);
	efix_seed(p->f[S_INVENTORY], SEED);
	assert_int_equal(config_set(p->f[S_PAYMENT]->config, "stripe.base_url", STRIPE_URL), 0);
	assert_int_equal(config_set(p->f[S_PAYMENT]->config, "stripe.secret_key", "sk_test_order"),
			 0);
	assert_int_equal(config_set(p->f[S_PAYMENT]->config, "paypal.base_url", PAYPAL_URL), 0);
	assert_int_equal(config_set(p->f[S_PAYMENT]->config, "paypal.client_id", "order-test"), 0);
	assert_int_equal(config_set(p->f[S_PAYMENT]->config, "paypal.secret", "order-secret"), 0);
	config_order(p->f[S_ORDER], confirm_inline);
	for (int i = 0; i < NSVC; i++)
		p->f[i]->eng = efix_create_engine(p->f[i]);
	return p;
}

static void plat_free(plat *p)
{
	if (!p)
		return;
	/* The order engine first: it is the one that calls the others. */
	for (int i = NSVC - 1; i >= 0; i--)
		efix_free(p->f[i]);
	routes_free(p->table);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int teardown(void **state)
{
	plat_free(*state);
	return 0;
}

static int setup_queued(void **state)
{
	*state = plat_new(0);
	return 0;
}

static int setup_inline(void **state)
{
	*state = plat_new(1);
	return 0;
}

/* ---- requests -------------------------------------------------------------- */

enum who { AS_ANON, AS_USER, AS_SERVICE, AS_ADMIN };

/* One request straight to engine svc, as who (sub for a user), with an
 * Idempotency-Key when key is not NULL. Returns the parsed answer and the
 * status; *raw (when not NULL) gets a copy of the body bytes. */
static json_t *req_full(plat *p, int svc, const char *method, const char *path, enum who who,
			const char *sub, const char *key, const char *body, int *status,
			char **raw, msg_resp *keep)
{
	efix *f = p->f[svc];
	msg_req req;
	msg_resp resp;
	assert_int_equal(msg_req_init(&req, method, path), 0);
	if (who == AS_USER || who == AS_SERVICE) {
		char ident[IDENTITY_MAX];
		/* Signed on the shared clock (the order fixture's own). */
		efix_sign(p->f[S_ORDER], who == AS_USER ? IDENTITY_USER : IDENTITY_SERVICE, sub,
			  NULL, ident);
		assert_int_equal(msg_req_add_header(&req, IDENTITY_HEADER, ident), 0);
	} else if (who == AS_ADMIN) {
		assert_int_equal(msg_req_add_header(&req, "Authorization", ADMIN_AUTH), 0);
	}
	if (key)
		assert_int_equal(msg_req_add_header(&req, "Idempotency-Key", key), 0);
	if (body) {
		assert_int_equal(msg_req_add_header(&req, "Content-Type", "application/json"), 0);
		assert_int_equal(msg_req_set_body(&req, body, strlen(body)), 0);
	}
	msg_resp_init(&resp);
	f->def->handle(f->eng, &req, &resp);
	msg_req_clear(&req);
	*status = resp.status;
	if (raw)
		*raw = strndup(resp.body ? resp.body : "", resp.body_len);
	json_t *v = efix_json(&resp);
	if (keep)
		*keep = resp;
	else
		msg_resp_clear(&resp);
	return v;
}

static json_t *req_as(plat *p, int svc, const char *method, const char *path, enum who who,
		      const char *sub, const char *body, int want)
{
	int status;
	char *raw = NULL;
	json_t *v = req_full(p, svc, method, path, who, sub, NULL, body, &status, &raw, NULL);
	if (want && status != want)
		fail_msg("%s %s: status %d, expected %d: %s", method, path, status, want, raw);
	free(raw);
	return v;
}

static json_t *place(plat *p, const char *user, const char *key, const char *body, int want)
{
	int status;
	char *raw = NULL;
	json_t *v = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, user, key, body, &status,
			     &raw, NULL);
	if (want && status != want)
		fail_msg("POST /v1/orders: status %d, expected %d: %s", status, want, raw);
	free(raw);
	return v;
}

static json_t *get_order(plat *p, const char *user, const char *id)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/orders/%s", id);
	return req_as(p, S_ORDER, "GET", path, AS_USER, user, NULL, 200);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s)
		fail_msg("no string \"%s\"", key);
	return s;
}

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		fail_msg("no integer \"%s\"", key);
	return (long long)json_integer_value(v);
}

/* The order, asserting its status and (when not NULL) cancel_reason. */
static json_t *expect_order(plat *p, const char *user, const char *id, const char *status,
			    const char *reason)
{
	json_t *o = get_order(p, user, id);
	assert_string_equal(jstr(o, "status"), status);
	if (reason)
		assert_string_equal(jstr(o, "cancel_reason"), reason);
	return o;
}

static const char *saga_state_of(json_t *order)
{
	return jstr(json_object_get(order, "saga"), "state");
}

/* The step called name of an order's saga, or NULL. */
static json_t *step_of(json_t *order, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(json_object_get(order, "saga"), "steps"), i, s)
		if (strcmp(jstr(s, "name"), name) == 0)
			return s;
	return NULL;
}

/* Asserts the status of the step called name of an order's saga. */
static void assert_step(json_t *order, const char *name, const char *status)
{
	json_t *s = step_of(order, name);
	if (!s)
		fail_msg("no step %s", name);
	assert_string_equal(jstr(s, "status"), status);
}

/* Copies the order's id into id and drops the order. */
static void take_id(json_t *order, char *id, size_t len)
{
	snprintf(id, len, "%s", jstr(order, "order_id"));
	json_decref(order);
}

static void put_cart(plat *p, const char *user, const char *sku, int qty)
{
	char path[128], body[32];
	snprintf(path, sizeof(path), "/v1/cart/items/%s", sku);
	snprintf(body, sizeof(body), "{\"qty\":%d}", qty);
	json_decref(req_as(p, S_CART, "PUT", path, AS_USER, user, body, 200));
}

static size_t cart_lines(plat *p, const char *user)
{
	json_t *c = req_as(p, S_CART, "GET", "/v1/cart", AS_USER, user, NULL, 200);
	size_t n = json_array_size(json_object_get(c, "items"));
	json_decref(c);
	return n;
}

static void stock(plat *p, const char *sku, long long *on_hand, long long *reserved)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/inventory/%s", sku);
	json_t *v = req_as(p, S_INVENTORY, "GET", path, AS_ANON, NULL, NULL, 200);
	*on_hand = jint(v, "on_hand");
	*reserved = jint(v, "reserved");
	json_decref(v);
}

static void set_stock(plat *p, const char *sku, int on_hand)
{
	char path[128], body[48];
	snprintf(path, sizeof(path), "/v1/inventory/%s", sku);
	snprintf(body, sizeof(body), "{\"on_hand\":%d}", on_hand);
	json_decref(req_as(p, S_INVENTORY, "PUT", path, AS_ADMIN, NULL, body, 200));
}

static long long stripe_stat(plat *p, const char *name)
{
	json_t *v = req_as(p, S_STRIPE, "GET", "/admin/stripe/stats", AS_ADMIN, NULL, NULL, 200);
	long long n = jint(v, name);
	json_decref(v);
	return n;
}

static long long paypal_stat(plat *p, const char *name)
{
	json_t *v = req_as(p, S_PAYPAL, "GET", "/admin/paypal/stats", AS_ADMIN, NULL, NULL, 200);
	long long n = jint(v, name);
	json_decref(v);
	return n;
}

/* The payment service's status of the order's payment, "NONE" when it has
 * none. Copied into buf. */
static const char *payment_status(plat *p, json_t *order, char *buf, size_t len)
{
	const char *pid = jstr(json_object_get(order, "payment"), "payment_id");
	char path[128];
	snprintf(path, sizeof(path), "/v1/payments/%s", pid);
	int status;
	json_t *v = req_full(p, S_PAYMENT, "GET", path, AS_SERVICE, "order", NULL, NULL, &status,
			     NULL, NULL);
	snprintf(buf, len, "%s", status == 404 ? "NONE" : jstr(v, "status"));
	json_decref(v);
	return buf;
}

static long long count_rows(plat *p, const char *sql)
{
	store *s = p->f[S_ORDER]->store;
	int rc = 0;
	store_stmt *st = store_prepare(s, sql, &rc);
	assert_non_null(st);
	assert_int_equal(store_step(st), STORE_ROW);
	long long n = store_col_int(st, 0);
	store_reset(st);
	return n;
}

static void tick_all(plat *p)
{
	int64_t now = clock_now(p->clock);
	p->f[S_INVENTORY]->def->tick(p->f[S_INVENTORY]->eng, now);
	p->f[S_ORDER]->def->tick(p->f[S_ORDER]->eng, now);
}

/* Ticks (the clock moving step_us between ticks) until the order queue is
 * empty: every saga finished. */
static void settle(plat *p, int64_t step_us)
{
	for (int i = 0; i < 2000; i++) {
		tick_all(p);
		if (count_rows(p, "SELECT COUNT(*) FROM order_queue") == 0)
			return;
		clock_advance(p->clock, step_us);
	}
	fail_msg("sagas still queued after 2000 ticks");
}

static void assert_stock_consistent(plat *p)
{
	json_t *report = NULL;
	int rc = inventory_check_invariants(p->f[S_INVENTORY]->store, &report);
	if (rc != 0) {
		char *s = json_dumps(report, 0);
		fail_msg("inventory invariants: %s", s);
	}
	json_decref(report);
}

/* The order in its final state, checked against the other services: a
 * confirmed order has its payment captured and its stock committed; a
 * cancelled one holds neither money nor stock. */
static void assert_settled(plat *p, const char *user, const char *id, const char *status)
{
	json_t *o = get_order(p, user, id);
	assert_string_equal(jstr(o, "status"), status);
	char pay[32];
	payment_status(p, o, pay, sizeof(pay));
	if (strcmp(status, "CONFIRMED") == 0) {
		assert_string_equal(saga_state_of(o), "COMPLETED");
		assert_string_equal(pay, "CAPTURED");
	} else {
		assert_string_equal(saga_state_of(o), "COMPENSATED");
		assert_true(strcmp(pay, "NONE") == 0 || strcmp(pay, "VOIDED") == 0 ||
			    strcmp(pay, "DECLINED") == 0 || strcmp(pay, "REFUNDED") == 0);
	}
	json_decref(o);
	assert_stock_consistent(p);
}

#define CARD "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"}}"
#define ITEMS(token, items) \
	"{\"payment\":{\"method\":\"card\",\"token\":\"" token "\"},\"items\":" items "}"

/* ---- the happy paths ---------------------------------------------------------------- */

static void test_cart_order_confirmed(void **state)
{
	plat *p = *state;
	put_cart(p, "usr_alice", "BOOK-1", 2);
	put_cart(p, "usr_alice", "MUG-2", 1);
	json_t *o = place(p, "usr_alice", "k-1", CARD, 201);
	/* Stock held and payment authorized here; the processor does the rest. */
	assert_string_equal(jstr(o, "status"), "PENDING");
	assert_string_equal(saga_state_of(o), "CONFIRMING");
	assert_string_equal(jstr(o, "source"), "cart");
	assert_int_equal(jint(o, "total_cents"), 2 * 1299 + 850);
	assert_string_equal(jstr(o, "currency"), "USD");
	assert_string_equal(jstr(o, "user_id"), "usr_alice");
	assert_null(json_object_get(o, "cancel_reason"));
	json_t *first = json_array_get(json_object_get(o, "items"), 0);
	assert_string_equal(jstr(first, "sku"), "BOOK-1");
	assert_int_equal(jint(first, "qty"), 2);
	assert_int_equal(jint(first, "price_cents"), 1299);
	assert_int_equal(jint(first, "line_total_cents"), 2598);
	assert_step(o, "enqueue", "SUCCEEDED");
	assert_null(step_of(o, "capture"));
	char id[64];
	take_id(o, id, sizeof(id));
	long long on_hand, reserved;
	stock(p, "BOOK-1", &on_hand, &reserved);
	assert_int_equal(on_hand, 100);
	assert_int_equal(reserved, 2);
	assert_int_equal(cart_lines(p, "usr_alice"), 2);

	tick_all(p);
	o = expect_order(p, "usr_alice", id, "CONFIRMED", NULL);
	assert_string_equal(saga_state_of(o), "COMPLETED");
	static const char *const steps[] = { "reserve", "authorize", "enqueue", "capture",
					     "commit",  "notify",    "clear_cart" };
	json_t *arr = json_object_get(json_object_get(o, "saga"), "steps");
	assert_int_equal(json_array_size(arr), 7);
	for (size_t i = 0; i < 7; i++) {
		json_t *s = json_array_get(arr, i);
		assert_string_equal(jstr(s, "name"), steps[i]);
		assert_string_equal(jstr(s, "status"), "SUCCEEDED");
		assert_int_equal(jint(s, "attempts"), 1);
		assert_non_null(json_string_value(json_object_get(s, "at")));
	}
	json_decref(o);
	stock(p, "BOOK-1", &on_hand, &reserved);
	assert_int_equal(on_hand, 98);
	assert_int_equal(reserved, 0);
	assert_int_equal(cart_lines(p, "usr_alice"), 0);
	assert_int_equal(stripe_stat(p, "authorizations"), 1);
	assert_int_equal(stripe_stat(p, "captures"), 1);
	assert_int_equal(stripe_stat(p, "captured_amount"), 2 * 1299 + 850);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM outbox WHERE payload LIKE "
				       "'%\"type\":\"order.confirmed\"%'"),
			 1);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM order_queue"), 0);
	assert_settled(p, "usr_alice", id, "CONFIRMED");
}

static void test_items_order_inline(void **state)
{
	plat *p = *state;
	put_cart(p, "usr_bob", "MUG-2", 1);
	/* Explicit items: priced by the catalog; the cart is left alone. */
	json_t *o = place(p, "usr_bob", "k-items",
			  ITEMS("tok_visa", "[{\"sku\":\"RARE-3\",\"qty\":1},{\"sku\":\"BOOK-1\","
					    "\"qty\":3}]"),
			  201);
	/* confirm_inline: confirmed before the answer. */
	assert_string_equal(jstr(o, "status"), "CONFIRMED");
	assert_string_equal(saga_state_of(o), "COMPLETED");
	assert_string_equal(jstr(o, "source"), "items");
	assert_int_equal(jint(o, "total_cents"), 5000 + 3 * 1299);
	assert_null(step_of(o, "clear_cart"));
	char id[64];
	take_id(o, id, sizeof(id));
	assert_int_equal(cart_lines(p, "usr_bob"), 1);
	assert_int_equal(stripe_stat(p, "captured_amount"), 5000 + 3 * 1299);
	assert_settled(p, "usr_bob", id, "CONFIRMED");

	/* A sku the catalog does not know: 404 naming it, no order. */
	int status;
	json_t *v = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_bob", "k-unknown",
			     ITEMS("tok_visa", "[{\"sku\":\"NOPE-9\",\"qty\":1}]"), &status, NULL,
			     NULL);
	assert_int_equal(status, 404);
	efix_assert_error(v, "not_found", "sku", "NOPE-9");
	/* The catalog down: 503, no order. */
	set_fault(p, S_CATALOG, F_DOWN);
	v = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_bob", "k-down",
		     ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":1}]"), &status, NULL, NULL);
	assert_int_equal(status, 503);
	efix_assert_error(v, "unavailable", "service", "catalog");
	set_fault(p, S_CATALOG, F_NONE);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM orders"), 1);
}

/* Order ids sort by the time they were made (the order's rows, its
 * reservation and its payment go in at the end of their keys), even within
 * one millisecond's ids only by chance; the payment is named after it. */
static void test_order_ids_sort_by_time(void **state)
{
	plat *p = *state;
	static const int64_t gaps_us[] = { 0, 1000, 2 * SEC, 3600 * SEC };
	char prev[64] = "";
	for (size_t i = 0; i < sizeof(gaps_us) / sizeof(gaps_us[0]); i++) {
		clock_advance(p->clock, gaps_us[i]);
		char key[32];
		snprintf(key, sizeof(key), "k-sorted-%zu", i);
		json_t *o = place(p, "usr_sid", key,
				  ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":1}]"), 201);
		char pay[64];
		snprintf(pay, sizeof(pay), "%s", jstr(json_object_get(o, "payment"), "payment_id"));
		char id[64];
		take_id(o, id, sizeof(id));
		assert_int_equal(strlen(id), strlen("ord_") + 20);
		assert_true(strncmp(id, "ord_", 4) == 0);
		assert_true(strcmp(prev, id) < 0);
		assert_string_equal(pay + 4, id + 4);
		snprintf(prev, sizeof(prev), "%s", id);
	}
}

static void test_bad_requests(void **state)
{
	plat *p = *state;
	int status;
	json_t *v = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_c", NULL, CARD, &status,
			     NULL, NULL);
	assert_int_equal(status, 400);
	efix_assert_error(v, "invalid_argument", "field", "Idempotency-Key");
	v = req_full(p, S_ORDER, "POST", "/v1/orders", AS_ANON, NULL, "k", CARD, &status, NULL, NULL);
	assert_int_equal(status, 401);
	json_decref(v);
	static const struct {
		const char *body, *field;
	} bad[] = {
		{ "{}", "payment" },
		{ "{\"payment\":{\"method\":\"cash\",\"token\":\"x\"}}", "payment.method" },
		{ "{\"payment\":{\"method\":\"card\"}}", "payment.token" },
		{ ITEMS("tok_visa", "[]"), "items" },
		{ ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":0}]"), "items[0].qty" },
		{ ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":1},{\"sku\":\"BOOK-1\",\"qty\":2}]"),
		  "items[1].sku" },
		{ CARD, "items" }, /* the cart is empty */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_c", "k-bad", bad[i].body,
			     &status, NULL, NULL);
		if (status != 400)
			fail_msg("%s: status %d", bad[i].body, status);
		efix_assert_error(v, "invalid_argument", "field", bad[i].field);
	}
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM orders"), 0);
}

/* ---- failures ------------------------------------------------------------------------ */

static void test_declined(void **state)
{
	plat *p = *state;
	put_cart(p, "usr_dan", "BOOK-1", 1);
	json_t *o = place(p, "usr_dan", "k-d",
			  "{\"payment\":{\"method\":\"card\",\"token\":\"tok_chargeDeclined\"}}", 201);
	assert_string_equal(jstr(o, "status"), "CANCELLED");
	assert_string_equal(jstr(o, "cancel_reason"), "payment_declined");
	assert_string_equal(saga_state_of(o), "COMPENSATED");
	json_t *auth = step_of(o, "authorize");
	assert_string_equal(jstr(auth, "status"), "FAILED");
	assert_non_null(strstr(jstr(auth, "detail"), "generic_decline"));
	assert_step(o, "release", "SUCCEEDED");
	assert_null(step_of(o, "void"));
	assert_null(step_of(o, "capture"));
	char id[64];
	take_id(o, id, sizeof(id));
	long long on_hand, reserved;
	stock(p, "BOOK-1", &on_hand, &reserved);
	assert_int_equal(on_hand, 100);
	assert_int_equal(reserved, 0);
	assert_int_equal(stripe_stat(p, "captures"), 0);
	assert_int_equal(cart_lines(p, "usr_dan"), 1);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM outbox WHERE payload LIKE "
				       "'%\"type\":\"order.cancelled\"%'"),
			 1);
	assert_settled(p, "usr_dan", id, "CANCELLED");
}

static void test_out_of_stock(void **state)
{
	plat *p = *state;
	set_stock(p, "RARE-3", 1);
	json_t *o = place(p, "usr_eve", "k-oos",
			  ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":1},{\"sku\":\"RARE-3\","
					    "\"qty\":2}]"),
			  201);
	assert_string_equal(jstr(o, "status"), "CANCELLED");
	assert_string_equal(jstr(o, "cancel_reason"), "out_of_stock");
	assert_non_null(strstr(jstr(step_of(o, "reserve"), "detail"), "insufficient_stock"));
	/* No charge: the payment was never even asked. */
	assert_null(step_of(o, "authorize"));
	assert_null(step_of(o, "release"));
	char pay[32];
	assert_string_equal(payment_status(p, o, pay, sizeof(pay)), "NONE");
	json_decref(o);
	assert_int_equal(p->delivered[S_PAYMENT], 0);
	assert_int_equal(stripe_stat(p, "authorizations"), 0);
	long long on_hand, reserved;
	stock(p, "BOOK-1", &on_hand, &reserved);
	assert_int_equal(reserved, 0);
	assert_stock_consistent(p);
}

static void test_price_changed(void **state)
{
	plat *p = *state;
	put_cart(p, "usr_fay", "BOOK-1", 1);
	put_cart(p, "usr_fay", "MUG-2", 2);
	json_decref(req_as(p, S_CATALOG, "PUT", "/v1/products/MUG-2", AS_ADMIN, NULL,
			   "{\"sku\":\"MUG-2\",\"name\":\"A Mug\",\"description\":\"\","
			   "\"category\":\"kitchen\",\"price_cents\":990,\"currency\":\"USD\"}",
			   200));
	int status;
	json_t *v = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_fay", "k-p", CARD,
			     &status, NULL, NULL);
	assert_int_equal(status, 409);
	json_t *e = json_object_get(v, "error");
	assert_string_equal(jstr(e, "code"), "price_changed");
	json_t *d = json_object_get(e, "details");
	assert_int_equal(jint(d, "total_cents"), 1299 + 2 * 850);
	assert_int_equal(jint(d, "current_total_cents"), 1299 + 2 * 990);
	json_t *it = json_array_get(json_object_get(d, "items"), 0);
	assert_string_equal(jstr(it, "sku"), "MUG-2");
	assert_int_equal(jint(it, "price_cents"), 850);
	assert_int_equal(jint(it, "current_price_cents"), 990);
	json_decref(v);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM orders"), 0);
	/* Putting the item again accepts the price; the same key then works. */
	put_cart(p, "usr_fay", "MUG-2", 2);
	json_t *o = place(p, "usr_fay", "k-p", CARD, 201);
	assert_int_equal(jint(o, "total_cents"), 1299 + 2 * 990);
	json_decref(o);
}

/* ---- idempotency ---------------------------------------------------------------------- */

static void test_idempotency(void **state)
{
	plat *p = *state;
	put_cart(p, "usr_gus", "BOOK-1", 1);
	int s1, s2;
	char *raw1 = NULL, *raw2 = NULL;
	msg_resp keep;
	json_t *a = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_gus", "k-same", CARD,
			     &s1, &raw1, NULL);
	json_t *b = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_gus", "k-same", CARD,
			     &s2, &raw2, &keep);
	assert_int_equal(s1, 201);
	assert_int_equal(s2, 201);
	assert_string_equal(raw1, raw2);
	assert_string_equal(msg_resp_header(&keep, "Idempotent-Replayed"), "true");
	msg_resp_clear(&keep);
	/* The same body in another key order and spacing is the same request. */
	json_t *c = place(p, "usr_gus", "k-same",
			  "{ \"payment\" : {\"token\":\"tok_visa\", \"method\":\"card\"} }", 201);
	assert_string_equal(jstr(c, "order_id"), jstr(a, "order_id"));
	json_decref(c);
	/* Another body with the key: 422, nothing new. */
	int s3;
	json_t *d = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_gus", "k-same",
			     ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":1}]"), &s3, NULL, NULL);
	assert_int_equal(s3, 422);
	efix_assert_error(d, "idempotency_mismatch", "order_id", jstr(a, "order_id"));
	/* The key is the user's: another user's same key is another order. */
	put_cart(p, "usr_hal", "BOOK-1", 1);
	json_t *e = place(p, "usr_hal", "k-same", CARD, 201);
	assert_string_not_equal(jstr(e, "order_id"), jstr(a, "order_id"));
	json_decref(e);
	settle(p, SEC);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM orders"), 2);
	assert_int_equal(stripe_stat(p, "authorizations"), 2);
	assert_int_equal(stripe_stat(p, "captures"), 2);
	json_decref(a);
	json_decref(b);
	free(raw1);
	free(raw2);
}

#define RACERS 8

typedef struct racer {
	plat *p;
	int status;
	char order_id[64];
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	json_t *v = req_full(r->p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_ivy", "k-race",
			     ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":1}]"), &r->status, NULL,
			     NULL);
	const char *id = json_string_value(json_object_get(v, "order_id"));
	snprintf(r->order_id, sizeof(r->order_id), "%s", id ? id : "");
	json_decref(v);
	return NULL;
}

static void test_concurrent_duplicates(void **state)
{
	plat *p = *state;
	pthread_t t[RACERS];
	racer r[RACERS];
	for (int i = 0; i < RACERS; i++) {
		r[i] = (racer){ .p = p };
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < RACERS; i++) {
		if (r[i].status != 201 && r[i].status != 202)
			fail_msg("racer %d: status %d", i, r[i].status);
		assert_string_equal(r[i].order_id, r[0].order_id);
	}
	settle(p, SEC);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM orders"), 1);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM saga"), 1);
	assert_int_equal(stripe_stat(p, "authorizations"), 1);
	assert_int_equal(stripe_stat(p, "captures"), 1);
	long long on_hand, reserved;
	stock(p, "BOOK-1", &on_hand, &reserved);
	assert_int_equal(on_hand, 99);
	assert_settled(p, "usr_ivy", r[0].order_id, "CONFIRMED");
}

/* ---- payment unreachable ------------------------------------------------------------------ */

static void unreachable_then_back(plat *p, int fault)
{
	put_cart(p, "usr_jo", "BOOK-1", 1);
	set_fault(p, S_PAYMENT, fault);
	json_t *o = place(p, "usr_jo", "k-u", CARD, 202);
	assert_string_equal(jstr(o, "status"), "AWAITING_PAYMENT");
	assert_string_equal(saga_state_of(o), "AUTHORIZING");
	json_t *auth = step_of(o, "authorize");
	assert_string_equal(jstr(auth, "status"), "PENDING");
	assert_int_equal(jint(auth, "attempts"), 1);
	char id[64];
	take_id(o, id, sizeof(id));
	/* Retried from the queue, with growing delays: the due times move
	 * further apart (full jitter, so compare the cap's worth). */
	int64_t start = clock_now(p->clock);
	for (int i = 0; i < 40; i++) {
		tick_all(p);
		clock_advance(p->clock, 100000);
	}
	o = expect_order(p, "usr_jo", id, "AWAITING_PAYMENT", NULL);
	long long attempts = jint(step_of(o, "authorize"), "attempts");
	json_decref(o);
	/* 4 s at 100 ms a tick: more than one try, far fewer than 40. */
	assert_true(attempts >= 2);
	assert_true(attempts < 30);
	assert_true(clock_now(p->clock) - start < (TTL_S - MARGIN_S) * SEC);
	set_fault(p, S_PAYMENT, F_NONE);
	settle(p, 500000);
	o = expect_order(p, "usr_jo", id, "CONFIRMED", NULL);
	assert_true(jint(step_of(o, "authorize"), "attempts") > attempts);
	json_decref(o);
	assert_int_equal(stripe_stat(p, "authorizations"), 1);
	assert_int_equal(stripe_stat(p, "captures"), 1);
	assert_settled(p, "usr_jo", id, "CONFIRMED");
}

static void test_payment_down_then_back(void **state) { unreachable_then_back(*state, F_DOWN); }

static void test_payment_503_then_back(void **state) { unreachable_then_back(*state, F_503); }

/* Every authorisation reaches the payment service (and Stripe) but its
 * reply is lost: the retries carry the same payment_id, so one charge. */
static void test_payment_replies_lost(void **state) { unreachable_then_back(*state, F_LOST); }

static void test_ttl_expiry(void **state)
{
	plat *p = *state;
	put_cart(p, "usr_kim", "MUG-2", 3);
	set_fault(p, S_PAYMENT, F_LOST);
	json_t *o = place(p, "usr_kim", "k-ttl", CARD, 202);
	char id[64];
	take_id(o, id, sizeof(id));
	/* Payment never answers while the reservation lasts. */
	for (int i = 0; i < 60 && count_rows(p, "SELECT COUNT(*) FROM saga WHERE state = "
						 "'COMPENSATING'") == 0;
	     i++) {
		tick_all(p);
		clock_advance(p->clock, 2 * SEC);
	}
	o = get_order(p, "usr_kim", id);
	assert_string_equal(saga_state_of(o), "COMPENSATING");
	/* Not cancelled while the void of an authorisation that may exist
	 * cannot be made. */
	assert_string_equal(jstr(o, "status"), "AWAITING_PAYMENT");
	json_decref(o);
	assert_true(clock_now(p->clock) - T0 >= (TTL_S - MARGIN_S) * SEC);
	assert_true(clock_now(p->clock) - T0 < TTL_S * SEC);
	set_fault(p, S_PAYMENT, F_NONE);
	settle(p, SEC);
	o = expect_order(p, "usr_kim", id, "CANCELLED", "expired");
	assert_step(o, "void", "SUCCEEDED");
	assert_step(o, "release", "SUCCEEDED");
	json_decref(o);
	/* The lost authorisation did happen; it is voided, never captured. */
	assert_int_equal(stripe_stat(p, "authorizations"), 1);
	assert_int_equal(stripe_stat(p, "cancels"), 1);
	assert_int_equal(stripe_stat(p, "captures"), 0);
	long long on_hand, reserved;
	stock(p, "MUG-2", &on_hand, &reserved);
	assert_int_equal(on_hand, 100);
	assert_int_equal(reserved, 0);
	assert_settled(p, "usr_kim", id, "CANCELLED");
}

/* The capture succeeded but the commit found the reservation expired (the
 * processor was away too long): the capture is refunded. */
static void test_commit_after_expiry_refunds(void **state)
{
	plat *p = *state;
	json_t *o = place(p, "usr_lee", "k-late", ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":1}]"),
			  201);
	char id[64];
	take_id(o, id, sizeof(id));
	set_fault(p, S_INVENTORY, F_DOWN);
	tick_all(p); /* captured; the commit finds nobody */
	o = get_order(p, "usr_lee", id);
	assert_step(o, "capture", "SUCCEEDED");
	assert_step(o, "commit", "PENDING");
	json_decref(o);
	/* A cancel now is too late: the commit may be on its way. */
	int status;
	json_t *v = req_full(p, S_ORDER, "POST", "/v1/orders/x/cancel", AS_USER, "usr_lee", NULL,
			     NULL, &status, NULL, NULL);
	assert_int_equal(status, 404);
	json_decref(v);
	char path[128];
	snprintf(path, sizeof(path), "/v1/orders/%s/cancel", id);
	v = req_full(p, S_ORDER, "POST", path, AS_USER, "usr_lee", NULL, NULL, &status, NULL, NULL);
	assert_int_equal(status, 409);
	efix_assert_error(v, "conflict", "order_id", id);
	clock_advance(p->clock, (TTL_S + 1) * SEC);
	set_fault(p, S_INVENTORY, F_NONE);
	settle(p, SEC);
	o = expect_order(p, "usr_lee", id, "CANCELLED", "expired");
	assert_step(o, "commit", "FAILED");
	assert_step(o, "refund", "SUCCEEDED");
	json_decref(o);
	assert_int_equal(stripe_stat(p, "captures"), 1);
	assert_int_equal(stripe_stat(p, "refunds"), 1);
	assert_settled(p, "usr_lee", id, "CANCELLED");
}

/* ---- PayPal ---------------------------------------------------------------------------- */

#define PAYPAL_ITEMS(token, items) \
	"{\"payment\":{\"method\":\"paypal\",\"token\":\"" token "\"},\"items\":" items "}"

static void test_paypal_checkout(void **state)
{
	plat *p = *state;
	json_t *o = place(p, "usr_pat", "k-pp",
			  PAYPAL_ITEMS("paypal_ok", "[{\"sku\":\"BOOK-1\",\"qty\":2}]"), 201);
	assert_string_equal(jstr(json_object_get(o, "payment"), "method"), "paypal");
	char id[64];
	take_id(o, id, sizeof(id));
	settle(p, SEC);
	o = expect_order(p, "usr_pat", id, "CONFIRMED", NULL);
	char pay[32];
	assert_string_equal(payment_status(p, o, pay, sizeof(pay)), "CAPTURED");
	json_decref(o);
	assert_int_equal(paypal_stat(p, "authorizations"), 1);
	assert_int_equal(paypal_stat(p, "captures"), 1);
	assert_int_equal(paypal_stat(p, "captured_amount"), 2 * 1299);
	assert_int_equal(stripe_stat(p, "intents"), 0);
	assert_settled(p, "usr_pat", id, "CONFIRMED");

	/* declined by PayPal: cancelled, the stock released */
	o = place(p, "usr_pat", "k-pp-d",
		  PAYPAL_ITEMS("paypal_declined", "[{\"sku\":\"MUG-2\",\"qty\":1}]"), 201);
	assert_string_equal(jstr(o, "status"), "CANCELLED");
	assert_string_equal(jstr(o, "cancel_reason"), "payment_declined");
	assert_non_null(strstr(jstr(step_of(o, "authorize"), "detail"), "instrument_declined"));
	take_id(o, id, sizeof(id));
	assert_settled(p, "usr_pat", id, "CANCELLED");
	/* declined at capture: the saga compensates, nothing captured */
	o = place(p, "usr_pat", "k-pp-cd",
		  PAYPAL_ITEMS("paypal_capture_declined", "[{\"sku\":\"MUG-2\",\"qty\":1}]"), 201);
	take_id(o, id, sizeof(id));
	settle(p, SEC);
	o = expect_order(p, "usr_pat", id, "CANCELLED", "payment_declined");
	assert_step(o, "capture", "FAILED");
	json_decref(o);
	assert_int_equal(paypal_stat(p, "captures"), 1);
	assert_settled(p, "usr_pat", id, "CANCELLED");
}

/* The capture reaches PayPal, its reply is lost: the saga asks again with
 * the same PayPal-Request-Id and PayPal answers with the first capture. */
static void test_paypal_capture_reply_lost(void **state)
{
	plat *p = *state;
	json_t *o = place(p, "usr_quin", "k-pp-l",
			  PAYPAL_ITEMS("paypal_ok", "[{\"sku\":\"RARE-3\",\"qty\":1}]"), 201);
	char id[64];
	take_id(o, id, sizeof(id));
	set_fault(p, S_PAYPAL, F_LOST);
	for (int i = 0; i < 3; i++) {
		tick_all(p);
		clock_advance(p->clock, 5 * SEC);
	}
	o = expect_order(p, "usr_quin", id, "PENDING", NULL);
	assert_step(o, "capture", "PENDING");
	json_decref(o);
	assert_int_equal(paypal_stat(p, "captures"), 1);
	set_fault(p, S_PAYPAL, F_NONE);
	settle(p, SEC);
	o = expect_order(p, "usr_quin", id, "CONFIRMED", NULL);
	assert_true(jint(step_of(o, "capture"), "attempts") >= 2);
	json_decref(o);
	assert_int_equal(paypal_stat(p, "captures"), 1);
	assert_true(paypal_stat(p, "replays") >= 1);
	assert_settled(p, "usr_quin", id, "CONFIRMED");
}

/* Cancelled after the capture (the commit found the reservation expired):
 * the PayPal capture is refunded as the compensation. */
static void test_paypal_refund_compensation(void **state)
{
	plat *p = *state;
	json_t *o = place(p, "usr_ray", "k-pp-x",
			  PAYPAL_ITEMS("paypal_ok", "[{\"sku\":\"BOOK-1\",\"qty\":1}]"), 201);
	char id[64];
	take_id(o, id, sizeof(id));
	set_fault(p, S_INVENTORY, F_DOWN);
	tick_all(p);
	clock_advance(p->clock, (TTL_S + 1) * SEC);
	set_fault(p, S_INVENTORY, F_NONE);
	settle(p, SEC);
	o = expect_order(p, "usr_ray", id, "CANCELLED", "expired");
	assert_step(o, "capture", "SUCCEEDED");
	assert_step(o, "refund", "SUCCEEDED");
	char pay[32];
	assert_string_equal(payment_status(p, o, pay, sizeof(pay)), "REFUNDED");
	json_decref(o);
	assert_int_equal(paypal_stat(p, "captures"), 1);
	assert_int_equal(paypal_stat(p, "refunds"), 1);
	assert_int_equal(paypal_stat(p, "refunded_amount"), 1299);
	assert_settled(p, "usr_ray", id, "CANCELLED");
}

/* ---- cancelling ------------------------------------------------------------------------- */

static void test_cancel(void **state)
{
	plat *p = *state;
	/* Queued for the processor (authorized): cancelled at once, the
	 * authorisation voided, the stock released. */
	put_cart(p, "usr_max", "BOOK-1", 2);
	json_t *o = place(p, "usr_max", "k-c1", CARD, 201);
	char id[64], path[128];
	take_id(o, id, sizeof(id));
	snprintf(path, sizeof(path), "/v1/orders/%s/cancel", id);
	int status;
	json_t *v = req_full(p, S_ORDER, "POST", path, AS_USER, "usr_other", NULL, NULL, &status,
			     NULL, NULL);
	assert_int_equal(status, 403);
	efix_assert_error(v, "forbidden", NULL, NULL);
	o = req_as(p, S_ORDER, "POST", path, AS_USER, "usr_max", NULL, 200);
	assert_string_equal(jstr(o, "status"), "CANCELLED");
	assert_string_equal(jstr(o, "cancel_reason"), "customer_cancelled");
	assert_step(o, "void", "SUCCEEDED");
	json_decref(o);
	/* Again: the same answer. */
	json_decref(req_as(p, S_ORDER, "POST", path, AS_USER, "usr_max", NULL, 200));
	assert_int_equal(cart_lines(p, "usr_max"), 1);
	assert_settled(p, "usr_max", id, "CANCELLED");

	/* Awaiting payment: accepted (202) while the void cannot be made,
	 * cancelled once payment is back. */
	set_fault(p, S_PAYMENT, F_DOWN);
	o = place(p, "usr_max", "k-c2", CARD, 202);
	take_id(o, id, sizeof(id));
	snprintf(path, sizeof(path), "/v1/orders/%s/cancel", id);
	o = req_as(p, S_ORDER, "POST", path, AS_USER, "usr_max", NULL, 202);
	assert_string_equal(saga_state_of(o), "COMPENSATING");
	json_decref(o);
	set_fault(p, S_PAYMENT, F_NONE);
	settle(p, SEC);
	o = get_order(p, "usr_max", id);
	assert_string_equal(jstr(o, "cancel_reason"), "customer_cancelled");
	json_decref(o);
	assert_settled(p, "usr_max", id, "CANCELLED");

	/* Confirmed: 409. */
	o = place(p, "usr_max", "k-c3", CARD, 201);
	take_id(o, id, sizeof(id));
	settle(p, SEC);
	snprintf(path, sizeof(path), "/v1/orders/%s/cancel", id);
	v = req_full(p, S_ORDER, "POST", path, AS_USER, "usr_max", NULL, NULL, &status, NULL, NULL);
	assert_int_equal(status, 409);
	efix_assert_error(v, "conflict", "status", "CONFIRMED");
	assert_settled(p, "usr_max", id, "CONFIRMED");
	assert_int_equal(stripe_stat(p, "captures"), 1);
}

/* ---- reading ---------------------------------------------------------------------------- */

static void test_list_get_admin(void **state)
{
	plat *p = *state;
	char ids[5][64];
	for (int i = 0; i < 5; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k-l%d", i);
		json_t *o = place(p, "usr_ned", key,
				  ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":1}]"), 201);
		snprintf(ids[i], sizeof(ids[i]), "%s", jstr(o, "order_id"));
		json_decref(o);
		if (i != 2) /* two in the same microsecond: the id orders them */
			clock_advance(p->clock, SEC);
	}
	json_decref(place(p, "usr_other", "k-l0", ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":1}]"),
			  201));
	/* Newest first, two a page, stable while a new order arrives. */
	char path[256], seen[5][64];
	int n = 0;
	const char *tok = NULL;
	json_t *page = NULL;
	for (int round = 0; round < 5; round++) {
		if (tok)
			snprintf(path, sizeof(path), "/v1/orders?limit=2&page_token=%s", tok);
		else
			snprintf(path, sizeof(path), "/v1/orders?limit=2");
		json_t *next = req_as(p, S_ORDER, "GET", path, AS_USER, "usr_ned", NULL, 200);
		json_decref(page);
		page = next;
		size_t i;
		json_t *o;
		json_array_foreach(json_object_get(page, "items"), i, o) {
			assert_true(n < 5);
			assert_string_equal(jstr(o, "user_id"), "usr_ned");
			snprintf(seen[n++], sizeof(seen[0]), "%s", jstr(o, "order_id"));
		}
		if (round == 0)
			json_decref(place(p, "usr_ned", "k-late",
					  ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":1}]"), 201));
		tok = json_string_value(json_object_get(page, "next_page_token"));
		if (!tok)
			break;
	}
	json_decref(page);
	assert_int_equal(n, 5);
	/* ids[2] and ids[3] share a microsecond: the larger id comes first. */
	int tie = strcmp(ids[2], ids[3]) > 0;
	const char *want[5] = { ids[4], tie ? ids[2] : ids[3], tie ? ids[3] : ids[2], ids[1],
				ids[0] };
	for (int i = 0; i < 5; i++)
		assert_string_equal(seen[i], want[i]);
	int status;
	json_t *v = req_full(p, S_ORDER, "GET", "/v1/orders?limit=0", AS_USER, "usr_ned", NULL,
			     NULL, &status, NULL, NULL);
	assert_int_equal(status, 400);
	efix_assert_error(v, "invalid_argument", "field", "limit");
	v = req_full(p, S_ORDER, "GET", "/v1/orders?page_token=bogus", AS_USER, "usr_ned", NULL,
		     NULL, &status, NULL, NULL);
	assert_int_equal(status, 400);
	efix_assert_error(v, "invalid_argument", "field", "page_token");

	/* Owner only; an unknown order is 404. */
	snprintf(path, sizeof(path), "/v1/orders/%s", ids[0]);
	v = req_full(p, S_ORDER, "GET", path, AS_USER, "usr_other", NULL, NULL, &status, NULL, NULL);
	assert_int_equal(status, 403);
	efix_assert_error(v, "forbidden", "order_id", ids[0]);
	v = req_full(p, S_ORDER, "GET", "/v1/orders/ord_0000000000000000", AS_USER, "usr_ned", NULL,
		     NULL, &status, NULL, NULL);
	assert_int_equal(status, 404);
	efix_assert_error(v, "not_found", "order_id", "ord_0000000000000000");
	v = req_full(p, S_ORDER, "GET", path, AS_ANON, NULL, NULL, NULL, &status, NULL, NULL);
	assert_int_equal(status, 401);
	json_decref(v);

	/* Admin: sagas by state, one with its steps and queue row. */
	settle(p, SEC);
	json_t *list = req_as(p, S_ORDER, "GET", "/admin/sagas?state=COMPLETED&limit=3", AS_ADMIN,
			      NULL, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(list, "items")), 3);
	assert_string_equal(jstr(json_array_get(json_object_get(list, "items"), 0), "state"),
			    "COMPLETED");
	json_decref(list);
	list = req_as(p, S_ORDER, "GET", "/admin/sagas?state=RESERVING", AS_ADMIN, NULL, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(list, "items")), 0);
	json_decref(list);
	v = req_full(p, S_ORDER, "GET", "/admin/sagas?state=LOST", AS_ADMIN, NULL, NULL, NULL,
		     &status, NULL, NULL);
	assert_int_equal(status, 400);
	json_decref(v);
	v = req_full(p, S_ORDER, "GET", "/admin/sagas", AS_USER, "usr_ned", NULL, NULL, &status,
		     NULL, NULL);
	assert_int_equal(status, 403);
	json_decref(v);
	snprintf(path, sizeof(path), "/admin/sagas/%s", ids[1]);
	json_t *sg = req_as(p, S_ORDER, "GET", path, AS_ADMIN, NULL, NULL, 200);
	assert_string_equal(jstr(sg, "state"), "COMPLETED");
	assert_int_equal(json_array_size(json_object_get(sg, "steps")), 6);
	assert_true(json_is_null(json_object_get(sg, "queue")));
	assert_string_equal(jstr(json_object_get(sg, "order"), "order_id"), ids[1]);
	assert_true(json_is_array(json_object_get(sg, "spans")));
	json_decref(sg);
}

/* ---- the state machines ------------------------------------------------------------------ */

static void test_state_machines(void **state)
{
	plat *p = *state;
	static const int ok[][2] = {
		{ SAGA_STARTED, SAGA_RESERVING },      { SAGA_RESERVING, SAGA_AUTHORIZING },
		{ SAGA_AUTHORIZING, SAGA_CONFIRMING }, { SAGA_CONFIRMING, SAGA_COMPLETED },
		{ SAGA_STARTED, SAGA_COMPENSATING },   { SAGA_RESERVING, SAGA_COMPENSATING },
		{ SAGA_AUTHORIZING, SAGA_COMPENSATING }, { SAGA_CONFIRMING, SAGA_COMPENSATING },
		{ SAGA_COMPENSATING, SAGA_COMPENSATED },
	};
	int n_ok = 0;
	for (int from = 0; from < SAGA_NSTATES; from++)
		for (int to = 0; to < SAGA_NSTATES; to++) {
			int legal = 0;
			for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++)
				legal |= ok[k][0] == from && ok[k][1] == to;
			assert_int_equal(saga_edge(from, to), legal ? 0 : ERR_STATE);
			n_ok += legal;
		}
	assert_int_equal(n_ok, 9);
	assert_int_equal(saga_edge(-1, 0), ERR_STATE);
	assert_int_equal(saga_edge(0, SAGA_NSTATES), ERR_STATE);
	for (int s = 0; s < SAGA_NSTATES; s++)
		assert_int_equal(saga_state_parse(saga_state_name(s)), s);
	assert_int_equal(saga_state_parse("DONE"), -1);

	/* On a saga row: an illegal edge is refused and changes nothing; a
	 * legal one from a state it is no longer in is ERR_RETRY. */
	store *s = p->f[S_ORDER]->store;
	logger *log = p->f[S_ORDER]->log;
	assert_int_equal(saga_insert(s, "ord_t", T0 + 100 * SEC, T0), 0);
	assert_int_equal(saga_set_state(s, log, "ord_t", SAGA_STARTED, SAGA_CONFIRMING, NULL, T0),
			 ERR_STATE);
	assert_int_equal(saga_set_state(s, log, "ord_t", SAGA_STARTED, SAGA_STARTED, NULL, T0),
			 ERR_STATE);
	saga sg;
	assert_int_equal(saga_load(s, "ord_t", &sg), 0);
	assert_int_equal(sg.state, SAGA_STARTED);
	assert_int_equal(saga_set_state(s, log, "ord_t", SAGA_STARTED, SAGA_RESERVING, NULL, T0), 0);
	assert_int_equal(saga_set_state(s, log, "ord_t", SAGA_STARTED, SAGA_RESERVING, NULL, T0),
			 ERR_RETRY);
	assert_int_equal(saga_set_state(s, log, "ord_t", SAGA_RESERVING, SAGA_COMPENSATING,
					"out_of_stock", T0),
			 0);
	assert_int_equal(saga_set_state(s, log, "ord_t", SAGA_COMPENSATING, SAGA_COMPENSATED, NULL,
					T0),
			 0);
	assert_int_equal(saga_set_state(s, log, "ord_t", SAGA_COMPENSATED, SAGA_COMPENSATING, NULL,
					T0),
			 ERR_STATE);
	assert_int_equal(saga_load(s, "ord_t", &sg), 0);
	assert_int_equal(sg.state, SAGA_COMPENSATED);
	assert_string_equal(sg.reason, "out_of_stock");
	assert_true(saga_terminal(sg.state));
	assert_int_equal(saga_load(s, "ord_none", &sg), ERR_NOT_FOUND);
	/* Steps count their attempts. */
	assert_int_equal(saga_step_begin(s, "ord_t", SAGA_STEP_RESERVE, T0), 0);
	assert_int_equal(saga_step_begin(s, "ord_t", SAGA_STEP_RESERVE, T0 + 1), 0);
	assert_int_equal(saga_step_end(s, "ord_t", SAGA_STEP_RESERVE, SAGA_STEP_FAILED, "no", T0 + 2),
			 0);
	assert_int_equal(saga_step_end(s, "ord_t", SAGA_STEP_RELEASE, SAGA_STEP_FAILED, NULL, T0),
			 ERR_NOT_FOUND);
	assert_int_equal(saga_load(s, "ord_t", &sg), 0);
	assert_int_equal(sg.steps[SAGA_STEP_RESERVE].attempts, 2);
	assert_int_equal(sg.steps[SAGA_STEP_RESERVE].status, SAGA_STEP_FAILED);
	assert_string_equal(sg.steps[SAGA_STEP_RESERVE].detail, "no");
	assert_int_equal(sg.steps[SAGA_STEP_RELEASE].status, SAGA_STEP_NONE);

	/* The order's status machine. */
	assert_int_equal(order_status_edge(ORDER_PENDING, ORDER_AWAITING_PAYMENT), 0);
	assert_int_equal(order_status_edge(ORDER_AWAITING_PAYMENT, ORDER_PENDING), 0);
	assert_int_equal(order_status_edge(ORDER_PENDING, ORDER_CONFIRMED), 0);
	assert_int_equal(order_status_edge(ORDER_PENDING, ORDER_CANCELLED), 0);
	assert_int_equal(order_status_edge(ORDER_AWAITING_PAYMENT, ORDER_CANCELLED), 0);
	assert_int_equal(order_status_edge(ORDER_AWAITING_PAYMENT, ORDER_CONFIRMED), ERR_STATE);
	assert_int_equal(order_status_edge(ORDER_CONFIRMED, ORDER_CANCELLED), ERR_STATE);
	assert_int_equal(order_status_edge(ORDER_CANCELLED, ORDER_PENDING), ERR_STATE);
	assert_int_equal(order_status_edge(ORDER_PENDING, ORDER_PENDING), ERR_STATE);
	for (int i = 0; i < ORDER_NSTATUS; i++)
		assert_int_equal(order_status_parse(order_status_name(i)), i);

	/* Leases: one holder at a time, taken over once run out. */
	saga_lease a = { "order-1", "life_a" }, b = { "order-2", "life_b" };
	assert_int_equal(saga_enqueue(s, "ord_q", T0, &a, T0 + 5 * SEC, T0), 0);
	assert_int_equal(saga_claim(s, "ord_q", &b, T0 + 6 * SEC, T0 + SEC), ERR_BUSY);
	assert_int_equal(saga_renew(s, "ord_q", &b, T0 + 6 * SEC), ERR_STATE);
	assert_int_equal(saga_claim(s, "ord_q", &b, T0 + 11 * SEC, T0 + 5 * SEC), 0);
	assert_int_equal(saga_renew(s, "ord_q", &a, T0 + 12 * SEC), ERR_STATE);
	assert_int_equal(saga_release(s, "ord_q", &a, T0), ERR_STATE);
	assert_int_equal(saga_release(s, "ord_q", &b, T0 + 20 * SEC), 0);
	assert_int_equal(saga_claim(s, "ord_none", &b, T0, T0), ERR_NOT_FOUND);
	char ids[4][SAGA_ID_MAX];
	int n = -1;
	assert_int_equal(saga_due(s, T0 + 19 * SEC, 4, ids, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(saga_due(s, T0 + 20 * SEC, 4, ids, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "ord_q");
	assert_int_equal(saga_dequeue(s, "ord_q", &a), ERR_STATE);
}

/* ---- crashes ------------------------------------------------------------------------------ */

/* Kills the order engine: its engine and its store connection go; a new
 * one starts on the same file (instance order-1 again). */
static void restart_order(plat *p)
{
	efix *f = p->f[S_ORDER];
	efix_close_store(f);
	pthread_mutex_lock(&p->mu);
	p->crashed = 0;
	p->crash_at = 0;
	pthread_mutex_unlock(&p->mu);
	efix_open_store(f);
	f->eng = efix_create_engine(f);
}

/* After the order engine died at its call number call (in step; call 1:
 * before any), a new one settles id: CONFIRMED, that step tried twice,
 * one authorisation and one capture, two units of BOOK-1 sold, one
 * order. */
static void assert_recovered(plat *p, const char *user, const char *id, int call,
			     const char *step)
{
	assert_true(p->crashed || call == 1);
	restart_order(p);
	settle(p, SEC);
	assert_settled(p, user, id, "CONFIRMED");
	json_t *o = get_order(p, user, id);
	if (call >= 2)
		assert_int_equal(jint(step_of(o, step), "attempts"), 2);
	json_decref(o);
	assert_int_equal(stripe_stat(p, "authorizations"), 1);
	assert_int_equal(stripe_stat(p, "captures"), 1);
	long long on_hand, reserved;
	stock(p, "BOOK-1", &on_hand, &reserved);
	assert_int_equal(on_hand, 98);
	assert_int_equal(reserved, 0);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM orders"), 1);
}

/* The order engine's calls on a cart order's path: 1 the cart, 2 reserve,
 * 3 authorize (the POST answers), 4 capture, 5 commit, 6 empty the cart. */
#define PATH_CALLS 6

static void crash_at(int call, int sent)
{
	plat *p = plat_new(0);
	p->crash_at = call;
	p->crash_sent = sent;
	put_cart(p, "usr_oz", "BOOK-1", 2);
	int status;
	json_t *o = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_oz", "k-crash", CARD,
			     &status, NULL, NULL);
	char id[64] = "";
	if (call == 1) {
		/* Died pricing: no order; the client's retry places it. */
		assert_int_equal(status, 503);
		json_decref(o);
		restart_order(p);
		o = place(p, "usr_oz", "k-crash", CARD, 201);
	}
	take_id(o, id, sizeof(id));
	if (call > 3)
		tick_all(p); /* the processor dies */
	static const char *const step[] = { "",        "",       "reserve",   "authorize",
					    "capture", "commit", "clear_cart" };
	assert_recovered(p, "usr_oz", id, call, step[call]);
	assert_int_equal(cart_lines(p, "usr_oz"), 0);
	plat_free(p);
}

static void test_crash_at_every_call(void **state)
{
	for (int call = 1; call <= PATH_CALLS; call++) {
		crash_at(call, 1);
		crash_at(call, 0);
	}
}

/* The order engine's calls on an inline items order's path: 1 the price,
 * 2 reserve, 3 authorize, 4 capture, 5 commit (all in the POST). Inline,
 * the write that ends the authorisation begins the capture. */
#define INLINE_CALLS 5

static void crash_inline_at(int call, int sent)
{
	plat *p = plat_new(1);
	p->crash_at = call;
	p->crash_sent = sent;
	const char *body = ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":2}]");
	int status;
	json_t *o = req_full(p, S_ORDER, "POST", "/v1/orders", AS_USER, "usr_ivy", "k-crash-in",
			     body, &status, NULL, NULL);
	char id[64] = "";
	if (call == 1) {
		assert_int_equal(status, 503);
		json_decref(o);
		restart_order(p);
		o = place(p, "usr_ivy", "k-crash-in", body, 201);
	} else {
		/* A step waits for its retry: 202. */
		assert_int_equal(status, 202);
	}
	take_id(o, id, sizeof(id));
	static const char *const step[] = { "", "", "reserve", "authorize", "capture", "commit" };
	assert_recovered(p, "usr_ivy", id, call, step[call]);
	plat_free(p);
}

static void test_crash_inline_at_every_call(void **state)
{
	(void)state;
	for (int call = 1; call <= INLINE_CALLS; call++) {
		crash_inline_at(call, 1);
		crash_inline_at(call, 0);
	}
}

/* ---- the cost of a checkout ---------------------------------------------------------- */

/* Write transactions the order engine committed so far. */
static long long order_writes(plat *p)
{
	return (long long)metrics_counter_value(p->f[S_ORDER]->ctx.metrics,
						"order_store_writes_total", "");
}

/* Places an order (body) for user and runs it to CONFIRMED: the order
 * service's write transactions for the POST (*posted) and in all. The
 * answer stored with the POST's last write is the order as it then was. */
static long long confirm_counting(plat *p, const char *user, const char *key, const char *body,
				  long long *posted)
{
	long long w0 = order_writes(p);
	json_t *o = place(p, user, key, body, 201);
	*posted = order_writes(p) - w0;
	char id[64];
	snprintf(id, sizeof(id), "%s", jstr(o, "order_id"));
	json_t *now = get_order(p, user, id);
	if (!json_equal(o, now)) {
		char *a = json_dumps(o, JSON_SORT_KEYS), *b = json_dumps(now, JSON_SORT_KEYS);
		fail_msg("the POST's answer %s is not the order as it stood: %s", a, b);
	}
	json_decref(now);
	json_decref(o);
	settle(p, SEC);
	long long total = order_writes(p) - w0;
	assert_settled(p, user, id, "CONFIRMED");
	o = get_order(p, user, id);
	json_t *steps = json_object_get(json_object_get(o, "saga"), "steps");
	size_t i;
	json_t *st;
	json_array_foreach(steps, i, st)
		assert_int_equal(jint(st, "attempts"), 1);
	json_decref(o);
	return total;
}

/* The order service's write transactions per confirmed checkout: each
 * step's end and the next step's beginning are one transaction, the order
 * is placed with its first step begun, the hand-over to the processor gives
 * the lease back and stores the answer, the processor's claim begins the
 * capture. These figures must not grow back (they were 13 for an items
 * order queued, 15 from the cart, 12 and 14 inline). */
/* confirm_counting for usr_wes, which must take total writes, posted of
 * them in the POST. */
static void expect_writes(plat *p, const char *key, const char *body, long long total,
			  long long posted)
{
	long long in_post;
	assert_int_equal(confirm_counting(p, "usr_wes", key, body, &in_post), total);
	assert_int_equal(in_post, posted);
}

static void test_writes_per_checkout(void **state)
{
	plat *p = *state; /* queued */
	const char *mug = ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":1}]");
	/* create+reserve, reserve+authorize, authorize+hand-over+answer; claim+capture,
	 * capture+commit, commit+confirmed+completed. */
	expect_writes(p, "k-w1", mug, 6, 3);
	/* From the cart: its emptying is one more. */
	put_cart(p, "usr_wes", "BOOK-1", 1);
	expect_writes(p, "k-w2", CARD, 7, 3);
	assert_int_equal(cart_lines(p, "usr_wes"), 0);
	/* Inline: create+reserve, reserve+authorize, authorize+hand-over+capture,
	 * capture+commit, commit+confirmed+completed+answer. */
	plat *in = plat_new(1);
	expect_writes(in, "k-w3", mug, 5, 5);
	put_cart(in, "usr_wes", "BOOK-1", 1);
	expect_writes(in, "k-w4", CARD, 6, 6);
	plat_free(in);
}

/* The processor drives one tick's due sagas on order.workers threads side
 * by side: every one captured and committed once. */
static void test_workers(void **state)
{
	plat *p = *state; /* queued, order.workers 4 (the default) */
	enum { N = 12 };
	char ids[N][64];
	for (int i = 0; i < N; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k-par%d", i);
		json_t *o = place(p, "usr_par", key,
				  ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":1}]"), 201);
		take_id(o, ids[i], sizeof(ids[i]));
	}
	pthread_mutex_lock(&p->mu);
	p->slow_us = 3000;
	pthread_mutex_unlock(&p->mu);
	tick_all(p); /* one tick takes all twelve */
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM order_queue"), 0);
	pthread_mutex_lock(&p->mu);
	int most = p->max_in_flight;
	p->slow_us = 0;
	pthread_mutex_unlock(&p->mu);
	assert_true(most > 1 && most <= 4);
	for (int i = 0; i < N; i++) {
		char id[64];
		memcpy(id, ids[i], sizeof(id));
		assert_settled(p, "usr_par", id, "CONFIRMED");
		json_t *o = get_order(p, "usr_par", id);
		assert_int_equal(jint(step_of(o, "capture"), "attempts"), 1);
		json_decref(o);
	}
	assert_int_equal(stripe_stat(p, "captures"), N);
}

/* Instance order-1 dies holding a saga; order-2 (another process on the
 * same database) takes it over once the lease ran out, not before. */
static void test_lease_takeover(void **state)
{
	plat *p = *state;
	p->crash_at = 3; /* dies in the authorisation */
	p->crash_sent = 1;
	put_cart(p, "usr_pat", "BOOK-1", 1);
	json_t *o = place(p, "usr_pat", "k-take", CARD, 202);
	char id[64];
	take_id(o, id, sizeof(id));
	/* The dead engine's inline drive released its lease (a 202 came
	 * back), so to hold one, claim it as order-1 would at its next tick. */
	efix *f = p->f[S_ORDER];
	saga_lease dead = { "order-1", "life_dead" };
	int64_t now = clock_now(p->clock);
	assert_int_equal(saga_claim(f->store, id, &dead, now + 5 * SEC, now + 60 * SEC), 0);
	f->def->destroy(f->eng);
	f->eng = NULL;
	pthread_mutex_lock(&p->mu);
	p->crashed = 0;
	pthread_mutex_unlock(&p->mu);
	engine_ctx ctx2 = f->ctx;
	ctx2.instance_id = "order-2";
	char err[256] = "";
	void *two = f->def->create(&ctx2, err, sizeof(err));
	assert_non_null(two);
	f->eng = two; /* requests and the crash counter see it as the order engine */
	f->def->tick(two, clock_now(p->clock));
	o = expect_order(p, "usr_pat", id, "AWAITING_PAYMENT", NULL);
	json_decref(o);
	clock_advance(p->clock, 5 * SEC);
	settle(p, SEC);
	assert_settled(p, "usr_pat", id, "CONFIRMED");
	assert_int_equal(stripe_stat(p, "authorizations"), 1);
	f->def->destroy(two);
	f->eng = NULL;
	/* efix_free would destroy f->eng with its own ctx: a fresh one. */
	f->eng = efix_create_engine(f);
}

/* The processor's lease is taken over while it waits on the capture: it
 * writes nothing more (fenced by the lease), and the saga finishes once the
 * thief's lease runs out, captured once. */
static void test_lease_lost_midway(void **state)
{
	plat *p = *state;
	json_t *o = place(p, "usr_quin", "k-steal", ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":1}]"),
			  201);
	char id[64];
	take_id(o, id, sizeof(id));
	p->steal_on = "/capture";
	tick_all(p);
	o = get_order(p, "usr_quin", id);
	/* The capture happened, but its end was not recorded by the loser. */
	assert_step(o, "capture", "PENDING");
	assert_int_equal(jint(step_of(o, "capture"), "attempts"), 1);
	assert_null(step_of(o, "commit"));
	json_decref(o);
	assert_int_equal(count_rows(p, "SELECT COUNT(*) FROM order_queue WHERE lease_owner = "
				       "'order-9'"),
			 1);
	tick_all(p); /* still the thief's */
	o = get_order(p, "usr_quin", id);
	assert_null(step_of(o, "commit"));
	json_decref(o);
	clock_advance(p->clock, 31 * SEC);
	settle(p, SEC);
	assert_settled(p, "usr_quin", id, "CONFIRMED");
	o = get_order(p, "usr_quin", id);
	assert_int_equal(jint(step_of(o, "capture"), "attempts"), 2);
	json_decref(o);
	assert_int_equal(stripe_stat(p, "captures"), 1);
}

/* ---- the audit (ops/audit) over these engines ----------------------------------------- */

/* The audit's reads as the gateway routes them (the table's rewrite
 * included), with the admin token, and its /admin/services. A service the
 * table names but that is not here answers 503; a path it does not route,
 * 404. */
static int plat_admin_get(void *ud, const char *path, msg_resp *resp)
{
	plat *p = ud;
	if (strcmp(path, "/admin/services") == 0) {
		/* The gateway's registry: the services here. */
		json_t *list = json_array();
		for (int i = 0; i < NSVC; i++)
			json_array_append_new(list, json_pack("{s:s,s:[{s:s}]}", "name", SVC[i],
							      "instances", "id", SVC[i]));
		msg_resp_json(resp, 200, json_pack("{s:o}", "services", list));
		return 0;
	}
	msg_req req;
	assert_int_equal(msg_req_init(&req, "GET", path), 0);
	const route_entry *e = routes_match(p->table, req.path);
	int to = e ? svc_index(e->targets[0].service) : -1;
	if (to < 0) {
		msg_resp_error(resp, e ? 503 : 404, e ? "unavailable" : "not_found", "not here",
			       NULL);
		msg_req_clear(&req);
		return 0;
	}
	char up[512], target[1024];
	assert_int_equal(routes_rewrite(e, &e->targets[0], req.path, up, sizeof(up)), 0);
	snprintf(target, sizeof(target), "%s%s%s", up, req.query ? "?" : "",
		 req.query ? req.query : "");
	msg_req_clear(&req);
	assert_int_equal(msg_req_init(&req, "GET", target), 0);
	assert_int_equal(msg_req_add_header(&req, "Authorization", ADMIN_AUTH), 0);
	p->f[to]->def->handle(p->f[to]->eng, &req, resp);
	msg_req_clear(&req);
	return 0;
}

static void audit_now(plat *p, audit_report *r)
{
	audit_opts o = { .now_us = clock_now(p->clock) };
	audit_collect(plat_admin_get, p, &o, r);
}

/* 1 when invariant c of r lists id among its offenders. */
static int offends(const audit_report *r, audit_id c, const char *id)
{
	for (int i = 0; i < r->checks[c].nlisted; i++)
		if (strcmp(r->checks[c].found[i].id, id) == 0)
			return 1;
	return 0;
}

static void run_sql(plat *p, int svc, const char *sql, const char *a)
{
	assert_int_equal(store_runf(p->f[svc]->store, sql, NULL, a ? "t" : "", a), 0);
}

/* Orders of every kind, then the audit: everything holds (the awaiting
 * order in flight, the notifications skipped: no such service here). The
 * admin listings page and filter. Then one corruption per invariant, each
 * found with its id. */
static void test_audit(void **state)
{
	plat *p = *state;
	char ok[64], declined[64], cancelled[64], waiting[64], path[160];
	take_id(place(p, "usr_aud", "k-a1", ITEMS("tok_visa", "[{\"sku\":\"BOOK-1\",\"qty\":2}]"),
		      201),
		ok, sizeof(ok));
	take_id(place(p, "usr_aud", "k-a2",
		      ITEMS("tok_chargeDeclined", "[{\"sku\":\"MUG-2\",\"qty\":1}]"), 201),
		declined, sizeof(declined));
	take_id(place(p, "usr_aud", "k-a3", ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":1}]"),
		      201),
		cancelled, sizeof(cancelled));
	snprintf(path, sizeof(path), "/v1/orders/%s/cancel", cancelled);
	json_decref(req_as(p, S_ORDER, "POST", path, AS_USER, "usr_aud", NULL, 200));
	settle(p, SEC);
	set_fault(p, S_PAYMENT, F_DOWN);
	take_id(place(p, "usr_aud", "k-a4", ITEMS("tok_visa", "[{\"sku\":\"MUG-2\",\"qty\":3}]"),
		      202),
		waiting, sizeof(waiting));
	json_decref(expect_order(p, "usr_aud", ok, "CONFIRMED", NULL));

	audit_report r;
	audit_now(p, &r);
	for (int i = 0; i < AUDIT_NCHECKS; i++)
		if (i != AUDIT_NOTIFICATIONS && r.checks[i].result != AUDIT_PASS)
			fail_msg("%s: %s", audit_name((audit_id)i), r.checks[i].summary);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].result, AUDIT_SKIP);
	assert_int_equal(audit_failures(&r), 0);
	assert_int_equal(r.orders, 4);
	assert_int_equal(r.payments, 3); /* the cancelled order's was voided; the waiting one has none yet */
	assert_non_null(strstr(r.checks[AUDIT_ORDERS_SETTLED].summary, "1 in flight"));

	/* The listings behind it: pages in id order, filters, bad queries. */
	json_t *v = req_as(p, S_ORDER, "GET", "/admin/orders?limit=3", AS_ADMIN, NULL, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 3);
	char tok[80];
	snprintf(tok, sizeof(tok), "%s", jstr(v, "next_page_token"));
	json_decref(v);
	snprintf(path, sizeof(path), "/admin/orders?limit=3&page_token=%s", tok);
	v = req_as(p, S_ORDER, "GET", path, AS_ADMIN, NULL, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 1);
	assert_true(json_is_null(json_object_get(v, "next_page_token")));
	assert_true(strcmp(jstr(json_array_get(json_object_get(v, "items"), 0), "order_id"), tok) > 0);
	json_decref(v);
	v = req_as(p, S_ORDER, "GET", "/admin/orders?status=AWAITING_PAYMENT", AS_ADMIN, NULL, NULL,
		   200);
	json_t *it = json_array_get(json_object_get(v, "items"), 0);
	assert_string_equal(jstr(it, "order_id"), waiting);
	assert_int_equal(jint(it, "units"), 3);
	assert_true(json_is_true(json_object_get(json_object_get(it, "saga"), "queued")));
	json_decref(v);
	v = req_as(p, S_ORDER, "GET", "/admin/orders/summary", AS_ADMIN, NULL, NULL, 200);
	assert_int_equal(jint(v, "orders"), 4);
	assert_int_equal(jint(json_object_get(v, "by_status"), "CANCELLED"), 2);
	assert_int_equal(jint(json_object_get(v, "confirmed_total_cents"), "USD"), 2 * 1299);
	json_decref(v);
	v = req_as(p, S_PAYMENT, "GET", "/admin/payments?status=CAPTURED", AS_ADMIN, NULL, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 1);
	json_decref(v);
	v = req_as(p, S_PAYMENT, "GET", "/admin/payments/summary", AS_ADMIN, NULL, NULL, 200);
	assert_int_equal(jint(json_object_get(json_object_get(v, "currencies"), "USD"),
			      "captured_cents"),
			 2 * 1299);
	json_decref(v);
	v = req_as(p, S_INVENTORY, "GET", "/admin/reservations?status=HELD", AS_ADMIN, NULL, NULL,
		   200);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 1);
	assert_string_equal(jstr(json_array_get(json_object_get(v, "items"), 0), "order_id"),
			    waiting);
	json_decref(v);
	static const char *const bad[][2] = {
		{ "order", "/admin/orders?status=LOST" },  { "order", "/admin/orders?limit=0" },
		{ "order", "/admin/orders?page_token=a%20b" }, { "payment", "/admin/payments?limit=501" },
		{ "payment", "/admin/payments?status=LOST" }, { "inventory", "/admin/reservations?status=GONE" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int status;
		v = req_full(p, svc_index(bad[i][0]), "GET", bad[i][1], AS_ADMIN, NULL, NULL, NULL,
			     &status, NULL, NULL);
		assert_int_equal(status, 400);
		json_decref(v);
	}
	int status;
	v = req_full(p, S_PAYMENT, "GET", "/admin/payments", AS_USER, "usr_aud", NULL, NULL, &status,
		     NULL, NULL);
	assert_int_equal(status, 403);
	json_decref(v);

	/* One corruption per invariant. */
	char rsv[64], pay[64];
	snprintf(rsv, sizeof(rsv), "rsv_%s", strchr(ok, '_') + 1);
	snprintf(pay, sizeof(pay), "pay_%s", strchr(ok, '_') + 1);
	run_sql(p, S_ORDER, "DELETE FROM order_queue WHERE order_id = ?", waiting);
	run_sql(p, S_INVENTORY, "UPDATE reservations SET status = 'RELEASED' WHERE reservation_id = ?",
		rsv);
	run_sql(p, S_INVENTORY, "UPDATE stock SET reserved = reserved + 1 WHERE sku = ?", "RARE-3");
	run_sql(p, S_PAYMENT, "UPDATE payments SET captured_cents = captured_cents - 100 "
			      "WHERE payment_id = ?",
		pay);
	run_sql(p, S_PAYMENT,
		"INSERT INTO payments (payment_id, order_id, status, provider, method, token, "
		"amount_cents, currency, captured_cents, fingerprint, created_at, updated_at) "
		"VALUES ('pay_fake01', ?, 'CAPTURED', 'stripe', 'card', 'tok_visa', 999, 'USD', 999, "
		"'x', 0, 0)",
		"ord_nowhere");
	audit_now(p, &r);
	assert_int_equal(audit_failures(&r), 5);
	assert_true(offends(&r, AUDIT_ORDERS_SETTLED, waiting));
	assert_true(offends(&r, AUDIT_NO_OVERSELL, ok));
	assert_true(offends(&r, AUDIT_RESERVED_STOCK, "RARE-3"));
	assert_true(offends(&r, AUDIT_MONEY, ok));
	assert_true(offends(&r, AUDIT_MONEY, "pay_fake01"));
	assert_true(offends(&r, AUDIT_PAYMENTS_HAVE_ORDERS, "pay_fake01"));
	assert_false(offends(&r, AUDIT_ORDERS_SETTLED, declined));
	json_t *j = audit_json(&r);
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_array_size(json_object_get(j, "checks")), AUDIT_NCHECKS);
	json_decref(j);
	char line[512];
	audit_line(&r, line, sizeof(line));
	assert_non_null(strstr(line, "✗ payments_have_orders"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cart_order_confirmed, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_items_order_inline, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_order_ids_sort_by_time, setup_inline, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_declined, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_stock, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_price_changed, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_idempotency, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_duplicates, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_payment_down_then_back, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_payment_503_then_back, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_payment_replies_lost, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_expiry, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_commit_after_expiry_refunds, setup_queued,
						teardown),
		cmocka_unit_test_setup_teardown(test_paypal_checkout, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_paypal_capture_reply_lost, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_paypal_refund_compensation, setup_queued,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_list_get_admin, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_state_machines, setup_queued, teardown),
		cmocka_unit_test(test_crash_at_every_call),
		cmocka_unit_test(test_crash_inline_at_every_call),
		cmocka_unit_test_setup_teardown(test_writes_per_checkout, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_workers, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_lease_takeover, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_lease_lost_midway, setup_queued, teardown),
		cmocka_unit_test_setup_teardown(test_audit, setup_queued, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
