//! Cross-team statements, each on the reviewed list in `tests/tests/sql_lint.rs`.

use serde::Deserialize;
use worker::{D1Database, Env, Result};

use super::shard::{least_loaded, Shard};
use super::{
    all, database, first, i, prepare, principal, shards, t, AgentPrincipal, DeveloperGrant,
    DeveloperPrincipal, EnrollPrincipal, LifecycleJob, Principal, WebPrincipal,
};

#[derive(Debug, Clone, Deserialize)]
pub struct TeamRef {
    pub id: String,
    pub retention_days: i64,
    /// When a team scheduled for deletion is erased.
    #[serde(default)]
    pub delete_after: Option<i64>,
    #[serde(skip)]
    shard: Shard,
}

principal!(TeamRef, id);

/// Cross-team statements of one shard. Each one either looks a credential up
/// by its keyed hash (the only way to learn which team a request belongs to)
/// or is operator/cron work that by nature spans teams, run on every shard.
/// Whatever it returns is stamped with its shard.
pub struct ServiceDb {
    db: D1Database,
    shard: Shard,
}

/// Stamps rows found on a shard with it.
trait Found {
    fn on(self, shard: &Shard) -> Self;
}

macro_rules! found {
    ($($t:ty),*) => {$(
        impl Found for $t {
            fn on(mut self, shard: &Shard) -> Self {
                self.shard = shard.clone();
                self
            }
        }
    )*};
}
found!(
    AgentPrincipal,
    EnrollPrincipal,
    SigninGrant,
    WebPrincipal,
    DeveloperGrant,
    DeveloperPrincipal,
    TeamRef,
    LifecycleJob
);

impl<T: Found> Found for Option<T> {
    fn on(self, shard: &Shard) -> Self {
        self.map(|r| r.on(shard))
    }
}

impl<T: Found> Found for Vec<T> {
    fn on(self, shard: &Shard) -> Self {
        self.into_iter().map(|r| r.on(shard)).collect()
    }
}

impl ServiceDb {
    fn open(env: &Env, shard: &Shard) -> Result<ServiceDb> {
        Ok(ServiceDb {
            db: database(env, shard)?,
            shard: shard.clone(),
        })
    }

    /// Every shard, for work that spans teams (crons, sign-in by e-mail).
    pub fn all(env: &Env) -> Result<Vec<ServiceDb>> {
        shards(env)?
            .all()
            .iter()
            .map(|s| ServiceDb::open(env, s))
            .collect()
    }

    /// The shard a presented credential was stored on; None when its tag
    /// names no configured shard (then it is unknown, as a wrong secret is).
    pub fn for_credential(env: &Env, credential: &str) -> Result<Option<ServiceDb>> {
        shards(env)?
            .of_credential(credential)
            .map(|s| ServiceDb::open(env, s))
            .transpose()
    }

    /// The shard of a team found earlier (a lifecycle job's progress).
    pub fn of(env: &Env, team: &impl Principal) -> Result<ServiceDb> {
        ServiceDb::open(env, team.shard())
    }

    /// The first shard: where the Worker's own records (cron runs) go.
    pub fn first(env: &Env) -> Result<ServiceDb> {
        ServiceDb::open(env, shards(env)?.first())
    }

    /// Where a new team goes: of the shards open to new teams, the one
    /// holding the fewest (`db::shard`).
    pub async fn for_new_team(env: &Env) -> Result<ServiceDb> {
        let shards = shards(env)?;
        let mut counts = Vec::new();
        for s in shards.for_new_teams() {
            counts.push((s.clone(), ServiceDb::open(env, s)?.team_count().await?));
        }
        let shard = least_loaded(&counts).unwrap_or(shards.first());
        ServiceDb::open(env, shard)
    }

    /// Every team on every shard.
    pub async fn all_teams(env: &Env) -> Result<Vec<TeamRef>> {
        let mut teams = Vec::new();
        for s in ServiceDb::all(env)? {
            teams.extend(s.teams().await?);
        }
        Ok(teams)
    }

    pub async fn agent_by_token(&self, token_hash: &str) -> Result<Option<AgentPrincipal>> {
        first(prepare(
            &self.db,
            "SELECT team_id, id AS agent_id, developer_id, revoked_at FROM agent_tokens WHERE token_hash = ?1",
            &[t(token_hash)],
        )?)
        .await
        .map(|r| r.on(&self.shard))
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
        .map(|r| r.on(&self.shard))
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
        .map(|r| r.on(&self.shard))
    }

    pub async fn web_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Option<WebPrincipal>> {
        first(prepare(
            &self.db,
            "SELECT s.team_id, s.id_hash, s.member_id, m.email, m.role, s.csrf_token, s.last_seen_at, t.delete_after AS team_delete_after, t.name AS team_name FROM web_sessions s JOIN members m ON m.team_id = s.team_id AND m.id = s.member_id JOIN teams t ON t.id = s.team_id WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3",
            &[t(id_hash), i(now), i(idle_cutoff)],
        )?)
        .await
        .map(|r| r.on(&self.shard))
    }

    /// Single use as for members' links: only an unused, unexpired row matches.
    pub async fn consume_developer_link(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<DeveloperGrant>> {
        first(prepare(
            &self.db,
            "UPDATE developer_links SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING team_id, developer_id, agent_id",
            &[t(token_hash), i(now)],
        )?)
        .await
        .map(|r| r.on(&self.shard))
    }

    /// A developer's self-view session, alive only while the agent that
    /// minted it is not revoked, the developer not erased and the team not
    /// scheduled for deletion: each of those ends it at once.
    pub async fn developer_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Option<DeveloperPrincipal>> {
        first(prepare(
            &self.db,
            "SELECT s.team_id, s.id_hash, s.developer_id, d.name AS developer_name, s.last_seen_at FROM developer_sessions s JOIN agent_tokens a ON a.team_id = s.team_id AND a.id = s.agent_id AND a.developer_id = s.developer_id JOIN developers d ON d.team_id = s.team_id AND d.id = s.developer_id JOIN teams t ON t.id = s.team_id WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3 AND a.revoked_at IS NULL AND d.erased_at IS NULL AND t.deleted_at IS NULL",
            &[t(id_hash), i(now), i(idle_cutoff)],
        )?)
        .await
        .map(|r| r.on(&self.shard))
    }

    /// Sign-in by email: the address may belong to members of several teams.
    pub async fn members_by_email(&self, email: &str) -> Result<Vec<SigninGrant>> {
        all(prepare(
            &self.db,
            "SELECT team_id, id AS member_id FROM members WHERE email = ?1",
            &[t(email)],
        )?)
        .await
        .map(|r| r.on(&self.shard))
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
            delete_after: None,
            shard: self.shard.clone(),
        })
    }

    pub async fn teams(&self) -> Result<Vec<TeamRef>> {
        all(prepare(
            &self.db,
            "SELECT id, retention_days, deleted_at, delete_after FROM teams ORDER BY id",
            &[],
        )?)
        .await
        .map(|r| r.on(&self.shard))
    }

    /// Lifecycle jobs of every team, oldest first.
    pub async fn pending_jobs(&self, limit: i64) -> Result<Vec<LifecycleJob>> {
        all(prepare(
            &self.db,
            "SELECT id, team_id, kind, subject, run_day, cutoff_day, cursor, objects, bytes, rows, attempts FROM lifecycle_jobs WHERE state = 'pending' ORDER BY id LIMIT ?1",
            &[i(limit)],
        )?)
        .await
        .map(|r| r.on(&self.shard))
    }

    /// Saves a job's progress; `state` is pending (resume later), done or failed.
    pub async fn save_job(
        &self,
        job: &LifecycleJob,
        state: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<()> {
        prepare(
            &self.db,
            "UPDATE lifecycle_jobs SET state = ?2, cursor = ?3, objects = ?4, bytes = ?5, rows = ?6, attempts = ?7, error = ?8, updated_at = ?9 WHERE id = ?1",
            &[
                i(job.id),
                t(state),
                job.cursor.as_deref().map(t).unwrap_or(super::Arg::Null),
                i(job.objects),
                i(job.bytes),
                i(job.rows),
                i(job.attempts),
                error.map(t).unwrap_or(super::Arg::Null),
                i(now),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Housekeeping that spans teams: idempotency markers older than their
    /// lifetime (see `tally_core::wire::MARKER_TTL_DAYS`), expired sign-in
    /// state (members' and developers'), and audit rows past two years.
    pub async fn housekeeping(
        &self,
        markers_before: i64,
        now: i64,
        audit_before: i64,
    ) -> Result<u64> {
        let results = self
            .db
            .batch(vec![
                prepare(
                    &self.db,
                    "DELETE FROM batches WHERE received_at < ?1",
                    &[i(markers_before)],
                )?,
                prepare(
                    &self.db,
                    "DELETE FROM web_sessions WHERE expires_at < ?1",
                    &[i(now)],
                )?,
                prepare(
                    &self.db,
                    "DELETE FROM signin_links WHERE expires_at < ?1",
                    &[i(now)],
                )?,
                prepare(
                    &self.db,
                    "DELETE FROM developer_sessions WHERE expires_at < ?1",
                    &[i(now)],
                )?,
                prepare(
                    &self.db,
                    "DELETE FROM developer_links WHERE expires_at < ?1",
                    &[i(now)],
                )?,
                prepare(
                    &self.db,
                    "DELETE FROM audit_log WHERE at < ?1",
                    &[i(audit_before)],
                )?,
            ])
            .await?;
        Ok(results
            .iter()
            .map(|r| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64)
            .sum())
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
    #[serde(skip)]
    shard: Shard,
}

principal!(SigninGrant, team_id);
