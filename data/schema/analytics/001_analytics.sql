-- analytics: aggregates built from events (topics orders and analytics).
-- Each event adds to them once (the bus's inbox makes a second delivery a
-- no-op), in the minute the event was written, so a replay or a late
-- delivery lands where the event happened. Money is integer minor units;
-- minute is minutes since the epoch. SQL that SQLite and PostgreSQL both
-- accept.

-- Per minute: product views, cart adds, confirmed and cancelled orders.
CREATE TABLE an_minutes (
    minute    BIGINT PRIMARY KEY,
    views     BIGINT NOT NULL,
    cart_adds BIGINT NOT NULL,
    orders    BIGINT NOT NULL,
    cancelled BIGINT NOT NULL
);

-- Per minute and currency: confirmed orders and their revenue.
CREATE TABLE an_revenue (
    minute        BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    orders        BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    PRIMARY KEY (minute, currency)
);

-- Per product, since the start: the funnel's steps and what it sold.
CREATE TABLE an_products (
    sku           TEXT PRIMARY KEY,
    views         BIGINT NOT NULL,
    cart_adds     BIGINT NOT NULL,
    orders        BIGINT NOT NULL,
    units         BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    currency      TEXT NOT NULL
);
