-- Metered usage per key per calendar month (UTC, 'YYYY-MM'). Rows are only ever added to with
-- one atomic upsert per successful request, so concurrent requests cannot lose a byte.
CREATE TABLE usage (
    key_id TEXT NOT NULL,
    month TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (key_id, month)
);
