/* outbox: how an engine publishes an event: one row in its own outbox
 * table, written with the store it already holds, inside the transaction
 * that makes the change the event announces. Nothing is sent from here:
 * the event bus (src/bus/bus.h) moves committed rows, so an event exists
 * exactly when its change does.
 *
 * The outbox shape every service uses (created by the bus's schema,
 * data/schema/bus/901_bus.sql, when a service's own migrations did not):
 *
 *     CREATE TABLE outbox (
 *         id          INTEGER PRIMARY KEY,  -- the event's sequence number
 *         topic       TEXT NOT NULL,        -- "orders", "inventory", ...
 *         key         TEXT NOT NULL,        -- order id, sku: per-key order
 *         payload     TEXT NOT NULL,        -- JSON text
 *         created_at  BIGINT NOT NULL,      -- µs since the epoch
 *         traceparent TEXT                  -- W3C trace context, or NULL
 *     );
 *     CREATE INDEX outbox_topic_id ON outbox (topic, id);
 *
 * A service that creates it itself writes "CREATE TABLE IF NOT EXISTS"
 * with exactly these columns. */
#ifndef ECOM_OUTBOX_H
#define ECOM_OUTBOX_H

#include <stdint.h>

#include "store/store.h"

/* Inserts one event into s's outbox on this thread's connection (so inside
 * the caller's transaction, when one is open). payload must be JSON text;
 * traceparent may be NULL. Returns 0 or the store's error: a failed insert
 * must fail the change. */
int outbox_put(store *s, const char *topic, const char *key, const char *payload,
	       const char *traceparent, int64_t now_us);

#endif
