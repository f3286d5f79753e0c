-- A reservation's items keyed by an integer, line, that the engine gives
-- out in increasing order (the largest line + 1 onwards, inside the
-- writing transaction), and found from the reservation's row by the range
-- lines_from..lines_to. Before, the key (reservation_id, sku) was a second
-- b-tree beside the table on SQLite, whose text keys are inserted wherever
-- the id sorts (with random ids a random page for every reservation); now
-- the table is the only b-tree and every insert goes at its end. The pair
-- (reservation_id, sku) stays unique: a request repeating a sku is refused
-- before anything is written, and a reservation's items are written once,
-- by the transaction that creates it.
ALTER TABLE reservations ADD COLUMN lines_from BIGINT;
ALTER TABLE reservations ADD COLUMN lines_to BIGINT;

CREATE TABLE reservation_lines (
    line           INTEGER PRIMARY KEY,
    reservation_id TEXT NOT NULL,
    sku            TEXT NOT NULL,
    qty            BIGINT NOT NULL CHECK (qty > 0)
);

-- The items there are, in reservation and sku order (lines numbered as
-- inserted), and each reservation's range; the index is only for this.
INSERT INTO reservation_lines (reservation_id, sku, qty)
    SELECT reservation_id, sku, qty FROM reservation_items ORDER BY reservation_id, sku;
CREATE INDEX reservation_lines_by_id ON reservation_lines (reservation_id);
UPDATE reservations SET
    lines_from = (SELECT MIN(l.line) FROM reservation_lines l
                  WHERE l.reservation_id = reservations.reservation_id),
    lines_to = (SELECT MAX(l.line) FROM reservation_lines l
                WHERE l.reservation_id = reservations.reservation_id);
DROP INDEX reservation_lines_by_id;

DROP TABLE reservation_items;
ALTER TABLE reservation_lines RENAME TO reservation_items;
