-- Passengers, booking references and refunds.
--
-- `passengers`: one object per seat, `{seat, givenName, familyName, email}`,
-- saved by the booking workflow with the rest of the row. Personal data:
-- read by the order's own endpoints and the booking look-up only.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS passengers JSONB NOT NULL DEFAULT '[]';

-- A confirmed order's reference: 6 characters without look-alikes
-- (src/passengers.rs), given in the transaction that sells the seats.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS reference VARCHAR(6);
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_reference_unique;
ALTER TABLE orders ADD CONSTRAINT orders_reference_unique UNIQUE (reference);
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_reference_format;
ALTER TABLE orders ADD CONSTRAINT orders_reference_format
    CHECK (reference ~ '^[2-9A-HJKMNP-Z]{6}$');

-- A paid order goes on from CONFIRMED to its refund's statuses.
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN (
    'CREATED', 'SEATS_RESERVED', 'PAYMENT_PENDING', 'PAYMENT_PROCESSING',
    'CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED',
    'REFUND_PENDING', 'REFUNDED', 'REFUND_FAILED'
));
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_confirmed_at;
ALTER TABLE orders ADD CONSTRAINT orders_confirmed_at CHECK (
    (status IN ('CONFIRMED', 'REFUND_PENDING', 'REFUNDED', 'REFUND_FAILED'))
    = (confirmed_at IS NOT NULL)
);

-- Orders confirmed before references existed get one now.
DO $$
DECLARE
    o RECORD;
    alphabet CONSTANT TEXT := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
    candidate TEXT;
BEGIN
    FOR o IN SELECT id FROM orders WHERE confirmed_at IS NOT NULL AND reference IS NULL LOOP
        LOOP
            candidate := '';
            FOR i IN 1..6 LOOP
                candidate := candidate
                    || substr(alphabet, 1 + floor(random() * length(alphabet))::int, 1);
            END LOOP;
            BEGIN
                UPDATE orders SET reference = candidate WHERE id = o.id;
                EXIT;
            EXCEPTION WHEN unique_violation THEN
                -- taken: draw again
            END;
        END LOOP;
    END LOOP;
END
$$;

ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_reference_when_confirmed;
ALTER TABLE orders ADD CONSTRAINT orders_reference_when_confirmed
    CHECK ((reference IS NOT NULL) = (confirmed_at IS NOT NULL));

-- One refund per booking: the order id is the key. `status` is the refund
-- workflow's progress (src/booking/refund.rs); `attempts` counts calls to
-- the payment provider.
CREATE TABLE IF NOT EXISTS refunds (
    order_id UUID PRIMARY KEY REFERENCES orders (id),
    status VARCHAR(16) NOT NULL DEFAULT 'PENDING',
    amount_cents BIGINT NOT NULL,
    -- The Idempotency-Key of the cancel request that asked for it, if any:
    -- the same key asking again gets the same answer.
    request_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    provider_ref TEXT,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    finished_at TIMESTAMPTZ,
    CONSTRAINT refunds_status_check CHECK (status IN ('PENDING', 'REFUNDED', 'FAILED')),
    CONSTRAINT refunds_amount_check CHECK (amount_cents >= 0),
    CONSTRAINT refunds_finished CHECK ((status = 'PENDING') = (finished_at IS NULL))
);

CREATE INDEX IF NOT EXISTS idx_refunds_pending ON refunds (requested_at) WHERE status = 'PENDING';

-- The simulated payment provider's own ledger of refunds it paid out, keyed
-- by the idempotency key we send it (`refund-<orderId>`), as a real
-- provider keys requests: a retried call never pays twice.
CREATE TABLE IF NOT EXISTS provider_refunds (
    idempotency_key TEXT PRIMARY KEY,
    order_id UUID NOT NULL,
    amount_cents BIGINT NOT NULL,
    provider_ref TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
