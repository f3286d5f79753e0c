/* catalog: the product catalog engine. Products are
 * {sku, name, description, category, price_cents, currency}; listing filters
 * by category and price and pages by sku with opaque, stable page tokens.
 * Writes need the admin token and put an event for each change in the
 * outbox (topic "catalog"; shapes in catalog.c). On first start an empty
 * catalog is loaded from the hand-made data file. */
#ifndef ECOM_CATALOG_H
#define ECOM_CATALOG_H

#include "services/engine.h"

extern const engine_def catalog_engine;

/* Most products per page of GET /v1/products/_export. */
#define CATALOG_EXPORT_MAX 5000

/* 1 when s is a valid category: 1-64 lower-case letters, digits, '-'. */
int catalog_valid_category(const char *s);

/* Loads products from a JSON file ([{sku, name, ...}]) into an empty
 * catalog; does nothing when the catalog already has products. Returns the
 * number loaded or a negative error with err filled. Exposed for tests. */
int catalog_load_file(engine_ctx *ctx, const char *path, char *err, size_t errlen);

/* The seed file of the catalog, which the inventory stocks from too:
 * catalog.seed_file when set, else <data_dir>/catalog/products.json. */
void catalog_seed_path(const engine_ctx *ctx, char *buf, size_t len);

#endif
