CREATE TABLE IF NOT EXISTS flights (
    id UUID PRIMARY KEY,
    flight_number VARCHAR(10) NOT NULL,
    origin VARCHAR(3) NOT NULL,
    destination VARCHAR(3) NOT NULL,
    departure_time TIMESTAMPTZ NOT NULL,
    arrival_time TIMESTAMPTZ NOT NULL,
    total_seats INTEGER NOT NULL,
    available_seats INTEGER NOT NULL,
    price_cents BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT flights_flight_number_unique UNIQUE (flight_number),
    CONSTRAINT flights_seats_check CHECK (available_seats >= 0 AND available_seats <= total_seats),
    CONSTRAINT flights_price_check CHECK (price_cents >= 0)
);

CREATE INDEX IF NOT EXISTS idx_flights_departure ON flights (departure_time);
CREATE INDEX IF NOT EXISTS idx_flights_route ON flights (origin, destination);
