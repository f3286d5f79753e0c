-- catalog: products. Money is integer minor units; times are microseconds
-- since the epoch. Written in SQL that SQLite and PostgreSQL both accept.
CREATE TABLE products (
    sku         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    category    TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    currency    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Listing by category pages by sku within it.
CREATE INDEX products_category_sku ON products (category, sku);
