-- Two rollups for long ranges (issue 12): usage_m and usage_dp.

-- The team's usage per UTC quarter hour and model, without the developer,
-- project, branch or agent dimensions: what the per-local-day chart, the
-- budget projection and the model totals read. Filled by the hourly
-- compaction for compacted days only (the same transaction that fills
-- usage_d), and for late events of those days by the consumer's guarded
-- upsert, so it adds no row per event. Reads take quarters below the team's
-- watermark from here and the rest from usage_q: quarters keep every local
-- day exact in every zone whatever the team's zone becomes. A 200-developer
-- year is about 17,000 rows (usage_d: 104,000; usage_q: 2.5 M).
CREATE TABLE usage_m (
  team_id TEXT NOT NULL,
  quarter INTEGER NOT NULL, -- unix quarter hour (ms / 900000)
  model TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  unpriced_requests INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_5m_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0,
  cost_micro_usd INTEGER NOT NULL DEFAULT 0,
  cost_pico_usd INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (team_id, quarter, model)
) WITHOUT ROWID;
-- Days compacted before this table existed: their quarters are all still in
-- usage_q.
INSERT INTO usage_m (team_id, quarter, model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd)
SELECT u.team_id, u.quarter, u.model, SUM(u.requests), SUM(u.unpriced_requests), SUM(u.input_tokens), SUM(u.output_tokens), SUM(u.cache_write_5m_tokens), SUM(u.cache_write_1h_tokens), SUM(u.cache_read_tokens),
  SUM(u.cost_micro_usd) + SUM(u.cost_pico_usd) / 1000000, SUM(u.cost_pico_usd) % 1000000
FROM usage_q u JOIN teams t ON t.id = u.team_id
WHERE t.compacted_through_day IS NOT NULL AND u.quarter < (t.compacted_through_day + 1) * 96
GROUP BY u.team_id, u.quarter, u.model;

-- Whole UTC days per developer and project, without the model, branch or
-- agent dimensions: what the Developers and Projects pages, their
-- drill-downs and the self-view's projects sum over long ranges (with the
-- partial local days at the edges from usage_q, as usage_d). Filled and kept
-- exact exactly as usage_d: by compaction, and for late events of compacted
-- days by the consumer's guarded upsert.
CREATE TABLE usage_dp (
  team_id TEXT NOT NULL,
  day INTEGER NOT NULL, -- unix UTC day (ms / 86400000)
  developer_id TEXT NOT NULL,
  project TEXT NOT NULL,
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
  PRIMARY KEY (team_id, day, developer_id, project)
) WITHOUT ROWID;
-- usage_d holds every compacted day, late events included.
INSERT INTO usage_dp (team_id, day, developer_id, project, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter)
SELECT team_id, day, developer_id, project, SUM(requests), SUM(unpriced_requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(cache_read_tokens),
  SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000, SUM(cost_pico_usd) % 1000000, MAX(last_quarter)
FROM usage_d
GROUP BY team_id, day, developer_id, project;
