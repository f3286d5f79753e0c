/* bus: the event bus. It moves the events services write to their outbox
 * (src/bus/outbox.h) to the services that consume them, with one API and
 * two drivers chosen by URL:
 *
 *   "embedded"                      the default: a consumer's host reads the
 *                                   producer's outbox as an ordered feed
 *                                   over HTTP (through the gateway) and
 *                                   keeps its position in its own database,
 *                                   in the same transaction as its effect;
 *   "kafka://HOST:PORT[,HOST:PORT]" a relay in the producer's host produces
 *                                   the outbox to Kafka (librdkafka,
 *                                   idempotent producer, acks=all) and
 *                                   consumers read with a consumer group,
 *                                   storing offsets only after their effect
 *                                   committed.
 *
 * Engines know nothing of either: a producer writes outbox rows in its own
 * transactions; a consumer lists its subscriptions in engine_def.subs and
 * gets each message through engine_def.consume, called inside a store
 * transaction the bus opened, so the effect, the inbox entry that makes
 * delivery idempotent (both drivers) and the embedded offset commit
 * together. A consume that fails is retried with backoff; after
 * bus.max_attempts the message becomes a dead letter of that consumer
 * (the bus_dead table, and with Kafka also the topic <topic>.dlq.<consumer>)
 * until an operator replays it.
 *
 * The host (ecom serve) makes one bus per store-backed service, routes
 * bus_handle() before its engine, and runs bus_start()'s thread; tests
 * call bus_step() by hand. Thread-safe. */
#ifndef ECOM_BUS_H
#define ECOM_BUS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "net/msg.h"
#include "services/engine.h"

#define BUS_TOPIC_MAX 64
#define BUS_NAME_MAX 48
#define BUS_ID_MAX 96

/* One event as a consumer sees it. Everything is borrowed for the call. */
struct bus_msg {
	const char *topic;
	const char *key;
	const char *payload;     /* the outbox row's payload (JSON text) */
	size_t payload_len;
	const char *id;          /* "<producer>:<outbox id>": unique per event */
	const char *producer;    /* the service that wrote it */
	int64_t seq;             /* its outbox id (per producer, increasing) */
	int64_t created_at;      /* µs, when it was written */
	const char *traceparent; /* W3C trace context, or NULL */
	const char *consumer;    /* the consumer it is delivered to */
	int attempt;             /* 1 on the first delivery, 2 on the first retry, ... */
};

typedef struct bus bus;

/* Test hooks: what a crash or a misbehaving network would do, on demand. */
typedef struct bus_hooks {
	/* Called by the Kafka relay after it produced outbox rows first..last
	 * and before it waits for their acknowledgements and records them as
	 * published; non-zero abandons the batch there, as a crash of the
	 * process at that point would. */
	int (*after_produce)(void *ud, int64_t first, int64_t last);
	/* Probability in [0, 1] that a delivered message is delivered a second
	 * time right away (drawn with ctx->rng). */
	double duplicate_rate;
	void *ud;
} bus_hooks;

/* 1 when s can name a topic, consumer or service on the bus (and in a
 * path as it is): 1 to 63 of a-z, 0-9, '.', '-', '_'. */
int bus_valid_name(const char *s);

/* 0 when url is "embedded" or "kafka://HOST:PORT[,HOST:PORT...]";
 * otherwise ERR_INVALID with err saying why. */
int bus_url_check(const char *url, char *err, size_t errlen);

/* A bus for the engine eng (of def; both may be NULL for a producer-only
 * bus) on ctx, which must have a store. url NULL means the configuration's
 * bus.url. Applies the bus's tables (data/schema/bus) to the store and,
 * for Kafka, creates the producer and one consumer per subscription.
 * ctx, def and eng are borrowed and outlive the bus. NULL with err filled
 * on failure. Owned: bus_free(). */
bus *bus_new(engine_ctx *ctx, const engine_def *def, void *eng, const char *url, char *err,
	     size_t errlen);
/* Stops the thread if running, closes the driver. NULL is fine. */
void bus_free(bus *b);
/* "embedded" or "kafka". */
const char *bus_driver_name(const bus *b);
void bus_set_hooks(bus *b, const bus_hooks *hooks);

/* One round of work: publish what the outbox holds past what was published
 * (Kafka), replay dead letters an operator asked for, fetch and deliver
 * each subscription's next messages, housekeeping. Returns how many
 * messages moved (>= 0), or a negative error of the store. */
int bus_step(bus *b);
/* Runs bus_step on a thread of the bus's own: again at once while there is
 * work, else every bus.poll_ms. 0 or ERR_INTERNAL. */
int bus_start(bus *b);
/* Stops that thread (returns once it has). */
void bus_stop(bus *b);

/* Answers the bus's routes and returns 1; returns 0 for any other path:
 *   GET  /v1/internal/feed/{service}/{topic}?after=&limit=  (embedded; a
 *        service identity) the outbox rows of topic after id `after`
 *   GET  /admin/queues                       (admin) this service's queues
 *   POST /admin/queues/{topic}/replay[?consumer=C] (admin) dead letters back */
int bus_handle(bus *b, msg_req *req, msg_resp *resp);

/* 0 when the bus can work (Kafka: a broker answered); else ERR_UNAVAILABLE. */
int bus_ready(bus *b);

/* This service's queues: {"service","instance","driver","queues":[
 * {"topic","consumer","role","depth","lag","lag_ms","dead_letters", ...}]}:
 * one row per topic it produces (consumer "(relay)": depth = outbox rows
 * not yet published, lag_ms = age of the oldest) and one per subscription
 * (depth = published messages not yet consumed, lag = the same in
 * messages as Kafka counts consumer lag, lag_ms = age of the oldest
 * waiting, dead_letters). New reference, NULL on a store error. */
json_t *bus_queues(bus *b);

/* Sets the gauges bus_queue_depth, bus_queue_lag_seconds and
 * bus_dead_letters{topic, consumer} in ctx->metrics from bus_queues (the
 * host calls it before rendering /metrics). A store error leaves them as
 * they were. */
void bus_export_metrics(bus *b);

/* Moves the dead letters of topic (of consumer, or of every consumer of
 * this service when NULL) back to their consumer, which delivers them again
 * before new messages; *moved gets how many. 0 or a store error. */
int bus_replay(bus *b, const char *topic, const char *consumer, int64_t *moved);

/* The services that produce topic by the configuration's bus.topics
 * (topic=service[,service...] pairs), into out (at most max names). Returns
 * how many (0 for an unknown topic). */
int bus_topic_producers(const config *cfg, const char *topic, char out[][BUS_NAME_MAX],
			int max);

/* The Kafka consumer group of consumer in the engine def run as instance
 * (may be NULL) into buf: the consumer's name, so that a service's
 * instances share the topic's partitions; for an engine whose database is
 * per instance (ENGINE_STORE_LOCAL: search's index), "consumer.instance",
 * so that every instance reads every event into its own database. 0, or
 * ERR_INVALID when it does not fit. */
int bus_group_id(const engine_def *def, const char *instance, const char *consumer, char *buf,
		 size_t len);

#endif
