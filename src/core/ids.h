/* ids: opaque identifiers: a prefix and 16 lowercase hex digits drawn from an
 * rng ("req_3f9a0c1d2b4e5f60"). */
#ifndef ECOM_IDS_H
#define ECOM_IDS_H

#include <stddef.h>
#include <stdint.h>
#include "core/rng.h"

#define IDS_MAX 64

/* Writes prefix + "_" + 16 hex digits into buf (size len, at least
 * strlen(prefix) + 18). Returns 0 or ERR_INVALID when it does not fit. */
int ids_new(rng *r, const char *prefix, char *buf, size_t len);
/* Like ids_new, but the id sorts by creation time: prefix + "_" + 11 hex
 * digits of now_us in milliseconds (good until the year 2527) + 9 random
 * hex digits (36 bits: ids made in the same millisecond differ by chance
 * alone, one pair in 68 billion). A table or index keyed by such ids takes
 * each new one at its end, so a commit writes the same few pages instead
 * of a random leaf per key. The id tells when it was made. buf needs
 * strlen(prefix) + 22. */
int ids_new_timed(rng *r, int64_t now_us, const char *prefix, char *buf, size_t len);
/* 1 if s looks like a safe id: 1..IDS_MAX-1 chars of [A-Za-z0-9_-.]. */
int ids_valid(const char *s);

#endif
