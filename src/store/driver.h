/* driver: the internal vtable between the generic store layer (store.c) and
 * one database backend (store_sqlite.c, store_pg.c). Engines never see
 * it; they use store.h.
 *
 * Split of work. The generic layer owns everything backend-neutral: URL
 * scheme dispatch and masking, one connection per thread, the statement cache
 * (keyed by SQL text), transactions (BEGIN text from the driver, then COMMIT /
 * ROLLBACK), migrations and the capture of error messages. A driver only
 * talks to its database: it opens a shared per-store object (ddb), opens and
 * closes connections (dconn), prepares and runs single statements (dstmt).
 *
 * Threading. The generic layer calls a dconn, and every dstmt prepared on it,
 * from one thread at a time; it may be a different thread over the life of
 * the connection (an idle connection left by an exited thread is handed to
 * the next new thread), so a driver must not keep thread-local state.
 * db_open/db_close are called once per store; ddb must be safe to read from
 * conn_open on several threads at once.
 *
 * SQL. Statements arrive exactly as engines wrote them: '?' placeholders,
 * numbered left to right from 1, in the SQL subset both SQLite and
 * PostgreSQL accept. A driver translates what its backend needs; the libpq
 * driver rewrites each '?' outside string literals, quoted identifiers and
 * comments to $1..$n (and 'exec' text is passed through untouched, since it
 * takes no parameters).
 *
 * Errors. Every call that can fail returns 0 (or a positive result where
 * stated) or a negative enum ecom_err already mapped from the backend's own
 * code, and leaves a human message for errmsg():
 *
 *   condition                        sqlite                  postgresql
 *   unique / primary key violation   CONSTRAINT_PRIMARYKEY,  SQLSTATE 23505
 *                                    CONSTRAINT_UNIQUE       -> ERR_CONFLICT
 *                                    -> ERR_CONFLICT
 *   lock held past the busy timeout  BUSY, LOCKED            55P03 (lock_not_available)
 *                                    -> ERR_BUSY             -> ERR_BUSY
 *   serialization failure, deadlock  (n/a)                   40001, 40P01 -> ERR_RETRY
 *   connection lost / server down    (n/a)                   CONNECTION_BAD, 08xxx,
 *                                                            57P01..03 -> ERR_UNAVAILABLE
 *   bad argument (index range ...)   RANGE -> ERR_INVALID    -> ERR_INVALID
 *   out of memory                    -> ERR_NOMEM            -> ERR_NOMEM
 *   anything else                    -> ERR_STORE            -> ERR_STORE
 *
 * ERR_UNAVAILABLE is special: the generic layer then treats the connection
 * as broken, finalizes its statements, closes it and opens a new one on the
 * thread's next store_prepare/store_exec/store_begin/store_ping. */
#ifndef ECOM_STORE_DRIVER_H
#define ECOM_STORE_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/* Opaque to the generic layer; each driver defines these structs in its own
 * translation unit. */
struct store_ddb;   /* per store: connection parameters, shared state */
struct store_dconn; /* one database connection */
struct store_dstmt; /* one prepared statement on a dconn */

struct store_driver {
	/* "sqlite" or "postgresql"; what store_driver() returns. */
	const char *name;

	/* Statement that opens a write transaction: "BEGIN IMMEDIATE" on
	 * SQLite (take the write lock now, so writers queue on the busy
	 * timeout instead of failing at commit), "BEGIN" on PostgreSQL. */
	const char *begin_sql;

	/* Optional (NULL = none). Run by store_migrate right after begin_sql,
	 * before it re-checks schema_migrations, so that two migrators never
	 * apply the same version: SQLite needs nothing (BEGIN IMMEDIATE already
	 * serializes writers); PostgreSQL uses e.g. "LOCK TABLE
	 * schema_migrations IN SHARE ROW EXCLUSIVE MODE". */
	const char *migrate_lock_sql;

	/* Optional (NULL = each thread writes on its own connection). For a
	 * database that takes one writer at a time anyway (SQLite): how long,
	 * in ms, a writer waits for the one before it (the busy timeout). The
	 * store then runs every thread's transactions on one connection of its
	 * own, taken in turn (see store_begin in store.c). */
	int (*one_writer_wait_ms)(struct store_ddb *db);

	/* Parses url (the whole URL, e.g. "sqlite:DIR?busy_timeout_ms=N" or
	 * "postgresql://user:pass@host/db"), prepares what every connection
	 * needs and checks that the database can be reached (sqlite: creates
	 * DIR, opens DIR/<service>.db once, sets WAL). service is a validated
	 * name ([A-Za-z0-9_-]+). On failure returns a negative code and writes
	 * err; any password it mentions must be masked (store_mask_url). */
	int (*db_open)(const char *url, const char *service, struct store_ddb **out, char *err,
		       size_t errlen);
	/* Called by store_free after every dconn is closed. NULL is fine. */
	void (*db_close)(struct store_ddb *db);

	/* Opens one connection. On failure returns a negative code (ERR_UNAVAILABLE
	 * for an unreachable server) with err filled, *out left NULL. */
	int (*conn_open)(struct store_ddb *db, struct store_dconn **out, char *err, size_t errlen);
	/* Closes c. Every dstmt of c has been finalized before. NULL is fine. */
	void (*conn_close)(struct store_dconn *c);

	/* Prepares exactly one statement (sql as written, '?' placeholders).
	 * The generic layer caches the result per connection, so this runs
	 * once per distinct SQL text per connection. */
	int (*prepare)(struct store_dconn *c, const char *sql, struct store_dstmt **out);
	/* Parameter binding, idx 1-based. Text is copied by the driver. */
	int (*bind_text)(struct store_dstmt *st, int idx, const char *v);
	int (*bind_int)(struct store_dstmt *st, int idx, int64_t v);
	int (*bind_null)(struct store_dstmt *st, int idx);
	/* First call executes with the current bindings; each call returns
	 * STORE_ROW (1) with a row ready, STORE_DONE (0) after the last row,
	 * or a negative mapped error. */
	int (*step)(struct store_dstmt *st);
	/* Current row, col 0-based. Text borrowed until the next step/reset;
	 * NULL for SQL NULL. Out of range behaves as NULL / 0. */
	const char *(*col_text)(struct store_dstmt *st, int col);
	int64_t (*col_int)(struct store_dstmt *st, int col);
	int (*col_is_null)(struct store_dstmt *st, int col);
	/* Rows changed by the last completed INSERT/UPDATE/DELETE on c (pg:
	 * PQcmdTuples of the last result of st). */
	int64_t (*changes)(struct store_dconn *c, struct store_dstmt *st);
	/* Back to "not executed" with all bindings cleared; frees any result.
	 * Never fails (a pending error was already reported by step). */
	void (*reset)(struct store_dstmt *st);
	/* Releases st (pg: DEALLOCATE or leave to conn close). NULL is fine. */
	void (*finalize)(struct store_dstmt *st);

	/* Runs SQL text without parameters or rows; may hold several
	 * statements separated by ';' (DDL, migrations, BEGIN/COMMIT). */
	int (*exec)(struct store_dconn *c, const char *sql);
	/* Non-zero while c is inside an explicit transaction (sqlite:
	 * !sqlite3_get_autocommit; pg: PQtransactionStatus != PQTRANS_IDLE).
	 * Lets the generic layer roll back what an exited thread left open. */
	int (*in_transaction)(struct store_dconn *c);
	/* Message of the most recent failure on c; never NULL. The generic
	 * layer copies it right after a failing call, so it only needs to stay
	 * valid until the next call on c. */
	const char *(*errmsg)(struct store_dconn *c);

	/* Optional (NULL = store_ping runs "SELECT 1" through prepare/step).
	 * 0 when the server answers a trivial query within the driver's own
	 * bound, so that /ready never waits on a stalled server; no answer in
	 * time is ERR_UNAVAILABLE, and c is then unusable (the generic layer
	 * replaces it, as for any ERR_UNAVAILABLE). */
	int (*ping)(struct store_dconn *c);

	/* Optional. 1 when c, idle outside a transaction, is already known dead
	 * without sending anything (the server closed it or said goodbye, as a
	 * restarting PostgreSQL does). The generic layer then replaces c before
	 * the next statement, so a restart costs callers nothing rather than
	 * one failed statement per connection. */
	int (*idle_dead)(struct store_dconn *c);
};

/* The drivers built in. */
extern const struct store_driver store_sqlite_driver;
extern const struct store_driver store_pg_driver;

/* Pieces of the libpq driver that need no server, exposed so that tests can
 * check them without one. store_pg_translate rewrites the '?' placeholders
 * of one statement to $1..$n (see "SQL" above) into *out (malloc'd, caller
 * frees) and sets *nparams; ERR_INVALID for no statement or more than one.
 * store_pg_sqlstate_err maps a SQLSTATE (NULL or "" when libpq gave none)
 * to the codes of the table above; connection_bad says PQstatus was
 * CONNECTION_BAD. */
int store_pg_translate(const char *sql, char **out, int *nparams);
int store_pg_sqlstate_err(const char *sqlstate, int connection_bad);
/* Rewrites migration DDL for PostgreSQL: each "INTEGER PRIMARY KEY" (SQLite's
 * auto-assigned rowid) becomes "BIGINT GENERATED BY DEFAULT AS IDENTITY
 * PRIMARY KEY". Returns a malloc'd string (caller frees), NULL on ENOMEM. */
char *store_pg_translate_ddl(const char *sql);

/* Formats a message into err (size errlen; either may be empty/NULL). For
 * drivers reporting open failures the same way as the generic layer. */
void store_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
