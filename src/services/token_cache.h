/* token_cache: a bounded memory of access tokens the gateway has already
 * verified, so a client that sends the same token on every request pays for
 * libjwt's parse and HMAC once per token instead of once per request.
 *
 * What is remembered is a token's claims under a keyed BLAKE2b-256 digest
 * of the whole token (libsodium's crypto_generichash, keyed with the cache's
 * own random key), never the token itself. A hit is only as good as a fresh
 * verification: the time checks of token_verify (iat not in the future, exp
 * not past, each with leeway) are made again on the remembered claims at
 * every hit, so an expired token is refused even though it is remembered.
 * Tokens that fail verification are not remembered (each try pays again).
 * The cache is direct-mapped: a new token takes its slot from whichever
 * token had it. Owned by its creator (token_cache_free); safe to use from
 * several threads at once (a mutex per stripe of slots). */
#ifndef ECOM_TOKEN_CACHE_H
#define ECOM_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "services/token.h"

typedef struct token_cache token_cache;

/* A cache of `slots` tokens (rounded up to a power of two, at least 64) for
 * tokens signed with key. NULL when out of memory or when libsodium cannot
 * start. */
token_cache *token_cache_new(const unsigned char *key, size_t keylen, size_t slots);
void token_cache_free(token_cache *tc);

/* token_verify(key, tok, now_s, leeway_s, out) with the cache in front.
 * ERR_INVALID when tc is NULL. */
int token_cache_verify(token_cache *tc, const char *tok, int64_t now_s, int64_t leeway_s,
		       token_claims *out);

/* Hits and misses so far (for metrics and tests); either may be NULL. */
void token_cache_stats(token_cache *tc, uint64_t *hits, uint64_t *misses);

#endif
