/* Tests for services/token_cache: a hit gives the claims token_verify gave;
 * the time checks are made again on every hit (an expired token is refused
 * although remembered); refused tokens are never remembered; a token
 * changed by one character is not taken for the one remembered; a token
 * signed with another key is refused; slots are reused; several threads at
 * once agree with token_verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "services/token.h"
#include "services/token_cache.h"

#define T 1764112255LL /* 2025-11-25T23:10:55Z */

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef";
static const unsigned char OTHER_KEY[] = "fedcba9876543210fedcba9876543210";
#define KEYLEN 32

static char *issue(const unsigned char *key, const char *sub, int64_t now, int64_t ttl)
{
	rng *r = rng_new(7);
	char *tok = NULL;
	assert_int_equal(token_issue(key, KEYLEN, sub, now, ttl, r, &tok), 0);
	rng_free(r);
	return tok;
}

static void hits_misses(token_cache *tc, uint64_t h, uint64_t m)
{
	uint64_t hits, misses;
	token_cache_stats(tc, &hits, &misses);
	assert_int_equal(hits, h);
	assert_int_equal(misses, m);
}

static void test_hit_gives_the_same_claims(void **state)
{
	token_cache *tc = token_cache_new(KEY, KEYLEN, 128);
	assert_non_null(tc);
	char *tok = issue(KEY, "user-42", T, 900);
	token_claims want, got;
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 30, &want), 0);
	assert_int_equal(token_cache_verify(tc, tok, T, 30, &got), 0);
	hits_misses(tc, 0, 1);
	memset(&got, 0, sizeof(got));
	assert_int_equal(token_cache_verify(tc, tok, T + 10, 30, &got), 0);
	hits_misses(tc, 1, 1);
	assert_string_equal(got.sub, want.sub);
	assert_string_equal(got.jti, want.jti);
	assert_int_equal(got.iat, want.iat);
	assert_int_equal(got.exp, want.exp);
	free(tok);
	token_cache_free(tc);
	token_cache_free(NULL);
}

static void test_time_checked_on_every_hit(void **state)
{
	token_cache *tc = token_cache_new(KEY, KEYLEN, 64);
	char *tok = issue(KEY, "u1", T, 60);
	token_claims c;
	assert_int_equal(token_cache_verify(tc, tok, T, 5, &c), 0);
	/* exp = T+60; leeway 5: valid up to T+65, refused after, as token_verify. */
	assert_int_equal(token_cache_verify(tc, tok, T + 65, 5, &c), 0);
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T + 66, 5, &c), ERR_UNAUTH);
	assert_int_equal(token_cache_verify(tc, tok, T + 66, 5, &c), ERR_UNAUTH);
	/* Not yet valid: iat = T; at T-6 with leeway 5 it is in the future. */
	assert_int_equal(token_cache_verify(tc, tok, T - 6, 5, &c), ERR_UNAUTH);
	assert_int_equal(token_cache_verify(tc, tok, T - 5, 5, &c), 0);
	hits_misses(tc, 4, 1);
	free(tok);
	token_cache_free(tc);
}

static void test_refused_tokens_not_remembered(void **state)
{
	token_cache *tc = token_cache_new(KEY, KEYLEN, 64);
	char *other = issue(OTHER_KEY, "u1", T, 900);
	token_claims c;
	for (int i = 0; i < 3; i++)
		assert_int_equal(token_cache_verify(tc, other, T, 30, &c), ERR_UNAUTH);
	hits_misses(tc, 0, 3);
	/* Expired at first sight: refused, and refused again (not cached). */
	char *old = issue(KEY, "u2", T - 1000, 60);
	assert_int_equal(token_cache_verify(tc, old, T, 30, &c), ERR_UNAUTH);
	assert_int_equal(token_cache_verify(tc, old, T, 30, &c), ERR_UNAUTH);
	hits_misses(tc, 0, 5);
	assert_int_equal(token_cache_verify(tc, NULL, T, 30, &c), ERR_UNAUTH);
	assert_int_equal(token_cache_verify(NULL, old, T, 30, &c), ERR_INVALID);
	free(other);
	free(old);
	token_cache_free(tc);
}

static void test_tampered_token_is_not_a_hit(void **state)
{
	token_cache *tc = token_cache_new(KEY, KEYLEN, 64);
	char *tok = issue(KEY, "u1", T, 900);
	token_claims c;
	assert_int_equal(token_cache_verify(tc, tok, T, 30, &c), 0);
	size_t n = strlen(tok);
	/* Flip one character of the signature. */
	tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(token_cache_verify(tc, tok, T, 30, &c), ERR_UNAUTH);
	/* And a longer token that starts with the remembered one. */
	tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
	char *longer = malloc(n + 2);
	snprintf(longer, n + 2, "%sx", tok);
	assert_int_equal(token_cache_verify(tc, longer, T, 30, &c), ERR_UNAUTH);
	hits_misses(tc, 0, 3);
	free(longer);
	free(tok);
	token_cache_free(tc);
}

/* More tokens than slots: every one still verifies (evicted ones again by
 * token_verify), each with its own subject. */
static void test_slots_reused(void **state)
{
	token_cache *tc = token_cache_new(KEY, KEYLEN, 1); /* 64 slots */
	enum { N = 300 };
	char *toks[N];
	for (int i = 0; i < N; i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "user-%d", i);
		toks[i] = issue(KEY, sub, T, 900 + i);
	}
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < N; i++) {
			token_claims c;
			char sub[32];
			snprintf(sub, sizeof(sub), "user-%d", i);
			assert_int_equal(token_cache_verify(tc, toks[i], T, 30, &c), 0);
			assert_string_equal(c.sub, sub);
		}
	uint64_t hits, misses;
	token_cache_stats(tc, &hits, &misses);
	assert_int_equal(hits + misses, 2 * N);
	assert_true(misses > N); /* 300 tokens do not fit in 64 slots */
	for (int i = 0; i < N; i++)
		free(toks[i]);
	token_cache_free(tc);
}

struct worker {
	token_cache *tc;
	char **toks;
	int n;
	int wrong;
};

static void *hammer(void *p)
{
	struct worker *w = p;
	for (int k = 0; k < 4000; k++) {
		int i = k % w->n;
		token_claims c;
		char sub[32];
		snprintf(sub, sizeof(sub), "user-%d", i);
		if (token_cache_verify(w->tc, w->toks[i], T, 30, &c) != 0 || strcmp(c.sub, sub) != 0)
			w->wrong++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	token_cache *tc = token_cache_new(KEY, KEYLEN, 64);
	enum { N = 100, W = 4 };
	char *toks[N];
	for (int i = 0; i < N; i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "user-%d", i);
		toks[i] = issue(KEY, sub, T, 900);
	}
	pthread_t th[W];
	struct worker w[W];
	for (int i = 0; i < W; i++) {
		w[i] = (struct worker){ .tc = tc, .toks = toks, .n = N };
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
	}
	for (int i = 0; i < W; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].wrong, 0);
	}
	for (int i = 0; i < N; i++)
		free(toks[i]);
	token_cache_free(tc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_gives_the_same_claims),
		cmocka_unit_test(test_time_checked_on_every_hit),
		cmocka_unit_test(test_refused_tokens_not_remembered),
		cmocka_unit_test(test_tampered_token_is_not_a_hit),
		cmocka_unit_test(test_slots_reused),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
