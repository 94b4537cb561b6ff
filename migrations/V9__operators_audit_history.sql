-- The operator console: operators and their sessions, the audit trail of
-- their actions, each order's status history, sales open or closed per
-- flight, and the reconciliation sweep's runs.

-- Operators sign in with a name and a password; only its argon2id hash
-- (PHC string) is stored.
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT operators_name_check CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$')
);

-- A session is known by the SHA-256 of its cookie's value: the value itself
-- is never stored. Removing an operator ends their sessions.
CREATE TABLE IF NOT EXISTS ops_sessions (
    id_hash TEXT PRIMARY KEY,
    operator TEXT NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS idx_ops_sessions_operator ON ops_sessions (operator);

-- Every operator action: who, what, on what, when, and how it ended.
CREATE TABLE IF NOT EXISTS ops_audit (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT
);

-- Each order's statuses with the time the database recorded them.
CREATE TABLE IF NOT EXISTS order_status_history (
    id BIGSERIAL PRIMARY KEY,
    order_id UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status VARCHAR(32) NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX IF NOT EXISTS idx_order_status_history_order ON order_status_history (order_id, id);
CREATE INDEX IF NOT EXISTS idx_order_status_history_confirmed
    ON order_status_history (at) WHERE status = 'CONFIRMED';

CREATE OR REPLACE FUNCTION orders_record_status() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status THEN
        INSERT INTO order_status_history (order_id, status) VALUES (NEW.id, NEW.status);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS orders_status_history ON orders;
CREATE TRIGGER orders_status_history AFTER INSERT OR UPDATE OF status ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_record_status();

-- Orders from before the history: their current status, as of their last change.
INSERT INTO order_status_history (order_id, status, at)
SELECT id, status, updated_at FROM orders o
WHERE NOT EXISTS (SELECT 1 FROM order_status_history h WHERE h.order_id = o.id);

-- Sales of a flight may be closed by an operator: creates are refused.
ALTER TABLE flights ADD COLUMN IF NOT EXISTS sales_open BOOLEAN NOT NULL DEFAULT TRUE;

-- A new flight is announced like a changed one, so it is live on the list.
DROP TRIGGER IF EXISTS flights_added ON flights;
CREATE TRIGGER flights_added AFTER INSERT ON flights
    FOR EACH ROW EXECUTE FUNCTION flights_announce();

-- What each run of the reconciliation sweep fixed (its report).
CREATE TABLE IF NOT EXISTS reconcile_runs (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    report JSONB NOT NULL
);
