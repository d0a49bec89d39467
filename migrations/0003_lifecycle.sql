-- Data lifecycle: content indexed per session and dated by when it was said,
-- categories attributable to a developer (so erasing one is possible),
-- resumable retention runs, soft and hard team deletion.

-- One row per sealed R2 object of Full-mode content: a session's objects are
-- found without listing a day, and retention knows each object's day.
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
CREATE INDEX content_objects_session ON content_objects (team_id, session, first_ts);
CREATE INDEX content_objects_day ON content_objects (team_id, day);
CREATE INDEX content_objects_developer ON content_objects (team_id, developer_id);

-- Categories gain the developer whose requests they describe.
CREATE TABLE categories_v2 (
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
INSERT INTO categories_v2 (team_id, day, developer_id, project, category, task_hint, project_hint, requests)
SELECT team_id, day, '', project, category, task_hint, project_hint, requests FROM categories;
DROP TABLE categories;
ALTER TABLE categories_v2 RENAME TO categories;

-- Soft deletion: ingest answers 410 and only owners may sign in until
-- delete_after, when the nightly run erases the team for good.
ALTER TABLE teams ADD COLUMN deleted_at INTEGER;
ALTER TABLE teams ADD COLUMN delete_after INTEGER;
ALTER TABLE teams ADD COLUMN deleted_by TEXT;

-- A removed developer keeps their numbers under an anonymous name when the
-- owner erased them.
ALTER TABLE developers ADD COLUMN removed_at INTEGER;
ALTER TABLE developers ADD COLUMN erased_at INTEGER;

-- When a member last read a developer's content (the Developers page shows it).
ALTER TABLE developers ADD COLUMN content_viewed_at INTEGER;

-- What survives a hard-deleted team: for the operator, nothing of its data.
CREATE TABLE team_tombstones (
  team_id TEXT PRIMARY KEY,
  deleted_at INTEGER NOT NULL,
  hard_deleted_at INTEGER,
  counts TEXT NOT NULL DEFAULT '{}'
);

-- Lifecycle work that may outlast one invocation: nightly retention and hard
-- deletion per team, purging content when a team leaves Full, erasing a
-- developer. A job resumes from its cursor; a failure stays on its row and
-- the run goes on with the next job.
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
-- A doubled cron invocation starts no second job.
CREATE UNIQUE INDEX lifecycle_jobs_once ON lifecycle_jobs (team_id, kind, subject, run_day);
CREATE INDEX lifecycle_jobs_pending ON lifecycle_jobs (state, id);

-- Hard deletion of a team is the one case in which young audit rows go:
-- allowed only once the operator's tombstone for the team exists.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.at > (CAST(strftime('%s', 'now') AS INTEGER) - 730 * 86400) * 1000
  AND NOT EXISTS (SELECT 1 FROM team_tombstones t WHERE t.team_id = OLD.team_id)
BEGIN
  SELECT RAISE(ABORT, 'audit_log rows are deleted only by retention after two years or with their team');
END;
