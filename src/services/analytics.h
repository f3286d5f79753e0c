/* analytics: what the shop's events add up to. A consumer of the event bus
 * (topics orders and analytics) that keeps aggregates in its own database:
 * orders and revenue per minute, the conversion funnel (product views ->
 * cart adds -> orders) and the top products. The events:
 *
 *   orders     order.confirmed {order_id, total_cents, currency, items:
 *              [{sku, qty, line_total_cents}]}, order.cancelled
 *   analytics  product.viewed {views: {sku: n}} (the catalog's counters,
 *              flushed every catalog.view_flush_ms), cart.item_added
 *              {user_id, sku, qty} (the cart, when a line grows)
 *
 * Each is counted in the minute it was written (its created_at), once.
 * Routes, admin only:
 *   GET /v1/analytics/summary?minutes=N            totals (all time without N)
 *   GET /v1/analytics/orders_per_minute?minutes=N  the last N minutes (60)
 *   GET /v1/analytics/funnel?minutes=N             views, cart adds, orders
 *   GET /v1/analytics/top_products?by=&limit=      by units, revenue, orders,
 *                                                  views or cart_adds */
#ifndef ECOM_ANALYTICS_H
#define ECOM_ANALYTICS_H

#include "services/engine.h"

extern const engine_def analytics_engine;

#endif
