/* busprobe: a consumer engine for the bus's tests (test code only). It
 * subscribes to "inventory" (consumer name "busprobe") and records every
 * effect in its table effects(id, msg_id UNIQUE, topic, key, seq, attempt,
 * n): a message applied twice shows as n = 2. A consume fails on demand
 * (for one key). */
#ifndef ECOM_TEST_BUSPROBE_H
#define ECOM_TEST_BUSPROBE_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

#include "bus/bus.h"
#include "services/engine.h"
#include "store/store.h"

#include "efix.h"

typedef struct busprobe {
	engine_ctx *ctx;
	pthread_mutex_t mu;
	char fail_key[64]; /* consume fails for messages with this key */
	int calls;         /* consume calls */
} busprobe;

extern const engine_def busprobe_engine;

/* Makes consume fail for key (NULL: never). */
void busprobe_fail(busprobe *p, const char *key);
int busprobe_calls(busprobe *p);

/* The first column of the first row of sql on s (-1 when no row); fails
 * the test on a store error. */
int64_t busprobe_int(store *s, const char *sql);

/* Events on topic inventory in a producer's outbox; effects in the
 * consumer's table. */
int64_t busprobe_events(store *producer);
int64_t busprobe_effects(store *consumer);

/* PUT /v1/inventory/{sku} {on_hand} on the inventory engine of p, as admin;
 * fails the test unless 200. */
void busprobe_set_stock(efix *p, const char *sku, int on_hand);

/* The busprobe consumer's row of b's queues (new reference). */
json_t *busprobe_row(bus *b);

#endif
