/* token_cache: see token_cache.h. */
#include "services/token_cache.h"
#include "core/err.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TC_STRIPES 64
#define TC_MIN_SLOTS 64

typedef struct tc_slot {
	unsigned char digest[crypto_generichash_BYTES];
	int used;
	token_claims claims;
} tc_slot;

struct token_cache {
	unsigned char *key; /* the token signing key */
	size_t keylen;
	unsigned char dkey[crypto_generichash_KEYBYTES]; /* digests' key */
	size_t mask;
	tc_slot *slots;
	pthread_mutex_t stripes[TC_STRIPES];
	atomic_uint_fast64_t hits, misses;
};

token_cache *token_cache_new(const unsigned char *key, size_t keylen, size_t slots)
{
	if (sodium_init() < 0)
		return NULL;
	size_t n = TC_MIN_SLOTS;
	while (n < slots && n < ((size_t)1 << 30))
		n <<= 1;
	token_cache *tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	tc->slots = calloc(n, sizeof(*tc->slots));
	tc->key = malloc(keylen ? keylen : 1);
	if (!tc->slots || !tc->key) {
		free(tc->slots);
		free(tc->key);
		free(tc);
		return NULL;
	}
	if (keylen)
		memcpy(tc->key, key, keylen);
	tc->keylen = keylen;
	tc->mask = n - 1;
	crypto_generichash_keygen(tc->dkey);
	for (int i = 0; i < TC_STRIPES; i++)
		pthread_mutex_init(&tc->stripes[i], NULL);
	return tc;
}

void token_cache_free(token_cache *tc)
{
	if (!tc)
		return;
	for (int i = 0; i < TC_STRIPES; i++)
		pthread_mutex_destroy(&tc->stripes[i]);
	sodium_memzero(tc->key, tc->keylen);
	sodium_memzero(tc->dkey, sizeof(tc->dkey));
	free(tc->key);
	free(tc->slots);
	free(tc);
}

/* The same window as token_verify's, on claims it accepted before. */
static int tc_in_time(const token_claims *c, int64_t now_s, int64_t leeway_s)
{
	if (leeway_s < 0)
		leeway_s = 0;
	return c->iat <= now_s + leeway_s && now_s - leeway_s <= c->exp;
}

int token_cache_verify(token_cache *tc, const char *tok, int64_t now_s, int64_t leeway_s,
		       token_claims *out)
{
	if (!tc)
		return ERR_INVALID;
	if (!tok)
		return ERR_UNAUTH;
	unsigned char d[crypto_generichash_BYTES];
	crypto_generichash(d, sizeof(d), (const unsigned char *)tok, strlen(tok), tc->dkey,
			   sizeof(tc->dkey));
	size_t i;
	memcpy(&i, d, sizeof(i));
	i &= tc->mask;
	pthread_mutex_t *mu = &tc->stripes[i % TC_STRIPES];
	pthread_mutex_lock(mu);
	tc_slot *s = &tc->slots[i];
	int hit = s->used && sodium_memcmp(s->digest, d, sizeof(d)) == 0;
	token_claims c;
	if (hit)
		c = s->claims;
	pthread_mutex_unlock(mu);
	if (hit) {
		atomic_fetch_add(&tc->hits, 1);
		if (!tc_in_time(&c, now_s, leeway_s))
			return ERR_UNAUTH;
		*out = c;
		return 0;
	}
	atomic_fetch_add(&tc->misses, 1);
	int rc = token_verify(tc->key, tc->keylen, tok, now_s, leeway_s, &c);
	if (rc)
		return rc;
	pthread_mutex_lock(mu);
	memcpy(s->digest, d, sizeof(d));
	s->claims = c;
	s->used = 1;
	pthread_mutex_unlock(mu);
	*out = c;
	return 0;
}

void token_cache_stats(token_cache *tc, uint64_t *hits, uint64_t *misses)
{
	if (hits)
		*hits = tc ? atomic_load(&tc->hits) : 0;
	if (misses)
		*misses = tc ? atomic_load(&tc->misses) : 0;
}
