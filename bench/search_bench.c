/* search_bench: the search index at scale (issue 13).
 *
 *   bench/search_bench [--products N] [--queries Q] [--seed S] [--dir DIR]
 *                      [--threads T] [--pg URL] [--pg-queries P] [--pg-seconds S]
 *                      [--tsv FILE] [--only CLASS] [--window W] [--dump FILE]
 *                      [--no-threads] [--set KEY=VALUE]...
 *
 * 1. Builds a search index of N products (default 1,000,000) in
 *    DIR/search-bench.db: the products `ecom seed --products N --seed S`
 *    makes (seed_product, the same rows), written straight into the index
 *    in transactions of 1,000 (as a rebuild writes a page of the catalog's
 *    export), without HTTP. Reports the build time and the file's size.
 *    With --tsv FILE it also writes the rows as tab-separated text for
 *    PostgreSQL's COPY and exits (bench/search_bench.sh loads them).
 * 2. Runs Q (default 10,000) queries from a seeded generator, one after the
 *    other, through the search engine's request handler (parsing, ranking,
 *    facets, JSON: all but the socket), and reports p50/p99/max per class of
 *    query and overall; then the same queries on T threads (default 2) for
 *    throughput. As in a running instance, the engine's tick runs every
 *    100 ms on a thread of its own meanwhile (it reads the posting lists
 *    of common words that searches asked for).
 * 3. With --pg URL (a database holding the same rows in `products` with a
 *    weighted tsvector and a GIN index; see search_bench.sh): the first P
 *    (default 1,000) of the same queries against PostgreSQL's full-text
 *    search, each paired with ours run right before it, and the same
 *    subset on T threads, each side stopped after --pg-seconds (default
 *    60) so the run stays bounded.
 *
 * An index of N products already in DIR is reused (only the queries run):
 * keep DIR between runs to measure query changes without rebuilding.
 * --dump FILE writes what each query answered (total, facets, items), to
 * compare two versions' answers; --no-threads skips the 2-thread run;
 * --set gives the search engine a configuration value.
 *
 * Loopback only, every loop bounded by counts or seconds. */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/hist.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "ops/seed.h"
#include "services/search.h"
#include "services/search_index.h"
#include "store/store.h"

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *const ADJ[] = { "compact", "deluxe",	 "classic",  "eco",	 "smart",   "rugged",
				   "premium", "everyday", "vintage", "portable", "quiet", "bright" };
static const char *const NOUN[] = {
	"headphones", "charger", "speaker", "keyboard", "monitor", "router",   "novel",
	"cookbook",   "atlas",	 "anthology", "guide",	 "memoir",  "lamp",	"rug",
	"shelf",      "clock",	 "cushion", "mirror",	"skillet", "kettle",   "knife",
	"blender",    "bowl",	 "teapot",  "hose",	"trowel",  "planter",  "pruner",
	"feeder",     "can",	 "puzzle",  "robot",	"doll",	   "set",      "kite",
	"game",	      "mat",	 "dumbbell", "racket",	"bottle",  "backpack", "light",
	"cream",      "shampoo", "balm",    "perfume",	"brush",   "soap",     "jacket",
	"scarf",      "sneakers", "shirt",  "raincoat", "gloves",  "beans",    "oil",
	"tea",	      "honey",	 "pasta",   "chocolate"
};
static const char *const CATS[] = { "electronics", "books",  "home",	"kitchen",  "garden",
				    "toys",	   "sports", "beauty", "clothing", "grocery" };
#define N_ADJ (sizeof(ADJ) / sizeof(ADJ[0]))
#define N_NOUN (sizeof(NOUN) / sizeof(NOUN[0]))
#define N_CAT (sizeof(CATS) / sizeof(CATS[0]))

enum qclass { Q_RARE, Q_NOUN, Q_ADJ_NOUN, Q_COMMON, Q_CATWORD, Q_FILTER, Q_RARE_COMMON, Q_ALL,
	      Q_NCLASS };
static const char *const QNAMES[] = { "rare: a product number",  "noun",
				      "adjective + noun",	 "adjective",
				      "category word",		 "noun + category/price filter",
				      "number + adjective",	 "in every product" };
/* Queries run before the measured ones (their own seed). */
#define WARM_QUERIES 1000
/* Share of each class in the mix, in percent. */
static const int QSHARE[] = { 25, 25, 20, 10, 5, 5, 5, 5 };

typedef struct bquery {
	enum qclass cls;
	char q[96];	   /* the words */
	char params[256]; /* the query string of GET /v1/search */
	char category[24];
	int64_t min_price, max_price; /* -1: none */
} bquery;

static void make_queries(bquery *qs, int n, int64_t products, uint64_t seed)
{
	rng *r = rng_new(seed);
	for (int i = 0; i < n; i++) {
		bquery *b = &qs[i];
		memset(b, 0, sizeof(*b));
		b->min_price = b->max_price = -1;
		int roll = (int)rng_below(r, 100), acc = 0;
		b->cls = Q_RARE;
		for (int c = 0; c < Q_NCLASS; c++) {
			acc += QSHARE[c];
			if (roll < acc) {
				b->cls = (enum qclass)c;
				break;
			}
		}
		const char *adj = ADJ[rng_below(r, N_ADJ)];
		const char *noun = NOUN[rng_below(r, N_NOUN)];
		int64_t num = 1 + (int64_t)rng_below(r, (uint64_t)products);
		switch (b->cls) {
		case Q_RARE: snprintf(b->q, sizeof(b->q), "%" PRId64, num); break;
		case Q_NOUN: snprintf(b->q, sizeof(b->q), "%s", noun); break;
		case Q_ADJ_NOUN: snprintf(b->q, sizeof(b->q), "%s %s", adj, noun); break;
		case Q_COMMON: snprintf(b->q, sizeof(b->q), "%s", adj); break;
		case Q_CATWORD: snprintf(b->q, sizeof(b->q), "%s", CATS[rng_below(r, N_CAT)]); break;
		case Q_FILTER:
			snprintf(b->q, sizeof(b->q), "%s", rng_below(r, 2) ? noun : adj);
			if (rng_below(r, 2))
				snprintf(b->category, sizeof(b->category), "%s",
					 CATS[rng_below(r, N_CAT)]);
			else {
				b->min_price = 1000 * (int64_t)rng_below(r, 20);
				b->max_price = b->min_price + 2000;
			}
			break;
		case Q_RARE_COMMON:
			snprintf(b->q, sizeof(b->q), "%s %" PRId64, adj, num);
			break;
		default: snprintf(b->q, sizeof(b->q), "%s", rng_below(r, 2) ? "synthetic" : "range");
		}
		int k = snprintf(b->params, sizeof(b->params), "q=");
		for (const char *p = b->q; *p; p++)
			b->params[k++] = *p == ' ' ? '+' : *p;
		b->params[k] = '\0';
		/* A finished query (as after pressing enter): no prefix reading
		 * of the last word. */
		k += snprintf(b->params + k, sizeof(b->params) - (size_t)k, "+&limit=20");
		if (b->category[0])
			k += snprintf(b->params + k, sizeof(b->params) - (size_t)k, "&category=%s",
				      b->category);
		if (b->min_price >= 0)
			snprintf(b->params + k, sizeof(b->params) - (size_t)k,
				 "&min_price=%" PRId64 "&max_price=%" PRId64, b->min_price,
				 b->max_price);
	}
	rng_free(r);
}

/* ---- the index ----------------------------------------------------------- */

typedef struct bench {
	const char *dir;
	int64_t products;
	uint64_t seed;
	clock_src *clock;
	rng *rng;
	FILE *devnull;
	logger *log;
	metrics *metrics;
	config *config;
	store *store;
	engine_ctx ctx;
	void *eng;
	bquery *qs;
	int nq;
} bench;

static double now_s(void) { return (double)clock_mono_us() / 1e6; }

/* CPU time of the calling thread, µs: what a query cost, apart from the
 * waits a busy machine adds to its wall time. */
static int64_t cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Product i of the synthetic catalog (seed_product's text, parsed), or
 * NULL. */
static json_t *product_at(rng *r, int64_t i)
{
	char buf[1024];
	int n = seed_product(r, i, buf, sizeof(buf));
	return n < 0 ? NULL : json_loadb(buf, (size_t)n, 0, NULL);
}

static int build(bench *b)
{
	search_index_opts o = { .rank_window = 300, .name_weight = 3, .desc_weight = 1, .k1 = 1.2,
				.b = 0.75 };
	char err[256];
	int fresh = 0;
	search_index *ix = search_index_open(b->store, &o, &fresh, err, sizeof(err));
	if (!ix) {
		fprintf(stderr, "search_bench: %s\n", err);
		return 1;
	}
	int64_t have = 0;
	search_index_count(ix, &have);
	if (have == b->products) {
		printf("index: reusing the %" PRId64 " products in %s\n", have, b->dir);
		search_index_free(ix);
		return 0;
	}
	if (have != 0) {
		fprintf(stderr, "search_bench: %s holds %" PRId64 " products, not %" PRId64
				"; remove it\n", b->dir, have, b->products);
		search_index_free(ix);
		return 1;
	}
	search_batch *batch = search_batch_new();
	rng *r = rng_new(b->seed);
	double t0 = now_s();
	int rc = 0;
	for (int64_t i = 0; rc == 0 && i < b->products;) {
		rc = store_begin(b->store);
		for (int k = 0; rc == 0 && k < 1000 && i < b->products; k++, i++) {
			json_t *p = product_at(r, i);
			if (!p) {
				rc = ERR_NOMEM;
				break;
			}
			search_doc d = {
				.sku = json_string_value(json_object_get(p, "sku")),
				.name = json_string_value(json_object_get(p, "name")),
				.description = json_string_value(json_object_get(p, "description")),
				.category = json_string_value(json_object_get(p, "category")),
				.currency = json_string_value(json_object_get(p, "currency")),
				.price_cents = json_integer_value(json_object_get(p, "price_cents")),
				.version = 1,
			};
			int applied = 0;
			rc = search_index_put(ix, batch, &d, 1, &applied);
			json_decref(p);
		}
		if (rc == 0)
			rc = search_index_flush(ix, batch);
		if (rc == 0)
			rc = store_commit(b->store);
		if (rc)
			store_rollback(b->store);
		if (i % 100000 == 0)
			fprintf(stderr, "indexed %" PRId64 " (%.0f/s)\n", i, (double)i / (now_s() - t0));
	}
	double t_write = now_s() - t0;
	if (rc == 0)
		rc = search_index_optimize(ix);
	if (rc == 0)
		rc = search_index_set_meta(ix, "built", 1, NULL);
	if (rc == 0)
		rc = search_index_set_meta(ix, "gen", 1, NULL);
	double t_all = now_s() - t0;
	rng_free(r);
	search_batch_free(batch);
	search_index_free(ix);
	if (rc) {
		fprintf(stderr, "search_bench: build failed: %s (%s)\n", err_name(rc),
			store_errmsg(b->store));
		return 1;
	}
	store_exec(b->store, "PRAGMA wal_checkpoint(TRUNCATE)");
	char path[1024];
	snprintf(path, sizeof(path), "%s/search-bench.db", b->dir);
	struct stat sb;
	stat(path, &sb);
	printf("index: %" PRId64 " products in %.1f s (%.0f/s; %.1f s writing, %.1f s merging "
	       "segments), %.0f MiB\n",
	       b->products, t_all, (double)b->products / t_all, t_write, t_all - t_write,
	       (double)sb.st_size / 1048576.0);
	return 0;
}

/* ---- queries --------------------------------------------------------------- */

/* One query through the handler. *us and *cpu (may be NULL) get the
 * handler's wall and CPU time alone (not the reading of the answer, which
 * is the client's work); *total its total; with dump, one line of what it
 * answered (total, ranking, query, facets, skus and scores of the items). */
static int run_one(bench *b, const bquery *q, int64_t *total, int64_t *us, int64_t *cpu,
		   FILE *dump)
{
	char path[400];
	snprintf(path, sizeof(path), "/v1/search?%s", q->params);
	msg_req req;
	msg_resp resp;
	msg_req_init(&req, "GET", path);
	msg_resp_init(&resp);
	int64_t s = clock_mono_us(), c0 = cpu ? cpu_us() : 0;
	search_engine.handle(b->eng, &req, &resp);
	if (us)
		*us = clock_mono_us() - s;
	if (cpu)
		*cpu = cpu_us() - c0;
	int status = resp.status;
	if ((total || dump) && status == 200) {
		json_t *v = json_loadb(resp.body, resp.body_len, 0, NULL);
		if (total)
			*total = json_integer_value(json_object_get(v, "total"));
		if (dump) {
			fprintf(dump, "%s | %" PRId64 " %s [%s] ", q->params,
				(int64_t)json_integer_value(json_object_get(v, "total")),
				json_string_value(json_object_get(v, "ranking")),
				json_string_value(json_object_get(v, "query")));
			char *f = json_dumps(json_object_get(v, "facets"), JSON_SORT_KEYS | JSON_COMPACT);
			fprintf(dump, "%s", f ? f : "-");
			free(f);
			size_t i;
			json_t *it;
			json_array_foreach(json_object_get(v, "items"), i, it)
				fprintf(dump, " %s:%.6f", json_string_value(json_object_get(it, "sku")),
					json_real_value(json_object_get(it, "score")));
			fputc('\n', dump);
		}
		json_decref(v);
	} else if (dump) {
		fprintf(dump, "%s | status %d\n", q->params, status);
	}
	msg_req_clear(&req);
	msg_resp_clear(&resp);
	return status;
}

static void report(const char *what, hist *h)
{
	printf("  %-32s n=%6" PRIu64 "  p50 %7.3f ms  p99 %7.3f ms  max %8.3f ms  mean %7.3f ms\n",
	       what, hist_count_le(h, INT64_MAX), (double)hist_percentile(h, 50) / 1000.0,
	       (double)hist_percentile(h, 99) / 1000.0, (double)hist_percentile(h, 100) / 1000.0,
	       hist_mean(h) / 1000.0);
}

typedef struct worker {
	bench *b;
	int from, to, step;
	int pg;
	store *pgs;
	double deadline;
	int done;
	int errors;
} worker;

static int run_pg(store *s, const bquery *q, int64_t *total);

static void *work(void *arg)
{
	worker *w = arg;
	for (int i = w->from; i < w->to; i += w->step) {
		if (w->deadline > 0 && now_s() > w->deadline)
			break;
		int ok = w->pg ? run_pg(w->pgs, &w->b->qs[i], NULL) == 0
			       : run_one(w->b, &w->b->qs[i], NULL, NULL, NULL, NULL) == 200;
		w->errors += !ok;
		w->done++;
	}
	return NULL;
}

/* Runs queries [0, n) on t threads; queries per second. */
static double throughput(bench *b, int n, int t, int pg, store *pgs, double seconds, int *done)
{
	worker ws[16];
	pthread_t tid[16];
	double t0 = now_s();
	for (int k = 0; k < t; k++) {
		ws[k] = (worker){ b, k, n, t, pg, pgs, seconds > 0 ? t0 + seconds : 0, 0, 0 };
		pthread_create(&tid[k], NULL, work, &ws[k]);
	}
	*done = 0;
	int errors = 0;
	for (int k = 0; k < t; k++) {
		pthread_join(tid[k], NULL);
		*done += ws[k].done;
		errors += ws[k].errors;
	}
	double dt = now_s() - t0;
	if (errors)
		printf("  (%d queries failed)\n", errors);
	return (double)*done / dt;
}

/* The host's tick thread: the engine's tick every 100 ms (engine.tick_ms),
 * which reads the posting lists searches asked for. */
typedef struct ticker {
	bench *b;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
} ticker;

static void *tick_loop(void *arg)
{
	ticker *t = arg;
	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		pthread_mutex_unlock(&t->mu);
		search_engine.tick(t->b->eng, clock_now(t->b->clock));
		pthread_mutex_lock(&t->mu);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (!t->stop)
			pthread_cond_timedwait(&t->cv, &t->mu, &until);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* ---- PostgreSQL -------------------------------------------------------------- */

/* The same search in PostgreSQL: every word (AND), ranked by ts_rank over
 * the weighted tsvector (name A, description B), 20 rows; then the
 * category facets and the total. Two statements, as the search needs both. */
static int run_pg(store *s, const bquery *q, int64_t *total)
{
	static const char *const TOP[4] = {
		"SELECT sku, name, description, category, price_cents, currency, ts_rank(tsv, q) AS r"
		" FROM products, plainto_tsquery('simple', ?) q WHERE tsv @@ q"
		" ORDER BY r DESC, sku LIMIT 20",
		"SELECT sku, name, description, category, price_cents, currency, ts_rank(tsv, q) AS r"
		" FROM products, plainto_tsquery('simple', ?) q WHERE tsv @@ q AND category = ?"
		" ORDER BY r DESC, sku LIMIT 20",
		"SELECT sku, name, description, category, price_cents, currency, ts_rank(tsv, q) AS r"
		" FROM products, plainto_tsquery('simple', ?) q WHERE tsv @@ q"
		" AND price_cents >= ? AND price_cents <= ? ORDER BY r DESC, sku LIMIT 20",
	};
	static const char *const FACETS[3] = {
		"SELECT category, COUNT(*) FROM products WHERE tsv @@ plainto_tsquery('simple', ?)"
		" GROUP BY category",
		"SELECT category, COUNT(*) FROM products WHERE tsv @@ plainto_tsquery('simple', ?)"
		" GROUP BY category",
		"SELECT category, COUNT(*) FROM products WHERE tsv @@ plainto_tsquery('simple', ?)"
		" AND price_cents >= ? AND price_cents <= ? GROUP BY category",
	};
	int v = q->category[0] ? 1 : q->min_price >= 0 ? 2 : 0;
	int err = 0, rc = 0;
	int64_t sum = 0, in_cat = 0;
	for (int stmt = 0; stmt < 2 && rc >= 0; stmt++) {
		store_stmt *st = store_prepare(s, stmt == 0 ? TOP[v] : FACETS[v], &err);
		if (!st)
			return err;
		store_bind_text(st, 1, q->q);
		if (v == 1 && stmt == 0)
			store_bind_text(st, 2, q->category);
		if (v == 2) {
			store_bind_int(st, 2, q->min_price);
			store_bind_int(st, 3, q->max_price);
		}
		while ((rc = store_step(st)) == STORE_ROW)
			if (stmt == 1) {
				sum += store_col_int(st, 1);
				if (v == 1 && strcmp(store_col_text(st, 0), q->category) == 0)
					in_cat = store_col_int(st, 1);
			}
		store_reset(st);
	}
	if (total)
		*total = v == 1 ? in_cat : sum;
	return rc < 0 ? rc : 0;
}

/* ---- main ------------------------------------------------------------------------ */

static int write_tsv(bench *b, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return 1;
	rng *r = rng_new(b->seed);
	for (int64_t i = 0; i < b->products; i++) {
		json_t *p = product_at(r, i);
		if (!p)
			break;
		/* seed_product's strings hold no tab, newline or backslash */
		fprintf(f, "%s\t%s\t%s\t%s\t%" PRId64 "\t%s\n",
			json_string_value(json_object_get(p, "sku")),
			json_string_value(json_object_get(p, "name")),
			json_string_value(json_object_get(p, "description")),
			json_string_value(json_object_get(p, "category")),
			(int64_t)json_integer_value(json_object_get(p, "price_cents")),
			json_string_value(json_object_get(p, "currency")));
		json_decref(p);
	}
	rng_free(r);
	return fclose(f) != 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "products", required_argument, NULL, 'n' }, { "queries", required_argument, NULL, 'q' },
		{ "seed", required_argument, NULL, 's' },     { "dir", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },  { "pg", required_argument, NULL, 'p' },
		{ "pg-queries", required_argument, NULL, 'P' },
		{ "pg-seconds", required_argument, NULL, 'S' },
		{ "tsv", required_argument, NULL, 'T' },      { "only", required_argument, NULL, 'o' },
		{ "window", required_argument, NULL, 'w' },
		{ "dump", required_argument, NULL, 'D' },
		{ "no-threads", no_argument, NULL, 'N' },
		{ "set", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	bench b = { .dir = "/tmp/search-bench", .products = 1000000, .seed = 1 };
	int nq = 10000, threads = 2, pg_queries = 1000, only = -1;
	double pg_seconds = 60;
	const char *pg_url = NULL, *tsv = NULL, *window = NULL, *dump_path = NULL;
	int no_threads = 0, nsets = 0;
	const char *sets[16];
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': b.products = atoll(optarg); break;
		case 'q': nq = atoi(optarg); break;
		case 's': b.seed = (uint64_t)atoll(optarg); break;
		case 'd': b.dir = optarg; break;
		case 't': threads = atoi(optarg); break;
		case 'p': pg_url = optarg; break;
		case 'P': pg_queries = atoi(optarg); break;
		case 'S': pg_seconds = atof(optarg); break;
		case 'T': tsv = optarg; break;
		case 'o': only = atoi(optarg); break;
		case 'w': window = optarg; break;
		case 'D': dump_path = optarg; break;
		case 'N': no_threads = 1; break;
		case 'C':
			if (nsets < 16)
				sets[nsets++] = optarg;
			break;
		default: fprintf(stderr, "search_bench: bad option\n"); return 2;
		}
	}
	if (b.products < 1 || nq < 1 || threads < 1 || threads > 16) {
		fprintf(stderr, "search_bench: bad numbers\n");
		return 2;
	}
	if (tsv)
		return write_tsv(&b, tsv);
	char url[1024], err[512];
	snprintf(url, sizeof(url), "sqlite:%s", b.dir);
	b.store = store_open(url, "search-bench", NULL, err, sizeof(err));
	if (!b.store) {
		fprintf(stderr, "search_bench: %s\n", err);
		return 1;
	}
	if (build(&b)) {
		store_free(b.store);
		return 1;
	}
	b.clock = clock_real_new();
	b.rng = rng_new(1);
	b.devnull = fopen("/dev/null", "w");
	b.log = log_new("search", b.devnull, b.clock, LOG_WARN);
	b.metrics = metrics_new();
	b.config = config_new();
	if (window && config_set(b.config, "search.rank_window", window) != 0) {
		fprintf(stderr, "search_bench: bad --window\n");
		return 2;
	}
	for (int i = 0; i < nsets; i++) {
		char key[128];
		const char *eq = strchr(sets[i], '=');
		if (!eq || (size_t)(eq - sets[i]) >= sizeof(key)) {
			fprintf(stderr, "search_bench: --set KEY=VALUE\n");
			return 2;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - sets[i]), sets[i]);
		if (config_set(b.config, key, eq + 1) != 0) {
			fprintf(stderr, "search_bench: bad --set %s\n", sets[i]);
			return 2;
		}
	}
	b.ctx = (engine_ctx){ .service = "search", .instance_id = "search-bench", .clock = b.clock,
			      .rng = b.rng, .store = b.store, .log = b.log, .metrics = b.metrics,
			      .config = b.config, .admin_token = "bench" };
	b.eng = search_engine.create(&b.ctx, err, sizeof(err));
	if (!b.eng) {
		fprintf(stderr, "search_bench: %s\n", err);
		return 1;
	}
	b.nq = nq;
	b.qs = calloc((size_t)nq, sizeof(*b.qs));
	make_queries(b.qs, nq, b.products, b.seed + 1000);
	if (only >= 0) { /* one class alone, for profiling */
		int k = 0;
		for (int i = 0; i < nq; i++)
			if ((int)b.qs[i].cls == only)
				b.qs[k++] = b.qs[i];
		nq = b.nq = k;
	}

	ticker tk = { .b = &b, .stop = 0 };
	pthread_mutex_init(&tk.mu, NULL);
	pthread_cond_init(&tk.cv, NULL);
	pthread_t tick_tid;
	pthread_create(&tick_tid, NULL, tick_loop, &tk);
	/* Warm up as a running instance would be: 1,000 other queries of the
	 * same mix (another seed: none of the measured ones), then a second
	 * for the ticks to read the posting lists those asked for. */
	bquery *warm = calloc(WARM_QUERIES, sizeof(*warm));
	make_queries(warm, WARM_QUERIES, b.products, b.seed + 2000);
	for (int i = 0; i < WARM_QUERIES; i++)
		run_one(&b, &warm[i], NULL, NULL, NULL, NULL);
	free(warm);
	struct timespec pause = { 1, 0 };
	nanosleep(&pause, NULL);
	hist *all = hist_new(), *cpu = hist_new(), *cls[Q_NCLASS], *cls_cpu[Q_NCLASS];
	int64_t matched[Q_NCLASS] = { 0 }, counted[Q_NCLASS] = { 0 };
	for (int k = 0; k < Q_NCLASS; k++) {
		cls[k] = hist_new();
		cls_cpu[k] = hist_new();
	}
	FILE *dump = dump_path ? fopen(dump_path, "w") : NULL;
	if (dump_path && !dump) {
		fprintf(stderr, "search_bench: cannot write %s\n", dump_path);
		return 1;
	}
	int failed = 0;
	double t0 = now_s();
	for (int i = 0; i < nq; i++) {
		int64_t total = 0, us = 0, cus = 0;
		int status = run_one(&b, &b.qs[i], &total, &us, &cus, dump);
		hist_record(cpu, cus);
		hist_record(cls_cpu[b.qs[i].cls], cus);
		failed += status != 200;
		hist_record(all, us);
		hist_record(cls[b.qs[i].cls], us);
		matched[b.qs[i].cls] += total;
		counted[b.qs[i].cls]++;
	}
	double dt = now_s() - t0;
	if (dump)
		fclose(dump);
	printf("ecom search, %d queries one at a time (%.0f/s)%s:\n", nq, (double)nq / dt,
	       failed ? " SOME FAILED" : "");
	for (int k = 0; k < Q_NCLASS; k++) {
		char what[96];
		snprintf(what, sizeof(what), "%s (~%" PRId64 " hits)", QNAMES[k],
			 counted[k] ? matched[k] / counted[k] : 0);
		report(what, cls[k]);
	}
	report("all", all);
	printf("the same, CPU time of the query thread (what a query costs, without the waits of a busy machine):\n");
	for (int k = 0; k < Q_NCLASS; k++)
		report(QNAMES[k], cls_cpu[k]);
	report("all", cpu);
	int done = 0;
	if (!no_threads) {
		double qps = throughput(&b, nq, threads, 0, NULL, 0, &done);
		printf("ecom search, %d threads: %.0f queries/s (%d queries)\n", threads, qps, done);
	}

	int rc = failed ? 1 : 0;
	if (pg_url) {
		store *pgs = store_open(pg_url, "public", NULL, err, sizeof(err));
		if (!pgs) {
			fprintf(stderr, "search_bench: %s\n", err);
			return 1;
		}
		int n = pg_queries < nq ? pg_queries : nq;
		hist *ours = hist_new(), *theirs = hist_new();
		int mismatched = 0, pg_failed = 0, paired = 0;
		double pt0 = now_s();
		for (int i = 0; i < n && now_s() - pt0 < pg_seconds; i++) {
			int64_t a = 0, bt = 0;
			int64_t us = 0;
			run_one(&b, &b.qs[i], &a, &us, NULL, NULL);
			hist_record(ours, us);
			int64_t s = clock_mono_us();
			pg_failed += run_pg(pgs, &b.qs[i], &bt) != 0;
			hist_record(theirs, clock_mono_us() - s);
			mismatched += a != bt;
			paired++;
		}
		printf("paired, query by query, the first %d queries (%.0f s):\n", paired,
		       now_s() - pt0);
		report("ecom search (SQLite FTS5)", ours);
		report("PostgreSQL tsvector + GIN", theirs);
		printf("  totals that differ: %d; PostgreSQL errors: %d\n", mismatched, pg_failed);
		int d1 = 0, d2 = 0;
		double q1 = throughput(&b, paired, threads, 0, NULL, pg_seconds, &d1);
		double q2 = throughput(&b, paired, threads, 1, pgs, pg_seconds, &d2);
		printf("%d threads on those queries: ecom search %.0f/s (%d), PostgreSQL %.1f/s (%d)\n",
		       threads, q1, d1, q2, d2);
		hist_free(ours);
		hist_free(theirs);
		store_free(pgs);
		rc |= pg_failed ? 1 : 0;
	}
	pthread_mutex_lock(&tk.mu);
	tk.stop = 1;
	pthread_cond_signal(&tk.cv);
	pthread_mutex_unlock(&tk.mu);
	pthread_join(tick_tid, NULL);
	for (int k = 0; k < Q_NCLASS; k++) {
		hist_free(cls[k]);
		hist_free(cls_cpu[k]);
	}
	hist_free(all);
	hist_free(cpu);
	search_engine.destroy(b.eng);
	free(b.qs);
	store_free(b.store);
	config_free(b.config);
	metrics_free(b.metrics);
	log_free(b.log);
	fclose(b.devnull);
	rng_free(b.rng);
	clock_free(b.clock);
	return rc;
}
