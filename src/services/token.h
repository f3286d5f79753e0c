/* token: the platform's access tokens, HS256 JSON Web Tokens made and read
 * with libjwt. A token carries sub (the user id), iat, exp and jti. Reading
 * one checks, with the caller's clock rather than the wall clock: the
 * algorithm is exactly HS256 (a token saying "none", RS256 or anything else
 * is refused before its signature is looked at), the signature under the
 * platform key, iat not in the future and exp not past (each with leeway). */
#ifndef ECOM_TOKEN_H
#define ECOM_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"

#define TOKEN_SUB_MAX 64

typedef struct token_claims {
	char sub[TOKEN_SUB_MAX];
	char jti[64];
	int64_t iat; /* seconds since the epoch */
	int64_t exp;
} token_claims;

/* Issues a token for sub at now_s, valid for ttl_s, with a random jti from
 * r. *out is malloc'd (caller frees). 0, ERR_INVALID (empty key or sub,
 * ttl <= 0), ERR_NOMEM. */
int token_issue(const unsigned char *key, size_t keylen, const char *sub, int64_t now_s,
		int64_t ttl_s, rng *r, char **out);

/* Verifies tok at now_s. 0 with *out filled, or ERR_UNAUTH for anything
 * wrong with it (malformed, other algorithm, bad signature, expired, not yet
 * valid, missing claims). */
int token_verify(const unsigned char *key, size_t keylen, const char *tok, int64_t now_s,
		 int64_t leeway_s, token_claims *out);

#endif
