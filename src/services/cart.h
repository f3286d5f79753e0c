/* cart: one cart per signed-in user, kept in the cart service's database so
 * it survives restarts. Putting an item in the cart looks the product up in
 * the catalog (through the gateway, as the cart service) and snapshots its
 * price, currency and name: the cart shows the price the customer saw, and
 * checkout re-checks it, so a changed price is shown, never silently
 * charged. A cart holds one currency and at most cart.max_skus skus.
 *
 * Public routes (the caller's own cart; there is no way to name another's):
 *   GET    /v1/cart               200 cart
 *   PUT    /v1/cart/items/{sku}   {qty} 0..99 (0 removes); 200 cart; 404 for
 *                                 a sku the catalog does not know; 503 when
 *                                 the catalog cannot be asked (cart unchanged)
 *   DELETE /v1/cart/items/{sku}   200 cart
 *   DELETE /v1/cart               200 empty cart
 * cart: {items: [{sku, name, qty, price_cents, line_total_cents, added_at}]
 *        sorted by sku, total_cents, currency (null when empty)}
 *
 * Service routes (engine_require_service; the order service's checkout):
 *   GET    /v1/internal/carts/{user_id}[?refresh=1]
 *       the cart plus user_id. With refresh=1 every item's price is asked of
 *       the catalog again and each item also gets current_price_cents,
 *       current_currency (both null when the product is gone), available
 *       and price_changed (price or currency differs from the snapshot);
 *       the cart gets price_changed (any item), available (every item) and
 *       current_total_cents (qty x current price over available items).
 *       The snapshot is not changed: putting the item again accepts the new
 *       price. 503 when any lookup fails.
 *   DELETE /v1/internal/carts/{user_id}
 *       empties it (once the order is confirmed); 200 empty cart + removed. */
#ifndef ECOM_CART_H
#define ECOM_CART_H

#include "services/engine.h"

extern const engine_def cart_engine;

#endif
