/* bench_reserve: reservations per second at the inventory engine itself, no
 * HTTP: the engine is created as the daemon host creates it (a real clock,
 * its store from a URL, migrations applied) and driven with msg_req values
 * from several threads at once, as the daemon's HTTP workers drive it, with
 * its tick every 100 ms on another thread, as the daemon's timer runs it.
 *
 *   bench/bench_reserve [--store URL] [--skus N] [--threads T]
 *                       [--seconds S] [--count N] [--stock U]
 *
 * --skus 1 is the hot-sku case; --skus 10000 spreads reservations uniformly
 * over that many skus. The run stops after S seconds (default 5) or N
 * reservation requests (default 10,000,000), whichever comes first. Every
 * sku gets U units (default: enough for every request, so all succeed; a
 * smaller U makes the stock run out and the rest get 409).
 *
 * At the end it checks that nothing was oversold: the invariant checker
 * passes, no stock row has reserved > on_hand, and the units the run
 * reserved in the database equal the 201s the engine answered. Prints one line
 * (key=value fields, rate= the successful reservations per second,
 * cpu_us_per_request= the process's CPU time while they ran, all threads,
 * over the requests: a figure that other work on the machine distorts less
 * than the rate); exits
 * 1 on any oversell, violation or unexpected status. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "services/engine.h"
#include "services/inventory.h"
#include "store/store.h"

static const engine_def *def;
static void *eng;
static engine_ctx ctx;
static long skus = 1, count = 10000000, stock = 0;
static double seconds = 5;
static int threads = 1;
static int64_t deadline_us;
/* Makes this run's reservation ids its own, also on a store used before. */
static char run_id[32];
static atomic_long next_id;
static long ok_count, short_count, fail_count;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int call(const char *method, const char *path, const char *body)
{
	msg_req req;
	msg_resp resp;
	msg_req_init(&req, method, path);
	msg_req_add_header(&req, "Authorization", "Bearer bench-admin");
	msg_req_add_header(&req, "Content-Type", "application/json");
	if (body)
		msg_req_set_body(&req, body, strlen(body));
	msg_resp_init(&resp);
	def->handle(eng, &req, &resp);
	int status = resp.status;
	if (status != 200 && status != 201 && status != 409 && resp.body)
		fprintf(stderr, "bench_reserve: %s %s: %d %s\n", method, path, status, resp.body);
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	return status;
}

static void *worker(void *arg)
{
	long id = (long)arg, ok = 0, shrt = 0, fail = 0;
	rng *r = rng_new((uint64_t)id + 1);
	char body[512];
	for (;;) {
		long i = atomic_fetch_add(&next_id, 1);
		if (i >= count || clock_mono_us() >= deadline_us)
			break;
		long sku = (long)rng_below(r, (uint64_t)skus);
		snprintf(body, sizeof(body),
			 "{\"reservation_id\":\"bench-%s%ld\",\"order_id\":\"ord-%ld\","
			 "\"items\":[{\"sku\":\"B-%05ld\",\"qty\":1}],\"ttl_s\":600}",
			 run_id, i, i, sku);
		int status = call("POST", "/v1/reservations", body);
		if (status == 201)
			ok++;
		else if (status == 409)
			shrt++;
		else
			fail++;
	}
	rng_free(r);
	pthread_mutex_lock(&mu);
	ok_count += ok;
	short_count += shrt;
	fail_count += fail;
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* The engine's timed work, every 100 ms as the daemon runs it (engine.tick_ms),
 * while the workers run. */
static atomic_int ticking = 1;
static void *ticker(void *arg)
{
	(void)arg;
	while (atomic_load(&ticking)) {
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
		if (def->tick)
			def->tick(eng, clock_now(ctx.clock));
	}
	return NULL;
}

/* CPU time of the whole process so far (every thread), in microseconds. */
static int64_t cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_usec;
}

/* Units reserved in the database, and the rows where reserved > on_hand. */
static int reserved_in_db(int64_t *reserved, int64_t *oversold)
{
	int rc = 0;
	store_stmt *st = store_prepare(
		ctx.store,
		"SELECT COALESCE(SUM(reserved), 0), "
		"COALESCE(SUM(CASE WHEN reserved > on_hand THEN 1 ELSE 0 END), 0) FROM stock",
		&rc);
	if (!st)
		return rc ? rc : -1;
	rc = store_step(st);
	if (rc == STORE_ROW) {
		*reserved = store_col_int(st, 0);
		*oversold = store_col_int(st, 1);
	}
	store_reset(st);
	return rc == STORE_ROW ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *data = getenv("ECOM_DATA");
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "skus", required_argument, NULL, 'k' },
		{ "count", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "stock", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			url = optarg;
		else if (c == 'k')
			skus = atol(optarg);
		else if (c == 'n')
			count = atol(optarg);
		else if (c == 't')
			threads = atoi(optarg);
		else if (c == 'S')
			seconds = atof(optarg);
		else if (c == 'u')
			stock = atol(optarg);
		else
			return 2;
	}
	if (skus < 1 || skus > 99999 || count < 1 || threads < 1 || threads > 64 ||
	    seconds <= 0 || seconds > 600 || stock < 0 || stock > 1000000000L)
		return 2;
	if (stock == 0)
		stock = count < 1000000000L ? count : 1000000000L;
	char tmp[] = "/tmp/ecom-bench-XXXXXX";
	if (!url && !mkdtemp(tmp))
		return 1;
	char dflt[64];
	snprintf(dflt, sizeof(dflt), "sqlite:%s", tmp);
	char err[512], schema[1024], seed[128];
	snprintf(schema, sizeof(schema), "%s/schema", data && *data ? data : "data");
	ctx.service = "inventory";
	ctx.instance_id = "inventory-bench";
	ctx.clock = clock_real_new();
	ctx.rng = rng_new(42);
	ctx.log = log_new("inventory", stderr, ctx.clock, LOG_WARN);
	ctx.metrics = metrics_new();
	config *cfg = config_new();
	/* An empty seed file: the bench makes its own skus. */
	snprintf(seed, sizeof(seed), "/tmp/ecom-bench-empty-%d.json", (int)getpid());
	FILE *f = fopen(seed, "w");
	if (!f)
		return 1;
	fputs("[]", f);
	fclose(f);
	config_set(cfg, "catalog.seed_file", seed);
	ctx.config = cfg;
	ctx.admin_token = "bench-admin";
	ctx.data_dir = data && *data ? data : "data";
	ctx.store = store_open(url ? url : dflt, "inventory", NULL, err, sizeof(err));
	if (!ctx.store || store_migrate(ctx.store, schema, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_reserve: %s\n", err);
		return 1;
	}
	def = engine_find("inventory");
	eng = def->create(&ctx, err, sizeof(err));
	remove(seed);
	if (!eng) {
		fprintf(stderr, "bench_reserve: %s\n", err);
		return 1;
	}
	for (long k = 0; k < skus; k++) {
		char path[64], body[64];
		snprintf(path, sizeof(path), "/v1/inventory/B-%05ld", k);
		snprintf(body, sizeof(body), "{\"on_hand\":%ld}", stock);
		if (call("PUT", path, body) != 200) {
			fprintf(stderr, "bench_reserve: cannot set stock\n");
			return 1;
		}
	}
	/* Group commits of the run only, not of the stocking. */
	uint64_t commits0 =
		metrics_counter_value(ctx.metrics, "inventory_group_commits_total", "");
	uint64_t ops0 =
		metrics_counter_value(ctx.metrics, "inventory_group_commit_ops_total", "");
	int64_t reserved0 = 0, oversold0 = 0;
	if (reserved_in_db(&reserved0, &oversold0) != 0) {
		fprintf(stderr, "bench_reserve: cannot read the stock\n");
		return 1;
	}
	snprintf(run_id, sizeof(run_id), "%d-%lld-", (int)getpid(),
		 (long long)(clock_now(ctx.clock) / 1000000));
	pthread_t tids[64], tick_tid;
	int64_t cpu0 = cpu_us();
	int64_t t0 = clock_mono_us();
	deadline_us = t0 + (int64_t)(seconds * 1e6);
	pthread_create(&tick_tid, NULL, ticker, NULL);
	for (long t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, worker, (void *)t);
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	int64_t cpu = cpu_us() - cpu0;
	long requests = ok_count + short_count + fail_count;
	atomic_store(&ticking, 0);
	pthread_join(tick_tid, NULL);
	json_t *report = NULL;
	int inv = inventory_check_invariants(ctx.store, &report);
	json_decref(report);
	int64_t reserved = -1, oversold = -1;
	int dbrc = reserved_in_db(&reserved, &oversold);
	reserved -= reserved0;
	int sound = inv == 0 && dbrc == 0 && oversold == 0 && reserved == ok_count &&
		    ok_count <= stock * skus && fail_count == 0;
	uint64_t commits =
		metrics_counter_value(ctx.metrics, "inventory_group_commits_total", "") - commits0;
	uint64_t ops =
		metrics_counter_value(ctx.metrics, "inventory_group_commit_ops_total", "") - ops0;
	printf("engine store=%s skus=%ld threads=%d stock=%ld requests=%ld ok=%ld insufficient=%ld "
	       "failed=%ld seconds=%.2f rate=%.0f cpu_us_per_request=%.0f mean_batch=%.1f "
	       "reserved_by_run=%lld oversold_rows=%lld invariants=%s verdict=%s\n",
	       store_driver(ctx.store), skus, threads, stock, requests,
	       ok_count, short_count, fail_count, secs, (double)ok_count / secs,
	       (double)cpu / (double)(requests ? requests : 1),
	       commits ? (double)ops / (double)commits : 0.0,
	       (long long)reserved, (long long)oversold, inv == 0 ? "ok" : "VIOLATED",
	       sound ? "ok" : "FAILED");
	def->destroy(eng);
	store_free(ctx.store);
	metrics_free(ctx.metrics);
	log_free(ctx.log);
	rng_free(ctx.rng);
	clock_free(ctx.clock);
	config_free(cfg);
	if (!url) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd) != 0)
			return 1;
	}
	return sound ? 0 : 1;
}
