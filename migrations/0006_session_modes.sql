-- The privacy modes each session's requests were captured under, one bit per
-- mode (off 1, categorize_local 2, categorize_cloud 4, full 8): the Sessions
-- pages show them as chips. Sessions recorded before this migration show none.
ALTER TABLE sessions ADD COLUMN modes INTEGER NOT NULL DEFAULT 0;
