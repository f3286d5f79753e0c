/* Integration test of the event bus through the real binary: `ecom up`
 * (on $ECOM_TEST_STORE or SQLite), the inventory service producing
 * stock_changed events, and the eventlog service (`ecom serve eventlog`,
 * a consumer) beside it. Embedded: its host polls inventory's feed
 * through the gateway; Kafka: `ecom sim kafka --port P` runs the mock
 * cluster (clients bootstrap through its forwarder on P) and
 * `ecom up --bus kafka://...` passes it to every service. Each time: every
 * event in inventory's outbox arrives at the eventlog once (compared row
 * for row with the producer's database), also after the consumer is killed
 * with SIGKILL mid-stream and a second instance takes over, and after the
 * producer (on Kafka, with its relay) is killed with SIGKILL right after
 * its commits and the supervisor restarts it; `ecom queue
 * list` shows the topic with nothing waiting and no dead letters; `ecom
 * queue replay` moves none. On Kafka also: with two search instances,
 * each (its own index, its own consumer group) finds every product the
 * catalog's events announce, and loses a deleted one. Waits are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "net/http_client.h"
#include "store/store.h"

#include "itest.h"

#define CATCH_UP_MS 60000

static pid_t sim_pid;
static char bus_url[600];

/* Starts `ecom serve eventlog` as instance id; its address into addr.
 * Returns the pid. */
static pid_t serve_eventlog(const char *id, char *addr, size_t len)
{
	char addr_path[512], log_path[512];
	snprintf(addr_path, sizeof(addr_path), "%s/run/%s.addr", IT.state, id);
	snprintf(log_path, sizeof(log_path), "%s/log/%s.log", IT.state, id);
	unlink(addr_path);
	const char *argv[24];
	int k = 0;
	argv[k++] = IT.bin;
	argv[k++] = "serve";
	argv[k++] = "eventlog";
	argv[k++] = "--state";
	argv[k++] = IT.state;
	argv[k++] = "--gateway";
	argv[k++] = IT.url;
	argv[k++] = "--instance";
	argv[k++] = id;
	argv[k++] = "--addr-file";
	argv[k++] = addr_path;
	argv[k++] = "--port";
	argv[k++] = "0";
	if (IT.store) {
		argv[k++] = "--store";
		argv[k++] = IT.store;
	}
	if (bus_url[0]) {
		argv[k++] = "--bus";
		argv[k++] = bus_url;
	}
	argv[k] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(IT.bin, (char *const *)argv);
		_exit(127);
	}
	IT.pids[IT.npids++] = pid;
	addr[0] = '\0';
	for (int i = 0; i < 300 && !addr[0]; i++) {
		FILE *f = fopen(addr_path, "r");
		if (f) {
			if (!fgets(addr, (int)len, f))
				addr[0] = '\0';
			fclose(f);
		}
		if (!addr[0])
			usleep(50000);
	}
	if (!addr[0])
		fail_msg("eventlog %s did not start (see %s)", id, log_path);
	addr[strcspn(addr, "\n")] = '\0';
	return pid;
}

/* A store on the platform's database of service (read by the test). */
static store *open_db(const char *service)
{
	char url[600], err[256];
	if (IT.store)
		snprintf(url, sizeof(url), "%s", IT.store);
	else
		snprintf(url, sizeof(url), "sqlite:%s/data", IT.state);
	store *s = store_open(url, service, IT.state, err, sizeof(err));
	if (!s)
		fail_msg("open %s: %s", service, err);
	return s;
}

static int64_t q_int(store *s, const char *sql)
{
	int rc = 0;
	store_stmt *st = store_prepare(s, sql, &rc);
	if (!st)
		return -1; /* not there yet (the service has not migrated) */
	int64_t v = -1;
	if (store_step(st) == STORE_ROW)
		v = store_col_int(st, 0);
	store_reset(st);
	return v;
}

static void set_stock(const char *sku, int n)
{
	char path[128], body[64];
	snprintf(path, sizeof(path), "/v1/inventory/%s", sku);
	snprintf(body, sizeof(body), "{\"on_hand\":%d}", n);
	assert_int_equal(itest_req("PUT", path, body, ITEST_TOKEN, NULL, NULL), 200);
}

/* Waits until the eventlog holds every inventory event, then checks each
 * was applied once and that the two databases agree row for row. */
static void assert_all_once(store *inv, store *log)
{
	int64_t want = 0, got = 0;
	int64_t until = clock_mono_us() + CATCH_UP_MS * 1000LL;
	while (clock_mono_us() < until) {
		want = q_int(inv, "SELECT COUNT(*) FROM outbox WHERE topic = 'inventory'");
		got = q_int(log, "SELECT COUNT(*) FROM events WHERE topic = 'inventory'");
		if (want > 0 && got == want)
			break;
		usleep(100000);
	}
	if (got != want)
		fail_msg("the eventlog has %lld of %lld inventory events", (long long)got,
			 (long long)want);
	assert_int_equal(q_int(log, "SELECT COUNT(*) FROM events WHERE applied <> 1"), 0);
	assert_int_equal(q_int(log, "SELECT COUNT(*) FROM events WHERE producer <> 'inventory' OR "
				    "msg_id <> 'inventory:' || CAST(seq AS TEXT)"),
			 0);
	/* the last event of the hot sku is the last stock it was set to */
	assert_int_equal(q_int(log, "SELECT MAX(seq) FROM events"), q_int(inv, "SELECT MAX(id) FROM outbox"));
}

/* The eventlog's own view, through its admin route. */
static void assert_route(const char *addr)
{
	char url[700];
	snprintf(url, sizeof(url), "%s/admin/eventlog?topic=inventory&key=HOT-1&limit=1000", addr);
	msg_resp r;
	msg_resp_init(&r);
	assert_int_equal(http_client_simple("GET", url, NULL, ITEST_TOKEN, &r, 5000), 0);
	assert_int_equal(r.status, 200);
	json_t *v = json_loadb(r.body, r.body_len, 0, NULL);
	json_t *items = json_object_get(v, "items");
	assert_true(json_array_size(items) >= 30);
	json_t *last = json_array_get(items, json_array_size(items) - 1);
	assert_non_null(strstr(json_string_value(json_object_get(last, "payload")), "\"stock_changed\""));
	json_decref(v);
	msg_resp_clear(&r);
}

static void assert_queue_list(void)
{
	char *out = NULL, *err = NULL;
	json_t *row = NULL;
	int64_t until = clock_mono_us() + 20 * 1000000LL;
	for (;;) {
		free(out);
		free(err);
		out = err = NULL;
		int rc = itest_run(&out, &err, "queue", "list", "--json", "--state", IT.state, NULL);
		if (rc != 0)
			fail_msg("ecom queue list: %d %s", rc, err ? err : "");
		json_t *v = json_loads(out, 0, NULL);
		size_t i;
		json_t *q;
		json_decref(row);
		row = NULL;
		json_array_foreach(json_object_get(v, "queues"), i, q)
		{
			if (strcmp(json_string_value(json_object_get(q, "consumer")), "eventlog") == 0 &&
			    strcmp(json_string_value(json_object_get(q, "topic")), "inventory") == 0)
				row = json_incref(q);
		}
		json_decref(v);
		if ((row && json_integer_value(json_object_get(row, "depth")) == 0) ||
		    clock_mono_us() > until)
			break;
		usleep(200000);
	}
	assert_non_null(row);
	assert_string_equal(json_string_value(json_object_get(row, "topic")), "inventory");
	assert_string_equal(json_string_value(json_object_get(row, "service")), "eventlog");
	assert_int_equal(json_integer_value(json_object_get(row, "depth")), 0);
	assert_int_equal(json_integer_value(json_object_get(row, "dead_letters")), 0);
	json_decref(row);
	/* the table for people */
	free(out);
	free(err);
	assert_int_equal(itest_run(&out, &err, "queue", "list", "--state", IT.state, NULL), 0);
	assert_non_null(strstr(out, "TOPIC"));
	assert_non_null(strstr(out, "eventlog"));
	assert_non_null(strstr(out, "(relay)"));
	free(out);
	free(err);
	assert_int_equal(itest_run(&out, &err, "queue", "replay", "inventory", "--state", IT.state,
				   NULL),
			 0);
	assert_non_null(strstr(out, "0 dead letters of inventory"));
	free(out);
	free(err);
	/* bad usage exits 2 */
	assert_int_equal(itest_run(NULL, NULL, "queue", "replay", "--state", IT.state, NULL), 2);
	assert_int_equal(itest_run(NULL, NULL, "queue", "frob", NULL), 2);
}

/* The producer dies hard right after its commits: on Kafka its relay runs
 * in that process and has not produced (or not recorded producing) the
 * last events; on the embedded bus nobody has read them yet. The
 * supervisor starts it again, and every committed event arrives once. */
static void producer_crash(void)
{
	pid_t victim = itest_pid_of("inventory-1");
	assert_true(victim > 0);
	for (int i = 0; i < 10; i++)
		set_stock("HOT-4", 300 + i);
	assert_int_equal(kill(victim, SIGKILL), 0);
	assert_true(itest_wait_gone(victim, 5000));
	/* back when a write goes through again */
	int st = 0;
	for (int64_t until = clock_mono_us() + CATCH_UP_MS * 1000LL; clock_mono_us() < until;) {
		st = itest_req("PUT", "/v1/inventory/HOT-4", "{\"on_hand\":399}", ITEST_TOKEN, NULL,
			       NULL);
		if (st == 200)
			break;
		usleep(200000);
	}
	assert_int_equal(st, 200);
	pid_t now = itest_pid_of("inventory-1");
	assert_true(now > 0 && now != victim);
	itest_remember_pids();
	for (int i = 0; i < 10; i++)
		set_stock("HOT-4", 400 + i);
}

/* The whole story on whichever bus is configured. */
static void run_story(void)
{
	char addr1[256], addr2[256];
	pid_t p1 = serve_eventlog("eventlog-1", addr1, sizeof(addr1));
	for (int i = 0; i < 30; i++)
		set_stock("HOT-1", 10 + i);
	store *inv = open_db("inventory");
	store *log = open_db("eventlog");
	assert_all_once(inv, log);
	assert_route(addr1);
	/* The consumer dies hard while events keep coming; a second instance
	 * takes over (after the first one's lease), and nothing is applied
	 * twice or lost. */
	for (int i = 0; i < 40; i++) {
		set_stock("HOT-2", 100 + i);
		if (i == 10) {
			kill(p1, SIGKILL);
			assert_true(itest_wait_gone(p1, 5000));
		}
	}
	serve_eventlog("eventlog-2", addr2, sizeof(addr2));
	for (int i = 0; i < 20; i++)
		set_stock("HOT-3", 200 + i);
	assert_all_once(inv, log);
	producer_crash();
	assert_all_once(inv, log);
	assert_queue_list();
	store_free(inv);
	store_free(log);
}

static void test_embedded(void **state)
{
	bus_url[0] = '\0';
	assert_int_equal(itest_up(NULL), 0);
	run_story();
}

static void test_kafka(void **state)
{
	/* the mock cluster, as an operator would start it */
	sim_pid = itest_kafka_sim(bus_url, sizeof(bus_url));
	assert_true(sim_pid > 0);
	/* a consumer killed without leaving its group is replaced after this */
	setenv("ECOM_BUS_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
	assert_int_equal(itest_up("--bus", bus_url, NULL), 0);
	run_story();
	itest_teardown();
	IT.state[0] = '\0';
	kill(sim_pid, SIGTERM);
	int status = 0;
	assert_int_equal(waitpid(sim_pid, &status, 0), sim_pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	sim_pid = 0;
}

static void test_bad_bus_urls(void **state)
{
	const char *b = getenv("ECOM_BIN");
	snprintf(IT.bin, sizeof(IT.bin), "%s", b && *b ? b : "./ecom");
	char *err = NULL;
	assert_int_equal(itest_run(NULL, &err, "up", "--state", "/tmp/ecom-itest-nonexistent-bus",
				   "--bus", "rabbit://x:1", NULL),
			 2);
	assert_non_null(strstr(err, "rabbit"));
	free(err);
	assert_int_equal(itest_run(NULL, NULL, "serve", "catalog", "--bus", "kafka://nohost", NULL), 2);
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "sim", "kafka", "--help", NULL), 0);
	assert_non_null(strstr(out, "TEST broker"));
	free(out);
	assert_int_equal(itest_run(NULL, NULL, "sim", "kafka", "--brokers", "0", NULL), 2);
}

/* Whether the search instance at addr finds sku for the word q. */
static int instance_finds(const char *addr, const char *q, const char *sku)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/v1/search?q=%s", addr, q);
	msg_resp r;
	msg_resp_init(&r);
	int found = 0;
	if (http_client_simple("GET", url, NULL, NULL, &r, 5000) == 0 && r.status == 200) {
		json_t *v = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(v, "items"), i, it)
			if (strcmp(json_string_value(json_object_get(it, "sku")), sku) == 0)
				found = 1;
		json_decref(v);
	}
	msg_resp_clear(&r);
	return found;
}

/* Waits (at most CATCH_UP_MS) until every instance in addrs finds (or,
 * with want 0, no longer finds) sku for q; fails naming the one that did
 * not. */
static void wait_every_instance(char addrs[][256], int n, const char *q, const char *sku,
				int want)
{
	for (int k = 0; k < n; k++) {
		int ok = 0;
		for (int waited = 0; waited < CATCH_UP_MS && !ok; waited += 100) {
			ok = instance_finds(addrs[k], q, sku) == want;
			if (!ok)
				usleep(100000);
		}
		if (!ok)
			fail_msg("search instance %d (%s) %s %s for '%s' after %d s", k + 1, addrs[k],
				 want ? "never found" : "still finds", sku, q, CATCH_UP_MS / 1000);
	}
}

/* Two search instances on Kafka: each keeps its own index, so each must read
 * every catalog event (a consumer group per instance); with one group for
 * both, each would get only the partitions assigned to it and its index
 * would miss the others' products. Several products, so that their events
 * spread over the topic's partitions. */
static void test_kafka_every_search_instance(void **state)
{
	(void)state;
	sim_pid = itest_kafka_sim(bus_url, sizeof(bus_url));
	assert_true(sim_pid > 0);
	assert_int_equal(itest_up("--bus", bus_url, "--replicas", "search=2", NULL), 0);
	char addrs[2][256];
	for (int k = 0; k < 2; k++) {
		char name[32];
		snprintf(name, sizeof(name), "run/search-%d.addr", k + 1);
		assert_int_equal(itest_state_file(name, addrs[k], sizeof(addrs[k])), 0);
	}
	static const char *const words[] = { "quokka", "axolotl", "pangolin", "okapi",
					     "narwhal", "tapir" };
	enum { NWORDS = sizeof(words) / sizeof(words[0]) };
	for (int i = 0; i < NWORDS; i++) {
		char body[256];
		snprintf(body, sizeof(body),
			 "{\"sku\":\"KAFKA-SEARCH-%d\",\"name\":\"%s lantern\",\"category\":\"toys\","
			 "\"price_cents\":%d,\"currency\":\"USD\"}",
			 i, words[i], 1000 + i);
		assert_int_equal(itest_req("POST", "/v1/products", body, ITEST_TOKEN, NULL, NULL), 201);
	}
	for (int i = 0; i < NWORDS; i++) {
		char sku[32];
		snprintf(sku, sizeof(sku), "KAFKA-SEARCH-%d", i);
		wait_every_instance(addrs, 2, words[i], sku, 1);
	}
	/* and a delete reaches both */
	assert_int_equal(itest_req("DELETE", "/v1/products/KAFKA-SEARCH-0", NULL, ITEST_TOKEN, NULL,
				   NULL),
			 200);
	wait_every_instance(addrs, 2, words[0], "KAFKA-SEARCH-0", 0);
}

/* Whatever a test left running: the platform, the eventlogs, the cluster. */
static int story_teardown(void **state)
{
	if (IT.state[0])
		itest_teardown();
	IT.state[0] = '\0';
	if (sim_pid > 0) {
		kill(sim_pid, SIGKILL);
		waitpid(sim_pid, NULL, 0);
		sim_pid = 0;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_bus_urls),
		cmocka_unit_test_teardown(test_embedded, story_teardown),
		cmocka_unit_test_teardown(test_kafka, story_teardown),
		cmocka_unit_test_teardown(test_kafka_every_search_instance, story_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
