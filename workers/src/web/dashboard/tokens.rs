//! `GET /tokens`: developers' agents; install tokens are issued and agents
//! revoked from here.

use maud::html;
use worker::{Env, Request};

use super::download;
use super::layout::{csrf_field, error_page, show, show_as, table};
use super::Page;
use crate::db::AgentRow;
use crate::util::redirect;
use crate::vocab::Role;
use crate::web::actions;
use crate::web::auth::{AdminForm, SignedIn};
use crate::web::export::Table;
use crate::zone::Zone;

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    user.require_page(Role::Admin)?;
    let team = user.db.settings().await?;
    let zone = Zone::new(&team.timezone);
    let agents = user.db.agents().await?;
    let t = Table::of::<AgentRow, Zone>(
        "agents",
        &[
            ("agent", |a, _| a.id.clone()),
            ("developer", |a, _| a.developer_name.clone()),
            ("host", |a, _| a.hostname.clone().unwrap_or_default()),
            ("enrolled", |a, z| z.time(a.created_at)),
            ("last seen", |a, z| {
                a.last_seen_at
                    .map(|t| z.time(t))
                    .unwrap_or_else(|| "never".into())
            }),
            ("status", |a, _| {
                if a.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                }
                .into()
            }),
        ],
        &agents,
        &zone,
    );
    if let Some(r) = download(&req, &user, &t).await? {
        return Ok(r);
    }
    let csrf = csrf_field(&user.principal.csrf_token);
    let devs = user.db.developer_list().await?;
    let body = html! {
        h1 { "Developers & tokens" }
        (super::settings::deletion_banner(&user, &team, &zone))
        @if let Some(s) = crate::util::query(&req).get("saved") {
            p.ok data-testid="saved" { "Saved: " (s) }
        }
        form method="post" action="/tokens" class="box" {
            (csrf)
            label { "Developer name " input name="developer_name" required maxlength="200" data-testid="developer-name"; }
            button data-testid="create-token" { "Create one-time install token" }
        }
        h2 { "Agents" }
        (table(&t))
        p {
            @for a in agents.iter().filter(|a| a.revoked_at.is_none()) {
                form.inline method="post" action="/tokens/revoke" {
                    (csrf)
                    input type="hidden" name="agent_id" value=(a.id);
                    button data-testid=(format!("revoke-{}", a.id)) {
                        "Revoke " (a.developer_name) " (" (a.id) ")"
                    }
                }
                " "
            }
        }
        (super::people::forms(&user, &devs))
    };
    Ok(show_as(
        user.can(Role::Admin),
        "Developers & tokens",
        "/tokens",
        body,
        200,
    )?)
}

/// `POST /tokens`: shows the new install command once; only its hash is stored.
pub async fn create(req: Request, env: Env) -> Page {
    let origin = req.url()?.origin().ascii_serialization();
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let name = form.trimmed("developer_name");
    if !actions::valid_developer_name(name) {
        return Ok(error_page(
            "Developers & tokens",
            "/tokens",
            "A developer name (1–200 bytes) is required.",
            400,
        )?);
    }
    let token = actions::issue_install_token(&env, &form.user, name)
        .await?
        .token;
    let body = html! {
        h1 { "Install token for " (name) }
        p { "Copy this command now; it is shown once, works once and expires in 7 days." }
        code.once data-testid="install-command" { "tally install --server " (origin) " --token " (token) }
        p { a href="/tokens" { "Back" } }
    };
    let mut r = show("Install token", "/tokens", body, 200)?;
    r.headers_mut().set("Cache-Control", "no-store")?;
    Ok(r)
}

/// `POST /tokens/revoke`: revoking an unknown or already revoked agent
/// changes nothing; the list shows the truth.
pub async fn revoke(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    actions::revoke_agent(&form.user, form.raw("agent_id")).await?;
    Ok(redirect("/tokens")?)
}
