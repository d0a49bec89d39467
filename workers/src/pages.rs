//! The admin dashboard: server-rendered pages (escaped by default), each table
//! also exportable as CSV and JSON with `?format=csv|json`.

use std::collections::HashMap;

use serde::Serialize;
use tally_core::event::PrivacyMode;
use tally_core::money::Usd;
use tally_core::pricing::{default_table, price_request, Priced};
use tally_core::privacy::describe;
use tally_core::rollup::HOUR_MS;
use tally_core::time::{parse_date, utc_date};
use tally_core::usage::TokenUsage;
use worker::{Env, Request, Response, Result};

use crate::db::{ModelTotals, TeamDb, TeamSettings, WebPrincipal};
use crate::util::{html_escape, json_error, json_status, now_ms, random_id};
use crate::web::{client_ip, secret_eq, signin_page, web_principal};
use crate::zone::Zone;

const DAY_MS: i64 = 24 * HOUR_MS;

const CSS: &str = "body{font-family:system-ui,-apple-system,sans-serif;margin:0;background:#f6f7f9;color:#1c2430}header{background:#1c2430;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;gap:12px;align-items:center}header a{color:#cfe3ff;text-decoration:none}header a.on{color:#fff;font-weight:600}header form{margin-left:auto}main{max-width:1200px;margin:0 auto;padding:16px}table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}th,td{padding:6px 8px;border-bottom:1px solid #e3e6ea;text-align:right;vertical-align:top}th:first-child,td:first-child{text-align:left}td.t{text-align:left;word-break:break-all}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.card{background:#fff;border-radius:8px;padding:12px 16px;min-width:140px;flex:1}.card b{display:block;font-size:1.4em}.error{color:#b00020}.ok{color:#0a6b2d}.box{background:#fff;border-radius:8px;padding:12px 16px;margin:12px 0}.scroll{overflow-x:auto}code.once{display:block;background:#fffbe6;padding:8px;word-break:break-all}label{display:inline-block;margin:4px 8px 4px 0}@media (max-width:700px){header form{margin-left:0}.card{min-width:40%}}";

pub fn page(title: &str, active: &str, body: &str) -> String {
    let nav = if active.is_empty() {
        String::new()
    } else {
        let links = [
            ("/", "Overview"),
            ("/developers", "Developers"),
            ("/projects", "Projects"),
            ("/sessions", "Sessions"),
            ("/models", "Models"),
            ("/categories", "Categories"),
            ("/settings", "Settings"),
            ("/tokens", "Developers & tokens"),
            ("/members", "Members"),
            ("/audit", "Audit log"),
        ];
        let mut n = String::from("<header><b>Tally</b>");
        for (href, name) in links {
            let on = if href == active { " class=\"on\"" } else { "" };
            n.push_str(&format!("<a href=\"{href}\"{on}>{name}</a>"));
        }
        n.push_str(
            "<form method=\"post\" action=\"/logout\"><button>Sign out</button></form></header>",
        );
        n
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · Tally</title><link rel=\"stylesheet\" href=\"/static/uplot.css\"><style>{CSS}</style></head><body>{nav}<main>{body}</main></body></html>",
        html_escape(title)
    )
}

pub fn static_asset(path: &str) -> Result<Response> {
    let (body, ctype) = match path {
        "/static/uplot.js" => (
            include_str!("../static/uPlot.iife.min.js"),
            "application/javascript",
        ),
        "/static/uplot.css" => (include_str!("../static/uPlot.min.css"), "text/css"),
        _ => return json_error(404, "not_found", "no such asset"),
    };
    let mut r = Response::ok(body)?;
    r.headers_mut().set("Content-Type", ctype)?;
    r.headers_mut()
        .set("Cache-Control", "public, max-age=86400")?;
    Ok(r)
}

/// An inclusive range of days in the team's time zone, from
/// `?from=YYYY-MM-DD&to=YYYY-MM-DD` (default: the last 30 days).
#[derive(Debug, Clone)]
pub struct Range {
    pub from_day: i64,
    pub to_day: i64,
    from_ms: i64,
    to_ms: i64,
    tz: String,
}

impl Range {
    fn parse(q: &HashMap<String, String>, now: i64, zone: &Zone) -> Range {
        let today = zone.local_day(now);
        let to_day = q.get("to").and_then(|s| parse_date(s)).unwrap_or(today);
        let from_day = q
            .get("from")
            .and_then(|s| parse_date(s))
            .unwrap_or(to_day - 29)
            .min(to_day);
        Range {
            from_day,
            to_day,
            from_ms: zone.day_start(from_day),
            to_ms: zone.day_start(to_day + 1),
            tz: zone.name.clone(),
        }
    }
    /// Hourly buckets covering the range; an hour cut by a half-hour offset
    /// counts for the day it starts in.
    fn hours(&self) -> (i64, i64) {
        (
            self.from_ms.div_euclid(HOUR_MS),
            (self.to_ms + HOUR_MS - 1).div_euclid(HOUR_MS),
        )
    }
    fn ms(&self) -> (i64, i64) {
        (self.from_ms, self.to_ms)
    }
    /// Category rows are kept per UTC day.
    fn utc_days(&self) -> (i64, i64) {
        (
            self.from_ms.div_euclid(DAY_MS),
            (self.to_ms + DAY_MS - 1).div_euclid(DAY_MS),
        )
    }
    fn form(&self, path: &str) -> String {
        let (f, t) = (
            utc_date(self.from_day * DAY_MS),
            utc_date(self.to_day * DAY_MS),
        );
        format!(
            "<form method=\"get\" action=\"{path}\" class=\"box\" data-testid=\"range\"><label>From <input type=\"date\" name=\"from\" value=\"{f}\"></label><label>To <input type=\"date\" name=\"to\" value=\"{t}\"></label><button>Apply</button> <a href=\"{path}?from={f}&amp;to={t}&amp;format=csv\">CSV</a> <a href=\"{path}?from={f}&amp;to={t}&amp;format=json\">JSON</a> <small data-testid=\"timezone\">Days in {}.</small></form>",
            html_escape(&self.tz)
        )
    }
}

async fn zone_of(db: &TeamDb) -> Result<Zone> {
    Ok(Zone::new(&db.settings().await?.timezone))
}

/// The team's settings, the requested range and the zone it is read in,
/// from one settings read per page.
async fn range_of(req: &Request, db: &TeamDb) -> Result<(Range, Zone, TeamSettings)> {
    let team = db.settings().await?;
    let zone = Zone::new(&team.timezone);
    Ok((Range::parse(&query(req), now_ms(), &zone), zone, team))
}

fn query(req: &Request) -> HashMap<String, String> {
    req.url()
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn usd(m: i64) -> String {
    Usd::from_parts(m, 0).cents()
}

fn permille(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "–".into();
    }
    let p = (part as i128 * 1000 + whole as i128 / 2) / whole as i128;
    format!("{}.{}%", p / 10, p % 10)
}

/// A table that renders as HTML, CSV or JSON from the same rows.
struct Table {
    name: &'static str,
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn html(&self) -> String {
        let mut s = format!(
            "<div class=\"scroll\"><table data-testid=\"table-{}\"><thead><tr>",
            self.name
        );
        for c in &self.columns {
            s.push_str(&format!("<th>{}</th>", html_escape(c)));
        }
        s.push_str("</tr></thead><tbody>");
        for r in &self.rows {
            s.push_str("<tr>");
            for c in r {
                s.push_str(&format!("<td>{}</td>", html_escape(c)));
            }
            s.push_str("</tr>");
        }
        if self.rows.is_empty() {
            s.push_str(&format!(
                "<tr><td colspan=\"{}\">No data in this range.</td></tr>",
                self.columns.len()
            ));
        }
        s.push_str("</tbody></table></div>");
        s
    }

    fn csv(&self) -> String {
        let esc = |v: &str| {
            // A leading =,+,-,@ would be a formula in a spreadsheet: neutralise it.
            let v = if v.starts_with(['=', '+', '-', '@']) && v.parse::<f64>().is_err() {
                format!("'{v}")
            } else {
                v.to_string()
            };
            if v.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", v.replace('"', "\"\""))
            } else {
                v
            }
        };
        let mut s = self
            .columns
            .iter()
            .map(|c| esc(c))
            .collect::<Vec<_>>()
            .join(",");
        s.push_str("\r\n");
        for r in &self.rows {
            s.push_str(&r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(","));
            s.push_str("\r\n");
        }
        s
    }

    fn json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    serde_json::Value::Object(
                        self.columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| (c.to_string(), serde_json::Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect(),
        )
    }
}

/// Answers with the table as a download when `?format=` asks for one, and
/// records the export in the audit log.
async fn export(
    req: &Request,
    db: &TeamDb,
    p: &WebPrincipal,
    table: &Table,
) -> Result<Option<Response>> {
    let q = query(req);
    let fmt = q.get("format").map(String::as_str).unwrap_or("html");
    let (body, ctype, ext) = match fmt {
        "csv" => (table.csv(), "text/csv; charset=utf-8", "csv"),
        "json" => (table.json().to_string(), "application/json", "json"),
        _ => return Ok(None),
    };
    db.audit(
        &p.email,
        "export",
        client_ip(req).as_deref(),
        &serde_json::json!({"table": table.name, "format": fmt, "rows": table.rows.len()}),
        now_ms(),
    )
    .await?;
    let mut r = Response::ok(body)?;
    r.headers_mut().set("Content-Type", ctype)?;
    r.headers_mut().set(
        "Content-Disposition",
        &format!("attachment; filename=\"tally-{}.{ext}\"", table.name),
    )?;
    Ok(Some(r))
}

fn html(title: &str, active: &str, body: &str) -> Result<Response> {
    let mut r = Response::from_html(page(title, active, body))?;
    r.headers_mut().set("X-Frame-Options", "DENY")?;
    r.headers_mut().set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")?;
    Ok(r)
}

fn sum(rows: &[ModelTotals]) -> ModelTotals {
    let mut t = ModelTotals {
        model: "all".into(),
        ..Default::default()
    };
    for r in rows {
        t.requests += r.requests;
        t.unpriced_requests += r.unpriced_requests;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
        t.cache_write_5m_tokens += r.cache_write_5m_tokens;
        t.cache_write_1h_tokens += r.cache_write_1h_tokens;
        t.cache_read_tokens += r.cache_read_tokens;
        t.cost_micro_usd += r.cost_micro_usd;
    }
    t
}

/// What the cache reads would have cost as plain input, minus what they cost.
fn caching_saved(rows: &[ModelTotals]) -> i64 {
    let table = default_table();
    rows.iter()
        .map(|m| {
            let n = m.cache_read_tokens.max(0) as u64;
            let as_input = price_request(
                table,
                &m.model,
                &TokenUsage {
                    input: n,
                    ..Default::default()
                },
                false,
            );
            let as_read = price_request(
                table,
                &m.model,
                &TokenUsage {
                    cache_read: n,
                    ..Default::default()
                },
                false,
            );
            match (as_input, as_read) {
                (Priced::Pico(a), Priced::Pico(b)) => (a.saturating_sub(b) / 1_000_000) as i64,
                _ => 0,
            }
        })
        .sum()
}

#[derive(Serialize)]
struct Overview {
    team_id: String,
    privacy_mode: PrivacyMode,
    from: String,
    to: String,
    timezone: String,
    spend_today_micro_usd: i64,
    spend_7d_micro_usd: i64,
    spend_30d_micro_usd: i64,
    spend_range_micro_usd: i64,
    cache_saved_micro_usd: i64,
    active_developers: usize,
    totals_30d: ModelTotals,
    models_30d: Vec<ModelTotals>,
    totals_range: ModelTotals,
}

async fn overview_data(
    db: &TeamDb,
    team: &TeamSettings,
    range: &Range,
    zone: &Zone,
) -> Result<(Overview, Vec<(i64, String, i64)>)> {
    let today = zone.local_day(now_ms());
    let hour = |ms: i64| ms.div_euclid(HOUR_MS);
    let end = hour(zone.day_start(today + 1));
    let m30 = db
        .totals_by_model(hour(zone.day_start(today - 29)), end)
        .await?;
    let m7 = db
        .totals_by_model(hour(zone.day_start(today - 6)), end)
        .await?;
    let m1 = db.totals_by_model(hour(zone.day_start(today)), end).await?;
    let (fh, th) = range.hours();
    let mr = db.totals_by_model(fh, th).await?;
    let devs = db.by_developer(fh, th).await?;
    // (local day, model, cost): hourly rows bucketed into the team's days.
    let mut daily: Vec<(i64, String, i64)> = Vec::new();
    for r in db.hourly_cost_by_model(fh, th).await? {
        let day = zone.local_day(r.hour * HOUR_MS);
        match daily
            .iter_mut()
            .find(|(d, m, _)| *d == day && *m == r.model)
        {
            Some(e) => e.2 += r.cost_micro_usd,
            None => daily.push((day, r.model, r.cost_micro_usd)),
        }
    }
    Ok((
        Overview {
            team_id: team.id.clone(),
            privacy_mode: team.mode(),
            from: utc_date(range.from_day * DAY_MS),
            to: utc_date(range.to_day * DAY_MS),
            timezone: zone.name.clone(),
            spend_today_micro_usd: sum(&m1).cost_micro_usd,
            spend_7d_micro_usd: sum(&m7).cost_micro_usd,
            spend_30d_micro_usd: sum(&m30).cost_micro_usd,
            spend_range_micro_usd: sum(&mr).cost_micro_usd,
            cache_saved_micro_usd: caching_saved(&mr),
            active_developers: devs.len(),
            totals_30d: sum(&m30),
            models_30d: m30,
            totals_range: sum(&mr),
        },
        daily,
    ))
}

async fn signed_in(
    req: &Request,
    env: &Env,
) -> Result<std::result::Result<(WebPrincipal, TeamDb), Response>> {
    match web_principal(req, env).await? {
        Some(p) => {
            let db = TeamDb::new(env, &p)?;
            Ok(Ok((p, db)))
        }
        None => Ok(Err(signin_page(None, 200)?)),
    }
}

macro_rules! signed_in {
    ($req:expr, $env:expr) => {
        match signed_in(&$req, &$env).await? {
            Ok(v) => v,
            Err(r) => return Ok(r),
        }
    };
}

pub async fn api_overview(req: Request, env: Env) -> Result<Response> {
    let Some(p) = web_principal(&req, &env).await? else {
        return json_error(401, "unauthorized", "sign in first");
    };
    let db = TeamDb::new(&env, &p)?;
    let (range, zone, team) = range_of(&req, &db).await?;
    json_status(200, &overview_data(&db, &team, &range, &zone).await?.0)
}

pub async fn overview(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    let (range, zone, team) = range_of(&req, &db).await?;
    let (o, daily) = overview_data(&db, &team, &range, &zone).await?;
    let t = &o.totals_range;
    let models: Vec<String> = {
        let mut m: Vec<String> = daily.iter().map(|d| d.1.clone()).collect();
        m.sort();
        m.dedup();
        m
    };
    let days: Vec<i64> = (range.from_day..=range.to_day).collect();
    let series: Vec<Vec<f64>> = models
        .iter()
        .map(|m| {
            days.iter()
                .map(|d| {
                    daily
                        .iter()
                        .filter(|x| x.0 == *d && &x.1 == m)
                        .map(|x| x.2)
                        .sum::<i64>() as f64
                        / 1e6
                })
                .collect()
        })
        .collect();
    let chart = serde_json::json!({"x": days.iter().map(|d| d * 86_400).collect::<Vec<_>>(), "models": models, "series": series})
        .to_string()
        .replace('<', "\\u003c");
    let table = Table {
        name: "models",
        columns: vec![
            "model",
            "requests",
            "input",
            "output",
            "cache write 5m",
            "cache write 1h",
            "cache read",
            "cost",
            "unpriced requests",
        ],
        rows: o
            .models_30d
            .iter()
            .map(|m| {
                vec![
                    m.model.clone(),
                    m.requests.to_string(),
                    m.input_tokens.to_string(),
                    m.output_tokens.to_string(),
                    m.cache_write_5m_tokens.to_string(),
                    m.cache_write_1h_tokens.to_string(),
                    m.cache_read_tokens.to_string(),
                    usd(m.cost_micro_usd),
                    m.unpriced_requests.to_string(),
                ]
            })
            .collect(),
    };
    let read_base =
        t.input_tokens + t.cache_write_5m_tokens + t.cache_write_1h_tokens + t.cache_read_tokens;
    let body = format!(
        "<h1>Overview</h1><p>Signed in as {email} ({role}). Privacy mode: <b data-testid=\"mode\">{mode}</b></p>{rangeform}\
         <div class=\"cards\"><div class=\"card\">Today<b data-testid=\"spend-today\">{today}</b></div><div class=\"card\">7 days<b data-testid=\"spend-7d\">{d7}</b></div><div class=\"card\">30 days<b data-testid=\"spend-30d\">{d30}</b></div>\
         <div class=\"card\">Selected range<b data-testid=\"spend-range\">{dr}</b></div><div class=\"card\">Active developers<b data-testid=\"active-developers\">{devs}</b></div></div>\
         <h2>Tokens (selected range)</h2><div class=\"cards\"><div class=\"card\">Input<b data-testid=\"tokens-input\">{ti}</b></div><div class=\"card\">Output<b data-testid=\"tokens-output\">{to}</b></div><div class=\"card\">Cache write<b data-testid=\"tokens-cache-write\">{tw}</b></div><div class=\"card\">Cache read<b data-testid=\"tokens-cache-read\">{tr}</b></div>\
         <div class=\"card\">Cache hit rate<b data-testid=\"cache-hit-rate\">{hit}</b></div><div class=\"card\">Saved by caching<b data-testid=\"cache-saved\">{saved}</b></div></div>\
         <h2>Cost over time by model</h2><div id=\"chart\" class=\"box\"></div><script type=\"application/json\" id=\"chart-data\">{chart}</script>\
         <script src=\"/static/uplot.js\"></script><script>{CHART_JS}</script>\
         <h2>By model (last 30 days)</h2>{table}",
        email = html_escape(&p.email),
        role = html_escape(&p.role),
        mode = o.privacy_mode.as_str(),
        rangeform = range.form("/"),
        today = usd(o.spend_today_micro_usd),
        d7 = usd(o.spend_7d_micro_usd),
        d30 = usd(o.spend_30d_micro_usd),
        dr = usd(o.spend_range_micro_usd),
        devs = o.active_developers,
        ti = t.input_tokens,
        to = t.output_tokens,
        tw = t.cache_write_5m_tokens + t.cache_write_1h_tokens,
        tr = t.cache_read_tokens,
        hit = permille(t.cache_read_tokens, read_base),
        saved = usd(o.cache_saved_micro_usd),
        table = table.html(),
    );
    if let Some(r) = export(&req, &db, &p, &table).await? {
        return Ok(r);
    }
    html("Overview", "/", &body)
}

const CHART_JS: &str = "(function(){var d=JSON.parse(document.getElementById('chart-data').textContent);if(!window.uPlot||!d.models.length){document.getElementById('chart').textContent='No spend in this range.';return;}var colors=['#3b82f6','#ef4444','#10b981','#f59e0b','#8b5cf6','#14b8a6'];var el=document.getElementById('chart');var opts={width:Math.min(el.clientWidth||900,1160),height:260,series:[{}].concat(d.models.map(function(m,i){return {label:m,stroke:colors[i%colors.length],width:2,value:function(u,v){return v==null?'':'$'+v.toFixed(2);}};})),axes:[{},{values:function(u,v){return v.map(function(x){return '$'+x.toFixed(2);});}}]};new uPlot(opts,[d.x].concat(d.series),el);})();";

pub async fn developers(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    let (range, zone, _) = range_of(&req, &db).await?;
    let (fh, th) = range.hours();
    let rows = db.by_developer(fh, th).await?;
    let table = Table {
        name: "developers",
        columns: vec![
            "developer",
            "requests",
            "input",
            "output",
            "cache write",
            "cache read",
            "cost",
            "last active",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.label.clone(),
                    r.requests.to_string(),
                    r.input_tokens.to_string(),
                    r.output_tokens.to_string(),
                    r.cache_write_tokens.to_string(),
                    r.cache_read_tokens.to_string(),
                    usd(r.cost_micro_usd),
                    zone.date(zone.local_day(r.last_hour * HOUR_MS)),
                ]
            })
            .collect(),
    };
    if let Some(r) = export(&req, &db, &p, &table).await? {
        return Ok(r);
    }
    html(
        "Developers",
        "/developers",
        &format!(
            "<h1>Developers</h1>{}{}",
            range.form("/developers"),
            table.html()
        ),
    )
}

pub async fn projects(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    let (range, zone, team) = range_of(&req, &db).await?;
    let (fh, th) = range.hours();
    let rows = db.by_project(fh, th).await?;
    let mode = team.mode();
    let hints = if matches!(
        mode,
        PrivacyMode::CategorizeLocal | PrivacyMode::CategorizeCloud
    ) {
        {
            let (fd, td) = range.utc_days();
            db.category_hints(fd, td).await?
        }
    } else {
        vec![]
    };
    let table = Table {
        name: "projects",
        columns: vec![
            "project (keyed hash)",
            "label",
            "requests",
            "input",
            "output",
            "cache read",
            "cost",
            "last active",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.key.clone(),
                    r.label.clone(),
                    r.requests.to_string(),
                    r.input_tokens.to_string(),
                    r.output_tokens.to_string(),
                    r.cache_read_tokens.to_string(),
                    usd(r.cost_micro_usd),
                    zone.date(zone.local_day(r.last_hour * HOUR_MS)),
                ]
            })
            .collect(),
    };
    if let Some(r) = export(&req, &db, &p, &table).await? {
        return Ok(r);
    }
    let label_form = if p.can_admin() {
        format!("<form method=\"post\" action=\"/projects/label\" class=\"box\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><label>Project hash <input name=\"project\" size=\"66\" required></label><label>Label <input name=\"label\" maxlength=\"80\" required></label><button>Save label</button></form>", html_escape(&p.csrf_token))
    } else {
        String::new()
    };
    let mut hint_list = String::new();
    if !hints.is_empty() {
        let mut ph: Vec<&str> = hints
            .iter()
            .map(|h| h.project_hint.as_str())
            .filter(|h| !h.is_empty())
            .collect();
        ph.sort();
        ph.dedup();
        hint_list = format!(
            "<h2>Project hints (from categorization)</h2><p>{}</p>",
            html_escape(&ph.join(" · "))
        );
    }
    html("Projects", "/projects", &format!("<h1>Projects</h1><p>Projects are identified by a keyed hash of the working directory; admins can give them names.</p>{}{}{label_form}{hint_list}", range.form("/projects"), table.html()))
}

fn duration(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60)
}

pub async fn sessions(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    let q = query(&req);
    let (range, zone, _) = range_of(&req, &db).await?;
    let by_duration = q.get("sort").is_some_and(|s| s == "duration");
    let (f, t) = range.ms();
    let rows = db.sessions_in(f, t, by_duration).await?;
    let table = Table {
        name: "sessions",
        columns: vec![
            "session (keyed hash)",
            "developer",
            "agent",
            "start",
            "duration",
            "requests",
            "cost",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.session[..16].to_string(),
                    r.developer.clone(),
                    r.agent.clone(),
                    zone.time(r.start_ms),
                    duration(r.end_ms - r.start_ms),
                    r.requests.to_string(),
                    usd(r.cost_micro_usd),
                ]
            })
            .collect(),
    };
    if let Some(r) = export(&req, &db, &p, &table).await? {
        return Ok(r);
    }
    html("Sessions", "/sessions", &format!("<h1>Sessions</h1>{}<p>Sorted by {}. <a href=\"/sessions?sort=cost\">Most expensive</a> · <a href=\"/sessions?sort=duration\">Longest</a></p>{}", range.form("/sessions"), if by_duration { "duration" } else { "cost" }, table.html()))
}

pub async fn models(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    let (range, _, _) = range_of(&req, &db).await?;
    let (fh, th) = range.hours();
    let rows = db.totals_by_model(fh, th).await?;
    let table = Table {
        name: "models",
        columns: vec![
            "model",
            "requests",
            "input",
            "output",
            "cache write 5m",
            "cache write 1h",
            "cache read",
            "cache hit rate",
            "cost",
            "unpriced requests",
        ],
        rows: rows
            .iter()
            .map(|m| {
                let base = m.input_tokens
                    + m.cache_write_5m_tokens
                    + m.cache_write_1h_tokens
                    + m.cache_read_tokens;
                vec![
                    m.model.clone(),
                    m.requests.to_string(),
                    m.input_tokens.to_string(),
                    m.output_tokens.to_string(),
                    m.cache_write_5m_tokens.to_string(),
                    m.cache_write_1h_tokens.to_string(),
                    m.cache_read_tokens.to_string(),
                    permille(m.cache_read_tokens, base),
                    usd(m.cost_micro_usd),
                    m.unpriced_requests.to_string(),
                ]
            })
            .collect(),
    };
    if let Some(r) = export(&req, &db, &p, &table).await? {
        return Ok(r);
    }
    html("Models", "/models", &format!("<h1>Models</h1>{}{}<p>Unpriced requests use a model without a known price; they are never counted as $0.</p>", range.form("/models"), table.html()))
}

pub async fn categories(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    let (range, _, team) = range_of(&req, &db).await?;
    let mode = team.mode();
    let rows = {
        let (fd, td) = range.utc_days();
        db.category_hints(fd, td).await?
    };
    let mut dist: Vec<(String, i64)> = Vec::new();
    for r in &rows {
        match dist.iter_mut().find(|(c, _)| *c == r.category) {
            Some(e) => e.1 += r.requests,
            None => dist.push((r.category.clone(), r.requests)),
        }
    }
    dist.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: i64 = dist.iter().map(|d| d.1).sum();
    let table = Table {
        name: "categories",
        columns: vec!["category", "task hint", "project hint", "requests"],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.category.clone(),
                    r.task_hint.clone(),
                    r.project_hint.clone(),
                    r.requests.to_string(),
                ]
            })
            .collect(),
    };
    if let Some(r) = export(&req, &db, &p, &table).await? {
        return Ok(r);
    }
    let note = if matches!(
        mode,
        PrivacyMode::CategorizeLocal | PrivacyMode::CategorizeCloud
    ) {
        String::new()
    } else {
        "<p>Categories are collected only in the Categorize modes (see Settings). Earlier data is shown below.</p>".into()
    };
    let mut d = String::from("<div class=\"cards\">");
    for (c, n) in &dist {
        d.push_str(&format!(
            "<div class=\"card\">{}<b>{}</b>{}</div>",
            html_escape(c),
            n,
            permille(*n, total)
        ));
    }
    d.push_str("</div>");
    html(
        "Categories",
        "/categories",
        &format!(
            "<h1>Categories</h1>{note}{}{d}{}",
            range.form("/categories"),
            table.html()
        ),
    )
}

/// Reads an urlencoded form and checks its CSRF field and the role.
async fn form(
    mut req: Request,
    env: &Env,
    owner_only: bool,
) -> Result<
    std::result::Result<
        (
            WebPrincipal,
            TeamDb,
            HashMap<String, String>,
            Option<String>,
        ),
        Response,
    >,
> {
    let Some(p) = web_principal(&req, env).await? else {
        return Ok(Err(signin_page(
            Some("Your session ended; sign in again."),
            401,
        )?));
    };
    let ip = client_ip(&req);
    let bytes = req.bytes().await?;
    let f: HashMap<String, String> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    if !secret_eq(
        f.get("csrf").map(String::as_str).unwrap_or(""),
        &p.csrf_token,
    ) {
        return Ok(Err(html("Forbidden", "/", "<h1>Forbidden</h1><p class=\"error\">The form expired (CSRF check failed). Go back, reload and try again.</p>")?.with_status(403)));
    }
    let allowed = if owner_only {
        p.role == "owner"
    } else {
        p.can_admin()
    };
    if !allowed {
        return Ok(Err(html(
            "Forbidden",
            "/",
            &format!(
                "<h1>Forbidden</h1><p class=\"error\">This needs the {} role.</p>",
                if owner_only { "owner" } else { "admin" }
            ),
        )?
        .with_status(403)));
    }
    let db = TeamDb::new(env, &p)?;
    Ok(Ok((p, db, f, ip)))
}

macro_rules! form {
    ($req:expr, $env:expr, $owner:expr) => {
        match form($req, &$env, $owner).await? {
            Ok(v) => v,
            Err(r) => return Ok(r),
        }
    };
}

fn see_other(to: &str) -> Result<Response> {
    let mut r = Response::empty()?.with_status(303);
    r.headers_mut().set("Location", to)?;
    Ok(r)
}

pub async fn label_project(req: Request, env: Env) -> Result<Response> {
    let (p, db, f, ip) = form!(req, env, false);
    let project = f
        .get("project")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let label = f
        .get("label")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if !tally_core::hash::is_hex(&project, 64) || label.is_empty() || label.chars().count() > 80 {
        return html("Projects", "/projects", "<p class=\"error\">A project hash is 64 hex characters and a label 1–80 characters.</p>").map(|r| r.with_status(400));
    }
    db.set_project_label(&project, &label).await?;
    db.audit(
        &p.email,
        "project.label",
        ip.as_deref(),
        &serde_json::json!({"project": project, "label": label}),
        now_ms(),
    )
    .await?;
    see_other("/projects")
}

pub async fn settings(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    let team = db.settings().await?;
    let q = query(&req);
    let msg = match q.get("saved").map(String::as_str) {
        Some(s) => format!(
            "<p class=\"ok\" data-testid=\"saved\">Saved: {}</p>",
            html_escape(s)
        ),
        None => String::new(),
    };
    let err = match q.get("error").map(String::as_str) {
        Some(s) => format!(
            "<p class=\"error\" data-testid=\"settings-error\">{}</p>",
            html_escape(s)
        ),
        None => String::new(),
    };
    let disabled = if p.can_admin() { "" } else { " disabled" };
    let mut modes = String::new();
    for m in PrivacyMode::ALL {
        let checked = if m == team.mode() { " checked" } else { "" };
        modes.push_str(&format!(
            "<div class=\"box\"><label><input type=\"radio\" name=\"mode\" value=\"{v}\" data-testid=\"mode-{v}\"{checked}{disabled}> <b>{v}</b></label><p>{d}</p></div>",
            v = m.as_str(),
            d = html_escape(describe(m))
        ));
    }
    let ret = |d: i64, name: &str| {
        format!(
            "<option value=\"{d}\"{}>{name}</option>",
            if team.retention_days == d {
                " selected"
            } else {
                ""
            }
        )
    };
    let csrf = html_escape(&p.csrf_token);
    let body = format!(
        "<h1>Settings</h1>{msg}{err}{ro}\
         <h2>Privacy mode</h2><p>Applied on every developer machine; agents pick up a change within minutes and the server discards anything a stricter mode does not allow.</p>\
         <form method=\"post\" action=\"/settings/privacy\" data-testid=\"privacy-form\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{modes}\
         <label><input type=\"checkbox\" name=\"confirm_full\" value=\"yes\" data-testid=\"confirm-full\"{disabled}> I understand that Full stores redacted prompt and response text.</label><br><button data-testid=\"save-privacy\"{disabled}>Save privacy mode</button></form>\
         <h2>Retention</h2><form method=\"post\" action=\"/settings/retention\" class=\"box\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><select name=\"days\"{disabled}>{a}{b}{c}{d}</select> <button{disabled}>Save retention</button></form>\
         <h2>Time zone</h2><form method=\"post\" action=\"/settings/timezone\" class=\"box\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><label>IANA name <input name=\"timezone\" value=\"{tz}\" data-testid=\"timezone-input\"{disabled}></label> <button data-testid=\"save-timezone\"{disabled}>Save time zone</button> <small>Days on every page and in exports follow it.</small></form>\
         <h2>Rate limit</h2><form method=\"post\" action=\"/settings/rate-limit\" class=\"box\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><label>Burst (events) <input type=\"number\" name=\"capacity\" min=\"1\" value=\"{cap}\"{disabled}></label><label>Events per minute <input type=\"number\" name=\"per_minute\" min=\"0\" value=\"{pm}\"{disabled}></label><button{disabled}>Save rate limit</button></form>",
        ro = if p.can_admin() { "" } else { "<p>Viewers can read settings; admins change them.</p>" },
        a = ret(30, "30 days"),
        b = ret(90, "90 days"),
        c = ret(365, "1 year"),
        d = ret(0, "Forever"),
        cap = team.rate_capacity,
        tz = html_escape(&team.timezone),
        pm = team.rate_per_minute,
    );
    html("Settings", "/settings", &body)
}

pub async fn save_privacy(req: Request, env: Env) -> Result<Response> {
    let (p, db, f, ip) = form!(req, env, false);
    let Some(mode) = f.get("mode").and_then(|m| PrivacyMode::parse(m)) else {
        return see_other("/settings?error=Choose+a+privacy+mode");
    };
    if mode == PrivacyMode::Full && f.get("confirm_full").map(String::as_str) != Some("yes") {
        return see_other("/settings?error=Switching+to+Full+needs+the+confirmation+box+ticked");
    }
    crate::web::change_privacy_mode(&db, &p, mode, ip.as_deref()).await?;
    see_other(&format!("/settings?saved=privacy+mode+{}", mode.as_str()))
}

pub async fn save_retention(req: Request, env: Env) -> Result<Response> {
    let (p, db, f, ip) = form!(req, env, false);
    let Some(days) = f
        .get("days")
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| [0, 30, 90, 365].contains(d))
    else {
        return see_other("/settings?error=Retention+must+be+30,+90,+365+days+or+forever");
    };
    db.set_retention(days).await?;
    db.audit(
        &p.email,
        "retention.change",
        ip.as_deref(),
        &serde_json::json!({"days": days}),
        now_ms(),
    )
    .await?;
    see_other("/settings?saved=retention")
}

pub async fn save_timezone(req: Request, env: Env) -> Result<Response> {
    let (p, db, f, ip) = form!(req, env, false);
    let tz = f
        .get("timezone")
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    if !Zone::valid(&tz) {
        return see_other(
            "/settings?error=Unknown+time+zone:+use+an+IANA+name+such+as+Europe/Paris+or+UTC",
        );
    }
    db.set_timezone(&tz).await?;
    db.audit(
        &p.email,
        "timezone.change",
        ip.as_deref(),
        &serde_json::json!({"timezone": tz}),
        now_ms(),
    )
    .await?;
    see_other("/settings?saved=time+zone")
}

pub async fn save_rate_limit(req: Request, env: Env) -> Result<Response> {
    let (p, db, f, ip) = form!(req, env, false);
    let num = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(cap), Some(pm)) = (num("capacity"), num("per_minute")) else {
        return see_other("/settings?error=Rate+limit+values+out+of+range");
    };
    if !crate::web::valid_rate_limit(cap, pm) {
        return see_other("/settings?error=Rate+limit+values+out+of+range");
    }
    crate::web::change_rate_limit(&db, &p, cap, pm, ip.as_deref()).await?;
    see_other("/settings?saved=rate+limit")
}

fn admin_only(p: &WebPrincipal) -> Result<Option<Response>> {
    if p.can_admin() {
        Ok(None)
    } else {
        Ok(Some(
            html(
                "Forbidden",
                "/",
                "<h1>Forbidden</h1><p class=\"error\">This page needs the admin role.</p>",
            )?
            .with_status(403),
        ))
    }
}

pub async fn tokens(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    if let Some(r) = admin_only(&p)? {
        return Ok(r);
    }
    let zone = zone_of(&db).await?;
    let agents = db.agents().await?;
    let table = Table {
        name: "agents",
        columns: vec![
            "agent",
            "developer",
            "host",
            "enrolled",
            "last seen",
            "status",
        ],
        rows: agents
            .iter()
            .map(|a| {
                vec![
                    a.id.clone(),
                    a.developer_name.clone(),
                    a.hostname.clone().unwrap_or_default(),
                    zone.time(a.created_at),
                    a.last_seen_at
                        .map(|t| zone.time(t))
                        .unwrap_or_else(|| "never".into()),
                    if a.revoked_at.is_some() {
                        "revoked".into()
                    } else {
                        "active".into()
                    },
                ]
            })
            .collect(),
    };
    if let Some(r) = export(&req, &db, &p, &table).await? {
        return Ok(r);
    }
    let csrf = html_escape(&p.csrf_token);
    let mut revoke = String::new();
    for a in agents.iter().filter(|a| a.revoked_at.is_none()) {
        revoke.push_str(&format!("<form method=\"post\" action=\"/tokens/revoke\" style=\"display:inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"agent_id\" value=\"{id}\"><button data-testid=\"revoke-{id}\">Revoke {name} ({id})</button></form> ", id = html_escape(&a.id), name = html_escape(&a.developer_name)));
    }
    html(
        "Developers & tokens",
        "/tokens",
        &format!("<h1>Developers &amp; tokens</h1><form method=\"post\" action=\"/tokens\" class=\"box\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><label>Developer name <input name=\"developer_name\" required maxlength=\"200\" data-testid=\"developer-name\"></label><button data-testid=\"create-token\">Create one-time install token</button></form><h2>Agents</h2>{}<p>{revoke}</p>", table.html()),
    )
}

pub async fn create_token(req: Request, env: Env) -> Result<Response> {
    let origin = req.url()?.origin().ascii_serialization();
    let (p, db, f, ip) = form!(req, env, false);
    let name = f
        .get("developer_name")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if name.is_empty() || name.len() > 200 {
        return html(
            "Developers & tokens",
            "/tokens",
            "<p class=\"error\">A developer name (1–200 bytes) is required.</p>",
        )
        .map(|r| r.with_status(400));
    }
    let token = crate::web::issue_install_token(&env, &db, &p, &name, ip.as_deref())
        .await?
        .token;
    // Shown exactly once: only its hash is stored.
    let mut r = html(
        "Install token",
        "/tokens",
        &format!("<h1>Install token for {}</h1><p>Copy this command now; it is shown once, works once and expires in 7 days.</p><code class=\"once\" data-testid=\"install-command\">tally install --server {} --token {}</code><p><a href=\"/tokens\">Back</a></p>", html_escape(&name), html_escape(&origin), html_escape(&token)),
    )?;
    r.headers_mut().set("Cache-Control", "no-store")?;
    Ok(r)
}

pub async fn revoke_token(req: Request, env: Env) -> Result<Response> {
    let (p, db, f, ip) = form!(req, env, false);
    let id = f.get("agent_id").cloned().unwrap_or_default();
    // Revoking an unknown or already revoked agent changes nothing; the list shows the truth.
    crate::web::revoke_agent(&db, &p, &id, ip.as_deref()).await?;
    see_other("/tokens")
}

pub async fn members(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    if let Some(r) = admin_only(&p)? {
        return Ok(r);
    }
    let zone = zone_of(&db).await?;
    let rows = db.members().await?;
    let csrf = html_escape(&p.csrf_token);
    let owner = p.role == "owner";
    let mut t = String::from("<div class=\"scroll\"><table data-testid=\"table-members\"><thead><tr><th>Email</th><th>Role</th><th>Since</th><th></th></tr></thead><tbody>");
    for m in &rows {
        let actions = if owner && m.id != p.member_id {
            let opts: String = ["owner", "admin", "viewer"]
                .iter()
                .map(|r| {
                    format!(
                        "<option{}>{r}</option>",
                        if *r == m.role { " selected" } else { "" }
                    )
                })
                .collect();
            format!("<form method=\"post\" action=\"/members/role\" style=\"display:inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"member_id\" value=\"{id}\"><select name=\"role\">{opts}</select><button>Change role</button></form> <form method=\"post\" action=\"/members/remove\" style=\"display:inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"member_id\" value=\"{id}\"><button>Remove</button></form>", id = html_escape(&m.id))
        } else {
            String::new()
        };
        t.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
            html_escape(&m.email),
            html_escape(&m.role),
            zone.time(m.created_at)
        ));
    }
    t.push_str("</tbody></table></div>");
    let invite = if owner {
        format!("<h2>Invite</h2><form method=\"post\" action=\"/members/invite\" class=\"box\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><label>Email <input type=\"email\" name=\"email\" required></label><label>Role <select name=\"role\"><option>viewer</option><option>admin</option><option>owner</option></select></label><button>Send invitation</button></form>")
    } else {
        "<p>Owners invite members and change roles.</p>".into()
    };
    html(
        "Members",
        "/members",
        &format!("<h1>Members</h1>{t}{invite}"),
    )
}

pub async fn invite_member(req: Request, env: Env) -> Result<Response> {
    let origin = req.url()?.origin().ascii_serialization();
    let (p, db, f, ip) = form!(req, env, true);
    let email = f
        .get("email")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let role = f.get("role").cloned().unwrap_or_default();
    if !crate::util::valid_email(&email) || !["owner", "admin", "viewer"].contains(&role.as_str()) {
        return html(
            "Members",
            "/members",
            "<p class=\"error\">A valid email and a role are required.</p>",
        )
        .map(|r| r.with_status(400));
    }
    if db.member_by_email(&email).await?.is_some() {
        return html(
            "Members",
            "/members",
            "<p class=\"error\">That address is already a member.</p>",
        )
        .map(|r| r.with_status(409));
    }
    let now = now_ms();
    let member_id = random_id()?;
    db.add_member(&member_id, &email, &role, now).await?;
    crate::web::send_signin_link(&env, &db, &origin, &member_id, &email, true).await?;
    db.audit(
        &p.email,
        "member.invite",
        ip.as_deref(),
        &serde_json::json!({"email": email, "role": role}),
        now,
    )
    .await?;
    see_other("/members")
}

pub async fn change_role(req: Request, env: Env) -> Result<Response> {
    let (p, db, f, ip) = form!(req, env, true);
    let id = f.get("member_id").cloned().unwrap_or_default();
    let role = f.get("role").cloned().unwrap_or_default();
    if id == p.member_id || !["owner", "admin", "viewer"].contains(&role.as_str()) {
        return html("Members", "/members", "<p class=\"error\">Pick another member and a valid role (you cannot change your own role).</p>").map(|r| r.with_status(400));
    }
    if db.set_member_role(&id, &role).await? {
        db.audit(
            &p.email,
            "member.role_change",
            ip.as_deref(),
            &serde_json::json!({"member_id": id, "role": role}),
            now_ms(),
        )
        .await?;
    }
    see_other("/members")
}

pub async fn remove_member(req: Request, env: Env) -> Result<Response> {
    let (p, db, f, ip) = form!(req, env, true);
    let id = f.get("member_id").cloned().unwrap_or_default();
    if id == p.member_id {
        return html(
            "Members",
            "/members",
            "<p class=\"error\">You cannot remove yourself.</p>",
        )
        .map(|r| r.with_status(400));
    }
    if db.remove_member(&id).await? {
        db.audit(
            &p.email,
            "member.remove",
            ip.as_deref(),
            &serde_json::json!({"member_id": id}),
            now_ms(),
        )
        .await?;
    }
    see_other("/members")
}

pub async fn audit(req: Request, env: Env) -> Result<Response> {
    let (p, db) = signed_in!(req, env);
    if let Some(r) = admin_only(&p)? {
        return Ok(r);
    }
    let zone = zone_of(&db).await?;
    let q = query(&req);
    let action = q.get("action").cloned().unwrap_or_default();
    let actor = q.get("actor").cloned().unwrap_or_default();
    let rows = db.audit_filtered(&action, &actor, 1000).await?;
    let table = Table {
        name: "audit",
        columns: vec!["time", "actor", "action", "ip", "details"],
        rows: rows
            .iter()
            .map(|e| {
                vec![
                    zone.time(e.at),
                    e.actor.clone(),
                    e.action.clone(),
                    e.ip.clone().unwrap_or_default(),
                    e.details.clone(),
                ]
            })
            .collect(),
    };
    if let Some(r) = export(&req, &db, &p, &table).await? {
        return Ok(r);
    }
    html(
        "Audit log",
        "/audit",
        &format!(
            "<h1>Audit log</h1><form method=\"get\" action=\"/audit\" class=\"box\"><label>Action <input name=\"action\" value=\"{}\"></label><label>Actor <input name=\"actor\" value=\"{}\"></label><button>Filter</button> <a href=\"/audit?action={}&amp;actor={}&amp;format=csv\">CSV</a></form><p>Append-only; kept two years.</p>{}",
            html_escape(&action),
            html_escape(&actor),
            url::form_urlencoded::byte_serialize(action.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(actor.as_bytes()).collect::<String>(),
            table.html()
        ),
    )
}

pub async fn logout(req: Request, env: Env) -> Result<Response> {
    if let Some(p) = web_principal(&req, &env).await? {
        let db = TeamDb::new(&env, &p)?;
        db.delete_web_session(&p.id_hash).await?;
    }
    let mut r = see_other("/")?;
    r.headers_mut()
        .set("Set-Cookie", &crate::web::session_cookie_clear())?;
    Ok(r)
}
