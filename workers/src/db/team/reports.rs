//! Reports that go out: Slack integrations (secrets sealed), the digest
//! schedule, members' e-mail opt-in, and the deliveries ledger that makes
//! every post happen at most once per (what, period, channel).

use serde::Deserialize;
use worker::Result;

use super::super::rows::*;
use super::super::{all, first, i, opt_text, t, Arg};
use super::{changed, TeamDb};

impl TeamDb {
    pub async fn integrations(&self) -> Result<Vec<IntegrationRow>> {
        all(self.stmt(
            "SELECT id, kind, channel, secret_sealed, last4, state, broken_reason, created_by, created_ms, tested_ms FROM integrations WHERE team_id = ?1 ORDER BY created_ms, id",
            vec![],
        )?)
        .await
    }

    pub async fn integration(&self, id: &str) -> Result<Option<IntegrationRow>> {
        first(self.stmt(
            "SELECT id, kind, channel, secret_sealed, last4, state, broken_reason, created_by, created_ms, tested_ms FROM integrations WHERE team_id = ?1 AND id = ?2",
            vec![t(id)],
        )?)
        .await
    }

    pub async fn add_integration(&self, row: &IntegrationRow) -> Result<()> {
        self.stmt(
            "INSERT INTO integrations (team_id, id, kind, channel, secret_sealed, last4, state, created_by, created_ms, tested_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'ok', ?7, ?8, ?8)",
            vec![
                t(row.id.clone()),
                t(row.kind.clone()),
                t(row.channel.clone()),
                t(row.secret_sealed.clone()),
                t(row.last4.clone()),
                t(row.created_by.clone()),
                i(row.created_ms),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn remove_integration(&self, id: &str) -> Result<bool> {
        let r = self
            .stmt(
                "DELETE FROM integrations WHERE team_id = ?1 AND id = ?2",
                vec![t(id)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// True only for the call that broke it, so the audit entry and the
    /// owners' e-mail happen once.
    pub async fn mark_integration_broken(&self, id: &str, reason: &str) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE integrations SET state = 'broken', broken_reason = ?3 WHERE team_id = ?1 AND id = ?2 AND state = 'ok'",
                vec![t(id), t(reason)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// After a successful test post.
    pub async fn mark_integration_ok(&self, id: &str, now: i64) -> Result<()> {
        self.stmt(
            "UPDATE integrations SET state = 'ok', broken_reason = NULL, tested_ms = ?3 WHERE team_id = ?1 AND id = ?2",
            vec![t(id), i(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn digest_settings(&self) -> Result<DigestSettings> {
        first(self.stmt(
            "SELECT digest_daily, digest_weekly, digest_hour, digest_ai_summary FROM teams WHERE id = ?1",
            vec![],
        )?)
        .await?
        .ok_or_else(|| worker::Error::RustError("team not found".into()))
    }

    pub async fn set_digest_settings(&self, s: &DigestSettings) -> Result<()> {
        self.stmt(
            "UPDATE teams SET digest_daily = ?2, digest_weekly = ?3, digest_hour = ?4, digest_ai_summary = ?5 WHERE id = ?1",
            vec![i(s.digest_daily), i(s.digest_weekly), i(s.digest_hour), i(s.digest_ai_summary)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Writes the delivery row before the post: true when this call owns
    /// the delivery (no row existed), false when another run already has it.
    pub async fn claim_delivery(
        &self,
        key: &str,
        kind: &str,
        subject: &str,
        channel: &str,
        now: i64,
    ) -> Result<bool> {
        let r = self
            .stmt(
                "INSERT INTO deliveries (team_id, key, kind, subject, channel, state, attempts, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'sending', 1, ?6, ?6) ON CONFLICT (team_id, key) DO NOTHING",
                vec![t(key), t(kind), t(subject), t(channel), i(now)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// Takes a delivery waiting for its retry time; true for the one run that wins.
    pub async fn reclaim_delivery(&self, key: &str, now: i64) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_ms = ?3 WHERE team_id = ?1 AND key = ?2 AND state = 'retry' AND next_attempt_ms <= ?3",
                vec![t(key), i(now)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    pub async fn finish_delivery(
        &self,
        key: &str,
        state: &str,
        http_status: Option<u16>,
        error: Option<&str>,
        next_attempt_ms: Option<i64>,
        now: i64,
    ) -> Result<()> {
        self.stmt(
            "UPDATE deliveries SET state = ?3, http_status = ?4, error = ?5, next_attempt_ms = ?6, updated_ms = ?7 WHERE team_id = ?1 AND key = ?2",
            vec![
                t(key),
                t(state),
                http_status.map(i).unwrap_or(Arg::Null),
                opt_text(error),
                next_attempt_ms.map(i).unwrap_or(Arg::Null),
                i(now),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Deliveries claimed but never finished (the invocation died during the
    /// post): marked failed, not retried, since the post may have gone out.
    pub async fn expire_interrupted(&self, before: i64, now: i64) -> Result<u64> {
        let r = self
            .stmt(
                "UPDATE deliveries SET state = 'failed', error = 'interrupted during the post; not retried, so it cannot go out twice', updated_ms = ?3 WHERE team_id = ?1 AND state = 'sending' AND updated_ms < ?2",
                vec![i(before), i(now)],
            )?
            .run()
            .await?;
        Ok(changed(&r))
    }

    pub async fn due_retries(&self, now: i64) -> Result<Vec<DeliveryRow>> {
        all(self.stmt(
            "SELECT key, kind, subject, channel, state, attempts, http_status, error, next_attempt_ms, created_ms, updated_ms FROM deliveries WHERE team_id = ?1 AND state = 'retry' AND next_attempt_ms <= ?2 ORDER BY created_ms LIMIT 20",
            vec![i(now)],
        )?)
        .await
    }

    pub async fn deliveries(&self, limit: i64) -> Result<Vec<DeliveryRow>> {
        all(self.stmt(
            "SELECT key, kind, subject, channel, state, attempts, http_status, error, next_attempt_ms, created_ms, updated_ms FROM deliveries WHERE team_id = ?1 ORDER BY updated_ms DESC, key LIMIT ?2",
            vec![i(limit)],
        )?)
        .await
    }

    /// When the last batch was received (markers live 30 days).
    pub async fn last_received(&self) -> Result<Option<i64>> {
        #[derive(Deserialize)]
        struct At {
            at: Option<i64>,
        }
        Ok(first::<At>(self.stmt(
            "SELECT MAX(received_at) AS at FROM batches WHERE team_id = ?1",
            vec![],
        )?)
        .await?
        .and_then(|r| r.at))
    }

    /// Alerts raised since `since_ms` and not dismissed, oldest first.
    pub async fn alerts_to_deliver(&self, since_ms: i64) -> Result<Vec<AlertRow>> {
        all(self.stmt(
            "SELECT id, kind, scope, period, threshold_pct, title, detail_json, created_ms FROM alerts WHERE team_id = ?1 AND created_ms >= ?2 AND dismissed_ms IS NULL ORDER BY created_ms, id LIMIT 50",
            vec![i(since_ms)],
        )?)
        .await
    }

    pub async fn alert(&self, id: &str) -> Result<Option<AlertRow>> {
        first(self.stmt(
            "SELECT id, kind, scope, period, threshold_pct, title, detail_json, created_ms FROM alerts WHERE team_id = ?1 AND id = ?2",
            vec![t(id)],
        )?)
        .await
    }

    pub async fn weekly_email_members(&self) -> Result<Vec<MemberRow>> {
        all(self.stmt(
            "SELECT id, email, role, created_at FROM members WHERE team_id = ?1 AND weekly_email = 1 ORDER BY created_at",
            vec![],
        )?)
        .await
    }

    pub async fn weekly_email(&self, member_id: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct W {
            weekly_email: i64,
        }
        Ok(first::<W>(self.stmt(
            "SELECT weekly_email FROM members WHERE team_id = ?1 AND id = ?2",
            vec![t(member_id)],
        )?)
        .await?
        .is_some_and(|w| w.weekly_email == 1))
    }

    /// False when no such member.
    pub async fn set_weekly_email(&self, member_id: &str, on: bool) -> Result<bool> {
        let r = self
            .stmt(
                "UPDATE members SET weekly_email = ?3 WHERE team_id = ?1 AND id = ?2",
                vec![t(member_id), i(on as i64)],
            )?
            .run()
            .await?;
        Ok(changed(&r) > 0)
    }

    /// An AI summary's cost, counted with categorize-cloud's spend of the
    /// UTC day (the same daily budget covers both).
    pub async fn add_summary_spend(
        &self,
        day: i64,
        input_tokens: i64,
        output_tokens: i64,
        micro: i64,
        pico: i64,
    ) -> Result<()> {
        self.stmt(
            "INSERT INTO categorization_usage (team_id, day, calls, failures, skipped, input_tokens, output_tokens, cost_micro_usd, cost_pico_usd, skipped_cap) VALUES (?1, ?2, 1, 0, 0, ?3, ?4, ?5, ?6, 0) \
             ON CONFLICT (team_id, day) DO UPDATE SET calls = calls + 1, input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens, \
             cost_micro_usd = cost_micro_usd + excluded.cost_micro_usd + (cost_pico_usd + excluded.cost_pico_usd) / 1000000, \
             cost_pico_usd = (cost_pico_usd + excluded.cost_pico_usd) % 1000000",
            vec![i(day), i(input_tokens), i(output_tokens), i(micro), i(pico)],
        )?
        .run()
        .await?;
        Ok(())
    }
}
