/* seed: reproducible synthetic data. `ecom seed --products N --seed S`
 * generates N products from seed S (the same seed, the same catalog: skus
 * SYN-00000001.., names, categories and prices drawn from the rng) and
 * upserts them through the gateway in batches. */
#ifndef ECOM_SEED_H
#define ECOM_SEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/rng.h"

/* Product number i (0-based) of a synthetic catalog, drawing from r. New
 * reference. */
json_t *seed_product(rng *r, int64_t i);

/* Generates n products from seed and upserts them at url (the gateway) with
 * the admin token. Progress lines go to progress when not NULL. Returns 0 or
 * an error with err filled. */
int seed_products(const char *url, const char *token, int64_t n, uint64_t seed, FILE *progress,
		  char *err, size_t errlen);

/* argv[0] is "seed". Returns the exit code. */
int seed_main(int argc, char **argv);

#endif
