-- Whole UTC days of usage_q, filled by compaction in the hourly cron (days
-- older than a settle window, one day per D1 transaction) so that long ranges
-- sum one row per day and key instead of up to 96. Reads take whole UTC days
-- at or below the team's watermark from here and the rest (partial local days
-- at the edges, recent days) from usage_q, so days stay exact in every zone.
-- usage_q keeps its rows; late events for a compacted day are added to both
-- tables in the consumer's transaction. `last_quarter` keeps "last seen" exact.
CREATE TABLE usage_d (
  team_id TEXT NOT NULL,
  day INTEGER NOT NULL, -- unix UTC day (ms / 86400000)
  developer_id TEXT NOT NULL,
  project TEXT NOT NULL,
  branch TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL,
  agent TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  unpriced_requests INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_5m_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0,
  cost_micro_usd INTEGER NOT NULL DEFAULT 0,
  cost_pico_usd INTEGER NOT NULL DEFAULT 0,
  last_quarter INTEGER NOT NULL,
  PRIMARY KEY (team_id, day, developer_id, project, branch, model, agent)
) WITHOUT ROWID;
-- The last UTC day copied into usage_d; NULL: none yet.
ALTER TABLE teams ADD COLUMN compacted_through_day INTEGER;
