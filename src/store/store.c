/* store: the backend-neutral half of the store API (store.h). It picks a
 * driver from the URL, gives each thread its own connection, caches prepared
 * statements per connection, runs transactions and migrations, and keeps the
 * last error message per connection. Everything backend-specific is behind
 * the vtable in driver.h. */
#include "store/store.h"
#include "store/driver.h"
#include "core/clock.h"
#include "core/err.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_MSG_LEN 512
#define STORE_CACHE_MIN 32
/* A migration file larger than this is surely a mistake. */
#define STORE_MIGRATION_MAX (16u << 20)

struct store_stmt {
	struct store_conn *conn;
	struct store_dstmt *d; /* NULL after the connection was lost */
	char *sql;
	uint64_t hash;
	struct store_stmt *next; /* hash chain */
};

/* One connection, owned by one thread at a time. */
struct store_conn {
	store *s;
	struct store_dconn *d; /* NULL until opened, and after a loss */
	struct store_stmt **buckets;
	size_t nbuckets;
	size_t nstmts;
	int idle;   /* its thread exited: the next new thread may take it */
	int lent;   /* store_conn_new's: entered by whoever holds it */
	int broken; /* the driver reported ERR_UNAVAILABLE */
	char msg[STORE_MSG_LEN];
	struct store_conn *next; /* every connection of the store */
};

struct store {
	const struct store_driver *drv;
	struct store_ddb *ddb;
	pthread_key_t key; /* this thread's struct store_conn */
	pthread_mutex_t mu; /* guards conns and their idle flags */
	struct store_conn *conns;
	char *service;
	/* one_writer drivers: the connection every transaction runs on, and
	 * the mutex its holder keeps from store_begin to the end. */
	pthread_mutex_t wmu;
	struct store_conn *writer;
};

/* The transaction this thread holds the writer for: its store, and the
 * thread's own connection, given back at the end. */
static _Thread_local store *held_store;
static _Thread_local struct store_conn *held_own;

static const char store_schema_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	"version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

void store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- URL masking ------------------------------------------------------ */

struct store_buf {
	char *p;
	size_t len, at;
};

static void buf_put(struct store_buf *b, const char *s, size_t n)
{
	while (n-- && b->at + 1 < b->len)
		b->p[b->at++] = *s++;
	b->p[b->at] = '\0';
}

void store_mask_url(const char *url, char *buf, size_t len)
{
	if (!buf || !len)
		return;
	struct store_buf b = { buf, len, 0 };
	buf[0] = '\0';
	if (!url)
		return;
	const char *sep = strstr(url, "://");
	if (!sep) {
		buf_put(&b, url, strlen(url));
		return;
	}
	const char *auth = sep + 3;
	size_t authlen = strcspn(auth, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < authlen; i++)
		if (auth[i] == '@')
			at = auth + i;
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	const char *p = url;
	if (colon) {
		buf_put(&b, p, (size_t)(colon + 1 - p));
		buf_put(&b, "****", 4);
		p = at;
	}
	/* libpq also takes the password as a query parameter. */
	const char *q = strchr(auth + authlen, '?');
	while (q) {
		const char *name = q + 1;
		if (strncmp(name, "password=", 9) == 0) {
			buf_put(&b, p, (size_t)(name + 9 - p));
			buf_put(&b, "****", 4);
			p = name + 9 + strcspn(name + 9, "&#");
		}
		q = strchr(name, '&');
	}
	buf_put(&b, p, strlen(p));
}

/* ---- connections and the statement cache ------------------------------ */

static uint64_t store_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void conn_note(struct store_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void conn_note(struct store_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
}

/* Records the driver's message for a failed call and passes rc through. */
static int conn_fail(struct store_conn *c, int rc)
{
	if (rc >= 0)
		return rc;
	if (c->d)
		snprintf(c->msg, sizeof(c->msg), "%s", c->s->drv->errmsg(c->d));
	if (rc == ERR_UNAVAILABLE)
		c->broken = 1;
	return rc;
}

static void conn_reset_all(struct store_conn *c)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct store_stmt *st = c->buckets[i]; st; st = st->next)
			if (st->d)
				c->s->drv->reset(st->d);
}

/* Closes the driver connection; statement wrappers stay (borrowed handles
 * remain valid) and are prepared again on their next store_prepare. */
static void conn_drop_driver(struct store_conn *c)
{
	const struct store_driver *drv = c->s->drv;
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct store_stmt *st = c->buckets[i]; st; st = st->next) {
			drv->finalize(st->d);
			st->d = NULL;
		}
	drv->conn_close(c->d);
	c->d = NULL;
	c->broken = 0;
}

static void conn_free(struct store_conn *c)
{
	if (!c)
		return;
	conn_drop_driver(c);
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct store_stmt *st = c->buckets[i];
		while (st) {
			struct store_stmt *next = st->next;
			free(st->sql);
			free(st);
			st = next;
		}
	}
	free(c->buckets);
	free(c);
}

/* pthread key destructor: the owning thread is exiting. Whatever it left
 * open is rolled back here, on its own thread, so the write lock is not held
 * until some other thread happens to take the connection over. */
static void conn_release(void *p)
{
	struct store_conn *c = p;
	store *s = c->s;
	if (c->d && !c->broken) {
		conn_reset_all(c);
		if (s->drv->in_transaction(c->d))
			s->drv->exec(c->d, "ROLLBACK");
	}
	if (held_store == s && c == s->writer) {
		/* It held the writer: hand it on, and free its own connection. */
		if (c->d && s->drv->in_transaction(c->d))
			conn_drop_driver(c);
		c = held_own;
		if (c->d && !c->broken)
			conn_reset_all(c);
		held_store = NULL;
		held_own = NULL;
		pthread_mutex_unlock(&s->wmu);
	}
	pthread_mutex_lock(&s->mu);
	c->idle = 1;
	pthread_mutex_unlock(&s->mu);
}

/* This thread's connection record, taking over an idle one or creating one;
 * the driver connection itself is opened by conn_open. NULL only on ENOMEM. */
static struct store_conn *conn_get(store *s)
{
	struct store_conn *c = pthread_getspecific(s->key);
	if (c)
		return c;
	pthread_mutex_lock(&s->mu);
	for (c = s->conns; c; c = c->next)
		if (c->idle)
			break;
	if (c) {
		c->idle = 0;
	} else {
		c = calloc(1, sizeof(*c));
		if (c) {
			c->s = s;
			c->next = s->conns;
			s->conns = c;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (c && pthread_setspecific(s->key, c) != 0) {
		pthread_mutex_lock(&s->mu);
		c->idle = 1;
		pthread_mutex_unlock(&s->mu);
		return NULL;
	}
	return c;
}

store_conn *store_conn_new(store *s)
{
	struct store_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->s = s;
	c->lent = 1;
	pthread_mutex_lock(&s->mu);
	c->next = s->conns;
	s->conns = c;
	pthread_mutex_unlock(&s->mu);
	return c;
}

store_conn *store_conn_enter(store *s, store_conn *c)
{
	struct store_conn *own = pthread_getspecific(s->key);
	pthread_setspecific(s->key, c);
	return own;
}

void store_conn_leave(store *s, store_conn *own)
{
	pthread_setspecific(s->key, own);
}

/* Makes sure c has a live driver connection, reconnecting after a loss. */
static int conn_open(struct store_conn *c)
{
	const struct store_driver *drv = c->s->drv;
	if (c->broken || (c->d && drv->idle_dead && !drv->in_transaction(c->d) && drv->idle_dead(c->d)))
		conn_drop_driver(c);
	if (c->d)
		return 0;
	return c->s->drv->conn_open(c->s->ddb, &c->d, c->msg, sizeof(c->msg));
}

/* The thread's connection, opened; NULL with *rc set on failure. */
static struct store_conn *conn_ready(store *s, int *rc)
{
	struct store_conn *c = conn_get(s);
	if (!c) {
		*rc = ERR_NOMEM;
		return NULL;
	}
	*rc = conn_open(c);
	return *rc ? NULL : c;
}

static int cache_grow(struct store_conn *c)
{
	size_t n = c->nbuckets ? c->nbuckets * 2 : STORE_CACHE_MIN;
	struct store_stmt **b = calloc(n, sizeof(*b));
	if (!b)
		return ERR_NOMEM;
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct store_stmt *st = c->buckets[i];
		while (st) {
			struct store_stmt *next = st->next;
			st->next = b[st->hash & (n - 1)];
			b[st->hash & (n - 1)] = st;
			st = next;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
	return 0;
}

static struct store_stmt *cache_find(struct store_conn *c, const char *sql, uint64_t h)
{
	if (!c->nbuckets)
		return NULL;
	for (struct store_stmt *st = c->buckets[h & (c->nbuckets - 1)]; st; st = st->next)
		if (st->hash == h && strcmp(st->sql, sql) == 0)
			return st;
	return NULL;
}

/* ---- open / free ------------------------------------------------------ */

static int store_service_ok(const char *service)
{
	if (!service || !*service || strlen(service) > 64)
		return 0;
	for (const char *p = service; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return 0;
	return 1;
}

store *store_open(const char *url, const char *service, const char *state_dir, char *err,
		  size_t errlen)
{
	char masked[512];
	char *owned = NULL;
	const struct store_driver *drv = NULL;

	store_seterr(err, errlen, "%s", "");
	if (!store_service_ok(service)) {
		store_seterr(err, errlen, "bad service name '%s'", service ? service : "(null)");
		return NULL;
	}
	if (!url) {
		if (!state_dir || !*state_dir) {
			store_seterr(err, errlen, "no store URL and no state directory");
			return NULL;
		}
		if (asprintf(&owned, "sqlite:%s/data", state_dir) < 0) {
			store_seterr(err, errlen, "out of memory");
			return NULL;
		}
		url = owned;
	}
	store_mask_url(url, masked, sizeof(masked));
	if (strncmp(url, "sqlite:", 7) == 0) {
		drv = &store_sqlite_driver;
	} else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
		drv = &store_pg_driver;
	} else {
		store_seterr(err, errlen,
			     "unsupported store URL: %s (expected sqlite:DIR, sqlite::memory: or "
			     "postgresql://...)",
			     masked);
	}
	if (!drv) {
		free(owned);
		return NULL;
	}

	store *s = calloc(1, sizeof(*s));
	if (!s) {
		store_seterr(err, errlen, "out of memory");
		free(owned);
		return NULL;
	}
	s->drv = drv;
	if (pthread_key_create(&s->key, conn_release) != 0) {
		store_seterr(err, errlen, "out of thread-specific keys");
		free(s);
		free(owned);
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->wmu, NULL);
	s->service = strdup(service);
	int rc = s->service ? drv->db_open(url, service, &s->ddb, err, errlen) : ERR_NOMEM;
	free(owned);
	if (rc) {
		if (rc == ERR_NOMEM && err && errlen && !err[0])
			store_seterr(err, errlen, "out of memory");
		pthread_key_delete(s->key);
		pthread_mutex_destroy(&s->mu);
		pthread_mutex_destroy(&s->wmu);
		free(s->service);
		free(s);
		return NULL;
	}
	return s;
}

void store_free(store *s)
{
	if (!s)
		return;
	/* No destructor runs for a deleted key, so from here on no exiting
	 * thread touches the connections. */
	pthread_key_delete(s->key);
	struct store_conn *c = s->conns;
	while (c) {
		struct store_conn *next = c->next;
		conn_free(c);
		c = next;
	}
	s->drv->db_close(s->ddb);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->wmu);
	free(s->service);
	free(s);
}

const char *store_driver(const store *s)
{
	return s ? s->drv->name : "";
}

/* ---- statements ------------------------------------------------------- */

store_stmt *store_prepare(store *s, const char *sql, int *err)
{
	int rc = ERR_INVALID;
	struct store_conn *c = NULL;
	struct store_stmt *st = NULL;

	if (!s || !sql)
		goto fail;
	c = conn_ready(s, &rc);
	if (!c)
		goto fail;
	uint64_t h = store_hash(sql);
	st = cache_find(c, sql, h);
	if (st && st->d) {
		/* A handle someone forgot to reset must not leak its old
		 * bindings or cursor into this use. */
		s->drv->reset(st->d);
		return st;
	}
	struct store_dstmt *d = NULL;
	rc = s->drv->prepare(c->d, sql, &d);
	if (rc) {
		conn_fail(c, rc);
		goto fail;
	}
	if (st) { /* re-prepared after a reconnect */
		st->d = d;
		return st;
	}
	if (c->nstmts >= c->nbuckets && cache_grow(c) != 0) {
		s->drv->finalize(d);
		goto nomem;
	}
	st = calloc(1, sizeof(*st));
	if (!st || !(st->sql = strdup(sql))) {
		free(st);
		s->drv->finalize(d);
		goto nomem;
	}
	st->conn = c;
	st->d = d;
	st->hash = h;
	st->next = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = st;
	c->nstmts++;
	return st;
nomem:
	rc = ERR_NOMEM;
	conn_note(c, "out of memory");
fail:
	if (err)
		*err = rc;
	return NULL;
}

/* Checks a statement handle before use; a handle whose connection was lost
 * answers ERR_UNAVAILABLE until store_prepare brings it back. */
static int stmt_check(store_stmt *st)
{
	if (!st)
		return ERR_INVALID;
	if (!st->d) {
		conn_note(st->conn, "connection lost; prepare the statement again");
		return ERR_UNAVAILABLE;
	}
	return 0;
}

int store_bind_text(store_stmt *st, int idx, const char *v)
{
	int rc = stmt_check(st);
	if (rc)
		return rc;
	if (!v)
		return store_bind_null(st, idx);
	return conn_fail(st->conn, st->conn->s->drv->bind_text(st->d, idx, v));
}

int store_bind_int(store_stmt *st, int idx, int64_t v)
{
	int rc = stmt_check(st);
	if (rc)
		return rc;
	return conn_fail(st->conn, st->conn->s->drv->bind_int(st->d, idx, v));
}

int store_bind_null(store_stmt *st, int idx)
{
	int rc = stmt_check(st);
	if (rc)
		return rc;
	return conn_fail(st->conn, st->conn->s->drv->bind_null(st->d, idx));
}

/* With one writer, a statement runs on the connection it was prepared on:
 * one prepared before store_begin would run outside the transaction, and
 * one prepared inside it would run on a writer another thread may hold by
 * now. Both are refused (ERR_STATE) rather than done wrong. */
static int stmt_misplaced(store_stmt *st)
{
	store *s = st->conn->s;
	if (!s->writer || (held_store == s) == (st->conn == s->writer))
		return 0;
	struct store_conn *cur = pthread_getspecific(s->key);
	if (cur)
		conn_note(cur, "%s", held_store == s
			  ? "statement prepared before store_begin: it would run outside the transaction"
			  : "statement prepared inside a transaction that has ended");
	return ERR_STATE;
}

int store_step(store_stmt *st)
{
	int rc = stmt_check(st);
	if (rc == 0)
		rc = stmt_misplaced(st);
	if (rc)
		return rc;
	return conn_fail(st->conn, st->conn->s->drv->step(st->d));
}

const char *store_col_text(store_stmt *st, int col)
{
	if (!st || !st->d)
		return NULL;
	return st->conn->s->drv->col_text(st->d, col);
}

int64_t store_col_int(store_stmt *st, int col)
{
	if (!st || !st->d)
		return 0;
	return st->conn->s->drv->col_int(st->d, col);
}

int store_col_is_null(store_stmt *st, int col)
{
	if (!st || !st->d)
		return 1;
	return st->conn->s->drv->col_is_null(st->d, col);
}

int64_t store_changes(store_stmt *st)
{
	if (!st || !st->d || !st->conn->d)
		return 0;
	return st->conn->s->drv->changes(st->conn->d, st->d);
}

void store_reset(store_stmt *st)
{
	if (st && st->d)
		st->conn->s->drv->reset(st->d);
}

/* Binds the arguments of ap as fmt describes (see store_queryf). */
static store_stmt *bind_va(store *s, const char *sql, int *err, const char *fmt, va_list ap)
{
	store_stmt *st = store_prepare(s, sql, err);
	if (!st)
		return NULL;
	for (int i = 0; fmt && fmt[i]; i++) {
		int rc;
		if (fmt[i] == 't')
			rc = store_bind_text(st, i + 1, va_arg(ap, const char *));
		else if (fmt[i] == 'i')
			rc = store_bind_int(st, i + 1, va_arg(ap, int64_t));
		else
			rc = ERR_INVALID;
		if (rc) {
			store_reset(st);
			if (err)
				*err = rc;
			return NULL;
		}
	}
	return st;
}

store_stmt *store_queryf(store *s, const char *sql, int *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	store_stmt *st = bind_va(s, sql, err, fmt, ap);
	va_end(ap);
	return st;
}

/* Binds, steps once and resets: *changes (may be NULL) gets the rows
 * changed, *first (may be NULL) the first column of a first row that is
 * not NULL. */
static int run_va(store *s, const char *sql, int64_t *changes, int64_t *first, const char *fmt,
		  va_list ap)
{
	int rc = ERR_STORE;
	store_stmt *st = bind_va(s, sql, &rc, fmt, ap);
	if (!st)
		return rc;
	rc = store_step(st);
	if (rc == STORE_ROW && first && !store_col_is_null(st, 0))
		*first = store_col_int(st, 0);
	if (rc >= 0 && changes)
		*changes = store_changes(st);
	store_reset(st);
	return rc < 0 ? rc : 0;
}

int store_runf(store *s, const char *sql, int64_t *changes, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = run_va(s, sql, changes, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int store_intf(store *s, int64_t *out, const char *sql, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = run_va(s, sql, NULL, out, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- plain SQL and transactions --------------------------------------- */

int store_exec(store *s, const char *sql)
{
	if (!s || !sql)
		return ERR_INVALID;
	int rc;
	struct store_conn *c = conn_ready(s, &rc);
	if (!c)
		return rc;
	return conn_fail(c, s->drv->exec(c->d, sql));
}

/* One writer. SQLite lets one transaction write at a time, and a connection
 * drops its whole page cache whenever another connection has committed
 * since it last read: with a connection per thread, every transaction read
 * its pages again (from the WAL, a pread each), and writers queued in
 * SQLite's busy handler, which sleeps in steps of milliseconds. So on such
 * a driver every transaction runs on the store's writer connection, which
 * its thread holds from store_begin until the commit or rollback that ends
 * it; the others wait on the mutex, up to the driver's busy timeout
 * (ERR_BUSY after it, as SQLite would answer). Reads outside a transaction
 * stay on the thread's own connection. A thread that entered a connection
 * of its own (store_conn_enter) writes on that one, and a thread holding
 * one store's writer uses its own connection on any other store. */
static int writer_take(store *s)
{
	if (!s->drv->one_writer_wait_ms || held_store)
		return 0;
	struct store_conn *own = conn_get(s);
	if (!own)
		return ERR_NOMEM;
	if (own->lent)
		return 0;
	if (pthread_mutex_trylock(&s->wmu) != 0) {
		struct timespec until;
		int wait_ms = s->drv->one_writer_wait_ms(s->ddb);
		clock_deadline(&until, CLOCK_MONOTONIC, (int64_t)wait_ms * 1000);
		if (pthread_mutex_clocklock(&s->wmu, CLOCK_MONOTONIC, &until) != 0) {
			conn_note(own, "database is locked: waited %d ms for another transaction to end",
				  wait_ms);
			return ERR_BUSY;
		}
	}
	if (!s->writer) {
		s->writer = store_conn_new(s);
		if (!s->writer) {
			pthread_mutex_unlock(&s->wmu);
			return ERR_NOMEM;
		}
	}
	held_store = s;
	held_own = own;
	pthread_setspecific(s->key, s->writer);
	return 0;
}

/* Gives the writer back unless its transaction is still open; its last
 * message goes with the thread, for store_errmsg. */
static void writer_give(store *s)
{
	if (held_store != s)
		return;
	struct store_conn *w = s->writer;
	if (w->d && !w->broken && s->drv->in_transaction(w->d))
		return;
	memcpy(held_own->msg, w->msg, sizeof(w->msg));
	w->msg[0] = '\0';
	pthread_setspecific(s->key, held_own);
	held_store = NULL;
	held_own = NULL;
	pthread_mutex_unlock(&s->wmu);
}

int store_begin(store *s)
{
	if (!s)
		return ERR_INVALID;
	int rc = writer_take(s);
	if (rc)
		return rc;
	struct store_conn *c = conn_ready(s, &rc);
	if (c && s->drv->in_transaction(c->d)) {
		conn_note(c, "a transaction is already open on this thread");
		return ERR_STATE;
	}
	if (c)
		rc = conn_fail(c, s->drv->exec(c->d, s->drv->begin_sql));
	if (rc)
		writer_give(s);
	return rc;
}

int store_commit(store *s)
{
	if (!s)
		return ERR_INVALID;
	struct store_conn *c = conn_get(s);
	if (!c)
		return ERR_NOMEM;
	if (!c->d || c->broken) {
		conn_note(c, "commit: the connection was lost; the transaction is gone");
		writer_give(s);
		return ERR_UNAVAILABLE;
	}
	if (!s->drv->in_transaction(c->d)) {
		conn_note(c, "commit without an open transaction");
		writer_give(s);
		return ERR_STATE;
	}
	int rc = conn_fail(c, s->drv->exec(c->d, "COMMIT"));
	if (rc && held_store == s)
		store_rollback(s); /* the writer is not kept waiting on the caller */
	writer_give(s);
	return rc;
}

/* Rolling back what is not open is fine: error paths call this without
 * knowing how far they got, and SQLite itself ends a transaction on some
 * errors. Cached statements are reset so no cursor outlives it. */
int store_rollback(store *s)
{
	if (!s)
		return ERR_INVALID;
	struct store_conn *c = conn_get(s);
	if (!c)
		return ERR_NOMEM;
	int rc = 0;
	if (c->d && !c->broken) {
		conn_reset_all(c);
		if (s->drv->in_transaction(c->d))
			rc = conn_fail(c, s->drv->exec(c->d, "ROLLBACK"));
		/* The writer is not handed on with a transaction open. */
		if (held_store == s && c->d && s->drv->in_transaction(c->d))
			conn_drop_driver(c);
	}
	writer_give(s);
	return rc;
}

int store_txn(store *s, int tries, int (*body)(void *arg), void *arg)
{
	int rc = ERR_INVALID;
	for (int attempt = 0; attempt < tries; attempt++) {
		rc = store_begin(s);
		if (rc == 0) {
			rc = body(arg);
			if (rc == 0)
				rc = store_commit(s);
			if (rc != 0)
				store_rollback(s);
		}
		if (rc != ERR_RETRY && rc != ERR_BUSY)
			return rc;
	}
	return rc;
}

const char *store_errmsg(store *s)
{
	struct store_conn *c = s ? pthread_getspecific(s->key) : NULL;
	return c ? c->msg : "";
}

int store_ping(store *s)
{
	int rc;
	if (s && s->drv->ping) {
		struct store_conn *c = conn_ready(s, &rc);
		return c ? conn_fail(c, s->drv->ping(c->d)) : rc;
	}
	store_stmt *st = store_prepare(s, "SELECT 1", &rc);
	if (!st)
		return rc;
	rc = store_step(st);
	store_reset(st);
	return rc == STORE_ROW ? 0 : rc < 0 ? rc : ERR_STORE;
}

/* ---- migrations ------------------------------------------------------- */

struct migration {
	int version;
	char *name;
};

static int migration_cmp(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;
	return (x->version > y->version) - (x->version < y->version);
}

/* NNN_*.sql with at least three digits; the version must fit an int. */
static int migration_version(const char *name)
{
	size_t digits = strspn(name, "0123456789");
	size_t len = strlen(name);
	if (digits < 3 || name[digits] != '_' || len < digits + 5 ||
	    strcmp(name + len - 4, ".sql") != 0)
		return -1;
	long v = 0;
	for (size_t i = 0; i < digits; i++) {
		v = v * 10 + (name[i] - '0');
		if (v > INT_MAX)
			return -1;
	}
	return (int)v;
}

static void migrations_free(struct migration *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].name);
	free(m);
}

/* The sorted migration files of dir; *n = 0 when dir does not exist. */
static int migrations_list(const char *dir, struct migration **out, size_t *n, char *err,
			   size_t errlen)
{
	*out = NULL;
	*n = 0;
	DIR *dp = opendir(dir);
	if (!dp) {
		if (errno == ENOENT)
			return 0;
		store_seterr(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		return ERR_IO;
	}
	struct migration *m = NULL;
	size_t cap = 0, cnt = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(dp))) {
		int v = migration_version(de->d_name);
		if (v < 0)
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct migration *nm = realloc(m, ncap * sizeof(*m));
			if (!nm) {
				rc = ERR_NOMEM;
				break;
			}
			m = nm;
			cap = ncap;
		}
		m[cnt].version = v;
		m[cnt].name = strdup(de->d_name);
		if (!m[cnt].name) {
			rc = ERR_NOMEM;
			break;
		}
		cnt++;
	}
	closedir(dp);
	if (rc) {
		store_seterr(err, errlen, "out of memory");
		migrations_free(m, cnt);
		return rc;
	}
	if (cnt)
		qsort(m, cnt, sizeof(*m), migration_cmp);
	for (size_t i = 1; i < cnt; i++)
		if (m[i].version == m[i - 1].version) {
			store_seterr(err, errlen, "%s: two migrations with version %d: %s and %s",
				     dir, m[i].version, m[i - 1].name, m[i].name);
			migrations_free(m, cnt);
			return ERR_INVALID;
		}
	*out = m;
	*n = cnt;
	return 0;
}

static int file_slurp(const char *path, char **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		store_seterr(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return ERR_IO;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int rc = 0;
	while (buf) {
		if (len + 1 >= cap) {
			if (cap >= STORE_MIGRATION_MAX) {
				store_seterr(err, errlen, "%s: larger than %u bytes", path,
					     STORE_MIGRATION_MAX);
				rc = ERR_TOO_LARGE;
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0) {
			if (ferror(f)) {
				store_seterr(err, errlen, "cannot read %s: %s", path,
					     strerror(errno));
				rc = ERR_IO;
			}
			break;
		}
	}
	fclose(f);
	if (!rc && !buf) {
		store_seterr(err, errlen, "out of memory");
		rc = ERR_NOMEM;
	}
	if (rc) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		store_seterr(err, errlen, "%s: contains a NUL byte", path);
		free(buf);
		return ERR_INVALID;
	}
	*out = buf;
	return 0;
}

/* Creates schema_migrations if missing, in SQL both backends accept. */
static int migrations_table(store *s)
{
	int rc = store_exec(s, store_schema_table);
	/* When two sessions create the same table at once, PostgreSQL can fail
	 * the second with a unique violation on its catalog or with "type ...
	 * already exists"; the table then exists and a second try succeeds. */
	if (rc == ERR_CONFLICT || rc == ERR_STORE)
		rc = store_exec(s, store_schema_table);
	return rc;
}

/* 1 when version is recorded, 0 when not, <0 on error. */
static int migration_applied(store *s, int version)
{
	int rc;
	store_stmt *st =
		store_prepare(s, "SELECT 1 FROM schema_migrations WHERE version = ?", &rc);
	if (!st)
		return rc;
	rc = store_bind_int(st, 1, version);
	if (rc == 0)
		rc = store_step(st);
	store_reset(st);
	return rc;
}

static int migration_record(store *s, const struct migration *m)
{
	int rc;
	store_stmt *st = store_prepare(
		s, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		&rc);
	if (!st)
		return rc;
	/* The store has no clock of its own; migrations run in the host, and
	 * applied_at is only for operators reading the table. */
	if ((rc = store_bind_int(st, 1, m->version)) == 0 &&
	    (rc = store_bind_text(st, 2, m->name)) == 0 &&
	    (rc = store_bind_int(st, 3, (int64_t)time(NULL))) == 0)
		rc = store_step(st);
	store_reset(st);
	return rc < 0 ? rc : 0;
}

/* Applies one file and its record in one transaction. The applied check is
 * repeated inside the transaction: a second migrator that started at the
 * same time waits on the write lock, then sees the record and skips. */
static int migration_apply(store *s, const char *dir, const struct migration *m, char *err,
			   size_t errlen)
{
	char *path = NULL, *sql = NULL;
	if (asprintf(&path, "%s/%s", dir, m->name) < 0) {
		store_seterr(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	int rc = file_slurp(path, &sql, err, errlen);
	free(path);
	if (rc)
		return rc;
	const char *step = "begin";
	rc = store_begin(s);
	if (rc == 0 && s->drv->migrate_lock_sql) {
		step = "lock";
		rc = store_exec(s, s->drv->migrate_lock_sql);
	}
	if (rc == 0) {
		step = "check";
		rc = migration_applied(s, m->version);
		if (rc == 1) { /* another migrator got there first */
			free(sql);
			return store_rollback(s);
		}
	}
	if (rc == 0) {
		step = "apply";
		rc = store_exec(s, sql);
	}
	if (rc == 0) {
		step = "record";
		rc = migration_record(s, m);
	}
	if (rc == 0) {
		step = "commit";
		rc = store_commit(s);
	}
	if (rc < 0) {
		store_seterr(err, errlen, "%s/%s: %s failed: %s (%s)", dir, m->name, step,
			     store_errmsg(s), err_name(rc));
		store_rollback(s);
	}
	free(sql);
	return rc;
}

int store_migrate(store *s, const char *schema_root, char *err, size_t errlen)
{
	store_seterr(err, errlen, "%s", "");
	if (!s || !schema_root) {
		store_seterr(err, errlen, "store_migrate: no store or schema root");
		return ERR_INVALID;
	}
	char *dir = NULL;
	if (asprintf(&dir, "%s/%s", schema_root, s->service) < 0) {
		store_seterr(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	int rc = store_migrate_dir(s, dir, err, errlen);
	free(dir);
	return rc;
}

int store_migrate_dir(store *s, const char *dir, char *err, size_t errlen)
{
	store_seterr(err, errlen, "%s", "");
	if (!s || !dir) {
		store_seterr(err, errlen, "store_migrate_dir: no store or directory");
		return ERR_INVALID;
	}
	struct migration *m;
	size_t n;
	int rc = migrations_list(dir, &m, &n, err, errlen);
	if (rc || n == 0)
		goto out;
	rc = migrations_table(s);
	if (rc) {
		store_seterr(err, errlen, "creating schema_migrations: %s", store_errmsg(s));
		goto out_m;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		/* Cheap check first so an up-to-date store takes no write lock. */
		rc = migration_applied(s, m[i].version);
		if (rc < 0) {
			store_seterr(err, errlen, "%s/%s: %s", dir, m[i].name, store_errmsg(s));
			break;
		}
		if (rc == 0)
			rc = migration_apply(s, dir, &m[i], err, errlen);
		else
			rc = 0;
	}
out_m:
	migrations_free(m, n);
out:
	return rc;
}

int store_version(store *s)
{
	if (!s)
		return ERR_INVALID;
	int rc = migrations_table(s);
	if (rc)
		return rc;
	store_stmt *st =
		store_prepare(s, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &rc);
	if (!st)
		return rc;
	rc = store_step(st);
	int64_t v = rc == STORE_ROW ? store_col_int(st, 0) : 0;
	store_reset(st);
	if (rc < 0)
		return rc;
	return v > INT_MAX ? INT_MAX : (int)v;
}
