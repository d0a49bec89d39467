//! The queue consumer: applies each rollup part once, in one D1 transaction
//! (batch marker + aggregates), acking or retrying every message on its own.

use serde::{Deserialize, Serialize};
use tally_core::rollup::Rollup;
use worker::{Env, MessageBatch, MessageExt, Result};

use crate::db::{Applied, CategorizeStats, PartToApply, TeamDb, TrustedTeam};
use crate::util::now_ms;

#[derive(Debug, Serialize, Deserialize)]
pub struct QueuePart {
    pub team_id: String,
    pub developer_id: String,
    /// The agent that sent the batch, whose price disagreements are counted.
    pub agent_id: String,
    /// The batch id, the same in every part and across resends.
    pub marker: String,
    pub part: u32,
    /// Fingerprint of the batch's whole rollup and split (`ingest::split_id`).
    pub split: String,
    pub received_at: i64,
    pub rollup: Rollup,
    /// Cloud categorization figures of the batch, carried by its first part only.
    #[serde(default)]
    pub categorize: Option<CategorizeStats>,
    /// Events the agent priced differently from the edge, first part only.
    #[serde(default)]
    pub disagreements: u64,
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
                    "applied {} part {} ({} events, {} rows written)",
                    part.marker,
                    part.part,
                    part.rollup.events,
                    rows_written
                );
                msg.ack();
            }
            Ok(Applied::Duplicate) => {
                worker::console_log!("duplicate {} part {} ignored", part.marker, part.part);
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
    db.apply_part(
        &PartToApply {
            batch_id: &part.marker,
            part: part.part,
            split: &part.split,
            developer_id: &part.developer_id,
            agent_id: &part.agent_id,
            rollup: &part.rollup,
            categorized: part.categorize.as_ref(),
            disagreements: part.disagreements,
        },
        now_ms(),
    )
    .await
}
