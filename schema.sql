-- Generated from migrations/ by tests/tests/schema.rs (TALLY_BLESS=1 cargo test -p tally-e2e --test schema).
-- Do not edit by hand: add a migration instead.

CREATE TABLE agent_tokens (
  token_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL REFERENCES teams(id),
  id TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  hostname TEXT,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER,
  revoked_at INTEGER
, priced_differently INTEGER NOT NULL DEFAULT 0, quarantined INTEGER NOT NULL DEFAULT 0, agent_version TEXT, kind TEXT NOT NULL DEFAULT 'agent'
  CHECK (kind IN ('agent', 'otlp')));

CREATE TABLE alerts (
  team_id TEXT NOT NULL,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  scope TEXT NOT NULL,
  period TEXT NOT NULL,
  threshold_pct INTEGER,
  title TEXT NOT NULL,
  detail_json TEXT NOT NULL DEFAULT '{}',
  created_ms INTEGER NOT NULL,
  dismissed_ms INTEGER,
  PRIMARY KEY (team_id, id)
);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  team_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  ip TEXT,
  details TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE "batches" (
  team_id TEXT NOT NULL,
  batch_id TEXT NOT NULL,
  part INTEGER NOT NULL,
  split TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  events INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (team_id, batch_id, part)
) WITHOUT ROWID;

CREATE TABLE branch_labels (
  team_id TEXT NOT NULL,
  project TEXT NOT NULL,
  branch TEXT NOT NULL,
  label TEXT NOT NULL,
  PRIMARY KEY (team_id, project, branch)
);

CREATE TABLE branch_names (
  team_id TEXT NOT NULL,
  project TEXT NOT NULL,
  branch TEXT NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (team_id, project, branch)
);

CREATE TABLE budgets (
  team_id TEXT NOT NULL,
  scope TEXT NOT NULL CHECK (scope IN ('team', 'project', 'developer')),
  -- '' for the team, the project hash or the developer id otherwise.
  scope_key TEXT NOT NULL DEFAULT '',
  amount_micro_usd INTEGER NOT NULL CHECK (amount_micro_usd > 0),
  -- Ascending whole percentages, "50,80,100".
  thresholds TEXT NOT NULL DEFAULT '50,80,100',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (team_id, scope, scope_key)
);

CREATE TABLE "categories" (
  team_id TEXT NOT NULL,
  day INTEGER NOT NULL, -- unix day (UTC)
  developer_id TEXT NOT NULL,
  project TEXT NOT NULL,
  category TEXT NOT NULL,
  task_hint TEXT NOT NULL,
  project_hint TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (team_id, day, developer_id, project, category, task_hint, project_hint)
) WITHOUT ROWID;

CREATE TABLE categorization_usage (
  team_id TEXT NOT NULL,
  day INTEGER NOT NULL,
  calls INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  skipped INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cost_micro_usd INTEGER NOT NULL DEFAULT 0, cost_pico_usd INTEGER NOT NULL DEFAULT 0, skipped_cap INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (team_id, day)
);

CREATE TABLE content_objects (
  team_id TEXT NOT NULL,
  key TEXT NOT NULL,
  session TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  day INTEGER NOT NULL, -- unix day (UTC) of the events it holds
  batch_id TEXT NOT NULL,
  events INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  first_ts INTEGER NOT NULL,
  last_ts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (team_id, key)
) WITHOUT ROWID;

CREATE TABLE cron_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  cron TEXT NOT NULL,
  ran_at INTEGER NOT NULL,
  details TEXT NOT NULL
);

CREATE TABLE cursor_events (
  team_id TEXT NOT NULL,
  id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY (team_id, id)
) WITHOUT ROWID;

CREATE TABLE cursor_integrations (
  team_id TEXT NOT NULL PRIMARY KEY,
  id TEXT NOT NULL,
  -- hex(nonce ‖ AES-256-GCM ciphertext ‖ tag) of the admin API key.
  key_sealed TEXT NOT NULL,
  last4 TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  -- Events before this instant were read whole; each pull starts an overlap
  -- before it (Cursor's events can arrive late) and never moves it on error.
  watermark_ms INTEGER NOT NULL,
  last_pull_ms INTEGER,
  last_ok_ms INTEGER,
  -- The last pull's failure in plain words (NULL: it worked) and its HTTP status.
  last_error TEXT,
  last_status INTEGER,
  -- Totals of what the pulls counted: events with token usage, events skipped
  -- (no token usage: request-based plans), Cursor's charge for the counted
  -- events and their list price at the edge (exact: micro-USD + pico remainder).
  events INTEGER NOT NULL DEFAULT 0,
  unpriced_events INTEGER NOT NULL DEFAULT 0,
  skipped_events INTEGER NOT NULL DEFAULT 0,
  charged_micro_usd INTEGER NOT NULL DEFAULT 0,
  charged_pico_usd INTEGER NOT NULL DEFAULT 0,
  list_micro_usd INTEGER NOT NULL DEFAULT 0,
  list_pico_usd INTEGER NOT NULL DEFAULT 0,
  first_event_ms INTEGER,
  last_event_ms INTEGER
);

CREATE TABLE cursor_users (
  team_id TEXT NOT NULL,
  email_hash TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  masked TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (team_id, email_hash)
);

CREATE TABLE deliveries (
  team_id TEXT NOT NULL,
  -- kind:subject:channel, e.g. digest_weekly:2026-11-16:<integration id>.
  key TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  channel TEXT NOT NULL,
  -- sending (claimed, posting now), sent, retry (next_attempt_ms), failed.
  state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'retry', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 1,
  http_status INTEGER,
  error TEXT,
  next_attempt_ms INTEGER,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (team_id, key)
);

CREATE TABLE developer_links (
  token_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL REFERENCES teams(id),
  developer_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

CREATE TABLE developer_sessions (
  id_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL REFERENCES teams(id),
  developer_id TEXT NOT NULL,
  -- The agent whose token minted the link: revoking it ends the session.
  agent_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

CREATE TABLE developers (
  team_id TEXT NOT NULL REFERENCES teams(id),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL, removed_at INTEGER, erased_at INTEGER, content_viewed_at INTEGER, source_path TEXT NOT NULL DEFAULT 'agent'
  CHECK (source_path IN ('agent', 'otlp')), source_since INTEGER, source_earlier TEXT NOT NULL DEFAULT '[]', otlp_logs_at INTEGER,
  PRIMARY KEY (team_id, id)
);

CREATE TABLE install_tokens (
  token_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL REFERENCES teams(id),
  developer_id TEXT NOT NULL,
  created_by TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

CREATE TABLE integrations (
  team_id TEXT NOT NULL,
  id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('slack_webhook', 'slack_bot')),
  -- Bot integrations: the channel id posted to (not a secret).
  channel TEXT NOT NULL DEFAULT '',
  -- hex(nonce ‖ AES-256-GCM ciphertext ‖ tag) of the webhook URL or bot token.
  secret_sealed TEXT NOT NULL,
  last4 TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'broken')),
  broken_reason TEXT,
  created_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  tested_ms INTEGER,
  PRIMARY KEY (team_id, id)
);

CREATE TABLE lifecycle_jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  team_id TEXT NOT NULL,
  kind TEXT NOT NULL
    CHECK (kind IN ('retention', 'hard_delete', 'content_purge', 'developer_erase')),
  subject TEXT NOT NULL DEFAULT '', -- the developer, for developer_erase
  run_day INTEGER NOT NULL, -- unix day (UTC) the job was started for
  cutoff_day INTEGER NOT NULL DEFAULT 0, -- retention: content of earlier days goes
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
  cursor TEXT,
  objects INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  rows INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE members (
  team_id TEXT NOT NULL REFERENCES teams(id),
  id TEXT NOT NULL,
  email TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
  created_at INTEGER NOT NULL, weekly_email INTEGER NOT NULL DEFAULT 0, accepted_at INTEGER, invite_failed_at INTEGER,
  PRIMARY KEY (team_id, id)
);

CREATE TABLE project_labels (
  team_id TEXT NOT NULL,
  project TEXT NOT NULL,
  label TEXT NOT NULL,
  PRIMARY KEY (team_id, project)
);

CREATE TABLE seat_plans (
  team_id TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  plan TEXT NOT NULL CHECK (plan IN ('pro', 'max_5x', 'max_20x', 'team', 'enterprise', 'custom')),
  monthly_micro_usd INTEGER NOT NULL CHECK (monthly_micro_usd >= 0),
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (team_id, developer_id)
);

CREATE TABLE session_ranks (
  team_id TEXT NOT NULL,
  day INTEGER NOT NULL, -- unix UTC day the sessions started (ms / 86400000)
  cost_ranks TEXT NOT NULL, -- JSON [[rank, cost_micro_usd], ...], rank 1 the most expensive
  span_ranks TEXT NOT NULL, -- JSON [[rank, end_ms - start_ms], ...], rank 1 the longest
  PRIMARY KEY (team_id, day)
) WITHOUT ROWID;

CREATE TABLE "sessions" (
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

CREATE TABLE signin_links (
  token_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL REFERENCES teams(id),
  member_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

CREATE TABLE team_tombstones (
  team_id TEXT PRIMARY KEY,
  deleted_at INTEGER NOT NULL,
  hard_deleted_at INTEGER,
  counts TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE teams (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  salt TEXT NOT NULL,
  privacy_mode TEXT NOT NULL DEFAULT 'off'
    CHECK (privacy_mode IN ('off', 'categorize_local', 'categorize_cloud', 'full')),
  retention_days INTEGER NOT NULL DEFAULT 90,
  rate_capacity INTEGER NOT NULL DEFAULT 10000,
  rate_per_minute INTEGER NOT NULL DEFAULT 10000,
  timezone TEXT NOT NULL DEFAULT 'UTC',
  created_at INTEGER NOT NULL
, deleted_at INTEGER, delete_after INTEGER, deleted_by TEXT, categorize_budget_micro_usd INTEGER NOT NULL DEFAULT 5000000, categorize_per_minute INTEGER NOT NULL DEFAULT 60, digest_daily INTEGER NOT NULL DEFAULT 0, digest_weekly INTEGER NOT NULL DEFAULT 1, digest_hour INTEGER NOT NULL DEFAULT 9, digest_ai_summary INTEGER NOT NULL DEFAULT 0, ship_interval_s INTEGER NOT NULL DEFAULT 300
  CHECK (ship_interval_s BETWEEN 10 AND 86400), compacted_through_day INTEGER);

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

CREATE TABLE web_sessions (
  id_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL REFERENCES teams(id),
  member_id TEXT NOT NULL,
  csrf_token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

CREATE INDEX agent_tokens_team ON agent_tokens (team_id, id);

CREATE INDEX alerts_recent ON alerts (team_id, created_ms);

CREATE INDEX audit_log_team ON audit_log (team_id, at);

CREATE INDEX content_objects_day ON content_objects (team_id, day);

CREATE INDEX content_objects_developer ON content_objects (team_id, developer_id);

CREATE INDEX content_objects_session ON content_objects (team_id, session, first_ts);

CREATE INDEX deliveries_recent ON deliveries (team_id, updated_ms);

CREATE INDEX developer_links_developer ON developer_links (team_id, developer_id);

CREATE INDEX developer_sessions_developer ON developer_sessions (team_id, developer_id);

CREATE INDEX install_tokens_team ON install_tokens (team_id);

CREATE UNIQUE INDEX lifecycle_jobs_once ON lifecycle_jobs (team_id, kind, subject, run_day);

CREATE INDEX lifecycle_jobs_pending ON lifecycle_jobs (state, id);

CREATE UNIQUE INDEX members_email ON members (team_id, email);

CREATE INDEX usage_dp_developer ON usage_dp (team_id, developer_id, day, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter);

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.at > (CAST(strftime('%s', 'now') AS INTEGER) - 730 * 86400) * 1000
  AND NOT EXISTS (SELECT 1 FROM team_tombstones t WHERE t.team_id = OLD.team_id)
BEGIN
  SELECT RAISE(ABORT, 'audit_log rows are deleted only by retention after two years or with their team');
END;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only');
END;

