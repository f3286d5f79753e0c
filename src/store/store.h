/* store: the one database API the engines use, with a driver per backend.
 * SQLite is the embedded default (a file per service, WAL); PostgreSQL comes
 * as a second driver behind the same calls. SQL is written once, with '?'
 * placeholders, in the subset both accept; drivers translate what must be.
 *
 * Connections: each thread that touches a store gets its own connection,
 * opened on first use and kept until store_free; prepared statements are
 * cached per connection, keyed by their SQL text. A statement handle is
 * borrowed: use it on the thread that prepared it, then store_reset() it.
 * Transactions are per thread (per connection). */
#ifndef ECOM_STORE_H
#define ECOM_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_stmt store_stmt;

enum store_step_result { STORE_DONE = 0, STORE_ROW = 1 };

/* Opens the store of service for url:
 *   "sqlite:DIR"       DIR/<service>.db
 *   "sqlite::memory:"  a private in-memory database (shared by this store's
 *                      connections)
 *   "postgresql://USER[:PASS]@HOST[:PORT]/DB[?...]" (or "postgres://")
 *                      schema <service> of that database, created if missing
 * NULL url means "sqlite:<state_dir>/data". Returns NULL with err filled (the
 * URL with any password masked) on a malformed URL, a file that cannot be
 * opened or a server that cannot be reached. Owned by the caller: store_free(). */
store *store_open(const char *url, const char *service, const char *state_dir, char *err,
		  size_t errlen);
void store_free(store *s);
/* "sqlite" or "postgresql". */
const char *store_driver(const store *s);

/* Applies, in order, each data file schema_root/<service>/NNN_*.sql whose
 * version NNN is not yet recorded in schema_migrations, each in its own
 * transaction together with its record. Returns 0 or an error with err
 * filled (file and database message). */
int store_migrate(store *s, const char *schema_root, char *err, size_t errlen);
/* The same for the files NNN_*.sql of one directory, recorded in the same
 * schema_migrations: shared schema (the event bus's tables, versions 900
 * and up) applied to any service's store. */
int store_migrate_dir(store *s, const char *dir, char *err, size_t errlen);
/* Highest applied migration version, 0 when none, <0 on error. */
int store_version(store *s);

/* 0 when the database answers a trivial query. */
int store_ping(store *s);

/* Executes SQL text that takes no parameters and returns no rows (DDL,
 * pragmas). Multiple statements allowed. */
int store_exec(store *s, const char *sql);

/* The cached prepared statement for sql on this thread's connection.
 * Borrowed; NULL on error (*err set when err is not NULL). */
store_stmt *store_prepare(store *s, const char *sql, int *err);
/* Bind parameter idx (1-based). Text is copied. */
int store_bind_text(store_stmt *st, int idx, const char *v);
int store_bind_int(store_stmt *st, int idx, int64_t v);
int store_bind_null(store_stmt *st, int idx);
/* Runs or advances: STORE_ROW with a row ready, STORE_DONE at the end, or a
 * negative error: ERR_CONFLICT (unique/primary key violation), ERR_BUSY
 * (locked past the busy timeout), ERR_RETRY, ERR_UNAVAILABLE, ERR_STORE. */
int store_step(store_stmt *st);
/* Column values of the current row (0-based). Text is borrowed until the
 * next step or reset; NULL for SQL NULL. */
const char *store_col_text(store_stmt *st, int col);
int64_t store_col_int(store_stmt *st, int col);
int store_col_is_null(store_stmt *st, int col);
/* Rows changed by the last completed statement on this connection. */
int64_t store_changes(store_stmt *st);
/* Ends use of st: resets it and clears its bindings. NULL is fine. */
void store_reset(store_stmt *st);

/* Prepare and bind in one call: fmt has one letter per '?' of sql, in
 * order: 't' a const char * (NULL binds SQL NULL), 'i' an int64_t (pass
 * int64_t exactly: the arguments are read with va_arg). Returns the
 * statement ready to step (then store_reset it), or NULL with *err set. */
store_stmt *store_queryf(store *s, const char *sql, int *err, const char *fmt, ...);
/* store_queryf, stepped once, for a statement that returns no rows; *changes
 * (may be NULL) gets the rows it changed. 0 or an error. */
int store_runf(store *s, const char *sql, int64_t *changes, const char *fmt, ...);
/* store_queryf for a query of one integer: *out gets the first column of
 * its first row, and stays as it was when there is no row or the value is
 * NULL. 0 or an error. */
int store_intf(store *s, int64_t *out, const char *sql, const char *fmt, ...);

/* Transactions. begin is BEGIN IMMEDIATE on SQLite (writers queue at once
 * rather than failing at commit). On SQLite the transaction runs on the
 * store's one writer connection, which this thread holds until commit or
 * rollback ends it (others wait up to the busy timeout: ERR_BUSY); so a
 * statement used inside it must be prepared after begin, and one prepared
 * inside is not used after the end (store_step refuses either: ERR_STATE).
 * A commit that fails has ended the transaction there; rolling back after
 * it is harmless. On PostgreSQL the transaction is this thread's
 * connection's. */
int store_begin(store *s);
int store_commit(store *s);
int store_rollback(store *s);

/* Runs body(arg) in a transaction (as store_begin): commits
 * when it returns 0, rolls back otherwise, and runs it all again, up to
 * tries times in all, while the database (or body, when a conditional
 * update lost a race) says ERR_BUSY or ERR_RETRY. Returns what body
 * returned (a positive value is the body's own "decided, roll back"), or
 * the error of begin or commit. body may run more than once, so it reads
 * what it acts on inside the transaction and sets its outputs afresh. */
int store_txn(store *s, int tries, int (*body)(void *arg), void *arg);

/* A connection that belongs to no thread, for work that runs one piece at
 * a time on whichever thread: a group commit's leader writes on one
 * connection whoever leads, so its page cache (which SQLite empties when
 * another connection committed since it last read) and its prepared
 * statements stay warm. Owned by the store, freed by store_free; opened on
 * first use. NULL when out of memory. */
typedef struct store_conn store_conn;
store_conn *store_conn_new(store *s);
/* Makes c this thread's connection for every call on s until
 * store_conn_leave(s, the value returned), which gives the thread its own
 * back. The caller makes sure one thread at a time is inside (a mutex or a
 * hand-off); a transaction must not be left open across threads. */
store_conn *store_conn_enter(store *s, store_conn *c);
void store_conn_leave(store *s, store_conn *own);

/* The last error message on this thread's connection ("" when none). */
const char *store_errmsg(store *s);

/* Writes url into buf with any password replaced by "****". */
void store_mask_url(const char *url, char *buf, size_t len);

#endif
