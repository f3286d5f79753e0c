/* discovery: a copy of the gateway's registry. */
#include "ops/discovery.h"
#include "core/err.h"
#include "net/http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most instances one listing may bring (more are ignored). */
#define DISCOVERY_MAX_INSTANCES 256

struct discovery {
	registry *reg;
	routes *table;
	clock_src *clock;
	logger *log;
	char url[600];   /* GET here */
	char token[256];
	int64_t timeout_ms, ttl_us;
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
	d->clock = clock;
	d->log = lg;
	snprintf(d->url, sizeof(d->url), "%s/admin/services", o->gateway_url ? o->gateway_url : "");
	snprintf(d->token, sizeof(d->token), "%s", o->admin_token ? o->admin_token : "");
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
	registry_free(d->reg);
	routes_free(d->table);
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
