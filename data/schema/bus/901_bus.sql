-- The event bus's tables, applied to the database of every service that
-- runs a bus (src/bus/bus.c), after the service's own migrations. Versions
-- 900 and up are the bus's; a service's own stay below. Times are
-- microseconds since the epoch. SQL that SQLite and PostgreSQL both accept.

-- The outbox (src/bus/outbox.h): events written in the same transaction as
-- the change they announce. A service may have created it in its own
-- migrations, with these columns; then only the index is added here.
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    traceparent TEXT
);

-- The embedded feed reads one topic in id order.
CREATE INDEX IF NOT EXISTS outbox_topic_id ON outbox (topic, id);

-- Relay positions in this service's outbox. 'horizon': every row with
-- id <= pos has committed (PostgreSQL hands out ids before commit, so a
-- row may commit after a higher one; the relay moves the horizon only
-- while no writer is inside, and the feed serves no further). 'kafka':
-- every row with id <= pos was acknowledged by Kafka; owner and
-- lease_until say which instance runs the Kafka relay.
CREATE TABLE bus_relay (
    name        TEXT PRIMARY KEY,
    pos         BIGINT NOT NULL,
    owner       TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);

INSERT INTO bus_relay (name, pos, owner, lease_until) VALUES ('horizon', 0, '', 0);
INSERT INTO bus_relay (name, pos, owner, lease_until) VALUES ('kafka', 0, '', 0);

-- Embedded consumers: the last outbox id of producer's feed of topic that
-- consumer has handled, written in the transaction of the effect. owner
-- and lease_until: the instance that polls this feed now (one at a time).
CREATE TABLE bus_offsets (
    consumer    TEXT NOT NULL,
    topic       TEXT NOT NULL,
    producer    TEXT NOT NULL,
    pos         BIGINT NOT NULL,
    owner       TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (consumer, topic, producer)
);

-- Every message a consumer has handled (applied, or parked as a dead
-- letter), by its id "<producer>:<outbox id>": a message delivered again
-- (a retried fetch, a Kafka redelivery, two instances) finds its row and
-- changes nothing.
CREATE TABLE bus_inbox (
    consumer TEXT NOT NULL,
    msg_id   TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (consumer, msg_id)
);

CREATE INDEX bus_inbox_at ON bus_inbox (at);

-- Dead letters: messages whose consume failed bus.max_attempts times.
-- state DEAD waits for an operator; REPLAY is delivered again (and the row
-- deleted once that succeeds).
CREATE TABLE bus_dead (
    id          INTEGER PRIMARY KEY,
    consumer    TEXT NOT NULL,
    topic       TEXT NOT NULL,
    msg_id      TEXT NOT NULL,
    producer    TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    traceparent TEXT,
    created_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL,
    error       TEXT NOT NULL,
    state       TEXT NOT NULL,
    dead_at     BIGINT NOT NULL,
    UNIQUE (consumer, msg_id)
);

CREATE INDEX bus_dead_consumer_state ON bus_dead (consumer, state, id);
