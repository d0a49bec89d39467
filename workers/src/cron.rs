//! Scheduled work: the nightly lifecycle run (`30 3 * * *`, UTC) and an
//! hourly run (`0 * * * *`) that resumes lifecycle jobs one invocation could
//! not finish, compacts settled UTC days of usage into `usage_d`, pulls Cursor's
//! team usage (`crate::cursor`), raises budget and spike alerts (`crate::budgets`), then delivers
//! due digests and those alerts (`crate::reports`). The clock is the event's
//! scheduled time, which tests set.

use worker::{Env, Result};

use crate::db::ServiceDb;

pub const NIGHTLY: &str = "30 3 * * *";
pub const HOURLY: &str = "0 * * * *";

pub async fn run_cron(cron: &str, scheduled_ms: i64, env: &Env) -> Result<()> {
    let summary = match cron {
        NIGHTLY => crate::lifecycle::nightly(env, scheduled_ms).await?,
        HOURLY => {
            let mut summary = crate::lifecycle::work(env, scheduled_ms).await?;
            // Before alerts and reports, which read the sums it speeds up.
            summary["compacted"] = crate::lifecycle::compact(env, scheduled_ms).await?;
            // Cursor's usage before alerts and reports, which then see it
            // (its queue parts land within seconds; a later tick at worst).
            summary["cursor"] = crate::cursor::pull_all(env, scheduled_ms)
                .await
                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
            // Alerts are raised before reports run, so the same tick
            // delivers them.
            summary["alerts"] = crate::budgets::evaluate_all(env, scheduled_ms).await?;
            // Reports after lifecycle work; a failure there is logged and
            // recorded, never a reason to skip the lifecycle summary.
            let reports = crate::reports::tick(env, scheduled_ms)
                .await
                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
            summary["reports"] = reports;
            summary
        }
        other => {
            worker::console_warn!("cron {other} is not ours; resuming lifecycle work");
            crate::lifecycle::work(env, scheduled_ms).await?
        }
    };
    ServiceDb::first(env)?
        .record_cron(cron, scheduled_ms, &summary.to_string())
        .await
}
