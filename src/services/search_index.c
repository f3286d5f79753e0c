/* search_index: documents, FTS5 tables, word statistics, ranking. */
#include "services/search_index.h"
#include "core/err.h"
#include "services/postings.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A document's id (its rowid in docs and both FTS5 tables):
 *
 *   category id (16 bits) | price bucket (16 bits) | sequence (31 bits)
 *
 * so that a category is one range of ids and a price range within it is
 * one range too, which FTS5 seeks to instead of reading every match; a
 * facet count is id >> CAT_SHIFT. Price buckets are a cent wide up to
 * 1,024 cents and about 0.1% wide above: a filter's bound seldom falls
 * inside a bucket that holds prices on both sides of it, and when it does
 * the bucket holds few products (format 3 had 3% buckets, whose edges
 * cost a price lookup per match of up to 1-2% of a word's products). */
#define CAT_SHIFT 47
#define PB_SHIFT 31
#define PB_BITS 16
#define PB_COUNT (1 << PB_BITS)
#define SEQ_MAX ((1LL << PB_SHIFT) - 1)
#define CAT_MAX ((1LL << (63 - CAT_SHIFT)) - 1)
#define ID_OF(cat, pb, seq) \
	(((int64_t)(cat) << CAT_SHIFT) | ((int64_t)(pb) << PB_SHIFT) | (int64_t)(seq))
#define CAT_OF(id) ((int64_t)(id) >> CAT_SHIFT)
#define PB_OF(id) (((int64_t)(id) >> PB_SHIFT) & (PB_COUNT - 1))
#define GROUPS_MAX SEARCH_GROUPS_MAX
#define GROUP_TERMS 8
/* Terms with a prefix looked at for completion, in term order. */
#define PREFIX_SCAN 4000
/* Vocabulary words compared by edit distance per misspelt word. */
#define TYPO_CANDIDATES 40
/* Completions checked against the index per suggest request. */
#define SUGGEST_CHECKS 20
/* Words are hashed into this many revision slots (term_revs): a write
 * bumps the slots of the words whose documents it changed. */
#define REV_SLOTS 65536
/* Words waiting for search_index_warm to read their posting lists. */
#define WANTED_MAX 64

struct search_index {
	store *s;
	search_index_opts o;
	pthread_key_t tuned; /* set on threads whose connection has the read pragmas */
	pthread_mutex_t mu;  /* guards cats, wanted */
	char **cats;        /* category name by id, filled from the table */
	int64_t ncats;
	postings *pc;       /* posting lists of common words */
	char *wanted[WANTED_MAX]; /* words whose lists searches asked for (guarded by mu) */
	int nwanted;
};

/* ---- statements ------------------------------------------------------- */

typedef struct sarg {
	int is_text;
	const char *t;
	int64_t i;
} sarg;

#define T(x) ((sarg){ 1, (x), 0 })
#define I(x) ((sarg){ 0, NULL, (x) })
#define ARGV(...) ((const sarg[]){ __VA_ARGS__ }), (int)(sizeof((sarg[]){ __VA_ARGS__ }) / sizeof(sarg))

/* The prepared statement for sql with args bound, or NULL with *err. */
static store_stmt *prep(search_index *ix, const char *sql, const sarg *a, int n, int *err)
{
	store_stmt *st = store_prepare(ix->s, sql, err);
	for (int k = 0; st && k < n; k++) {
		int rc = a[k].is_text ? store_bind_text(st, k + 1, a[k].t)
				      : store_bind_int(st, k + 1, a[k].i);
		if (rc) {
			store_reset(st);
			*err = rc;
			return NULL;
		}
	}
	return st;
}

/* Runs a statement that returns no rows; *changes (may be NULL) gets the
 * rows it changed. */
static int run(search_index *ix, const char *sql, const sarg *a, int n, int64_t *changes)
{
	int err = 0;
	store_stmt *st = prep(ix, sql, a, n, &err);
	if (!st)
		return err;
	int rc = store_step(st);
	if (changes)
		*changes = rc >= 0 ? store_changes(st) : 0;
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* The first column of the first row as an integer: 1 with *out, 0 when
 * there is no row, or an error. */
static int one_int(search_index *ix, const char *sql, const sarg *a, int n, int64_t *out)
{
	int err = 0;
	store_stmt *st = prep(ix, sql, a, n, &err);
	if (!st)
		return err;
	int rc = store_step(st);
	if (rc == STORE_ROW)
		*out = store_col_int(st, 0);
	store_reset(st);
	return rc < 0 ? rc : rc == STORE_ROW;
}

/* ---- schema ----------------------------------------------------------- */

static const char SCHEMA[] =
	"CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL DEFAULT 0,"
	" s TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE categories (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE docs (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE,"
	" name TEXT NOT NULL, description TEXT NOT NULL, category TEXT NOT NULL,"
	" price_cents INTEGER NOT NULL, currency TEXT NOT NULL, version INTEGER NOT NULL,"
	" gen INTEGER NOT NULL, name_key INTEGER NOT NULL);"
	"CREATE INDEX docs_name_key ON docs (name_key);"
	"CREATE INDEX docs_price ON docs (price_cents);"
	"CREATE VIRTUAL TABLE fts USING fts5(name, description, content='docs',"
	" content_rowid='id', tokenize='ascii', detail='none');"
	"CREATE VIRTUAL TABLE fts_name USING fts5(name, content='docs', content_rowid='id',"
	" tokenize='ascii', detail='none');"
	"CREATE TABLE term_cats (term TEXT NOT NULL, cat INTEGER NOT NULL, df INTEGER NOT NULL,"
	" PRIMARY KEY (term, cat)) WITHOUT ROWID;"
	"CREATE TABLE trigrams (tri TEXT NOT NULL, term TEXT NOT NULL,"
	" PRIMARY KEY (tri, term)) WITHOUT ROWID;"
	"CREATE TABLE tombstones (sku TEXT PRIMARY KEY, version INTEGER NOT NULL,"
	" at INTEGER NOT NULL);"
	"CREATE TABLE term_revs (slot INTEGER PRIMARY KEY, rev INTEGER NOT NULL);"
	"INSERT INTO meta (k, v) VALUES ('n_docs', 0), ('sum_name', 0), ('sum_desc', 0),"
	" ('next_seq', 1), ('gen', 0), ('built', 0), ('rev', 0);";

static const char DROP[] =
	"DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS fts_name; DROP TABLE IF EXISTS docs;"
	"DROP TABLE IF EXISTS prices;"
	"DROP TABLE IF EXISTS term_cats; DROP TABLE IF EXISTS trigrams;"
	"DROP TABLE IF EXISTS tombstones; DROP TABLE IF EXISTS categories;"
	"DROP TABLE IF EXISTS term_revs;"
	"DROP TABLE IF EXISTS meta;";

static int create_schema(search_index *ix, int drop)
{
	char sql[sizeof(SCHEMA) + sizeof(DROP) + 128];
	snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; %s %s INSERT INTO meta (k, v) VALUES ('format', %d); COMMIT;",
		 drop ? DROP : "", SCHEMA, SEARCH_INDEX_FORMAT);
	int rc = store_exec(ix->s, sql);
	if (rc)
		store_exec(ix->s, "ROLLBACK");
	return rc;
}

search_index *search_index_open(store *s, const search_index_opts *o, int *fresh, char *err,
				size_t errlen)
{
	search_index *ix = calloc(1, sizeof(*ix));
	if (!ix) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ix->s = s;
	ix->o = *o;
	if (ix->o.rank_window < 1)
		ix->o.rank_window = 1;
	if (ix->o.posting_cache_min_df < 1)
		ix->o.posting_cache_min_df = 1;
	if (pthread_key_create(&ix->tuned, NULL) != 0) {
		snprintf(err, errlen, "out of thread-specific keys");
		free(ix);
		return NULL;
	}
	pthread_mutex_init(&ix->mu, NULL);
	ix->pc = postings_new(o->posting_cache_ids);
	*fresh = 0;
	int64_t format = 0;
	int rc = store_exec(s, "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY,"
			       " v INTEGER NOT NULL DEFAULT 0, s TEXT NOT NULL DEFAULT '')");
	if (rc == 0)
		rc = one_int(ix, "SELECT v FROM meta WHERE k = 'format'", NULL, 0, &format);
	if (rc >= 0 && format != SEARCH_INDEX_FORMAT) {
		rc = create_schema(ix, 1);
		*fresh = 1;
	}
	if (rc < 0 || !ix->pc) {
		snprintf(err, errlen, "search index: %s", rc < 0 ? store_errmsg(s) : "out of memory");
		search_index_free(ix);
		return NULL;
	}
	return ix;
}

void search_index_free(search_index *ix)
{
	if (!ix)
		return;
	for (int64_t i = 0; i < ix->ncats; i++)
		free(ix->cats[i]);
	free(ix->cats);
	for (int i = 0; i < ix->nwanted; i++)
		free(ix->wanted[i]);
	postings_free(ix->pc);
	pthread_mutex_destroy(&ix->mu);
	pthread_key_delete(ix->tuned);
	free(ix);
}

/* The first use of the index on a thread's connection gives it a 64 MiB
 * page cache and maps the file (reads then come from memory rather than
 * being copied in with pread; writers find the pages they update). */
static void tune(search_index *ix)
{
	if (!pthread_getspecific(ix->tuned)) {
		store_exec(ix->s, "PRAGMA cache_size = -65536; PRAGMA mmap_size = 4294967296");
		pthread_setspecific(ix->tuned, ix);
	}
}

/* ---- meta ------------------------------------------------------------- */

int search_index_meta_int(search_index *ix, const char *key, int64_t *out)
{
	*out = 0;
	int rc = one_int(ix, "SELECT v FROM meta WHERE k = ?", ARGV(T(key)), out);
	return rc < 0 ? rc : 0;
}

int search_index_meta_text(search_index *ix, const char *key, char *buf, size_t len)
{
	int err = 0;
	buf[0] = '\0';
	store_stmt *st = prep(ix, "SELECT s FROM meta WHERE k = ?", ARGV(T(key)), &err);
	if (!st)
		return err;
	int rc = store_step(st);
	if (rc == STORE_ROW)
		snprintf(buf, len, "%s", store_col_text(st, 0) ? store_col_text(st, 0) : "");
	store_reset(st);
	return rc < 0 ? rc : 0;
}

int search_index_set_meta(search_index *ix, const char *key, int64_t v, const char *text)
{
	return run(ix,
		   "INSERT INTO meta (k, v, s) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET"
		   " v = excluded.v, s = excluded.s",
		   ARGV(T(key), I(v), T(text ? text : "")), NULL);
}

int search_index_count(search_index *ix, int64_t *n) { return search_index_meta_int(ix, "n_docs", n); }

/* ---- price buckets -------------------------------------------------------
 *
 * Bucket b holds the prices in [bound[b], bound[b + 1]); bound[0] is the
 * lowest price there is, bound[1] = 1, then each bound is the last plus a
 * PB_RATIO-th of it (at least 1): integer steps, so every build of ecom
 * puts a price in the same bucket. The last bucket (pb_n - 1, where the
 * next step would pass INT64_MAX) holds everything above. */

#define PB_RATIO 1024
static int64_t pb_bound[PB_COUNT];
static int pb_n;
static pthread_once_t pb_once = PTHREAD_ONCE_INIT;

static void pb_init(void)
{
	pb_bound[0] = INT64_MIN;
	pb_bound[1] = 1;
	pb_n = 2;
	while (pb_n < PB_COUNT) {
		int64_t last = pb_bound[pb_n - 1];
		int64_t step = last / PB_RATIO > 0 ? last / PB_RATIO : 1;
		if (last > INT64_MAX - step)
			break;
		pb_bound[pb_n++] = last + step;
	}
}

static int price_bucket(int64_t price)
{
	pthread_once(&pb_once, pb_init);
	int lo = 0, hi = pb_n - 1;
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;
		if (pb_bound[mid] <= price)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* 1 when every price of bucket b is within [min, max]. */
static int bucket_inside(int b, int64_t min, int64_t max)
{
	pthread_once(&pb_once, pb_init);
	int64_t first = pb_bound[b];
	int64_t last = b + 1 < pb_n ? pb_bound[b + 1] - 1 : INT64_MAX;
	return first >= min && last <= max;
}

/* ---- batches: word counts per (term, category) ------------------------ */

typedef struct delta {
	char *term; /* NULL: empty slot */
	int64_t cat;
	int64_t d;
} delta;

struct search_batch {
	delta *slots;
	size_t cap, used;
	int64_t n_docs, sum_name, sum_desc;
	int64_t next_seq; /* 0 until read from meta */
	int64_t seq_taken;
	terms_list words;
	const char **uniq;
	size_t uniq_cap;
	/* What this transaction already looked up: the last category, and
	 * whether there are tombstones at all (-1: not asked yet). */
	char last_cat[72];
	int64_t last_cat_id;
	int tombstones;
	uint64_t touched[REV_SLOTS / 64]; /* revision slots of the words changed */
};

search_batch *search_batch_new(void)
{
	search_batch *b = calloc(1, sizeof(*b));
	if (b) {
		terms_list_init(&b->words);
		b->tombstones = -1;
	}
	return b;
}

static void batch_clear_slots(search_batch *b)
{
	for (size_t i = 0; i < b->cap; i++)
		free(b->slots[i].term);
	if (b->slots)
		memset(b->slots, 0, b->cap * sizeof(*b->slots));
	b->used = 0;
}

void search_batch_free(search_batch *b)
{
	if (!b)
		return;
	batch_clear_slots(b);
	free(b->slots);
	terms_list_free(&b->words);
	free(b->uniq);
	free(b);
}

static uint64_t hash_term(const char *t, int64_t cat)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)cat;
	for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static int batch_grow(search_batch *b)
{
	size_t cap = b->cap ? b->cap * 2 : 1024;
	delta *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return ERR_NOMEM;
	for (size_t i = 0; i < b->cap; i++) {
		if (!b->slots[i].term)
			continue;
		size_t k = hash_term(b->slots[i].term, b->slots[i].cat) & (cap - 1);
		while (slots[k].term)
			k = (k + 1) & (cap - 1);
		slots[k] = b->slots[i];
	}
	free(b->slots);
	b->slots = slots;
	b->cap = cap;
	return 0;
}

/* The revision slot of a word (FNV-1a: the same in every build). */
static int rev_slot(const char *term) { return (int)(hash_term(term, 0) % REV_SLOTS); }

static int batch_add(search_batch *b, const char *term, int64_t cat, int64_t d)
{
	if ((b->used + 1) * 2 > b->cap && batch_grow(b))
		return ERR_NOMEM;
	size_t k = hash_term(term, cat) & (b->cap - 1);
	while (b->slots[k].term && (b->slots[k].cat != cat || strcmp(b->slots[k].term, term) != 0))
		k = (k + 1) & (b->cap - 1);
	if (!b->slots[k].term) {
		b->slots[k].term = strdup(term);
		if (!b->slots[k].term)
			return ERR_NOMEM;
		b->slots[k].cat = cat;
		b->used++;
		/* Every word whose documents change, even by a net 0 (a
		 * document moved to another id): its posting list changed. */
		int slot = rev_slot(term);
		b->touched[slot / 64] |= 1ULL << (slot % 64);
	}
	b->slots[k].d += d;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Tokenizes name and description into b->words and counts each distinct
 * word once for cat, with sign (+1 indexing, -1 unindexing). */
static int count_words(search_batch *b, const char *name, const char *desc, int64_t cat,
		       int sign)
{
	terms_list_reset(&b->words);
	if (terms_split(&b->words, name, strlen(name)))
		return ERR_NOMEM;
	size_t nname = b->words.n;
	if (terms_split(&b->words, desc, strlen(desc)))
		return ERR_NOMEM;
	size_t n = b->words.n;
	if (n > b->uniq_cap) {
		const char **u = realloc(b->uniq, n * sizeof(*u));
		if (!u)
			return ERR_NOMEM;
		b->uniq = u;
		b->uniq_cap = n;
	}
	for (size_t i = 0; i < n; i++)
		b->uniq[i] = terms_at(&b->words, i);
	qsort(b->uniq, n, sizeof(*b->uniq), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(b->uniq[i], b->uniq[i - 1]) == 0)
			continue;
		int rc = batch_add(b, b->uniq[i], cat, sign);
		if (rc)
			return rc;
	}
	b->n_docs += sign;
	b->sum_name += sign * (int64_t)nname;
	b->sum_desc += sign * (int64_t)(n - nname);
	return 0;
}

static int trigrams_write(search_index *ix, const char *term, int add)
{
	char tri[TERMS_TRIGRAM_MAX][4];
	int n = terms_trigrams(term, tri, TERMS_TRIGRAM_MAX);
	for (int i = 0; i < n; i++) {
		int rc = add ? run(ix, "INSERT INTO trigrams (tri, term) VALUES (?, ?) ON CONFLICT DO NOTHING",
				   ARGV(T(tri[i]), T(term)), NULL)
			     : run(ix, "DELETE FROM trigrams WHERE tri = ? AND term = ?",
				   ARGV(T(tri[i]), T(term)), NULL);
		if (rc)
			return rc;
	}
	return 0;
}

static int flush_one(search_index *ix, const delta *e)
{
	int64_t changed = 0, left = 0;
	int rc;
	if (e->d > 0 && !terms_correctable(e->term))
		/* Not in the typo vocabulary: nothing to do when it is new. */
		return run(ix,
			   "INSERT INTO term_cats (term, cat, df) VALUES (?, ?, ?) ON CONFLICT"
			   " (term, cat) DO UPDATE SET df = df + excluded.df",
			   ARGV(T(e->term), I(e->cat), I(e->d)), NULL);
	if (e->d > 0) {
		rc = run(ix, "UPDATE term_cats SET df = df + ? WHERE term = ? AND cat = ?",
			 ARGV(I(e->d), T(e->term), I(e->cat)), &changed);
		if (rc || changed)
			return rc;
		rc = run(ix, "INSERT INTO term_cats (term, cat, df) VALUES (?, ?, ?)",
			 ARGV(T(e->term), I(e->cat), I(e->d)), NULL);
		if (rc)
			return rc;
		rc = one_int(ix, "SELECT COUNT(*) FROM term_cats WHERE term = ?", ARGV(T(e->term)),
			     &left);
		return rc < 0 ? rc : left == 1 ? trigrams_write(ix, e->term, 1) : 0;
	}
	rc = run(ix, "UPDATE term_cats SET df = df + ? WHERE term = ? AND cat = ?",
		 ARGV(I(e->d), T(e->term), I(e->cat)), NULL);
	if (rc == 0)
		rc = run(ix, "DELETE FROM term_cats WHERE term = ? AND cat = ? AND df <= 0",
			 ARGV(T(e->term), I(e->cat)), &changed);
	if (rc || !changed || !terms_correctable(e->term))
		return rc;
	rc = one_int(ix, "SELECT COUNT(*) FROM term_cats WHERE term = ?", ARGV(T(e->term)), &left);
	return rc < 0 ? rc : left == 0 ? trigrams_write(ix, e->term, 0) : 0;
}

/* A new revision for the slots of the words b changed: cached posting
 * lists of those words are read again by the next search that needs them. */
static int bump_revs(search_index *ix, search_batch *b)
{
	int rc = run(ix,
		     "INSERT INTO meta (k, v) VALUES ('rev', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1",
		     NULL, 0, NULL);
	int64_t rev = 0;
	if (rc == 0 && (rc = one_int(ix, "SELECT v FROM meta WHERE k = 'rev'", NULL, 0, &rev)) == 1)
		rc = 0;
	else if (rc == 0)
		rc = ERR_STORE;
	for (int w = 0; rc == 0 && w < REV_SLOTS / 64; w++)
		for (uint64_t bits = b->touched[w]; rc == 0 && bits; bits &= bits - 1)
			rc = run(ix,
				 "INSERT INTO term_revs (slot, rev) VALUES (?, ?) ON CONFLICT (slot)"
				 " DO UPDATE SET rev = excluded.rev",
				 ARGV(I(w * 64 + __builtin_ctzll(bits)), I(rev)), NULL);
	return rc;
}

int search_index_flush(search_index *ix, search_batch *b)
{
	int rc = 0;
	/* Additions first: a word that moves between categories in one batch
	 * then never looks gone, so its trigrams stay. */
	for (int pass = 0; pass < 2 && rc == 0; pass++)
		for (size_t i = 0; i < b->cap && rc == 0; i++) {
			const delta *e = &b->slots[i];
			if (e->term && e->d != 0 && (pass == 0) == (e->d > 0))
				rc = flush_one(ix, e);
		}
	static const char UPD[] = "UPDATE meta SET v = v + ? WHERE k = ?";
	if (rc == 0 && b->n_docs)
		rc = run(ix, UPD, ARGV(I(b->n_docs), T("n_docs")), NULL);
	if (rc == 0 && b->sum_name)
		rc = run(ix, UPD, ARGV(I(b->sum_name), T("sum_name")), NULL);
	if (rc == 0 && b->sum_desc)
		rc = run(ix, UPD, ARGV(I(b->sum_desc), T("sum_desc")), NULL);
	if (rc == 0 && b->seq_taken)
		rc = run(ix, UPD, ARGV(I(b->seq_taken), T("next_seq")), NULL);
	if (rc == 0 && b->used)
		rc = bump_revs(ix, b);
	batch_clear_slots(b);
	memset(b->touched, 0, sizeof(b->touched));
	b->n_docs = b->sum_name = b->sum_desc = 0;
	b->next_seq = b->seq_taken = 0;
	b->last_cat[0] = '\0';
	b->tombstones = -1;
	return rc;
}

/* ---- documents ---------------------------------------------------------- */

static int category_lookup(search_index *ix, const char *name, int64_t *id)
{
	int rc = one_int(ix, "SELECT id FROM categories WHERE name = ?", ARGV(T(name)), id);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = run(ix, "INSERT INTO categories (name) VALUES (?)", ARGV(T(name)), NULL);
	if (rc == 0)
		rc = one_int(ix, "SELECT id FROM categories WHERE name = ?", ARGV(T(name)), id);
	if (rc >= 0 && *id > CAT_MAX)
		return ERR_TOO_LARGE;
	return rc < 0 ? rc : rc == 1 ? 0 : ERR_STORE;
}

/* The id of category name, made when new; the batch remembers the last
 * one (a rebuild's pages and most batches are of few categories). */
static int category_id(search_index *ix, search_batch *b, const char *name, int64_t *id)
{
	if (b->last_cat[0] && strcmp(b->last_cat, name) == 0) {
		*id = b->last_cat_id;
		return 0;
	}
	int rc = category_lookup(ix, name, id);
	if (rc == 0 && strlen(name) < sizeof(b->last_cat)) {
		snprintf(b->last_cat, sizeof(b->last_cat), "%s", name);
		b->last_cat_id = *id;
	}
	return rc;
}

typedef struct olddoc {
	int found;
	int64_t id, version, gen;
	char *name, *description, *category;
} olddoc;

static void olddoc_free(olddoc *o)
{
	free(o->name);
	free(o->description);
	free(o->category);
	memset(o, 0, sizeof(*o));
}

static int olddoc_load(search_index *ix, const char *sku, olddoc *o)
{
	memset(o, 0, sizeof(*o));
	int err = 0;
	store_stmt *st = prep(ix,
			      "SELECT id, version, gen, name, description, category FROM docs"
			      " WHERE sku = ?",
			      ARGV(T(sku)), &err);
	if (!st)
		return err;
	int rc = store_step(st);
	if (rc == STORE_ROW) {
		o->found = 1;
		o->id = store_col_int(st, 0);
		o->version = store_col_int(st, 1);
		o->gen = store_col_int(st, 2);
		o->name = strdup(store_col_text(st, 3));
		o->description = strdup(store_col_text(st, 4));
		o->category = strdup(store_col_text(st, 5));
		if (!o->name || !o->description || !o->category)
			rc = ERR_NOMEM;
	}
	store_reset(st);
	if (rc < 0)
		olddoc_free(o);
	return rc < 0 ? rc : 0;
}

/* Takes id, name and description out of the full-text tables and the word
 * counts (the docs row stays: the caller replaces or deletes it). */
static int unindex(search_index *ix, search_batch *b, int64_t id, const char *name,
		   const char *desc)
{
	int rc = run(ix,
		     "INSERT INTO fts (fts, rowid, name, description) VALUES ('delete', ?, ?, ?)",
		     ARGV(I(id), T(name), T(desc)), NULL);
	if (rc == 0)
		rc = run(ix, "INSERT INTO fts_name (fts_name, rowid, name) VALUES ('delete', ?, ?)",
			 ARGV(I(id), T(name)), NULL);
	if (rc == 0)
		rc = count_words(b, name, desc, CAT_OF(id), -1);
	return rc;
}

static int index_text(search_index *ix, search_batch *b, int64_t id, const char *name,
		      const char *desc)
{
	int rc = run(ix, "INSERT INTO fts (rowid, name, description) VALUES (?, ?, ?)",
		     ARGV(I(id), T(name), T(desc)), NULL);
	if (rc == 0)
		rc = run(ix, "INSERT INTO fts_name (rowid, name) VALUES (?, ?)", ARGV(I(id), T(name)),
			 NULL);
	if (rc == 0)
		rc = count_words(b, name, desc, CAT_OF(id), +1);
	return rc;
}

static int64_t name_key_of(search_batch *b, const char *name)
{
	terms_list_reset(&b->words);
	if (terms_split(&b->words, name, strlen(name)))
		return 0;
	return terms_key(&b->words, 0);
}

static int new_id(search_index *ix, search_batch *b, int64_t cat, int pb, int64_t *id)
{
	if (b->next_seq == 0) {
		int rc = search_index_meta_int(ix, "next_seq", &b->next_seq);
		if (rc)
			return rc;
		if (b->next_seq < 1)
			b->next_seq = 1;
	}
	int64_t seq = b->next_seq + b->seq_taken;
	if (seq > SEQ_MAX)
		return ERR_TOO_LARGE; /* 2^31 documents indexed: drop the index and rebuild */
	*id = ID_OF(cat, pb, seq);
	b->seq_taken++;
	return 0;
}

int search_index_put(search_index *ix, search_batch *b, const search_doc *d, int64_t gen,
		     int *applied)
{
	*applied = 0;
	tune(ix);
	int64_t tomb = 0;
	int rc = 0;
	if (b->tombstones < 0) {
		int64_t any = 0;
		rc = one_int(ix, "SELECT EXISTS (SELECT 1 FROM tombstones)", NULL, 0, &any);
		if (rc < 0)
			return rc;
		b->tombstones = any != 0;
	}
	if (b->tombstones)
		rc = one_int(ix, "SELECT version FROM tombstones WHERE sku = ?", ARGV(T(d->sku)),
			     &tomb);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (d->version <= tomb)
			return 0;
		if ((rc = run(ix, "DELETE FROM tombstones WHERE sku = ?", ARGV(T(d->sku)), NULL)))
			return rc;
	}
	olddoc o;
	if ((rc = olddoc_load(ix, d->sku, &o)))
		return rc;
	if (o.found && d->version <= o.version) {
		if (o.gen != gen)
			rc = run(ix, "UPDATE docs SET gen = ? WHERE id = ?", ARGV(I(gen), I(o.id)), NULL);
		olddoc_free(&o);
		return rc;
	}
	int64_t cat = 0;
	if ((rc = category_id(ix, b, d->category, &cat))) {
		olddoc_free(&o);
		return rc;
	}
	*applied = 1;
	int pb = price_bucket(d->price_cents);
	int same_place = o.found && CAT_OF(o.id) == cat && PB_OF(o.id) == pb;
	if (same_place && strcmp(o.name, d->name) == 0 &&
	    strcmp(o.description, d->description) == 0) {
		/* A price change within the bucket: the id and the words stay. */
		rc = run(ix,
			 "UPDATE docs SET price_cents = ?, currency = ?, version = ?, gen = ?"
			 " WHERE id = ?",
			 ARGV(I(d->price_cents), T(d->currency), I(d->version), I(gen), I(o.id)), NULL);
		olddoc_free(&o);
		return rc;
	}
	int64_t id = 0;
	if (o.found) {
		rc = unindex(ix, b, o.id, o.name, o.description);
		if (rc == 0 && same_place)
			id = o.id;
		else if (rc == 0)
			rc = run(ix, "DELETE FROM docs WHERE id = ?", ARGV(I(o.id)), NULL);
	}
	olddoc_free(&o);
	if (rc == 0 && id == 0)
		rc = new_id(ix, b, cat, pb, &id);
	if (rc)
		return rc;
	int64_t key = name_key_of(b, d->name);
	rc = run(ix,
		 "INSERT INTO docs (id, sku, name, description, category, price_cents, currency,"
		 " version, gen, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
		 " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
		 " description = excluded.description, price_cents = excluded.price_cents,"
		 " currency = excluded.currency, version = excluded.version, gen = excluded.gen,"
		 " name_key = excluded.name_key",
		 ARGV(I(id), T(d->sku), T(d->name), T(d->description), T(d->category),
		      I(d->price_cents), T(d->currency), I(d->version), I(gen), I(key)),
		 NULL);
	if (rc == 0)
		rc = index_text(ix, b, id, d->name, d->description);
	return rc;
}

/* Unindexes and deletes the docs row of o. */
static int drop_doc(search_index *ix, search_batch *b, const olddoc *o)
{
	int rc = unindex(ix, b, o->id, o->name, o->description);
	if (rc == 0)
		rc = run(ix, "DELETE FROM docs WHERE id = ?", ARGV(I(o->id)), NULL);
	return rc;
}

int search_index_remove(search_index *ix, search_batch *b, const char *sku, int64_t version,
			int64_t now, int *applied)
{
	*applied = 0;
	olddoc o;
	int rc = olddoc_load(ix, sku, &o);
	if (rc)
		return rc;
	if (o.found && version < o.version) {
		olddoc_free(&o);
		return 0;
	}
	if (o.found) {
		rc = drop_doc(ix, b, &o);
		*applied = rc == 0;
	}
	olddoc_free(&o);
	b->tombstones = 1;
	if (rc == 0)
		rc = run(ix,
			 "INSERT INTO tombstones (sku, version, at) VALUES (?, ?, ?)"
			 " ON CONFLICT (sku) DO UPDATE SET version = excluded.version, at = excluded.at"
			 " WHERE excluded.version > tombstones.version",
			 ARGV(T(sku), I(version), I(now)), NULL);
	return rc;
}

int search_index_sweep(search_index *ix, search_batch *b, int64_t gen, int64_t *cursor, int max,
		       int *removed)
{
	*removed = 0;
	int64_t *ids = calloc((size_t)(max > 0 ? max : 1), sizeof(*ids));
	if (!ids)
		return ERR_NOMEM;
	int err = 0, n = 0;
	store_stmt *st = prep(ix, "SELECT id FROM docs WHERE id > ? AND gen < ? ORDER BY id LIMIT ?",
			      ARGV(I(*cursor), I(gen), I(max)), &err);
	int rc = st ? 0 : err;
	while (st && n < max && (rc = store_step(st)) == STORE_ROW)
		ids[n++] = store_col_int(st, 0);
	store_reset(st);
	for (int i = 0; rc >= 0 && i < n; i++) {
		olddoc o;
		memset(&o, 0, sizeof(o));
		store_stmt *q = prep(ix, "SELECT name, description FROM docs WHERE id = ?",
				     ARGV(I(ids[i])), &err);
		rc = q ? store_step(q) : err;
		if (rc == STORE_ROW) {
			o.found = 1;
			o.id = ids[i];
			o.name = strdup(store_col_text(q, 0));
			o.description = strdup(store_col_text(q, 1));
		}
		store_reset(q);
		if (o.found)
			rc = o.name && o.description ? drop_doc(ix, b, &o) : ERR_NOMEM;
		olddoc_free(&o);
		*cursor = ids[i];
		if (rc >= 0)
			(*removed)++;
	}
	free(ids);
	return rc < 0 ? rc : 0;
}

int search_index_purge_tombstones(search_index *ix, int64_t before, int max, int *purged)
{
	int64_t changed = 0;
	int rc = run(ix,
		     "DELETE FROM tombstones WHERE sku IN (SELECT sku FROM tombstones WHERE at < ?"
		     " LIMIT ?)",
		     ARGV(I(before), I(max)), &changed);
	*purged = (int)changed;
	return rc;
}

int search_index_optimize(search_index *ix)
{
	return store_exec(ix->s, "INSERT INTO fts (fts) VALUES ('optimize');"
				 "INSERT INTO fts_name (fts_name) VALUES ('optimize')");
}

/* ---- categories (read side) --------------------------------------------- */

/* The name of category id (borrowed; names never change), or NULL. */
static const char *cat_name(search_index *ix, int64_t id)
{
	pthread_mutex_lock(&ix->mu);
	const char *name = id >= 0 && id < ix->ncats ? ix->cats[id] : NULL;
	pthread_mutex_unlock(&ix->mu);
	if (name)
		return name;
	int err = 0;
	store_stmt *st = store_prepare(ix->s, "SELECT id, name FROM categories ORDER BY id", &err);
	if (!st)
		return NULL;
	pthread_mutex_lock(&ix->mu);
	int rc;
	while ((rc = store_step(st)) == STORE_ROW) {
		int64_t cid = store_col_int(st, 0);
		if (cid < 0 || cid > CAT_MAX)
			continue;
		if (cid >= ix->ncats) {
			int64_t n = cid + 16;
			char **grown = realloc(ix->cats, (size_t)n * sizeof(*grown));
			if (!grown)
				break;
			memset(grown + ix->ncats, 0, (size_t)(n - ix->ncats) * sizeof(*grown));
			ix->cats = grown;
			ix->ncats = n;
		}
		if (!ix->cats[cid])
			ix->cats[cid] = strdup(store_col_text(st, 1));
	}
	store_reset(st);
	name = id >= 0 && id < ix->ncats ? ix->cats[id] : NULL;
	pthread_mutex_unlock(&ix->mu);
	return name;
}

/* ---- query interpretation ---------------------------------------------- */

enum group_kind { GROUP_WORD, GROUP_PREFIX, GROUP_FIXED, GROUP_MISSING };

typedef struct qgroup {
	enum group_kind kind;
	const char *terms[GROUP_TERMS];
	size_t len[GROUP_TERMS];   /* strlen of terms[k] */
	size_t owned[GROUP_TERMS]; /* PREFIX, FIXED: where terms[k] is in query.owned */
	int n;
	int64_t df; /* documents with any of the terms (summed, at most n_docs) */
} qgroup;

/* The price filter as buckets: [lo, hi] (none when lo > hi), and whether
 * the edge buckets need each price checked (they hold prices outside the
 * filter too). */
typedef struct pband {
	int lo, hi;
	int check_lo, check_hi;
} pband;

typedef struct query {
	pband band; /* the price filter's buckets, settled (settle_band) */
	qgroup g[GROUPS_MAX];
	int ng;
	terms_list owned; /* expansions and corrections */
	int64_t n_docs, sum_name, sum_desc;
	double avg_name, avg_desc;
	int exact_able; /* every group one word: an exact name match can be told */
	int64_t key;    /* terms_key of the words */
	char *expr, *expr_name;
	postings *pc;
	postings_list *lists[GROUPS_MAX]; /* cached posting lists (group_lists), held */
	int warm;       /* lists were noted for search_index_warm */
	int from_lists; /* counted from the lists */
} query;

static int64_t term_df(search_index *ix, const char *term, int *err)
{
	int64_t df = 0;
	int rc = one_int(ix, "SELECT COALESCE(SUM(df), 0) FROM term_cats WHERE term = ?",
			 ARGV(T(term)), &df);
	if (rc < 0)
		*err = rc;
	return df;
}

/* The successor of prefix in byte order among strings starting with it:
 * prefix with its last byte raised (words never hold 0xff). */
static void prefix_end(const char *prefix, char *out, size_t len)
{
	snprintf(out, len, "%s", prefix);
	size_t n = strlen(out);
	if (n > 0)
		out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
}

/* Copies term into q->owned as the next word of g. Pointers into owned move
 * while it grows: interpret() sets g->terms from g->owned at the end. */
static int add_owned(query *q, qgroup *g, const char *term)
{
	size_t before = q->owned.n;
	/* terms_split of one word gives back the word itself. */
	if (terms_split(&q->owned, term, strlen(term)) || q->owned.n != before + 1)
		return ERR_NOMEM;
	g->owned[g->n++] = before;
	return 0;
}

/* The most frequent words starting with prefix (not prefix itself), up to
 * GROUP_TERMS. */
static int expand_prefix(search_index *ix, query *q, qgroup *g, const char *prefix)
{
	char end[80];
	prefix_end(prefix, end, sizeof(end));
	int err = 0;
	store_stmt *st = prep(ix,
			      "SELECT term, SUM(df) AS n FROM (SELECT term, df FROM term_cats"
			      " WHERE term > ? AND term < ? ORDER BY term LIMIT ?) GROUP BY term"
			      " ORDER BY n DESC, term LIMIT ?",
			      ARGV(T(prefix), T(end), I(PREFIX_SCAN), I(GROUP_TERMS)), &err);
	if (!st)
		return err;
	int rc;
	while ((rc = store_step(st)) == STORE_ROW && g->n < GROUP_TERMS) {
		if ((rc = add_owned(q, g, store_col_text(st, 0))))
			break;
		g->df += store_col_int(st, 1);
	}
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* The vocabulary word closest to word within its typo budget: fewest
 * edits, then most documents, then byte order. */
static int correct_word(search_index *ix, query *q, qgroup *g, const char *word)
{
	char tri[TERMS_TRIGRAM_MAX][4];
	int nt = terms_trigrams(word, tri, 32);
	if (nt == 0)
		return 0;
	size_t len = strlen(word);
	int budget = terms_typo_budget(len);
	static const char SQL[] =
		"SELECT term, COUNT(*) AS c FROM trigrams WHERE tri IN (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
		"?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) AND length(term) BETWEEN ? AND ?"
		" GROUP BY term ORDER BY c DESC, term LIMIT ?";
	int err = 0;
	store_stmt *st = store_prepare(ix->s, SQL, &err);
	if (!st)
		return err;
	for (int i = 0; i < 32; i++)
		store_bind_text(st, i + 1, tri[i < nt ? i : 0]);
	store_bind_int(st, 33, (int64_t)len - budget);
	store_bind_int(st, 34, (int64_t)len + budget);
	store_bind_int(st, 35, TYPO_CANDIDATES);
	char cand[TYPO_CANDIDATES][40];
	int dist[TYPO_CANDIDATES], nc = 0, rc;
	while ((rc = store_step(st)) == STORE_ROW && nc < TYPO_CANDIDATES) {
		const char *t = store_col_text(st, 0);
		int d = t ? terms_distance(word, t, budget) : budget + 1;
		if (d > budget || strlen(t) >= sizeof(cand[0]))
			continue;
		snprintf(cand[nc], sizeof(cand[0]), "%s", t);
		dist[nc++] = d;
	}
	store_reset(st);
	if (rc < 0)
		return rc;
	int best = -1;
	int64_t best_df = 0;
	for (int i = 0; i < nc; i++) {
		if (best >= 0 && dist[i] > dist[best])
			continue;
		int64_t df = term_df(ix, cand[i], &err);
		if (err)
			return err;
		if (df == 0)
			continue;
		if (best < 0 || dist[i] < dist[best] || df > best_df ||
		    (df == best_df && strcmp(cand[i], cand[best]) < 0)) {
			best = i;
			best_df = df;
		}
	}
	if (best < 0)
		return 0;
	if ((rc = add_owned(q, g, cand[best])))
		return rc;
	g->df = best_df;
	g->kind = GROUP_FIXED;
	return 0;
}

static void query_free(query *q)
{
	for (int i = 0; i < GROUPS_MAX; i++)
		if (q->lists[i])
			postings_release(q->pc, q->lists[i]);
	terms_list_free(&q->owned);
	free(q->expr);
	free(q->expr_name);
}

/* Appends s to a malloc'd string. */
static int cat_str(char **dst, size_t *len, const char *s)
{
	size_t n = strlen(s);
	char *grown = realloc(*dst, *len + n + 1);
	if (!grown)
		return ERR_NOMEM;
	memcpy(grown + *len, s, n + 1);
	*dst = grown;
	*len += n;
	return 0;
}

/* The FTS5 expression: every group's words quoted as strings (a word holds
 * no '"', which the tokenizer never lets through), groups joined by AND,
 * a group's alternatives by OR. Nothing of the user's text reaches FTS5's
 * query syntax. */
static int build_expr(query *q, char **out)
{
	char *e = NULL;
	size_t len = 0;
	int rc = cat_str(&e, &len, "");
	for (int i = 0; rc == 0 && i < q->ng; i++) {
		const qgroup *g = &q->g[i];
		if (i > 0)
			rc = cat_str(&e, &len, " AND ");
		if (rc == 0 && g->n > 1)
			rc = cat_str(&e, &len, "(");
		for (int k = 0; rc == 0 && k < g->n; k++) {
			if (strchr(g->terms[k], '"'))
				rc = ERR_INVALID;
			if (rc == 0 && k > 0)
				rc = cat_str(&e, &len, " OR ");
			if (rc == 0)
				rc = cat_str(&e, &len, "\"");
			if (rc == 0)
				rc = cat_str(&e, &len, g->terms[k]);
			if (rc == 0)
				rc = cat_str(&e, &len, "\"");
		}
		if (rc == 0 && g->n > 1)
			rc = cat_str(&e, &len, ")");
	}
	if (rc) {
		free(e);
		return rc;
	}
	*out = e;
	return 0;
}

static int load_stats(search_index *ix, query *q)
{
	int err = 0;
	store_stmt *st = store_prepare(ix->s,
				       "SELECT k, v FROM meta WHERE k IN ('n_docs', 'sum_name', 'sum_desc')",
				       &err);
	if (!st)
		return err;
	int rc;
	while ((rc = store_step(st)) == STORE_ROW) {
		const char *k = store_col_text(st, 0);
		int64_t v = store_col_int(st, 1);
		if (strcmp(k, "n_docs") == 0)
			q->n_docs = v;
		else if (strcmp(k, "sum_name") == 0)
			q->sum_name = v;
		else
			q->sum_desc = v;
	}
	store_reset(st);
	return rc < 0 ? rc : 0;
}

static void set_averages(query *q)
{
	int64_t n = q->n_docs > 0 ? q->n_docs : 1;
	q->avg_name = q->sum_name > 0 ? (double)q->sum_name / (double)n : 1.0;
	q->avg_desc = q->sum_desc > 0 ? (double)q->sum_desc / (double)n : 1.0;
}

/* Turns the words into groups: a word the index has; else, for the last
 * word while typing, the words it begins; else the closest word within the
 * typo budget; else a group that matches nothing. */
static int interpret(search_index *ix, const search_params *p, query *q)
{
	memset(q, 0, sizeof(*q));
	q->pc = ix->pc;
	terms_list_init(&q->owned);
	int rc = load_stats(ix, q);
	const terms_list *t = p->tokens;
	q->exact_able = 1;
	for (size_t i = 0; rc == 0 && i < t->n && q->ng < GROUPS_MAX; i++) {
		const char *w = terms_at(t, i);
		int dup = 0;
		for (int k = 0; k < q->ng && !dup; k++)
			dup = q->g[k].kind == GROUP_WORD && strcmp(q->g[k].terms[0], w) == 0;
		if (dup)
			continue;
		qgroup *g = &q->g[q->ng++];
		g->kind = GROUP_WORD;
		g->terms[0] = w;
		g->n = 1;
		g->df = term_df(ix, w, &rc);
		if (rc || g->df > 0)
			continue;
		g->n = 0;
		if (p->typing && i + 1 == t->n && (rc = expand_prefix(ix, q, g, w)) == 0 && g->n > 0) {
			g->kind = GROUP_PREFIX;
			continue;
		}
		if (rc == 0 && terms_correctable(w))
			rc = correct_word(ix, q, g, w);
		if (rc == 0 && g->n == 0) {
			g->kind = GROUP_MISSING;
			g->terms[0] = w;
			g->n = 1;
		}
	}
	/* owned no longer grows: point at its words. */
	for (int i = 0; i < q->ng; i++) {
		qgroup *g = &q->g[i];
		if (g->kind == GROUP_PREFIX || g->kind == GROUP_FIXED)
			for (int k = 0; k < g->n; k++)
				g->terms[k] = terms_at(&q->owned, g->owned[k]);
		for (int k = 0; k < g->n; k++)
			g->len[k] = strlen(g->terms[k]);
	}
	for (int i = 0; i < q->ng; i++) {
		if (q->g[i].n != 1)
			q->exact_able = 0;
		if (q->g[i].df > q->n_docs)
			q->g[i].df = q->n_docs;
	}
	/* A next page scores with the statistics of the first (the df are
	 * only for ranking: what matches is still today's). */
	const search_cursor *a = p->after;
	if (a && a->ngroups == q->ng && a->n_docs > 0) {
		q->n_docs = a->n_docs;
		q->sum_name = a->sum_name;
		q->sum_desc = a->sum_desc;
		for (int i = 0; i < q->ng; i++)
			q->g[i].df = a->df[i];
	}
	set_averages(q);
	if (rc == 0 && q->exact_able) {
		terms_list words;
		terms_list_init(&words);
		for (int i = 0; rc == 0 && i < q->ng; i++)
			rc = terms_split(&words, q->g[i].terms[0], strlen(q->g[i].terms[0]));
		q->key = terms_key(&words, 0);
		terms_list_free(&words);
	}
	if (rc == 0)
		rc = build_expr(q, &q->expr);
	return rc;
}

static char *query_text(const query *q)
{
	char *s = NULL;
	size_t len = 0;
	int rc = cat_str(&s, &len, "");
	for (int i = 0; rc == 0 && i < q->ng; i++) {
		if (i > 0)
			rc = cat_str(&s, &len, " ");
		/* A completed word reads as its most frequent completion. */
		if (rc == 0)
			rc = cat_str(&s, &len, q->g[i].terms[0]);
	}
	if (rc) {
		free(s);
		return NULL;
	}
	return s;
}

/* ---- counting ------------------------------------------------------------ */

typedef struct counts {
	int64_t *by_cat;
	int64_t ncat;
	int64_t total; /* with every filter */
} counts;

static int counts_add(counts *c, int64_t cat, int64_t n)
{
	if (cat >= c->ncat) {
		int64_t size = cat + 16;
		int64_t *grown = realloc(c->by_cat, (size_t)size * sizeof(*grown));
		if (!grown)
			return ERR_NOMEM;
		memset(grown + c->ncat, 0, (size_t)(size - c->ncat) * sizeof(*grown));
		c->by_cat = grown;
		c->ncat = size;
	}
	c->by_cat[cat] += n;
	return 0;
}

static int64_t price_lo(const search_params *p) { return p->has_min ? p->min_price : INT64_MIN; }
static int64_t price_hi(const search_params *p) { return p->has_max ? p->max_price : INT64_MAX; }

static pband price_band(const search_params *p)
{
	pthread_once(&pb_once, pb_init);
	pband b = { 0, pb_n - 1, 0, 0 };
	if (p->has_min)
		b.lo = price_bucket(p->min_price);
	if (p->has_max)
		b.hi = price_bucket(p->max_price);
	b.check_lo = !bucket_inside(b.lo, price_lo(p), price_hi(p));
	b.check_hi = !bucket_inside(b.hi, price_lo(p), price_hi(p));
	return b;
}

/* 1 in *any when some document has a price in [a, b]. */
static int any_price(search_index *ix, int64_t a, int64_t b, int *any)
{
	*any = 0;
	if (a > b)
		return 0;
	int64_t one = 0;
	int rc = one_int(ix, "SELECT 1 FROM docs WHERE price_cents >= ? AND price_cents <= ? LIMIT 1",
			 ARGV(I(a), I(b)), &one);
	*any = rc == 1;
	return rc < 0 ? rc : 0;
}

/* The filter's buckets, with the edge buckets settled by the prices the
 * index holds (docs_price): an edge bucket none of whose prices passes is
 * left out, one all of whose prices pass needs no checks; only a bucket
 * holding prices on both sides of a bound is checked match by match. (A
 * catalog's prices cluster, often just below round numbers, while filters
 * are round: 5,999 and 6,000 share a bucket, but few buckets hold both a
 * price that passes and one that does not.) */
static int settle_band(search_index *ix, const search_params *p, pband *b)
{
	*b = price_band(p);
	int64_t min = price_lo(p), max = price_hi(p);
	for (int edge = 0; edge < 2 && b->lo <= b->hi; edge++) {
		int k = edge == 0 ? b->lo : b->hi;
		if (!(edge == 0 ? b->check_lo : b->check_hi))
			continue;
		int64_t first = pb_bound[k], last = k + 1 < pb_n ? pb_bound[k + 1] - 1 : INT64_MAX;
		int in = 0, below = 0, above = 0;
		int rc = any_price(ix, first > min ? first : min, last < max ? last : max, &in);
		if (rc == 0 && min > first)
			rc = any_price(ix, first, min - 1, &below);
		if (rc == 0 && max < last)
			rc = any_price(ix, max + 1, last, &above);
		if (rc)
			return rc;
		int check = below || above;
		if (b->lo == b->hi) { /* one bucket: both bounds in it */
			if (!in)
				b->lo = b->hi + 1;
			b->check_lo = b->check_hi = in && check;
			break;
		}
		if (edge == 0) {
			b->check_lo = in && check;
			if (!in)
				b->lo++; /* the next is inside, or the high edge (check_hi) */
		} else {
			b->check_hi = in && check;
			if (!in)
				b->hi--;
		}
	}
	return 0;
}

/* Whether a match in bucket pb can pass the filter without looking at its
 * price (1), must be looked at (2), or cannot (0). */
static int band_verdict(const pband *b, int pb)
{
	if (pb < b->lo || pb > b->hi)
		return 0;
	return (pb == b->lo && b->check_lo) || (pb == b->hi && b->check_hi) ? 2 : 1;
}

static int price_of(search_index *ix, int64_t id, int64_t *price)
{
	int rc = one_int(ix, "SELECT price_cents FROM docs WHERE id = ?", ARGV(I(id)), price);
	return rc < 0 ? rc : rc == 1 ? 0 : ERR_NOT_FOUND;
}

static void add_total(counts *c, int64_t cat)
{
	for (int64_t k = 0; k < c->ncat; k++)
		if (cat < 0 || k == cat)
			c->total += c->by_cat[k];
}

/* Matches counted by category as they come (in id order, so a
 * category's come together: runs are counted, not rows), price filters
 * applied: a match in an edge bucket has its price looked up. */
typedef struct tally {
	pband band;
	int64_t run_cat, run;
} tally;

static void tally_init(tally *t, const query *q)
{
	t->band = q->band;
	t->run_cat = -1;
	t->run = 0;
}

static int tally_add(search_index *ix, const search_params *p, tally *t, counts *c, int64_t id)
{
	int v = band_verdict(&t->band, (int)PB_OF(id));
	if (v == 2) {
		int64_t price = 0;
		int rc = price_of(ix, id, &price);
		if (rc == ERR_NOT_FOUND)
			return 0;
		if (rc)
			return rc;
		v = price >= price_lo(p) && price <= price_hi(p);
	}
	if (!v)
		return 0;
	int64_t k = CAT_OF(id);
	if (k != t->run_cat) {
		if (t->run && counts_add(c, t->run_cat, t->run) != 0)
			return ERR_NOMEM;
		t->run_cat = k;
		t->run = 0;
	}
	t->run++;
	return 0;
}

static int tally_end(tally *t, counts *c, int64_t cat)
{
	if (t->run && counts_add(c, t->run_cat, t->run) != 0)
		return ERR_NOMEM;
	t->run = 0;
	add_total(c, cat);
	return 0;
}

/* ---- posting lists of common words, cached ------------------------------- */

static int read_begin(search_index *ix);
static void read_end(search_index *ix, int opened);

/* The revision of term's slot in this snapshot (0: never changed). */
static int term_rev(search_index *ix, const char *term, int64_t *rev)
{
	*rev = 0;
	int rc = one_int(ix, "SELECT rev FROM term_revs WHERE slot = ?", ARGV(I(rev_slot(term))),
			 rev);
	return rc < 0 ? rc : 0;
}

/* Reads the posting list of term at rev (the caller's snapshot) into the
 * cache. */
static int load_list(search_index *ix, const char *term, int64_t rev)
{
	size_t len = strlen(term) + 3, cap = 4096, n = 0;
	char *expr = malloc(len);
	int64_t *ids = malloc(cap * sizeof(*ids));
	store_stmt *st = NULL;
	int rc = 0;
	if (expr && ids) {
		snprintf(expr, len, "\"%s\"", term);
		st = prep(ix, "SELECT rowid FROM fts WHERE fts MATCH ?", ARGV(T(expr)), &rc);
	} else {
		rc = ERR_NOMEM;
	}
	while (st && (rc = store_step(st)) == STORE_ROW) {
		if (n == cap) {
			int64_t *grown = realloc(ids, cap * 2 * sizeof(*ids));
			if (!grown) {
				rc = ERR_NOMEM;
				break;
			}
			ids = grown;
			cap *= 2;
		}
		ids[n++] = store_col_int(st, 0);
	}
	if (st)
		store_reset(st);
	free(expr);
	if (rc < 0) {
		free(ids);
		return rc;
	}
	postings_list *l = postings_put(ix->pc, term, rev, ids, n);
	postings_release(ix->pc, l);
	return l ? 0 : ERR_NOMEM;
}

/* Notes term for search_index_warm; 1 when it was not noted yet. */
static int want(search_index *ix, const char *term)
{
	int added = 0;
	pthread_mutex_lock(&ix->mu);
	int i = 0;
	while (i < ix->nwanted && strcmp(ix->wanted[i], term) != 0)
		i++;
	if (i == ix->nwanted && ix->nwanted < WANTED_MAX &&
	    (ix->wanted[ix->nwanted] = strdup(term)) != NULL) {
		ix->nwanted++;
		added = 1;
	}
	pthread_mutex_unlock(&ix->mu);
	return added;
}

/* The posting lists of every group of q, each held, when q is of one-word
 * groups each in at least posting_cache_min_df documents and the cache
 * holds every list at its word's revision in this snapshot: 1, and
 * q->lists filled (released by query_free). Else 0, and the lists missing
 * are noted for search_index_warm (which reads them outside of searches:
 * a search never waits for one; q->warm is set when one was new); the
 * caller reads the matches from FTS5 instead. */
static int group_lists(search_index *ix, query *q, int *err)
{
	*err = 0;
	if (ix->o.posting_cache_ids == 0)
		return 0;
	for (int i = 0; i < q->ng; i++)
		if (q->g[i].n != 1 || q->g[i].df < ix->o.posting_cache_min_df ||
		    strchr(q->g[i].terms[0], '"'))
			return 0;
	int got = 0;
	/* every word asked for, so that one warm reads all that are missing */
	for (int i = 0; i < q->ng; i++) {
		int64_t rev = 0;
		if ((*err = term_rev(ix, q->g[i].terms[0], &rev)) != 0)
			return 0;
		q->lists[i] = postings_get(ix->pc, q->g[i].terms[0], rev);
		if (q->lists[i])
			got++;
		else if (want(ix, q->g[i].terms[0]))
			q->warm = 1;
	}
	return got == q->ng;
}

int search_index_warm(search_index *ix, int max, int *loaded)
{
	*loaded = 0;
	int rc = 0;
	while (rc == 0 && *loaded < max) {
		pthread_mutex_lock(&ix->mu);
		char *term = ix->nwanted > 0 ? ix->wanted[--ix->nwanted] : NULL;
		pthread_mutex_unlock(&ix->mu);
		if (!term)
			break;
		/* the revision and the list from one snapshot */
		int opened = read_begin(ix);
		int64_t rev = 0;
		rc = term_rev(ix, term, &rev);
		postings_list *l = rc == 0 ? postings_get(ix->pc, term, rev) : NULL;
		if (rc == 0 && !l) {
			rc = load_list(ix, term, rev);
			(*loaded)++;
		}
		postings_release(ix->pc, l);
		read_end(ix, opened);
		free(term);
	}
	return rc;
}

/* Ids of l within [lo, hi]: where they start (*from) and how many. */
static size_t list_range(const postings_list *l, int64_t lo, int64_t hi, size_t *from)
{
	size_t a = postings_seek(l, 0, lo);
	size_t b = hi == INT64_MAX ? l->n : postings_seek(l, a, hi + 1);
	*from = a;
	return b - a;
}

/* The ids in every one of the n lists ls within [lo, hi], ascending, up
 * to max of them into out (leapfrogging: each list sought to the largest
 * id seen so far). Returns how many. */
static size_t intersect(postings_list *const *ls, int n, int64_t lo, int64_t hi, int64_t *out,
			size_t max)
{
	size_t pos[GROUPS_MAX] = { 0 }, got = 0;
	int64_t target = lo;
	int i = 0, agree = 0;
	while (got < max) {
		pos[i] = postings_seek(ls[i], pos[i], target);
		if (pos[i] == ls[i]->n)
			break;
		int64_t v = ls[i]->ids[pos[i]];
		if (v > hi)
			break;
		if (v != target) {
			target = v;
			agree = 0;
		}
		if (++agree == n) {
			out[got++] = v;
			if (v == INT64_MAX)
				break;
			target = v + 1;
			agree = 0;
		}
		i = (i + 1) % n;
	}
	return got;
}

/* The counts of q from its cached posting lists when group_lists has them
 * (*done 1); else *done 0 and the caller reads the matches from fts. */
static int cached_counts(search_index *ix, const search_params *p, query *q, int64_t cat,
			 counts *c, int *done)
{
	*done = 0;
	int rc = 0;
	if (!group_lists(ix, q, &rc))
		return rc;
	tally t;
	tally_init(&t, q);
	int64_t chunk[1024], lo = 0;
	for (;;) {
		size_t n = intersect(q->lists, q->ng, lo, INT64_MAX, chunk, 1024);
		for (size_t k = 0; rc == 0 && k < n; k++)
			rc = tally_add(ix, p, &t, c, chunk[k]);
		if (rc || n < 1024 || chunk[n - 1] == INT64_MAX)
			break;
		lo = chunk[n - 1] + 1;
	}
	if (rc == 0)
		rc = tally_end(&t, c, cat);
	*done = rc == 0;
	q->from_lists = 1;
	return rc;
}

/* Counts every match by category, reading every match: price filters
 * applied, not the category filter (facets show the other categories
 * too). */
static int scan_counts(search_index *ix, const search_params *p, query *q, int64_t cat,
		       counts *c)
{
	int done = 0;
	int rc = cached_counts(ix, p, q, cat, c, &done);
	if (rc || done)
		return rc;
	int err = 0;
	store_stmt *st = prep(ix, "SELECT rowid FROM fts WHERE fts MATCH ?", ARGV(T(q->expr)), &err);
	if (!st)
		return err;
	tally t;
	tally_init(&t, q);
	while ((rc = store_step(st)) == STORE_ROW)
		if ((rc = tally_add(ix, p, &t, c, store_col_int(st, 0))) < 0)
			break;
	store_reset(st);
	return rc < 0 ? rc : tally_end(&t, c, cat);
}

/* Matches of expr with ids in [lo, hi]; with check, only those whose
 * price passes. */
static int count_range(search_index *ix, const search_params *p, const char *expr, int64_t lo,
		       int64_t hi, int check, int64_t *n)
{
	*n = 0;
	int rc = check ? one_int(ix,
				 "SELECT COUNT(*) FROM fts CROSS JOIN docs d ON d.id = fts.rowid"
				 " WHERE fts MATCH ? AND fts.rowid >= ? AND fts.rowid <= ?"
				 " AND d.price_cents >= ? AND d.price_cents <= ?",
				 ARGV(T(expr), I(lo), I(hi), I(price_lo(p)), I(price_hi(p))), n)
		       : one_int(ix,
				 "SELECT COUNT(*) FROM fts WHERE fts MATCH ? AND rowid >= ?"
				 " AND rowid <= ?",
				 ARGV(T(expr), I(lo), I(hi)), n);
	return rc < 0 ? rc : 0;
}

/* count_range from a cached posting list. */
static int count_range_list(search_index *ix, const search_params *p, const postings_list *l,
			    int64_t lo, int64_t hi, int check, int64_t *n)
{
	size_t from = 0;
	size_t k = list_range(l, lo, hi, &from);
	if (!check) {
		*n = (int64_t)k;
		return 0;
	}
	*n = 0;
	for (size_t i = from; i < from + k; i++) {
		int64_t price = 0;
		int rc = price_of(ix, l->ids[i], &price);
		if (rc == ERR_NOT_FOUND)
			continue;
		if (rc)
			return rc;
		*n += price >= price_lo(p) && price <= price_hi(p);
	}
	return 0;
}

/* One word with a price filter: per category that has the word (from
 * term_cats), the matches in the filter's buckets: whole buckets counted
 * from the index (or the word's cached posting list) alone, the two edge
 * buckets match by match. */
static int banded_counts(search_index *ix, const search_params *p, query *q, int64_t cat,
			 counts *all, counts *c)
{
	pband b = q->band;
	int rc = 0;
	const postings_list *l = group_lists(ix, q, &rc) ? q->lists[0] : NULL;
	q->from_lists = l != NULL;
	for (int64_t k = 0; rc == 0 && k < all->ncat; k++) {
		if (all->by_cat[k] <= 0)
			continue;
		int64_t n = 0, part = 0;
		int inner_lo = b.lo + (b.check_lo ? 1 : 0), inner_hi = b.hi - (b.check_hi ? 1 : 0);
		int64_t r[3][2] = { { 0, -1 }, { 0, -1 }, { 0, -1 } }; /* inner, low edge, high edge */
		if (b.lo == b.hi && (b.check_lo || b.check_hi)) {
			r[1][0] = ID_OF(k, b.lo, 0);
			r[1][1] = ID_OF(k, b.lo, SEQ_MAX);
		} else {
			if (inner_lo <= inner_hi) {
				r[0][0] = ID_OF(k, inner_lo, 0);
				r[0][1] = ID_OF(k, inner_hi, SEQ_MAX);
			}
			if (b.check_lo) {
				r[1][0] = ID_OF(k, b.lo, 0);
				r[1][1] = ID_OF(k, b.lo, SEQ_MAX);
			}
			if (b.check_hi) {
				r[2][0] = ID_OF(k, b.hi, 0);
				r[2][1] = ID_OF(k, b.hi, SEQ_MAX);
			}
		}
		for (int i = 0; rc == 0 && i < 3; i++) {
			if (r[i][0] > r[i][1])
				continue;
			rc = l ? count_range_list(ix, p, l, r[i][0], r[i][1], i > 0, &part)
			       : count_range(ix, p, q->expr, r[i][0], r[i][1], i > 0, &part);
			n += part;
		}
		if (rc == 0 && n > 0)
			rc = counts_add(c, k, n);
	}
	if (rc == 0)
		add_total(c, cat);
	return rc;
}

/* One word, no price filter: the counts are in term_cats. */
static int stored_counts(search_index *ix, const char *term, int64_t cat, counts *c)
{
	int err = 0;
	store_stmt *st = prep(ix, "SELECT cat, df FROM term_cats WHERE term = ?", ARGV(T(term)), &err);
	if (!st)
		return err;
	int rc;
	while ((rc = store_step(st)) == STORE_ROW) {
		int64_t k = store_col_int(st, 0), df = store_col_int(st, 1);
		if (k < 0 || k > CAT_MAX || df <= 0)
			continue;
		if ((rc = counts_add(c, k, df)) != 0)
			break;
		if (cat < 0 || k == cat)
			c->total += df;
	}
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* ---- candidates, scored as they are read --------------------------------- */

typedef struct cand {
	int64_t id;
	int exact;
	int64_t score_q;
	char sku[SEARCH_SKU_MAX + 1];
} cand;

typedef struct cands {
	cand *v;
	int n, cap;
	int64_t *seen; /* open addressing set of ids (0 = empty; ids are > 0) */
	int seen_cap;
} cands;

static void cands_free(cands *c)
{
	free(c->v);
	free(c->seen);
}

/* 1 when id was not seen before (and now is), 0 when it was, <0 error. */
static int cands_mark(cands *c, int64_t id)
{
	if ((c->n + 1) * 2 > c->seen_cap) {
		int cap = c->seen_cap ? c->seen_cap * 2 : 1024;
		int64_t *set = calloc((size_t)cap, sizeof(*set));
		if (!set)
			return ERR_NOMEM;
		for (int i = 0; i < c->seen_cap; i++) {
			if (!c->seen[i])
				continue;
			uint64_t h = (uint64_t)c->seen[i] * 0x9e3779b97f4a7c15ULL;
			int k = (int)(h >> 40) & (cap - 1);
			while (set[k])
				k = (k + 1) & (cap - 1);
			set[k] = c->seen[i];
		}
		free(c->seen);
		c->seen = set;
		c->seen_cap = cap;
	}
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
	int k = (int)(h >> 40) & (c->seen_cap - 1);
	while (c->seen[k]) {
		if (c->seen[k] == id)
			return 0;
		k = (k + 1) & (c->seen_cap - 1);
	}
	c->seen[k] = id;
	return 1;
}

static unsigned char is_tok[256]; /* terms_is_token_byte, as a table */
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;

static void tok_init(void)
{
	for (int c = 0; c < 256; c++)
		is_tok[c] = (unsigned char)terms_is_token_byte((unsigned char)c);
}

/* Tokenizes text as terms_split does (runs of token bytes, ASCII letters
 * lowercased) without copying it, adding each token that is one of group
 * i's words to tf[i]. Returns the number of tokens. */
static size_t count_tf(const query *q, const char *text, int *tf)
{
	pthread_once(&tok_once, tok_init);
	const unsigned char *s = (const unsigned char *)text;
	size_t ntok = 0;
	for (;;) {
		while (*s && !is_tok[*s])
			s++;
		if (!*s)
			break;
		const unsigned char *t = s;
		while (is_tok[*s])
			s++;
		size_t len = (size_t)(s - t);
		ntok++;
		for (int i = 0; i < q->ng; i++) {
			const qgroup *g = &q->g[i];
			for (int k = 0; k < g->n; k++) {
				if (g->len[k] != len)
					continue;
				const unsigned char *w = (const unsigned char *)g->terms[k];
				size_t m = 0;
				while (m < len && w[m] == (t[m] >= 'A' && t[m] <= 'Z' ? t[m] - 'A' + 'a' : t[m]))
					m++;
				if (m == len) {
					tf[i]++;
					break;
				}
			}
		}
	}
	return ntok;
}

/* BM25F: per group, the field frequencies normalised by field length and
 * weighted, then saturated once with k1 and scaled by the group's idf. */
static double bm25f(const search_index *ix, const query *q, const char *name, const char *desc)
{
	int tfn[GROUPS_MAX] = { 0 }, tfd[GROUPS_MAX] = { 0 };
	size_t nname = count_tf(q, name, tfn), ndesc = count_tf(q, desc, tfd);
	const search_index_opts *o = &ix->o;
	double ln = (double)nname, ld = (double)ndesc;
	double norm_n = 1.0 - o->b + o->b * ln / q->avg_name;
	double norm_d = 1.0 - o->b + o->b * ld / q->avg_desc;
	double score = 0.0;
	double n = (double)(q->n_docs > 0 ? q->n_docs : 1);
	for (int i = 0; i < q->ng; i++) {
		const qgroup *g = &q->g[i];
		double tf = o->name_weight * tfn[i] / norm_n + o->desc_weight * tfd[i] / norm_d;
		double df = (double)(g->df > 0 ? g->df : 1);
		double idf = log(1.0 + (n - df + 0.5) / (df + 0.5));
		score += idf * tf * (o->k1 + 1.0) / (tf + o->k1);
	}
	return score;
}

/* Columns every candidate query returns. */
#define CAND_COLS "d.id, d.sku, d.name, d.description, d.price_cents, d.name_key"

/* Reads the rows of st (CAND_COLS), scores those not seen yet that pass the
 * filters, up to limit rows read. */
static int collect(search_index *ix, const search_params *p, const query *q, int64_t cat,
		   store_stmt *st, cands *out)
{
	int rc;
	while ((rc = store_step(st)) == STORE_ROW) {
		int64_t id = store_col_int(st, 0), price = store_col_int(st, 4);
		if ((cat >= 0 && CAT_OF(id) != cat) || price < price_lo(p) || price > price_hi(p))
			continue;
		if ((rc = cands_mark(out, id)) <= 0) {
			if (rc < 0)
				break;
			continue;
		}
		if (out->n == out->cap) {
			int capn = out->cap ? out->cap * 2 : 256;
			cand *grown = realloc(out->v, (size_t)capn * sizeof(*grown));
			if (!grown) {
				rc = ERR_NOMEM;
				break;
			}
			out->v = grown;
			out->cap = capn;
		}
		const char *name = store_col_text(st, 2), *desc = store_col_text(st, 3);
		cand *c = &out->v[out->n++];
		c->id = id;
		c->exact = q->exact_able && store_col_int(st, 5) == q->key;
		c->score_q = llround(bm25f(ix, q, name ? name : "", desc ? desc : "") * 1e6);
		snprintf(c->sku, sizeof(c->sku), "%s", store_col_text(st, 1));
	}
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* Up to limit matches of q in fts (names: fts_name) with ids in [lo, hi],
 * in id order, scored into out (collect drops those the filters refuse).
 * (Taking the ids from cached posting lists and the rows by id was tried:
 * no cheaper than FTS5's join, whose cost is the rows.) */
static int range_cands(search_index *ix, const search_params *p, const query *q, int names,
		       int64_t cat, int64_t lo, int64_t hi, int limit, cands *out)
{
	int err = 0;
	static const char *const SQL[2] = {
		"SELECT " CAND_COLS " FROM fts CROSS JOIN docs d ON d.id = fts.rowid"
		" WHERE fts MATCH ? AND fts.rowid >= ? AND fts.rowid <= ? LIMIT ?",
		"SELECT " CAND_COLS " FROM fts_name CROSS JOIN docs d ON d.id = fts_name.rowid"
		" WHERE fts_name MATCH ? AND fts_name.rowid >= ? AND fts_name.rowid <= ? LIMIT ?",
	};
	store_stmt *st = prep(ix, SQL[names],
			      ARGV(T(names ? q->expr_name : q->expr), I(lo), I(hi), I(limit)), &err);
	return st ? collect(ix, p, q, cat, st, out) : err;
}

/* The ids of category k within the price filter. */
static int64_t band_lo(const query *q, int64_t k) { return ID_OF(k, q->band.lo, 0); }
static int64_t band_hi(const query *q, int64_t k)
{
	if (q->band.lo > q->band.hi) /* no bucket: an empty range */
		return ID_OF(k, 0, 0) - 1;
	return ID_OF(k, q->band.hi, SEQ_MAX);
}

typedef struct catn {
	int64_t cat, n;
} catn;

static int cmp_catn(const void *a, const void *b)
{
	const catn *x = a, *y = b;
	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return x->cat < y->cat ? -1 : x->cat > y->cat;
}

/* More match than the window: the candidates are, per category, the first
 * name matches in index order, then the first other matches; every
 * category with matches gets at least one place (the largest first, while
 * places last) and the rest of the window is shared in proportion to the
 * matches. Plus every document whose name is exactly the query. */
static int window_candidates(search_index *ix, const search_params *p, query *q, int64_t cat,
			     const counts *c, cands *out)
{
	int rc = 0;
	if (!q->expr_name && (rc = build_expr(q, &q->expr_name)))
		return rc;
	int w = ix->o.rank_window;
	catn *cats = calloc((size_t)(c->ncat > 0 ? c->ncat : 1), sizeof(*cats));
	if (!cats)
		return ERR_NOMEM;
	int nc = 0;
	int64_t all = 0;
	for (int64_t k = 0; k < c->ncat; k++)
		if (c->by_cat[k] > 0 && (cat < 0 || k == cat)) {
			cats[nc++] = (catn){ k, c->by_cat[k] };
			all += c->by_cat[k];
		}
	qsort(cats, (size_t)nc, sizeof(*cats), cmp_catn);
	if (nc > w)
		nc = w;
	int spare = w - nc, given = 0;
	for (int k = 0; k < nc; k++)
		given += 1 + (int)((double)spare * (double)cats[k].n / (double)all);
	for (int i = 0; rc == 0 && i < nc; i++) {
		int64_t share = 1 + (int64_t)((double)spare * (double)cats[i].n / (double)all);
		if (i == 0) /* what rounding left over goes to the largest */
			share += w - given;
		if (share > cats[i].n)
			share = cats[i].n;
		int before = out->n;
		int64_t lo = band_lo(q, cats[i].cat), hi = band_hi(q, cats[i].cat);
		rc = range_cands(ix, p, q, 1, cat, lo, hi, (int)share, out);
		/* Too few name matches: fill up with the first matches (some of
		 * them the name matches again, which count once). */
		if (rc == 0 && out->n - before < share)
			rc = range_cands(ix, p, q, 0, cat, lo, hi, (int)share, out);
	}
	free(cats);
	if (rc == 0 && q->exact_able) {
		int err = 0;
		store_stmt *st = prep(ix, "SELECT " CAND_COLS " FROM docs d WHERE d.name_key = ? LIMIT ?",
				      ARGV(I(q->key), I(w)), &err);
		rc = st ? collect(ix, p, q, cat, st, out) : err;
	}
	return rc;
}

/* Order of results: exact name match, score (high first), sku. <0 when a
 * comes first. */
static int cmp_key(int ea, int64_t sa, const char *ka, int eb, int64_t sb, const char *kb)
{
	if (ea != eb)
		return ea > eb ? -1 : 1;
	if (sa != sb)
		return sa > sb ? -1 : 1;
	return strcmp(ka, kb);
}

static int cmp_cand(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	return cmp_key(x->exact, x->score_q, x->sku, y->exact, y->score_q, y->sku);
}

static json_t *product_json(search_index *ix, const cand *c, int *rc)
{
	int err = 0;
	store_stmt *st = prep(ix,
			      "SELECT sku, name, description, category, price_cents, currency FROM docs"
			      " WHERE id = ?",
			      ARGV(I(c->id)), &err);
	if (!st) {
		*rc = err;
		return NULL;
	}
	json_t *v = NULL;
	int step = store_step(st);
	if (step == STORE_ROW && (v = json_object()) != NULL) {
		/* The index's text came from the catalog's JSON: valid UTF-8,
		 * no need to check it again (json_pack would, key by key). */
		static const char *const KEYS[] = { "sku", "name", "description", "category" };
		int bad = 0;
		for (int k = 0; k < 4; k++) {
			const char *t = store_col_text(st, k);
			bad |= !t || json_object_set_new_nocheck(v, KEYS[k], json_string_nocheck(t));
		}
		const char *currency = store_col_text(st, 5);
		bad |= json_object_set_new_nocheck(v, "price_cents",
						   json_integer((json_int_t)store_col_int(st, 4)));
		bad |= !currency ||
		       json_object_set_new_nocheck(v, "currency", json_string_nocheck(currency));
		bad |= json_object_set_new_nocheck(v, "score", json_real((double)c->score_q / 1e6));
		if (bad) {
			json_decref(v);
			v = NULL;
		}
	} else if (step < 0) {
		*rc = step;
	}
	store_reset(st);
	return v;
}

/* ---- reads: one snapshot per request ------------------------------------ */

/* A search reads with many small statements; in one read transaction they
 * see one snapshot of the index (a write committing meanwhile cannot make
 * the facets disagree with the items) and SQLite takes its locks once
 * rather than per statement. 1 when a transaction was opened (the caller
 * ends it with read_end), 0 when one was open already. */
static int read_begin(search_index *ix)
{
	tune(ix);
	/* prepared once per connection (store_exec would parse it each time) */
	return run(ix, "BEGIN", NULL, 0, NULL) == 0;
}

static void read_end(search_index *ix, int opened)
{
	if (opened)
		run(ix, "COMMIT", NULL, 0, NULL);
}

/* ---- search ------------------------------------------------------------- */

void search_result_clear(search_result *res)
{
	json_decref(res->items);
	json_decref(res->facets);
	free(res->query);
	memset(res, 0, sizeof(*res));
}

static int find_category(search_index *ix, const char *name, int64_t *id)
{
	*id = -1;
	int64_t v = 0;
	int rc = one_int(ix, "SELECT id FROM categories WHERE name = ?", ARGV(T(name)), &v);
	if (rc == 1)
		*id = v;
	return rc < 0 ? rc : 0;
}

static json_t *facets_json(search_index *ix, const counts *c)
{
	catn *order = calloc((size_t)(c->ncat > 0 ? c->ncat : 1), sizeof(*order));
	json_t *f = json_object();
	if (!order || !f) {
		free(order);
		json_decref(f);
		return NULL;
	}
	int n = 0;
	for (int64_t k = 0; k < c->ncat; k++)
		if (c->by_cat[k] > 0)
			order[n++] = (catn){ k, c->by_cat[k] };
	qsort(order, (size_t)n, sizeof(*order), cmp_catn);
	for (int i = 0; i < n; i++) {
		const char *name = cat_name(ix, order[i].cat);
		if (name)
			json_object_set_new(f, name, json_integer((json_int_t)order[i].n));
	}
	free(order);
	return f;
}

static int search_snapshot(search_index *ix, const search_params *p, search_result *res);

int search_index_search(search_index *ix, const search_params *p, search_result *res)
{
	int opened = read_begin(ix);
	int rc = search_snapshot(ix, p, res);
	read_end(ix, opened);
	return rc;
}

static int search_snapshot(search_index *ix, const search_params *p, search_result *res)
{
	memset(res, 0, sizeof(*res));
	query q;
	counts c, word;
	memset(&c, 0, sizeof(c));
	memset(&word, 0, sizeof(word));
	cands cs;
	memset(&cs, 0, sizeof(cs));
	int rc = interpret(ix, p, &q);
	int64_t cat = -1;
	if (rc == 0 && p->category && (rc = find_category(ix, p->category, &cat)) == 0 && cat < 0)
		goto answer; /* an unknown category has no products */
	int missing = 0;
	for (int i = 0; i < q.ng; i++)
		missing |= q.g[i].kind == GROUP_MISSING;
	if (rc || missing)
		goto answer;
	int w = ix->o.rank_window;
	int priced = p->has_min || p->has_max;
	q.band = price_band(p);
	if (priced && (rc = settle_band(ix, p, &q.band)) != 0)
		goto answer;
	if (q.ng == 1 && q.g[0].n == 1) {
		rc = stored_counts(ix, q.g[0].terms[0], cat, priced ? &word : &c);
		if (rc == 0 && priced)
			rc = banded_counts(ix, p, &q, cat, &word, &c);
	} else {
		rc = scan_counts(ix, p, &q, cat, &c);
	}
	if (rc || c.total == 0)
		goto answer;
	if (c.total <= w && !priced) {
		/* Few matches: rank them all. */
		rc = range_cands(ix, p, &q, 0, cat, cat >= 0 ? ID_OF(cat, 0, 0) : 0,
				 cat >= 0 ? ID_OF(cat, PB_COUNT - 1, SEQ_MAX) : INT64_MAX, w, &cs);
	} else if (c.total <= w) {
		/* Few within the price filter: rank them all, reading only the
		 * filter's buckets of each category that has some. */
		for (int64_t k = 0; rc == 0 && k < c.ncat; k++)
			if (c.by_cat[k] > 0 && (cat < 0 || k == cat))
				rc = range_cands(ix, p, &q, 0, cat, band_lo(&q, k), band_hi(&q, k), w,
						 &cs);
	} else {
		res->windowed = 1;
		rc = window_candidates(ix, p, &q, cat, &c, &cs);
	}
	if (rc)
		goto answer;
	qsort(cs.v, (size_t)cs.n, sizeof(*cs.v), cmp_cand);
	int start = 0;
	if (p->after)
		while (start < cs.n &&
		       cmp_key(cs.v[start].exact, cs.v[start].score_q, cs.v[start].sku,
			       p->after->exact, p->after->score_q, p->after->sku) <= 0)
			start++;
	res->items = json_array();
	int end = start + p->limit < cs.n ? start + p->limit : cs.n;
	for (int i = start; rc == 0 && i < end; i++) {
		json_t *item = product_json(ix, &cs.v[i], &rc);
		if (item)
			json_array_append_new(res->items, item);
	}
	if (rc == 0 && end < cs.n && end > start) {
		res->has_next = 1;
		const cand *last = &cs.v[end - 1];
		res->next.exact = last->exact;
		res->next.score_q = last->score_q;
		snprintf(res->next.sku, sizeof(res->next.sku), "%s", last->sku);
		res->next.n_docs = q.n_docs;
		res->next.sum_name = q.sum_name;
		res->next.sum_desc = q.sum_desc;
		res->next.ngroups = q.ng;
		for (int i = 0; i < q.ng; i++)
			res->next.df[i] = q.g[i].df;
	}
answer:
	if (rc == 0) {
		res->total = c.total;
		if (!res->items)
			res->items = json_array();
		res->facets = facets_json(ix, &c);
		res->query = query_text(&q);
		if (!res->items || !res->facets || !res->query)
			rc = ERR_NOMEM;
	}
	if (rc)
		search_result_clear(res);
	res->warm = q.warm;
	res->from_lists = q.from_lists;
	cands_free(&cs);
	free(c.by_cat);
	free(word.by_cat);
	query_free(&q);
	return rc;
}

/* ---- suggestions ---------------------------------------------------------- */

static int suggest_snapshot(search_index *ix, const terms_list *tokens, int limit, json_t **out);

int search_index_suggest(search_index *ix, const terms_list *tokens, int limit, json_t **out)
{
	int opened = read_begin(ix);
	int rc = suggest_snapshot(ix, tokens, limit, out);
	read_end(ix, opened);
	return rc;
}

static int suggest_snapshot(search_index *ix, const terms_list *tokens, int limit, json_t **out)
{
	*out = json_array();
	if (!*out)
		return ERR_NOMEM;
	if (tokens->n == 0 || limit <= 0)
		return 0;
	const char *prefix = terms_at(tokens, tokens->n - 1);
	char end[80], before[600] = "";
	if (strlen(prefix) >= sizeof(end) - 1)
		return 0;
	prefix_end(prefix, end, sizeof(end));
	size_t blen = 0;
	for (size_t i = 0; i + 1 < tokens->n && blen < sizeof(before) - 80; i++)
		blen += (size_t)snprintf(before + blen, sizeof(before) - blen, "%s ",
					 terms_at(tokens, i));
	int err = 0;
	store_stmt *st = prep(ix,
			      "SELECT term, SUM(df) AS n FROM (SELECT term, df FROM term_cats"
			      " WHERE term >= ? AND term < ? ORDER BY term LIMIT ?) GROUP BY term"
			      " ORDER BY n DESC, term LIMIT ?",
			      ARGV(T(prefix), T(end), I(PREFIX_SCAN), I(SUGGEST_CHECKS)), &err);
	if (!st)
		return err;
	char words[SUGGEST_CHECKS][72];
	int nw = 0, rc;
	while ((rc = store_step(st)) == STORE_ROW && nw < SUGGEST_CHECKS) {
		const char *t = store_col_text(st, 0);
		if (t && strlen(t) < sizeof(words[0]))
			snprintf(words[nw++], sizeof(words[0]), "%s", t);
	}
	store_reset(st);
	if (rc < 0)
		return rc;
	for (int i = 0; i < nw && (int)json_array_size(*out) < limit; i++) {
		char text[700];
		snprintf(text, sizeof(text), "%.599s%.71s", before, words[i]);
		if (tokens->n > 1) {
			/* Only completions that, with the words before, find
			 * something. */
			terms_list all;
			terms_list_init(&all);
			rc = terms_split(&all, text, strlen(text));
			query q;
			memset(&q, 0, sizeof(q));
			for (size_t k = 0; rc == 0 && k < all.n && q.ng < GROUPS_MAX; k++) {
				q.g[q.ng].terms[0] = terms_at(&all, k);
				q.g[q.ng++].n = 1;
			}
			char *expr = NULL;
			if (rc == 0)
				rc = build_expr(&q, &expr);
			int64_t hit = 0;
			if (rc == 0)
				rc = one_int(ix, "SELECT rowid FROM fts WHERE fts MATCH ? LIMIT 1",
					     ARGV(T(expr)), &hit);
			free(expr);
			terms_list_free(&all);
			if (rc < 0)
				return rc;
			if (rc == 0)
				continue;
		}
		json_array_append_new(*out, json_string(text));
	}
	return 0;
}
