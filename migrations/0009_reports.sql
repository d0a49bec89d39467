-- Reports that go out to people (issue 11): Slack integrations with their
-- secrets sealed under KMS_KEY, the digest schedule, members' opt-in to the
-- weekly e-mail, and one delivery row per (what, period, channel) so a
-- digest or alert is posted at most once whatever retries or doubled cron
-- runs happen.
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
CREATE INDEX deliveries_recent ON deliveries (team_id, updated_ms);

ALTER TABLE teams ADD COLUMN digest_daily INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN digest_weekly INTEGER NOT NULL DEFAULT 1;
ALTER TABLE teams ADD COLUMN digest_hour INTEGER NOT NULL DEFAULT 9;
ALTER TABLE teams ADD COLUMN digest_ai_summary INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN weekly_email INTEGER NOT NULL DEFAULT 0;
