/* search: the product search engine. Each instance keeps its own index
 * (src/services/search_index.h) in a local SQLite database that the host
 * opens for it (engine_def.needs_store = ENGINE_STORE_LOCAL), built from the
 * catalog: by paging over GET /v1/products/_export through the gateway (a
 * rebuild, run by tick() when the index is new or an operator asks), and
 * from the catalog's product events (search_apply, the bus consumer's
 * handler).
 *
 * Routes: GET /v1/search, GET /v1/search/suggest (public);
 * POST /v1/search/_reindex, GET /v1/search/_status (admin, per instance). */
#ifndef ECOM_SEARCH_H
#define ECOM_SEARCH_H

#include <stddef.h>

#include "services/engine.h"

extern const engine_def search_engine;

/* Applies one event of the catalog's topic to the index of eng (a search
 * engine), in a transaction of its own. payload is the outbox row's JSON:
 *
 *   {"type": "product_created" | "product_updated" | "product_price_changed",
 *    "sku", "version", "name", "description", "category", "price_cents",
 *    "currency", ...}
 *   {"type": "product_deleted", "sku", "version"}
 *
 * version increases with every change of a sku; an event older than what
 * the index holds changes nothing, so events may come twice or out of
 * order. Returns 0 (applied, stale, or a type search does not use),
 * ERR_INVALID for a payload that is not such an event (dead-letter it), or
 * a store error (ERR_BUSY, ERR_UNAVAILABLE, ...: deliver it again). */
int search_apply(void *eng, const char *payload, size_t len);

/* As search_apply, inside a transaction the caller opened on the engine's
 * store on this thread (so that a consumer can commit its offset with the
 * effect); the caller commits or rolls back. */
int search_apply_in_txn(void *eng, const char *payload, size_t len);

#endif
