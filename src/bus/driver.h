/* driver: what the bus's core (bus.c) and its drivers (bus_embedded.c,
 * bus_kafka.c) share. Internal to src/bus: nothing outside includes it.
 *
 * The core owns the tables (data/schema/bus), the delivery of a message to
 * the engine (inbox, retries, dead letters, replay), the horizon of the
 * outbox, the admin routes and the thread. A driver moves messages: it
 * publishes what the outbox holds past what was published, and fetches
 * each subscription's next messages and hands them to bus_deliver(). */
#ifndef ECOM_BUS_DRIVER_H
#define ECOM_BUS_DRIVER_H

#include <pthread.h>

#include "bus/bus.h"

/* Producers one topic may have (bus.topics). */
#define BUS_MAX_PRODUCERS 4
#define BUS_ERROR_MAX 200

/* One embedded feed a subscription reads: one producer's outbox. */
typedef struct bus_source {
	char producer[BUS_NAME_MAX];
	int loaded;          /* pos was read from bus_offsets under our lease */
	int64_t pos;         /* last outbox id handled */
	int64_t lease_until; /* µs; 0 while another instance holds the feed */
	int64_t next_fetch;  /* µs; not before (after a failed fetch) */
	int64_t next_count;  /* µs; when to ask the producer to count again */
	int64_t head;        /* the producer's horizon at the last fetch */
	int64_t pending;     /* rows after pos at the last count (-1: unknown) */
	int64_t oldest_at;   /* created_at of the first of them, 0 when none */
	char error[BUS_ERROR_MAX];
} bus_source;

/* One subscription of the engine: (topic, consumer). Fields below mu are
 * read by bus_queues() from request threads; the bus thread writes them
 * under b->mu. */
typedef struct bus_sub {
	char topic[BUS_TOPIC_MAX];
	char consumer[BUS_NAME_MAX];
	bus_source src[BUS_MAX_PRODUCERS];
	int nsrc;
	/* The message that failed last, its attempts, and when to try again. */
	char failing[BUS_ID_MAX];
	int attempts;
	int64_t retry_at;
	char error[BUS_ERROR_MAX];
	/* Counters since start. */
	int64_t applied, duplicates, failures, dead, replayed;
	void *drv; /* the driver's state for this subscription */
} bus_sub;

/* What bus_deliver did with a message. */
enum bus_outcome {
	BUS_APPLIED = 0, /* consumed and committed */
	BUS_DUPLICATE,   /* handled before: nothing done (the ack committed) */
	BUS_DEAD,        /* failed for the last time: now a dead letter (acked) */
	BUS_WAIT         /* failed; try again at s->retry_at (nothing acked) */
};

/* Runs in the delivery's transaction after the inbox and the engine: the
 * driver's own position (the embedded offset). 0 or a store error. */
typedef int (*bus_ack_fn)(bus *b, bus_sub *s, const bus_msg *m, void *ud);

struct bus_driver {
	const char *name;
	/* Creates the driver's state (b->drv_state, sub->drv). */
	int (*open)(bus *b, const char *url, char *err, size_t errlen);
	void (*close)(bus *b);
	/* Publishes outbox rows past what was published: >= 0 rows. */
	int (*relay)(bus *b);
	/* Fetches and delivers s's next messages: >= 0 moved. */
	int (*fetch)(bus *b, bus_sub *s);
	/* The published bound of the outbox ("unpublished" is above it). */
	int (*published)(bus *b, int64_t *pos);
	/* Adds depth, lag and lag_ms of s to row. */
	void (*sub_stats)(bus *b, bus_sub *s, json_t *row);
	/* A copy of a new dead letter where the driver keeps them too (Kafka:
	 * the topic <topic>.dlq.<consumer>). May be NULL. */
	void (*dead_copy)(bus *b, bus_sub *s, const bus_msg *m, const char *error);
	/* 0 when it can work. */
	int (*ready)(bus *b);
	/* Answers a route of the driver's own (the embedded feed): 1 when it
	 * did. May be NULL. */
	int (*handle)(bus *b, msg_req *req, msg_resp *resp);
};

extern const struct bus_driver bus_embedded_driver;
extern const struct bus_driver bus_kafka_driver;

struct bus {
	engine_ctx *ctx;
	const engine_def *def;
	void *eng;
	const struct bus_driver *drv;
	void *drv_state;
	char url[512];
	int pg;              /* the store is PostgreSQL */
	int has_traceparent; /* the outbox has that column */
	bus_sub *subs;
	int nsubs;
	/* Settings (config bus.*). */
	int64_t poll_ms, batch, max_attempts, retry_base_us, retry_max_us, lease_us;
	int64_t fetch_timeout_ms, retention_us, kafka_timeout_ms;
	int64_t next_prune;
	/* mu guards hooks and the subscriptions' shared fields. */
	pthread_mutex_t mu;
	bus_hooks hooks;
	/* The thread of bus_start. */
	pthread_t thread;
	pthread_cond_t cv;
	int running, stopping;
};

/* ---- for the drivers ---- */

/* Delivers the n messages of ms to s's consumer, in order, each with its
 * inbox entry and ack, in as few transactions as it can. Stops at the
 * first that has to wait (BUS_WAIT). Returns how many were handled
 * (applied, duplicate or dead: the driver moves past those), or a negative
 * store error. */
int bus_deliver(bus *b, bus_sub *s, const bus_msg *ms, int n, bus_ack_fn ack, void *ud);

/* The committed prefix of the outbox: every row with id <= *pos is
 * committed and no later commit can add one below it. */
int bus_horizon(bus *b, int64_t *pos);
/* PostgreSQL: moves the stored horizon up to the outbox's end, waiting for
 * the writers inside to finish. SQLite needs none (writers commit in id
 * order). >= 0 or a store error. */
int bus_advance_horizon(bus *b);
/* Takes or renews the lease of the relay row name for this instance: 1
 * held, 0 another instance holds it, <0 store error. */
int bus_relay_lease(bus *b, const char *name);
/* Microseconds now on the engine's clock. */
int64_t bus_now(bus *b);
/* Records err as s's last error (for /admin/queues) and logs it once. */
void bus_sub_error(bus *b, bus_sub *s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* s works again: forgets its last error unless a message of it is waiting
 * for a retry. */
void bus_sub_ok(bus *b, bus_sub *s);

#endif
