-- Aggregates per quarter hour instead of per UTC hour: every UTC offset in use
-- (+05:30 India, +05:45 Nepal, +09:30 Adelaide, −03:30 Newfoundland) and every
-- DST step is a whole number of quarters, so a local day in any zone is a
-- whole number of buckets and days are exact; the team's zone can change at
-- any time because nothing is stored per local day. `branch` is in the key
-- already so cost per branch needs no second rewrite of the largest table.
-- WITHOUT ROWID: the primary key is the table, so an upsert writes one b-tree
-- instead of a rowid table plus its key index (D1 bills both).
CREATE TABLE usage_q (
  team_id TEXT NOT NULL,
  quarter INTEGER NOT NULL, -- unix quarter hour (ms / 900000)
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
  PRIMARY KEY (team_id, quarter, developer_id, project, branch, model, agent)
) WITHOUT ROWID;
-- An hour's usage moves to its first quarter: days of whole-hour zones keep
-- exactly what they had; half-hour zones keep the old rule (the hour counts for
-- the day it starts in) for rows written before this migration.
INSERT INTO usage_q (team_id, quarter, developer_id, project, branch, model, agent, requests, unpriced_requests,
  input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd)
SELECT team_id, hour * 4, developer_id, project, '', model, agent, requests, unpriced_requests,
  input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd
FROM usage_hourly;
DROP TABLE usage_hourly;

-- Sessions, the other row nearly every batch upserts, likewise become their
-- primary key: one b-tree write per upsert instead of the row plus its key
-- index (measured in BENCHMARKS.md).
CREATE TABLE sessions_v2 (
  team_id TEXT NOT NULL,
  session TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  project TEXT NOT NULL,
  agent TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  cost_micro_usd INTEGER NOT NULL DEFAULT 0,
  cost_pico_usd INTEGER NOT NULL DEFAULT 0,
  modes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (team_id, session)
) WITHOUT ROWID;
INSERT INTO sessions_v2 (team_id, session, developer_id, project, agent, start_ms, end_ms, requests, cost_micro_usd, cost_pico_usd, modes)
SELECT team_id, session, developer_id, project, agent, start_ms, end_ms, requests, cost_micro_usd, cost_pico_usd, modes FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v2 RENAME TO sessions;
