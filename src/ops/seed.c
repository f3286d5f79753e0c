/* seed: synthetic catalogs and users. */
#include "ops/seed.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "net/http_multi.h"
#include "ops/cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A batch's body stays under the platform's default body limit (64 KiB)
 * and the bulk routes' 1000 items. */
#define BATCH_BYTES 60000
#define BATCH_MAX 1000
/* Batches in flight at once: the client makes the next while the catalog
 * parses one and writes another. */
#define IN_FLIGHT 4
#define ATTEMPTS 3

static const char HELP[] =
	"usage: ecom seed [--products N] [--users N] [--seed S] [--state DIR | --url URL]\n"
	"\n"
	"Generates a reproducible synthetic data set and loads it into the running\n"
	"platform through the gateway: the same seed (default 1) gives the same data.\n"
	"Products get skus SYN-00000001.. and are upserted (POST /v1/products/_bulk),\n"
	"so seeding twice is safe. Users are syn-S-I@synthetic.ecom.test with the\n"
	"password 'synthetic-S' (S the seed), created through the admin-only bulk\n"
	"route POST /v1/users/_bulk with their passwords hashed here at argon2id's\n"
	"minimum cost: synthetic accounts, never real ones; an existing one is kept.\n"
	"\n"
	"  --products N   synthetic products to generate (up to 100000000)\n"
	"  --users N      synthetic users (up to 10000000)\n"
	"  --seed S       the seed (default 1)\n";

static const char *const categories[] = { "electronics", "books",  "home",   "kitchen",
					  "garden",      "toys",   "sports", "beauty",
					  "clothing",    "grocery" };
static const char *const adjectives[] = { "Compact", "Deluxe",  "Classic", "Eco",
					  "Smart",   "Rugged",  "Premium", "Everyday",
					  "Vintage", "Portable", "Quiet",  "Bright" };
static const char *const nouns[][6] = {
	{ "Headphones", "Charger", "Speaker", "Keyboard", "Monitor", "Router" },
	{ "Novel", "Cookbook", "Atlas", "Anthology", "Field Guide", "Memoir" },
	{ "Lamp", "Rug", "Shelf", "Clock", "Cushion", "Mirror" },
	{ "Skillet", "Kettle", "Knife Set", "Blender", "Mixing Bowl", "Teapot" },
	{ "Hose", "Trowel", "Planter", "Pruner", "Bird Feeder", "Watering Can" },
	{ "Puzzle", "Robot", "Doll", "Building Set", "Kite", "Board Game" },
	{ "Yoga Mat", "Dumbbell", "Tennis Racket", "Water Bottle", "Backpack", "Bike Light" },
	{ "Face Cream", "Shampoo", "Lip Balm", "Perfume", "Hair Brush", "Soap" },
	{ "Jacket", "Scarf", "Sneakers", "T-Shirt", "Raincoat", "Gloves" },
	{ "Coffee Beans", "Olive Oil", "Green Tea", "Honey", "Pasta", "Dark Chocolate" },
};
static const char *const first_names[] = { "Ada",  "Ben",   "Cleo", "Dev",  "Edith", "Farid",
					   "Gus",  "Hana",  "Ivo",  "June", "Kofi",  "Lena",
					   "Milo", "Nora",  "Omar", "Pia",  "Quinn", "Rosa",
					   "Sami", "Tess",  "Uma",  "Vik",  "Wren",  "Yara" };
static const char *const last_names[] = { "Abbott", "Berg",   "Costa", "Dube",  "Evans",
					  "Fischer", "Garcia", "Haddad", "Ito",  "Jensen",
					  "Kowal",  "Larsen", "Moreau", "Nakamura", "Okafor",
					  "Petrov", "Quint",  "Rossi", "Silva", "Tanaka" };

#define NCAT (sizeof(categories) / sizeof(categories[0]))
#define NADJ (sizeof(adjectives) / sizeof(adjectives[0]))
#define NFIRST (sizeof(first_names) / sizeof(first_names[0]))
#define NLAST (sizeof(last_names) / sizeof(last_names[0]))

/* ---- generating ------------------------------------------------------------------- */

int seed_product(rng *r, int64_t i, char *buf, size_t len)
{
	size_t c = (size_t)rng_below(r, NCAT);
	const char *adj = adjectives[rng_below(r, NADJ)];
	const char *noun = nouns[c][rng_below(r, 6)];
	/* Prices spread over two orders of magnitude, most of them low. */
	double u = rng_double(r);
	int64_t price = 199 + (int64_t)(u * u * u * 49800.0);
	price = price / 100 * 100 + 99;
	char lower[16];
	size_t k = 0;
	for (; adj[k] && k + 1 < sizeof(lower); k++)
		lower[k] = (char)(adj[k] >= 'A' && adj[k] <= 'Z' ? adj[k] - 'A' + 'a' : adj[k]);
	lower[k] = '\0';
	/* Every string here is plain ASCII without quotes or backslashes: no
	 * escaping needed. */
	int n = snprintf(buf, len,
			 "{\"sku\":\"SYN-%08" PRId64 "\",\"name\":\"%s %s %" PRId64 "\","
			 "\"description\":\"A %s %s from the synthetic %s range.\","
			 "\"category\":\"%s\",\"price_cents\":%" PRId64 ",\"currency\":\"USD\"}",
			 i + 1, adj, noun, i + 1, lower, noun, categories[c], categories[c], price);
	return n < 0 || (size_t)n >= len ? ERR_TOO_LARGE : n;
}

int seed_user(rng *r, uint64_t seed, int64_t i, char *buf, size_t len)
{
	const char *first = first_names[rng_below(r, NFIRST)];
	const char *last = last_names[rng_below(r, NLAST)];
	char pw[48], hash[crypto_pwhash_STRBYTES];
	snprintf(pw, sizeof(pw), "synthetic-%" PRIu64, seed);
	/* The cheapest argon2id libsodium makes (a fresh salt each): these are
	 * test accounts. */
	if (crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_MIN,
			      crypto_pwhash_MEMLIMIT_MIN) != 0)
		return ERR_NOMEM;
	int n = snprintf(buf, len,
			 "{\"email\":\"syn-%" PRIu64 "-%" PRId64 "@synthetic.ecom.test\","
			 "\"name\":\"%s %s\",\"password_hash\":\"%s\"}",
			 seed, i + 1, first, last, hash);
	return n < 0 || (size_t)n >= len ? ERR_TOO_LARGE : n;
}

/* ---- sending: batches to a bulk route, a few in flight --------------------------------- */

typedef struct slot {
	http_xfer *x;
	char *body;
	size_t len;
	int64_t items;
	int attempts;
	int busy;
} slot;

typedef struct loader {
	const char *route, *key, *what, *token;
	int64_t n, made, done;
	int64_t created; /* users: those that did not exist */
	uint64_t seed, stream; /* the data's seed; the rng's */
	rng *r;
	int (*make)(rng *, uint64_t, int64_t, char *, size_t);
	char pending[1024]; /* one item made that did not fit the last batch */
	int pending_len;
	http_multi *m;
	slot slots[IN_FLIGHT];
	int rc;
	char *err;
	size_t errlen;
	FILE *progress;
	int64_t t0;
	int64_t reported;
} loader;

static int make_product(rng *r, uint64_t seed, int64_t i, char *buf, size_t len)
{
	(void)seed;
	return seed_product(r, i, buf, len);
}

/* The next batch's body into sl: items while they fit. 0, or an error. */
static int fill(loader *l, slot *sl)
{
	size_t cap = BATCH_BYTES + 64, at = 0;
	char *b = sl->body ? sl->body : malloc(cap);
	if (!b)
		return ERR_NOMEM;
	sl->body = b;
	at = (size_t)snprintf(b, cap, "{\"%s\":[", l->key);
	sl->items = 0;
	while (sl->items < BATCH_MAX && (l->pending_len || l->made < l->n)) {
		if (!l->pending_len) {
			int n = l->make(l->r, l->seed, l->made, l->pending, sizeof(l->pending));
			if (n < 0)
				return n;
			l->pending_len = n;
			l->made++;
		}
		if (at + (size_t)l->pending_len + 3 > BATCH_BYTES && sl->items > 0)
			break;
		if (sl->items)
			b[at++] = ',';
		memcpy(b + at, l->pending, (size_t)l->pending_len);
		at += (size_t)l->pending_len;
		l->pending_len = 0;
		sl->items++;
	}
	memcpy(b + at, "]}", 3);
	sl->len = at + 2;
	sl->attempts = 0;
	return 0;
}

static void on_done(http_xfer *x, void *ud);

static int send_slot(loader *l, slot *sl)
{
	http_xfer_req q = { .method = "POST", .target = l->route, .body = sl->body,
			    .bearer = l->token, .timeout_ms = 60000, .keep_body = 1 };
	sl->attempts++;
	sl->busy = 1;
	int rc = http_multi_start(l->m, sl->x, &q, on_done, l);
	if (rc)
		sl->busy = 0;
	return rc;
}

static void on_done(http_xfer *x, void *ud)
{
	loader *l = ud;
	slot *sl = NULL;
	for (int i = 0; i < IN_FLIGHT; i++)
		if (l->slots[i].x == x)
			sl = &l->slots[i];
	sl->busy = 0;
	int status = http_xfer_status(x);
	size_t len = 0;
	const char *body = http_xfer_body(x, &len);
	if (status == 200) {
		l->done += sl->items;
		sl->items = 0;
		json_t *v = body ? json_loadb(body, len, 0, NULL) : NULL;
		l->created += json_integer_value(json_object_get(v, "created"));
		json_decref(v);
		return;
	}
	/* The bulk routes upsert or skip what exists, so a batch lost to a
	 * restarting instance (503, no answer) can be sent again. */
	if ((status == 503 || status == 0) && sl->attempts < ATTEMPTS && send_slot(l, sl) == 0)
		return;
	if (!l->rc) {
		l->rc = status ? ERR_IO : http_xfer_error(x);
		if (status)
			snprintf(l->err, l->errlen, "%s: HTTP %d: %.300s", l->route, status,
				 body ? body : "");
		else
			snprintf(l->err, l->errlen, "%s: %s", l->route, err_name(l->rc));
	}
}

static void report_progress(loader *l, int last)
{
	if (!l->progress || (!last && l->done - l->reported < 100000))
		return;
	l->reported = l->done;
	double secs = (double)(clock_mono_us() - l->t0) / 1e6;
	fprintf(l->progress, "seeded %" PRId64 "/%" PRId64 " %s (%.0f/s)\n", l->done, l->n, l->what,
		secs > 0 ? (double)l->done / secs : 0.0);
}

static int load(loader *l, const char *url)
{
	l->r = rng_new(l->stream);
	l->m = http_multi_new(url, IN_FLIGHT * 2);
	int rc = l->r && l->m ? 0 : ERR_NOMEM;
	for (int i = 0; rc == 0 && i < IN_FLIGHT; i++)
		if (!(l->slots[i].x = http_xfer_new()))
			rc = ERR_NOMEM;
	if (rc)
		snprintf(l->err, l->errlen, "out of memory");
	l->t0 = clock_mono_us();
	while (rc == 0 && !l->rc) {
		for (int i = 0; i < IN_FLIGHT && !l->rc; i++) {
			slot *sl = &l->slots[i];
			if (sl->busy || (!l->pending_len && l->made >= l->n))
				continue;
			if ((rc = fill(l, sl)) != 0 || (rc = send_slot(l, sl)) != 0)
				snprintf(l->err, l->errlen, "cannot send a batch: %s", err_name(rc));
		}
		if (rc || http_multi_in_flight(l->m) == 0)
			break;
		if (http_multi_run(l->m, 1000) < 0) {
			rc = ERR_IO;
			snprintf(l->err, l->errlen, "the HTTP client failed");
		}
		report_progress(l, 0);
	}
	if (!rc)
		rc = l->rc;
	if (!rc)
		report_progress(l, 1);
	http_multi_free(l->m);
	for (int i = 0; i < IN_FLIGHT; i++) {
		http_xfer_free(l->slots[i].x);
		free(l->slots[i].body);
	}
	rng_free(l->r);
	return rc;
}

int seed_products(const char *url, const char *token, int64_t n, uint64_t seed, FILE *progress,
		  char *err, size_t errlen)
{
	loader l = { .route = "/v1/products/_bulk", .key = "products", .what = "products",
		     .token = token, .n = n, .seed = seed, .stream = seed, .make = make_product, .err = err,
		     .errlen = errlen, .progress = progress };
	return n > 0 ? load(&l, url) : 0;
}

int seed_users(const char *url, const char *token, int64_t n, uint64_t seed, FILE *progress,
	       int64_t *created, char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium cannot initialise");
		return ERR_INTERNAL;
	}
	/* Another stream than the products' of the same seed. */
	loader l = { .route = "/v1/users/_bulk", .key = "users", .what = "users", .token = token,
		     .n = n, .seed = seed, .stream = seed ^ 0x5eed05e45ULL, .make = seed_user,
		     .err = err, .errlen = errlen, .progress = progress };
	int rc = n > 0 ? load(&l, url) : 0;
	if (created)
		*created = l.created;
	return rc;
}

/* ---- ecom seed ------------------------------------------------------------------------ */

int seed_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "products", required_argument, NULL, 'p' },
		{ "users", required_argument, NULL, 'u' },
		{ "seed", required_argument, NULL, 's' },
		{ "state", required_argument, NULL, 'S' },
		{ "url", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t products = -1, users = -1, seed = 1;
	const char *state_s = NULL, *url_s = NULL;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (cli_parse_int(optarg, 0, 100000000, &products))
				return cli_usage("seed", "--products needs a count from 0 to 100000000");
			break;
		case 'u':
			if (cli_parse_int(optarg, 0, 10000000, &users))
				return cli_usage("seed", "--users needs a count from 0 to 10000000");
			break;
		case 's':
			if (cli_parse_int(optarg, 0, INT64_MAX, &seed))
				return cli_usage("seed", "--seed needs a non-negative integer");
			break;
		case 'S': state_s = optarg; break;
		case 'U': url_s = optarg; break;
		default:
			return cli_usage("seed", "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("seed", "unexpected argument '%s'", argv[optind]);
	if (products < 0 && users < 0)
		return cli_usage("seed", "nothing to seed: give --products N and/or --users N");
	char url[512], token[256];
	if (cli_platform("seed", state_s, url_s, url, sizeof(url), token, sizeof(token)) != 0)
		return 1;
	http_client_global_init();
	char err[512] = "";
	int64_t t0 = clock_mono_us();
	int rc = products > 0 ? seed_products(url, token, products, (uint64_t)seed, stderr, err,
					       sizeof(err))
			      : 0;
	double secs_p = (double)(clock_mono_us() - t0) / 1e6;
	int64_t t1 = clock_mono_us(), created = 0;
	if (rc == 0 && users > 0)
		rc = seed_users(url, token, users, (uint64_t)seed, stderr, &created, err,
				sizeof(err));
	double secs_u = (double)(clock_mono_us() - t1) / 1e6;
	http_client_global_cleanup();
	if (rc)
		return cli_fail("seed", "%s", err);
	if (products > 0)
		printf("seeded %" PRId64 " products (seed %" PRId64 ") in %.2f s\n", products, seed,
		       secs_p);
	if (users > 0)
		printf("seeded %" PRId64 " users (%" PRId64 " new; seed %" PRId64
		       ", password synthetic-%" PRId64 ") in %.2f s\n",
		       users, created, seed, seed, secs_u);
	return 0;
}
