/* inventory: stock per sku and reservations against it. A stock row holds
 * on_hand and reserved (available = on_hand - reserved); the admin sets
 * on_hand, reservations move units into reserved, a commit turns them into
 * sold (on_hand and reserved both drop), a release or an expiry returns
 * them. Every change is written to the stock ledger and announced in the
 * outbox in the same transaction. Reservations are all-or-nothing across
 * their items, idempotent on reservation_id, and never oversell, also with
 * several replicas on one database. */
#ifndef ECOM_INVENTORY_H
#define ECOM_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "services/engine.h"
#include "store/store.h"

extern const engine_def inventory_engine;

/* A reservation's life: HELD, then exactly one of the others. */
enum inventory_state {
	INVENTORY_HELD = 0,
	INVENTORY_COMMITTED,
	INVENTORY_RELEASED,
	INVENTORY_EXPIRED,
	INVENTORY_NSTATES
};

/* "HELD", ...; "?" for a value out of range. Never NULL. */
const char *inventory_state_name(int state);
/* The state called name, or -1. */
int inventory_state_parse(const char *name);
/* 0 when from -> to is an edge of the state machine, ERR_STATE otherwise. */
int inventory_state_edge(int from, int to);

/* Checks the invariants on the inventory database s:
 *   - every stock row has on_hand >= 0, reserved >= 0, available >= 0;
 *   - reserved equals the units of the sku's HELD reservations;
 *   - the ledger sums to on_hand and to reserved, per sku;
 *   - on_hand moved only by initial loads, admin sets and commits.
 * Returns 0 when all hold, ERR_STATE when any fails, or a store error. When
 * report is not NULL it gets a new reference (caller frees) to
 * {"ok": bool, "violations": [{"check", "sku", "message", ...}]}, also on
 * a store error (ok false, the error as one violation). */
int inventory_check_invariants(store *s, json_t **report);

/* Gives every sku of the product file at path (a JSON array of objects with
 * "sku") on_hand units, when the stock table is empty; records each in the
 * ledger (reason "initial"). One transaction; safe against replicas starting
 * together. Returns the number of skus stocked (0 when the table was not
 * empty) or a negative error with err filled. Exposed for tests. */
int inventory_load_file(engine_ctx *ctx, const char *path, int64_t on_hand, char *err,
			size_t errlen);

/* For tests of group commits: while held (on != 0), write operations of
 * the engine eng queue up and none runs; releasing lets the queued ones run
 * as one batch (up to 64). inventory_queued says how many are waiting. */
void inventory_hold(void *eng, int on);
size_t inventory_queued(void *eng);

#endif
