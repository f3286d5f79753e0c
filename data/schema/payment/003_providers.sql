-- payment: a second provider and the providers' webhooks.
--
-- capture_ref: the provider's capture of the payment, where refunds are
-- made (PayPal's capture id; '' for Stripe, whose refunds name the
-- PaymentIntent, provider_ref). Payments are found by their provider's
-- references when a webhook names them.
ALTER TABLE payments ADD COLUMN capture_ref TEXT NOT NULL DEFAULT '';
CREATE INDEX payments_provider_ref ON payments (provider, provider_ref);
CREATE INDEX payments_capture_ref ON payments (provider, capture_ref);

-- A refund is recorded once, whether this service asked for it or a
-- webhook told of it first: the provider's refund id is unique per payment.
CREATE UNIQUE INDEX payment_refunds_provider_ref ON payment_refunds (payment_id, provider_ref)
    WHERE provider_ref <> '';

-- Every webhook event applied, once: the key makes a second delivery of
-- the same event id change nothing. outcome: applied, already, ignored,
-- unknown_payment; payment_id the payment it concerned ('' when none).
CREATE TABLE webhook_events (
    provider    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    type        TEXT NOT NULL,
    payment_id  TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL DEFAULT '',
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, event_id)
);
