/* postings: a bounded in-memory cache of posting lists (the ascending ids
 * of the documents that have a word), shared by the threads of one search
 * index, so that intersections and id-range counts of common words are
 * computed in memory instead of by reading the full-text index match by
 * match.
 *
 * Each list is cached with the revision of its word it was read at; a
 * reader asks for the revision its own snapshot sees, so a list changed
 * since (or read in a newer snapshot) is never handed out for it. Lists
 * are immutable and reference-counted: a list handed out stays valid until
 * released, even if the cache drops or replaces it meanwhile. Thread-safe.
 * Knows nothing of SQLite: the caller reads the lists. */
#ifndef ECOM_POSTINGS_H
#define ECOM_POSTINGS_H

#include <stddef.h>
#include <stdint.h>

typedef struct postings postings;

typedef struct postings_list {
	const int64_t *ids; /* ascending */
	size_t n;
	/* private */
	char *key;
	int64_t rev;
	int refs;
	int cached; /* still in the cache (else freed on the last release) */
	uint64_t used;
	struct postings_list *next;
} postings_list;

/* A cache holding at most max_ids ids in all (0: caches nothing). Owned by
 * the caller: postings_free() (every list released first). */
postings *postings_new(size_t max_ids);
void postings_free(postings *pc);

/* The list of key read at revision rev, or NULL when it is not cached at
 * that revision. A list returned is held: postings_release(). */
postings_list *postings_get(postings *pc, const char *key, int64_t rev);

/* Offers ids[0..n) (ascending, malloc'd; taken over, also on failure) read
 * at revision rev of key. Returns it held (as postings_get), cached unless
 * the cache keeps key at a newer revision or the list does not fit, or
 * NULL when out of memory. */
postings_list *postings_put(postings *pc, const char *key, int64_t rev, int64_t *ids, size_t n);

void postings_release(postings *pc, postings_list *l);

/* The first position >= from whose id is >= v (n when none): galloping
 * from `from`, so a walk through ascending values costs little per step. */
size_t postings_seek(const postings_list *l, size_t from, int64_t v);

/* Up to max cached keys (strdup'd: the caller frees them) with the
 * revision each is cached at, most recently used first; how many. */
size_t postings_keys(postings *pc, char **keys, int64_t *revs, size_t max);

/* Lists and ids cached now. */
void postings_stats(postings *pc, size_t *lists, size_t *ids);

#endif
