/* sms_sim: the SMS provider of the outside world, simulated ("sms-sim",
 * served by `ecom sim sms`): a small HTTP API in the manner of Twilio's
 * Messages resource, which keeps every text it is given.
 *
 *   POST /v1/messages  {to, body, from?}   to: E.164 ("+" and 8-15 digits);
 *        body: 1-1600 bytes of UTF-8. 201 {id, to, from, body, status:
 *        "queued", created_at}. With an Idempotency-Key header, a repeat of
 *        the key answers 200 with the first message (Idempotent-Replayed:
 *        true) and keeps nothing more.
 *
 * Operators (admin token): GET /admin/sms/messages?to=&contains=&limit=,
 * DELETE /admin/sms/messages, GET /admin/sms/stats, and GET/PUT/DELETE
 * /admin/faults/sms: an outage answers every /v1 request 503, a failed
 * draw answers its error_status, latency is waited out by the host (the
 * X-Sim-Delay-Us header, as the Stripe simulator's). Errors use the API's
 * error shape. No store: texts live in memory, the oldest dropped beyond
 * sms_sim.max_messages. Thread-safe. */
#ifndef ECOM_SMS_SIM_H
#define ECOM_SMS_SIM_H

#include "services/engine.h"

extern const engine_def sms_sim_engine;

#define SMS_SIM_MAX_MESSAGES 10000
#define SMS_SIM_MAX_BODY 1600

#endif
