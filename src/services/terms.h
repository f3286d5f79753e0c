/* terms: the words of the search index. One tokenizer for documents and
 * queries, identical to SQLite FTS5's "ascii" tokenizer (which the index
 * uses), so the index's own bookkeeping (document frequencies, the exact
 * name key, the typo vocabulary) counts exactly the tokens FTS5 matches:
 * a token is a run of ASCII letters and digits and of bytes >= 0x80 (so a
 * UTF-8 word stays whole); ASCII letters are folded to lower case;
 * everything else separates. Plus what typo tolerance needs: trigrams of a
 * word and a bounded edit distance. Pure functions, no I/O. */
#ifndef ECOM_TERMS_H
#define ECOM_TERMS_H

#include <stddef.h>
#include <stdint.h>

/* The tokens of some text, each NUL-terminated in one buffer. Reusable:
 * terms_list_reset keeps the memory. Owned by whoever holds it:
 * terms_list_free frees the buffers, not the struct. */
typedef struct terms_list {
	char *buf;
	size_t len, cap;
	size_t *at; /* offset of token i in buf */
	size_t n, ncap;
} terms_list;

void terms_list_init(terms_list *l);
void terms_list_reset(terms_list *l);
void terms_list_free(terms_list *l);

/* Appends the tokens of text (len bytes) to l. 0 or ERR_NOMEM. */
int terms_split(terms_list *l, const char *text, size_t len);
/* Token i (borrowed). */
const char *terms_at(const terms_list *l, size_t i);
/* 1 when byte c belongs to a token. */
int terms_is_token_byte(unsigned char c);

/* A 63-bit hash (FNV-1a) of the tokens from..n-1 joined by one space: the
 * key that says two texts have the same words in the same order. */
int64_t terms_key(const terms_list *l, size_t from);

/* Trigrams of word padded as "$word$", distinct, in order of first
 * appearance, each 3 bytes plus NUL in out[i]. Returns how many (at most
 * max). */
#define TERMS_TRIGRAM_MAX 64
int terms_trigrams(const char *word, char out[][4], int max);

/* Whether word takes part in typo correction: 3 to 32 bytes, letters only
 * (numbers and codes are matched exactly). */
int terms_correctable(const char *word);

/* How many typos a query word of this length may have: 1 up to 5 bytes,
 * 2 from 6. */
int terms_typo_budget(size_t len);

/* Optimal string alignment distance between a and b (insertions,
 * deletions, substitutions, transpositions of neighbours), counted in
 * bytes; any value above max is reported as max + 1. Words longer than 64
 * bytes count as max + 1 unless equal. */
int terms_distance(const char *a, const char *b, int max);

#endif
