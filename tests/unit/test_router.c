/* Tests for net/router: matching, captures, 404/405 and dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"
#include "net/router.h"

/* Each handler writes its tag into resp so the test can tell who ran. */
static void h_tag(void *ud, msg_req *req, msg_resp *resp)
{
	const char *tag = ud;
	msg_resp_set(resp, 200, "text/plain", tag, strlen(tag));
}

static void h_noop(void *ud, msg_req *req, msg_resp *resp)
{
}

static router *make_router(void)
{
	router *r = router_new();
	assert_non_null(r);
	/* the capture route is added first so order cannot decide the winner */
	assert_int_equal(router_add(r, "GET", "/v1/products/{sku}", h_tag, "get_sku"), 0);
	assert_int_equal(router_add(r, "PUT", "/v1/products/{sku}", h_tag, "put_sku"), 0);
	assert_int_equal(router_add(r, "POST", "/v1/products/_bulk", h_tag, "bulk"), 0);
	assert_int_equal(router_add(r, "GET", "/v1/products", h_tag, "list"), 0);
	assert_int_equal(router_add(r, "POST", "/v1/products", h_tag, "create"), 0);
	assert_int_equal(router_add(r, "POST", "/v1/reservations/{id}/commit", h_tag, "commit"), 0);
	assert_int_equal(router_add(r, "GET", "/v1/a/{x}/b/{y}", h_tag, "two"), 0);
	assert_int_equal(router_add(r, "GET", "/health", h_tag, "health"), 0);
	assert_int_equal(router_add(r, "DELETE", "/health", h_tag, "health_del"), 0);
	assert_int_equal(router_add(r, "PATCH", "/health", h_tag, "health_patch"), 0);
	return r;
}

/* Runs router_match on method + target; returns the result and the tag. */
static enum router_match match(router *r, msg_req *req, const char *method, const char *target,
			       const char **tag, char *allow, size_t allowlen)
{
	msg_req_clear(req);
	assert_int_equal(msg_req_init(req, method, target), 0);
	router_fn fn = NULL;
	void *ud = NULL;
	enum router_match m = router_match(r, req, &fn, &ud, allow, allowlen);
	*tag = m == ROUTER_OK && fn == h_tag ? ud : NULL;
	if (m == ROUTER_OK)
		assert_non_null(fn);
	return m;
}

static void test_literal_beats_capture(void **state)
{
	router *r = make_router();
	msg_req req = {0};
	const char *tag;
	char allow[64];
	assert_int_equal(match(r, &req, "POST", "/v1/products/_bulk", &tag, allow, sizeof allow),
			 ROUTER_OK);
	assert_string_equal(tag, "bulk");
	assert_string_equal(req.route, "/v1/products/_bulk");
	assert_int_equal(req.nparams, 0);

	/* the capture still serves the methods the literal lacks */
	assert_int_equal(match(r, &req, "GET", "/v1/products/_bulk", &tag, allow, sizeof allow),
			 ROUTER_OK);
	assert_string_equal(tag, "get_sku");
	assert_string_equal(msg_req_param(&req, 0), "_bulk");

	assert_int_equal(match(r, &req, "GET", "/v1/products/A-1", &tag, allow, sizeof allow),
			 ROUTER_OK);
	assert_string_equal(tag, "get_sku");
	assert_string_equal(req.route, "/v1/products/{sku}");
	assert_int_equal(req.nparams, 1);
	assert_string_equal(msg_req_param(&req, 0), "A-1");
	assert_null(msg_req_param(&req, 1));

	assert_int_equal(match(r, &req, "GET", "/v1/products", &tag, allow, sizeof allow),
			 ROUTER_OK);
	assert_string_equal(tag, "list");
	msg_req_clear(&req);
	router_free(r);
}

static void test_params_decoded(void **state)
{
	router *r = make_router();
	msg_req req = {0};
	const char *tag;
	assert_int_equal(match(r, &req, "GET", "/v1/a/x%20y%2Fz/b/caf%C3%A9+1?q=1", &tag, NULL, 0),
			 ROUTER_OK);
	assert_string_equal(tag, "two");
	assert_int_equal(req.nparams, 2);
	assert_string_equal(msg_req_param(&req, 0), "x y/z");
	/* '+' is literal in a path */
	assert_string_equal(msg_req_param(&req, 1), "caf\xc3\xa9+1");

	/* a second match on the same req replaces the captures */
	router_fn fn;
	void *ud;
	free(req.path);
	req.path = strdup("/v1/reservations/r-9/commit");
	free(req.method);
	req.method = strdup("POST");
	assert_int_equal(router_match(r, &req, &fn, &ud, NULL, 0), ROUTER_OK);
	assert_int_equal(req.nparams, 1);
	assert_string_equal(msg_req_param(&req, 0), "r-9");
	assert_string_equal(ud, "commit");
	msg_req_clear(&req);
	router_free(r);
}

static void test_not_found(void **state)
{
	router *r = make_router();
	msg_req req = {0};
	const char *tag;
	char allow[64] = "junk";
	assert_int_equal(match(r, &req, "GET", "/nope", &tag, allow, sizeof allow),
			 ROUTER_NOT_FOUND);
	assert_string_equal(allow, "");
	/* strict trailing slash */
	assert_int_equal(match(r, &req, "GET", "/v1/products/", &tag, allow, sizeof allow),
			 ROUTER_NOT_FOUND);
	assert_int_equal(match(r, &req, "GET", "/health/", &tag, allow, sizeof allow),
			 ROUTER_NOT_FOUND);
	/* empty segments never fill a capture */
	assert_int_equal(match(r, &req, "GET", "/v1/a//b/y", &tag, allow, sizeof allow),
			 ROUTER_NOT_FOUND);
	/* too many or too few segments */
	assert_int_equal(match(r, &req, "GET", "/v1/products/A/B", &tag, allow, sizeof allow),
			 ROUTER_NOT_FOUND);
	assert_int_equal(match(r, &req, "GET", "/v1", &tag, allow, sizeof allow),
			 ROUTER_NOT_FOUND);
	assert_null(req.route);
	assert_int_equal(req.nparams, 0);
	msg_req_clear(&req);
	router_free(r);
}

static void test_method_not_allowed(void **state)
{
	router *r = make_router();
	msg_req req = {0};
	const char *tag;
	char allow[64];
	assert_int_equal(match(r, &req, "POST", "/health", &tag, allow, sizeof allow),
			 ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(allow, "DELETE, GET, PATCH");
	assert_int_equal(match(r, &req, "DELETE", "/v1/products/A-1", &tag, allow, sizeof allow),
			 ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(allow, "GET, PUT");
	/* methods from every pattern that fits the path, without duplicates */
	assert_int_equal(match(r, &req, "DELETE", "/v1/products/_bulk", &tag, allow, sizeof allow),
			 ROUTER_METHOD_NOT_ALLOWED);
	assert_string_equal(allow, "GET, POST, PUT");
	/* methods are case-sensitive */
	assert_int_equal(match(r, &req, "get", "/health", &tag, allow, sizeof allow),
			 ROUTER_METHOD_NOT_ALLOWED);
	/* a short buffer is truncated, still terminated */
	char small[6];
	assert_int_equal(match(r, &req, "POST", "/health", &tag, small, sizeof small),
			 ROUTER_METHOD_NOT_ALLOWED);
	assert_int_equal(strlen(small), 5);
	msg_req_clear(&req);
	router_free(r);
}

static void test_multiple_methods(void **state)
{
	router *r = make_router();
	msg_req req = {0};
	const char *tag;
	assert_int_equal(match(r, &req, "GET", "/health", &tag, NULL, 0), ROUTER_OK);
	assert_string_equal(tag, "health");
	assert_int_equal(match(r, &req, "DELETE", "/health", &tag, NULL, 0), ROUTER_OK);
	assert_string_equal(tag, "health_del");
	assert_int_equal(match(r, &req, "PUT", "/v1/products/X", &tag, NULL, 0), ROUTER_OK);
	assert_string_equal(tag, "put_sku");
	assert_int_equal(match(r, &req, "POST", "/v1/products", &tag, NULL, 0), ROUTER_OK);
	assert_string_equal(tag, "create");
	msg_req_clear(&req);
	router_free(r);
}

static void test_bad_patterns(void **state)
{
	router *r = router_new();
	assert_int_equal(router_add(r, "GET", "v1/x", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "/v1/{}", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "/v1/{sku", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "/v1/a{sku}", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "/v1/{a}{b}", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "/v1//x", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "/v1/x/", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "/{a}/{b}/{c}/{d}/{e}", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "", "/x", h_noop, NULL), ERR_INVALID);
	assert_int_equal(router_add(r, "GET", "/x", NULL, NULL), ERR_INVALID);
	/* the limit itself is fine */
	assert_int_equal(router_add(r, "GET", "/{a}/{b}/{c}/{d}", h_noop, NULL), 0);
	assert_int_equal(router_add(r, "GET", "/", h_noop, NULL), 0);
	/* the same route twice (even with other capture names) is a conflict */
	assert_int_equal(router_add(r, "GET", "/{w}/{x}/{y}/{z}", h_noop, NULL), ERR_CONFLICT);
	assert_int_equal(router_add(r, "POST", "/{w}/{x}/{y}/{z}", h_noop, NULL), 0);

	msg_req req = {0};
	const char *tag;
	assert_int_equal(match(r, &req, "GET", "/", &tag, NULL, 0), ROUTER_OK);
	assert_int_equal(match(r, &req, "GET", "/1/2/3/4", &tag, NULL, 0), ROUTER_OK);
	assert_int_equal(req.nparams, 4);
	assert_string_equal(msg_req_param(&req, 3), "4");
	msg_req_clear(&req);
	router_free(r);
	router_free(NULL);
}

static json_t *error_of(const msg_resp *resp)
{
	json_error_t jerr;
	json_t *root = json_loadb(resp->body, resp->body_len, 0, &jerr);
	assert_non_null(root);
	return root;
}

static void test_dispatch(void **state)
{
	router *r = make_router();
	msg_req req;
	msg_resp resp;

	assert_int_equal(msg_req_init(&req, "GET", "/v1/products/B-2"), 0);
	msg_resp_init(&resp);
	router_dispatch(r, &req, &resp);
	assert_int_equal(resp.status, 200);
	assert_memory_equal(resp.body, "get_sku", 7);
	assert_string_equal(resp.route, "/v1/products/{sku}");
	msg_resp_clear(&resp);
	msg_req_clear(&req);

	assert_int_equal(msg_req_init(&req, "GET", "/x"), 0);
	router_dispatch(r, &req, &resp);
	assert_int_equal(resp.status, 404);
	assert_string_equal(resp.content_type, "application/json");
	json_t *root = error_of(&resp);
	json_t *e = json_object_get(root, "error");
	assert_string_equal(json_string_value(json_object_get(e, "code")), "not_found");
	assert_string_equal(json_string_value(json_object_get(e, "message")), "no route for GET /x");
	json_decref(root);
	assert_null(msg_resp_header(&resp, "Allow"));
	msg_resp_clear(&resp);
	msg_req_clear(&req);

	assert_int_equal(msg_req_init(&req, "PUT", "/health"), 0);
	router_dispatch(r, &req, &resp);
	assert_int_equal(resp.status, 405);
	assert_string_equal(msg_resp_header(&resp, "Allow"), "DELETE, GET, PATCH");
	root = error_of(&resp);
	e = json_object_get(root, "error");
	assert_string_equal(json_string_value(json_object_get(e, "code")), "method_not_allowed");
	assert_non_null(json_string_value(json_object_get(e, "message")));
	json_decref(root);
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	router_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_beats_capture),
		cmocka_unit_test(test_params_decoded),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_method_not_allowed),
		cmocka_unit_test(test_multiple_methods),
		cmocka_unit_test(test_bad_patterns),
		cmocka_unit_test(test_dispatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
