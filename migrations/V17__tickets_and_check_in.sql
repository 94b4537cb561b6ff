-- E-tickets and online check-in (issue 26).
--
-- A confirmed booking's passengers each get a 13-digit ticket number: the
-- airline's 3-digit prefix (TICKET_AIRLINE_PREFIX) and a 10-digit serial
-- from `ticket_serial`, given in the transaction that sells the seats. A
-- sequence never hands a value out twice (a rolled-back sale burns its
-- serials), and it never cycles: past 9999999999 it stops.
CREATE SEQUENCE IF NOT EXISTS ticket_serial
    AS BIGINT MINVALUE 1 MAXVALUE 9999999999 START 1 NO CYCLE;

CREATE TABLE IF NOT EXISTS tickets (
    order_id UUID NOT NULL REFERENCES orders (id),
    seat VARCHAR(4) NOT NULL,
    ticket_number CHAR(13) NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (order_id, seat),
    CONSTRAINT tickets_number_unique UNIQUE (ticket_number),
    CONSTRAINT tickets_number_format CHECK (ticket_number ~ '^[0-9]{13}$')
);

-- The last boarding sequence number given on each flight: a check-in takes
-- the next ones with one atomic upsert, so check-ins at once never share a
-- number.
CREATE TABLE IF NOT EXISTS checkin_sequences (
    flight_id UUID PRIMARY KEY REFERENCES flights (id),
    last_sequence INTEGER NOT NULL DEFAULT 0
);

-- One boarding pass per ticketed passenger of a checked-in booking. The
-- compartment code (F, C, E, M: the cabin of the seat's row) is kept as it
-- was at check-in, so a pass reads the same every time it is shown.
CREATE TABLE IF NOT EXISTS boarding_passes (
    order_id UUID NOT NULL,
    seat VARCHAR(4) NOT NULL,
    flight_id UUID NOT NULL REFERENCES flights (id),
    sequence INTEGER NOT NULL,
    compartment CHAR(1) NOT NULL,
    checked_in_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (order_id, seat),
    FOREIGN KEY (order_id, seat) REFERENCES tickets (order_id, seat),
    CONSTRAINT boarding_passes_sequence_unique UNIQUE (flight_id, sequence),
    CONSTRAINT boarding_passes_sequence_range CHECK (sequence BETWEEN 1 AND 9999),
    CONSTRAINT boarding_passes_compartment CHECK (compartment ~ '^[A-Z]$')
);
