-- The outbox takes the shape every service's outbox has (src/bus/outbox.h):
-- the W3C trace context of the request that wrote the event, or NULL. The
-- event bus adds the (topic, id) index it reads by.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
