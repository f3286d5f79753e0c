/* rng: xoshiro256** seeded by splitmix64 (both public-domain algorithms by
 * Blackman and Vigna, written here from their description). */
#include "core/rng.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

struct rng {
	uint64_t s[4];
	pthread_mutex_t mu;
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

rng *rng_new(uint64_t seed)
{
	rng *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

void rng_free(rng *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static uint64_t next(rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t rng_u64(rng *r)
{
	pthread_mutex_lock(&r->mu);
	uint64_t v = next(r);
	pthread_mutex_unlock(&r->mu);
	return v;
}

uint64_t rng_below(rng *r, uint64_t n)
{
	if (n == 0)
		return 0;
	/* Rejection sampling: drop the values of the last incomplete block so
	 * every residue is equally likely. */
	uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
	uint64_t v;
	do
		v = rng_u64(r);
	while (v >= limit);
	return v % n;
}

double rng_double(rng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t rng_os_seed(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
	}
	return v;
}
