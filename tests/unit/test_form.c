/* Tests for net/form: encoding (unreserved characters kept, everything else
 * %XX), decoding ('+', escapes, empty segments, missing '='), the refusals
 * (bad escapes, NUL, empty names, too many pairs) and the round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "net/form.h"

static void test_encode(void **state)
{
	form f;
	form_init(&f);
	char *s = form_encode(&f);
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(form_add(&f, "amount", "1999"), 0);
	assert_int_equal(form_add(&f, "payment_method", "tok visa&x=1+2"), 0);
	assert_int_equal(form_add(&f, "metadata[order_id]", "o-1.2_3~"), 0);
	assert_int_equal(form_add(&f, "note", "caf\xc3\xa9/%"), 0);
	assert_int_equal(form_add(&f, "empty", ""), 0);
	s = form_encode(&f);
	assert_string_equal(s, "amount=1999&payment_method=tok%20visa%26x%3D1%2B2"
			       "&metadata%5Border_id%5D=o-1.2_3~&note=caf%C3%A9%2F%25&empty=");
	free(s);
	assert_int_equal(form_add(&f, "", "x"), ERR_INVALID);
	assert_int_equal(form_add(&f, NULL, "x"), ERR_INVALID);
	assert_int_equal(form_add(&f, "x", NULL), ERR_INVALID);
	assert_int_equal(f.n, 5);
	form_clear(&f);
	assert_int_equal(f.n, 0);
	form_clear(&f); /* twice is fine */
}

static void test_parse(void **state)
{
	form f;
	form_init(&f);
	const char *b = "a=1&b=two+words&&c=%41%2b%26&d&e=&a=again";
	assert_int_equal(form_parse(&f, b, strlen(b), 100), 0);
	assert_int_equal(f.n, 6);
	assert_string_equal(form_get(&f, "a"), "1");
	assert_string_equal(form_get(&f, "b"), "two words");
	assert_string_equal(form_get(&f, "c"), "A+&");
	assert_string_equal(form_get(&f, "d"), "");
	assert_string_equal(form_get(&f, "e"), "");
	assert_null(form_get(&f, "z"));
	assert_int_equal(form_count(&f, "a"), 2);
	assert_string_equal(f.fields[5].value, "again");
	/* Only len bytes are read. */
	form_clear(&f);
	assert_int_equal(form_parse(&f, "x=1&y=2", 3, 100), 0);
	assert_int_equal(f.n, 1);
	assert_string_equal(form_get(&f, "x"), "1");
	form_clear(&f);
	assert_int_equal(form_parse(&f, "", 0, 100), 0);
	assert_int_equal(f.n, 0);
	assert_int_equal(form_parse(&f, NULL, 0, 100), 0);
	form_clear(&f);
}

static void test_parse_refusals(void **state)
{
	form f;
	form_init(&f);
	assert_int_equal(form_add(&f, "keep", "me"), 0);
	const char *bad[] = { "a=%4", "a=%zz", "a=%", "a=1&b=%00", "=1", "a=1&=2", "%4=1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(form_parse(&f, bad[i], strlen(bad[i]), 100), ERR_PARSE);
		assert_int_equal(f.n, 1); /* nothing of a refused body stays */
	}
	assert_int_equal(form_parse(&f, "a=1&b=2&c=3", 11, 3), ERR_TOO_LARGE);
	assert_int_equal(f.n, 1);
	assert_int_equal(form_parse(&f, "a=1&b=2", 7, 3), 0);
	assert_int_equal(f.n, 3);
	assert_string_equal(form_get(&f, "keep"), "me");
	form_clear(&f);
}

static void test_round_trip(void **state)
{
	form a, b;
	form_init(&a);
	form_init(&b);
	char all[256];
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	assert_int_equal(form_add(&a, "bytes", all), 0);
	assert_int_equal(form_add(&a, "k=&+", "v =&+%"), 0);
	char *s = form_encode(&a);
	assert_non_null(s);
	assert_null(strpbrk(s + strlen("bytes="), " +"));
	assert_int_equal(form_parse(&b, s, strlen(s), 10), 0);
	assert_int_equal(b.n, 2);
	assert_string_equal(form_get(&b, "bytes"), all);
	assert_string_equal(form_get(&b, "k=&+"), "v =&+%");
	free(s);
	form_clear(&a);
	form_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
