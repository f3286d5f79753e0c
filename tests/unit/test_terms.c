/* Tests for services/terms: the tokenizer splits exactly as SQLite FTS5's
 * ascii tokenizer does (checked against FTS5 itself through fts5vocab),
 * keys, trigrams and the bounded edit distance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "services/terms.h"
#include "store/store.h"

static const char *const TEXTS[] = {
	"Hello, World! 4K TV",
	"Caf\xc3\xa9 CR\xc3\x88ME br\xc3\xbbl\xc3\xa9" "e",
	"a-b_c.d  e\tf\ng",
	"x\"y*z:(NEAR) {name}: AND OR NOT ^start",
	"\xc3\x80\xc3\x89 mixed123ABC don't",
	"",
	"   ...   ",
	"USB-C Charger 65W; 27-inch 4K Monitor (2 pack)",
	"\xe2\x80\x94 em\xe2\x80\x94" "dash \xf0\x9f\x98\x80 emoji",
};

/* FTS5's own tokens of text, in order, joined by '|'. */
static void fts5_tokens(store *s, const char *text, char *out, size_t len)
{
	assert_int_equal(store_exec(s, "DELETE FROM t"), 0);
	int err = 0;
	store_stmt *st = store_prepare(s, "INSERT INTO t (rowid, x) VALUES (1, ?)", &err);
	assert_non_null(st);
	store_bind_text(st, 1, text);
	assert_true(store_step(st) >= 0);
	store_reset(st);
	st = store_prepare(s, "SELECT term FROM v ORDER BY \"offset\"", &err);
	assert_non_null(st);
	size_t n = 0;
	out[0] = '\0';
	while (store_step(st) == STORE_ROW)
		n += (size_t)snprintf(out + n, len - n, "%s%s", n ? "|" : "", store_col_text(st, 0));
	store_reset(st);
}

static void test_same_tokens_as_fts5(void **unused)
{
	(void)unused;
	char err[256];
	store *s = store_open("sqlite::memory:", "terms", NULL, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_exec(s, "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='ascii');"
				       "CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')"),
			 0);
	terms_list l;
	terms_list_init(&l);
	for (size_t i = 0; i < sizeof(TEXTS) / sizeof(TEXTS[0]); i++) {
		char want[1024], got[1024];
		fts5_tokens(s, TEXTS[i], want, sizeof(want));
		terms_list_reset(&l);
		assert_int_equal(terms_split(&l, TEXTS[i], strlen(TEXTS[i])), 0);
		size_t n = 0;
		got[0] = '\0';
		for (size_t k = 0; k < l.n; k++)
			n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", k ? "|" : "",
					      terms_at(&l, k));
		if (strcmp(want, got) != 0)
			fail_msg("text %zu: fts5 [%s], terms [%s]", i, want, got);
	}
	terms_list_free(&l);
	store_free(s);
}

static void test_split_appends_and_keys(void **unused)
{
	(void)unused;
	terms_list a, b;
	terms_list_init(&a);
	terms_list_init(&b);
	assert_int_equal(terms_split(&a, "Bluetooth", 9), 0);
	assert_int_equal(terms_split(&a, "  SPEAKER!", 10), 0);
	assert_int_equal(a.n, 2);
	assert_string_equal(terms_at(&a, 0), "bluetooth");
	assert_string_equal(terms_at(&a, 1), "speaker");
	assert_int_equal(terms_split(&b, "bluetooth-speaker", 17), 0);
	assert_true(terms_key(&a, 0) == terms_key(&b, 0));
	assert_true(terms_key(&a, 0) >= 0);
	terms_list_reset(&b);
	assert_int_equal(terms_split(&b, "speaker bluetooth", 17), 0);
	assert_true(terms_key(&a, 0) != terms_key(&b, 0));
	terms_list_reset(&b);
	assert_int_equal(terms_split(&b, "bluetoothspeaker", 16), 0);
	assert_true(terms_key(&a, 0) != terms_key(&b, 0));
	/* many tokens: the buffers grow */
	terms_list_reset(&b);
	for (int i = 0; i < 500; i++)
		assert_int_equal(terms_split(&b, "word ", 5), 0);
	assert_int_equal(b.n, 500);
	assert_string_equal(terms_at(&b, 499), "word");
	terms_list_free(&a);
	terms_list_free(&b);
}

static void test_trigrams(void **unused)
{
	(void)unused;
	char t[TERMS_TRIGRAM_MAX][4];
	assert_int_equal(terms_trigrams("tea", t, TERMS_TRIGRAM_MAX), 3);
	assert_string_equal(t[0], "$te");
	assert_string_equal(t[1], "tea");
	assert_string_equal(t[2], "ea$");
	/* distinct only */
	assert_int_equal(terms_trigrams("aaaa", t, TERMS_TRIGRAM_MAX), 3); /* $aa aaa aa$ */
	assert_int_equal(terms_trigrams("a", t, TERMS_TRIGRAM_MAX), 1);
	assert_string_equal(t[0], "$a$");
	assert_int_equal(terms_trigrams("", t, TERMS_TRIGRAM_MAX), 0);
	assert_int_equal(terms_trigrams("headphones", t, 4), 4);
	char longw[200];
	memset(longw, 'x', sizeof(longw) - 1);
	longw[sizeof(longw) - 1] = '\0';
	assert_true(terms_trigrams(longw, t, TERMS_TRIGRAM_MAX) <= TERMS_TRIGRAM_MAX);
}

static void test_correctable_and_budget(void **unused)
{
	(void)unused;
	assert_true(terms_correctable("headphones"));
	assert_false(terms_correctable("ab"));
	assert_false(terms_correctable("4k"));
	assert_false(terms_correctable("usb3"));
	assert_false(terms_correctable("caf\xc3\xa9"));
	assert_false(terms_correctable("abcdefghijklmnopqrstuvwxyzabcdefg"));
	assert_int_equal(terms_typo_budget(4), 1);
	assert_int_equal(terms_typo_budget(5), 1);
	assert_int_equal(terms_typo_budget(6), 2);
}

static void test_distance(void **unused)
{
	(void)unused;
	assert_int_equal(terms_distance("kitten", "kitten", 2), 0);
	assert_int_equal(terms_distance("headphones", "headphnes", 2), 1);  /* deletion */
	assert_int_equal(terms_distance("headphones", "headpohnes", 2), 1); /* transposition */
	assert_int_equal(terms_distance("skillet", "skilet", 2), 1);
	assert_int_equal(terms_distance("hose", "hoze", 1), 1);
	assert_int_equal(terms_distance("kitten", "sitting", 3), 3);
	assert_int_equal(terms_distance("kitten", "sitting", 2), 3); /* past max: max + 1 */
	assert_int_equal(terms_distance("ab", "abcdef", 2), 3);
	assert_int_equal(terms_distance("", "abc", 5), 3);
	assert_int_equal(terms_distance("abc", "", 1), 2);
	assert_int_equal(terms_distance("ca", "abc", 3), 3); /* OSA, not Damerau */
	char a[100], b[100];
	memset(a, 'a', 99);
	a[99] = '\0';
	memcpy(b, a, sizeof(b));
	assert_int_equal(terms_distance(a, b, 2), 0);
	b[0] = 'b';
	assert_int_equal(terms_distance(a, b, 2), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_tokens_as_fts5),
		cmocka_unit_test(test_split_appends_and_keys),
		cmocka_unit_test(test_trigrams),
		cmocka_unit_test(test_correctable_and_budget),
		cmocka_unit_test(test_distance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
