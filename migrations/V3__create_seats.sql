-- Holds live in Redis; Postgres records only what is sold ("booked").
CREATE TABLE IF NOT EXISTS seats (
    id VARCHAR(10) NOT NULL,
    flight_id UUID NOT NULL REFERENCES flights (id) ON DELETE CASCADE,
    row_num INTEGER NOT NULL,
    col VARCHAR(1) NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'available',
    order_id UUID REFERENCES orders (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (flight_id, id),
    CONSTRAINT seats_status_check CHECK (status IN ('available', 'booked')),
    CONSTRAINT seats_booked_has_order CHECK ((status = 'booked') = (order_id IS NOT NULL)),
    CONSTRAINT seats_col_check CHECK (col IN ('A', 'B', 'C', 'D', 'E', 'F')),
    CONSTRAINT seats_row_check CHECK (row_num >= 1)
);

CREATE INDEX IF NOT EXISTS idx_seats_status ON seats (flight_id, status);
CREATE INDEX IF NOT EXISTS idx_seats_order ON seats (order_id) WHERE order_id IS NOT NULL;
