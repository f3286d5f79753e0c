/* Tests for sim/sms_sim (the SMS sink) and the bounds of sim/mailbox,
 * driving the engine directly (efix, virtual clock). Covered: a text kept
 * and answered in the provider's shape; a repeated Idempotency-Key
 * answered with the first text, kept once; the fields checked (E.164
 * number, body length, JSON); reading back with filters and deleting; the
 * oldest dropped beyond sms_sim.max_messages; faults through
 * /admin/faults/sms (outage 503, error status, latency handed to the host
 * in X-Sim-Delay-Us), which leave /admin alone; the admin token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/msg.h"
#include "sim/stripe_sim.h"

#include "efix.h"

#define ADMIN "Bearer " EFIX_ADMIN

static int setup(void **state)
{
	efix *f = efix_new("sms-sim", "sqlite::memory:", EFIX_T0, 3);
	assert_int_equal(config_set(f->config, "sms_sim.max_messages", "3"), 0);
	f->eng = efix_create_engine(f);
	*state = f;
	return 0;
}

/* POST /v1/messages with an optional Idempotency-Key; the status. */
static int post(efix *f, const char *key, const char *body, json_t **out)
{
	msg_req req;
	msg_resp resp;
	assert_int_equal(msg_req_init(&req, "POST", "/v1/messages"), 0);
	msg_req_add_header(&req, "Content-Type", "application/json");
	if (key)
		msg_req_add_header(&req, "Idempotency-Key", key);
	msg_req_set_body(&req, body, strlen(body));
	msg_resp_init(&resp);
	f->def->handle(f->eng, &req, &resp);
	int status = resp.status;
	if (out)
		*out = efix_json(&resp);
	msg_req_clear(&req);
	msg_resp_clear(&resp);
	return status;
}

static long long count(efix *f, const char *query)
{
	char path[256];
	snprintf(path, sizeof(path), "/admin/sms/messages%s", query);
	json_t *v = efix_expect(f, "GET", path, NULL, ADMIN, NULL, 200);
	long long n = json_integer_value(json_object_get(v, "total"));
	json_decref(v);
	return n;
}

static void test_send_and_read(void **state)
{
	efix *f = *state;
	json_t *v;
	assert_int_equal(post(f, NULL, "{\"to\":\"+4930123456\",\"body\":\"order ord_1 confirmed\"}", &v),
			 201);
	assert_string_equal(json_string_value(json_object_get(v, "to")), "+4930123456");
	assert_string_equal(json_string_value(json_object_get(v, "from")), "ECOM");
	assert_string_equal(json_string_value(json_object_get(v, "status")), "queued");
	assert_string_equal(json_string_value(json_object_get(v, "body")), "order ord_1 confirmed");
	assert_non_null(json_string_value(json_object_get(v, "id")));
	json_decref(v);
	assert_int_equal(post(f, NULL, "{\"to\":\"+14155550100\",\"body\":\"hi\",\"from\":\"SHOP\"}", NULL), 201);
	assert_int_equal(count(f, ""), 2);
	assert_int_equal(count(f, "?to=%2B4930123456"), 1);
	assert_int_equal(count(f, "?contains=ord_1"), 1);
	json_t *st = efix_expect(f, "GET", "/admin/sms/stats", NULL, ADMIN, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(st, "accepted")), 2);
	json_decref(st);
	json_t *d = efix_expect(f, "DELETE", "/admin/sms/messages", NULL, ADMIN, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(d, "deleted")), 2);
	json_decref(d);
	assert_int_equal(count(f, ""), 0);
	efix_assert_error(efix_expect(f, "GET", "/admin/sms/messages", NULL, NULL, NULL, 401),
			  "unauthenticated", NULL, NULL);
	efix_assert_error(efix_expect(f, "GET", "/v1/messages", NULL, NULL, NULL, 405),
			  "method_not_allowed", NULL, NULL);
}

static void test_idempotency(void **state)
{
	efix *f = *state;
	json_t *a, *b;
	const char *body = "{\"to\":\"+4930123456\",\"body\":\"once\"}";
	assert_int_equal(post(f, "order_confirmed:ord_1:sms", body, &a), 201);
	assert_int_equal(post(f, "order_confirmed:ord_1:sms", body, &b), 200);
	assert_string_equal(json_string_value(json_object_get(a, "id")),
			    json_string_value(json_object_get(b, "id")));
	json_decref(a);
	json_decref(b);
	assert_int_equal(count(f, ""), 1);
	assert_int_equal(post(f, "another", body, NULL), 201);
	assert_int_equal(count(f, ""), 2);
}

static void test_bad_requests(void **state)
{
	efix *f = *state;
	json_t *v;
	assert_int_equal(post(f, NULL, "{\"to\":\"030123456\",\"body\":\"x\"}", &v), 400);
	efix_assert_error(v, "invalid_argument", "field", "to");
	assert_int_equal(post(f, NULL, "{\"to\":\"+4930123456\"}", &v), 400);
	efix_assert_error(v, "invalid_argument", "field", "body");
	char big[1700 + 64];
	snprintf(big, sizeof(big), "{\"to\":\"+4930123456\",\"body\":\"%01700d\"}", 0);
	assert_int_equal(post(f, NULL, big, &v), 400);
	efix_assert_error(v, "invalid_argument", "field", "body");
	assert_int_equal(post(f, NULL, "not json", &v), 400);
	json_decref(v);
	assert_int_equal(post(f, "bad key", "{\"to\":\"+4930123456\",\"body\":\"x\"}", &v), 400);
	efix_assert_error(v, "invalid_argument", "field", "Idempotency-Key");
	assert_int_equal(count(f, ""), 0);
}

static void test_bounded(void **state)
{
	efix *f = *state;
	for (int i = 0; i < 5; i++) {
		char body[96];
		snprintf(body, sizeof(body), "{\"to\":\"+4930123456\",\"body\":\"text %d\"}", i);
		assert_int_equal(post(f, NULL, body, NULL), 201);
	}
	json_t *v = efix_expect(f, "GET", "/admin/sms/messages", NULL, ADMIN, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(v, "kept")), 3);
	assert_int_equal(json_integer_value(json_object_get(v, "dropped")), 2);
	json_t *first = json_array_get(json_object_get(v, "items"), 0);
	assert_string_equal(json_string_value(json_object_get(first, "body")), "text 2");
	json_decref(v);
}

static void test_faults(void **state)
{
	efix *f = *state;
	const char *body = "{\"to\":\"+4930123456\",\"body\":\"x\"}";
	json_decref(efix_expect(f, "PUT", "/admin/faults/sms", NULL, ADMIN, "{\"outage\":true}", 200));
	msg_resp resp;
	efix_do(f, NULL, "POST", "/v1/messages", NULL, NULL, NULL, body, &resp);
	assert_int_equal(resp.status, 503);
	assert_string_equal(msg_resp_header(&resp, STRIPE_SIM_OUTAGE_HEADER), "1");
	msg_resp_clear(&resp);
	/* /admin is never faulted */
	assert_int_equal(count(f, ""), 0);
	json_decref(efix_expect(f, "PUT", "/admin/faults/sms", NULL, ADMIN,
				"{\"error_rate\":1,\"error_status\":502}", 200));
	assert_int_equal(post(f, NULL, body, NULL), 502);
	json_decref(efix_expect(f, "PUT", "/admin/faults/sms", NULL, ADMIN, "{\"latency_ms\":250}", 200));
	efix_do(f, NULL, "POST", "/v1/messages", NULL, NULL, NULL, body, &resp);
	assert_int_equal(resp.status, 201);
	assert_int_equal(stripe_sim_delay_us(&resp), 250000);
	msg_resp_clear(&resp);
	json_decref(efix_expect(f, "DELETE", "/admin/faults/sms", NULL, ADMIN, NULL, 200));
	assert_int_equal(post(f, NULL, body, NULL), 201);
	assert_int_equal(count(f, ""), 2);
	efix_assert_error(efix_expect(f, "PUT", "/admin/faults/smtp", NULL, ADMIN, "{}", 404),
			  "not_found", "target", "smtp");
	json_t *st = efix_expect(f, "GET", "/admin/sms/stats", NULL, ADMIN, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(st, "outages")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "faulted")), 1);
	json_decref(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_send_and_read, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_idempotency, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_bounded, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_faults, setup, efix_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
