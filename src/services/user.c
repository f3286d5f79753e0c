/* user: signup, login, profile, addresses. */
#include "services/user.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/jval.h"
#include "net/router.h"
#include "resil/ratelimit.h"
#include "services/identity.h"
#include "services/token.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMAIL_MAX 254
#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

typedef struct user_svc {
	engine_ctx *ctx;
	router *rt;
	unsigned long long opslimit;
	size_t memlimit;
	int64_t token_ttl_s;
	/* Login attempts per email and per client address. */
	ratelimit *login_limit;
	/* A hash of a random password, verified against when the email is
	 * unknown, so that case costs the same as a wrong password. */
	char dummy_hash[crypto_pwhash_STRBYTES];
} user_svc;

int user_normalize_email(const char *in, char *out, size_t len)
{
	while (*in && isspace((unsigned char)*in))
		in++;
	size_t n = strlen(in);
	while (n > 0 && isspace((unsigned char)in[n - 1]))
		n--;
	if (n == 0 || n > EMAIL_MAX || n >= len)
		return ERR_INVALID;
	const char *at = memchr(in, '@', n);
	if (!at || at == in || memchr(at + 1, '@', n - (size_t)(at + 1 - in)))
		return ERR_INVALID;
	size_t local = (size_t)(at - in), dom = n - local - 1;
	if (dom < 3)
		return ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' ||
		    c == '(' || c == ')' || c == ',' || c == ';' || c == ':')
			return ERR_INVALID;
	}
	const char *d = at + 1;
	if (!memchr(d, '.', dom) || d[0] == '.' || d[dom - 1] == '.' || d[0] == '-')
		return ERR_INVALID;
	memcpy(out, in, local + 1);
	for (size_t i = 0; i < dom; i++)
		out[local + 1 + i] = (char)tolower((unsigned char)d[i]);
	out[n] = '\0';
	return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static json_t *addresses_json(user_svc *u, const char *user_id, int *err)
{
	json_t *arr = json_array();
	store_stmt *st = store_prepare(
		u->ctx->store,
		"SELECT address_id, line1, city, postal_code, country FROM addresses "
		"WHERE user_id = ? ORDER BY created_at, address_id",
		err);
	if (!st) {
		json_decref(arr);
		return NULL;
	}
	store_bind_text(st, 1, user_id);
	int rc;
	while ((rc = store_step(st)) == STORE_ROW)
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:s}", "address_id",
						     store_col_text(st, 0), "line1",
						     store_col_text(st, 1), "city",
						     store_col_text(st, 2), "postal_code",
						     store_col_text(st, 3), "country",
						     store_col_text(st, 4)));
	store_reset(st);
	if (rc < 0) {
		*err = rc;
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* The caller's profile as JSON with its addresses into resp (status), or 404
 * when the account no longer exists. */
static void reply_profile(user_svc *u, const char *user_id, int status, msg_resp *resp)
{
	int err = 0;
	store_stmt *st = store_prepare(
		u->ctx->store, "SELECT user_id, email, name, created_at FROM users WHERE user_id = ?",
		&err);
	if (!st) {
		engine_store_error(u->ctx, resp, err, "read profile");
		return;
	}
	store_bind_text(st, 1, user_id);
	int rc = store_step(st);
	if (rc != STORE_ROW) {
		store_reset(st);
		if (rc < 0)
			engine_store_error(u->ctx, resp, rc, "read profile");
		else
			msg_resp_error(resp, 404, "not_found", "no such user", NULL);
		return;
	}
	char created[40];
	clock_fmt_rfc3339(store_col_int(st, 3), created, sizeof(created));
	json_t *p = json_pack("{s:s,s:s,s:s,s:s}", "user_id", store_col_text(st, 0), "email",
			      store_col_text(st, 1), "name", store_col_text(st, 2), "created_at",
			      created);
	store_reset(st);
	json_t *addrs = addresses_json(u, user_id, &err);
	if (!addrs) {
		json_decref(p);
		engine_store_error(u->ctx, resp, err, "read addresses");
		return;
	}
	json_object_set_new(p, "addresses", addrs);
	msg_resp_json(resp, status, p);
}

/* ---- handlers -------------------------------------------------------------------- */

static void signup(void *ud, msg_req *req, msg_resp *resp)
{
	user_svc *u = ud;
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	const char *email_in, *password, *name;
	jval_error e = { { 0 }, { 0 } };
	char email[EMAIL_MAX + 1];
	if (jval_str(body, "email", 1, 3, 320, &email_in, &e) ||
	    jval_str(body, "password", 1, 1, PASSWORD_MAX, &password, &e) ||
	    jval_str(body, "name", 1, 1, 200, &name, &e)) {
		engine_bad_field(resp, e.field, e.message);
		goto out;
	}
	if (user_normalize_email(email_in, email, sizeof(email)) != 0) {
		engine_bad_field(resp, "email", "is not an email address");
		goto out;
	}
	if (strlen(password) < PASSWORD_MIN) {
		engine_bad_field(resp, "password", "must be at least 8 characters");
		goto out;
	}
	char hash[crypto_pwhash_STRBYTES];
	if (crypto_pwhash_str(hash, password, strlen(password), u->opslimit, u->memlimit) != 0) {
		log_error(u->ctx->log, "crypto_pwhash_str failed (out of memory?)");
		msg_resp_error(resp, 503, "unavailable", "cannot hash the password now; try again",
			       NULL);
		goto out;
	}
	char user_id[IDS_MAX];
	ids_new(u->ctx->rng, "usr", user_id, sizeof(user_id));
	int64_t now = clock_now(u->ctx->clock);
	int err = 0;
	store_stmt *st = store_prepare(u->ctx->store,
				       "INSERT INTO users (user_id, email, name, password_hash, "
				       "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
				       &err);
	if (!st) {
		engine_store_error(u->ctx, resp, err, "signup");
		goto out;
	}
	store_bind_text(st, 1, user_id);
	store_bind_text(st, 2, email);
	store_bind_text(st, 3, name);
	store_bind_text(st, 4, hash);
	store_bind_int(st, 5, now);
	store_bind_int(st, 6, now);
	int rc = store_step(st);
	store_reset(st);
	sodium_memzero(hash, sizeof(hash));
	if (rc == ERR_CONFLICT)
		msg_resp_error(resp, 409, "conflict", "an account with this email exists",
			       json_pack("{s:s}", "field", "email"));
	else if (rc < 0)
		engine_store_error(u->ctx, resp, rc, "signup");
	else {
		log_info(u->ctx->log, "signup %s", user_id);
		msg_resp_json(resp, 201, json_pack("{s:s,s:s,s:s}", "user_id", user_id, "email",
						   email, "name", name));
	}
out:
	json_decref(body);
}

/* The client's address as the gateway saw it: the last entry of
 * X-Forwarded-For (the gateway appends the real peer), else the peer. */
static void client_addr(const msg_req *req, char *buf, size_t len)
{
	const char *xff = msg_req_header(req, "X-Forwarded-For");
	const char *last = xff ? strrchr(xff, ',') : NULL;
	const char *v = last ? last + 1 : xff ? xff : req->peer;
	while (*v == ' ')
		v++;
	snprintf(buf, len, "%s", v[0] ? v : "unknown");
}

/* Brute force is slowed per email and per address: user.login_per_min
 * attempts a minute each. 1 with a 429 in resp when either is spent. */
static int login_limited(user_svc *u, const msg_req *req, const char *email, msg_resp *resp)
{
	char key[RATELIMIT_MAX_KEY], addr[80];
	client_addr(req, addr, sizeof(addr));
	int64_t now = clock_now(u->ctx->clock);
	ratelimit_result r;
	snprintf(key, sizeof(key), "e:%.200s", email);
	int rc = ratelimit_take(u->login_limit, key, now, 1.0, &r);
	if (rc != ERR_BUSY) {
		snprintf(key, sizeof(key), "a:%s", addr);
		rc = ratelimit_take(u->login_limit, key, now, 1.0, &r);
	}
	if (rc != ERR_BUSY)
		return 0;
	metrics_count(u->ctx->metrics, "rate_limit_rejections_total", "class=\"login\"", 1);
	char v[32];
	snprintf(v, sizeof(v), "%lld", (long long)r.retry_after_s);
	msg_resp_error(resp, 429, "rate_limited", "too many login attempts; try again later",
		       json_pack("{s:I}", "retry_after_s", (json_int_t)r.retry_after_s));
	msg_resp_set_header(resp, "Retry-After", v);
	snprintf(v, sizeof(v), "%lld", (long long)r.limit);
	msg_resp_set_header(resp, "RateLimit-Limit", v);
	msg_resp_set_header(resp, "RateLimit-Remaining", "0");
	snprintf(v, sizeof(v), "%lld", (long long)r.reset_after_s);
	msg_resp_set_header(resp, "RateLimit-Reset", v);
	return 1;
}

static void login(void *ud, msg_req *req, msg_resp *resp)
{
	user_svc *u = ud;
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	const char *email_in, *password;
	jval_error e = { { 0 }, { 0 } };
	if (jval_str(body, "email", 1, 1, 320, &email_in, &e) ||
	    jval_str(body, "password", 1, 1, PASSWORD_MAX, &password, &e)) {
		engine_bad_field(resp, e.field, e.message);
		json_decref(body);
		return;
	}
	char email[EMAIL_MAX + 1];
	int shaped = user_normalize_email(email_in, email, sizeof(email)) == 0;
	if (login_limited(u, req, shaped ? email : email_in, resp)) {
		json_decref(body);
		return;
	}
	char hash[crypto_pwhash_STRBYTES] = "";
	char user_id[IDS_MAX] = "";
	int rc = STORE_DONE;
	if (shaped) {
		int err = 0;
		store_stmt *st = store_prepare(
			u->ctx->store, "SELECT user_id, password_hash FROM users WHERE email = ?", &err);
		if (!st) {
			engine_store_error(u->ctx, resp, err, "login");
			json_decref(body);
			return;
		}
		store_bind_text(st, 1, email);
		rc = store_step(st);
		if (rc == STORE_ROW) {
			snprintf(user_id, sizeof(user_id), "%s", store_col_text(st, 0));
			snprintf(hash, sizeof(hash), "%s", store_col_text(st, 1));
		}
		store_reset(st);
		if (rc < 0) {
			engine_store_error(u->ctx, resp, rc, "login");
			json_decref(body);
			return;
		}
	}
	/* The same work whether or not the account exists. */
	int ok = crypto_pwhash_str_verify(rc == STORE_ROW ? hash : u->dummy_hash, password,
					  strlen(password)) == 0 &&
		 rc == STORE_ROW;
	sodium_memzero(hash, sizeof(hash));
	json_decref(body);
	if (!ok) {
		msg_resp_error(resp, 401, "unauthenticated", "the email or the password is wrong",
			       NULL);
		return;
	}
	char *tok = NULL;
	int64_t now_s = clock_now(u->ctx->clock) / 1000000;
	if (token_issue(u->ctx->jwt_key, u->ctx->jwt_key_len, user_id, now_s, u->token_ttl_s,
			u->ctx->rng, &tok) != 0) {
		msg_resp_error(resp, 500, "internal", "cannot issue a token", NULL);
		return;
	}
	msg_resp_json(resp, 200, json_pack("{s:s,s:s,s:I}", "access_token", tok, "token_type",
					   "Bearer", "expires_in", (json_int_t)u->token_ttl_s));
	free(tok);
}

static void get_me(void *ud, msg_req *req, msg_resp *resp)
{
	user_svc *u = ud;
	identity id;
	if (engine_require_user(u->ctx, req, resp, &id))
		return;
	reply_profile(u, id.sub, 200, resp);
}

static void patch_me(void *ud, msg_req *req, msg_resp *resp)
{
	user_svc *u = ud;
	identity id;
	if (engine_require_user(u->ctx, req, resp, &id))
		return;
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	const char *name;
	jval_error e = { { 0 }, { 0 } };
	if (jval_str(body, "name", 1, 1, 200, &name, &e)) {
		engine_bad_field(resp, e.field, e.message);
		json_decref(body);
		return;
	}
	int err = 0;
	store_stmt *st = store_prepare(
		u->ctx->store, "UPDATE users SET name = ?, updated_at = ? WHERE user_id = ?", &err);
	if (!st) {
		engine_store_error(u->ctx, resp, err, "update profile");
		json_decref(body);
		return;
	}
	store_bind_text(st, 1, name);
	store_bind_int(st, 2, clock_now(u->ctx->clock));
	store_bind_text(st, 3, id.sub);
	int rc = store_step(st);
	store_reset(st);
	json_decref(body);
	if (rc < 0)
		engine_store_error(u->ctx, resp, rc, "update profile");
	else
		reply_profile(u, id.sub, 200, resp);
}

static void add_address(void *ud, msg_req *req, msg_resp *resp)
{
	user_svc *u = ud;
	identity id;
	if (engine_require_user(u->ctx, req, resp, &id))
		return;
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	const char *line1, *city, *postal, *country;
	jval_error e = { { 0 }, { 0 } };
	if (jval_str(body, "line1", 1, 1, 200, &line1, &e) ||
	    jval_str(body, "city", 1, 1, 100, &city, &e) ||
	    jval_str(body, "postal_code", 1, 1, 20, &postal, &e) ||
	    jval_str(body, "country", 1, 2, 2, &country, &e)) {
		engine_bad_field(resp, e.field, e.message);
		json_decref(body);
		return;
	}
	if (!isupper((unsigned char)country[0]) || !isupper((unsigned char)country[1])) {
		engine_bad_field(resp, "country", "must be an ISO 3166-1 alpha-2 code such as DE");
		json_decref(body);
		return;
	}
	char address_id[IDS_MAX];
	ids_new(u->ctx->rng, "adr", address_id, sizeof(address_id));
	int err = 0;
	store_stmt *st = store_prepare(u->ctx->store,
				       "INSERT INTO addresses (address_id, user_id, line1, city, "
				       "postal_code, country, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
				       &err);
	int rc = err;
	if (st) {
		store_bind_text(st, 1, address_id);
		store_bind_text(st, 2, id.sub);
		store_bind_text(st, 3, line1);
		store_bind_text(st, 4, city);
		store_bind_text(st, 5, postal);
		store_bind_text(st, 6, country);
		store_bind_int(st, 7, clock_now(u->ctx->clock));
		rc = store_step(st);
		store_reset(st);
	}
	if (rc < 0)
		engine_store_error(u->ctx, resp, rc, "add address");
	else
		msg_resp_json(resp, 201, json_pack("{s:s,s:s,s:s,s:s,s:s}", "address_id", address_id,
						   "line1", line1, "city", city, "postal_code",
						   postal, "country", country));
	json_decref(body);
}

/* ---- synthetic users ---------------------------------------------------------------- */

#define BULK_MAX 1000

/* 1 for an email under the .test top-level domain (RFC 2606: never a real
 * mailbox), the only kind the bulk route creates. */
static int synthetic_email(const char *email)
{
	size_t n = strlen(email);
	return n > 5 && strcmp(email + n - 5, ".test") == 0;
}

typedef struct bulk_user {
	char email[EMAIL_MAX + 1];
	const char *name, *hash;
} bulk_user;

/* POST /v1/users/_bulk {"users": [{email, name, password_hash}]}: up to
 * 1000 synthetic users in one transaction, for `ecom seed --users`. Admin
 * only. The passwords come hashed (an argon2id string, at whatever cost the
 * seeder chose: signing a million users up at the interactive cost would
 * take hours), and the emails must be under the .test domain, so the
 * route cannot plant real accounts. An email that exists is left as it is.
 * 200 {created, existing}. */
static void bulk_users(void *ud, msg_req *req, msg_resp *resp)
{
	user_svc *u = ud;
	if (engine_require_admin(u->ctx, req, resp))
		return;
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	json_t *arr = json_object_get(body, "users");
	size_t n = json_array_size(arr);
	bulk_user *us = json_is_array(arr) && n >= 1 && n <= BULK_MAX ? calloc(n, sizeof(*us)) : NULL;
	if (!us) {
		engine_bad_field(resp, "users", "must be an array of 1 to 1000 users");
		json_decref(body);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *it = json_array_get(arr, i);
		const char *email = NULL;
		jval_error e = { { 0 }, { 0 } };
		char field[64];
		if (!json_is_object(it) || jval_str(it, "email", 1, 3, 320, &email, &e) ||
		    jval_str(it, "name", 1, 1, 200, &us[i].name, &e) ||
		    jval_str(it, "password_hash", 1, 1, crypto_pwhash_STRBYTES - 1, &us[i].hash, &e)) {
			if (json_is_object(it))
				snprintf(field, sizeof(field), "users[%zu].%s", i, e.field);
			else
				snprintf(field, sizeof(field), "users[%zu]", i);
			engine_bad_field(resp, field, json_is_object(it) ? e.message : "must be an object");
			goto out;
		}
		if (user_normalize_email(email, us[i].email, sizeof(us[i].email)) != 0 ||
		    !synthetic_email(us[i].email)) {
			snprintf(field, sizeof(field), "users[%zu].email", i);
			engine_bad_field(resp, field,
					 "must be an email address under the .test domain (synthetic "
					 "users only)");
			goto out;
		}
		/* needs_rehash reads the string's parameters: -1 when it is no
		 * argon2id hash at all. */
		if (strncmp(us[i].hash, "$argon2id$", 10) != 0 ||
		    crypto_pwhash_str_needs_rehash(us[i].hash, u->opslimit, u->memlimit) < 0) {
			snprintf(field, sizeof(field), "users[%zu].password_hash", i);
			engine_bad_field(resp, field, "must be an argon2id hash string ($argon2id$...)");
			goto out;
		}
	}
	store *st = u->ctx->store;
	int64_t now = clock_now(u->ctx->clock), created = 0;
	int rc = store_begin(st);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char user_id[IDS_MAX];
		ids_new(u->ctx->rng, "usr", user_id, sizeof(user_id));
		int64_t changed = 0;
		rc = store_runf(st,
				"INSERT INTO users (user_id, email, name, password_hash, created_at, "
				"updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
				&changed, "ttttii", user_id, us[i].email, us[i].name, us[i].hash, now,
				now);
		created += changed;
	}
	if (rc == 0)
		rc = store_commit(st);
	else
		store_rollback(st);
	if (rc)
		engine_store_error(u->ctx, resp, rc, "bulk users");
	else
		msg_resp_json(resp, 200, json_pack("{s:I,s:I}", "created", (json_int_t)created,
						   "existing", (json_int_t)((int64_t)n - created)));
out:
	free(us);
	json_decref(body);
}

/* ---- engine ------------------------------------------------------------------------ */

static void user_destroy(void *eng)
{
	user_svc *u = eng;
	if (!u)
		return;
	router_free(u->rt);
	ratelimit_free(u->login_limit);
	free(u);
}

static void *user_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium cannot initialise");
		return NULL;
	}
	if (!ctx->jwt_key || ctx->jwt_key_len < 32) {
		snprintf(err, errlen, "the user service needs a JWT key of at least 32 bytes");
		return NULL;
	}
	user_svc *u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->ctx = ctx;
	u->opslimit = (unsigned long long)config_int(ctx->config, "user.pwhash_opslimit",
						     crypto_pwhash_OPSLIMIT_INTERACTIVE);
	u->memlimit = (size_t)config_int(ctx->config, "user.pwhash_memlimit_kib",
					 crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024) * 1024;
	u->token_ttl_s = config_int(ctx->config, "user.token_ttl_s", 3600);
	if (u->opslimit < crypto_pwhash_OPSLIMIT_MIN || u->memlimit < crypto_pwhash_MEMLIMIT_MIN ||
	    u->token_ttl_s <= 0) {
		snprintf(err, errlen, "bad user.pwhash_* or user.token_ttl_s configuration");
		user_destroy(u);
		return NULL;
	}
	int64_t per_min = config_int(ctx->config, "user.login_per_min", 5);
	u->login_limit = per_min > 0 ? ratelimit_new((double)per_min / 60.0, (double)per_min, 100000)
				     : NULL;
	if (!u->login_limit) {
		snprintf(err, errlen, "bad user.login_per_min");
		user_destroy(u);
		return NULL;
	}
	metrics_help(ctx->metrics, "rate_limit_rejections_total",
		     "Requests refused with 429, by class (login: attempts per email or per "
		     "address).");
	/* Its password is never known, so it never verifies. */
	char random_pw[40];
	snprintf(random_pw, sizeof(random_pw), "%016llx%016llx",
		 (unsigned long long)rng_u64(ctx->rng), (unsigned long long)rng_u64(ctx->rng));
	if (crypto_pwhash_str(u->dummy_hash, random_pw, strlen(random_pw),
			      u->opslimit, u->memlimit) != 0) {
		snprintf(err, errlen, "cannot hash with the configured argon2id limits");
		user_destroy(u);
		return NULL;
	}
	static const engine_route routes[] = {
		{ "POST", "/v1/auth/signup", signup },
		{ "POST", "/v1/auth/login", login },
		{ "GET", "/v1/users/me", get_me },
		{ "PATCH", "/v1/users/me", patch_me },
		{ "POST", "/v1/users/me/addresses", add_address },
		{ "POST", "/v1/users/_bulk", bulk_users },
	};
	u->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), u, err, errlen);
	if (!u->rt) {
		user_destroy(u);
		return NULL;
	}
	return u;
}

static void user_handle(void *eng, msg_req *req, msg_resp *resp)
{
	user_svc *u = eng;
	router_dispatch(u->rt, req, resp);
}

const engine_def user_engine = {
	.name = "user",
	.needs_store = 1,
	.create = user_create,
	.handle = user_handle,
	.tick = NULL,
	.ready = NULL,
	.destroy = user_destroy,
};
