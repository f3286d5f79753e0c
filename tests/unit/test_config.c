/* Tests of core/config (defaults, file, environment, errors, doc table) and
 * of core/log's JSON lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/test_config_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void **state)
{
	config *c = config_new();
	assert_non_null(c);
	assert_string_equal(config_get(c, "http.host"), "127.0.0.1");
	assert_string_equal(config_get(c, "log.level"), "info");
	assert_string_equal(config_get(c, "store.url"), "");
	assert_string_equal(config_get(c, "bus.url"), "embedded");
	assert_int_equal(config_int(c, "http.body_limit", -1), 65536);
	assert_int_equal(config_int(c, "gateway.port", -1), 8080);
	assert_int_equal(config_int(c, "registry.ttl_ms", -1), 3500);
	assert_int_equal(config_int(c, "engine.tick_ms", -1), 100);
	assert_null(config_get(c, "no.such.key"));

	/* The table: every key documented, every default readable, every
	 * numeric-looking default an integer. */
	const config_def *d = config_defs();
	size_t n = 0;
	for (; d[n].key; n++) {
		assert_non_null(d[n].def);
		assert_non_null(d[n].help);
		assert_true(strlen(d[n].help) > 10);
		assert_non_null(strchr(d[n].key, '.'));
		assert_string_equal(config_get(c, d[n].key), d[n].def);
		for (size_t k = 0; k < n; k++)
			assert_string_not_equal(d[k].key, d[n].key);
	}
	assert_true(n >= 21);
	config_free(c);
	config_free(NULL);
}

static void test_set_and_int(void **state)
{
	config *c = config_new();
	int64_t v = 77;
	assert_int_equal(config_set(c, "http.threads", "8"), 0);
	assert_int_equal(config_get_int(c, "http.threads", &v), 0);
	assert_int_equal(v, 8);
	assert_int_equal(config_set(c, "nope", "1"), ERR_NOT_FOUND);
	assert_int_equal(config_get_int(c, "nope", &v), ERR_NOT_FOUND);

	const char *bad[] = {"", "abc", "12abc", "1.5", "99999999999999999999", "-", " "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(config_set(c, "http.threads", bad[i]), 0);
		v = 77;
		assert_int_equal(config_get_int(c, "http.threads", &v), ERR_PARSE);
		assert_int_equal(v, 77);
		assert_int_equal(config_int(c, "http.threads", 3), 3);
	}
	assert_int_equal(config_set(c, "http.threads", "-12"), 0);
	assert_int_equal(config_int(c, "http.threads", 3), -12);
	assert_int_equal(config_set(c, "http.threads", "9223372036854775807"), 0);
	assert_true(config_int(c, "http.threads", 3) == INT64_MAX);
	/* The value is copied. */
	char buf[8] = "42";
	config_set(c, "http.threads", buf);
	buf[0] = '9';
	assert_string_equal(config_get(c, "http.threads"), "42");
	config_free(c);
}

static void test_file_override(void **state)
{
	const char *path = write_tmp("# platform settings\n"
				     "\n"
				     "http.threads = 4\n"
				     "   gateway.port=9090   \r\n"
				     "log.level = debug # trailing comment\n"
				     "store.url = postgresql://u:p#w@db/ecom\n"
				     "bus.url = \"\"\n"
				     "\t# indented comment\n");
	config *c = config_new();
	char err[256] = "";
	assert_int_equal(config_load_file(c, path, err, sizeof(err)), 0);
	assert_int_equal(config_int(c, "http.threads", 0), 4);
	assert_int_equal(config_int(c, "gateway.port", 0), 9090);
	assert_string_equal(config_get(c, "log.level"), "debug");
	assert_string_equal(config_get(c, "store.url"), "postgresql://u:p#w@db/ecom");
	assert_string_equal(config_get(c, "bus.url"), "");
	/* Keys not in the file keep their defaults. */
	assert_string_equal(config_get(c, "http.host"), "127.0.0.1");
	unlink(path);
	config_free(c);
}

static void test_env_override(void **state)
{
	const char *path = write_tmp("http.body_limit = 1000\nhttp.threads = 4\n");
	config *c = config_new();
	assert_int_equal(config_load_file(c, path, NULL, 0), 0);
	setenv("ECOM_HTTP_BODY_LIMIT", "2048", 1);
	setenv("ECOM_GATEWAY_UPSTREAM_TIMEOUT_MS", "750", 1);
	setenv("ECOM_http_threads", "99", 1); /* not the upper-cased name */
	config_load_env(c);
	assert_int_equal(config_int(c, "http.body_limit", 0), 2048);
	assert_int_equal(config_int(c, "gateway.upstream_timeout_ms", 0), 750);
	assert_int_equal(config_int(c, "http.threads", 0), 4);
	unsetenv("ECOM_HTTP_BODY_LIMIT");
	unsetenv("ECOM_GATEWAY_UPSTREAM_TIMEOUT_MS");
	unsetenv("ECOM_http_threads");
	/* Flags come last: config_set overrides the environment. */
	assert_int_equal(config_set(c, "http.body_limit", "4096"), 0);
	assert_int_equal(config_int(c, "http.body_limit", 0), 4096);
	unlink(path);
	config_free(c);
}

static void test_bad_file(void **state)
{
	config *c = config_new();
	char err[256];
	char want[320];

	const char *path = write_tmp("http.threads = 4\n# ok\nthis line has no equals\n");
	assert_int_equal(config_load_file(c, path, err, sizeof(err)), ERR_PARSE);
	snprintf(want, sizeof(want), "%s:3: expected 'key = value'", path);
	assert_string_equal(err, want);
	/* A failed load changes nothing, not even the good lines before. */
	assert_int_equal(config_int(c, "http.threads", 0), 2);
	unlink(path);

	path = write_tmp("log.level = warn\n\nhttp.thread = 4\n");
	assert_int_equal(config_load_file(c, path, err, sizeof(err)), ERR_PARSE);
	snprintf(want, sizeof(want), "%s:3: unknown key 'http.thread'", path);
	assert_string_equal(err, want);
	assert_string_equal(config_get(c, "log.level"), "info");
	unlink(path);

	path = write_tmp(" = 4\n");
	assert_int_equal(config_load_file(c, path, err, sizeof(err)), ERR_PARSE);
	snprintf(want, sizeof(want), "%s:1: missing key before '='", path);
	assert_string_equal(err, want);
	unlink(path);

	assert_int_equal(config_load_file(c, "/nonexistent/ecom.conf", err, sizeof(err)),
			 ERR_NOT_FOUND);
	assert_non_null(strstr(err, "/nonexistent/ecom.conf"));
	/* A tiny error buffer is truncated, not overrun. */
	char tiny[8];
	assert_int_equal(config_load_file(c, "/nonexistent/ecom.conf", tiny, sizeof(tiny)),
			 ERR_NOT_FOUND);
	assert_int_equal(strlen(tiny), 7);
	config_free(c);
}

static void test_write_doc(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(config_write_doc(f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "| key | default | meaning |\n|---|---|---|\n"));
	assert_non_null(strstr(buf, "| `http.body_limit` | `65536` | "));
	assert_non_null(strstr(buf, "| `store.url` | `\"\"` | "));
	/* "<state>" must survive Markdown rendering. */
	assert_non_null(strstr(buf, "sqlite:&lt;state&gt;/data"));
	/* One row per key plus the two header lines. */
	size_t lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	size_t n = 0;
	while (config_defs()[n].key)
		n++;
	assert_int_equal(lines, n + 2);
	free(buf);
}

/* Reads every line of f as JSON; returns how many, into objs. */
static int read_lines(FILE *f, json_t **objs, int max)
{
	rewind(f);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		assert_true(n < max);
		json_error_t je;
		objs[n] = json_loads(line, 0, &je);
		if (!objs[n])
			fail_msg("line %d is not JSON (%s): %s", n + 1, je.text, line);
		assert_int_equal(line[strlen(line) - 1], '\n');
		n++;
	}
	return n;
}

static void test_log_lines(void **state)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	/* 2026-11-25T23:24:15.123Z */
	clock_src *clk = clock_virtual_new(1795649055123456LL);
	logger *lg = log_new("catalog", f, clk, LOG_INFO);
	assert_non_null(lg);

	log_info(lg, "started on port %d", 8080);
	log_debug(lg, "dropped below min");
	log_msg(lg, LOG_WARN, "4bf92f3577b34da6a3ce929d0e0e4736", "quote \" backslash \\ nl\n tab\t %s",
		"ctl\x01 bad\xff utf8 \xc3\xa9");
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_error(lg, "%s", big);
	log_set_level(lg, LOG_ERROR);
	log_warn(lg, "dropped after set_level");
	log_msg(NULL, LOG_ERROR, NULL, "a NULL logger does nothing");

	json_t *o[8];
	int n = read_lines(f, o, 8);
	assert_int_equal(n, 3);

	assert_string_equal(json_string_value(json_object_get(o[0], "timestamp")),
			    "2026-11-25T23:24:15.123456Z");
	assert_string_equal(json_string_value(json_object_get(o[0], "level")), "info");
	assert_string_equal(json_string_value(json_object_get(o[0], "service")), "catalog");
	assert_string_equal(json_string_value(json_object_get(o[0], "message")), "started on port 8080");
	assert_null(json_object_get(o[0], "trace_id"));
	assert_int_equal(json_object_size(o[0]), 4);

	assert_string_equal(json_string_value(json_object_get(o[1], "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(o[1], "trace_id")),
			    "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(json_string_value(json_object_get(o[1], "message")),
			    "quote \" backslash \\ nl\n tab\t ctl\x01 bad\xef\xbf\xbd utf8 \xc3\xa9");

	assert_string_equal(json_string_value(json_object_get(o[2], "level")), "error");
	assert_string_equal(json_string_value(json_object_get(o[2], "message")), big);

	for (int i = 0; i < n; i++)
		json_decref(o[i]);
	/* Field order is fixed: the timestamp first. */
	rewind(f);
	char first[16] = "";
	assert_non_null(fgets(first, sizeof(first), f));
	assert_memory_equal(first, "{\"timestamp\":\"", 14);

	log_free(lg);
	log_free(NULL);
	clock_free(clk);
	fclose(f);
}

static const trace_ctx *current_of(void *ud) { return ud; }

/* Lines written while a trace is current carry its ids; an explicit trace
 * id wins (and has no span id); without a current trace there are none. */
static void test_log_trace_source(void **state)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	clock_src *clk = clock_virtual_new(1795649055123456LL);
	logger *lg = log_new("order", f, clk, LOG_INFO);
	trace_ctx cur;
	assert_int_equal(trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &cur),
			 0);
	log_set_trace_source(lg, current_of, &cur);
	log_info(lg, "in a request");
	log_msg(lg, LOG_INFO, "0af7651916cd43dd8448eb211c80319c", "explicit");
	trace_ctx none = { { 0 }, { 0 }, 0 };
	log_set_trace_source(lg, current_of, &none);
	log_info(lg, "outside");
	fflush(f);
	rewind(f);
	json_t *o[4];
	assert_int_equal(read_lines(f, o, 4), 3);
	assert_string_equal(json_string_value(json_object_get(o[0], "trace_id")),
			    "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(json_string_value(json_object_get(o[0], "span_id")), "00f067aa0ba902b7");
	assert_string_equal(json_string_value(json_object_get(o[1], "trace_id")),
			    "0af7651916cd43dd8448eb211c80319c");
	assert_null(json_object_get(o[1], "span_id"));
	assert_null(json_object_get(o[2], "trace_id"));
	assert_null(json_object_get(o[2], "span_id"));
	for (int i = 0; i < 3; i++)
		json_decref(o[i]);
	log_free(lg);
	clock_free(clk);
	fclose(f);
}

static void test_log_level_parse(void **state)
{
	assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
	assert_int_equal(log_level_parse("info"), LOG_INFO);
	assert_int_equal(log_level_parse("warn"), LOG_WARN);
	assert_int_equal(log_level_parse("error"), LOG_ERROR);
	assert_int_equal(log_level_parse("ERROR"), LOG_ERROR);
	assert_int_equal(log_level_parse("verbose"), -1);
	assert_int_equal(log_level_parse(""), -1);
	assert_int_equal(log_level_parse(NULL), -1);
}

/* doc/configuration.md must hold exactly the table config_write_doc()
 * generates, so the documented defaults cannot drift from the code. */
static void test_doc_in_sync(void **state)
{
	(void)state;
	const char *data = getenv("ECOM_DATA");
	char path[1024];
	snprintf(path, sizeof(path), "%s/../doc/configuration.md", data && *data ? data : "data");
	FILE *f = fopen(path, "r");
	if (!f)
		skip();
	static char doc[65536];
	size_t n = fread(doc, 1, sizeof(doc) - 1, f);
	doc[n] = '\0';
	fclose(f);
	char *table = NULL;
	size_t tlen = 0;
	FILE *m = open_memstream(&table, &tlen);
	assert_int_equal(config_write_doc(m), 0);
	fclose(m);
	assert_non_null(strstr(doc, table));
	free(table);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),      cmocka_unit_test(test_set_and_int),
		cmocka_unit_test(test_file_override), cmocka_unit_test(test_env_override),
		cmocka_unit_test(test_bad_file),      cmocka_unit_test(test_write_doc),
		cmocka_unit_test(test_log_lines), cmocka_unit_test(test_log_trace_source),     cmocka_unit_test(test_log_level_parse),
		cmocka_unit_test(test_doc_in_sync),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
