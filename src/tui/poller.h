/* poller: the console's data, fetched off the UI thread. A poller thread
 * reads the admin API every interval (what every view needs for the
 * overview's meters, plus what the current view asks for: stock, a saga's
 * timeline, the log files) into a new snapshot, which it publishes whole;
 * the UI takes the latest (poller_acquire) and draws it, never waiting on
 * the network. An actor thread carries out the operator's actions (trip a
 * breaker, set a fault, place orders...) one at a time and reports each
 * in a message. A lost connection keeps the last data, says so in the
 * snapshot's banner, and is retried every second. Owned: poller_new /
 * poller_free (which stops and joins both threads). */
#ifndef ECOM_TUI_POLLER_H
#define ECOM_TUI_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include "tui/client.h"
#include "tui/model.h"

/* How a part of the snapshot stands. */
typedef enum part_state {
	PART_NONE = 0, /* not asked for yet */
	PART_OK,
	PART_NA,  /* the platform does not serve it (an older platform: 404) */
	PART_ERR, /* the call failed; err says why (older data may be kept) */
} part_state;

typedef struct part {
	part_state state;
	char err[200];
} part;

#define POLLER_MSG 200

typedef struct snapshot {
	int refs; /* under the poller's lock */
	uint64_t seq;
	int64_t at_us; /* wall time of the fetch */
	int connected;
	int64_t lost_at_us; /* when the connection was lost (0 while connected) */
	char url[256];
	char banner[256]; /* "" when all is well */
	struct {
		part services, stats, breakers, faults, queues, sagas, stock, detail, logs;
	} pt; /* how each part stands */
	model_service *svcs;
	size_t nsvcs;
	model_breaker *breakers;
	size_t nbreakers;
	model_fault *faults;
	size_t nfaults;
	model_queue *queues;
	size_t nqueues;
	model_saga *sagas;
	size_t nsagas;
	model_stock *stock;
	size_t nstock;
	model_saga_detail *detail;
	model_logline *logs;
	size_t nlogs;
	model_meters meters;
} snapshot;

/* What the UI wants fetched besides the overview's figures. */
typedef struct poller_want {
	int stock;                 /* the Inventory view is shown */
	char stock_filter[64];     /* sku or name substring; "" for the first rows */
	char detail_id[MODEL_NAME]; /* a saga's timeline is open */
	int logs;                  /* the Logs view is shown */
	int paused;                /* no fetching (actions still run) */
	int interval_ms;
} poller_want;

typedef enum action_kind {
	ACT_TRIP,
	ACT_RESET,
	ACT_FAULT_SET,   /* a: target, body: the PUT body */
	ACT_FAULT_CLEAR, /* a: target */
	ACT_STOCK_SET,   /* a: sku, n: on_hand */
	ACT_REPLAY,      /* a: topic, b: consumer ("" for every one) */
	ACT_ORDERS,      /* n: how many; a: a sku to use first ("" for any) */
} action_kind;

typedef struct action {
	action_kind kind;
	char a[MODEL_NAME * 2], b[MODEL_NAME];
	char body[512];
	long long n;
} action;

/* Stock rows fetched per refresh at most (GET /v1/inventory/{sku} each). */
#define POLLER_STOCK_MAX 60
/* Log lines kept. */
#define POLLER_LOG_LINES 500
/* Orders in a burst at most. */
#define POLLER_BURST_MAX 500

typedef struct poller poller;

/* Starts both threads over cl (borrowed; it must outlive the poller). NULL
 * when out of memory or a thread cannot start. */
poller *poller_new(client *cl, const poller_want *want);
void poller_free(poller *p);

/* The latest snapshot (never NULL); give it back with poller_release. */
snapshot *poller_acquire(poller *p);
void poller_release(poller *p, snapshot *s);

/* Replaces what is wanted, and fetches at once when wake is set. */
void poller_want_set(poller *p, const poller_want *w, int wake);
/* Fetch now. */
void poller_wake(poller *p);
/* Queues an action for the actor. 0, or ERR_BUSY when 16 wait already. */
int poller_act(poller *p, const action *a);

/* The actor's latest word. */
typedef struct poller_news {
	char message[POLLER_MSG];
	int bad;         /* the action failed */
	int64_t at_us;   /* when (wall clock), 0 for never */
	char last_order[MODEL_NAME]; /* the latest order the console placed */
	int busy;        /* actions queued or under way */
} poller_news;

void poller_news_get(poller *p, poller_news *out);

#endif
