-- Refunds that end, and refunds of payments that sold nothing.
--
-- `reason`: CANCELLED, a sold booking cancelled (its refund puts the seats
-- back on sale and ends the order REFUNDED); UNSOLD, an approved payment
-- whose order was never sold (its refund touches neither seats nor the
-- order's FAILED status).
-- `round`: 1 for the first refund workflow; an operator's retry of a FAILED
-- refund starts round 2, 3, ... with a workflow id of its own
-- (`refund-<orderId>-<round>`), while the provider still keys the payout
-- by the order (one payout per order, ever).
ALTER TABLE refunds ADD COLUMN IF NOT EXISTS reason VARCHAR(16) NOT NULL DEFAULT 'CANCELLED';
ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_reason_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_reason_check CHECK (reason IN ('CANCELLED', 'UNSOLD'));
ALTER TABLE refunds ADD COLUMN IF NOT EXISTS round INTEGER NOT NULL DEFAULT 1;
ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_round_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_round_check CHECK (round >= 1);
