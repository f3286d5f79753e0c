/* fallback: a hash table of answers with a list in storing order. */
#include "resil/fallback.h"
#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
	struct entry *hnext;          /* bucket chain */
	struct entry *older, *newer;  /* storing order */
	uint64_t hash;
	char *key;
	char ctype[64];
	char *body;
	size_t len;
	int64_t at;
} entry;

struct fallback {
	pthread_mutex_t mu;
	entry **buckets;
	size_t nbuckets; /* a power of two */
	entry *oldest, *newest;
	int n, max_entries;
	size_t bytes, max_bytes;
	int64_t max_age;
	int64_t stored, hits, misses, evicted;
};

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t cost(const entry *e) { return strlen(e->key) + e->len + sizeof(*e); }

fallback *fallback_new(int max_entries, size_t max_bytes, int64_t max_age_us)
{
	if (max_entries < 1 || max_bytes < 1024 || max_age_us <= 0)
		return NULL;
	fallback *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->nbuckets = 16;
	while (f->nbuckets < (size_t)max_entries * 2 && f->nbuckets < (1u << 24))
		f->nbuckets *= 2;
	f->buckets = calloc(f->nbuckets, sizeof(*f->buckets));
	if (!f->buckets) {
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->mu, NULL);
	f->max_entries = max_entries;
	f->max_bytes = max_bytes;
	f->max_age = max_age_us;
	return f;
}

static void entry_free(entry *e)
{
	free(e->key);
	free(e->body);
	free(e);
}

void fallback_free(fallback *f)
{
	if (!f)
		return;
	for (entry *e = f->oldest, *next; e; e = next) {
		next = e->newer;
		entry_free(e);
	}
	pthread_mutex_destroy(&f->mu);
	free(f->buckets);
	free(f);
}

static entry **slot_of(fallback *f, const char *key, uint64_t h)
{
	entry **p = &f->buckets[h & (f->nbuckets - 1)];
	while (*p && !((*p)->hash == h && strcmp((*p)->key, key) == 0))
		p = &(*p)->hnext;
	return p;
}

/* Unlinks *slot (an entry) from both structures and frees it. */
static void drop(fallback *f, entry **slot)
{
	entry *e = *slot;
	*slot = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		f->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		f->newest = e->older;
	f->n--;
	f->bytes -= cost(e);
	entry_free(e);
}

static void drop_oldest(fallback *f)
{
	entry *e = f->oldest;
	drop(f, slot_of(f, e->key, e->hash));
	f->evicted++;
}

int fallback_put(fallback *f, const char *key, const char *ctype, const char *body, size_t len,
		 int64_t now_us)
{
	if (!f || !key || (!body && len))
		return ERR_INVALID;
	uint64_t h = hash_key(key);
	size_t klen = strlen(key);
	int too_large = klen > FALLBACK_MAX_KEY || klen + len + sizeof(entry) > f->max_bytes / 4;
	entry *e = NULL;
	if (!too_large) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return ERR_NOMEM;
		e->key = strdup(key);
		e->body = malloc(len + 1);
		if (!e->key || !e->body) {
			entry_free(e);
			return ERR_NOMEM;
		}
		memcpy(e->body, body ? body : "", len);
		e->body[len] = '\0';
		e->len = len;
		e->hash = h;
		e->at = now_us;
		snprintf(e->ctype, sizeof(e->ctype), "%s", ctype ? ctype : "");
	}
	pthread_mutex_lock(&f->mu);
	entry **slot = slot_of(f, key, h);
	if (*slot)
		drop(f, slot);
	if (e) {
		while (f->n > 0 && (f->n >= f->max_entries || f->bytes + cost(e) > f->max_bytes))
			drop_oldest(f);
		slot = slot_of(f, key, h);
		*slot = e;
		e->older = f->newest;
		if (f->newest)
			f->newest->newer = e;
		else
			f->oldest = e;
		f->newest = e;
		f->n++;
		f->bytes += cost(e);
		f->stored++;
	}
	pthread_mutex_unlock(&f->mu);
	return too_large ? ERR_TOO_LARGE : 0;
}

int fallback_get(fallback *f, const char *key, int64_t now_us, msg_resp *out, int64_t *age_us)
{
	if (!f || !key || !out)
		return ERR_INVALID;
	int rc = ERR_NOT_FOUND;
	pthread_mutex_lock(&f->mu);
	entry **slot = slot_of(f, key, hash_key(key));
	entry *e = *slot;
	if (e && now_us - e->at >= f->max_age) {
		drop(f, slot);
		f->evicted++;
		e = NULL;
	}
	if (e && msg_resp_set(out, 200, e->ctype[0] ? e->ctype : NULL, e->body, e->len) == 0) {
		if (age_us)
			*age_us = now_us > e->at ? now_us - e->at : 0;
		rc = 0;
	}
	if (rc == 0)
		f->hits++;
	else
		f->misses++;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void fallback_snapshot(fallback *f, fallback_stats *out)
{
	pthread_mutex_lock(&f->mu);
	out->entries = f->n;
	out->bytes = f->bytes;
	out->stored = f->stored;
	out->hits = f->hits;
	out->misses = f->misses;
	out->evicted = f->evicted;
	pthread_mutex_unlock(&f->mu);
}
