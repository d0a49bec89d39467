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
