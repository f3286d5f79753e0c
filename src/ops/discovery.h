/* discovery: the daemon host's copy of the gateway's registry, so that its
 * engine calls other services' instances directly (engine_call_service,
 * through ctx->instances and ctx->routes) instead of through the gateway.
 *
 * Each refresh (the host runs one every services.discovery_refresh_ms on
 * a thread of its own) asks the gateway for its registry (GET
 * /admin/services with the admin token, bounded in time) and applies the
 * answer to a registry (services/registry.h) of the
 * host's: each listed instance with the gateway's time of its last
 * heartbeat (so that one found dead here stays out of rotation until it
 * heartbeats again), instances the gateway no longer lists forgotten, and
 * those the gateway took out of rotation taken out here too. When the
 * gateway does not answer, the last copy is kept: its instances age out of
 * rotation over the TTL as the gateway's would, and are still tried as a
 * last resort (registry_acquire_stale) until ten TTLs. Owned by the host:
 * discovery_new / discovery_free. */
#ifndef ECOM_DISCOVERY_H
#define ECOM_DISCOVERY_H

#include <stdint.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/log.h"
#include "services/registry.h"
#include "services/routes.h"

typedef struct discovery_opts {
	const char *gateway_url; /* whose registry is copied ("http://HOST:PORT") */
	const char *admin_token; /* what GET /admin/services needs */
	int64_t timeout_ms;      /* one GET's limit (at least 10) */
	int64_t ttl_ms;          /* registry.ttl_ms: how long a heartbeat keeps an instance in rotation */
	const char *routes_file; /* the gateway's route table (gateway.routes_file); NULL or "": built in */
} discovery_opts;

typedef struct discovery discovery;

/* A discovery with an empty registry (strings copied; clock and lg
 * borrowed). NULL with err filled when the route table cannot be read or
 * out of memory. */
discovery *discovery_new(const discovery_opts *o, clock_src *clock, logger *lg, char *err,
			 size_t errlen);
/* NULL is fine. */
void discovery_free(discovery *d);
/* One refresh on the caller's thread: 0, or the reason the gateway's
 * registry could not be had (the copy is then left as it was, but
 * expired instances are forgotten). Not to be run by two threads at once. */
int discovery_refresh(discovery *d);
/* Applies a registry listing (GET /admin/services's answer) at now_us. 0,
 * or ERR_INVALID when doc is not one. */
int discovery_apply(discovery *d, const json_t *doc, int64_t now_us);

/* What ctx->instances and ctx->routes point at; they live as long as d. */
registry *discovery_registry(discovery *d);
const routes *discovery_routes(const discovery *d);

#endif
