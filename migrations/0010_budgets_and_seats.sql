-- Monthly budgets (the team's, a project's by its keyed hash, a developer's)
-- with the percentages that raise an alert, and the subscription seat each
-- developer is on. A developer without a seat row pays per token (API).
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
CREATE TABLE seat_plans (
  team_id TEXT NOT NULL,
  developer_id TEXT NOT NULL,
  plan TEXT NOT NULL CHECK (plan IN ('pro', 'max_5x', 'max_20x', 'team', 'enterprise', 'custom')),
  monthly_micro_usd INTEGER NOT NULL CHECK (monthly_micro_usd >= 0),
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (team_id, developer_id)
);
