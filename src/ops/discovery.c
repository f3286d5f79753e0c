/* discovery: a copy of the gateway's registry, refreshed from a thread. */
#include "ops/discovery.h"
#include "core/err.h"
#include "net/http_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Most instances one listing may bring (more are ignored). */
#define DISCOVERY_MAX_INSTANCES 256

struct discovery {
	registry *reg;
	routes *table;
	clock_src *clock;
	logger *log;
	char url[600];   /* GET here */
	char token[256];
	int64_t refresh_ms, timeout_ms, ttl_us;
	pthread_t tid;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;
	int failing; /* the last refresh failed (logged once) */
};

discovery *discovery_new(const discovery_opts *o, clock_src *clock, logger *lg, char *err,
			 size_t errlen)
{
	discovery *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->clock = clock;
	d->log = lg;
	snprintf(d->url, sizeof(d->url), "%s/admin/services", o->gateway_url ? o->gateway_url : "");
	snprintf(d->token, sizeof(d->token), "%s", o->admin_token ? o->admin_token : "");
	d->refresh_ms = o->refresh_ms < 10 ? 10 : o->refresh_ms;
	d->timeout_ms = o->timeout_ms < 10 ? 10 : o->timeout_ms;
	d->ttl_us = (o->ttl_ms < 1 ? 1 : o->ttl_ms) * 1000;
	d->reg = registry_new(d->ttl_us);
	d->table = o->routes_file && o->routes_file[0] ? routes_load(o->routes_file, err, errlen)
						       : routes_parse(routes_default(), err, errlen);
	if (!d->reg || !d->table) {
		if (!d->reg)
			snprintf(err, errlen, "out of memory");
		discovery_free(d);
		return NULL;
	}
	return d;
}

void discovery_free(discovery *d)
{
	if (!d)
		return;
	if (d->started) {
		pthread_mutex_lock(&d->mu);
		d->stopping = 1;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->tid, NULL);
	}
	registry_free(d->reg);
	routes_free(d->table);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

registry *discovery_registry(discovery *d) { return d->reg; }

const routes *discovery_routes(const discovery *d) { return d->table; }

/* Whether id is among the n in seen. */
static int was_listed(char (*seen)[REGISTRY_ID_MAX], int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (strcmp(seen[i], id) == 0)
			return 1;
	return 0;
}

int discovery_apply(discovery *d, const json_t *doc, int64_t now_us)
{
	const json_t *services = json_object_get(doc, "services");
	if (!json_is_array(services))
		return ERR_INVALID;
	char(*seen)[REGISTRY_ID_MAX] = malloc(DISCOVERY_MAX_INSTANCES * REGISTRY_ID_MAX);
	if (!seen)
		return ERR_NOMEM;
	int n = 0;
	size_t i, j;
	const json_t *svc, *in;
	json_array_foreach(services, i, svc)
	{
		const char *name = json_string_value(json_object_get(svc, "name"));
		json_array_foreach(json_object_get(svc, "instances"), j, in)
		{
			const char *id = json_string_value(json_object_get(in, "id"));
			const char *addr = json_string_value(json_object_get(in, "addr"));
			const char *hb = json_string_value(json_object_get(in, "last_heartbeat"));
			int64_t at;
			if (n == DISCOVERY_MAX_INSTANCES || !name || !id || !addr ||
			    strncmp(addr, "http://", 7) != 0 || !hb || clock_parse_rfc3339(hb, &at) != 0)
				continue;
			/* The instance's own heartbeat time, not the copy's: an
			 * instance found dead here (registry_mark_down) stays out of
			 * rotation until it really heartbeats again. */
			if (at > now_us)
				at = now_us;
			if (registry_heartbeat(d->reg, name, id, addr, at) != 0)
				continue;
			/* The gateway took it out of rotation although it heartbeats
			 * (a refused connection there): out here too. */
			if (!json_is_true(json_object_get(in, "healthy")) && now_us - at <= d->ttl_us)
				registry_mark_down(d->reg, id, now_us);
			snprintf(seen[n++], REGISTRY_ID_MAX, "%s", id);
		}
	}
	/* Instances the gateway no longer lists (deregistered, or expired
	 * there) are forgotten. */
	json_t *mine = registry_to_json(d->reg, now_us);
	json_array_foreach(json_object_get(mine, "services"), i, svc)
		json_array_foreach(json_object_get(svc, "instances"), j, in)
		{
			const char *id = json_string_value(json_object_get(in, "id"));
			if (id && !was_listed(seen, n, id))
				registry_remove(d->reg, id);
		}
	json_decref(mine);
	free(seen);
	return 0;
}

int discovery_refresh(discovery *d)
{
	msg_resp resp;
	msg_resp_init(&resp);
	int rc = http_client_simple("GET", d->url, NULL, d->token, &resp, (long)d->timeout_ms);
	json_t *doc = rc == 0 && resp.status == 200 && resp.body
			      ? json_loadb(resp.body, resp.body_len, 0, NULL)
			      : NULL;
	if (rc == 0)
		rc = !doc ? ERR_PARSE : discovery_apply(d, doc, clock_now(d->clock));
	if (rc && !d->failing)
		log_warn(d->log, "cannot copy the gateway's registry (%s, status %d): calls keep "
				 "the last copy, then go through the gateway",
			 err_name(rc), resp.status);
	else if (!rc && d->failing)
		log_info(d->log, "copying the gateway's registry again");
	d->failing = rc != 0;
	json_decref(doc);
	msg_resp_clear(&resp);
	registry_expire(d->reg, clock_now(d->clock));
	return rc;
}

/* Sleeps up to ms; 1 when stopping. */
static int wait_stop(discovery *d, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->mu);
	while (!d->stopping)
		if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) != 0)
			break;
	int stop = d->stopping;
	pthread_mutex_unlock(&d->mu);
	return stop;
}

static void *refresh_thread(void *arg)
{
	discovery *d = arg;
	do
		discovery_refresh(d);
	while (!wait_stop(d, d->refresh_ms));
	return NULL;
}

int discovery_start(discovery *d)
{
	if (d->started)
		return 0;
	if (pthread_create(&d->tid, NULL, refresh_thread, d) != 0)
		return ERR_INTERNAL;
	d->started = 1;
	return 0;
}
