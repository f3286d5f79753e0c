/* bus_admin: the platform-wide view of the event bus, as the gateway
 * serves it: GET /admin/queues and POST /admin/queues/{topic}/replay are
 * asked of one healthy instance of every registered service (instances of
 * a service share its database, which holds its outbox, offsets and dead
 * letters) and the answers merged. Services without a bus answer 404 and
 * are left out; one that cannot answer is listed under "errors". */
#ifndef ECOM_BUS_ADMIN_H
#define ECOM_BUS_ADMIN_H

#include <jansson.h>

#include "net/msg.h"
#include "services/engine.h"

/* services: the "services" array of registry_to_json (borrowed). Fills
 * resp with 200 {"queues":[row + "service"], "errors":[{service, instance,
 * error}]}, rows sorted by topic, consumer, service. Calls go through
 * ctx->call with the admin token. */
void bus_admin_queues(const engine_ctx *ctx, json_t *services, msg_resp *resp);

/* Asks every service to replay topic's dead letters (of consumer, or all
 * consumers when NULL): 200 {"topic","consumer","moved","services":[{service,
 * moved}],"errors":[...]}. */
void bus_admin_replay(const engine_ctx *ctx, json_t *services, const char *topic,
		      const char *consumer, msg_resp *resp);

#endif
