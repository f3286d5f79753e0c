/* inventory: stock, reservations, the ledger and the outbox. */
#include "services/inventory.h"
#include "bus/outbox.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/router.h"
#include "services/catalog.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SKU_MAX 64
#define ID_MAX 64
#define ITEMS_MAX 100
#define QTY_MAX 1000000
#define ON_HAND_MAX 1000000000LL
#define TTL_MAX 86400
/* Attempts of one transaction when the database says "busy" or "serialize
 * again" before answering 503. */
#define TXN_TRIES 5
/* Reservations expired by one tick; the rest wait for the next. */
#define EXPIRE_BATCH 500
#define LEDGER_PAGE_MAX 500
/* Rows reported per invariant check. */
#define REPORT_MAX 100
/* A transaction body's "the answer is decided, roll back": not an error. */
#define TXN_ABORT 1
/* Operations one group commit runs at most (see txn_run_all). */
#define BATCH_MAX 64
/* How long a leader waits for the writers it expects to join its batch:
 * well under the cost of the commit they would otherwise each pay. */
#define LINGER_US 200

typedef struct txn_op txn_op;

/* Deferred writes (see the section of that name). */
#define PEND_SKUS 256 /* stock rows kept per transaction before a flush */
#define PEND_SIZES 5 /* multi-row INSERTs of 1, 2, 4, 8 and 16 rows */
#define PEND_CHUNK (1 << (PEND_SIZES - 1))

typedef struct pend_stock {
	const char *sku;  /* borrowed from the op, which outlives the transaction */
	int64_t on_hand;
	int64_t reserved; /* as the database holds it */
	int64_t held;     /* reserved, with this transaction's reservations */
	int64_t at;       /* updated_at to write */
	int64_t last;     /* the sku's newest ledger entry, with this transaction's */
} pend_stock;

/* An item held back (its reservation_items row and its ledger entry), or
 * an event (its outbox row). Strings are borrowed from the op, except an
 * event's payload. */
typedef struct pend_row {
	const char *sku;
	const char *id;
	int64_t line; /* an item's reservation_items line */
	int64_t entry, prev; /* its ledger entry's id, and the sku's entry before */
	int64_t qty;
	int64_t at;
	char *payload;
	const char *tp;
} pend_row;

typedef struct pend_rows {
	pend_row *v;
	size_t n, cap;
} pend_rows;

typedef struct pend {
	pend_stock stock[PEND_SKUS];
	size_t nstock;
	pend_rows items, events;
} pend;

typedef struct inventory {
	engine_ctx *ctx;
	router *rt;
	int64_t low_threshold;
	/* The connection every batch runs on, whichever thread leads. */
	store_conn *writer;
	/* Reservations hold their writes back to the end of the transaction
	 * (SQLite only). pend is touched only by the thread running bodies. */
	int defer;
	int batching; /* a group commit of several ops is running */
	pend pend;
	/* The next reservation_items line this transaction gives out, 0 when
	 * not read yet (see lines_take). Touched only by the thread running
	 * bodies; forgotten at every BEGIN. */
	int64_t line_next;
	int64_t ledger_next; /* the same for stock_ledger ids (ledger_take) */
	/* Group commit: operations waiting for a transaction, and whether a
	 * thread is running one now (the leader). */
	pthread_mutex_t mu;
	pthread_cond_t linger_cv; /* an op joined the queue while a leader lingers */
	txn_op *head, *tail;
	size_t queued;   /* ops in the queue */
	int leading;     /* a thread leads: runs a batch, lingers first, or is
			  * woken to lead the next */
	size_t lingering; /* while a leader lingers: the ops it waits for */
	int held;        /* inventory_hold: no batch starts */
	atomic_size_t writers; /* threads inside txn_run_all */
	size_t peak;     /* most writers at once since the last batch began */
	size_t last;     /* ops in the last batch */
} inventory;

/* ---- the reservation state machine --------------------------------------- */

static const char *const state_names[INVENTORY_NSTATES] = { "HELD", "COMMITTED", "RELEASED",
							     "EXPIRED" };

const char *inventory_state_name(int state)
{
	return state >= 0 && state < INVENTORY_NSTATES ? state_names[state] : "?";
}

int inventory_state_parse(const char *name)
{
	for (int i = 0; name && i < INVENTORY_NSTATES; i++)
		if (strcmp(state_names[i], name) == 0)
			return i;
	return -1;
}

int inventory_state_edge(int from, int to)
{
	return from == INVENTORY_HELD &&
			       (to == INVENTORY_COMMITTED || to == INVENTORY_RELEASED ||
				to == INVENTORY_EXPIRED)
		       ? 0
		       : ERR_STATE;
}

/* ---- SQL with typed arguments ---------------------------------------------- */

typedef struct sqlarg {
	const char *t;
	int64_t i;
	int text;
} sqlarg;

#define T(v) ((sqlarg){ .t = (v), .text = 1 })
#define I(v) ((sqlarg){ .i = (int64_t)(v) })
#define ARGS(...) \
	(const sqlarg[]){ __VA_ARGS__ }, sizeof((const sqlarg[]){ __VA_ARGS__ }) / sizeof(sqlarg)

/* The prepared statement for sql with args bound; step it, then reset it. */
static store_stmt *sql_open(store *s, const char *sql, int *err, const sqlarg *a, size_t n)
{
	store_stmt *st = store_prepare(s, sql, err);
	if (!st)
		return NULL;
	for (size_t k = 0; k < n; k++) {
		int rc = a[k].text ? store_bind_text(st, (int)k + 1, a[k].t)
				   : store_bind_int(st, (int)k + 1, a[k].i);
		if (rc) {
			store_reset(st);
			*err = rc;
			return NULL;
		}
	}
	return st;
}

/* Statements this thread ran that may have written (changed a row, or
 * failed: on PostgreSQL a failed statement ends the transaction). A group
 * commit reads it around each body to tell a refusal that wrote nothing
 * (the batch goes on) from one that wrote (it cannot, without savepoints).
 * Every write of a body goes through sql_run. */
static _Thread_local uint64_t tl_writes;

/* Runs a statement that returns no rows; *changes (may be NULL) gets the rows
 * it changed. */
static int sql_run(store *s, const char *sql, int64_t *changes, const sqlarg *a, size_t n)
{
	int rc = 0;
	store_stmt *st = sql_open(s, sql, &rc, a, n);
	if (!st) {
		tl_writes++;
		return rc ? rc : ERR_STORE;
	}
	rc = store_step(st);
	int64_t changed = rc >= 0 ? store_changes(st) : 0;
	if (rc < 0 || changed > 0)
		tl_writes++;
	if (changes)
		*changes = changed;
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* stock_read, and into *last (when not NULL) the id of the sku's newest
 * ledger entry (0 when none). */
static int stock_read_last(store *s, const char *sku, int64_t *on_hand, int64_t *reserved,
			   int64_t *last)
{
	int rc = 0;
	store_stmt *st = sql_open(s, "SELECT on_hand, reserved, ledger_last FROM stock WHERE sku = ?",
				  &rc, ARGS(T(sku)));
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	if (rc == STORE_ROW) {
		*on_hand = store_col_int(st, 0);
		*reserved = store_col_int(st, 1);
		if (last)
			*last = store_col_is_null(st, 2) ? 0 : store_col_int(st, 2);
	}
	store_reset(st);
	return rc;
}

/* The stock row of sku: STORE_ROW with the figures, STORE_DONE when there
 * is none, or an error. */
static int stock_read(store *s, const char *sku, int64_t *on_hand, int64_t *reserved)
{
	return stock_read_last(s, sku, on_hand, reserved, NULL);
}

/* Runs a conditional UPDATE of sku's stock row: STORE_ROW with the row's
 * new figures (read back inside the same transaction, which now holds the
 * row) when it changed, STORE_DONE when its condition left it alone, or an
 * error. Not "UPDATE ... RETURNING": SQLite collects RETURNING rows in an
 * ephemeral table it creates for every run, which measured slower than
 * this second, cached statement. */
static int stock_update(store *s, const char *sql, const char *sku, int64_t *on_hand,
			int64_t *reserved, const sqlarg *a, size_t n)
{
	int64_t changed = 0;
	int rc = sql_run(s, sql, &changed, a, n);
	if (rc)
		return rc;
	if (changed != 1)
		return STORE_DONE;
	rc = stock_read(s, sku, on_hand, reserved);
	return rc == STORE_DONE ? ERR_INTERNAL : rc;
}

static int pend_flush(inventory *inv);
static void pend_clear(inventory *inv);

/* Runs body in one transaction on this thread's connection: commits when it
 * returns 0, rolls back otherwise. A "busy" or "serialize again" from the
 * database (or from body itself, when a conditional update lost a race)
 * runs the whole transaction again, up to TXN_TRIES times. Returns 0,
 * TXN_ABORT when body decided to roll back, or an error. Bodies may run more
 * than once, so they set every output afresh. */
static int run_txn(inventory *inv, int (*body)(inventory *, void *), void *arg)
{
	store *s = inv->ctx->store;
	int rc = 0;
	for (int attempt = 0; attempt < TXN_TRIES; attempt++) {
		rc = store_begin(s);
		inv->line_next = inv->ledger_next = 0;
		if (rc == 0) {
			rc = body(inv, arg);
			if (rc == 0)
				rc = pend_flush(inv);
			if (rc == 0)
				rc = store_commit(s);
			if (rc != 0) {
				pend_clear(inv);
				store_rollback(s);
			}
		}
		if (rc != ERR_RETRY && rc != ERR_BUSY)
			return rc;
		log_debug(inv->ctx->log, "transaction attempt %d: %s; running it again", attempt + 1,
			  err_name(rc));
	}
	return rc;
}

/* ---- group commit -------------------------------------------------------------- */

/* The daemon calls the engine from several threads at once. Rather than one
 * transaction each, queued at the database's write lock, concurrent write
 * requests share one: the first thread that finds no transaction running
 * becomes the leader, takes every queued operation (up to BATCH_MAX) and
 * runs them one after another inside one transaction; then it commits once,
 * and every waiter wakes to its own result, which is final and durable (as
 * the store is configured) only after that commit. A commit costs the same
 * for one operation as for sixty: on SQLite the pages the batch dirtied are
 * appended to the WAL once (a hot stock row or the tail of the ledger once,
 * not once per reservation); on PostgreSQL the WAL is flushed once. A lone
 * request runs alone, with no waiting.
 *
 * No savepoints: bodies check what can refuse them (a taken id, the stock
 * of every item, a reservation's state) before they write, so a refusal
 * (TXN_ABORT) leaves nothing to undo and the batch goes on. A body that
 * fails after writing (a store error, a race lost on PostgreSQL, a refusal
 * found late) cannot be undone alone: the transaction is rolled back, the
 * batch runs again without that operation, and the operation then runs in
 * a transaction of its own, where a rollback undoes exactly its work. */
typedef struct txn_waiter txn_waiter;

struct txn_op {
	int (*body)(inventory *, void *);
	void *arg;
	int rc; /* as run_txn returns it, once done */
	txn_waiter *w;
	txn_op *next;
};

/* A thread in txn_run_all, on its stack. It sleeps on its own semaphore
 * and is woken (posted) once: when its last op is done, or when it is to
 * lead the next batch; never by a batch it has no op in. pending is
 * changed under inv->mu, and read by its thread after the post without it
 * (the post orders the two). */
struct txn_waiter {
	sem_t sem;
	size_t pending; /* its ops not done yet */
};

static int retryable(int rc) { return rc == ERR_RETRY || rc == ERR_BUSY; }

/* batch_try's "the op at *bad failed after writing". */
#define BATCH_DIRTY 2

/* One transaction for the n ops of b; ops[i].rc is what its body returned.
 * Returns 0 once committed. BATCH_DIRTY (*bad its index) when a body
 * returned non-zero after writing, or an error when begin or the commit
 * failed; then the transaction is rolled back whole and every rc is void. */
static int batch_try(inventory *inv, txn_op **b, size_t n, size_t *bad)
{
	store *s = inv->ctx->store;
	int rc = store_begin(s);
	inv->line_next = inv->ledger_next = 0;
	inv->batching = 1;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t w0 = tl_writes;
		b[i]->rc = b[i]->body(inv, b[i]->arg);
		if (b[i]->rc < 0 || (b[i]->rc != 0 && tl_writes != w0)) {
			*bad = i;
			rc = BATCH_DIRTY;
		}
	}
	if (rc == 0)
		rc = pend_flush(inv);
	inv->batching = 0;
	if (rc == 0)
		rc = store_commit(s);
	if (rc) {
		pend_clear(inv);
		store_rollback(s);
		log_debug(inv->ctx->log, "group commit of %zu operations: %s", n,
			  rc == BATCH_DIRTY ? "an operation failed after writing" : err_name(rc));
	}
	return rc;
}

/* Runs the ops of b (n > 0) and sets each one's rc. */
static void batch_run(inventory *inv, txn_op **b, size_t n)
{
	metrics_count(inv->ctx->metrics, "inventory_group_commits_total", NULL, 1);
	metrics_count(inv->ctx->metrics, "inventory_group_commit_ops_total", NULL, n);
	/* b[0, m) run together; b[m, n) (taken out, in the order they failed)
	 * run alone afterwards. */
	size_t m = n;
	int rc = ERR_RETRY;
	for (int attempt = 0; m > 1 && attempt < TXN_TRIES;) {
		size_t bad = 0;
		rc = batch_try(inv, b, m, &bad);
		if (rc == BATCH_DIRTY) {
			metrics_count(inv->ctx->metrics, "inventory_group_commit_splits_total", NULL,
				      1);
			txn_op *out = b[bad];
			memmove(&b[bad], &b[bad + 1], (n - bad - 1) * sizeof(*b));
			b[n - 1] = out;
			m--;
			rc = ERR_RETRY;
			continue;
		}
		if (!retryable(rc))
			break;
		attempt++;
	}
	/* Alone: each op taken out, every op after a failure that was not its
	 * own (each then gets its own answer, also the error), or the last one
	 * left. */
	if (m > 1 && rc != 0)
		metrics_count(inv->ctx->metrics, "inventory_group_commit_failures_total", NULL, 1);
	for (size_t i = 0; i < n; i++)
		if (m <= 1 || rc != 0 || i >= m)
			b[i]->rc = run_txn(inv, b[i]->body, b[i]->arg);
}

/* A leader waits, up to LINGER_US, until expect ops are queued: as many as
 * the last batch held, or as there were writers in the engine during it if
 * more (a thread whose answer is out no longer counts as a writer): those
 * threads are coming back with their next request (building the answer to
 * the last one, reading the next) and joining now makes one commit of what
 * would be several. A lone writer (and the single-threaded simulator) never
 * waits;
 * the clock read here only bounds a wait, it is no figure of the engine. */
static void linger(inventory *inv, size_t expect)
{
	if (expect > BATCH_MAX)
		expect = BATCH_MAX;
	if (inv->queued >= expect)
		return;
	struct timespec until;
	clock_deadline(&until, CLOCK_MONOTONIC, LINGER_US);
	inv->lingering = expect;
	while (inv->queued < expect &&
	       pthread_cond_timedwait(&inv->linger_cv, &inv->mu, &until) == 0)
		;
	inv->lingering = 0;
}

/* Takes the next batch off the queue into batch (at most BATCH_MAX ops);
 * returns how many. Under inv->mu. */
static size_t batch_take(inventory *inv, txn_op **batch)
{
	size_t k = 0;
	while (inv->head && k < BATCH_MAX) {
		batch[k++] = inv->head;
		inv->head = inv->head->next;
	}
	if (!inv->head)
		inv->tail = NULL;
	inv->queued -= k;
	inv->peak = atomic_load(&inv->writers);
	inv->last = k;
	return k;
}

/* After a batch, under inv->mu: collects in wake the threads whose last op
 * it held, and the thread of the first op still queued, which leads next;
 * returns how many (at most k + 1). When that thread is self it leads
 * again without a post (*again set); with nothing queued the lead is let
 * go. The caller posts them after unlocking, so none wakes only to wait
 * for the mutex. */
static size_t batch_done(inventory *inv, txn_op **batch, size_t k, txn_waiter *self,
			 txn_waiter **wake, int *again)
{
	size_t nw = 0;
	*again = 0;
	for (size_t i = 0; i < k; i++) {
		txn_waiter *w = batch[i]->w;
		if (--w->pending == 0 && w != self)
			wake[nw++] = w;
	}
	if (!inv->head || inv->held)
		inv->leading = 0;
	else if (inv->head->w == self)
		*again = 1;
	else
		wake[nw++] = inv->head->w;
	return nw;
}

/* Runs the n ops (their body and arg set) in group commits with whatever
 * other threads submit meanwhile, and returns when every one has its rc.
 * The thread that finds no leader leads; a leader runs one batch, then
 * hands the lead to the thread of the oldest op still waiting, so a thread
 * sleeps until its answer is ready or its turn to lead comes. */
static void txn_run_all(inventory *inv, txn_op *ops, size_t n)
{
	txn_waiter self = { .pending = n };
	sem_init(&self.sem, 0, 0);
	pthread_mutex_lock(&inv->mu);
	for (size_t i = 0; i < n; i++) {
		ops[i].w = &self;
		ops[i].next = NULL;
		if (inv->tail)
			inv->tail->next = &ops[i];
		else
			inv->head = &ops[i];
		inv->tail = &ops[i];
	}
	inv->queued += n;
	size_t writers = atomic_fetch_add(&inv->writers, 1) + 1;
	if (writers > inv->peak)
		inv->peak = writers;
	/* Only the op it waits for wakes a lingering leader. */
	if (inv->lingering && inv->queued >= inv->lingering)
		pthread_cond_signal(&inv->linger_cv);
	int lead = !inv->leading && !inv->held;
	if (lead)
		inv->leading = 1;
	else
		pthread_mutex_unlock(&inv->mu);
	for (;;) {
		if (!lead) {
			while (sem_wait(&self.sem) != 0)
				;
			/* Done, or handed the lead (an op of its own still queued). */
			if (self.pending == 0)
				break;
			pthread_mutex_lock(&inv->mu);
		}
		linger(inv, inv->peak > inv->last ? inv->peak : inv->last);
		txn_op *batch[BATCH_MAX];
		size_t k = batch_take(inv, batch);
		pthread_mutex_unlock(&inv->mu);
		store_conn *own = NULL;
		if (inv->writer)
			own = store_conn_enter(inv->ctx->store, inv->writer);
		batch_run(inv, batch, k);
		if (inv->writer)
			store_conn_leave(inv->ctx->store, own);
		txn_waiter *wake[BATCH_MAX + 1];
		pthread_mutex_lock(&inv->mu);
		size_t nw = batch_done(inv, batch, k, &self, wake, &lead);
		if (!lead)
			pthread_mutex_unlock(&inv->mu);
		for (size_t i = 0; i < nw; i++)
			sem_post(&wake[i]->sem);
		if (!lead && self.pending == 0)
			break;
	}
	atomic_fetch_sub(&inv->writers, 1);
	sem_destroy(&self.sem);
}

void inventory_hold(void *eng, int on)
{
	inventory *inv = eng;
	pthread_mutex_lock(&inv->mu);
	inv->held = on;
	txn_waiter *next = NULL;
	if (!on && inv->head && !inv->leading) {
		inv->leading = 1;
		next = inv->head->w;
	}
	pthread_mutex_unlock(&inv->mu);
	if (next)
		sem_post(&next->sem);
}

size_t inventory_queued(void *eng)
{
	inventory *inv = eng;
	pthread_mutex_lock(&inv->mu);
	size_t n = inv->queued;
	pthread_mutex_unlock(&inv->mu);
	return n;
}

/* run_txn for a request: the same answer, in a shared transaction. */
static int txn_do(inventory *inv, int (*body)(inventory *, void *), void *arg)
{
	txn_op op = { .body = body, .arg = arg };
	txn_run_all(inv, &op, 1);
	return op.rc;
}

/* ---- ledger and outbox ------------------------------------------------------- */

/* A growing string for JSON text built by hand: the event payloads and the
 * reservation's stored forms are made for every reservation, and jansson's
 * build-a-tree-then-dump costs more than the rest of the request. Every
 * string that goes in is escaped (sb_str); the output is what
 * json_dumps(JSON_COMPACT) writes for the same object, byte for byte, so
 * fingerprints stored before this code still match. */
typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *grown = realloc(b->p, cap);
		if (!grown) {
			b->oom = 1;
			return;
		}
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_raw(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_int(sbuf *b, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", (long long)v);
	sb_put(b, num, (size_t)n);
}

/* s as a JSON string, escaped as jansson escapes it. */
static void sb_str(sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_put(b, run, (size_t)(s - run));
		char esc[8];
		switch (c) {
		case '"': sb_put(b, "\\\"", 2); break;
		case '\\': sb_put(b, "\\\\", 2); break;
		case '\b': sb_put(b, "\\b", 2); break;
		case '\f': sb_put(b, "\\f", 2); break;
		case '\n': sb_put(b, "\\n", 2); break;
		case '\r': sb_put(b, "\\r", 2); break;
		case '\t': sb_put(b, "\\t", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", c);
			sb_put(b, esc, 6);
			break;
		}
		run = s + 1;
	}
	sb_put(b, run, (size_t)(s - run));
	sb_put(b, "\"", 1);
}

/* key (a literal with its punctuation, '"a":' or ',"a":'), then a string or
 * an integer. */
static void sb_kstr(sbuf *b, const char *key, const char *v)
{
	sb_raw(b, key);
	sb_str(b, v);
}

static void sb_kint(sbuf *b, const char *key, int64_t v)
{
	sb_raw(b, key);
	sb_int(b, v);
}

/* One event of a stock change: {"type", "sku", "on_hand", "reserved",
 * "available", ["threshold",] "reason", "reference"}. */
static char *event_json(inventory *inv, const char *type, const char *sku, int64_t on_hand,
			int64_t reserved, int with_threshold, const char *reason,
			const char *reference)
{
	sbuf b = { .p = NULL };
	sb_kstr(&b, "{\"type\":", type);
	sb_kstr(&b, ",\"sku\":", sku);
	sb_kint(&b, ",\"on_hand\":", on_hand);
	sb_kint(&b, ",\"reserved\":", reserved);
	sb_kint(&b, ",\"available\":", on_hand - reserved);
	if (with_threshold)
		sb_kint(&b, ",\"threshold\":", inv->low_threshold);
	sb_kstr(&b, ",\"reason\":", reason);
	sb_kstr(&b, ",\"reference\":", reference);
	sb_raw(&b, "}");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* One event into the outbox (bus outbox_put), in the caller's transaction;
 * counted as a write (tl_writes) as sql_run counts its own. */
static int event_put(inventory *inv, const char *type, const char *sku, int64_t on_hand,
		     int64_t reserved, int with_threshold, const char *reason,
		     const char *reference, int64_t now, const char *tp)
{
	char *payload =
		event_json(inv, type, sku, on_hand, reserved, with_threshold, reason, reference);
	if (!payload)
		return ERR_NOMEM;
	tl_writes++;
	int rc = outbox_put(inv->ctx->store, "inventory", sku, payload, tp, now);
	free(payload);
	return rc;
}

/* Ids of stock_ledger entries, given out like reservation_items lines
 * (lines_take): after the largest, once per transaction; SQLite only. */
static int ledger_take(inventory *inv, int64_t *id)
{
	if (!inv->ledger_next) {
		int64_t last = 0;
		int rc = store_intf(inv->ctx->store, &last, "SELECT MAX(id) FROM stock_ledger", "");
		if (rc)
			return rc;
		inv->ledger_next = last + 1;
	}
	*id = inv->ledger_next++;
	return 0;
}

/* A ledger entry for a change just made to sku's stock row, which this
 * transaction holds: linked to the sku's newest entry before it (prev),
 * and made the newest (stock.ledger_last). The ledger of a sku is read
 * by following prev from ledger_last (get_ledger); there is no index on
 * sku, whose entries on 10,000 uniform skus were a random page written
 * per change. On SQLite the id is given out here; on PostgreSQL the
 * column's identity gives it (replicas write at once; the row lock taken
 * by the change orders the entries of a sku). */
static int ledger_put(inventory *inv, const char *sku, int64_t d_on_hand, int64_t d_reserved,
		      const char *reason, const char *reference, int64_t now)
{
	store *s = inv->ctx->store;
	int64_t prev = 0, id = 0;
	int rc = store_intf(s, &prev, "SELECT ledger_last FROM stock WHERE sku = ?", "t", sku);
	if (rc)
		return rc;
	if (inv->defer) {
		rc = ledger_take(inv, &id);
		if (rc == 0)
			rc = sql_run(s,
				     "INSERT INTO stock_ledger (id, sku, delta, reserved_delta, reason, "
				     "reference, at, prev) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				     NULL,
				     ARGS(I(id), T(sku), I(d_on_hand), I(d_reserved), T(reason),
					  T(reference), I(now), I(prev)));
	} else {
		tl_writes++;
		rc = store_intf(s, &id,
				"INSERT INTO stock_ledger (sku, delta, reserved_delta, reason, "
				"reference, at, prev) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
				"tiitiii", sku, d_on_hand, d_reserved, reason, reference, now, prev);
	}
	if (rc)
		return rc;
	return sql_run(s, "UPDATE stock SET ledger_last = ? WHERE sku = ?", NULL,
		       ARGS(I(id), T(sku)));
}

/* Records a change just made to sku's row (d_on_hand, d_reserved), which
 * left it at on_hand and reserved, in the ledger and the outbox, inside the
 * caller's transaction: a stock_changed event always, a low_stock event
 * when available crossed down to the threshold. tp is the W3C trace
 * context of the request that made the change (NULL when none), taken on
 * its own thread: a group commit runs it on the leader's. */
static int after_change(inventory *inv, const char *sku, int64_t on_hand, int64_t reserved,
			int64_t d_on_hand, int64_t d_reserved, const char *reason,
			const char *reference, int64_t now, const char *tp)
{
	int rc = ledger_put(inv, sku, d_on_hand, d_reserved, reason, reference, now);
	if (rc)
		return rc;
	int64_t available = on_hand - reserved;
	int64_t before = (on_hand - d_on_hand) - (reserved - d_reserved);
	rc = event_put(inv, "stock_changed", sku, on_hand, reserved, 0, reason, reference, now, tp);
	if (rc || !(before > inv->low_threshold && available <= inv->low_threshold))
		return rc;
	return event_put(inv, "low_stock", sku, on_hand, reserved, 1, reason, reference, now, tp);
}

/* ---- deferred writes ------------------------------------------------------------ */

/* On SQLite a write transaction keeps every other writer out from BEGIN
 * IMMEDIATE to its end, so what it read stays true until it writes it.
 * Reservations use that: the stock rows a transaction reads are kept here
 * with the units its reservations have taken so far, and their writes (the
 * stock rows, reservation_items, the ledger, the outbox) are held back and
 * written just before the commit, in a few statements for the whole batch:
 * a hot sku is read once and updated once per group commit instead of once
 * per reservation, and the other rows go in with multi-row INSERTs. The
 * reservation row itself is written at once: it claims the id. Only in
 * group commits of several operations (batching): alone, a reservation
 * writes at once, as there is nothing to share. Every other
 * body first writes what is held back (pend_settle), so it finds the
 * database as the transaction has made it. On PostgreSQL, where another
 * replica may change a row between a read and a write, reservations write
 * at once (defer is 0). */

static void pend_clear(inventory *inv)
{
	pend *p = &inv->pend;
	for (size_t i = 0; i < p->events.n; i++)
		free(p->events.v[i].payload);
	p->nstock = p->items.n = p->events.n = 0;
}

static pend_row *pend_add(pend_rows *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		pend_row *grown = realloc(r->v, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		r->v = grown;
		r->cap = cap;
	}
	return &r->v[r->n++];
}

enum pend_kind { PEND_ITEMS, PEND_LEDGER, PEND_EVENTS, PEND_KINDS };

/* The multi-row INSERTs: [kind][log2 of the rows], made once. */
#define PEND_SQL_MAX 1024
static char pend_sql[PEND_KINDS][PEND_SIZES][PEND_SQL_MAX];
static pthread_once_t pend_sql_once = PTHREAD_ONCE_INIT;
static const size_t pend_nargs[PEND_KINDS] = { 4, 6, 4 };

static void pend_sql_make(void)
{
	static const char *const head[PEND_KINDS] = {
		"INSERT INTO reservation_items (line, reservation_id, sku, qty) VALUES ",
		"INSERT INTO stock_ledger (id, sku, delta, reserved_delta, reason, reference, at, "
		"prev) VALUES ",
		"INSERT INTO outbox (topic, key, payload, created_at, traceparent) VALUES ",
	};
	static const char *const row[PEND_KINDS] = { "(?, ?, ?, ?)", "(?, ?, 0, ?, 'reserve', ?, ?, ?)",
						     "('inventory', ?, ?, ?, ?)" };
	for (int kind = 0; kind < PEND_KINDS; kind++)
		for (int z = 0; z < PEND_SIZES; z++) {
			char *sql = pend_sql[kind][z];
			size_t len = (size_t)snprintf(sql, PEND_SQL_MAX, "%s", head[kind]);
			for (int i = 0; i < 1 << z && len < PEND_SQL_MAX; i++)
				len += (size_t)snprintf(sql + len, PEND_SQL_MAX - len, "%s%s",
							i ? ", " : "", row[kind]);
		}
}

/* Inserts rows v[0, n) of one kind, PEND_CHUNK (then halves of it) to a
 * statement, in order. */
static int pend_insert(store *s, enum pend_kind kind, const pend_row *v, size_t n)
{
	pthread_once(&pend_sql_once, pend_sql_make);
	sqlarg a[PEND_CHUNK * 6];
	for (size_t at = 0; at < n;) {
		int z = PEND_SIZES - 1;
		while ((size_t)1 << z > n - at)
			z--;
		size_t k = (size_t)1 << z;
		for (size_t i = 0; i < k; i++) {
			const pend_row *r = &v[at + i];
			sqlarg *x = &a[i * pend_nargs[kind]];
			if (kind == PEND_ITEMS) {
				x[0] = I(r->line);
				x[1] = T(r->id);
				x[2] = T(r->sku);
				x[3] = I(r->qty);
			} else if (kind == PEND_LEDGER) {
				x[0] = I(r->entry);
				x[1] = T(r->sku);
				x[2] = I(r->qty);
				x[3] = T(r->id);
				x[4] = I(r->at);
				x[5] = I(r->prev);
			} else {
				x[0] = T(r->sku);
				x[1] = T(r->payload);
				x[2] = I(r->at);
				x[3] = T(r->tp);
			}
		}
		int rc = sql_run(s, pend_sql[kind][z], NULL, a, k * pend_nargs[kind]);
		if (rc)
			return rc;
		at += k;
	}
	return 0;
}

/* Writes what the transaction's reservations hold back, and forgets it. */
static int pend_flush(inventory *inv)
{
	pend *p = &inv->pend;
	if (!p->nstock && !p->items.n && !p->events.n)
		return 0;
	store *s = inv->ctx->store;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < p->nstock; i++) {
		const pend_stock *ps = &p->stock[i];
		if (ps->held == ps->reserved)
			continue;
		/* Only while the row is as read, which on SQLite it is. */
		int64_t changed = 0;
		rc = sql_run(s,
			     "UPDATE stock SET reserved = ?, updated_at = ?, ledger_last = ? "
			     "WHERE sku = ? AND on_hand = ? AND reserved = ?",
			     &changed,
			     ARGS(I(ps->held), I(ps->at), I(ps->last), T(ps->sku), I(ps->on_hand),
				  I(ps->reserved)));
		if (rc == 0 && changed != 1) {
			log_error(inv->ctx->log, "stock of %s changed under its transaction", ps->sku);
			rc = ERR_INTERNAL;
		}
	}
	if (rc == 0)
		rc = pend_insert(s, PEND_ITEMS, p->items.v, p->items.n);
	if (rc == 0)
		rc = pend_insert(s, PEND_LEDGER, p->items.v, p->items.n);
	if (rc == 0)
		rc = pend_insert(s, PEND_EVENTS, p->events.v, p->events.n);
	pend_clear(inv);
	return rc;
}

/* pend_flush before a body that reads or writes the database itself. The
 * writes are earlier reservations', not the caller's own (batch_try). */
static int pend_settle(inventory *inv)
{
	uint64_t w = tl_writes;
	int rc = pend_flush(inv);
	if (rc == 0)
		tl_writes = w;
	return rc;
}

/* The stock row of sku as this transaction has it: kept (*kept, when
 * deferring), or read. STORE_ROW, STORE_DONE or an error. There must be
 * room for one more kept row. */
static int stock_get(inventory *inv, const char *sku, int64_t *on_hand, int64_t *reserved,
		     pend_stock **kept)
{
	pend *p = &inv->pend;
	int defer = inv->defer && inv->batching;
	*kept = NULL;
	if (defer)
		for (size_t i = 0; i < p->nstock; i++)
			if (strcmp(p->stock[i].sku, sku) == 0) {
				*kept = &p->stock[i];
				*on_hand = p->stock[i].on_hand;
				*reserved = p->stock[i].held;
				return STORE_ROW;
			}
	int64_t last = 0;
	int rc = stock_read_last(inv->ctx->store, sku, on_hand, reserved, &last);
	if (rc == STORE_ROW && defer && p->nstock < PEND_SKUS) {
		*kept = &p->stock[p->nstock++];
		**kept = (pend_stock){ .sku = sku, .on_hand = *on_hand, .reserved = *reserved,
				       .held = *reserved, .last = last };
	}
	return rc;
}

/* Holds back a reservation's item: qty more units of ps reserved at now,
 * with its items row, its ledger entry and its events. */
static int pend_reserve(inventory *inv, pend_stock *ps, const char *id, int64_t line,
			int64_t qty, int64_t now, const char *tp)
{
	pend *p = &inv->pend;
	tl_writes++;
	int64_t before = ps->on_hand - ps->held;
	ps->held += qty;
	ps->at = now;
	int64_t available = ps->on_hand - ps->held;
	pend_row *r = pend_add(&p->items);
	if (!r)
		return ERR_NOMEM;
	int64_t entry = 0;
	int rc = ledger_take(inv, &entry);
	if (rc) {
		p->items.n--;
		return rc;
	}
	*r = (pend_row){ .sku = ps->sku, .id = id, .line = line, .entry = entry, .prev = ps->last,
			 .qty = qty, .at = now };
	ps->last = entry;
	for (int low = 0; low < 2; low++) {
		if (low && !(before > inv->low_threshold && available <= inv->low_threshold))
			break;
		r = pend_add(&p->events);
		if (!r)
			return ERR_NOMEM;
		*r = (pend_row){ .sku = ps->sku, .at = now, .tp = tp };
		r->payload = event_json(inv, low ? "low_stock" : "stock_changed", ps->sku,
					ps->on_hand, ps->held, low, "reserve", id);
		if (!r->payload) {
			p->events.n--;
			return ERR_NOMEM;
		}
	}
	return 0;
}

/* ---- validation and replies --------------------------------------------------- */

static int valid_token(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '_')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

/* The same alphabet as the catalog's skus. */
static int valid_sku(const char *s) { return s && valid_token(s, SKU_MAX); }

/* Reservation and order ids may also carry ':' (ids derived from an order
 * and a step). */
static int valid_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.:", s[i]))
			return 0;
	return 1;
}

static void store_failed(inventory *inv, msg_resp *resp, int rc, const char *what)
{
	/* Still busy after every retry: the caller may try again later. */
	engine_store_error(inv->ctx, resp, rc == ERR_RETRY ? ERR_BUSY : rc, what);
}

static void no_stock(msg_resp *resp, const char *sku)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "no stock record for sku '%s'", sku);
	msg_resp_error(resp, 404, "not_found", msg, json_pack("{s:s}", "sku", sku));
}

static void no_reservation(msg_resp *resp, const char *id)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "no reservation '%s'", id);
	msg_resp_error(resp, 404, "not_found", msg, json_pack("{s:s}", "reservation_id", id));
}

/* A stock row as the API shows it; low_stock says whether available is at
 * or below inventory.low_stock_threshold (what the console highlights). */
static json_t *stock_json(const inventory *inv, const char *sku, int64_t on_hand,
			  int64_t reserved)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:b}", "sku", sku, "on_hand", (json_int_t)on_hand,
			 "reserved", (json_int_t)reserved, "available",
			 (json_int_t)(on_hand - reserved), "low_stock",
			 on_hand - reserved <= inv->low_threshold);
}

static void count(inventory *inv, const char *name, const char *result)
{
	char labels[64];
	snprintf(labels, sizeof(labels), "result=\"%s\"", result);
	metrics_count(inv->ctx->metrics, name, labels, 1);
}

/* ---- stock ------------------------------------------------------------------- */

static void get_stock(void *ud, msg_req *req, msg_resp *resp)
{
	inventory *inv = ud;
	const char *sku = msg_req_param(req, 0);
	if (!valid_sku(sku)) {
		no_stock(resp, sku ? sku : "");
		return;
	}
	int64_t on_hand = 0, reserved = 0;
	int rc = stock_read(inv->ctx->store, sku, &on_hand, &reserved);
	if (rc == STORE_ROW)
		msg_resp_json(resp, 200, stock_json(inv, sku, on_hand, reserved));
	else if (rc == STORE_DONE)
		no_stock(resp, sku);
	else
		store_failed(inv, resp, rc, "get stock");
}

typedef struct set_op {
	const char *sku;
	const char *reference;
	int64_t on_hand;
	int64_t now;
	int64_t old_on_hand; /* out */
	int64_t reserved;    /* out */
	int below;           /* out: on_hand would fall under reserved */
	const char *tp;      /* the request's trace context, or NULL */
	char tp_buf[TRACE_PARENT_SIZE];
} set_op;

static int set_body(inventory *inv, void *arg)
{
	set_op *op = arg;
	store *s = inv->ctx->store;
	op->below = 0;
	int rc = pend_settle(inv);
	if (rc)
		return rc;
	/* Refused before anything is written (see batch_try). */
	rc = stock_read(s, op->sku, &op->old_on_hand, &op->reserved);
	if (rc < 0)
		return rc;
	if (rc == STORE_ROW && op->on_hand < op->reserved) {
		op->below = 1;
		return TXN_ABORT;
	}
	if (rc == STORE_DONE) {
		rc = sql_run(s,
			     "INSERT INTO stock (sku, on_hand, reserved, updated_at) "
			     "VALUES (?, 0, 0, ?) ON CONFLICT (sku) DO NOTHING",
			     NULL, ARGS(T(op->sku), I(op->now)));
		if (rc)
			return rc;
		rc = stock_read(s, op->sku, &op->old_on_hand, &op->reserved);
		if (rc != STORE_ROW)
			return rc < 0 ? rc : ERR_RETRY;
		if (op->on_hand < op->reserved) {
			op->below = 1;
			return TXN_ABORT;
		}
	}
	if (op->on_hand == op->old_on_hand)
		return 0;
	/* Conditional on the figures just read: on PostgreSQL a commit may
	 * slip in between, and the ledger's delta must be the real one. */
	int64_t on_hand = 0;
	rc = stock_update(s,
			  "UPDATE stock SET on_hand = ?, updated_at = ? "
			  "WHERE sku = ? AND on_hand = ? AND reserved <= ?",
			  op->sku, &on_hand, &op->reserved,
			  ARGS(I(op->on_hand), I(op->now), T(op->sku), I(op->old_on_hand),
			       I(op->on_hand)));
	if (rc != STORE_ROW)
		return rc < 0 ? rc : ERR_RETRY;
	return after_change(inv, op->sku, on_hand, op->reserved, op->on_hand - op->old_on_hand, 0,
			    "set", op->reference, op->now, op->tp);
}

static void set_stock(void *ud, msg_req *req, msg_resp *resp)
{
	inventory *inv = ud;
	const char *sku = msg_req_param(req, 0);
	if (engine_require_admin(inv->ctx, req, resp))
		return;
	if (!valid_sku(sku)) {
		engine_bad_field(resp, "sku",
				 "must be 1-64 characters of letters, digits, '-', '_', '.'");
		return;
	}
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	set_op op = { .sku = sku, .reference = "admin", .now = clock_now(inv->ctx->clock) };
	op.tp = engine_traceparent(inv->ctx, op.tp_buf, sizeof(op.tp_buf));
	jval_error e = { { 0 }, { 0 } };
	const char *body_sku = NULL;
	if (jval_str(body, "sku", 0, 1, SKU_MAX, &body_sku, &e) ||
	    (body_sku && strcmp(body_sku, sku) != 0 &&
	     jval_fail(&e, "sku", "must match the sku in the path")) ||
	    jval_int(body, "on_hand", 1, 0, ON_HAND_MAX, &op.on_hand, NULL, &e)) {
		engine_bad_field(resp, e.field, e.message);
		json_decref(body);
		return;
	}
	json_decref(body);
	int rc = txn_do(inv, set_body, &op);
	if (rc == TXN_ABORT && op.below) {
		char msg[256];
		snprintf(msg, sizeof(msg),
			 "cannot set on_hand of '%s' to %lld: %lld units are reserved; release or "
			 "commit them first",
			 sku, (long long)op.on_hand, (long long)op.reserved);
		msg_resp_error(resp, 409, "conflict", msg,
			       json_pack("{s:s,s:I,s:I}", "sku", sku, "on_hand",
					 (json_int_t)op.on_hand, "reserved", (json_int_t)op.reserved));
	} else if (rc) {
		store_failed(inv, resp, rc, "set stock");
	} else {
		if (op.on_hand != op.old_on_hand)
			log_info(inv->ctx->log, "stock of %s set: on_hand %lld -> %lld", sku,
				 (long long)op.old_on_hand, (long long)op.on_hand);
		msg_resp_json(resp, 200, stock_json(inv, sku, op.on_hand, op.reserved));
	}
}

/* GET /v1/inventory/{sku}/ledger?limit=N: the newest entries first, so an
 * operator can see where a figure came from. */
static void get_ledger(void *ud, msg_req *req, msg_resp *resp)
{
	inventory *inv = ud;
	const char *sku = msg_req_param(req, 0);
	if (engine_require_admin(inv->ctx, req, resp))
		return;
	if (!valid_sku(sku)) {
		no_stock(resp, sku ? sku : "");
		return;
	}
	int64_t limit = 50;
	char buf[32];
	int q = msg_req_query(req, "limit", buf, sizeof(buf));
	if (q != 0) {
		char *end;
		errno = 0;
		long long v = q > 0 ? strtoll(buf, &end, 10) : 0;
		if (q < 0 || !buf[0] || errno || *end || v < 1 || v > LEDGER_PAGE_MAX) {
			engine_bad_field(resp, "limit", "must be an integer between 1 and 500");
			return;
		}
		limit = v;
	}
	store *s = inv->ctx->store;
	int64_t on_hand = 0, reserved = 0, id = 0;
	int rc = stock_read_last(s, sku, &on_hand, &reserved, &id);
	if (rc == STORE_DONE) {
		no_stock(resp, sku);
		return;
	}
	if (rc < 0) {
		store_failed(inv, resp, rc, "read ledger");
		return;
	}
	/* Newest first: from stock.ledger_last back along prev (ledger_put). */
	json_t *entries = json_array();
	for (int64_t n = 0; rc >= 0 && id > 0 && n < limit; n++) {
		store_stmt *st = sql_open(s,
					  "SELECT id, delta, reserved_delta, reason, reference, at, "
					  "prev, sku FROM stock_ledger WHERE id = ?",
					  &rc, ARGS(I(id)));
		if (!st) {
			rc = rc ? rc : ERR_STORE;
			break;
		}
		rc = store_step(st);
		const char *of = rc == STORE_ROW ? store_col_text(st, 7) : NULL;
		if (rc == STORE_ROW && of && strcmp(of, sku) == 0) {
			char at[40];
			clock_fmt_rfc3339(store_col_int(st, 5), at, sizeof(at));
			json_array_append_new(
				entries,
				json_pack("{s:I,s:I,s:I,s:s,s:s,s:s}", "id",
					  (json_int_t)store_col_int(st, 0), "delta",
					  (json_int_t)store_col_int(st, 1), "reserved_delta",
					  (json_int_t)store_col_int(st, 2), "reason",
					  store_col_text(st, 3), "reference", store_col_text(st, 4),
					  "at", at));
			id = store_col_is_null(st, 6) ? 0 : store_col_int(st, 6);
		} else {
			id = 0; /* the chain ends (an entry taken out by hand) */
		}
		store_reset(st);
	}
	if (rc < 0) {
		json_decref(entries);
		store_failed(inv, resp, rc, "read ledger");
		return;
	}
	json_t *out = stock_json(inv, sku, on_hand, reserved);
	json_object_set_new(out, "entries", entries);
	msg_resp_json(resp, 200, out);
}

/* ---- reserving ----------------------------------------------------------------- */

typedef struct res_item {
	const char *sku;
	int64_t qty;
	int64_t on_hand, reserved; /* scratch of reserve_body: the row as read */
	pend_stock *kept;          /* and where it is kept, when deferring */
} res_item;

typedef struct reserve_op {
	const char *id;
	const char *order_id;
	res_item *items; /* sorted by sku */
	size_t n;
	int64_t ttl_s;
	int64_t now;
	int64_t expires_at;
	char *fingerprint;
	char *response;
	/* the outcome when the body rolls back */
	int exists;          /* the reservation_id is taken */
	const char *missing; /* a sku without a stock row */
	size_t short_at;     /* the item that did not fit, when is_short */
	int is_short;
	int64_t available;
	const char *tp; /* the request's trace context, or NULL */
	char tp_buf[TRACE_PARENT_SIZE];
} reserve_op;

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const res_item *)a)->sku, ((const res_item *)b)->sku);
}

/* Whether reservation id exists: STORE_ROW, STORE_DONE or an error. */
static int reservation_exists(store *s, const char *id)
{
	int rc = 0;
	store_stmt *st = sql_open(s, "SELECT 1 FROM reservations WHERE reservation_id = ?", &rc,
				  ARGS(T(id)));
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	store_reset(st);
	return rc;
}

/* Reads the stock of every item (into its scratch figures) and decides,
 * before anything is written, whether the reservation can be held: TXN_ABORT
 * with the reason set when it cannot (a taken id beats an unknown sku, which
 * beats a short one), 0 when it can, or an error. */
static int reserve_check(inventory *inv, reserve_op *op)
{
	store *s = inv->ctx->store;
	for (size_t i = 0; i < op->n && !op->missing; i++) {
		res_item *it = &op->items[i];
		int rc = stock_get(inv, it->sku, &it->on_hand, &it->reserved, &it->kept);
		if (rc < 0)
			return rc;
		if (rc == STORE_DONE) {
			op->missing = it->sku;
		} else if (!op->is_short && it->on_hand - it->reserved < it->qty) {
			op->is_short = 1;
			op->short_at = i;
			op->available = it->on_hand - it->reserved;
		}
	}
	if (!op->missing && !op->is_short)
		return 0;
	int rc = reservation_exists(s, op->id);
	if (rc < 0)
		return rc;
	if (rc == STORE_ROW) {
		op->exists = 1;
		op->missing = NULL;
		op->is_short = 0;
	}
	return TXN_ABORT;
}

/* Item i did not fit after all, found by its update (on PostgreSQL another
 * transaction took the units since they were read): what the refusal
 * says, read again inside this transaction. */
static int reserve_short(inventory *inv, reserve_op *op, size_t i)
{
	res_item *it = &op->items[i];
	int rc = stock_read(inv->ctx->store, it->sku, &it->on_hand, &it->reserved);
	if (rc < 0)
		return rc;
	if (rc == STORE_DONE) {
		op->missing = it->sku;
	} else {
		op->is_short = 1;
		op->short_at = i;
		op->available = it->on_hand - it->reserved;
	}
	return TXN_ABORT;
}

/* Gives out n lines of reservation_items for one reservation, from
 * *first on: after the largest line there is, read once per transaction
 * and counted on here. SQLite only (inv->defer): there BEGIN IMMEDIATE
 * keeps every other writer out until the commit. On PostgreSQL a replica's
 * transaction could take the same lines, so there the database numbers
 * the lines (the column's identity) and the reservation's range is set
 * after its items are in (reserve_body). */
static int lines_take(inventory *inv, size_t n, int64_t *first)
{
	if (!inv->line_next) {
		int64_t last = 0;
		int rc = store_intf(inv->ctx->store, &last,
				    "SELECT MAX(line) FROM reservation_items", "");
		if (rc)
			return rc;
		inv->line_next = last + 1;
	}
	*first = inv->line_next;
	inv->line_next += (int64_t)n;
	return 0;
}

/* Inserts an item with the line the database gives it (PostgreSQL's
 * identity), into *line. */
static int item_insert(store *s, const char *id, const char *sku, int64_t qty, int64_t *line)
{
	tl_writes++;
	return store_intf(s, line,
			  "INSERT INTO reservation_items (reservation_id, sku, qty) "
			  "VALUES (?, ?, ?) RETURNING line",
			  "tti", id, sku, qty);
}

static int reserve_body(inventory *inv, void *arg)
{
	reserve_op *op = arg;
	store *s = inv->ctx->store;
	op->exists = op->is_short = 0;
	op->missing = NULL;
	/* Room to keep every item's stock row. */
	int rc = inv->defer && inv->pend.nstock + op->n > PEND_SKUS ? pend_settle(inv) : 0;
	if (rc)
		return rc;
	rc = reserve_check(inv, op);
	if (rc)
		return rc;
	/* Its items' lines: given out now (SQLite), or numbered by the
	 * database as they go in (PostgreSQL; the range is set after them). */
	int64_t line = 0, first = 0, last = 0;
	if (inv->defer) {
		rc = lines_take(inv, op->n, &line);
		if (rc)
			return rc;
		first = line;
		last = line + (int64_t)op->n - 1;
	}
	/* Claim the id: a concurrent duplicate waits here (PostgreSQL) or at
	 * BEGIN (SQLite), then finds the row and answers as a replay; so does
	 * a duplicate earlier in the same group commit. */
	int64_t changed = 0;
	rc = sql_run(s,
		     "INSERT INTO reservations (reservation_id, order_id, status, fingerprint, "
		     "response, ttl_s, created_at, expires_at, updated_at, lines_from, lines_to) "
		     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (reservation_id) DO NOTHING",
		     &changed,
		     ARGS(T(op->id), T(op->order_id), T(state_names[INVENTORY_HELD]),
			  T(op->fingerprint), T(""), I(op->ttl_s), I(op->now),
			  I(op->expires_at), I(op->now), I(first), I(last)));
	if (rc == ERR_CONFLICT || (rc == 0 && changed == 0)) {
		op->exists = 1;
		return TXN_ABORT;
	}
	if (rc)
		return rc;
	/* In sku order, so two transactions lock rows in the same order. */
	for (size_t i = 0; i < op->n; i++) {
		res_item *it = &op->items[i];
		if (it->kept) {
			rc = pend_reserve(inv, it->kept, op->id, line + (int64_t)i, it->qty, op->now,
					  op->tp);
			if (rc)
				return rc;
			continue;
		}
		/* Only while the row is as read: then its new figures are known
		 * without reading it back. On SQLite always (BEGIN IMMEDIATE
		 * keeps other writers out); on PostgreSQL another transaction may
		 * have changed it, and the update relative to what is there now
		 * decides. */
		rc = sql_run(s,
			     "UPDATE stock SET reserved = ?, updated_at = ? "
			     "WHERE sku = ? AND on_hand = ? AND reserved = ?",
			     &changed,
			     ARGS(I(it->reserved + it->qty), I(op->now), T(it->sku), I(it->on_hand),
				  I(it->reserved)));
		if (rc)
			return rc;
		int64_t on_hand = it->on_hand, reserved = it->reserved + it->qty;
		if (changed != 1) {
			rc = stock_update(s,
					  "UPDATE stock SET reserved = reserved + ?, updated_at = ? "
					  "WHERE sku = ? AND on_hand - reserved >= ?",
					  it->sku, &on_hand, &reserved,
					  ARGS(I(it->qty), I(op->now), T(it->sku), I(it->qty)));
			if (rc < 0)
				return rc;
			if (rc != STORE_ROW)
				return reserve_short(inv, op, i);
		}
		if (inv->defer)
			rc = sql_run(s,
				     "INSERT INTO reservation_items (line, reservation_id, sku, qty) "
				     "VALUES (?, ?, ?, ?)",
				     NULL,
				     ARGS(I(line + (int64_t)i), T(op->id), T(it->sku), I(it->qty)));
		else
			rc = item_insert(s, op->id, it->sku, it->qty, i ? &last : &first);
		if (rc)
			return rc;
		rc = after_change(inv, it->sku, on_hand, reserved, 0, it->qty, "reserve", op->id,
				  op->now, op->tp);
		if (rc)
			return rc;
	}
	if (!inv->defer)
		rc = sql_run(s,
			     "UPDATE reservations SET lines_from = ?, lines_to = ? "
			     "WHERE reservation_id = ?",
			     NULL, ARGS(I(first), I(op->n > 1 ? last : first), T(op->id)));
	return rc;
}

/* Reads the reservation and its items into a request's parts. Fills resp
 * with 400 on a bad field. */
static int reserve_parse(json_t *body, reserve_op *op, msg_resp *resp)
{
	jval_error e = { { 0 }, { 0 } };
	if (jval_str(body, "reservation_id", 1, 1, ID_MAX, &op->id, &e) ||
	    (!valid_id(op->id) &&
	     jval_fail(&e, "reservation_id", "must be 1-64 letters, digits, '-', '_', '.', ':'")) ||
	    jval_str(body, "order_id", 1, 1, ID_MAX, &op->order_id, &e) ||
	    (!valid_id(op->order_id) &&
	     jval_fail(&e, "order_id", "must be 1-64 letters, digits, '-', '_', '.', ':'")) ||
	    jval_int(body, "ttl_s", 1, 1, TTL_MAX, &op->ttl_s, NULL, &e))
		return engine_bad_field(resp, e.field, e.message);
	json_t *arr = json_object_get(body, "items");
	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > ITEMS_MAX)
		return engine_bad_field(resp, "items", "must be an array of 1 to 100 items {sku, qty}");
	op->n = json_array_size(arr);
	op->items = calloc(op->n, sizeof(*op->items));
	if (!op->items) {
		msg_resp_error(resp, 500, "internal", "out of memory", NULL);
		return ERR_NOMEM;
	}
	for (size_t i = 0; i < op->n; i++) {
		json_t *item = json_array_get(arr, i);
		char field[96];
		snprintf(field, sizeof(field), "items[%zu]", i);
		if (!json_is_object(item))
			return engine_bad_field(resp, field, "must be an object {sku, qty}");
		res_item *it = &op->items[i];
		if (jval_str(item, "sku", 1, 1, SKU_MAX, &it->sku, &e) ||
		    (!valid_sku(it->sku) &&
		     jval_fail(&e, "sku", "must be 1-64 characters of letters, digits, '-', '_', '.'")) ||
		    jval_int(item, "qty", 1, 1, QTY_MAX, &it->qty, NULL, &e)) {
			snprintf(field, sizeof(field), "items[%zu].%s", i, e.field);
			return engine_bad_field(resp, field, e.message);
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(op->items[j].sku, it->sku) == 0) {
				char msg[160];
				snprintf(field, sizeof(field), "items[%zu].sku", i);
				snprintf(msg, sizeof(msg),
					 "repeats sku '%s' of items[%zu]; give each sku once", it->sku,
					 j);
				return engine_bad_field(resp, field, msg);
			}
		}
	}
	return 0;
}

/* The body of the 201 for the reservation op asks for, expiring at
 * expires_at: the JSON that json_dumps(COMPACT) made of the reservation
 * object before (sbuf). malloc'd, or NULL. A replay builds it again from
 * the request (equal to the first one: the fingerprints matched) and the
 * stored expires_at, so this must keep writing what it wrote for the
 * reservations stored without their body (see reserve_replay). */
static char *reserve_response(const reserve_op *op, int64_t expires_at)
{
	sbuf out = { .p = NULL };
	char expires[40];
	clock_fmt_rfc3339(expires_at, expires, sizeof(expires));
	sb_kstr(&out, "{\"reservation_id\":", op->id);
	sb_kstr(&out, ",\"order_id\":", op->order_id);
	sb_kstr(&out, ",\"status\":", state_names[INVENTORY_HELD]);
	sb_kstr(&out, ",\"expires_at\":", expires);
	sb_kint(&out, ",\"ttl_s\":", op->ttl_s);
	sb_raw(&out, ",\"items\":[");
	for (size_t i = 0; i < op->n; i++) {
		sb_kstr(&out, i ? ",{\"sku\":" : "{\"sku\":", op->items[i].sku);
		sb_kint(&out, ",\"qty\":", op->items[i].qty);
		sb_raw(&out, "}");
	}
	sb_raw(&out, "]}");
	if (out.oom) {
		free(out.p);
		return NULL;
	}
	return out.p;
}

/* The canonical request (order, ttl, items in sku order), kept with the
 * reservation, and the body of its 201: the JSON that json_dumps(COMPACT)
 * made of ["order", ttl, [["sku", qty], ...]] before (sbuf), so a replay of
 * a reservation stored then still matches. */
static int reserve_prepare(reserve_op *op)
{
	qsort(op->items, op->n, sizeof(*op->items), item_cmp);
	sbuf fp = { .p = NULL };
	sb_raw(&fp, "[");
	sb_str(&fp, op->order_id);
	sb_kint(&fp, ",", op->ttl_s);
	sb_raw(&fp, ",[");
	for (size_t i = 0; i < op->n; i++) {
		sb_raw(&fp, i ? ",[" : "[");
		sb_str(&fp, op->items[i].sku);
		sb_kint(&fp, ",", op->items[i].qty);
		sb_raw(&fp, "]");
	}
	sb_raw(&fp, "]]");
	op->fingerprint = fp.p;
	op->response = reserve_response(op, op->expires_at);
	return fp.oom || !op->response ? ERR_NOMEM : 0;
}

/* A reservation_id seen before: the first response again when the request
 * is the same, 422 when it is not. Reservations written before
 * 2026-11-26 keep their first response (column response); later ones
 * leave the column empty, and the body is built again, byte for byte, from
 * the request (the same, as the fingerprints say) and the stored
 * expires_at: the row is a third of the size, and a group commit of
 * reservations writes fewer pages. 0 when answered,
 * ERR_NOT_FOUND when the row is not there after all. */
static int reserve_replay(inventory *inv, reserve_op *op, msg_resp *resp)
{
	int rc = 0;
	store_stmt *st =
		sql_open(inv->ctx->store,
			 "SELECT fingerprint, response, expires_at FROM reservations "
			 "WHERE reservation_id = ?",
			 &rc, ARGS(T(op->id)));
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	if (rc == STORE_ROW) {
		const char *fp = store_col_text(st, 0);
		const char *body = store_col_text(st, 1);
		if (fp && body && strcmp(fp, op->fingerprint) == 0) {
			char *built = *body ? NULL : reserve_response(op, store_col_int(st, 2));
			if (!*body && !built) {
				store_reset(st);
				return ERR_NOMEM;
			}
			msg_resp_set(resp, 201, "application/json", built ? built : body,
				     strlen(built ? built : body));
			free(built);
			count(inv, "inventory_reservations_total", "replayed");
		} else {
			msg_resp_error(resp, 422, "idempotency_mismatch",
				       "this reservation_id was used for a different request",
				       json_pack("{s:s}", "reservation_id", op->id));
			count(inv, "inventory_reservations_total", "mismatch");
		}
		rc = 0;
	} else if (rc == STORE_DONE) {
		rc = ERR_NOT_FOUND;
	}
	store_reset(st);
	return rc;
}

static void reserve(void *ud, msg_req *req, msg_resp *resp)
{
	inventory *inv = ud;
	if (engine_require_service(inv->ctx, req, resp))
		return;
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	reserve_op op = { .now = clock_now(inv->ctx->clock) };
	op.tp = engine_traceparent(inv->ctx, op.tp_buf, sizeof(op.tp_buf));
	if (reserve_parse(body, &op, resp))
		goto done;
	op.expires_at = op.now + op.ttl_s * 1000000LL;
	if (reserve_prepare(&op)) {
		msg_resp_error(resp, 500, "internal", "out of memory", NULL);
		goto done;
	}
	int rc = 0;
	/* A second round only when a taken id vanished before it could be read
	 * back, which nothing does today. */
	for (int round = 0; round < 2; round++) {
		rc = txn_do(inv, reserve_body, &op);
		if (rc != TXN_ABORT || !op.exists)
			break;
		rc = reserve_replay(inv, &op, resp);
		if (rc != ERR_NOT_FOUND)
			break;
	}
	if (rc == 0 && !op.exists) {
		msg_resp_set(resp, 201, "application/json", op.response, strlen(op.response));
		count(inv, "inventory_reservations_total", "held");
	} else if (rc == TXN_ABORT && op.missing) {
		no_stock(resp, op.missing);
		count(inv, "inventory_reservations_total", "unknown_sku");
	} else if (rc == TXN_ABORT && op.is_short) {
		const res_item *it = &op.items[op.short_at];
		char msg[200];
		snprintf(msg, sizeof(msg), "not enough stock of '%s': %lld requested, %lld available",
			 it->sku, (long long)it->qty, (long long)op.available);
		msg_resp_error(resp, 409, "insufficient_stock", msg,
			       json_pack("{s:s,s:I,s:I}", "sku", it->sku, "requested",
					 (json_int_t)it->qty, "available",
					 (json_int_t)op.available));
		count(inv, "inventory_reservations_total", "insufficient");
	} else if (rc < 0) {
		store_failed(inv, resp, rc, "reserve");
	} /* else: answered by reserve_replay */
done:
	free(op.items);
	free(op.fingerprint);
	free(op.response);
	json_decref(body);
}

/* ---- commit, release, expiry ---------------------------------------------------- */

/* Moves reservation id from -> to. An edge outside the state machine is
 * refused (ERR_STATE) and logged; the row changes only while it is still in
 * from, and ERR_RETRY says another transaction moved it first (the caller's
 * transaction runs again and sees the new state). */
static int set_state(inventory *inv, const char *id, int from, int to, int64_t now)
{
	if (inventory_state_edge(from, to) != 0) {
		log_error(inv->ctx->log, "reservation %s: illegal transition %s -> %s refused", id,
			  inventory_state_name(from), inventory_state_name(to));
		return ERR_STATE;
	}
	int64_t changed = 0;
	int rc = sql_run(inv->ctx->store,
			 "UPDATE reservations SET status = ?, updated_at = ? "
			 "WHERE reservation_id = ? AND status = ?",
			 &changed, ARGS(T(state_names[to]), I(now), T(id), T(state_names[from])));
	if (rc)
		return rc;
	if (changed != 1)
		return ERR_RETRY;
	log_info(inv->ctx->log, "reservation %s: %s -> %s", id, state_names[from], state_names[to]);
	return 0;
}

/* An item read back from the database. */
typedef struct held_item {
	char sku[SKU_MAX + 1];
	int64_t qty;
} held_item;

/* The items of reservation id, in sku order: its lines from..to of
 * reservation_items (its row's lines_from and lines_to). *items is malloc'd
 * (caller frees; NULL when there are none). */
static int items_of(store *s, const char *id, int64_t from, int64_t to, held_item **items,
		    size_t *n)
{
	*items = NULL;
	*n = 0;
	int rc = 0;
	store_stmt *st = sql_open(s,
				  "SELECT sku, qty FROM reservation_items "
				  "WHERE line >= ? AND line <= ? AND reservation_id = ? ORDER BY sku",
				  &rc, ARGS(I(from), I(to), T(id)));
	if (!st)
		return rc ? rc : ERR_STORE;
	size_t cap = 0;
	held_item *its = NULL;
	while ((rc = store_step(st)) == STORE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			held_item *grown = realloc(its, cap * sizeof(*its));
			if (!grown) {
				rc = ERR_NOMEM;
				break;
			}
			its = grown;
		}
		const char *sku = store_col_text(st, 0);
		snprintf(its[*n].sku, sizeof(its[*n].sku), "%s", sku ? sku : "");
		its[*n].qty = store_col_int(st, 1);
		(*n)++;
	}
	store_reset(st);
	if (rc < 0) {
		free(its);
		*n = 0;
		return rc;
	}
	*items = its;
	return 0;
}

/* Applies the end of a HELD reservation to the stock: a commit takes the
 * units off on_hand and reserved, a release or an expiry off reserved. */
static int settle_items(inventory *inv, const char *id, int64_t from, int64_t last, int to,
			int64_t now, const char *tp)
{
	store *s = inv->ctx->store;
	held_item *items;
	size_t n;
	int rc = items_of(s, id, from, last, &items, &n);
	if (rc)
		return rc;
	const char *reason = to == INVENTORY_COMMITTED ? "commit"
			     : to == INVENTORY_EXPIRED ? "expired"
						       : "release";
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int64_t on_hand = 0, reserved = 0, q = items[i].qty;
		if (to == INVENTORY_COMMITTED)
			rc = stock_update(s,
					  "UPDATE stock SET on_hand = on_hand - ?, reserved = reserved - ?, "
					  "updated_at = ? WHERE sku = ? AND reserved >= ?",
					  items[i].sku, &on_hand, &reserved,
					  ARGS(I(q), I(q), I(now), T(items[i].sku), I(q)));
		else
			rc = stock_update(s,
					  "UPDATE stock SET reserved = reserved - ?, updated_at = ? "
					  "WHERE sku = ? AND reserved >= ?",
					  items[i].sku, &on_hand, &reserved,
					  ARGS(I(q), I(now), T(items[i].sku), I(q)));
		if (rc == STORE_DONE) {
			log_error(inv->ctx->log,
				  "reservation %s: %s holds %lld units that the stock row does not",
				  id, items[i].sku, (long long)q);
			rc = ERR_INTERNAL;
		}
		if (rc == STORE_ROW)
			rc = after_change(inv, items[i].sku, on_hand, reserved,
					  to == INVENTORY_COMMITTED ? -q : 0, -q, reason, id, now, tp);
	}
	free(items);
	return rc;
}

enum finish_action { FINISH_COMMIT, FINISH_RELEASE, FINISH_EXPIRE };

typedef struct finish_op {
	const char *id;
	enum finish_action action;
	int64_t now;
	int found; /* out */
	int state; /* out: the reservation's state afterwards */
	const char *tp; /* the request's trace context, or NULL */
	char tp_buf[TRACE_PARENT_SIZE];
} finish_op;

static int finish_body(inventory *inv, void *arg)
{
	finish_op *op = arg;
	int rc = pend_settle(inv);
	if (rc)
		return rc;
	store_stmt *st = sql_open(
		inv->ctx->store,
		"SELECT status, expires_at, lines_from, lines_to FROM reservations "
		"WHERE reservation_id = ?",
		&rc, ARGS(T(op->id)));
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	int state = rc == STORE_ROW ? inventory_state_parse(store_col_text(st, 0)) : -1;
	int64_t expires_at = rc == STORE_ROW ? store_col_int(st, 1) : 0;
	int64_t lines_from = rc == STORE_ROW ? store_col_int(st, 2) : 0;
	int64_t lines_to = rc == STORE_ROW ? store_col_int(st, 3) : 0;
	store_reset(st);
	if (rc < 0)
		return rc;
	op->found = rc == STORE_ROW;
	op->state = state;
	if (!op->found)
		return TXN_ABORT;
	if (state < 0) {
		log_error(inv->ctx->log, "reservation %s: unknown status in the database", op->id);
		return ERR_INTERNAL;
	}
	if (state != INVENTORY_HELD)
		return TXN_ABORT;
	int to;
	switch (op->action) {
	case FINISH_COMMIT:
		/* Past its time but not yet swept: it is expired all the same,
		 * and is expired here so the stock comes back now. */
		to = expires_at <= op->now ? INVENTORY_EXPIRED : INVENTORY_COMMITTED;
		break;
	case FINISH_RELEASE:
		to = INVENTORY_RELEASED;
		break;
	default:
		if (expires_at > op->now)
			return TXN_ABORT;
		to = INVENTORY_EXPIRED;
		break;
	}
	rc = set_state(inv, op->id, INVENTORY_HELD, to, op->now);
	if (rc == 0)
		rc = settle_items(inv, op->id, lines_from, lines_to, to, op->now, op->tp);
	if (rc == 0)
		op->state = to;
	return rc;
}

static void finish(inventory *inv, msg_req *req, msg_resp *resp, enum finish_action action)
{
	if (engine_require_service(inv->ctx, req, resp))
		return;
	const char *id = msg_req_param(req, 0);
	if (!valid_id(id)) {
		no_reservation(resp, id ? id : "");
		return;
	}
	finish_op op = { .id = id, .action = action, .now = clock_now(inv->ctx->clock) };
	op.tp = engine_traceparent(inv->ctx, op.tp_buf, sizeof(op.tp_buf));
	int rc = txn_do(inv, finish_body, &op);
	if (rc < 0) {
		store_failed(inv, resp, rc, action == FINISH_COMMIT ? "commit" : "release");
		return;
	}
	if (!op.found) {
		no_reservation(resp, id);
		return;
	}
	/* Repeating a commit or a release answers as the first time did; a
	 * release of an expired reservation is done already. */
	int ok = action == FINISH_COMMIT ? op.state == INVENTORY_COMMITTED
					 : op.state == INVENTORY_RELEASED ||
						   op.state == INVENTORY_EXPIRED;
	if (ok) {
		msg_resp_json(resp, 200,
			      json_pack("{s:s,s:s}", "reservation_id", id, "status",
					inventory_state_name(op.state)));
		return;
	}
	char msg[200];
	snprintf(msg, sizeof(msg), "reservation '%s' is %s and cannot be %s", id,
		 inventory_state_name(op.state),
		 action == FINISH_COMMIT ? "committed" : "released");
	msg_resp_error(resp, 409, "conflict", msg,
		       json_pack("{s:s,s:s}", "reservation_id", id, "status",
				 inventory_state_name(op.state)));
}

static void commit_reservation(void *ud, msg_req *req, msg_resp *resp)
{
	finish(ud, req, resp, FINISH_COMMIT);
}

static void release_reservation(void *ud, msg_req *req, msg_resp *resp)
{
	finish(ud, req, resp, FINISH_RELEASE);
}

static void get_reservation(void *ud, msg_req *req, msg_resp *resp)
{
	inventory *inv = ud;
	if (engine_require_service(inv->ctx, req, resp))
		return;
	const char *id = msg_req_param(req, 0);
	if (!valid_id(id)) {
		no_reservation(resp, id ? id : "");
		return;
	}
	store *s = inv->ctx->store;
	int rc = 0;
	store_stmt *st = sql_open(s,
				  "SELECT order_id, status, ttl_s, created_at, expires_at, updated_at, "
				  "lines_from, lines_to FROM reservations WHERE reservation_id = ?",
				  &rc, ARGS(T(id)));
	if (!st) {
		store_failed(inv, resp, rc, "get reservation");
		return;
	}
	rc = store_step(st);
	json_t *out = NULL;
	int64_t lines_from = 0, lines_to = 0;
	if (rc == STORE_ROW) {
		char created[40], expires[40], updated[40];
		lines_from = store_col_int(st, 6);
		lines_to = store_col_int(st, 7);
		clock_fmt_rfc3339(store_col_int(st, 3), created, sizeof(created));
		clock_fmt_rfc3339(store_col_int(st, 4), expires, sizeof(expires));
		clock_fmt_rfc3339(store_col_int(st, 5), updated, sizeof(updated));
		out = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "reservation_id", id, "order_id",
				store_col_text(st, 0), "status", store_col_text(st, 1), "ttl_s",
				(json_int_t)store_col_int(st, 2), "created_at", created, "expires_at",
				expires, "updated_at", updated);
	}
	store_reset(st);
	if (rc == STORE_DONE) {
		no_reservation(resp, id);
		return;
	}
	if (rc < 0) {
		store_failed(inv, resp, rc, "get reservation");
		return;
	}
	held_item *items;
	size_t n;
	rc = items_of(s, id, lines_from, lines_to, &items, &n);
	if (rc) {
		json_decref(out);
		store_failed(inv, resp, rc, "get reservation");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:I}", "sku", items[i].sku, "qty",
						     (json_int_t)items[i].qty));
	free(items);
	json_object_set_new(out, "items", arr);
	msg_resp_json(resp, 200, out);
}

static void inventory_tick(void *eng, int64_t now_us)
{
	inventory *inv = eng;
	store *s = inv->ctx->store;
	int rc = 0;
	store_stmt *st = sql_open(s,
				  /* 'HELD' written out: the partial index
				   * reservations_held_expires serves it only so. */
				  "SELECT reservation_id FROM reservations "
				  "WHERE status = 'HELD' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
				  &rc, ARGS(I(now_us), I(EXPIRE_BATCH)));
	if (!st) {
		log_warn(inv->ctx->log, "expiry sweep: %s (%s)", err_name(rc), store_errmsg(s));
		return;
	}
	char(*ids)[ID_MAX + 1] = NULL;
	size_t n = 0;
	while ((rc = store_step(st)) == STORE_ROW) {
		if (!ids && !(ids = calloc(EXPIRE_BATCH, sizeof(*ids))))
			break;
		const char *id = store_col_text(st, 0);
		snprintf(ids[n++], ID_MAX + 1, "%s", id ? id : "");
		if (n == EXPIRE_BATCH)
			break;
	}
	store_reset(st);
	if (rc < 0)
		log_warn(inv->ctx->log, "expiry sweep: %s (%s)", err_name(rc), store_errmsg(s));
	int expired = 0;
	/* Each an operation of a group commit (64 to a transaction): one bad
	 * row is taken out and runs alone, and does not hold the rest. A
	 * replica that got there first leaves nothing to do (TXN_ABORT). */
	finish_op *fops = n ? calloc(n, sizeof(*fops)) : NULL;
	txn_op *tops = n ? calloc(n, sizeof(*tops)) : NULL;
	if (n && (!fops || !tops)) {
		log_warn(inv->ctx->log, "expiry sweep: out of memory");
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		fops[i] = (finish_op){ .id = ids[i], .action = FINISH_EXPIRE, .now = now_us };
		fops[i].tp = engine_traceparent(inv->ctx, fops[i].tp_buf, sizeof(fops[i].tp_buf));
		tops[i] = (txn_op){ .body = finish_body, .arg = &fops[i] };
	}
	if (n)
		txn_run_all(inv, tops, n);
	for (size_t i = 0; i < n; i++) {
		rc = tops[i].rc;
		if (rc == 0) {
			expired++;
			count(inv, "inventory_reservations_total", "expired");
		} else if (rc < 0) {
			log_warn(inv->ctx->log, "expiring reservation %s: %s", ids[i], err_name(rc));
		}
	}
	free(fops);
	free(tops);
	free(ids);
	if (expired)
		log_info(inv->ctx->log, "expired %d reservation%s", expired, expired == 1 ? "" : "s");
}

/* ---- invariants ------------------------------------------------------------------ */

typedef struct check {
	const char *name;
	const char *sql;
	/* how a row reads: "%s" the sku, then the integer columns 1.. */
	const char *what;
	int nints;
} check;

/* Each check is one statement, so it sees one snapshot also on PostgreSQL;
 * a row returned is a violation. */
static const check checks[] = {
	{ "non_negative",
	  "SELECT sku, on_hand, reserved FROM stock "
	  "WHERE on_hand < 0 OR reserved < 0 OR on_hand - reserved < 0 ORDER BY sku LIMIT 100",
	  "on_hand %lld, reserved %lld: a figure or available is negative", 2 },
	{ "reserved_matches_held",
	  "SELECT s.sku, s.reserved, COALESCE(h.held, 0) FROM stock s LEFT JOIN "
	  "(SELECT i.sku AS sku, SUM(i.qty) AS held FROM reservation_items i "
	  "JOIN reservations r ON r.reservation_id = i.reservation_id "
	  "WHERE r.status = 'HELD' GROUP BY i.sku) h ON h.sku = s.sku "
	  "WHERE s.reserved <> COALESCE(h.held, 0) ORDER BY s.sku LIMIT 100",
	  "reserved is %lld but HELD reservations hold %lld", 2 },
	{ "held_without_stock",
	  "SELECT i.sku, SUM(i.qty) FROM reservation_items i "
	  "JOIN reservations r ON r.reservation_id = i.reservation_id "
	  "WHERE r.status = 'HELD' AND NOT EXISTS (SELECT 1 FROM stock s WHERE s.sku = i.sku) "
	  "GROUP BY i.sku ORDER BY i.sku LIMIT 100",
	  "HELD reservations hold %lld units of a sku with no stock row", 1 },
	{ "ledger_sums",
	  "SELECT s.sku, s.on_hand, COALESCE(l.d, 0), s.reserved, COALESCE(l.r, 0) FROM stock s "
	  "LEFT JOIN (SELECT sku, SUM(delta) AS d, SUM(reserved_delta) AS r FROM stock_ledger "
	  "GROUP BY sku) l ON l.sku = s.sku "
	  "WHERE s.on_hand <> COALESCE(l.d, 0) OR s.reserved <> COALESCE(l.r, 0) "
	  "ORDER BY s.sku LIMIT 100",
	  "on_hand %lld but the ledger sums to %lld; reserved %lld but the ledger sums to %lld",
	  4 },
	{ "ledger_without_stock",
	  "SELECT l.sku, SUM(l.delta), SUM(l.reserved_delta) FROM stock_ledger l "
	  "WHERE NOT EXISTS (SELECT 1 FROM stock s WHERE s.sku = l.sku) "
	  "GROUP BY l.sku ORDER BY l.sku LIMIT 100",
	  "the ledger has entries (on_hand %lld, reserved %lld) for a sku with no stock row", 2 },
	{ "on_hand_moves",
	  "SELECT sku, id, delta FROM stock_ledger "
	  "WHERE delta <> 0 AND reason NOT IN ('initial', 'set', 'commit') ORDER BY id LIMIT 100",
	  "ledger entry %lld moved on_hand by %lld outside an admin set or a commit", 2 },
};

#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

static int run_check(store *s, const check *c, json_t *violations)
{
	int rc = 0;
	store_stmt *st = store_prepare(s, c->sql, &rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	while ((rc = store_step(st)) == STORE_ROW) {
		long long v[4] = { 0, 0, 0, 0 };
		for (int k = 0; k < c->nints && k < 4; k++)
			v[k] = (long long)store_col_int(st, k + 1);
		char msg[256];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(msg, sizeof(msg), c->what, v[0], v[1], v[2], v[3]);
#pragma GCC diagnostic pop
		const char *sku = store_col_text(st, 0);
		json_array_append_new(violations, json_pack("{s:s,s:s,s:s}", "check", c->name, "sku",
							    sku ? sku : "", "message", msg));
	}
	store_reset(st);
	return rc < 0 ? rc : 0;
}

int inventory_check_invariants(store *s, json_t **report)
{
	json_t *violations = json_array();
	/* On SQLite the transaction makes every check read the same state. */
	int rc = store_begin(s);
	for (size_t i = 0; rc == 0 && i < NCHECKS; i++)
		rc = run_check(s, &checks[i], violations);
	store_rollback(s);
	if (rc) {
		json_array_append_new(violations,
				      json_pack("{s:s,s:s}", "check", "store", "message",
						store_errmsg(s)[0] ? store_errmsg(s) : err_name(rc)));
	} else if (json_array_size(violations) > 0) {
		rc = ERR_STATE;
	}
	if (report)
		*report = json_pack("{s:b,s:o}", "ok", rc == 0, "violations", violations);
	else
		json_decref(violations);
	return rc;
}

static void admin_invariants(void *ud, msg_req *req, msg_resp *resp)
{
	inventory *inv = ud;
	if (engine_require_admin(inv->ctx, req, resp))
		return;
	json_t *report = NULL;
	int rc = inventory_check_invariants(inv->ctx->store, &report);
	if (rc == 0 || rc == ERR_STATE) {
		msg_resp_json(resp, 200, report);
		return;
	}
	json_decref(report);
	store_failed(inv, resp, rc, "check invariants");
}

/* GET /admin/reservations?status=&order_id=&limit=&page_token=: reservations
 * in reservation_id order (page_token: the last id of the page before),
 * with the units they hold, for `ecom audit`. */
static void admin_reservations(void *ud, msg_req *req, msg_resp *resp)
{
	inventory *inv = ud;
	if (engine_require_admin(inv->ctx, req, resp))
		return;
	char status[16] = "", order[ENGINE_ID_MAX + 1] = "", after[ENGINE_ID_MAX + 1] = "";
	int64_t limit = 100;
	if (engine_query_int(req, resp, "limit", 1, 500, &limit) < 0 ||
	    engine_query_id(req, resp, "order_id", order, sizeof(order)) < 0 ||
	    engine_query_id(req, resp, "page_token", after, sizeof(after)) < 0)
		return;
	int q = msg_req_query(req, "status", status, sizeof(status));
	if (q < 0 || (q > 0 && strcmp(status, "HELD") != 0 && strcmp(status, "COMMITTED") != 0 &&
		      strcmp(status, "RELEASED") != 0 && strcmp(status, "EXPIRED") != 0)) {
		engine_bad_field(resp, "status", "must be HELD, COMMITTED, RELEASED or EXPIRED");
		return;
	}
	int rc = 0;
	store_stmt *st = store_queryf(
		inv->ctx->store,
		"SELECT r.reservation_id, r.order_id, r.status, r.created_at, r.expires_at, "
		"r.updated_at, (SELECT SUM(i.qty) FROM reservation_items i "
		"WHERE i.line >= r.lines_from AND i.line <= r.lines_to AND "
		"i.reservation_id = r.reservation_id) FROM reservations r "
		"WHERE r.reservation_id > ? AND r.status = COALESCE(?, r.status) AND "
		"r.order_id = COALESCE(?, r.order_id) ORDER BY r.reservation_id LIMIT ?",
		&rc, "ttti", after, status[0] ? status : NULL, order[0] ? order : NULL, limit + 1);
	if (!st) {
		store_failed(inv, resp, rc, "list reservations");
		return;
	}
	json_t *items = json_array();
	char last[ENGINE_ID_MAX + 1] = "";
	int64_t n = 0;
	while ((rc = store_step(st)) == STORE_ROW && ++n <= limit) {
		char created[40], expires[40], updated[40];
		snprintf(last, sizeof(last), "%s", store_col_text(st, 0));
		clock_fmt_rfc3339(store_col_int(st, 3), created, sizeof(created));
		clock_fmt_rfc3339(store_col_int(st, 4), expires, sizeof(expires));
		clock_fmt_rfc3339(store_col_int(st, 5), updated, sizeof(updated));
		json_array_append_new(
			items, json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "reservation_id", last,
					 "order_id", store_col_text(st, 1), "status",
					 store_col_text(st, 2), "units",
					 (json_int_t)store_col_int(st, 6), "created_at", created,
					 "expires_at", expires, "updated_at", updated));
	}
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		store_failed(inv, resp, rc, "list reservations");
		return;
	}
	msg_resp_json(resp, 200,
		      json_pack("{s:o,s:o}", "items", items, "next_page_token",
				n > limit ? json_string(last) : json_null()));
}

/* ---- first start ------------------------------------------------------------------- */

typedef struct load_op {
	json_t *arr;
	int64_t on_hand;
	int64_t now;
	int loaded; /* out */
	const char *tp;
	char tp_buf[TRACE_PARENT_SIZE];
} load_op;

static int load_body(inventory *inv, void *arg)
{
	load_op *op = arg;
	store *s = inv->ctx->store;
	op->loaded = 0;
	int rc = pend_settle(inv);
	if (rc)
		return rc;
	store_stmt *st = store_prepare(s, "SELECT COUNT(*) FROM stock", &rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	int64_t existing = rc == STORE_ROW ? store_col_int(st, 0) : 0;
	store_reset(st);
	if (rc < 0)
		return rc;
	if (existing > 0)
		return TXN_ABORT;
	for (size_t i = 0; i < json_array_size(op->arr); i++) {
		const char *sku = json_string_value(json_object_get(json_array_get(op->arr, i), "sku"));
		int64_t changed = 0;
		/* A replica loading at the same moment (PostgreSQL) inserted it
		 * first: its transaction records it, this one does not. */
		rc = sql_run(s,
			     "INSERT INTO stock (sku, on_hand, reserved, updated_at) "
			     "VALUES (?, ?, 0, ?) ON CONFLICT (sku) DO NOTHING",
			     &changed, ARGS(T(sku), I(op->on_hand), I(op->now)));
		if (rc)
			return rc;
		if (changed == 1) {
			rc = after_change(inv, sku, op->on_hand, 0, op->on_hand, 0, "initial",
					  "initial", op->now, op->tp);
			if (rc)
				return rc;
			op->loaded++;
		}
	}
	return 0;
}

static int stock_rows(store *s, int64_t *n)
{
	int rc = 0;
	store_stmt *st = store_prepare(s, "SELECT COUNT(*) FROM stock", &rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	*n = rc == STORE_ROW ? store_col_int(st, 0) : 0;
	store_reset(st);
	return rc < 0 ? rc : 0;
}

int inventory_load_file(engine_ctx *ctx, const char *path, int64_t on_hand, char *err,
			size_t errlen)
{
	int64_t existing = 0;
	int rc = stock_rows(ctx->store, &existing);
	if (rc) {
		snprintf(err, errlen, "counting stock: %s", store_errmsg(ctx->store));
		return rc;
	}
	if (existing > 0)
		return 0;
	if (on_hand < 0 || on_hand > ON_HAND_MAX) {
		snprintf(err, errlen, "inventory.initial_on_hand must be between 0 and %lld",
			 ON_HAND_MAX);
		return ERR_INVALID;
	}
	json_error_t je;
	json_t *arr = json_load_file(path, 0, &je);
	if (!arr || !json_is_array(arr)) {
		snprintf(err, errlen, "%s:%d: %s", path, je.line, arr ? "not an array" : je.text);
		json_decref(arr);
		return ERR_PARSE;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const char *sku = json_string_value(json_object_get(json_array_get(arr, i), "sku"));
		if (!valid_sku(sku)) {
			snprintf(err, errlen, "%s: product %zu: no valid sku", path, i);
			json_decref(arr);
			return ERR_PARSE;
		}
	}
	inventory tmp = { .ctx = ctx,
			  .low_threshold = config_int(ctx->config, "inventory.low_stock_threshold", 5) };
	load_op op = { .arr = arr, .on_hand = on_hand, .now = clock_now(ctx->clock) };
	op.tp = engine_traceparent(ctx, op.tp_buf, sizeof(op.tp_buf));
	rc = run_txn(&tmp, load_body, &op);
	json_decref(arr);
	if (rc == TXN_ABORT)
		return 0;
	if (rc) {
		snprintf(err, errlen, "stocking from %s: %s (%s)", path, err_name(rc),
			 store_errmsg(ctx->store));
		return rc;
	}
	return op.loaded;
}

/* ---- engine -------------------------------------------------------------------------- */

static void inventory_destroy(void *eng)
{
	inventory *inv = eng;
	if (!inv)
		return;
	router_free(inv->rt);
	pend_clear(inv);
	free(inv->pend.items.v);
	free(inv->pend.events.v);
	pthread_cond_destroy(&inv->linger_cv);
	pthread_mutex_destroy(&inv->mu);
	free(inv);
}

static void *inventory_create(engine_ctx *ctx, char *err, size_t errlen)
{
	inventory *inv = calloc(1, sizeof(*inv));
	if (!inv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&inv->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&inv->linger_cv, &ca);
	pthread_condattr_destroy(&ca);
	inv->ctx = ctx;
	inv->low_threshold = config_int(ctx->config, "inventory.low_stock_threshold", 5);
	/* Without it (out of memory) each leader writes on its own. */
	inv->writer = store_conn_new(ctx->store);
	inv->defer = strcmp(store_driver(ctx->store), "sqlite") == 0;
	static const engine_route routes[] = {
		{ "GET", "/v1/inventory/{sku}", get_stock },
		{ "PUT", "/v1/inventory/{sku}", set_stock },
		{ "GET", "/v1/inventory/{sku}/ledger", get_ledger },
		{ "POST", "/v1/reservations", reserve },
		{ "GET", "/v1/reservations/{id}", get_reservation },
		{ "POST", "/v1/reservations/{id}/commit", commit_reservation },
		{ "POST", "/v1/reservations/{id}/release", release_reservation },
		{ "GET", "/admin/invariants", admin_invariants },
		{ "GET", "/admin/reservations", admin_reservations },
	};
	inv->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), inv, err, errlen);
	if (!inv->rt) {
		inventory_destroy(inv);
		return NULL;
	}
	metrics_help(ctx->metrics, "inventory_reservations_total",
		     "Reservation requests by result (held, replayed, insufficient, expired, ...).");
	metrics_help(ctx->metrics, "inventory_group_commits_total",
		     "Write transactions run for requests and expiries (each a group commit).");
	metrics_help(ctx->metrics, "inventory_group_commit_ops_total",
		     "Operations run in those transactions (over commits: the mean batch).");
	metrics_help(ctx->metrics, "inventory_group_commit_splits_total",
		     "Operations taken out of a group commit to run alone: they failed after "
		     "writing.");
	metrics_help(ctx->metrics, "inventory_group_commit_failures_total",
		     "Group commits whose transaction failed as a whole: their operations ran "
		     "alone.");
	char path[1024];
	catalog_seed_path(ctx, path, sizeof(path));
	int n = inventory_load_file(ctx, path,
				    config_int(ctx->config, "inventory.initial_on_hand", 100), err,
				    errlen);
	if (n < 0) {
		inventory_destroy(inv);
		return NULL;
	}
	if (n > 0)
		log_info(ctx->log, "stocked %d skus from %s", n, path);
	return inv;
}

static void inventory_handle(void *eng, msg_req *req, msg_resp *resp)
{
	inventory *inv = eng;
	router_dispatch(inv->rt, req, resp);
}

const engine_def inventory_engine = {
	.name = "inventory",
	.needs_store = 1,
	.create = inventory_create,
	.handle = inventory_handle,
	.tick = inventory_tick,
	.ready = NULL,
	.destroy = inventory_destroy,
};
