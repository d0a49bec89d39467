//! Invitations: a member is pending until their first sign-in, and a failed
//! invitation e-mail stays visible until a resend is delivered.

use worker::Result;

use super::super::{i, opt_int, t};
use super::TeamDb;

impl TeamDb {
    /// The first sign-in accepts the invitation; later ones change nothing.
    pub async fn accept_member(&self, member_id: &str, now: i64) -> Result<()> {
        self.stmt(
            "UPDATE members SET accepted_at = ?3 WHERE team_id = ?1 AND id = ?2 AND accepted_at IS NULL",
            vec![t(member_id), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Records whether the last invitation e-mail failed (`Some(when)`) or got through.
    pub async fn set_invite_failed(&self, member_id: &str, failed_at: Option<i64>) -> Result<()> {
        self.stmt(
            "UPDATE members SET invite_failed_at = ?3 WHERE team_id = ?1 AND id = ?2",
            vec![t(member_id), opt_int(failed_at)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// A withdrawn invitation's unused sign-in links stop working.
    pub async fn drop_signin_links(&self, member_id: &str) -> Result<()> {
        self.stmt(
            "DELETE FROM signin_links WHERE team_id = ?1 AND member_id = ?2",
            vec![t(member_id)],
        )?
        .run()
        .await?;
        Ok(())
    }
}
