-- API keys: only a SHA-256 of the key is stored; `id` is the public part printed in listings.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    plan TEXT NOT NULL,
    label TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Hosted results: the bytes live in the result store, this row says when they expire.
CREATE TABLE results (
    id TEXT PRIMARY KEY,
    ext TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

CREATE INDEX results_expires_at ON results (expires_at_ms);
