-- Every change to an order row or a flight row is announced on the channel
-- `flightctl_changes`, in the transaction that makes it, so a `serve` process
-- that LISTENs pushes it to its streams without polling anyone:
--   `o:<orderId>:<version>`  an order row changed (its new version)
--   `f:<flightId>`           the flight's seats or availability changed: its
--                            row (a sale updates `available_seats` in the
--                            transaction that books the seats) or one of its
--                            orders (whose holds change with it)
-- An order row carries a version, raised by one on every change; it is the
-- `id` of the order's server-sent events.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 1;

CREATE OR REPLACE FUNCTION orders_bump_version() RETURNS trigger AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION orders_announce() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('flightctl_changes', 'o:' || NEW.id || ':' || NEW.version);
    PERFORM pg_notify('flightctl_changes', 'f:' || NEW.flight_id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION flights_announce() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('flightctl_changes', 'f:' || NEW.id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS orders_version ON orders;
CREATE TRIGGER orders_version BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_bump_version();

DROP TRIGGER IF EXISTS orders_changed ON orders;
CREATE TRIGGER orders_changed AFTER INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_announce();

DROP TRIGGER IF EXISTS flights_changed ON flights;
CREATE TRIGGER flights_changed AFTER UPDATE ON flights
    FOR EACH ROW EXECUTE FUNCTION flights_announce();
