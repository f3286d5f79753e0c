/* store_pg: the PostgreSQL driver behind store.h, through libpq (see
 * driver.h for the split of work with store.c).
 *
 * "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?param=value...]" (or
 * "postgres://") is any libpq connection URI. Database per service is a
 * schema per service: the store creates schema <service> if missing and
 * every connection sets search_path to it alone, so the same unqualified
 * migration SQL (schema_migrations included) lands in the service's schema
 * and no service resolves another's tables.
 *
 * Connection defaults go in front of the URL through PQconnectdbParams, so a
 * parameter the URL names wins: connect_timeout=2 (store_ping and reconnects
 * fail in about two seconds instead of hanging on an unreachable host),
 * TCP keepalives and tcp_user_timeout (a peer that vanishes mid-query is
 * noticed in seconds), client_encoding=UTF8, application_name=ecom-<service>.
 *
 * Statements are prepared server-side with generated names per connection
 * and run with text parameters; the whole result is fetched at the first
 * store_step and walked by the next ones, so statements on one connection
 * may interleave as they can on SQLite. Finalizing only frees memory: the
 * server drops a session's prepared statements with the session, and the
 * generic layer only finalizes when it closes the connection anyway.
 *
 * Passwords: libpq's messages about a malformed URI quote the URI, so every
 * message built here from libpq text goes through pg_scrub, which swaps the
 * URL for its masked form and blanks any spelling of the password. */
#include "store/driver.h"
#include "store/store.h"
#include "core/err.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PG_MSG_LEN 512
#define PG_MAX_PARAMS 65535
#define PG_MAX_SECRETS 4
/* Connection parameters in front of the URL; the URL itself goes last. */
#define PG_MAX_KW 12
/* boolean's type OID in pg_type; stable across releases. */
#define PG_BOOLOID 16
/* How long store_ping waits for the answer to SELECT 1; the same bound as
 * connect_timeout, so a ping on a new connection takes at most twice it. */
#define PG_PING_MS 2000

struct store_ddb {
	const char *kw[PG_MAX_KW];
	const char *val[PG_MAX_KW];
	char *url;
	char *masked;
	char *appname;
	char *schema; /* the service name quoted as an identifier */
	char *secrets[PG_MAX_SECRETS];
};

struct store_dconn {
	PGconn *pg;
	const struct store_ddb *db;
	unsigned next_id; /* names of prepared statements on this session */
	int64_t changes;
	int dead; /* a ping went unanswered: a query is still in flight */
	char msg[PG_MSG_LEN];
};

struct store_dstmt {
	struct store_dconn *c;
	char name[24];
	int nparams;
	char **vals; /* nparams text values, NULL for SQL NULL */
	PGresult *res;
	int executed;
	int row;
};

/* ---- placeholders ------------------------------------------------------ */

static int ident_char(int ch)
{
	return isalnum(ch) || ch == '_' || ch == '$' || ch >= 0x80;
}

/* Length of a dollar-quote tag ("$$", "$tag$") at p, 0 when p starts none. */
static size_t dollar_tag(const char *p)
{
	size_t n = 1;
	if (p[n] != '$' && !isalpha((unsigned char)p[n]) && p[n] != '_' &&
	    (unsigned char)p[n] < 0x80)
		return 0;
	while (p[n] && p[n] != '$') {
		if (!ident_char((unsigned char)p[n]))
			return 0;
		n++;
	}
	return p[n] == '$' ? n + 1 : 0;
}

/* Length of the literal, quoted identifier or comment starting at sql[i],
 * or 0 when none starts there. Unterminated ones run to the end; the server
 * reports them. */
static size_t pg_skip(const char *sql, size_t i)
{
	const char *p = sql + i;
	size_t n;
	if (p[0] == '-' && p[1] == '-')
		return strcspn(p, "\n");
	if (p[0] == '/' && p[1] == '*') { /* nests in PostgreSQL */
		int depth = 0;
		for (n = 0; p[n]; n++) {
			if (p[n] == '/' && p[n + 1] == '*') {
				depth++;
				n++;
			} else if (p[n] == '*' && p[n + 1] == '/') {
				n++;
				if (--depth == 0)
					return n + 1;
			}
		}
		return n;
	}
	if (p[0] == '\'') {
		/* E'...' takes backslash escapes; plain strings do not (the
		 * default standard_conforming_strings). */
		int esc = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
			  (i == 1 || !ident_char((unsigned char)sql[i - 2]));
		for (n = 1; p[n]; n++) {
			if (esc && p[n] == '\\' && p[n + 1])
				n++;
			else if (p[n] == '\'' && p[n + 1] == '\'')
				n++;
			else if (p[n] == '\'')
				return n + 1;
		}
		return n;
	}
	if (p[0] == '"') {
		for (n = 1; p[n]; n++) {
			if (p[n] == '"' && p[n + 1] == '"')
				n++;
			else if (p[n] == '"')
				return n + 1;
		}
		return n;
	}
	if (p[0] == '$' && (i == 0 || !ident_char((unsigned char)sql[i - 1]))) {
		size_t tag = dollar_tag(p);
		if (!tag)
			return 0;
		const char *end = p + tag;
		for (;;) {
			end = strchr(end, '$');
			if (!end)
				return strlen(p);
			if (strncmp(end, p, tag) == 0)
				return (size_t)(end - p) + tag;
			end++;
		}
	}
	return 0;
}

int store_pg_translate(const char *sql, char **out, int *nparams)
{
	*out = NULL;
	*nparams = 0;
	if (!sql)
		return ERR_INVALID;
	size_t len = strlen(sql), marks = 0;
	for (size_t i = 0; i < len; i++)
		marks += sql[i] == '?';
	/* Each '?' (1 byte) becomes at most "$65535" (6 bytes). */
	char *buf = malloc(len + marks * 5 + 1);
	if (!buf)
		return ERR_NOMEM;
	size_t o = 0;
	int n = 0, tokens = 0, ended = 0;
	for (size_t i = 0; i < len;) {
		size_t skip = pg_skip(sql, i);
		int comment = skip && (sql[i] == '-' || sql[i] == '/');
		char ch = sql[i];
		if (!skip && isspace((unsigned char)ch)) {
			buf[o++] = sql[i++];
			continue;
		}
		if (comment) {
			memcpy(buf + o, sql + i, skip);
			o += skip;
			i += skip;
			continue;
		}
		if (!skip && ch == ';') {
			ended = tokens;
			buf[o++] = sql[i++];
			continue;
		}
		if (ended)
			goto invalid; /* something after the first statement */
		tokens = 1;
		if (skip) {
			memcpy(buf + o, sql + i, skip);
			o += skip;
			i += skip;
		} else if (ch == '?') {
			if (n == PG_MAX_PARAMS)
				goto invalid;
			o += (size_t)sprintf(buf + o, "$%d", ++n);
			i++;
		} else {
			buf[o++] = sql[i++];
		}
	}
	if (!tokens)
		goto invalid;
	buf[o] = '\0';
	*out = buf;
	*nparams = n;
	return 0;
invalid:
	free(buf);
	return ERR_INVALID;
}

/* ---- errors -------------------------------------------------------------- */

int store_pg_sqlstate_err(const char *state, int connection_bad)
{
	if (!state || strlen(state) != 5)
		return connection_bad ? ERR_UNAVAILABLE : ERR_STORE;
	if (strcmp(state, "23505") == 0)
		return ERR_CONFLICT;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return ERR_RETRY;
	if (strcmp(state, "55P03") == 0)
		return ERR_BUSY;
	/* 08: connection exception; 57P01..03: admin or crash shutdown, the
	 * server still starting; 53300: no connection slot free. */
	if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	    strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
	    strcmp(state, "53300") == 0)
		return ERR_UNAVAILABLE;
	if (strcmp(state, "53200") == 0) /* out_of_memory */
		return ERR_NOMEM;
	if (connection_bad)
		return ERR_UNAVAILABLE;
	return ERR_STORE;
}

/* Copies in to out: each occurrence of the URL becomes its masked form, each
 * secret becomes "****", and runs of white space (libpq's messages span
 * lines) become one space, with none at either end. */
static void pg_scrub(const struct store_ddb *db, const char *in, char *out, size_t len)
{
	if (!len)
		return;
	size_t o = 0;
	int space = 0;
	out[0] = '\0';
	while (in && *in && o + 1 < len) {
		const char *put = NULL;
		size_t skip = 0;
		size_t ul = db->url ? strlen(db->url) : 0;
		if (ul && strncmp(in, db->url, ul) == 0) {
			put = db->masked;
			skip = ul;
		}
		for (int k = 0; !put && k < PG_MAX_SECRETS && db->secrets[k]; k++) {
			size_t sl = strlen(db->secrets[k]);
			if (strncmp(in, db->secrets[k], sl) == 0) {
				put = "****";
				skip = sl;
			}
		}
		if (!put && isspace((unsigned char)*in)) {
			space = o > 0;
			in++;
			continue;
		}
		if (space && o + 1 < len)
			out[o++] = ' ';
		space = 0;
		if (put) {
			size_t pl = strlen(put);
			/* A secret cut in half would leak its start. */
			if (o + pl >= len)
				break;
			memcpy(out + o, put, pl);
			o += pl;
			in += skip;
		} else {
			out[o++] = *in++;
		}
	}
	out[o] = '\0';
}

static void pg_note(struct store_dconn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void pg_note(struct store_dconn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
}

/* Maps a failed result (NULL when libpq could not make one) to a code and
 * records its message. Takes ownership of res. */
static int pg_fail(struct store_dconn *c, PGresult *res)
{
	int bad = PQstatus(c->pg) == CONNECTION_BAD;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *m = res ? PQresultErrorMessage(res) : "";
	if (!m || !*m)
		m = PQerrorMessage(c->pg);
	if (!m || !*m)
		m = bad ? "connection to the database lost" : "out of memory";
	pg_scrub(c->db, m, c->msg, sizeof(c->msg));
	int rc = !res && !bad ? ERR_NOMEM : store_pg_sqlstate_err(state, bad);
	PQclear(res);
	return rc;
}

/* Notes the row count of a completed INSERT/UPDATE/DELETE/MERGE. */
static void pg_count(struct store_dconn *c, PGresult *res)
{
	const char *cmd = PQcmdStatus(res);
	if (strncmp(cmd, "INSERT", 6) == 0 || strncmp(cmd, "UPDATE", 6) == 0 ||
	    strncmp(cmd, "DELETE", 6) == 0 || strncmp(cmd, "MERGE", 5) == 0)
		c->changes = strtoll(PQcmdTuples(res), NULL, 10);
}

/* ---- open and connect ------------------------------------------------------ */

/* libpq prints NOTICEs ("schema already exists, skipping") to stderr by
 * default; the store has nobody to tell. */
static void pg_quiet(void *arg, const char *message)
{
}

static int pg_add_secret(struct store_ddb *db, const char *s, size_t n)
{
	if (!n)
		return 0;
	for (int k = 0; k < PG_MAX_SECRETS; k++)
		if (!db->secrets[k]) {
			db->secrets[k] = strndup(s, n);
			return db->secrets[k] ? 0 : ERR_NOMEM;
		}
	return 0;
}

/* Every spelling of the password the URL holds: as written between ':' and
 * '@' (percent-encoded or not), as a password= query value, and decoded. */
static int pg_find_secrets(struct store_ddb *db, const char *url, const PQconninfoOption *opts)
{
	const char *auth = strstr(url, "://");
	if (!auth)
		return 0;
	auth += 3;
	size_t authlen = strcspn(auth, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < authlen; i++)
		if (auth[i] == '@')
			at = auth + i;
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	int rc = 0;
	if (colon)
		rc = pg_add_secret(db, colon + 1, (size_t)(at - colon - 1));
	for (const char *q = strchr(auth + authlen, '?'); q && !rc; q = strchr(q + 1, '&')) {
		if (strncmp(q + 1, "password=", 9) == 0)
			rc = pg_add_secret(db, q + 10, strcspn(q + 10, "&#"));
	}
	for (const PQconninfoOption *o = opts; o && o->keyword && !rc; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val)
			rc = pg_add_secret(db, o->val, strlen(o->val));
	return rc;
}

static void pg_db_close(struct store_ddb *db)
{
	if (!db)
		return;
	free(db->url);
	free(db->masked);
	free(db->appname);
	free(db->schema);
	for (int k = 0; k < PG_MAX_SECRETS; k++)
		free(db->secrets[k]);
	free(db);
}

/* A new session with the store's parameters, or NULL with err filled. */
static PGconn *pg_connect(const struct store_ddb *db, int *rc, char *err, size_t errlen)
{
	PGconn *pg = PQconnectdbParams(db->kw, db->val, 1);
	if (!pg) {
		store_seterr(err, errlen, "out of memory");
		*rc = ERR_NOMEM;
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		char m[PG_MSG_LEN];
		pg_scrub(db, PQerrorMessage(pg), m, sizeof(m));
		store_seterr(err, errlen, "cannot connect to %s: %s", db->masked, m);
		PQfinish(pg);
		*rc = ERR_UNAVAILABLE;
		return NULL;
	}
	PQsetNoticeProcessor(pg, pg_quiet, NULL);
	*rc = 0;
	return pg;
}

/* Runs one command on a session not yet wrapped in a dconn (open time). */
static int pg_run(const struct store_ddb *db, PGconn *pg, const char *sql, const char *what,
		  char *err, size_t errlen)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(res);
	if (res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
		PQclear(res);
		return 0;
	}
	char m[PG_MSG_LEN];
	pg_scrub(db, res ? PQresultErrorMessage(res) : PQerrorMessage(pg), m, sizeof(m));
	store_seterr(err, errlen, "%s in %s: %s", what, db->masked, m);
	int rc = res ? store_pg_sqlstate_err(PQresultErrorField(res, PG_DIAG_SQLSTATE),
					     PQstatus(pg) == CONNECTION_BAD)
		     : ERR_NOMEM;
	PQclear(res);
	return rc;
}

static int pg_db_open(const char *url, const char *service, struct store_ddb **out, char *err,
		      size_t errlen)
{
	*out = NULL;
	if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0) {
		store_seterr(err, errlen, "not a postgresql URL");
		return ERR_PARSE;
	}
	if (!PQisthreadsafe()) {
		store_seterr(err, errlen, "libpq is built without thread support");
		return ERR_STORE;
	}
	struct store_ddb *db = calloc(1, sizeof(*db));
	if (!db)
		return ERR_NOMEM;
	int rc = ERR_NOMEM;
	db->url = strdup(url);
	/* Masking replaces each password, however short, by four stars. */
	size_t mlen = strlen(url) * 2 + 16;
	db->masked = malloc(mlen);
	if (!db->url || !db->masked)
		goto fail;
	store_mask_url(url, db->masked, mlen);

	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	rc = pg_find_secrets(db, url, opts);
	if (!rc && !opts) {
		char m[PG_MSG_LEN];
		pg_scrub(db, perr ? perr : "out of memory", m, sizeof(m));
		store_seterr(err, errlen, "bad store URL %s: %s", db->masked, m);
		rc = perr ? ERR_PARSE : ERR_NOMEM;
	}
	PQfreemem(perr);
	PQconninfoFree(opts);
	if (rc)
		goto fail;

	if (asprintf(&db->appname, "ecom-%s", service) < 0) {
		db->appname = NULL;
		rc = ERR_NOMEM;
		goto fail;
	}
	int k = 0;
	db->kw[k] = "connect_timeout", db->val[k++] = "2";
	db->kw[k] = "keepalives", db->val[k++] = "1";
	db->kw[k] = "keepalives_idle", db->val[k++] = "5";
	db->kw[k] = "keepalives_interval", db->val[k++] = "2";
	db->kw[k] = "keepalives_count", db->val[k++] = "3";
	db->kw[k] = "tcp_user_timeout", db->val[k++] = "10000";
	db->kw[k] = "client_encoding", db->val[k++] = "UTF8";
	db->kw[k] = "application_name", db->val[k++] = db->appname;
	db->kw[k] = "dbname", db->val[k++] = db->url; /* expanded; overrides the above */
	db->kw[k] = NULL, db->val[k] = NULL;

	PGconn *pg = pg_connect(db, &rc, err, errlen);
	if (!pg)
		goto fail;
	char *q = PQescapeIdentifier(pg, service, strlen(service));
	if (q) {
		db->schema = strdup(q);
		PQfreemem(q);
	}
	char *sql = NULL;
	if (!db->schema || asprintf(&sql, "CREATE SCHEMA IF NOT EXISTS %s", db->schema) < 0) {
		PQfinish(pg);
		rc = ERR_NOMEM;
		goto fail;
	}
	/* Two stores creating the schema at once can collide on the catalog
	 * (a unique violation, or "schema ... already exists"); the schema
	 * then exists and a second try succeeds. */
	rc = pg_run(db, pg, sql, "cannot create schema", err, errlen);
	if (rc == ERR_CONFLICT || rc == ERR_STORE)
		rc = pg_run(db, pg, sql, "cannot create schema", err, errlen);
	free(sql);
	PQfinish(pg);
	if (rc)
		goto fail;
	*out = db;
	return 0;
fail:
	if (rc == ERR_NOMEM && err && errlen && !err[0])
		store_seterr(err, errlen, "out of memory");
	pg_db_close(db);
	return rc;
}

static void pg_conn_close(struct store_dconn *c)
{
	if (!c)
		return;
	PQfinish(c->pg);
	free(c);
}

static int pg_conn_open(struct store_ddb *db, struct store_dconn **out, char *err, size_t errlen)
{
	*out = NULL;
	struct store_dconn *c = calloc(1, sizeof(*c));
	if (!c) {
		store_seterr(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	c->db = db;
	int rc;
	c->pg = pg_connect(db, &rc, err, errlen);
	if (!c->pg) {
		free(c);
		return rc;
	}
	char *sql = NULL;
	if (asprintf(&sql, "SET search_path TO %s", db->schema) < 0) {
		pg_conn_close(c);
		store_seterr(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	rc = pg_run(db, c->pg, sql, "cannot set search_path", err, errlen);
	free(sql);
	if (rc) {
		pg_conn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- statements ------------------------------------------------------------ */

/* Refuses work on a session whose ping timed out; the generic layer has
 * already marked it broken and replaces it on the next call. */
static int pg_dead(struct store_dconn *c)
{
	if (c->dead)
		pg_note(c, "the database did not answer within %d ms", PG_PING_MS);
	return c->dead ? ERR_UNAVAILABLE : 0;
}

static int pg_prepare(struct store_dconn *c, const char *sql, struct store_dstmt **out)
{
	*out = NULL;
	if (pg_dead(c))
		return ERR_UNAVAILABLE;
	char *text = NULL;
	int n = 0;
	int rc = store_pg_translate(sql, &text, &n);
	if (rc == ERR_INVALID) {
		pg_note(c, "store_prepare takes exactly one statement");
		return rc;
	}
	if (rc) {
		pg_note(c, "out of memory");
		return rc;
	}
	struct store_dstmt *s = calloc(1, sizeof(*s));
	if (!s || (n && !(s->vals = calloc((size_t)n, sizeof(*s->vals))))) {
		free(s);
		free(text);
		pg_note(c, "out of memory");
		return ERR_NOMEM;
	}
	s->c = c;
	s->nparams = n;
	snprintf(s->name, sizeof(s->name), "ecom_%u", ++c->next_id);
	PGresult *res = PQprepare(c->pg, s->name, text, n, NULL);
	free(text);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		free(s->vals);
		free(s);
		return pg_fail(c, res);
	}
	PQclear(res);
	*out = s;
	return 0;
}

static int pg_bind(struct store_dstmt *s, int idx, char *v, int is_null)
{
	if (idx < 1 || idx > s->nparams) {
		free(v);
		pg_note(s->c, "parameter index %d out of range (the statement has %d)", idx,
			s->nparams);
		return ERR_INVALID;
	}
	if (!v && !is_null) {
		pg_note(s->c, "out of memory");
		return ERR_NOMEM;
	}
	free(s->vals[idx - 1]);
	s->vals[idx - 1] = v;
	return 0;
}

static int pg_bind_text(struct store_dstmt *s, int idx, const char *v)
{
	return pg_bind(s, idx, idx >= 1 && idx <= s->nparams ? strdup(v) : NULL, 0);
}

static int pg_bind_int(struct store_dstmt *s, int idx, int64_t v)
{
	char *t = NULL;
	if (idx >= 1 && idx <= s->nparams && asprintf(&t, "%lld", (long long)v) < 0)
		t = NULL;
	return pg_bind(s, idx, t, 0);
}

static int pg_bind_null(struct store_dstmt *s, int idx)
{
	return pg_bind(s, idx, NULL, 1);
}

static int pg_step(struct store_dstmt *s)
{
	if (s->executed) {
		if (!s->res || s->row >= PQntuples(s->res))
			return STORE_DONE;
		return ++s->row < PQntuples(s->res) ? STORE_ROW : STORE_DONE;
	}
	struct store_dconn *c = s->c;
	if (pg_dead(c))
		return ERR_UNAVAILABLE;
	s->executed = 1;
	PGresult *res = PQexecPrepared(c->pg, s->name, s->nparams, (const char *const *)s->vals,
				       NULL, NULL, 0);
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		pg_count(c, res);
		s->res = res;
		s->row = 0;
		return PQntuples(res) > 0 ? STORE_ROW : STORE_DONE;
	case PGRES_COMMAND_OK:
	case PGRES_EMPTY_QUERY:
		pg_count(c, res);
		PQclear(res);
		return STORE_DONE;
	default:
		/* Like SQLite: a step after a failure runs the statement again. */
		s->executed = 0;
		return pg_fail(c, res);
	}
}

/* The current row's field, or NULL when out of range. */
static int pg_cell(struct store_dstmt *s, int col)
{
	return s->res && s->row < PQntuples(s->res) && col >= 0 && col < PQnfields(s->res);
}

static const char *pg_col_text(struct store_dstmt *s, int col)
{
	if (!pg_cell(s, col) || PQgetisnull(s->res, s->row, col))
		return NULL;
	return PQgetvalue(s->res, s->row, col);
}

static int64_t pg_col_int(struct store_dstmt *s, int col)
{
	const char *v = pg_col_text(s, col);
	if (!v)
		return 0;
	if (PQftype(s->res, col) == PG_BOOLOID)
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static int pg_col_is_null(struct store_dstmt *s, int col)
{
	return !pg_cell(s, col) || PQgetisnull(s->res, s->row, col);
}

static int64_t pg_changes(struct store_dconn *c, struct store_dstmt *s)
{
	return c->changes;
}

static void pg_reset(struct store_dstmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->executed = 0;
	s->row = 0;
	for (int i = 0; i < s->nparams; i++) {
		free(s->vals[i]);
		s->vals[i] = NULL;
	}
}

static void pg_finalize(struct store_dstmt *s)
{
	if (!s)
		return;
	pg_reset(s);
	free(s->vals);
	free(s);
}

/* ---- plain SQL and transactions ---------------------------------------------- */

static int is_commit(const char *sql)
{
	while (isspace((unsigned char)*sql))
		sql++;
	return strncasecmp(sql, "COMMIT", 6) == 0 || strncasecmp(sql, "END", 3) == 0;
}

char *store_pg_translate_ddl(const char *sql)
{
	static const char from[] = "INTEGER PRIMARY KEY";
	static const char to[] = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
	size_t n = strlen(sql), hits = 0, fl = sizeof(from) - 1, tl = sizeof(to) - 1;
	for (const char *p = sql; (p = strcasestr(p, from)); p += fl)
		hits++;
	char *out = malloc(n + hits * (tl - fl) + 1);
	if (!out)
		return NULL;
	char *o = out;
	const char *p = sql, *q;
	while ((q = strcasestr(p, from))) {
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, tl);
		o += tl;
		p = q + fl;
	}
	strcpy(o, p);
	return out;
}

static int pg_exec(struct store_dconn *c, const char *sql)
{
	if (pg_dead(c))
		return ERR_UNAVAILABLE;
	/* The one DDL difference the migrations rely on: SQLite's auto-assigned
	 * rowid id becomes an identity column here. */
	char *ddl = strcasestr(sql, "INTEGER PRIMARY KEY") ? store_pg_translate_ddl(sql) : NULL;
	PGresult *res = PQexec(c->pg, ddl ? ddl : sql);
	free(ddl);
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
		break;
	default:
		return pg_fail(c, res);
	}
	/* COMMIT of a transaction an earlier statement aborted succeeds as a
	 * ROLLBACK; the caller must not take that for a commit. */
	if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0 && is_commit(sql)) {
		PQclear(res);
		pg_note(c, "commit: the transaction had failed earlier and was rolled back");
		return ERR_STORE;
	}
	pg_count(c, res);
	PQclear(res);
	return 0;
}

/* An idle session's socket has nothing to say; if it is readable or hung
 * up, the server has closed it (a restart, an administrator's terminate).
 * Checked without sending, so nothing can be applied twice. */
static int pg_idle_dead(struct store_dconn *c)
{
	if (c->dead || PQstatus(c->pg) != CONNECTION_OK)
		return 1;
	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return 0;
	struct pollfd p = { .fd = PQsocket(c->pg), .events = POLLIN | POLLRDHUP };
	if (p.fd < 0)
		return 1;
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
		return 1;
	/* Readable: a notice, or the goodbye before a close. */
	if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK)
		return 1;
	return 0;
}

static int pg_in_transaction(struct store_dconn *c)
{
	if (c->dead)
		return 0;
	PGTransactionStatusType t = PQtransactionStatus(c->pg);
	return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static const char *pg_errmsg(struct store_dconn *c)
{
	return c->msg;
}

static int64_t pg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until libpq has a whole result, at most until deadline; 0, or
 * ERR_UNAVAILABLE (c is then dead or the connection broken). */
static int pg_wait(struct store_dconn *c, int64_t deadline)
{
	while (PQisBusy(c->pg)) {
		int64_t left = deadline - pg_now_ms();
		struct pollfd p = { .fd = PQsocket(c->pg), .events = POLLIN };
		int r = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			c->dead = 1;
			return pg_dead(c);
		}
		if (!PQconsumeInput(c->pg))
			return pg_fail(c, NULL);
	}
	return 0;
}

/* SELECT 1 with a deadline, where a plain step would wait as long as the
 * server keeps the TCP connection alive without answering. */
static int pg_ping(struct store_dconn *c)
{
	if (pg_dead(c))
		return ERR_UNAVAILABLE;
	if (!PQsendQuery(c->pg, "SELECT 1"))
		return pg_fail(c, NULL);
	int64_t deadline = pg_now_ms() + PG_PING_MS;
	PGresult *bad = NULL, *res;
	int rc;
	while ((rc = pg_wait(c, deadline)) == 0 && (res = PQgetResult(c->pg))) {
		if (PQresultStatus(res) != PGRES_TUPLES_OK && !bad)
			bad = res;
		else
			PQclear(res);
	}
	if (rc) {
		PQclear(bad);
		return rc;
	}
	return bad ? pg_fail(c, bad) : 0;
}

const struct store_driver store_pg_driver = {
	.name = "postgresql",
	.begin_sql = "BEGIN",
	/* EXCLUSIVE conflicts with itself but not with plain reads, so a
	 * second migrator waits here and then sees the first one's record. */
	.migrate_lock_sql = "LOCK TABLE schema_migrations IN EXCLUSIVE MODE",
	.db_open = pg_db_open,
	.db_close = pg_db_close,
	.conn_open = pg_conn_open,
	.conn_close = pg_conn_close,
	.prepare = pg_prepare,
	.bind_text = pg_bind_text,
	.bind_int = pg_bind_int,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.col_text = pg_col_text,
	.col_int = pg_col_int,
	.col_is_null = pg_col_is_null,
	.changes = pg_changes,
	.reset = pg_reset,
	.finalize = pg_finalize,
	.exec = pg_exec,
	.in_transaction = pg_in_transaction,
	.errmsg = pg_errmsg,
	.ping = pg_ping,
	.idle_dead = pg_idle_dead,
};
