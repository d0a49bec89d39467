//! Reports that come to people: digests and alerts posted to Slack and
//! e-mailed, on the hourly cron. Every (what, period, channel) has one row
//! in `deliveries`, written before the post and updated after it, so a
//! doubled trigger or a retry never posts twice; failures are handled as
//! Slack documents them (`slack::classify`) and listed on the Integrations page.

pub mod digest;
pub mod slack;
pub mod summary;
pub mod vault;

use std::collections::HashMap;

use serde_json::{json, Value};
use tally_core::hash::hmac_hex;
use tally_core::time::{civil_from_days, utc_date, DAY_MS, HOUR_MS};
use worker::{Env, Result};

use crate::bindings;
use crate::db::{
    AlertRow, DigestSettings, IntegrationRow, MemberRow, ServiceDb, TeamDb, TeamSettings,
};
use crate::util::{config, required, send_email_with};
use crate::vocab::{AuditAction, Role};
use crate::web::range::Range;
use crate::web::stats;
use crate::zone::Zone;
use digest::{DigestData, DigestKind};
use slack::{Outcome, Target};

/// A delivery is tried this many times (5xx, timeouts, 429s), then failed.
pub const MAX_ATTEMPTS: i64 = 5;
/// Alerts older than this when first seen are not posted (an integration
/// added today does not replay last week's alerts).
const ALERT_WINDOW_MS: i64 = 2 * DAY_MS;
/// The actor of audit entries written by the cron.
pub const SYSTEM_ACTOR: &str = "tally";

/// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The local days a digest covers, `[from_day, to_day)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub kind: DigestKind,
    pub from_day: i64,
    pub to_day: i64,
}

impl Period {
    pub fn daily(day: i64) -> Period {
        Period {
            kind: DigestKind::Daily,
            from_day: day,
            to_day: day + 1,
        }
    }

    pub fn weekly(monday: i64) -> Period {
        Period {
            kind: DigestKind::Weekly,
            from_day: monday,
            to_day: monday + 7,
        }
    }

    /// The first day, as stored in `deliveries.subject`.
    pub fn subject(&self) -> String {
        utc_date(self.from_day * DAY_MS)
    }

    pub fn parse(kind: &str, subject: &str) -> Option<Period> {
        let day = tally_core::time::parse_date(subject)?;
        match kind {
            "digest_daily" => Some(Period::daily(day)),
            "digest_weekly" => Some(Period::weekly(day)),
            _ => None,
        }
    }

    pub fn previous(&self) -> Period {
        let n = self.to_day - self.from_day;
        Period {
            kind: self.kind,
            from_day: self.from_day - n,
            to_day: self.from_day,
        }
    }

    pub fn key(&self, channel: &str) -> String {
        format!("{}:{}:{channel}", self.kind.as_str(), self.subject())
    }

    /// "Mon 16 Nov 2026", "16–22 Nov 2026", "30 Nov – 6 Dec 2026".
    pub fn label(&self) -> String {
        let (y1, m1, d1) = civil_from_days(self.from_day);
        let (y2, m2, d2) = civil_from_days(self.to_day - 1);
        let mon = |m: u32| MONTHS[(m as usize + 11) % 12];
        match self.kind {
            DigestKind::Daily => format!(
                "{} {d1} {} {y1}",
                DAYS[weekday(self.from_day) as usize],
                mon(m1)
            ),
            DigestKind::Weekly if (y1, m1) == (y2, m2) => format!("{d1}–{d2} {} {y1}", mon(m1)),
            DigestKind::Weekly if y1 == y2 => format!("{d1} {} – {d2} {} {y1}", mon(m1), mon(m2)),
            DigestKind::Weekly => format!("{d1} {} {y1} – {d2} {} {y2}", mon(m1), mon(m2)),
        }
    }
}

/// The digests due on local day `today` at local hour `hour`: the daily one
/// (weekdays, covering yesterday) and the weekly one (Mondays, covering the
/// week before) once the team's hour has come. Later ticks of the same day
/// find them again, and the deliveries ledger makes that harmless, so a
/// missed tick only delays a digest.
pub fn due(s: &DigestSettings, today: i64, hour: i64) -> Vec<Period> {
    let mut out = Vec::new();
    if hour < s.digest_hour {
        return out;
    }
    let wd = weekday(today);
    if s.digest_daily == 1 && wd < 5 {
        out.push(Period::daily(today - 1));
    }
    if s.digest_weekly == 1 && wd == 0 {
        out.push(Period::weekly(today - 7));
    }
    out
}

pub fn public_url(env: &Env) -> String {
    config(env, bindings::PUBLIC_URL)
        .unwrap_or_else(|| "http://localhost:8787".into())
        .trim_end_matches('/')
        .to_string()
}

/// The signature of a member's one-click unsubscribe link (HMAC under PEPPER).
pub fn unsubscribe_sig(pepper: &str, team_id: &str, member_id: &str) -> String {
    hmac_hex(
        pepper.as_bytes(),
        format!("tally-unsubscribe\u{0}{team_id}\u{0}{member_id}").as_bytes(),
    )
}

/// The shard rides along unsigned: it only routes (`TrustedTeam::from_signed_link`).
pub fn unsubscribe_url(
    base: &str,
    pepper: &str,
    team_id: &str,
    member_id: &str,
    shard: &str,
) -> String {
    format!(
        "{base}/unsubscribe?team={team_id}&member={member_id}&sig={}&shard={shard}",
        unsubscribe_sig(pepper, team_id, member_id)
    )
}

/// Fills a digest from the same queries and sums the dashboard uses.
pub async fn digest_data(
    env: &Env,
    db: &TeamDb,
    team: &TeamSettings,
    zone: &Zone,
    p: &Period,
) -> Result<DigestData> {
    // A period's `to_day` is its first day after.
    let quarters = |p: &Period| Range::days(p.from_day, p.to_day - 1, zone).quarters();
    let (fh, th) = quarters(p);
    let (pfh, pth) = quarters(&p.previous());
    let models = db.totals_by_model(fh, th).await?;
    let before = stats::sum(&db.totals_by_model(pfh, pth).await?);
    let totals = stats::sum(&models);
    let devs = db.by_developer(fh, th).await?;
    let projects = db.by_project(fh, th).await?;
    let freshness = db.last_received().await?.map(|ms| zone.time(ms));
    let top =
        |rows: &[crate::db::GroupTotals], project: bool| -> Vec<(String, tally_core::money::Usd)> {
            rows.iter()
                .take(digest::TOP_N)
                .map(|r| {
                    let name = if !project {
                        r.label.clone()
                    } else if r.label.is_empty() {
                        format!("unlabelled {}", r.key.chars().take(8).collect::<String>())
                    } else {
                        r.label.clone()
                    };
                    (name, r.cost())
                })
                .collect()
        };
    // Budgets stand as of the month the period ends in (month to date).
    let month = tally_core::budget::Month::of_day(p.to_day - 1);
    let lines = db.budget_status(month, zone).await?;
    let budgets = (!lines.is_empty()).then(|| {
        lines
            .iter()
            .map(|b| digest::BudgetLine {
                scope: match b.scope {
                    crate::db::BudgetScope::Team => "Team".to_string(),
                    crate::db::BudgetScope::Project => format!("Project {}", b.label),
                    crate::db::BudgetScope::Developer => format!("Developer {}", b.label),
                },
                spent: b.spent,
                budget: b.budget,
            })
            .collect()
    });
    // Seats prorated over the period's days, as the Developers page does.
    let spend = db
        .developer_spend(&crate::web::range::Range::days(
            p.from_day,
            p.to_day - 1,
            zone,
        ))
        .await?;
    let seats = spend
        .iter()
        .filter(|d| d.plan != tally_core::budget::SeatPlan::Api)
        .count() as u32;
    let actual_spend = (seats > 0).then(|| digest::ActualSpend {
        api_equivalent: spend.iter().map(|d| d.api_equivalent).sum(),
        actual: spend.iter().map(|d| d.actual).sum(),
        seats,
    });
    Ok(DigestData {
        team_name: team.name.clone(),
        kind: p.kind,
        period: p.label(),
        timezone: zone.name.clone(),
        freshness,
        spend: totals.cost(),
        previous_spend: before.cost(),
        requests: totals.requests,
        active_developers: devs.iter().filter(|d| d.requests > 0).count(),
        cache_read_tokens: totals.cache_read_tokens,
        prompt_tokens: stats::prompt_tokens(&totals),
        cache_saved: stats::caching_saved(&models),
        top_developers: top(&devs, false),
        top_projects: top(&projects, true),
        top_models: models
            .iter()
            .take(digest::TOP_N)
            .map(|m| (m.model.clone(), m.cost()))
            .collect(),
        budgets,
        actual_spend,
        summary: None,
        dashboard_url: format!("{}/", public_url(env)),
    })
}

pub fn alert_message(team: &str, a: &AlertRow, dashboard: &str) -> Value {
    let title = digest::esc(&a.title, 2000);
    json!({
        "text": digest::clip(&format!("Tally alert for {team}: {}", a.title), 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Tally alert", "emoji": false}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{title}*")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{} · <{}|Open the dashboard>", digest::esc(team, 100), digest::esc(dashboard, 300))}]}
        ]
    })
}

pub fn test_message(team: &str) -> Value {
    let t = format!("Tally test message: this channel will receive {team}'s digests and alerts.");
    json!({"text": t, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": digest::esc(&t, 3000)}}]})
}

/// What a delivery carries; rebuilt from the ledger row on a retry.
enum What {
    Digest(Period),
    Alert(AlertRow),
    Broken {
        integration: String,
        reason: String,
        at: i64,
    },
}

impl What {
    fn kind(&self) -> &'static str {
        match self {
            What::Digest(p) => p.kind.as_str(),
            What::Alert(_) => "alert",
            What::Broken { .. } => "integration_broken",
        }
    }

    fn subject(&self) -> String {
        match self {
            What::Digest(p) => p.subject(),
            What::Alert(a) => a.id.clone(),
            // Each break is news: the instant makes a second break of the same integration a new delivery.
            What::Broken {
                integration, at, ..
            } => format!("{integration}@{at}"),
        }
    }
}

enum Channel {
    Slack(IntegrationRow, Target),
    Email(MemberRow),
}

impl Channel {
    fn id(&self) -> String {
        match self {
            Channel::Slack(i, _) => i.id.clone(),
            Channel::Email(m) => format!("email:{}", m.id),
        }
    }
}

#[derive(Default)]
struct Counts {
    sent: u64,
    retry: u64,
    failed: u64,
}

/// One team's tick: its settings, working integrations and a cache of the
/// digests built so far (each built, and summarized, once per tick).
struct Team<'a> {
    env: &'a Env,
    db: TeamDb,
    team: TeamSettings,
    zone: Zone,
    settings: DigestSettings,
    slack: Vec<(IntegrationRow, Target)>,
    digests: HashMap<String, DigestData>,
    now: i64,
    counts: Counts,
}

/// The hourly work over every team; one team's failure does not stop the others.
pub async fn tick(env: &Env, now: i64) -> Result<Value> {
    let teams = ServiceDb::all_teams(env).await?;
    let (mut sent, mut retry, mut failed, mut errors) = (0, 0, 0, 0);
    for t in teams.iter().filter(|t| t.delete_after.is_none()) {
        match team_tick(env, TeamDb::new(env, t)?, now).await {
            Ok(c) => {
                sent += c.sent;
                retry += c.retry;
                failed += c.failed;
            }
            Err(e) => {
                errors += 1;
                worker::console_error!("reports for team {}: {e}", t.id);
            }
        }
    }
    Ok(json!({"sent": sent, "retry": retry, "failed": failed, "team_errors": errors}))
}

/// The team's working Slack integrations with their secrets opened; none
/// without `KMS_KEY`.
pub fn open_integrations(
    env: &Env,
    team_id: &str,
    rows: Vec<IntegrationRow>,
) -> Vec<(IntegrationRow, Target)> {
    let Some(kms) = vault::kms_key(env) else {
        return Vec::new();
    };
    rows.into_iter()
        .filter(|r| r.state == "ok")
        .filter_map(|r| match target(&kms, team_id, &r) {
            Ok(t) => Some((r, t)),
            Err(e) => {
                worker::console_error!("integration {} does not open: {e}", r.id);
                None
            }
        })
        .collect()
}

pub fn target(kms: &str, team_id: &str, r: &IntegrationRow) -> std::result::Result<Target, String> {
    let secret = vault::open_secret(kms, team_id, &r.id, &r.secret_sealed)?;
    Ok(if r.kind == "slack_bot" {
        Target::Bot {
            token: secret,
            channel: r.channel.clone(),
        }
    } else {
        Target::Webhook { url: secret }
    })
}

async fn team_tick(env: &Env, db: TeamDb, now: i64) -> Result<Counts> {
    let team = db.settings().await?;
    let zone = Zone::new(&team.timezone);
    let settings = db.digest_settings().await?;
    let slack = open_integrations(env, &team.id, db.integrations().await?);
    let mut t = Team {
        env,
        db,
        team,
        zone,
        settings,
        slack,
        digests: HashMap::new(),
        now,
        counts: Counts::default(),
    };

    // A claim older than an hour belongs to an invocation that died mid-post.
    t.counts.failed += t.db.expire_interrupted(now - HOUR_MS, now).await?;
    // Retries first: they were due before anything new.
    for row in t.db.due_retries(now).await? {
        if !t.db.reclaim_delivery(&row.key, now).await? {
            continue;
        }
        let what = match row.kind.as_str() {
            "alert" => t.db.alert(&row.subject).await?.map(What::Alert),
            "integration_broken" => {
                let (id, at) = row.subject.split_once('@').unwrap_or((&row.subject, "0"));
                t.db.integration(id).await?.map(|i| What::Broken {
                    reason: i.broken_reason.unwrap_or_default(),
                    integration: i.id,
                    at: at.parse().unwrap_or(0),
                })
            }
            k => Period::parse(k, &row.subject).map(What::Digest),
        };
        let channel = match row.channel.strip_prefix("email:") {
            Some(member) => {
                t.db.members()
                    .await?
                    .into_iter()
                    .find(|m| m.id == member)
                    .map(Channel::Email)
            }
            None => t
                .slack
                .iter()
                .find(|(i, _)| i.id == row.channel)
                .map(|(i, s)| Channel::Slack(i.clone(), s.clone())),
        };
        match (what, channel) {
            (Some(w), Some(c)) => t.attempt(&row.key, &w, &c, row.attempts + 1).await?,
            _ => {
                t.counts.failed += 1;
                t.db.finish_delivery(
                    &row.key,
                    "failed",
                    None,
                    Some("the integration, member or alert is gone"),
                    None,
                    now,
                )
                .await?
            }
        }
    }

    let today = t.zone.local_day(now);
    let hour = (now - t.zone.day_start(today)).div_euclid(HOUR_MS);
    for p in due(&t.settings, today, hour) {
        let slack: Vec<Channel> = t
            .slack
            .iter()
            .map(|(i, s)| Channel::Slack(i.clone(), s.clone()))
            .collect();
        for c in slack {
            t.once(&What::Digest(p), &c).await?;
        }
        if p.kind == DigestKind::Weekly {
            for m in t.db.weekly_email_members().await? {
                t.once(&What::Digest(p), &Channel::Email(m)).await?;
            }
        }
    }

    let alerts = t.db.alerts_to_deliver(now - ALERT_WINDOW_MS).await?;
    if !alerts.is_empty() {
        let admins: Vec<MemberRow> =
            t.db.members()
                .await?
                .into_iter()
                .filter(|m| m.role >= Role::Admin)
                .collect();
        for a in alerts {
            let what = What::Alert(a);
            let slack: Vec<Channel> = t
                .slack
                .iter()
                .map(|(i, s)| Channel::Slack(i.clone(), s.clone()))
                .collect();
            for c in slack {
                t.once(&what, &c).await?;
            }
            for m in &admins {
                t.once(&what, &Channel::Email(m.clone())).await?;
            }
        }
    }
    Ok(t.counts)
}

impl Team<'_> {
    /// Posts `what` on `channel` unless some run already did or is doing it.
    async fn once(&mut self, what: &What, channel: &Channel) -> Result<()> {
        let key = format!("{}:{}:{}", what.kind(), what.subject(), channel.id());
        if !self
            .db
            .claim_delivery(&key, what.kind(), &what.subject(), &channel.id(), self.now)
            .await?
        {
            return Ok(());
        }
        self.attempt(&key, what, channel, 1).await
    }

    async fn digest(&mut self, p: &Period) -> Result<DigestData> {
        let k = p.key("");
        if let Some(d) = self.digests.get(&k) {
            return Ok(d.clone());
        }
        let mut d = digest_data(self.env, &self.db, &self.team, &self.zone, p).await?;
        if self.settings.digest_ai_summary == 1 {
            d.summary = summary::summarize(self.env, &self.db, &d, self.now).await;
        }
        self.digests.insert(k, d.clone());
        Ok(d)
    }

    /// One attempt of a claimed delivery, and its result in the ledger.
    async fn attempt(
        &mut self,
        key: &str,
        what: &What,
        channel: &Channel,
        attempts: i64,
    ) -> Result<()> {
        let now = self.now;
        let dashboard = format!("{}/", public_url(self.env));
        let (outcome, status) = match channel {
            Channel::Slack(_, target) => {
                let msg = match what {
                    What::Digest(p) => {
                        let msg = digest::blocks(&self.digest(p).await?);
                        if let Err(e) = digest::within_limits(&msg) {
                            // Never expected (a property test covers any data); refuse rather than post something Slack would cut.
                            return self
                                .finish(
                                    key,
                                    &Outcome::Failed(format!("message over Slack limits: {e}")),
                                    None,
                                    attempts,
                                )
                                .await;
                        }
                        msg
                    }
                    What::Alert(a) => alert_message(&self.team.name, a, &dashboard),
                    // Broken-integration notices go to owners by e-mail only.
                    What::Broken { .. } => {
                        let refused = Outcome::Failed("not a Slack message".into());
                        return self.finish(key, &refused, None, attempts).await;
                    }
                };
                slack::post(self.env, target, &msg, now).await
            }
            Channel::Email(m) => {
                let (subject, text, html, headers) = match what {
                    What::Digest(p) => {
                        let d = self.digest(p).await?;
                        let pepper = required(self.env, bindings::PEPPER)?;
                        let unsub = unsubscribe_url(&public_url(self.env), &pepper, &self.team.id, &m.id, self.db.shard().binding());
                        let text = format!("{}\nTo stop these e-mails: {unsub}\n", digest::email_text(&d));
                        let headers = vec![
                            ("List-Unsubscribe", format!("<{unsub}>")),
                            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_string()),
                        ];
                        (format!("{} · {}", digest::title(&d), self.team.name), text, digest::email_html(&d, &unsub), headers)
                    }
                    What::Alert(a) => (
                        format!("Tally alert: {}", digest::clip(&a.title, 150)),
                        format!("{}\n\nTeam: {}\nDashboard: {dashboard}\n", a.title, self.team.name),
                        maud::html! { p { b { (a.title) } } p { "Team: " (self.team.name) } p { a href=(dashboard) { "Open the dashboard" } } }.into_string(),
                        vec![],
                    ),
                    What::Broken { integration, reason, .. } => (
                        "Tally: a Slack integration stopped working".to_string(),
                        format!("Slack refused a post for {} ({reason}). Nothing more is posted there until an admin sends a test from the Integrations page: {dashboard}integrations\n", self.team.name),
                        maud::html! { p { "Slack refused a post for " (self.team.name) " (" (reason) ", integration " (integration) ")." } p { "Nothing more is posted there until an admin sends a test from the " a href=(format!("{dashboard}integrations")) { "Integrations page" } "." } }.into_string(),
                        vec![],
                    ),
                };
                match send_email_with(self.env, &m.email, &subject, &text, &html, &headers).await {
                    Ok(()) => (Outcome::Sent, Some(200)),
                    Err(e) => (Outcome::Retry(e.to_string()), None),
                }
            }
        };
        self.finish(key, &outcome, status, attempts).await?;
        if let (Outcome::Broken(reason), Channel::Slack(i, _)) = (&outcome, channel) {
            self.broken(i, reason).await?;
        }
        Ok(())
    }

    async fn finish(
        &mut self,
        key: &str,
        outcome: &Outcome,
        status: Option<u16>,
        attempts: i64,
    ) -> Result<()> {
        let now = self.now;
        let retry_or_fail = |at: i64, e: &str| {
            if attempts >= MAX_ATTEMPTS {
                (
                    "failed",
                    Some(format!("gave up after {attempts} attempts: {e}")),
                    None,
                )
            } else {
                ("retry", Some(e.to_string()), Some(at))
            }
        };
        let (state, error, next) = match outcome {
            Outcome::Sent => ("sent", None, None),
            Outcome::Broken(e) | Outcome::Failed(e) => ("failed", Some(e.clone()), None),
            Outcome::RetryAt(at, e) => retry_or_fail(*at, e),
            Outcome::Retry(e) => retry_or_fail(now + slack::RETRY_LATER_MS, e),
        };
        match state {
            "sent" => self.counts.sent += 1,
            "retry" => self.counts.retry += 1,
            _ => self.counts.failed += 1,
        }
        self.db
            .finish_delivery(key, state, status, error.as_deref(), next, now)
            .await
    }

    /// Marks the integration broken (once), audits it and tells the owners.
    async fn broken(&mut self, i: &IntegrationRow, reason: &str) -> Result<()> {
        if !self.db.mark_integration_broken(&i.id, reason).await? {
            return Ok(());
        }
        self.slack.retain(|(s, _)| s.id != i.id);
        self.db
            .audit(
                SYSTEM_ACTOR,
                AuditAction::IntegrationBroken,
                None,
                &json!({"integration_id": i.id, "kind": i.kind, "reason": reason}),
                self.now,
            )
            .await?;
        let what = What::Broken {
            integration: i.id.clone(),
            reason: reason.to_string(),
            at: self.now,
        };
        for m in self
            .db
            .members()
            .await?
            .into_iter()
            .filter(|m| m.role == Role::Owner)
        {
            // Boxed: this is reached from `attempt`, which `once` calls.
            Box::pin(self.once(&what, &Channel::Email(m))).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::time::days_from_civil;

    fn s(daily: i64, weekly: i64, hour: i64) -> DigestSettings {
        DigestSettings {
            digest_daily: daily,
            digest_weekly: weekly,
            digest_hour: hour,
            digest_ai_summary: 0,
        }
    }

    #[test]
    fn digests_fall_due_on_weekdays_and_mondays_from_the_local_hour() {
        let monday = days_from_civil(2026, 11, 23);
        assert_eq!(weekday(monday), 0);
        assert_eq!(due(&s(1, 1, 9), monday, 8), vec![]);
        assert_eq!(
            due(&s(1, 1, 9), monday, 9),
            vec![Period::daily(monday - 1), Period::weekly(monday - 7)]
        );
        assert_eq!(
            due(&s(1, 1, 9), monday + 1, 15),
            vec![Period::daily(monday)]
        );
        assert_eq!(due(&s(1, 1, 9), monday + 5, 23), vec![], "Saturday");
        assert_eq!(due(&s(0, 1, 0), monday + 2, 0), vec![]);
        assert_eq!(due(&s(0, 0, 0), monday, 12), vec![]);
    }

    #[test]
    fn periods_have_labels_keys_and_predecessors() {
        let monday = days_from_civil(2026, 11, 16);
        let w = Period::weekly(monday);
        assert_eq!(w.label(), "16–22 Nov 2026");
        assert_eq!(w.key("i1"), "digest_weekly:2026-11-16:i1");
        assert_eq!(w.previous(), Period::weekly(monday - 7));
        assert_eq!(Period::parse("digest_weekly", "2026-11-16"), Some(w));
        assert_eq!(
            Period::weekly(days_from_civil(2026, 11, 30)).label(),
            "30 Nov – 6 Dec 2026"
        );
        assert_eq!(
            Period::weekly(days_from_civil(2025, 12, 29)).label(),
            "29 Dec 2025 – 4 Jan 2026"
        );
        assert_eq!(Period::daily(monday).label(), "Mon 16 Nov 2026");
        assert_eq!(Period::parse("alert", "2026-11-16"), None);
    }

    #[test]
    fn unsubscribe_links_are_signed_per_member() {
        let a = unsubscribe_sig("pepper", "t1", "m1");
        assert_ne!(a, unsubscribe_sig("pepper", "t1", "m2"));
        assert_ne!(a, unsubscribe_sig("pepper", "t2", "m1"));
        assert_eq!(
            unsubscribe_url("https://x", "pepper", "t1", "m1", "DB_2"),
            format!("https://x/unsubscribe?team=t1&member=m1&sig={a}&shard=DB_2")
        );
    }
}
