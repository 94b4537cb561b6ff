-- The raw payment code is never stored: only the attempts and their outcome.
CREATE TABLE IF NOT EXISTS orders (
    id UUID PRIMARY KEY,
    flight_id UUID NOT NULL REFERENCES flights (id),
    workflow_id VARCHAR(255) NOT NULL,
    status VARCHAR(32) NOT NULL DEFAULT 'CREATED',
    seats TEXT[] NOT NULL DEFAULT '{}',
    total_price_cents BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ,
    confirmed_at TIMESTAMPTZ,
    failure_reason TEXT,
    payment_attempts INTEGER NOT NULL DEFAULT 0,
    last_payment_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT orders_workflow_id_unique UNIQUE (workflow_id),
    CONSTRAINT orders_status_check CHECK (status IN (
        'CREATED', 'SEATS_RESERVED', 'PAYMENT_PENDING', 'PAYMENT_PROCESSING',
        'CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED'
    )),
    CONSTRAINT orders_seats_count CHECK (cardinality(seats) <= 9),
    CONSTRAINT orders_confirmed_at CHECK ((status = 'CONFIRMED') = (confirmed_at IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS idx_orders_flight ON orders (flight_id);
CREATE INDEX IF NOT EXISTS idx_orders_status ON orders (status);
CREATE INDEX IF NOT EXISTS idx_orders_expires ON orders (expires_at)
    WHERE status IN ('SEATS_RESERVED', 'PAYMENT_PENDING');

CREATE TABLE IF NOT EXISTS payment_attempts (
    order_id UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (order_id, attempt),
    CONSTRAINT payment_attempts_attempt_check CHECK (attempt >= 1),
    CONSTRAINT payment_attempts_outcome_check CHECK (outcome IN ('SUCCEEDED', 'DECLINED', 'TIMED_OUT', 'ERROR'))
);
