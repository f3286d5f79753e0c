/* arrivals: when the open model's arrivals are due. The rate follows the
 * scenario's stages (constant or ramping linearly); arrival k is due when
 * the integral of the rate reaches k + 1/2 (uniform: evenly spaced), or the
 * sum of k + 1 exponential draws (poisson, from the seed). Either way the
 * times depend only on the scenario and the seed, never on how the run
 * goes: that is what makes the model open. */
#ifndef ECOM_ARRIVALS_H
#define ECOM_ARRIVALS_H

#include <stdint.h>

#include "sim/scenario.h"

typedef struct arrivals arrivals;

/* A schedule over s's stages (borrowed; must outlive it). Owned by the
 * caller: arrivals_free(). NULL when out of memory. */
arrivals *arrivals_new(const scenario *s, uint64_t seed);
void arrivals_free(arrivals *a);
/* The due time of the next arrival, in microseconds from the start, or -1
 * once the stages are over. Each call moves to the next arrival. */
int64_t arrivals_next(arrivals *a);
/* The expected number of arrivals over the whole run (the rate's
 * integral). */
double arrivals_expected(const scenario *s);

#endif
