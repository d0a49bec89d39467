-- OTLP ingest (issue 16). An OpenTelemetry token is a credential like an
-- agent's, issued per developer on the Tokens page; `kind` tells them apart
-- on that page (the token's prefix tells them apart at the door).
ALTER TABLE agent_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'agent'
  CHECK (kind IN ('agent', 'otlp'));
-- Which path counts this developer's Claude Code and Codex usage
-- (core::source_path): `source_path` since the latest switch `source_since`
-- (NULL: never switched), alternating at each earlier switch, kept as a JSON
-- array of instants in `source_earlier`.
ALTER TABLE developers ADD COLUMN source_path TEXT NOT NULL DEFAULT 'agent'
  CHECK (source_path IN ('agent', 'otlp'));
ALTER TABLE developers ADD COLUMN source_since INTEGER;
ALTER TABLE developers ADD COLUMN source_earlier TEXT NOT NULL DEFAULT '[]';
-- Set once the developer's OTLP log events carried requests: from then on
-- their metric data points are not counted (logs and metrics never both).
ALTER TABLE developers ADD COLUMN otlp_logs_at INTEGER;
