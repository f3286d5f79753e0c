/* Tests of core/jval: body parsing and field validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/jval.h"

static json_t *parse(const char *s, jval_error *e) { return jval_parse_object(s, strlen(s), e); }

static void test_parse_object(void **state)
{
	jval_error e = {0};
	json_t *o = parse("{\"a\": 1, \"b\": \"x\"}", &e);
	assert_non_null(o);
	assert_true(json_is_object(o));
	assert_int_equal(json_object_size(o), 2);
	json_decref(o);

	/* Only the first len bytes count. */
	o = jval_parse_object("{}garbage", 2, &e);
	assert_non_null(o);
	json_decref(o);
}

static void expect_body_error(const char *buf, size_t len)
{
	jval_error e;
	memset(&e, 0, sizeof(e));
	json_t *o = jval_parse_object(buf, len, &e);
	if (o) {
		json_decref(o);
		fail_msg("accepted %.*s", (int)len, buf);
	}
	assert_string_equal(e.field, "body");
	assert_true(strlen(e.message) > 0);
}

static void test_parse_rejects(void **state)
{
	const char *bad[] = {
		"",
		"   ",
		"[1,2]",
		"\"str\"",
		"42",
		"null",
		"{",
		"{\"a\":}",
		"{\"a\":1} trailing",
		"{\"a\":1,\"a\":2}",              /* duplicate keys */
		"{\"a\":\"x\\u0000y\"}",          /* escaped NUL */
		"{\"a\":\"\xff\"}",               /* invalid UTF-8 */
		"{\"a\":99999999999999999999999}", /* overflowing integer */
		"{'a':1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_body_error(bad[i], strlen(bad[i]));
	/* A raw NUL byte inside and after the document. */
	expect_body_error("{\"a\":\"x\0y\"}", 11);
	expect_body_error("{\"a\":1}\0", 8);
	expect_body_error(NULL, 0);

	/* The message does not echo client input back. */
	jval_error e;
	assert_null(parse("{\"a\": secretjunk}", &e));
	assert_null(strstr(e.message, "secretjunk"));
	assert_non_null(strstr(e.message, "invalid JSON"));
	assert_null(parse("[1]", &e));
	assert_string_equal(e.message, "must be a JSON object");
}

static void test_str(void **state)
{
	jval_error e = {0};
	json_t *o = parse("{\"name\":\"Ada\",\"n\":5,\"empty\":\"\",\"nul\":null,"
			  "\"uni\":\"\xc3\xa9t\xc3\xa9\"}",
			  &e);
	assert_non_null(o);
	const char *s = "sentinel";
	assert_int_equal(jval_str(o, "name", 1, 1, 10, &s, &e), 0);
	assert_string_equal(s, "Ada");

	/* Optional and absent: 0 and NULL. */
	s = "sentinel";
	assert_int_equal(jval_str(o, "missing", 0, 1, 10, &s, &e), 0);
	assert_null(s);
	/* null counts as absent. */
	s = "sentinel";
	assert_int_equal(jval_str(o, "nul", 0, 1, 10, &s, &e), 0);
	assert_null(s);

	/* Required and absent. */
	memset(&e, 0, sizeof(e));
	assert_int_equal(jval_str(o, "missing", 1, 1, 10, &s, &e), ERR_INVALID);
	assert_string_equal(e.field, "missing");
	assert_string_equal(e.message, "is required");
	assert_int_equal(jval_str(o, "nul", 1, 1, 10, &s, &e), ERR_INVALID);
	assert_string_equal(e.message, "is required");

	/* Wrong type. */
	assert_int_equal(jval_str(o, "n", 1, 0, 10, &s, &e), ERR_INVALID);
	assert_string_equal(e.field, "n");
	assert_string_equal(e.message, "must be a string");

	/* Length bounds, in bytes. */
	assert_int_equal(jval_str(o, "name", 1, 4, 10, &s, &e), ERR_INVALID);
	assert_string_equal(e.message, "must be between 4 and 10 bytes long");
	assert_int_equal(jval_str(o, "name", 1, 0, 2, &s, &e), ERR_INVALID);
	assert_string_equal(e.message, "must be at most 2 bytes long");
	assert_int_equal(jval_str(o, "empty", 1, 1, 10, &s, &e), ERR_INVALID);
	assert_string_equal(e.message, "must not be empty");
	assert_int_equal(jval_str(o, "empty", 1, 0, 10, &s, &e), 0);
	assert_string_equal(s, "");
	/* "été" is 3 characters but 5 bytes. */
	assert_int_equal(jval_str(o, "uni", 1, 5, 5, &s, &e), 0);
	assert_int_equal(jval_str(o, "uni", 1, 0, 4, &s, &e), ERR_INVALID);
	assert_int_equal(jval_str(o, "name", 1, 3, 3, &s, &e), 0);
	assert_int_equal(jval_str(o, "name", 1, 5, SIZE_MAX, &s, &e), ERR_INVALID);
	assert_string_equal(e.message, "must be at least 5 bytes long");

	/* Strings built in code bypass jansson's checks; jval_str does not. */
	json_object_set_new(o, "raw", json_stringn_nocheck("a\0b", 3));
	assert_int_equal(jval_str(o, "raw", 1, 0, 10, &s, &e), ERR_INVALID);
	assert_string_equal(e.field, "raw");
	json_object_set_new(o, "bad", json_string_nocheck("\xc0\xaf"));
	assert_int_equal(jval_str(o, "bad", 1, 0, 10, &s, &e), ERR_INVALID);

	/* A non-object: every field is absent. */
	json_t *arr = json_array();
	assert_int_equal(jval_str(arr, "x", 1, 0, 10, &s, &e), ERR_INVALID);
	assert_int_equal(jval_str(arr, "x", 0, 0, 10, &s, &e), 0);
	json_decref(arr);
	json_decref(o);
}

static void test_int(void **state)
{
	jval_error e = {0};
	json_t *o = parse("{\"price_cents\":1999,\"neg\":-5,\"real\":1.5,\"str\":\"12\","
			  "\"bool\":true,\"big\":9223372036854775807,\"nul\":null}",
			  &e);
	assert_non_null(o);
	int64_t v = -1;
	int present = -1;
	assert_int_equal(jval_int(o, "price_cents", 1, 0, 100000000, &v, &present, &e), 0);
	assert_int_equal(v, 1999);
	assert_int_equal(present, 1);

	/* Optional absent: 0, present 0, *out untouched (a preset default). */
	v = 20;
	assert_int_equal(jval_int(o, "page_size", 0, 1, 100, &v, &present, &e), 0);
	assert_int_equal(present, 0);
	assert_int_equal(v, 20);
	assert_int_equal(jval_int(o, "nul", 0, 1, 100, &v, NULL, &e), 0);
	assert_int_equal(v, 20);

	memset(&e, 0, sizeof(e));
	assert_int_equal(jval_int(o, "page_size", 1, 1, 100, &v, &present, &e), ERR_INVALID);
	assert_string_equal(e.field, "page_size");
	assert_string_equal(e.message, "is required");

	/* Range. */
	assert_int_equal(jval_int(o, "neg", 1, 0, 100000000, &v, NULL, &e), ERR_INVALID);
	assert_string_equal(e.field, "neg");
	assert_string_equal(e.message, "must be an integer between 0 and 100000000");
	assert_int_equal(v, 20);
	assert_int_equal(jval_int(o, "price_cents", 1, 0, 1998, &v, NULL, &e), ERR_INVALID);
	assert_int_equal(jval_int(o, "price_cents", 1, 1999, 1999, &v, NULL, &e), 0);
	assert_int_equal(jval_int(o, "big", 1, INT64_MIN, INT64_MAX, &v, NULL, &e), 0);
	assert_true(v == INT64_MAX);

	/* Types: reals, strings, booleans are errors, with the field named. */
	const char *wrong[] = {"real", "str", "bool"};
	for (int i = 0; i < 3; i++) {
		memset(&e, 0, sizeof(e));
		present = 0;
		assert_int_equal(jval_int(o, wrong[i], 1, 0, 100000000, &v, &present, &e), ERR_INVALID);
		assert_string_equal(e.field, wrong[i]);
		assert_string_equal(e.message, "must be an integer between 0 and 100000000");
		assert_int_equal(present, 1);
	}
	assert_int_equal(jval_int(o, "real", 1, INT64_MIN, INT64_MAX, &v, NULL, &e), ERR_INVALID);
	assert_string_equal(e.message, "must be an integer");
	json_decref(o);
}

static void test_fail_and_dump(void **state)
{
	jval_error e;
	assert_int_equal(jval_fail(&e, "quantity", "must be at most %d", 99), ERR_INVALID);
	assert_string_equal(e.field, "quantity");
	assert_string_equal(e.message, "must be at most 99");
	/* Long inputs are truncated, not overflowed. */
	char longname[300];
	memset(longname, 'f', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	jval_fail(&e, longname, "%s", longname);
	assert_int_equal(strlen(e.field), sizeof(e.field) - 1);
	assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
	assert_int_equal(jval_fail(NULL, "x", "y"), ERR_INVALID);

	json_t *v = json_pack("{s:i, s:s, s:[i,i]}", "a", 1, "b", "x\"y", "c", 2, 3);
	char *s = jval_dump(v);
	assert_non_null(s);
	assert_string_equal(s, "{\"a\":1,\"b\":\"x\\\"y\",\"c\":[2,3]}");
	free(s);
	json_decref(v);
	/* Any value, not only containers. */
	v = json_integer(7);
	s = jval_dump(v);
	assert_string_equal(s, "7");
	free(s);
	json_decref(v);
	assert_null(jval_dump(NULL));
}

/* {"a": followed by n-1 nested arrays: n levels in all. */
static char *nested(int n, const char *inner)
{
	size_t cap = 16 + 2 * (size_t)n + strlen(inner);
	char *s = malloc(cap);
	assert_non_null(s);
	size_t k = 0;
	k += (size_t)sprintf(s, "{\"a\":");
	for (int i = 1; i < n; i++)
		s[k++] = '[';
	k += (size_t)sprintf(s + k, "%s", inner);
	for (int i = 1; i < n; i++)
		s[k++] = ']';
	s[k++] = '}';
	s[k] = '\0';
	return s;
}

static void expect_too_deep(const char *buf)
{
	jval_error e;
	memset(&e, 0, sizeof(e));
	json_t *o = jval_parse_object(buf, strlen(buf), &e);
	if (o) {
		json_decref(o);
		fail_msg("accepted a body nested too deep");
	}
	assert_string_equal(e.field, "body");
	assert_string_equal(e.message, "nested deeper than 32 levels");
}

static void test_depth_limit(void **state)
{
	assert_int_equal(JVAL_MAX_DEPTH, 32);
	jval_error e = {0};

	/* exactly 32 levels (the object and 31 arrays) parse */
	char *s = nested(JVAL_MAX_DEPTH, "1");
	json_t *o = parse(s, &e);
	assert_non_null(o);
	json_t *v = json_object_get(o, "a");
	for (int i = 2; i < JVAL_MAX_DEPTH; i++)
		v = json_array_get(v, 0);
	assert_true(json_is_array(v));
	assert_int_equal(json_integer_value(json_array_get(v, 0)), 1);
	json_decref(o);
	free(s);

	/* 33 do not, with arrays or with objects */
	s = nested(JVAL_MAX_DEPTH + 1, "1");
	expect_too_deep(s);
	free(s);
	s = nested(JVAL_MAX_DEPTH, "{}");
	expect_too_deep(s);
	free(s);
	s = nested(JVAL_MAX_DEPTH - 1, "{}");
	o = parse(s, &e);
	assert_non_null(o);
	json_decref(o);
	free(s);

	/* depth, not count: many shallow siblings are fine */
	char wide[4096];
	size_t k = (size_t)sprintf(wide, "{\"a\":[");
	for (int i = 0; i < 500; i++)
		k += (size_t)sprintf(wide + k, "%s[]", i ? "," : "");
	sprintf(wide + k, "]}");
	o = parse(wide, &e);
	assert_non_null(o);
	assert_int_equal(json_array_size(json_object_get(o, "a")), 500);
	json_decref(o);

	/* a hostile depth is refused by the scan, quickly and by depth */
	s = nested(100000, "1");
	expect_too_deep(s);
	free(s);
	/* unbalanced: still judged by how deep it gets */
	char open[200];
	memset(open, '[', sizeof(open) - 1);
	open[0] = '{';
	open[sizeof(open) - 1] = '\0';
	expect_too_deep(open);
}

static void test_depth_ignores_strings(void **state)
{
	jval_error e = {0};
	/* brackets inside strings, keys included, are text */
	char inner[200];
	memset(inner, '[', 100);
	memset(inner + 100, '{', 99);
	inner[199] = '\0';
	char buf[512];
	snprintf(buf, sizeof(buf), "{\"%s\":\"%s\",\"b\":[[1]]}", inner, inner);
	json_t *o = parse(buf, &e);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, inner)), inner);
	json_decref(o);

	/* an escaped quote does not end the string... */
	snprintf(buf, sizeof(buf), "{\"a\":\"\\\"%s\",\"b\":1}", inner);
	o = parse(buf, &e);
	assert_non_null(o);
	json_decref(o);

	/* ...but an escaped backslash before the quote does, so brackets after
	 * it count */
	char *deep = nested(JVAL_MAX_DEPTH + 1, "1");
	snprintf(buf, sizeof(buf), "{\"x\":\"a\\\\\",\"y\":%s}", deep);
	free(deep);
	expect_too_deep(buf);
	deep = nested(JVAL_MAX_DEPTH - 1, "1");
	snprintf(buf, sizeof(buf), "{\"x\":\"a\\\\\",\"y\":%s}", deep);
	free(deep);
	o = parse(buf, &e);
	assert_non_null(o);
	json_decref(o);

	/* closing brackets in a string do not lower the count either */
	char closers[64];
	memset(closers, ']', 40);
	memset(closers + 40, '}', 10);
	closers[50] = '\0';
	char deep33[200];
	memset(deep33, '[', JVAL_MAX_DEPTH);
	deep33[JVAL_MAX_DEPTH] = '1';
	memset(deep33 + JVAL_MAX_DEPTH + 1, ']', JVAL_MAX_DEPTH);
	deep33[2 * JVAL_MAX_DEPTH + 1] = '\0';
	snprintf(buf, sizeof(buf), "{\"s\":\"%s\",\"a\":%s}", closers, deep33);
	expect_too_deep(buf);
	/* one level less is fine */
	snprintf(buf, sizeof(buf), "{\"s\":\"%s\",\"a\":%s}", closers, deep33 + 1);
	buf[strlen(buf) - 2] = '}';
	buf[strlen(buf) - 1] = '\0';
	o = parse(buf, &e);
	if (!o)
		fail_msg("refused %s: %s", buf, e.message);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_object), cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_str),          cmocka_unit_test(test_int),
		cmocka_unit_test(test_fail_and_dump),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_depth_ignores_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
