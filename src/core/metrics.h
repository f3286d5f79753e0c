/* metrics: counters, gauges and latency histograms with labels, rendered in
 * the Prometheus text exposition format (written here: there is no C client
 * library in Debian). Labels are passed preformatted, e.g.
 *   route="/v1/products/{sku}",method="GET",status="200"
 * Thread-safe. */
#ifndef ECOM_METRICS_H
#define ECOM_METRICS_H

#include <stdint.h>
#include "core/hist.h"

typedef struct metrics metrics;

/* A new empty registry. Owned by the caller: metrics_free(). */
metrics *metrics_new(void);
void metrics_free(metrics *m);

/* Declares the HELP text of a family (optional; the first call wins). */
void metrics_help(metrics *m, const char *name, const char *help);
/* Adds delta to counter name{labels}. labels may be NULL or "". */
void metrics_count(metrics *m, const char *name, const char *labels, uint64_t delta);
/* Sets gauge name{labels}. */
void metrics_gauge(metrics *m, const char *name, const char *labels, double value);
/* Records a duration in microseconds into histogram name{labels}; rendered in
 * seconds with fixed le buckets from 0.5 ms to 10 s. */
void metrics_observe_us(metrics *m, const char *name, const char *labels, int64_t us);

/* Current value of a counter (0 when absent), for tests and stats. */
uint64_t metrics_counter_value(metrics *m, const char *name, const char *labels);
/* Copies the merged histogram of every series of family name into out
 * (reset first). Returns the number of series merged. */
int metrics_hist_merged(metrics *m, const char *name, hist *out);

/* Renders every family in text format 0.0.4. Returns a malloc'd string the
 * caller frees, or NULL on allocation failure. */
char *metrics_render(metrics *m);

#endif
