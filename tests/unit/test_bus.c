/* Tests for src/bus with the embedded driver, between two real engines over
 * loopback HTTP: the inventory engine produces (stock_changed events in its
 * outbox), served with its bus by an http_server as the daemon host does;
 * a small consumer engine (tests/unit/busprobe.c) counts every effect per
 * message id in its own table, so a duplicate effect shows as n > 1. The
 * consumer's outbound calls are libcurl to the producer's port (standing in
 * for the gateway). Both share one virtual clock; bus_step is called by
 * hand. Covered: delivery in order and exactly once; the producer's host
 * crashing after its commits and coming back, the consumer's crashing
 * mid-stream; 10% of deliveries duplicated plus a lost offset (everything
 * delivered again): every effect once; two consumer instances (one feed
 * lease at a time, take-over after a crash); a consume that keeps failing:
 * retried with backoff, dead-lettered after bus.max_attempts while later
 * messages go on, replayed once fixed; the feed's authorisation and
 * parameters; /admin/queues; and, on PostgreSQL ($ECOM_TEST_STORE), a row
 * that commits after a higher one is not skipped. */
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

#include "bus/bus.h"
#include "bus/outbox.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/metrics.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/msg.h"
#include "store/store.h"

#include "busprobe.h"
#include "efix.h"
#include "thelp.h"

#define ADMIN "Bearer " EFIX_ADMIN
#define MS 1000LL
/* Rounds of bus_step a test waits at most for the consumer to catch up
 * (each advances the virtual clock by ROUND_US). */
#define MAX_ROUNDS 600
#define ROUND_US (50 * MS)

static const char SEED[] = "[{\"sku\":\"S-1\",\"name\":\"One\"},{\"sku\":\"S-2\",\"name\":\"Two\"},"
			   "{\"sku\":\"S-3\",\"name\":\"Three\"}]";

/* ---- fixture ----------------------------------------------------------------- */

typedef struct fx {
	const char *store_url; /* $ECOM_TEST_STORE or NULL (SQLite files) */
	efix *p;               /* producer: inventory */
	bus *pb;
	http_server *srv;
	rng *srv_rng;
	char url[64];
	efix *c;               /* consumer: busprobe */
	bus *cb;
} fx;

static void host_handler(void *ud, msg_req *req, msg_resp *resp)
{
	fx *x = ud;
	if (!bus_handle(x->pb, req, resp))
		x->p->def->handle(x->p->eng, req, resp);
}

static int loop_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	http_call_opts o = { .connect_timeout_ms = 500, .timeout_ms = timeout_ms > 0 ? timeout_ms : 5000 };
	return http_client_do(target, req, resp, &o);
}

static bus *new_bus(efix *f)
{
	char err[512] = "";
	bus *b = bus_new(&f->ctx, f->def, f->eng, "embedded", err, sizeof(err));
	if (!b)
		fail_msg("bus_new(%s): %s", f->def->name, err);
	return b;
}

static void producer_up(fx *x)
{
	x->p->eng = efix_create_engine(x->p);
	x->pb = new_bus(x->p);
	http_server_opts o = { .host = "127.0.0.1", .port = 0, .threads = 2, .body_limit = 65536,
			       .conn_timeout_s = 30 };
	char err[256];
	x->srv = http_server_start(&o, host_handler, x, x->srv_rng, err, sizeof(err));
	if (!x->srv)
		fail_msg("http_server_start: %s", err);
	snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d", http_server_port(x->srv));
}

/* The producer's process dies: server, bus, engine and store gone; its
 * database stays. */
static void producer_crash(fx *x)
{
	http_server_stop(x->srv);
	x->srv = NULL;
	bus_free(x->pb);
	x->pb = NULL;
	efix_close_store(x->p);
}

static void producer_restart(fx *x)
{
	efix_open_store(x->p);
	producer_up(x);
}

static void drop_schemas(const char *url)
{
	char err[256];
	store *s = store_open(url, "bustest", NULL, err, sizeof(err));
	if (!s)
		fail_msg("%s", err);
	assert_int_equal(store_exec(s, "DROP SCHEMA IF EXISTS inventory CASCADE; "
				       "DROP SCHEMA IF EXISTS busprobe CASCADE"),
			 0);
	store_free(s);
}

static void consumer_config(config *c)
{
	assert_int_equal(config_set(c, "bus.topics", "inventory=inventory"), 0);
	assert_int_equal(config_set(c, "bus.max_attempts", "3"), 0);
	assert_int_equal(config_set(c, "bus.retry_base_ms", "100"), 0);
	assert_int_equal(config_set(c, "bus.retry_max_ms", "400"), 0);
	assert_int_equal(config_set(c, "bus.batch", "50"), 0);
}

static int setup(void **state)
{
	fx *x = calloc(1, sizeof(*x));
	x->store_url = getenv("ECOM_TEST_STORE");
	if (x->store_url && !x->store_url[0])
		x->store_url = NULL;
	if (x->store_url)
		drop_schemas(x->store_url);
	x->srv_rng = rng_new(99);
	x->p = efix_new("inventory", x->store_url, EFIX_T0, 1);
	efix_seed(x->p, SEED);
	assert_int_equal(config_set(x->p->config, "bus.topics", "inventory=inventory"), 0);
	producer_up(x);
	x->c = efix_new_def(&busprobe_engine, x->store_url, EFIX_T0, 2);
	x->c->ctx.clock = x->p->clock; /* one time for both */
	x->c->ctx.call = loop_call;
	x->c->ctx.gateway_url = x->url;
	consumer_config(x->c->config);
	x->c->eng = efix_create_engine(x->c);
	x->cb = new_bus(x->c);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	bus_free(x->cb);
	efix_free(x->c);
	http_server_stop(x->srv);
	bus_free(x->pb);
	efix_free(x->p);
	rng_free(x->srv_rng);
	free(x);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static int64_t q_int(store *s, const char *sql) { return busprobe_int(s, sql); }

static int64_t events(fx *x) { return busprobe_events(x->p->store); }
static int64_t effects(fx *x) { return busprobe_effects(x->c->store); }
static int64_t dead(fx *x) { return q_int(x->c->store, "SELECT COUNT(*) FROM bus_dead"); }

/* Every event has exactly one effect, applied once. */
static void assert_exactly_once(fx *x)
{
	assert_int_equal(effects(x), events(x));
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM effects WHERE n <> 1"), 0);
}

/* ... and in the outbox's order: the effects' own ids grow with seq. */
static void assert_in_order(fx *x)
{
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM effects a JOIN effects b "
					    "ON a.id < b.id WHERE a.seq > b.seq"),
			 0);
}

static void set_stock(fx *x, const char *sku, int on_hand)
{
	busprobe_set_stock(x->p, sku, on_hand);
}

/* Steps both buses until the consumer has want effects (or dead letters
 * make up the rest), moving the clock along; the rounds are bounded. */
static int pump_until(fx *x, int64_t want_effects, int64_t want_dead)
{
	for (int i = 0; i < MAX_ROUNDS; i++) {
		if (effects(x) >= want_effects && dead(x) >= want_dead)
			return i;
		if (x->pb)
			bus_step(x->pb);
		bus_step(x->cb);
		clock_advance(x->p->clock, ROUND_US);
	}
	fail_msg("after %d rounds: %lld effects (want %lld), %lld dead (want %lld)", MAX_ROUNDS,
		 (long long)effects(x), (long long)want_effects, (long long)dead(x),
		 (long long)want_dead);
	return -1;
}

/* A request straight to a bus's routes; the parsed answer (new reference). */
static json_t *bus_call(bus *b, const char *method, const char *path, const char *auth, int want)
{
	msg_req req;
	msg_resp resp;
	assert_int_equal(msg_req_init(&req, method, path), 0);
	if (auth)
		msg_req_add_header(&req, "Authorization", auth);
	msg_resp_init(&resp);
	assert_int_equal(bus_handle(b, &req, &resp), 1);
	if (resp.status != want)
		fail_msg("%s %s: %d, want %d: %.*s", method, path, resp.status, want,
			 (int)resp.body_len, resp.body ? resp.body : "");
	json_t *v = thelp_body_json(&resp);
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	return v;
}

/* The consumer's row in its queues. */
static json_t *consumer_row(fx *x) { return busprobe_row(x->cb); }

static int64_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

/* ---- tests ------------------------------------------------------------------------ */

static void test_delivers_in_order_once(void **state)
{
	fx *x = *state;
	assert_string_equal(bus_driver_name(x->cb), "embedded");
	for (int i = 0; i < 40; i++)
		set_stock(x, i % 2 ? "S-1" : "S-2", 50 + i);
	set_stock(x, "NEW-1", 9);
	assert_true(events(x) >= 44); /* 3 initial + 41 */
	pump_until(x, events(x), 0);
	assert_exactly_once(x);
	assert_in_order(x);
	/* the message as the engine saw it */
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM effects WHERE key = 'NEW-1' "
					    "AND msg_id LIKE 'inventory:%' AND topic = 'inventory'"),
			 1);
	/* the offset sits at the last event, in the consumer's own database */
	assert_int_equal(q_int(x->c->store, "SELECT pos FROM bus_offsets WHERE consumer = 'busprobe' "
					    "AND topic = 'inventory' AND producer = 'inventory'"),
			 q_int(x->p->store, "SELECT MAX(id) FROM outbox"));
	/* nothing more to do: a further round moves nothing */
	assert_int_equal(bus_step(x->cb), 0);
	json_t *row = consumer_row(x);
	assert_int_equal(jint(row, "depth"), 0);
	assert_int_equal(jint(row, "dead_letters"), 0);
	assert_int_equal(jint(row, "applied"), events(x));
	json_decref(row);
	assert_int_equal(metrics_counter_value(x->c->metrics, "bus_messages_total",
					       "topic=\"inventory\",consumer=\"busprobe\","
					       "outcome=\"applied\""),
			 events(x));
	/* the producer's own row: nothing waits to be published */
	json_t *v = bus_call(x->pb, "GET", "/admin/queues", ADMIN, 200);
	json_t *relay = json_array_get(json_object_get(v, "queues"), 0);
	assert_string_equal(json_string_value(json_object_get(relay, "consumer")), "(relay)");
	assert_string_equal(json_string_value(json_object_get(relay, "topic")), "inventory");
	assert_int_equal(jint(relay, "depth"), 0);
	json_decref(v);
}

static void test_producer_crash_after_commit(void **state)
{
	fx *x = *state;
	pump_until(x, events(x), 0);
	for (int i = 0; i < 10; i++)
		set_stock(x, "S-3", 20 + i);
	int64_t want = events(x);
	/* The producer's process dies after its commits, before any consumer
	 * has read them. */
	producer_crash(x);
	for (int i = 0; i < 5; i++) {
		assert_true(bus_step(x->cb) <= 0);
		clock_advance(x->p->clock, 300 * MS);
	}
	assert_true(effects(x) < want);
	json_t *row = consumer_row(x);
	assert_true(strstr(json_string_value(json_object_get(row, "error")), "fetch from inventory"));
	json_decref(row);
	/* Back, on another port: each event arrives, once. */
	producer_restart(x);
	pump_until(x, want, 0);
	assert_int_equal(events(x), want);
	assert_exactly_once(x);
	assert_in_order(x);
}

static void test_consumer_crash_midstream(void **state)
{
	fx *x = *state;
	for (int i = 0; i < 120; i++)
		set_stock(x, "S-1", 200 + i);
	/* Part of it (batches of 50), then the consumer dies. */
	for (int i = 0; i < 20 && effects(x) == 0; i++) {
		bus_step(x->pb);
		bus_step(x->cb);
	}
	int64_t part = effects(x);
	assert_true(part > 0 && part < events(x));
	bus_free(x->cb);
	x->cb = NULL;
	efix_close_store(x->c);
	/* It comes back with its database and goes on from its offset. */
	efix_open_store(x->c);
	x->c->eng = efix_create_engine(x->c);
	x->cb = new_bus(x->c);
	pump_until(x, events(x), 0);
	assert_exactly_once(x);
	assert_in_order(x);
}

static void test_duplicates_every_effect_once(void **state)
{
	fx *x = *state;
	bus_hooks h = { .duplicate_rate = 0.10 };
	bus_set_hooks(x->cb, &h);
	for (int i = 0; i < 300; i++) {
		char sku[16];
		snprintf(sku, sizeof(sku), "D-%d", i % 30);
		set_stock(x, sku, 10 + i);
	}
	pump_until(x, events(x), 0);
	assert_exactly_once(x);
	json_t *row = consumer_row(x);
	int64_t dups = jint(row, "duplicates");
	/* about a tenth of 300+ deliveries came twice; the inbox took them */
	assert_true(dups >= 10 && dups <= 80);
	assert_int_equal(jint(row, "applied"), events(x));
	json_decref(row);

	/* The offset is lost (set back to the start): every message comes
	 * again, and changes nothing. */
	bus_set_hooks(x->cb, NULL);
	assert_int_equal(store_exec(x->c->store, "UPDATE bus_offsets SET pos = 0"), 0);
	clock_advance(x->p->clock, 6000 * MS); /* past the lease: the position is read again */
	int64_t want_dups = dups + events(x);
	for (int i = 0; i < MAX_ROUNDS; i++) {
		row = consumer_row(x);
		int64_t d = jint(row, "duplicates");
		json_decref(row);
		if (d >= want_dups)
			break;
		bus_step(x->cb);
		clock_advance(x->p->clock, ROUND_US);
	}
	row = consumer_row(x);
	assert_int_equal(jint(row, "duplicates"), want_dups);
	json_decref(row);
	assert_exactly_once(x);
}

static void test_two_instances(void **state)
{
	fx *x = *state;
	/* A second instance of the consumer service: same database, its own
	 * context (instance id), its own bus. */
	engine_ctx ctx2 = x->c->ctx;
	ctx2.instance_id = "busprobe-2";
	char err[256];
	bus *b2 = bus_new(&ctx2, x->c->def, x->c->eng, "embedded", err, sizeof(err));
	assert_non_null(b2);
	for (int i = 0; i < 100; i++)
		set_stock(x, "S-2", 300 + i);
	for (int i = 0; i < MAX_ROUNDS && effects(x) < events(x); i++) {
		bus_step(x->pb);
		bus_step(x->cb);
		bus_step(b2);
		clock_advance(x->p->clock, ROUND_US);
	}
	assert_exactly_once(x);
	/* one of them holds the feed */
	json_t *row = consumer_row(x);
	json_t *src = json_array_get(json_object_get(row, "sources"), 0);
	assert_true(json_is_true(json_object_get(src, "leased")));
	json_decref(row);
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM bus_offsets WHERE owner = "
					    "'busprobe-1'"),
			 1);
	/* The holder dies; after its lease the other takes over. */
	bus_free(x->cb);
	x->cb = b2;
	for (int i = 0; i < 30; i++)
		set_stock(x, "S-3", 500 + i);
	pump_until(x, events(x), 0);
	assert_exactly_once(x);
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM bus_offsets WHERE owner = "
					    "'busprobe-2'"),
			 1);
}

static void test_dead_letter_and_replay(void **state)
{
	fx *x = *state;
	pump_until(x, events(x), 0);
	busprobe *p = x->c->eng;
	busprobe_fail(p, "BAD-1");
	int64_t before = events(x);
	set_stock(x, "OK-1", 11);
	set_stock(x, "BAD-1", 12);
	set_stock(x, "OK-2", 13);
	int64_t good = events(x) - 1;
	assert_int_equal(good, before + 2);
	/* OK-1 at once; BAD-1 three times with backoff, then parked; OK-2
	 * waits behind it, then goes on. */
	int rounds = pump_until(x, good, 1);
	assert_true(rounds > 1);
	assert_true(busprobe_calls(p) >= 3);
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM bus_dead WHERE consumer = 'busprobe' "
					    "AND topic = 'inventory' AND key = 'BAD-1' AND state = 'DEAD' "
					    "AND attempts = 3 AND producer = 'inventory'"),
			 1);
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM effects WHERE key = 'BAD-1'"), 0);
	json_t *row = consumer_row(x);
	assert_int_equal(jint(row, "dead_letters"), 1);
	assert_int_equal(jint(row, "depth"), 0);
	json_decref(row);
	/* delivered again (a lost offset), a dead letter stays parked */
	assert_int_equal(store_exec(x->c->store, "UPDATE bus_offsets SET pos = 0"), 0);
	clock_advance(x->p->clock, 6000 * MS);
	for (int i = 0; i < 20; i++)
		bus_step(x->cb);
	assert_int_equal(dead(x), 1);
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM effects WHERE key = 'BAD-1'"), 0);

	/* Replay while it still fails: dead again, after its attempts. */
	json_t *v = bus_call(x->cb, "POST", "/admin/queues/inventory/replay", ADMIN, 200);
	assert_int_equal(jint(v, "moved"), 1);
	json_decref(v);
	for (int i = 0; i < MAX_ROUNDS &&
			q_int(x->c->store, "SELECT COUNT(*) FROM bus_dead WHERE state = 'DEAD'") < 1;
	     i++) {
		bus_step(x->cb);
		clock_advance(x->p->clock, ROUND_US);
	}
	assert_int_equal(q_int(x->c->store, "SELECT attempts FROM bus_dead"), 6);
	/* Fixed: replay delivers it, once, and the dead letter is gone. */
	busprobe_fail(p, NULL);
	v = bus_call(x->cb, "POST", "/admin/queues/inventory/replay?consumer=busprobe", ADMIN, 200);
	assert_int_equal(jint(v, "moved"), 1);
	json_decref(v);
	pump_until(x, events(x), 0);
	for (int i = 0; i < 10 && dead(x) > 0; i++)
		bus_step(x->cb);
	assert_int_equal(dead(x), 0);
	assert_exactly_once(x);
	row = consumer_row(x);
	assert_int_equal(jint(row, "dead_letters"), 0);
	assert_int_equal(jint(row, "replayed"), 1);
	json_decref(row);
	/* nothing left to replay; another consumer's name moves nothing */
	v = bus_call(x->cb, "POST", "/admin/queues/inventory/replay?consumer=someone", ADMIN, 200);
	assert_int_equal(jint(v, "moved"), 0);
	json_decref(v);
}

static void test_admin_routes(void **state)
{
	fx *x = *state;
	json_decref(bus_call(x->cb, "GET", "/admin/queues", NULL, 401));
	json_decref(bus_call(x->cb, "POST", "/admin/queues", ADMIN, 405));
	json_decref(bus_call(x->cb, "GET", "/admin/queues/inventory/replay", ADMIN, 405));
	json_decref(bus_call(x->cb, "POST", "/admin/queues/inventory/other", ADMIN, 404));
	json_decref(bus_call(x->cb, "POST", "/admin/queues/inventory/replay", "Bearer nope", 401));
	json_t *v = bus_call(x->cb, "GET", "/admin/queues", ADMIN, 200);
	assert_string_equal(json_string_value(json_object_get(v, "service")), "busprobe");
	assert_string_equal(json_string_value(json_object_get(v, "driver")), "embedded");
	json_decref(v);
	/* other paths are not the bus's */
	msg_req req;
	msg_resp resp;
	msg_req_init(&req, "GET", "/v1/inventory/S-1");
	msg_resp_init(&resp);
	assert_int_equal(bus_handle(x->cb, &req, &resp), 0);
	msg_req_clear(&req);
	msg_resp_clear(&resp);
}

/* GET on the producer's port with an identity header (may be NULL). */
static int feed_get(fx *x, const char *path, const char *ident, json_t **out)
{
	msg_req req;
	msg_resp resp;
	msg_req_init(&req, "GET", path);
	if (ident)
		msg_req_add_header(&req, IDENTITY_HEADER, ident);
	msg_resp_init(&resp);
	assert_int_equal(loop_call(NULL, x->url, &req, &resp, 3000), 0);
	int status = resp.status;
	if (out)
		*out = thelp_body_json(&resp);
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	return status;
}

static void test_feed(void **state)
{
	fx *x = *state;
	bus_step(x->pb); /* PostgreSQL: the horizon */
	char svc[IDENTITY_MAX], user[IDENTITY_MAX];
	efix_sign(x->p, IDENTITY_SERVICE, "busprobe", NULL, svc);
	efix_sign(x->p, IDENTITY_USER, "u-1", NULL, user);
	const char *path = "/v1/internal/feed/inventory/inventory?after=1&limit=2&count=1";
	assert_int_equal(feed_get(x, path, NULL, NULL), 401);
	assert_int_equal(feed_get(x, path, user, NULL), 403);
	json_t *v;
	assert_int_equal(feed_get(x, path, svc, &v), 200);
	json_t *ms = json_object_get(v, "messages");
	assert_int_equal(json_array_size(ms), 2);
	assert_int_equal(jint(json_array_get(ms, 0), "seq"), 2);
	assert_int_equal(jint(json_array_get(ms, 1), "seq"), 3);
	assert_int_equal(jint(v, "pending"), events(x) - 1);
	assert_int_equal(jint(v, "head"), q_int(x->p->store, "SELECT MAX(id) FROM outbox"));
	const char *payload = json_string_value(json_object_get(json_array_get(ms, 0), "payload"));
	assert_non_null(strstr(payload, "\"stock_changed\""));
	json_decref(v);
	/* someone else's feed, a bad topic, bad numbers */
	assert_int_equal(feed_get(x, "/v1/internal/feed/catalog/inventory", svc, NULL), 404);
	assert_int_equal(feed_get(x, "/v1/internal/feed/inventory/Bad%20Topic", svc, NULL), 404);
	assert_int_equal(feed_get(x, "/v1/internal/feed/inventory", svc, NULL), 404);
	assert_int_equal(feed_get(x, "/v1/internal/feed/inventory/inventory?after=-1", svc, NULL), 400);
	assert_int_equal(feed_get(x, "/v1/internal/feed/inventory/inventory?limit=0", svc, NULL), 400);
	assert_int_equal(feed_get(x, "/v1/internal/feed/inventory/inventory?limit=1001", svc, NULL),
			 400);
	/* another topic of the same outbox: nothing */
	assert_int_equal(feed_get(x, "/v1/internal/feed/inventory/orders", svc, &v), 200);
	assert_int_equal(json_array_size(json_object_get(v, "messages")), 0);
	json_decref(v);
}

static void test_url_check_and_topics(void **state)
{
	(void)state;
	char err[256];
	/* Kafka groups: a service's instances share one; instances of an
	 * engine with a database each (search's index) have one each. */
	char g[64];
	engine_def shared = { .name = "catalog", .needs_store = 1 };
	engine_def local = { .name = "search", .needs_store = ENGINE_STORE_LOCAL };
	assert_int_equal(bus_group_id(&shared, "catalog-2", "catalog", g, sizeof(g)), 0);
	assert_string_equal(g, "catalog");
	assert_int_equal(bus_group_id(&local, "search-2", "search", g, sizeof(g)), 0);
	assert_string_equal(g, "search.search-2");
	assert_int_equal(bus_group_id(&local, NULL, "search", g, sizeof(g)), 0);
	assert_string_equal(g, "search");
	assert_int_equal(bus_group_id(&local, "search-2", "search", g, 8), ERR_INVALID);
	assert_int_equal(bus_url_check("embedded", err, sizeof(err)), 0);
	assert_int_equal(bus_url_check(NULL, err, sizeof(err)), 0);
	assert_int_equal(bus_url_check("kafka://127.0.0.1:9092", err, sizeof(err)), 0);
	assert_int_equal(bus_url_check("kafka://a:1,b.example:9093", err, sizeof(err)), 0);
	assert_int_equal(bus_url_check("kafka://", err, sizeof(err)), ERR_INVALID);
	assert_int_equal(bus_url_check("kafka://host", err, sizeof(err)), ERR_INVALID);
	assert_int_equal(bus_url_check("kafka://host:99999", err, sizeof(err)), ERR_INVALID);
	assert_int_equal(bus_url_check("kafka://a:1,", err, sizeof(err)), ERR_INVALID);
	assert_int_equal(bus_url_check("rabbit://x:1", err, sizeof(err)), ERR_INVALID);
	assert_non_null(strstr(err, "rabbit"));
	config *c = config_new();
	char names[4][BUS_NAME_MAX];
	assert_int_equal(bus_topic_producers(c, "orders", names, 4), 1);
	assert_string_equal(names[0], "order");
	assert_int_equal(bus_topic_producers(c, "analytics", names, 4), 2);
	assert_string_equal(names[1], "cart");
	assert_int_equal(bus_topic_producers(c, "nope", names, 4), 0);
	assert_int_equal(bus_topic_producers(c, "order", names, 4), 0);
	config_free(c);
}

/* The outbox helper writes the documented shape, inside the caller's
 * transaction. */
static void test_outbox_put(void **state)
{
	fx *x = *state;
	store *s = x->c->store;
	int64_t n = q_int(s, "SELECT COUNT(*) FROM outbox");
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(outbox_put(s, "orders", "o-1", "{\"type\":\"x\"}", "00-abc-def-01", 5), 0);
	assert_int_equal(store_rollback(s), 0);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM outbox"), n);
	assert_int_equal(outbox_put(s, "orders", "o-1", "{\"type\":\"x\"}", NULL, 5), 0);
	assert_int_equal(q_int(s, "SELECT COUNT(*) FROM outbox WHERE traceparent IS NULL"), n + 1);
	assert_int_equal(outbox_put(s, "", "k", "{}", NULL, 5), ERR_INVALID);
}

/* Old rows and inbox entries are pruned after bus.retention_s, but never the
 * outbox's highest row: a new event must not get an id consumers saw. */
static void test_prune_keeps_ids(void **state)
{
	fx *x = *state;
	for (int i = 0; i < 20; i++)
		set_stock(x, "P-1", i + 1);
	pump_until(x, events(x), 0);
	int64_t applied = effects(x), top = q_int(x->p->store, "SELECT MAX(id) FROM outbox");
	bus_free(x->pb);
	assert_int_equal(config_set(x->p->config, "bus.retention_s", "60"), 0);
	assert_int_equal(config_set(x->c->config, "bus.retention_s", "60"), 0);
	x->pb = new_bus(x->p);
	bus_free(x->cb);
	x->cb = new_bus(x->c);
	clock_advance(x->p->clock, 11 * 60 * 1000 * MS); /* past retention and the prune interval */
	bus_step(x->pb);
	bus_step(x->cb);
	assert_int_equal(events(x), 1); /* only the highest row is left */
	assert_int_equal(q_int(x->p->store, "SELECT MAX(id) FROM outbox"), top);
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM bus_inbox"), 0);
	set_stock(x, "P-1", 99);
	assert_int_equal(q_int(x->p->store, "SELECT MAX(id) FROM outbox"), top + 1);
	pump_until(x, applied + 1, 0);
	assert_int_equal(effects(x), applied + 1);
	assert_int_equal(q_int(x->c->store, "SELECT MAX(seq) FROM effects"), top + 1);
}

/* ---- PostgreSQL: a row that commits after a higher one ----------------------------- */

typedef struct late {
	fx *x;
	int done;
} late;

static void *higher_thread(void *arg)
{
	late *l = arg;
	l->done = outbox_put(l->x->p->store, "inventory", "HIGHER", "{\"type\":\"t\"}", NULL, 2);
	return NULL;
}

static void *advance_thread(void *arg)
{
	late *l = arg;
	bus_step(l->x->pb); /* moves the horizon */
	__atomic_store_n(&l->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_pg_late_commit_not_skipped(void **state)
{
	fx *x = *state;
	if (!x->store_url) {
		skip(); /* SQLite's writers commit in id order */
		return;
	}
	pump_until(x, events(x), 0);
	int64_t before = effects(x);
	store *s = x->p->store;
	/* A writer takes an id and keeps its transaction open ... */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(outbox_put(s, "inventory", "LATE", "{\"type\":\"t\"}", NULL, 1), 0);
	/* ... while another commits a higher one. */
	late h = { .x = x, .done = -1 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, higher_thread, &h), 0);
	pthread_join(t, NULL);
	assert_int_equal(h.done, 0);
	/* The relay waits for the open writer instead of moving past its id,
	 * so a consumer polling now gets neither. */
	late a = { .x = x };
	assert_int_equal(pthread_create(&t, NULL, advance_thread, &a), 0);
	usleep(200000);
	assert_int_equal(__atomic_load_n(&a.done, __ATOMIC_SEQ_CST), 0);
	for (int i = 0; i < 3; i++)
		bus_step(x->cb);
	assert_int_equal(effects(x), before);
	assert_int_equal(store_commit(s), 0);
	pthread_join(t, NULL);
	assert_int_equal(a.done, 1);
	pump_until(x, events(x), 0);
	assert_exactly_once(x);
	assert_in_order(x);
	assert_int_equal(q_int(x->c->store, "SELECT COUNT(*) FROM effects WHERE key = 'LATE'"), 1);
}

int main(void)
{
	http_client_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_check_and_topics),
		cmocka_unit_test_setup_teardown(test_delivers_in_order_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_feed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_producer_crash_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_consumer_crash_midstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates_every_effect_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_letter_and_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_keeps_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_late_commit_not_skipped, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_client_global_cleanup();
	return rc;
}
