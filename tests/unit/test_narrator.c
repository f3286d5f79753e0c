/* Tests for ops/narrator's telling (narrator_tell): the first look is the
 * baseline and tells nothing; then a fault set and cleared, a breaker
 * opening and closing (labelled by instance when its caller has several),
 * orders waiting for payment (told as they grow, not every one) and done
 * waiting, the status line at most every 10 s, an instance restarted, the
 * watched sku selling out, and the scenario's schedule told once per
 * action as it comes due. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/narrator.h"
#include "sim/scenario.h"

#define S 1000000LL

static const char SCN[] = "[scenario]\nname = t\n[load]\nrate = 1\nduration = 60s\n"
			  "[journey j]\nsteps = browse\n[catalog]\nhot_sku = HOT-1\n"
			  "[schedule]\nat 15s fault set stripe outage\nat 35s fault clear stripe\n";

static json_t *breakers(const char *state, const char *instance2_state)
{
	json_t *b = json_pack("{s:[{s:s,s:s,s:s,s:s}]}", "breakers", "from", "order", "to",
			      "payment", "state", state, "instance", "order-1");
	if (instance2_state)
		json_array_append_new(json_object_get(b, "breakers"),
				      json_pack("{s:s,s:s,s:s,s:s}", "from", "order", "to",
						"payment", "state", instance2_state, "instance",
						"order-2"));
	return b;
}

static json_t *orders(int placed, int confirmed, int awaiting)
{
	return json_pack("{s:i,s:{s:i,s:i,s:i,s:i}}", "orders", placed, "by_status", "PENDING", 0,
			 "AWAITING_PAYMENT", awaiting, "CONFIRMED", confirmed, "CANCELLED",
			 placed - confirmed - awaiting);
}

/* Tells one look and returns the line (static buffer). Consumes the
 * look's references. */
static const char *tell(narrator *n, narrator_look *lk, int64_t t)
{
	static char line[1024];
	narrator_tell(n, lk, t, line, sizeof(line));
	json_decref(lk->breakers);
	json_decref(lk->faults);
	json_decref(lk->orders);
	json_decref(lk->instances);
	json_decref(lk->stock);
	return line;
}

static void test_story(void **unused)
{
	char err[256];
	scenario *s = scenario_parse("t.scn", SCN, err, sizeof(err));
	assert_non_null(s);
	narrator_opts o = { .url = "http://x", .token = "t", .s = s };
	narrator *n = narrator_new(&o);
	assert_non_null(n);

	/* The baseline: 5 orders from before, an instance, nothing told. */
	narrator_look lk = { breakers("CLOSED", NULL), json_pack("{s:[]}", "faults"),
			     orders(5, 5, 0),
			     json_pack("{s:[{s:s,s:i,s:i}]}", "instances", "id", "catalog-1", "pid",
				       100, "restarts", 0),
			     json_pack("{s:s,s:i,s:i}", "sku", "HOT-1", "available", 10, "on_hand",
				       10) };
	assert_string_equal(tell(n, &lk, -1), "");

	/* Quiet: nothing changed. */
	lk = (narrator_look){ breakers("CLOSED", NULL), NULL, orders(5, 5, 0), NULL, NULL };
	assert_string_equal(tell(n, &lk, 2 * S), "");
	/* Orders came and were confirmed: the status line (10 s after the
	 * last, counting only the demo's own). */
	lk = (narrator_look){ NULL, NULL, orders(25, 25, 0), NULL, NULL };
	assert_string_equal(tell(n, &lk, 10 * S),
			    "orders: 20 placed, 20 CONFIRMED, 0 CANCELLED, 0 in flight");
	lk = (narrator_look){ NULL, NULL, orders(30, 30, 0), NULL, NULL };
	assert_string_equal(tell(n, &lk, 12 * S), "");

	/* t=15: the schedule's action, the fault, the breaker, orders waiting. */
	lk = (narrator_look){ breakers("OPEN", NULL),
			      json_pack("{s:[{s:s,s:b},{s:s,s:b}]}", "faults", "target", "stripe",
					"outage", 1, "target", "stripe", "outage", 1),
			      orders(40, 30, 10), NULL, NULL };
	assert_string_equal(tell(n, &lk, 15 * S),
			    "▶ fault set stripe outage → stripe down → breaker order→payment OPEN → "
			    "10 orders AWAITING_PAYMENT");
	/* A few more waiting: not worth a line; many more: told. */
	lk = (narrator_look){ NULL, NULL, orders(43, 30, 13), NULL, NULL };
	assert_string_equal(tell(n, &lk, 16 * S), "");
	lk = (narrator_look){ NULL, NULL, orders(60, 30, 30), NULL, NULL };
	assert_string_equal(tell(n, &lk, 17 * S), "30 orders AWAITING_PAYMENT");
	/* A second caller instance: edges labelled by instance. */
	lk = (narrator_look){ breakers("OPEN", "HALF_OPEN"), NULL, NULL, NULL, NULL };
	assert_string_equal(tell(n, &lk, 18 * S), "breaker order→payment (order-2) HALF_OPEN");

	/* The instance restarted; the hot sku sells out. */
	lk = (narrator_look){ NULL, NULL, NULL,
			      json_pack("{s:[{s:s,s:i,s:i}]}", "instances", "id", "catalog-1",
					"pid", 200, "restarts", 1),
			      json_pack("{s:s,s:i,s:i}", "sku", "HOT-1", "available", 0, "on_hand",
					0) };
	assert_string_equal(tell(n, &lk, 20 * S),
			    "catalog-1 restarted by the supervisor (pid 200) → HOT-1 sold out");

	/* t=35: cleared; the breakers close; the queue drains. */
	lk = (narrator_look){ breakers("CLOSED", "CLOSED"), json_pack("{s:[]}", "faults"),
			      orders(70, 70, 0), NULL, NULL };
	assert_string_equal(tell(n, &lk, 35 * S),
			    "▶ fault clear stripe → stripe back up → breaker order→payment (order-1) "
			    "CLOSED → breaker order→payment (order-2) CLOSED → no order "
			    "AWAITING_PAYMENT any more (70 CONFIRMED) → orders: 65 placed, 65 "
			    "CONFIRMED, 0 CANCELLED, 0 in flight");
	/* Each action is told once. */
	lk = (narrator_look){ NULL, NULL, NULL, NULL, NULL };
	assert_string_equal(tell(n, &lk, 50 * S), "");
	narrator_free(n);
	scenario_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_story),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
