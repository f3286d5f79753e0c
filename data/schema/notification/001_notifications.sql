-- notification: what the platform told its customers, and what it needs to
-- know to tell them. Times are microseconds since the epoch. SQL that
-- SQLite and PostgreSQL both accept.

-- One row per message (an email or a text), keyed by what caused it:
-- "<kind>:<ref>:<channel>" (order_confirmed:ord_1:email). A second
-- event for the same cause finds the row and sends nothing more. status:
-- QUEUED (in the outbox - the event bus's, data/schema/bus - on its way to
-- the sender) or SENT (the relay or the provider took it).
CREATE TABLE notifications (
    notification_id TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    ref             TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    status          TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);

CREATE INDEX notifications_user ON notifications (user_id, created_at);
CREATE INDEX notifications_order ON notifications (order_id);

-- The orders the service has heard of (from topic orders): whose they are,
-- for the payment events (topic payments), which name only the order.
CREATE TABLE notify_orders (
    order_id    TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    total_cents BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    at          BIGINT NOT NULL
);

-- Payment events that came before their order's event (two topics have no
-- order between them): kept until the order's event arrives.
CREATE TABLE notify_waiting (
    order_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload  TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (order_id, event_id)
);
