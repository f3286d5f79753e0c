/* Tests for sim/smtp_sim (the SMTP sink), net/smtp_client (libcurl's SMTP)
 * and sim/mailbox, over real loopback connections: the sink served by a
 * line_server (tests/unit/smtpfix), messages sent with libcurl through
 * smtp_client_send, and raw sessions typed on a socket for what a client
 * library would never send. Covered: a message kept as sent (envelope,
 * Subject, Message-ID, body), dot-stuffing both ways (a body line that is
 * a single dot, lines starting with dots), several recipients; reading
 * back with to/contains/limit, deleting, the stats; the protocol's order
 * (503), syntax (501), unknown commands (500), RSET/NOOP/VRFY/HELP/QUIT,
 * SIZE and an oversized message (552), a line too long, too many
 * recipients; faults through /admin/faults/smtp: an outage (421, nothing
 * handed over), a failed draw (451 at the end of DATA, nothing kept),
 * latency (the exchange waits; past the client's timeout it times out),
 * the fault routes' authorisation and targets; the sink stopped (refused)
 * and started again; the client refusing malformed messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "net/smtp_client.h"

#include "efix.h"
#include "smtpfix.h"

#define ADMIN "Bearer " EFIX_ADMIN

static int setup(void **state)
{
	http_client_global_init();
	*state = smtpfix_new();
	return 0;
}

static int teardown(void **state)
{
	smtpfix_free(*state);
	http_client_global_cleanup();
	return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static int send_mail(smtpfix *s, const char *const *to, int nto, const char *data,
		     int64_t timeout_ms, char *err, size_t errlen)
{
	smtp_message m = { .url = s->url,
			   .from = "orders@ecom.test",
			   .to = to,
			   .nto = nto,
			   .data = data,
			   .len = strlen(data),
			   .timeout_ms = timeout_ms };
	return smtp_client_send(&m, err, errlen);
}

static int send_one(smtpfix *s, const char *to, const char *data)
{
	char err[300];
	const char *rcpt[1] = { to };
	int rc = send_mail(s, rcpt, 1, data, 5000, err, sizeof(err));
	if (rc)
		print_message("send: %s: %s\n", err_name(rc), err);
	return rc;
}

static long long stat_of(smtpfix *s, const char *name)
{
	json_t *v = efix_expect(s->f, "GET", "/admin/smtp/stats", NULL, ADMIN, NULL, 200);
	long long n = json_integer_value(json_object_get(v, name));
	json_decref(v);
	return n;
}

/* A raw session: connect, read and send lines. */
static int raw_connect(smtpfix *s)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void raw_send(int fd, const char *line)
{
	char buf[8192];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line);
	assert_int_equal(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
}

/* Reads one reply (all its lines) into buf; returns its code, or -1 when
 * the connection closed first. */
static int raw_reply(int fd, char *buf, size_t len)
{
	size_t k = 0, line_start = 0;
	buf[0] = '\0';
	while (k + 1 < len) {
		char c;
		ssize_t n = recv(fd, &c, 1, 0);
		if (n <= 0)
			return -1;
		buf[k++] = c;
		buf[k] = '\0';
		if (c != '\n')
			continue;
		/* "250-..." goes on, "250 ..." is the last line */
		if (k - line_start >= 4 && buf[line_start + 3] == ' ')
			return atoi(buf + line_start);
		line_start = k;
	}
	return -1;
}

static int raw_cmd(int fd, const char *line, char *buf, size_t len)
{
	raw_send(fd, line);
	return raw_reply(fd, buf, len);
}

/* ---- messages ------------------------------------------------------------------ */

static void test_message_kept(void **state)
{
	smtpfix *s = *state;
	const char *data = "From: ecom <orders@ecom.test>\r\n"
			   "To: <ann@example.com>\r\n"
			   "Subject: Your order ord_1 is\r\n confirmed\r\n"
			   "Message-ID: <order_confirmed.ord_1.email@ecom.test>\r\n"
			   "\r\n"
			   "Hello Ann,\r\n"
			   ".\r\n"
			   ".leading dot\r\n"
			   "..two dots\r\n"
			   "last line\r\n";
	const char *to[2] = { "ann@example.com", "Bob@Example.com" };
	char err[300];
	assert_int_equal(send_mail(s, to, 2, data, 5000, err, sizeof(err)), 0);
	json_t *v = smtpfix_messages(s, NULL, NULL);
	assert_int_equal(json_integer_value(json_object_get(v, "total")), 1);
	json_t *m = json_array_get(json_object_get(v, "items"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "from")), "orders@ecom.test");
	json_t *rcpt = json_object_get(m, "to");
	assert_int_equal(json_array_size(rcpt), 2);
	assert_string_equal(json_string_value(json_array_get(rcpt, 0)), "ann@example.com");
	assert_string_equal(json_string_value(json_array_get(rcpt, 1)), "Bob@Example.com");
	/* folded headers are unfolded */
	assert_string_equal(json_string_value(json_object_get(m, "subject")),
			    "Your order ord_1 is confirmed");
	assert_string_equal(json_string_value(json_object_get(m, "message_id")),
			    "<order_confirmed.ord_1.email@ecom.test>");
	/* libcurl stuffed the dots, the sink took them out again: byte for byte */
	assert_string_equal(json_string_value(json_object_get(m, "data")), data);
	assert_string_equal(json_string_value(json_object_get(m, "body")),
			    "Hello Ann,\r\n.\r\n.leading dot\r\n..two dots\r\nlast line\r\n");
	assert_non_null(json_string_value(json_object_get(m, "received_at")));
	json_decref(v);
	assert_int_equal(stat_of(s, "accepted"), 1);
	assert_int_equal(stat_of(s, "messages"), 1);
	assert_true(stat_of(s, "sessions") >= 1);
}

static void test_read_back(void **state)
{
	smtpfix *s = *state;
	assert_int_equal(send_one(s, "ann@example.com", "Subject: one\r\n\r\nfirst ord_a\r\n"), 0);
	assert_int_equal(send_one(s, "bob@example.com", "Subject: two\r\n\r\nsecond ord_b\r\n"), 0);
	assert_int_equal(send_one(s, "ann@example.com", "Subject: three\r\n\r\nthird ord_c\r\n"), 0);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 3);
	/* one thread's messages share one connection: one SMTP session */
	assert_int_equal(stat_of(s, "sessions"), 1);
	assert_int_equal(smtpfix_count(s, "ANN@example.com", NULL), 2); /* any case */
	assert_int_equal(smtpfix_count(s, "ann@example.com", "ord_c"), 1);
	assert_int_equal(smtpfix_count(s, NULL, "two"), 1);   /* the subject counts */
	assert_int_equal(smtpfix_count(s, "carol@example.com", NULL), 0);
	/* limit: the last ones, oldest first */
	json_t *v = efix_expect(s->f, "GET", "/admin/smtp/messages?limit=2", NULL, ADMIN, NULL, 200);
	json_t *items = json_object_get(v, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_int_equal(json_integer_value(json_object_get(v, "total")), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "subject")), "two");
	json_decref(v);
	efix_assert_error(efix_expect(s->f, "GET", "/admin/smtp/messages?limit=0", NULL, ADMIN, NULL, 400),
			  "invalid_argument", "field", "limit");
	/* the admin token is needed */
	efix_assert_error(efix_expect(s->f, "GET", "/admin/smtp/messages", NULL, NULL, NULL, 401),
			  "unauthenticated", NULL, NULL);
	efix_assert_error(efix_expect(s->f, "POST", "/admin/smtp/messages", NULL, ADMIN, NULL, 405),
			  "method_not_allowed", NULL, NULL);
	efix_assert_error(efix_expect(s->f, "GET", "/v1/anything", NULL, ADMIN, NULL, 404),
			  "not_found", NULL, NULL);
	v = efix_expect(s->f, "DELETE", "/admin/smtp/messages", NULL, ADMIN, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(v, "deleted")), 3);
	json_decref(v);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 0);
}

/* ---- the protocol ----------------------------------------------------------------- */

static void test_protocol(void **state)
{
	smtpfix *s = *state;
	char r[2048];
	int fd = raw_connect(s);
	assert_int_equal(raw_reply(fd, r, sizeof(r)), 220);
	assert_int_equal(raw_cmd(fd, "MAIL FROM:<a@example.com>", r, sizeof(r)), 503); /* no EHLO */
	assert_int_equal(raw_cmd(fd, "HELO", r, sizeof(r)), 501);
	assert_int_equal(raw_cmd(fd, "EHLO client.test", r, sizeof(r)), 250);
	assert_non_null(strstr(r, "250-8BITMIME"));
	assert_non_null(strstr(r, "250-SIZE 1048576"));
	assert_int_equal(raw_cmd(fd, "RCPT TO:<x@example.com>", r, sizeof(r)), 503); /* no MAIL */
	assert_int_equal(raw_cmd(fd, "DATA", r, sizeof(r)), 503);
	assert_int_equal(raw_cmd(fd, "MAIL FROM:a@example.com", r, sizeof(r)), 501);
	assert_int_equal(raw_cmd(fd, "MAIL FROM:<a@example.com> SIZE=99999999", r, sizeof(r)), 552);
	assert_int_equal(raw_cmd(fd, "mail from:<a@example.com> SIZE=100", r, sizeof(r)), 250);
	assert_int_equal(raw_cmd(fd, "MAIL FROM:<b@example.com>", r, sizeof(r)), 503); /* nested */
	assert_int_equal(raw_cmd(fd, "RCPT TO:<>", r, sizeof(r)), 501);
	assert_int_equal(raw_cmd(fd, "RCPT TO:<x@example.com>", r, sizeof(r)), 250);
	assert_int_equal(raw_cmd(fd, "RSET", r, sizeof(r)), 250);
	assert_int_equal(raw_cmd(fd, "DATA", r, sizeof(r)), 503); /* RSET forgot the recipient */
	assert_int_equal(raw_cmd(fd, "FROB", r, sizeof(r)), 500);
	assert_int_equal(raw_cmd(fd, "NOOP", r, sizeof(r)), 250);
	assert_int_equal(raw_cmd(fd, "VRFY someone", r, sizeof(r)), 252);
	assert_int_equal(raw_cmd(fd, "HELP", r, sizeof(r)), 214);
	char longline[6000];
	memset(longline, 'A', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(raw_cmd(fd, longline, r, sizeof(r)), 500);
	assert_non_null(strstr(r, "too long"));
	/* a whole transaction, dot-stuffed by hand */
	assert_int_equal(raw_cmd(fd, "MAIL FROM:<>", r, sizeof(r)), 250); /* the null sender */
	for (int i = 0; i < 100; i++)
		assert_int_equal(raw_cmd(fd, "RCPT TO:<many@example.com>", r, sizeof(r)), 250);
	assert_int_equal(raw_cmd(fd, "RCPT TO:<one.too.many@example.com>", r, sizeof(r)), 452);
	assert_int_equal(raw_cmd(fd, "DATA", r, sizeof(r)), 354);
	raw_send(fd, "Subject: by hand");
	raw_send(fd, "");
	raw_send(fd, "..a stuffed dot");
	raw_send(fd, "...");
	assert_int_equal(raw_cmd(fd, ".", r, sizeof(r)), 250);
	assert_non_null(strstr(r, "queued as msg_"));
	assert_int_equal(raw_cmd(fd, "QUIT", r, sizeof(r)), 221);
	assert_int_equal(raw_reply(fd, r, sizeof(r)), -1); /* closed */
	close(fd);
	json_t *v = smtpfix_messages(s, "many@example.com", NULL);
	json_t *m = json_array_get(json_object_get(v, "items"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "body")), ".a stuffed dot\r\n..\r\n");
	assert_string_equal(json_string_value(json_object_get(m, "from")), "");
	assert_int_equal(json_array_size(json_object_get(m, "to")), 100);
	json_decref(v);
}

static void test_too_big(void **state)
{
	smtpfix *s = *state;
	char *big = malloc(2 * 1024 * 1024);
	assert_non_null(big);
	strcpy(big, "Subject: big\r\n\r\n");
	size_t k = strlen(big);
	while (k < 2 * 1024 * 1024 - 200) {
		memcpy(big + k, "0123456789012345678901234567890123456789012345678901234567890123456789\r\n", 72);
		k += 72;
	}
	big[k] = '\0';
	assert_int_not_equal(send_one(s, "ann@example.com", big), 0);
	free(big);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 0);
	/* a raw one past the limit while typing: 552 at the end */
	char r[512];
	int fd = raw_connect(s);
	assert_int_equal(raw_reply(fd, r, sizeof(r)), 220);
	assert_int_equal(raw_cmd(fd, "HELO x", r, sizeof(r)), 250);
	assert_int_equal(raw_cmd(fd, "MAIL FROM:<a@example.com>", r, sizeof(r)), 250);
	assert_int_equal(raw_cmd(fd, "RCPT TO:<x@example.com>", r, sizeof(r)), 250);
	assert_int_equal(raw_cmd(fd, "DATA", r, sizeof(r)), 354);
	char line[8000];
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	raw_send(fd, line); /* one line past LINE_MAX_LEN */
	assert_int_equal(raw_cmd(fd, ".", r, sizeof(r)), 552);
	assert_int_equal(raw_cmd(fd, "QUIT", r, sizeof(r)), 221);
	close(fd);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 0);
	assert_int_equal(stat_of(s, "rejected"), 1);
}

/* ---- faults and outages ------------------------------------------------------------ */

static void test_faults(void **state)
{
	smtpfix *s = *state;
	const char *msg = "Subject: hi\r\n\r\nbody ord_f\r\n";
	char err[300];
	const char *to[1] = { "ann@example.com" };

	smtpfix_fault(s, "{\"outage\":true}");
	assert_int_equal(send_mail(s, to, 1, msg, 5000, err, sizeof(err)), ERR_UNAVAILABLE);
	assert_non_null(strstr(err, "421"));
	assert_true(stat_of(s, "outages") >= 1);

	smtpfix_fault(s, "{\"error_rate\":1.0}");
	assert_int_equal(send_mail(s, to, 1, msg, 5000, err, sizeof(err)), ERR_IO);
	assert_non_null(strstr(err, "451"));
	assert_int_equal(stat_of(s, "faulted"), 1);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 0);

	/* latency on the greeting and on the end of DATA: the exchange waits */
	smtpfix_fault(s, "{\"latency_ms\":150}");
	int64_t t0 = clock_mono_us();
	assert_int_equal(send_mail(s, to, 1, msg, 5000, err, sizeof(err)), 0);
	assert_true(clock_mono_us() - t0 >= 300000);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 1);
	/* more than the client waits: a timeout. The connection of the
	 * message before is used again, so the whole message went out and
	 * only the relay's answer to it was late: the sink kept it, which is
	 * why a timeout means "may have been delivered". */
	smtpfix_fault(s, "{\"latency_ms\":1500}");
	assert_int_equal(send_mail(s, to, 1, msg, 500, err, sizeof(err)), ERR_TIMEOUT);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 2);
	/* on a new connection (a failure drops the old one) the late greeting
	 * times out before anything is handed over */
	assert_int_equal(send_mail(s, to, 1, msg, 500, err, sizeof(err)), ERR_TIMEOUT);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 2);

	smtpfix_fault(s, NULL);
	assert_int_equal(send_mail(s, to, 1, msg, 5000, err, sizeof(err)), 0);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 3);

	/* the fault routes */
	json_t *v = efix_expect(s->f, "PUT", "/admin/faults/smtp", NULL, ADMIN,
				"{\"error_rate\":0.5,\"duration_s\":60}", 200);
	assert_string_equal(json_string_value(json_object_get(v, "target")), "smtp");
	json_decref(v);
	v = efix_expect(s->f, "GET", "/admin/faults", NULL, ADMIN, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(v, "faults")), 1);
	json_decref(v);
	json_decref(efix_expect(s->f, "GET", "/admin/faults/smtp", NULL, ADMIN, NULL, 200));
	efix_assert_error(efix_expect(s->f, "PUT", "/admin/faults/stripe", NULL, ADMIN, "{}", 404),
			  "not_found", "target", "stripe");
	efix_assert_error(efix_expect(s->f, "PUT", "/admin/faults/smtp", NULL, NULL, "{}", 401),
			  "unauthenticated", NULL, NULL);
	efix_assert_error(efix_expect(s->f, "PUT", "/admin/faults/smtp", NULL, ADMIN,
				      "{\"error_rate\":2}", 400),
			  "invalid_argument", "field", "error_rate");
	efix_assert_error(efix_expect(s->f, "POST", "/admin/faults/smtp", NULL, ADMIN, "{}", 405),
			  "method_not_allowed", NULL, NULL);
	/* a fault ends by itself after its duration (the sink's clock) */
	clock_advance(s->f->clock, 61 * 1000000LL);
	v = efix_expect(s->f, "GET", "/admin/faults", NULL, ADMIN, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(v, "faults")), 0);
	json_decref(v);
}

static void test_sink_down(void **state)
{
	smtpfix *s = *state;
	smtpfix_stop(s);
	char err[300];
	const char *to[1] = { "ann@example.com" };
	assert_int_equal(send_mail(s, to, 1, "Subject: x\r\n\r\ny\r\n", 2000, err, sizeof(err)),
			 ERR_UNAVAILABLE);
	smtpfix_start(s);
	assert_int_equal(send_mail(s, to, 1, "Subject: x\r\n\r\ny\r\n", 2000, err, sizeof(err)), 0);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 1);
}

static void test_client_refuses(void **state)
{
	smtpfix *s = *state;
	char err[300];
	const char *bad[1] = { "not an address" };
	const char *good[1] = { "ann@example.com" };
	assert_int_equal(send_mail(s, bad, 1, "x\r\n", 1000, err, sizeof(err)), ERR_INVALID);
	assert_int_equal(send_mail(s, good, 0, "x\r\n", 1000, err, sizeof(err)), ERR_INVALID);
	smtp_message m = { .url = "http://127.0.0.1:1", .from = "a@b.c", .to = good, .nto = 1,
			   .data = "x", .len = 1 };
	assert_int_equal(smtp_client_send(&m, err, sizeof(err)), ERR_INVALID);
	m.url = s->url;
	m.from = "<a@b.c>";
	assert_int_equal(smtp_client_send(&m, err, sizeof(err)), ERR_INVALID);
	assert_int_equal(smtpfix_count(s, NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_message_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_refuses, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
