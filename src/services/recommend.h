/* recommend: the catalog's recommendations, and the gateway's fallback for
 * them (issue 7: "recommendations fall back to popular items").
 *
 * In the catalog: every confirmed order (topic orders, order.confirmed)
 * adds one to co_purchase for each ordered pair of its distinct skus (at
 * most RECOMMEND_MAX_SKUS of them) and to sku_sales for each sku (orders,
 * units). GET /v1/recommendations?sku=&limit= (public; limit 1..50,
 * default 5) answers {items: [product], source, sku}:
 *   source "co_purchase": the products most often bought with sku;
 *   source "popular": when there is no sku, or nothing was bought with it:
 *     the most ordered products (sku left out), or, before anything sold,
 *     the catalog's first products by sku.
 * A sku the catalog does not have is 404.
 *
 * At the gateway (API.md's source "fallback"): /v1/recommendations is one
 * of gateway.stale_prefixes, so the last good answer to each query is kept
 * and, besides, every "popular" answer is kept as the popular list. While
 * the catalog cannot answer (down, 5xx, breaker open), a query is answered
 * from its own kept answer or, failing that, from the popular list
 * (without the asked sku, cut to the asked limit), marked stale as any
 * stale read and with source "fallback". */
#ifndef ECOM_RECOMMEND_H
#define ECOM_RECOMMEND_H

#include <stdint.h>

#include "bus/bus.h"
#include "net/msg.h"
#include "resil/fallback.h"
#include "services/engine.h"

#define RECOMMEND_MAX_SKUS 50
#define RECOMMEND_PATH "/v1/recommendations"

/* The catalog's consume of topic orders, inside the bus's transaction on
 * ctx->store. 0, ERR_PARSE for an order.confirmed it cannot read, or a
 * store error. */
int recommend_consume(engine_ctx *ctx, const bus_msg *m);

/* The answer to GET /v1/recommendations for sku (NULL or "": none) and
 * limit (1..50, checked by the caller), on ctx->store, into resp. */
void recommend_answer(engine_ctx *ctx, const char *sku, int64_t limit, msg_resp *resp);

/* ---- for the gateway's stale cache ---- */

/* After a 200 to req: keeps it as the popular list too when req is a
 * recommendations read answered with source "popular". */
void recommend_fallback_keep(fallback *f, const msg_req *req, const msg_resp *resp, int64_t now_us);
/* For a recommendations read with no kept answer of its own: the popular
 * list into out (as fallback_get). ERR_NOT_FOUND otherwise. */
int recommend_fallback_get(fallback *f, const msg_req *req, int64_t now_us, msg_resp *out,
			   int64_t *age_us);
/* A kept answer about to be served stale to req: for a recommendations
 * read, its source becomes "fallback", the asked sku is taken out of its
 * items and they are cut to the asked limit. Anything else is left as
 * it is. */
void recommend_fallback_mark(const msg_req *req, msg_resp *resp);

#endif
