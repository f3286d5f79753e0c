/* Tests of the store API on its PostgreSQL driver. The placeholder rewriting
 * and the SQLSTATE mapping need no server and always run; everything else
 * runs against the server named by ECOM_TEST_PG_URL (a libpq URL of a
 * database the tests may create schemas in) and is skipped without it.
 * Each test works in a fresh schema (a random service name) and drops it at
 * the end; the group teardown drops whatever a failed test left behind.
 *
 * Outages are made with a loopback TCP proxy in front of the server, which
 * the tests can stall (keep connections open, forward nothing) or close
 * (drop every connection and refuse new ones) and bring back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "services/catalog.h"
#include "services/engine.h"
#include "store/driver.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *pg_url; /* NULL: the server tests skip */
static char tmp_root[64];
static char services[64][40]; /* every schema made, for the teardown */
static int nservices;

static void need_pg(void)
{
	if (!pg_url)
		skip();
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A new service name, so each test has a schema of its own. */
static const char *fresh_service(void)
{
	static unsigned counter;
	if (nservices == 64)
		fail_msg("fresh_service: more than 64 schemas");
	char *b = services[nservices++];
	unsigned r = 0;
	FILE *f = fopen("/dev/urandom", "rb");
	if (!f || fread(&r, sizeof(r), 1, f) != 1)
		r = (unsigned)time(NULL);
	if (f)
		fclose(f);
	snprintf(b, sizeof(services[0]), "t_%ld_%u_%08x", (long)getpid(), ++counter, r);
	return b;
}

static void quiet(void *arg, const char *message)
{
}

/* Drops the schema of service directly through libpq. */
static void drop_service(const char *svc)
{
	PGconn *pg = PQconnectdb(pg_url);
	if (PQstatus(pg) == CONNECTION_OK) {
		char *id = PQescapeIdentifier(pg, svc, strlen(svc));
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", id);
		PQfreemem(id);
		PQsetNoticeProcessor(pg, quiet, NULL);
		PQclear(PQexec(pg, sql));
	}
	PQfinish(pg);
}

static int schema_exists(const char *svc)
{
	PGconn *pg = PQconnectdb(pg_url);
	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	const char *v[1] = { svc };
	PGresult *r = PQexecParams(pg, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, NULL,
				   v, NULL, NULL, 0);
	int n = PQntuples(r);
	PQclear(r);
	PQfinish(pg);
	return n;
}

static store *open_url(const char *url, const char *svc)
{
	char err[512] = "";
	store *s = store_open(url, svc, NULL, err, sizeof(err));
	if (!s)
		fail_msg("store_open(%s): %s", svc, err);
	return s;
}

static store *open_svc(const char *svc)
{
	return open_url(pg_url, svc);
}

static int64_t query_int(store *s, const char *sql)
{
	int rc = 0;
	store_stmt *st = store_prepare(s, sql, &rc);
	if (!st)
		fail_msg("prepare %s: %d %s", sql, rc, store_errmsg(s));
	rc = store_step(st);
	if (rc != STORE_ROW)
		fail_msg("step %s: %d %s", sql, rc, store_errmsg(s));
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

static const char kv_table[] = "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, n BIGINT)";

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* tmp_root/<tag> with a subdirectory for svc: a schema root for migrate. */
static char *schema_root(const char *tag, const char *svc)
{
	static char buf[16][300];
	static int n;
	assert_true(n < 16);
	char *b = buf[n++];
	snprintf(b, sizeof(buf[0]), "%s/%s", tmp_root, tag);
	mkdir(b, 0700);
	char sub[400];
	snprintf(sub, sizeof(sub), "%s/%s", b, svc);
	mkdir(sub, 0700);
	return b;
}

/* ---- the proxy ------------------------------------------------------------ */

enum proxy_mode { PROXY_FORWARD, PROXY_STALL, PROXY_CLOSED, PROXY_QUIT };

#define PROXY_PAIRS 64

static struct proxy {
	int port;
	int lfd;
	struct sockaddr_storage up;
	socklen_t uplen;
	int pairs[PROXY_PAIRS][2];
	int npairs;
	enum proxy_mode mode;
	int cmd[2], ack[2];
	pthread_t th;
	int running;
	char url[600]; /* pg_url with the proxy as host and port */
} px;

static int proxy_listen(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void proxy_drop(int i)
{
	close(px.pairs[i][0]);
	close(px.pairs[i][1]);
	px.pairs[i][0] = px.pairs[--px.npairs][0];
	px.pairs[i][1] = px.pairs[px.npairs][1];
}

static void *proxy_run(void *arg)
{
	for (;;) {
		struct pollfd p[2 + 2 * PROXY_PAIRS];
		int n = 0;
		p[n++] = (struct pollfd){ .fd = px.cmd[0], .events = POLLIN };
		int lidx = -1;
		if (px.mode == PROXY_FORWARD && px.lfd >= 0) {
			lidx = n;
			p[n++] = (struct pollfd){ .fd = px.lfd, .events = POLLIN };
		}
		int first = n;
		if (px.mode == PROXY_FORWARD)
			for (int i = 0; i < px.npairs; i++)
				for (int k = 0; k < 2; k++)
					p[n++] = (struct pollfd){ .fd = px.pairs[i][k], .events = POLLIN };
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		if (p[0].revents) {
			char c;
			if (read(px.cmd[0], &c, 1) != 1)
				continue;
			px.mode = (enum proxy_mode)c;
			if (px.mode == PROXY_CLOSED || px.mode == PROXY_QUIT) {
				if (px.lfd >= 0)
					close(px.lfd);
				px.lfd = -1;
				while (px.npairs)
					proxy_drop(0);
			} else if (px.lfd < 0) {
				px.lfd = proxy_listen(px.port);
			}
			c = px.lfd >= 0 || px.mode >= PROXY_CLOSED ? 'k' : 'f';
			if (write(px.ack[1], &c, 1) != 1 || px.mode == PROXY_QUIT)
				return NULL;
			continue;
		}
		if (lidx >= 0 && p[lidx].revents) {
			int cfd = accept4(px.lfd, NULL, NULL, SOCK_CLOEXEC);
			int ufd = socket(px.up.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (cfd >= 0 && ufd >= 0 && px.npairs < PROXY_PAIRS &&
			    connect(ufd, (struct sockaddr *)&px.up, px.uplen) == 0) {
				px.pairs[px.npairs][0] = cfd;
				px.pairs[px.npairs][1] = ufd;
				px.npairs++;
			} else {
				if (cfd >= 0)
					close(cfd);
				if (ufd >= 0)
					close(ufd);
			}
			continue;
		}
		for (int j = first; j < n; j++) {
			if (!p[j].revents)
				continue;
			int pair = (j - first) / 2, side = (j - first) % 2;
			char buf[16384];
			ssize_t got = read(px.pairs[pair][side], buf, sizeof(buf));
			ssize_t off = 0;
			while (got > 0 && off < got) {
				ssize_t w = send(px.pairs[pair][!side], buf + off, (size_t)(got - off),
						 MSG_NOSIGNAL);
				if (w <= 0)
					break;
				off += w;
			}
			if (got <= 0 || off < got)
				proxy_drop(pair);
			break; /* the pair array may have changed */
		}
	}
}

/* Switches the proxy and waits until it has. */
static void proxy_set(enum proxy_mode m)
{
	char c = (char)m;
	assert_int_equal(write(px.cmd[1], &c, 1), 1);
	assert_int_equal(read(px.ack[0], &c, 1), 1);
	assert_int_equal(c, 'k');
}

/* The upstream address from pg_url: TCP host and port, or libpq's Unix
 * socket in the host directory. Returns 0 when it could not be found. */
static int proxy_upstream(void)
{
	char *perr = NULL;
	PQconninfoOption *o = PQconninfoParse(pg_url, &perr);
	PQfreemem(perr);
	if (!o)
		return 0;
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	for (PQconninfoOption *p = o; p->keyword; p++) {
		if (!p->val || !p->val[0])
			continue;
		if (strcmp(p->keyword, "host") == 0)
			host = p->val;
		else if (strcmp(p->keyword, "hostaddr") == 0)
			hostaddr = p->val;
		else if (strcmp(p->keyword, "port") == 0)
			port = p->val;
	}
	if (!port)
		port = "5432";
	if (!host && !hostaddr)
		host = "/var/run/postgresql";
	int ok = 0;
	if (!hostaddr && host[0] == '/') {
		struct sockaddr_un *u = (struct sockaddr_un *)&px.up;
		u->sun_family = AF_UNIX;
		snprintf(u->sun_path, sizeof(u->sun_path), "%s/.s.PGSQL.%s", host, port);
		px.uplen = sizeof(*u);
		ok = 1;
	} else {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
		if (getaddrinfo(hostaddr ? hostaddr : host, port, &hints, &ai) == 0 && ai) {
			memcpy(&px.up, ai->ai_addr, ai->ai_addrlen);
			px.uplen = ai->ai_addrlen;
			ok = 1;
		}
		freeaddrinfo(ai);
	}
	PQconninfoFree(o);
	return ok;
}

/* pg_url with its host and port replaced by the proxy's; host, hostaddr and
 * port query parameters are dropped so that they cannot bypass it. */
static void proxy_url(void)
{
	const char *auth = strstr(pg_url, "://") + 3;
	size_t authlen = strcspn(auth, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < authlen; i++)
		if (auth[i] == '@')
			at = auth + i;
	const char *rest = auth + authlen;
	size_t pathlen = strcspn(rest, "?");
	int n = snprintf(px.url, sizeof(px.url), "%.*s127.0.0.1:%d%.*s",
			 (int)(at ? at + 1 - pg_url : auth - pg_url), pg_url, px.port,
			 (int)pathlen, rest);
	char sep = '?';
	for (const char *q = rest + pathlen; *q;) {
		q++; /* past '?' or '&' */
		size_t len = strcspn(q, "&");
		if (strncmp(q, "host=", 5) != 0 && strncmp(q, "hostaddr=", 9) != 0 &&
		    strncmp(q, "port=", 5) != 0)
			n += snprintf(px.url + n, sizeof(px.url) - (size_t)n, "%c%.*s", sep,
				      (int)len, q);
		sep = '&';
		q += len;
	}
}

static void proxy_start(void)
{
	px.lfd = proxy_listen(0);
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	if (px.lfd < 0 || getsockname(px.lfd, (struct sockaddr *)&a, &alen) != 0 ||
	    pipe2(px.cmd, O_CLOEXEC) != 0 || pipe2(px.ack, O_CLOEXEC) != 0 || !proxy_upstream())
		return;
	px.port = ntohs(a.sin_port);
	proxy_url();
	px.mode = PROXY_FORWARD;
	px.running = pthread_create(&px.th, NULL, proxy_run, NULL) == 0;
}

static void need_proxy(void)
{
	need_pg();
	if (!px.running)
		fail_msg("the test proxy did not start");
	proxy_set(PROXY_FORWARD);
}

/* ---- group ---------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	const char *u = getenv("ECOM_TEST_PG_URL");
	pg_url = u && *u ? u : NULL;
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/ecom_test_store_pg_XXXXXX");
	if (!mkdtemp(tmp_root))
		return -1;
	if (pg_url)
		proxy_start();
	return 0;
}

static int group_teardown(void **state)
{
	if (px.running) {
		char c = PROXY_QUIT;
		if (write(px.cmd[1], &c, 1) == 1 && read(px.ack[0], &c, 1) == 1)
			pthread_join(px.th, NULL);
	}
	for (int i = 0; pg_url && i < nservices; i++)
		drop_service(services[i]);
	return nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- without a server ------------------------------------------------------- */

static void expect_sql(const char *in, const char *want, int nparams)
{
	char *out = NULL;
	int n = -1;
	int rc = store_pg_translate(in, &out, &n);
	if (rc)
		fail_msg("translate %s: %d", in, rc);
	if (strcmp(out, want) != 0)
		fail_msg("translate %s:\n got  %s\n want %s", in, out, want);
	assert_int_equal(n, nparams);
	free(out);
}

static void test_translate(void **state)
{
	expect_sql("SELECT 1", "SELECT 1", 0);
	expect_sql("INSERT INTO t (a, b) VALUES (?, ?)", "INSERT INTO t (a, b) VALUES ($1, $2)",
		   2);
	expect_sql("SELECT '?', ?", "SELECT '?', $1", 1);
	expect_sql("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1", 1);
	expect_sql("SELECT \"odd?\"\"name\" FROM t WHERE a = ?",
		   "SELECT \"odd?\"\"name\" FROM t WHERE a = $1", 1);
	expect_sql("SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2", 2);
	expect_sql("SELECT /* a ? /* nested ? */ still ? */ ?",
		   "SELECT /* a ? /* nested ? */ still ? */ $1", 1);
	expect_sql("SELECT E'\\'?', ?", "SELECT E'\\'?', $1", 1);
	/* Without the E prefix a backslash is an ordinary character. */
	expect_sql("SELECT '\\', ?", "SELECT '\\', $1", 1);
	expect_sql("SELECT $$ ? $$, $tag$ '?' $$ ? $tag$, ?",
		   "SELECT $$ ? $$, $tag$ '?' $$ ? $tag$, $1", 1);
	/* '$' inside an identifier starts no dollar quote. */
	expect_sql("SELECT a$b$ FROM t WHERE c = ?", "SELECT a$b$ FROM t WHERE c = $1", 1);
	expect_sql("SELECT 1;", "SELECT 1;", 0);
	expect_sql("SELECT ?; -- done\n", "SELECT $1; -- done\n", 1);
	char big[64 * 3 + 16] = "SELECT ?";
	for (int i = 1; i < 64; i++)
		strcat(big, ",?");
	char *out;
	int n;
	assert_int_equal(store_pg_translate(big, &out, &n), 0);
	assert_int_equal(n, 64);
	assert_non_null(strstr(out, ",$64"));
	free(out);

	/* One statement exactly. */
	assert_int_equal(store_pg_translate("SELECT 1; SELECT 2", &out, &n), ERR_INVALID);
	assert_null(out);
	assert_int_equal(store_pg_translate("", &out, &n), ERR_INVALID);
	assert_int_equal(store_pg_translate("  -- only a comment\n", &out, &n), ERR_INVALID);
	assert_int_equal(store_pg_translate(NULL, &out, &n), ERR_INVALID);
	/* A ';' inside a literal ends nothing. */
	expect_sql("SELECT ';', ?", "SELECT ';', $1", 1);
}

static void test_sqlstate_map(void **state)
{
	assert_int_equal(store_pg_sqlstate_err("23505", 0), ERR_CONFLICT);
	assert_int_equal(store_pg_sqlstate_err("40001", 0), ERR_RETRY);
	assert_int_equal(store_pg_sqlstate_err("40P01", 0), ERR_RETRY);
	assert_int_equal(store_pg_sqlstate_err("55P03", 0), ERR_BUSY);
	assert_int_equal(store_pg_sqlstate_err("08006", 0), ERR_UNAVAILABLE);
	assert_int_equal(store_pg_sqlstate_err("08001", 0), ERR_UNAVAILABLE);
	assert_int_equal(store_pg_sqlstate_err("57P01", 0), ERR_UNAVAILABLE);
	assert_int_equal(store_pg_sqlstate_err("57P02", 0), ERR_UNAVAILABLE);
	assert_int_equal(store_pg_sqlstate_err("57P03", 0), ERR_UNAVAILABLE);
	assert_int_equal(store_pg_sqlstate_err(NULL, 1), ERR_UNAVAILABLE);
	assert_int_equal(store_pg_sqlstate_err("", 1), ERR_UNAVAILABLE);
	assert_int_equal(store_pg_sqlstate_err(NULL, 0), ERR_STORE);
	/* Other constraints and errors are plain store errors. */
	assert_int_equal(store_pg_sqlstate_err("23502", 0), ERR_STORE); /* not null */
	assert_int_equal(store_pg_sqlstate_err("23503", 0), ERR_STORE); /* foreign key */
	assert_int_equal(store_pg_sqlstate_err("42P01", 0), ERR_STORE); /* no table */
	assert_int_equal(store_pg_sqlstate_err("25P02", 0), ERR_STORE); /* tx aborted */
	/* Whatever the code, a dead connection is unavailable. */
	assert_int_equal(store_pg_sqlstate_err("XX000", 1), ERR_UNAVAILABLE);
}

static void test_bad_url_no_server(void **state)
{
	char err[512] = "";
	double t0 = now_s();
	assert_null(store_open("postgresql://u:secretpw@127.0.0.1:1/x", "catalog", NULL, err,
			       sizeof(err)));
	assert_true(now_s() - t0 < 4.0);
	assert_null(strstr(err, "secretpw"));
	assert_non_null(strstr(err, "postgresql://u:****@127.0.0.1:1/x"));
	assert_non_null(strstr(err, "cannot connect"));
	assert_null(strchr(err, '\n'));

	/* libpq quotes a malformed URI whole, password included. */
	err[0] = '\0';
	assert_null(store_open("postgresql://u:secretpw@[::1/x", "catalog", NULL, err, sizeof(err)));
	assert_null(strstr(err, "secretpw"));
	assert_non_null(strstr(err, "bad store URL"));
	assert_non_null(strstr(err, "****"));
	err[0] = '\0';
	assert_null(store_open("postgres://u:sec%zzretpw@127.0.0.1/x", "catalog", NULL, err,
			       sizeof(err)));
	assert_null(strstr(err, "sec%zz"));
	assert_null(strstr(err, "retpw"));
	assert_non_null(strstr(err, "percent"));
	err[0] = '\0';
	assert_null(store_open("postgresql://127.0.0.1:1/x?password=secretpw&nosuch=1", "catalog",
			       NULL, err, sizeof(err)));
	assert_null(strstr(err, "secretpw"));
	assert_non_null(strstr(err, "nosuch"));
}

/* ---- open and migrate ------------------------------------------------------- */

static void test_open_migrate(void **state)
{
	need_pg();
	const char *svc = fresh_service();
	char *root = schema_root("mig1", svc);
	char sub[400];
	snprintf(sub, sizeof(sub), "%s/%s", root, svc);
	write_file(sub, "001_items.sql",
		   "-- the first: a table and a row\n"
		   "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL);\n"
		   "INSERT INTO items (id, name) VALUES (1, 'first; with ? marks');\n");
	write_file(sub, "002_price.sql",
		   "ALTER TABLE items ADD COLUMN price BIGINT NOT NULL DEFAULT 0;\n"
		   "INSERT INTO items (id, name, price) VALUES (2, 'big', 5000000000);\n");
	store *s = open_svc(svc);
	assert_string_equal(store_driver(s), "postgresql");
	assert_int_equal(schema_exists(svc), 1);
	assert_int_equal(store_ping(s), 0);
	assert_int_equal(store_version(s), 0);

	char err[512] = "x";
	assert_int_equal(store_migrate(s, root, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(store_version(s), 2);
	assert_int_equal(store_migrate(s, root, err, sizeof(err)), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM items"), 2);
	assert_int_equal(query_int(s, "SELECT price FROM items WHERE id = 2"), 5000000000LL);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM schema_migrations"), 2);
	/* Both tables are in the service's schema, not in public. */
	int rc;
	store_stmt *st = store_prepare(
		s,
		"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? "
		"AND table_name IN ('items', 'schema_migrations')",
		&rc);
	assert_non_null(st);
	assert_int_equal(store_bind_text(st, 1, svc), 0);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_int_equal(store_col_int(st, 0), 2);
	store_reset(st);
	st = store_prepare(s, "SELECT name FROM schema_migrations ORDER BY version", &rc);
	assert_non_null(st);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_string_equal(store_col_text(st, 0), "001_items.sql");
	assert_int_equal(store_step(st), STORE_ROW);
	assert_string_equal(store_col_text(st, 0), "002_price.sql");
	assert_int_equal(store_step(st), STORE_DONE);
	store_reset(st);

	/* A failing migration names its file; its partial work and record are
	 * rolled back and the store stays usable. */
	write_file(sub, "003_bad.sql",
		   "CREATE TABLE half (v INTEGER);\nINSERT INTO nowhere VALUES (1);");
	assert_int_equal(store_migrate(s, root, err, sizeof(err)), ERR_STORE);
	assert_non_null(strstr(err, "003_bad.sql"));
	assert_non_null(strstr(err, "nowhere"));
	assert_int_equal(store_version(s), 2);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'half'"),
			 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_commit(s), 0);
	char bad[500];
	snprintf(bad, sizeof(bad), "%s/003_bad.sql", sub);
	unlink(bad);
	store_free(s);

	/* Reopened: the schema and version are still there. */
	s = open_svc(svc);
	assert_int_equal(store_version(s), 2);
	assert_int_equal(store_migrate(s, root, err, sizeof(err)), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM items"), 2);
	store_free(s);
	drop_service(svc);
	assert_int_equal(schema_exists(svc), 0);
}

static void test_schema_isolation(void **state)
{
	need_pg();
	const char *a = fresh_service(), *b = fresh_service();
	store *sa = open_svc(a), *sb = open_svc(b);
	assert_int_equal(store_exec(sb, "CREATE TABLE secret_b (v TEXT)"), 0);
	assert_int_equal(store_exec(sb, "INSERT INTO secret_b VALUES ('b only')"), 0);
	int rc = 0;
	assert_null(store_prepare(sa, "SELECT v FROM secret_b", &rc));
	assert_int_equal(rc, ERR_STORE);
	assert_non_null(strstr(store_errmsg(sa), "secret_b"));
	assert_int_equal(store_exec(sa, "INSERT INTO secret_b VALUES ('from a')"), ERR_STORE);

	/* Only the service's own schema is searched (public neither). */
	store_stmt *cs = store_prepare(sa, "SELECT current_schemas(false)::text", &rc);
	assert_non_null(cs);
	assert_int_equal(store_step(cs), STORE_ROW);
	char want[64];
	snprintf(want, sizeof(want), "{%s}", a);
	assert_string_equal(store_col_text(cs, 0), want);
	store_reset(cs);

	/* The same table name in both services: two separate tables. */
	assert_int_equal(store_exec(sa, kv_table), 0);
	assert_int_equal(store_exec(sb, kv_table), 0);
	assert_int_equal(insert_kv(sa, "k", "a"), STORE_DONE);
	assert_int_equal(insert_kv(sa, "k2", "a"), STORE_DONE);
	assert_int_equal(insert_kv(sb, "k", "b"), STORE_DONE);
	assert_int_equal(query_int(sa, "SELECT COUNT(*) FROM kv"), 2);
	assert_int_equal(query_int(sb, "SELECT COUNT(*) FROM kv"), 1);
	/* A service name that needs quoting is still one schema. */
	const char *odd = fresh_service();
	char oddname[sizeof(services[0])];
	snprintf(oddname, sizeof(oddname), "%s", odd);
	oddname[0] = 'T';
	oddname[1] = '-';
	snprintf(services[nservices - 1], sizeof(services[0]), "%s", oddname);
	store *so = open_svc(oddname);
	assert_int_equal(store_exec(so, kv_table), 0);
	assert_int_equal(query_int(so, "SELECT COUNT(*) FROM kv"), 0);
	assert_int_equal(schema_exists(oddname), 1);
	store_free(so);
	store_free(sa);
	store_free(sb);
	drop_service(a);
	drop_service(b);
	drop_service(oddname);
}

/* ---- statements ------------------------------------------------------------- */

static void test_bind_and_select(void **state)
{
	need_pg();
	const char *svc = fresh_service();
	store *s = open_svc(svc);
	assert_int_equal(store_exec(s, kv_table), 0);
	static const char *inject = "Robert'); DROP TABLE kv;--";
	static const char *uni =
		"h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \"q\" $$ ? \\";
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
	assert_int_equal(store_bind_text(ins, 3, NULL), 0); /* NULL text is NULL */
	assert_int_equal(store_step(ins), STORE_DONE);
	store_reset(ins);
	assert_int_equal(store_bind_int(ins, 4, 1), ERR_INVALID);
	assert_int_equal(store_bind_int(ins, 0, 1), ERR_INVALID);
	assert_non_null(strstr(store_errmsg(s), "out of range"));
	store_reset(ins);

	store_stmt *sel = store_prepare(s, "SELECT v, n FROM kv WHERE k = ?", &rc);
	assert_non_null(sel);
	assert_int_equal(store_bind_text(sel, 1, "inject"), 0);
	assert_int_equal(store_step(sel), STORE_ROW);
	assert_string_equal(store_col_text(sel, 0), inject);
	assert_true(store_col_int(sel, 1) == INT64_MAX);
	assert_false(store_col_is_null(sel, 0));
	assert_int_equal(store_step(sel), STORE_DONE);
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
	assert_int_equal(store_col_int(sel, 1), 0);
	/* Out of range columns read as NULL. */
	assert_null(store_col_text(sel, 5));
	assert_true(store_col_is_null(sel, -1));
	store_reset(sel);
	/* Reset cleared the binding: NULL matches no key. */
	assert_int_equal(store_step(sel), STORE_DONE);
	store_reset(sel);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 3);

	/* '?' in a literal is text, not a parameter. */
	store_stmt *q = store_prepare(s, "SELECT '?', ?, 'it''s ? ok' /* ? */", &rc);
	assert_non_null(q);
	assert_int_equal(store_bind_text(q, 1, "x"), 0);
	assert_int_equal(store_bind_text(q, 2, "y"), ERR_INVALID);
	assert_int_equal(store_step(q), STORE_ROW);
	assert_string_equal(store_col_text(q, 0), "?");
	assert_string_equal(store_col_text(q, 1), "x");
	assert_string_equal(store_col_text(q, 2), "it's ? ok");
	store_reset(q);

	/* Several rows, walked; booleans read as 0/1; an int parameter
	 * where the server expects one. */
	q = store_prepare(s, "SELECT k, n IS NULL FROM kv WHERE k <> ? ORDER BY k LIMIT ?", &rc);
	assert_non_null(q);
	assert_int_equal(store_bind_text(q, 1, "zzz"), 0);
	assert_int_equal(store_bind_int(q, 2, 2), 0);
	assert_int_equal(store_step(q), STORE_ROW);
	assert_string_equal(store_col_text(q, 0), "inject");
	assert_int_equal(store_col_int(q, 1), 0);
	assert_int_equal(store_step(q), STORE_ROW);
	assert_string_equal(store_col_text(q, 0), "it's");
	assert_int_equal(store_step(q), STORE_DONE);
	store_reset(q);
	assert_int_equal(query_int(s, "SELECT n IS NULL FROM kv WHERE k = 'nulls'"), 1);

	/* Changes of an update touching several rows, and of a delete. */
	store_stmt *up = store_prepare(s, "UPDATE kv SET n = ? WHERE k <> ?", &rc);
	assert_non_null(up);
	assert_int_equal(store_bind_int(up, 1, 7), 0);
	assert_int_equal(store_bind_text(up, 2, "zzz"), 0);
	assert_int_equal(store_step(up), STORE_DONE);
	assert_int_equal(store_changes(up), 3);
	store_reset(up);
	assert_int_equal(store_exec(s, "DELETE FROM kv WHERE k = 'nulls'"), 0);
	assert_int_equal(store_changes(up), 1);

	/* Prepare errors: syntax, more than one statement, a missing table. */
	rc = 0;
	assert_null(store_prepare(s, "SELEC nonsense", &rc));
	assert_int_equal(rc, ERR_STORE);
	assert_non_null(strstr(store_errmsg(s), "syntax error"));
	assert_null(store_prepare(s, "SELECT 1; SELECT 2", &rc));
	assert_int_equal(rc, ERR_INVALID);
	assert_null(store_prepare(s, "SELECT * FROM missing", &rc));
	assert_int_equal(rc, ERR_STORE);
	assert_non_null(store_prepare(s, "SELECT 1;", &rc));
	assert_int_equal(store_exec(s, "NOT SQL"), ERR_STORE);
	/* Cached per connection: the same text gives the same handle. */
	char copy[64];
	snprintf(copy, sizeof(copy), "SELECT v, n FROM kv WHERE k = ?");
	assert_ptr_equal(store_prepare(s, copy, &rc), sel);
	store_reset(sel);
	store_free(s);
	drop_service(svc);
}

static void test_unique_conflict(void **state)
{
	need_pg();
	const char *svc = fresh_service();
	store *s = open_svc(svc);
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(store_exec(s, "CREATE TABLE u (id BIGINT PRIMARY KEY, e TEXT UNIQUE)"), 0);
	assert_int_equal(insert_kv(s, "a", "1"), STORE_DONE);
	assert_int_equal(insert_kv(s, "a", "2"), ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(s), "duplicate key"));
	/* Stepping a failed statement again runs it again (as on SQLite); it
	 * never reports a success that did not happen. */
	int rc;
	store_stmt *st = store_prepare(s, "INSERT INTO kv (k, v) VALUES (?, 'x')", &rc);
	assert_non_null(st);
	assert_int_equal(store_bind_text(st, 1, "a"), 0);
	assert_int_equal(store_step(st), ERR_CONFLICT);
	assert_int_equal(store_step(st), ERR_CONFLICT);
	store_reset(st);
	assert_int_equal(store_exec(s, "INSERT INTO u VALUES (1, 'x')"), 0);
	assert_int_equal(store_exec(s, "INSERT INTO u VALUES (1, 'y')"), ERR_CONFLICT);
	assert_int_equal(store_exec(s, "INSERT INTO u VALUES (2, 'x')"), ERR_CONFLICT);
	assert_int_equal(store_exec(s, "CREATE TABLE nn (v TEXT NOT NULL)"), 0);
	assert_int_equal(store_exec(s, "INSERT INTO nn VALUES (NULL)"), ERR_STORE);
	/* ON CONFLICT works as written for SQLite. */
	assert_int_equal(store_exec(s, "INSERT INTO kv (k, v) VALUES ('a', 'new') "
				       "ON CONFLICT (k) DO UPDATE SET v = excluded.v"),
			 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE v = 'new'"), 1);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1);
	store_free(s);
	drop_service(svc);
}

/* ---- transactions ----------------------------------------------------------- */

static void test_failed_transaction(void **state)
{
	need_pg();
	const char *svc = fresh_service();
	store *s = open_svc(svc);
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(insert_kv(s, "taken", "0"), STORE_DONE);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_begin(s), ERR_STATE);
	assert_int_equal(insert_kv(s, "one", "1"), STORE_DONE);
	assert_int_equal(insert_kv(s, "two", "2"), STORE_DONE);
	assert_int_equal(insert_kv(s, "taken", "3"), ERR_CONFLICT);
	assert_int_equal(store_rollback(s), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1);

	/* A commit after a failed statement is refused, not taken for a
	 * commit: PostgreSQL has already aborted the transaction. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(insert_kv(s, "three", "3"), STORE_DONE);
	assert_int_equal(insert_kv(s, "taken", "3"), ERR_CONFLICT);
	assert_int_equal(insert_kv(s, "four", "4"), ERR_STORE);
	assert_int_equal(store_commit(s), ERR_STORE);
	assert_non_null(strstr(store_errmsg(s), "rolled back"));
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1);
	assert_int_equal(store_commit(s), ERR_STATE);
	assert_int_equal(store_rollback(s), 0);
	store_free(s);
	drop_service(svc);
}

static void test_commit_persists(void **state)
{
	need_pg();
	const char *svc = fresh_service();
	store *s = open_svc(svc);
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(insert_kv(s, "kept", "yes"), STORE_DONE);
	assert_int_equal(insert_kv(s, "also", "yes"), STORE_DONE);
	assert_int_equal(store_commit(s), 0);
	store_free(s);
	s = open_svc(svc);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE v = 'yes'"), 2);
	store_free(s);
	drop_service(svc);
}

static void test_serialization_retry(void **state)
{
	need_pg();
	const char *svc = fresh_service();
	store *a = open_svc(svc), *b = open_svc(svc);
	assert_int_equal(store_exec(a, "CREATE TABLE acct (id INTEGER PRIMARY KEY, v INTEGER)"), 0);
	assert_int_equal(store_exec(a, "INSERT INTO acct VALUES (1, 100), (2, 100)"), 0);
	const char *iso = "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE";
	/* Write skew: each reads both rows, then takes from a different one. */
	assert_int_equal(store_begin(a), 0);
	assert_int_equal(store_exec(a, iso), 0);
	assert_int_equal(store_begin(b), 0);
	assert_int_equal(store_exec(b, iso), 0);
	assert_int_equal(query_int(a, "SELECT SUM(v) FROM acct"), 200);
	assert_int_equal(query_int(b, "SELECT SUM(v) FROM acct"), 200);
	assert_int_equal(store_exec(a, "UPDATE acct SET v = v - 150 WHERE id = 1"), 0);
	int rb = store_exec(b, "UPDATE acct SET v = v - 150 WHERE id = 2");
	assert_int_equal(store_commit(a), 0);
	if (rb == 0)
		rb = store_commit(b);
	assert_int_equal(rb, ERR_RETRY);
	assert_non_null(strstr(store_errmsg(b), "serialize"));
	assert_int_equal(store_rollback(b), 0);
	/* Retried, b sees a's write and its own check now holds. */
	assert_int_equal(query_int(b, "SELECT SUM(v) FROM acct"), 50);
	store_free(a);
	store_free(b);
	drop_service(svc);
}

struct writer {
	store *s;
	int id, rows, per_tx, failures;
	pthread_barrier_t *bar;
};

/* No cmocka assertions off the main thread: they longjmp. */
static void *writer_run(void *p)
{
	struct writer *w = p;
	int rc;
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

static void test_two_threads(void **state)
{
	need_pg();
	const char *svc = fresh_service();
	store *s = open_svc(svc);
	assert_int_equal(store_exec(s, kv_table), 0);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	struct writer w[2] = { { s, 1, 300, 10, 0, &bar }, { s, 2, 300, 10, 0, &bar } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer_run, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(w[0].failures, 0);
	assert_int_equal(w[1].failures, 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 600);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE n = 1"), 300);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE n = 2"), 300);
	/* Two connections were used: their sessions are still open. */
	store_stmt *st;
	int rc;
	st = store_prepare(s,
			   "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ?",
			   &rc);
	assert_non_null(st);
	char app[64];
	snprintf(app, sizeof(app), "ecom-%s", svc);
	assert_int_equal(store_bind_text(st, 1, app), 0);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_int_equal(store_col_int(st, 0), 3);
	store_reset(st);
	store_free(s);
	drop_service(svc);
}

struct migrator {
	const char *svc, *root;
	pthread_barrier_t *bar;
	int rc;
	char err[512];
};

static void *migrator_run(void *p)
{
	struct migrator *m = p;
	pthread_barrier_wait(m->bar);
	/* A store of its own, as a second process would have. */
	store *s = store_open(pg_url, m->svc, NULL, m->err, sizeof(m->err));
	m->rc = s ? store_migrate(s, m->root, m->err, sizeof(m->err)) : -100;
	store_free(s);
	return NULL;
}

static void test_concurrent_migrators(void **state)
{
	need_pg();
	for (int round = 0; round < 4; round++) {
		const char *svc = fresh_service();
		char tag[32];
		snprintf(tag, sizeof(tag), "cm%d", round);
		char *root = schema_root(tag, svc);
		char sub[400];
		snprintf(sub, sizeof(sub), "%s/%s", root, svc);
		/* Not idempotent: a second application would fail. */
		write_file(sub, "001_a.sql", "CREATE TABLE a (v INTEGER); INSERT INTO a VALUES (1);");
		write_file(sub, "002_b.sql", "CREATE TABLE b (v INTEGER); INSERT INTO b VALUES (2);");
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, 2);
		struct migrator m[2] = { { svc, root, &bar, 0, "" }, { svc, root, &bar, 0, "" } };
		pthread_t t[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, migrator_run, &m[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&bar);
		for (int i = 0; i < 2; i++)
			if (m[i].rc != 0)
				fail_msg("round %d migrator %d: %d %s", round, i, m[i].rc, m[i].err);
		store *s = open_svc(svc);
		assert_int_equal(store_version(s), 2);
		assert_int_equal(query_int(s, "SELECT COUNT(*) FROM a"), 1);
		assert_int_equal(query_int(s, "SELECT COUNT(*) FROM b"), 1);
		assert_int_equal(query_int(s, "SELECT COUNT(*) FROM schema_migrations"), 2);
		store_free(s);
		drop_service(svc);
	}
}

/* ---- failures ----------------------------------------------------------------- */

/* Terminates the backend serving victim's connection on this thread, from
 * killer, and waits until it is gone. */
static void kill_backend(store *victim, store *killer)
{
	int64_t pid = query_int(victim, "SELECT pg_backend_pid()");
	int rc;
	store_stmt *st = store_prepare(killer, "SELECT pg_terminate_backend(?)", &rc);
	assert_non_null(st);
	assert_int_equal(store_bind_int(st, 1, pid), 0);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_int_equal(store_col_int(st, 0), 1);
	store_reset(st);
	st = store_prepare(killer, "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ?", &rc);
	assert_non_null(st);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(store_bind_int(st, 1, pid), 0);
		assert_int_equal(store_step(st), STORE_ROW);
		int64_t n = store_col_int(st, 0);
		store_reset(st);
		if (n == 0)
			return;
		usleep(10000);
	}
	fail_msg("backend %lld did not exit", (long long)pid);
}

static void test_connection_loss(void **state)
{
	need_pg();
	const char *svc = fresh_service();
	store *s = open_svc(svc), *killer = open_svc(svc);
	assert_int_equal(store_exec(s, kv_table), 0);
	assert_int_equal(insert_kv(s, "before", "1"), STORE_DONE);
	int rc;
	const char *count = "SELECT COUNT(*) FROM kv";
	store_stmt *st = store_prepare(s, count, &rc);
	assert_non_null(st);
	store_reset(st);
	int64_t pid = query_int(s, "SELECT pg_backend_pid()");

	/* The backend dies while the connection is idle: the driver sees the
	 * closed session before sending anything (nothing can be applied
	 * twice), so the next statement runs on a new session and works. */
	kill_backend(s, killer);
	/* The backend leaves pg_stat_activity a moment before its socket
	 * closes; let the close arrive. */
	usleep(200000);
	store_stmt *again = store_prepare(s, count, &rc);
	assert_ptr_equal(again, st); /* the same handle, prepared anew */
	assert_int_equal(store_step(again), STORE_ROW);
	assert_int_equal(store_col_int(again, 0), 1);
	store_reset(again);
	assert_true(query_int(s, "SELECT pg_backend_pid()") != pid);

	/* Inside a transaction: the commit reports the loss, nothing of the
	 * transaction is applied and nothing is retried behind the caller. */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(insert_kv(s, "lost", "1"), STORE_DONE);
	kill_backend(s, killer);
	assert_int_equal(store_commit(s), ERR_UNAVAILABLE);
	assert_int_equal(store_rollback(s), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv WHERE k = 'lost'"), 0);

	/* A statement inside the transaction meets the loss first. */
	assert_int_equal(store_begin(s), 0);
	kill_backend(s, killer);
	assert_int_equal(insert_kv(s, "lost2", "1"), ERR_UNAVAILABLE);
	assert_int_equal(store_commit(s), ERR_UNAVAILABLE);
	assert_int_equal(store_exec(s, "SELECT 1"), 0);
	assert_int_equal(query_int(s, count), 1);
	store_free(s);
	store_free(killer);
	drop_service(svc);
}

struct opener {
	const char *url;
	double secs;
	store *s;
	char err[512];
};

static void *open_timed(void *p)
{
	struct opener *o = p;
	double t0 = now_s();
	o->s = store_open(o->url, "catalog", NULL, o->err, sizeof(o->err));
	o->secs = now_s() - t0;
	return NULL;
}

static void test_outage_and_ping(void **state)
{
	need_proxy();
	const char *svc = fresh_service();
	store *s = open_url(px.url, svc);
	assert_int_equal(store_ping(s), 0);
	assert_int_equal(store_exec(s, kv_table), 0);

	/* The server goes away: connections drop, new ones are refused.
	 * Every call fails at once with ERR_UNAVAILABLE. */
	proxy_set(PROXY_CLOSED);
	double t0 = now_s();
	assert_int_equal(store_ping(s), ERR_UNAVAILABLE);
	assert_int_equal(store_ping(s), ERR_UNAVAILABLE); /* reconnecting, refused */
	assert_non_null(strstr(store_errmsg(s), "cannot connect"));
	int rc = 0;
	assert_null(store_prepare(s, "SELECT COUNT(*) FROM kv", &rc));
	assert_int_equal(rc, ERR_UNAVAILABLE);
	assert_int_equal(store_begin(s), ERR_UNAVAILABLE);
	assert_int_equal(store_exec(s, "SELECT 1"), ERR_UNAVAILABLE);
	assert_true(now_s() - t0 < 2.0);
	/* Back: the next call reconnects. */
	proxy_set(PROXY_FORWARD);
	assert_int_equal(store_ping(s), 0);
	assert_int_equal(insert_kv(s, "after", "1"), STORE_DONE);

	/* The server stalls: connections stay open but nothing answers. A
	 * ping gives up after about two seconds instead of waiting; so does a
	 * new connection (store_open, in parallel). */
	int bh = proxy_listen(0);
	assert_true(bh >= 0);
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	assert_int_equal(getsockname(bh, (struct sockaddr *)&a, &alen), 0);
	struct opener o = { 0 };
	char bh_url[128];
	snprintf(bh_url, sizeof(bh_url), "postgresql://u:secretpw@127.0.0.1:%d/x",
		 ntohs(a.sin_port));
	o.url = bh_url;
	pthread_t t;
	proxy_set(PROXY_STALL);
	assert_int_equal(pthread_create(&t, NULL, open_timed, &o), 0);
	t0 = now_s();
	assert_int_equal(store_ping(s), ERR_UNAVAILABLE);
	double took = now_s() - t0;
	pthread_join(t, NULL);
	close(bh);
	if (took < 1.5 || took > 4.0)
		fail_msg("ping on a stalled server took %.2f s", took);
	assert_non_null(strstr(store_errmsg(s), "did not answer"));
	assert_null(o.s);
	if (o.secs < 1.5 || o.secs > 4.0)
		fail_msg("store_open of a silent server took %.2f s: %s", o.secs, o.err);
	assert_non_null(strstr(o.err, "postgresql://u:****@127.0.0.1:"));
	assert_null(strstr(o.err, "secretpw"));
	assert_non_null(strstr(o.err, "timeout"));

	proxy_set(PROXY_FORWARD);
	assert_int_equal(store_ping(s), 0);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1);
	store_free(s);
	drop_service(svc);
}

/* ---- the catalog's SQL, unchanged --------------------------------------------- */

static int req(void *eng, const char *method, const char *path, const char *body,
	       json_t **out)
{
	msg_req r;
	assert_int_equal(msg_req_init(&r, method, path), 0);
	assert_int_equal(msg_req_add_header(&r, "Authorization", "Bearer test-admin"), 0);
	if (body) {
		assert_int_equal(msg_req_add_header(&r, "Content-Type", "application/json"), 0);
		assert_int_equal(msg_req_set_body(&r, body, strlen(body)), 0);
	}
	msg_resp resp;
	msg_resp_init(&resp);
	catalog_engine.handle(eng, &r, &resp);
	msg_req_clear(&r);
	int status = resp.status;
	if (out) {
		json_error_t je;
		*out = json_loadb(resp.body, resp.body_len, 0, &je);
		assert_non_null(*out);
	}
	msg_resp_clear(&resp);
	return status;
}

static const char *data_dir(void)
{
	const char *env = getenv("ECOM_DATA");
	if (env && env[0])
		return env;
#ifdef ECOM_SRCDATADIR
	return ECOM_SRCDATADIR;
#else
	return "data";
#endif
}

static void test_catalog_sql(void **state)
{
	need_proxy();
	const char *svc = fresh_service();
	/* The shipped migration, unchanged, under this test's service name. */
	char root[300], link[400], target[1024];
	snprintf(root, sizeof(root), "%s/catalog_schema", tmp_root);
	mkdir(root, 0700);
	snprintf(link, sizeof(link), "%s/%s", root, svc);
	snprintf(target, sizeof(target), "%s/schema/catalog", data_dir());
	if (target[0] != '/') {
		char cwd[512];
		assert_non_null(getcwd(cwd, sizeof(cwd)));
		snprintf(target, sizeof(target), "%s/%s/schema/catalog", cwd, data_dir());
	}
	assert_int_equal(symlink(target, link), 0);
	char seed[400];
	snprintf(seed, sizeof(seed), "%s/products.json", root);
	write_file(root, "products.json",
		   "[{\"sku\":\"TOY-3\",\"name\":\"Robot\",\"description\":\"Walks\","
		   "\"category\":\"toys\",\"price_cents\":2500,\"currency\":\"USD\"},"
		   "{\"sku\":\"BK-1\",\"name\":\"Book\",\"description\":\"A novel\","
		   "\"category\":\"books\",\"price_cents\":1500,\"currency\":\"USD\"},"
		   "{\"sku\":\"TOY-1\",\"name\":\"Yo-yo\",\"description\":\"Classic\","
		   "\"category\":\"toys\",\"price_cents\":300,\"currency\":\"USD\"}]");

	store *s = open_url(px.url, svc);
	char err[512];
	if (store_migrate(s, root, err, sizeof(err)) != 0)
		fail_msg("migrate: %s", err);
	assert_int_equal(store_version(s), 2);
	clock_src *clk = clock_virtual_new(1764112255000000LL);
	rng *r = rng_new(1);
	FILE *devnull = fopen("/dev/null", "w");
	logger *lg = log_new("catalog", devnull, clk, LOG_DEBUG);
	metrics *m = metrics_new();
	config *cfg = config_new();
	assert_int_equal(config_set(cfg, "catalog.seed_file", seed), 0);
	engine_ctx ctx = { .service = "catalog", .instance_id = "catalog-1", .clock = clk,
			   .rng = r, .store = s, .log = lg, .metrics = m, .config = cfg,
			   .admin_token = "test-admin", .data_dir = data_dir() };
	void *eng = catalog_engine.create(&ctx, err, sizeof(err));
	if (!eng)
		fail_msg("catalog create: %s", err);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM products"), 3);

	json_t *v;
	assert_int_equal(req(eng, "GET", "/v1/products?page_size=2", NULL, &v), 200);
	json_t *items = json_object_get(v, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "sku")),
			    "BK-1");
	char path[256];
	snprintf(path, sizeof(path), "/v1/products?page_size=2&page_token=%s",
		 json_string_value(json_object_get(v, "next_page_token")));
	json_decref(v);
	assert_int_equal(req(eng, "GET", path, NULL, &v), 200);
	items = json_object_get(v, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "sku")),
			    "TOY-3");
	assert_true(json_is_null(json_object_get(v, "next_page_token")));
	json_decref(v);
	assert_int_equal(
		req(eng, "GET", "/v1/products?category=toys&min_price=100&max_price=1000", NULL, &v),
		200);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 1);
	json_decref(v);

	const char *np = "{\"sku\":\"GD-1\",\"name\":\"Trowel\",\"category\":\"garden\","
			 "\"price_cents\":1299,\"currency\":\"GBP\"}";
	assert_int_equal(req(eng, "POST", "/v1/products", np, NULL), 201);
	assert_int_equal(req(eng, "POST", "/v1/products", np, NULL), 409);
	assert_int_equal(req(eng, "PUT", "/v1/products/BK-1",
			     "{\"name\":\"Book 2e\",\"category\":\"books\",\"price_cents\":1750}",
			     NULL),
			 200);
	assert_int_equal(req(eng, "PUT", "/v1/products/NOPE",
			     "{\"name\":\"x\",\"category\":\"books\",\"price_cents\":1}", NULL),
			 404);
	assert_int_equal(req(eng, "POST", "/v1/products/_bulk",
			     "{\"products\":[{\"sku\":\"TOY-1\",\"name\":\"Yo-yo Pro\","
			     "\"category\":\"toys\",\"price_cents\":350},{\"sku\":\"B-1\","
			     "\"name\":\"One\",\"category\":\"bulk\",\"price_cents\":5000000000}]}",
			     NULL),
			 200);
	assert_int_equal(req(eng, "GET", "/v1/products/TOY-1", NULL, &v), 200);
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Yo-yo Pro");
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 350);
	json_decref(v);
	assert_int_equal(req(eng, "GET", "/v1/products/B-1", NULL, &v), 200);
	assert_true(json_integer_value(json_object_get(v, "price_cents")) == 5000000000LL);
	json_decref(v);
	assert_int_equal(req(eng, "GET", "/v1/products/BK-1", NULL, &v), 200);
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 1750);
	json_decref(v);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM products"), 5);
	/* each change wrote its event in its transaction: 3 loaded, GD-1,
	 * BK-1, TOY-1, B-1; the refused writes none */
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM outbox WHERE topic = 'catalog'"), 7);
	assert_int_equal(req(eng, "DELETE", "/v1/products/GD-1", NULL, NULL), 200);
	assert_int_equal(req(eng, "DELETE", "/v1/products/GD-1", NULL, NULL), 404);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM outbox WHERE key = 'GD-1' AND "
				      "payload LIKE '%product_deleted%'"),
			 1);
	assert_int_equal(query_int(s, "SELECT COUNT(*) FROM products"), 4);

	/* The database goes away: requests get 503, then recover. */
	proxy_set(PROXY_CLOSED);
	assert_int_equal(req(eng, "GET", "/v1/products/BK-1", NULL, &v), 503);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(v, "error"), "code")),
		"unavailable");
	json_decref(v);
	assert_int_equal(req(eng, "GET", "/v1/products", NULL, NULL), 503);
	assert_int_equal(req(eng, "POST", "/v1/products/_bulk",
			     "{\"products\":[{\"sku\":\"X-1\",\"name\":\"X\",\"category\":\"x\","
			     "\"price_cents\":1}]}",
			     NULL),
			 503);
	proxy_set(PROXY_FORWARD);
	assert_int_equal(req(eng, "GET", "/v1/products/BK-1", NULL, NULL), 200);

	catalog_engine.destroy(eng);
	config_free(cfg);
	metrics_free(m);
	log_free(lg);
	fclose(devnull);
	rng_free(r);
	clock_free(clk);
	store_free(s);
	drop_service(svc);
}

static void test_translate_ddl(void **state)
{
	(void)state;
	char *out = store_pg_translate_ddl(
		"CREATE TABLE outbox (id INTEGER PRIMARY KEY, topic TEXT);\n"
		"CREATE TABLE t (n integer primary key)");
	assert_non_null(out);
	assert_string_equal(out, "CREATE TABLE outbox (id BIGINT GENERATED BY DEFAULT AS IDENTITY "
				 "PRIMARY KEY, topic TEXT);\nCREATE TABLE t (n BIGINT GENERATED BY "
				 "DEFAULT AS IDENTITY PRIMARY KEY)");
	free(out);
	out = store_pg_translate_ddl("SELECT 1");
	assert_string_equal(out, "SELECT 1");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_translate_ddl),
		cmocka_unit_test(test_translate),
		cmocka_unit_test(test_sqlstate_map),
		cmocka_unit_test(test_bad_url_no_server),
		cmocka_unit_test(test_open_migrate),
		cmocka_unit_test(test_schema_isolation),
		cmocka_unit_test(test_bind_and_select),
		cmocka_unit_test(test_unique_conflict),
		cmocka_unit_test(test_failed_transaction),
		cmocka_unit_test(test_commit_persists),
		cmocka_unit_test(test_serialization_retry),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_concurrent_migrators),
		cmocka_unit_test(test_connection_loss),
		cmocka_unit_test(test_outage_and_ping),
		cmocka_unit_test(test_catalog_sql),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
