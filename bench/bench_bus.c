/* bench_bus: events per second through the event bus, the embedded driver
 * and the Kafka driver in the same run, so the two are compared on the same
 * machine at the same moment.
 *
 *   bench/bench_bus [--events N] [--batch B] [--dir DIR] [--payload BYTES]
 *                   [--only embedded|kafka]
 *
 * For each driver: a producer service's database (SQLite, WAL, in DIR,
 * default a new directory under /tmp) gets N outbox rows (topic "bench",
 * payload BYTES of JSON, default 200, written in transactions of 500
 * before the clock starts); then the producer's bus and a consumer's bus
 * run on their own threads as the daemon runs them, and the clock stops
 * when the consumer has applied all N (one effect row per event, in its
 * own database, in the transaction with its inbox entry and offset).
 *   embedded: the consumer polls the producer's feed over loopback HTTP
 *             (libcurl to a libmicrohttpd server, no gateway hop);
 *   kafka:    the producer's relay produces to librdkafka's mock cluster
 *             (3 brokers, in process; idempotent producer, acks=all) and
 *             the consumer reads with a consumer group.
 * Prints one line per driver (key=value, rate= events per second end to
 * end) and checks that every event was applied exactly once: exit 1
 * otherwise. */
#include <getopt.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "bus/outbox.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "sim/kafka_sim.h"
#include "store/store.h"

#define SECRET "bench-service-secret"
#define ADMIN "bench-admin"

static long events = 20000, batch = 500, payload_bytes = 200;
static char dir[512];
static const char *only;

/* ---- a consumer engine: one effect row per event ----------------------------- */

typedef struct sink {
	engine_ctx *ctx;
} sink;

static void *sink_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (store_exec(ctx->store, "CREATE TABLE IF NOT EXISTS effects (msg_id TEXT PRIMARY KEY, "
				   "seq BIGINT NOT NULL, n BIGINT NOT NULL)") != 0) {
		snprintf(err, errlen, "%s", store_errmsg(ctx->store));
		return NULL;
	}
	sink *s = calloc(1, sizeof(*s));
	if (s)
		s->ctx = ctx;
	return s;
}

static void sink_destroy(void *eng) { free(eng); }

static void sink_handle(void *eng, msg_req *req, msg_resp *resp)
{
	msg_resp_error(resp, 404, "not_found", "nothing here", NULL);
}

static int sink_consume(void *eng, const bus_msg *m)
{
	sink *s = eng;
	return store_runf(s->ctx->store,
			  "INSERT INTO effects (msg_id, seq, n) VALUES (?, ?, 1) "
			  "ON CONFLICT (msg_id) DO UPDATE SET n = effects.n + 1",
			  NULL, "ti", m->id, m->seq);
}

static const engine_sub sink_subs[] = { { "bench", NULL }, { NULL, NULL } };

static const engine_def sink_engine = {
	.name = "benchsink",
	.needs_store = 1,
	.create = sink_create,
	.handle = sink_handle,
	.destroy = sink_destroy,
	.subs = sink_subs,
	.consume = sink_consume,
};

static const engine_def source_engine = {
	.name = "benchsource",
	.needs_store = 1,
};

/* ---- one side: an engine context as the daemon fills it -------------------------- */

typedef struct side {
	engine_ctx ctx;
	config *cfg;
	FILE *logf;
	void *eng;
	bus *b;
	char instance[64];
} side;

static int64_t q_int(store *s, const char *sql)
{
	int rc = 0;
	store_stmt *st = store_prepare(s, sql, &rc);
	int64_t v = -1;
	if (st && store_step(st) == STORE_ROW)
		v = store_col_int(st, 0);
	store_reset(st);
	return v;
}

static int side_open(side *sd, const engine_def *def, const char *tag, clock_src *clock)
{
	char err[512], path[700], url[720];
	memset(sd, 0, sizeof(*sd));
	snprintf(sd->instance, sizeof(sd->instance), "%s-1", def->name);
	sd->cfg = config_new();
	sd->logf = fopen("/dev/null", "w");
	if (!sd->cfg || !sd->logf)
		return -1;
	char b[16];
	snprintf(b, sizeof(b), "%ld", batch);
	config_set(sd->cfg, "bus.batch", b);
	config_set(sd->cfg, "bus.poll_ms", "5");
	config_set(sd->cfg, "bus.topics", "bench=benchsource");
	const char *data = getenv("ECOM_DATA");
	sd->ctx = (engine_ctx){ .service = def->name,
				.instance_id = sd->instance,
				.clock = clock,
				.rng = rng_new(7),
				.log = log_new(def->name, sd->logf, clock, LOG_WARN),
				.metrics = metrics_new(),
				.config = sd->cfg,
				.admin_token = ADMIN,
				.service_secret = SECRET,
				.data_dir = data && data[0] ? data : "data" };
	snprintf(path, sizeof(path), "%s/%s", dir, tag);
	if (mkdir(path, 0700) != 0) {
		fprintf(stderr, "bench_bus: cannot make %s\n", path);
		return -1;
	}
	snprintf(url, sizeof(url), "sqlite:%s", path);
	sd->ctx.store = store_open(url, def->name, NULL, err, sizeof(err));
	if (!sd->ctx.store) {
		fprintf(stderr, "bench_bus: %s\n", err);
		return -1;
	}
	if (def->create && !(sd->eng = def->create(&sd->ctx, err, sizeof(err)))) {
		fprintf(stderr, "bench_bus: %s\n", err);
		return -1;
	}
	return 0;
}

static int side_bus(side *sd, const engine_def *def, const char *url)
{
	char err[512];
	sd->b = bus_new(&sd->ctx, def, sd->eng, url, err, sizeof(err));
	if (!sd->b)
		fprintf(stderr, "bench_bus: bus of %s: %s\n", def->name, err);
	return sd->b ? 0 : -1;
}

static void side_close(side *sd, const engine_def *def)
{
	bus_free(sd->b);
	if (sd->eng && def->destroy)
		def->destroy(sd->eng);
	store_free(sd->ctx.store);
	metrics_free(sd->ctx.metrics);
	log_free(sd->ctx.log);
	rng_free(sd->ctx.rng);
	if (sd->logf)
		fclose(sd->logf);
	config_free(sd->cfg);
}

/* events outbox rows, 500 to a transaction. */
static int fill(side *p)
{
	char *payload = malloc((size_t)payload_bytes + 64);
	if (!payload)
		return -1;
	store *s = p->ctx.store;
	int rc = 0;
	for (long i = 0; rc == 0 && i < events; i += 500) {
		rc = store_begin(s);
		for (long k = i; rc == 0 && k < i + 500 && k < events; k++) {
			int n = snprintf(payload, 64, "{\"type\":\"bench\",\"i\":%ld,\"pad\":\"", k);
			long pad = payload_bytes - n - 2;
			for (long j = 0; j < pad; j++)
				payload[n + j] = 'x';
			snprintf(payload + n + (pad > 0 ? pad : 0), 4, "\"}");
			char key[32];
			snprintf(key, sizeof(key), "k%ld", k % 64);
			rc = outbox_put(s, "bench", key, payload, NULL, clock_now(p->ctx.clock));
		}
		rc = rc ? rc : store_commit(s);
		if (rc)
			store_rollback(s);
	}
	free(payload);
	return rc;
}

static void feed_handler(void *ud, msg_req *req, msg_resp *resp)
{
	side *p = ud;
	if (!bus_handle(p->b, req, resp))
		msg_resp_error(resp, 404, "not_found", "nothing here", NULL);
}

static int loop_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	http_call_opts o = { .connect_timeout_ms = 500, .timeout_ms = timeout_ms };
	return http_client_do(target, req, resp, &o);
}

/* One driver's run; 0 when every event was applied exactly once. */
static int run(const char *driver, clock_src *clock)
{
	char tag_p[32], tag_c[32], url[600], err[256];
	snprintf(tag_p, sizeof(tag_p), "%s-producer", driver);
	snprintf(tag_c, sizeof(tag_c), "%s-consumer", driver);
	side p, c;
	http_server *srv = NULL;
	kafka_sim *sim = NULL;
	rng *srv_rng = rng_new(3);
	int rc = -1;
	if (strcmp(driver, "kafka") == 0) {
		sim = kafka_sim_new(3, 8, 0, err, sizeof(err));
		if (!sim || kafka_sim_topic(sim, "bench", 8) != 0) {
			fprintf(stderr, "bench_bus: kafka_sim: %s\n", err);
			goto out0;
		}
		snprintf(url, sizeof(url), "kafka://%s", kafka_sim_bootstraps(sim));
	} else {
		snprintf(url, sizeof(url), "embedded");
	}
	if (side_open(&p, &source_engine, tag_p, clock) || side_bus(&p, &source_engine, url) ||
	    fill(&p) != 0)
		goto out1;
	char feed[64] = "";
	if (!sim) {
		http_server_opts o = { .host = "127.0.0.1", .threads = 2, .body_limit = 65536,
				       .conn_timeout_s = 30 };
		srv = http_server_start(&o, feed_handler, &p, srv_rng, err, sizeof(err));
		if (!srv) {
			fprintf(stderr, "bench_bus: %s\n", err);
			goto out1;
		}
		snprintf(feed, sizeof(feed), "http://127.0.0.1:%d", http_server_port(srv));
	}
	if (side_open(&c, &sink_engine, tag_c, clock))
		goto out2;
	c.ctx.call = loop_call;
	c.ctx.gateway_url = feed;
	if (side_bus(&c, &sink_engine, url))
		goto out2;
	int64_t t0 = clock_mono_us(), t_first = 0, t_end = 0;
	bus_start(c.b);
	bus_start(p.b);
	int64_t until = t0 + 600 * 1000000LL;
	while (clock_mono_us() < until) {
		int64_t n = q_int(c.ctx.store, "SELECT COUNT(*) FROM effects");
		if (n > 0 && !t_first)
			t_first = clock_mono_us();
		if (n >= events) {
			t_end = clock_mono_us();
			break;
		}
		usleep(2000);
	}
	bus_stop(p.b);
	bus_stop(c.b);
	int64_t twice = q_int(c.ctx.store, "SELECT COUNT(*) FROM effects WHERE n <> 1");
	int64_t got = q_int(c.ctx.store, "SELECT COUNT(*) FROM effects");
	if (!t_end || twice != 0 || got != events) {
		fprintf(stderr, "bench_bus: %s: %lld of %ld applied, %lld more than once\n", driver,
			(long long)got, events, (long long)twice);
		goto out2;
	}
	double total = (double)(t_end - t0) / 1e6, steady = (double)(t_end - t_first) / 1e6;
	printf("driver=%s events=%ld batch=%ld payload=%ld total_s=%.2f first_ms=%.0f "
	       "rate=%.0f\n",
	       driver, events, batch, payload_bytes, total, (double)(t_first - t0) / 1e3,
	       steady > 0 ? (double)(events - 1) / steady : 0.0);
	fflush(stdout);
	rc = 0;
out2:
	http_server_stop(srv);
	side_close(&c, &sink_engine);
out1:
	side_close(&p, &source_engine);
out0:
	kafka_sim_free(sim);
	rng_free(srv_rng);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "events", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "dir", required_argument, NULL, 'd' },
		{ "payload", required_argument, NULL, 'p' },
		{ "only", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir_s = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': events = atol(optarg); break;
		case 'b': batch = atol(optarg); break;
		case 'd': dir_s = optarg; break;
		case 'p': payload_bytes = atol(optarg); break;
		case 'o': only = optarg; break;
		default:
			fprintf(stderr, "usage: bench_bus [--events N] [--batch B] [--dir DIR] "
					"[--payload BYTES] [--only embedded|kafka]\n");
			return 2;
		}
	}
	if (events < 1 || batch < 1 || batch > 1000 || payload_bytes < 40 || payload_bytes > 60000) {
		fprintf(stderr, "bench_bus: events >= 1, batch 1..1000, payload 40..60000\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/bench-bus-XXXXXX", dir_s ? dir_s : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench_bus: cannot make a directory in %s\n", dir_s ? dir_s : "/tmp");
		return 1;
	}
	http_client_global_init();
	clock_src *clock = clock_real_new();
	int rc = 0;
	if (!only || strcmp(only, "embedded") == 0)
		rc |= run("embedded", clock);
	if (!only || strcmp(only, "kafka") == 0)
		rc |= run("kafka", clock);
	clock_free(clock);
	http_client_global_cleanup();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_bus: could not remove %s\n", dir);
	return rc ? 1 : 0;
}
