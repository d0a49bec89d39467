//! What happens to text that an event's mode permitted. Runs inside the ingest
//! request, so text never reaches the queue, D1, or logs; only Full mode writes
//! it anywhere, and then sealed under the team's key.

pub(crate) mod categorize;
pub mod store;

use tally_core::event::{PrivacyMode, WireEvent};
use worker::{Env, Result};

use crate::db::{CategorizeStats, TeamDb, TeamSettings};

/// Runs after re-pricing, so stored content carries the edge's numbers.
pub async fn process(
    env: &Env,
    db: &TeamDb,
    team: &TeamSettings,
    developer_id: &str,
    batch_id: &str,
    mut events: Vec<WireEvent>,
    now: i64,
) -> Result<(Vec<WireEvent>, CategorizeStats)> {
    let stats = if team.mode() == PrivacyMode::CategorizeCloud {
        categorize::categorize(env, db, now, &mut events).await?
    } else {
        CategorizeStats::default()
    };
    if team.mode() == PrivacyMode::Full {
        store::store(env, db, developer_id, batch_id, &events, now).await?;
    }
    // Aggregation reads only the numeric fields and the category, so text
    // goes no further than this function whatever the mode.
    Ok((events, stats))
}
