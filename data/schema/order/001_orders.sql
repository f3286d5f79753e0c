-- order: orders, the checkout saga and its steps, the order queue the
-- processor consumes, and the outbox of events. Times are microseconds since
-- the epoch; money is integer minor units. Written in SQL that SQLite and
-- PostgreSQL both accept.

-- One row per order. (user_id, idem_key) is unique: two requests with one
-- Idempotency-Key make one order, also when they race (the second insert
-- finds the first). fingerprint is the canonical form of the request body;
-- response_status and response hold the first answer, replayed to a repeat.
-- items is the priced lines as JSON. status: PENDING, AWAITING_PAYMENT,
-- CONFIRMED, CANCELLED; cancel_reason: out_of_stock, payment_declined,
-- customer_cancelled, expired. source: cart or items.
CREATE TABLE orders (
    order_id        TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    status          TEXT NOT NULL,
    cancel_reason   TEXT,
    source          TEXT NOT NULL,
    items           TEXT NOT NULL,
    total_cents     BIGINT NOT NULL CHECK (total_cents >= 0),
    currency        TEXT NOT NULL,
    pay_method      TEXT NOT NULL,
    pay_token       TEXT NOT NULL,
    address_id      TEXT,
    response_status BIGINT,
    response        TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE UNIQUE INDEX orders_user_key ON orders (user_id, idem_key);
-- A user's orders, newest first, in stable pages.
CREATE INDEX orders_user_created ON orders (user_id, created_at, order_id);

-- The checkout saga of an order (one each, keyed by the order). state:
-- STARTED, RESERVING, AUTHORIZING, CONFIRMING, COMPENSATING, COMPLETED,
-- COMPENSATED. reason: why it compensates (the order's cancel_reason).
-- expires_at: no later than the stock reservation expires.
CREATE TABLE saga (
    order_id         TEXT PRIMARY KEY,
    state            TEXT NOT NULL,
    reason           TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE INDEX saga_state_updated ON saga (state, updated_at);

-- One row per step the saga has begun (reserve, authorize, enqueue,
-- capture, commit, notify, clear_cart, void, refund, release). status:
-- PENDING (begun; its outcome not known yet), SUCCEEDED, FAILED (a
-- definite refusal). attempts counts the calls made; at is the last
-- change. A row exists before the step's call is sent, so after a crash
-- the saga knows what may have happened.
CREATE TABLE saga_step (
    order_id   TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    attempts   BIGINT NOT NULL,
    detail     TEXT,
    started_at BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (order_id, name)
);

-- The order queue: one row per saga that is not finished, due at due_at.
-- An instance advancing a saga holds its lease (lease_owner its instance
-- id, lease_token its life, lease_until the end); nobody else advances it
-- until then. Rows leave in the transaction that ends the saga.
CREATE TABLE order_queue (
    order_id    TEXT PRIMARY KEY,
    due_at      BIGINT NOT NULL,
    lease_owner TEXT NOT NULL,
    lease_token TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    enqueued_at BIGINT NOT NULL
);

CREATE INDEX order_queue_due ON order_queue (due_at);

-- Events written in the same transaction as the change they announce; a
-- relay publishes them (topic "orders", key the order id, payload JSON with
-- "type": order.confirmed or order.cancelled). The notification service
-- reads order.confirmed. The shape every service's outbox has (the event
-- bus reads it), traceparent the W3C trace context or NULL.
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    traceparent TEXT
);

CREATE INDEX IF NOT EXISTS outbox_topic_id ON outbox (topic, id);
