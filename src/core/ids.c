/* ids: prefixed random identifiers. */
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
