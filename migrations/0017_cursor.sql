-- Cursor's team usage pulled from its Admin API by the hourly cron (issue 16).
-- One integration per team. The admin API key is sealed like the Slack
-- secrets (reports::vault, AAD = team ‖ id) and never shown again.
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

-- Ids (core::cursor::event_id, keyed with the team salt) of the Cursor events
-- already queued, so an event read by two overlapping pulls counts once.
-- Rows older than the overlap are pruned by the pulls.
CREATE TABLE cursor_events (
  team_id TEXT NOT NULL,
  id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY (team_id, id)
) WITHOUT ROWID;

-- Cursor users (keyed hash of the e-mail with the team salt; never the
-- address) → the developer their usage counts for, with a masked address
-- (`j…@example.com`) for the Integrations page.
CREATE TABLE cursor_users (
  team_id TEXT NOT NULL,
  email_hash TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  masked TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (team_id, email_hash)
);
