-- How often agents upload what they have queued (`/v1/agent/config`): one
-- request per interval instead of one per file change is the largest lever on
-- Worker requests, queue messages and D1 rows written per event. Agents still
-- ship at once when a batch is full, on shutdown and on `tally run --once`.
ALTER TABLE teams ADD COLUMN ship_interval_s INTEGER NOT NULL DEFAULT 300
  CHECK (ship_interval_s BETWEEN 10 AND 86400);
