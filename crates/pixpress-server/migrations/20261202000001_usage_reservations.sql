-- Hard quotas hold exactly under concurrency: a request reserves its input bytes before any
-- work with one conditional UPDATE on its `usage` row (`bytes + reserved + n <= quota`; the row
-- lock makes the check and the add one step on PostgreSQL, the single writer on SQLite), then
-- either commits them (moved into `bytes`, reservation deleted, one transaction) or releases
-- them. Each reservation has a lease: one left by an instance that died is expired and given
-- back by the next reservation of the same key.
ALTER TABLE usage ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0;

CREATE TABLE usage_reservations (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    month TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

CREATE INDEX usage_reservations_key_expiry ON usage_reservations (key_id, month, expires_at_ms);
