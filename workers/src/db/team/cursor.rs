//! The Cursor integration (`crate::cursor`): its sealed key and pull state,
//! the ids of events already queued, and Cursor users (e-mail hashes) →
//! developers.

use serde::Deserialize;
use tally_core::money::{Usd, PICO_PER_MICRO};
use worker::Result;

use super::super::{all, first, i, t, Arg};
use super::{changed, TeamDb};

#[derive(Debug, Clone, Deserialize)]
pub struct CursorIntegrationRow {
    pub id: String,
    pub key_sealed: String,
    pub last4: String,
    pub created_by: String,
    pub created_ms: i64,
    pub watermark_ms: i64,
    pub last_pull_ms: Option<i64>,
    pub last_ok_ms: Option<i64>,
    pub last_error: Option<String>,
    pub events: i64,
    pub unpriced_events: i64,
    pub skipped_events: i64,
    pub charged_micro_usd: i64,
    pub charged_pico_usd: i64,
    pub list_micro_usd: i64,
    pub list_pico_usd: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
}

impl CursorIntegrationRow {
    pub fn charged(&self) -> Usd {
        Usd::from_parts(self.charged_micro_usd, self.charged_pico_usd)
    }

    pub fn list(&self) -> Usd {
        Usd::from_parts(self.list_micro_usd, self.list_pico_usd)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CursorUserRow {
    pub email_hash: String,
    pub developer_id: String,
    pub developer_name: String,
    pub masked: String,
    pub created_ms: i64,
}

/// What one successful pull adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullTotals {
    pub events: u64,
    pub unpriced: u64,
    pub skipped: u64,
    pub charged: Usd,
    pub list: Usd,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
}

/// Micro-USD and the pico remainder, as D1 keeps money.
fn parts(u: Usd) -> (i64, i64) {
    let p = u.pico();
    let micro = p / u128::from(PICO_PER_MICRO);
    (
        i64::try_from(micro).unwrap_or(i64::MAX),
        (p % u128::from(PICO_PER_MICRO)) as i64,
    )
}

impl TeamDb {
    pub async fn cursor_integration(&self) -> Result<Option<CursorIntegrationRow>> {
        first(self.stmt(
            "SELECT id, key_sealed, last4, created_by, created_ms, watermark_ms, last_pull_ms, last_ok_ms, last_error, events, unpriced_events, skipped_events, charged_micro_usd, charged_pico_usd, list_micro_usd, list_pico_usd, first_event_ms, last_event_ms FROM cursor_integrations WHERE team_id = ?1",
            vec![],
        )?)
        .await
    }

    /// Saves the key; a new key replaces the old one and keeps the pull
    /// state (its watermark and totals), so nothing is read twice or lost.
    pub async fn set_cursor_integration(
        &self,
        id: &str,
        key_sealed: &str,
        last4: &str,
        created_by: &str,
        now: i64,
        watermark_ms: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO cursor_integrations (team_id, id, key_sealed, last4, created_by, created_ms, watermark_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (team_id) DO UPDATE SET id = excluded.id, key_sealed = excluded.key_sealed, last4 = excluded.last4, created_by = excluded.created_by, created_ms = excluded.created_ms, last_error = NULL, last_status = NULL",
            vec![t(id), t(key_sealed), t(last4), t(created_by), i(now), i(watermark_ms)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn remove_cursor_integration(&self) -> Result<bool> {
        let r = self
            .stmt("DELETE FROM cursor_integrations WHERE team_id = ?1", vec![])?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// Which of `ids` were queued by an earlier pull.
    pub async fn cursor_seen(&self, ids: &[String]) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Id> = all(self.stmt(
            "SELECT id FROM cursor_events WHERE team_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
            vec![t(serde_json::to_string(ids)?)],
        )?)
        .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// A pull's result (whole or not, `worked` or stopped by a failure that
    /// `cursor_pull_failed` records next): its events' ids (`[id, ts]`
    /// pairs) as seen, the ids too old to be read again dropped, the
    /// watermark moved to `watermark_ms` and the totals added, in one batch.
    /// `integration_id` guards against a key replaced or removed meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub async fn cursor_pull_done(
        &self,
        integration_id: &str,
        seen: &[(String, i64)],
        prune_before_ms: i64,
        watermark_ms: i64,
        add: &PullTotals,
        worked: bool,
        now: i64,
    ) -> Result<()> {
        let (cm, cp) = parts(add.charged);
        let (lm, lp) = parts(add.list);
        let mut stmts = Vec::new();
        // Bound as JSON: a few hundred ids per statement stay far below D1's limits.
        for chunk in seen.chunks(500) {
            stmts.push(self.stmt(
                "INSERT INTO cursor_events (team_id, id, ts) SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2) WHERE true ON CONFLICT (team_id, id) DO NOTHING",
                vec![t(serde_json::to_string(chunk)?)],
            )?);
        }
        stmts.push(self.stmt(
            "DELETE FROM cursor_events WHERE team_id = ?1 AND ts < ?2",
            vec![i(prune_before_ms)],
        )?);
        stmts.push(self.stmt(
            "UPDATE cursor_integrations SET watermark_ms = MAX(watermark_ms, ?3), last_pull_ms = ?4, last_ok_ms = CASE WHEN ?14 THEN ?4 ELSE last_ok_ms END, last_error = NULL, last_status = NULL, \
             events = events + ?5, unpriced_events = unpriced_events + ?6, skipped_events = skipped_events + ?7, \
             charged_micro_usd = charged_micro_usd + ?8 + (charged_pico_usd + ?9) / 1000000, charged_pico_usd = (charged_pico_usd + ?9) % 1000000, \
             list_micro_usd = list_micro_usd + ?10 + (list_pico_usd + ?11) / 1000000, list_pico_usd = (list_pico_usd + ?11) % 1000000, \
             first_event_ms = CASE WHEN ?12 IS NULL THEN first_event_ms ELSE MIN(COALESCE(first_event_ms, ?12), ?12) END, \
             last_event_ms = CASE WHEN ?13 IS NULL THEN last_event_ms ELSE MAX(COALESCE(last_event_ms, ?13), ?13) END \
             WHERE team_id = ?1 AND id = ?2",
            vec![
                t(integration_id),
                i(watermark_ms),
                i(now),
                i(add.events),
                i(add.unpriced),
                i(add.skipped),
                i(cm),
                i(cp),
                i(lm),
                i(lp),
                add.first_event_ms.map(Arg::Int).unwrap_or(Arg::Null),
                add.last_event_ms.map(Arg::Int).unwrap_or(Arg::Null),
                i(i64::from(worked)),
            ],
        )?);
        self.run_batch(stmts).await?;
        Ok(())
    }

    /// A pull that failed: the watermark stays, the reason is shown.
    pub async fn cursor_pull_failed(
        &self,
        integration_id: &str,
        status: Option<u16>,
        error: &str,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "UPDATE cursor_integrations SET last_pull_ms = ?3, last_error = ?4, last_status = ?5 WHERE team_id = ?1 AND id = ?2",
            vec![
                t(integration_id),
                i(now),
                t(error),
                status.map(|s| Arg::Int(i64::from(s))).unwrap_or(Arg::Null),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn cursor_users(&self) -> Result<Vec<CursorUserRow>> {
        all(self.stmt(
            "SELECT u.email_hash, u.developer_id, COALESCE(d.name, '') AS developer_name, u.masked, u.created_ms FROM cursor_users u LEFT JOIN developers d ON d.team_id = u.team_id AND d.id = u.developer_id WHERE u.team_id = ?1 ORDER BY u.masked, u.email_hash",
            vec![],
        )?)
        .await
    }

    /// The developer an address's usage already counts for, if any: a
    /// Cursor user seen before, else a current developer named exactly by
    /// that address (admins often name developers by e-mail).
    pub async fn cursor_developer_for(
        &self,
        email_hash: &str,
        email: &str,
    ) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct Dev {
            developer_id: String,
        }
        let known: Option<Dev> = first(self.stmt(
            "SELECT developer_id FROM cursor_users WHERE team_id = ?1 AND email_hash = ?2",
            vec![t(email_hash)],
        )?)
        .await?;
        if let Some(d) = known {
            return Ok(Some(d.developer_id));
        }
        let named: Option<Dev> = first(self.stmt(
            "SELECT id AS developer_id FROM developers WHERE team_id = ?1 AND lower(trim(name)) = ?2 AND removed_at IS NULL AND erased_at IS NULL ORDER BY created_at LIMIT 1",
            vec![t(email.trim().to_ascii_lowercase())],
        )?)
        .await?;
        Ok(named.map(|d| d.developer_id))
    }

    /// Records a Cursor user; `new_developer` (id, masked name) creates the
    /// developer it counts for in the same batch.
    pub async fn add_cursor_user(
        &self,
        email_hash: &str,
        developer_id: &str,
        masked: &str,
        new_developer: bool,
        now: i64,
    ) -> Result<()> {
        let mut stmts = Vec::new();
        if new_developer {
            stmts.push(self.stmt(
                "INSERT INTO developers (team_id, id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                vec![t(developer_id), t(masked), i(now)],
            )?);
        }
        stmts.push(self.stmt(
            "INSERT INTO cursor_users (team_id, email_hash, developer_id, masked, created_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (team_id, email_hash) DO NOTHING",
            vec![t(email_hash), t(developer_id), t(masked), i(now)],
        )?);
        self.run_batch(stmts).await?;
        Ok(())
    }

    /// Points a Cursor user's future pulls at another current developer
    /// of the team; false when either is unknown.
    pub async fn link_cursor_user(&self, email_hash: &str, developer_id: &str) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE cursor_users SET developer_id = ?3 WHERE team_id = ?1 AND email_hash = ?2 \
                 AND EXISTS (SELECT 1 FROM developers d WHERE d.team_id = ?1 AND d.id = ?3 AND d.erased_at IS NULL)",
                vec![t(email_hash), t(developer_id)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// Renames a developer that a Cursor pull created (masked address)
    /// once the admin knows who it is.
    pub async fn rename_cursor_developer(&self, developer_id: &str, name: &str) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE developers SET name = ?3 WHERE team_id = ?1 AND id = ?2 AND erased_at IS NULL \
                 AND EXISTS (SELECT 1 FROM cursor_users u WHERE u.team_id = ?1 AND u.developer_id = ?2)",
                vec![t(developer_id), t(name)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }
}
