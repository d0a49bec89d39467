//! The frame every dashboard page shares, the pieces several pages repeat
//! (tables, the date-range form, error pages) and how figures are shown.
//! maud escapes every interpolation, so nothing here builds HTML by hand.

use maud::{html, Markup, DOCTYPE};
use tally_core::event::PrivacyMode;
use tally_core::money::Usd;
use worker::Response;

use crate::web::auth::SignedIn;
use crate::web::export::Table;
use crate::web::format::Cell;
use crate::web::range::Range;

/// No inline script or style anywhere: the chart code and the CSS are
/// static files, and chart data travels in a data- attribute.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The header's entries, in order. Adding a page to the navigation is one
/// line here; the wide bar and the phone menu both render from this list.
pub const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/developers", "Developers"),
    ("/projects", "Projects"),
    ("/branches", "Branches"),
    ("/sessions", "Sessions"),
    ("/models", "Models"),
    ("/categories", "Categories"),
    ("/budgets", "Budgets"),
    ("/settings", "Settings"),
    ("/tokens", "Install tokens"),
    ("/members", "Members"),
    ("/integrations", "Integrations"),
    ("/audit", "Audit log"),
];

/// Navigation entries shown to admins and owners only (their pages refuse viewers).
const ADMIN_NAV: [&str; 1] = ["/integrations"];
/// The developer self-view's pages: only the developer's own.
const ME_NAV: [(&str, &str); 2] = [("/me", "My usage"), ("/me/audit", "Who saw my data")];

/// A whole document; `active` names the current navigation entry, and
/// `None` leaves the navigation out (the sign-in page).
pub fn page(title: &str, active: Option<&str>, body: Markup) -> Markup {
    team_page(title, active, None, false, body)
}

/// The navigation links, marking the current one for people and for
/// assistive technology.
fn nav_links(active: &str, admin: bool) -> Markup {
    html! {
        @for (href, name) in NAV.iter().filter(|(h, _)| admin || !ADMIN_NAV.contains(h)) {
            a href=(href) class=[(*href == active).then_some("on")] aria-current=[(*href == active).then_some("page")] { (name) }
        }
    }
}

/// As `page`, with the team's name in the header. Wide screens show the
/// links in a bar; phones get a Menu button (a `<details>`, so no script).
/// `admin` adds the entries only admins and owners may open.
pub fn team_page(
    title: &str,
    active: Option<&str>,
    team: Option<&str>,
    admin: bool,
    body: Markup,
) -> Markup {
    let header = active.map(|active| {
        html! {
            header {
                a.brand href="/" { "Tally" }
                @if let Some(team) = team.filter(|t| !t.is_empty()) {
                    span.team data-testid="team-name" { (team) }
                }
                nav.wide aria-label="Main" { (nav_links(active, admin)) }
                details.menu data-testid="menu" {
                    summary { "Menu" }
                    nav aria-label="Main (menu)" { (nav_links(active, admin)) }
                }
                form method="post" action="/logout" { button { "Sign out" } }
            }
        }
    });
    frame(title, header, body)
}

/// A self-view document: the reduced header names the developer, links
/// their pages only and signs out of the self-view session.
pub fn developer_page(title: &str, active: &str, developer: &str, body: Markup) -> Markup {
    let header = html! {
        header data-testid="me-header" {
            b { "Tally" }
            @for (href, name) in ME_NAV {
                a href=(href) class=[(href == active).then_some("on")] { (name) }
            }
            span.who data-testid="me-name" { (developer) " (read-only)" }
            form method="post" action="/me/logout" { button data-testid="me-sign-out" { "Sign out" } }
        }
    };
    frame(title, Some(header), body)
}

pub fn show_developer(
    title: &str,
    active: &str,
    developer: &str,
    body: Markup,
    status: u16,
) -> worker::Result<Response> {
    respond(developer_page(title, active, developer, body), status)
}

/// What `/me` answers without a self-view session: developers sign in with
/// their agent, not by e-mail.
pub fn developer_signin_page(message: Option<&str>, status: u16) -> worker::Result<Response> {
    let body = html! {
        h1 { "Your own data in Tally" }
        @if let Some(m) = message {
            p.error data-testid="signin-message" { (m) }
        }
        p data-testid="me-signin" {
            "Developers see their own usage and who read their content by running "
            code { "tally dashboard" }
            " on a machine where the agent is installed: it opens a one-time link that works for 10 minutes."
        }
        p { "Team members (owners, admins, viewers) sign in on " a href="/" { "the dashboard" } "." }
    };
    respond(page("Your own data", None, body), status)
}

fn frame(title: &str, header: Option<Markup>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tally" }
                link rel="stylesheet" href="/static/uplot.css";
                link rel="stylesheet" href="/static/tally.css";
            }
            body {
                @if let Some(header) = header { (header) }
                main { (body) }
                // Asked before revoking, removing or changing a role
                // (forms with data-confirm; static/confirm.js).
                dialog #confirm-dialog data-testid="confirm-dialog" aria-labelledby="confirm-title" {
                    form method="dialog" {
                        h2 #confirm-title { "Are you sure?" }
                        p data-testid="confirm-text" {}
                        button value="cancel" data-testid="confirm-cancel" { "Cancel" }
                        " "
                        button.danger value="confirm" data-testid="confirm-ok" { "Confirm" }
                    }
                }
                script src="/static/confirm.js" {}
            }
        }
    }
}

/// Every HTML answer goes through here, so each carries the same headers.
pub fn respond(doc: Markup, status: u16) -> worker::Result<Response> {
    let mut r = Response::from_html(doc.into_string())?.with_status(status);
    r.headers_mut().set("X-Frame-Options", "DENY")?;
    r.headers_mut().set("Content-Security-Policy", CSP)?;
    Ok(r)
}

/// A page with navigation and the signed-in member's team, answered with `status`.
pub fn show(
    user: &SignedIn,
    title: &str,
    active: &str,
    body: Markup,
    status: u16,
) -> worker::Result<Response> {
    respond(
        team_page(
            title,
            Some(active),
            Some(&user.principal.team_name),
            user.can(crate::vocab::Role::Admin),
            body,
        ),
        status,
    )
}

/// A refusal in a page's own frame (400 or 409 after a form), with the way
/// back to the page the form was on.
pub fn error_page(
    user: &SignedIn,
    title: &str,
    active: &str,
    message: &str,
    status: u16,
) -> worker::Result<Response> {
    show(user, title, active, problem(title, message, active), status)
}

/// What went wrong, and the way back.
fn problem(title: &str, message: &str, back: &str) -> Markup {
    html! {
        h1 { (title) }
        div.box.problem role="alert" data-testid="error-page" {
            p.error data-testid="error-message" { (message) }
            p { a href=(back) data-testid="error-back" { "Back to " (title) } }
        }
    }
}

/// A failure no handler answered itself, as a page with the navigation:
/// what happened in words, and links back (JSON stays for `/api/*`).
pub fn failure_page(status: u16, message: &str) -> worker::Result<Response> {
    let (title, advice) = match status {
        404 => ("Not found", "The page or item does not exist (or no longer does)."),
        400 | 405 | 413 => ("That did not work", "Check the form and try again."),
        401 | 403 => ("Not allowed", "Your role does not allow this; an owner can change roles on Members."),
        410 => ("Gone", "This link was already used or has expired."),
        429 => ("Too many requests", "Wait a minute and try again."),
        _ => ("Something went wrong", "Nothing was lost on your side. Try again; if it keeps failing, the Worker's logs say why."),
    };
    let body = html! {
        h1 { (title) }
        div.box.problem role="alert" data-testid="error-page" {
            p.error data-testid="error-message" { (message) }
            p { (advice) }
            p { a href="/" data-testid="error-back" { "Back to the Overview" } }
        }
    };
    respond(page(title, Some(""), body), status)
}

pub fn signin_page(message: Option<&str>, status: u16) -> worker::Result<Response> {
    let body = html! {
        h1 { "Sign in to Tally" }
        @if let Some(m) = message {
            p.error data-testid="signin-message" { (m) }
        }
        form method="post" action="/login" class="box" {
            label { "Work e-mail " input type="email" name="email" required autocomplete="email"; }
            " "
            button type="submit" { "Email me a sign-in link" }
        }
        p {
            "Enter the address your team invited. We e-mail you a link that signs you in; it works once, for 15 minutes."
        }
        p.note { "Developers looking for their own usage: run " code { "tally dashboard" } " on your machine." }
    };
    respond(page("Sign in", None, body), status)
}

pub fn forbidden_page(message: &str) -> worker::Result<Response> {
    let body = html! {
        h1 { "Forbidden" }
        p.error { (message) }
        p { a href="/" { "Back to the Overview" } }
    };
    respond(page("Forbidden", Some("/"), body), 403)
}

pub fn table(t: &Table) -> Markup {
    table_with(t, None)
}

/// A row's extra cell (forms acting on it: rename, revoke), by the row's
/// index in the rows the table was made of.
pub type RowActions<'a> = (&'a str, &'a dyn Fn(usize) -> Markup);

/// As `table`, with an extra last column of per-row actions.
pub fn table_with(t: &Table, actions: Option<RowActions>) -> Markup {
    let span = t.columns.len() + usize::from(actions.is_some());
    html! {
        // Focusable, so keyboard users can scroll a wide table sideways.
        div.scroll tabindex="0" role="region" aria-label=(format!("{} table", t.name)) {
            table data-testid=(format!("table-{}", t.name)) {
                (thead(t, actions.map(|a| a.0)))
                tbody {
                    @for &i in t.visible() {
                        tr {
                            @for (cell, c) in t.shown[i].iter().zip(&t.columns) { (td(cell, c)) }
                            @if let Some((name, f)) = actions { td.actions data-label=(name) { (f(i)) } }
                        }
                    }
                    @if t.rows.is_empty() {
                        tr { td colspan=(span) { "No data in this range." } }
                    }
                }
            }
        }
        (pager(t))
    }
}

/// The header row: sort links (keeping range and filters) on listed tables.
pub fn thead(t: &Table, extra: Option<&str>) -> Markup {
    html! {
        thead { tr {
            @for (i, c) in t.columns.iter().enumerate() {
                @match t.sort_link(i) {
                    Some((href, state)) => th scope="col" aria-sort=[state] {
                        a href=(href) data-testid=(format!("sort-{}-{}", t.name, c.replace(' ', "-"))) {
                            (c)
                            @match state {
                                Some("descending") => span aria-hidden="true" { " ▼" },
                                Some(_) => span aria-hidden="true" { " ▲" },
                                None => {},
                            }
                        }
                    },
                    None => th scope="col" { (c) },
                }
            }
            @if let Some(name) = extra { th scope="col" { (name) } }
        } }
    }
}

/// "Showing 51–55 of 55" and links to every page of a long table.
pub fn pager(t: &Table) -> Markup {
    html! {
        @if let Some(p) = t.pager() {
            nav.pager aria-label=(format!("{} pages", t.name)) data-testid=(format!("pager-{}", t.name)) {
                span data-testid="pager-showing" { "Showing " (p.first) "–" (p.last) " of " (p.total) }
                " "
                @for (n, href) in &p.links {
                    @if *n == p.page {
                        span.current aria-current="page" { (n) }
                    } @else {
                        a href=(href) data-testid=(format!("page-{n}")) { (n) }
                    }
                    " "
                }
            }
        }
    }
}

/// One cell: its text (a link when it drills down), the exact value on
/// hover, and its column's name for the phone layout's labels.
pub fn td(cell: &Cell, column: &str) -> Markup {
    html! {
        td title=[cell.title.as_deref()] data-label=(column) {
            @if let Some(href) = &cell.href { a href=(href) { (cell.text) } } @else { (cell.text) }
        }
    }
}

/// The date-range picker, with download links for the same range.
pub fn range_form(range: &Range, path: &str) -> Markup {
    range_form_keeping(range, path, &[])
}

/// As `range_form`, carrying the page's other filters through a change of
/// range (and into the downloads).
pub fn range_form_keeping(range: &Range, path: &str, keep: &[(&str, &str)]) -> Markup {
    let (from, to) = (range.first_date(), range.last_date());
    let extra: String = keep
        .iter()
        .map(|(k, v)| {
            format!(
                "&{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    let download = |format: &str| format!("{path}?from={from}&to={to}{extra}&format={format}");
    html! {
        form method="get" action=(path) class="box" data-testid="range" {
            @for (k, v) in keep { input type="hidden" name=(k) value=(v); }
            label { "From " input type="date" name="from" value=(from); }
            label { "To " input type="date" name="to" value=(to); }
            button { "Apply" }
            " " a href=(download("csv")) { "CSV" }
            " " a href=(download("json")) { "JSON" }
            " " small data-testid="timezone" { "Days in " (range.tz) "." }
            @if range.clamped {
                " " strong data-testid="range-clamped" {
                    "Ranges are limited to " (crate::web::range::MAX_DAYS) " days; showing the last "
                    (crate::web::range::MAX_DAYS) " days up to " (to) "."
                }
            }
        }
    }
}

/// The CSRF field every dashboard form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

pub use crate::web::format::{mode_name, percent};

/// The chip naming the privacy mode data was captured under; the Sessions
/// page and the session timeline both show it. `data-mode` carries the
/// wire name for tests and scripts.
pub fn mode_chip(mode: PrivacyMode) -> Markup {
    html! {
        span class=(format!("chip mode-{}", mode.as_str())) data-testid="mode" data-mode=(mode.as_str()) title=(format!("captured in {} mode", crate::web::format::mode_long_name(mode))) {
            (mode_name(mode))
        }
    }
}

/// One chip per mode in a session's `modes` bit set.
pub fn mode_chips(bits: i64) -> Markup {
    let modes = tally_core::rollup::modes_of(u8::try_from(bits & 0xff).unwrap_or(0));
    html! {
        span.chips data-testid="modes" {
            @for m in modes { (mode_chip(m)) " " }
        }
    }
}

/// Money is exact until here: rounded half up to the cent once, to display.
pub fn usd(cost: Usd) -> String {
    cost.cents()
}

pub fn duration(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolations_are_escaped() {
        let t = Table {
            name: "x",
            columns: vec!["a"],
            rows: vec![],
            shown: vec![vec![Cell::titled("<script>alert(1)</script>", "\"><b>")]],
            order: vec![0],
            listing: None,
        };
        let s = table(&t).into_string();
        assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{s}");
        assert!(s.contains("title=\"&quot;&gt;&lt;b&gt;\""), "{s}");
        assert!(s.contains("data-testid=\"table-x\""));
    }

    #[test]
    fn the_frame_has_no_inline_script_or_style() {
        let s = page("T<", Some("/models"), html! { p { "x" } }).into_string();
        assert!(s.contains("<title>T&lt; · Tally</title>"), "{s}");
        assert!(
            s.contains("<a href=\"/models\" class=\"on\" aria-current=\"page\">Models</a>"),
            "{s}"
        );
        for bad in [
            "<style",
            "style=",
            "<script>",
            "onclick=",
            "onload=",
            "onsubmit=",
        ] {
            assert!(!s.contains(bad), "{bad} in {s}");
        }
        assert!(
            !s.contains("/integrations"),
            "viewers do not see admin pages"
        );
        let admin = team_page("T", Some("/"), None, true, html! {}).into_string();
        assert!(
            admin.contains("<a href=\"/integrations\">Integrations</a>"),
            "{admin}"
        );
        assert!(!page("Sign in", None, html! {})
            .into_string()
            .contains("<header"));
        // The self-view's header links only the developer's own pages.
        let d = developer_page("Me", "/me", "Ada <x>", html! {}).into_string();
        assert!(
            d.contains("<a href=\"/me\" class=\"on\">My usage</a>"),
            "{d}"
        );
        assert!(d.contains("action=\"/me/logout\""), "{d}");
        assert!(d.contains("Ada &lt;x&gt;"), "{d}");
        for (href, _) in NAV.iter() {
            assert!(!d.contains(&format!("href=\"{href}\"")), "{href} in {d}");
        }
    }

    #[test]
    fn figures() {
        assert_eq!(percent(80_000, 84_110), "95.1%");
        assert_eq!(percent(1, 0), "–");
        assert_eq!(usd(Usd::ZERO), "$0.00");
        assert_eq!(usd(Usd::from_pico(4_999_999_999)), "$0.00");
        assert_eq!(usd(Usd::from_pico(5_000_000_000)), "$0.01");
        assert_eq!(duration(3_723_000), "1h 02m 03s");
    }

    #[test]
    fn mode_chips_use_human_names_in_mode_order() {
        let bits = (tally_core::rollup::mode_bit(PrivacyMode::Full)
            | tally_core::rollup::mode_bit(PrivacyMode::Off)) as i64;
        let s = mode_chips(bits).into_string();
        let (off, full) = (s.find(">Off<").unwrap(), s.find(">Full<").unwrap());
        assert!(off < full, "{s}");
        assert!(s.contains("data-mode=\"full\""), "{s}");
        assert!(!s.contains("Local") && !s.contains("Cloud"), "{s}");
        assert_eq!(mode_chips(0).into_string().matches("chip ").count(), 0);
    }
}
