-- cart: one cart per user, one row per sku in it. price_cents, currency and
-- name are the catalog's values when the item was last put in the cart (the
-- snapshot the customer saw); checkout re-checks them against the catalog.
-- Times are microseconds since the epoch. Written in SQL that SQLite and
-- PostgreSQL both accept.
CREATE TABLE cart_items (
    user_id     TEXT NOT NULL,
    sku         TEXT NOT NULL,
    qty         BIGINT NOT NULL CHECK (qty > 0),
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    currency    TEXT NOT NULL,
    name        TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, sku)
);

-- One row per user who has ever put something in a cart. Every write that
-- checks the cart's rules (one currency, at most so many skus) first
-- upserts this row, which locks it until commit: two concurrent writes to
-- one cart then run one after the other, on PostgreSQL (read committed) as
-- on SQLite, and cannot together break a rule each checked alone.
CREATE TABLE carts (
    user_id    TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL
);
