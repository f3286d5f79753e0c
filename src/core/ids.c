/* ids: prefixed random identifiers, and time-ordered ones. */
#include "core/ids.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

int ids_new(rng *r, const char *prefix, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s_%016llx", prefix, (unsigned long long)rng_u64(r));
	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		return ERR_INVALID;
	}
	return 0;
}

int ids_new_timed(rng *r, int64_t now_us, const char *prefix, char *buf, size_t len)
{
	unsigned long long ms = now_us > 0 ? (unsigned long long)now_us / 1000 : 0;
	int n = snprintf(buf, len, "%s_%011llx%09llx", prefix, ms & 0xfffffffffffULL,
			 (unsigned long long)(rng_u64(r) & 0xfffffffffULL));
	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		return ERR_INVALID;
	}
	return 0;
}

int ids_valid(const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	if (n == 0 || n >= IDS_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}
