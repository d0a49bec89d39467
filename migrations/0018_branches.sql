-- Cost per git branch. usage_q and usage_d carry the branch's keyed hash in
-- their key since 0012/0016; these two tables name the hashes. A branch is
-- named per project (the same name in two repositories is two branches).
--
-- branch_names: the readable name a text mode (categorize_cloud, full) sent
-- with the hash, redacted on the developer's machine; the consumer keeps the
-- latest spelling. Off and categorize_local teams never write a row here.
CREATE TABLE branch_names (
  team_id TEXT NOT NULL,
  project TEXT NOT NULL,
  branch TEXT NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (team_id, project, branch)
);

-- branch_labels: what an admin called a branch hash (shown before any name).
CREATE TABLE branch_labels (
  team_id TEXT NOT NULL,
  project TEXT NOT NULL,
  branch TEXT NOT NULL,
  label TEXT NOT NULL,
  PRIMARY KEY (team_id, project, branch)
);
