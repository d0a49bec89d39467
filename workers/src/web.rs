//! The HTTP face of the Worker: the routing table, request guards, the
//! dashboard pages, the JSON API and sign-in. `handle` resolves a request to
//! a `Route` and `dispatch` calls its handler; every error becomes a response
//! in `error`, so a handler never answers with a runtime exception page.
//!
//! Layers, each using only those below it:
//! `routes` (pure table) · `dashboard::layout`, `error`, `range`, `export`
//! (rendering, errors) · `auth` (guards) · `signin`, `actions`, `stats`
//! (what handlers do) · `api`, `dashboard::*`, `bootstrap`, `selfview`
//! (handlers).

pub mod actions;
pub mod api;
pub mod assets;
pub mod auth;
pub mod bootstrap;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod format;
pub mod install;
pub mod onetime;
pub mod range;
pub mod routes;
pub mod selfview;
pub mod signin;
pub mod stats;

#[cfg(test)]
mod props;

use worker::{Env, Request, Response};

use crate::ingest;
use dashboard::{
    audit, branches, budgets, drill, integrations, me, members, overview, people, settings,
    timeline, tokens, usage,
};
use error::{ApiError, PageError};
use routes::{Params, Resolved, Route};

pub async fn handle(req: Request, env: Env) -> worker::Result<Response> {
    let method = req.method();
    let path = req.path();
    let answer = match routes::resolve(method.as_ref(), &path) {
        Resolved::Found(route, params) => dispatch(route, params, req, env).await,
        Resolved::WrongMethod(allow) => Err(ApiError::MethodNotAllowed { allow }),
        // A person who mistyped an address gets a page with the way back;
        // scripts and agents keep the JSON answer.
        Resolved::NotFound if wants_page(&req, &path) => {
            return dashboard::layout::failure_page(404, "There is no page at this address.");
        }
        Resolved::NotFound => Err(ApiError::not_found("no such route")),
    };
    answer.or_else(ApiError::into_response)
}

/// A browser asking for a dashboard address (not the API, the agents'
/// endpoints or a file).
fn wants_page(req: &Request, path: &str) -> bool {
    let html = req
        .headers()
        .get("Accept")
        .ok()
        .flatten()
        .is_some_and(|a| a.contains("text/html"));
    html && req.method() == worker::Method::Get
        && !["/api/", "/v1/", "/static/", "/releases/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// Pages answer every failure as HTML with the navigation and a way back;
/// only `/api/*` and downloads answer JSON.
fn page(answer: Result<Response, PageError>) -> Result<Response, ApiError> {
    answer.or_else(|e| match e {
        PageError::Api(e) => {
            if let ApiError::Internal(cause) = &e {
                worker::console_error!("page failed: {cause}");
            }
            let (status, body, _) = e.parts();
            let message = match status {
                500.. => "Tally could not finish this request.",
                _ => body["message"]
                    .as_str()
                    .unwrap_or("The request could not be completed."),
            };
            Ok(dashboard::layout::failure_page(status, message)?)
        }
        e => Ok(e.into_response()?),
    })
}

/// A download: its failures stay JSON for the scripts that fetch it.
fn download(answer: Result<Response, PageError>) -> Result<Response, ApiError> {
    answer.or_else(|e| match e {
        PageError::Api(e) => Err(e),
        e => Ok(e.into_response()?),
    })
}

async fn dispatch(
    route: Route,
    params: Params,
    req: Request,
    env: Env,
) -> Result<Response, ApiError> {
    match route {
        Route::Healthz => Ok(Response::ok("ok")?),
        Route::IngestEvents => Ok(ingest::events(req, env).await?),
        Route::OtlpLogs => Ok(ingest::otlp_logs(req, env).await?),
        Route::OtlpMetrics => Ok(ingest::otlp_metrics(req, env).await?),
        Route::AgentEnroll => Ok(ingest::enroll(req, env).await?),
        Route::AgentConfig => Ok(ingest::agent_config(req, env).await?),
        Route::AgentSelfView => selfview::mint(req, env).await,
        Route::Bootstrap => bootstrap::bootstrap(req, env).await,
        Route::SigninLink => signin::show_link(req, env).await,
        Route::SigninConfirm => signin::follow_link(req, env).await,
        Route::Login => signin::login(req, env).await,
        Route::Logout => signin::logout(req, env).await,
        Route::SelfViewLink => selfview::show_link(req, env).await,
        Route::SelfViewConfirm => selfview::follow_link(req, env).await,
        Route::SelfViewLogout => selfview::logout(req, env).await,
        Route::Me => page(me::page(req, env).await),
        Route::MeAudit => page(me::audit(req, env).await),
        Route::MeSession => page(me::timeline(req, env, params.get("id")).await),
        Route::Overview => page(overview::page(req, env).await),
        Route::Developers => page(usage::developers(req, env).await),
        Route::Projects => page(usage::projects(req, env).await),
        Route::LabelProject => page(usage::label_project(req, env).await),
        Route::Branches => page(branches::branches(req, env).await),
        Route::LabelBranch => page(branches::label_branch(req, env).await),
        Route::Sessions => page(usage::sessions(req, env).await),
        Route::Models => page(usage::models(req, env).await),
        Route::Categories => page(usage::categories(req, env).await),
        Route::Settings => page(settings::page(req, env).await),
        Route::SavePrivacy => page(settings::save_privacy(req, env).await),
        Route::SaveRetention => page(settings::save_retention(req, env).await),
        Route::SaveRateLimit => page(settings::save_rate_limit(req, env).await),
        Route::SaveShipInterval => page(settings::save_ship_interval(req, env).await),
        Route::SaveTimezone => page(settings::save_timezone(req, env).await),
        Route::SaveCategorizeBudget => page(usage::save_categorize_budget(req, env).await),
        Route::Tokens => page(tokens::page(req, env).await),
        Route::CreateToken => page(tokens::create(req, env).await),
        Route::RevokeToken => page(tokens::revoke(req, env).await),
        Route::CreateOtlpToken => page(tokens::create_otlp(req, env).await),
        Route::SetSourcePath => page(tokens::set_source_path(req, env).await),
        Route::Members => page(members::page(req, env).await),
        Route::InviteMember => page(members::invite(req, env).await),
        Route::ChangeRole => page(members::change_role(req, env).await),
        Route::RemoveMember => page(members::remove(req, env).await),
        Route::Audit => page(audit::page(req, env).await),
        Route::SessionTimeline => page(timeline::page(req, env, params.get("id")).await),
        Route::SessionExport => download(timeline::export(req, env, params.get("id")).await),
        Route::DeleteTeam => page(settings::delete_team(req, env).await),
        Route::CancelDeletion => page(settings::cancel_deletion(req, env).await),
        Route::RemoveDeveloper => page(people::remove(req, env).await),
        Route::EraseDeveloper => page(people::erase(req, env).await),
        Route::Integrations => page(integrations::page(req, env).await),
        Route::AddSlack => page(integrations::add_slack(req, env).await),
        Route::TestIntegration => page(integrations::test(req, env).await),
        Route::RemoveIntegration => page(integrations::remove(req, env).await),
        Route::AddCursor => page(integrations::add_cursor(req, env).await),
        Route::RemoveCursor => page(integrations::remove_cursor(req, env).await),
        Route::LinkCursorUser => page(integrations::link_cursor_user(req, env).await),
        Route::SaveDigestSchedule => page(integrations::schedule(req, env).await),
        Route::SaveWeeklyEmail => page(integrations::save_weekly_email(req, env).await),
        Route::UnsubscribeConfirm => page(integrations::unsubscribe_confirm(req, env).await),
        Route::Unsubscribe => page(integrations::unsubscribe(req, env).await),
        Route::Budgets => page(budgets::page(req, env).await),
        Route::SaveBudget => page(budgets::save(req, env).await),
        Route::DeleteBudget => page(budgets::delete(req, env).await),
        Route::DismissAlert => page(budgets::dismiss(req, env).await),
        Route::SetSeat => page(people::set_seat(req, env).await),
        Route::Static => assets::serve(params.get("file")),
        Route::DeveloperDetail => page(drill::developer(req, env, params.get("id")).await),
        Route::ProjectDetail => page(drill::project(req, env, params.get("id")).await),
        Route::ModelDetail => page(drill::model(req, env, params.get("id")).await),
        Route::SessionSummary => page(drill::session(req, env, params.get("id")).await),
        Route::RevokeInstallToken => page(tokens::revoke_install(req, env).await),
        Route::ResendInvite => page(members::resend(req, env).await),
        Route::RevokeInvite => page(members::revoke_invite(req, env).await),
        Route::ApiFirstRun => api::first_run(req, env).await,
        Route::InstallScript => install::script(req, env).await,
        Route::ReleaseManifest => install::manifest(env).await,
        Route::ReleaseBinary => {
            install::binary(env, params.get("version"), params.get("target")).await
        }
        Route::ApiMe => api::me(req, env).await,
        Route::ApiOverview => api::overview(req, env).await,
        Route::ApiAgents => api::agents(req, env).await,
        Route::ApiCreateInstallToken => api::create_install_token(req, env).await,
        Route::ApiSetPrivacy => api::set_privacy(req, env).await,
        Route::ApiSetRateLimit => api::set_rate_limit(req, env).await,
        Route::ApiSetCategorizeBudget => api::set_categorize_budget(req, env).await,
        Route::ApiAudit => api::audit(req, env).await,
        Route::ApiRevokeAgent => api::revoke_agent(req, env, params.get("id")).await,
    }
}
