/* notification: tells customers what happened to their orders, by email
 * and by text message. A consumer of the event bus, in two stages:
 *
 * 1. Deciding (topics orders and payments, consumer "notification"):
 *    order.confirmed -> order_confirmed; order.cancelled ->
 *    payment_declined (cancel_reason payment_declined) or order_cancelled;
 *    payment.refunded -> refund. The recipient comes from the user
 *    service (GET /v1/internal/users/{id}, as a service: email, name,
 *    phone); the text from the templates (data/templates,
 *    <kind>.email.txt and <kind>.sms.txt, {{placeholders}}, see
 *    src/services/template.h). Each message is a row of `notifications`
 *    keyed "<kind>:<ref>:<channel>", inserted once (a repeated event adds
 *    nothing), and an outbox row on notifications.email (the whole RFC
 *    5322 message) or notifications.sms, in the same transaction.
 * 2. Sending (its own topics; consumers "notification-email" and
 *    "notification-sms"): an email goes to notification.smtp_url through
 *    ctx->mail (SMTP; libcurl on the daemon), a text is POSTed as JSON
 *    {to, body, from} to notification.sms_url through ctx->call, with the
 *    notification id as Idempotency-Key. A failure fails the consume: the
 *    bus retries it with backoff and, after bus.max_attempts, makes it a
 *    dead letter, which `ecom queue replay notifications.email` sends
 *    again.
 *
 * Once the relay has taken an email, the engine remembers its id (in
 * memory), so that a batch the bus rolls back and delivers again does not
 * send it twice; only a crash between the relay's answer and the commit
 * can (at least once, with a stable Message-ID a receiver can drop).
 *
 * Admin: GET /admin/notifications?type=&order_id=&user_id=&ref=&limit=&page_token=
 * lists the rows in notification_id order, a page at a time
 * ({items: [{notification_id, type, channel, order_id, ...}],
 * next_page_token}); `ecom audit` reads type=order_confirmed. */
#ifndef ECOM_NOTIFICATION_H
#define ECOM_NOTIFICATION_H

#include "services/engine.h"

extern const engine_def notification_engine;

#endif
