//! Cursor's team usage, pulled by the hourly cron from Cursor's Admin API
//! (`POST {CURSOR_API_BASE}/teams/filtered-usage-events`) with the admin
//! API key a team admin saved on the Integrations page (sealed by
//! `reports::vault`). The pure rules (wire format, model names, ids,
//! masked e-mails) are `tally_core::cursor`.
//!
//! Each run reads the window from the integration's watermark minus an
//! overlap (Cursor's events can arrive late) to the run's time, page by
//! page until `hasNextPage` is false, within a page budget per run; a
//! window with more pages than the budget is shrunk before it is read, so
//! the watermark only moves over windows read whole. Events already queued
//! by an earlier pull are recognised by their keyed id (`cursor_events`)
//! and dropped; each developer's new events go down the same `accept`
//! path as agent and OTLP batches, under a batch id derived from their
//! ids, so a pull retried after a failure meets the consumer's markers.
//!
//! E-mail addresses are used in memory only: stored as keyed hashes, shown
//! masked. An address counts for the developer it was linked to before, or
//! a current developer named exactly by it, or else a new developer named
//! by the masked address (admins link or rename it on the Integrations page).

use std::collections::{BTreeMap, HashSet};

use futures_util::future::{select, Either};
use serde_json::{json, Value};
use tally_core::cursor::{self, Skip, UsageEvent};
use tally_core::money::Usd;
use tally_core::pricing::{default_table, price_request};
use tally_core::time::{DAY_MS, HOUR_MS};
use worker::{Env, Result};

use crate::bindings;
use crate::db::{CursorIntegrationRow, PullTotals, ServiceDb, TeamDb};
use crate::reports::vault;
use crate::util::{config, random_id};

pub const DEFAULT_API_BASE: &str = "https://api.cursor.com";
/// Each pull starts this long before the watermark: Cursor's events can
/// arrive late, and ids make the re-read harmless.
pub const OVERLAP_MS: i64 = 2 * HOUR_MS;
/// A new integration reads this far back.
pub const INITIAL_LOOKBACK_MS: i64 = 7 * DAY_MS;
/// The longest window one pull asks for (a long outage catches up in steps).
const MAX_WINDOW_MS: i64 = 7 * DAY_MS;
/// Pages one team may read per run, and all teams together: each page is a
/// subrequest, and a Worker invocation has a bounded number of them.
const PAGES_PER_TEAM: u64 = 20;
const PAGES_PER_RUN: u64 = 200;
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Why a pull did not happen, in the words the Integrations page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Refused(u16),
    RateLimited,
    Server(u16),
    Unexpected(u16),
    Unreachable(String),
    BadAnswer(String),
    KeyDoesNotOpen,
    OurRateLimit,
}

impl Failure {
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Refused(s) | Failure::Server(s) | Failure::Unexpected(s) => Some(*s),
            Failure::RateLimited => Some(429),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::Refused(s) => format!("Cursor refused the API key (HTTP {s}). Create an admin API key in Cursor's team settings and save it here again; nothing is pulled until then."),
            Failure::RateLimited => "Cursor is rate limiting this API key (HTTP 429); the pull is retried next hour.".into(),
            Failure::Server(s) => format!("Cursor's API failed (HTTP {s}); the pull is retried next hour."),
            Failure::Unexpected(s) => format!("Cursor answered HTTP {s}; the pull is retried next hour."),
            Failure::Unreachable(e) => format!("Cursor's API could not be reached ({e}); the pull is retried next hour."),
            Failure::BadAnswer(e) => format!("Cursor's answer was not understood ({e}); the pull is retried next hour."),
            Failure::KeyDoesNotOpen => "The saved key cannot be opened (the deployment's KMS_KEY changed); save the key again.".into(),
            Failure::OurRateLimit => "Tally's event rate limit for this team refused the events; the pull is retried next hour.".into(),
        }
    }
}

pub fn api_base(env: &Env) -> String {
    config(env, bindings::CURSOR_API_BASE)
        .unwrap_or_else(|| DEFAULT_API_BASE.into())
        .trim_end_matches('/')
        .to_string()
}

fn page_size(env: &Env) -> u32 {
    config(env, bindings::CURSOR_PAGE_SIZE)
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| (1..=1000).contains(n))
        .unwrap_or(cursor::PAGE_SIZE)
}

/// One page of `[start, end)`.
pub async fn fetch_page(
    env: &Env,
    api_key: &str,
    start_ms: i64,
    end_ms: i64,
    page: u64,
    page_size: u32,
) -> std::result::Result<cursor::Page, Failure> {
    let url = format!("{}/teams/filtered-usage-events", api_base(env));
    let body = cursor::request_body(start_ms, end_ms, page, page_size).to_string();
    let unreachable = |e: worker::Error| Failure::Unreachable(e.to_string());
    let headers = worker::Headers::new();
    headers
        .set("Content-Type", "application/json")
        .map_err(unreachable)?;
    headers
        .set("Authorization", &cursor::basic_auth(api_key))
        .map_err(unreachable)?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let req = worker::Request::new_with_init(&url, &init).map_err(unreachable)?;
    let fetch = Box::pin(async move {
        let mut resp = worker::Fetch::Request(req)
            .send()
            .await
            .map_err(|e| Failure::Unreachable(e.to_string()))?;
        let status = resp.status_code();
        let text = resp.text().await.unwrap_or_default();
        Ok::<_, Failure>((status, text))
    });
    let (status, text) = match select(fetch, worker::Delay::from(TIMEOUT)).await {
        Either::Left((r, _)) => r?,
        Either::Right(_) => return Err(Failure::Unreachable("timed out".into())),
    };
    match status {
        200 => cursor::parse_page(&text).map_err(Failure::BadAnswer),
        401 | 403 => Err(Failure::Refused(status)),
        429 => Err(Failure::RateLimited),
        500..=599 => Err(Failure::Server(status)),
        s => Err(Failure::Unexpected(s)),
    }
}

/// The hourly pull over every team with a Cursor integration; one team's
/// failure never stops the others.
pub async fn pull_all(env: &Env, now: i64) -> Result<Value> {
    let Some(kms) = vault::kms_key(env) else {
        return Ok(json!({"skipped": "KMS_KEY is not set"}));
    };
    let mut budget = PAGES_PER_RUN;
    let (mut teams, mut events, mut failed) = (0u64, 0u64, 0u64);
    for team in ServiceDb::all_teams(env).await? {
        if team.delete_after.is_some() {
            continue;
        }
        if budget == 0 {
            break;
        }
        let db = TeamDb::new(env, &team)?;
        let Some(row) = db.cursor_integration().await? else {
            continue;
        };
        teams += 1;
        match pull_team(env, &db, &kms, &row, now, &mut budget).await {
            Ok(Ok(n)) => events += n,
            Ok(Err(f)) => {
                failed += 1;
                db.cursor_pull_failed(&row.id, f.status(), &f.message(), now)
                    .await?;
            }
            Err(e) => {
                failed += 1;
                worker::console_error!("Cursor pull of team {}: {e}", team.id);
            }
        }
    }
    Ok(json!({"teams": teams, "events": events, "failed": failed}))
}

/// Reads the team's window and queues its new events; the number queued,
/// or why nothing moved.
async fn pull_team(
    env: &Env,
    db: &TeamDb,
    kms: &str,
    row: &CursorIntegrationRow,
    now: i64,
    budget: &mut u64,
) -> Result<std::result::Result<u64, Failure>> {
    let Ok(key) = vault::open_secret(kms, db.team_id(), &row.id, &row.key_sealed) else {
        return Ok(Err(Failure::KeyDoesNotOpen));
    };
    let start = row.watermark_ms - OVERLAP_MS;
    let mut end = now.min(start + MAX_WINDOW_MS);
    if end <= start {
        return Ok(Ok(0));
    }
    let size = page_size(env);
    let mut read: Vec<UsageEvent> = Vec::new();
    let mut page = 1;
    let mut shrunk = false;
    let whole = loop {
        let allowed = PAGES_PER_TEAM.min(*budget);
        if page > allowed {
            break false;
        }
        *budget -= 1;
        let p = match fetch_page(env, &key, start, end, page, size).await {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        if page == 1 && p.pagination.num_pages > allowed && !shrunk && end - start > HOUR_MS {
            // Too many pages to read whole: ask again for the part of the
            // window that fits.
            end = fitted_end(start, end, allowed, p.pagination.num_pages);
            shrunk = true;
            continue;
        }
        read.extend(p.usage_events);
        if !p.pagination.has_next_page {
            break true;
        }
        page += 1;
    };
    let (queued, outcome) = ingest(env, db, row, &read, now).await?;
    let watermark = if whole && outcome.is_ok() {
        end
    } else {
        row.watermark_ms
    };
    let prune_before = start.min(now - INITIAL_LOOKBACK_MS - OVERLAP_MS - DAY_MS);
    db.cursor_pull_done(
        &row.id,
        &queued.seen,
        prune_before,
        watermark,
        &queued.totals,
        outcome.is_ok(),
        now,
    )
    .await?;
    Ok(outcome.map(|()| queued.totals.events))
}

/// The end of the part of `[start, end)` that `allowed` pages should hold
/// when the whole takes `pages`, assuming events spread evenly; never under
/// an hour (a burst over the budget is then read over several runs, its
/// events kept as they come and the watermark held until one run reads a
/// window whole).
fn fitted_end(start: i64, end: i64, allowed: u64, pages: u64) -> i64 {
    let span = i128::from(end - start) * i128::from(allowed.max(1)) / i128::from(pages.max(1));
    start + (span as i64).clamp(HOUR_MS, end - start)
}

#[derive(Default)]
struct Queued {
    seen: Vec<(String, i64)>,
    totals: PullTotals,
}

/// The events not queued before, by developer, through `ingest::accept`.
async fn ingest(
    env: &Env,
    db: &TeamDb,
    row: &CursorIntegrationRow,
    read: &[UsageEvent],
    now: i64,
) -> Result<(Queued, std::result::Result<(), Failure>)> {
    let mut out = Queued::default();
    if read.is_empty() {
        return Ok((out, Ok(())));
    }
    let team = db.settings().await?;
    let ids: Vec<String> = read
        .iter()
        .map(|e| cursor::event_id(&team.salt, e))
        .collect();
    let mut done: HashSet<String> = db.cursor_seen(&ids).await?.into_iter().collect();
    // By e-mail: the wire events of each address, in Cursor's order.
    let mut by_email: BTreeMap<String, Vec<cursor::Mapped>> = BTreeMap::new();
    for (e, id) in read.iter().zip(&ids) {
        if !done.insert(id.clone()) {
            continue;
        }
        match cursor::map_event(&team.salt, e) {
            Ok(m) => by_email.entry(m.email.clone()).or_default().push(m),
            Err(Skip::NoTokens | Skip::Invalid) => {
                out.totals.skipped += 1;
                out.seen.push((id.clone(), e.timestamp));
            }
        }
    }
    // One developer may hold several addresses: their events go together.
    let mut by_dev: BTreeMap<String, Vec<cursor::Mapped>> = BTreeMap::new();
    for (email, events) in by_email {
        let dev = developer_for(db, &team.salt, &email, now).await?;
        by_dev.entry(dev).or_default().extend(events);
    }
    let table = default_table();
    for (dev, mapped) in by_dev {
        let ids: Vec<&str> = mapped.iter().map(|m| m.event.id.as_str()).collect();
        let batch = cursor::batch_id(&row.id, &dev, &ids);
        let events: Vec<_> = mapped.iter().map(|m| m.event.clone()).collect();
        match crate::ingest::accept(env, db, &team, &dev, "", &batch, events, now).await {
            Ok(_) => {}
            Err(crate::error::ApiError::TooManyRequests { .. })
            | Err(crate::error::ApiError::PayloadTooLarge { .. }) => {
                return Ok((out, Err(Failure::OurRateLimit)))
            }
            Err(e) => return Err(worker::Error::RustError(e.to_string())),
        }
        for m in &mapped {
            let t = &mut out.totals;
            t.events += 1;
            match price_request(table, &m.event.model, &m.event.tokens, false).pico() {
                Some(p) => t.list += Usd::from_pico(u128::from(p)),
                None => t.unpriced += 1,
            }
            t.charged += Usd::from_pico(u128::from(m.charged_pico.unwrap_or(0)));
            let ts = m.event.ts;
            t.first_event_ms = Some(t.first_event_ms.map_or(ts, |f| f.min(ts)));
            t.last_event_ms = Some(t.last_event_ms.map_or(ts, |l| l.max(ts)));
            out.seen.push((m.event.id.clone(), ts));
        }
    }
    Ok((out, Ok(())))
}

/// The developer an address counts for, created (masked name) when none.
async fn developer_for(db: &TeamDb, salt: &str, email: &str, now: i64) -> Result<String> {
    let hash = cursor::email_hash(salt, email);
    let masked = cursor::masked_email(email);
    match db.cursor_developer_for(&hash, email).await? {
        Some(dev) => {
            // Recorded (no-op when known) so the page lists the address.
            db.add_cursor_user(&hash, &dev, &masked, false, now).await?;
            Ok(dev)
        }
        None => {
            let dev = random_id()?;
            db.add_cursor_user(&hash, &dev, &masked, true, now).await?;
            Ok(dev)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_with_too_many_pages_shrinks_to_what_fits() {
        let start = 1_000 * DAY_MS;
        let week = start + 7 * DAY_MS;
        // 40 pages where 20 fit: half the week.
        assert_eq!(
            fitted_end(start, week, 20, 40),
            start + 3 * DAY_MS + 12 * HOUR_MS
        );
        // Never under an hour, never past the window.
        assert_eq!(fitted_end(start, week, 1, 1_000_000), start + HOUR_MS);
        assert_eq!(fitted_end(start, week, 20, 10), week);
        assert_eq!(fitted_end(start, week, 0, 0), week);
    }

    #[test]
    fn failures_read_in_plain_words() {
        assert!(Failure::Refused(401)
            .message()
            .starts_with("Cursor refused the API key (HTTP 401)"));
        assert_eq!(Failure::Refused(403).status(), Some(403));
        assert_eq!(Failure::RateLimited.status(), Some(429));
        assert!(Failure::RateLimited.message().contains("retried next hour"));
        assert_eq!(Failure::Unreachable("timed out".into()).status(), None);
    }
}
