-- The outbox takes the shape every service's outbox has (src/bus/outbox.h):
-- the W3C trace context of the request that wrote the event, or NULL.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
