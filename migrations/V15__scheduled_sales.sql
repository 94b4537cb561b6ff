-- Scheduled sales (issue 25): a flight may go on sale at a set time,
-- before which creates are refused (409 SALES_NOT_OPEN) and buyers wait in
-- the flight's waiting room; an operator may cap how many buyers the room
-- admits per minute. Both NULL: on sale now, admission paced by the engine
-- alone.
ALTER TABLE flights ADD COLUMN IF NOT EXISTS sales_open_at TIMESTAMPTZ;
ALTER TABLE flights ADD COLUMN IF NOT EXISTS admit_per_minute INTEGER;
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint WHERE conname = 'flights_admit_per_minute_positive'
    ) THEN
        ALTER TABLE flights ADD CONSTRAINT flights_admit_per_minute_positive
            CHECK (admit_per_minute IS NULL OR admit_per_minute > 0);
    END IF;
END $$;
