/* Tests for src/bus's Kafka driver against librdkafka's mock cluster
 * (src/sim/kafka_sim), in process: the inventory engine produces through
 * its bus's relay, the busprobe consumer engine (tests/unit/busprobe.c)
 * consumes with its bus, both buses on their own threads (bus_start) with
 * real clocks, as the daemon runs them. Faults come from the mock cluster:
 * a broker set down and up again, and request errors pushed for Produce,
 * Fetch and OffsetCommit. Jepsen's total-queue check: every event the
 * producer committed (the outbox, "acknowledged") is consumed, and each has
 * exactly one effect (lost = 0, duplicated effects = 0), also with 10% of
 * deliveries duplicated, a second consumer instance joining and the first
 * dying, and the relay abandoning a produced batch before recording it (a
 * crash between publish and mark). Dead letters go to the consumer's table
 * and to <topic>.dlq.<consumer>, and replay delivers them once. Every wait
 * is bounded in time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "sim/kafka_sim.h"
#include "store/store.h"

#include "busprobe.h"
#include "efix.h"

#define ADMIN "Bearer " EFIX_ADMIN
/* Kafka's protocol API keys (rdkafka_protocol.h is not installed). */
#define API_PRODUCE 0
#define API_FETCH 1
#define API_OFFSET_COMMIT 8
/* How long a test waits at most for the consumer to catch up. */
#define CATCH_UP_S 90

static const char SEED[] = "[{\"sku\":\"S-1\",\"name\":\"One\"},{\"sku\":\"S-2\",\"name\":\"Two\"},"
			   "{\"sku\":\"S-3\",\"name\":\"Three\"}]";

typedef struct kfx {
	kafka_sim *sim;
	char url[600];
	clock_src *clock; /* real, shared by both sides */
	efix *p;          /* producer: inventory */
	bus *pb;
	efix *c;          /* consumer: busprobe */
	bus *cb;
	engine_ctx ctx2;  /* a second consumer instance's */
} kfx;

static void side_config(config *c)
{
	assert_int_equal(config_set(c, "bus.topics", "inventory=inventory"), 0);
	assert_int_equal(config_set(c, "bus.poll_ms", "20"), 0);
	assert_int_equal(config_set(c, "bus.max_attempts", "2"), 0);
	assert_int_equal(config_set(c, "bus.retry_base_ms", "50"), 0);
	assert_int_equal(config_set(c, "bus.retry_max_ms", "200"), 0);
	assert_int_equal(config_set(c, "bus.batch", "100"), 0);
	assert_int_equal(config_set(c, "bus.kafka_timeout_ms", "20000"), 0);
	/* a consumer that dies without leaving is noticed after this */
	assert_int_equal(config_set(c, "bus.kafka_session_timeout_ms", "6000"), 0);
}

static bus *kafka_bus(kfx *x, efix *f, engine_ctx *ctx)
{
	char err[512] = "";
	bus *b = bus_new(ctx, f->def, f->eng, x->url, err, sizeof(err));
	if (!b)
		fail_msg("bus_new(%s): %s", f->def->name, err);
	assert_string_equal(bus_driver_name(b), "kafka");
	return b;
}

static int setup(void **state)
{
	kfx *x = calloc(1, sizeof(*x));
	char err[256];
	x->sim = kafka_sim_new(3, 4, 0, err, sizeof(err));
	if (!x->sim)
		fail_msg("kafka_sim_new: %s", err);
	snprintf(x->url, sizeof(x->url), "kafka://%s", kafka_sim_bootstraps(x->sim));
	x->clock = clock_real_new();
	x->p = efix_new("inventory", NULL, EFIX_T0, 1);
	efix_seed(x->p, SEED);
	side_config(x->p->config);
	x->p->ctx.clock = x->clock;
	x->p->eng = efix_create_engine(x->p);
	x->pb = kafka_bus(x, x->p, &x->p->ctx);
	x->c = efix_new_def(&busprobe_engine, NULL, EFIX_T0, 2);
	side_config(x->c->config);
	x->c->ctx.clock = x->clock;
	x->c->eng = efix_create_engine(x->c);
	x->cb = kafka_bus(x, x->c, &x->c->ctx);
	assert_int_equal(bus_start(x->pb), 0);
	assert_int_equal(bus_start(x->cb), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	kfx *x = *state;
	bus_free(x->cb);
	bus_free(x->pb);
	efix_free(x->c);
	efix_free(x->p);
	kafka_sim_free(x->sim);
	clock_free(x->clock);
	free(x);
	return 0;
}

static int64_t events(kfx *x) { return busprobe_events(x->p->store); }

static int64_t effects(kfx *x) { return busprobe_effects(x->c->store); }

static int64_t dead(kfx *x) { return busprobe_int(x->c->store, "SELECT COUNT(*) FROM bus_dead"); }

static void set_stock(kfx *x, const char *sku, int on_hand)
{
	busprobe_set_stock(x->p, sku, on_hand);
}

/* Waits (bounded) until the consumer has want effects and want_dead dead
 * letters. */
static void wait_for(kfx *x, int64_t want, int64_t want_dead)
{
	int64_t until = clock_mono_us() + CATCH_UP_S * 1000000LL;
	while (clock_mono_us() < until) {
		if (effects(x) >= want && dead(x) >= want_dead)
			return;
		usleep(50000);
	}
	fail_msg("after %d s: %lld effects (want %lld), %lld dead letters (want %lld)", CATCH_UP_S,
		 (long long)effects(x), (long long)want, (long long)dead(x), (long long)want_dead);
}

/* The total-queue check: every committed event consumed, each applied
 * exactly once, and the relay's position at the end of the outbox. */
static void assert_total_queue(kfx *x)
{
	int64_t want = events(x);
	wait_for(x, want, 0);
	assert_int_equal(effects(x), want); /* lost = 0 */
	assert_int_equal(busprobe_int(x->c->store, "SELECT COUNT(*) FROM effects WHERE n <> 1"), 0);
	assert_int_equal(busprobe_int(x->c->store,
				      "SELECT COUNT(*) FROM effects WHERE msg_id NOT LIKE 'inventory:%'"),
			 0);
	int64_t until = clock_mono_us() + 10 * 1000000LL;
	while (clock_mono_us() < until &&
	       busprobe_int(x->p->store, "SELECT pos FROM bus_relay WHERE name = 'kafka'") <
		       busprobe_int(x->p->store, "SELECT MAX(id) FROM outbox"))
		usleep(20000);
	assert_int_equal(busprobe_int(x->p->store, "SELECT pos FROM bus_relay WHERE name = 'kafka'"),
			 busprobe_int(x->p->store, "SELECT MAX(id) FROM outbox"));
}

typedef struct later {
	rd_kafka_mock_cluster_t *mc;
	int broker;
	int ms;
} later;

static void *broker_up_later(void *arg)
{
	later *l = arg;
	usleep((useconds_t)l->ms * 1000);
	rd_kafka_mock_broker_set_up(l->mc, l->broker);
	return NULL;
}

static json_t *consumer_row(bus *b) { return busprobe_row(b); }

/* ---- tests ------------------------------------------------------------------ */

static void test_kafka_total_queue_under_faults(void **state)
{
	kfx *x = *state;
	rd_kafka_mock_cluster_t *mc = kafka_sim_cluster(x->sim);
	bus_hooks dup = { .duplicate_rate = 0.10 };
	bus_set_hooks(x->cb, &dup);
	for (int i = 0; i < 100; i++) {
		char sku[16];
		snprintf(sku, sizeof(sku), "K-%d", i % 20);
		set_stock(x, sku, 10 + i);
	}
	/* Requests fail now and then: produce, fetch, offset commits. */
	rd_kafka_mock_push_request_errors(mc, API_PRODUCE, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
					  RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
					  RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
					  RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
					  RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
					  RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
	rd_kafka_mock_push_request_errors(mc, API_FETCH, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
					  RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
					  RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
	rd_kafka_mock_push_request_errors(mc, API_OFFSET_COMMIT, 2,
					  RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
					  RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
	wait_for(x, 20, 0);
	/* A broker goes down for a while; writes go on meanwhile. */
	rd_kafka_mock_broker_set_down(mc, 2);
	later up = { .mc = mc, .broker = 2, .ms = 1500 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, broker_up_later, &up), 0);
	for (int i = 0; i < 60; i++)
		set_stock(x, "K-DOWN", 100 + i);
	pthread_join(t, NULL);
	/* A second consumer instance joins the group; then the first dies
	 * without a goodbye to its uncommitted work. */
	x->ctx2 = x->c->ctx;
	x->ctx2.instance_id = "busprobe-2";
	bus *b2 = kafka_bus(x, x->c, &x->ctx2);
	bus_set_hooks(b2, &dup);
	assert_int_equal(bus_start(b2), 0);
	for (int i = 0; i < 60; i++)
		set_stock(x, "K-TWO", 200 + i);
	usleep(500000);
	bus_free(x->cb);
	x->cb = b2;
	for (int i = 0; i < 40; i++)
		set_stock(x, "K-END", 300 + i);
	assert_total_queue(x);
	json_t *row = consumer_row(x->cb);
	assert_int_equal(json_integer_value(json_object_get(row, "dead_letters")), 0);
	json_decref(row);
}

/* The relay produced a batch and "crashed" before recording it: after the
 * restart it produces the rows again, and the consumer's inbox drops the
 * copies. */
static int abandon_first(void *ud, int64_t first, int64_t last)
{
	int *n = ud;
	return __atomic_fetch_add(n, 1, __ATOMIC_SEQ_CST) == 0;
}

static void test_kafka_crash_between_publish_and_mark(void **state)
{
	kfx *x = *state;
	/* Restart the producer's bus with the hook from the first batch. */
	bus_free(x->pb);
	int64_t pos0 = busprobe_int(x->p->store, "SELECT pos FROM bus_relay WHERE name = 'kafka'");
	int calls = 0;
	bus_hooks h = { .after_produce = abandon_first, .ud = &calls };
	for (int i = 0; i < 30; i++)
		set_stock(x, "C-1", 10 + i);
	x->pb = kafka_bus(x, x->p, &x->p->ctx);
	bus_set_hooks(x->pb, &h);
	assert_int_equal(bus_step(x->pb), 0); /* produced, abandoned */
	assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(busprobe_int(x->p->store, "SELECT pos FROM bus_relay WHERE name = 'kafka'"),
			 pos0);
	int64_t abandoned = busprobe_int(x->p->store, "SELECT MAX(id) FROM outbox") - pos0;
	assert_true(abandoned >= 30);
	/* The process dies there (librdkafka still delivers what it had sent),
	 * and starts again. */
	bus_free(x->pb);
	x->pb = kafka_bus(x, x->p, &x->p->ctx);
	assert_int_equal(bus_start(x->pb), 0);
	assert_total_queue(x);
	/* the abandoned batch arrived twice; one effect each */
	int64_t until = clock_mono_us() + 10 * 1000000LL;
	json_t *row = NULL;
	for (;;) {
		row = consumer_row(x->cb);
		if (json_integer_value(json_object_get(row, "duplicates")) >= abandoned ||
		    clock_mono_us() > until)
			break;
		json_decref(row);
		usleep(50000);
	}
	assert_true(json_integer_value(json_object_get(row, "duplicates")) >= abandoned);
	json_decref(row);
}

/* Reads up to want messages of topic with a group of its own; returns how
 * many came within the time. */
static int read_topic(kfx *x, const char *topic, int want, char *key, size_t keylen)
{
	char err[256];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "bootstrap.servers", kafka_sim_bootstraps(x->sim), err, sizeof(err));
	rd_kafka_conf_set(c, "group.id", "test-reader", err, sizeof(err));
	rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err));
	rd_kafka_conf_set(c, "allow.auto.create.topics", "true", err, sizeof(err));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	assert_non_null(rk);
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	int n = 0;
	int64_t until = clock_mono_us() + 30 * 1000000LL;
	while (n < want && clock_mono_us() < until) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err) {
			n++;
			snprintf(key, keylen, "%.*s", (int)m->key_len, (const char *)m->key);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return n;
}

static void test_kafka_dead_letter_and_replay(void **state)
{
	kfx *x = *state;
	busprobe *p = x->c->eng;
	busprobe_fail(p, "BAD-K");
	set_stock(x, "OK-1", 1);
	set_stock(x, "BAD-K", 2);
	set_stock(x, "OK-2", 3);
	wait_for(x, events(x) - 1, 1);
	assert_int_equal(busprobe_int(x->c->store,
				      "SELECT COUNT(*) FROM bus_dead WHERE key = 'BAD-K' AND "
				      "state = 'DEAD' AND attempts = 2 AND topic = 'inventory'"),
			 1);
	char key[64] = "";
	assert_int_equal(read_topic(x, "inventory.dlq.busprobe", 1, key, sizeof(key)), 1);
	assert_string_equal(key, "BAD-K");
	json_t *row = consumer_row(x->cb);
	assert_int_equal(json_integer_value(json_object_get(row, "dead_letters")), 1);
	json_decref(row);
	/* fixed, replayed: one effect */
	busprobe_fail(p, NULL);
	int64_t moved = 0;
	assert_int_equal(bus_replay(x->cb, "inventory", NULL, &moved), 0);
	assert_int_equal(moved, 1);
	assert_total_queue(x);
	int64_t until = clock_mono_us() + 10 * 1000000LL;
	while (dead(x) > 0 && clock_mono_us() < until)
		usleep(20000);
	assert_int_equal(dead(x), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kafka_total_queue_under_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kafka_crash_between_publish_and_mark, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kafka_dead_letter_and_replay, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
