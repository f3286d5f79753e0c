-- cart: the outbox (src/bus/outbox.h) for cart.item_added, which a put
-- that grows a line writes on topic analytics (the funnel's cart step).
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    traceparent TEXT
);

CREATE INDEX IF NOT EXISTS outbox_topic_id ON outbox (topic, id);
