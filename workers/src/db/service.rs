//! Cross-team statements, each on the reviewed list in `tests/tests/sql_lint.rs`.

use serde::Deserialize;
use worker::{D1Database, Env, Result};

use super::{
    all, database, first, i, prepare, t, AgentPrincipal, EnrollPrincipal, Principal, WebPrincipal,
};

#[derive(Debug, Clone, Deserialize)]
pub struct TeamRef {
    pub id: String,
    pub retention_days: i64,
}

impl Principal for TeamRef {
    fn team_id(&self) -> &str {
        &self.id
    }
}

/// Cross-team statements. Each one either looks a credential up by its keyed
/// hash (the only way to learn which team a request belongs to) or is
/// operator/cron work that by nature spans teams.
pub struct ServiceDb {
    db: D1Database,
}

impl ServiceDb {
    pub fn new(env: &Env) -> Result<ServiceDb> {
        Ok(ServiceDb { db: database(env)? })
    }

    pub async fn agent_by_token(&self, token_hash: &str) -> Result<Option<AgentPrincipal>> {
        first(prepare(
            &self.db,
            "SELECT team_id, id AS agent_id, developer_id, revoked_at FROM agent_tokens WHERE token_hash = ?1",
            &[t(token_hash)],
        )?)
        .await
    }

    /// Single use is enforced by the database: the UPDATE matches only an
    /// unused, unexpired row, so two concurrent enrollments cannot both win.
    pub async fn consume_install_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<EnrollPrincipal>> {
        first(prepare(
            &self.db,
            "UPDATE install_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING team_id, developer_id",
            &[t(token_hash), i(now)],
        )?)
        .await
    }

    pub async fn consume_signin_link(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<SigninGrant>> {
        first(prepare(
            &self.db,
            "UPDATE signin_links SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING team_id, member_id",
            &[t(token_hash), i(now)],
        )?)
        .await
    }

    pub async fn web_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Option<WebPrincipal>> {
        first(prepare(
            &self.db,
            "SELECT s.team_id, s.id_hash, s.member_id, m.email, m.role, s.csrf_token, s.last_seen_at FROM web_sessions s JOIN members m ON m.team_id = s.team_id AND m.id = s.member_id WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3",
            &[t(id_hash), i(now), i(idle_cutoff)],
        )?)
        .await
    }

    /// Sign-in by email: the address may belong to members of several teams.
    pub async fn members_by_email(&self, email: &str) -> Result<Vec<SigninGrant>> {
        all(prepare(
            &self.db,
            "SELECT team_id, id AS member_id FROM members WHERE email = ?1",
            &[t(email)],
        )?)
        .await
    }

    pub async fn team_count(&self) -> Result<i64> {
        #[derive(Deserialize)]
        struct N {
            n: i64,
        }
        Ok(
            first::<N>(prepare(&self.db, "SELECT COUNT(*) AS n FROM teams", &[])?)
                .await?
                .map(|r| r.n)
                .unwrap_or(0),
        )
    }

    pub async fn create_team(&self, id: &str, name: &str, salt: &str, now: i64) -> Result<TeamRef> {
        prepare(
            &self.db,
            "INSERT INTO teams (id, name, salt, created_at) VALUES (?1, ?2, ?3, ?4)",
            &[t(id), t(name), t(salt), i(now)],
        )?
        .run()
        .await?;
        Ok(TeamRef {
            id: id.to_string(),
            retention_days: 90,
        })
    }

    pub async fn teams(&self) -> Result<Vec<TeamRef>> {
        all(prepare(
            &self.db,
            "SELECT id, retention_days FROM teams ORDER BY id",
            &[],
        )?)
        .await
    }

    pub async fn record_cron(&self, cron: &str, now: i64, details: &str) -> Result<()> {
        prepare(
            &self.db,
            "INSERT INTO cron_runs (cron, ran_at, details) VALUES (?1, ?2, ?3)",
            &[t(cron), i(now), t(details)],
        )?
        .run()
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SigninGrant {
    team_id: String,
    pub member_id: String,
}

impl Principal for SigninGrant {
    fn team_id(&self) -> &str {
        &self.team_id
    }
}
