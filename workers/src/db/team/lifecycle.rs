//! Content index, retention and deletion: what `crate::lifecycle` and the
//! lifecycle pages need.

use worker::{D1PreparedStatement, Result};

use super::super::rows::*;
use super::super::{all, i, t};
use super::budgets::FORGET_DEVELOPER;
use super::{changed, changes, TeamDb};

impl TeamDb {
    pub async fn add_content_objects(&self, objects: &[ContentObject], now: i64) -> Result<()> {
        let mut stmts = Vec::with_capacity(objects.len());
        for o in objects {
            stmts.push(self.stmt(
                "INSERT INTO content_objects (team_id, key, session, developer_id, day, batch_id, events, bytes, first_ts, last_ts, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (team_id, key) DO NOTHING",
                vec![t(o.key.clone()), t(o.session.clone()), t(o.developer_id.clone()), i(o.day), t(o.batch_id.clone()), i(o.events), i(o.bytes), i(o.first_ts), i(o.last_ts), i(now)],
            )?);
        }
        if !stmts.is_empty() {
            self.db.batch(stmts).await?;
        }
        Ok(())
    }

    /// A session's objects in the order their requests happened.
    pub async fn session_content(&self, session: &str) -> Result<Vec<ContentObject>> {
        all(self.stmt(
            "SELECT key, session, developer_id, day, batch_id, events, bytes, first_ts, last_ts FROM content_objects WHERE team_id = ?1 AND session = ?2 ORDER BY first_ts, key LIMIT 1000",
            vec![t(session)],
        )?)
        .await
    }

    /// Keys of one developer's content, a page at a time.
    pub async fn developer_content_keys(
        &self,
        developer_id: &str,
        limit: i64,
    ) -> Result<Vec<ContentObject>> {
        all(self.stmt(
            "SELECT key, session, developer_id, day, batch_id, events, bytes, first_ts, last_ts FROM content_objects WHERE team_id = ?1 AND developer_id = ?2 ORDER BY key LIMIT ?3",
            vec![t(developer_id), i(limit)],
        )?)
        .await
    }

    pub async fn forget_content_keys(&self, keys: &[String]) -> Result<u64> {
        let mut stmts = Vec::with_capacity(keys.len());
        for k in keys {
            stmts.push(self.stmt(
                "DELETE FROM content_objects WHERE team_id = ?1 AND key = ?2",
                vec![t(k.clone())],
            )?);
        }
        changes(self.run_batch(stmts).await?)
    }

    /// Index rows of content older than `cutoff_day`, and every category row
    /// of those days; aggregates are never pruned.
    pub async fn prune_rows_before(&self, cutoff_day: i64) -> Result<u64> {
        changes(
            self.run_batch(vec![
                self.stmt(
                    "DELETE FROM content_objects WHERE team_id = ?1 AND day < ?2",
                    vec![i(cutoff_day)],
                )?,
                self.stmt(
                    "DELETE FROM categories WHERE team_id = ?1 AND day < ?2",
                    vec![i(cutoff_day)],
                )?,
            ])
            .await?,
        )
    }

    pub async fn forget_all_content(&self) -> Result<u64> {
        changes(
            self.run_batch(vec![
                self.stmt("DELETE FROM content_objects WHERE team_id = ?1", vec![])?
            ])
            .await?,
        )
    }

    pub async fn schedule_deletion(&self, by: &str, now: i64, after: i64) -> Result<()> {
        self.stmt(
            "UPDATE teams SET deleted_at = ?2, delete_after = ?3, deleted_by = ?4 WHERE id = ?1",
            vec![i(now), i(after), t(by)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn cancel_deletion(&self) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE teams SET deleted_at = NULL, delete_after = NULL, deleted_by = NULL WHERE id = ?1 AND deleted_at IS NOT NULL",
                vec![],
            )?
            .run()
            .await?;
        Ok(r.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
    }

    /// Starts a lifecycle job for this team; a second start of the same job
    /// on the same day changes nothing.
    pub async fn start_job(
        &self,
        kind: &str,
        subject: &str,
        run_day: i64,
        cutoff_day: i64,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO lifecycle_jobs (team_id, kind, subject, run_day, cutoff_day, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
             ON CONFLICT (team_id, kind, subject, run_day) DO NOTHING",
            vec![t(kind), t(subject), i(run_day), i(cutoff_day), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Revokes the developer's agents, moves their numbers to a new
    /// anonymous developer (team totals stay right), deletes their category
    /// rows and their self-view links and sessions; their content objects go
    /// through a lifecycle job.
    pub async fn erase_developer(
        &self,
        developer_id: &str,
        anon_id: &str,
        anon_name: &str,
        now: i64,
    ) -> Result<u64> {
        changes(
            self.run_batch(vec![
                self.stmt(
                    "INSERT INTO developers (team_id, id, name, created_at, removed_at, erased_at) VALUES (?1, ?2, ?3, ?4, ?4, ?4)",
                    vec![t(anon_id), t(anon_name), i(now)],
                )?,
                self.stmt(
                    "UPDATE agent_tokens SET revoked_at = ?3 WHERE team_id = ?1 AND developer_id = ?2 AND revoked_at IS NULL",
                    vec![t(developer_id), i(now)],
                )?,
                self.stmt(
                    "UPDATE usage_q SET developer_id = ?3 WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id), t(anon_id)],
                )?,
                self.stmt(
                    "UPDATE usage_d SET developer_id = ?3 WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id), t(anon_id)],
                )?,
                self.stmt(
                    "UPDATE usage_dp SET developer_id = ?3 WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id), t(anon_id)],
                )?,
                self.stmt(
                    "UPDATE sessions SET developer_id = ?3 WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id), t(anon_id)],
                )?,
                self.stmt(
                    "UPDATE batches SET developer_id = ?3 WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id), t(anon_id)],
                )?,
                self.stmt(
                    "DELETE FROM categories WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id)],
                )?,
                // The keyed hash of their Cursor e-mail goes too; a later
                // pull of that address starts a new, unlinked developer.
                self.stmt(
                    "DELETE FROM cursor_users WHERE team_id = ?1 AND developer_id = ?2",
                    vec![t(developer_id)],
                )?,
                self.stmt(
                    "UPDATE developers SET name = ?3, removed_at = COALESCE(removed_at, ?4), erased_at = ?4 WHERE team_id = ?1 AND id = ?2",
                    vec![t(developer_id), t(anon_name), i(now)],
                )?,
            ]
            .into_iter()
            .chain(self.forget_developer(developer_id)?)
            .collect())
            .await?,
        )
    }

    /// What removal and erasure both drop: `FORGET_DEVELOPER`, bound.
    fn forget_developer(&self, developer_id: &str) -> Result<Vec<D1PreparedStatement>> {
        FORGET_DEVELOPER
            .iter()
            .map(|sql| self.stmt(sql, vec![t(developer_id)]))
            .collect()
    }

    pub async fn remove_developer(&self, developer_id: &str, now: i64) -> Result<bool> {
        let r = self
            .run_batch(vec![
                self.stmt(
                    "UPDATE agent_tokens SET revoked_at = ?3 WHERE team_id = ?1 AND developer_id = ?2 AND revoked_at IS NULL",
                    vec![t(developer_id), i(now)],
                )?,
                self.stmt(
                    "UPDATE developers SET removed_at = COALESCE(removed_at, ?3) WHERE team_id = ?1 AND id = ?2",
                    vec![t(developer_id), i(now)],
                )?,
            ]
            .into_iter()
            .chain(self.forget_developer(developer_id)?)
            .collect())
            .await?;
        Ok(r.get(1).map(changed).unwrap_or(0) > 0)
    }

    /// The last step of a hard deletion, one transaction: the operator's
    /// tombstone first (it is what lets the audit trigger delete young
    /// rows), then every row of the team in every table, the team last.
    /// `tests/tests/lifecycle.rs` fails if a table of `schema.sql` is missing here.
    pub async fn hard_delete(
        &self,
        deleted_at: i64,
        now: i64,
        r2: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let mut stmts = vec![self.stmt(
            "INSERT INTO team_tombstones (team_id, deleted_at, hard_deleted_at, counts) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (team_id) DO UPDATE SET hard_deleted_at = excluded.hard_deleted_at",
            vec![i(deleted_at), i(now), t(r2.to_string())],
        )?];
        for sql in HARD_DELETE {
            stmts.push(self.stmt(sql, vec![])?);
        }
        let results = self.run_batch(stmts).await?;
        let mut counts = serde_json::Map::new();
        for (sql, r) in HARD_DELETE.iter().zip(results.iter().skip(1)) {
            let table = sql.split_whitespace().nth(2).unwrap_or("?");
            counts.insert(table.to_string(), changed(r).into());
        }
        let counts = serde_json::json!({"r2": r2, "rows": counts});
        self.stmt(
            "UPDATE team_tombstones SET counts = ?2 WHERE team_id = ?1",
            vec![t(counts.to_string())],
        )?
        .run()
        .await?;
        Ok(counts)
    }
}

/// Every table that holds a team's rows, children before the team itself.
pub const HARD_DELETE: &[&str] = &[
    "DELETE FROM audit_log WHERE team_id = ?1",
    "DELETE FROM web_sessions WHERE team_id = ?1",
    "DELETE FROM signin_links WHERE team_id = ?1",
    "DELETE FROM developer_sessions WHERE team_id = ?1",
    "DELETE FROM developer_links WHERE team_id = ?1",
    "DELETE FROM members WHERE team_id = ?1",
    "DELETE FROM install_tokens WHERE team_id = ?1",
    "DELETE FROM agent_tokens WHERE team_id = ?1",
    "DELETE FROM batches WHERE team_id = ?1",
    "DELETE FROM usage_q WHERE team_id = ?1",
    "DELETE FROM usage_d WHERE team_id = ?1",
    "DELETE FROM usage_m WHERE team_id = ?1",
    "DELETE FROM usage_md WHERE team_id = ?1",
    "DELETE FROM usage_dp WHERE team_id = ?1",
    "DELETE FROM sessions WHERE team_id = ?1",
    "DELETE FROM session_ranks WHERE team_id = ?1",
    "DELETE FROM categories WHERE team_id = ?1",
    "DELETE FROM categorization_usage WHERE team_id = ?1",
    "DELETE FROM project_labels WHERE team_id = ?1",
    "DELETE FROM branch_labels WHERE team_id = ?1",
    "DELETE FROM branch_names WHERE team_id = ?1",
    "DELETE FROM content_objects WHERE team_id = ?1",
    "DELETE FROM lifecycle_jobs WHERE team_id = ?1",
    "DELETE FROM alerts WHERE team_id = ?1",
    "DELETE FROM deliveries WHERE team_id = ?1",
    "DELETE FROM integrations WHERE team_id = ?1",
    "DELETE FROM cursor_integrations WHERE team_id = ?1",
    "DELETE FROM cursor_events WHERE team_id = ?1",
    "DELETE FROM cursor_users WHERE team_id = ?1",
    "DELETE FROM budgets WHERE team_id = ?1",
    "DELETE FROM seat_plans WHERE team_id = ?1",
    "DELETE FROM developers WHERE team_id = ?1",
    "DELETE FROM teams WHERE id = ?1",
];

/// Statements behind the lifecycle pages: timelines, content views, the
/// developer forms and jobs run inline for one team.
impl TeamDb {
    /// Which of `sessions` have stored content.
    pub async fn sessions_with_content(&self, sessions: &[String]) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct S {
            session: String,
        }
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(sessions)?;
        let rows: Vec<S> = all(self.stmt(
            "SELECT DISTINCT session FROM content_objects WHERE team_id = ?1 AND session IN (SELECT value FROM json_each(?2))",
            vec![t(list)],
        )?)
        .await?;
        Ok(rows.into_iter().map(|r| r.session).collect())
    }

    /// Records that content of these developers was read just now.
    pub async fn mark_content_viewed(&self, developer_ids: &[String], now: i64) -> Result<()> {
        let mut stmts = Vec::with_capacity(developer_ids.len());
        for d in developer_ids {
            stmts.push(self.stmt(
                "UPDATE developers SET content_viewed_at = ?3 WHERE team_id = ?1 AND id = ?2",
                vec![t(d.clone()), i(now)],
            )?);
        }
        self.run_batch(stmts).await?;
        Ok(())
    }

    pub async fn developer_list(&self) -> Result<Vec<DeveloperRow>> {
        all(self.stmt(
            "SELECT id, name, removed_at, erased_at, content_viewed_at FROM developers WHERE team_id = ?1 ORDER BY created_at, id",
            vec![],
        )?)
        .await
    }

    /// This team's pending lifecycle jobs, oldest first.
    pub async fn pending_jobs(&self, limit: i64) -> Result<Vec<LifecycleJob>> {
        all(self.stmt(
            "SELECT id, team_id, kind, subject, run_day, cutoff_day, cursor, objects, bytes, rows, attempts FROM lifecycle_jobs WHERE team_id = ?1 AND state = 'pending' ORDER BY id LIMIT ?2",
            vec![i(limit)],
        )?)
        .await
        .map(|jobs: Vec<LifecycleJob>| {
            jobs.into_iter()
                .map(|j| LifecycleJob {
                    shard: self.shard.clone(),
                    ..j
                })
                .collect()
        })
    }
}
