//! `GET /audit`: the team's append-only audit log, filterable by action,
//! actor and dates. The page reads as sentences (human action names,
//! details as "key: value", actors as e-mails); the CSV keeps the stored
//! values.

use maud::html;
use tally_core::time::parse_date;
use worker::{Env, Request};

use super::download;
use super::layout::{show, table};
use super::Page;
use crate::db::{AuditEntry, MemberRow};
use crate::util::query;
use crate::vocab::{AuditAction, Role};
use crate::web::auth::SignedIn;
use crate::web::export::Table;
use crate::web::format::{action_of, details, Cell};
use crate::zone::Zone;

const SHOWN: i64 = 1000;
/// Entries per page.
pub const PER_PAGE: usize = 50;

struct Ctx {
    zone: Zone,
    members: Vec<MemberRow>,
}

impl Ctx {
    /// An actor as a person's e-mail, the member id on hover. Sign-ins
    /// recorded before actors were e-mails stored the member id.
    fn actor(&self, actor: &str) -> Cell {
        match self
            .members
            .iter()
            .find(|m| m.id == actor || m.email == actor)
        {
            Some(m) => Cell::titled(m.email.clone(), format!("member {}", m.id)),
            None => Cell::text(actor),
        }
    }
}

pub async fn page(req: Request, env: Env) -> Page {
    let user = SignedIn::for_page(&req, &env).await?;
    user.require_page(Role::Admin)?;
    let zone = Zone::new(&user.db.settings().await?.timezone);
    let members = user.db.members().await?;
    let q = query(&req);
    let filter = |k: &str| q.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (action, actor, from, to) = (
        filter("action"),
        filter("actor"),
        filter("from"),
        filter("to"),
    );
    let actor_id = members
        .iter()
        .find(|m| m.email.eq_ignore_ascii_case(&actor))
        .map(|m| m.id.clone())
        .unwrap_or_default();
    let from_day = parse_date(&from);
    let to_day = parse_date(&to);
    let bounds = (
        from_day.map_or(0, |d| zone.day_start(d)),
        to_day.map_or(i64::MAX, |d| zone.day_start(d + 1)),
    );
    let rows = user
        .db
        .audit_filtered(&action, &actor, &actor_id, bounds, SHOWN)
        .await?;
    let ctx = Ctx { zone, members };
    let t = Table::of::<AuditEntry, Ctx>(
        "audit",
        &[
            ("time", |e, c| c.zone.time(e.at)),
            ("actor", |e, _| e.actor.clone()),
            ("action", |e, _| e.action.clone()),
            ("ip", |e, _| e.ip.clone().unwrap_or_default()),
            ("details", |e, _| e.details.clone()),
        ],
        &rows,
        &ctx,
    )
    .show(
        &rows,
        &ctx,
        &[
            ("actor", |e, c| c.actor(&e.actor)),
            ("action", |e, _| {
                Cell::titled(action_of(&e.action), e.action.clone())
            }),
            ("details", |e, _| Cell::text(details(&e.details).join("\n"))),
        ],
    );
    if let Some(r) = download(&req, &user, &t).await? {
        return Ok(r);
    }
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let kept = format!(
        "/audit?action={}&actor={}&from={}&to={}",
        enc(&action),
        enc(&actor),
        enc(&from),
        enc(&to)
    );
    let csv = format!("{kept}&format=csv");
    // Newest first, a page at a time; pages and sorting keep the filters.
    let t = t.listed(kept, &q, PER_PAGE);
    let body = html! {
        h1 { "Audit log" }
        form method="get" action="/audit" class="box filters" data-testid="audit-filter" {
            label {
                "Action "
                select name="action" data-testid="audit-action" {
                    option value="" selected[action.is_empty()] { "Any action" }
                    @for a in AuditAction::ALL {
                        option value=(a.as_str()) selected[action == a.as_str()] { (crate::web::format::action_name(a)) }
                    }
                }
            }
            label {
                "Actor "
                input name="actor" value=(actor) list="audit-actors" placeholder="e-mail" data-testid="audit-actor";
            }
            datalist #audit-actors {
                @for m in &ctx.members { option value=(m.email); }
            }
            label { "From " input type="date" name="from" value=(from) data-testid="audit-from"; }
            label { "To " input type="date" name="to" value=(to) data-testid="audit-to"; }
            button data-testid="audit-apply" { "Filter" }
            " "
            a href="/audit" { "Clear" }
            " "
            a href=(csv) { "CSV" }
        }
        p.note { "Append-only; kept two years. Times in " (ctx.zone.name) ". Hover an action for its stored name." }
        (table(&t))
    };
    Ok(show(&user, "Audit log", "/audit", body, 200)?)
}
