/* webhook_queue: the webhooks a simulated provider sends to its merchant.
 * A simulator pushes an event (its JSON body) when something happens that
 * the merchant should learn of (a capture, a refund); the simulator's tick
 * delivers what is due through the engine's outbound call (ctx->call): a
 * POST of the body to the target URL, signed by the simulator's sign
 * function at each attempt (so a signature's timestamp is the attempt's).
 * A 2xx answer delivers it; anything else (no answer, another status) is
 * tried again after 0.5, 1, 2, 4 s (WEBHOOK_QUEUE_ATTEMPTS in all), then
 * given up and counted as failed. With no target nothing is queued (the
 * event is counted as dropped); at most max_pending wait (more are
 * dropped, and counted).
 *
 * The target is the configuration's (<provider>_sim.webhook_url) or set
 * at run time (webhook_queue_set_target, which `ecom up` reaches through
 * the simulator's admin route once the gateway has bound its port).
 * Thread-safe: push from request threads, deliver from the tick. */
#ifndef ECOM_WEBHOOK_QUEUE_H
#define ECOM_WEBHOOK_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "net/msg.h"
#include "services/engine.h"

#define WEBHOOK_QUEUE_ATTEMPTS 5
#define WEBHOOK_QUEUE_BASE_DELAY_US 500000LL
#define WEBHOOK_QUEUE_TIMEOUT_MS 2000
#define WEBHOOK_QUEUE_URL_MAX 512

/* Adds the signature headers of one attempt to req (whose body is body,
 * len bytes) at now_us. 0, or non-zero to skip the attempt (counted as a
 * failed attempt). */
typedef int (*webhook_sign_fn)(void *ud, int64_t now_us, const char *body, size_t len,
			       msg_req *req);

typedef struct webhook_queue webhook_queue;

/* An empty queue with no target. Owned: webhook_queue_free(). */
webhook_queue *webhook_queue_new(size_t max_pending);
void webhook_queue_free(webhook_queue *q);

/* Sets the target ("http://HOST:PORT/PATH"; "" or NULL: none, and what is
 * pending is dropped). 0, or ERR_INVALID for anything else. */
int webhook_queue_set_target(webhook_queue *q, const char *url);

/* Queues a copy of body (an event) to be sent from now_us on. 1 when it was
 * queued, 0 when it was dropped (no target, or full). */
int webhook_queue_push(webhook_queue *q, const char *body, int64_t now_us);

/* Sends every event due at now_us (at most 64 per call) through ctx->call,
 * signing each with sign(ud, ...). Call from the tick, never holding a
 * lock a request thread needs. Returns the number delivered. */
int webhook_queue_deliver(webhook_queue *q, engine_ctx *ctx, webhook_sign_fn sign, void *ud,
			  int64_t now_us);

/* {url, pending, delivered, failed, attempts, dropped}: a new reference. */
json_t *webhook_queue_stats(webhook_queue *q);

/* A simulator's GET and PUT /admin/<provider>/webhook (admin token): the
 * stats, or {url} set as the target ("" for none; 400 naming url when it
 * is not http(s)://HOST:PORT/PATH), answered with the stats. */
void webhook_queue_admin(const engine_ctx *ctx, webhook_queue *q, msg_req *req, msg_resp *resp);

#endif
