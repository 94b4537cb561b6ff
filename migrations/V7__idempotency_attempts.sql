-- Idempotency-Key is an explicit state machine (src/booking/keys.rs):
-- New → Running → Answered | Abandoned → (renewed) Running. `attempt`
-- numbers the key's attempts: each is one workflow update id, and an
-- abandoned attempt (one that changed nothing) gives way to the next.
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS attempt INTEGER NOT NULL DEFAULT 0;
COMMENT ON COLUMN idempotency_keys.abandoned IS
    'the running attempt changed nothing and never will: a retry starts the next attempt';
