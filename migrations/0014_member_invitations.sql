-- Invitations are pending until the invited member first signs in
-- (accepted_at); a failed invitation e-mail is kept (invite_failed_at) so the
-- Members page says so until a resend gets through.
ALTER TABLE members ADD COLUMN accepted_at INTEGER;
ALTER TABLE members ADD COLUMN invite_failed_at INTEGER;
-- Members from before invitations had a state have been using the team.
UPDATE members SET accepted_at = created_at;
