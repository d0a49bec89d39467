//! The queue consumer: applies each rollup part once. One delivery's parts of
//! a team share one D1 transaction with their rows merged (markers + merged
//! aggregates, all or nothing); when any of them was applied before, or the
//! merged write fails, each part goes alone in its own transaction (marker +
//! aggregates) and is acked or retried on its own.

use serde::{Deserialize, Serialize};
use tally_core::rollup::Rollup;
use worker::{Env, MessageBatch, MessageExt, Result};

use crate::db::{Applied, CategorizeStats, PartToApply, RowsWritten, Shards, TeamDb, TrustedTeam};
use crate::util::now_ms;

#[derive(Debug, Serialize, Deserialize)]
pub struct QueuePart {
    pub team_id: String,
    /// The D1 shard of the team; absent in messages from before sharding
    /// (the first shard).
    #[serde(default)]
    pub shard: Option<String>,
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
    let shards = match crate::db::shards(&env) {
        Ok(s) => s,
        Err(e) => {
            worker::console_error!("shard configuration: {e}");
            batch.retry_all();
            return;
        }
    };
    // One team's parts of this delivery, in delivery order.
    let mut teams: Vec<(String, Vec<Delivered>)> = Vec::new();
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
        match teams.iter_mut().find(|(t, _)| *t == part.team_id) {
            Some((_, v)) => v.push((msg, part)),
            None => teams.push((part.team_id.clone(), vec![(msg, part)])),
        }
    }
    for (team, parts) in teams {
        let (merged, alone) = mergeable(parts);
        if merged.len() > 1 {
            let todo: Vec<PartToApply> = merged.iter().map(|(_, p)| to_apply(p)).collect();
            let events: u64 = merged.iter().map(|(_, p)| p.rollup.events).sum();
            match apply_merged(&env, &shards, &merged[0].1, &todo).await {
                Ok(Some(rows_written)) => {
                    worker::console_log!(
                        "applied {} parts of team {team} in one transaction ({events} events, {rows_written})",
                        merged.len()
                    );
                    for (msg, _) in &merged {
                        msg.ack();
                    }
                    for (msg, part) in alone {
                        one(&env, &shards, msg, part).await;
                    }
                    continue;
                }
                // Some part was applied before: each on its own decides which.
                Ok(None) => {}
                Err(e) => worker::console_error!(
                    "merged apply for team {team} failed ({e}); applying its parts one by one"
                ),
            }
        }
        for (msg, part) in merged.into_iter().chain(alone) {
            one(&env, &shards, msg, part).await;
        }
    }
}

type Delivered = (worker::Message<serde_json::Value>, QueuePart);

/// Splits one team's parts into those that can share a transaction and the
/// rest: a part that repeats another's (batch, part), or is another split of
/// a batch already in the set, is applied on its own afterwards, where the
/// markers the set wrote decide it exactly as they would across deliveries.
fn mergeable(parts: Vec<Delivered>) -> (Vec<Delivered>, Vec<Delivered>) {
    let mut merged: Vec<Delivered> = Vec::new();
    let mut alone = Vec::new();
    for d in parts {
        let clash = merged
            .iter()
            .any(|(_, p)| p.marker == d.1.marker && (p.part == d.1.part || p.split != d.1.split));
        if clash {
            alone.push(d);
        } else {
            merged.push(d);
        }
    }
    (merged, alone)
}

/// One part in its own transaction, acked or retried.
async fn one(env: &Env, shards: &Shards, msg: worker::Message<serde_json::Value>, part: QueuePart) {
    match apply(env, shards, &part).await {
        Ok(Applied::Written { rows_written }) => {
            worker::console_log!(
                "applied {} part {} ({} events, {})",
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

fn to_apply(part: &QueuePart) -> PartToApply<'_> {
    PartToApply {
        batch_id: &part.marker,
        part: part.part,
        split: &part.split,
        developer_id: &part.developer_id,
        agent_id: &part.agent_id,
        rollup: &part.rollup,
        categorized: part.categorize.as_ref(),
        disagreements: part.disagreements,
    }
}

fn team_db(env: &Env, shards: &Shards, part: &QueuePart) -> Result<TeamDb> {
    let team = TrustedTeam::from_queue(shards, part.team_id.clone(), part.shard.as_deref())?;
    TeamDb::new(env, &team)
}

/// `first` is any of the parts: a team's parts all name its one shard.
async fn apply_merged(
    env: &Env,
    shards: &Shards,
    first: &QueuePart,
    parts: &[PartToApply<'_>],
) -> Result<Option<RowsWritten>> {
    team_db(env, shards, first)?
        .apply_parts(parts, now_ms())
        .await
}

async fn apply(env: &Env, shards: &Shards, part: &QueuePart) -> Result<Applied> {
    team_db(env, shards, part)?
        .apply_part(&to_apply(part), now_ms())
        .await
}
