/* inproc: a small platform in one process for the tests of event
 * consumers: named engines on efix contexts sharing one virtual clock,
 * each with its event bus when asked (embedded driver), and their outbound
 * calls routed in process: to INPROC_GW by the gateway's default route
 * table (the feed of /v1/internal/feed/{service} to that service's bus,
 * anything else to its engine), to another base URL by the aliases given.
 * A service can be marked down (its calls are refused, nothing sent).
 * bus_step is run by hand (inproc_round). Test code only: failures fail
 * the running cmocka test; include after cmocka.h. */
#ifndef ECOM_TEST_INPROC_H
#define ECOM_TEST_INPROC_H

#include <stdint.h>

#include "bus/bus.h"
#include "services/routes.h"

#include "efix.h"

#define INPROC_GW "http://gateway.test"
#define INPROC_MAX 12

typedef struct inproc_node {
	efix *f;
	bus *b;           /* NULL without a bus */
	char alias[64];   /* another base URL that reaches it, or "" */
	int down;
	struct inproc *p;
} inproc_node;

typedef struct inproc {
	inproc_node nodes[INPROC_MAX];
	int n;
	routes *table;
	clock_src *clock; /* the first node's, shared by all */
} inproc;

/* An empty platform. Owned: inproc_free(). */
inproc *inproc_new(void);
void inproc_free(inproc *p);

/* A node for service (its efix on a SQLite file, the shared clock, calls
 * routed here, gateway INPROC_GW); the engine is not created yet, so its
 * configuration may still be set. Returns its fixture. */
efix *inproc_add(inproc *p, const char *service, uint64_t seed);
/* Creates the node's engine (when engine) and its bus (when with_bus;
 * engine or not: a bus without an engine only produces). */
void inproc_start(inproc *p, const char *service, int engine, int with_bus);
/* Calls to base URL url reach service. */
void inproc_alias(inproc *p, const char *service, const char *url);
void inproc_set_down(inproc *p, const char *service, int down);
efix *inproc_efix(inproc *p, const char *service);
bus *inproc_bus(inproc *p, const char *service);

/* One round: bus_step on every bus, then the clock moves step_us. Returns
 * how many messages moved. */
int inproc_round(inproc *p, int64_t step_us);
/* Rounds until one moves nothing, at most max. */
void inproc_settle(inproc *p, int64_t step_us, int max);

/* Writes an event to service's outbox (as its engine would, in a
 * transaction of its own). */
void inproc_event(inproc *p, const char *service, const char *topic, const char *key,
		  const char *payload);

/* The first integer of sql on service's store (-1 without a row). */
int64_t inproc_int(inproc *p, const char *service, const char *sql);

#endif
