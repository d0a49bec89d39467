-- Money below the micro-dollar: every cost column gains the pico-USD below
-- its whole micro-dollars (0..999999), so sums are exact without leaving
-- JavaScript's exact integer range. Rows written before this migration were
-- rounded per request by version one and stay as they are.
ALTER TABLE usage_hourly ADD COLUMN cost_pico_usd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN cost_pico_usd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE categorization_usage ADD COLUMN cost_pico_usd INTEGER NOT NULL DEFAULT 0;

-- Events whose agent priced them differently from the edge (which stores its
-- own price): an outdated price table, usually.
ALTER TABLE agent_tokens ADD COLUMN priced_differently INTEGER NOT NULL DEFAULT 0;

-- One marker per applied queue part, with the fingerprint of the whole split:
-- a resend that rolls up or splits differently (mode, prices or settings
-- changed in between) matches no part of the first send and is ignored whole.
CREATE TABLE batches_v2 (
  team_id TEXT NOT NULL,
  batch_id TEXT NOT NULL,
  part INTEGER NOT NULL,
  split TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  events INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (team_id, batch_id, part)
) WITHOUT ROWID;
-- Version one's markers were `X` (one part) or `X#k`; their split is unknown,
-- so any resend of those batches is a duplicate.
INSERT INTO batches_v2 (team_id, batch_id, part, split, developer_id, events, received_at)
SELECT team_id,
       CASE WHEN instr(batch_id, '#') > 0 THEN substr(batch_id, 1, instr(batch_id, '#') - 1) ELSE batch_id END,
       CASE WHEN instr(batch_id, '#') > 0 THEN CAST(substr(batch_id, instr(batch_id, '#') + 1) AS INTEGER) ELSE 0 END,
       'v1', developer_id, events, received_at
FROM batches;
DROP TABLE batches;
ALTER TABLE batches_v2 RENAME TO batches;

-- What each agent reports about itself on upload: events it set aside
-- (quarantined by the edge's 400s, or given up after the resend window) and
-- its version.
ALTER TABLE agent_tokens ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_tokens ADD COLUMN agent_version TEXT;
