-- payment: one row per payment (an authorisation at a provider and what
-- became of it), the refunds of captured payments, and the outbox of
-- events. Money is integer minor units; times are microseconds since the
-- epoch. Written in SQL that SQLite and PostgreSQL both accept.

-- One row per payment_id: the primary key is what makes concurrent
-- duplicates of POST /v1/payments one payment. fingerprint is the canonical
-- form of the request (order_id, amount_cents, currency, method, token);
-- response_status and response are the first final answer, returned again
-- to a repeat of the same request. status: PENDING (the provider's answer
-- is not known yet), AUTHORIZED, DECLINED, FAILED (the provider refused the
-- request itself), CAPTURED, VOIDED, REFUNDED. token is kept so that an
-- authorisation left PENDING can be sent again with the same parameters
-- (and the same idempotency key).
CREATE TABLE payments (
    payment_id      TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    status          TEXT NOT NULL,
    provider        TEXT NOT NULL,
    method          TEXT NOT NULL,
    token           TEXT NOT NULL,
    amount_cents    BIGINT NOT NULL CHECK (amount_cents > 0),
    currency        TEXT NOT NULL,
    captured_cents  BIGINT NOT NULL DEFAULT 0 CHECK (captured_cents >= 0),
    refunded_cents  BIGINT NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
    provider_ref    TEXT NOT NULL DEFAULT '',
    decline_code    TEXT NOT NULL DEFAULT '',
    failure_code    TEXT NOT NULL DEFAULT '',
    fingerprint     TEXT NOT NULL,
    response_status BIGINT NOT NULL DEFAULT 0,
    response        TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CHECK (refunded_cents <= captured_cents),
    CHECK (captured_cents <= amount_cents)
);

CREATE INDEX payments_order ON payments (order_id);

-- Refunds of a payment, one row per refund_id (the caller's, or "auto-N"
-- for the N-th refund asked without one); the idempotency key sent to the
-- provider is derived from it. seq numbers a payment's refunds in the
-- order they were recorded.
CREATE TABLE payment_refunds (
    payment_id   TEXT NOT NULL,
    refund_id    TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    provider_ref TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (payment_id, refund_id)
);

-- Events written in the same transaction as the change they announce; a
-- relay publishes them (topic "payments", key the payment_id, payload JSON).
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    topic      TEXT NOT NULL,
    key        TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
