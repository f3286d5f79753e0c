/* seed: synthetic catalogs. */
#include "ops/seed.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SEED_BATCH 200

static const char HELP[] =
	"usage: ecom seed [--products N] [--users N] [--seed S] [--state DIR | --url URL]\n"
	"\n"
	"Generates a reproducible synthetic data set and loads it into the running\n"
	"platform through the gateway: the same seed (default 1) gives the same data.\n"
	"Products get skus SYN-00000001.. and are upserted, so seeding twice is safe.\n"
	"\n"
	"  --products N   synthetic products to generate (up to 100000000)\n"
	"  --users N      synthetic users (needs the user service; not available yet)\n";

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

#define NCAT (sizeof(categories) / sizeof(categories[0]))
#define NADJ (sizeof(adjectives) / sizeof(adjectives[0]))

json_t *seed_product(rng *r, int64_t i)
{
	size_t c = (size_t)rng_below(r, NCAT);
	const char *adj = adjectives[rng_below(r, NADJ)];
	const char *noun = nouns[c][rng_below(r, 6)];
	/* Prices spread over two orders of magnitude, most of them low. */
	double u = rng_double(r);
	int64_t price = 199 + (int64_t)(u * u * u * 49800.0);
	price = price / 100 * 100 + 99;
	char sku[32], name[128], desc[256];
	snprintf(sku, sizeof(sku), "SYN-%08" PRId64, i + 1);
	snprintf(name, sizeof(name), "%s %s %" PRId64, adj, noun, i + 1);
	snprintf(desc, sizeof(desc), "A %s %s from the synthetic %s range.", adj, noun,
		 categories[c]);
	for (char *p = desc + 2; *p && p < desc + 2 + strlen(adj); p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "sku", sku, "name", name, "description",
			 desc, "category", categories[c], "price_cents", (json_int_t)price,
			 "currency", "USD");
}

static int post_batch(const char *url, const char *token, json_t *batch, char *err,
		      size_t errlen)
{
	json_t *doc = json_pack("{s:O}", "products", batch);
	char *body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!body) {
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	char target[600];
	snprintf(target, sizeof(target), "%s/v1/products/_bulk", url);
	msg_resp resp;
	msg_resp_init(&resp);
	int rc = 0;
	for (int attempt = 0; attempt < 3; attempt++) {
		msg_resp_clear(&resp);
		msg_resp_init(&resp);
		rc = http_client_simple("POST", target, body, token, &resp, 30000);
		/* An upsert is idempotent, so a batch lost to a restarting
		 * instance can be sent again. */
		if (rc == 0 && resp.status != 503)
			break;
	}
	free(body);
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", target, err_name(rc));
	else if (resp.status != 200) {
		snprintf(err, errlen, "%s: HTTP %d: %.300s", target, resp.status,
			 resp.body ? resp.body : "");
		rc = ERR_IO;
	}
	msg_resp_clear(&resp);
	return rc;
}

int seed_products(const char *url, const char *token, int64_t n, uint64_t seed, FILE *progress,
		  char *err, size_t errlen)
{
	rng *r = rng_new(seed);
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	int rc = 0;
	int64_t t0 = clock_mono_us(), done = 0;
	while (rc == 0 && done < n) {
		json_t *batch = json_array();
		for (int k = 0; k < SEED_BATCH && done + k < n; k++)
			json_array_append_new(batch, seed_product(r, done + k));
		int64_t size = (int64_t)json_array_size(batch);
		rc = post_batch(url, token, batch, err, errlen);
		json_decref(batch);
		if (rc == 0)
			done += size;
		if (progress && rc == 0 && (done % 10000 == 0 || done == n)) {
			double secs = (double)(clock_mono_us() - t0) / 1e6;
			fprintf(progress, "seeded %" PRId64 "/%" PRId64 " products (%.0f/s)\n", done,
				n, secs > 0 ? (double)done / secs : 0.0);
		}
	}
	rng_free(r);
	return rc;
}

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
			if (cli_parse_int(optarg, 0, 100000000, &users))
				return cli_usage("seed", "--users needs a count from 0 to 100000000");
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
		return cli_usage("seed", "nothing to seed: give --products N");
	if (users > 0)
		return cli_fail("seed", "--users needs the user service, which this build does not have yet");
	char url[512], token[256];
	if (cli_platform("seed", state_s, url_s, url, sizeof(url), token, sizeof(token)) != 0)
		return 1;
	http_client_global_init();
	char err[512] = "";
	int64_t t0 = clock_mono_us();
	int rc = products > 0 ? seed_products(url, token, products, (uint64_t)seed, stderr, err,
					       sizeof(err))
			      : 0;
	http_client_global_cleanup();
	if (rc)
		return cli_fail("seed", "%s", err);
	printf("seeded %" PRId64 " products (seed %" PRId64 ") in %.2f s\n",
	       products > 0 ? products : 0, seed, (double)(clock_mono_us() - t0) / 1e6);
	return 0;
}
