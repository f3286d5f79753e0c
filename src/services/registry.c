/* registry: service instances, heartbeats and least-outstanding picking. */
#include "services/registry.h"
#include "core/clock.h"
#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct instance {
	char service[REGISTRY_ID_MAX];
	char id[REGISTRY_ID_MAX];
	char addr[REGISTRY_ADDR_MAX];
	int64_t last_heartbeat;
	int down;          /* out of rotation since down_at, until a later heartbeat */
	int64_t down_at;
	int outstanding;
} instance;

struct registry {
	pthread_mutex_t mu;
	int64_t ttl_us;
	instance *items;
	int n, cap;
	unsigned rr;       /* rotates the start of the tie-breaking scan */
};

registry *registry_new(int64_t ttl_us)
{
	registry *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->mu, NULL);
	r->ttl_us = ttl_us;
	return r;
}

void registry_free(registry *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	free(r->items);
	free(r);
}

static instance *find(registry *r, const char *id)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->items[i].id, id) == 0)
			return &r->items[i];
	return NULL;
}

static int fits(const char *s, size_t max) { return s && s[0] && strlen(s) < max; }

int registry_heartbeat(registry *r, const char *service, const char *id, const char *addr,
		       int64_t now_us)
{
	if (!fits(service, REGISTRY_ID_MAX) || !fits(id, REGISTRY_ID_MAX) ||
	    !fits(addr, REGISTRY_ADDR_MAX))
		return ERR_INVALID;
	pthread_mutex_lock(&r->mu);
	instance *in = find(r, id);
	if (!in) {
		if (r->n == r->cap) {
			int cap = r->cap ? r->cap * 2 : 8;
			instance *items = realloc(r->items, (size_t)cap * sizeof(*items));
			if (!items) {
				pthread_mutex_unlock(&r->mu);
				return ERR_NOMEM;
			}
			r->items = items;
			r->cap = cap;
		}
		in = &r->items[r->n++];
		memset(in, 0, sizeof(*in));
		strcpy(in->id, id);
	}
	strcpy(in->service, service);
	strcpy(in->addr, addr);
	in->last_heartbeat = now_us;
	if (in->down && now_us > in->down_at)
		in->down = 0;
	pthread_mutex_unlock(&r->mu);
	return 0;
}

int registry_remove(registry *r, const char *id)
{
	int rc = ERR_NOT_FOUND;
	pthread_mutex_lock(&r->mu);
	instance *in = find(r, id);
	if (in) {
		*in = r->items[--r->n];
		rc = 0;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void registry_mark_down(registry *r, const char *id, int64_t now_us)
{
	pthread_mutex_lock(&r->mu);
	instance *in = find(r, id);
	if (in) {
		in->down = 1;
		in->down_at = now_us;
	}
	pthread_mutex_unlock(&r->mu);
}

void registry_expire(registry *r, int64_t now_us)
{
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n;) {
		if (now_us - r->items[i].last_heartbeat > 10 * r->ttl_us && r->items[i].outstanding == 0)
			r->items[i] = r->items[--r->n];
		else
			i++;
	}
	pthread_mutex_unlock(&r->mu);
}

static int is_healthy(const registry *r, const instance *in, int64_t now_us)
{
	return !in->down && now_us - in->last_heartbeat <= r->ttl_us;
}

static int excluded(const char *id, const char *const *exclude, int n)
{
	for (int i = 0; i < n; i++)
		if (exclude[i] && strcmp(exclude[i], id) == 0)
			return 1;
	return 0;
}

/* Picks among the instances of service that qualify: healthy ones, or with
 * stale set, ones whose heartbeats are late but that no request has found
 * dead. */
static int acquire(registry *r, const char *service, int64_t now_us, const char *const *exclude,
		   int nexclude, int stale, char id[REGISTRY_ID_MAX], char addr[REGISTRY_ADDR_MAX])
{
	pthread_mutex_lock(&r->mu);
	instance *best = NULL;
	int n = r->n;
	unsigned start = n ? r->rr++ % (unsigned)n : 0;
	for (int k = 0; k < n; k++) {
		instance *in = &r->items[(start + (unsigned)k) % (unsigned)n];
		int ok = stale ? !in->down : is_healthy(r, in, now_us);
		if (strcmp(in->service, service) != 0 || !ok || excluded(in->id, exclude, nexclude))
			continue;
		if (!best || in->outstanding < best->outstanding)
			best = in;
	}
	int rc = ERR_NOT_FOUND;
	if (best) {
		best->outstanding++;
		strcpy(id, best->id);
		strcpy(addr, best->addr);
		rc = 0;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int registry_acquire(registry *r, const char *service, int64_t now_us, const char *const *exclude,
		     int nexclude, char id[REGISTRY_ID_MAX], char addr[REGISTRY_ADDR_MAX])
{
	return acquire(r, service, now_us, exclude, nexclude, 0, id, addr);
}

int registry_acquire_stale(registry *r, const char *service, int64_t now_us,
			   const char *const *exclude, int nexclude, char id[REGISTRY_ID_MAX],
			   char addr[REGISTRY_ADDR_MAX])
{
	return acquire(r, service, now_us, exclude, nexclude, 1, id, addr);
}

void registry_release(registry *r, const char *id)
{
	pthread_mutex_lock(&r->mu);
	instance *in = find(r, id);
	if (in && in->outstanding > 0)
		in->outstanding--;
	pthread_mutex_unlock(&r->mu);
}

int registry_acquire_next(registry *r, const char *service, int64_t now_us,
			  const registry_tried *t, char id[REGISTRY_ID_MAX],
			  char addr[REGISTRY_ADDR_MAX])
{
	if (t->n >= REGISTRY_TRIES)
		return ERR_NOT_FOUND;
	if (acquire(r, service, now_us, t->ids, t->n, 0, id, addr) == 0)
		return 0;
	return acquire(r, service, now_us, t->ids, t->n, 1, id, addr);
}

void registry_tried_add(registry_tried *t, const char *id)
{
	if (t->n >= REGISTRY_TRIES)
		return;
	snprintf(t->id[t->n], sizeof(t->id[t->n]), "%s", id);
	t->ids[t->n] = t->id[t->n];
	t->n++;
}

int registry_healthy(registry *r, const char *service, int64_t now_us)
{
	int count = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->items[i].service, service) == 0 && is_healthy(r, &r->items[i], now_us))
			count++;
	pthread_mutex_unlock(&r->mu);
	return count;
}

static int by_service_then_id(const void *a, const void *b)
{
	const instance *x = a, *y = b;
	int c = strcmp(x->service, y->service);
	return c ? c : strcmp(x->id, y->id);
}

json_t *registry_to_json(registry *r, int64_t now_us)
{
	json_t *services = json_array();
	pthread_mutex_lock(&r->mu);
	instance *copy = malloc(sizeof(*copy) * (size_t)(r->n ? r->n : 1));
	int n = r->n;
	if (copy && n)
		memcpy(copy, r->items, sizeof(*copy) * (size_t)n);
	pthread_mutex_unlock(&r->mu);
	if (!copy)
		return json_pack("{s:o}", "services", services);
	qsort(copy, (size_t)n, sizeof(*copy), by_service_then_id);
	json_t *cur = NULL;
	for (int i = 0; i < n; i++) {
		if (!cur || strcmp(json_string_value(json_object_get(cur, "name")), copy[i].service)) {
			cur = json_pack("{s:s,s:[]}", "name", copy[i].service, "instances");
			json_array_append_new(services, cur);
		}
		char ts[40];
		clock_fmt_rfc3339(copy[i].last_heartbeat, ts, sizeof(ts));
		json_array_append_new(json_object_get(cur, "instances"),
				      json_pack("{s:s,s:s,s:b,s:s,s:i}", "id", copy[i].id, "addr",
						copy[i].addr, "healthy", is_healthy(r, &copy[i], now_us),
						"last_heartbeat", ts, "outstanding",
						copy[i].outstanding));
	}
	free(copy);
	return json_pack("{s:o}", "services", services);
}
