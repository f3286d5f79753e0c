/* Tests of the store API on its SQLite driver, against real database files
 * in a temporary directory that is removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "store/store.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[64];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	chmod(path, 0700);
	return remove(path);
}

static int group_setup(void **state)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/ecom_test_store_XXXXXX");
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int group_teardown(void **state)
{
	return nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under the temporary root for one test. The names live
 * until the end of the run (never reused, so no test sees its path change). */
static char *tdir(const char *name)
{
	static char buf[64][256];
	static int n;
	if (n == 64)
		fail_msg("tdir: more than 64 directories");
	char *b = buf[n++];
	snprintf(b, sizeof(buf[0]), "%s/%s", tmp_root, name);
	mkdir(b, 0700);
	return b;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static store *open_dir(const char *dir)
{
	char url[300], err[256] = "";
	snprintf(url, sizeof(url), "sqlite:%s", dir);
	store *s = store_open(url, "catalog", NULL, err, sizeof(err));
	if (!s)
		fail_msg("store_open(%s): %s", url, err);
	return s;
}

static int64_t query_int(store *s, const char *sql)
{
	int rc = 0;
	store_stmt *st = store_prepare(s, sql, &rc);
	if (!st)
		fail_msg("prepare %s: %d %s", sql, rc, store_errmsg(s));
	assert_int_equal(store_step(st), STORE_ROW);
	int64_t v = store_col_int(st, 0);
	store_reset(st);
	return v;
}

static int insert_kv(store *s, const char *k, const char *v)
{
	int rc = 0;
	store_stmt *st = store_prepare(s, "INSERT INTO kv (k, v) VALUES (?, ?)", &rc);
	if (!st)
		return rc;
	assert_int_equal(store_bind_text(st, 1, k), 0);
	assert_int_equal(store_bind_text(st, 2, v), 0);
	rc = store_step(st);
	store_reset(st);
	return rc;
}

static const char kv_table[] = "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, n INTEGER)";

/* ---- open and migrate ------------------------------------------------- */

static void test_open_migrate_twice(void **state)
{
	char *schema = tdir("schema1");
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/catalog", schema);
	mkdir(sub, 0700);
	write_file(sub, "001_items.sql",
		   "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
		   "INSERT INTO items (name) VALUES ('first');\n");
	char *dir = tdir("db1");
	store *s = open_dir(dir);
	assert_string_equal(store_driver(s), "sqlite");
	char path[400];
	snprintf(path, sizeof(path), "%s/catalog.db", dir);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(store_ping(s), 0);
	assert_int_equal(store_version(s), 0);

	char err[512] = "x";
	assert_int_equal(store_migrate(s, schema, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(store_version(s), 1);
	assert_int_equal(store_migrate(s, schema, err, sizeof(err)), 0);
	assert_int_equal(store_version(s), 1);
	/* Applied once: the insert did not run again. */
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM items"), 1);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM schema_migrations"), 1);
	assert_true(query_int(s, "SELECT applied_at FROM schema_migrations") > 1600000000);
	int rc;
	store_stmt *st = store_prepare(s, "SELECT name FROM schema_migrations", &rc);
	assert_non_null(st);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_string_equal(store_col_text(st, 0), "001_items.sql");
	store_reset(st);
	store_free(s);

	/* Reopened: still version 1 and nothing to do. */
	s = open_dir(dir);
	assert_int_equal(store_version(s), 1);
	assert_int_equal(store_migrate(s, schema, err, sizeof(err)), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM items"), 1);
	/* No schema directory for the service: nothing to apply. */
	assert_int_equal(store_migrate(s, tdir("empty_schema"), err, sizeof(err)), 0);
	store_free(s);
}

static void test_migrate_numeric_order(void **state)
{
	char *schema = tdir("schema2");
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/catalog", schema);
	mkdir(sub, 0700);
	/* "0010" sorts before "002" as text; numerically it comes last and
	 * needs the table 009 creates. */
	write_file(sub, "0010_ten.sql", "INSERT INTO later (v) VALUES (10);\n"
					"INSERT INTO log (v) VALUES (10);");
	write_file(sub, "002_two.sql", "INSERT INTO log (v) VALUES (2);");
	write_file(sub, "009_nine.sql", "CREATE TABLE later (v INTEGER);\n"
					"INSERT INTO log (v) VALUES (9);");
	write_file(sub, "001_one.sql", "CREATE TABLE log (seq INTEGER PRIMARY KEY, v INTEGER);\n"
				       "INSERT INTO log (v) VALUES (1);");
	/* Not migrations: fewer than three digits, wrong suffix, no name. */
	write_file(sub, "01_short.sql", "THIS IS NOT SQL");
	write_file(sub, "003_notes.txt", "THIS IS NOT SQL");
	write_file(sub, "README.md", "THIS IS NOT SQL");

	store *s = open_dir(tdir("db2"));
	char err[512];
	assert_int_equal(store_migrate(s, schema, err, sizeof(err)), 0);
	assert_int_equal(store_version(s), 10);
	int rc;
	store_stmt *st = store_prepare(s, "SELECT v FROM log ORDER BY seq", &rc);
	assert_non_null(st);
	const int want[] = { 1, 2, 9, 10 };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(store_step(st), STORE_ROW);
		assert_int_equal(store_col_int(st, 0), want[i]);
	}
	assert_int_equal(store_step(st), STORE_DONE);
	store_reset(st);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM schema_migrations"), 4);

	/* A failing migration: error names the file, its partial work and
	 * its record are rolled back, the version stays. */
	write_file(sub, "011_bad.sql", "CREATE TABLE half (v INTEGER);\nINSERT INTO nowhere VALUES (1);");
	assert_int_equal(store_migrate(s, schema, err, sizeof(err)), ERR_STORE);
	assert_non_null(strstr(err, "011_bad.sql"));
	assert_non_null(strstr(err, "nowhere"));
	assert_int_equal(store_version(s), 10);
	assert_int_equal(
		query_int(s, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'"), 0);
	/* The store is usable afterwards (no transaction left open). */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_commit(s), 0);

	/* Two files with one version are refused. */
	write_file(sub, "011_bad.sql", "CREATE TABLE fine (v INTEGER);");
	write_file(sub, "0011_dup.sql", "CREATE TABLE dup (v INTEGER);");
	assert_int_equal(store_migrate(s, schema, err, sizeof(err)), ERR_INVALID);
	assert_non_null(strstr(err, "version 11"));
	assert_int_equal(store_version(s), 10);
	store_free(s);
}

struct migrator {
	const char *dir, *schema;
	pthread_barrier_t *bar;
	int rc;
	char err[512];
};

static void *migrator_run(void *p)
{
	struct migrator *m = p;
	char url[300];
	snprintf(url, sizeof(url), "sqlite:%s", m->dir);
	/* A store of its own, as a second process would have. */
	store *s = store_open(url, "catalog", NULL, m->err, sizeof(m->err));
	pthread_barrier_wait(m->bar);
	m->rc = s ? store_migrate(s, m->schema, m->err, sizeof(m->err)) : -100;
	store_free(s);
	return NULL;
}

static void test_concurrent_migrators(void **state)
{
	char *schema = tdir("schema3");
	char sub[300];
	snprintf(sub, sizeof(sub), "%s/catalog", schema);
	mkdir(sub, 0700);
	/* Not idempotent: a second application would fail. */
	write_file(sub, "001_a.sql", "CREATE TABLE a (v INTEGER); INSERT INTO a VALUES (1);");
	write_file(sub, "002_b.sql", "CREATE TABLE b (v INTEGER); INSERT INTO b VALUES (2);");
	for (int round = 0; round < 8; round++) {
		char name[32];
		snprintf(name, sizeof(name), "mig%d", round);
		char *dir = tdir(name);
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, 2);
		struct migrator m[2] = { { dir, schema, &bar, 0, "" }, { dir, schema, &bar, 0, "" } };
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, migrator_run, &m[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&bar);
		for (int i = 0; i < 2; i++)
			if (m[i].rc != 0)
				fail_msg("migrator %d: %d %s", i, m[i].rc, m[i].err);
		store *s = open_dir(dir);
		assert_int_equal(store_version(s), 2);
		assert_int_equal(query_int(s, "SELECT COUNT(*) FROM a"), 1);
		assert_int_equal(query_int(s, "SELECT COUNT(*) FROM b"), 1);
		assert_int_equal(query_int(s, "SELECT COUNT(*) FROM schema_migrations"), 2);
		store_free(s);
	}
}

/* ---- statements ------------------------------------------------------- */

static void test_bind_and_select(void **state)
{
	store *s = open_dir(tdir("db4"));
	assert_int_equal(store_exec(s, kv_table), 0);
	static const char *inject = "Robert'); DROP TABLE kv;--";
	static const char *uni = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \"q\"";
	int rc;
	store_stmt *ins = store_prepare(s, "INSERT INTO kv (k, v, n) VALUES (?, ?, ?)", &rc);
	assert_non_null(ins);
	assert_int_equal(store_bind_text(ins, 1, "inject"), 0);
	assert_int_equal(store_bind_text(ins, 2, inject), 0);
	assert_int_equal(store_bind_int(ins, 3, INT64_MAX), 0);
	assert_int_equal(store_step(ins), STORE_DONE);
	assert_int_equal(store_changes(ins), 1);
	store_reset(ins);

	assert_int_equal(store_bind_text(ins, 1, "it's"), 0);
	assert_int_equal(store_bind_text(ins, 2, uni), 0);
	assert_int_equal(store_bind_int(ins, 3, INT64_MIN), 0);
	assert_int_equal(store_step(ins), STORE_DONE);
	store_reset(ins);

	assert_int_equal(store_bind_text(ins, 1, "nulls"), 0);
	assert_int_equal(store_bind_null(ins, 2), 0);
	assert_int_equal(store_bind_null(ins, 3), 0);
	assert_int_equal(store_step(ins), STORE_DONE);
	store_reset(ins);
	/* Out-of-range parameter index is an argument error. */
	assert_int_equal(store_bind_int(ins, 9, 1), ERR_INVALID);
	store_reset(ins);

	store_stmt *sel = store_prepare(s, "SELECT v, n FROM kv WHERE k = ?", &rc);
	assert_non_null(sel);
	assert_int_equal(store_bind_text(sel, 1, "inject"), 0);
	assert_int_equal(store_step(sel), STORE_ROW);
	assert_string_equal(store_col_text(sel, 0), inject);
	assert_true(store_col_int(sel, 1) == INT64_MAX);
	assert_false(store_col_is_null(sel, 0));
	assert_int_equal(store_step(sel), STORE_DONE);
	store_reset(sel);

	assert_int_equal(store_bind_text(sel, 1, "it's"), 0);
	assert_int_equal(store_step(sel), STORE_ROW);
	assert_string_equal(store_col_text(sel, 0), uni);
	assert_true(store_col_int(sel, 1) == INT64_MIN);
	store_reset(sel);

	assert_int_equal(store_bind_text(sel, 1, "nulls"), 0);
	assert_int_equal(store_step(sel), STORE_ROW);
	assert_null(store_col_text(sel, 0));
	assert_true(store_col_is_null(sel, 0));
	assert_true(store_col_is_null(sel, 1));
	store_reset(sel);

	/* Reset cleared the binding: NULL matches no key. */
	assert_int_equal(store_step(sel), STORE_DONE);
	store_reset(sel);

	/* The injection text did nothing: the table and its rows are there. */
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 3);

	/* Changes of an update touching several rows. */
	store_stmt *up = store_prepare(s, "UPDATE kv SET n = ? WHERE k <> ?", &rc);
	assert_non_null(up);
	assert_int_equal(store_bind_int(up, 1, 7), 0);
	assert_int_equal(store_bind_text(up, 2, "zzz"), 0);
	assert_int_equal(store_step(up), STORE_DONE);
	assert_int_equal(store_changes(up), 3);
	store_reset(up);
	store_reset(NULL);
	store_free(s);
}

static void test_unique_conflict(void **state)
{
	store *s = open_dir(tdir("db5"));
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(store_exec(s, "CREATE TABLE u (id INTEGER PRIMARY KEY, e TEXT UNIQUE)"), 0);
	assert_int_equal(insert_kv(s, "a", "1"), STORE_DONE);
	assert_string_equal(store_errmsg(s), "");
	assert_int_equal(insert_kv(s, "a", "2"), ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(s), "UNIQUE"));
	/* Integer primary key and a UNIQUE column map the same way. */
	assert_int_equal(store_exec(s, "INSERT INTO u VALUES (1, 'x')"), 0);
	assert_int_equal(store_exec(s, "INSERT INTO u VALUES (1, 'y')"), ERR_CONFLICT);
	assert_int_equal(store_exec(s, "INSERT INTO u VALUES (2, 'x')"), ERR_CONFLICT);
	/* Other constraints are plain store errors. */
	assert_int_equal(store_exec(s, "CREATE TABLE nn (v TEXT NOT NULL)"), 0);
	assert_int_equal(store_exec(s, "INSERT INTO nn VALUES (NULL)"), ERR_STORE);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1);
	store_free(s);
}

static void test_prepare_errors(void **state)
{
	store *s = open_dir(tdir("db6"));
	int rc = 0;
	assert_null(store_prepare(s, "SELEC nonsense", &rc));
	assert_int_equal(rc, ERR_STORE);
	assert_non_null(strstr(store_errmsg(s), "syntax error"));
	rc = 0;
	assert_null(store_prepare(s, "SELECT 1; SELECT 2", &rc));
	assert_int_equal(rc, ERR_INVALID);
	assert_null(store_prepare(s, "SELECT * FROM missing", NULL));
	/* A trailing semicolon is still one statement. */
	assert_non_null(store_prepare(s, "SELECT 1;", &rc));
	assert_int_equal(store_exec(s, "NOT SQL"), ERR_STORE);
	store_free(s);
}

static void test_statement_cache(void **state)
{
	store *s = open_dir(tdir("db7"));
	assert_int_equal(store_exec(s, kv_table), 0);
	int rc;
	const char *sql = "SELECT v FROM kv WHERE k = ?";
	store_stmt *a = store_prepare(s, sql, &rc);
	assert_non_null(a);
	store_reset(a);
	char copy[64];
	strcpy(copy, sql); /* same text, different pointer */
	assert_ptr_equal(store_prepare(s, copy, &rc), a);
	store_stmt *b = store_prepare(s, "SELECT k FROM kv", &rc);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	/* Many distinct statements (cache growth) keep their handles. */
	store_stmt *h[100];
	for (int i = 0; i < 100; i++) {
		char q[64];
		snprintf(q, sizeof(q), "SELECT %d", i);
		h[i] = store_prepare(s, q, &rc);
		assert_non_null(h[i]);
	}
	for (int i = 0; i < 100; i++) {
		char q[64];
		snprintf(q, sizeof(q), "SELECT %d", i);
		assert_ptr_equal(store_prepare(s, q, &rc), h[i]);
		assert_int_equal(store_step(h[i]), STORE_ROW);
		assert_int_equal(store_col_int(h[i], 0), i);
		store_reset(h[i]);
	}
	assert_ptr_equal(store_prepare(s, sql, &rc), a);
	/* A handle left mid-use comes back from prepare fresh. */
	assert_int_equal(insert_kv(s, "k", "v"), STORE_DONE);
	assert_int_equal(store_bind_text(a, 1, "k"), 0);
	assert_int_equal(store_step(a), STORE_ROW);
	assert_ptr_equal(store_prepare(s, sql, &rc), a);
	assert_int_equal(store_step(a), STORE_DONE); /* binding was cleared */
	store_reset(a);
	store_free(s);
}

/* ---- transactions ----------------------------------------------------- */

static void test_failed_transaction(void **state)
{
	store *s = open_dir(tdir("db8"));
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(insert_kv(s, "taken", "0"), STORE_DONE);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_begin(s), ERR_STATE);
	assert_int_equal(insert_kv(s, "one", "1"), STORE_DONE);
	assert_int_equal(insert_kv(s, "two", "2"), STORE_DONE);
	assert_int_equal(insert_kv(s, "taken", "3"), ERR_CONFLICT);
	assert_int_equal(store_rollback(s), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE k IN ('one', 'two')"), 0);
	/* Without a transaction: commit is refused, rollback is harmless. */
	assert_int_equal(store_commit(s), ERR_STATE);
	assert_int_equal(store_rollback(s), 0);
	store_free(s);
}

static void test_commit_persists(void **state)
{
	char *dir = tdir("db9");
	store *s = open_dir(dir);
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(insert_kv(s, "kept", "yes"), STORE_DONE);
	assert_int_equal(insert_kv(s, "also", "yes"), STORE_DONE);
	assert_int_equal(store_commit(s), 0);
	store_free(s);

	s = open_dir(dir);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE v = 'yes'"), 2);
	store_free(s);
}

struct writer {
	store *s;
	int id, rows, per_tx;
	int failures;
	store_stmt *seen; /* the insert handle this thread got on its own */
	store_stmt *in_txn; /* the one it got inside its transactions */
	pthread_barrier_t *bar;
};

static void *writer_run(void *p)
{
	struct writer *w = p;
	int rc;
	/* Both threads hold their connection before either can exit (an
	 * exited thread's connection goes to the next new thread). */
	w->seen = store_prepare(w->s, "INSERT INTO kv (k, v, n) VALUES (?, ?, ?)", &rc);
	pthread_barrier_wait(w->bar);
	for (int i = 0; i < w->rows; i += w->per_tx) {
		if (store_begin(w->s) != 0) {
			w->failures++;
			continue;
		}
		for (int j = i; j < i + w->per_tx && j < w->rows; j++) {
			store_stmt *st =
				store_prepare(w->s, "INSERT INTO kv (k, v, n) VALUES (?, ?, ?)", &rc);
			if (!st) {
				w->failures++;
				continue;
			}
			if (!w->in_txn)
				w->in_txn = st;
			if (st != w->in_txn)
				w->failures++;
			char k[32];
			snprintf(k, sizeof(k), "t%d-%d", w->id, j);
			store_bind_text(st, 1, k);
			store_bind_text(st, 2, "v");
			store_bind_int(st, 3, w->id);
			if (store_step(st) != STORE_DONE)
				w->failures++;
			store_reset(st);
		}
		if (store_commit(w->s) != 0) {
			w->failures++;
			store_rollback(w->s);
		}
	}
	return NULL;
}

static void run_writers(store *s, int per_tx)
{
	int rc;
	store_stmt *mine = store_prepare(s, "INSERT INTO kv (k, v, n) VALUES (?, ?, ?)", &rc);
	assert_non_null(mine);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	struct writer w[2] = { { s, 1, 500, per_tx, 0, NULL, NULL, &bar },
			       { s, 2, 500, per_tx, 0, NULL, NULL, &bar } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer_run, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(w[0].failures, 0);
	assert_int_equal(w[1].failures, 0);
	/* Outside a transaction each thread prepared on its own connection;
	 * inside, both wrote on the store's one writer connection. */
	assert_non_null(w[0].seen);
	assert_ptr_not_equal(w[0].seen, mine);
	assert_ptr_not_equal(w[1].seen, mine);
	assert_ptr_not_equal(w[0].seen, w[1].seen);
	assert_non_null(w[0].in_txn);
	assert_ptr_equal(w[0].in_txn, w[1].in_txn);
	assert_ptr_not_equal(w[0].in_txn, w[0].seen);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1000);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE n = 1"), 500);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE n = 2"), 500);
}

static void test_two_threads_file(void **state)
{
	store *s = open_dir(tdir("db10"));
	assert_int_equal(store_exec(s, kv_table), 0);
	run_writers(s, 5);
	store_free(s);
}

static void *begin_and_exit(void *p)
{
	store *s = p;
	int rc;
	if (store_begin(s) == 0) {
		store_stmt *st = store_prepare(s, "INSERT INTO kv (k) VALUES ('abandoned')", &rc);
		if (st)
			store_step(st);
	}
	return NULL; /* exits with the transaction open, holding the writer */
}

struct busy_arg {
	store *s;
	int rc;
	char msg[256];
};

static void *try_begin(void *p)
{
	struct busy_arg *b = p;
	b->rc = store_begin(b->s);
	snprintf(b->msg, sizeof(b->msg), "%s", store_errmsg(b->s));
	if (b->rc == 0)
		store_rollback(b->s);
	return NULL;
}

/* The database file's size in bytes (0 when missing). */
static long long file_size(const char *dir, const char *name)
{
	char path[512];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* Writes about 300 pages into the WAL of a file store opened with url
 * (under SQLite's own 1,000-page threshold), then watches the database file
 * for up to wait_ms: it only grows when a checkpoint copies the WAL back.
 * Returns the file's growth in bytes. */
static long long grow_and_watch(const char *dir, const char *url, int wait_ms)
{
	char err[256] = "";
	store *s = store_open(url, "catalog", NULL, err, sizeof(err));
	if (!s)
		fail_msg("store_open(%s): %s", url, err);
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(query_int(s, "PRAGMA temp_store"), 2); /* MEMORY */
	long long before = file_size(dir, "catalog.db");
	char k[32], v[1100];
	memset(v, 'x', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	assert_int_equal(store_begin(s), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(insert_kv(s, k, v), STORE_DONE);
	}
	assert_int_equal(store_commit(s), 0);
	long long grown = 0;
	for (int waited = 0; waited <= wait_ms; waited += 10) {
		grown = file_size(dir, "catalog.db") - before;
		if (grown > 1000LL * 1000)
			break;
		usleep(10 * 1000);
	}
	store_free(s);
	return grown;
}

/* The driver's checkpointer moves the WAL into the database file within its
 * period, with no commit doing it; with checkpoint_ms=0 nothing does below
 * SQLite's threshold. The connections' automatic threshold is raised. */
static void test_checkpointer(void **state)
{
	char url[300];
	char *on = tdir("ckpt_on");
	snprintf(url, sizeof(url), "sqlite:%s?checkpoint_ms=20", on);
	assert_true(grow_and_watch(on, url, 3000) > 1000LL * 1000);

	char *off = tdir("ckpt_off");
	snprintf(url, sizeof(url), "sqlite:%s?checkpoint_ms=0", off);
	assert_true(grow_and_watch(off, url, 300) < 100LL * 1000);

	store *s = open_dir(tdir("ckpt_default"));
	assert_int_equal(query_int(s, "PRAGMA wal_autocheckpoint"), 10000);
	store_free(s);

	char err[256] = "";
	snprintf(url, sizeof(url), "sqlite:%s?checkpoint_ms=soon", tdir("ckpt_bad"));
	assert_null(store_open(url, "catalog", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "checkpoint_ms=soon"));
}

/* A file store in tdir(name) with the given busy timeout and the kv table. */
static store *open_busy(const char *name, int busy_ms)
{
	char url[300], err[256] = "";
	snprintf(url, sizeof(url), "sqlite:%s?busy_timeout_ms=%d", tdir(name), busy_ms);
	store *s = store_open(url, "catalog", NULL, err, sizeof(err));
	if (!s)
		fail_msg("store_open(%s): %s", url, err);
	assert_int_equal(store_exec(s, kv_table), 0);
	return s;
}

static void test_busy_and_thread_exit(void **state)
{
	store *s = open_busy("db11", 50);

	/* Another thread waits 50 ms for the write lock, then gets ERR_BUSY. */
	assert_int_equal(store_begin(s), 0);
	struct busy_arg b = { s, 1, "" };
	pthread_t t;
	pthread_create(&t, NULL, try_begin, &b);
	pthread_join(t, NULL);
	assert_int_equal(b.rc, ERR_BUSY);
	assert_non_null(strstr(b.msg, "locked"));
	assert_int_equal(store_rollback(s), 0);

	/* A thread that exits inside a transaction has it rolled back, so the
	 * lock is free and its row is gone. */
	pthread_create(&t, NULL, begin_and_exit, s);
	pthread_join(t, NULL);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 0);
	/* Its idle connection is taken over by the next thread. */
	b.rc = 1;
	pthread_create(&t, NULL, try_begin, &b);
	pthread_join(t, NULL);
	assert_int_equal(b.rc, 0);
	store_free(s);
}

/* ---- memory databases ------------------------------------------------- */

struct mem_reader {
	store *s;
	int64_t count;
};

/* No cmocka assertions off the main thread: they longjmp. */
static void *mem_read(void *p)
{
	struct mem_reader *r = p;
	int rc;
	store_stmt *st = store_prepare(r->s, "SELECT COUNT(*) FROM kv", &rc);
	if (st && store_step(st) == STORE_ROW)
		r->count = store_col_int(st, 0);
	store_reset(st);
	return NULL;
}

static void test_memory(void **state)
{
	char err[256];
	store *s = store_open("sqlite::memory:", "catalog", NULL, err, sizeof(err));
	assert_non_null(s);
	assert_string_equal(store_driver(s), "sqlite");
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(insert_kv(s, "main", "1"), STORE_DONE);
	/* Another thread's connection sees the same database. */
	struct mem_reader r = { s, -1 };
	pthread_t t;
	pthread_create(&t, NULL, mem_read, &r);
	pthread_join(t, NULL);
	assert_int_equal(r.count, 1);
	assert_int_equal(store_exec(s, "DELETE FROM kv"), 0);
	/* Concurrent writers queue rather than fail. */
	run_writers(s, 10);

	/* A rolled-back transaction leaves nothing behind here too. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(insert_kv(s, "gone", "1"), STORE_DONE);
	assert_int_equal(store_rollback(s), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1000);

	/* A second memory store of the same service is a separate database. */
	store *s2 = store_open("sqlite::memory:", "catalog", NULL, err, sizeof(err));
	assert_non_null(s2);
	assert_int_equal(store_exec(s2, kv_table), 0);
	assert_int_equal(query_int(s2, "SELECT COUNT(*) FROM kv"), 0);
	store_free(s2);
	store_free(s);

	/* And it is gone with its store. */
	s = store_open("sqlite::memory:", "catalog", NULL, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_exec(s, kv_table), 0);
	store_free(s);
}

/* ---- URLs and failures ------------------------------------------------ */

static void test_default_url(void **state)
{
	char *sd = tdir("state");
	char err[256];
	store *s = store_open(NULL, "orders", sd, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_ping(s), 0);
	char path[400];
	snprintf(path, sizeof(path), "%s/data/orders.db", sd);
	assert_int_equal(access(path, F_OK), 0);
	store_free(s);
	store_free(NULL);
}

static void test_bad_urls(void **state)
{
	char err[256];
	err[0] = '\0';
	assert_null(store_open("mysql://x", "catalog", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "unsupported store URL: mysql://x"));
	err[0] = '\0';
	assert_null(store_open("sqlite:", "catalog", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "empty directory"));
	err[0] = '\0';
	assert_null(store_open("sqlite:?busy_timeout_ms=5", "catalog", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "empty directory"));
	err[0] = '\0';
	assert_null(store_open("", "catalog", NULL, err, sizeof(err)));
	assert_true(err[0] != '\0');
	char url[300];
	snprintf(url, sizeof(url), "sqlite:%s?cache=huge", tdir("db12"));
	err[0] = '\0';
	assert_null(store_open(url, "catalog", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cache=huge"));
	snprintf(url, sizeof(url), "sqlite:%s?busy_timeout_ms=-1", tdir("db12"));
	assert_null(store_open(url, "catalog", NULL, err, sizeof(err)));
	err[0] = '\0';
	assert_null(store_open(NULL, "catalog", NULL, err, sizeof(err)));
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_null(store_open("sqlite::memory:", "../etc", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "service"));
	assert_null(store_open("sqlite::memory:", NULL, NULL, NULL, 0));
	/* A file that is not a database. */
	char *dir = tdir("db13");
	write_file(dir, "catalog.db", "this is not a database file, just some text. padding padding "
				      "padding padding padding padding padding padding padding.");
	snprintf(url, sizeof(url), "sqlite:%s", dir);
	err[0] = '\0';
	assert_null(store_open(url, "catalog", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "catalog.db"));
}

static void test_unwritable_dir(void **state)
{
	char *dir = tdir("ro");
	write_file(dir, "plainfile", "x");
	char url[300], want[400], err[256] = "";
	snprintf(url, sizeof(url), "sqlite:%s/plainfile/data", dir);
	assert_null(store_open(url, "catalog", NULL, err, sizeof(err)));
	snprintf(want, sizeof(want), "cannot create %s/plainfile/data: Not a directory", dir);
	assert_string_equal(err, want);

	if (geteuid() != 0) { /* root ignores permissions */
		char *locked = tdir("locked");
		chmod(locked, 0500);
		snprintf(url, sizeof(url), "sqlite:%s/data", locked);
		assert_null(store_open(url, "catalog", NULL, err, sizeof(err)));
		snprintf(want, sizeof(want), "cannot create %s/data: Permission denied", locked);
		assert_string_equal(err, want);
		chmod(locked, 0700);
	}
}

static void test_mask_url(void **state)
{
	char buf[256];
	store_mask_url("postgresql://user:secret@db.example:5432/ecom", buf, sizeof(buf));
	assert_string_equal(buf, "postgresql://user:****@db.example:5432/ecom");
	store_mask_url("postgres://u:p@ss@host/db?sslmode=require", buf, sizeof(buf));
	assert_string_equal(buf, "postgres://u:****@host/db?sslmode=require");
	store_mask_url("postgresql://user@host/db", buf, sizeof(buf));
	assert_string_equal(buf, "postgresql://user@host/db");
	store_mask_url("postgresql://host/db?user=u&password=hunter2&sslmode=disable", buf,
		       sizeof(buf));
	assert_string_equal(buf, "postgresql://host/db?user=u&password=****&sslmode=disable");
	store_mask_url("postgresql://host/db?x=1@2:3", buf, sizeof(buf));
	assert_string_equal(buf, "postgresql://host/db?x=1@2:3");
	store_mask_url("sqlite:/var/lib/ecom", buf, sizeof(buf));
	assert_string_equal(buf, "sqlite:/var/lib/ecom");
	store_mask_url(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "");
	/* Truncation never leaks the secret and always terminates. */
	char small[22];
	store_mask_url("postgresql://user:secret@host/db", small, sizeof(small));
	assert_string_equal(small, "postgresql://user:***");
	assert_null(strstr(small, "sec"));
	store_mask_url("x", small, 0);
}

/* The PostgreSQL driver is built in; these need no server. A malformed URL
 * and an unreachable one are one clear line naming the URL, never the
 * password (libpq itself quotes a malformed URL whole). */
static void test_postgres_bad_urls(void **state)
{
	char err[256] = "";
	assert_null(store_open("postgresql://user:pw@[::1/db", "catalog", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "bad store URL postgresql://user:****@[::1/db: "));
	assert_null(strstr(err, ":pw@"));
	err[0] = '\0';
	assert_null(store_open("postgres://user:hunter2@127.0.0.1/db?nosuch=1", "catalog", NULL,
			       err, sizeof(err)));
	assert_string_equal(err, "bad store URL postgres://user:****@127.0.0.1/db?nosuch=1: "
				 "invalid URI query parameter: \"nosuch\"");
	err[0] = '\0';
	assert_null(store_open("postgresql://u:secretpw@127.0.0.1:1/x", "catalog", NULL, err,
			       sizeof(err)));
	assert_non_null(strstr(err, "cannot connect to postgresql://u:****@127.0.0.1:1/x: "));
	assert_null(strstr(err, "secretpw"));
	assert_null(strchr(err, '\n'));
}

/* ---- a connection handed between threads ----------------------------- */

/* A TEMP table lives on one connection only: seen through the shared
 * connection from any thread that enters it, never through a thread's
 * own. */
struct shared_arg {
	store *s;
	store_conn *c;
	int64_t seen_shared, seen_own;
};

static void *enter_and_count(void *p)
{
	struct shared_arg *a = p;
	a->seen_own = query_int(a->s, "SELECT COUNT(*) FROM sqlite_temp_master");
	store_conn *own = store_conn_enter(a->s, a->c);
	a->seen_shared = query_int(a->s, "SELECT COUNT(*) FROM sqlite_temp_master");
	store_conn_leave(a->s, own);
	return NULL;
}

static void test_shared_connection(void **state)
{
	store *s = open_dir(tdir("db_shared"));
	store_conn *c = store_conn_new(s);
	assert_non_null(c);
	store_conn *own = store_conn_enter(s, c);
	assert_null(own); /* this thread had not used the store yet */
	assert_int_equal(store_exec(s, "CREATE TEMP TABLE t (x INTEGER)"), 0);
	store_conn_leave(s, own);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM sqlite_temp_master"), 0);
	struct shared_arg a = { .s = s, .c = c, .seen_shared = -1, .seen_own = -1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, enter_and_count, &a), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.seen_shared, 1);
	assert_int_equal(a.seen_own, 0);
	/* back on its own connection, this thread still does not see it */
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM sqlite_temp_master"), 0);
	store_free(s); /* frees the shared connection too */
}

/* store_step refuses st (ERR_STATE) with a message that says why (what). */
static void step_refused(store *s, store_stmt *st, const char *what)
{
	assert_int_equal(store_step(st), ERR_STATE);
	assert_non_null(strstr(store_errmsg(s), what));
	store_reset(st);
}

/* The one writer is handed on however a transaction ends: a failed
 * statement's message stays with its thread after the rollback, and a
 * commit that fails (a deferred foreign key) ends the transaction, so the
 * next writer does not wait for a rollback its caller may never send. */
static void test_one_writer_handed_on(void **state)
{
	store *s = open_busy("db_writer", 200);
	assert_int_equal(insert_kv(s, "taken", "0"), STORE_DONE);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(insert_kv(s, "taken", "1"), ERR_CONFLICT);
	assert_int_equal(store_rollback(s), 0);
	assert_non_null(strstr(store_errmsg(s), "UNIQUE"));

	assert_int_equal(store_exec(s, "CREATE TABLE parent (id INTEGER PRIMARY KEY)"), 0);
	assert_int_equal(store_exec(s, "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER "
				       "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"),
			 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_exec(s, "INSERT INTO child (id, parent) VALUES (1, 42)"), 0);
	assert_true(store_commit(s) < 0);
	assert_non_null(strstr(store_errmsg(s), "FOREIGN KEY"));
	struct busy_arg b = { s, 1, "" };
	pthread_t t;
	pthread_create(&t, NULL, try_begin, &b);
	pthread_join(t, NULL);
	assert_int_equal(b.rc, 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM child"), 0);
	/* The caller's rollback after it is harmless. */
	assert_int_equal(store_rollback(s), 0);

	/* A statement prepared before begin would run outside the
	 * transaction, one prepared inside on a writer no longer held: both
	 * refused, nothing written. */
	int rc;
	store_stmt *early = store_prepare(s, "INSERT INTO kv (k, v) VALUES ('early', 'x')", &rc);
	assert_non_null(early);
	assert_int_equal(store_begin(s), 0);
	step_refused(s, early, "before store_begin");
	store_stmt *inside = store_prepare(s, "INSERT INTO kv (k, v) VALUES ('late', 'x')", &rc);
	assert_non_null(inside);
	assert_int_equal(store_commit(s), 0);
	step_refused(s, inside, "has ended");
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE k IN ('early', 'late')"), 0);
	/* Outside a transaction the thread's own statement runs as before. */
	assert_int_equal(store_step(early), STORE_DONE);
	store_reset(early);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE k = 'early'"), 1);
	store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_migrate_twice),
		cmocka_unit_test(test_migrate_numeric_order),
		cmocka_unit_test(test_concurrent_migrators),
		cmocka_unit_test(test_bind_and_select),
		cmocka_unit_test(test_unique_conflict),
		cmocka_unit_test(test_prepare_errors),
		cmocka_unit_test(test_statement_cache),
		cmocka_unit_test(test_failed_transaction),
		cmocka_unit_test(test_commit_persists),
		cmocka_unit_test(test_two_threads_file),
		cmocka_unit_test(test_busy_and_thread_exit),
		cmocka_unit_test(test_one_writer_handed_on),
		cmocka_unit_test(test_checkpointer),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_default_url),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_unwritable_dir),
		cmocka_unit_test(test_mask_url),
		cmocka_unit_test(test_postgres_bad_urls),
		cmocka_unit_test(test_shared_connection),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
