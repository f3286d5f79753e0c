/* viewcount: product views counted in memory and handed over in bulk. A
 * catalog read must not write to the database, so each view only bumps a
 * counter here; the catalog's tick takes the counts every
 * catalog.view_flush_ms and writes them as one event (product.viewed on
 * topic analytics). Views since the last flush are lost with the process:
 * the funnel's first step is a measurement, not a ledger. At most max_skus
 * different skus are counted between two takes; views of others are
 * counted as dropped. Thread-safe (one mutex). */
#ifndef ECOM_VIEWCOUNT_H
#define ECOM_VIEWCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

typedef struct viewcount viewcount;

/* Owned: viewcount_free(). NULL when max_skus is 0 or out of memory. */
viewcount *viewcount_new(size_t max_skus);
void viewcount_free(viewcount *v);

/* n more views of sku. */
void viewcount_add(viewcount *v, const char *sku, int64_t n);

/* The counts since the last take, as {sku: n} (new reference, NULL when
 * there were none), leaving the counter empty; *total gets their sum. */
json_t *viewcount_take(viewcount *v, int64_t *total);

/* Takes the counts and writes them to s's outbox as one event on topic
 * analytics, {"type": "product.viewed", "views": {sku: n}, "total": n},
 * stamped now_us; when the outbox cannot take them they are counted again,
 * for the next flush. Returns how many views were written (0: none
 * waited), or the store's error. */
int viewcount_flush(viewcount *v, store *s, int64_t now_us);

/* Views not counted because max_skus skus were counted already. */
int64_t viewcount_dropped(viewcount *v);

#endif
