-- The money ledger: every charge and every refund is a row.
--
-- Written by triggers on the two tables that record money moving, not by
-- the code that writes them: an approved payment is a `payment_attempts`
-- row with outcome SUCCEEDED, a paid refund a `provider_refunds` row. So no
-- code path, present or future (the booking workflow, the refund workflow,
-- an operator's retry, the sweep refunding a payment without a sale), can
-- move money without its ledger row, and the ledger needs no change when
-- those paths do. Both tables are written with ON CONFLICT DO NOTHING on a
-- retry; an AFTER INSERT row trigger fires only for a row really inserted,
-- so a retried write never records twice.
--
-- `order_id` has no foreign key: money that moved stays on the ledger even
-- should its order's row be deleted (a discrepancy the check lists).
CREATE TABLE IF NOT EXISTS ledger (
    id BIGSERIAL PRIMARY KEY,
    order_id UUID NOT NULL,
    kind VARCHAR(8) NOT NULL,
    amount_cents BIGINT NOT NULL,
    -- `pay-<orderId>-<attempt>` for a charge, the provider's own for a refund.
    provider_ref TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT ledger_kind_check CHECK (kind IN ('CHARGE', 'REFUND')),
    CONSTRAINT ledger_amount_check CHECK (amount_cents >= 0)
);

CREATE INDEX IF NOT EXISTS idx_ledger_order ON ledger (order_id);

-- A charge: the order's total when its payment was approved.
CREATE OR REPLACE FUNCTION ledger_record_charge() RETURNS trigger AS $$
BEGIN
    IF NEW.outcome = 'SUCCEEDED' AND (TG_OP = 'INSERT' OR OLD.outcome <> 'SUCCEEDED') THEN
        -- No order row: nothing here; the attempt's own foreign key refuses it.
        INSERT INTO ledger (order_id, kind, amount_cents, provider_ref, at)
        SELECT NEW.order_id, 'CHARGE', o.total_price_cents,
               'pay-' || NEW.order_id || '-' || NEW.attempt, NEW.created_at
        FROM orders o WHERE o.id = NEW.order_id;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_record_refund() RETURNS trigger AS $$
BEGIN
    INSERT INTO ledger (order_id, kind, amount_cents, provider_ref, at)
    VALUES (NEW.order_id, 'REFUND', NEW.amount_cents, NEW.provider_ref, NEW.created_at);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- Append-only. The project runs as one database role, the tables' owner,
-- so a REVOKE would not bind it (ops_audit has none either): a trigger
-- refuses every change and every delete, for every role. Only a deliberate
-- `ALTER TABLE ledger DISABLE TRIGGER` gets past it.
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;

-- The triggers come before the backfill: creating them locks both tables
-- against writes until this migration commits, so no row lands between
-- the backfill's read and the triggers taking over.
DROP TRIGGER IF EXISTS ledger_charge ON payment_attempts;
CREATE TRIGGER ledger_charge AFTER INSERT OR UPDATE OF outcome ON payment_attempts
    FOR EACH ROW EXECUTE FUNCTION ledger_record_charge();

DROP TRIGGER IF EXISTS ledger_refund ON provider_refunds;
CREATE TRIGGER ledger_refund AFTER INSERT ON provider_refunds
    FOR EACH ROW EXECUTE FUNCTION ledger_record_refund();

DROP TRIGGER IF EXISTS ledger_append_only ON ledger;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

DROP TRIGGER IF EXISTS ledger_no_truncate ON ledger;
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Money that moved before the ledger: every approved attempt, every refund paid.
INSERT INTO ledger (order_id, kind, amount_cents, provider_ref, at)
SELECT p.order_id, 'CHARGE', o.total_price_cents,
       'pay-' || p.order_id || '-' || p.attempt, p.created_at
FROM payment_attempts p JOIN orders o ON o.id = p.order_id
WHERE p.outcome = 'SUCCEEDED'
  AND NOT EXISTS (
    SELECT 1 FROM ledger l
    WHERE l.kind = 'CHARGE' AND l.provider_ref = 'pay-' || p.order_id || '-' || p.attempt)
ORDER BY p.created_at;

INSERT INTO ledger (order_id, kind, amount_cents, provider_ref, at)
SELECT r.order_id, 'REFUND', r.amount_cents, r.provider_ref, r.created_at
FROM provider_refunds r
WHERE NOT EXISTS (
    SELECT 1 FROM ledger l
    WHERE l.kind = 'REFUND' AND l.order_id = r.order_id AND l.provider_ref = r.provider_ref)
ORDER BY r.created_at;

-- At most one approved charge per order: a second SUCCEEDED attempt for an
-- order fails its own insert (the trigger's row violates this index).
-- Created after the backfill, so an order charged twice before the ledger
-- stops this migration naming the index, instead of being hidden.
CREATE UNIQUE INDEX IF NOT EXISTS ledger_one_charge_per_order
    ON ledger (order_id) WHERE kind = 'CHARGE';
