/* Tests for services/user through its engine_def: email normalisation,
 * signup (validation, uniqueness after normalisation, argon2id hashes that
 * never hold the password), login (tokens token_verify accepts; the same 401
 * for a wrong password and an unknown email), and the profile routes, which
 * believe only an X-Ecom-Identity signed with the service secret and not
 * older than a minute. Each test gets its own in-memory store and a virtual
 * clock; argon2id runs at libsodium's minimum limits to stay fast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "net/msg.h"
#include "ops/seed.h"
#include "services/identity.h"
#include "services/token.h"
#include "services/user.h"
#include "store/store.h"

#include "efix.h"

#define T0 EFIX_T0
#define TTL_S 900
#define SECRET EFIX_SECRET
#define ADMIN EFIX_ADMIN
#define PASSWORD "correct horse battery staple"

#define JWT_KEY ((const unsigned char *)EFIX_JWT_KEY)
#define JWT_KEY_LEN (sizeof(EFIX_JWT_KEY) - 1)

/* ---- fixture and requests ------------------------------------------------- */

/* The context with argon2id at libsodium's minimum limits (fast) and a
 * token lifetime of TTL_S; the engine is not created. */
static efix *fixture_new(void)
{
	efix *f = efix_new("user", "sqlite::memory:", T0, 7);
	assert_int_equal(config_set(f->config, "user.pwhash_opslimit", "1"), 0);
	assert_int_equal(config_set(f->config, "user.pwhash_memlimit_kib", "8"), 0);
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%d", TTL_S);
	assert_int_equal(config_set(f->config, "user.token_ttl_s", ttl), 0);
	return f;
}

static int setup(void **state)
{
	efix *f = fixture_new();
	f->eng = efix_create_engine(f);
	*state = f;
	return 0;
}

/* Runs a request and returns its JSON body (new reference), status in
 * *status. */
static json_t *call(efix *f, const char *method, const char *path, const char *ident,
		    const char *body, int *status)
{
	return efix_call(f, method, path, ident, NULL, body, status);
}

/* Asserts the API error shape with code and, when field is not NULL,
 * details.field; consumes v. */
static void assert_error(json_t *v, const char *code, const char *field)
{
	efix_assert_error(v, code, "field", field);
}

static void expect_error(efix *f, const char *method, const char *path, const char *ident,
			 const char *body, int want_status, const char *code, const char *field)
{
	assert_error(efix_expect(f, method, path, ident, NULL, body, want_status), code, field);
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Signs up and returns the new user id in id (IDS-sized). */
static void signup_ok(efix *f, const char *email, const char *password, const char *name,
		      char *id, size_t idlen)
{
	json_t *b = json_pack("{s:s,s:s,s:s}", "email", email, "password", password, "name", name);
	char *body = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	int status = 0;
	json_t *v = call(f, "POST", "/v1/auth/signup", NULL, body, &status);
	if (status != 201)
		fail_msg("signup %s: status %d", email, status);
	free(body);
	snprintf(id, idlen, "%s", jstr(v, "user_id"));
	json_decref(v);
}

/* ---- email normalisation -------------------------------------------------------- */

static void test_normalize_email(void **state)
{
	static const char *const good[][2] = {
		{ "alice@example.com", "alice@example.com" },
		{ "  Alice@Example.COM \t", "Alice@example.com" },
		{ "\r\n x@Y.IO\n", "x@y.io" },
		{ "First.Last+Tag@Mail.Sub.Example.ORG", "First.Last+Tag@mail.sub.example.org" },
		{ "UPPER@EXAMPLE.COM", "UPPER@example.com" },
		{ "a@b.co", "a@b.co" },
		{ "o'brien@x-y.example", "o'brien@x-y.example" },
	};
	char out[300];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(out, 'Z', sizeof(out));
		if (user_normalize_email(good[i][0], out, sizeof(out)) != 0)
			fail_msg("refused \"%s\"", good[i][0]);
		assert_string_equal(out, good[i][1]);
	}

	static const char *const bad[] = {
		"",
		"   ",
		"alice",
		"alice.example.com",            /* no @ */
		"alice@@example.com",           /* two @ */
		"alice@b@example.com",          /* two @ */
		"@example.com",                 /* empty local part */
		"alice@",                       /* empty domain */
		"alice@localhost",              /* undotted domain */
		"alice@examplecom",             /* undotted domain */
		"alice@.example.com",
		"alice@example.com.",
		"alice@-example.com",
		"al ice@example.com",           /* space inside */
		"alice@exa mple.com",
		"ali\tce@example.com",          /* control characters */
		"ali\x01" "ce@example.com",
		"alice@example.com\x7f",
		"alice@exam\nple.com",
		"\"alice\"@example.com",
		"alice<x>@example.com",
		"alice@example.com,bob@example.com",
		"alice;x@example.com",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (user_normalize_email(bad[i], out, sizeof(out)) != ERR_INVALID)
			fail_msg("accepted bad #%zu \"%s\" as \"%s\"", i, bad[i], out);

	/* 254 bytes is the limit, after trimming */
	char addr[300];
	const char *dom = "@example.com";
	size_t local = 254 - strlen(dom);
	memset(addr, 'l', local);
	strcpy(addr + local, dom);
	assert_int_equal(strlen(addr), 254);
	assert_int_equal(user_normalize_email(addr, out, sizeof(out)), 0);
	assert_string_equal(out, addr);
	char padded[320];
	snprintf(padded, sizeof(padded), "   %s   ", addr);
	assert_int_equal(user_normalize_email(padded, out, sizeof(out)), 0);
	assert_string_equal(out, addr);
	memset(addr, 'l', local + 1);
	strcpy(addr + local + 1, dom);
	assert_int_equal(strlen(addr), 255);
	assert_int_equal(user_normalize_email(addr, out, sizeof(out)), ERR_INVALID);

	/* an output buffer too small is an error, not a cut */
	assert_int_equal(user_normalize_email("alice@example.com", out, 17), ERR_INVALID);
	assert_int_equal(user_normalize_email("alice@example.com", out, 18), 0);
	assert_string_equal(out, "alice@example.com");
}

/* ---- signup ----------------------------------------------------------------------------- */

static void test_signup(void **state)
{
	efix *f = *state;
	msg_resp resp;
	efix_do(f, NULL, "POST", "/v1/auth/signup", NULL, NULL, NULL,
	        "{\"email\":\" Alice@Example.COM \",\"password\":\"" PASSWORD
	        "\",\"name\":\"Alice\"}",
	        &resp);
	assert_int_equal(resp.status, 201);
	/* the password is never echoed, in any form */
	assert_null(memmem(resp.body, resp.body_len, PASSWORD, strlen(PASSWORD)));
	assert_null(memmem(resp.body, resp.body_len, "password", 8));
	assert_null(memmem(resp.body, resp.body_len, "argon2", 6));
	json_t *v = efix_json(&resp);
	msg_resp_clear(&resp);
	assert_int_equal(json_object_size(v), 3);
	const char *uid = jstr(v, "user_id");
	assert_non_null(uid);
	assert_int_equal(strncmp(uid, "usr_", 4), 0);
	assert_string_equal(jstr(v, "email"), "Alice@example.com");
	assert_string_equal(jstr(v, "name"), "Alice");

	/* what is stored: an argon2id string, at the configured cost, without
	 * the password */
	int err = 0;
	store_stmt *st = store_prepare(
		f->store, "SELECT email, password_hash, created_at FROM users WHERE user_id = ?", &err);
	assert_non_null(st);
	store_bind_text(st, 1, uid);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_string_equal(store_col_text(st, 0), "Alice@example.com");
	const char *hash = store_col_text(st, 1);
	assert_int_equal(strncmp(hash, "$argon2id$", 10), 0);
	assert_non_null(strstr(hash, "m=8,t=1,"));
	assert_null(strstr(hash, PASSWORD));
	assert_null(strstr(hash, "horse"));
	assert_int_equal(store_col_int(st, 2), T0);
	assert_int_equal(store_step(st), STORE_DONE);
	store_reset(st);
	json_decref(v);

	/* the same password for another account gets another salt */
	char uid2[64];
	signup_ok(f, "bob@example.com", PASSWORD, "Bob", uid2, sizeof(uid2));
	st = store_prepare(f->store, "SELECT COUNT(DISTINCT password_hash) FROM users", &err);
	assert_non_null(st);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_int_equal(store_col_int(st, 0), 2);
	store_reset(st);
}

static void test_signup_validation(void **state)
{
	efix *f = *state;
	const char *p = "/v1/auth/signup";
	expect_error(f, "POST", p, NULL,
		     "{\"email\":\"a@example.com\",\"password\":\"1234567\",\"name\":\"A\"}", 400,
		     "invalid_argument", "password");
	expect_error(f, "POST", p, NULL,
		     "{\"email\":\"a@example.com\",\"password\":\"\",\"name\":\"A\"}", 400,
		     "invalid_argument", "password");
	expect_error(f, "POST", p, NULL, "{\"email\":\"a@example.com\",\"name\":\"A\"}", 400,
		     "invalid_argument", "password");
	expect_error(f, "POST", p, NULL,
		     "{\"email\":\"not-an-email\",\"password\":\"12345678\",\"name\":\"A\"}", 400,
		     "invalid_argument", "email");
	expect_error(f, "POST", p, NULL,
		     "{\"email\":\"a@localhost\",\"password\":\"12345678\",\"name\":\"A\"}", 400,
		     "invalid_argument", "email");
	expect_error(f, "POST", p, NULL, "{\"email\":7,\"password\":\"12345678\",\"name\":\"A\"}",
		     400, "invalid_argument", "email");
	expect_error(f, "POST", p, NULL, "{\"email\":\"a@example.com\",\"password\":\"12345678\"}",
		     400, "invalid_argument", "name");
	expect_error(f, "POST", p, NULL, "not json", 400, "invalid_argument", "body");
	expect_error(f, "POST", p, NULL, "[]", 400, "invalid_argument", "body");

	/* a body that is not JSON by its type */
	msg_req req;
	msg_resp resp;
	assert_int_equal(msg_req_init(&req, "POST", p), 0);
	assert_int_equal(msg_req_add_header(&req, "Content-Type", "text/plain"), 0);
	const char *b = "{\"email\":\"a@example.com\",\"password\":\"12345678\",\"name\":\"A\"}";
	assert_int_equal(msg_req_set_body(&req, b, strlen(b)), 0);
	msg_resp_init(&resp);
	user_engine.handle(f->eng, &req, &resp);
	assert_int_equal(resp.status, 415);
	msg_req_clear(&req);
	msg_resp_clear(&resp);

	/* none of that created an account; eight characters is enough */
	int err = 0;
	store_stmt *st = store_prepare(f->store, "SELECT COUNT(*) FROM users", &err);
	assert_int_equal(store_step(st), STORE_ROW);
	assert_int_equal(store_col_int(st, 0), 0);
	store_reset(st);
	char uid[64];
	signup_ok(f, "a@example.com", "12345678", "A", uid, sizeof(uid));
}

static void test_signup_duplicate(void **state)
{
	efix *f = *state;
	char uid[64];
	signup_ok(f, "Alice@example.com", PASSWORD, "Alice", uid, sizeof(uid));
	expect_error(f, "POST", "/v1/auth/signup", NULL,
		     "{\"email\":\" Alice@Example.COM \",\"password\":\"another-password\","
		     "\"name\":\"Mallory\"}",
		     409, "conflict", "email");
	expect_error(f, "POST", "/v1/auth/signup", NULL,
		     "{\"email\":\"Alice@EXAMPLE.com\",\"password\":\"another-password\","
		     "\"name\":\"Mallory\"}",
		     409, "conflict", "email");
	/* the first account is untouched */
	int err = 0;
	store_stmt *st = store_prepare(f->store, "SELECT name FROM users WHERE email = ?", &err);
	store_bind_text(st, 1, "Alice@example.com");
	assert_int_equal(store_step(st), STORE_ROW);
	assert_string_equal(store_col_text(st, 0), "Alice");
	assert_int_equal(store_step(st), STORE_DONE);
	store_reset(st);
	/* the local part is kept as typed, so another case there is another
	 * address */
	char uid2[64];
	signup_ok(f, "alice@example.com", PASSWORD, "Other Alice", uid2, sizeof(uid2));
	assert_string_not_equal(uid, uid2);
}

/* ---- login ----------------------------------------------------------------------------- */

static void login_body(char *buf, size_t len, const char *email, const char *password)
{
	json_t *b = json_pack("{s:s,s:s}", "email", email, "password", password);
	char *s = json_dumps(b, JSON_COMPACT);
	snprintf(buf, len, "%s", s);
	free(s);
	json_decref(b);
}

static void test_login(void **state)
{
	efix *f = *state;
	char uid[64];
	signup_ok(f, "alice@example.com", PASSWORD, "Alice", uid, sizeof(uid));
	clock_advance(f->clock, 5 * 1000000LL);

	char body[256];
	login_body(body, sizeof(body), "  alice@EXAMPLE.com ", PASSWORD);
	msg_resp resp;
	efix_do(f, NULL, "POST", "/v1/auth/login", NULL, NULL, NULL, body, &resp);
	assert_int_equal(resp.status, 200);
	assert_null(memmem(resp.body, resp.body_len, PASSWORD, strlen(PASSWORD)));
	json_t *v = efix_json(&resp);
	msg_resp_clear(&resp);
	assert_string_equal(jstr(v, "token_type"), "Bearer");
	assert_int_equal(json_integer_value(json_object_get(v, "expires_in")), TTL_S);
	const char *tok = jstr(v, "access_token");
	assert_non_null(tok);

	int64_t now_s = clock_now(f->clock) / 1000000;
	token_claims c;
	assert_int_equal(token_verify(JWT_KEY, JWT_KEY_LEN, tok, now_s, 0, &c), 0);
	assert_string_equal(c.sub, uid);
	assert_int_equal(c.iat, now_s);
	assert_int_equal(c.exp, c.iat + TTL_S);
	assert_int_equal(strncmp(c.jti, "jti_", 4), 0);
	/* signed with the platform key and nothing else */
	static const unsigned char other[] = "fedcba9876543210fedcba9876543210-jwt";
	assert_int_equal(token_verify(other, sizeof(other) - 1, tok, now_s, 0, &c), ERR_UNAUTH);
	/* and dead after its lifetime */
	assert_int_equal(token_verify(JWT_KEY, JWT_KEY_LEN, tok, now_s + TTL_S + 1, 0, &c),
			 ERR_UNAUTH);
	json_decref(v);
}

static void test_login_failures_look_alike(void **state)
{
	efix *f = *state;
	char uid[64];
	signup_ok(f, "alice@example.com", PASSWORD, "Alice", uid, sizeof(uid));

	char body[256];
	msg_resp wrong, unknown, unshaped;
	login_body(body, sizeof(body), "alice@example.com", "not the password");
	efix_do(f, NULL, "POST", "/v1/auth/login", NULL, NULL, NULL, body, &wrong);
	login_body(body, sizeof(body), "nobody@example.com", PASSWORD);
	efix_do(f, NULL, "POST", "/v1/auth/login", NULL, NULL, NULL, body, &unknown);
	login_body(body, sizeof(body), "not an email", PASSWORD);
	efix_do(f, NULL, "POST", "/v1/auth/login", NULL, NULL, NULL, body, &unshaped);

	assert_int_equal(wrong.status, 401);
	assert_int_equal(unknown.status, 401);
	assert_int_equal(unshaped.status, 401);
	assert_int_equal(wrong.body_len, unknown.body_len);
	assert_memory_equal(wrong.body, unknown.body, wrong.body_len);
	assert_int_equal(wrong.body_len, unshaped.body_len);
	assert_memory_equal(wrong.body, unshaped.body, wrong.body_len);
	assert_int_equal(wrong.nheaders, unknown.nheaders);
	json_t *v = efix_json(&wrong);
	assert_error(v, "unauthenticated", NULL);
	assert_null(memmem(wrong.body, wrong.body_len, "token", 5));
	msg_resp_clear(&wrong);
	msg_resp_clear(&unknown);
	msg_resp_clear(&unshaped);

	/* a password differing only in case, or a prefix of it, is wrong too */
	login_body(body, sizeof(body), "alice@example.com", "Correct horse battery staple");
	expect_error(f, "POST", "/v1/auth/login", NULL, body, 401, "unauthenticated", NULL);
	login_body(body, sizeof(body), "alice@example.com", "correct horse");
	expect_error(f, "POST", "/v1/auth/login", NULL, body, 401, "unauthenticated", NULL);
	/* a missing field is a 400, not a login attempt */
	expect_error(f, "POST", "/v1/auth/login", NULL, "{\"email\":\"alice@example.com\"}", 400,
		     "invalid_argument", "password");
}

/* ---- profile ---------------------------------------------------------------------------- */

static void test_me_needs_signed_identity(void **state)
{
	efix *f = *state;
	char uid[64];
	signup_ok(f, "alice@example.com", PASSWORD, "Alice", uid, sizeof(uid));
	char ident[IDENTITY_MAX];

	/* nobody */
	expect_error(f, "GET", "/v1/users/me", NULL, NULL, 401, "unauthenticated", NULL);
	/* forged: signed with another secret */
	efix_sign(f, IDENTITY_USER, uid, "not-the-service-secret", ident);
	expect_error(f, "GET", "/v1/users/me", ident, NULL, 401, "unauthenticated", NULL);
	/* an unsigned claim */
	char naked[IDENTITY_MAX];
	snprintf(naked, sizeof(naked), "v1;role=user;sub=%s;ts=%lld", uid,
		 (long long)clock_now(f->clock));
	expect_error(f, "GET", "/v1/users/me", naked, NULL, 401, "unauthenticated", NULL);
	/* the user's access token is for the gateway, not for the service */
	char auth[256];
	snprintf(auth, sizeof(auth), "Bearer %s", ADMIN);
	msg_resp resp;
	efix_do(f, NULL, "GET", "/v1/users/me", NULL, auth, NULL, NULL, &resp);
	assert_int_equal(resp.status, 401); /* the admin is not a user */
	msg_resp_clear(&resp);

	/* expired: signed, then replayed two minutes later */
	efix_sign(f, IDENTITY_USER, uid, SECRET, ident);
	assert_int_equal(clock_advance(f->clock, 120 * 1000000LL), 0);
	expect_error(f, "GET", "/v1/users/me", ident, NULL, 401, "unauthenticated", NULL);

	/* an admin or service identity, correctly signed, is not a user */
	identity id;
	memset(&id, 0, sizeof(id));
	id.role = IDENTITY_ADMIN;
	snprintf(id.sub, sizeof(id.sub), "admin");
	assert_int_equal(identity_sign(SECRET, &id, clock_now(f->clock), ident, IDENTITY_MAX), 0);
	expect_error(f, "GET", "/v1/users/me", ident, NULL, 401, "unauthenticated", NULL);

	/* valid */
	efix_sign(f, IDENTITY_USER, uid, SECRET, ident);
	int status = 0;
	json_t *v = call(f, "GET", "/v1/users/me", ident, NULL, &status);
	assert_int_equal(status, 200);
	assert_string_equal(jstr(v, "user_id"), uid);
	assert_string_equal(jstr(v, "email"), "alice@example.com");
	assert_string_equal(jstr(v, "name"), "Alice");
	assert_non_null(jstr(v, "created_at"));
	assert_string_equal(jstr(v, "created_at"), "2025-11-25T23:10:55.000Z");
	json_t *addrs = json_object_get(v, "addresses");
	assert_true(json_is_array(addrs));
	assert_int_equal(json_array_size(addrs), 0);
	assert_null(json_object_get(v, "password_hash"));
	assert_null(json_object_get(v, "password"));
	json_decref(v);

	/* a genuine identity for an account that does not exist */
	efix_sign(f, IDENTITY_USER, "usr_0000000000000000", SECRET, ident);
	expect_error(f, "GET", "/v1/users/me", ident, NULL, 404, "not_found", NULL);
}

static void test_patch_name(void **state)
{
	efix *f = *state;
	char uid[64], ident[IDENTITY_MAX];
	signup_ok(f, "alice@example.com", PASSWORD, "Alice", uid, sizeof(uid));

	expect_error(f, "PATCH", "/v1/users/me", NULL, "{\"name\":\"Eve\"}", 401,
		     "unauthenticated", NULL);
	efix_sign(f, IDENTITY_USER, uid, SECRET, ident);
	int status = 0;
	json_t *v = call(f, "PATCH", "/v1/users/me", ident, "{\"name\":\"Alice Liddell\"}", &status);
	assert_int_equal(status, 200);
	assert_string_equal(jstr(v, "name"), "Alice Liddell");
	assert_string_equal(jstr(v, "user_id"), uid);
	json_decref(v);
	v = call(f, "GET", "/v1/users/me", ident, NULL, &status);
	assert_int_equal(status, 200);
	assert_string_equal(jstr(v, "name"), "Alice Liddell");
	assert_string_equal(jstr(v, "email"), "alice@example.com");
	json_decref(v);

	expect_error(f, "PATCH", "/v1/users/me", ident, "{\"name\":\"\"}", 400, "invalid_argument",
		     "name");
	expect_error(f, "PATCH", "/v1/users/me", ident, "{}", 400, "invalid_argument", "name");
	expect_error(f, "PATCH", "/v1/users/me", ident, "{\"name\":42}", 400, "invalid_argument",
		     "name");
	v = call(f, "GET", "/v1/users/me", ident, NULL, &status);
	assert_string_equal(jstr(v, "name"), "Alice Liddell");
	json_decref(v);
}

static void add_address_ok(efix *f, const char *ident, const char *line1, char *id,
			   size_t idlen)
{
	json_t *b = json_pack("{s:s,s:s,s:s,s:s}", "line1", line1, "city", "Berlin",
			      "postal_code", "10115", "country", "DE");
	char *body = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	int status = 0;
	json_t *v = call(f, "POST", "/v1/users/me/addresses", ident, body, &status);
	free(body);
	assert_int_equal(status, 201);
	assert_int_equal(strncmp(jstr(v, "address_id"), "adr_", 4), 0);
	assert_string_equal(jstr(v, "line1"), line1);
	assert_string_equal(jstr(v, "city"), "Berlin");
	assert_string_equal(jstr(v, "postal_code"), "10115");
	assert_string_equal(jstr(v, "country"), "DE");
	snprintf(id, idlen, "%s", jstr(v, "address_id"));
	json_decref(v);
}

/* The address ids in the caller's profile, space-separated, into buf. */
static void my_addresses(efix *f, const char *ident, char *buf, size_t len)
{
	int status = 0;
	json_t *v = call(f, "GET", "/v1/users/me", ident, NULL, &status);
	assert_int_equal(status, 200);
	json_t *a = json_object_get(v, "addresses");
	assert_true(json_is_array(a));
	buf[0] = '\0';
	size_t i;
	json_t *it;
	json_array_foreach(a, i, it)
	{
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, "%s%s", n ? " " : "", jstr(it, "address_id"));
	}
	json_decref(v);
}

static void test_addresses(void **state)
{
	efix *f = *state;
	char a[64], b[64], ia[IDENTITY_MAX], ib[IDENTITY_MAX];
	signup_ok(f, "alice@example.com", PASSWORD, "Alice", a, sizeof(a));
	signup_ok(f, "bob@example.com", PASSWORD, "Bob", b, sizeof(b));
	efix_sign(f, IDENTITY_USER, a, SECRET, ia);
	efix_sign(f, IDENTITY_USER, b, SECRET, ib);

	char a1[64], a2[64], b1[64];
	add_address_ok(f, ia, "Unter den Linden 1", a1, sizeof(a1));
	clock_advance(f->clock, 1000);
	add_address_ok(f, ia, "Alexanderplatz 2", a2, sizeof(a2));

	/* both appear in Alice's profile, in the order added, with their fields */
	char list[512], want[256];
	my_addresses(f, ia, list, sizeof(list));
	snprintf(want, sizeof(want), "%s %s", a1, a2);
	assert_string_equal(list, want);
	int status = 0;
	json_t *v = call(f, "GET", "/v1/users/me", ia, NULL, &status);
	json_t *first = json_array_get(json_object_get(v, "addresses"), 0);
	assert_string_equal(jstr(first, "line1"), "Unter den Linden 1");
	assert_string_equal(jstr(first, "country"), "DE");
	json_decref(v);

	/* none in Bob's */
	my_addresses(f, ib, list, sizeof(list));
	assert_string_equal(list, "");
	add_address_ok(f, ib, "Baker Street 221b", b1, sizeof(b1));
	my_addresses(f, ib, list, sizeof(list));
	assert_string_equal(list, b1);
	my_addresses(f, ia, list, sizeof(list));
	assert_string_equal(list, want);

	/* without identity or with a forged one: refused, nothing added */
	const char *ok_body = "{\"line1\":\"x\",\"city\":\"y\",\"postal_code\":\"1\",\"country\":\"DE\"}";
	expect_error(f, "POST", "/v1/users/me/addresses", NULL, ok_body, 401, "unauthenticated",
		     NULL);
	char forged[IDENTITY_MAX];
	efix_sign(f, IDENTITY_USER, a, "wrong-secret", forged);
	expect_error(f, "POST", "/v1/users/me/addresses", forged, ok_body, 401, "unauthenticated",
		     NULL);
	my_addresses(f, ia, list, sizeof(list));
	assert_string_equal(list, want);
}

static void test_address_validation(void **state)
{
	efix *f = *state;
	char a[64], ia[IDENTITY_MAX];
	signup_ok(f, "alice@example.com", PASSWORD, "Alice", a, sizeof(a));
	efix_sign(f, IDENTITY_USER, a, SECRET, ia);
	const char *p = "/v1/users/me/addresses";
	static const struct {
		const char *body;
		const char *field;
	} bad[] = {
		{ "{\"line1\":\"x\",\"city\":\"y\",\"postal_code\":\"1\",\"country\":\"de\"}", "country" },
		{ "{\"line1\":\"x\",\"city\":\"y\",\"postal_code\":\"1\",\"country\":\"DEU\"}", "country" },
		{ "{\"line1\":\"x\",\"city\":\"y\",\"postal_code\":\"1\",\"country\":\"D\"}", "country" },
		{ "{\"line1\":\"x\",\"city\":\"y\",\"postal_code\":\"1\",\"country\":\"D1\"}", "country" },
		{ "{\"line1\":\"x\",\"city\":\"y\",\"postal_code\":\"1\"}", "country" },
		{ "{\"city\":\"y\",\"postal_code\":\"1\",\"country\":\"DE\"}", "line1" },
		{ "{\"line1\":\"\",\"city\":\"y\",\"postal_code\":\"1\",\"country\":\"DE\"}", "line1" },
		{ "{\"line1\":\"x\",\"postal_code\":\"1\",\"country\":\"DE\"}", "city" },
		{ "{\"line1\":\"x\",\"city\":\"y\",\"country\":\"DE\"}", "postal_code" },
		{ "{\"line1\":\"x\",\"city\":\"y\",\"postal_code\":\"123456789012345678901\","
		  "\"country\":\"DE\"}",
		  "postal_code" },
		{ "[1]", "body" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(f, "POST", p, ia, bad[i].body, 400, "invalid_argument", bad[i].field);
	char list[256];
	my_addresses(f, ia, list, sizeof(list));
	assert_string_equal(list, "");
}

/* ---- create -------------------------------------------------------------------------------- */

static void test_create_refuses_bad_config(void **state)
{
	efix *f = fixture_new();
	char err[256] = "";
	/* a JWT key shorter than 32 bytes */
	f->ctx.jwt_key = (const unsigned char *)"short";
	f->ctx.jwt_key_len = 5;
	assert_null(user_engine.create(&f->ctx, err, sizeof(err)));
	assert_true(err[0] != '\0');
	f->ctx.jwt_key = NULL;
	f->ctx.jwt_key_len = 0;
	err[0] = '\0';
	assert_null(user_engine.create(&f->ctx, err, sizeof(err)));
	assert_true(err[0] != '\0');
	f->ctx.jwt_key = JWT_KEY;
	f->ctx.jwt_key_len = JWT_KEY_LEN;
	/* argon2id below libsodium's minimums */
	assert_int_equal(config_set(f->config, "user.pwhash_opslimit", "0"), 0);
	err[0] = '\0';
	assert_null(user_engine.create(&f->ctx, err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_int_equal(config_set(f->config, "user.pwhash_opslimit", "1"), 0);
	assert_int_equal(config_set(f->config, "user.pwhash_memlimit_kib", "4"), 0);
	assert_null(user_engine.create(&f->ctx, err, sizeof(err)));
	assert_int_equal(config_set(f->config, "user.pwhash_memlimit_kib", "8"), 0);
	assert_int_equal(config_set(f->config, "user.token_ttl_s", "0"), 0);
	assert_null(user_engine.create(&f->ctx, err, sizeof(err)));
	assert_int_equal(config_set(f->config, "user.token_ttl_s", "60"), 0);
	f->eng = user_engine.create(&f->ctx, err, sizeof(err));
	assert_non_null(f->eng);
	efix_free(f);
}

/* ---- synthetic users: POST /v1/users/_bulk ----------------------------------------------- */

static void test_bulk_users(void **state)
{
	efix *f = *state;
	char auth[64];
	snprintf(auth, sizeof(auth), "Bearer %s", ADMIN);
	rng *r = rng_new(5);
	char u1[512], u2[512], body[1200];
	assert_true(seed_user(r, 5, 0, u1, sizeof(u1)) > 0);
	assert_true(seed_user(r, 5, 1, u2, sizeof(u2)) > 0);
	rng_free(r);
	snprintf(body, sizeof(body), "{\"users\":[%s,%s]}", u1, u2);
	int status;
	json_t *v = efix_call(f, "POST", "/v1/users/_bulk", NULL, auth, body, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(v, "created")), 2);
	json_decref(v);
	/* Again: both kept as they are. */
	v = efix_call(f, "POST", "/v1/users/_bulk", NULL, auth, body, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(v, "created")), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "existing")), 2);
	json_decref(v);
	/* They log in with the seed's password. */
	char lb[256];
	login_body(lb, sizeof(lb), "syn-5-2@synthetic.ecom.test", "synthetic-5");
	v = call(f, "POST", "/v1/auth/login", NULL, lb, &status);
	assert_int_equal(status, 200);
	assert_non_null(jstr(v, "access_token"));
	json_decref(v);
	login_body(lb, sizeof(lb), "syn-5-2@synthetic.ecom.test", "synthetic-6");
	json_decref(call(f, "POST", "/v1/auth/login", NULL, lb, &status));
	assert_int_equal(status, 401);

	/* Admin only; synthetic (.test) emails only; real hashes only. */
	char ident[IDENTITY_MAX];
	efix_sign(f, IDENTITY_USER, "usr_x", NULL, ident);
	expect_error(f, "POST", "/v1/users/_bulk", ident, body, 403, "forbidden", NULL);
	expect_error(f, "POST", "/v1/users/_bulk", NULL, body, 401, "unauthenticated", NULL);
	static const char *const bad[][2] = {
		{ "{\"users\":[]}", "users" },
		{ "{\"users\":[{\"email\":\"a@example.com\",\"name\":\"A\","
		  "\"password_hash\":\"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA\"}]}",
		  "users[0].email" },
		{ "{\"users\":[{\"email\":\"a@x.test\",\"name\":\"A\","
		  "\"password_hash\":\"plain text\"}]}",
		  "users[0].password_hash" },
		{ "{\"users\":[{\"email\":\"a@x.test\",\"password_hash\":\"x\"}]}",
		  "users[0].name" },
		{ "{\"users\":[7]}", "users[0]" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_error(efix_expect(f, "POST", "/v1/users/_bulk", NULL, auth, bad[i][0], 400),
			     "invalid_argument", bad[i][1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize_email),
		cmocka_unit_test_setup_teardown(test_signup, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_signup_validation, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_signup_duplicate, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_login, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_login_failures_look_alike, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_me_needs_signed_identity, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_patch_name, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_addresses, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_bulk_users, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_address_validation, setup, efix_teardown),
		cmocka_unit_test(test_create_refuses_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
