//! The admin dashboard: server-rendered pages, each table also a CSV or
//! JSON download with `?format=csv|json`. A page handler starts with a
//! guard (`SignedIn::for_page`, `AdminForm::read`), reads through the
//! member's team database and renders with `layout`.
//!
//! Adding a page: a `pub async fn …(req: Request, env: Env) -> Page` in a
//! module here that starts with `SignedIn::for_page` (plus
//! `require_page(Role::Admin)` for admin pages) and ends with `layout::show`;
//! a `Route` variant and a row in `routes::TABLE`; an arm in `web::dispatch`
//! wrapped in `page(…)`; and, to appear in the header, an entry in
//! `layout::NAV`. A table is a `Table::of` with its columns, offered through
//! `download` before rendering; `Table::show` swaps in `web::format` cells
//! for the page (the download keeps its own) and `Table::link` adds
//! drill-downs. A form handler takes
//! `AdminForm::read(req, &env, role)`, calls one of `actions` and redirects.
//!
//! `me` is the developer self-view: its pages take `DeveloperSignedIn`
//! instead and render with `layout::show_developer`.

pub mod audit;
pub mod branches;
pub mod budgets;
pub mod drill;
pub mod integrations;
pub mod layout;
pub mod me;
pub mod members;
pub mod overview;
pub mod people;
pub mod settings;
pub mod timeline;
pub mod tokens;
pub mod usage;

use worker::{Request, Response};

use super::auth::SignedIn;
use super::error::PageError;
use super::export::{Format, Table};
use super::range::Range;
use crate::db::TeamSettings;
use crate::util::{now_ms, query};
use crate::vocab::AuditAction;
use crate::zone::Zone;

pub type Page = Result<Response, PageError>;

/// The team's settings, the requested range and the zone it is read in,
/// from one settings read per page.
pub struct View {
    pub team: TeamSettings,
    pub zone: Zone,
    pub range: Range,
}

impl View {
    pub async fn of(req: &Request, user: &SignedIn) -> worker::Result<View> {
        let team = user.db.settings().await?;
        let zone = Zone::new(&team.timezone);
        let range = Range::parse(&query(req), now_ms(), &zone);
        Ok(View { team, zone, range })
    }
}

/// The table as a download when `?format=` asks for one, recorded in the
/// audit log; `None` when the page itself is wanted.
pub async fn download(
    req: &Request,
    user: &SignedIn,
    table: &Table,
) -> worker::Result<Option<Response>> {
    let Some(format) = query(req).get("format").and_then(|f| Format::parse(f)) else {
        return Ok(None);
    };
    let (body, content_type) = match format {
        Format::Csv => (table.csv(), "text/csv; charset=utf-8"),
        Format::Json => (table.json().to_string(), "application/json"),
    };
    user.audit(
        AuditAction::Export,
        serde_json::json!({"table": table.name, "format": format.as_str(), "rows": table.rows.len()}),
    )
    .await?;
    let mut r = Response::ok(body)?;
    r.headers_mut().set("Content-Type", content_type)?;
    r.headers_mut().set(
        "Content-Disposition",
        &format!(
            "attachment; filename=\"tally-{}.{}\"",
            table.name,
            format.as_str()
        ),
    )?;
    Ok(Some(r))
}
