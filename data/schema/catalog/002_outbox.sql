-- catalog: the outbox of product events, written in the same transaction
-- as the change they announce; a relay publishes them (topic "catalog",
-- key the sku, payload JSON; the shapes are described in
-- src/services/catalog.c). Same table as every service's outbox.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    topic      TEXT NOT NULL,
    key        TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
