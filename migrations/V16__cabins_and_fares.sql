-- Cabins, seat features and fares (issue 26).
--
-- `cabins`: a flight's cabins, each a range of rows with its fare and its
-- fare rules (refundable or not, the fee a cancellation keeps). Ranges of
-- one flight never overlap and cover its rows (checked where operators set
-- them, src/fares.rs). A seat outside every cabin (a flight inserted by
-- hand) is priced as ECONOMY at the flight's `price_cents`, refundable
-- without fee.
CREATE TABLE IF NOT EXISTS cabins (
    flight_id UUID NOT NULL REFERENCES flights (id) ON DELETE CASCADE,
    code VARCHAR(16) NOT NULL CHECK (code IN ('FIRST','BUSINESS','PREMIUM_ECONOMY','ECONOMY')),
    name TEXT NOT NULL,
    first_row INTEGER NOT NULL,
    last_row INTEGER NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    refundable BOOLEAN NOT NULL,
    cancellation_fee_cents BIGINT NOT NULL DEFAULT 0 CHECK (cancellation_fee_cents >= 0),
    PRIMARY KEY (flight_id, code),
    CHECK (first_row >= 1 AND last_row >= first_row)
);

-- Rows with more than the usual: exit rows and rows with extra legroom
-- (IATA seat characteristics E and L). WINDOW, AISLE and MIDDLE come from
-- the seat letters of the row.
ALTER TABLE flights ADD COLUMN IF NOT EXISTS exit_rows INTEGER[] NOT NULL DEFAULT '{}';
ALTER TABLE flights ADD COLUMN IF NOT EXISTS extra_legroom_rows INTEGER[] NOT NULL DEFAULT '{}';

-- What a feature adds to a seat's cabin fare, per flight. A feature without
-- a row here adds nothing.
CREATE TABLE IF NOT EXISTS seat_surcharges (
    flight_id UUID NOT NULL REFERENCES flights (id) ON DELETE CASCADE,
    feature VARCHAR(16) NOT NULL
        CHECK (feature IN ('WINDOW','AISLE','MIDDLE','EXIT_ROW','EXTRA_LEGROOM')),
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    PRIMARY KEY (flight_id, feature)
);

-- Each held seat's price and fare rules, fixed when the seat was taken:
-- `[{seat, cabin, priceCents, refundable, cancellationFeeCents}]`, saved by
-- the booking workflow with the rest of the row. `total_price_cents` is
-- their sum.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS seat_prices JSONB NOT NULL DEFAULT '[]';

-- The seed's flights (fixed ids, src/store/seed.rs) get a business cabin in
-- the first three rows at three times the economy fare, and an exit row with
-- extra legroom; every other flight one economy cabin over all its rows at
-- its price. Fares stay refundable without a fee: what was sold before keeps
-- its rules.
INSERT INTO cabins (flight_id, code, name, first_row, last_row, price_cents, refundable,
                    cancellation_fee_cents)
SELECT f.id, 'BUSINESS', 'Business', 1, 3, f.price_cents * 3, TRUE, 0
FROM flights f
WHERE f.id::text LIKE '550e8400-e29b-41d4-a716-44665544000_'
  AND (SELECT max(row_num) FROM seats s WHERE s.flight_id = f.id) > 3
ON CONFLICT DO NOTHING;

INSERT INTO cabins (flight_id, code, name, first_row, last_row, price_cents, refundable,
                    cancellation_fee_cents)
SELECT f.id, 'ECONOMY', 'Economy',
       CASE WHEN EXISTS (SELECT 1 FROM cabins c WHERE c.flight_id = f.id) THEN 4 ELSE 1 END,
       GREATEST(1, COALESCE((SELECT max(row_num) FROM seats s WHERE s.flight_id = f.id), 1)),
       f.price_cents, TRUE, 0
FROM flights f
ON CONFLICT DO NOTHING;

UPDATE flights f
SET exit_rows = ARRAY[(SELECT max(row_num) FROM seats s WHERE s.flight_id = f.id) / 2 + 4],
    extra_legroom_rows = ARRAY[(SELECT max(row_num) FROM seats s WHERE s.flight_id = f.id) / 2 + 4]
WHERE f.id::text LIKE '550e8400-e29b-41d4-a716-44665544000_'
  AND EXISTS (SELECT 1 FROM cabins c WHERE c.flight_id = f.id AND c.code = 'BUSINESS');

INSERT INTO seat_surcharges (flight_id, feature, amount_cents)
SELECT f.id, x.feature, x.amount
FROM flights f,
     (VALUES ('EXIT_ROW', 2500::bigint), ('EXTRA_LEGROOM', 1500::bigint)) AS x (feature, amount)
WHERE cardinality(f.exit_rows) > 0
ON CONFLICT DO NOTHING;

-- Orders from before: each seat an equal share of the total, economy rules.
UPDATE orders
SET seat_prices = (
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
        'seat', s,
        'cabin', 'ECONOMY',
        'priceCents', total_price_cents / cardinality(seats),
        'refundable', TRUE,
        'cancellationFeeCents', 0) ORDER BY s), '[]'::jsonb)
    FROM unnest(seats) AS s)
WHERE seat_prices = '[]'::jsonb AND cardinality(seats) > 0;
