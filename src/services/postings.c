/* postings: cached posting lists, reference-counted, least recently used
 * dropped first. */
#include "services/postings.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 256

struct postings {
	pthread_mutex_t mu;
	size_t max_ids, ids, lists;
	uint64_t tick;
	postings_list *b[NBUCKETS];
};

static unsigned bucket_of(const char *key)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h % NBUCKETS;
}

postings *postings_new(size_t max_ids)
{
	postings *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pthread_mutex_init(&pc->mu, NULL);
	pc->max_ids = max_ids;
	return pc;
}

static void list_free(postings_list *l)
{
	free((void *)l->ids);
	free(l->key);
	free(l);
}

void postings_free(postings *pc)
{
	if (!pc)
		return;
	for (int i = 0; i < NBUCKETS; i++)
		for (postings_list *l = pc->b[i], *next; l; l = next) {
			next = l->next;
			list_free(l);
		}
	pthread_mutex_destroy(&pc->mu);
	free(pc);
}

/* Takes l out of the cache (under mu); freed now when nobody holds it,
 * else by the last release. */
static void unlink_list(postings *pc, postings_list *l)
{
	postings_list **pp = &pc->b[bucket_of(l->key)];
	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	l->next = NULL;
	l->cached = 0;
	pc->ids -= l->n;
	pc->lists--;
	if (l->refs == 0)
		list_free(l);
}

static postings_list *find(postings *pc, const char *key)
{
	for (postings_list *l = pc->b[bucket_of(key)]; l; l = l->next)
		if (strcmp(l->key, key) == 0)
			return l;
	return NULL;
}

postings_list *postings_get(postings *pc, const char *key, int64_t rev)
{
	pthread_mutex_lock(&pc->mu);
	postings_list *l = find(pc, key);
	if (l && l->rev == rev) {
		l->refs++;
		l->used = ++pc->tick;
	} else {
		l = NULL;
	}
	pthread_mutex_unlock(&pc->mu);
	return l;
}

/* Drops unheld lists, least recently used first, until need more ids fit. */
static int make_room(postings *pc, size_t need)
{
	while (pc->ids + need > pc->max_ids) {
		postings_list *lru = NULL;
		for (int i = 0; i < NBUCKETS; i++)
			for (postings_list *l = pc->b[i]; l; l = l->next)
				if (l->refs == 0 && (!lru || l->used < lru->used))
					lru = l;
		if (!lru)
			return 0;
		unlink_list(pc, lru);
	}
	return 1;
}

postings_list *postings_put(postings *pc, const char *key, int64_t rev, int64_t *ids, size_t n)
{
	postings_list *l = calloc(1, sizeof(*l));
	char *k = strdup(key);
	if (!l || !k) {
		free(l);
		free(k);
		free(ids);
		return NULL;
	}
	l->ids = ids;
	l->n = n;
	l->key = k;
	l->rev = rev;
	l->refs = 1;
	pthread_mutex_lock(&pc->mu);
	postings_list *old = find(pc, key);
	if (old && old->rev >= rev) {
		/* Kept at this revision or a newer one: l stays private. */
	} else {
		if (old)
			unlink_list(pc, old);
		if (n <= pc->max_ids && make_room(pc, n)) {
			l->cached = 1;
			l->used = ++pc->tick;
			unsigned b = bucket_of(key);
			l->next = pc->b[b];
			pc->b[b] = l;
			pc->ids += n;
			pc->lists++;
		}
	}
	pthread_mutex_unlock(&pc->mu);
	return l;
}

void postings_release(postings *pc, postings_list *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&pc->mu);
	int gone = --l->refs == 0 && !l->cached;
	pthread_mutex_unlock(&pc->mu);
	if (gone)
		list_free(l);
}

size_t postings_seek(const postings_list *l, size_t from, int64_t v)
{
	const int64_t *a = l->ids;
	size_t n = l->n;
	if (from >= n || a[from] >= v)
		return from;
	/* a[lo] < v; gallop until a[hi] >= v or the end */
	size_t lo = from, step = 1, hi = from + 1;
	while (hi < n && a[hi] < v) {
		lo = hi;
		step *= 2;
		hi = lo + step;
	}
	if (hi > n)
		hi = n;
	/* a[lo] < v, and a[hi] >= v or hi == n */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] < v)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

size_t postings_keys(postings *pc, char **keys, int64_t *revs, size_t max)
{
	if (max == 0)
		return 0;
	postings_list **top = calloc(max, sizeof(*top));
	if (!top)
		return 0;
	size_t n = 0;
	pthread_mutex_lock(&pc->mu);
	/* the max most recently used, kept in order (insertion: max is small) */
	for (int i = 0; i < NBUCKETS; i++)
		for (postings_list *l = pc->b[i]; l; l = l->next) {
			if (n == max && top[n - 1]->used >= l->used)
				continue;
			size_t at = n < max ? n++ : n - 1;
			while (at > 0 && top[at - 1]->used < l->used) {
				top[at] = top[at - 1];
				at--;
			}
			top[at] = l;
		}
	size_t got = 0;
	for (size_t i = 0; i < n; i++) {
		if (!(keys[got] = strdup(top[i]->key)))
			continue;
		revs[got++] = top[i]->rev;
	}
	pthread_mutex_unlock(&pc->mu);
	free(top);
	return got;
}

void postings_stats(postings *pc, size_t *lists, size_t *ids)
{
	pthread_mutex_lock(&pc->mu);
	*lists = pc->lists;
	*ids = pc->ids;
	pthread_mutex_unlock(&pc->mu);
}
