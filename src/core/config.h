/* config: the platform's settings as key -> string, with a table of every
 * key, its default and its meaning (doc/configuration.md is generated from
 * the same table by config_write_doc()). Later sources override earlier
 * ones: defaults < file (key = value lines) < environment (ECOM_KEY, with dots
 * as underscores, upper-cased) < flags. Not thread-safe while being loaded;
 * read-only afterwards. */
#ifndef ECOM_CONFIG_H
#define ECOM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct config config;

typedef struct config_def {
	const char *key;
	const char *def;
	const char *help;
} config_def;

/* A config holding every default. Owned by the caller: config_free(). */
config *config_new(void);
void config_free(config *c);

/* Loads "key = value" lines ('#' comments, blank lines). Unknown keys and
 * malformed lines are errors naming the line: ERR_PARSE with err filled. A
 * missing file is ERR_NOT_FOUND. */
int config_load_file(config *c, const char *path, char *err, size_t errlen);
/* Reads ECOM_<KEY> for every known key (for example ECOM_HTTP_BODY_LIMIT for
 * http.body_limit). */
void config_load_env(config *c);
/* Sets key (must be known: ERR_NOT_FOUND otherwise). The value is copied. */
int config_set(config *c, const char *key, const char *value);

/* The value of key, never NULL for a known key; NULL for an unknown one. */
const char *config_get(const config *c, const char *key);
/* Integer value; ERR_PARSE when the value is not an integer. */
int config_get_int(const config *c, const char *key, int64_t *out);
/* Integer value or fallback when absent or malformed. */
int64_t config_int(const config *c, const char *key, int64_t fallback);
/* config_int within [min, max]: fallback when c is NULL or the value is
 * outside. */
int64_t config_int_range(const config *c, const char *key, int64_t fallback, int64_t min,
			 int64_t max);

/* The table of known keys, ending with a {NULL} entry. */
const config_def *config_defs(void);
/* Writes the table of known keys as Markdown (key | default | meaning) to
 * out; doc/configuration.md is made from it. Returns 0 or ERR_IO. */
int config_write_doc(FILE *out);

#endif
