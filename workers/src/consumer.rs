//! The queue consumer: applies each rollup part once, in one D1 transaction
//! (batch marker + aggregates), acking or retrying every message on its own.

use serde::{Deserialize, Serialize};
use tally_core::rollup::Rollup;
use worker::{Env, MessageBatch, MessageExt, Result};

use crate::db::{Applied, CategorizeStats, TeamDb, TrustedTeam};
use crate::util::now_ms;

#[derive(Debug, Serialize, Deserialize)]
pub struct QueuePart {
    pub team_id: String,
    pub developer_id: String,
    /// Batch id, suffixed with the part number when a batch needed several messages.
    pub marker: String,
    pub received_at: i64,
    pub rollup: Rollup,
    /// Cloud categorization figures of the batch, carried by its first part only.
    #[serde(default)]
    pub categorize: Option<CategorizeStats>,
}

pub async fn consume(batch: MessageBatch<serde_json::Value>, env: Env) {
    // Each message is acked or retried on its own; returning Err here would
    // fail the whole batch (and panics on workers-rs), so errors stop here.
    let messages = match batch.messages() {
        Ok(m) => m,
        Err(e) => {
            worker::console_error!("undecodable queue batch: {e}");
            batch.retry_all();
            return;
        }
    };
    for msg in messages {
        let part: QueuePart = match serde_json::from_value(msg.body().clone()) {
            Ok(p) => p,
            Err(e) => {
                // A malformed message can never succeed; retrying only delays the
                // dead-letter queue, which is where it belongs for inspection.
                worker::console_error!("malformed queue message {}: {e}", msg.id());
                msg.retry();
                continue;
            }
        };
        match apply(&env, &part).await {
            Ok(Applied::Written { rows_written }) => {
                worker::console_log!(
                    "applied {} ({} events, {} rows written)",
                    part.marker,
                    part.rollup.events,
                    rows_written
                );
                msg.ack();
            }
            Ok(Applied::Duplicate) => {
                worker::console_log!("duplicate {} ignored", part.marker);
                msg.ack();
            }
            Err(e) => {
                worker::console_error!("applying {} failed: {e}", part.marker);
                msg.retry();
            }
        }
    }
}

async fn apply(env: &Env, part: &QueuePart) -> Result<Applied> {
    let db = TeamDb::new(env, &TrustedTeam::from_queue(part.team_id.clone()))?;
    db.apply_rollup(
        &part.marker,
        &part.developer_id,
        &part.rollup,
        part.categorize.as_ref(),
        now_ms(),
    )
    .await
}
