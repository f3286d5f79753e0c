/* Tests for services/identity: the gateway's signed X-Ecom-Identity value.
 * Round trips for every role, tampering with each field, the wrong secret,
 * the age window and its boundaries, what signing refuses, and malformed
 * values - some of them signed here by hand with the right secret, to show
 * that a valid MAC over the wrong shape is still refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "services/identity.h"

#define SECRET "s3rvice-secret-for-tests"
#define NOW 1795650209000000LL
#define MAX_AGE (60 * 1000000LL)

static identity make(enum identity_role role, const char *sub)
{
	identity id;
	memset(&id, 0, sizeof(id));
	id.role = role;
	snprintf(id.sub, sizeof(id.sub), "%s", sub);
	return id;
}

/* body + ";sig=" + HMAC-SHA256(secret, body) in lower-case hex, written
 * independently of identity.c. */
static void hand_sign(const char *secret, const char *body, char *out, size_t len)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
	crypto_auth_hmacsha256_final(&st, mac);
	char hex[65];
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	snprintf(out, len, "%s;sig=%s", body, hex);
}

static int verify(const char *value, int64_t now, identity *out)
{
	return identity_verify(SECRET, value, now, MAX_AGE, out);
}

static void assert_zeroed(const identity *id)
{
	assert_int_equal(id->role, IDENTITY_ANONYMOUS);
	assert_int_equal(id->sub[0], '\0');
}

static void test_role_names(void **state)
{
	assert_string_equal(identity_role_name(IDENTITY_ANONYMOUS), "anonymous");
	assert_string_equal(identity_role_name(IDENTITY_USER), "user");
	assert_string_equal(identity_role_name(IDENTITY_ADMIN), "admin");
	assert_string_equal(identity_role_name(IDENTITY_SERVICE), "service");
	assert_string_equal(identity_role_name((enum identity_role)42), "unknown");
	assert_string_equal(identity_role_name((enum identity_role)-1), "unknown");
}

static void test_round_trip_each_role(void **state)
{
	static const struct {
		enum identity_role role;
		const char *sub;
	} cases[] = {
		{ IDENTITY_ANONYMOUS, "" },
		{ IDENTITY_USER, "usr_3f9a0c1d2b4e5f60" },
		{ IDENTITY_ADMIN, "admin" },
		{ IDENTITY_SERVICE, "catalog" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		identity id = make(cases[i].role, cases[i].sub), out;
		char buf[IDENTITY_MAX];
		assert_int_equal(identity_sign(SECRET, &id, NOW, buf, sizeof(buf)), 0);
		/* the documented shape */
		char prefix[128];
		snprintf(prefix, sizeof(prefix), "v1;role=%s;sub=%s;ts=%lld;sig=",
			 identity_role_name(cases[i].role), cases[i].sub, NOW);
		assert_int_equal(strncmp(buf, prefix, strlen(prefix)), 0);
		const char *hex = buf + strlen(prefix);
		assert_int_equal(strlen(hex), 64);
		assert_int_equal(strspn(hex, "0123456789abcdef"), 64);
		/* and the same MAC an independent implementation computes */
		char expect[IDENTITY_MAX];
		char body[128];
		snprintf(body, sizeof(body), "%.*s", (int)(strlen(prefix) - 5), prefix);
		hand_sign(SECRET, body, expect, sizeof(expect));
		assert_string_equal(buf, expect);

		memset(&out, 0x5a, sizeof(out));
		assert_int_equal(verify(buf, NOW, &out), 0);
		assert_int_equal(out.role, cases[i].role);
		assert_string_equal(out.sub, cases[i].sub);
	}
}

static void test_longest_sub(void **state)
{
	char sub[64];
	memset(sub, 'u', 63);
	sub[63] = '\0';
	identity id = make(IDENTITY_USER, sub), out;
	char buf[IDENTITY_MAX];
	assert_int_equal(identity_sign(SECRET, &id, NOW, buf, sizeof(buf)), 0);
	assert_int_equal(verify(buf, NOW, &out), 0);
	assert_string_equal(out.sub, sub);

	/* a 64-byte sub cannot come from identity_sign; signed by hand it is
	 * still refused rather than cut */
	char body[200], val[300];
	snprintf(body, sizeof(body), "v1;role=user;sub=%sX;ts=%lld", sub, NOW);
	hand_sign(SECRET, body, val, sizeof(val));
	assert_int_equal(verify(val, NOW, &out), ERR_UNAUTH);
	assert_zeroed(&out);
}

static void test_tampered(void **state)
{
	identity id = make(IDENTITY_USER, "usr_aaaa"), out;
	char good[IDENTITY_MAX];
	assert_int_equal(identity_sign(SECRET, &id, NOW, good, sizeof(good)), 0);
	assert_int_equal(verify(good, NOW, &out), 0);

	/* role raised to admin, sub swapped, ts moved: each breaks the MAC */
	static const char *const edits[][2] = {
		{ "role=user", "role=admin" },
		{ "role=user", "role=service" },
		{ "sub=usr_aaaa", "sub=usr_aaab" },
		{ "sub=usr_aaaa", "sub=admin" },
		{ "sub=usr_aaaa", "sub=usr_aaaa " },
		{ "ts=1795650209000000", "ts=1795650209000001" },
		{ "ts=1795650209000000", "ts=01795650209000000" },
		{ "v1;", "v2;" },
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char t[IDENTITY_MAX + 16];
		const char *at = strstr(good, edits[i][0]);
		assert_non_null(at);
		snprintf(t, sizeof(t), "%.*s%s%s", (int)(at - good), good, edits[i][1],
			 at + strlen(edits[i][0]));
		memset(&out, 0x5a, sizeof(out));
		if (verify(t, NOW, &out) != ERR_UNAUTH)
			fail_msg("accepted edit %zu: %s", i, t);
		assert_zeroed(&out);
	}

	/* every hex digit of the signature */
	const char *sig = strstr(good, ";sig=") + 5;
	for (size_t i = 0; i < 64; i++) {
		char t[IDENTITY_MAX];
		strcpy(t, good);
		char *c = t + (sig - good) + i;
		*c = *c == '0' ? '1' : '0';
		assert_int_equal(verify(t, NOW, &out), ERR_UNAUTH);
	}
	/* the same MAC in upper case is not the same text */
	char up[IDENTITY_MAX];
	strcpy(up, good);
	int changed = 0;
	for (char *c = up + (sig - good); *c; c++)
		if (*c >= 'a' && *c <= 'f') {
			*c = (char)(*c - 'a' + 'A');
			changed = 1;
		}
	assert_true(changed);
	assert_int_equal(verify(up, NOW, &out), ERR_UNAUTH);
}

static void test_wrong_secret(void **state)
{
	identity id = make(IDENTITY_ADMIN, "admin"), out;
	char buf[IDENTITY_MAX];
	assert_int_equal(identity_sign("another-secret", &id, NOW, buf, sizeof(buf)), 0);
	assert_int_equal(verify(buf, NOW, &out), ERR_UNAUTH);
	assert_zeroed(&out);
	/* a prefix or extension of the secret is another secret */
	assert_int_equal(identity_sign(SECRET "x", &id, NOW, buf, sizeof(buf)), 0);
	assert_int_equal(verify(buf, NOW, &out), ERR_UNAUTH);
	assert_int_equal(identity_sign("s3rvice-secret", &id, NOW, buf, sizeof(buf)), 0);
	assert_int_equal(verify(buf, NOW, &out), ERR_UNAUTH);
	/* and the right one works */
	assert_int_equal(identity_sign(SECRET, &id, NOW, buf, sizeof(buf)), 0);
	assert_int_equal(verify(buf, NOW, &out), 0);
	assert_int_equal(out.role, IDENTITY_ADMIN);
}

static void test_age_window(void **state)
{
	identity id = make(IDENTITY_USER, "usr_1"), out;
	char buf[IDENTITY_MAX];
	assert_int_equal(identity_sign(SECRET, &id, NOW, buf, sizeof(buf)), 0);

	/* older: the boundary is accepted, a microsecond more is a replay */
	assert_int_equal(verify(buf, NOW + MAX_AGE, &out), 0);
	assert_int_equal(verify(buf, NOW + MAX_AGE + 1, &out), ERR_UNAUTH);
	assert_zeroed(&out);
	assert_int_equal(verify(buf, NOW + 3600 * 1000000LL, &out), ERR_UNAUTH);
	/* newer (the verifier's clock behind the gateway's): the same window */
	assert_int_equal(verify(buf, NOW - MAX_AGE, &out), 0);
	assert_int_equal(verify(buf, NOW - MAX_AGE - 1, &out), ERR_UNAUTH);
	/* a zero window admits only the same instant */
	assert_int_equal(identity_verify(SECRET, buf, NOW, 0, &out), 0);
	assert_int_equal(identity_verify(SECRET, buf, NOW + 1, 0, &out), ERR_UNAUTH);
	assert_int_equal(identity_verify(SECRET, buf, NOW - 1, 0, &out), ERR_UNAUTH);
}

static void test_sign_refuses(void **state)
{
	char buf[IDENTITY_MAX];
	static const char *const bad_subs[] = {
		"usr;role=admin", "a=b", ";", "=", "usr_1\r\nX-Evil: 1", "tab\there", "del\x7f",
	};
	for (size_t i = 0; i < sizeof(bad_subs) / sizeof(bad_subs[0]); i++) {
		identity id = make(IDENTITY_USER, bad_subs[i]);
		if (identity_sign(SECRET, &id, NOW, buf, sizeof(buf)) != ERR_INVALID)
			fail_msg("signed sub #%zu", i);
	}
	identity id = make(IDENTITY_USER, "usr_1");
	assert_int_equal(identity_sign("", &id, NOW, buf, sizeof(buf)), ERR_INVALID);
	assert_int_equal(identity_sign(NULL, &id, NOW, buf, sizeof(buf)), ERR_INVALID);
	assert_int_equal(identity_sign(SECRET, &id, NOW, buf, IDENTITY_MAX - 1), ERR_INVALID);
	assert_int_equal(identity_sign(SECRET, &id, -1, buf, sizeof(buf)), ERR_INVALID);
	id.role = (enum identity_role)7;
	assert_int_equal(identity_sign(SECRET, &id, NOW, buf, sizeof(buf)), ERR_INVALID);
	/* a sub that fills the array without a terminator */
	id.role = IDENTITY_USER;
	memset(id.sub, 'a', sizeof(id.sub));
	assert_int_equal(identity_sign(SECRET, &id, NOW, buf, sizeof(buf)), ERR_INVALID);
}

static void test_empty_secret_verify(void **state)
{
	/* A value MAC'd under the empty key verifies under no secret, and the
	 * empty secret verifies nothing. */
	char val[IDENTITY_MAX + 80];
	char body[128];
	snprintf(body, sizeof(body), "v1;role=admin;sub=admin;ts=%lld", NOW);
	hand_sign("", body, val, sizeof(val));
	identity out;
	assert_int_equal(identity_verify("", val, NOW, MAX_AGE, &out), ERR_UNAUTH);
	assert_int_equal(identity_verify(NULL, val, NOW, MAX_AGE, &out), ERR_UNAUTH);
	assert_int_equal(verify(val, NOW, &out), ERR_UNAUTH);

	identity id = make(IDENTITY_ADMIN, "admin");
	char buf[IDENTITY_MAX];
	assert_int_equal(identity_sign(SECRET, &id, NOW, buf, sizeof(buf)), 0);
	assert_int_equal(identity_verify("", buf, NOW, MAX_AGE, &out), ERR_UNAUTH);
	assert_zeroed(&out);
}

static void test_malformed(void **state)
{
	identity out;
	/* unsigned junk */
	static const char *const junk[] = {
		"",
		"v1",
		"v1;",
		";sig=",
		"v1;role=admin;sub=admin;ts=1795650209000000",
		"v1;role=admin;sub=admin;ts=1795650209000000;sig=",
		"v1;role=admin;sub=admin;ts=1795650209000000;sig=00",
		"role=admin;sub=admin",
		"Bearer x",
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		memset(&out, 0x5a, sizeof(out));
		if (verify(junk[i], NOW, &out) != ERR_UNAUTH)
			fail_msg("accepted junk #%zu", i);
		assert_zeroed(&out);
	}
	assert_int_equal(verify(NULL, NOW, &out), ERR_UNAUTH);

	/* Correctly MAC'd with the right secret, but not the shape identity_sign
	 * writes: missing, reordered, extra or ill-typed fields. */
	static const char *const bodies[] = {
		"v1;role=user;sub=usr_1",                             /* no ts */
		"v1;role=user;ts=1795650209000000",                   /* no sub */
		"v1;sub=usr_1;ts=1795650209000000",                   /* no role */
		"v1;role=;sub=usr_1;ts=1795650209000000",             /* empty role */
		"v1;role=root;sub=usr_1;ts=1795650209000000",         /* unknown role */
		"v1;role=USER;sub=usr_1;ts=1795650209000000",         /* case matters */
		"v1;role=user;x=1;sub=usr_1;ts=1795650209000000",     /* extra field in role */
		"v1;role=user;sub=usr_1;ts=1795650209000000;x=1",     /* extra field after ts */
		"v1;role=user;sub=usr_1;ts=1795650209000000junk",     /* junk in ts */
		"v1;role=user;sub=usr_1;ts=",                         /* empty ts */
		"v1;role=user;sub=usr_1;ts=-1795650209000000",        /* negative ts */
		"v1;role=user;sub=usr_1;ts= 1795650209000000",        /* space in ts */
		"v1;role=user;sub=usr_1;ts=0x661234",                 /* hex ts */
		"v1;role=user;sub=usr_1;ts=99999999999999999999999",  /* overflowing ts */
		"v1;role=user;sub=a;b;ts=1795650209000000",           /* ';' in sub */
		"v1;role=user;ts=1795650209000000;sub=usr_1",         /* reordered */
		"v2;role=user;sub=usr_1;ts=1795650209000000",         /* other version */
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char val[IDENTITY_MAX + 80];
		hand_sign(SECRET, bodies[i], val, sizeof(val));
		memset(&out, 0x5a, sizeof(out));
		if (verify(val, NOW, &out) != ERR_UNAUTH)
			fail_msg("accepted signed body #%zu: %s", i, bodies[i]);
		assert_zeroed(&out);
	}
	/* the control: the well-formed body signed the same way passes */
	char val[IDENTITY_MAX + 80];
	hand_sign(SECRET, "v1;role=user;sub=usr_1;ts=1795650209000000", val, sizeof(val));
	assert_int_equal(verify(val, NOW, &out), 0);
	assert_string_equal(out.sub, "usr_1");

	/* junk after the signature */
	char t[sizeof(val) + 8];
	snprintf(t, sizeof(t), "%s0", val);
	assert_int_equal(verify(t, NOW, &out), ERR_UNAUTH);
	snprintf(t, sizeof(t), "%s;x=1", val);
	assert_int_equal(verify(t, NOW, &out), ERR_UNAUTH);
	snprintf(t, sizeof(t), " %s", val);
	assert_int_equal(verify(t, NOW, &out), ERR_UNAUTH);

	/* overlong: IDENTITY_MAX bytes or more is refused before any parsing,
	 * even correctly signed */
	char body[400], big[600];
	char sub[200];
	memset(sub, 'z', 190);
	sub[190] = '\0';
	snprintf(body, sizeof(body), "v1;role=user;sub=%s;ts=%lld", sub, NOW);
	hand_sign(SECRET, body, big, sizeof(big));
	assert_true(strlen(big) >= IDENTITY_MAX);
	assert_int_equal(verify(big, NOW, &out), ERR_UNAUTH);
	char huge[8192];
	memset(huge, 'v', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	assert_int_equal(verify(huge, NOW, &out), ERR_UNAUTH);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role_names),
		cmocka_unit_test(test_round_trip_each_role),
		cmocka_unit_test(test_longest_sub),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_wrong_secret),
		cmocka_unit_test(test_age_window),
		cmocka_unit_test(test_sign_refuses),
		cmocka_unit_test(test_empty_secret_verify),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
