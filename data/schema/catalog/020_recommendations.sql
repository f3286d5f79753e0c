-- catalog: what the recommendations are made of, built from the orders
-- topic (order.confirmed). (The product.viewed events go to the outbox the
-- event bus makes, data/schema/bus.)

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
