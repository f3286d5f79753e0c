/* hist: log-linear histogram. Values below HIST_SUB have one bucket each;
 * above, each power of two [2^e, 2^(e+1)) is cut into HIST_SUB equal
 * sub-buckets of width 2^(e - HIST_SUB_BITS), so a bucket is never wider than
 * 1/HIST_SUB of its lower bound. */
#include "core/hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

hist *hist_new(void) { return calloc(1, sizeof(hist)); }

void hist_free(hist *h) { free(h); }

void hist_reset(hist *h) { memset(h, 0, sizeof(*h)); }

int hist_bucket_of(int64_t v)
{
	if (v < HIST_SUB)
		return v < 0 ? 0 : (int)v;
	if (v >= (int64_t)1 << HIST_MAX_EXP)
		return HIST_BUCKETS - 1;
	int e = 63 - __builtin_clzll((unsigned long long)v); /* HIST_SUB_BITS..HIST_MAX_EXP-1 */
	int shift = e - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (int)(v >> shift) - HIST_SUB;
}

int64_t hist_bucket_upper(int idx)
{
	if (idx < 0)
		return 0;
	if (idx >= HIST_BUCKETS)
		idx = HIST_BUCKETS - 1;
	if (idx < HIST_SUB)
		return idx;
	int shift = idx / HIST_SUB - 1;
	int64_t sub = idx % HIST_SUB;
	int64_t lower = (HIST_SUB + sub) << shift;
	return lower + ((int64_t)1 << shift) - 1;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	uint64_t r;
	return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

void hist_record(hist *h, int64_t v) { hist_record_n(h, v, 1); }

void hist_record_n(hist *h, int64_t v, uint64_t n)
{
	if (n == 0)
		return;
	if (v < 0)
		v = 0;
	if (h->count == 0) {
		h->min = v;
		h->max = v;
	} else {
		if (v < h->min)
			h->min = v;
		if (v > h->max)
			h->max = v;
	}
	h->count += n;
	uint64_t total = (uint64_t)v > UINT64_MAX / n ? UINT64_MAX : (uint64_t)v * n;
	h->sum = add_sat(h->sum, total);
	h->buckets[hist_bucket_of(v)] += n;
}

void hist_merge(hist *dst, const hist *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0) {
		dst->min = src->min;
		dst->max = src->max;
	} else {
		if (src->min < dst->min)
			dst->min = src->min;
		if (src->max > dst->max)
			dst->max = src->max;
	}
	dst->count += src->count;
	dst->sum = add_sat(dst->sum, src->sum);
	for (int i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
}

int64_t hist_percentile(const hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (!(p > 0))
		p = 0; /* also catches NaN */
	if (p > 100)
		p = 100;
	/* p * count / 100 rather than p / 100 * count: exact for integer p and
	 * realistic counts, so p99 of 10000 values is rank 9900, not 9901. The
	 * tiny downward nudge absorbs representation error of p like 99.9. */
	double x = p * (double)h->count / 100.0;
	double r = ceil(x - x * 1e-12);
	uint64_t rank = r < 1 ? 1 : (r >= (double)h->count ? h->count : (uint64_t)r);
	uint64_t cum = 0;
	int idx = HIST_BUCKETS - 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		cum += h->buckets[i];
		if (cum >= rank) {
			idx = i;
			break;
		}
	}
	int64_t v = hist_bucket_upper(idx);
	if (v > h->max)
		v = h->max;
	if (v < h->min)
		v = h->min;
	return v;
}

uint64_t hist_count_le(const hist *h, int64_t v)
{
	if (v < 0 || h->count == 0)
		return 0;
	/* The bucket holding v counts in full: a value exactly at v must be
	 * included, and the bucket cannot tell it from its neighbours. */
	int last = hist_bucket_of(v);
	uint64_t n = 0;
	for (int i = 0; i <= last; i++)
		n += h->buckets[i];
	return n;
}

double hist_mean(const hist *h) { return h->count ? (double)h->sum / (double)h->count : 0.0; }
