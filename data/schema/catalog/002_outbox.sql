-- catalog: the outbox of product events, written in the same transaction
-- as the change they announce; the event bus publishes them (topic
-- "catalog", key the sku, payload JSON; the shapes are described in
-- src/services/catalog.c and doc/architecture.md). The outbox every
-- service has (src/bus/outbox.h): IF NOT EXISTS, because the bus's own
-- migration may have made it first in a database created before this one.
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    traceparent TEXT
);
