-- The developer self-view: a developer proves who they are with their enrolled
-- agent (`tally dashboard` → POST /v1/agent/self-view), which mints a one-time
-- link; confirming it starts a read-only session scoped to that developer.
-- Both are credentials, stored only as HMAC-SHA256(pepper, token), and kept
-- apart from the members' signin_links / web_sessions so that neither kind of
-- session can ever pass the other's guard.
CREATE TABLE developer_links (
  token_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL REFERENCES teams(id),
  developer_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE INDEX developer_links_developer ON developer_links (team_id, developer_id);

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
CREATE INDEX developer_sessions_developer ON developer_sessions (team_id, developer_id);
