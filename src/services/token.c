/* token: HS256 JWTs over libjwt. */
#include "services/token.h"
#include "core/err.h"
#include "core/ids.h"

#include <jwt.h>
#include <sodium.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int token_issue(const unsigned char *key, size_t keylen, const char *sub, int64_t now_s,
		int64_t ttl_s, rng *r, char **out)
{
	*out = NULL;
	if (!key || keylen == 0 || keylen > 4096 || !sub || !sub[0] ||
	    strlen(sub) >= TOKEN_SUB_MAX || ttl_s <= 0 || now_s > INT64_MAX - ttl_s)
		return ERR_INVALID;
	char jti[IDS_MAX];
	ids_new(r, "jti", jti, sizeof(jti));
	jwt_t *jwt = NULL;
	if (jwt_new(&jwt) != 0)
		return ERR_NOMEM;
	int rc = ERR_NOMEM;
	if (jwt_add_grant(jwt, "sub", sub) == 0 && jwt_add_grant(jwt, "jti", jti) == 0 &&
	    jwt_add_grant_int(jwt, "iat", (long)now_s) == 0 &&
	    jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) == 0 &&
	    jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)keylen) == 0) {
		*out = jwt_encode_str(jwt);
		rc = *out ? 0 : ERR_NOMEM;
	}
	jwt_free(jwt);
	return rc;
}

/* The "alg" of the token's header, read before libjwt sees the token, so
 * that no other algorithm's code path (none, RS256 with our key as a public
 * key) ever runs. */
static int header_is_hs256(const char *tok)
{
	const char *dot = strchr(tok, '.');
	if (!dot || dot == tok || dot - tok > 1024)
		return 0;
	unsigned char json[800];
	size_t n = 0;
	if (sodium_base642bin(json, sizeof(json), tok, (size_t)(dot - tok), NULL, &n, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return 0;
	json_t *h = json_loadb((const char *)json, n, 0, NULL);
	const char *alg = json_string_value(json_object_get(h, "alg"));
	int ok = alg && strcmp(alg, "HS256") == 0;
	json_decref(h);
	return ok;
}

/* The claims are read from the payload as JSON rather than through
 * jwt_get_grant_int, which in libjwt 1.10 answers 0 for a claim that is
 * present but not an integer ("iat":"soon" would pass as the epoch). Each
 * claim must be there with its type, and a jti or sub that does not fit is
 * refused rather than cut. */
static int claims_read(jwt_t *jwt, token_claims *out)
{
	char *txt = jwt_get_grants_json(jwt, NULL);
	json_t *g = txt ? json_loads(txt, 0, NULL) : NULL;
	free(txt);
	json_t *sub = json_object_get(g, "sub"), *jti = json_object_get(g, "jti");
	json_t *iat = json_object_get(g, "iat"), *exp = json_object_get(g, "exp");
	int ok = json_is_string(sub) && json_string_length(sub) > 0 &&
		 json_string_length(sub) < sizeof(out->sub) && json_is_string(jti) &&
		 json_string_length(jti) > 0 && json_string_length(jti) < sizeof(out->jti) &&
		 json_is_integer(iat) && json_is_integer(exp) &&
		 strlen(json_string_value(sub)) == json_string_length(sub) &&
		 strlen(json_string_value(jti)) == json_string_length(jti);
	if (ok) {
		memcpy(out->sub, json_string_value(sub), json_string_length(sub) + 1);
		memcpy(out->jti, json_string_value(jti), json_string_length(jti) + 1);
		out->iat = (int64_t)json_integer_value(iat);
		out->exp = (int64_t)json_integer_value(exp);
	}
	json_decref(g);
	return ok;
}

int token_verify(const unsigned char *key, size_t keylen, const char *tok, int64_t now_s,
		 int64_t leeway_s, token_claims *out)
{
	memset(out, 0, sizeof(*out));
	if (!key || keylen == 0 || keylen > 4096 || !tok || strlen(tok) > 8192 ||
	    !header_is_hs256(tok))
		return ERR_UNAUTH;
	if (leeway_s < 0)
		leeway_s = 0;
	jwt_t *jwt = NULL;
	if (jwt_decode(&jwt, tok, key, (int)keylen) != 0 || !jwt)
		return ERR_UNAUTH;
	token_claims c;
	memset(&c, 0, sizeof(c));
	/* The arithmetic is on now and leeway (ours), never on a claim (the
	 * token's), so no claim value, however extreme, can overflow it. */
	int ok = jwt_get_alg(jwt) == JWT_ALG_HS256 && claims_read(jwt, &c) &&
		 c.iat <= now_s + leeway_s && now_s - leeway_s <= c.exp;
	jwt_free(jwt);
	if (!ok)
		return ERR_UNAUTH;
	*out = c;
	return 0;
}
