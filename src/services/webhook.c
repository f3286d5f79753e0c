/* webhook: Stripe's and the PayPal simulator's webhook signatures. */
#include "services/webhook.h"
#include "core/err.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAC_BYTES crypto_auth_hmacsha256_BYTES
#define MAC_HEX (2 * MAC_BYTES)

/* HMAC-SHA256 under secret of the parts, concatenated. */
static void mac(const char *secret, const char *const *parts, const size_t *lens, int n,
		unsigned char out[MAC_BYTES])
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	for (int i = 0; i < n; i++)
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)parts[i], lens[i]);
	crypto_auth_hmacsha256_final(&st, out);
}

static int fail(char *why, size_t whylen, const char *msg)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", msg);
	return ERR_UNAUTH;
}

static int64_t distance(int64_t a, int64_t b) { return a > b ? a - b : b - a; }

/* ---- Stripe ------------------------------------------------------------------------ */

static void stripe_mac_hex(const char *secret, int64_t t, const char *body, size_t len,
			   char hex[MAC_HEX + 1])
{
	char ts[24];
	int n = snprintf(ts, sizeof(ts), "%lld.", (long long)t);
	const char *parts[2] = { ts, body ? body : "" };
	size_t lens[2] = { (size_t)n, body ? len : 0 };
	unsigned char m[MAC_BYTES];
	mac(secret, parts, lens, 2, m);
	sodium_bin2hex(hex, MAC_HEX + 1, m, sizeof(m));
}

int webhook_stripe_sign(const char *secret, int64_t t, const char *body, size_t len, char *buf,
			size_t buflen)
{
	if (!secret || !secret[0] || !buf || t < 0)
		return ERR_INVALID;
	char hex[MAC_HEX + 1];
	stripe_mac_hex(secret, t, body, len, hex);
	int n = snprintf(buf, buflen, "t=%lld,v1=%s", (long long)t, hex);
	return n > 0 && (size_t)n < buflen ? 0 : ERR_INVALID;
}

int webhook_stripe_verify(const char *secret, const char *header, const char *body, size_t len,
			  int64_t now_s, int64_t tolerance_s, char *why, size_t whylen)
{
	if (!secret || !secret[0])
		return ERR_INVALID;
	if (!header || !header[0])
		return fail(why, whylen, "no Stripe-Signature header");
	size_t hl = strlen(header);
	if (hl > WEBHOOK_HEADER_MAX)
		return fail(why, whylen, "the Stripe-Signature header is too long");
	char *copy = strdup(header);
	if (!copy)
		return fail(why, whylen, "out of memory");
	int64_t t = -1;
	int nv1 = 0, matched = 0;
	char expect[MAC_HEX + 1] = "";
	/* Two passes: the timestamp may come after the signatures. */
	for (int pass = 0; pass < 2; pass++) {
		memcpy(copy, header, hl + 1);
		char *save = NULL;
		for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
			while (*item == ' ')
				item++;
			char *eq = strchr(item, '=');
			if (!eq)
				continue;
			*eq = '\0';
			const char *k = item, *v = eq + 1;
			if (pass == 0 && strcmp(k, "t") == 0) {
				char *end = NULL;
				long long x = strtoll(v, &end, 10);
				if (end != v && *end == '\0' && x >= 0 && isdigit((unsigned char)v[0]))
					t = x;
			} else if (pass == 1 && strcmp(k, "v1") == 0) {
				nv1++;
				if (strlen(v) == MAC_HEX && sodium_memcmp(v, expect, MAC_HEX) == 0)
					matched = 1;
			}
		}
		if (pass == 0) {
			if (t < 0) {
				free(copy);
				return fail(why, whylen,
					    "the Stripe-Signature header has no timestamp (t=)");
			}
			stripe_mac_hex(secret, t, body, len, expect);
		}
	}
	free(copy);
	if (nv1 == 0)
		return fail(why, whylen, "the Stripe-Signature header has no v1 signature");
	if (!matched)
		return fail(why, whylen, "no v1 signature matches the body and the endpoint secret");
	if (distance(now_s, t) > tolerance_s)
		return fail(why, whylen, "the signature's timestamp is outside the tolerance");
	return 0;
}

/* ---- PayPal (the simulator's scheme) --------------------------------------------- */

static void paypal_mac(const char *secret, const char *id, const char *tm, const char *body,
		       size_t len, unsigned char out[MAC_BYTES])
{
	const char *parts[5] = { id, "|", tm, "|", body ? body : "" };
	size_t lens[5] = { strlen(id), 1, strlen(tm), 1, body ? len : 0 };
	mac(secret, parts, lens, 5, out);
}

int webhook_paypal_sign(const char *secret, const char *transmission_id,
			const char *transmission_time, const char *body, size_t len, char *buf,
			size_t buflen)
{
	if (!secret || !secret[0] || !transmission_id || !transmission_time || !buf ||
	    buflen < sodium_base64_ENCODED_LEN(MAC_BYTES, sodium_base64_VARIANT_ORIGINAL))
		return ERR_INVALID;
	unsigned char m[MAC_BYTES];
	paypal_mac(secret, transmission_id, transmission_time, body, len, m);
	sodium_bin2base64(buf, buflen, m, sizeof(m), sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int webhook_paypal_verify(const char *secret, const char *transmission_id,
			  const char *transmission_time, const char *algo, const char *sig,
			  const char *body, size_t len, int64_t now_s, int64_t tolerance_s,
			  char *why, size_t whylen)
{
	if (!secret || !secret[0])
		return ERR_INVALID;
	if (!transmission_id || !transmission_id[0] ||
	    strlen(transmission_id) > WEBHOOK_HEADER_MAX)
		return fail(why, whylen, "no usable PAYPAL-TRANSMISSION-ID header");
	if (!sig || !sig[0])
		return fail(why, whylen, "no PAYPAL-TRANSMISSION-SIG header");
	if (!algo || strcmp(algo, WEBHOOK_PAYPAL_ALGO) != 0)
		return fail(why, whylen, "PAYPAL-AUTH-ALGO must be " WEBHOOK_PAYPAL_ALGO);
	int64_t t = 0;
	if (!transmission_time || webhook_parse_time(transmission_time, &t) != 0)
		return fail(why, whylen, "PAYPAL-TRANSMISSION-TIME is not an RFC 3339 UTC time");
	unsigned char got[MAC_BYTES + 8], want[MAC_BYTES];
	size_t n = 0;
	if (strlen(sig) > WEBHOOK_SIG_MAX ||
	    sodium_base642bin(got, sizeof(got), sig, strlen(sig), NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != MAC_BYTES)
		return fail(why, whylen, "PAYPAL-TRANSMISSION-SIG is not a base64 HMAC-SHA256");
	paypal_mac(secret, transmission_id, transmission_time, body, len, want);
	if (sodium_memcmp(got, want, MAC_BYTES) != 0)
		return fail(why, whylen, "the signature does not match the body and the secret");
	if (distance(now_s, t) > tolerance_s)
		return fail(why, whylen, "the transmission time is outside the tolerance");
	return 0;
}

/* ---- times ------------------------------------------------------------------------- */

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int webhook_parse_time(const char *s, int64_t *out_s)
{
	int y, mo, d, h, mi, se;
	if (!s || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || s[10] != 'T' || digits(s + 11, 2, &h) ||
	    s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
		return ERR_PARSE;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return ERR_PARSE;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    se > 60)
		return ERR_PARSE;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = se };
	*out_s = (int64_t)timegm(&tm);
	return 0;
}

void webhook_format_time(int64_t now_s, char *buf, size_t len)
{
	time_t t = (time_t)(now_s < 0 ? 0 : now_s);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
