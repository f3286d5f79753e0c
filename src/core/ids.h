/* ids: opaque identifiers: a prefix and 16 lowercase hex digits drawn from an
 * rng ("req_3f9a0c1d2b4e5f60"). */
#ifndef ECOM_IDS_H
#define ECOM_IDS_H

#include <stddef.h>
#include "core/rng.h"

#define IDS_MAX 64

/* Writes prefix + "_" + 16 hex digits into buf (size len, at least
 * strlen(prefix) + 18). Returns 0 or ERR_INVALID when it does not fit. */
int ids_new(rng *r, const char *prefix, char *buf, size_t len);
/* 1 if s looks like a safe id: 1..IDS_MAX-1 chars of [A-Za-z0-9_-.]. */
int ids_valid(const char *s);

#endif
