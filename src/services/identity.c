/* identity: the gateway's signed statement of who is calling. */
#include "services/identity.h"
#include "core/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = { "anonymous", "user", "admin", "service" };

const char *identity_role_name(enum identity_role role)
{
	return role >= IDENTITY_ANONYMOUS && role <= IDENTITY_SERVICE ? role_names[role] : "unknown";
}

static int role_parse(const char *s, size_t n)
{
	for (int i = 0; i <= IDENTITY_SERVICE; i++)
		if (strlen(role_names[i]) == n && strncmp(role_names[i], s, n) == 0)
			return i;
	return -1;
}

static void mac_hex(const char *secret, const char *msg, size_t len, char hex[65])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, 65, mac, sizeof(mac));
}

/* 1 if sub can stand between ";sub=" and ";ts=": no separator, and no
 * control character that could split the HTTP header it travels in. */
static int sub_clean(const char *sub, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)sub[i];
		if (c == ';' || c == '=' || c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

int identity_sign(const char *secret, const identity *id, int64_t now_us, char *buf, size_t len)
{
	if (!secret || !secret[0] || !id || !buf || len < IDENTITY_MAX || now_us < 0 ||
	    (int)id->role < (int)IDENTITY_ANONYMOUS || (int)id->role > (int)IDENTITY_SERVICE ||
	    strnlen(id->sub, sizeof(id->sub)) >= sizeof(id->sub) ||
	    !sub_clean(id->sub, strlen(id->sub)))
		return ERR_INVALID;
	int n = snprintf(buf, len, "v1;role=%s;sub=%s;ts=%lld", identity_role_name(id->role),
			 id->sub, (long long)now_us);
	if (n < 0 || (size_t)n + 70 > len)
		return ERR_INVALID;
	char hex[65];
	mac_hex(secret, buf, (size_t)n, hex);
	snprintf(buf + n, len - (size_t)n, ";sig=%s", hex);
	return 0;
}

int identity_verify(const char *secret, const char *value, int64_t now_us, int64_t max_age_us,
		    identity *out)
{
	memset(out, 0, sizeof(*out));
	if (!secret || !secret[0] || !value || strlen(value) >= IDENTITY_MAX)
		return ERR_UNAUTH;
	const char *sig = strstr(value, ";sig=");
	if (!sig || strncmp(value, "v1;role=", 8) != 0 || strlen(sig + 5) != 64)
		return ERR_UNAUTH;
	char hex[65];
	mac_hex(secret, value, (size_t)(sig - value), hex);
	if (sodium_memcmp(hex, sig + 5, 64) != 0)
		return ERR_UNAUTH;
	/* Signed, so the fields are ours; parse them. */
	const char *role = value + 8;
	const char *sub = strstr(role, ";sub=");
	const char *ts = sub ? strstr(sub + 5, ";ts=") : NULL;
	if (!sub || !ts || ts > sig)
		return ERR_UNAUTH;
	int r = role_parse(role, (size_t)(sub - role));
	size_t sublen = (size_t)(ts - (sub + 5));
	if (r < 0 || sublen >= sizeof(out->sub) || !sub_clean(sub + 5, sublen))
		return ERR_UNAUTH;
	/* Exactly the shape identity_sign writes: ts is digits up to ";sig=",
	 * few enough that they cannot overflow. */
	size_t ndig = (size_t)(sig - (ts + 4));
	if (ndig == 0 || ndig > 18 || strspn(ts + 4, "0123456789") != ndig)
		return ERR_UNAUTH;
	long long t = strtoll(ts + 4, NULL, 10);
	if (t > now_us + max_age_us || t < now_us - max_age_us)
		return ERR_UNAUTH;
	out->role = (enum identity_role)r;
	memcpy(out->sub, sub + 5, sublen);
	out->sub[sublen] = '\0';
	return 0;
}
