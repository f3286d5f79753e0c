/* gateway: the single entry point. Routes /v1/<resource> by prefix to a
 * service, balances over its healthy instances (least outstanding requests,
 * failing over when a connection is refused), maps an upstream timeout to
 * 504 and no instance to 503, and serves the admin API (/admin/services,
 * /admin/registry) behind the admin token. */
#ifndef ECOM_GATEWAY_H
#define ECOM_GATEWAY_H

#include "services/engine.h"

extern const engine_def gateway_engine;

/* The service that owns path ("/v1/products/x" -> "catalog"), or NULL. */
const char *gateway_route_service(const char *path);

#endif
