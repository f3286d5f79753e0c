/* Tests for tui/model: the console's data read from real admin answers
 * (captured from `ecom up` with curl: services, breakers with FORCED_OPEN
 * edges, faults on a service and on the Stripe simulator, queues, sagas,
 * a saga with its steps, products, stock), /admin/stats in both shapes
 * it may take, instances.json, spans made by the tracer's own span_json;
 * times, ages, the overview's meters, an operator's fault line, and log
 * lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/trace.h"
#include "core/tracer.h"
#include "tui/model.h"

/* Real answers of a platform (ecom up), captured with curl. */

static const char SERVICES[] =
	"{\"services\":[{\"name\":\"cart\",\"instances\":[{\"id\":\"cart-1\",\"addr\":\"http://"
	"127.0.0.1:41111\",\"healthy\":true,\"last_heartbeat\":\"2026-11-26T03:07:54.039Z\",\"o"
	"utstanding\":0}]},{\"name\":\"catalog\",\"instances\":[{\"id\":\"catalog-1\",\"addr\":"
	"\"http://127.0.0.1:34331\",\"healthy\":true,\"last_heartbeat\":\"2026-11-26T03:07:54.0"
	"00Z\",\"outstanding\":0}]},{\"name\":\"inventory\",\"instances\":[{\"id\":\"inventory-"
	"1\",\"addr\":\"http://127.0.0.1:43509\",\"healthy\":true,\"last_heartbeat\":\"2026-11-"
	"26T03:07:53.946Z\",\"outstanding\":0}]},{\"name\":\"order\",\"instances\":[{\"id\":\"o"
	"rder-1\",\"addr\":\"http://127.0.0.1:39189\",\"healthy\":true,\"last_heartbeat\":\"202"
	"6-11-26T03:07:54.027Z\",\"outstanding\":0}]},{\"name\":\"payment\",\"instances\":[{\"i"
	"d\":\"payment-1\",\"addr\":\"http://127.0.0.1:34147\",\"healthy\":true,\"last_heartbea"
	"t\":\"2026-11-26T03:07:54.039Z\",\"outstanding\":0}]},{\"name\":\"user\",\"instances\""
	":[{\"id\":\"user-1\",\"addr\":\"http://127.0.0.1:44969\",\"healthy\":true,\"last_heart"
	"beat\":\"2026-11-26T03:07:54.424Z\",\"outstanding\":0}]}]}";

static const char BREAKERS[] =
	"{\"breakers\":[{\"from\":\"gateway\",\"to\":\"catalog\",\"state\":\"CLOSED\",\"failure"
	"_rate\":-1.0,\"slow_call_rate\":-1.0,\"calls\":2,\"failed_calls\":0,\"slow_calls\":0,"
	"\"not_permitted\":0,\"transitions\":0,\"open_remaining_ms\":0,\"max_concurrent\":64,\""
	"in_flight\":0,\"bulkhead_rejected\":0,\"instance\":\"gateway-1\"},{\"from\":\"gateway"
	"\",\"to\":\"inventory\",\"state\":\"CLOSED\",\"failure_rate\":0.0,\"slow_call_rate\":0"
	".0,\"calls\":20,\"failed_calls\":0,\"slow_calls\":0,\"not_permitted\":0,\"transitions"
	"\":0,\"open_remaining_ms\":0,\"max_concurrent\":64,\"in_flight\":0,\"bulkhead_rejected"
	"\":0,\"instance\":\"gateway-1\"},{\"from\":\"gateway\",\"to\":\"order\",\"state\":\"CL"
	"OSED\",\"failure_rate\":0.0,\"slow_call_rate\":0.0,\"calls\":20,\"failed_calls\":0,\"s"
	"low_calls\":0,\"not_permitted\":0,\"transitions\":0,\"open_remaining_ms\":0,\"max_conc"
	"urrent\":64,\"in_flight\":0,\"bulkhead_rejected\":0,\"instance\":\"gateway-1\"},{\"fro"
	"m\":\"gateway\",\"to\":\"payment\",\"state\":\"FORCED_OPEN\",\"failure_rate\":-1.0,\"s"
	"low_call_rate\":-1.0,\"calls\":0,\"failed_calls\":0,\"slow_calls\":0,\"not_permitted\""
	":0,\"transitions\":1,\"open_remaining_ms\":0,\"max_concurrent\":64,\"in_flight\":0,\"b"
	"ulkhead_rejected\":0,\"instance\":\"gateway-1\"},{\"from\":\"cart\",\"to\":\"payment\""
	",\"state\":\"FORCED_OPEN\",\"failure_rate\":-1.0,\"slow_call_rate\":-1.0,\"calls\":0,"
	"\"failed_calls\":0,\"slow_calls\":0,\"not_permitted\":0,\"transitions\":1,\"open_remai"
	"ning_ms\":0,\"max_concurrent\":64,\"in_flight\":0,\"bulkhead_rejected\":0,\"instance\""
	":\"cart-1\"},{\"from\":\"catalog\",\"to\":\"payment\",\"state\":\"FORCED_OPEN\",\"fail"
	"ure_rate\":-1.0,\"slow_call_rate\":-1.0,\"calls\":0,\"failed_calls\":0,\"slow_calls\":"
	"0,\"not_permitted\":0,\"transitions\":1,\"open_remaining_ms\":0,\"max_concurrent\":64,"
	"\"in_flight\":0,\"bulkhead_rejected\":0,\"instance\":\"catalog-1\"}],\"unreachable\":["
	"]}";

static const char FAULTS[] =
	"{\"faults\":[{\"target\":\"catalog\",\"latency_ms\":250,\"jitter_ms\":50,\"error_rate"
	"\":0.25,\"error_status\":503,\"outage\":false,\"expires_at\":\"2026-11-26T03:09:54.604"
	"Z\",\"instance\":\"catalog-1\",\"duration_s\":120},{\"target\":\"stripe\",\"latency_ms"
	"\":0,\"jitter_ms\":0,\"error_rate\":0.0,\"error_status\":503,\"outage\":true,\"expires"
	"_at\":null,\"instance\":\"stripe-sim-1\",\"duration_s\":0}],\"unreachable\":[]}";

static const char QUEUES[] =
	"{\"queues\":[{\"topic\":\"analytics\",\"consumer\":\"(relay)\",\"role\":\"producer\","
	"\"depth\":0,\"lag\":0,\"lag_ms\":0,\"dead_letters\":0,\"published_to\":0,\"service\":"
	"\"cart\"},{\"topic\":\"analytics\",\"consumer\":\"(relay)\",\"role\":\"producer\",\"de"
	"pth\":0,\"lag\":0,\"lag_ms\":0,\"dead_letters\":0,\"published_to\":0,\"service\":\"cat"
	"alog\"},{\"topic\":\"inventory\",\"consumer\":\"(relay)\",\"role\":\"producer\",\"dept"
	"h\":0,\"lag\":0,\"lag_ms\":0,\"dead_letters\":0,\"published_to\":384,\"service\":\"inv"
	"entory\"},{\"topic\":\"orders\",\"consumer\":\"(relay)\",\"role\":\"producer\",\"depth"
	"\":0,\"lag\":0,\"lag_ms\":0,\"dead_letters\":0,\"published_to\":73,\"service\":\"order"
	"\"},{\"topic\":\"payments\",\"consumer\":\"(relay)\",\"role\":\"producer\",\"depth\":0"
	",\"lag\":0,\"lag_ms\":0,\"dead_letters\":0,\"published_to\":146,\"service\":\"payment"
	"\"}],\"errors\":[]}";

static const char SAGAS[] =
	"{\"items\":[{\"order_id\":\"ord_228384181af4eb5a\",\"state\":\"COMPLETED\",\"status\":"
	"\"CONFIRMED\",\"user_id\":\"usr_afbba7aa96ca8eaa\",\"created_at\":\"2026-11-26T03:06:5"
	"5.750Z\",\"updated_at\":\"2026-11-26T03:06:55.774Z\"},{\"order_id\":\"ord_336a213b81eb"
	"a689\",\"state\":\"COMPLETED\",\"status\":\"CONFIRMED\",\"user_id\":\"usr_4ba72a851566"
	"ed43\",\"created_at\":\"2026-11-26T03:06:55.665Z\",\"updated_at\":\"2026-11-26T03:06:5"
	"5.673Z\"},{\"order_id\":\"ord_28b692b00fb97d03\",\"state\":\"COMPLETED\",\"status\":\""
	"CONFIRMED\",\"user_id\":\"usr_3b3060f223efaa00\",\"created_at\":\"2026-11-26T03:06:55."
	"437Z\",\"updated_at\":\"2026-11-26T03:06:55.444Z\"}]}";

static const char SAGA[] =
	"{\"order_id\":\"ord_228384181af4eb5a\",\"state\":\"COMPLETED\",\"reason\":null,\"cance"
	"l_requested\":false,\"expires_at\":\"2026-11-26T03:21:55.750Z\",\"created_at\":\"2026-"
	"11-26T03:06:55.750Z\",\"updated_at\":\"2026-11-26T03:06:55.774Z\",\"steps\":[{\"name\""
	":\"reserve\",\"status\":\"SUCCEEDED\",\"attempts\":1,\"at\":\"2026-11-26T03:06:55.756Z"
	"\"},{\"name\":\"authorize\",\"status\":\"SUCCEEDED\",\"attempts\":1,\"at\":\"2026-11-2"
	"6T03:06:55.768Z\"},{\"name\":\"enqueue\",\"status\":\"SUCCEEDED\",\"attempts\":1,\"at"
	"\":\"2026-11-26T03:06:55.768Z\"},{\"name\":\"capture\",\"status\":\"SUCCEEDED\",\"atte"
	"mpts\":1,\"at\":\"2026-11-26T03:06:55.772Z\"},{\"name\":\"commit\",\"status\":\"SUCCEE"
	"DED\",\"attempts\":1,\"at\":\"2026-11-26T03:06:55.773Z\"},{\"name\":\"notify\",\"statu"
	"s\":\"SUCCEEDED\",\"attempts\":1,\"at\":\"2026-11-26T03:06:55.773Z\"},{\"name\":\"clea"
	"r_cart\",\"status\":\"SUCCEEDED\",\"attempts\":1,\"at\":\"2026-11-26T03:06:55.774Z\"}]"
	",\"queue\":null,\"order\":{\"order_id\":\"ord_228384181af4eb5a\",\"user_id\":\"usr_afb"
	"ba7aa96ca8eaa\",\"status\":\"CONFIRMED\",\"items\":[{\"sku\":\"ELEC-018\",\"name\":\"D"
	"ash Cam\",\"qty\":2,\"price_cents\":7900,\"line_total_cents\":15800},{\"sku\":\"GARD-0"
	"04\",\"name\":\"Bypass Pruner\",\"qty\":1,\"price_cents\":2600,\"line_total_cents\":26"
	"00}],\"total_cents\":18400,\"currency\":\"USD\",\"created_at\":\"2026-11-26T03:06:55.7"
	"50Z\",\"updated_at\":\"2026-11-26T03:06:55.773Z\",\"source\":\"cart\",\"payment\":{\"m"
	"ethod\":\"card\",\"payment_id\":\"pay_228384181af4eb5a\"},\"address_id\":\"adr_25d0abc"
	"a59f34ba2\",\"saga\":{\"state\":\"COMPLETED\",\"steps\":[{\"name\":\"reserve\",\"statu"
	"s\":\"SUCCEEDED\",\"attempts\":1,\"at\":\"2026-11-26T03:06:55.756Z\"},{\"name\":\"auth"
	"orize\",\"status\":\"SUCCEEDED\",\"attempts\":1,\"at\":\"2026-11-26T03:06:55.768Z\"},{"
	"\"name\":\"enqueue\",\"status\":\"SUCCEEDED\",\"attempts\":1,\"at\":\"2026-11-26T03:06"
	":55.768Z\"},{\"name\":\"capture\",\"status\":\"SUCCEEDED\",\"attempts\":1,\"at\":\"202"
	"6-11-26T03:06:55.772Z\"},{\"name\":\"commit\",\"status\":\"SUCCEEDED\",\"attempts\":1,"
	"\"at\":\"2026-11-26T03:06:55.773Z\"},{\"name\":\"notify\",\"status\":\"SUCCEEDED\",\"a"
	"ttempts\":1,\"at\":\"2026-11-26T03:06:55.773Z\"},{\"name\":\"clear_cart\",\"status\":"
	"\"SUCCEEDED\",\"attempts\":1,\"at\":\"2026-11-26T03:06:55.774Z\"}]}},\"spans\":[]}";

static const char PRODUCTS[] =
	"{\"items\":[{\"sku\":\"BEAU-001\",\"name\":\"Hydrating Face Cream\",\"description\":\""
	"Hydrating Face Cream. Part of the hand-made starter catalog (beauty).\",\"category\":"
	"\"beauty\",\"price_cents\":2400,\"currency\":\"USD\",\"created_at\":\"2026-11-26T02:57"
	":26.186Z\",\"updated_at\":\"2026-11-26T02:57:26.186Z\"},{\"sku\":\"BEAU-002\",\"name\""
	":\"Argan Oil Shampoo\",\"description\":\"Argan Oil Shampoo. Part of the hand-made star"
	"ter catalog (beauty).\",\"category\":\"beauty\",\"price_cents\":1400,\"currency\":\"US"
	"D\",\"created_at\":\"2026-11-26T02:57:26.186Z\",\"updated_at\":\"2026-11-26T02:57:26.1"
	"86Z\"},{\"sku\":\"BEAU-003\",\"name\":\"Lip Balm Trio\",\"description\":\"Lip Balm Tri"
	"o. Part of the hand-made starter catalog (beauty).\",\"category\":\"beauty\",\"price_c"
	"ents\":800,\"currency\":\"USD\",\"created_at\":\"2026-11-26T02:57:26.186Z\",\"updated_"
	"at\":\"2026-11-26T02:57:26.186Z\"}],\"next_page_token\":\"p1424541552d303033\"}";

static const char STOCK[] =
	"{\"sku\":\"ELEC-007\",\"on_hand\":100,\"reserved\":0,\"available\":100}";

/* 2026-11-26T03:06:55.750Z, the newest saga's creation. */
#define T_NEWEST 1795662415750000LL

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);
	if (!v)
		fail_msg("bad test JSON: %s", e.text);
	return v;
}

static void test_services(void **unused)
{
	json_t *v = parse(SERVICES);
	model_service *s = NULL;
	size_t n = 0;
	assert_int_equal(model_parse_services(v, &s, &n), 0);
	assert_int_equal(n, 6);
	assert_string_equal(s[0].name, "cart");
	assert_string_equal(s[5].name, "user");
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s[i].instances, 1);
		assert_int_equal(s[i].healthy, 1);
		assert_false(s[i].has_stats);
		assert_true(isnan(s[i].rps));
	}
	json_decref(v);

	/* /admin/stats as the gateway gathers it: a list per service. */
	v = parse("{\"services\":[{\"service\":\"gateway\",\"instances\":1,\"requests\":500,"
		  "\"errors\":5,\"rps\":50.0,\"p50_ms\":2.5,\"p99_ms\":40.0,\"error_rate\":0.01,"
		  "\"in_flight\":3},{\"service\":\"catalog\",\"rps\":30,\"p50_ms\":1,\"p99_ms\":9.5,"
		  "\"error_rate\":0,\"in_flight\":1},{\"service\":\"order\",\"instances\":1}],"
		  "\"instances\":[],\"unreachable\":[]}");
	assert_int_equal(model_merge_stats(v, &s, &n), 0);
	json_decref(v);
	assert_int_equal(n, 7); /* the gateway added */
	assert_string_equal(s[6].name, "gateway");
	assert_true(s[6].has_stats);
	assert_int_equal(s[6].instances, 0);
	assert_true(fabs(s[6].rps - 50.0) < 1e-9);
	assert_true(fabs(s[6].p99_ms - 40.0) < 1e-9);
	assert_true(s[1].has_stats); /* catalog */
	assert_true(fabs(s[1].p99_ms - 9.5) < 1e-9);
	assert_true(fabs(s[1].in_flight - 1) < 1e-9);
	assert_false(s[0].has_stats); /* cart: not in the answer */
	assert_false(s[3].has_stats); /* order: listed, not answering */
	assert_true(isnan(s[3].p99_ms));

	/* The same figures keyed by name. */
	v = parse("{\"services\":{\"cart\":{\"rps\":4,\"p50_ms\":1,\"p99_ms\":3,\"error_rate\":0.5,"
		  "\"in_flight\":0}}}");
	assert_int_equal(model_merge_stats(v, &s, &n), 0);
	json_decref(v);
	assert_int_equal(n, 7);
	assert_true(s[0].has_stats);
	assert_true(fabs(s[0].error_rate - 0.5) < 1e-9);

	/* instances.json: the gateway expected, the simulator left out, a
	 * service the registry forgot shown with nothing healthy. */
	v = parse("{\"instances\":[{\"service\":\"gateway\",\"id\":\"gateway-1\"},"
		  "{\"service\":\"stripe-sim\",\"id\":\"stripe-sim-1\"},"
		  "{\"service\":\"catalog\",\"id\":\"catalog-1\"},{\"service\":\"catalog\",\"id\":\"catalog-2\"},"
		  "{\"service\":\"search\",\"id\":\"search-1\"}]}");
	assert_int_equal(model_merge_instances(v, &s, &n), 0);
	json_decref(v);
	assert_int_equal(n, 8);
	assert_int_equal(s[1].expected, 2);
	assert_int_equal(s[6].expected, 1);
	assert_string_equal(s[7].name, "search");
	assert_int_equal(s[7].expected, 1);
	assert_int_equal(s[7].healthy, 0);
	for (size_t i = 0; i < n; i++)
		assert_string_not_equal(s[i].name, "stripe-sim");
	model_list_free(s);

	/* Not the route's shape. */
	v = parse("{\"items\":[]}");
	assert_int_equal(model_parse_services(v, &s, &n), ERR_PARSE);
	assert_int_equal(model_merge_stats(v, &s, &n), ERR_PARSE);
	json_decref(v);
	v = parse("[1,2]");
	assert_int_equal(model_parse_services(v, &s, &n), ERR_PARSE);
	json_decref(v);
}

static void test_breakers_faults_queues(void **unused)
{
	json_t *v = parse(BREAKERS);
	model_breaker *b;
	size_t n;
	assert_int_equal(model_parse_breakers(v, &b, &n), 0);
	json_decref(v);
	assert_int_equal(n, 6);
	assert_string_equal(b[0].from, "gateway");
	assert_string_equal(b[0].to, "catalog");
	assert_string_equal(b[0].state, "CLOSED");
	assert_true(b[0].failure_rate < 0); /* below the minimum of calls */
	assert_int_equal(b[1].calls, 20);
	assert_true(b[1].failure_rate == 0);
	assert_string_equal(b[4].from, "cart");
	assert_string_equal(b[4].instance, "cart-1");
	int open = 0;
	for (size_t i = 0; i < n; i++)
		open += model_breaker_is_open(b[i].state);
	assert_int_equal(open, 3);
	assert_true(model_breaker_is_open("OPEN") && model_breaker_is_open("HALF_OPEN"));
	assert_false(model_breaker_is_open("DISABLED") || model_breaker_is_open("CLOSED"));
	model_list_free(b);

	v = parse(FAULTS);
	model_fault *f;
	assert_int_equal(model_parse_faults(v, &f, &n), 0);
	json_decref(v);
	assert_int_equal(n, 2);
	assert_string_equal(f[0].target, "catalog");
	assert_int_equal(f[0].latency_ms, 250);
	assert_int_equal(f[0].jitter_ms, 50);
	assert_true(fabs(f[0].error_rate - 0.25) < 1e-9);
	assert_int_equal(f[0].error_status, 503);
	assert_false(f[0].outage);
	assert_string_equal(f[0].expires_at, "2026-11-26T03:09:54.604Z");
	assert_string_equal(f[1].target, "stripe");
	assert_true(f[1].outage);
	assert_string_equal(f[1].expires_at, ""); /* null: until cleared */
	assert_string_equal(f[1].instance, "stripe-sim-1");
	model_list_free(f);

	v = parse(QUEUES);
	model_queue *q;
	assert_int_equal(model_parse_queues(v, &q, &n), 0);
	json_decref(v);
	assert_int_equal(n, 5);
	assert_string_equal(q[2].topic, "inventory");
	assert_string_equal(q[2].consumer, "(relay)");
	assert_string_equal(q[2].service, "inventory");
	assert_int_equal(q[2].depth, 0);
	assert_int_equal(q[2].dead, 0);
	model_list_free(q);

	/* A consumer whose lag is not known yet, with dead letters. */
	v = parse("{\"queues\":[{\"topic\":\"orders\",\"consumer\":\"eventlog\",\"depth\":-1,"
		  "\"lag\":-1,\"lag_ms\":1500,\"dead_letters\":2,\"service\":\"eventlog\","
		  "\"error\":\"consume failed\"}]}");
	assert_int_equal(model_parse_queues(v, &q, &n), 0);
	json_decref(v);
	assert_int_equal(q[0].lag, -1);
	assert_int_equal(q[0].dead, 2);
	assert_string_equal(q[0].error, "consume failed");
	model_list_free(q);
}

static void test_sagas(void **unused)
{
	json_t *v = parse(SAGAS);
	model_saga *s;
	size_t n;
	assert_int_equal(model_parse_sagas(v, &s, &n), 0);
	json_decref(v);
	assert_int_equal(n, 3);
	assert_string_equal(s[0].order_id, "ord_228384181af4eb5a");
	assert_string_equal(s[0].status, "CONFIRMED");
	assert_string_equal(s[0].state, "COMPLETED");
	assert_int_equal(s[0].created_us, T_NEWEST);
	assert_int_equal(s[0].updated_us, T_NEWEST + 24000);
	assert_string_equal(s[0].reason, "");
	model_list_free(s);

	v = parse(SAGA);
	model_saga_detail *d;
	assert_int_equal(model_parse_saga_detail(v, &d), 0);
	json_decref(v);
	assert_string_equal(d->saga.order_id, "ord_228384181af4eb5a");
	assert_string_equal(d->saga.status, "CONFIRMED"); /* from the order */
	assert_string_equal(d->saga.user_id, "usr_afbba7aa96ca8eaa");
	assert_int_equal(d->total_cents, 18400);
	assert_string_equal(d->currency, "USD");
	assert_int_equal(d->nsteps, 7);
	assert_string_equal(d->steps[0].name, "reserve");
	assert_string_equal(d->steps[6].name, "clear_cart");
	assert_string_equal(d->steps[6].status, "SUCCEEDED");
	assert_int_equal(d->steps[6].attempts, 1);
	assert_int_equal(d->nspans, 0);
	model_saga_detail_free(d);

	/* With spans, as the tracer writes them. */
	rng *r = rng_new(3);
	trace_ctx root, child;
	trace_new_root(&root, r);
	trace_child(&root, &child, r);
	span a, b;
	span_begin(&a, NULL, &root, "gateway", "POST /v1/orders", SPAN_SERVER, T_NEWEST);
	a.dur_us = 20000;
	a.status = SPAN_OK;
	span_begin(&b, &root, &child, "order", "checkout", SPAN_INTERNAL, T_NEWEST + 1000);
	b.dur_us = 15000;
	b.status = SPAN_ERROR;
	v = parse(SAGA);
	json_t *spans = json_array();
	json_array_append_new(spans, span_json(&a));
	json_array_append_new(spans, span_json(&b));
	json_array_append_new(spans, json_string("not a span"));
	json_object_set_new(v, "spans", spans);
	assert_int_equal(model_parse_saga_detail(v, &d), 0);
	json_decref(v);
	assert_int_equal(d->nspans, 2);
	assert_string_equal(d->spans[0].service, "gateway");
	assert_string_equal(d->spans[1].name, "checkout");
	assert_int_equal(d->spans[1].status, SPAN_ERROR);
	assert_memory_equal(d->spans[1].parent_id, d->spans[0].span_id, 8);
	assert_int_equal(d->spans[1].dur_us, 15000);
	model_saga_detail_free(d);
	rng_free(r);

	v = parse("{\"error\":{\"code\":\"not_found\"}}");
	assert_int_equal(model_parse_saga_detail(v, &d), ERR_PARSE);
	assert_int_equal(model_parse_sagas(v, &s, &n), ERR_PARSE);
	json_decref(v);
}

static void test_products_and_stock(void **unused)
{
	json_t *v = parse(PRODUCTS);
	model_product *p;
	size_t n;
	assert_int_equal(model_parse_products(v, &p, &n), 0);
	json_decref(v);
	assert_int_equal(n, 3);
	assert_string_equal(p[1].sku, "BEAU-002");
	assert_string_equal(p[1].name, "Argan Oil Shampoo");
	assert_string_equal(p[1].category, "beauty");
	model_list_free(p);

	model_stock st = { .sku = "ELEC-007" };
	v = parse(STOCK);
	assert_int_equal(model_parse_stock(v, &st), 0);
	json_decref(v);
	assert_true(st.known);
	assert_int_equal(st.on_hand, 100);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(st.available, 100);
	assert_false(st.low);
	v = parse("{\"sku\":\"ELEC-007\",\"on_hand\":100,\"reserved\":0,\"available\":100,"
		  "\"low_stock\":true}");
	assert_int_equal(model_parse_stock(v, &st), 0);
	json_decref(v);
	assert_true(st.low); /* the service's threshold, not the console's */
	model_stock none = { 0 };
	v = parse("{\"error\":{\"code\":\"not_found\",\"message\":\"no stock for this sku\"}}");
	assert_int_equal(model_parse_stock(v, &none), ERR_PARSE);
	assert_false(none.known);
	json_decref(v);
}

static void test_times(void **unused)
{
	int64_t us;
	assert_int_equal(model_parse_time("2026-11-26T03:06:55.750Z", &us), 0);
	assert_int_equal(us, T_NEWEST);
	assert_int_equal(model_parse_time("2026-11-26T03:06:55Z", &us), 0);
	assert_int_equal(us, T_NEWEST - 750000);
	assert_int_equal(model_parse_time("2026-11-26T04:06:55.75+01:00", &us), 0);
	assert_int_equal(us, T_NEWEST);
	assert_int_equal(model_parse_time("2026-11-26T03:06:55.123456789Z", &us), 0);
	assert_int_equal(us, T_NEWEST - 750000 + 123456);
	assert_int_equal(model_parse_time("2026-11-26 03:06:55Z", &us), ERR_PARSE);
	assert_int_equal(model_parse_time("2026-11-26T03:06:55", &us), ERR_PARSE);
	assert_int_equal(model_parse_time("2026-11-26T03:06:55.Z", &us), ERR_PARSE);
	assert_int_equal(model_parse_time("2026-11-26T03:06:55Zjunk", &us), ERR_PARSE);
	assert_int_equal(model_parse_time("", &us), ERR_PARSE);

	char b[16];
	model_fmt_age(T_NEWEST, T_NEWEST - 4000000, b, sizeof(b));
	assert_string_equal(b, "4s");
	model_fmt_age(T_NEWEST, T_NEWEST - 12 * 60000000LL, b, sizeof(b));
	assert_string_equal(b, "12m");
	model_fmt_age(T_NEWEST, T_NEWEST - 3 * 3600000000LL, b, sizeof(b));
	assert_string_equal(b, "3h");
	model_fmt_age(T_NEWEST, T_NEWEST - 50 * 3600000000LL, b, sizeof(b));
	assert_string_equal(b, "2d");
	model_fmt_age(T_NEWEST, T_NEWEST + 5000000, b, sizeof(b)); /* clocks apart */
	assert_string_equal(b, "0s");
	model_fmt_age(T_NEWEST, 0, b, sizeof(b));
	assert_string_equal(b, "-");
}

static void test_meters(void **unused)
{
	json_t *v = parse(SERVICES);
	model_service *s;
	size_t ns;
	assert_int_equal(model_parse_services(v, &s, &ns), 0);
	json_decref(v);
	s[3].healthy = 0; /* order: down */
	v = parse(BREAKERS);
	model_breaker *b;
	size_t nb;
	assert_int_equal(model_parse_breakers(v, &b, &nb), 0);
	json_decref(v);
	model_queue q[2];
	memset(q, 0, sizeof(q));
	q[0].lag = 3;
	q[0].lag_ms = 800;
	q[1].lag = -1; /* unknown: not counted */
	q[1].lag_ms = 2500;
	q[1].dead = 4;
	v = parse(SAGAS);
	model_saga *sg;
	size_t nsg;
	assert_int_equal(model_parse_sagas(v, &sg, &nsg), 0);
	json_decref(v);

	model_meters m;
	model_meters_compute(s, ns, b, nb, q, 2, sg, nsg, 200, 1, T_NEWEST + 30000000, &m);
	assert_int_equal(m.services_total, 6);
	assert_int_equal(m.services_up, 5);
	assert_true(isnan(m.rps) && isnan(m.error_pct) && isnan(m.p99_ms)); /* no stats */
	assert_int_equal(m.open_breakers, 3);
	assert_int_equal(m.queue_lag, 3);
	assert_int_equal(m.queue_lag_ms, 2500);
	assert_int_equal(m.dead_letters, 4);
	assert_int_equal(m.orders_per_min, 3);
	assert_int_equal(m.orders_capped, 0); /* the list was not full: all there is */
	/* A full list of recent orders: a lower bound. */
	model_meters_compute(s, ns, b, nb, q, 2, sg, nsg, 3, 1, T_NEWEST + 30000000, &m);
	assert_int_equal(m.orders_per_min, 3);
	assert_int_equal(m.orders_capped, 1);
	/* Two minutes later none is recent. */
	model_meters_compute(s, ns, b, nb, q, 2, sg, nsg, 3, 1, T_NEWEST + 120000000, &m);
	assert_int_equal(m.orders_per_min, 0);
	assert_int_equal(m.orders_capped, 0);
	/* The sagas could not be read: unknown. */
	model_meters_compute(s, ns, b, nb, q, 2, NULL, 0, 200, 0, T_NEWEST, &m);
	assert_int_equal(m.orders_per_min, -1);

	/* With stats: the gateway's figures are what clients see. */
	v = parse("{\"services\":[{\"service\":\"gateway\",\"rps\":100,\"p50_ms\":2,\"p99_ms\":80,"
		  "\"error_rate\":0.02,\"in_flight\":5},{\"service\":\"order\",\"rps\":10,"
		  "\"p99_ms\":120,\"error_rate\":0.5}]}");
	assert_int_equal(model_merge_stats(v, &s, &ns), 0);
	json_decref(v);
	model_meters_compute(s, ns, b, nb, q, 2, sg, nsg, 200, 1, T_NEWEST, &m);
	assert_int_equal(m.services_total, 7);
	assert_int_equal(m.services_up, 6); /* the gateway answers for itself */
	assert_true(fabs(m.rps - 100) < 1e-9);
	assert_true(fabs(m.error_pct - 2.0) < 1e-9);
	assert_true(fabs(m.p99_ms - 80) < 1e-9);
	model_list_free(s);
	model_list_free(b);
	model_list_free(sg);

	/* Services only (no gateway row): summed rates, the worst p99. */
	model_service two[2];
	memset(two, 0, sizeof(two));
	snprintf(two[0].name, sizeof(two[0].name), "catalog");
	snprintf(two[1].name, sizeof(two[1].name), "cart");
	for (int i = 0; i < 2; i++) {
		two[i].instances = two[i].healthy = two[i].has_stats = 1;
		two[i].rps = 10 * (i + 1);
		two[i].error_rate = i ? 0.5 : 0;
		two[i].p99_ms = 5 + 10 * i;
	}
	model_meters_compute(two, 2, NULL, 0, NULL, 0, NULL, 0, 200, 1, T_NEWEST, &m);
	assert_true(fabs(m.rps - 30) < 1e-9);
	assert_true(fabs(m.error_pct - 100.0 * 10 / 30) < 1e-9);
	assert_true(fabs(m.p99_ms - 15) < 1e-9);
}

static void test_fault_line(void **unused)
{
	char target[80], err[200];
	json_t *body = NULL;
	assert_int_equal(model_parse_fault_line("catalog latency=200 jitter=50 error=0.25 status=502 for=90s",
						target, sizeof(target), &body, err, sizeof(err)),
			 0);
	assert_string_equal(target, "catalog");
	assert_int_equal(json_integer_value(json_object_get(body, "latency_ms")), 200);
	assert_int_equal(json_integer_value(json_object_get(body, "jitter_ms")), 50);
	assert_true(fabs(json_number_value(json_object_get(body, "error_rate")) - 0.25) < 1e-9);
	assert_int_equal(json_integer_value(json_object_get(body, "error_status")), 502);
	assert_int_equal(json_integer_value(json_object_get(body, "duration_s")), 90);
	assert_true(json_is_false(json_object_get(body, "outage")));
	json_decref(body);

	assert_int_equal(model_parse_fault_line("  stripe   outage for=15m ", target, sizeof(target),
						&body, err, sizeof(err)),
			 0);
	assert_string_equal(target, "stripe");
	assert_true(json_is_true(json_object_get(body, "outage")));
	assert_int_equal(json_integer_value(json_object_get(body, "duration_s")), 900);
	assert_int_equal(json_integer_value(json_object_get(body, "error_status")), 503);
	json_decref(body);

	/* Durations and percentages in the scenarios' units. */
	assert_int_equal(model_parse_fault_line("inventory latency=1s jitter=250ms error=10% for=2h",
						target, sizeof(target), &body, err, sizeof(err)),
			 0);
	assert_int_equal(json_integer_value(json_object_get(body, "latency_ms")), 1000);
	assert_int_equal(json_integer_value(json_object_get(body, "jitter_ms")), 250);
	assert_true(fabs(json_number_value(json_object_get(body, "error_rate")) - 0.1) < 1e-9);
	assert_int_equal(json_integer_value(json_object_get(body, "duration_s")), 7200);
	json_decref(body);

	static const char *const bad[] = {
		"",                          /* no target */
		"latency=100",               /* no target */
		"catalog",                   /* no fault */
		"catalog speed=3",           /* unknown */
		"catalog latency=fast",      /* not a number */
		"catalog latency=70000",     /* over the platform's bound */
		"catalog error=1.5",         /* over 1 */
		"catalog status=200 error=1", /* not an error status */
		"catalog for=2d",            /* not a duration */
		"catalog latency=-5",        /* negative */
		"catalog error=150%",        /* over 100% */
		"Cat/alog outage",           /* not a name */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = NULL;
		err[0] = '\0';
		if (model_parse_fault_line(bad[i], target, sizeof(target), &body, err, sizeof(err)) !=
		    ERR_INVALID)
			fail_msg("'%s' was taken", bad[i]);
		assert_null(body);
		assert_true(err[0] != '\0');
	}
}

static void test_log_lines(void **unused)
{
	model_logline l;
	const char *json = "{\"ts\":\"2026-11-26T03:06:55.750Z\",\"level\":\"warn\",\"service\":\"order\","
			   "\"msg\":\"order ord_1: payment\\tunavailable\",\"trace_id\":"
			   "\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n";
	assert_int_equal(model_parse_logline(json, strlen(json), "order-1", &l), 0);
	assert_int_equal(l.ts_us, T_NEWEST);
	assert_string_equal(l.level, "warn");
	assert_string_equal(l.service, "order");
	assert_string_equal(l.source, "order-1");
	assert_string_equal(l.msg, "order ord_1: payment unavailable"); /* the tab made a space */
	assert_true(model_logline_matches(&l, ""));
	assert_true(model_logline_matches(&l, "order"));
	assert_true(model_logline_matches(&l, "a3ce929d"));
	assert_true(model_logline_matches(&l, "unavailable"));
	assert_false(model_logline_matches(&l, "catalog"));
	assert_false(model_logline_matches(&l, "ffff0000"));

	const char *plain = "supervisor: something not JSON\r\n";
	assert_int_equal(model_parse_logline(plain, strlen(plain), "supervisor", &l), 0);
	assert_string_equal(l.msg, "supervisor: something not JSON");
	assert_string_equal(l.service, "supervisor");
	assert_int_equal(l.ts_us, 0);
	assert_int_equal(model_parse_logline("\n", 1, "x", &l), ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services),   cmocka_unit_test(test_breakers_faults_queues),
		cmocka_unit_test(test_sagas),	   cmocka_unit_test(test_products_and_stock),
		cmocka_unit_test(test_times),	   cmocka_unit_test(test_meters),
		cmocka_unit_test(test_fault_line), cmocka_unit_test(test_log_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
