-- A lower bound for the sessions list (issue 12). The list is the thousand
-- most expensive (or longest) sessions of a range; without an index on cost
-- or time, D1 read and sorted every session of the team, 55 ms at a year of
-- a 200-developer team. An index on `sessions` would be rewritten by every
-- session upsert. Instead compaction writes, once per team and UTC day, the
-- cost (micro-dollars) and duration of the day's sessions at a few ranks,
-- sessions counted by the day they started. The reader combines the days
-- inside its range into a floor that at least a thousand of the range's
-- sessions reach, and the sort only sees the sessions above it. The floor
-- stays a lower bound for ever: a session's cost and span only grow, its
-- time only widens (so it never leaves a range it overlapped), a session is
-- counted on one day only, and sessions are deleted only with their team.
CREATE TABLE session_ranks (
  team_id TEXT NOT NULL,
  day INTEGER NOT NULL, -- unix UTC day the sessions started (ms / 86400000)
  cost_ranks TEXT NOT NULL, -- JSON [[rank, cost_micro_usd], ...], rank 1 the most expensive
  span_ranks TEXT NOT NULL, -- JSON [[rank, end_ms - start_ms], ...], rank 1 the longest
  PRIMARY KEY (team_id, day)
) WITHOUT ROWID;
-- The compacted days of every team, from the sessions as they are now.
INSERT INTO session_ranks (team_id, day, cost_ranks, span_ranks)
SELECT team_id, day,
  json_group_array(json_array(rc, c)) FILTER (WHERE rc IN (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000)),
  json_group_array(json_array(rp, p)) FILTER (WHERE rp IN (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000))
FROM (
  SELECT s.team_id, s.start_ms / 86400000 AS day, s.cost_micro_usd AS c, s.end_ms - s.start_ms AS p,
    row_number() OVER (PARTITION BY s.team_id, s.start_ms / 86400000 ORDER BY s.cost_micro_usd DESC) AS rc,
    row_number() OVER (PARTITION BY s.team_id, s.start_ms / 86400000 ORDER BY s.end_ms - s.start_ms DESC) AS rp
  FROM sessions s JOIN teams t ON t.id = s.team_id
  WHERE s.start_ms >= 0 AND s.start_ms / 86400000 <= t.compacted_through_day
)
GROUP BY team_id, day;
