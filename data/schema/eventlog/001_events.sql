-- eventlog: every event the service consumed, once per message id (the
-- bus's inbox already makes delivery idempotent; applied counts the
-- effects, so a duplicate effect would show as 2).
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    msg_id      TEXT NOT NULL UNIQUE,
    topic       TEXT NOT NULL,
    producer    TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    applied     BIGINT NOT NULL
);

CREATE INDEX events_topic_id ON events (topic, id);
