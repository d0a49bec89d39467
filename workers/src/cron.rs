//! Scheduled work: the nightly lifecycle run (`30 3 * * *`, UTC) and an
//! hourly run (`0 * * * *`) that resumes lifecycle jobs one invocation could
//! not finish and raises budget and spike alerts (`crate::budgets`). The
//! clock is the event's scheduled time, which tests set.

use worker::{Env, Result};

use crate::db::ServiceDb;

pub const NIGHTLY: &str = "30 3 * * *";
pub const HOURLY: &str = "0 * * * *";

pub async fn run_cron(cron: &str, scheduled_ms: i64, env: &Env) -> Result<()> {
    let summary = match cron {
        NIGHTLY => crate::lifecycle::nightly(env, scheduled_ms).await?,
        HOURLY => {
            let mut summary = crate::lifecycle::work(env, scheduled_ms).await?;
            summary["alerts"] = crate::budgets::evaluate_all(env, scheduled_ms).await?;
            summary
        }
        other => {
            worker::console_warn!("cron {other} is not ours; resuming lifecycle work");
            crate::lifecycle::work(env, scheduled_ms).await?
        }
    };
    ServiceDb::new(env)?
        .record_cron(cron, scheduled_ms, &summary.to_string())
        .await
}
