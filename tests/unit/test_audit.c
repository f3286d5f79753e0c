/* Tests for ops/audit's checks on data as the services answer it (the
 * reads themselves, against the real engines, are in test_order.c's
 * test_audit; against the platform in tests/integration/test_audit.c):
 * orders in flight and overdue, a CONFIRMED order still clearing its cart,
 * HELD reservations of final orders within and past the sweep's grace,
 * money kept by a cancelled order, confirmation notifications (one each,
 * missing, twice, for a cancelled order, skipped when not deployed), a
 * source that could not be read, the bound on listed offenders, the
 * outputs; reading over a fake admin API (pages followed, confirmations
 * waited for, the notification service absent or not answering); and
 * clock_parse_rfc3339. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "ops/audit.h"

#define NOW 1764112255000000LL /* 2025-11-25T23:10:55Z */
#define MIN 60000000LL

static json_t *order(const char *id, const char *status, const char *saga, int queued,
		     int64_t expires_us, int64_t total, int64_t units)
{
	char exp[40], pay[64], rsv[64];
	clock_fmt_rfc3339(expires_us, exp, sizeof(exp));
	snprintf(pay, sizeof(pay), "pay_%s", id + 4);
	snprintf(rsv, sizeof(rsv), "rsv_%s", id + 4);
	return json_pack("{s:s,s:s,s:I,s:s,s:I,s:s,s:s,s:{s:s,s:s,s:b}}", "order_id", id, "status",
			 status, "total_cents", (json_int_t)total, "currency", "USD", "units",
			 (json_int_t)units, "payment_id", pay, "reservation_id", rsv, "saga", "state",
			 saga, "expires_at", exp, "queued", queued);
}

static json_t *payment(const char *order_id, const char *status, int64_t amount, int64_t captured,
		       int64_t refunded)
{
	char pay[64];
	snprintf(pay, sizeof(pay), "pay_%s", order_id + 4);
	return json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:I}", "payment_id", pay, "order_id", order_id,
			 "status", status, "amount_cents", (json_int_t)amount, "currency", "USD",
			 "captured_cents", (json_int_t)captured, "refunded_cents",
			 (json_int_t)refunded);
}

static json_t *reservation(const char *order_id, const char *status, int64_t units,
			   int64_t expires_us)
{
	char rsv[64], exp[40];
	snprintf(rsv, sizeof(rsv), "rsv_%s", order_id + 4);
	clock_fmt_rfc3339(expires_us, exp, sizeof(exp));
	return json_pack("{s:s,s:s,s:s,s:I,s:s}", "reservation_id", rsv, "order_id", order_id,
			 "status", status, "units", (json_int_t)units, "expires_at", exp);
}

static json_t *note(const char *order_id, const char *channel)
{
	return json_pack("{s:s,s:s,s:s}", "order_id", order_id, "type", "order_confirmed",
			 "channel", channel);
}

/* A consistent platform: one order of every kind. */
static void healthy(audit_data *d)
{
	memset(d, 0, sizeof(*d));
	d->now_us = NOW;
	d->orders = json_array();
	d->payments = json_array();
	d->reservations = json_array();
	d->notifications = json_array();
	d->order_lookups = json_object();
	d->invariants = json_pack("{s:b,s:[]}", "ok", 1, "violations");
	json_array_append_new(d->orders, order("ord_a1", "CONFIRMED", "COMPLETED", 0, NOW, 1000, 2));
	json_array_append_new(d->payments, payment("ord_a1", "CAPTURED", 1000, 1000, 0));
	json_array_append_new(d->reservations, reservation("ord_a1", "COMMITTED", 2, NOW));
	json_array_append_new(d->notifications, note("ord_a1", "email"));
	/* Confirmed at the pivot, still clearing the cart. */
	json_array_append_new(d->orders, order("ord_a2", "CONFIRMED", "CONFIRMING", 1, NOW, 500, 1));
	json_array_append_new(d->payments, payment("ord_a2", "CAPTURED", 500, 500, 0));
	json_array_append_new(d->reservations, reservation("ord_a2", "COMMITTED", 1, NOW));
	json_array_append_new(d->notifications, note("ord_a2", "email"));
	json_array_append_new(d->notifications, note("ord_a2", "sms"));
	/* Refunded after capture. */
	json_array_append_new(d->orders, order("ord_a3", "CANCELLED", "COMPENSATED", 0, NOW, 700, 1));
	json_array_append_new(d->payments, payment("ord_a3", "REFUNDED", 700, 700, 700));
	json_array_append_new(d->reservations, reservation("ord_a3", "RELEASED", 1, NOW));
	/* Waiting for payment, its reservation good for 10 more minutes. */
	json_array_append_new(d->orders,
			      order("ord_a4", "AWAITING_PAYMENT", "AUTHORIZING", 1, NOW + 10 * MIN,
				    300, 1));
	json_array_append_new(d->reservations, reservation("ord_a4", "HELD", 1, NOW + 10 * MIN));
	/* A reservation made by hand, for no order: the inventory's business. */
	json_array_append_new(d->reservations,
			      json_pack("{s:s,s:s,s:s,s:i,s:s}", "reservation_id", "r-1", "order_id",
					"o-1", "status", "HELD", "units", 2, "expires_at",
					"2030-01-01T00:00:00.000Z"));
}

static audit_report check(audit_data *d)
{
	audit_report r;
	audit_opts o = { .grace_us = 2 * MIN };
	audit_check(d, &o, &r);
	return r;
}

static int offends(const audit_report *r, audit_id c, const char *id)
{
	for (int i = 0; i < r->checks[c].nlisted; i++)
		if (strcmp(r->checks[c].found[i].id, id) == 0)
			return 1;
	return 0;
}

static void test_healthy(void **unused)
{
	audit_data d;
	healthy(&d);
	audit_report r = check(&d);
	for (int i = 0; i < AUDIT_NCHECKS; i++)
		if (r.checks[i].result != AUDIT_PASS)
			fail_msg("%s: %s (%s)", audit_name((audit_id)i), r.checks[i].summary,
				 r.checks[i].nlisted ? r.checks[i].found[0].message : "");
	assert_int_equal(audit_failures(&r), 0);
	assert_non_null(strstr(r.checks[AUDIT_ORDERS_SETTLED].summary, "1 in flight"));
	assert_non_null(strstr(r.checks[AUDIT_MONEY].summary, "captured 22.00 - refunded 7.00, CONFIRMED 15.00"));
	audit_data_clear(&d);
}

static void test_orders(void **unused)
{
	audit_data d;
	healthy(&d);
	/* Overdue: its reservation expired 3 minutes ago, past the grace. */
	json_array_append_new(d.orders, order("ord_b1", "PENDING", "RESERVING", 1, NOW - 3 * MIN, 1, 1));
	/* Within the grace: still in flight. */
	json_array_append_new(d.orders, order("ord_b2", "PENDING", "RESERVING", 1, NOW - MIN, 1, 1));
	/* Nothing will move it. */
	json_array_append_new(d.orders, order("ord_b3", "AWAITING_PAYMENT", "AUTHORIZING", 0, NOW, 1, 1));
	/* Ended saga, open order. */
	json_array_append_new(d.orders, order("ord_b4", "PENDING", "COMPLETED", 0, NOW, 1, 1));
	/* Confirmed, its saga compensated. */
	json_array_append_new(d.orders, order("ord_b5", "CONFIRMED", "COMPENSATED", 0, NOW, 0, 0));
	json_array_append_new(d.reservations, reservation("ord_b5", "COMMITTED", 0, NOW));
	json_array_append_new(d.notifications, note("ord_b5", "email"));
	audit_report r = check(&d);
	audit_verdict *c = &r.checks[AUDIT_ORDERS_SETTLED];
	assert_int_equal(c->result, AUDIT_FAIL);
	assert_int_equal(c->nfound, 4);
	assert_true(offends(&r, AUDIT_ORDERS_SETTLED, "ord_b1"));
	assert_false(offends(&r, AUDIT_ORDERS_SETTLED, "ord_b2"));
	assert_true(offends(&r, AUDIT_ORDERS_SETTLED, "ord_b3"));
	assert_true(offends(&r, AUDIT_ORDERS_SETTLED, "ord_b4"));
	assert_true(offends(&r, AUDIT_ORDERS_SETTLED, "ord_b5"));
	assert_int_equal(audit_failures(&r), 1);
	audit_data_clear(&d);
}

static void test_stock(void **unused)
{
	audit_data d;
	healthy(&d);
	/* Cancelled, stock held 5 minutes past its expiry: the sweep is not
	 * running. Another cancelled 1 minute past: the sweep's grace. */
	json_array_append_new(d.orders, order("ord_c1", "CANCELLED", "COMPENSATED", 0, NOW, 1, 1));
	json_array_append_new(d.reservations, reservation("ord_c1", "HELD", 1, NOW - 5 * MIN));
	json_array_append_new(d.orders, order("ord_c2", "CANCELLED", "COMPENSATED", 0, NOW, 1, 1));
	json_array_append_new(d.reservations, reservation("ord_c2", "HELD", 1, NOW - MIN));
	/* Confirmed, 3 units ordered, 2 committed. Cancelled with its stock
	 * committed. */
	json_array_append_new(d.orders, order("ord_c3", "CONFIRMED", "COMPLETED", 0, NOW, 9, 3));
	json_array_append_new(d.payments, payment("ord_c3", "CAPTURED", 9, 9, 0));
	json_array_append_new(d.reservations, reservation("ord_c3", "COMMITTED", 2, NOW));
	json_array_append_new(d.notifications, note("ord_c3", "email"));
	json_array_append_new(d.orders, order("ord_c4", "CANCELLED", "COMPENSATED", 0, NOW, 1, 1));
	json_array_append_new(d.reservations, reservation("ord_c4", "COMMITTED", 1, NOW));
	/* And the inventory's own checker. */
	json_decref(d.invariants);
	d.invariants = json_pack("{s:b,s:[{s:s,s:s,s:s},{s:s,s:s,s:s}]}", "ok", 0, "violations",
				 "check", "non_negative", "sku", "SKU-N", "message", "negative",
				 "check", "reserved_matches_held", "sku", "SKU-R", "message", "off");
	audit_report r = check(&d);
	assert_true(offends(&r, AUDIT_RESERVED_STOCK, "rsv_c1"));
	assert_false(offends(&r, AUDIT_RESERVED_STOCK, "rsv_c2"));
	assert_true(offends(&r, AUDIT_RESERVED_STOCK, "SKU-R"));
	assert_false(offends(&r, AUDIT_RESERVED_STOCK, "rsv_a4")); /* in flight */
	assert_false(offends(&r, AUDIT_RESERVED_STOCK, "r-1"));    /* no such order */
	assert_true(offends(&r, AUDIT_NO_OVERSELL, "ord_c3"));
	assert_true(offends(&r, AUDIT_NO_OVERSELL, "ord_c4"));
	assert_true(offends(&r, AUDIT_NO_OVERSELL, "SKU-N"));
	assert_false(offends(&r, AUDIT_NO_OVERSELL, "SKU-R"));
	assert_int_equal(r.checks[AUDIT_NO_OVERSELL].nfound, 3);
	audit_data_clear(&d);
}

static void test_money(void **unused)
{
	audit_data d;
	healthy(&d);
	/* Cancelled with its authorisation never voided; cancelled with a
	 * capture half refunded; confirmed short; a payment for the wrong
	 * amount; one naming an order placed while the audit read; one naming
	 * no order. */
	json_array_append_new(d.orders, order("ord_d1", "CANCELLED", "COMPENSATED", 0, NOW, 100, 1));
	json_array_append_new(d.payments, payment("ord_d1", "AUTHORIZED", 100, 0, 0));
	json_array_append_new(d.orders, order("ord_d2", "CANCELLED", "COMPENSATED", 0, NOW, 100, 1));
	json_array_append_new(d.payments, payment("ord_d2", "CAPTURED", 100, 100, 50));
	json_array_append_new(d.orders, order("ord_d3", "CONFIRMED", "COMPLETED", 0, NOW, 100, 1));
	json_array_append_new(d.payments, payment("ord_d3", "CAPTURED", 100, 90, 0));
	json_array_append_new(d.reservations, reservation("ord_d3", "COMMITTED", 1, NOW));
	json_array_append_new(d.notifications, note("ord_d3", "email"));
	json_array_append_new(d.orders, order("ord_d4", "PENDING", "AUTHORIZING", 1, NOW, 100, 1));
	json_array_append_new(d.payments, payment("ord_d4", "PENDING", 120, 0, 0));
	json_array_append_new(d.payments, payment("ord_late", "AUTHORIZED", 10, 0, 0));
	json_object_set_new(d.order_lookups, "ord_late", json_integer(1));
	json_array_append_new(d.payments, payment("ord_gone", "CAPTURED", 10, 10, 0));
	json_object_set_new(d.order_lookups, "ord_gone", json_integer(0));
	audit_report r = check(&d);
	assert_true(offends(&r, AUDIT_MONEY, "ord_d1"));
	assert_true(offends(&r, AUDIT_MONEY, "ord_d2"));
	assert_true(offends(&r, AUDIT_MONEY, "ord_d3"));
	assert_false(offends(&r, AUDIT_MONEY, "ord_d4")); /* in flight */
	assert_true(offends(&r, AUDIT_MONEY, "pay_gone"));
	assert_int_equal(r.checks[AUDIT_MONEY].nfound, 4);
	assert_true(offends(&r, AUDIT_PAYMENTS_HAVE_ORDERS, "pay_d4"));
	assert_true(offends(&r, AUDIT_PAYMENTS_HAVE_ORDERS, "pay_gone"));
	assert_false(offends(&r, AUDIT_PAYMENTS_HAVE_ORDERS, "pay_late"));
	assert_int_equal(r.checks[AUDIT_PAYMENTS_HAVE_ORDERS].nfound, 2);
	audit_data_clear(&d);
}

static void test_notifications(void **unused)
{
	audit_data d;
	healthy(&d);
	json_array_append_new(d.notifications, note("ord_a1", "email")); /* twice */
	json_array_append_new(d.notifications, note("ord_a3", "email")); /* cancelled */
	json_array_append_new(d.notifications, note("ord_zz", "email")); /* newer order */
	json_array_append_new(d.orders, order("ord_e1", "CONFIRMED", "COMPLETED", 0, NOW, 5, 1));
	json_array_append_new(d.payments, payment("ord_e1", "CAPTURED", 5, 5, 0));
	json_array_append_new(d.reservations, reservation("ord_e1", "COMMITTED", 1, NOW));
	audit_report r = check(&d);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].result, AUDIT_FAIL);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].nfound, 3);
	assert_true(offends(&r, AUDIT_NOTIFICATIONS, "ord_a1"));
	assert_true(offends(&r, AUDIT_NOTIFICATIONS, "ord_a3"));
	assert_true(offends(&r, AUDIT_NOTIFICATIONS, "ord_e1"));
	assert_false(offends(&r, AUDIT_NOTIFICATIONS, "ord_a2")); /* one per channel */
	assert_int_equal(audit_failures(&r), 1);
	/* Not deployed: skipped, not failed. */
	json_decref(d.notifications);
	d.notifications = NULL;
	snprintf(d.notifications_skip, sizeof(d.notifications_skip),
		 "skipped: notification service not deployed");
	r = check(&d);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].result, AUDIT_SKIP);
	assert_int_equal(audit_failures(&r), 0);
	audit_data_clear(&d);
}

static void test_unreadable_and_bounded(void **unused)
{
	audit_data d;
	healthy(&d);
	json_decref(d.payments);
	d.payments = NULL;
	snprintf(d.payments_err, sizeof(d.payments_err), "GET /admin/payments: HTTP 503 down");
	for (int i = 0; i < 25; i++) {
		char id[32];
		snprintf(id, sizeof(id), "ord_f%02d", i);
		json_array_append_new(d.orders, order(id, "PENDING", "STARTED", 0, NOW, 1, 1));
	}
	audit_report r = check(&d);
	assert_int_equal(r.checks[AUDIT_MONEY].result, AUDIT_ERROR);
	assert_int_equal(r.checks[AUDIT_PAYMENTS_HAVE_ORDERS].result, AUDIT_ERROR);
	assert_non_null(strstr(r.checks[AUDIT_MONEY].summary, "HTTP 503"));
	assert_int_equal(r.checks[AUDIT_ORDERS_SETTLED].nfound, 25);
	assert_int_equal(r.checks[AUDIT_ORDERS_SETTLED].nlisted, AUDIT_MAX_LISTED);
	assert_int_equal(audit_failures(&r), 3);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	audit_print(&r, f);
	fclose(f);
	assert_non_null(strstr(buf, "✗ orders_settled"));
	assert_non_null(strstr(buf, "! money"));
	assert_non_null(strstr(buf, "✓ no_oversell"));
	assert_non_null(strstr(buf, "... and 5 more"));
	assert_non_null(strstr(buf, "audit: FAILED"));
	free(buf);
	json_t *j = audit_json(&r);
	json_t *c0 = json_array_get(json_object_get(j, "checks"), 0);
	assert_string_equal(json_string_value(json_object_get(c0, "result")), "fail");
	assert_int_equal(json_integer_value(json_object_get(c0, "count")), 25);
	assert_int_equal(json_array_size(json_object_get(c0, "offenders")), AUDIT_MAX_LISTED);
	json_decref(j);
	audit_data_clear(&d);
}

/* ---- reading: audit_collect over a fake admin API -------------------------------------- */

typedef struct fake {
	int notif_status;     /* what /admin/notifications answers */
	int notified_after;   /* the confirmation appears from this call on (1-based) */
	int notif_calls;
	int has_notification; /* /admin/services lists a notification instance */
	int orders_calls;
	int refuse_payments;  /* the first /admin/payments is refused: 503 */
	int payments_calls;
} fake;

static int fake_get(void *ud, const char *path, msg_resp *resp)
{
	fake *f = ud;
	json_t *v = NULL;
	int status = 200;
	if (strcmp(path, "/admin/orders?limit=500") == 0) {
		f->orders_calls++;
		v = json_pack("{s:[o],s:s}", "items",
			      order("ord_a1", "CONFIRMED", "COMPLETED", 0, NOW, 100, 1),
			      "next_page_token", "ord_a1");
	} else if (strcmp(path, "/admin/orders?limit=500&page_token=ord_a1") == 0) {
		f->orders_calls++;
		v = json_pack("{s:[o],s:n}", "items",
			      order("ord_a2", "CONFIRMED", "COMPLETED", 0, NOW, 200, 2),
			      "next_page_token");
	} else if (strcmp(path, "/admin/inventory/invariants") == 0) {
		v = json_pack("{s:b,s:[]}", "ok", 1, "violations");
	} else if (strcmp(path, "/admin/inventory/reservations?limit=500") == 0) {
		v = json_pack("{s:[o,o],s:n}", "items", reservation("ord_a1", "COMMITTED", 1, NOW),
			      reservation("ord_a2", "COMMITTED", 2, NOW), "next_page_token");
	} else if (strcmp(path, "/admin/payments?limit=500") == 0 &&
		   f->payments_calls++ < f->refuse_payments) {
		status = 503;
		v = json_pack("{s:{s:s,s:s}}", "error", "code", "unavailable", "message", "open");
	} else if (strcmp(path, "/admin/payments?limit=500") == 0) {
		v = json_pack("{s:[o,o],s:n}", "items", payment("ord_a1", "CAPTURED", 100, 100, 0),
			      payment("ord_a2", "CAPTURED", 200, 200, 0), "next_page_token");
	} else if (strcmp(path, "/admin/notifications?type=order_confirmed&limit=500") == 0) {
		f->notif_calls++;
		status = f->notif_status;
		v = status != 200 ? json_pack("{s:{s:s,s:s}}", "error", "code", "x", "message", "no")
				  : json_pack("{s:[o],s:n}", "items", note("ord_a1", "email"),
					      "next_page_token");
		if (status == 200 && f->notif_calls >= f->notified_after)
			json_array_append_new(json_object_get(v, "items"), note("ord_a2", "email"));
	} else if (strcmp(path, "/admin/services") == 0) {
		v = json_pack("{s:[{s:s,s:[{s:s}]}]}", "services", "name",
			      f->has_notification ? "notification" : "order", "instances", "id", "x-1");
	} else {
		status = 404;
		v = json_pack("{s:{s:s,s:s}}", "error", "code", "not_found", "message", path);
	}
	msg_resp_json(resp, status, v);
	return 0;
}

static void test_collect(void **unused)
{
	audit_opts o = { .now_us = NOW, .wait_us = 3 * 1000000LL };
	audit_report r;
	/* Paged orders; the second confirmation arrives on the third read:
	 * waited for, then everything holds. */
	fake f = { .notif_status = 200, .notified_after = 3, .has_notification = 1 };
	audit_collect(fake_get, &f, &o, &r);
	assert_int_equal(f.orders_calls, 2);
	assert_int_equal(r.orders, 2);
	assert_int_equal(f.notif_calls, 3);
	assert_int_equal(audit_failures(&r), 0);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].result, AUDIT_PASS);
	/* Never arrives: ✗ once the wait is up. */
	f = (fake){ .notif_status = 200, .notified_after = 1000, .has_notification = 1 };
	o.wait_us = 1200000;
	audit_collect(fake_get, &f, &o, &r);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].result, AUDIT_FAIL);
	assert_true(offends(&r, AUDIT_NOTIFICATIONS, "ord_a2"));
	assert_true(f.notif_calls >= 2);
	/* No such service (not even asked), or no such route: skipped. */
	f = (fake){ .notif_status = 503 };
	audit_collect(fake_get, &f, &o, &r);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].result, AUDIT_SKIP);
	assert_string_equal(r.checks[AUDIT_NOTIFICATIONS].summary,
			    "skipped: notification service not deployed");
	assert_int_equal(f.notif_calls, 0);
	assert_int_equal(audit_failures(&r), 0);
	f = (fake){ .notif_status = 404, .has_notification = 1 };
	audit_collect(fake_get, &f, &o, &r);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].result, AUDIT_SKIP);
	assert_int_equal(f.notif_calls, 1);
	/* Deployed but refusing (503): asked again while the wait lasts, then
	 * it cannot be checked, which fails. */
	f = (fake){ .notif_status = 503, .has_notification = 1 };
	audit_collect(fake_get, &f, &o, &r);
	assert_int_equal(r.checks[AUDIT_NOTIFICATIONS].result, AUDIT_ERROR);
	assert_non_null(strstr(r.checks[AUDIT_NOTIFICATIONS].summary, "HTTP 503"));
	assert_true(f.notif_calls >= 1);
	assert_int_equal(audit_failures(&r), 1);
	/* Refused for a moment (a breaker open), then answering: it holds. */
	f = (fake){ .notif_status = 200, .has_notification = 1, .refuse_payments = 1 };
	o.wait_us = 3 * 1000000LL;
	audit_collect(fake_get, &f, &o, &r);
	assert_int_equal(f.payments_calls, 2);
	assert_int_equal(audit_failures(&r), 0);
}

static void test_rfc3339(void **unused)
{
	char buf[40];
	int64_t t = 0;
	clock_fmt_rfc3339(NOW + 123000, buf, sizeof(buf));
	assert_int_equal(clock_parse_rfc3339(buf, &t), 0);
	assert_int_equal(t, NOW + 123000);
	assert_int_equal(clock_parse_rfc3339("2025-11-25T23:10:55Z", &t), 0);
	assert_int_equal(t, NOW);
	assert_int_equal(clock_parse_rfc3339("2025-11-25T23:10:55.5Z", &t), 0);
	assert_int_equal(t, NOW + 500000);
	assert_int_equal(clock_parse_rfc3339("2025-11-25T23:10:55.1234567Z", &t), 0);
	assert_int_equal(t, NOW + 123456);
	static const char *const bad[] = { "", "2025-11-25", "2025-11-25T23:10:55",
					   "2025-11-25T23:10:55+01:00", "2025-13-25T23:10:55Z",
					   "2025-11-25T23:10:55.Z", "2025-11-25 23:10:55Z" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(clock_parse_rfc3339(bad[i], &t), ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy),	      cmocka_unit_test(test_orders),
		cmocka_unit_test(test_stock),	      cmocka_unit_test(test_money),
		cmocka_unit_test(test_notifications), cmocka_unit_test(test_unreadable_and_bounded),
		cmocka_unit_test(test_collect),	      cmocka_unit_test(test_rfc3339),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
