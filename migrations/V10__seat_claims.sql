-- A seat claimed in Postgres by the order paying for it (issue 23).
--
-- Accepting a payment claims every seat of the order here, in the
-- transaction that saves the order PAYMENT_PROCESSING, all or nothing and
-- only where the seat is unsold and unclaimed; from then on no other order
-- can hold or pay for it, whatever Redis remembers. The sale turns the
-- claim into the booking (`status = 'booked'`, the claim cleared, one
-- update of the row); any other save of the order (FAILED, CANCELLED, ...)
-- and the sweep's ending of an orphan release it in their transaction.
--
-- A column on `seats` rather than a `seat_claims` table: the seat's row
-- exists already and is the one the sale updates, so "one claim per seat"
-- is the primary key itself, the claim turns into the sale in the same row,
-- and the seat map reads one table. The status stays `available` while
-- claimed, so `flights.available_seats` (the unsold seats) and its
-- correction by the sweep are unchanged; readers subtract claims as they
-- subtract holds. A deleted order row drops its claims.
-- The reference is checked at commit: a payment's save claims the seats
-- before it writes the row (its deadline check comes last).
ALTER TABLE seats ADD COLUMN IF NOT EXISTS claimed_by UUID
    REFERENCES orders (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE seats DROP CONSTRAINT IF EXISTS seats_claim_unsold;
ALTER TABLE seats ADD CONSTRAINT seats_claim_unsold
    CHECK (claimed_by IS NULL OR status = 'available');
CREATE INDEX IF NOT EXISTS idx_seats_claimed ON seats (claimed_by) WHERE claimed_by IS NOT NULL;
