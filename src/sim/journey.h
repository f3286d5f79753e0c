/* journey: what one arrival does. Its whole plan (which journey, which
 * user, and for every step the think time, sku, quantity, category, search
 * word, card token, whether to send it twice) is drawn from a generator
 * seeded by (seed, arrival index) before the first step, so the same seed
 * makes the same choices however the run goes. Also here: the request each
 * step sends (API.md's routes) and how its answer counts. */
#ifndef ECOM_JOURNEY_H
#define ECOM_JOURNEY_H

#include <stddef.h>
#include <stdint.h>

#include "sim/report.h"
#include "sim/scenario.h"

#define JOURNEY_SKU_MAX 64
#define JOURNEY_MAX_CATEGORIES 32
#define JOURNEY_MAX_WORDS 64

/* What the platform sells, read once before the run. */
typedef struct journey_catalog {
	int nskus, cap;
	char (*skus)[JOURNEY_SKU_MAX]; /* sorted, so the draws do not depend on page order */
	int ncategories;
	char categories[JOURNEY_MAX_CATEGORIES][32];
	int nwords;
	char words[JOURNEY_MAX_WORDS][32]; /* search words, when the scenario gives none */
	int hot;                           /* index of the scenario's hot sku, or -1 */
} journey_catalog;

/* An empty catalog; journey_catalog_free(). */
journey_catalog *journey_catalog_new(void);
void journey_catalog_free(journey_catalog *c);
/* Adds a product (a sku too long is skipped); its category and the first
 * word of its name (lower-cased) join the lists. 0 or ERR_NOMEM. */
int journey_catalog_add(journey_catalog *c, const char *sku, const char *category, const char *name);
/* Sorts, removes repeats and finds s's hot sku. ERR_NOT_FOUND (err says
 * which) when the hot sku is not sold or the catalog is empty while the
 * journeys need products. */
int journey_catalog_seal(journey_catalog *c, const scenario *s, char *err, size_t errlen);

typedef struct journey_step {
	scenario_action action;
	int64_t think_us; /* the pause before this step */
	int sku;          /* view, add_to_cart, checkout (explicit items): index into skus */
	int qty;
	int category;     /* browse: index into categories, -1 for all */
	int word;         /* search: index into the words (the scenario's, else the catalog's) */
	int token;        /* checkout: index into the scenario's tokens */
	int from_cart;    /* checkout: the cart (the journey put items in it), else explicit items */
	int duplicate;    /* checkout: sent a second time with the same key */
} journey_step;

typedef struct journey_plan {
	uint64_t arrival;
	int journey; /* index into the scenario's journeys */
	int user;    /* index into the user pool, -1 when no step needs one */
	int nsteps;
	journey_step steps[SCN_MAX_STEPS];
} journey_plan;

/* Plans arrival number arrival of s. c may be NULL when no step needs a
 * product. Same (s, c, seed, arrival): same plan. */
void journey_plan_make(const scenario *s, const journey_catalog *c, uint64_t seed, uint64_t arrival,
		       journey_plan *out);

typedef struct journey_req {
	const char *method;
	char target[600];
	char body[1024]; /* "" for none */
	int keep_body;   /* the answer is read (checkout) */
} journey_req;

/* The request of step i of p. order_id is the order the journey placed
 * (cancel needs it), address_id the user's address (may be NULL). 0, or
 * ERR_NOT_FOUND when the step has nothing to act on (cancel without an
 * order). */
int journey_request(const scenario *s, const journey_catalog *c, const journey_plan *p, int i,
		    const char *order_id, const char *address_id, journey_req *out);

/* How an answer to step kind a counts. from_cart: a checkout of the cart
 * (whose empty cart, emptied by another session of the same user, is an
 * expected 400). */
report_outcome journey_classify(scenario_action a, int from_cart, int status, int err,
				const char *body, size_t len);

#endif
