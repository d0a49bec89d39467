//! Data lifecycle: what the nightly run and the hourly catch-up do.
//!
//! Work is cut into per-team jobs in D1 (`lifecycle_jobs`): retention (content
//! of days before the team's cutoff and category rows of those days; never an
//! aggregate), hard deletion of a team 30 days after its owner deleted it,
//! purging all content when a team leaves Full, and erasing a developer's
//! content. Each invocation spends at most `LIFECYCLE_OPS_PER_RUN` R2 calls;
//! a job that runs out saves its cursor and resumes on the next invocation, a
//! job that fails keeps its error and the run goes on with the next one. Every
//! finished job writes its result to the team's audit log.

use serde_json::json;
use tally_core::time::{utc_date, DAY_MS};
use tally_core::wire::MARKER_TTL_DAYS;
use worker::{Bucket, Env, Result};

use crate::bindings;
use crate::content::store::{content_prefix, key_day};
use crate::db::{LifecycleJob, ServiceDb, TeamDb};
use crate::util::config;
use crate::vocab::AuditAction;

/// Days between an owner deleting a team and the team being erased.
pub const DELETION_GRACE_DAYS: i64 = 30;
/// R2 calls one invocation may spend (a Worker may make 1,000 subrequests).
const DEFAULT_OPS_PER_RUN: u32 = 400;
/// A job that failed this often stops being retried and stays `failed`.
const MAX_ATTEMPTS: i64 = 5;
/// R2 deletes at most this many keys per call.
const DELETE_CHUNK: usize = 1000;
pub const RETENTION: &str = "retention";
pub const HARD_DELETE: &str = "hard_delete";
pub const CONTENT_PURGE: &str = "content_purge";
pub const DEVELOPER_ERASE: &str = "developer_erase";

/// The nightly run: starts today's jobs (idempotent under doubled cron
/// invocations), does housekeeping, then works through pending jobs.
pub async fn nightly(env: &Env, now: i64) -> Result<serde_json::Value> {
    let today = now.div_euclid(DAY_MS);
    let mut started = 0;
    for team in ServiceDb::all_teams(env).await? {
        let db = TeamDb::new(env, &team)?;
        match (team.delete_after, team.retention_days) {
            (Some(due), _) if due <= now => {
                db.start_job(HARD_DELETE, "", today, 0, now).await?;
                started += 1;
            }
            // A team scheduled for deletion keeps its data for the grace
            // period, so that cancelling restores everything.
            (Some(_), _) => {}
            (None, days) if days > 0 => {
                db.start_job(RETENTION, "", today, today - days, now)
                    .await?;
                started += 1;
            }
            _ => {} // kept forever
        }
    }
    let mut swept = 0;
    for service in ServiceDb::all(env)? {
        swept += service
            .housekeeping(now - MARKER_TTL_DAYS * DAY_MS, now, now - 730 * DAY_MS)
            .await?;
    }
    let mut summary = work(env, now).await?;
    summary["jobs_started"] = started.into();
    summary["housekeeping_rows"] = swept.into();
    Ok(summary)
}

/// A UTC day is compacted into `usage_d` once it ended this long ago: agents
/// ship within minutes, so later events are rare backfills, which the
/// consumer adds to both tables.
pub const COMPACT_SETTLE_MS: i64 = 2 * DAY_MS;
/// Days one hourly invocation compacts over all teams, and per team (a
/// team's first compaction after deploy catches up over several hours
/// without starving the others). Each day is two reads and a batch.
const COMPACT_DAYS_PER_RUN: u32 = 240;
const COMPACT_DAYS_PER_TEAM: u32 = 48;

/// The hourly compaction of settled UTC days (`TeamDb::compact_next_day`).
/// A team that fails is logged and skipped; the next hour resumes it.
pub async fn compact(env: &Env, now: i64) -> Result<serde_json::Value> {
    let last_day = (now - COMPACT_SETTLE_MS).div_euclid(DAY_MS) - 1;
    let mut budget = COMPACT_DAYS_PER_RUN;
    let mut days = 0u32;
    let mut rows = 0u64;
    for team in ServiceDb::all_teams(env).await? {
        if budget == 0 {
            break;
        }
        let db = TeamDb::new(env, &team)?;
        for _ in 0..COMPACT_DAYS_PER_TEAM.min(budget) {
            match db.compact_next_day(last_day).await {
                Ok(Some((_, written))) => {
                    budget -= 1;
                    days += 1;
                    rows += written;
                }
                Ok(None) => break,
                Err(e) => {
                    worker::console_warn!("compaction of team {} failed: {e}", team.id);
                    break;
                }
            }
        }
    }
    // Rows written, as D1 counts them: what compaction costs (SCALE.md).
    Ok(json!({ "days": days, "through_day": last_day, "rows_written": rows }))
}

/// Works through pending jobs within one invocation's budget.
pub async fn work(env: &Env, now: i64) -> Result<serde_json::Value> {
    let mut jobs = Vec::new();
    for service in ServiceDb::all(env)? {
        jobs.extend(service.pending_jobs(100).await?);
    }
    run_jobs(env, jobs, now).await
}

/// Works through one team's pending jobs, inline in a dashboard request: a
/// small team sees its purge or erasure done at once, the hourly cron
/// resumes whatever did not fit into this request's budget.
pub async fn work_team(env: &Env, db: &TeamDb, now: i64) -> Result<serde_json::Value> {
    let jobs = db.pending_jobs(20).await?;
    run_jobs(env, jobs, now).await
}

async fn run_jobs(env: &Env, jobs: Vec<LifecycleJob>, now: i64) -> Result<serde_json::Value> {
    let mut budget = config(env, bindings::LIFECYCLE_OPS_PER_RUN)
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_OPS_PER_RUN);
    let bucket = env.bucket(bindings::CONTENT_BUCKET)?;
    let (mut done, mut failed, mut resumable) = (0, 0, 0);
    for mut job in jobs {
        if budget == 0 {
            resumable += 1;
            continue;
        }
        let db = TeamDb::new(env, &job)?;
        let service = ServiceDb::of(env, &job)?;
        let outcome = run(&bucket, &db, &mut job, &mut budget, now).await;
        match outcome {
            Ok(true) => {
                done += 1;
                finish(&service, &db, &job, now).await?;
            }
            Ok(false) => {
                resumable += 1;
                service.save_job(&job, "pending", None, now).await?;
            }
            Err(e) => {
                failed += 1;
                job.attempts += 1;
                let state = if job.attempts >= MAX_ATTEMPTS {
                    "failed"
                } else {
                    "pending"
                };
                let message = e.to_string();
                worker::console_error!("lifecycle job {} ({}) failed: {message}", job.id, job.kind);
                service.save_job(&job, state, Some(&message), now).await?;
                // The team sees it too; a hard-deleted team has no log left.
                if job.kind != HARD_DELETE {
                    db.audit(
                        "system",
                        AuditAction::LifecycleFailed,
                        None,
                        &json!({"job": job.kind, "error": message, "attempt": job.attempts}),
                        now,
                    )
                    .await?;
                }
            }
        }
    }
    Ok(json!({"jobs_done": done, "jobs_failed": failed, "jobs_resumable": resumable}))
}

async fn finish(service: &ServiceDb, db: &TeamDb, job: &LifecycleJob, now: i64) -> Result<()> {
    let details = json!({
        "cutoff": utc_date(job.cutoff_day * DAY_MS),
        "objects_deleted": job.objects,
        "bytes_deleted": job.bytes,
        "rows_deleted": job.rows,
    });
    match job.kind.as_str() {
        RETENTION => {
            db.audit("system", AuditAction::RetentionPruned, None, &details, now)
                .await?
        }
        CONTENT_PURGE => {
            db.audit("system", AuditAction::ContentPurged, None, &details, now)
                .await?
        }
        DEVELOPER_ERASE => {
            let mut d = details;
            d["developer"] = job.subject.clone().into();
            db.audit("system", AuditAction::DeveloperErased, None, &d, now)
                .await?
        }
        // The team and its audit log are gone; the tombstone holds the counts.
        _ => {}
    }
    if job.kind != HARD_DELETE {
        service.save_job(job, "done", None, now).await?;
    }
    Ok(())
}

/// Runs one job until it is done (`true`) or the budget is spent (`false`).
async fn run(
    bucket: &Bucket,
    db: &TeamDb,
    job: &mut LifecycleJob,
    budget: &mut u32,
    now: i64,
) -> Result<bool> {
    let team = db.team_id().to_string();
    match job.kind.as_str() {
        RETENTION => {
            let cutoff = job.cutoff_day;
            let finished = sweep(bucket, &content_prefix(&team), job, budget, |key| {
                match key_day(&team, key) {
                    Some(day) if day < cutoff => Ok(Sweep::Delete),
                    // Keys sort by day: everything after this is younger.
                    Some(_) => Ok(Sweep::Stop),
                    None => Err(worker::Error::RustError(format!(
                        "refusing to prune {key}: not a dated content key of team {team}"
                    ))),
                }
            })
            .await?;
            if finished {
                job.rows += db.prune_rows_before(cutoff).await? as i64;
            }
            Ok(finished)
        }
        CONTENT_PURGE => {
            let finished = sweep(bucket, &content_prefix(&team), job, budget, |_| {
                Ok(Sweep::Delete)
            })
            .await?;
            if finished {
                job.rows += db.forget_all_content().await? as i64;
            }
            Ok(finished)
        }
        DEVELOPER_ERASE => {
            // The index names the developer's objects: delete a page of keys,
            // then their index rows, until none is left.
            loop {
                if *budget == 0 {
                    return Ok(false);
                }
                let page = db
                    .developer_content_keys(&job.subject, DELETE_CHUNK as i64)
                    .await?;
                if page.is_empty() {
                    return Ok(true);
                }
                let keys: Vec<String> = page
                    .iter()
                    .map(|o| o.key.clone())
                    .filter(|k| k.starts_with(&content_prefix(&team)))
                    .collect();
                *budget -= 1;
                bucket.delete_multiple(keys.clone()).await?;
                job.objects += keys.len() as i64;
                job.bytes += page.iter().map(|o| o.bytes).sum::<i64>();
                let all: Vec<String> = page.into_iter().map(|o| o.key).collect();
                job.rows += db.forget_content_keys(&all).await? as i64;
            }
        }
        HARD_DELETE => {
            let settings = db.settings().await?;
            let Some(deleted_at) = settings.deleted_at else {
                // Cancelled after the job started: nothing to do.
                return Ok(true);
            };
            if settings.delete_after.is_some_and(|d| d > now) {
                return Ok(true);
            }
            let prefix = format!("teams/{team}/");
            let finished = sweep(bucket, &prefix, job, budget, |_| Ok(Sweep::Delete)).await?;
            if finished {
                let r2 = json!({"objects": job.objects, "bytes": job.bytes});
                db.hard_delete(deleted_at, now, &r2).await?;
            }
            Ok(finished)
        }
        other => Err(worker::Error::RustError(format!(
            "unknown lifecycle job kind {other}"
        ))),
    }
}

enum Sweep {
    Delete,
    Stop,
}

/// Lists `prefix` page by page from the job's cursor and deletes what
/// `decide` says, in calls of at most 1,000 keys. Deleting from the front of
/// a listing would shift later pages, so a page's keys are deleted before the
/// next page is listed from the start again (no cursor across deletions).
async fn sweep(
    bucket: &Bucket,
    prefix: &str,
    job: &mut LifecycleJob,
    budget: &mut u32,
    decide: impl Fn(&str) -> Result<Sweep>,
) -> Result<bool> {
    loop {
        // A listing is only worth its call if the deletion can follow.
        if *budget < 2 {
            return Ok(false);
        }
        *budget -= 1;
        let mut list = bucket
            .list()
            .prefix(prefix.to_string())
            .limit(DELETE_CHUNK as u32);
        if let Some(c) = job.cursor.clone() {
            list = list.cursor(c);
        }
        let page = list.execute().await?;
        let mut doomed = Vec::new();
        let mut bytes = 0i64;
        let mut stop = false;
        for o in page.objects() {
            let key = o.key();
            match decide(&key)? {
                Sweep::Delete => {
                    bytes += o.size() as i64;
                    doomed.push(key);
                }
                Sweep::Stop => {
                    stop = true;
                    break;
                }
            }
        }
        if !doomed.is_empty() {
            *budget -= 1;
            bucket.delete_multiple(doomed.clone()).await?;
            job.objects += doomed.len() as i64;
            job.bytes += bytes;
        }
        if stop || !page.truncated() {
            job.cursor = None;
            return Ok(true);
        }
        // Only pages we kept whole need a cursor; after deletions the next
        // listing from the start sees what is left.
        job.cursor = if doomed.is_empty() {
            page.cursor()
        } else {
            None
        };
    }
}
