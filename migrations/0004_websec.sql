-- Web security and spend: addresses are compared case-folded everywhere
-- (bootstrap, invitations and sign-in fold them), so existing rows are
-- folded too. A row whose folded address already exists in its team is
-- left as it is rather than breaking the unique index.
UPDATE members SET email = lower(email)
WHERE email <> lower(email)
  AND NOT EXISTS (
    SELECT 1 FROM members m2
    WHERE m2.team_id = members.team_id AND m2.email = lower(members.email)
  );

-- Categorize-cloud spend cap: a daily budget (whole micro-USD; $5 by
-- default) and a per-minute call cap per team. Prompts beyond them are
-- accepted uncategorized and counted in `skipped_cap` (also in `skipped`).
ALTER TABLE teams ADD COLUMN categorize_budget_micro_usd INTEGER NOT NULL DEFAULT 5000000;
ALTER TABLE teams ADD COLUMN categorize_per_minute INTEGER NOT NULL DEFAULT 60;
ALTER TABLE categorization_usage ADD COLUMN skipped_cap INTEGER NOT NULL DEFAULT 0;
