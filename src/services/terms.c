/* terms: the tokenizer shared with FTS5's ascii tokenizer, trigrams, edit
 * distance. */
#include "services/terms.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

void terms_list_init(terms_list *l) { memset(l, 0, sizeof(*l)); }

void terms_list_reset(terms_list *l)
{
	l->len = 0;
	l->n = 0;
}

void terms_list_free(terms_list *l)
{
	free(l->buf);
	free(l->at);
	memset(l, 0, sizeof(*l));
}

int terms_is_token_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c >= 0x80;
}

static int reserve(terms_list *l, size_t bytes)
{
	if (l->len + bytes > l->cap) {
		size_t cap = l->cap ? l->cap : 256;
		while (cap < l->len + bytes)
			cap *= 2;
		char *b = realloc(l->buf, cap);
		if (!b)
			return ERR_NOMEM;
		l->buf = b;
		l->cap = cap;
	}
	if (l->n == l->ncap) {
		size_t cap = l->ncap ? l->ncap * 2 : 32;
		size_t *a = realloc(l->at, cap * sizeof(*a));
		if (!a)
			return ERR_NOMEM;
		l->at = a;
		l->ncap = cap;
	}
	return 0;
}

int terms_split(terms_list *l, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0;
	while (i < len) {
		while (i < len && !terms_is_token_byte(s[i]))
			i++;
		size_t start = i;
		while (i < len && terms_is_token_byte(s[i]))
			i++;
		if (i == start)
			break;
		size_t n = i - start;
		if (reserve(l, n + 1))
			return ERR_NOMEM;
		char *dst = l->buf + l->len;
		for (size_t k = 0; k < n; k++) {
			unsigned char c = s[start + k];
			dst[k] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		}
		dst[n] = '\0';
		l->at[l->n++] = l->len;
		l->len += n + 1;
	}
	return 0;
}

const char *terms_at(const terms_list *l, size_t i) { return l->buf + l->at[i]; }

int64_t terms_key(const terms_list *l, size_t from)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = from; i < l->n; i++) {
		if (i > from) {
			h ^= ' ';
			h *= 1099511628211ULL;
		}
		for (const unsigned char *p = (const unsigned char *)terms_at(l, i); *p; p++) {
			h ^= *p;
			h *= 1099511628211ULL;
		}
	}
	return (int64_t)(h & 0x7fffffffffffffffULL);
}

int terms_trigrams(const char *word, char out[][4], int max)
{
	size_t n = strlen(word);
	if (n == 0 || max <= 0)
		return 0;
	char padded[80];
	if (n > sizeof(padded) - 3)
		n = sizeof(padded) - 3;
	padded[0] = '$';
	memcpy(padded + 1, word, n);
	padded[n + 1] = '$';
	int count = 0;
	for (size_t i = 0; i + 3 <= n + 2 && count < max; i++) {
		int seen = 0;
		for (int k = 0; k < count && !seen; k++)
			seen = memcmp(out[k], padded + i, 3) == 0;
		if (seen)
			continue;
		memcpy(out[count], padded + i, 3);
		out[count][3] = '\0';
		count++;
	}
	return count;
}

int terms_correctable(const char *word)
{
	size_t n = strlen(word);
	if (n < 3 || n > 32)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(word[i] >= 'a' && word[i] <= 'z'))
			return 0;
	return 1;
}

int terms_typo_budget(size_t len) { return len <= 5 ? 1 : 2; }

int terms_distance(const char *a, const char *b, int max)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return strcmp(a, b) == 0 ? 0 : max + 1;
	if ((la > lb ? la - lb : lb - la) > (size_t)max)
		return max + 1;
	/* Three rows of the dynamic programme: two back for transpositions. */
	int rows[3][65];
	int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = (int)i;
		int best = cur[0];
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (prev[j - 1] + cost < v)
				v = prev[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < v)
				v = prev2[j - 2] + 1;
			cur[j] = v;
			if (v < best)
				best = v;
		}
		if (best > max)
			return max + 1;
		int *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb] > max ? max + 1 : prev[lb];
}
