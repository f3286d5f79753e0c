/* Tests for services/token: issue/verify round trips, argument errors, and a
 * table of tokens built by hand (base64url of crafted header and payload,
 * signed here with libsodium's HMACs or not at all) that token_verify must
 * accept or refuse: wrong algorithms (none, HS512, RS256 signed with the key
 * as an HMAC secret - the classic confusion attack), bad signatures, wrong
 * key, missing or mistyped claims, leeway boundaries, truncation, garbage and
 * oversize tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "services/token.h"

#define T 1764112255LL /* 2025-11-25T23:10:55Z */

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef"; /* 32 bytes */
#define KEYLEN 32
static const unsigned char OTHER_KEY[] = "fedcba9876543210fedcba9876543210";

/* ---- building tokens by hand ------------------------------------------------- */

enum sig_kind {
	SIG_HS256,      /* HMAC-SHA256 under KEY: a genuine signature */
	SIG_HS256_OTHER, /* HMAC-SHA256 under OTHER_KEY */
	SIG_HS512,      /* HMAC-SHA512 under KEY */
	SIG_EMPTY,      /* "header.payload." */
	SIG_JUNK,       /* a well-formed but made-up signature */
};

static char *b64url(const void *bin, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = malloc(cap);
	assert_non_null(out);
	sodium_bin2base64(out, cap, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

static char *b64url_str(const char *s) { return b64url(s, strlen(s)); }

static char *sign_input(enum sig_kind kind, const char *input)
{
	size_t n = strlen(input);
	if (kind == SIG_HS256 || kind == SIG_HS256_OTHER) {
		unsigned char mac[crypto_auth_hmacsha256_BYTES];
		crypto_auth_hmacsha256_state st;
		crypto_auth_hmacsha256_init(&st, kind == SIG_HS256 ? KEY : OTHER_KEY, KEYLEN);
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)input, n);
		crypto_auth_hmacsha256_final(&st, mac);
		return b64url(mac, sizeof(mac));
	}
	if (kind == SIG_HS512) {
		unsigned char mac[crypto_auth_hmacsha512_BYTES];
		crypto_auth_hmacsha512_state st;
		crypto_auth_hmacsha512_init(&st, KEY, KEYLEN);
		crypto_auth_hmacsha512_update(&st, (const unsigned char *)input, n);
		crypto_auth_hmacsha512_final(&st, mac);
		return b64url(mac, sizeof(mac));
	}
	if (kind == SIG_JUNK) {
		unsigned char mac[32];
		memset(mac, 0xA5, sizeof(mac));
		return b64url(mac, sizeof(mac));
	}
	return strdup("");
}

/* header and payload are JSON texts; returns a malloc'd compact JWS. */
static char *craft(const char *header, const char *payload, enum sig_kind kind)
{
	char *h = b64url_str(header), *p = b64url_str(payload);
	size_t n = strlen(h) + strlen(p) + 2;
	char *input = malloc(n);
	assert_non_null(input);
	snprintf(input, n, "%s.%s", h, p);
	char *sig = sign_input(kind, input);
	size_t tn = strlen(input) + strlen(sig) + 2;
	char *tok = malloc(tn);
	assert_non_null(tok);
	snprintf(tok, tn, "%s.%s", input, sig);
	free(h);
	free(p);
	free(input);
	free(sig);
	return tok;
}

static const char HS256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* A payload with the usual claims for sub at iat, valid for 100 s. */
static char *claims(const char *sub, int64_t iat, int64_t exp)
{
	char *buf = malloc(512);
	assert_non_null(buf);
	snprintf(buf, 512, "{\"sub\":\"%s\",\"jti\":\"jti_x\",\"iat\":%lld,\"exp\":%lld}", sub,
		 (long long)iat, (long long)exp);
	return buf;
}

/* ---- the table ----------------------------------------------------------------- */

#define PAYLOAD_OK "{\"sub\":\"usr_1\",\"jti\":\"jti_x\",\"iat\":1764112255,\"exp\":1764112355}"

typedef struct token_case {
	const char *name;
	const char *header;
	const char *payload;
	enum sig_kind sig;
	int64_t now;
	int64_t leeway;
	int want; /* 0 or ERR_UNAUTH */
} token_case;

static const token_case CASES[] = {
	{ "valid", HS256, PAYLOAD_OK, SIG_HS256, T + 10, 0, 0 },
	{ "valid without typ", "{\"alg\":\"HS256\"}", PAYLOAD_OK, SIG_HS256, T, 0, 0 },
	{ "expired", HS256, PAYLOAD_OK, SIG_HS256, T + 101, 0, ERR_UNAUTH },
	{ "expired long ago", HS256, PAYLOAD_OK, SIG_HS256, T + 86400, 30, ERR_UNAUTH },
	{ "not yet valid", HS256, PAYLOAD_OK, SIG_HS256, T - 1, 0, ERR_UNAUTH },
	{ "not yet valid beyond leeway", HS256, PAYLOAD_OK, SIG_HS256, T - 3600, 30, ERR_UNAUTH },
	{ "wrong key", HS256, PAYLOAD_OK, SIG_HS256_OTHER, T, 0, ERR_UNAUTH },
	{ "made-up signature", HS256, PAYLOAD_OK, SIG_JUNK, T, 0, ERR_UNAUTH },
	{ "HS256 with empty signature", HS256, PAYLOAD_OK, SIG_EMPTY, T, 0, ERR_UNAUTH },
	{ "alg none, empty signature", "{\"alg\":\"none\",\"typ\":\"JWT\"}", PAYLOAD_OK, SIG_EMPTY,
	  T, 0, ERR_UNAUTH },
	{ "alg none, with a valid HMAC", "{\"alg\":\"none\"}", PAYLOAD_OK, SIG_HS256, T, 0,
	  ERR_UNAUTH },
	{ "alg None", "{\"alg\":\"None\"}", PAYLOAD_OK, SIG_EMPTY, T, 0, ERR_UNAUTH },
	{ "alg hs256 (lower case)", "{\"alg\":\"hs256\"}", PAYLOAD_OK, SIG_HS256, T, 0,
	  ERR_UNAUTH },
	{ "HS512 validly HMAC'd", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", PAYLOAD_OK, SIG_HS512, T,
	  0, ERR_UNAUTH },
	{ "HS512 header, HS256 signature", "{\"alg\":\"HS512\"}", PAYLOAD_OK, SIG_HS256, T, 0,
	  ERR_UNAUTH },
	{ "HS384 header", "{\"alg\":\"HS384\"}", PAYLOAD_OK, SIG_HS256, T, 0, ERR_UNAUTH },
	{ "RS256 header HMAC'd with the key (confusion)", "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
	  PAYLOAD_OK, SIG_HS256, T, 0, ERR_UNAUTH },
	{ "ES256 header HMAC'd with the key", "{\"alg\":\"ES256\"}", PAYLOAD_OK, SIG_HS256, T, 0,
	  ERR_UNAUTH },
	{ "duplicate alg, none last", "{\"alg\":\"HS256\",\"alg\":\"none\"}", PAYLOAD_OK,
	  SIG_HS256, T, 0, ERR_UNAUTH },
	{ "alg not a string", "{\"alg\":256}", PAYLOAD_OK, SIG_HS256, T, 0, ERR_UNAUTH },
	{ "no alg", "{\"typ\":\"JWT\"}", PAYLOAD_OK, SIG_HS256, T, 0, ERR_UNAUTH },
	{ "header an array", "[\"HS256\"]", PAYLOAD_OK, SIG_HS256, T, 0, ERR_UNAUTH },
	{ "header not JSON", "HS256", PAYLOAD_OK, SIG_HS256, T, 0, ERR_UNAUTH },
	{ "payload not JSON", HS256, "sub=usr_1", SIG_HS256, T, 0, ERR_UNAUTH },
	{ "payload an array", HS256, "[1,2]", SIG_HS256, T, 0, ERR_UNAUTH },
	{ "missing sub", HS256, "{\"jti\":\"j\",\"iat\":1764112255,\"exp\":1764112355}", SIG_HS256,
	  T, 0, ERR_UNAUTH },
	{ "empty sub", HS256, "{\"sub\":\"\",\"jti\":\"j\",\"iat\":1764112255,\"exp\":1764112355}",
	  SIG_HS256, T, 0, ERR_UNAUTH },
	{ "sub a number", HS256, "{\"sub\":42,\"jti\":\"j\",\"iat\":1764112255,\"exp\":1764112355}",
	  SIG_HS256, T, 0, ERR_UNAUTH },
	{ "missing exp", HS256, "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":1764112255}", SIG_HS256,
	  T, 0, ERR_UNAUTH },
	{ "missing iat", HS256, "{\"sub\":\"usr_1\",\"jti\":\"j\",\"exp\":1764112355}", SIG_HS256,
	  T, 0, ERR_UNAUTH },
	{ "iat a string", HS256,
	  "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":\"1764112255\",\"exp\":1764112355}", SIG_HS256,
	  T, 0, ERR_UNAUTH },
	{ "iat a real", HS256, "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":1.5,\"exp\":1764112355}",
	  SIG_HS256, T, 0, ERR_UNAUTH },
	{ "iat null", HS256, "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":null,\"exp\":1764112355}",
	  SIG_HS256, T, 0, ERR_UNAUTH },
	{ "exp a string", HS256,
	  "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":1764112255,\"exp\":\"1764112355\"}", SIG_HS256,
	  T, 0, ERR_UNAUTH },
	{ "exp a real", HS256,
	  "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":1764112255,\"exp\":1.8e9}", SIG_HS256, T, 0,
	  ERR_UNAUTH },
	{ "exp a boolean", HS256, "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":1764112255,\"exp\":true}",
	  SIG_HS256, T, 0, ERR_UNAUTH },
	{ "jti a number", HS256, "{\"sub\":\"usr_1\",\"jti\":7,\"iat\":1764112255,\"exp\":1764112355}",
	  SIG_HS256, T, 0, ERR_UNAUTH },
	{ "missing jti", HS256, "{\"sub\":\"usr_1\",\"iat\":1764112255,\"exp\":1764112355}",
	  SIG_HS256, T, 0, ERR_UNAUTH },
	/* Extremes must not overflow the leeway arithmetic (UBSan watches). */
	{ "exp at INT64_MAX", HS256,
	  "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":1764112255,\"exp\":9223372036854775807}",
	  SIG_HS256, T, 3600, 0 },
	{ "iat at INT64_MIN, exp at INT64_MIN", HS256,
	  "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":-9223372036854775808,"
	  "\"exp\":-9223372036854775808}",
	  SIG_HS256, T, 3600, ERR_UNAUTH },
	{ "iat at INT64_MAX", HS256,
	  "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":9223372036854775807,"
	  "\"exp\":9223372036854775807}",
	  SIG_HS256, T, 3600, ERR_UNAUTH },
	{ "exp overflowing int64", HS256,
	  "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":1764112255,\"exp\":9223372036854775808}",
	  SIG_HS256, T, 0, ERR_UNAUTH },
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
		const token_case *c = &CASES[i];
		char *tok = craft(c->header, c->payload, c->sig);
		token_claims out;
		memset(&out, 0x5a, sizeof(out));
		int rc = token_verify(KEY, KEYLEN, tok, c->now, c->leeway, &out);
		if (rc != c->want)
			fail_msg("case \"%s\": token_verify = %d, want %d (%s)", c->name, rc, c->want,
				 tok);
		if (rc == 0) {
			assert_string_equal(out.sub, "usr_1");
		} else {
			/* nothing of a refused token leaks out */
			assert_int_equal(out.sub[0], '\0');
			assert_int_equal(out.jti[0], '\0');
			assert_int_equal(out.iat, 0);
			assert_int_equal(out.exp, 0);
		}
		free(tok);
	}
}

/* ---- leeway boundaries -------------------------------------------------------------- */

static void expect(const char *tok, int64_t now, int64_t leeway, int want)
{
	token_claims out;
	int rc = token_verify(KEY, KEYLEN, tok, now, leeway, &out);
	if (rc != want)
		fail_msg("now=T%+lld leeway=%lld: token_verify = %d, want %d", (long long)(now - T),
			 (long long)leeway, rc, want);
}

static void test_leeway_boundaries(void **state)
{
	char *payload = claims("usr_1", T, T + 100);
	char *tok = craft(HS256, payload, SIG_HS256);

	/* exp: valid through exp + leeway, invalid one second later */
	expect(tok, T + 100, 0, 0);
	expect(tok, T + 101, 0, ERR_UNAUTH);
	expect(tok, T + 130, 30, 0);
	expect(tok, T + 131, 30, ERR_UNAUTH);

	/* iat: up to leeway in the future is clock skew, beyond is refused */
	expect(tok, T, 0, 0);
	expect(tok, T - 1, 0, ERR_UNAUTH);
	expect(tok, T - 30, 30, 0);
	expect(tok, T - 31, 30, ERR_UNAUTH);

	/* a negative leeway counts as none, not as a shorter life */
	expect(tok, T + 100, -50, 0);
	expect(tok, T + 101, -50, ERR_UNAUTH);
	expect(tok, T, -50, 0);
	free(tok);
	free(payload);

	/* A token whose whole life is in the past stays dead whatever the leeway
	 * up to its boundary. */
	payload = claims("usr_1", T - 1000, T - 500);
	tok = craft(HS256, payload, SIG_HS256);
	expect(tok, T - 500 + 60, 60, 0);
	expect(tok, T - 500 + 61, 60, ERR_UNAUTH);
	free(tok);
	free(payload);
}

/* ---- sub length ------------------------------------------------------------------------ */

static void test_sub_length(void **state)
{
	char sub[TOKEN_SUB_MAX + 1];
	memset(sub, 'a', sizeof(sub));

	/* the longest sub that fits */
	sub[TOKEN_SUB_MAX - 1] = '\0';
	char *payload = claims(sub, T, T + 100);
	char *tok = craft(HS256, payload, SIG_HS256);
	token_claims out;
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), 0);
	assert_string_equal(out.sub, sub);
	free(tok);
	free(payload);

	/* one more byte does not fit and is refused rather than cut */
	sub[TOKEN_SUB_MAX - 1] = 'a';
	sub[TOKEN_SUB_MAX] = '\0';
	payload = claims(sub, T, T + 100);
	tok = craft(HS256, payload, SIG_HS256);
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), ERR_UNAUTH);
	free(tok);
	free(payload);

	/* a jti that does not fit is refused too */
	char big[200];
	memset(big, 'j', 100);
	big[100] = '\0';
	char p2[400];
	snprintf(p2, sizeof(p2), "{\"sub\":\"usr_1\",\"jti\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
		 big, (long long)T, (long long)T + 100);
	tok = craft(HS256, p2, SIG_HS256);
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), ERR_UNAUTH);
	free(tok);
}

/* ---- tampering, truncation, garbage ------------------------------------------------- */

static void test_tampered(void **state)
{
	char *payload = claims("usr_1", T, T + 100);
	char *tok = craft(HS256, payload, SIG_HS256);
	token_claims out;
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), 0);

	/* any one character of the signature changed */
	char *dot2 = strrchr(tok, '.');
	size_t siglen = strlen(dot2 + 1);
	assert_int_equal(siglen, 43);
	for (size_t i = 0; i < siglen; i++) {
		char *t = strdup(tok);
		char *s = t + (dot2 + 1 - tok);
		s[i] = s[i] == 'A' ? 'B' : 'A';
		assert_int_equal(token_verify(KEY, KEYLEN, t, T, 0, &out), ERR_UNAUTH);
		free(t);
	}

	/* the signature of one payload on another (a different sub) */
	char *payload2 = claims("usr_2", T, T + 100);
	char *other = craft(HS256, payload2, SIG_HS256);
	char *mixed = malloc(strlen(tok) + strlen(other) + 1);
	size_t head = (size_t)(strrchr(other, '.') - other);
	memcpy(mixed, other, head);
	strcpy(mixed + head, strrchr(tok, '.'));
	assert_int_equal(token_verify(KEY, KEYLEN, mixed, T, 0, &out), ERR_UNAUTH);
	/* each is fine on its own */
	assert_int_equal(token_verify(KEY, KEYLEN, other, T, 0, &out), 0);
	assert_string_equal(out.sub, "usr_2");
	free(mixed);
	free(other);
	free(payload2);

	/* truncated anywhere */
	size_t n = strlen(tok);
	for (size_t cut = 0; cut < n; cut++) {
		char *t = strndup(tok, cut);
		assert_int_equal(token_verify(KEY, KEYLEN, t, T, 0, &out), ERR_UNAUTH);
		free(t);
	}
	/* extra bytes after the signature, or an extra segment */
	char *longer = malloc(n + 8);
	snprintf(longer, n + 8, "%sA", tok);
	assert_int_equal(token_verify(KEY, KEYLEN, longer, T, 0, &out), ERR_UNAUTH);
	snprintf(longer, n + 8, "%s.AAAA", tok);
	assert_int_equal(token_verify(KEY, KEYLEN, longer, T, 0, &out), ERR_UNAUTH);
	/* padding characters are not base64url */
	snprintf(longer, n + 8, "%s=", tok);
	assert_int_equal(token_verify(KEY, KEYLEN, longer, T, 0, &out), ERR_UNAUTH);
	free(longer);
	free(tok);
	free(payload);
}

static void test_garbage(void **state)
{
	static const char *const junk[] = {
		"",
		".",
		"..",
		"...",
		"a.b.c",
		"not a token",
		"Bearer x.y.z",
		"eyJhbGciOiJIUzI1NiJ9",  /* a header alone */
		"eyJhbGciOiJIUzI1NiJ9.", /* a header and a dot */
		"eyJhbGciOiJIUzI1NiJ9..",
		"eyJhbGciOiJIUzI1NiJ9.e30.", /* {} payload, no signature */
		"!!!!.????.////",
		"\xff\xfe\xfd.\x01\x02.\x7f",
	};
	token_claims out;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		if (token_verify(KEY, KEYLEN, junk[i], T, 0, &out) != ERR_UNAUTH)
			fail_msg("accepted junk #%zu", i);
	assert_int_equal(token_verify(KEY, KEYLEN, NULL, T, 0, &out), ERR_UNAUTH);

	/* random bytes, seeded */
	rng *r = rng_new(99);
	char buf[300];
	for (int i = 0; i < 500; i++) {
		size_t n = 1 + rng_below(r, sizeof(buf) - 1);
		for (size_t k = 0; k < n; k++)
			buf[k] = (char)(1 + rng_below(r, 255));
		buf[n] = '\0';
		assert_int_equal(token_verify(KEY, KEYLEN, buf, T, 0, &out), ERR_UNAUTH);
	}
	rng_free(r);
}

/* ---- size ---------------------------------------------------------------------------- */

/* A genuine token of exactly len bytes, padded through an extra claim. */
static char *token_of_length(size_t len)
{
	for (size_t hp = 0; hp < 4; hp++) {
		char header[64];
		snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"kid\":\"%.*s\"}", (int)hp, "kkkk");
		for (size_t pad = len * 3 / 4 - 200; pad < len; pad++) {
			char *payload = malloc(pad + 200);
			int m = snprintf(payload, pad + 200,
					 "{\"sub\":\"usr_1\",\"jti\":\"j\",\"iat\":%lld,\"exp\":%lld,"
					 "\"pad\":\"",
					 (long long)T, (long long)T + 100);
			memset(payload + m, 'p', pad);
			strcpy(payload + m + pad, "\"}");
			char *tok = craft(header, payload, SIG_HS256);
			free(payload);
			size_t n = strlen(tok);
			if (n == len)
				return tok;
			free(tok);
			if (n > len)
				break;
		}
	}
	fail_msg("cannot build a token of %zu bytes", len);
	return NULL;
}

static void test_size_limit(void **state)
{
	token_claims out;
	char *tok = token_of_length(8192);
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), 0);
	assert_string_equal(out.sub, "usr_1");
	free(tok);

	tok = token_of_length(8193);
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), ERR_UNAUTH);
	free(tok);

	tok = token_of_length(64 * 1024);
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), ERR_UNAUTH);
	free(tok);
}

/* ---- keys ---------------------------------------------------------------------------- */

static void test_empty_key(void **state)
{
	char *payload = claims("usr_1", T, T + 100);
	char *tok = craft(HS256, payload, SIG_HS256);
	token_claims out;
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), 0);
	assert_int_equal(token_verify(KEY, 0, tok, T, 0, &out), ERR_UNAUTH);
	assert_int_equal(token_verify(NULL, 0, tok, T, 0, &out), ERR_UNAUTH);
	assert_int_equal(token_verify(NULL, KEYLEN, tok, T, 0, &out), ERR_UNAUTH);
	/* a prefix of the key is another key */
	assert_int_equal(token_verify(KEY, KEYLEN - 1, tok, T, 0, &out), ERR_UNAUTH);
	free(tok);
	free(payload);

	/* a token HMAC'd with an empty secret is not accepted under any key */
	char *h = b64url_str(HS256);
	payload = claims("usr_1", T, T + 100);
	char *p = b64url_str(payload);
	char input[512];
	snprintf(input, sizeof(input), "%s.%s", h, p);
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)"", 0);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)input, strlen(input));
	crypto_auth_hmacsha256_final(&st, mac);
	char *sig = b64url(mac, sizeof(mac));
	char full[640];
	snprintf(full, sizeof(full), "%s.%s", input, sig);
	assert_int_equal(token_verify(KEY, KEYLEN, full, T, 0, &out), ERR_UNAUTH);
	assert_int_equal(token_verify((const unsigned char *)"", 0, full, T, 0, &out), ERR_UNAUTH);
	free(sig);
	free(p);
	free(h);
	free(payload);
}

/* ---- issue ---------------------------------------------------------------------------- */

static void test_issue_arguments(void **state)
{
	rng *r = rng_new(1);
	char *tok = (char *)"untouched";
	char sub64[TOKEN_SUB_MAX + 1];
	memset(sub64, 's', TOKEN_SUB_MAX);
	sub64[TOKEN_SUB_MAX] = '\0';
	unsigned char bigkey[4097];
	memset(bigkey, 'k', sizeof(bigkey));

	assert_int_equal(token_issue(NULL, KEYLEN, "usr_1", T, 60, r, &tok), ERR_INVALID);
	assert_null(tok);
	tok = (char *)"untouched";
	assert_int_equal(token_issue(KEY, 0, "usr_1", T, 60, r, &tok), ERR_INVALID);
	assert_null(tok);
	assert_int_equal(token_issue(bigkey, sizeof(bigkey), "usr_1", T, 60, r, &tok),
			 ERR_INVALID);
	assert_int_equal(token_issue(KEY, KEYLEN, NULL, T, 60, r, &tok), ERR_INVALID);
	assert_int_equal(token_issue(KEY, KEYLEN, "", T, 60, r, &tok), ERR_INVALID);
	assert_int_equal(token_issue(KEY, KEYLEN, sub64, T, 60, r, &tok), ERR_INVALID);
	assert_int_equal(token_issue(KEY, KEYLEN, "usr_1", T, 0, r, &tok), ERR_INVALID);
	assert_int_equal(token_issue(KEY, KEYLEN, "usr_1", T, -5, r, &tok), ERR_INVALID);
	/* exp would not fit in 64 bits */
	assert_int_equal(token_issue(KEY, KEYLEN, "usr_1", T, INT64_MAX, r, &tok), ERR_INVALID);
	assert_null(tok);

	/* the largest key and the longest sub are fine */
	assert_int_equal(token_issue(bigkey, 4096, "usr_1", T, 60, r, &tok), 0);
	token_claims out;
	assert_int_equal(token_verify(bigkey, 4096, tok, T, 0, &out), 0);
	free(tok);
	sub64[TOKEN_SUB_MAX - 1] = '\0';
	assert_int_equal(token_issue(KEY, KEYLEN, sub64, T, 60, r, &tok), 0);
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), 0);
	assert_string_equal(out.sub, sub64);
	free(tok);
	rng_free(r);
}

static void test_round_trip(void **state)
{
	rng *r = rng_new(2024);
	char *tok = NULL;
	assert_int_equal(token_issue(KEY, KEYLEN, "usr_3f9a0c1d2b4e5f60", T, 3600, r, &tok), 0);
	assert_non_null(tok);

	/* three base64url segments, and the header says HS256 */
	const char *d1 = strchr(tok, '.');
	assert_non_null(d1);
	const char *d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	unsigned char hdr[128];
	size_t hn = 0;
	assert_int_equal(sodium_base642bin(hdr, sizeof(hdr) - 1, tok, (size_t)(d1 - tok), NULL, &hn,
					   NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			 0);
	hdr[hn] = '\0';
	assert_non_null(strstr((char *)hdr, "\"alg\":\"HS256\""));

	token_claims out;
	memset(&out, 0, sizeof(out));
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T, 0, &out), 0);
	assert_string_equal(out.sub, "usr_3f9a0c1d2b4e5f60");
	assert_int_equal(out.iat, T);
	assert_int_equal(out.exp, T + 3600);
	assert_int_equal(strncmp(out.jti, "jti_", 4), 0);
	assert_true(strlen(out.jti) > 8);
	char jti1[64];
	snprintf(jti1, sizeof(jti1), "%s", out.jti);

	/* valid to the last second of its life, not after */
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T + 3600, 0, &out), 0);
	assert_int_equal(token_verify(KEY, KEYLEN, tok, T + 3601, 0, &out), ERR_UNAUTH);
	/* under another key it is nothing */
	assert_int_equal(token_verify(OTHER_KEY, KEYLEN, tok, T, 0, &out), ERR_UNAUTH);

	/* each token has its own jti */
	char *tok2 = NULL;
	assert_int_equal(token_issue(KEY, KEYLEN, "usr_3f9a0c1d2b4e5f60", T, 3600, r, &tok2), 0);
	assert_int_equal(token_verify(KEY, KEYLEN, tok2, T, 0, &out), 0);
	assert_string_not_equal(out.jti, jti1);
	assert_string_not_equal(tok, tok2);
	free(tok2);
	free(tok);
	rng_free(r);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_issue_arguments),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_leeway_boundaries),
		cmocka_unit_test(test_sub_length),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_empty_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
