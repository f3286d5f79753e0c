/* Tests for sim/loadgen, sim/journey, sim/pool, sim/schedule and
 * net/http_multi against a stand-in of the platform's HTTP contract
 * (API.md) on a loopback http_server: the open model (a saturated worker
 * makes arrivals drop, never start late; latency counts from the intended
 * start), a run with capacity to spare dropping nothing, plans drawn the
 * same from the same seed, the requests each step sends, a whole run with
 * users, checkouts (sent twice with one key), cancels and the orders read
 * back to their final states, lost orders and keys that made two orders,
 * the schedule's admin calls and signals, and `ecom sim run`'s exit codes.
 * The real platform is loaded in tests/integration/test_loadgen.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "ops/simulate.h"
#include "sim/journey.h"
#include "sim/loadgen.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/schedule.h"
#include "thelp.h"

#define MAX_ORDERS 4096
#define ADMIN "admin-token-for-tests"

typedef struct fake_order {
	char id[32], key[96], user[96];
	int declined, cancelled, polls, lost;
} fake_order;

/* The stand-in platform: just enough of API.md, with counters. */
typedef struct fake {
	http_server *srv;
	rng *rng;
	char url[64];
	pthread_mutex_t mu;
	int health_delay_us;
	int dup_new_order; /* a repeated key makes a new order (a broken platform) */
	int lose_every;    /* every Nth order answers 404 when read back */
	int signups, logins, addresses, cart_clears, cart_puts, order_posts, order_gets, cancels;
	int searches, views, browses, health;
	int norders;
	fake_order orders[MAX_ORDERS];
	int nadmin;
	char admin[16][256]; /* "METHOD PATH BODY AUTH" of admin calls */
	char emails[64][96];
	int nemails;
} fake;

static fake F;

static void reply(msg_resp *resp, int status, json_t *v) { msg_resp_json(resp, status, v); }

static const char *user_of(msg_req *req)
{
	const char *a = msg_req_header(req, "Authorization");
	return a && strncmp(a, "Bearer tok-", 11) == 0 ? a + 11 : NULL;
}

static void products(msg_req *req, msg_resp *resp)
{
	char tok[16] = "";
	int page = msg_req_query(req, "page_token", tok, sizeof tok) == 1 ? atoi(tok) : 0;
	json_t *items = json_array();
	for (int i = page * 100; i < page * 100 + 100 && i < 150; i++) {
		char sku[16], name[32];
		snprintf(sku, sizeof sku, "SKU-%03d", i);
		snprintf(name, sizeof name, "%s thing %d", i % 2 ? "Blue" : "Red", i);
		json_array_append_new(items, json_pack("{s:s,s:s,s:s}", "sku", sku, "category",
						       i % 3 ? "home" : "toys", "name", name));
	}
	reply(resp, 200, json_pack("{s:o,s:s?}", "items", items, "next_page_token", page == 0 ? "1" : NULL));
}

static void order_json(msg_resp *resp, int status, fake_order *o)
{
	const char *st = o->cancelled || o->declined ? "CANCELLED" : o->polls > 1 ? "CONFIRMED" : "PENDING";
	const char *saga = strcmp(st, "CANCELLED") == 0 ? "COMPENSATED" : strcmp(st, "CONFIRMED") == 0 ? "COMPLETED" : "RESERVING";
	json_t *v = json_pack("{s:s,s:s,s:{s:s}}", "order_id", o->id, "status", st, "saga", "state", saga);
	if (o->cancelled)
		json_object_set_new(v, "cancel_reason", json_string("customer_cancelled"));
	else if (o->declined)
		json_object_set_new(v, "cancel_reason", json_string("payment_declined"));
	reply(resp, status, v);
}

static void post_order(msg_req *req, msg_resp *resp, const char *user)
{
	const char *key = msg_req_header(req, "Idempotency-Key");
	json_t *b = req->body ? json_loads(req->body, 0, NULL) : NULL;
	const char *token = json_string_value(json_object_get(json_object_get(b, "payment"), "token"));
	if (!key || !token) {
		json_decref(b);
		msg_resp_error(resp, 400, "invalid_argument", "key and payment needed", NULL);
		return;
	}
	F.order_posts++;
	for (int i = 0; i < F.norders && !F.dup_new_order; i++)
		if (strcmp(F.orders[i].key, key) == 0) {
			json_decref(b);
			order_json(resp, 201, &F.orders[i]);
			return;
		}
	fake_order *o = &F.orders[F.norders++];
	snprintf(o->id, sizeof o->id, "ord-%d", F.norders);
	snprintf(o->key, sizeof o->key, "%s", key);
	snprintf(o->user, sizeof o->user, "%s", user);
	o->declined = strcmp(token, "tok_chargeDeclined") == 0;
	o->lost = F.lose_every && F.norders % F.lose_every == 0;
	json_decref(b);
	order_json(resp, 201, o);
}

static fake_order *find_order(const char *id)
{
	for (int i = 0; i < F.norders; i++)
		if (strcmp(F.orders[i].id, id) == 0)
			return &F.orders[i];
	return NULL;
}

static void handler(void *ud, msg_req *req, msg_resp *resp)
{
	const char *m = req->method, *p = req->path;
	if (strcmp(p, "/health") == 0) {
		if (F.health_delay_us)
			usleep((useconds_t)F.health_delay_us);
		pthread_mutex_lock(&F.mu);
		F.health++;
		pthread_mutex_unlock(&F.mu);
		reply(resp, 200, json_pack("{s:s}", "status", "ok"));
		return;
	}
	pthread_mutex_lock(&F.mu);
	const char *user = user_of(req);
	if (strncmp(p, "/admin/", 7) == 0) {
		const char *auth = msg_req_header(req, "Authorization");
		if (F.nadmin < 16)
			snprintf(F.admin[F.nadmin++], 256, "%s %s %s %s", m, p, req->body ? req->body : "-",
				 auth ? auth : "-");
		if (strncmp(p, "/admin/bus/", 11) == 0)
			msg_resp_error(resp, 404, "not_found", "no such route", NULL);
		else
			reply(resp, 200, json_object());
	} else if (strcmp(p, "/v1/auth/signup") == 0) {
		json_t *b = json_loads(req->body ? req->body : "", 0, NULL);
		const char *email = json_string_value(json_object_get(b, "email"));
		int seen = 0;
		for (int i = 0; email && i < F.nemails; i++)
			seen |= strcmp(F.emails[i], email) == 0;
		if (email && !seen && F.nemails < 64)
			snprintf(F.emails[F.nemails++], 96, "%s", email);
		F.signups++;
		reply(resp, seen ? 409 : 201, json_pack("{s:s}", "user_id", "u"));
		json_decref(b);
	} else if (strcmp(p, "/v1/auth/login") == 0) {
		json_t *b = json_loads(req->body ? req->body : "", 0, NULL);
		char tok[128];
		snprintf(tok, sizeof tok, "tok-%s", json_string_value(json_object_get(b, "email")));
		F.logins++;
		reply(resp, 200, json_pack("{s:s,s:s,s:i}", "access_token", tok, "token_type", "Bearer",
					   "expires_in", 3600));
		json_decref(b);
	} else if (!user && strncmp(p, "/v1/", 4) == 0 && strncmp(p, "/v1/products", 12) != 0 &&
		   strcmp(p, "/v1/search") != 0) {
		msg_resp_error(resp, 401, "unauthenticated", "no token", NULL);
	} else if (strcmp(p, "/v1/users/me/addresses") == 0) {
		F.addresses++;
		reply(resp, 201, json_pack("{s:s}", "address_id", "addr-1"));
	} else if (strcmp(p, "/v1/cart") == 0 && strcmp(m, "DELETE") == 0) {
		F.cart_clears++;
		reply(resp, 200, json_object());
	} else if (strcmp(p, "/v1/cart") == 0) {
		reply(resp, 200, json_object());
	} else if (strncmp(p, "/v1/cart/items/", 15) == 0 && strcmp(m, "PUT") == 0) {
		F.cart_puts++;
		reply(resp, 200, json_object());
	} else if (strcmp(p, "/v1/products") == 0) {
		F.browses++;
		products(req, resp);
	} else if (strncmp(p, "/v1/products/", 13) == 0 || strncmp(p, "/v2/products/", 13) == 0) {
		F.views++;
		reply(resp, 200, json_pack("{s:s}", "sku", p + 13));
	} else if (strcmp(p, "/v1/search") == 0) {
		F.searches++;
		msg_resp_error(resp, 404, "not_found", "no route", NULL);
	} else if (strcmp(p, "/v1/orders") == 0 && strcmp(m, "POST") == 0) {
		post_order(req, resp, user);
	} else if (strncmp(p, "/v1/orders/", 11) == 0) {
		char id[64];
		snprintf(id, sizeof id, "%s", p + 11);
		char *slash = strchr(id, '/');
		if (slash)
			*slash = '\0';
		fake_order *o = find_order(id);
		if (!o || (o->lost && !slash)) {
			msg_resp_error(resp, 404, "not_found", "no such order", NULL);
		} else if (slash && strcmp(slash + 1, "cancel") == 0) {
			F.cancels++;
			o->cancelled = !o->declined;
			order_json(resp, 200, o);
		} else {
			F.order_gets++;
			o->polls++;
			order_json(resp, 200, o);
		}
	} else {
		msg_resp_error(resp, 404, "not_found", "no route", NULL);
	}
	pthread_mutex_unlock(&F.mu);
}

static int setup(void **unused)
{
	memset(&F, 0, sizeof F);
	pthread_mutex_init(&F.mu, NULL);
	http_client_global_init();
	F.rng = rng_new(1);
	char err[256];
	http_server_opts o = { "127.0.0.1", 0, 8, 1 << 16, 5, 0 };
	F.srv = http_server_start(&o, handler, &F, F.rng, err, sizeof err);
	if (!F.srv) {
		fprintf(stderr, "server: %s\n", err);
		return -1;
	}
	snprintf(F.url, sizeof F.url, "http://127.0.0.1:%d", http_server_port(F.srv));
	return 0;
}

static int teardown(void **unused)
{
	http_server_stop(F.srv);
	rng_free(F.rng);
	http_client_global_cleanup();
	return 0;
}

/* Zeroes the counters between tests (the server keeps running). */
static void reset(void)
{
	http_server *srv = F.srv;
	rng *r = F.rng;
	char url[64];
	snprintf(url, sizeof url, "%s", F.url);
	pthread_mutex_lock(&F.mu);
	pthread_mutex_t mu = F.mu;
	memset(&F, 0, sizeof F);
	F.mu = mu;
	F.srv = srv;
	F.rng = r;
	snprintf(F.url, sizeof F.url, "%s", url);
	pthread_mutex_unlock(&F.mu);
}

static scenario *scn(const char *text)
{
	char err[512];
	scenario *s = scenario_parse("t.scn", text, err, sizeof err);
	if (!s)
		fail_msg("%s", err);
	return s;
}

static report *run(const scenario *s)
{
	report *r = report_new(s);
	loadgen_opts o = { .url = F.url, .admin_token = ADMIN, .nonce = 77 };
	char err[512] = "";
	if (loadgen_run(s, &o, r, err, sizeof err) != 0)
		fail_msg("run failed: %s", err);
	return r;
}

/* A watcher (the console's Load view) is told about once a second what
 * the run has done: requests grow, the rate is near the scenario's, the
 * window's p99 is at least the server's 20 ms; nothing is printed. */
typedef struct progress_seen {
	int calls;
	loadgen_progress last;
	double max_rps;
	int monotonic;
} progress_seen;

static void on_progress(void *ud, const loadgen_progress *p)
{
	progress_seen *ps = ud;
	if (ps->calls > 0 && p->requests < ps->last.requests)
		ps->monotonic = 0;
	ps->calls++;
	ps->last = *p;
	if (p->rps > ps->max_rps)
		ps->max_rps = p->rps;
}

static void test_progress_callback(void **unused)
{
	reset();
	F.health_delay_us = 20000;
	scenario *s = scn("[load]\nrate = 50\nduration = 2500ms\nworkers = 16\nusers = 0\n"
			  "[journey probe]\nsteps = health\n");
	report *r = report_new(s);
	progress_seen ps = { .monotonic = 1 };
	loadgen_opts o = { .url = F.url, .admin_token = ADMIN, .nonce = 78,
			   .on_progress = on_progress, .progress_ud = &ps };
	char err[512] = "";
	if (loadgen_run(s, &o, r, err, sizeof err) != 0)
		fail_msg("run failed: %s", err);
	assert_true(ps.calls >= 2 && ps.calls <= 4);
	assert_true(ps.monotonic);
	assert_true(ps.last.requests > 0 && ps.last.requests <= r->ep[SCN_HEALTH].count);
	assert_true(ps.last.planned_s > 2.4 && ps.last.planned_s < 2.6);
	assert_true(ps.last.elapsed_s > 0.9);
	assert_true(ps.max_rps > 20 && ps.max_rps < 100);
	assert_true(ps.last.p99_ms >= 19.0 && ps.last.p99_all_ms >= 19.0);
	assert_int_equal(ps.last.errors, 0);
	report_free(r);
	scenario_free(s);
}

/* One worker, a server that takes 100 ms, 20 arrivals a second: the worker
 * can serve about half. The rest wait at most the slack and are dropped;
 * none starts late, and the latency of those served counts their wait. */
static void test_open_model_drops(void **unused)
{
	reset();
	F.health_delay_us = 100000;
	scenario *s = scn("[load]\nrate = 20\nduration = 1s\nworkers = 1\nslack = 200ms\nusers = 0\n"
			  "grace = 2s\n[journey probe]\nsteps = health\n");
	report *r = run(s);
	uint64_t dropped = r->dropped[REPORT_DROP_NO_WORKER] + r->dropped[REPORT_DROP_LATE];
	assert_int_equal(r->arrivals, 20);
	assert_int_equal(r->started + dropped, 20);
	assert_int_equal(r->ep[SCN_HEALTH].count, r->started);
	assert_int_equal(F.health, (int)r->started);
	if (r->started < 4 || r->started > 14 || r->dropped[REPORT_DROP_NO_WORKER] < 3)
		fail_msg("started %llu, dropped %llu (no worker %llu): expected about half each",
			 (unsigned long long)r->started, (unsigned long long)dropped,
			 (unsigned long long)r->dropped[REPORT_DROP_NO_WORKER]);
	/* Served requests waited for the worker: measured from when they were
	 * due, their latency is the wait plus the 100 ms, up to slack + 100. */
	hist *h = r->ep[SCN_HEALTH].h;
	assert_true(h->min >= 100000);
	assert_true(h->max >= 200000);
	assert_true(h->max < 100000 + 200000 + 400000); /* + what a busy machine adds */
	assert_true(hist_percentile(h, 50) > 150000);
	report_free(r);
	scenario_free(s);
}

/* Workers to spare: no arrival waits for one. (On a machine busy enough to
 * hold the generator's thread back past the slack, an arrival is dropped as
 * "late", its own fault, and said so; a few are tolerated here.) */
static void test_capacity_no_drops(void **unused)
{
	reset();
	scenario *s = scn("[load]\nrate = 200\nduration = 1s\nworkers = 16\nslack = 250ms\nusers = 0\n"
			  "[journey probe]\nsteps = health\n[thresholds]\nerror_rate == 0\ndropped_rate < 5%\n");
	report *r = run(s);
	/* The last arrival is due at the very end of the second; a thread held
	 * back at that moment on a loaded machine may see the run end first. */
	assert_in_range(r->arrivals, 199, 200);
	assert_int_equal(r->dropped[REPORT_DROP_NO_WORKER], 0);
	assert_true(r->dropped[REPORT_DROP_LATE] < 10);
	assert_int_equal(r->started + r->dropped[REPORT_DROP_LATE], r->arrivals);
	assert_int_equal(F.health, (int)r->started);
	assert_int_equal(r->journeys_done, r->started);
	assert_int_equal(report_decide(r), 0);
	/* The run took its duration, not more. */
	assert_true(r->elapsed_us >= 990000 && r->elapsed_us <= 1100000);
	report_free(r);
	scenario_free(s);
}

static const char JOURNEYS[] =
	"[load]\nrate = 20\nduration = 1s\nusers = 3\nslack = 500ms\n"
	"[journey buyer]\nweight = 3\nsteps = browse view add_to_cart checkout\nthink = 10ms..50ms\n"
	"[journey regret]\nsteps = view checkout cancel\n"
	"[journey searcher]\nsteps = search view_v2\n"
	"[checkout]\ntokens = tok_visa:50 tok_chargeDeclined:50\nqty = 1..3\nduplicate = 50%\n"
	"[catalog]\nhot_sku = SKU-007\nhot_share = 80%\n";

static journey_catalog *catalog(const scenario *s)
{
	journey_catalog *c = journey_catalog_new();
	for (int i = 149; i >= 0; i--) { /* out of order: sealing sorts */
		char sku[16];
		snprintf(sku, sizeof sku, "SKU-%03d", i);
		journey_catalog_add(c, sku, i % 3 ? "home" : "toys", i % 2 ? "Blue thing" : "Red thing");
	}
	journey_catalog_add(c, "SKU-001", "home", "Blue thing"); /* a repeat */
	char err[128];
	assert_int_equal(journey_catalog_seal(c, s, err, sizeof err), 0);
	return c;
}

static void test_plans(void **unused)
{
	scenario *s = scn(JOURNEYS);
	journey_catalog *c = catalog(s);
	assert_int_equal(c->nskus, 150);
	assert_string_equal(c->skus[0], "SKU-000");
	assert_string_equal(c->skus[c->hot], "SKU-007");
	assert_int_equal(c->ncategories, 2);
	assert_int_equal(c->nwords, 2); /* "blue", "red" */
	assert_string_equal(c->words[0], "blue");
	/* The same seed and arrival: the same plan, byte for byte. */
	journey_plan a, b;
	int differ = 0, buyers = 0, hot = 0, skus = 0, declined = 0, dups = 0, n = 10000;
	for (int i = 0; i < n; i++) {
		journey_plan_make(s, c, 42, (uint64_t)i, &a);
		journey_plan_make(s, c, 42, (uint64_t)i, &b);
		assert_memory_equal(&a, &b, sizeof a);
		journey_plan_make(s, c, 43, (uint64_t)i, &b);
		differ += memcmp(&a, &b, sizeof a) != 0;
		assert_true(a.user >= 0 && a.user < 3);
		buyers += a.journey == 0;
		for (int k = 0; k < a.nsteps; k++) {
			const journey_step *st = &a.steps[k];
			if (k == 0)
				assert_int_equal(st->think_us, 0);
			if (a.journey == 0 && k > 0)
				assert_true(st->think_us >= 10000 && st->think_us <= 50000);
			if (st->sku >= 0) {
				skus++;
				hot += st->sku == c->hot;
			}
			if (st->action == SCN_CHECKOUT) {
				/* The buyer put items in the cart first; regret did not. */
				assert_int_equal(st->from_cart, a.journey == 0);
				declined += st->token == 1;
				dups += st->duplicate;
			}
			if (st->qty)
				assert_true(st->qty >= 1 && st->qty <= 3);
		}
	}
	assert_true(differ > n * 9 / 10);
	/* The weights hold, within a few percent. */
	assert_true(fabs(buyers / (double)n - 0.6) < 0.03);
	assert_true(fabs(hot / (double)skus - (0.8 + 0.2 / 150)) < 0.03);
	int checkouts = n * 8 / 10; /* buyer + regret */
	assert_true(fabs(declined / (double)checkouts - 0.5) < 0.05);
	assert_true(fabs(dups / (double)checkouts - 0.5) < 0.05);
	/* A hot sku the platform does not sell is a setup error. */
	scenario *s2 = scn("[load]\nrate = 1\nduration = 1s\n[journey j]\nsteps = view\n[catalog]\nhot_sku = NOPE\n");
	journey_catalog *c2 = journey_catalog_new();
	char err[128];
	journey_catalog_add(c2, "A", "x", "y");
	assert_int_equal(journey_catalog_seal(c2, s2, err, sizeof err), ERR_NOT_FOUND);
	assert_string_equal(err, "the hot sku NOPE is not in the platform's catalog");
	journey_catalog_free(c2);
	c2 = journey_catalog_new();
	s2->hot_sku[0] = '\0';
	assert_int_equal(journey_catalog_seal(c2, s2, err, sizeof err), ERR_NOT_FOUND);
	assert_string_equal(err, "the platform's catalog is empty: nothing to view or buy");
	journey_catalog_free(c2);
	scenario_free(s2);
	journey_catalog_free(c);
	scenario_free(s);
}

static void test_requests(void **unused)
{
	scenario *s = scn(JOURNEYS);
	journey_catalog *c = catalog(s);
	journey_plan p;
	memset(&p, 0, sizeof p);
	p.nsteps = 1;
	journey_req q;
	journey_step *st = &p.steps[0];
	*st = (journey_step){ .action = SCN_BROWSE, .category = -1, .sku = -1, .word = -1 };
	assert_int_equal(journey_request(s, c, &p, 0, NULL, NULL, &q), 0);
	assert_string_equal(q.method, "GET");
	assert_string_equal(q.target, "/v1/products?page_size=20");
	st->category = 1;
	journey_request(s, c, &p, 0, NULL, NULL, &q);
	assert_string_equal(q.target, "/v1/products?page_size=20&category=toys");
	st->action = SCN_BROWSE_V2;
	journey_request(s, c, &p, 0, NULL, NULL, &q);
	assert_string_equal(q.target, "/v2/products?page_size=20&category=toys");
	*st = (journey_step){ .action = SCN_SEARCH, .word = 0, .sku = -1 };
	journey_request(s, c, &p, 0, NULL, NULL, &q);
	assert_string_equal(q.target, "/v1/search?q=blue&limit=20");
	*st = (journey_step){ .action = SCN_VIEW, .sku = 7 };
	journey_request(s, c, &p, 0, NULL, NULL, &q);
	assert_string_equal(q.target, "/v1/products/SKU-007");
	*st = (journey_step){ .action = SCN_ADD_TO_CART, .sku = 3, .qty = 2 };
	journey_request(s, c, &p, 0, NULL, NULL, &q);
	assert_string_equal(q.method, "PUT");
	assert_string_equal(q.target, "/v1/cart/items/SKU-003");
	assert_string_equal(q.body, "{\"qty\":2}");
	*st = (journey_step){ .action = SCN_CHECKOUT, .sku = 5, .qty = 1, .token = 1 };
	journey_request(s, c, &p, 0, NULL, "addr-9", &q);
	assert_string_equal(q.method, "POST");
	assert_string_equal(q.target, "/v1/orders");
	assert_int_equal(q.keep_body, 1);
	json_t *b = json_loads(q.body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "payment"), "method")), "card");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "payment"), "token")),
			    "tok_chargeDeclined");
	assert_string_equal(json_string_value(json_object_get(b, "address_id")), "addr-9");
	json_t *it = json_array_get(json_object_get(b, "items"), 0);
	assert_string_equal(json_string_value(json_object_get(it, "sku")), "SKU-005");
	assert_int_equal(json_integer_value(json_object_get(it, "qty")), 1);
	json_decref(b);
	st->from_cart = 1; /* from the cart: no items */
	journey_request(s, c, &p, 0, NULL, NULL, &q);
	assert_string_equal(q.body, "{\"payment\":{\"method\":\"card\",\"token\":\"tok_chargeDeclined\"}}");
	*st = (journey_step){ .action = SCN_CANCEL };
	assert_int_equal(journey_request(s, c, &p, 0, NULL, NULL, &q), ERR_NOT_FOUND);
	assert_int_equal(journey_request(s, c, &p, 0, "o 1/x", NULL, &q), 0);
	assert_string_equal(q.target, "/v1/orders/o%201%2Fx/cancel"); /* escaped */
	*st = (journey_step){ .action = SCN_HEALTH };
	journey_request(s, c, &p, 0, NULL, NULL, &q);
	assert_string_equal(q.target, "/health");
	/* How answers count. */
	assert_int_equal(journey_classify(SCN_VIEW, 0, 200, 0, NULL, 0), REPORT_OK);
	assert_int_equal(journey_classify(SCN_VIEW, 0, 404, 0, NULL, 0), REPORT_ERROR);
	assert_int_equal(journey_classify(SCN_VIEW, 0, 0, ERR_TIMEOUT, NULL, 0), REPORT_ERROR);
	assert_int_equal(journey_classify(SCN_SEARCH, 0, 404, 0, NULL, 0), REPORT_UNROUTED);
	assert_int_equal(journey_classify(SCN_CHECKOUT, 0, 409, 0, NULL, 0), REPORT_EXPECTED);
	assert_int_equal(journey_classify(SCN_CHECKOUT, 0, 429, 0, NULL, 0), REPORT_ERROR);
	assert_int_equal(journey_classify(SCN_CHECKOUT, 0, 503, 0, NULL, 0), REPORT_ERROR);
	static const char empty_cart[] =
		"{\"error\":{\"code\":\"invalid_argument\",\"message\":\"the cart is empty\",\"details\":{\"field\":\"items\"}}}";
	assert_int_equal(journey_classify(SCN_CHECKOUT, 1, 400, 0, empty_cart, strlen(empty_cart)),
			 REPORT_EXPECTED);
	assert_int_equal(journey_classify(SCN_CHECKOUT, 0, 400, 0, empty_cart, strlen(empty_cart)),
			 REPORT_ERROR);
	assert_int_equal(journey_classify(SCN_ADD_TO_CART, 0, 409, 0, NULL, 0), REPORT_EXPECTED);
	assert_int_equal(journey_classify(SCN_CANCEL, 0, 409, 0, NULL, 0), REPORT_EXPECTED);
	assert_int_equal(journey_classify(SCN_CART, 0, 409, 0, NULL, 0), REPORT_ERROR);
	journey_catalog_free(c);
	scenario_free(s);
}

/* A whole run: users signed in, the catalog read, journeys with checkouts
 * (half sent twice with one key), cancels, searches that find no route, and
 * every order read back until final. The report's counts equal the
 * stand-in's. */
static void test_full_run(void **unused)
{
	reset();
	scenario *s = scn(JOURNEYS);
	s->settle_us = 5000000;
	report *r = run(s);
	assert_int_equal(r->users_ready, 3);
	assert_int_equal(F.signups, 3);
	assert_int_equal(F.logins, 3);
	assert_int_equal(F.addresses, 3);
	assert_int_equal(F.cart_clears, 3);
	assert_int_equal(r->arrivals, 20);
	assert_int_equal(r->started, 20);
	assert_int_equal(r->journeys_done, 20);
	/* The report's counts are the server's. */
	assert_int_equal(r->ep[SCN_ADD_TO_CART].count, F.cart_puts);
	assert_int_equal(r->ep[SCN_CHECKOUT].count, F.order_posts);
	assert_int_equal(r->ep[SCN_VIEW].count + r->ep[SCN_VIEW_V2].count, F.views);
	/* the catalog's two pages were read before the run */
	assert_int_equal(r->ep[SCN_BROWSE].count + 2, F.browses);
	assert_int_equal(r->ep[SCN_SEARCH].count, F.searches);
	assert_int_equal(r->ep[SCN_SEARCH].outcome[REPORT_UNROUTED], F.searches);
	assert_int_equal(r->ep[SCN_CANCEL].count, F.cancels);
	uint64_t count, errors;
	report_totals(r, &count, &errors);
	assert_int_equal(errors, 0);
	/* Orders: one per checkout step, duplicates included, all final. */
	report_orders *o = &r->orders;
	assert_int_equal(o->polled, 1);
	assert_int_equal(o->created, F.norders);
	assert_true(o->duplicates_sent > 0);
	assert_int_equal(o->duplicate_mismatch, 0);
	assert_int_equal(r->ep[SCN_CHECKOUT].count, o->created + o->duplicates_sent);
	assert_int_equal(o->confirmed + o->cancelled, o->created);
	assert_int_equal(o->unknown + o->pending + o->awaiting, 0);
	int declined = 0, cancelled = 0;
	for (int i = 0; i < F.norders; i++) {
		declined += F.orders[i].declined;
		cancelled += F.orders[i].cancelled;
	}
	assert_int_equal(o->cancelled_by[report_reason_of("payment_declined")], declined);
	assert_int_equal(o->cancelled_by[report_reason_of("customer_cancelled")], cancelled);
	assert_int_equal(o->saga_completed, o->confirmed);
	/* The same users sign in again on a second run: signup answers 409. */
	report_free(r);
	reset();
	for (int i = 0; i < 3; i++)
		snprintf(F.emails[F.nemails++], 96, "sim-1-%d@load.ecom.test", i);
	r = run(s);
	assert_int_equal(r->users_ready, 3);
	assert_int_equal(F.nemails, 3);
	report_free(r);
	scenario_free(s);
}

/* The same run on three threads: every arrival taken once (by the thread
 * it belongs to), the figures and the orders of all threads in one report. */
static void test_threads(void **unused)
{
	reset();
	scenario *s = scn(JOURNEYS);
	s->threads = 3;
	s->settle_us = 5000000;
	report *r = run(s);
	assert_int_equal(r->arrivals, 20);
	assert_int_equal(r->started, 20);
	assert_int_equal(r->journeys_done, 20);
	assert_int_equal(r->ep[SCN_ADD_TO_CART].count, F.cart_puts);
	assert_int_equal(r->ep[SCN_CHECKOUT].count, F.order_posts);
	assert_int_equal(r->ep[SCN_CANCEL].count, F.cancels);
	assert_int_equal(r->orders.created, F.norders);
	assert_int_equal(r->orders.confirmed + r->orders.cancelled, F.norders);
	assert_int_equal(r->ep[SCN_CHECKOUT].count, r->orders.created + r->orders.duplicates_sent);
	report_free(r);
	/* A closed loop on two threads: both keep their workers busy. */
	reset();
	scenario *c = scn("[load]\nrate = max\nduration = 300ms\nworkers = 4\nthreads = 2\nusers = 0\n"
			  "[journey p]\nsteps = health\n");
	r = run(c);
	assert_true(r->started > 8);
	assert_int_equal(r->ep[SCN_HEALTH].count, F.health);
	assert_int_equal(r->journeys_done + r->journeys_cut, r->started);
	report_free(r);
	scenario_free(c);
	scenario_free(s);
}

/* A platform that loses orders and lets a key make a second order: both
 * show, and orders_lost == 0 fails. */
static void test_lost_and_mismatch(void **unused)
{
	reset();
	F.dup_new_order = 1;
	F.lose_every = 3;
	scenario *s = scn("[load]\nrate = 20\nduration = 1s\nusers = 2\nsettle = 2s\nslack = 500ms\n"
			  "[journey buyer]\nsteps = view checkout\n[checkout]\nduplicate = 100%\n"
			  "[thresholds]\norders_lost == 0\nduplicate_mismatch == 0\n");
	report *r = run(s);
	const report_orders *o = &r->orders;
	if (r->started != 20 || o->duplicates_sent != 20 || o->duplicate_mismatch != 20 ||
	    o->created != 40 || o->unknown != 40 / 3)
		fail_msg("started %llu (dropped %llu+%llu), sent twice %llu, mismatches %llu, created %llu, "
			 "unknown %llu, open %llu",
			 (unsigned long long)r->started, (unsigned long long)r->dropped[0],
			 (unsigned long long)r->dropped[1], (unsigned long long)o->duplicates_sent,
			 (unsigned long long)o->duplicate_mismatch, (unsigned long long)o->created,
			 (unsigned long long)o->unknown, (unsigned long long)(o->pending + o->awaiting));
	assert_int_equal(report_decide(r), 2);
	assert_false(r->passed[0]);
	assert_false(r->passed[1]);
	report_free(r);
	scenario_free(s);
}

static int admin_has(const char *prefix)
{
	for (int i = 0; i < F.nadmin; i++)
		if (strncmp(F.admin[i], prefix, strlen(prefix)) == 0)
			return 1;
	return 0;
}

static void test_schedule_http(void **unused)
{
	reset();
	scenario *s = scn("[load]\nrate = 1\nduration = 10s\n[journey j]\nsteps = view\n[schedule]\n"
			  "at 0s fault set stripe outage duration=20s\n"
			  "at 0s fault set inventory latency=300ms jitter=50ms error_rate=10% status=502\n"
			  "at 0s fault clear stripe\nat 0s breaker trip payment\nat 0s breaker reset payment\n"
			  "at 0s broker down\nat 0s kill cart\n");
	schedule_opts o = { .url = F.url, .token = ADMIN };
	report_event e;
	schedule_run_event(&s->events[0], &o, &e);
	assert_true(e.ok);
	assert_true(admin_has("PUT /admin/faults/stripe {\"outage\":true,\"duration_s\":20} Bearer " ADMIN));
	schedule_run_event(&s->events[1], &o, &e);
	assert_true(admin_has("PUT /admin/faults/inventory {\"latency_ms\":300,\"jitter_ms\":50,"
			      "\"error_rate\":0.10000000000000001,\"error_status\":502}"));
	schedule_run_event(&s->events[2], &o, &e);
	assert_true(admin_has("DELETE /admin/faults/stripe - Bearer"));
	schedule_run_event(&s->events[3], &o, &e);
	assert_true(admin_has("POST /admin/breakers/payment/trip"));
	schedule_run_event(&s->events[4], &o, &e);
	assert_true(admin_has("POST /admin/breakers/payment/reset"));
	schedule_run_event(&s->events[5], &o, &e);
	assert_false(e.ok);
	assert_non_null(strstr(e.message, "not available: this platform has no control of the Kafka mock broker"));
	assert_true(admin_has("POST /admin/bus/broker/down"));
	schedule_run_event(&s->events[6], &o, &e);
	assert_false(e.ok);
	assert_string_equal(e.message, "needs the platform's state directory (--state), not only --url");
	o.url = "http://127.0.0.1:1"; /* nothing there */
	schedule_run_event(&s->events[3], &o, &e);
	assert_false(e.ok);
	scenario_free(s);
}

/* kill, pause and resume through instances.json, on a child of ours; a
 * pause left in place is undone when the schedule stops. */
static void test_schedule_signals(void **unused)
{
	char dir[] = "/tmp/ecom-sched-XXXXXX";
	assert_non_null(mkdtemp(dir));
	pid_t child = fork();
	if (child == 0) {
		for (int i = 0; i < 600; i++)
			sleep(1);
		_exit(0);
	}
	char path[256];
	snprintf(path, sizeof path, "%s/instances.json", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "{\"instances\":[{\"service\":\"cart\",\"id\":\"cart-1\",\"pid\":%ld},"
		   "{\"service\":\"catalog\",\"id\":\"catalog-1\",\"pid\":0}]}",
		(long)child);
	fclose(f);
	scenario *s = scn("[load]\nrate = 1\nduration = 10s\n[journey j]\nsteps = view\n[schedule]\n"
			  "at 0s pause cart\nat 0s kill catalog\nat 0s kill nosuch\nat 5s kill cart-1\n");
	schedule_opts o = { .url = F.url, .token = ADMIN, .state_dir = dir,
			    .t0_mono = clock_mono_us() };
	report *r = report_new(s);
	schedule *sc = schedule_start(s, &o);
	assert_non_null(sc);
	int status = 0;
	/* The pause lands (the child stops)... */
	assert_int_equal(waitpid(child, &status, WUNTRACED), child);
	assert_true(WIFSTOPPED(status));
	for (int i = 0; i < 100 && r->nevents < 3; i++) {
		usleep(20000);
		schedule_collect(sc, r);
	}
	assert_int_equal(r->nevents, 3);
	assert_true(r->events[0].ok);
	assert_non_null(strstr(r->events[0].message, "cart-1 (pid"));
	assert_false(r->events[1].ok);
	assert_string_equal(r->events[1].message, "no running instance of 'catalog' (down already)");
	assert_string_equal(r->events[2].message, "no running instance of 'nosuch'");
	/* ... and stopping the schedule before 5s resumes it, unkilled. */
	schedule_stop(sc, r);
	assert_int_equal(waitpid(child, &status, WCONTINUED), child);
	assert_true(WIFCONTINUED(status));
	assert_int_equal(r->nevents, 3);
	/* kill, now */
	report_event e;
	schedule_run_event(&s->events[3], &o, &e);
	assert_true(e.ok);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	report_free(r);
	scenario_free(s);
	unlink(path);
	rmdir(dir);
}

/* `ecom sim run`: 0 when the thresholds hold, 99 when one does not, 2 for a
 * bad threshold, 1 for a scenario that cannot be read. */
static void test_exit_codes(void **unused)
{
	reset();
	char path[] = "/tmp/ecom-exit-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fputs("[load]\nrate = 20\nduration = 500ms\nusers = 0\n[journey p]\nsteps = health\n"
	      "[thresholds]\nerror_rate == 0\n", f);
	fclose(f);
	char *pass[] = { "sim", "run", path, "--url", F.url, "--quiet", NULL };
	assert_int_equal(simulate_main(6, pass), 0);
	char *fail[] = { "sim", "run", path, "--url", F.url, "--quiet", "--threshold", "p99 < 1us", NULL };
	assert_int_equal(simulate_main(8, fail), 99);
	char *bad[] = { "sim", "run", path, "--url", F.url, "--threshold", "p99 <", NULL };
	assert_int_equal(simulate_main(7, bad), 2);
	char *missing[] = { "sim", "run", "/nonexistent.scn", "--url", F.url, NULL };
	assert_int_equal(simulate_main(5, missing), 1);
	char *val[] = { "sim", "validate", path, NULL };
	assert_int_equal(simulate_main(3, val), 0);
	char *val_bad[] = { "sim", "validate", path, "/nonexistent.scn", NULL };
	assert_int_equal(simulate_main(4, val_bad), 1);
	char *nothing[] = { "sim", "run", NULL };
	assert_int_equal(simulate_main(2, nothing), 2);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_model_drops),  cmocka_unit_test(test_capacity_no_drops),
		cmocka_unit_test(test_plans),		   cmocka_unit_test(test_requests),
		cmocka_unit_test(test_full_run),	   cmocka_unit_test(test_threads),
		cmocka_unit_test(test_lost_and_mismatch),
		cmocka_unit_test(test_schedule_http),	   cmocka_unit_test(test_schedule_signals),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_progress_callback),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
