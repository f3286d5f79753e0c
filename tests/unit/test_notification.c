/* Tests for services/notification and services/template: the real
 * notification and user engines, the SMS sink, and producers of the
 * orders and payments topics (buses on SQLite files whose outboxes the
 * test writes, as the order and payment services do) in one process on one
 * virtual clock (tests/unit/inproc), with the embedded bus between them;
 * email goes through libcurl to the SMTP sink on a loopback port
 * (tests/unit/smtpfix). Covered: templates (placeholders, errors, the
 * names); a confirmed order -> one email with the order id, total and
 * items, and one text; payment declined, cancelled (the reason in words)
 * and refund emails, a refund before its order's event waiting for it; an
 * unknown user (nobody told, nothing dead); 10% of deliveries duplicated
 * and every order.confirmed written twice: one email per order; the sink
 * down: retried with backoff, dead letters after bus.max_attempts, sink
 * back, replay: each email once; a message failing inside a batch (the
 * batch rolled back and delivered again one by one): each email once; the SMS
 * provider down while email goes on; no relay configured; a malformed
 * event dead-lettered; the admin list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "net/http_client.h"
#include "net/smtp_client.h"
#include "services/template.h"

#include "efix.h"
#include "inproc.h"
#include "smtpfix.h"

#define ADMIN "Bearer " EFIX_ADMIN
#define SMS_URL "http://sms.test"
#define MS 1000LL
#define STEP (50 * MS)
#define MAX_ROUNDS 400
#define MAX_ATTEMPTS 3

typedef struct fx {
	inproc *p;
	smtpfix *smtp;
	char ann[64], bob[64]; /* user ids */
} fx;

/* ---- fixture ------------------------------------------------------------------ */

static void signup(fx *x, const char *email, const char *name, const char *phone, char *id)
{
	efix *u = inproc_efix(x->p, "user");
	json_t *b = json_pack("{s:s,s:s,s:s}", "email", email, "password", "correct horse 1", "name",
			      name);
	if (phone)
		json_object_set_new(b, "phone", json_string(phone));
	char *body = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	json_t *v = efix_expect(u, "POST", "/v1/auth/signup", NULL, NULL, body, 201);
	free(body);
	snprintf(id, 64, "%s", json_string_value(json_object_get(v, "user_id")));
	json_decref(v);
}

static fx *fx_new(const char *smtp_url)
{
	fx *x = calloc(1, sizeof(*x));
	http_client_global_init();
	x->smtp = smtpfix_new();
	x->p = inproc_new();
	efix *n = inproc_add(x->p, "notification", 1);
	inproc_add(x->p, "order", 2);
	inproc_add(x->p, "payment", 3);
	efix *u = inproc_add(x->p, "user", 4);
	inproc_add(x->p, "sms-sim", 5);
	inproc_alias(x->p, "sms-sim", SMS_URL);
	assert_int_equal(config_set(u->config, "user.pwhash_opslimit", "1"), 0);
	assert_int_equal(config_set(u->config, "user.pwhash_memlimit_kib", "8"), 0);
	static const char *const kv[][2] = {
		{ "bus.max_attempts", "3" },      { "bus.retry_base_ms", "100" },
		{ "bus.retry_max_ms", "400" },    { "bus.batch", "50" },
		{ "notification.sms_url", SMS_URL "/v1/messages" },
		{ "notification.timeout_ms", "3000" },
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		assert_int_equal(config_set(n->config, kv[i][0], kv[i][1]), 0);
	assert_int_equal(config_set(n->config, "notification.smtp_url",
				    smtp_url ? smtp_url : x->smtp->url),
			 0);
	n->ctx.mail = smtp_client_mail;
	inproc_start(x->p, "notification", 1, 1);
	inproc_start(x->p, "order", 0, 1);
	inproc_start(x->p, "payment", 0, 1);
	inproc_start(x->p, "user", 1, 0);
	inproc_start(x->p, "sms-sim", 1, 0);
	signup(x, "ann@example.com", "Ann Émile", "+4930123456", x->ann);
	signup(x, "bob@example.com", "Bob", NULL, x->bob);
	return x;
}

static int setup(void **state)
{
	*state = fx_new(NULL);
	return 0;
}

static int setup_no_relay(void **state)
{
	*state = fx_new("");
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	inproc_free(x->p);
	smtpfix_free(x->smtp);
	http_client_global_cleanup();
	free(x);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static void order_event(fx *x, const char *type, const char *order_id, const char *user,
			const char *reason)
{
	char ev[1024];
	snprintf(ev, sizeof(ev),
		 "{\"type\":\"%s\",\"order_id\":\"%s\",\"user_id\":\"%s\",\"total_cents\":7600,"
		 "\"currency\":\"USD\",\"items\":[{\"sku\":\"BEAU-001\",\"name\":\"Face Cream\","
		 "\"qty\":2,\"price_cents\":2400,\"line_total_cents\":4800},{\"sku\":\"BEAU-002\","
		 "\"name\":\"Shampoo\",\"qty\":2,\"price_cents\":1400,\"line_total_cents\":2800}]%s%s%s}",
		 type, order_id, user, reason ? ",\"cancel_reason\":\"" : "", reason ? reason : "",
		 reason ? "\"" : "");
	inproc_event(x->p, "order", "orders", order_id, ev);
}

static void refund_event(fx *x, const char *order_id, const char *refund_id)
{
	char ev[512];
	snprintf(ev, sizeof(ev),
		 "{\"type\":\"payment.refunded\",\"payment_id\":\"pay_%s\",\"order_id\":\"%s\","
		 "\"status\":\"REFUNDED\",\"amount_cents\":7600,\"currency\":\"USD\","
		 "\"captured_cents\":7600,\"refunded_cents\":7600,\"provider_ref\":\"pi_1\","
		 "\"refund_id\":\"%s\",\"refund_cents\":2500}",
		 order_id, order_id, refund_id);
	inproc_event(x->p, "payment", "payments", order_id, ev);
}

static void settle(fx *x) { inproc_settle(x->p, STEP, MAX_ROUNDS); }

static int64_t dead(fx *x, const char *consumer)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM bus_dead WHERE consumer = '%s'", consumer);
	return inproc_int(x->p, "notification", sql);
}

/* Rounds until consumer has n dead letters (bounded). */
static void wait_dead(fx *x, const char *consumer, int64_t n)
{
	for (int i = 0; i < MAX_ROUNDS && dead(x, consumer) < n; i++)
		inproc_round(x->p, STEP);
	assert_int_equal(dead(x, consumer), n);
}

static long long texts(fx *x, const char *contains)
{
	char path[256];
	snprintf(path, sizeof(path), "/admin/sms/messages?contains=%s", contains ? contains : "");
	json_t *v = efix_expect(inproc_efix(x->p, "sms-sim"), "GET", path, NULL, ADMIN, NULL, 200);
	long long n = json_integer_value(json_object_get(v, "total"));
	json_decref(v);
	return n;
}

/* ---- templates ----------------------------------------------------------------- */

static void test_template(void **state)
{
	json_t *vars = json_pack("{s:s,s:i,s:f,s:s}", "name", "Ann", "n", 3, "x", 1.5, "empty", "");
	char *out = NULL, err[128];
	assert_int_equal(template_render("Hi {{name}}, {{ n }} x {{x}}{{empty}}!\n", vars, &out, err,
					 sizeof(err)),
			 0);
	assert_string_equal(out, "Hi Ann, 3 x 1.5!\n");
	free(out);
	assert_int_equal(template_render("no placeholders", vars, &out, err, sizeof(err)), 0);
	assert_string_equal(out, "no placeholders");
	free(out);
	assert_int_equal(template_render("line\n{{missing}}", vars, &out, err, sizeof(err)),
			 ERR_NOT_FOUND);
	assert_null(out);
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "missing"));
	assert_int_equal(template_render("{{name", vars, &out, err, sizeof(err)), ERR_PARSE);
	assert_int_equal(template_render("{{na me}}", vars, &out, err, sizeof(err)), ERR_PARSE);
	assert_int_equal(template_render("{{}}", vars, &out, err, sizeof(err)), ERR_PARSE);
	json_t *names = template_names("{{a}} {{ b }} {{a}}");
	assert_int_equal(json_array_size(names), 2);
	assert_string_equal(json_string_value(json_array_get(names, 1)), "b");
	json_decref(names);
	assert_null(template_names("{{a"));
	json_decref(vars);
}

/* Every shipped template renders with the values the service gives. */
static void test_shipped_templates_load(void **state)
{
	fx *x = *state;
	assert_non_null(inproc_efix(x->p, "notification")->eng);
	/* a broken templates directory stops the service at start */
	efix *f = efix_new("notification", "sqlite::memory:", EFIX_T0, 9);
	assert_int_equal(config_set(f->config, "notification.templates_dir", f->dir), 0);
	char err[256] = "";
	assert_null(f->def->create(&f->ctx, err, sizeof(err)));
	assert_non_null(strstr(err, "order_confirmed.email.txt"));
	char path[256];
	static const char *const kinds[] = { "order_confirmed", "payment_declined",
					     "order_cancelled", "refund" };
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s.email.txt", f->dir, kinds[i]);
		FILE *t = fopen(path, "w");
		fputs(i == 3 ? "Subject: {{refnud}}\n\nbody\n" : "Subject: s\n\nbody\n", t);
		fclose(t);
	}
	assert_null(f->def->create(&f->ctx, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown placeholder {{refnud}}"));
	efix_free(f);
}

/* ---- the messages ---------------------------------------------------------------- */

static void test_confirmation(void **state)
{
	fx *x = *state;
	order_event(x, "order.confirmed", "ord_1", x->ann, NULL);
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, NULL), 1);
	json_t *v = smtpfix_messages(x->smtp, "ann@example.com", "ord_1");
	json_t *m = json_array_get(json_object_get(v, "items"), 0);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "subject")), "Your order ord_1 is confirmed");
	assert_string_equal(json_string_value(json_object_get(m, "from")), "orders@ecom.test");
	assert_string_equal(json_string_value(json_object_get(m, "message_id")),
			    "<order_confirmed.ord_1.email@ecom.test>");
	const char *body = json_string_value(json_object_get(m, "body"));
	assert_non_null(strstr(body, "Hello Ann Émile,"));
	assert_non_null(strstr(body, "Order ord_1\r\n"));
	assert_non_null(strstr(body, "  2 x Face Cream (BEAU-001)  48.00 USD\r\n"));
	assert_non_null(strstr(body, "Total: 76.00 USD\r\n"));
	const char *data = json_string_value(json_object_get(m, "data"));
	assert_non_null(strstr(data, "Content-Type: text/plain; charset=utf-8\r\n"));
	assert_non_null(strstr(data, "From: ecom <orders@ecom.test>\r\n"));
	json_decref(v);
	/* and a text to her phone */
	assert_int_equal(texts(x, ""), 1);
	assert_int_equal(texts(x, "ord_1"), 1);
	/* both recorded as sent */
	json_t *l = efix_expect(inproc_efix(x->p, "notification"), "GET",
				"/admin/notifications?ref=ord_1", NULL, ADMIN, NULL, 200);
	json_t *items = json_object_get(l, "items");
	assert_int_equal(json_array_size(items), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *it = json_array_get(items, i);
		assert_string_equal(json_string_value(json_object_get(it, "status")), "SENT");
		assert_string_equal(json_string_value(json_object_get(it, "type")), "order_confirmed");
		assert_string_equal(json_string_value(json_object_get(it, "order_id")), "ord_1");
		assert_non_null(json_string_value(json_object_get(it, "sent_at")));
	}
	json_decref(l);
	efix_assert_error(efix_expect(inproc_efix(x->p, "notification"), "GET",
				      "/admin/notifications", NULL, NULL, NULL, 401),
			  "unauthenticated", NULL, NULL);
	efix_assert_error(efix_expect(inproc_efix(x->p, "notification"), "GET",
				      "/admin/notifications?limit=0", NULL, ADMIN, NULL, 400),
			  "invalid_argument", "field", "limit");
	efix_assert_error(efix_expect(inproc_efix(x->p, "notification"), "GET",
				      "/admin/notifications?page_token=zz", NULL, ADMIN, NULL, 400),
			  "invalid_argument", "field", "page_token");
	/* Bob has no phone: an email only */
	order_event(x, "order.confirmed", "ord_2", x->bob, NULL);
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, "bob@example.com", "ord_2"), 1);
	assert_int_equal(texts(x, "ord_2"), 0);
	/* the listing the audit reads: by type, a page at a time */
	order_event(x, "order.cancelled", "ord_3", x->bob, "out_of_stock");
	settle(x);
	char path[512] = "/admin/notifications?type=order_confirmed&limit=2";
	int seen = 0, pages = 0;
	while (path[0] && pages < 10) {
		json_t *page = efix_expect(inproc_efix(x->p, "notification"), "GET", path, NULL, ADMIN,
					   NULL, 200);
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(page, "items"), i, it)
		{
			assert_string_equal(json_string_value(json_object_get(it, "type")), "order_confirmed");
			seen++;
		}
		const char *next = json_string_value(json_object_get(page, "next_page_token"));
		if (next)
			snprintf(path, sizeof(path),
				 "/admin/notifications?type=order_confirmed&limit=2&page_token=%s", next);
		else
			path[0] = '\0';
		json_decref(page);
		pages++;
	}
	assert_int_equal(seen, 3); /* ord_1 email and text, ord_2 email */
	assert_int_equal(pages, 2);
	json_t *c = efix_expect(inproc_efix(x->p, "notification"), "GET",
				"/admin/notifications?order_id=ord_3", NULL, ADMIN, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(c, "items")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(c, "items"), 0), "type")),
			    "order_cancelled");
	json_decref(c);
}

static void test_other_kinds(void **state)
{
	fx *x = *state;
	order_event(x, "order.cancelled", "ord_d", x->bob, "payment_declined");
	order_event(x, "order.cancelled", "ord_s", x->bob, "out_of_stock");
	/* a refund whose order's event comes later, and one after it */
	refund_event(x, "ord_r", "ref_1");
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "Your payment for order ord_d was declined"), 1);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "an item was out of stock"), 1);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "ord_r"), 0);
	assert_int_equal(inproc_int(x->p, "notification", "SELECT COUNT(*) FROM notify_waiting"), 1);
	order_event(x, "order.cancelled", "ord_r", x->bob, "expired");
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "Your refund of 25.00 USD for order ord_r"), 1);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "it could not be completed in time"), 1);
	assert_int_equal(inproc_int(x->p, "notification", "SELECT COUNT(*) FROM notify_waiting"), 0);
	refund_event(x, "ord_r", "ref_2");
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "Your refund of 25.00 USD for order ord_r"), 2);
	/* events it does not tell anyone about, and an unknown user */
	inproc_event(x->p, "payment", "payments", "p", "{\"type\":\"payment.captured\",\"order_id\":\"ord_r\"}");
	order_event(x, "order.confirmed", "ord_ghost", "usr_0000000000000000", NULL);
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "ord_ghost"), 0);
	assert_int_equal(smtpfix_count(x->smtp, NULL, NULL), 5);
	assert_int_equal(dead(x, "notification") + dead(x, "notification-email"), 0);
}

static void test_duplicates(void **state)
{
	fx *x = *state;
	bus_hooks h = { .duplicate_rate = 0.1 };
	bus_set_hooks(inproc_bus(x->p, "notification"), &h);
	char id[32];
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "ord_%02d", i);
		order_event(x, "order.confirmed", id, i % 2 ? x->ann : x->bob, NULL);
		if (i % 3 == 0) /* the same confirmation written twice */
			order_event(x, "order.confirmed", id, i % 2 ? x->ann : x->bob, NULL);
	}
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, NULL), 20);
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "order ord_%02d is", i);
		assert_int_equal(smtpfix_count(x->smtp, NULL, id), 1);
	}
	assert_int_equal(texts(x, ""), 10);
	/* the bus saw the duplicates, and they changed nothing */
	json_t *q = bus_queues(inproc_bus(x->p, "notification"));
	long long dups = 0;
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(q, "queues"), i, row)
		dups += json_integer_value(json_object_get(row, "duplicates"));
	json_decref(q);
	assert_true(dups > 0);
}

static void test_sink_down_dead_then_replay(void **state)
{
	fx *x = *state;
	smtpfix_stop(x->smtp);
	order_event(x, "order.confirmed", "ord_a", x->ann, NULL);
	order_event(x, "order.confirmed", "ord_b", x->bob, NULL);
	order_event(x, "order.confirmed", "ord_c", x->ann, NULL);
	wait_dead(x, "notification-email", 3);
	/* each after its attempts, with the error kept */
	assert_int_equal(inproc_int(x->p, "notification",
				    "SELECT MIN(attempts) FROM bus_dead WHERE consumer = 'notification-email'"),
			 MAX_ATTEMPTS);
	assert_int_equal(inproc_int(x->p, "notification",
				    "SELECT COUNT(*) FROM notifications WHERE channel = 'email' AND status = 'QUEUED'"),
			 3);
	assert_int_equal(texts(x, ""), 2); /* texts went on */
	smtpfix_start(x->smtp);
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, NULL), 0); /* dead letters wait */
	int64_t moved = 0;
	assert_int_equal(bus_replay(inproc_bus(x->p, "notification"), "notifications.email", NULL, &moved), 0);
	assert_int_equal(moved, 3);
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, NULL), 3);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "order ord_a is"), 1);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "order ord_b is"), 1);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "order ord_c is"), 1);
	assert_int_equal(dead(x, "notification-email"), 0);
	assert_int_equal(inproc_int(x->p, "notification",
				    "SELECT COUNT(*) FROM notifications WHERE status = 'SENT'"),
			 5);
}

/* The host's mail, except that the 3rd and the 7th message fail (as a
 * relay's 451 would), nothing handed over. */
static int flaky_calls;
static int flaky_mail(void *ud, const smtp_message *m, char *err, size_t errlen)
{
	if (++flaky_calls == 3 || flaky_calls == 7) {
		snprintf(err, errlen, "451 injected by the test");
		return ERR_IO;
	}
	return smtp_client_mail(ud, m, err, errlen);
}

static void test_batch_rolled_back_each_once(void **state)
{
	fx *x = *state;
	/* Twelve emails fetched as one batch: the first two go out, the third
	 * fails, the batch's transaction rolls back and the bus delivers them
	 * again one by one. The two the relay took are not sent again. */
	flaky_calls = 0;
	inproc_efix(x->p, "notification")->ctx.mail = flaky_mail;
	char id[32];
	for (int i = 0; i < 12; i++) {
		snprintf(id, sizeof(id), "ord_f%02d", i);
		order_event(x, "order.confirmed", id, x->bob, NULL);
	}
	settle(x);
	assert_true(flaky_calls >= 14); /* 12, the two failures tried again */
	assert_int_equal(smtpfix_count(x->smtp, NULL, NULL), 12);
	for (int i = 0; i < 12; i++) {
		snprintf(id, sizeof(id), "order ord_f%02d is", i);
		assert_int_equal(smtpfix_count(x->smtp, NULL, id), 1);
	}
	assert_int_equal(dead(x, "notification-email"), 0);
}

static void test_sms_down(void **state)
{
	fx *x = *state;
	inproc_set_down(x->p, "sms-sim", 1);
	order_event(x, "order.confirmed", "ord_t", x->ann, NULL);
	wait_dead(x, "notification-sms", 1);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "ord_t"), 1);
	inproc_set_down(x->p, "sms-sim", 0);
	int64_t moved = 0;
	assert_int_equal(bus_replay(inproc_bus(x->p, "notification"), "notifications.sms", NULL, &moved), 0);
	assert_int_equal(moved, 1);
	settle(x);
	assert_int_equal(texts(x, "ord_t"), 1);
}

static void test_user_service_down(void **state)
{
	fx *x = *state;
	/* the recipient cannot be looked up: the order's event waits (retried),
	 * and is told once the user service is back */
	inproc_set_down(x->p, "user", 1);
	order_event(x, "order.confirmed", "ord_u", x->ann, NULL);
	for (int i = 0; i < 2; i++) /* fewer than its attempts */
		inproc_round(x->p, STEP);
	assert_int_equal(smtpfix_count(x->smtp, NULL, NULL), 0);
	inproc_set_down(x->p, "user", 0);
	settle(x);
	assert_int_equal(smtpfix_count(x->smtp, NULL, "ord_u"), 1);
	assert_int_equal(dead(x, "notification"), 0);
}

static void test_no_relay(void **state)
{
	fx *x = *state;
	order_event(x, "order.confirmed", "ord_n", x->bob, NULL);
	wait_dead(x, "notification-email", 1);
	assert_int_equal(smtpfix_count(x->smtp, NULL, NULL), 0);
}

static void test_malformed_event(void **state)
{
	fx *x = *state;
	inproc_event(x->p, "order", "orders", "bad", "[1,2,3]");
	inproc_event(x->p, "order", "orders", "bad2", "{\"type\":\"order.confirmed\"}");
	order_event(x, "order.confirmed", "ord_after", x->bob, NULL);
	wait_dead(x, "notification", 2);
	settle(x);
	/* what came after them went on */
	assert_int_equal(smtpfix_count(x->smtp, NULL, "ord_after"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template),
		cmocka_unit_test_setup_teardown(test_shipped_templates_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_confirmation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_down_dead_then_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_rolled_back_each_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sms_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_service_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_relay, setup_no_relay, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_event, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
