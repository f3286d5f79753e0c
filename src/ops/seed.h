/* seed: reproducible synthetic data. `ecom seed --products N --users N
 * --seed S` generates N products and N users from seed S (the same seed,
 * the same data: skus SYN-00000001.., names, categories and prices; users
 * syn-S-I@synthetic.ecom.test with names drawn from the seed and the
 * password "synthetic-S") and loads them through the gateway's bulk routes
 * (POST /v1/products/_bulk, POST /v1/users/_bulk), a few batches in
 * flight at once. */
#ifndef ECOM_SEED_H
#define ECOM_SEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/rng.h"

/* Product number i (0-based) of a synthetic catalog, drawing from r, as a
 * JSON object into buf. Its length, or ERR_TOO_LARGE. */
int seed_product(rng *r, int64_t i, char *buf, size_t len);
/* User number i (0-based) of seed's synthetic users, drawing from r, as
 * the bulk route takes it ({email, name, password_hash}; the hash made here
 * at argon2id's minimum cost) into buf. Its length, or an error. */
int seed_user(rng *r, uint64_t seed, int64_t i, char *buf, size_t len);

/* Generates n products (users) from seed and loads them at url (the
 * gateway) with the admin token. Progress lines go to progress when not
 * NULL; *created (when not NULL) gets the users that did not exist yet.
 * Returns 0 or an error with err filled. Call
 * http_client_global_init() first. */
int seed_products(const char *url, const char *token, int64_t n, uint64_t seed, FILE *progress,
		  char *err, size_t errlen);
int seed_users(const char *url, const char *token, int64_t n, uint64_t seed, FILE *progress,
	       int64_t *created, char *err, size_t errlen);

/* argv[0] is "seed". Returns the exit code. */
int seed_main(int argc, char **argv);

#endif
