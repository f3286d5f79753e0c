-- Nothing reads reservation_items by sku alone: a reservation's items are
-- read by reservation_id (the primary key's prefix), and the invariant
-- checker's sums per sku scan the table whole either way. The index cost one
-- more b-tree page written per reservation (on 10,000 uniform skus, a
-- different page each time) and is not needed for correctness.
DROP INDEX reservation_items_sku;
