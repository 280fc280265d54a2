-- Asynchronous mode (`callback_url`). Each key gets its own signing secret for callback bodies:
-- a random value kept as it is (the server must compute HMACs with it), unlike the key, which is
-- stored hashed. Keys made before this migration get theirs the first time one is needed.
ALTER TABLE api_keys ADD COLUMN callback_secret TEXT;

-- Charges made under an idempotency id (a callback job's id): a job run again after a crash,
-- or on a second instance, finds its charge here and is not billed twice.
CREATE TABLE usage_charges (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    month TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    charged_at_ms BIGINT NOT NULL
);

-- One row per accepted callback job. The queue itself (what runs when, on which instance) is
-- apalis's own tables; this row is pixpress's record of the job: whose it is, where its
-- uploaded input waits, and, once made, the exact answer (status, body bytes, the time it was
-- signed at) so every delivery attempt and every re-run sends the same signed bytes.
CREATE TABLE callback_jobs (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    input_object TEXT,
    answer_status BIGINT,
    answer_body TEXT,
    signed_at BIGINT,
    deliveries BIGINT NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL DEFAULT 'queued',
    created_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT
);
