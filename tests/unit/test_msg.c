/* Tests for net/msg: request parsing, query decoding, headers, error shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"
#include "net/msg.h"

static void test_init_splits_query(void **state)
{
	msg_req req;
	assert_int_equal(msg_req_init(&req, "GET", "/v1/products?category=books&page_size=10"), 0);
	assert_string_equal(req.method, "GET");
	assert_string_equal(req.path, "/v1/products");
	assert_string_equal(req.query, "category=books&page_size=10");
	assert_int_equal(req.nheaders, 0);
	assert_null(req.body);
	msg_req_clear(&req);

	assert_int_equal(msg_req_init(&req, "POST", "/v1/orders"), 0);
	assert_string_equal(req.path, "/v1/orders");
	assert_null(req.query);
	msg_req_clear(&req);
	/* clear twice is harmless: it leaves req empty */
	msg_req_clear(&req);
	assert_null(req.method);
}

static void test_query_decoding(void **state)
{
	msg_req req;
	char buf[64];
	assert_int_equal(msg_req_init(&req, "GET",
				      "/s?q=red+shoes%21&empty=&flag&cat%20x=a%2Bb&q2=%zz&qq=1"),
			 0);
	assert_int_equal(msg_req_query(&req, "q", buf, sizeof buf), 1);
	assert_string_equal(buf, "red shoes!");
	assert_int_equal(msg_req_query(&req, "empty", buf, sizeof buf), 1);
	assert_string_equal(buf, "");
	assert_int_equal(msg_req_query(&req, "flag", buf, sizeof buf), 1);
	assert_string_equal(buf, "");
	/* names are decoded too, values keep an encoded '+' */
	assert_int_equal(msg_req_query(&req, "cat x", buf, sizeof buf), 1);
	assert_string_equal(buf, "a+b");
	/* a malformed escape stays literal */
	assert_int_equal(msg_req_query(&req, "q2", buf, sizeof buf), 1);
	assert_string_equal(buf, "%zz");
	/* exact names only: "q" is not a prefix match of "qq" and vice versa */
	assert_int_equal(msg_req_query(&req, "qq", buf, sizeof buf), 1);
	assert_string_equal(buf, "1");
	assert_int_equal(msg_req_query(&req, "Q", buf, sizeof buf), 0);
	assert_int_equal(msg_req_query(&req, "missing", buf, sizeof buf), 0);
	assert_int_equal(msg_req_query(&req, "fla", buf, sizeof buf), 0);
	/* too small a buffer */
	char small[4];
	assert_int_equal(msg_req_query(&req, "q", small, sizeof small), ERR_TOO_LARGE);
	msg_req_clear(&req);

	assert_int_equal(msg_req_init(&req, "GET", "/s"), 0);
	assert_int_equal(msg_req_query(&req, "q", buf, sizeof buf), 0);
	msg_req_clear(&req);
}

static void test_req_headers_case_insensitive(void **state)
{
	msg_req req;
	assert_int_equal(msg_req_init(&req, "GET", "/"), 0);
	assert_int_equal(msg_req_add_header(&req, "Content-Type", "application/json"), 0);
	assert_int_equal(msg_req_add_header(&req, "x-request-id", "abc"), 0);
	assert_string_equal(msg_req_header(&req, "content-type"), "application/json");
	assert_string_equal(msg_req_header(&req, "CONTENT-TYPE"), "application/json");
	assert_string_equal(msg_req_header(&req, "X-Request-Id"), "abc");
	assert_null(msg_req_header(&req, "Authorization"));
	for (int i = req.nheaders; i < MSG_MAX_HEADERS; i++)
		assert_int_equal(msg_req_add_header(&req, "X-Fill", "v"), 0);
	assert_int_equal(msg_req_add_header(&req, "X-One-Too-Many", "v"), ERR_TOO_LARGE);
	msg_req_clear(&req);
}

static void test_req_body_and_params(void **state)
{
	msg_req req;
	assert_int_equal(msg_req_init(&req, "POST", "/x"), 0);
	assert_int_equal(msg_req_set_body(&req, "{\"a\":1}xyz", 7), 0);
	assert_int_equal(req.body_len, 7);
	assert_string_equal(req.body, "{\"a\":1}");
	assert_int_equal(msg_req_set_body(&req, "hi", 2), 0);
	assert_string_equal(req.body, "hi");
	assert_null(msg_req_param(&req, 0));
	assert_null(msg_req_param(&req, -1));
	msg_req_clear(&req);
}

static void test_resp_set_header_replaces(void **state)
{
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(msg_resp_set_header(&resp, "Retry-After", "1"), 0);
	assert_int_equal(msg_resp_set_header(&resp, "retry-after", "5"), 0);
	assert_int_equal(resp.nheaders, 1);
	assert_string_equal(msg_resp_header(&resp, "RETRY-AFTER"), "5");
	assert_int_equal(msg_resp_set_header(&resp, "Allow", "GET"), 0);
	assert_int_equal(resp.nheaders, 2);
	assert_null(msg_resp_header(&resp, "Nope"));
	msg_resp_clear(&resp);
	assert_int_equal(resp.nheaders, 0);
}

static void test_resp_set_and_json(void **state)
{
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(msg_resp_set(&resp, 200, "text/plain", "hello", 5), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, "text/plain");
	assert_int_equal(resp.body_len, 5);
	assert_memory_equal(resp.body, "hello", 5);

	json_t *v = json_pack("{s:i,s:s}", "n", 3, "s", "x");
	assert_int_equal(msg_resp_json(&resp, 201, v), 0);
	assert_int_equal(resp.status, 201);
	assert_string_equal(resp.content_type, "application/json");
	assert_string_equal(resp.body, "{\"n\":3,\"s\":\"x\"}");
	assert_int_equal(resp.body_len, strlen(resp.body));

	assert_int_equal(msg_resp_json(&resp, 200, NULL), 0);
	assert_string_equal(resp.body, "{}");
	msg_resp_clear(&resp);
}

static void test_error_shape(void **state)
{
	msg_resp resp;
	msg_resp_init(&resp);
	json_t *details = json_pack("{s:s,s:i}", "sku", "A-1", "available", 2);
	assert_int_equal(msg_resp_error(&resp, 409, "insufficient_stock", "not enough", details), 0);
	assert_int_equal(resp.status, 409);
	assert_string_equal(resp.content_type, "application/json");
	json_error_t jerr;
	json_t *root = json_loadb(resp.body, resp.body_len, 0, &jerr);
	assert_non_null(root);
	json_t *e = json_object_get(root, "error");
	assert_true(json_is_object(e));
	assert_string_equal(json_string_value(json_object_get(e, "code")), "insufficient_stock");
	assert_string_equal(json_string_value(json_object_get(e, "message")), "not enough");
	json_t *d = json_object_get(e, "details");
	assert_string_equal(json_string_value(json_object_get(d, "sku")), "A-1");
	assert_int_equal(json_integer_value(json_object_get(d, "available")), 2);
	json_decref(root);

	/* no details: the key is omitted; NULL code means the standard one */
	assert_int_equal(msg_resp_error(&resp, 404, NULL, "no such sku", NULL), 0);
	root = json_loadb(resp.body, resp.body_len, 0, &jerr);
	assert_non_null(root);
	e = json_object_get(root, "error");
	assert_string_equal(json_string_value(json_object_get(e, "code")), "not_found");
	assert_null(json_object_get(e, "details"));
	assert_int_equal(json_object_size(root), 1);
	json_decref(root);
	msg_resp_clear(&resp);
}

static void test_status_codes(void **state)
{
	static const struct {
		int status;
		const char *code;
	} t[] = {
		{400, "invalid_argument"}, {401, "unauthenticated"}, {403, "forbidden"},
		{404, "not_found"}, {405, "method_not_allowed"}, {409, "conflict"},
		{413, "payload_too_large"}, {415, "unsupported_media_type"},
		{422, "idempotency_mismatch"}, {429, "rate_limited"}, {500, "internal"},
		{503, "unavailable"}, {504, "upstream_timeout"}, {418, "error"}, {200, "error"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		assert_string_equal(msg_status_code(t[i].status), t[i].code);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_splits_query),
		cmocka_unit_test(test_query_decoding),
		cmocka_unit_test(test_req_headers_case_insensitive),
		cmocka_unit_test(test_req_body_and_params),
		cmocka_unit_test(test_resp_set_header_replaces),
		cmocka_unit_test(test_resp_set_and_json),
		cmocka_unit_test(test_error_shape),
		cmocka_unit_test(test_status_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
