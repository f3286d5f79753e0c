/* Integration: identity at the edge. Signup, login and the caller's
 * profile through the gateway; duplicate emails; forged identity headers
 * (through the gateway and straight at the service's port); one user never
 * sees another's data; the login limit; admin versus user tokens; the /v2
 * route, a weighted split between versions, and a deprecated route. Runs on
 * SQLite, and on PostgreSQL from tests/integration/postgres.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "services/identity.h"
#include "net/http_client.h"

static char conf_path[256], routes_path[256];
static char token_a[1024], token_b[1024];

static int setup(void **unused)
{
	snprintf(routes_path, sizeof(routes_path), "/tmp/ecom-itest-routes-%ld", (long)getpid());
	snprintf(conf_path, sizeof(conf_path), "/tmp/ecom-itest-conf-%ld", (long)getpid());
	FILE *f = fopen(routes_path, "w");
	if (!f)
		return -1;
	fputs("/v1/products       catalog\n"
	      "/v2/products       catalog\n"
	      "/v1/users          user\n"
	      "/v1/auth           user\n"
	      "/v1/reservations   inventory\n"
	      "# 70% of /v1/split goes to the v1 handler, 30% to v2\n"
	      "/v1/split          catalog:/v1/products=70,catalog:/v2/products=30\n"
	      "/v0/products       catalog:/v1/products deprecated=2026-01-01 sunset=2027-06-30 "
	      "successor=/v1/products\n",
	      f);
	fclose(f);
	f = fopen(conf_path, "w");
	if (!f)
		return -1;
	fprintf(f, "gateway.routes_file = %s\n", routes_path);
	fclose(f);
	return itest_up("--config", conf_path, NULL);
}

static int teardown(void **unused)
{
	itest_teardown();
	unlink(routes_path);
	unlink(conf_path);
	return 0;
}

static json_t *field(json_t *v, const char *a, const char *b)
{
	json_t *x = json_object_get(v, a);
	return b ? json_object_get(x, b) : x;
}

static void signup_login(const char *email, const char *name, char *token, size_t len)
{
	char body[512];
	json_t *v = NULL;
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse 1\",\"name\":\"%s\"}",
		 email, name);
	assert_int_equal(itest_req("POST", "/v1/auth/signup", body, NULL, &v, NULL), 201);
	assert_non_null(json_string_value(field(v, "user_id", NULL)));
	char *text = json_dumps(v, 0);
	assert_null(strstr(text, "correct horse"));
	free(text);
	json_decref(v);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse 1\"}", email);
	assert_int_equal(itest_req("POST", "/v1/auth/login", body, NULL, &v, NULL), 200);
	assert_string_equal(json_string_value(field(v, "token_type", NULL)), "Bearer");
	assert_true(json_integer_value(field(v, "expires_in", NULL)) > 0);
	snprintf(token, len, "%s", json_string_value(field(v, "access_token", NULL)));
	json_decref(v);
}

static void test_signup_login_me(void **unused)
{
	signup_login("alice@example.com", "Alice", token_a, sizeof(token_a));
	signup_login("bob@example.com", "Bob", token_b, sizeof(token_b));
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/v1/users/me", NULL, token_a, &v, NULL), 200);
	assert_string_equal(json_string_value(field(v, "email", NULL)), "alice@example.com");
	assert_true(json_is_array(field(v, "addresses", NULL)));
	json_decref(v);
	/* No token, a garbage token: 401. */
	assert_int_equal(itest_req("GET", "/v1/users/me", NULL, NULL, &v, NULL), 401);
	json_decref(v);
	assert_int_equal(itest_req("GET", "/v1/users/me", NULL, "not.a.jwt", &v, NULL), 401);
	assert_string_equal(itest_err_code(v), "unauthenticated");
	json_decref(v);
	/* A bad token is refused even on a public route. */
	assert_int_equal(itest_req("GET", "/v1/products/BOOK-001", NULL, "garbage", NULL, NULL), 401);
	/* The same email, differently written, is taken. */
	assert_int_equal(itest_req("POST", "/v1/auth/signup",
				   "{\"email\":\"  alice@EXAMPLE.com \",\"password\":\"12345678\",\"name\":\"A2\"}",
				   NULL, &v, NULL),
			 409);
	assert_string_equal(itest_err_code(v), "conflict");
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/auth/signup",
				   "{\"email\":\"carol@example.com\",\"password\":\"short\",\"name\":\"C\"}",
				   NULL, &v, NULL),
			 400);
	json_decref(v);
}

/* A raw request with extra headers, to the gateway or to base. */
static int raw(const char *base, const char *method, const char *path, const char *bearer,
	       const char *hname, const char *hvalue, json_t **out)
{
	msg_req req;
	msg_req_init(&req, method, path);
	if (bearer) {
		char auth[1100];
		snprintf(auth, sizeof(auth), "Bearer %s", bearer);
		msg_req_add_header(&req, "Authorization", auth);
	}
	if (hname)
		msg_req_add_header(&req, hname, hvalue);
	msg_resp r;
	msg_resp_init(&r);
	http_call_opts o = { 1000, 5000 };
	int rc = http_client_do(base, &req, &r, &o);
	int status = rc == 0 ? r.status : -1;
	if (out)
		*out = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
	msg_resp_clear(&r);
	msg_req_clear(&req);
	return status;
}

static void test_forged_identity(void **unused)
{
	json_t *v = NULL;
	char me[512];
	assert_int_equal(itest_req("GET", "/v1/users/me", NULL, token_b, &v, NULL), 200);
	snprintf(me, sizeof(me), "%s", json_string_value(field(v, "user_id", NULL)));
	json_decref(v);
	const char *forged = "v1;role=user;sub=usr_0000000000000001;ts=1;sig="
			     "0000000000000000000000000000000000000000000000000000000000000000";
	/* Through the gateway: a client's identity header is dropped. */
	assert_int_equal(raw(IT.url, "GET", "/v1/users/me", NULL, "X-Ecom-Identity", forged, &v), 401);
	json_decref(v);
	assert_int_equal(raw(IT.url, "GET", "/v1/users/me", token_b, "X-Ecom-Identity", forged, &v), 200);
	assert_string_equal(json_string_value(field(v, "user_id", NULL)), me);
	json_decref(v);
	/* Straight at the user service's port: no gateway signature, no entry,
	 * whatever the client presents. */
	char p[512], addr[256] = "";
	snprintf(p, sizeof(p), "%s/instances.json", IT.state);
	json_t *doc = json_load_file(p, 0, NULL);
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
		if (strcmp(json_string_value(json_object_get(in, "service")), "user") == 0)
			snprintf(addr, sizeof(addr), "%s", json_string_value(json_object_get(in, "addr")));
	json_decref(doc);
	assert_true(addr[0]);
	assert_int_equal(raw(addr, "GET", "/v1/users/me", NULL, "X-Ecom-Identity", forged, NULL), 401);
	assert_int_equal(raw(addr, "GET", "/v1/users/me", token_b, NULL, NULL, NULL), 401);
	char replay[700];
	snprintf(replay, sizeof(replay), "v1;role=user;sub=%s;ts=1;sig=%064d", me, 0);
	assert_int_equal(raw(addr, "GET", "/v1/users/me", NULL, "X-Ecom-Identity", replay, NULL), 401);
}

static void test_users_see_only_their_own(void **unused)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("POST", "/v1/users/me/addresses",
				   "{\"line1\":\"1 Bob Street\",\"city\":\"Berlin\",\"postal_code\":\"10115\",\"country\":\"DE\"}",
				   token_b, &v, NULL),
			 201);
	json_decref(v);
	assert_int_equal(itest_req("PATCH", "/v1/users/me", "{\"name\":\"Robert\"}", token_b, &v, NULL), 200);
	assert_string_equal(json_string_value(field(v, "name", NULL)), "Robert");
	assert_int_equal(json_array_size(field(v, "addresses", NULL)), 1);
	json_decref(v);
	assert_int_equal(itest_req("GET", "/v1/users/me", NULL, token_a, &v, NULL), 200);
	assert_string_equal(json_string_value(field(v, "name", NULL)), "Alice");
	assert_int_equal(json_array_size(field(v, "addresses", NULL)), 0);
	char *text = json_dumps(v, 0);
	assert_null(strstr(text, "Bob Street"));
	free(text);
	json_decref(v);
}

static void test_admin_versus_user(void **unused)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/admin/services", NULL, token_a, &v, NULL), 403);
	assert_string_equal(itest_err_code(v), "forbidden");
	json_decref(v);
	assert_int_equal(itest_req("GET", "/admin/services", NULL, NULL, NULL, NULL), 401);
	assert_int_equal(itest_req("GET", "/admin/services", NULL, "nope", NULL, NULL), 401);
	assert_int_equal(itest_req("GET", "/admin/services", NULL, ITEST_TOKEN, NULL, NULL), 200);
	/* Catalog writes: admin yes, user no. */
	const char *prod = "{\"sku\":\"ID-1\",\"name\":\"Id\",\"category\":\"toys\",\"price_cents\":5}";
	assert_int_equal(itest_req("POST", "/v1/products", prod, token_a, &v, NULL), 403);
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/products", prod, ITEST_TOKEN, NULL, NULL), 201);
}

static void test_versions(void **unused)
{
	json_t *v = NULL;
	msg_resp r;
	assert_int_equal(itest_req("GET", "/v2/products/BOOK-001", NULL, NULL, &v, NULL), 200);
	assert_true(json_is_object(field(v, "price", NULL)));
	assert_true(json_integer_value(field(v, "price", "amount_cents")) > 0);
	assert_null(field(v, "price_cents", NULL));
	json_decref(v);
	assert_int_equal(itest_req("GET", "/v1/products/BOOK-001", NULL, NULL, &v, &r), 200);
	assert_non_null(field(v, "price_cents", NULL));
	assert_null(msg_resp_header(&r, "Deprecation"));
	assert_non_null(msg_resp_header(&r, "RateLimit-Limit"));
	msg_resp_clear(&r);
	json_decref(v);

	/* The split: 70/30 between the two versions, within a tolerance. */
	int v2 = 0, n = 400;
	for (int k = 0; k < n; k++) {
		assert_int_equal(itest_req("GET", "/v1/split/BOOK-001", NULL, NULL, &v, NULL), 200);
		v2 += json_is_object(field(v, "price", NULL));
		json_decref(v);
	}
	printf("# split: %d of %d requests went to v2 (weight 30%%)\n", v2, n);
	assert_true(v2 > n * 22 / 100 && v2 < n * 38 / 100);

	/* A deprecated route answers, and says so. */
	assert_int_equal(itest_req("GET", "/v0/products/BOOK-001", NULL, NULL, &v, &r), 200);
	assert_non_null(field(v, "price_cents", NULL));
	assert_string_equal(msg_resp_header(&r, "Deprecation"), "@1767225600");
	assert_string_equal(msg_resp_header(&r, "Sunset"), "Wed, 30 Jun 2027 00:00:00 GMT");
	assert_non_null(strstr(msg_resp_header(&r, "Link"), "successor-version"));
	msg_resp_clear(&r);
	json_decref(v);
}

/* Reservations are service-to-service: a user is refused (403); a service
 * that signs its identity with the service secret (as engine_call_service
 * does) gets through the gateway without any token. */
static void test_service_to_service(void **unused)
{
	json_t *v = NULL;
	const char *body = "{\"reservation_id\":\"svc-1\",\"order_id\":\"o-1\","
			   "\"items\":[{\"sku\":\"BOOK-001\",\"qty\":1}],\"ttl_s\":60}";
	assert_int_equal(itest_req("POST", "/v1/reservations", body, token_a, &v, NULL), 403);
	assert_string_equal(itest_err_code(v), "forbidden");
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/reservations", body, NULL, NULL, NULL), 401);

	char signed_id[IDENTITY_MAX];
	assert_int_equal(itest_sign_service("order", NULL, signed_id, sizeof(signed_id)), 0);
	msg_req req;
	msg_req_init(&req, "POST", "/v1/reservations");
	msg_req_add_header(&req, "X-Ecom-Identity", signed_id);
	msg_req_add_header(&req, "Content-Type", "application/json");
	msg_req_set_body(&req, body, strlen(body));
	msg_resp r;
	msg_resp_init(&r);
	http_call_opts o = { 1000, 5000 };
	assert_int_equal(http_client_do(IT.url, &req, &r, &o), 0);
	assert_int_equal(r.status, 201);
	msg_resp_clear(&r);
	/* The same header signed with another secret is a stranger. */
	assert_int_equal(itest_sign_service("order", "not-the-secret", signed_id, sizeof(signed_id)),
			 0);
	msg_req_set_header(&req, "X-Ecom-Identity", signed_id);
	msg_resp_init(&r);
	assert_int_equal(http_client_do(IT.url, &req, &r, &o), 0);
	assert_int_equal(r.status, 401);
	msg_resp_clear(&r);
	msg_req_clear(&req);
}

/* Last: it spends this address's login budget. Two logins were made in
 * test_signup_login_me; the limit is 5 a minute per email and per address. */
static void test_login_limit(void **unused)
{
	json_t *v = NULL;
	msg_resp r;
	const char *wrong = "{\"email\":\"alice@example.com\",\"password\":\"wrong password\"}";
	int k = 0;
	for (; k < 3; k++) {
		assert_int_equal(itest_req("POST", "/v1/auth/login", wrong, NULL, &v, NULL), 401);
		json_decref(v);
	}
	/* The sixth attempt within the minute. */
	assert_int_equal(itest_req("POST", "/v1/auth/login", wrong, NULL, &v, &r), 429);
	assert_string_equal(itest_err_code(v), "rate_limited");
	assert_non_null(msg_resp_header(&r, "Retry-After"));
	assert_true(atoi(msg_resp_header(&r, "Retry-After")) >= 1);
	assert_non_null(msg_resp_header(&r, "RateLimit-Limit"));
	msg_resp_clear(&r);
	json_decref(v);
	/* Even the right password waits: the limit counts attempts. */
	assert_int_equal(itest_req("POST", "/v1/auth/login",
				   "{\"email\":\"alice@example.com\",\"password\":\"correct horse 1\"}",
				   NULL, NULL, NULL),
			 429);
	/* Counted in the user service's /metrics. */
	char p[512], addr[256] = "";
	snprintf(p, sizeof(p), "%s/instances.json", IT.state);
	json_t *doc = json_load_file(p, 0, NULL);
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
		if (strcmp(json_string_value(json_object_get(in, "service")), "user") == 0)
			snprintf(addr, sizeof(addr), "%s/metrics", json_string_value(json_object_get(in, "addr")));
	json_decref(doc);
	msg_resp_init(&r);
	assert_int_equal(http_client_simple("GET", addr, NULL, NULL, &r, 5000), 0);
	assert_non_null(strstr(r.body, "rate_limit_rejections_total{class=\"login\"} 2"));
	msg_resp_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signup_login_me),
		cmocka_unit_test(test_forged_identity),
		cmocka_unit_test(test_users_see_only_their_own),
		cmocka_unit_test(test_admin_versus_user),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_service_to_service),
		cmocka_unit_test(test_login_limit),
	};
	return cmocka_run_group_tests_name("integration: identity and the edge", tests, setup, teardown);
}
