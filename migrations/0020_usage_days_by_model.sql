-- The team's usage per UTC day and model (issue 12): what the per-local-day
-- chart reads for whole UTC days below the compaction watermark, moving only
-- the quarters on the short side of the zone's day boundary (from usage_m)
-- to the neighbouring local day. A local day is still a run of quarters in
-- every zone, whatever the team's zone becomes; a 200-developer year is 520
-- rows here against 34,320 in usage_m. Filled exactly as usage_m: by the
-- hourly compaction, and for late events of compacted days by the consumer's
-- guarded upsert, so it adds no row per event.
CREATE TABLE usage_md (
  team_id TEXT NOT NULL,
  day INTEGER NOT NULL, -- unix UTC day (ms / 86400000)
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
  PRIMARY KEY (team_id, day, model)
) WITHOUT ROWID;
-- usage_m holds every compacted quarter, late events included.
INSERT INTO usage_md (team_id, day, model, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd)
SELECT team_id, quarter / 96, model, SUM(requests), SUM(unpriced_requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens), SUM(cache_read_tokens),
  SUM(cost_micro_usd) + SUM(cost_pico_usd) / 1000000, SUM(cost_pico_usd) % 1000000
FROM usage_m
GROUP BY team_id, quarter / 96, model;
