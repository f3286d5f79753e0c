/* bench_reserve: reservations per second at the inventory engine itself, no
 * HTTP: the engine is created as the daemon host creates it (a real clock,
 * its store from a URL, migrations applied) and driven with msg_req values.
 *
 *   bench/bench_reserve [--store URL] [--skus N] [--count N] [--threads T]
 *
 * --skus 1 is the hot-sku case; --skus 10000 spreads reservations uniformly.
 * Every sku starts with enough stock for every reservation, so all succeed;
 * at the end the invariants are checked and oversell is counted (must be 0).
 * Prints one line: skus, threads, count, seconds, reservations/s. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static long skus = 1, count = 20000;
static int threads = 1;
static long ok_count, fail_count;
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
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	return status;
}

static void *worker(void *arg)
{
	long id = (long)arg, ok = 0, fail = 0;
	rng *r = rng_new((uint64_t)id + 1);
	char body[512];
	for (long i = id; i < count; i += threads) {
		long sku = (long)rng_below(r, (uint64_t)skus);
		snprintf(body, sizeof(body),
			 "{\"reservation_id\":\"bench-%ld\",\"order_id\":\"ord-%ld\","
			 "\"items\":[{\"sku\":\"B-%05ld\",\"qty\":1}],\"ttl_s\":600}",
			 i, i, sku);
		if (call("POST", "/v1/reservations", body) == 201)
			ok++;
		else
			fail++;
	}
	rng_free(r);
	pthread_mutex_lock(&mu);
	ok_count += ok;
	fail_count += fail;
	pthread_mutex_unlock(&mu);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *data = getenv("ECOM_DATA");
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "skus", required_argument, NULL, 'k' },
		{ "count", required_argument, NULL, 'n' },
		{ "threads", required_argument, NULL, 't' },
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
		else
			return 2;
	}
	if (skus < 1 || count < 1 || threads < 1 || threads > 64)
		return 2;
	char tmp[] = "/tmp/ecom-bench-XXXXXX";
	if (!url && !mkdtemp(tmp))
		return 1;
	char dflt[64];
	snprintf(dflt, sizeof(dflt), "sqlite:%s", tmp);
	char err[512], schema[1024];
	snprintf(schema, sizeof(schema), "%s/schema", data && *data ? data : "data");
	ctx.service = "inventory";
	ctx.instance_id = "inventory-bench";
	ctx.clock = clock_real_new();
	ctx.rng = rng_new(42);
	ctx.log = log_new("inventory", stderr, ctx.clock, LOG_WARN);
	ctx.metrics = metrics_new();
	config *cfg = config_new();
	/* An empty seed file: the bench makes its own skus. */
	FILE *f = fopen("/tmp/ecom-bench-empty.json", "w");
	fputs("[]", f);
	fclose(f);
	config_set(cfg, "catalog.seed_file", "/tmp/ecom-bench-empty.json");
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
	if (!eng) {
		fprintf(stderr, "bench_reserve: %s\n", err);
		return 1;
	}
	long per_sku = count / skus + 2;
	for (long k = 0; k < skus; k++) {
		char path[64], body[64];
		snprintf(path, sizeof(path), "/v1/inventory/B-%05ld", k);
		snprintf(body, sizeof(body), "{\"on_hand\":%ld}", per_sku * 2);
		if (call("PUT", path, body) != 200) {
			fprintf(stderr, "bench_reserve: cannot set stock\n");
			return 1;
		}
	}
	pthread_t tids[64];
	int64_t t0 = clock_mono_us();
	for (long t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, worker, (void *)t);
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	double secs = (double)(clock_mono_us() - t0) / 1e6;
	json_t *report = NULL;
	int inv = inventory_check_invariants(ctx.store, &report);
	json_decref(report);
	printf("engine  store=%s skus=%ld threads=%d count=%ld ok=%ld failed=%ld  %.2f s  %.0f reservations/s  invariants=%s\n",
	       store_driver(ctx.store), skus, threads, count, ok_count, fail_count, secs,
	       (double)ok_count / secs, inv == 0 ? "ok" : "VIOLATED");
	def->destroy(eng);
	store_free(ctx.store);
	if (!url) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
		if (system(cmd) != 0)
			return 1;
	}
	return inv == 0 && fail_count == 0 ? 0 : 1;
}
