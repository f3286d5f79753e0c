/* Integration: the README's first command's demo, `ecom demo
 * payment-outage`, shortened to 20 s: it starts its own platform in a
 * scratch directory, seeds it, runs the scenario while narrating it (Stripe
 * down, the order->payment breaker opening, orders waiting for payment, the
 * queue drained once Stripe is back), prints the summary and the audit,
 * every threshold and invariant holds, it exits 0, and nothing of the
 * platform is left: the scratch directory is gone and no process of it
 * runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

static char tmp[64] = "/tmp/ecom-demo-test-XXXXXX";

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	if (d)
		closedir(d);
	return n;
}

/* The pid of the line "... gateway-1 PID ..." of `ecom status` in out. */
static long status_pid(const char *out, const char *id)
{
	const char *at = strstr(out, id);
	return at ? strtol(at + strlen(id), NULL, 10) : 0;
}

static void test_default_demo(void **unused)
{
	const char *b = getenv("ECOM_BIN");
	snprintf(IT.bin, sizeof(IT.bin), "%s", b && *b ? b : "./ecom");
	assert_non_null(mkdtemp(tmp));
	setenv("TMPDIR", tmp, 1);
	/* Cheap password hashes for the scenario's users. */
	itest_cheap_passwords();
	char *out = NULL, *err = NULL;
	int rc = itest_run(&out, &err, "demo", "payment-outage", "--duration", "20s", NULL);
	if (rc != 0)
		fail_msg("ecom demo: exit %d\n%s\n%s", rc, out, err);
	static const char *const told[] = {
		"▶ fault set stripe outage",   "stripe down",
		"breaker order→payment OPEN", "AWAITING_PAYMENT",
		"▶ fault clear stripe",        "no order AWAITING_PAYMENT any more",
		"✓ audit_failures == 0",       "✓ orders_lost == 0",
		"✓ payments_have_orders",      "audit: every invariant holds",
		"every check passed",
	};
	for (size_t i = 0; i < sizeof(told) / sizeof(told[0]); i++)
		if (!strstr(out, told[i]))
			fail_msg("the demo did not say \"%s\":\n%s", told[i], out);
	/* Stopped and cleaned up: its scratch state directory is gone, and so
	 * are its processes. */
	assert_int_equal(entries(tmp), 0);
	long gw = status_pid(out, "gateway-1"), order = status_pid(out, "order-1");
	assert_true(gw > 0 && order > 0);
	assert_false(itest_alive((pid_t)gw));
	assert_false(itest_alive((pid_t)order));
	free(out);
	free(err);
	rmdir(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_demo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
