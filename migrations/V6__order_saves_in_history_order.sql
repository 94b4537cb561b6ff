-- The workflow's history length when it saved the row: a save from earlier
-- in the history (a late retry, a worker that lost its task) never
-- overwrites a later state. 0 for rows saved before this column.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS saved_at_event BIGINT NOT NULL DEFAULT 0;
