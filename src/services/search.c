/* search: routes, page tokens, rebuilds from the catalog, events. */
#include "services/search.h"
#include "bus/bus.h"
#include "core/err.h"
#include "core/jval.h"
#include "core/text.h"
#include "services/catalog.h"
#include "services/search_index.h"
#include "services/terms.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest query, in bytes, and most words in it. */
#define Q_MAX 512
#define WORDS_MAX 32
#define SUGGEST_MAX 20
#define TOKEN_MAX (64 + 4 * 21 + SEARCH_GROUPS_MAX * 21 + 2 * SEARCH_SKU_MAX)
/* Documents swept per transaction after a rebuild. */
#define SWEEP_BATCH 1000
#define PURGE_BATCH 1000
#define PURGE_EVERY_US (10 * 1000000LL)
/* Posting lists a tick reads at most (a few ms each for common words). */
#define WARM_PER_TICK 8
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
#define TXN_TRIES 5

/* ---- the rebuild's state machine ------------------------------------------
 *
 *   IDLE -> COPYING -> SWEEPING -> IDLE
 *             |  ^
 *             v  |
 *           WAITING      (the catalog could not be read; retry with backoff)
 *
 * COPYING pages over the catalog's export, indexing every product with a
 * new generation number; SWEEPING removes what the copy did not see
 * (products deleted while no event reached this index). The state and the
 * copy's page token are kept in the index's meta table, so a restarted
 * instance carries on where it stopped. */
enum reindex_state { REINDEX_IDLE, REINDEX_COPYING, REINDEX_WAITING, REINDEX_SWEEPING };
static const char *const reindex_names[] = { "IDLE", "COPYING", "WAITING", "SWEEPING" };

typedef struct search {
	engine_ctx *ctx;
	router *rt;
	search_index *ix;
	int64_t page_default, page_max;
	int64_t reindex_page, reindex_pages_per_tick;
	int64_t tombstone_ttl_us, catalog_timeout_ms;
	/* Guards the rebuild's fields below. A rebuild is started (from IDLE)
	 * by a request or at creation, then driven by the tick thread alone,
	 * which takes mu only to publish its progress. */
	pthread_mutex_t mu;
	enum reindex_state state;
	int64_t gen;
	char token[256]; /* the export's next page */
	int64_t sweep_cursor;
	int64_t started_at, finished_at, next_try_at, next_purge_at;
	int64_t retry_ms;
	int64_t copied, pages, swept;
	char last_error[256];
} search;

static int reindex_set_state(search *s, enum reindex_state to, const char *why)
{
	static const int ok[4][4] = {
		/* from IDLE */ { 0, 1, 0, 0 },
		/* COPYING */ { 0, 0, 1, 1 },
		/* WAITING */ { 0, 1, 0, 0 },
		/* SWEEPING */ { 1, 0, 0, 0 },
	};
	if (!ok[s->state][to]) {
		log_error(s->ctx->log, "reindex: illegal %s -> %s refused", reindex_names[s->state],
			  reindex_names[to]);
		return ERR_STATE;
	}
	log_info(s->ctx->log, "reindex: %s -> %s (%s)", reindex_names[s->state], reindex_names[to],
		 why);
	s->state = to;
	return 0;
}

/* Runs body in a transaction on the engine's store (store_txn: again when
 * the store is busy), with a fresh batch for the index's word counts on
 * every attempt, written before the commit. */
typedef int (*txn_fn)(search *s, search_batch *b, void *arg);

typedef struct txn_call {
	search *s;
	txn_fn body;
	void *arg;
} txn_call;

static int txn_body(void *arg)
{
	txn_call *t = arg;
	search_batch *b = search_batch_new();
	if (!b)
		return ERR_NOMEM;
	int rc = t->body(t->s, b, t->arg);
	if (rc == 0)
		rc = search_index_flush(t->s->ix, b);
	search_batch_free(b);
	return rc;
}

static int in_txn(search *s, txn_fn body, void *arg)
{
	txn_call t = { s, body, arg };
	return store_txn(s->ctx->store, TXN_TRIES, txn_body, &t);
}

/* ---- events ----------------------------------------------------------------- */

static int64_t current_gen(search *s)
{
	int64_t gen = 0;
	search_index_meta_int(s->ix, "gen", &gen);
	return gen;
}

/* Reads a product (an event, or an item of the catalog's export) into d,
 * borrowing obj's strings. */
static int doc_from_json(json_t *obj, search_doc *d)
{
	memset(d, 0, sizeof(*d));
	jval_error e;
	if (jval_str(obj, "sku", 1, 1, SEARCH_SKU_MAX, &d->sku, &e) ||
	    jval_int(obj, "version", 1, 0, INT64_MAX, &d->version, NULL, &e))
		return ERR_INVALID;
	if (jval_str(obj, "name", 1, 1, 1000, &d->name, &e) ||
	    jval_str(obj, "description", 0, 0, 20000, &d->description, &e) ||
	    jval_str(obj, "category", 1, 1, 64, &d->category, &e) ||
	    jval_str(obj, "currency", 0, 3, 3, &d->currency, &e) ||
	    jval_int(obj, "price_cents", 1, 0, INT64_MAX, &d->price_cents, NULL, &e))
		return ERR_INVALID;
	if (!d->description)
		d->description = "";
	if (!d->currency)
		d->currency = "USD";
	return 0;
}

typedef struct event {
	json_t *obj;
	int del;
	search_doc doc;
	const char *result; /* for the metric */
} event;

static int apply_event(search *s, search_batch *b, void *arg)
{
	event *ev = arg;
	int applied = 0, rc;
	if (ev->del)
		rc = search_index_remove(s->ix, b, ev->doc.sku, ev->doc.version,
					 clock_now(s->ctx->clock), &applied);
	else
		rc = search_index_put(s->ix, b, &ev->doc, current_gen(s), &applied);
	ev->result = applied ? "applied" : "stale";
	return rc;
}

/* Parses payload into ev. 1: an event search applies; 0: another type;
 * ERR_INVALID: not an event. */
static int parse_event(const char *payload, size_t len, event *ev)
{
	memset(ev, 0, sizeof(*ev));
	jval_error e;
	ev->obj = payload ? jval_parse_object(payload, len, &e) : NULL;
	const char *type = NULL;
	if (!ev->obj || jval_str(ev->obj, "type", 1, 1, 64, &type, &e))
		return ERR_INVALID;
	if (strcmp(type, "product_deleted") == 0) {
		ev->del = 1;
		if (jval_str(ev->obj, "sku", 1, 1, SEARCH_SKU_MAX, &ev->doc.sku, &e) ||
		    jval_int(ev->obj, "version", 1, 0, INT64_MAX, &ev->doc.version, NULL, &e))
			return ERR_INVALID;
		return 1;
	}
	if (strcmp(type, "product_created") != 0 && strcmp(type, "product_updated") != 0 &&
	    strcmp(type, "product_price_changed") != 0)
		return 0;
	return doc_from_json(ev->obj, &ev->doc) ? ERR_INVALID : 1;
}

static int apply(void *eng, const char *payload, size_t len, int own_txn)
{
	search *s = eng;
	event ev;
	int rc = parse_event(payload, len, &ev);
	const char *result = rc == ERR_INVALID ? "invalid" : "ignored";
	if (rc == 1) {
		if (own_txn) {
			rc = in_txn(s, apply_event, &ev);
		} else {
			search_batch *b = search_batch_new();
			rc = b ? apply_event(s, b, &ev) : ERR_NOMEM;
			if (rc == 0)
				rc = search_index_flush(s->ix, b);
			search_batch_free(b);
		}
		result = rc ? "failed" : ev.result;
		if (rc)
			log_warn(s->ctx->log, "event for %s not applied: %s (%s)", ev.doc.sku,
				 err_name(rc), store_errmsg(s->ctx->store));
	}
	char labels[48];
	snprintf(labels, sizeof(labels), "result=\"%s\"", result);
	metrics_count(s->ctx->metrics, "search_events_total", labels, 1);
	json_decref(ev.obj);
	return rc < 0 ? rc : 0;
}

int search_apply(void *eng, const char *payload, size_t len) { return apply(eng, payload, len, 1); }

int search_apply_in_txn(void *eng, const char *payload, size_t len)
{
	return apply(eng, payload, len, 0);
}

/* ---- the rebuild ---------------------------------------------------------------- */

/* Writes the rebuild's progress (state, the next page, the sweep's place)
 * into the index, in the caller's transaction. */
static int save_progress(search *s, enum reindex_state state, const char *token)
{
	int rc = search_index_set_meta(s->ix, "reindex", state, token);
	if (rc == 0)
		rc = search_index_set_meta(s->ix, "gen", s->gen, NULL);
	if (rc == 0)
		rc = search_index_set_meta(s->ix, "sweep_cursor", s->sweep_cursor, NULL);
	return rc;
}

static int save_state(search *s, search_batch *b, void *arg)
{
	(void)b;
	(void)arg;
	return save_progress(s, s->state, s->token);
}

/* Starts a rebuild unless one runs. Called with s->mu held. */
static int reindex_start(search *s, const char *why)
{
	if (s->state != REINDEX_IDLE)
		return 0;
	s->gen = current_gen(s) + 1;
	s->token[0] = '\0';
	s->sweep_cursor = 0;
	s->copied = s->pages = s->swept = 0;
	s->started_at = clock_now(s->ctx->clock);
	s->next_try_at = 0;
	s->retry_ms = RETRY_MIN_MS;
	s->last_error[0] = '\0';
	int rc = reindex_set_state(s, REINDEX_COPYING, why);
	if (rc == 0)
		rc = in_txn(s, save_state, NULL);
	return rc;
}

typedef struct page {
	json_t *items;
	const char *next; /* NULL on the last page */
	int64_t copied;
} page;

/* Indexes one page of the export and records where the next one starts,
 * in one transaction: a crash repeats at most this page. */
static int copy_page(search *s, search_batch *b, void *arg)
{
	page *pg = arg;
	size_t i;
	json_t *item;
	pg->copied = 0;
	json_array_foreach(pg->items, i, item) {
		search_doc d;
		int applied = 0;
		if (!json_is_object(item) || doc_from_json(item, &d)) {
			log_warn(s->ctx->log, "reindex: item %zu of a catalog page is not a product",
				 i);
			continue;
		}
		int rc = search_index_put(s->ix, b, &d, s->gen, &applied);
		if (rc)
			return rc;
		pg->copied++;
	}
	return save_progress(s, pg->next ? REINDEX_COPYING : REINDEX_SWEEPING,
			     pg->next ? pg->next : "");
}

/* One GET of the catalog's export through the gateway. 0 with *doc the
 * answer, or an error with why said. */
static int fetch_page(search *s, json_t **doc, char *why, size_t whylen)
{
	char path[512];
	int n = snprintf(path, sizeof(path), "/v1/products/_export?page_size=%" PRId64,
			 s->reindex_page);
	if (s->token[0])
		snprintf(path + n, sizeof(path) - (size_t)n, "&page_token=%s", s->token);
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	*doc = NULL;
	int rc = msg_req_init(&req, "GET", path);
	if (rc == 0)
		rc = engine_call_service(s->ctx, &req, &resp, s->catalog_timeout_ms);
	if (rc) {
		snprintf(why, whylen, "catalog unreachable: %s",
			 err_name(rc));
	} else if (resp.status != 200) {
		snprintf(why, whylen, "catalog answered %d: %.160s",
			 resp.status, resp.body ? resp.body : "");
		rc = ERR_UNAVAILABLE;
	} else {
		*doc = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
		if (!json_is_array(json_object_get(*doc, "items"))) {
			snprintf(why, whylen,
				 "catalog export is not {items, next_page_token}");
			json_decref(*doc);
			*doc = NULL;
			rc = ERR_PARSE;
		}
	}
	msg_req_clear(&req);
	msg_resp_clear(&resp);
	return rc;
}

/* The rebuild's pages of one tick. The tick thread alone drives the
 * rebuild once started; s->mu is taken only to publish its progress, so
 * the status route never waits for a page. */
static void reindex_copy(search *s, int64_t now)
{
	for (int64_t k = 0; k < s->reindex_pages_per_tick; k++) {
		json_t *doc = NULL;
		char why[256] = "";
		int rc = fetch_page(s, &doc, why, sizeof(why));
		page pg = { NULL, NULL, 0 };
		if (rc == 0) {
			json_t *next = json_object_get(doc, "next_page_token");
			pg.items = json_object_get(doc, "items");
			if (json_is_string(next) && json_string_length(next) > 0 &&
			    json_string_length(next) < sizeof(s->token))
				pg.next = json_string_value(next);
			rc = in_txn(s, copy_page, &pg);
			if (rc)
				snprintf(why, sizeof(why), "index write: %s", err_name(rc));
		}
		pthread_mutex_lock(&s->mu);
		if (rc == 0) {
			s->pages++;
			s->copied += pg.copied;
			snprintf(s->token, sizeof(s->token), "%s", pg.next ? pg.next : "");
			s->retry_ms = RETRY_MIN_MS;
			if (!pg.next)
				reindex_set_state(s, REINDEX_SWEEPING, "copied every product");
		} else {
			snprintf(s->last_error, sizeof(s->last_error), "%s", why);
			log_warn(s->ctx->log, "reindex: %s; again in %" PRId64 " ms", why, s->retry_ms);
			s->next_try_at = now + s->retry_ms * 1000;
			s->retry_ms = s->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : s->retry_ms * 2;
			reindex_set_state(s, REINDEX_WAITING, "catalog page failed");
		}
		int more = s->state == REINDEX_COPYING;
		pthread_mutex_unlock(&s->mu);
		json_decref(doc);
		if (!more)
			return;
	}
}

typedef struct sweep {
	int removed;
	int64_t cursor;
} sweep;

static int sweep_batch(search *s, search_batch *b, void *arg)
{
	sweep *sw = arg;
	sw->cursor = s->sweep_cursor;
	int rc = search_index_sweep(s->ix, b, s->gen, &sw->cursor, SWEEP_BATCH, &sw->removed);
	if (rc == 0)
		rc = search_index_set_meta(s->ix, "sweep_cursor", sw->cursor, NULL);
	return rc;
}

static int finish(search *s, search_batch *b, void *arg)
{
	(void)b;
	int64_t now = *(int64_t *)arg;
	int rc = search_index_set_meta(s->ix, "reindex", REINDEX_IDLE, "");
	if (rc == 0)
		rc = search_index_set_meta(s->ix, "built", 1, NULL);
	if (rc == 0)
		rc = search_index_set_meta(s->ix, "built_at", now, NULL);
	return rc;
}

static void reindex_sweep(search *s, int64_t now)
{
	for (int64_t k = 0; k < s->reindex_pages_per_tick; k++) {
		sweep sw = { 0, 0 };
		int rc = in_txn(s, sweep_batch, &sw);
		pthread_mutex_lock(&s->mu);
		if (rc) {
			snprintf(s->last_error, sizeof(s->last_error), "sweep: %s", err_name(rc));
			log_warn(s->ctx->log, "reindex: %s", s->last_error);
		} else {
			s->sweep_cursor = sw.cursor;
			s->swept += sw.removed;
		}
		pthread_mutex_unlock(&s->mu);
		if (rc)
			return;
		if (sw.removed == SWEEP_BATCH)
			continue;
		/* One segment per table reads fastest; a rebuild is the time to
		 * pay for it. */
		if ((rc = search_index_optimize(s->ix)) != 0)
			log_warn(s->ctx->log, "reindex: optimize: %s", err_name(rc));
		rc = in_txn(s, finish, &now);
		int64_t docs = 0;
		search_index_count(s->ix, &docs);
		pthread_mutex_lock(&s->mu);
		if (rc) {
			snprintf(s->last_error, sizeof(s->last_error), "finish: %s", err_name(rc));
		} else {
			s->finished_at = now;
			s->token[0] = '\0';
			log_info(s->ctx->log,
				 "reindex: generation %" PRId64 " built: %" PRId64 " products copied, %" PRId64
				 " removed, %" PRId64 " in the index",
				 s->gen, s->copied, s->swept, docs);
			reindex_set_state(s, REINDEX_IDLE, "swept");
		}
		pthread_mutex_unlock(&s->mu);
		return;
	}
}

typedef struct purge {
	int64_t before;
} purge;

static int purge_batch(search *s, search_batch *b, void *arg)
{
	(void)b;
	int n = 0;
	return search_index_purge_tombstones(s->ix, ((purge *)arg)->before, PURGE_BATCH, &n);
}

static void search_tick(void *eng, int64_t now)
{
	search *s = eng;
	pthread_mutex_lock(&s->mu);
	if (s->state == REINDEX_WAITING && now >= s->next_try_at)
		reindex_set_state(s, REINDEX_COPYING, "retrying");
	enum reindex_state state = s->state;
	pthread_mutex_unlock(&s->mu);
	if (state == REINDEX_COPYING)
		reindex_copy(s, now);
	else if (state == REINDEX_SWEEPING)
		reindex_sweep(s, now);
	else if (state == REINDEX_IDLE && now >= s->next_purge_at) {
		purge p = { now - s->tombstone_ttl_us };
		in_txn(s, purge_batch, &p);
		s->next_purge_at = now + PURGE_EVERY_US;
	}
	if (state == REINDEX_IDLE) {
		/* Posting lists that searches wanted; not while a rebuild
		 * changes every word. */
		int loaded = 0;
		if (search_index_warm(s->ix, WARM_PER_TICK, &loaded) != 0)
			log_warn(s->ctx->log, "search: reading posting lists: %s",
				 store_errmsg(s->ctx->store));
		if (loaded)
			metrics_count(s->ctx->metrics, "search_posting_lists_read_total", "",
				      (uint64_t)loaded);
	}
	int64_t docs = 0;
	if (search_index_count(s->ix, &docs) == 0)
		metrics_gauge(s->ctx->metrics, "search_documents", "", (double)docs);
}

/* ---- page tokens ------------------------------------------------------------------
 *
 * "s1.<fingerprint>.<exact>.<score>.<docs>.<name words>.<description
 * words>.<df>-<df>....<sku in hex>": where the previous page ended in the
 * result order, the statistics its scores came from, and a fingerprint of
 * the query and filters so that a token cannot be used for another search.
 * A token stays valid while the index changes: the next page starts after
 * that key, scored as the first page was. */

static uint64_t fingerprint(const terms_list *t, int typing, const char *category, int has_min,
			    int64_t min, int has_max, int64_t max)
{
	char buf[160];
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < t->n; i++)
		for (const unsigned char *p = (const unsigned char *)terms_at(t, i); ; p++) {
			h ^= *p;
			h *= 1099511628211ULL;
			if (!*p)
				break;
		}
	snprintf(buf, sizeof(buf), "|%d|%s|%d:%" PRId64 "|%d:%" PRId64, typing,
		 category ? category : "", has_min, min, has_max, max);
	for (const unsigned char *p = (const unsigned char *)buf; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

static void token_encode(uint64_t fp, const search_cursor *c, char *out, size_t len)
{
	int n = snprintf(out, len, "s1.%016" PRIx64 ".%d.%" PRId64 ".%" PRId64 ".%" PRId64 ".%" PRId64 ".",
			 fp, c->exact, c->score_q, c->n_docs, c->sum_name, c->sum_desc);
	for (int i = 0; i < c->ngroups && (size_t)n + 24 < len; i++)
		n += snprintf(out + n, len - (size_t)n, "%s%" PRId64, i ? "-" : "", c->df[i]);
	n += snprintf(out + n, len - (size_t)n, ".");
	for (const unsigned char *p = (const unsigned char *)c->sku; *p && (size_t)n + 3 < len; p++)
		n += snprintf(out + n, len - (size_t)n, "%02x", *p);
}

/* Reads a non-negative decimal at *p up to the separator sep; advances *p
 * past it. */
static int read_num(const char **p, char sep, int64_t *out)
{
	const char *s = *p;
	int64_t v = 0;
	if (*s < '0' || *s > '9')
		return ERR_INVALID;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return ERR_INVALID;
		v = v * 10 + (*s - '0');
	}
	if (*s != sep)
		return ERR_INVALID;
	*p = s + 1;
	*out = v;
	return 0;
}

static int token_decode(const char *tok, uint64_t fp, search_cursor *c)
{
	memset(c, 0, sizeof(*c));
	const char *p = tok;
	if (strncmp(p, "s1.", 3) != 0 || strlen(p) < 3 + 16 + 1)
		return ERR_INVALID;
	p += 3;
	uint64_t got = 0;
	for (int i = 0; i < 16; i++, p++) {
		int d = text_hexval(*p);
		if (d < 0)
			return ERR_INVALID;
		got = got << 4 | (uint64_t)d;
	}
	int64_t exact = 0;
	if (got != fp || *p++ != '.' || read_num(&p, '.', &exact) || exact > 1 ||
	    read_num(&p, '.', &c->score_q) || read_num(&p, '.', &c->n_docs) ||
	    read_num(&p, '.', &c->sum_name) || read_num(&p, '.', &c->sum_desc))
		return ERR_INVALID;
	c->exact = (int)exact;
	while (*p != '.') {
		if (c->ngroups == SEARCH_GROUPS_MAX)
			return ERR_INVALID;
		const char *start = p;
		int64_t df = 0;
		if (read_num(&p, '-', &df)) {
			p = start;
			if (read_num(&p, '.', &df))
				return ERR_INVALID;
			p--; /* back on the '.' that ends the list */
		}
		c->df[c->ngroups++] = df;
	}
	const char *hex = p + 1;
	size_t n = strlen(hex);
	if (n == 0 || n % 2 || n / 2 > SEARCH_SKU_MAX)
		return ERR_INVALID;
	for (size_t i = 0; i < n; i += 2) {
		int hi = text_hexval(hex[i]), lo = text_hexval(hex[i + 1]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return ERR_INVALID;
		c->sku[i / 2] = (char)(hi * 16 + lo);
	}
	return 0;
}

/* ---- requests ------------------------------------------------------------------------ */

/* Reads q: at most Q_MAX bytes of valid UTF-8. Fills words and *typing
 * (q ends inside a word). 1 when q has words, 0 when it has none, or
 * ERR_INVALID with resp filled. */
static int read_q(const msg_req *req, msg_resp *resp, int required, terms_list *words,
		  int *typing)
{
	char q[Q_MAX + 1];
	int rc = msg_req_query(req, "q", q, sizeof(q));
	if (rc == ERR_TOO_LARGE)
		return engine_bad_field(resp, "q", "must be at most 512 bytes");
	if (rc < 0)
		return engine_bad_field(resp, "q", "is not readable");
	if (rc == 0) {
		if (required)
			return engine_bad_field(resp, "q", "is required");
		q[0] = '\0';
	}
	size_t n = strlen(q);
	for (size_t i = 0; i < n;) {
		size_t k = text_utf8_len((const unsigned char *)q + i, n - i);
		if (k == 0)
			return engine_bad_field(resp, "q", "must be valid UTF-8");
		i += k;
	}
	if (terms_split(words, q, n)) {
		msg_resp_error(resp, 500, "internal", "out of memory", NULL);
		return ERR_NOMEM;
	}
	if (words->n > WORDS_MAX)
		return engine_bad_field(resp, "q", "must have at most 32 words");
	*typing = n > 0 && terms_is_token_byte((unsigned char)q[n - 1]);
	if (words->n == 0 && required)
		return engine_bad_field(resp, "q", "must contain at least one letter or digit");
	return words->n > 0;
}

static void search_products(void *ud, msg_req *req, msg_resp *resp)
{
	search *s = ud;
	terms_list words;
	terms_list_init(&words);
	int typing = 0;
	char category[72] = "", token[TOKEN_MAX + 1] = "";
	int64_t min_price = 0, max_price = 0, limit = s->page_default;
	search_params p = { .tokens = &words };
	search_result res;
	memset(&res, 0, sizeof(res));
	if (read_q(req, resp, 1, &words, &typing) < 0)
		goto out;
	int rc = msg_req_query(req, "category", category, sizeof(category));
	if (rc < 0 || (rc == 1 && !catalog_valid_category(category))) {
		engine_bad_field(resp, "category", "must be lower-case letters, digits and '-'");
		goto out;
	}
	int has_min = engine_query_int(req, resp, "min_price", 0, INT64_MAX / 2, &min_price);
	int has_max = has_min < 0 ? -1 : engine_query_int(req, resp, "max_price", 0, INT64_MAX / 2,
							   &max_price);
	if (has_min < 0 || has_max < 0)
		goto out;
	if (has_min && has_max && min_price > max_price) {
		engine_bad_field(resp, "min_price", "must not be greater than max_price");
		goto out;
	}
	if (engine_query_int(req, resp, "limit", 1, s->page_max, &limit) < 0)
		goto out;
	uint64_t fp = fingerprint(&words, typing, category, has_min, min_price, has_max, max_price);
	search_cursor after;
	rc = msg_req_query(req, "page_token", token, sizeof(token));
	if (rc < 0 || (rc == 1 && token_decode(token, fp, &after) != 0)) {
		engine_bad_field(resp, "page_token", "is not a page token of this search");
		goto out;
	}
	p.typing = typing;
	p.category = category[0] ? category : NULL;
	p.has_min = has_min;
	p.has_max = has_max;
	p.min_price = min_price;
	p.max_price = max_price;
	p.limit = (int)limit;
	p.after = rc == 1 ? &after : NULL;
	rc = search_index_search(s->ix, &p, &res);
	if (rc) {
		engine_store_error(s->ctx, resp, rc, "search");
		goto out;
	}
	json_t *out = json_pack("{s:O,s:I,s:O,s:s,s:s}", "items", res.items, "total",
				(json_int_t)res.total, "facets", res.facets, "query", res.query,
				"ranking", res.windowed ? "window" : "exact");
	if (res.warm && s->ctx->wake)
		s->ctx->wake(s->ctx->wake_ud); /* the tick reads the lists wanted */
	if (res.has_next) {
		char next[TOKEN_MAX + 1];
		token_encode(fp, &res.next, next, sizeof(next));
		json_object_set_new(out, "next_page_token", json_string(next));
	} else {
		json_object_set_new(out, "next_page_token", json_null());
	}
	msg_resp_json(resp, 200, out);
	char labels[40];
	snprintf(labels, sizeof(labels), "ranking=\"%s\"",
		 res.total == 0 ? "none" : res.windowed ? "window" : "exact");
	metrics_count(s->ctx->metrics, "search_queries_total", labels, 1);
	if (res.from_lists)
		metrics_count(s->ctx->metrics, "search_counted_from_lists_total", "", 1);
out:
	search_result_clear(&res);
	terms_list_free(&words);
}

static void suggest(void *ud, msg_req *req, msg_resp *resp)
{
	search *s = ud;
	terms_list words;
	terms_list_init(&words);
	int typing = 0;
	int64_t limit = 5;
	int rc = read_q(req, resp, 0, &words, &typing);
	if (rc >= 0 && engine_query_int(req, resp, "limit", 1, SUGGEST_MAX, &limit) >= 0) {
		json_t *list = NULL;
		/* Completions of an unfinished last word; a query that ends in a
		 * space has none. */
		rc = rc == 1 && typing ? search_index_suggest(s->ix, &words, (int)limit, &list) : 0;
		if (rc)
			engine_store_error(s->ctx, resp, rc, "suggest");
		else
			msg_resp_json(resp, 200,
				      json_pack("{s:o}", "suggestions", list ? list : json_array()));
		if (rc)
			json_decref(list);
	}
	terms_list_free(&words);
}

static json_t *status_json(search *s)
{
	int64_t docs = 0, built = 0, built_at = 0;
	search_index_count(s->ix, &docs);
	search_index_meta_int(s->ix, "built", &built);
	search_index_meta_int(s->ix, "built_at", &built_at);
	char started[40] = "", at[40] = "";
	if (s->started_at)
		clock_fmt_rfc3339(s->started_at, started, sizeof(started));
	if (built_at)
		clock_fmt_rfc3339(built_at, at, sizeof(at));
	return json_pack("{s:s,s:I,s:b,s:I,s:s?,s:{s:s,s:I,s:I,s:I,s:s?,s:s?}}", "instance",
			 s->ctx->instance_id ? s->ctx->instance_id : "", "documents",
			 (json_int_t)docs, "built", (int)built, "generation", (json_int_t)s->gen,
			 "built_at", built_at ? at : NULL, "reindex", "state",
			 reindex_names[s->state], "copied", (json_int_t)s->copied, "pages",
			 (json_int_t)s->pages, "removed", (json_int_t)s->swept, "started_at",
			 s->started_at ? started : NULL, "last_error",
			 s->last_error[0] ? s->last_error : NULL);
}

static void reindex_route(void *ud, msg_req *req, msg_resp *resp)
{
	search *s = ud;
	if (engine_require_admin(s->ctx, req, resp))
		return;
	pthread_mutex_lock(&s->mu);
	int rc = reindex_start(s, "asked for");
	json_t *st = rc == 0 ? status_json(s) : NULL;
	pthread_mutex_unlock(&s->mu);
	if (rc)
		engine_store_error(s->ctx, resp, rc, "reindex");
	else
		msg_resp_json(resp, 202, st);
}

static void status_route(void *ud, msg_req *req, msg_resp *resp)
{
	search *s = ud;
	if (engine_require_admin(s->ctx, req, resp))
		return;
	pthread_mutex_lock(&s->mu);
	json_t *st = status_json(s);
	pthread_mutex_unlock(&s->mu);
	msg_resp_json(resp, 200, st);
}

/* ---- engine ---------------------------------------------------------------------------- */

static double config_double(const config *c, const char *key, double fallback, double min,
			    double max)
{
	const char *v = config_get(c, key);
	if (!v || !v[0])
		return fallback;
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	return errno || *end || !(d >= min && d <= max) ? fallback : d;
}

static void search_destroy(void *eng)
{
	search *s = eng;
	if (!s)
		return;
	router_free(s->rt);
	search_index_free(s->ix);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Picks up a rebuild a previous run left, or starts one for an index that
 * was never completely built. */
static int resume(search *s)
{
	int64_t state = 0, built = 0;
	int rc = search_index_meta_int(s->ix, "reindex", &state);
	if (rc == 0)
		rc = search_index_meta_int(s->ix, "built", &built);
	if (rc == 0)
		rc = search_index_meta_text(s->ix, "reindex", s->token, sizeof(s->token));
	if (rc == 0)
		rc = search_index_meta_int(s->ix, "sweep_cursor", &s->sweep_cursor);
	if (rc)
		return rc;
	s->gen = current_gen(s);
	if (state == REINDEX_COPYING || state == REINDEX_WAITING || state == REINDEX_SWEEPING) {
		s->started_at = clock_now(s->ctx->clock);
		s->retry_ms = RETRY_MIN_MS;
		/* A rebuild stopped while sweeping resumes by the same edges it
		 * took (IDLE -> COPYING -> SWEEPING): the copy is done, its
		 * sweep carries on from sweep_cursor. */
		rc = reindex_set_state(s, REINDEX_COPYING, "resuming the last run's rebuild");
		if (rc == 0 && state == REINDEX_SWEEPING)
			rc = reindex_set_state(s, REINDEX_SWEEPING, "the last run's copy was done");
		return rc ? ERR_STATE : 0;
	}
	s->token[0] = '\0';
	return built ? 0 : reindex_start(s, "the index is empty");
}

static void *search_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (!ctx->store) {
		snprintf(err, errlen, "search needs its index store");
		return NULL;
	}
	search *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->ctx = ctx;
	pthread_mutex_init(&s->mu, NULL);
	const config *c = ctx->config;
	s->page_max = config_int(c, "search.page_size_max", 100);
	if (s->page_max < 1)
		s->page_max = 100;
	s->page_default = config_int(c, "search.page_size_default", 20);
	if (s->page_default < 1 || s->page_default > s->page_max)
		s->page_default = s->page_max < 20 ? s->page_max : 20;
	s->reindex_page = config_int(c, "search.reindex_page_size", 1000);
	if (s->reindex_page < 1 || s->reindex_page > CATALOG_EXPORT_MAX)
		s->reindex_page = 1000;
	s->reindex_pages_per_tick = config_int(c, "search.reindex_pages_per_tick", 8);
	if (s->reindex_pages_per_tick < 1)
		s->reindex_pages_per_tick = 1;
	s->tombstone_ttl_us = config_int(c, "search.tombstone_ttl_s", 86400) * 1000000;
	s->catalog_timeout_ms = config_int(c, "search.catalog_timeout_ms", 10000);
	int64_t window = config_int(c, "search.rank_window", 300);
	search_index_opts o = {
		.rank_window = (int)(window < 1 ? 1 : window > 100000 ? 100000 : window),
		.name_weight = config_double(c, "search.name_weight", 3.0, 0.0, 1000.0),
		.desc_weight = 1.0,
		.k1 = 1.2,
		.b = 0.75,
	};
	int64_t cache_mb = config_int(c, "search.posting_cache_mb", 64);
	o.posting_cache_ids = (size_t)(cache_mb < 0 ? 0 : cache_mb > 1 << 20 ? 1 << 20 : cache_mb) *
			      1048576 / sizeof(int64_t);
	o.posting_cache_min_df = config_int(c, "search.posting_cache_min_df", 2000);
	int fresh = 0;
	s->ix = search_index_open(ctx->store, &o, &fresh, err, errlen);
	if (!s->ix) {
		search_destroy(s);
		return NULL;
	}
	if (fresh)
		log_info(ctx->log, "search index created (format %d)", SEARCH_INDEX_FORMAT);
	static const engine_route routes[] = {
		{ "GET", "/v1/search", search_products },
		{ "GET", "/v1/search/suggest", suggest },
		{ "POST", "/v1/search/_reindex", reindex_route },
		{ "GET", "/v1/search/_status", status_route },
	};
	s->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), s, err, errlen);
	int rc = s->rt ? resume(s) : ERR_NOMEM;
	if (rc) {
		if (s->rt)
			snprintf(err, errlen, "search index: %s (%s)", err_name(rc),
				 store_errmsg(ctx->store));
		search_destroy(s);
		return NULL;
	}
	metrics_help(ctx->metrics, "search_queries_total",
		     "Searches answered, by how they were ranked (exact: every match; window: "
		     "the candidates; none: nothing matched).");
	metrics_help(ctx->metrics, "search_events_total",
		     "Catalog events offered to the index, by result.");
	metrics_help(ctx->metrics, "search_documents", "Products in this instance's index.");
	metrics_help(ctx->metrics, "search_posting_lists_read_total",
		     "Posting lists of common words read into memory (on the tick, as searches "
		     "asked for them).");
	metrics_help(ctx->metrics, "search_counted_from_lists_total",
		     "Searches whose total and facets were counted from cached posting lists.");
	return s;
}

static void search_handle(void *eng, msg_req *req, msg_resp *resp)
{
	search *s = eng;
	router_dispatch(s->rt, req, resp);
}

/* The index follows the catalog through the bus: every product event is
 * applied in the bus's transaction, with the offset (embedded) or the inbox
 * entry in the same local file. Versions make replays and reordering
 * harmless. */
static const engine_sub search_subs[] = { { "catalog", NULL }, { NULL, NULL } };

static int search_consume(void *eng, const bus_msg *m)
{
	return search_apply_in_txn(eng, m->payload, m->payload_len);
}

const engine_def search_engine = {
	.name = "search",
	.needs_store = ENGINE_STORE_LOCAL,
	.create = search_create,
	.handle = search_handle,
	.tick = search_tick,
	.ready = NULL,
	.destroy = search_destroy,
	.subs = search_subs,
	.consume = search_consume,
};
