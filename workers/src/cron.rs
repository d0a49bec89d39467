//! Scheduled work: the nightly retention run (cron `30 3 * * *`, UTC).

use tally_core::time::{DAY_MS, HOUR_MS};
use worker::{Env, Result};

use crate::db::{ServiceDb, TeamDb};
use crate::util::now_ms;

pub async fn run_cron(cron: &str, env: &Env) -> Result<()> {
    let service = ServiceDb::new(env)?;
    let now = now_ms();
    let mut pruned = 0;
    for team in service.teams().await? {
        if team.retention_days <= 0 {
            continue; // "forever"
        }
        let before_ms = now - team.retention_days * DAY_MS;
        TeamDb::new(env, &team)?
            .prune_before(before_ms.div_euclid(HOUR_MS), before_ms, now)
            .await?;
        pruned += 1;
    }
    service
        .record_cron(
            cron,
            now,
            &serde_json::json!({"teams_pruned": pruned}).to_string(),
        )
        .await
}
