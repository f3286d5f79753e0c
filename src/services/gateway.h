/* gateway: the single entry point. Routes /v1/<resource> by prefix to a
 * service, balances over its healthy instances (least outstanding requests,
 * failing over when a connection is refused), maps an upstream timeout to
 * 504 and no instance to 503, and serves the admin API (/admin/services,
 * /admin/registry) behind the admin token.
 *
 * Resilience: every request gets a deadline (gateway.deadline_ms, or the
 * caller's X-Ecom-Deadline-Ms when sooner) that bounds every attempt and
 * travels upstream; each upstream service has a breaker and a bulkhead
 * (src/resil/guard.h, edge gateway -> service) that refuse at once with
 * 503 and X-Ecom-Refused; reads under gateway.stale_prefixes are kept and
 * served stale (X-Ecom-Stale: 1, Warning: 110) while their service fails
 * or is refused. The admin API adds /admin/breakers (this gateway's and
 * every instance's; trip/reset/disable also forwarded to every instance)
 * and /admin/faults (forwarded to every instance of the target service,
 * or to the outside-world simulator named by <target>.base_url). */
#ifndef ECOM_GATEWAY_H
#define ECOM_GATEWAY_H

#include "services/engine.h"

extern const engine_def gateway_engine;

/* Set to "1" on an answer served from the gateway's cache. */
#define GATEWAY_STALE_HEADER "X-Ecom-Stale"
/* On an answer made by the gateway in place of an unavailable service
 * ("catalog-listing": search answered from the catalog's listing). */
#define GATEWAY_FALLBACK_HEADER "X-Ecom-Fallback"

/* The service that owns path ("/v1/products/x" -> "catalog"), or NULL. */
const char *gateway_route_service(const char *path);

#endif
