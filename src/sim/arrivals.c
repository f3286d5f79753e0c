/* arrivals: inverting the cumulative rate of piecewise-linear stages. */
#include "sim/arrivals.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>

struct arrivals {
	const scenario *s;
	rng *r;
	int stage;          /* the stage the last arrival fell in */
	double stage_start; /* seconds from the start to that stage */
	double stage_cum;   /* the rate's integral up to that stage */
	double target;      /* the integral the next arrival waits for */
	uint64_t k;
};

arrivals *arrivals_new(const scenario *s, uint64_t seed)
{
	arrivals *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->s = s;
	if (s->arrival == SCN_POISSON && !(a->r = rng_new(seed ^ 0x61727269766c73ULL))) {
		free(a);
		return NULL;
	}
	return a;
}

void arrivals_free(arrivals *a)
{
	if (!a)
		return;
	rng_free(a->r);
	free(a);
}

static double stage_integral(const scenario_stage *st)
{
	return (st->from + st->to) / 2.0 * ((double)st->dur_us / 1e6);
}

double arrivals_expected(const scenario *s)
{
	double sum = 0;
	for (int i = 0; i < s->nstages; i++)
		sum += stage_integral(&s->stages[i]);
	return sum;
}

int64_t arrivals_next(arrivals *a)
{
	const scenario *s = a->s;
	if (a->r)
		a->target += -log(1.0 - rng_double(a->r)); /* Exp(1) */
	else
		a->target = (double)a->k + 0.5;
	a->k++;
	while (a->stage < s->nstages) {
		const scenario_stage *st = &s->stages[a->stage];
		double len = stage_integral(st), y = a->target - a->stage_cum;
		if (y <= len) {
			/* Solve from*t + (to-from)/(2D)*t^2 = y for t in the stage;
			 * this form holds for ramps both ways and for flat stages. */
			double d = (double)st->dur_us / 1e6, c = (st->to - st->from) / d;
			double disc = st->from * st->from + 2.0 * c * y;
			double den = st->from + sqrt(disc > 0 ? disc : 0);
			double t = den > 0 ? 2.0 * y / den : 0;
			if (t > d)
				t = d;
			int64_t us = (int64_t)llround((a->stage_start + t) * 1e6);
			int64_t end = (int64_t)llround((a->stage_start + d) * 1e6);
			return us < end ? us : end - 1;
		}
		a->stage_cum += len;
		a->stage_start += (double)st->dur_us / 1e6;
		a->stage++;
	}
	return -1;
}
