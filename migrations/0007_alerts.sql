-- Alerts a team should hear about (budget thresholds, spend spikes). The id is
-- derived from what the alert is about (kind, scope, period, threshold), so an
-- alert is raised at most once per period whatever retries or doubled cron
-- runs happen; delivery to Slack and email is tracked separately per channel.
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
CREATE INDEX alerts_recent ON alerts (team_id, created_ms);
