-- The W3C trace context of the request that placed the order (its
-- traceparent), so that the saga's later steps, driven by the order
-- processor from the queue, continue the order's trace. NULL for sagas
-- begun before it existed (their later steps start traces of their own).
ALTER TABLE saga ADD COLUMN traceparent TEXT;
