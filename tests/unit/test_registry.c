/* Tests for services/registry: heartbeats and TTL health, expiry, passive
 * mark-down, least-outstanding picking, the JSON listing and thread safety.
 * Time is a virtual clock, so every TTL edge is exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "services/registry.h"

#define TTL_US 5000000LL                /* 5 s */
#define T0 1764112255000000LL           /* 2025-11-25T23:10:55Z */

typedef struct fixture {
	clock_src *clock;
	registry *reg;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->clock = clock_virtual_new(T0);
	f->reg = registry_new(TTL_US);
	if (!f->clock || !f->reg)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	registry_free(f->reg);
	clock_free(f->clock);
	free(f);
	return 0;
}

static int64_t now(fixture *f) { return clock_now(f->clock); }

static void beat(fixture *f, const char *service, const char *id, const char *addr)
{
	assert_int_equal(registry_heartbeat(f->reg, service, id, addr, now(f)), 0);
}

/* Acquires for service and returns the picked id in id (addr into addr when
 * not NULL); asserts success. */
static void acquire_ok(fixture *f, const char *service, const char *const *exclude, int nexclude,
		       char id[REGISTRY_ID_MAX], char *addr_out)
{
	char addr[REGISTRY_ADDR_MAX];
	assert_int_equal(registry_acquire(f->reg, service, now(f), exclude, nexclude, id, addr), 0);
	if (addr_out)
		strcpy(addr_out, addr);
}

static int acquire_rc(fixture *f, const char *service, const char *const *exclude, int nexclude)
{
	char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
	return registry_acquire(f->reg, service, now(f), exclude, nexclude, id, addr);
}

/* The instance object for id in the listing, or NULL. */
static json_t *find_instance(json_t *doc, const char *id)
{
	size_t i, j;
	json_t *svc, *in;
	json_array_foreach(json_object_get(doc, "services"), i, svc)
		json_array_foreach(json_object_get(svc, "instances"), j, in)
			if (strcmp(json_string_value(json_object_get(in, "id")), id) == 0)
				return in;
	return NULL;
}

static json_int_t outstanding_of(fixture *f, const char *id)
{
	json_t *doc = registry_to_json(f->reg, now(f));
	json_t *in = find_instance(doc, id);
	assert_non_null(in);
	json_int_t v = json_integer_value(json_object_get(in, "outstanding"));
	json_decref(doc);
	return v;
}

/* ---- registration and health ------------------------------------------- */

static void test_heartbeat_registers(void **state)
{
	fixture *f = *state;
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 0);
	assert_int_equal(acquire_rc(f, "catalog", NULL, 0), ERR_NOT_FOUND);

	beat(f, "catalog", "catalog-1", "http://127.0.0.1:8081");
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 1);

	char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
	acquire_ok(f, "catalog", NULL, 0, id, addr);
	assert_string_equal(id, "catalog-1");
	assert_string_equal(addr, "http://127.0.0.1:8081");
	registry_release(f->reg, id);

	/* a repeated heartbeat refreshes rather than duplicates, and takes a new addr */
	beat(f, "catalog", "catalog-1", "http://127.0.0.1:9091");
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 1);
	acquire_ok(f, "catalog", NULL, 0, id, addr);
	assert_string_equal(addr, "http://127.0.0.1:9091");
	registry_release(f->reg, id);
}

static void test_acquire_right_service_only(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "http://127.0.0.1:8081");
	beat(f, "search", "search-1", "http://127.0.0.1:8082");
	beat(f, "search", "search-2", "http://127.0.0.1:8083");

	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 1);
	assert_int_equal(registry_healthy(f->reg, "search", now(f)), 2);
	assert_int_equal(registry_healthy(f->reg, "orders", now(f)), 0);

	/* many picks of catalog never wander to a search instance */
	for (int i = 0; i < 20; i++) {
		char id[REGISTRY_ID_MAX];
		acquire_ok(f, "catalog", NULL, 0, id, NULL);
		assert_string_equal(id, "catalog-1");
		registry_release(f->reg, id);
	}
	for (int i = 0; i < 20; i++) {
		char id[REGISTRY_ID_MAX];
		acquire_ok(f, "search", NULL, 0, id, NULL);
		assert_true(strcmp(id, "search-1") == 0 || strcmp(id, "search-2") == 0);
		registry_release(f->reg, id);
	}
	assert_int_equal(acquire_rc(f, "orders", NULL, 0), ERR_NOT_FOUND);
}

static void test_ttl_leaves_and_rejoins_rotation(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "a1");
	beat(f, "catalog", "catalog-2", "a2");

	/* exactly at the TTL both are still fresh */
	assert_int_equal(clock_advance(f->clock, TTL_US), 0);
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 2);

	/* catalog-2 keeps beating, catalog-1 goes silent past the TTL */
	beat(f, "catalog", "catalog-2", "a2");
	assert_int_equal(clock_advance(f->clock, 1), 0);
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 1);
	for (int i = 0; i < 10; i++) {
		char id[REGISTRY_ID_MAX];
		acquire_ok(f, "catalog", NULL, 0, id, NULL);
		assert_string_equal(id, "catalog-2");
		registry_release(f->reg, id);
	}
	json_t *doc = registry_to_json(f->reg, now(f));
	assert_true(json_is_false(json_object_get(find_instance(doc, "catalog-1"), "healthy")));
	assert_true(json_is_true(json_object_get(find_instance(doc, "catalog-2"), "healthy")));
	json_decref(doc);

	/* both silent: nothing to pick */
	assert_int_equal(clock_advance(f->clock, TTL_US), 0);
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 0);
	assert_int_equal(acquire_rc(f, "catalog", NULL, 0), ERR_NOT_FOUND);

	/* the next heartbeat brings catalog-1 back */
	beat(f, "catalog", "catalog-1", "a1");
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 1);
	char id[REGISTRY_ID_MAX];
	acquire_ok(f, "catalog", NULL, 0, id, NULL);
	assert_string_equal(id, "catalog-1");
	registry_release(f->reg, id);
}

static void test_expire_after_ten_ttls(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "old", "a1");
	beat(f, "catalog", "fresh", "a2");

	/* ten TTLs of silence is still remembered (unhealthy, listed) */
	clock_advance(f->clock, 10 * TTL_US);
	beat(f, "catalog", "fresh", "a2");
	registry_expire(f->reg, now(f));
	json_t *doc = registry_to_json(f->reg, now(f));
	assert_non_null(find_instance(doc, "old"));
	assert_true(json_is_false(json_object_get(find_instance(doc, "old"), "healthy")));
	json_decref(doc);

	/* past ten TTLs it is forgotten; the fresh one stays */
	clock_advance(f->clock, 1);
	registry_expire(f->reg, now(f));
	doc = registry_to_json(f->reg, now(f));
	assert_null(find_instance(doc, "old"));
	assert_non_null(find_instance(doc, "fresh"));
	json_decref(doc);
	assert_int_equal(registry_remove(f->reg, "old"), ERR_NOT_FOUND);

	/* a forgotten instance may come back by heartbeat */
	beat(f, "catalog", "old", "a1");
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 2);
}

/* ---- picking ------------------------------------------------------------ */

static void test_least_outstanding(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "a1");
	beat(f, "catalog", "catalog-2", "a2");

	char first[REGISTRY_ID_MAX], second[REGISTRY_ID_MAX], third[REGISTRY_ID_MAX];
	acquire_ok(f, "catalog", NULL, 0, first, NULL);
	acquire_ok(f, "catalog", NULL, 0, second, NULL);
	assert_string_not_equal(first, second);
	assert_int_equal(outstanding_of(f, "catalog-1"), 1);
	assert_int_equal(outstanding_of(f, "catalog-2"), 1);

	/* releasing first makes it the only least-loaded one: it must be picked */
	registry_release(f->reg, first);
	acquire_ok(f, "catalog", NULL, 0, third, NULL);
	assert_string_equal(third, first);

	/* with second released too, repeated picks land on the idle instance */
	registry_release(f->reg, second);
	for (int i = 0; i < 5; i++) {
		char id[REGISTRY_ID_MAX];
		acquire_ok(f, "catalog", NULL, 0, id, NULL);
		assert_string_equal(id, second);
		registry_release(f->reg, id);
	}
	registry_release(f->reg, third);
	assert_int_equal(outstanding_of(f, "catalog-1"), 0);
	assert_int_equal(outstanding_of(f, "catalog-2"), 0);

	/* release never takes outstanding below zero, and an unknown id is ignored */
	registry_release(f->reg, "catalog-1");
	registry_release(f->reg, "nobody");
	assert_int_equal(outstanding_of(f, "catalog-1"), 0);

	/* ties are shared round-robin: idle instances both get picked */
	int seen1 = 0, seen2 = 0;
	for (int i = 0; i < 10; i++) {
		char id[REGISTRY_ID_MAX];
		acquire_ok(f, "catalog", NULL, 0, id, NULL);
		seen1 += strcmp(id, "catalog-1") == 0;
		seen2 += strcmp(id, "catalog-2") == 0;
		registry_release(f->reg, id);
	}
	assert_true(seen1 > 0);
	assert_true(seen2 > 0);
}

static void test_exclude(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "a1");
	beat(f, "catalog", "catalog-2", "a2");
	beat(f, "catalog", "catalog-3", "a3");

	const char *ex1[] = { "catalog-1" };
	for (int i = 0; i < 10; i++) {
		char id[REGISTRY_ID_MAX];
		acquire_ok(f, "catalog", ex1, 1, id, NULL);
		assert_string_not_equal(id, "catalog-1");
		registry_release(f->reg, id);
	}
	/* excluded even when it is the least loaded */
	const char *ex2[] = { "catalog-3", "catalog-1" };
	char a[REGISTRY_ID_MAX], b[REGISTRY_ID_MAX];
	acquire_ok(f, "catalog", ex2, 2, a, NULL);
	acquire_ok(f, "catalog", ex2, 2, b, NULL);
	assert_string_equal(a, "catalog-2");
	assert_string_equal(b, "catalog-2");
	assert_int_equal(outstanding_of(f, "catalog-2"), 2);
	registry_release(f->reg, a);
	registry_release(f->reg, b);

	/* NULL entries in the list are tolerated */
	const char *ex3[] = { NULL, "catalog-2" };
	acquire_ok(f, "catalog", ex3, 2, a, NULL);
	assert_string_not_equal(a, "catalog-2");
	registry_release(f->reg, a);

	const char *all[] = { "catalog-1", "catalog-2", "catalog-3" };
	assert_int_equal(acquire_rc(f, "catalog", all, 3), ERR_NOT_FOUND);
}

static void test_mark_down(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "a1");
	beat(f, "catalog", "catalog-2", "a2");

	clock_advance(f->clock, 1000);
	registry_mark_down(f->reg, "catalog-1", now(f));
	registry_mark_down(f->reg, "nobody", now(f)); /* unknown: ignored */
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 1);
	for (int i = 0; i < 10; i++) {
		char id[REGISTRY_ID_MAX];
		acquire_ok(f, "catalog", NULL, 0, id, NULL);
		assert_string_equal(id, "catalog-2");
		registry_release(f->reg, id);
	}

	/* a heartbeat at the very instant of the mark does not lift it ... */
	beat(f, "catalog", "catalog-1", "a1");
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 1);
	const char *ex[] = { "catalog-2" };
	assert_int_equal(acquire_rc(f, "catalog", ex, 1), ERR_NOT_FOUND);

	/* ... one after it does */
	clock_advance(f->clock, 1);
	beat(f, "catalog", "catalog-1", "a1");
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 2);
	char id[REGISTRY_ID_MAX];
	acquire_ok(f, "catalog", ex, 1, id, NULL);
	assert_string_equal(id, "catalog-1");
	registry_release(f->reg, id);
}

/* When no instance is healthy only because heartbeats are late (a busy
 * machine), the stale fallback still finds the ones no request found dead,
 * and never one marked down. */
static void test_acquire_stale_fallback(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "a1");
	beat(f, "catalog", "catalog-2", "a2");
	clock_advance(f->clock, TTL_US + 1);
	char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 0);
	assert_int_equal(registry_acquire(f->reg, "catalog", now(f), NULL, 0, id, addr), ERR_NOT_FOUND);
	registry_mark_down(f->reg, "catalog-1", now(f));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(registry_acquire_stale(f->reg, "catalog", now(f), NULL, 0, id, addr), 0);
		assert_string_equal(id, "catalog-2");
		registry_release(f->reg, id);
	}
	const char *ex[] = { "catalog-2" };
	assert_int_equal(registry_acquire_stale(f->reg, "catalog", now(f), ex, 1, id, addr),
			 ERR_NOT_FOUND);
	assert_int_equal(registry_acquire_stale(f->reg, "search", now(f), NULL, 0, id, addr),
			 ERR_NOT_FOUND);
}

/* One call's attempts: each goes to an instance not tried yet, healthy
 * ones first, then one only late with its heartbeats; none once every
 * instance, or REGISTRY_TRIES of them, has been tried. */
static void test_acquire_next(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "a1");
	clock_advance(f->clock, TTL_US / 2 + 1);
	beat(f, "catalog", "catalog-2", "a2");
	beat(f, "catalog", "catalog-3", "a3");
	clock_advance(f->clock, TTL_US / 2); /* catalog-1 is late now */
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 2);
	registry_tried t = { 0 };
	char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
	const char *seen[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(registry_acquire_next(f->reg, "catalog", now(f), &t, id, addr), 0);
		registry_release(f->reg, id);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(id, seen[j]);
		registry_tried_add(&t, id);
		seen[i] = t.id[i];
	}
	assert_string_equal(seen[2], "catalog-1"); /* the late one last */
	assert_int_equal(t.n, 3);
	assert_int_equal(registry_acquire_next(f->reg, "catalog", now(f), &t, id, addr),
			 ERR_NOT_FOUND);

	/* at most REGISTRY_TRIES attempts, however many instances there are */
	beat(f, "catalog", "catalog-4", "a4");
	registry_tried_add(&t, "catalog-4"); /* full: not added */
	assert_int_equal(t.n, REGISTRY_TRIES);
	assert_int_equal(registry_acquire_next(f->reg, "catalog", now(f), &t, id, addr),
			 ERR_NOT_FOUND);
	registry_tried fresh = { 0 };
	registry_tried_add(&fresh, "catalog-2");
	registry_tried_add(&fresh, "catalog-3");
	assert_int_equal(registry_acquire_next(f->reg, "catalog", now(f), &fresh, id, addr), 0);
	assert_string_equal(id, "catalog-4"); /* healthy before the late one */
	registry_release(f->reg, id);
}

/* A virtual clock may well start at 0 (the simulator's epoch); marking down
 * at time 0 must still take the instance out. */
static void test_mark_down_at_time_zero(void **state)
{
	registry *r = registry_new(TTL_US);
	assert_non_null(r);
	assert_int_equal(registry_heartbeat(r, "catalog", "c1", "a1", 0), 0);
	assert_int_equal(registry_healthy(r, "catalog", 0), 1);
	registry_mark_down(r, "c1", 0);
	assert_int_equal(registry_healthy(r, "catalog", 0), 0);
	char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
	assert_int_equal(registry_acquire(r, "catalog", 0, NULL, 0, id, addr), ERR_NOT_FOUND);
	assert_int_equal(registry_heartbeat(r, "catalog", "c1", "a1", 1), 0);
	assert_int_equal(registry_healthy(r, "catalog", 1), 1);
	registry_free(r);
}

static void test_remove(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "a1");
	beat(f, "catalog", "catalog-2", "a2");
	beat(f, "catalog", "catalog-3", "a3");

	assert_int_equal(registry_remove(f->reg, "catalog-2"), 0);
	assert_int_equal(registry_remove(f->reg, "catalog-2"), ERR_NOT_FOUND);
	assert_int_equal(registry_remove(f->reg, "nobody"), ERR_NOT_FOUND);
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 2);
	for (int i = 0; i < 10; i++) {
		char id[REGISTRY_ID_MAX];
		acquire_ok(f, "catalog", NULL, 0, id, NULL);
		assert_string_not_equal(id, "catalog-2");
		registry_release(f->reg, id);
	}
	json_t *doc = registry_to_json(f->reg, now(f));
	assert_null(find_instance(doc, "catalog-2"));
	assert_non_null(find_instance(doc, "catalog-1"));
	assert_non_null(find_instance(doc, "catalog-3"));
	json_decref(doc);

	assert_int_equal(registry_remove(f->reg, "catalog-1"), 0);
	assert_int_equal(registry_remove(f->reg, "catalog-3"), 0);
	assert_int_equal(registry_healthy(f->reg, "catalog", now(f)), 0);
	doc = registry_to_json(f->reg, now(f));
	assert_int_equal(json_array_size(json_object_get(doc, "services")), 0);
	json_decref(doc);
}

/* ---- listing ------------------------------------------------------------- */

static void test_to_json_shape(void **state)
{
	fixture *f = *state;
	json_t *doc = registry_to_json(f->reg, now(f));
	assert_true(json_is_object(doc));
	assert_true(json_is_array(json_object_get(doc, "services")));
	assert_int_equal(json_array_size(json_object_get(doc, "services")), 0);
	json_decref(doc);

	/* registered out of name order on purpose */
	beat(f, "search", "search-1", "http://127.0.0.1:8082");
	beat(f, "catalog", "catalog-2", "http://127.0.0.1:8085");
	beat(f, "gateway", "gateway-1", "http://127.0.0.1:8080");
	beat(f, "catalog", "catalog-1", "http://127.0.0.1:8081");
	clock_advance(f->clock, 2 * TTL_US);
	beat(f, "catalog", "catalog-2", "http://127.0.0.1:8085"); /* only this one fresh */
	char id[REGISTRY_ID_MAX];
	acquire_ok(f, "catalog", NULL, 0, id, NULL);
	assert_string_equal(id, "catalog-2");

	doc = registry_to_json(f->reg, now(f));
	json_t *services = json_object_get(doc, "services");
	assert_int_equal(json_array_size(services), 3);
	const char *names[] = { "catalog", "gateway", "search" };
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(
			json_string_value(json_object_get(json_array_get(services, i), "name")),
			names[i]);
	json_t *cat = json_object_get(json_array_get(services, 0), "instances");
	assert_int_equal(json_array_size(cat), 2);
	assert_int_equal(json_array_size(json_object_get(json_array_get(services, 1), "instances")),
			 1);

	json_t *c2 = find_instance(doc, "catalog-2");
	assert_non_null(c2);
	assert_int_equal(json_object_size(c2), 5);
	assert_string_equal(json_string_value(json_object_get(c2, "id")), "catalog-2");
	assert_string_equal(json_string_value(json_object_get(c2, "addr")),
			    "http://127.0.0.1:8085");
	assert_true(json_is_true(json_object_get(c2, "healthy")));
	assert_true(json_is_integer(json_object_get(c2, "outstanding")));
	assert_int_equal(json_integer_value(json_object_get(c2, "outstanding")), 1);
	char ts[40];
	clock_fmt_rfc3339(now(f), ts, sizeof(ts));
	assert_string_equal(json_string_value(json_object_get(c2, "last_heartbeat")), ts);

	json_t *c1 = find_instance(doc, "catalog-1");
	assert_non_null(c1);
	assert_true(json_is_false(json_object_get(c1, "healthy")));
	assert_int_equal(json_integer_value(json_object_get(c1, "outstanding")), 0);
	clock_fmt_rfc3339(T0, ts, sizeof(ts));
	assert_string_equal(json_string_value(json_object_get(c1, "last_heartbeat")), ts);
	assert_string_equal(ts, "2025-11-25T23:10:55.000Z");
	json_decref(doc);
	registry_release(f->reg, id);
}

/* ---- invalid input ------------------------------------------------------- */

static void test_invalid_inputs(void **state)
{
	fixture *f = *state;
	char longid[REGISTRY_ID_MAX + 1];
	memset(longid, 'x', REGISTRY_ID_MAX);
	longid[REGISTRY_ID_MAX] = '\0';
	char maxid[REGISTRY_ID_MAX];
	memset(maxid, 'y', REGISTRY_ID_MAX - 1);
	maxid[REGISTRY_ID_MAX - 1] = '\0';
	char longaddr[REGISTRY_ADDR_MAX + 1];
	memset(longaddr, 'a', REGISTRY_ADDR_MAX);
	longaddr[REGISTRY_ADDR_MAX] = '\0';
	int64_t t = now(f);

	assert_int_equal(registry_heartbeat(f->reg, "catalog", "", "a1", t), ERR_INVALID);
	assert_int_equal(registry_heartbeat(f->reg, "catalog", NULL, "a1", t), ERR_INVALID);
	assert_int_equal(registry_heartbeat(f->reg, "catalog", longid, "a1", t), ERR_INVALID);
	assert_int_equal(registry_heartbeat(f->reg, "", "c1", "a1", t), ERR_INVALID);
	assert_int_equal(registry_heartbeat(f->reg, longid, "c1", "a1", t), ERR_INVALID);
	assert_int_equal(registry_heartbeat(f->reg, "catalog", "c1", "", t), ERR_INVALID);
	assert_int_equal(registry_heartbeat(f->reg, "catalog", "c1", longaddr, t), ERR_INVALID);
	/* nothing was registered by any of those */
	json_t *doc = registry_to_json(f->reg, t);
	assert_int_equal(json_array_size(json_object_get(doc, "services")), 0);
	json_decref(doc);

	/* the longest id that fits is accepted and copied out whole */
	assert_int_equal(registry_heartbeat(f->reg, "catalog", maxid, "a1", t), 0);
	char id[REGISTRY_ID_MAX];
	acquire_ok(f, "catalog", NULL, 0, id, NULL);
	assert_string_equal(id, maxid);
	registry_release(f->reg, id);
}

/* ---- concurrency --------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 10000

typedef struct worker {
	registry *reg;
	int64_t now;
	int failures;
	int strays;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < ROUNDS; i++) {
		char id[REGISTRY_ID_MAX], addr[REGISTRY_ADDR_MAX];
		if (registry_acquire(w->reg, "catalog", w->now, NULL, 0, id, addr) != 0) {
			w->failures++;
			continue;
		}
		if (strncmp(id, "catalog-", 8) != 0 || strlen(id) != 9 || id[8] < '1' || id[8] > '3')
			w->strays++;
		registry_release(w->reg, id);
	}
	return NULL;
}

static void test_concurrent_acquire_release(void **state)
{
	fixture *f = *state;
	beat(f, "catalog", "catalog-1", "a1");
	beat(f, "catalog", "catalog-2", "a2");
	beat(f, "catalog", "catalog-3", "a3");
	beat(f, "search", "search-1", "s1");

	pthread_t th[THREADS];
	worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){ .reg = f->reg, .now = now(f) };
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
		assert_int_equal(w[i].strays, 0);
	}

	json_t *doc = registry_to_json(f->reg, now(f));
	size_t i, j, count = 0;
	json_t *svc, *in;
	json_array_foreach(json_object_get(doc, "services"), i, svc)
		json_array_foreach(json_object_get(svc, "instances"), j, in) {
			assert_int_equal(json_integer_value(json_object_get(in, "outstanding")), 0);
			count++;
		}
	assert_int_equal(count, 4);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_heartbeat_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_right_service_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_leaves_and_rejoins_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_after_ten_ttls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_least_outstanding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclude, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_down, setup, teardown),
		cmocka_unit_test(test_mark_down_at_time_zero),
		cmocka_unit_test_setup_teardown(test_acquire_stale_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_next, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_to_json_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_inputs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_acquire_release, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
