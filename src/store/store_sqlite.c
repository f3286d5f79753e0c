/* store_sqlite: the SQLite driver behind store.h (see driver.h).
 *
 * "sqlite:DIR[?busy_timeout_ms=N]" is the file DIR/<service>.db in WAL mode;
 * "sqlite::memory:[?busy_timeout_ms=N]" is an in-memory database private to
 * the store but shared by all of its connections. The memory database uses
 * the memdb VFS ("file:/name?vfs=memdb") rather than a shared-cache
 * ":memory:" because shared cache locks per table and answers SQLITE_LOCKED
 * at once, without honouring the busy timeout, so two threads writing would
 * fail instead of queueing; memdb locks like a file. A keeper connection
 * holds the memory database alive until the store is freed.
 *
 * Checkpoints. SQLite's default moves the WAL back into the database file
 * on the commit that crosses 1,000 WAL pages, in the committing thread,
 * with two fdatasync calls: every writer queued behind that commit waits
 * for the disk. A file store here instead runs a PASSIVE checkpoint every
 * checkpoint_ms (default SQLITE_DEFAULT_CHECKPOINT_MS) on a thread and a
 * connection of its own, which never blocks writers, and raises the
 * connections' automatic threshold to SQLITE_AUTOCHECKPOINT_PAGES, a bound
 * for when the checkpointer falls behind rather than the routine.
 * checkpoint_ms=0 in the URL leaves checkpoints to SQLite as by default.
 * With synchronous=NORMAL, what a power loss can take is what the last
 * checkpoint_ms of WAL holds (a process crash loses nothing). */
#include "store/driver.h"
#include "store/store.h"
#include "core/err.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SQLITE_DEFAULT_BUSY_MS 5000
#define SQLITE_MAX_BUSY_MS 3600000
#define SQLITE_DEFAULT_CHECKPOINT_MS 100
#define SQLITE_MAX_CHECKPOINT_MS 3600000
#define SQLITE_AUTOCHECKPOINT_PAGES 10000
#define STR_(x) #x
#define STR(x) STR_(x)

struct store_ddb {
	char *path;      /* file name or memdb URI handed to sqlite3_open_v2 */
	int flags;
	int busy_ms;
	int memory;
	sqlite3 *keeper; /* memory only: keeps the database alive */
	int checkpoint_ms; /* 0: SQLite's own automatic checkpoints */
	/* The checkpointer (file stores with checkpoint_ms > 0). */
	pthread_t ckpt_thread;
	int ckpt_running;
	int ckpt_stop;
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cv;
};

struct store_dconn {
	sqlite3 *db;
	const char *own_err; /* a failure found by the driver, not by SQLite */
};

struct store_dstmt {
	sqlite3_stmt *st;
	struct store_dconn *c;
};

/* Distinguishes the memory databases of several stores of one service in a
 * process (tests, the simulator restarting an engine). */
static atomic_uint sqlite_mem_counter;

static int sqlite_map(int rc)
{
	switch (rc) {
	case SQLITE_OK:
	case SQLITE_DONE:
		return 0;
	case SQLITE_ROW:
		return STORE_ROW;
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_ROWID:
		return ERR_CONFLICT;
	}
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return ERR_BUSY;
	case SQLITE_RANGE:
		return ERR_INVALID;
	case SQLITE_NOMEM:
		return ERR_NOMEM;
	default:
		return ERR_STORE;
	}
}

/* Every failing path goes through here so errmsg() never reports a stale
 * driver message for a newer SQLite failure. */
static int sqlite_fail(struct store_dconn *c, int rc)
{
	c->own_err = NULL;
	return sqlite_map(rc);
}

/* mkdir -p with mode 0700 for the parts that do not exist yet. */
static int sqlite_mkdirs(const char *dir, char *err, size_t errlen)
{
	char *p = strdup(dir);
	if (!p)
		return ERR_NOMEM;
	int rc = 0;
	size_t n = strlen(p);
	for (size_t i = 1; i <= n && rc == 0; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char saved = p[i];
		p[i] = '\0';
		if (mkdir(p, 0700) != 0) {
			int e = errno;
			struct stat sb;
			if (e == EEXIST) {
				if (stat(p, &sb) != 0)
					e = errno;
				else if (!S_ISDIR(sb.st_mode))
					e = ENOTDIR;
				else
					e = 0;
			}
			if (e) {
				store_seterr(err, errlen, "cannot create %s: %s", dir, strerror(e));
				rc = ERR_IO;
			}
		}
		p[i] = saved;
	}
	free(p);
	return rc;
}

/* Parses the number in "key=N" (len bytes at q) into *v when the option
 * is key; 1 when it is, 0 when it is another option, ERR_PARSE when the
 * number is bad or above max. */
static int sqlite_opt_int(const char *q, size_t len, const char *key, long max, int *v)
{
	size_t kl = strlen(key);
	if (len <= kl || strncmp(q, key, kl) != 0)
		return 0;
	char num[16];
	size_t nl = len - kl;
	if (nl >= sizeof(num))
		return ERR_PARSE;
	memcpy(num, q + kl, nl);
	num[nl] = '\0';
	char *e;
	errno = 0;
	long n = strtol(num, &e, 10);
	if (errno || *e || e == num || n < 0 || n > max)
		return ERR_PARSE;
	*v = (int)n;
	return 1;
}

/* Query options after '?': busy_timeout_ms=N, checkpoint_ms=N. */
static int sqlite_parse_query(const char *q, struct store_ddb *d, char *err, size_t errlen)
{
	while (q && *q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		int rc = sqlite_opt_int(q, len, "busy_timeout_ms=", SQLITE_MAX_BUSY_MS, &d->busy_ms);
		if (rc == 0)
			rc = sqlite_opt_int(q, len, "checkpoint_ms=", SQLITE_MAX_CHECKPOINT_MS,
					    &d->checkpoint_ms);
		if (rc <= 0)
			goto bad;
		q = end ? end + 1 : NULL;
	}
	return 0;
bad:
	store_seterr(err, errlen,
		      "bad store URL option '%.*s' (known: busy_timeout_ms=N, checkpoint_ms=N)",
		      (int)strcspn(q, "&"), q);
	return ERR_PARSE;
}

static void sqlite_conn_close(struct store_dconn *c)
{
	if (!c)
		return;
	sqlite3_close_v2(c->db);
	free(c);
}

static int sqlite_conn_open(struct store_ddb *d, struct store_dconn **out, char *err,
			    size_t errlen)
{
	*out = NULL;
	struct store_dconn *c = calloc(1, sizeof(*c));
	if (!c) {
		store_seterr(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	int rc = sqlite3_open_v2(d->path, &c->db, d->flags, NULL);
	if (rc != SQLITE_OK) {
		store_seterr(err, errlen, "cannot open %s: %s", d->path,
			      c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		sqlite_conn_close(c);
		return rc == SQLITE_NOMEM ? ERR_NOMEM : ERR_IO;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, d->busy_ms);
	char pragmas[160];
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;%s",
		 d->checkpoint_ms > 0 && !d->memory
			 ? " PRAGMA wal_autocheckpoint=" STR(SQLITE_AUTOCHECKPOINT_PAGES) ";"
			 : "");
	rc = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		store_seterr(err, errlen, "cannot open %s: %s", d->path, sqlite3_errmsg(c->db));
		sqlite_conn_close(c);
		return sqlite_map(rc);
	}
	*out = c;
	return 0;
}

/* The checkpointer: a PASSIVE checkpoint every checkpoint_ms on its own
 * connection until db_close asks it to stop. A failed checkpoint (a busy
 * database, a full disk) is left for the next round, and the connections'
 * automatic threshold bounds the WAL meanwhile. */
static void *sqlite_checkpointer(void *arg)
{
	struct store_ddb *d = arg;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(d->path, &db, d->flags, NULL) != SQLITE_OK) {
		sqlite3_close_v2(db);
		return NULL;
	}
	/* A connection learns the file is in WAL mode when it first reads it;
	 * until then a checkpoint is a no-op. */
	sqlite3_busy_timeout(db, d->busy_ms);
	sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL);
	pthread_mutex_lock(&d->ckpt_mu);
	while (!d->ckpt_stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)(d->checkpoint_ms % 1000) * 1000000L;
		until.tv_sec += d->checkpoint_ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!d->ckpt_stop &&
		       pthread_cond_timedwait(&d->ckpt_cv, &d->ckpt_mu, &until) != ETIMEDOUT)
			;
		if (d->ckpt_stop)
			break;
		pthread_mutex_unlock(&d->ckpt_mu);
		sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&d->ckpt_mu);
	}
	pthread_mutex_unlock(&d->ckpt_mu);
	sqlite3_close_v2(db);
	return NULL;
}

static void sqlite_db_close(struct store_ddb *d)
{
	if (!d)
		return;
	if (d->ckpt_running) {
		pthread_mutex_lock(&d->ckpt_mu);
		d->ckpt_stop = 1;
		pthread_cond_signal(&d->ckpt_cv);
		pthread_mutex_unlock(&d->ckpt_mu);
		pthread_join(d->ckpt_thread, NULL);
	}
	pthread_cond_destroy(&d->ckpt_cv);
	pthread_mutex_destroy(&d->ckpt_mu);
	if (d->keeper)
		sqlite3_close_v2(d->keeper);
	free(d->path);
	free(d);
}

/* WAL is a property of the file, so it is set once here rather than per
 * connection. Reading the mode back also proves the file is a database.
 * Switching needs an exclusive lock, and SQLite answers SQLITE_BUSY without
 * waiting when two fresh connections both try (each holds the shared lock
 * the other must wait out), so a busy answer is retried here. */
static int sqlite_set_wal(struct store_dconn *c, const struct store_ddb *d, char *err,
			  size_t errlen)
{
	int waited_ms = 0, rc;
	for (;;) {
		sqlite3_stmt *st = NULL;
		rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc == SQLITE_ROW)
			return 0;
		if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= d->busy_ms)
			break;
		sqlite3_sleep(2);
		waited_ms += 2;
	}
	store_seterr(err, errlen, "cannot open %s: %s", d->path, sqlite3_errmsg(c->db));
	return sqlite_map(rc) < 0 ? sqlite_map(rc) : ERR_STORE;
}

static int sqlite_db_open(const char *url, const char *service, struct store_ddb **out, char *err,
			  size_t errlen)
{
	*out = NULL;
	if (strncmp(url, "sqlite:", 7) != 0) {
		store_seterr(err, errlen, "not a sqlite URL: %s", url);
		return ERR_PARSE;
	}
	if (sqlite3_threadsafe() == 0) {
		store_seterr(err, errlen, "libsqlite3 is built without thread support");
		return ERR_STORE;
	}
	struct store_ddb *d = calloc(1, sizeof(*d));
	if (!d)
		return ERR_NOMEM;
	d->busy_ms = SQLITE_DEFAULT_BUSY_MS;
	d->checkpoint_ms = SQLITE_DEFAULT_CHECKPOINT_MS;
	pthread_mutex_init(&d->ckpt_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->ckpt_cv, &ca);
	pthread_condattr_destroy(&ca);
	d->flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

	const char *rest = url + 7;
	const char *q = strchr(rest, '?');
	size_t dirlen = q ? (size_t)(q - rest) : strlen(rest);
	int rc = sqlite_parse_query(q ? q + 1 : NULL, d, err, errlen);
	if (rc)
		goto fail;
	char *dir = strndup(rest, dirlen);
	if (!dir) {
		rc = ERR_NOMEM;
		goto fail;
	}
	if (strcmp(dir, ":memory:") == 0) {
		d->memory = 1;
		d->flags |= SQLITE_OPEN_URI;
		unsigned n = atomic_fetch_add(&sqlite_mem_counter, 1);
		if (asprintf(&d->path, "file:/ecom_mem_%s_%ld_%u?vfs=memdb", service,
			     (long)getpid(), n) < 0)
			d->path = NULL;
	} else if (dir[0] == '\0') {
		store_seterr(err, errlen,
			      "empty directory in store URL (expected sqlite:DIR or sqlite::memory:)");
		rc = ERR_PARSE;
	} else {
		rc = sqlite_mkdirs(dir, err, errlen);
		/* libsqlite3 here interprets "file:" names as URIs by default;
		 * a directory that happens to start so stays a plain path. */
		const char *pre = strncmp(dir, "file:", 5) == 0 ? "./" : "";
		if (rc == 0 && asprintf(&d->path, "%s%s/%s.db", pre, dir, service) < 0)
			d->path = NULL;
	}
	free(dir);
	if (rc)
		goto fail;
	if (!d->path) {
		rc = ERR_NOMEM;
		goto fail;
	}

	struct store_dconn *c;
	rc = sqlite_conn_open(d, &c, err, errlen);
	if (rc)
		goto fail;
	if (d->memory) {
		d->keeper = c->db;
		free(c);
	} else {
		rc = sqlite_set_wal(c, d, err, errlen);
		sqlite_conn_close(c);
		if (rc)
			goto fail;
		if (d->checkpoint_ms > 0 &&
		    pthread_create(&d->ckpt_thread, NULL, sqlite_checkpointer, d) == 0)
			d->ckpt_running = 1;
	}
	*out = d;
	return 0;
fail:
	sqlite_db_close(d);
	return rc;
}

static int sqlite_prepare(struct store_dconn *c, const char *sql, struct store_dstmt **out)
{
	*out = NULL;
	struct store_dstmt *s = calloc(1, sizeof(*s));
	if (!s) {
		c->own_err = "out of memory";
		return ERR_NOMEM;
	}
	const char *tail = NULL;
	int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, &tail);
	if (rc != SQLITE_OK) {
		free(s);
		return sqlite_fail(c, rc);
	}
	if (!s->st || (tail && tail[strspn(tail, " \t\r\n;")] != '\0')) {
		sqlite3_finalize(s->st);
		free(s);
		c->own_err = "store_prepare takes exactly one statement";
		return ERR_INVALID;
	}
	s->c = c;
	*out = s;
	return 0;
}

static int sqlite_bind_text(struct store_dstmt *s, int idx, const char *v)
{
	int rc = sqlite3_bind_text(s->st, idx, v, -1, SQLITE_TRANSIENT);
	return rc == SQLITE_OK ? 0 : sqlite_fail(s->c, rc);
}

static int sqlite_bind_int(struct store_dstmt *s, int idx, int64_t v)
{
	int rc = sqlite3_bind_int64(s->st, idx, v);
	return rc == SQLITE_OK ? 0 : sqlite_fail(s->c, rc);
}

static int sqlite_bind_null(struct store_dstmt *s, int idx)
{
	int rc = sqlite3_bind_null(s->st, idx);
	return rc == SQLITE_OK ? 0 : sqlite_fail(s->c, rc);
}

static int sqlite_step(struct store_dstmt *s)
{
	int rc = sqlite3_step(s->st);
	if (rc == SQLITE_ROW)
		return STORE_ROW;
	if (rc == SQLITE_DONE)
		return STORE_DONE;
	return sqlite_fail(s->c, rc);
}

static const char *sqlite_col_text(struct store_dstmt *s, int col)
{
	return (const char *)sqlite3_column_text(s->st, col);
}

static int64_t sqlite_col_int(struct store_dstmt *s, int col)
{
	return sqlite3_column_int64(s->st, col);
}

static int sqlite_col_is_null(struct store_dstmt *s, int col)
{
	return sqlite3_column_type(s->st, col) == SQLITE_NULL;
}

static int64_t sqlite_changes(struct store_dconn *c, struct store_dstmt *s)
{
	return sqlite3_changes64(c->db);
}

static void sqlite_reset(struct store_dstmt *s)
{
	sqlite3_reset(s->st);
	sqlite3_clear_bindings(s->st);
}

static void sqlite_finalize(struct store_dstmt *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->st);
	free(s);
}

static int sqlite_exec(struct store_dconn *c, const char *sql)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sqlite_fail(c, rc);
}

static int sqlite_in_transaction(struct store_dconn *c)
{
	return !sqlite3_get_autocommit(c->db);
}

static const char *sqlite_errmsg(struct store_dconn *c)
{
	return c->own_err ? c->own_err : sqlite3_errmsg(c->db);
}

static int sqlite_busy_ms(struct store_ddb *d)
{
	return d->busy_ms;
}

const struct store_driver store_sqlite_driver = {
	.name = "sqlite",
	.begin_sql = "BEGIN IMMEDIATE",
	.migrate_lock_sql = NULL,
	.one_writer_wait_ms = sqlite_busy_ms,
	.db_open = sqlite_db_open,
	.db_close = sqlite_db_close,
	.conn_open = sqlite_conn_open,
	.conn_close = sqlite_conn_close,
	.prepare = sqlite_prepare,
	.bind_text = sqlite_bind_text,
	.bind_int = sqlite_bind_int,
	.bind_null = sqlite_bind_null,
	.step = sqlite_step,
	.col_text = sqlite_col_text,
	.col_int = sqlite_col_int,
	.col_is_null = sqlite_col_is_null,
	.changes = sqlite_changes,
	.reset = sqlite_reset,
	.finalize = sqlite_finalize,
	.exec = sqlite_exec,
	.in_transaction = sqlite_in_transaction,
	.errmsg = sqlite_errmsg,
};
