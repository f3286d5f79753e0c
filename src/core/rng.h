/* rng: a seeded pseudo-random generator (xoshiro256**, seeded through
 * splitmix64). The same seed gives the same sequence on every machine.
 * Thread-safe (an internal mutex), so one rng can serve a daemon's threads. */
#ifndef ECOM_RNG_H
#define ECOM_RNG_H

#include <stdint.h>

typedef struct rng rng;

/* A new generator from seed. Owned by the caller: rng_free(). */
rng *rng_new(uint64_t seed);
void rng_free(rng *r);

uint64_t rng_u64(rng *r);
/* Uniform in [0, n); 0 when n == 0. Unbiased. */
uint64_t rng_below(rng *r, uint64_t n);
/* Uniform in [0, 1). */
double rng_double(rng *r);
/* A seed from the operating system (getrandom), for real hosts only. */
uint64_t rng_os_seed(void);

#endif
