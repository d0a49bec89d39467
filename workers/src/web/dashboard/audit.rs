//! `GET /audit`: the team's append-only audit log, filterable by action and actor.

use maud::html;
use worker::{Env, Request};

use super::download;
use super::layout::{show_as, table};
use super::Page;
use crate::db::AuditEntry;
use crate::util::query;
use crate::vocab::{AuditAction, Role};
use crate::web::auth::SignedIn;
use crate::web::export::Table;
use crate::zone::Zone;

const SHOWN: i64 = 1000;

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    user.require_page(Role::Admin)?;
    let zone = Zone::new(&user.db.settings().await?.timezone);
    let q = query(&req);
    let filter = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (action, actor) = (filter("action"), filter("actor"));
    let rows = user.db.audit_filtered(&action, &actor, SHOWN).await?;
    let t = Table::of::<AuditEntry, Zone>(
        "audit",
        &[
            ("time", |e, z| z.time(e.at)),
            ("actor", |e, _| e.actor.clone()),
            ("action", |e, _| e.action.clone()),
            ("ip", |e, _| e.ip.clone().unwrap_or_default()),
            ("details", |e, _| e.details.clone()),
        ],
        &rows,
        &zone,
    );
    if let Some(r) = download(&req, &user, &t).await? {
        return Ok(r);
    }
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let csv = format!(
        "/audit?action={}&actor={}&format=csv",
        enc(&action),
        enc(&actor)
    );
    let body = html! {
        h1 { "Audit log" }
        form method="get" action="/audit" class="box" {
            label { "Action " input name="action" value=(action) list="audit-actions"; }
            datalist #audit-actions {
                @for a in AuditAction::ALL { option value=(a.as_str()); }
            }
            label { "Actor " input name="actor" value=(actor); }
            button { "Filter" }
            " "
            a href=(csv) { "CSV" }
        }
        p { "Append-only; kept two years." }
        (table(&t))
    };
    Ok(show_as(
        user.can(Role::Admin),
        "Audit log",
        "/audit",
        body,
        200,
    )?)
}
