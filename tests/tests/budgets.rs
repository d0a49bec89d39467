//! Budgets, alerts and seat plans against the real stack: the hourly cron
//! (its time set by the test) raises each threshold alert once per month,
//! whatever doubled ticks or redelivered batches happen; spikes alert
//! strictly above 3× the 14-day median; seats change actual spend exactly.
//!
//! Event timestamps sit in whole months well in the past (ingest accepts
//! 400 days of backfill), so nothing depends on today's date or time.

#![allow(clippy::result_large_err)] // ureq results are matched on directly.

use std::time::Duration;

use serde_json::{json, Value};
use tally_core::budget::Month;
use tally_core::hash::{project_hash, session_hash};
use tally_core::money::Usd;
use tally_core::time::{utc_date, DAY_MS, HOUR_MS};
use tally_e2e::webdriver::Browser;
use tally_e2e::{batch, now_ms, status, ApiAgent, Stack, WebClient};

const HOURLY: &str = "0 * * * *";

/// Sonnet 4.5 output tokens cost $15 per million: 15 µ$ each, exactly
/// (output never counts towards the long-context prompt tier).
const OUTPUT_MICRO: u64 = 15;

fn event(n: u64, ts: i64, output: u64, dir: &str) -> Value {
    json!({
        "id": format!("{n:032x}"),
        "ts": ts,
        "agent": "claude_code",
        "model": "claude-sonnet-4-5",
        "tokens": {"input": 0, "output": output, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 0},
        "cost_pico_usd": output * OUTPUT_MICRO * 1_000_000,
        "project": project_hash("salt", dir),
        "session": session_hash("salt", "s1"),
        "mode": "off"
    })
}

fn applied(stack: &Stack, marker: &str) {
    stack.eventually(marker, Duration::from_secs(30), || {
        stack
            .log_tail()
            .contains(&format!("applied {marker} part 0"))
            .then_some(())
    });
}

fn upload(stack: &Stack, agent: &ApiAgent, marker: &str, events: Vec<Value>) {
    assert_eq!(status(&agent.post(&batch(marker, events))), 202);
    applied(stack, marker);
}

/// A dashboard form post; answers 303 on success.
fn form(c: &WebClient, path: &str, fields: &[(&str, &str)]) -> ureq::Response {
    let mut all = vec![("csrf", c.csrf.as_str())];
    all.extend_from_slice(fields);
    let r = c
        .agent
        .post(&format!("{}{path}", c.base))
        .set("Cookie", &c.cookie)
        .send_form(&all);
    assert_eq!(status(&r), 303, "{path} {fields:?}");
    r.unwrap()
}

fn location(r: &ureq::Response) -> String {
    r.header("Location").unwrap_or_default().to_string()
}

/// (id, title) of the team's alerts, by id.
fn alerts(stack: &Stack, team: &str) -> Vec<(String, String)> {
    stack
        .d1(&format!(
            "SELECT id, title FROM alerts WHERE team_id = '{team}' ORDER BY id"
        ))
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn day_ms(day: i64, hour: i64) -> i64 {
    day * DAY_MS + hour * HOUR_MS
}

#[test]
fn thresholds_alert_once_per_month_and_seats_change_actual_spend() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let agent = stack.enroll(&team.install_token);
    let owner = stack.sign_in(&team.signin_path);
    let dev = agent.developer_id.clone();
    let pay = project_hash("salt", "/payments");

    // A month far enough back that it and the next are complete.
    let m = Month::of_day(now_ms() / DAY_MS - 120);
    let (label, name) = (m.label(), m.name());
    let in_m = |d: i64, h: i64| day_ms(m.first_day() + d, h);

    // Budgets: the team $10 (default 50/80/100), the project $5 at 50/100,
    // the developer $15 at 60.
    form(
        &owner,
        "/projects/label",
        &[("project", &pay), ("label", "payments")],
    );
    let r = form(
        &owner,
        "/budgets",
        &[
            ("scope", "team"),
            ("amount", "10"),
            ("thresholds", "50,80,100"),
        ],
    );
    assert_eq!(location(&r), "/budgets?saved=team+budget+%2410.00");
    form(
        &owner,
        "/budgets",
        &[
            ("scope", "project"),
            ("scope_key", &pay),
            ("amount", "$5.00"),
            ("thresholds", "100, 50"),
        ],
    );
    form(
        &owner,
        "/budgets",
        &[
            ("scope", "developer"),
            ("scope_key", &dev),
            ("amount", "15"),
            ("thresholds", "60"),
        ],
    );
    // Refusals: a zero amount, bad thresholds, a stranger's developer.
    for (fields, err) in [
        (
            vec![("scope", "team"), ("amount", "0"), ("thresholds", "50")],
            "The+budget+must",
        ),
        (
            vec![("scope", "team"), ("amount", "5"), ("thresholds", "0,50")],
            "Thresholds+are",
        ),
        (
            vec![
                ("scope", "developer"),
                ("scope_key", "nobody"),
                ("amount", "5"),
                ("thresholds", "50"),
            ],
            "No+such",
        ),
    ] {
        let loc = location(&form(&owner, "/budgets", &fields));
        assert!(loc.starts_with(&format!("/budgets?error={err}")), "{loc}");
    }
    assert_eq!(
        stack.d1(&format!("SELECT scope, scope_key, amount_micro_usd, thresholds FROM budgets WHERE team_id = '{tid}' ORDER BY scope")),
        vec![
            json!({"scope": "developer", "scope_key": dev, "amount_micro_usd": 15_000_000, "thresholds": "60"}),
            json!({"scope": "project", "scope_key": pay, "amount_micro_usd": 5_000_000, "thresholds": "50,100"}),
            json!({"scope": "team", "scope_key": "", "amount_micro_usd": 10_000_000, "thresholds": "50,80,100"}),
        ]
    );
    assert_eq!(stack.audit_details(&tid, "budget.set").len(), 3);

    // $8.124 in the month: 541,600 output tokens × 15 µ$.
    let first = batch(
        "budget-batch-000001",
        vec![event(1, in_m(2, 10), 541_600, "/payments")],
    );
    assert_eq!(status(&agent.post(&first)), 202);
    applied(&stack, "budget-batch-000001");
    let tick = in_m(20, 0);
    stack.cron(HOURLY, tick);
    let expected = vec![
        (
            format!("budget:project:{pay}:{label}:100"),
            format!("Project “payments” budget 100% reached: $8.12 of $5.00 ({name})"),
        ),
        (
            format!("budget:project:{pay}:{label}:50"),
            format!("Project “payments” budget 50% reached: $8.12 of $5.00 ({name})"),
        ),
        (
            format!("budget:team:{label}:50"),
            format!("Team budget 50% reached: $8.12 of $10.00 ({name})"),
        ),
        (
            format!("budget:team:{label}:80"),
            format!("Team budget 80% reached: $8.12 of $10.00 ({name})"),
        ),
    ];
    assert_eq!(alerts(&stack, &tid), expected);
    let detail: Value = serde_json::from_str(
        stack.d1(&format!("SELECT detail_json FROM alerts WHERE team_id = '{tid}' AND id = 'budget:team:{label}:80'"))[0]["detail_json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        detail,
        json!({"scope": "team", "scope_key": "", "scope_label": "Team", "period": label, "month": name,
               "timezone": "UTC", "threshold_pct": 80, "spent_usd": "8.124000000000", "budget_usd": "10.000000000000"})
    );

    let last_run = || -> Value {
        let r = stack.d1("SELECT details FROM cron_runs ORDER BY id DESC LIMIT 1");
        serde_json::from_str::<Value>(r[0]["details"].as_str().unwrap()).unwrap()["alerts"].clone()
    };
    assert_eq!(
        last_run(),
        json!({"alerts_raised": 4, "alert_teams_failed": 0})
    );

    // A doubled tick, the next hour, and a redelivered batch raise nothing.
    stack.cron(HOURLY, tick);
    assert_eq!(
        last_run(),
        json!({"alerts_raised": 0, "alert_teams_failed": 0})
    );
    stack.cron(HOURLY, tick + HOUR_MS);
    assert_eq!(status(&agent.post(&first)), 202);
    stack.eventually("duplicate ignored", Duration::from_secs(30), || {
        stack
            .log_tail()
            .contains("duplicate budget-batch-000001 part 0 ignored")
            .then_some(())
    });
    stack.cron(HOURLY, tick + 2 * HOUR_MS);
    assert_eq!(alerts(&stack, &tid), expected);

    // $1.878 more ($10.002): the team's 100% and the developer's 60%, once each.
    upload(
        &stack,
        &agent,
        "budget-batch-000002",
        vec![event(2, in_m(21, 9), 125_200, "/payments")],
    );
    stack.cron(HOURLY, in_m(22, 0));
    stack.cron(HOURLY, in_m(22, 0));
    let now = alerts(&stack, &tid);
    assert_eq!(now.len(), 6, "{now:?}");
    let new: Vec<_> = now
        .iter()
        .filter(|a| !expected.contains(a))
        .cloned()
        .collect();
    assert_eq!(
        new,
        vec![
            (
                format!("budget:developer:{dev}:{label}:60"),
                format!(
                    "Developer “owner@acme.test” budget 60% reached: $10.00 of $15.00 ({name})"
                )
            ),
            (
                format!("budget:team:{label}:100"),
                format!("Team budget 100% reached: $10.00 of $10.00 ({name})")
            ),
        ]
    );

    // The next month starts fresh: $6 raises the team's 50% and the project's 50% and 100% again.
    let next = m.next();
    upload(
        &stack,
        &agent,
        "budget-batch-000003",
        vec![event(
            3,
            day_ms(next.first_day() + 1, 8),
            400_000,
            "/payments",
        )],
    );
    stack.cron(HOURLY, day_ms(next.first_day() + 3, 0));
    let fresh: Vec<String> = alerts(&stack, &tid)
        .into_iter()
        .filter(|(id, _)| id.contains(&next.label()))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        fresh,
        vec![
            format!("budget:project:{pay}:{}:100", next.label()),
            format!("budget:project:{pay}:{}:50", next.label()),
            format!("budget:team:{}:50", next.label()),
        ]
    );

    // Seats: days 1–15 of the month; API-equivalent is the $10.002 of tokens.
    let (from, to) = (utc_date(in_m(0, 0)), utc_date(in_m(14, 0)));
    let overview = |what: &str| -> String {
        owner.get_json(&format!("/api/overview?from={from}&to={to}"))[what]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Only the batch-1 event lies in days 1–15: $8.124.
    assert_eq!(overview("spend_range_usd"), "8.124000000000");
    assert_eq!(overview("actual_range_usd"), "8.124000000000");
    let prorated =
        |monthly_pico: u128| Usd::from_pico(monthly_pico * 15 / m.days() as u128).to_string();
    let r = form(
        &owner,
        "/developers/seat",
        &[("developer_id", &dev), ("plan", "max_5x"), ("price", "")],
    );
    assert!(
        location(&r).starts_with("/developers?saved="),
        "{}",
        location(&r)
    );
    assert_eq!(overview("actual_range_usd"), prorated(100_000_000_000_000));
    assert_eq!(overview("spend_range_usd"), "8.124000000000");
    form(
        &owner,
        "/developers/seat",
        &[
            ("developer_id", &dev),
            ("plan", "custom"),
            ("price", "12.34"),
        ],
    );
    assert_eq!(overview("actual_range_usd"), prorated(12_340_000_000_000));
    let csv = owner
        .get(&format!("/developers?from={from}&to={to}&format=csv"))
        .unwrap()
        .into_string()
        .unwrap();
    let row = csv.lines().nth(1).unwrap().to_string();
    let actual = Usd::from_pico(12_340_000_000_000 * 15 / m.days() as u128);
    let multiple = (8_124_000_000_000u128 * 20 + actual.pico()) / (2 * actual.pico());
    assert!(
        row.ends_with(&format!(
            ",Custom,$12.34,{},{}.{}×",
            actual.cents(),
            multiple / 10,
            multiple % 10
        )),
        "{row}"
    );
    // Enterprise has no list price: the form asks for one.
    let r = form(
        &owner,
        "/developers/seat",
        &[
            ("developer_id", &dev),
            ("plan", "enterprise"),
            ("price", ""),
        ],
    );
    assert!(
        location(&r).starts_with("/developers?error=Enter"),
        "{}",
        location(&r)
    );
    form(
        &owner,
        "/developers/seat",
        &[("developer_id", &dev), ("plan", "api"), ("price", "")],
    );
    assert_eq!(overview("actual_range_usd"), "8.124000000000");
    assert_eq!(
        stack
            .audit_details(&tid, "seat_plan.change")
            .iter()
            .map(|d| format!(
                "{} {}",
                d["plan"].as_str().unwrap(),
                d["monthly_usd"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        ["max_5x 100.00", "custom 12.34", "api 0.00"]
    );

    // Erasing the developer drops their budget and seat.
    form(
        &owner,
        "/developers/seat",
        &[("developer_id", &dev), ("plan", "pro"), ("price", "")],
    );
    form(
        &owner,
        "/developers/erase",
        &[("developer_id", &dev), ("confirm_name", "owner@acme.test")],
    );
    let n = |table: &str| {
        stack.d1(&format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE team_id = '{tid}'"
        ))[0]["n"]
            .as_u64()
            .unwrap()
    };
    assert_eq!((n("budgets"), n("seat_plans")), (2, 0));

    // Deleting a budget is audited; a viewer's page shows no forms.
    form(
        &owner,
        "/budgets/delete",
        &[("scope", "project"), ("scope_key", &pay)],
    );
    assert_eq!(n("budgets"), 1);
    assert_eq!(
        stack.audit_details(&tid, "budget.delete"),
        vec![json!({"scope": "project", "scope_key": pay})]
    );
}

#[test]
fn a_spike_is_strictly_more_than_three_times_the_fourteen_day_median() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let agent = stack.enroll(&team.install_token);
    let d = now_ms() / DAY_MS - 30;
    let at = |day: i64| day_ms(day, 10);
    let tick = day_ms(d, 20);

    // 13 days of $3 (200,000 tokens) and $9 on day d: three times the
    // median, and only 13 days of history anyway.
    let mut events: Vec<Value> = (1..=13)
        .map(|k| event(k as u64, at(d - k), 200_000, "/a"))
        .collect();
    events.push(event(100, at(d), 600_000, "/a"));
    upload(&stack, &agent, "spike-batch-00000001", events);
    stack.cron(HOURLY, tick);
    assert_eq!(alerts(&stack, &tid), vec![]);

    // The 14th day of history: the median is $3 and $9 is exactly 3× — no alert.
    upload(
        &stack,
        &agent,
        "spike-batch-00000002",
        vec![event(14, at(d - 14), 200_000, "/a")],
    );
    stack.cron(HOURLY, tick);
    assert_eq!(alerts(&stack, &tid), vec![]);

    // One more token (15 µ$) is above 3×: one alert, however often the cron runs.
    upload(
        &stack,
        &agent,
        "spike-batch-00000003",
        vec![event(101, at(d) + 1, 1, "/a")],
    );
    stack.cron(HOURLY, tick);
    stack.cron(HOURLY, tick);
    stack.cron(HOURLY, tick + HOUR_MS);
    let date = utc_date(d * DAY_MS);
    assert_eq!(
        alerts(&stack, &tid),
        vec![(
            format!("spike:team:{date}"),
            format!("Spend spike on {date}: $9.00, more than 3× the 14-day median of $3.00")
        )]
    );
    let detail: Value = serde_json::from_str(
        stack.d1(&format!(
            "SELECT detail_json FROM alerts WHERE team_id = '{tid}'"
        ))[0]["detail_json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(detail["spent_usd"], "9.000015000000");
    assert_eq!(detail["median_usd"], "3.000000000000");

    // Budgets count the team's month in its time zone: 16:00 UTC on the
    // last day of a month is 01:00 on the 1st of the next in Tokyo.
    let owner = stack.sign_in(&team.signin_path);
    form(&owner, "/settings/timezone", &[("timezone", "Asia/Tokyo")]);
    form(
        &owner,
        "/budgets",
        &[("scope", "team"), ("amount", "1"), ("thresholds", "100")],
    );
    // Two months before the spike days, so its next month holds no other usage.
    let y = Month::of_day(d - 100);
    upload(
        &stack,
        &agent,
        "spike-batch-00000004",
        vec![event(200, day_ms(y.last_day(), 16), 200_000, "/a")],
    );
    // 05:00 on the 1st in Tokyo: the new month and, on its first day, the last one.
    stack.cron(HOURLY, day_ms(y.last_day(), 20));
    let budget_alerts: Vec<_> = alerts(&stack, &tid)
        .into_iter()
        .filter(|(id, _)| id.starts_with("budget:"))
        .collect();
    assert_eq!(
        budget_alerts,
        vec![(
            format!("budget:team:{}:100", y.next().label()),
            format!(
                "Team budget 100% reached: $3.00 of $1.00 ({})",
                y.next().name()
            )
        )]
    );

    // Removing a developer drops their budget and seat (erasure is covered above).
    let dev = agent.developer_id.clone();
    form(
        &owner,
        "/budgets",
        &[
            ("scope", "developer"),
            ("scope_key", &dev),
            ("amount", "5"),
            ("thresholds", "50"),
        ],
    );
    form(
        &owner,
        "/developers/seat",
        &[("developer_id", &dev), ("plan", "max_20x"), ("price", "")],
    );
    let rows = |sql: &str| stack.d1(sql)[0]["n"].as_u64().unwrap();
    let dev_rows = format!(
        "SELECT (SELECT COUNT(*) FROM budgets WHERE team_id = '{tid}' AND scope = 'developer') + (SELECT COUNT(*) FROM seat_plans WHERE team_id = '{tid}') AS n"
    );
    assert_eq!(rows(&dev_rows), 2);
    form(&owner, "/developers/remove", &[("developer_id", &dev)]);
    assert_eq!(rows(&dev_rows), 0);
    assert_eq!(
        rows(&format!(
            "SELECT COUNT(*) AS n FROM budgets WHERE team_id = '{tid}'"
        )),
        1
    );
}

#[test]
fn budgets_page_and_overview_banner_in_a_browser() {
    let stack = Stack::start();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let agent = stack.enroll(&team.install_token);
    let b = Browser::start();
    b.confirm_sign_in(&stack.url(&team.signin_path));

    // Set the team budget through the page.
    b.goto(&stack.url("/budgets"));
    b.type_into(
        "[data-testid=budget-team-form] [data-testid=budget-amount]",
        "10",
    );
    b.click("[data-testid=budget-team-form] [data-testid=budget-save]");
    assert_eq!(b.text("[data-testid=saved]"), "Saved: team budget $10.00");

    // $8.124 now, and the hourly check at the same instant.
    let now = now_ms();
    upload(
        &stack,
        &agent,
        "browser-batch-000001",
        vec![event(1, now, 541_600, "/a")],
    );
    stack.cron(HOURLY, now);
    let month = Month::of_day(now / DAY_MS).name();

    b.goto(&stack.url("/budgets"));
    let row = "[data-testid=budget-team-]";
    assert_eq!(
        b.text(&format!("{row} [data-testid=budget-spent]")),
        "$8.12"
    );
    assert_eq!(b.text(&format!("{row} [data-testid=budget-used]")), "81.2%");
    assert_eq!(
        b.eval("return document.querySelector('[data-testid=budget-bar]').value"),
        json!(812)
    );
    assert!(b.text("[data-testid=table-alerts]").contains(&format!(
        "Team budget 80% reached: $8.12 of $10.00 ({month})"
    )));
    b.screenshot("budgets-page");

    b.goto(&stack.url("/"));
    let titles = "return [...document.querySelectorAll('[data-testid=alert-title]')].map(e => e.textContent)";
    assert_eq!(
        b.eval(titles),
        json!([
            format!("Team budget 50% reached: $8.12 of $10.00 ({month})"),
            format!("Team budget 80% reached: $8.12 of $10.00 ({month})"),
        ])
    );
    b.screenshot("overview-alert-banner");
    let alerts_shown = "return document.querySelectorAll('[data-testid=alert]').length";
    b.click("[data-testid=alert-dismiss]");
    stack.eventually("one alert left", Duration::from_secs(20), || {
        (b.eval(alerts_shown) == json!(1)).then_some(())
    });
    assert_eq!(
        b.eval(titles),
        json!([format!(
            "Team budget 80% reached: $8.12 of $10.00 ({month})"
        )])
    );
    b.click("[data-testid=alert-dismiss]");
    stack.eventually("no alert left", Duration::from_secs(20), || {
        (b.eval(alerts_shown) == json!(0)).then_some(())
    });
    b.wait_for("[data-testid=spend-30d]");
    assert!(b.try_find("[data-testid=alerts-banner]").is_none());
    assert_eq!(stack.audit_details(&tid, "alert.dismiss").len(), 2);
    assert_eq!(
        stack.d1(&format!(
            "SELECT COUNT(*) AS n FROM alerts WHERE team_id = '{tid}' AND dismissed_ms IS NOT NULL"
        ))[0]["n"],
        json!(2)
    );
}
