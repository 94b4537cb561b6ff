-- Answers to requests sent with an Idempotency-Key header, so a retried
-- create or payment returns the first answer instead of running again.
-- `fingerprint` is a keyed hash (HMAC) of the normalised request: a payment
-- code never appears here in a form that can be read back.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,            -- 'create' or 'pay:<order id>'
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    order_id UUID NOT NULL,
    status_code INTEGER,            -- NULL until the request has a final answer
    response JSONB,
    -- The API gave up waiting and asked the order's workflow to stand down;
    -- a retry waits for that run to end before it starts a new one.
    abandoned BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX IF NOT EXISTS idx_idempotency_keys_created ON idempotency_keys (created_at);
