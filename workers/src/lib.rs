//! The Tally Worker: a thin adapter from HTTP, Queue, Cron and Durable Object
//! events to `tally_core` rules and to storage behind `db`.

mod anthropic;
mod bindings;
mod budgets;
mod consumer;
mod content;
mod cron;
mod cursor;
mod db;
mod error;
mod ingest;
mod lifecycle;
mod limiter;
mod reports;
mod util;
mod vocab;
mod web;
mod zone;

pub use limiter::TeamLimiter;

/// The ingest route's CPU-bound steps, exactly as the route runs them, for
/// the native benchmark `benches/ingest.rs` (`cargo xtask bench`).
#[doc(hidden)]
pub mod pipeline {
    pub use crate::consumer::QueuePart;
    pub use crate::content::store::{object_key, redacted_groups, sealed_object, StoredContent};
    pub use crate::ingest::body::read_body;
    pub use crate::ingest::{queue_parts, restrict_all, Sender, ROWS_PER_MESSAGE};
}

use worker::{
    event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    web::handle(req, env).await
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    // Returning Err here would fail the whole batch (and panics on
    // workers-rs), so every message is acked or retried inside.
    consumer::consume(batch, env).await;
    Ok(())
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if let Err(e) = cron::run_cron(&event.cron(), event.schedule() as i64, &env).await {
        worker::console_error!("cron {} failed: {e}", event.cron());
    }
}
