/* token: HS256 JWTs over libjwt. */
#include "services/token.h"
#include "core/err.h"
#include "core/ids.h"

#include <jwt.h>
#include <sodium.h>
#include <jansson.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int token_issue(const unsigned char *key, size_t keylen, const char *sub, int64_t now_s,
		int64_t ttl_s, rng *r, char **out)
{
	*out = NULL;
	if (!key || keylen == 0 || keylen > 4096 || !sub || !sub[0] ||
	    strlen(sub) >= TOKEN_SUB_MAX || ttl_s <= 0)
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

int token_verify(const unsigned char *key, size_t keylen, const char *tok, int64_t now_s,
		 int64_t leeway_s, token_claims *out)
{
	memset(out, 0, sizeof(*out));
	if (!key || keylen == 0 || !tok || strlen(tok) > 8192 || !header_is_hs256(tok))
		return ERR_UNAUTH;
	jwt_t *jwt = NULL;
	if (jwt_decode(&jwt, tok, key, (int)keylen) != 0 || !jwt)
		return ERR_UNAUTH;
	int rc = ERR_UNAUTH;
	const char *sub = jwt_get_grant(jwt, "sub");
	const char *jti = jwt_get_grant(jwt, "jti");
	long iat = jwt_get_grant_int(jwt, "iat");
	int iat_ok = errno != ENOENT;
	long exp = jwt_get_grant_int(jwt, "exp");
	int exp_ok = errno != ENOENT;
	if (jwt_get_alg(jwt) == JWT_ALG_HS256 && sub && sub[0] && strlen(sub) < TOKEN_SUB_MAX &&
	    iat_ok && exp_ok && iat <= now_s + leeway_s && now_s <= exp + leeway_s) {
		snprintf(out->sub, sizeof(out->sub), "%s", sub);
		snprintf(out->jti, sizeof(out->jti), "%s", jti ? jti : "");
		out->iat = iat;
		out->exp = exp;
		rc = 0;
	}
	jwt_free(jwt);
	return rc;
}
