-- catalog: what the recommendations are made of, built from the orders
-- topic (order.confirmed), and the outbox of the product-view counts.

-- "Bought together": for each sku, how many confirmed orders held it and
-- other (both directions are stored, so one sku's row set is its list).
CREATE TABLE co_purchase (
    sku        TEXT NOT NULL,
    other      TEXT NOT NULL,
    orders     BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (sku, other)
);

-- What sold: confirmed orders and units per sku ("popular").
CREATE TABLE sku_sales (
    sku        TEXT PRIMARY KEY,
    orders     BIGINT NOT NULL,
    units      BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX sku_sales_rank ON sku_sales (orders, units);

-- The outbox (src/bus/outbox.h): product.viewed on topic analytics.
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    traceparent TEXT
);

CREATE INDEX IF NOT EXISTS outbox_topic_id ON outbox (topic, id);
