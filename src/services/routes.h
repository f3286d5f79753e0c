/* routes: the gateway's route table. Each line maps a path prefix to one
 * or more targets, optionally weighted (a split between two versions during
 * a migration), optionally rewriting the prefix for the upstream (so /v1
 * can be sent to a service's /v2), and optionally marked deprecated with a
 * sunset date:
 *
 *     # prefix        targets                                   options
 *     /v1/products    catalog
 *     /v2/products    catalog
 *     /v1/search      catalog=90,catalog:/v2/search=10
 *     /v0/products    catalog:/v1/products   deprecated=2026-01-01 sunset=2027-01-01
 *
 * A target is SERVICE[:UPSTREAM_PREFIX][=WEIGHT] (weight 1..1000, default
 * 1). A prefix matches a path equal to it or continuing with '/'; the
 * longest matching prefix wins. Built once, then read-only. */
#ifndef ECOM_ROUTES_H
#define ECOM_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"

#define ROUTES_MAX_TARGETS 4
#define ROUTES_PREFIX_MAX 64

typedef struct route_target {
	char service[32];
	char upstream_prefix[ROUTES_PREFIX_MAX]; /* "" keeps the path as it is */
	int weight;
} route_target;

typedef struct route_entry {
	char prefix[ROUTES_PREFIX_MAX];
	route_target targets[ROUTES_MAX_TARGETS];
	int ntargets;
	int total_weight;
	int64_t deprecated_s; /* 0 when not deprecated; else seconds since the epoch */
	int64_t sunset_s;     /* 0 when no sunset */
	char successor[ROUTES_PREFIX_MAX]; /* "" or the prefix that replaces it */
} route_entry;

typedef struct routes routes;

/* Parses a table (lines as above; '#' comments). NULL with err naming the
 * line on a malformed table. Owned by the caller: routes_free(). */
routes *routes_parse(const char *text, char *err, size_t errlen);
/* The same from a file. */
routes *routes_load(const char *path, char *err, size_t errlen);
void routes_free(routes *r);
/* The table the gateway uses when none is configured. */
const char *routes_default(void);

/* The entry whose prefix matches path (the longest), or NULL. */
const route_entry *routes_match(const routes *r, const char *path);
/* The target for a draw uniform in [0, e->total_weight). */
const route_target *routes_pick(const route_entry *e, uint64_t draw);
/* The upstream path for path through e and t into out. ERR_TOO_LARGE when
 * it does not fit. */
int routes_rewrite(const route_entry *e, const route_target *t, const char *path, char *out,
		   size_t len);
/* What the gateway does to the path of a request that matched e, before it
 * forwards it (and what a service calling another directly does the same
 * way): picks the target with a draw from draws uniform in
 * [0, e->total_weight) into *t, and when that target rewrites the prefix,
 * the upstream path into out. 1 when out holds the rewritten path, 0 when
 * the path goes as it is, ERR_TOO_LARGE when the rewritten path does not
 * fit. */
int routes_forward(const route_entry *e, rng *draws, const char *path, const route_target **t,
		   char *out, size_t len);
/* Number of entries, and entry i (for listing). */
int routes_count(const routes *r);
const route_entry *routes_at(const routes *r, int i);

#endif
