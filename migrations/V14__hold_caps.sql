-- Holds end (issue 24): a seat change restarts an order's hold but never
-- past its creation + HOLD_MAX_LIFETIME. The booking workflow saves that
-- cap with the row while the order holds seats (NULL otherwise), so the
-- status shows it from Postgres, as it shows `expires_at`.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS max_expires_at TIMESTAMPTZ;
