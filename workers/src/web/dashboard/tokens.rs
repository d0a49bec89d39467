//! `GET /tokens`: developers' agents; install tokens are issued and agents
//! revoked from here.

use maud::html;
use worker::{Env, Request};

use super::download;
use super::layout::{csrf_field, error_page, show, table_with};
use super::Page;
use crate::db::{AgentRow, SourceRow};
use crate::util::now_ms;
use crate::util::redirect;
use crate::vocab::AuditAction;
use crate::vocab::Role;
use crate::web::actions;
use crate::web::auth::{AdminForm, SignedIn};
use crate::web::export::Table;
use crate::zone::Zone;
use tally_core::source_path::Path;

struct Ctx<'z> {
    zone: &'z Zone,
    min_version: Option<String>,
}

/// The version an agent last reported, flagged when it is below the
/// server's minimum (`tally update` brings it up).
fn version_cell(version: Option<&str>, min: Option<&str>) -> String {
    match (version, min) {
        (None, _) => "unknown (no upload yet)".into(),
        (Some(v), Some(m)) if !tally_core::release::version_at_least(v, m) => {
            format!("{v} (outdated: minimum {m}; run tally update)")
        }
        (Some(v), _) => v.to_string(),
    }
}

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    user.require_page(Role::Admin)?;
    let team = user.db.settings().await?;
    let zone = Zone::new(&team.timezone);
    let agents = user.db.agents().await?;
    let ctx = Ctx {
        zone: &zone,
        min_version: crate::util::config(&env, crate::bindings::MIN_AGENT_VERSION),
    };
    let t = Table::of::<AgentRow, Ctx<'_>>(
        "agents",
        &[
            ("agent", |a, _| a.id.clone()),
            ("developer", |a, _| a.developer_name.clone()),
            ("host", |a, _| a.hostname.clone().unwrap_or_default()),
            ("version", |a, c| {
                version_cell(a.agent_version.as_deref(), c.min_version.as_deref())
            }),
            ("enrolled", |a, c| c.zone.time(a.created_at)),
            ("last seen (to the hour)", |a, c| {
                a.last_seen_at
                    .map(|t| c.zone.time(t))
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
            ("kind", |a, _| {
                if a.kind == "otlp" {
                    "OpenTelemetry"
                } else {
                    "agent"
                }
                .into()
            }),
        ],
        &agents,
        &ctx,
    );
    if let Some(r) = download(&req, &user, &t).await? {
        return Ok(r);
    }
    let csrf = csrf_field(&user.principal.csrf_token);
    let devs = user.db.developer_list().await?;
    let pending = user
        .db
        .pending_install_tokens(crate::util::now_ms())
        .await?;
    let t = t.listed("/tokens".into(), &crate::util::query(&req), 0);
    let revoke_agent = |i: usize| {
        let a = &agents[i];
        html! {
            @if a.revoked_at.is_none() {
                form.inline method="post" action="/tokens/revoke" data-confirm=(format!("Revoke the agent of {} on {}? It stops uploading at once; the developer needs a new install token.", a.developer_name, a.hostname.as_deref().unwrap_or("an unknown host"))) {
                    (csrf)
                    input type="hidden" name="agent_id" value=(a.id);
                    button.danger data-testid=(format!("revoke-{}", a.id)) aria-label=(format!("Revoke the agent of {} ({})", a.developer_name, a.id)) { "Revoke" }
                }
            }
        }
    };
    let body = html! {
        h1 { "Install tokens" }
        (super::settings::deletion_banner(&user, &team, &zone))
        @if let Some(s) = crate::util::query(&req).get("saved") {
            p.ok data-testid="saved" { "Saved: " (s) }
        }
        form method="post" action="/tokens" class="box" {
            (csrf)
            label { "Developer name " input name="developer_name" required maxlength="200" data-testid="developer-name"; }
            button data-testid="create-token" { "Create one-time install token" }
        }
        h2 { "Pending install tokens" }
        @if pending.is_empty() {
            p data-testid="no-pending-tokens" { "No install token is waiting to be used." }
        } @else {
            p { "Created but not used yet: each works once, until it expires." }
            div.scroll tabindex="0" role="region" aria-label="pending install tokens" {
                table data-testid="table-pending-tokens" {
                    thead { tr { th scope="col" { "developer" } th scope="col" { "created" } th scope="col" { "expires" } th scope="col" { "revoke" } } }
                    tbody {
                        @for p in &pending {
                            tr data-testid="pending-token" {
                                td data-label="developer" { (p.developer) }
                                td data-label="created" { (zone.time(p.created_at)) }
                                td data-label="expires" data-testid="pending-expires" { (zone.time(p.expires_at)) }
                                td data-label="revoke" {
                                    form.inline method="post" action="/tokens/revoke-install" data-confirm=(format!("Revoke the unused install token for {}? Its install command stops working.", p.developer)) {
                                        (csrf)
                                        input type="hidden" name="token" value=(p.token_hash);
                                        button.danger data-testid="revoke-install-token" aria-label=(format!("Revoke the install token for {}", p.developer)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Agents" }
        (table_with(&t, Some(("revoke", &revoke_agent))))
        (otlp_forms(&csrf, &devs, &user.db.source_paths().await?, &zone))
        (super::people::forms(&user, &devs))
    };
    Ok(show(&user, "Install tokens", "/tokens", body, 200)?)
}

/// `POST /tokens`: shows the new install command once; only its hash is stored.
pub async fn create(req: Request, env: Env) -> Page {
    let origin = crate::web::install::server_origin(&req, &env)?;
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let name = form.trimmed("developer_name");
    if !actions::valid_developer_name(name) {
        return Ok(error_page(
            &form.user,
            "Install tokens",
            "/tokens",
            "A developer name (1–200 bytes) is required.",
            400,
        )?);
    }
    let token = actions::issue_install_token(&env, &form.user, name)
        .await?
        .token;
    let release = crate::web::install::current(&env).await?;
    let body = html! {
        h1 { "Install token for " (name) }
        p { "Send this line to " (name) " now; it is shown once, works once and expires in 7 days. "
            "It downloads the agent, checks its SHA-256, installs it to ~/.local/bin (no root), enrols it and starts it in the background." }
        div.copyline {
            code.once #install-command data-testid="install-command" { (crate::web::install::one_line(&origin, &token)) }
            button type="button" data-copy="#install-command" data-testid="copy-install-command" { "Copy" }
        }
        @match &release {
            Some(m) => p data-testid="release" { "Installs agent " (m.version) " (" (m.files.iter().map(|f| f.target.as_str()).collect::<Vec<_>>().join(", ")) ")." },
            None => p.warn data-testid="no-release" {
                "This server has no agent binaries yet, so the line above will stop with that message: the operator runs "
                code { "cargo xtask release-agent --upload" } "."
            },
        }
        p { "Already have " code { "tally" } "? Enrol it with:" }
        code.once data-testid="install-command-manual" { "tally install --server " (origin) " --token " (token) }
        p { a href="/tokens" { "Back" } }
        script src="/static/copy.js" {}
    };
    let mut r = show(&form.user, "Install token", "/tokens", body, 200)?;
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

/// The OpenTelemetry token form and each developer's usage source.
fn otlp_forms(
    csrf: &maud::Markup,
    devs: &[crate::db::DeveloperRow],
    paths: &[SourceRow],
    zone: &Zone,
) -> maud::Markup {
    let active: Vec<_> = devs
        .iter()
        .filter(|d| d.removed_at.is_none() && d.erased_at.is_none())
        .collect();
    html! {
        h2 { "OpenTelemetry (no agent needed)" }
        p { "Claude Code and Codex can send their own OpenTelemetry export to Tally. A token is per developer; "
            "their usage then counts from the export once their source below says OpenTelemetry." }
        form method="post" action="/tokens/otlp" class="box" data-testid="otlp-token-form" {
            (csrf)
            label { "Developer " select name="developer_id" data-testid="otlp-developer" {
                option value="" { "New developer (name below)" }
                @for d in &active { option value=(d.id) { (d.name) } }
            } }
            " "
            label { "New developer's name " input name="developer_name" maxlength="200" data-testid="otlp-developer-name"; }
            " "
            button data-testid="create-otlp-token" { "Create OpenTelemetry token" }
        }
        h3 { "Where each developer's Claude Code and Codex usage is counted" }
        p { small { "One path at a time, so nothing counts twice: requests made after a switch count from the new path, earlier ones from the old. "
            "While OpenTelemetry is chosen the agent skips Claude Code and Codex." } }
        div.scroll {
            table data-testid="table-sources" {
                thead { tr { th { "developer" } th { "counted from" } th { "since" } th { "change" } } }
                tbody {
                    @for d in &active {
                        @let row = paths.iter().find(|p| p.id == d.id);
                        @let otlp = row.is_some_and(|r| r.source_path == "otlp");
                        tr data-testid=(format!("source-{}", d.id)) {
                            td { (d.name) }
                            td { @if otlp { "OpenTelemetry" } @else { "Tally agent" } }
                            td { (row.and_then(|r| r.source_since).map(|t| zone.time(t)).unwrap_or_else(|| "always".into())) }
                            td {
                                form.inline method="post" action="/developers/source" {
                                    (csrf)
                                    input type="hidden" name="developer_id" value=(d.id);
                                    input type="hidden" name="source" value=(if otlp { "agent" } else { "otlp" });
                                    button data-testid=(format!("switch-source-{}", d.id)) {
                                        @if otlp { "Count from the agent" } @else { "Count from OpenTelemetry" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The environment Claude Code (and, with `[otel]`, Codex) needs, ready to paste.
pub fn otlp_env(origin: &str, token: &str) -> String {
    format!(
        "export CLAUDE_CODE_ENABLE_TELEMETRY=1\n\
         export OTEL_LOGS_EXPORTER=otlp\n\
         export OTEL_METRICS_EXPORTER=none\n\
         export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n\
         export OTEL_EXPORTER_OTLP_ENDPOINT={origin}/v1/otlp\n\
         export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer {token}\""
    )
}

/// The same as Claude Code managed settings (`managed-settings.json`, `env`).
pub fn otlp_managed_settings(origin: &str, token: &str) -> String {
    let v = serde_json::json!({
        "env": {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": format!("{origin}/v1/otlp"),
            "OTEL_EXPORTER_OTLP_HEADERS": format!("Authorization=Bearer {token}"),
        }
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// `POST /tokens/otlp`: a new OTLP token for an existing or a new developer,
/// shown once with what to paste; only its hash is stored.
pub async fn create_otlp(req: Request, env: Env) -> Page {
    let origin = crate::web::install::server_origin(&req, &env)?;
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let devs = form.user.db.developer_list().await?;
    let chosen = form.trimmed("developer_id");
    let (developer_id, name) = if chosen.is_empty() {
        let name = form.trimmed("developer_name");
        if !actions::valid_developer_name(name) {
            return Ok(error_page(
                &form.user,
                "Install tokens",
                "/tokens",
                "Choose a developer or give a new developer's name (1–200 bytes).",
                400,
            )?);
        }
        let id = crate::util::random_id()?;
        form.user.db.add_developer(&id, name, now_ms()).await?;
        (id, name.to_string())
    } else {
        match devs
            .iter()
            .find(|d| d.id == chosen && d.removed_at.is_none() && d.erased_at.is_none())
        {
            Some(d) => (d.id.clone(), d.name.clone()),
            None => {
                return Ok(error_page(
                    &form.user,
                    "Install tokens",
                    "/tokens",
                    "That developer is not (or no longer) in this team.",
                    400,
                )?)
            }
        }
    };
    let token = actions::issue_otlp_token(&env, &form.user, &developer_id).await?;
    let env_block = otlp_env(&origin, &token);
    let settings = otlp_managed_settings(&origin, &token);
    let body = html! {
        h1 { "OpenTelemetry token for " (name) }
        p { "Shown once. Paste into " (name) "'s shell profile, or roll it out as Claude Code managed settings. "
            "Their usage counts from this export once their source on the Tokens page says OpenTelemetry." }
        h2 { "Environment" }
        div.copyline {
            pre.once #otlp-env data-testid="otlp-env" { (env_block) }
            button type="button" data-copy="#otlp-env" { "Copy" }
        }
        h2 { "Managed settings (managed-settings.json)" }
        div.copyline {
            pre.once #otlp-settings data-testid="otlp-settings" { (settings) }
            button type="button" data-copy="#otlp-settings" { "Copy" }
        }
        p { small { "Codex: in ~/.codex/config.toml, [otel] exporter = { otlp-http = { endpoint = \""
            (origin) "/v1/otlp/v1/logs\", protocol = \"binary\", headers = { Authorization = \"Bearer " (token) "\" } } }." } }
        p { a href="/tokens" { "Back" } }
        script src="/static/copy.js" {}
    };
    let mut r = show(&form.user, "OpenTelemetry token", "/tokens", body, 200)?;
    r.headers_mut().set("Cache-Control", "no-store")?;
    Ok(r)
}

/// `POST /developers/source`: which path counts a developer's Claude Code
/// and Codex usage from now on.
pub async fn set_source_path(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let Some(to) = Path::parse(form.trimmed("source")) else {
        return Ok(error_page(
            &form.user,
            "Install tokens",
            "/tokens",
            "The source must be agent or otlp.",
            400,
        )?);
    };
    let developer_id = form.trimmed("developer_id");
    let devs = form.user.db.developer_list().await?;
    if !devs
        .iter()
        .any(|d| d.id == developer_id && d.removed_at.is_none() && d.erased_at.is_none())
    {
        return Ok(error_page(
            &form.user,
            "Install tokens",
            "/tokens",
            "That developer is not (or no longer) in this team.",
            400,
        )?);
    }
    let now = now_ms();
    if let Some(next) = form.user.db.set_source_path(developer_id, to, now).await? {
        form.user
            .audit(
                AuditAction::SourcePathChange,
                serde_json::json!({"developer_id": developer_id, "to": to.as_str(), "since": next.since_ms}),
            )
            .await?;
    }
    Ok(redirect("/tokens?saved=source")?)
}

/// `POST /tokens/revoke-install`: ends an install token nobody used yet.
pub async fn revoke_install(req: Request, env: Env) -> Page {
    let form = AdminForm::read(req, &env, Role::Admin).await?;
    let token = form.raw("token");
    let now = crate::util::now_ms();
    let pending = form.user.db.pending_install_tokens(now).await?;
    let developer = pending
        .iter()
        .find(|p| p.token_hash == token)
        .map(|p| p.developer.clone())
        .unwrap_or_default();
    actions::revoke_install_token(&form.user, token, &developer).await?;
    Ok(redirect("/tokens")?)
}

#[cfg(test)]
mod tests {
    use super::version_cell;

    #[test]
    fn outdated_agents_are_flagged_with_the_minimum() {
        assert_eq!(version_cell(Some("0.1.0"), Some("0.1.0")), "0.1.0");
        assert_eq!(
            version_cell(Some("0.0.9"), Some("0.1.0")),
            "0.0.9 (outdated: minimum 0.1.0; run tally update)"
        );
        assert_eq!(version_cell(Some("0.0.9"), None), "0.0.9");
        assert_eq!(version_cell(None, Some("0.1.0")), "unknown (no upload yet)");
    }
}
