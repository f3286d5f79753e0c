-- inventory: stock per sku, reservations and their items, the stock ledger
-- that explains every figure, and the outbox of events. Quantities are
-- whole units; times are microseconds since the epoch. Written in SQL that
-- SQLite and PostgreSQL both accept.

-- available = on_hand - reserved. The CHECKs are the last line of defence:
-- the engine's conditional updates already keep them true.
CREATE TABLE stock (
    sku        TEXT PRIMARY KEY,
    on_hand    BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved   BIGINT NOT NULL CHECK (reserved >= 0),
    updated_at BIGINT NOT NULL,
    CHECK (reserved <= on_hand)
);

-- One row per reservation_id: the primary key is what makes a concurrent
-- duplicate produce one reservation. fingerprint is the canonical form of
-- the request (order_id, sorted items, ttl_s); response is the body of the
-- first 201, returned again on a replay. status: HELD, COMMITTED, RELEASED,
-- EXPIRED.
CREATE TABLE reservations (
    reservation_id TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL,
    status         TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    response       TEXT NOT NULL,
    ttl_s          BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- The expiry sweep: HELD reservations by expiry time.
CREATE INDEX reservations_status_expires ON reservations (status, expires_at);

CREATE TABLE reservation_items (
    reservation_id TEXT NOT NULL,
    sku            TEXT NOT NULL,
    qty            BIGINT NOT NULL CHECK (qty > 0),
    PRIMARY KEY (reservation_id, sku)
);

CREATE INDEX reservation_items_sku ON reservation_items (sku);

-- Every change of a stock row: delta moves on_hand, reserved_delta moves
-- reserved. Per sku, the deltas sum to the row's figures. reason: initial,
-- set, reserve, commit, release, expired; reference: the reservation id or
-- who set it.
CREATE TABLE stock_ledger (
    id             INTEGER PRIMARY KEY,
    sku            TEXT NOT NULL,
    delta          BIGINT NOT NULL,
    reserved_delta BIGINT NOT NULL,
    reason         TEXT NOT NULL,
    reference      TEXT NOT NULL,
    at             BIGINT NOT NULL
);

CREATE INDEX stock_ledger_sku ON stock_ledger (sku, id);

-- Events written in the same transaction as the change they announce; a
-- relay publishes them (topic "inventory", key the sku, payload JSON).
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    topic      TEXT NOT NULL,
    key        TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
