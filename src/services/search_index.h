/* search_index: the search service's index, in a SQLite database of its own
 * (always SQLite: the index is derived data, one per search instance, even
 * when the platform's store is PostgreSQL).
 *
 * Tables: docs (one row per product; its id is category id << 40 | a
 * sequence, so a category is a range of ids and a facet is id >> 40), two
 * FTS5 tables over docs (fts: name and description; fts_name: name alone,
 * for picking name matches first), term_cats (documents per word and
 * category: df for ranking, facet counts of one-word queries, prefix
 * completion), trigrams (the typo vocabulary), tombstones (deleted skus with
 * the version of the delete, so an older event cannot bring one back),
 * categories, term_revs (a revision per slot of words, bumped by every
 * write that changes the documents of a word in the slot: posting lists
 * cached in memory are checked against it), meta.
 *
 * Writes run inside the caller's transaction (store_begin on the same
 * store and thread) and collect word counts in a search_batch, which
 * search_index_flush writes before the caller commits. Reads need no
 * transaction. Thread-safe: one index serves every thread of the host. */
#ifndef ECOM_SEARCH_INDEX_H
#define ECOM_SEARCH_INDEX_H

#include <stdint.h>

#include <jansson.h>

#include "services/terms.h"
#include "store/store.h"

/* The layout version; an index of another version is dropped and rebuilt. */
#define SEARCH_INDEX_FORMAT 4
#define SEARCH_SKU_MAX 64

typedef struct search_index search_index;
typedef struct search_batch search_batch;

typedef struct search_index_opts {
	int rank_window;     /* candidates ranked when more match (>= 1) */
	double name_weight;  /* BM25F field weights */
	double desc_weight;
	double k1, b;        /* BM25 saturation and length normalisation */
	size_t posting_cache_ids; /* ids of common words' posting lists kept in memory (0: none) */
	int64_t posting_cache_min_df; /* words in fewer documents are not cached */
} search_index_opts;

/* Opens the index in s, creating its tables when missing and dropping and
 * recreating them when they are of another format. *fresh is 1 when the
 * index was (re)created empty. Owned by the caller: search_index_free(). */
search_index *search_index_open(store *s, const search_index_opts *o, int *fresh, char *err,
				size_t errlen);
void search_index_free(search_index *ix);

/* ---- writes (inside the caller's transaction) ------------------------- */

typedef struct search_doc {
	const char *sku, *name, *description, *category, *currency;
	int64_t price_cents;
	int64_t version; /* increases with every change of the sku */
} search_doc;

/* Word-count changes of the writes in one transaction. Owned:
 * search_batch_free(). */
search_batch *search_batch_new(void);
void search_batch_free(search_batch *b);

/* Indexes d unless the index already has this sku at version >= d's, or a
 * delete of it at a version >= d's. Either way the document is marked as
 * seen by generation gen (a rebuild sweeps away what it did not see).
 * *applied is 1 when the index changed. */
int search_index_put(search_index *ix, search_batch *b, const search_doc *d, int64_t gen,
		     int *applied);
/* Removes sku unless the index has it at a newer version, and remembers the
 * delete (version, at now) so that older events cannot bring it back. */
int search_index_remove(search_index *ix, search_batch *b, const char *sku, int64_t version,
			int64_t now, int *applied);
/* Removes up to max documents of a generation older than gen with ids
 * above *cursor, in id order; advances *cursor. *removed counts them;
 * fewer than max means the sweep is done. */
int search_index_sweep(search_index *ix, search_batch *b, int64_t gen, int64_t *cursor, int max,
		       int *removed);
/* Writes b's word counts and totals; b is empty afterwards. */
int search_index_flush(search_index *ix, search_batch *b);
/* Forgets up to max deletes remembered before `before`. */
int search_index_purge_tombstones(search_index *ix, int64_t before, int max, int *purged);
/* Merges the full-text segments into one (after a rebuild; faster reads). */
int search_index_optimize(search_index *ix);

/* Integer and text values kept in the meta table ("gen", "built", ...). */
int search_index_meta_int(search_index *ix, const char *key, int64_t *out);
int search_index_meta_text(search_index *ix, const char *key, char *buf, size_t len);
int search_index_set_meta(search_index *ix, const char *key, int64_t v, const char *text);

/* ---- reads ------------------------------------------------------------ */

/* Most words (groups of words) a query is searched as. */
#define SEARCH_GROUPS_MAX 32

/* Where a page ended: the sort key of its last item (results are ordered by
 * exact name match first, then score, then sku), and the statistics its
 * scores were computed with: the next page scores with the same, so
 * documents added or removed meanwhile do not shift the others' scores
 * across the key (no item twice, none skipped, for unchanged products). */
typedef struct search_cursor {
	int exact;
	int64_t score_q; /* score * 1e6, rounded */
	char sku[SEARCH_SKU_MAX + 1];
	int64_t n_docs, sum_name, sum_desc;
	int ngroups;
	int64_t df[SEARCH_GROUPS_MAX];
} search_cursor;

typedef struct search_params {
	const terms_list *tokens; /* the query's words, at least one */
	int typing;               /* the last word may be unfinished (a prefix) */
	const char *category;     /* NULL: every category */
	int has_min, has_max;
	int64_t min_price, max_price;
	int limit;
	const search_cursor *after; /* NULL on the first page */
} search_params;

typedef struct search_result {
	json_t *items;  /* [product + score] */
	json_t *facets; /* {category: count}, for the query and price filters */
	int64_t total;  /* matches with every filter */
	char *query;    /* the words searched for, after completion and typo fixes (malloc'd) */
	int windowed;   /* more matched than the rank window: ranked among candidates */
	int warm;       /* posting lists were wanted: search_index_warm has work */
	int from_lists; /* counted from cached posting lists */
	int has_next;
	search_cursor next;
} search_result;

/* Runs a search. Fills res (release with search_result_clear). */
int search_index_search(search_index *ix, const search_params *p, search_result *res);
void search_result_clear(search_result *res);

/* Up to limit completions of the query's last word (an unfinished word)
 * that, with the words before it, match a product; most frequent first.
 * *out is a new JSON array of strings. */
int search_index_suggest(search_index *ix, const terms_list *tokens, int limit, json_t **out);

/* Reads up to max posting lists that searches wanted (common words whose
 * lists were not cached, or changed since) into the cache; *loaded counts
 * them. Searches never read a list themselves (they count from the
 * full-text index meanwhile): the engine calls this from its tick. */
int search_index_warm(search_index *ix, int max, int *loaded);

/* Documents in the index. */
int search_index_count(search_index *ix, int64_t *n);

#endif
