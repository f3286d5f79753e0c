/* hist: a log-linear latency histogram in the spirit of HdrHistogram,
 * written here because no Debian package offers one for C. Values are
 * non-negative integers (microseconds by convention). Each power of two is
 * split into HIST_SUB linear sub-buckets, so any recorded value is reported
 * within 1/HIST_SUB (about 1.6%) of itself. Histograms merge by addition.
 * Not thread-safe: callers lock (see metrics). */
#ifndef ECOM_HIST_H
#define ECOM_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1 << HIST_SUB_BITS)
/* Values up to 2^HIST_MAX_EXP - 1 are kept exactly to the bucket; larger ones
 * are clamped into the top bucket (and still counted in max). */
#define HIST_MAX_EXP 40
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct hist {
	uint64_t count;
	uint64_t sum;
	int64_t min;
	int64_t max;
	uint64_t buckets[HIST_BUCKETS];
} hist;

/* A new empty histogram. Owned by the caller: hist_free(). */
hist *hist_new(void);
void hist_free(hist *h);
void hist_reset(hist *h);

/* Records v (negative values count as 0). */
void hist_record(hist *h, int64_t v);
/* Records v n times (a bucket received from elsewhere). */
void hist_record_n(hist *h, int64_t v, uint64_t n);
/* Adds every count of src into dst. */
void hist_merge(hist *dst, const hist *src);
/* The value at percentile p in [0, 100]: the upper bound of the bucket that
 * holds the ceil(p/100*count)-th value, capped at max. 0 when empty. */
int64_t hist_percentile(const hist *h, double p);
/* Count of values <= v (to bucket precision). */
uint64_t hist_count_le(const hist *h, int64_t v);
double hist_mean(const hist *h);

/* Bucket index of v and the largest value that index holds; exposed for
 * tests. */
int hist_bucket_of(int64_t v);
int64_t hist_bucket_upper(int idx);

#endif
