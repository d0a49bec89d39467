//! The Tally Worker: a thin adapter from HTTP, Queue, Cron and Durable Object
//! events to `tally_core` rules and to storage behind `db`.

mod bindings;
mod consumer;
mod content;
mod cron;
mod db;
mod ingest;
mod lifecycle;
mod limiter;
mod pages;
mod util;
mod web;
mod zone;

pub use limiter::TeamLimiter;

use worker::{
    event, Context, Env, MessageBatch, Method, Request, Response, Result, ScheduleContext,
    ScheduledEvent,
};

use crate::util::json_error;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let method = req.method();
    // A failure inside a handler becomes a clean 500 with a JSON body: the
    // Worker must never answer with a runtime exception page.
    let result = match (method, path.as_str()) {
        (Method::Get, "/healthz") => Response::ok("ok"),
        (Method::Post, "/v1/events") => ingest::events(req, env).await,
        (Method::Post, "/v1/agent/enroll") => ingest::enroll(req, env).await,
        (Method::Get, "/v1/agent/config") => ingest::agent_config(req, env).await,
        (Method::Post, "/v1/admin/bootstrap") => web::bootstrap(req, env).await,
        (Method::Get, "/auth/link") => web::signin_link(req, env).await,
        (Method::Post, "/login") => web::login(req, env).await,
        (Method::Post, "/logout") => pages::logout(req, env).await,
        (Method::Get, "/") => pages::overview(req, env).await,
        (Method::Get, "/developers") => pages::developers(req, env).await,
        (Method::Get, "/projects") => pages::projects(req, env).await,
        (Method::Post, "/projects/label") => pages::label_project(req, env).await,
        (Method::Get, "/sessions") => pages::sessions(req, env).await,
        (Method::Get, "/models") => pages::models(req, env).await,
        (Method::Get, "/categories") => pages::categories(req, env).await,
        (Method::Get, "/settings") => pages::settings(req, env).await,
        (Method::Post, "/settings/privacy") => pages::save_privacy(req, env).await,
        (Method::Post, "/settings/retention") => pages::save_retention(req, env).await,
        (Method::Post, "/settings/rate-limit") => pages::save_rate_limit(req, env).await,
        (Method::Post, "/settings/timezone") => pages::save_timezone(req, env).await,
        (Method::Get, "/tokens") => pages::tokens(req, env).await,
        (Method::Post, "/tokens") => pages::create_token(req, env).await,
        (Method::Post, "/tokens/revoke") => pages::revoke_token(req, env).await,
        (Method::Get, "/members") => pages::members(req, env).await,
        (Method::Post, "/members/invite") => pages::invite_member(req, env).await,
        (Method::Post, "/members/role") => pages::change_role(req, env).await,
        (Method::Post, "/members/remove") => pages::remove_member(req, env).await,
        (Method::Get, "/audit") => pages::audit(req, env).await,
        (Method::Get, p) if p.starts_with("/static/") => pages::static_asset(p),
        (Method::Get, "/api/me") => web::api_me(req, env).await,
        (Method::Get, "/api/overview") => pages::api_overview(req, env).await,
        (Method::Get, "/api/agents") => web::api_agents(req, env).await,
        (Method::Post, "/api/install-tokens") => web::api_create_install_token(req, env).await,
        (Method::Post, "/api/settings/privacy") => web::api_set_privacy(req, env).await,
        (Method::Post, "/api/settings/rate-limit") => web::api_set_rate_limit(req, env).await,
        (Method::Get, "/api/audit") => web::api_audit(req, env).await,
        (Method::Post, p) if p.starts_with("/api/agents/") && p.ends_with("/revoke") => {
            let id = p["/api/agents/".len()..p.len() - "/revoke".len()].to_string();
            web::api_revoke_agent(req, env, &id).await
        }
        _ => json_error(404, "not_found", "no such route"),
    };
    match result {
        Ok(r) => Ok(r),
        Err(e) => {
            worker::console_error!("request failed: {e}");
            json_error(500, "internal", "internal error; see the Worker logs")
        }
    }
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
