-- The expiry sweep reads HELD reservations by expiry time; nothing else
-- reads this index. Kept to HELD rows and keyed by expires_at alone, its
-- entries are smaller, and a commit, release or expiry only takes its row
-- out (before, the row moved to another status's part of the index: a
-- second index page written). Partial indexes: SQLite 3.8 and PostgreSQL.
DROP INDEX reservations_status_expires;
CREATE INDEX reservations_held_expires ON reservations (expires_at) WHERE status = 'HELD';
