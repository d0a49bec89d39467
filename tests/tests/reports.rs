//! Reports that come to people, against the local stack with the loopback
//! Slack, e-mail and Anthropic fakes, the hourly cron run at times the test
//! sets: the exact Block Kit digest of a known data set, posted once per
//! period under doubled triggers; the weekly e-mail and its one-click
//! unsubscribe; alerts delivered once to Slack and to owners/admins; Slack's
//! 404/410/`ok:false` answers breaking an integration until it is re-tested;
//! 429 honouring Retry-After, 5xx retried then given up; the AI summary and
//! its fallback; secrets sealed at rest.

use serde_json::{json, Value};
use tally_core::time::{days_from_civil, utc_date, DAY_MS, HOUR_MS, MINUTE_MS};
use tally_e2e::fakes::{self, FakeServer, Reply, SLACK_BOT_TOKEN, SLACK_WEBHOOK_PATH};
use tally_e2e::{batch, off_event, status, ApiAgent, Stack, StackConfig, WebClient};

const HOURLY: &str = "0 * * * *";

fn at(y: i64, m: u32, d: u32, hour: i64) -> i64 {
    days_from_civil(y, m, d) * DAY_MS + hour * HOUR_MS
}

struct Fakes {
    slack: FakeServer,
    mail: FakeServer,
    anthropic: FakeServer,
}

fn stack() -> (Stack, Fakes) {
    let slack = fakes::slack();
    let mail = fakes::email();
    let anthropic = fakes::anthropic_text("Spend rose 30% to $10.40, driven by Opus. Caching saved $18.90. Two developers were active.");
    let stack = Stack::start_with(StackConfig {
        vars: vec![
            ("EMAIL_API_URL".into(), format!("{}/emails", mail.base)),
            ("EMAIL_API_KEY".into(), "re_test_key".into()),
            ("EMAIL_FROM".into(), "Tally <tally@acme.test>".into()),
            ("PUBLIC_URL".into(), "https://tally.acme.test".into()),
            ("SLACK_ALLOW_LOOPBACK".into(), "1".into()),
            ("SLACK_API_BASE".into(), format!("{}/api", slack.base)),
            ("ANTHROPIC_BASE_URL".into(), anthropic.base.clone()),
            ("ANTHROPIC_API_KEY".into(), "sk-ant-test".into()),
        ],
    });
    (
        stack,
        Fakes {
            slack,
            mail,
            anthropic,
        },
    )
}

fn page(c: &WebClient, path: &str) -> String {
    c.get(path).unwrap().into_string().unwrap()
}

fn event(
    agent: &ApiAgent,
    n: u64,
    ts: i64,
    model: &str,
    project: &str,
    (input, output, cache_read): (u64, u64, u64),
) -> Value {
    let mut e = off_event(n, ts, model, 1);
    e["tokens"] = json!({"input": input, "output": output, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": cache_read});
    e["project"] = json!(tally_core::hash::project_hash(&agent.salt, project));
    e["session"] = json!(tally_core::hash::session_hash(
        &agent.salt,
        &format!("s{n}")
    ));
    e
}

fn wait_requests(stack: &Stack, team: &str, n: u64) {
    stack.eventually(
        "batches applied",
        std::time::Duration::from_secs(30),
        || {
            let r = stack.d1(&format!(
                "SELECT COALESCE(SUM(requests), 0) AS n FROM usage_q WHERE team_id = '{team}'"
            ));
            (r[0]["n"] == n).then_some(())
        },
    );
}

/// Slack posts other than "Send test" messages, as JSON bodies.
fn posts(slack: &FakeServer) -> Vec<Value> {
    slack
        .requests()
        .into_iter()
        .map(|r| r.json())
        .filter(|b| {
            !b["text"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Tally test message")
        })
        .collect()
}

fn mails(mail: &FakeServer, subject_has: &str) -> Vec<Value> {
    mail.requests()
        .into_iter()
        .map(|r| r.json())
        .filter(|b| {
            b["subject"]
                .as_str()
                .unwrap_or_default()
                .contains(subject_has)
        })
        .collect()
}

fn add_webhook(stack: &Stack, owner: &WebClient, slack: &FakeServer) -> String {
    let url = format!("{}{SLACK_WEBHOOK_PATH}", slack.base);
    let (code, location) =
        owner.post_form("/integrations/slack", &[("kind", "webhook"), ("url", &url)]);
    assert_eq!(
        (code, location.as_str()),
        (
            303,
            "/integrations?saved=Slack+integration+tested+and+saved"
        )
    );
    let rows = stack.d1("SELECT id FROM integrations WHERE kind = 'slack_webhook'");
    rows[0]["id"].as_str().unwrap().to_string()
}

/// "YYYY-MM-DD HH:MM" in UTC, as the digest shows the time of the last batch.
fn utc_minute(ms: i64) -> String {
    let s = ms.rem_euclid(DAY_MS) / 1000;
    format!("{} {:02}:{:02}", utc_date(ms), s / 3600, s / 60 % 60)
}

#[test]
fn weekly_digest_is_the_exact_block_kit_once_per_period_and_by_email_until_unsubscribed() {
    let (stack, f) = stack();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);
    let a = stack.enroll(&team.install_token);
    let issued = tally_e2e::body_json(
        owner.post_json("/api/install-tokens", json!({"developer_name": "Bea"})),
    );
    let b = stack.enroll(issued["install_token"].as_str().unwrap());

    // Week of 16–22 Nov 2026: Opus $9.50 and Haiku $0.50 for the owner, Haiku
    // $0.40 for Bea; the week before, Opus $8.00.
    let opus = "claude-opus-4-5";
    let haiku = "claude-haiku-4-5";
    assert_eq!(
        status(&a.post(&batch(
            "batch-reports-00000001",
            vec![
                event(
                    &a,
                    1,
                    at(2026, 11, 17, 10),
                    opus,
                    "/repo",
                    (1_000_000, 100_000, 4_000_000)
                ),
                event(&a, 2, at(2026, 11, 18, 10), haiku, "/repo", (500_000, 0, 0)),
                event(
                    &a,
                    4,
                    at(2026, 11, 11, 10),
                    opus,
                    "/repo",
                    (1_600_000, 0, 0)
                ),
            ]
        ))),
        202
    );
    assert_eq!(
        status(&b.post(&batch(
            "batch-reports-00000002",
            vec![event(
                &b,
                3,
                at(2026, 11, 19, 10),
                haiku,
                "/other",
                (200_000, 20_000, 1_000_000)
            ),]
        ))),
        202
    );
    wait_requests(&stack, &team.team_id, 4);
    let repo = tally_core::hash::project_hash(&a.salt, "/repo");
    stack.d1(&format!("INSERT INTO project_labels (team_id, project, label) VALUES ('{}', '{repo}', 'Billing API')", team.team_id));
    let other = tally_core::hash::project_hash(&b.salt, "/other");

    let id = add_webhook(&stack, &owner, &f.slack);
    // Sealed at rest: neither the URL nor its secret part is in the row; the page shows the last four only.
    let row = &stack.d1(&format!("SELECT * FROM integrations WHERE id = '{id}'"))[0];
    let row_text = row.to_string();
    assert!(
        !row_text.contains("fakeWebhookSecret")
            && !row_text.contains("hooks")
            && !row_text.contains("services"),
        "{row_text}"
    );
    let secret_hex: String = "fakeWebhookSecret"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!row_text.contains(&secret_hex), "{row_text}");
    assert_eq!(row["last4"], "0042");
    let html = page(&owner, "/integrations");
    assert!(
        html.contains("webhook …0042") && !html.contains("fakeWebhookSecret"),
        "{html}"
    );
    assert_eq!(f.slack.requests().len(), 1, "the test post");
    assert_eq!(
        stack.audit_details(&team.team_id, "integration.install"),
        vec![
            json!({"integration_id": id, "kind": "slack_webhook", "channel": "", "last4": "0042"})
        ]
    );

    // Integrations is an admin page: in the owner's navigation, not a viewer's, and refused to viewers.
    let (code, _) = owner.post_form(
        "/members/invite",
        &[("email", "viewer@acme.test"), ("role", "viewer")],
    );
    assert_eq!(code, 303);
    let invite = mails(&f.mail, "invited")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let link = invite[invite.find("/auth/link").unwrap()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let viewer = stack.sign_in(&link);
    assert!(!page(&viewer, "/").contains("href=\"/integrations\""));
    assert!(page(&owner, "/").contains("<a href=\"/integrations\">Integrations</a>"));
    assert_eq!(status(&viewer.get("/integrations")), 403);

    // The owner opts in to the weekly e-mail.
    assert_eq!(
        owner.post_form("/settings/weekly-email", &[("on", "1")]).0,
        303
    );

    // Monday 23 Nov: 08:00 is too early; 09:00 twice and 10:00 post once.
    let monday = at(2026, 11, 23, 9);
    stack.cron(HOURLY, monday - HOUR_MS);
    assert_eq!(posts(&f.slack).len(), 0);
    stack.cron(HOURLY, monday);
    stack.cron(HOURLY, monday);
    stack.cron(HOURLY, monday + HOUR_MS);
    let got = posts(&f.slack);
    assert_eq!(got.len(), 1, "{got:?}");
    let received = stack.d1(&format!(
        "SELECT MAX(received_at) AS at FROM batches WHERE team_id = '{}'",
        team.team_id
    ))[0]["at"]
        .as_i64()
        .unwrap();
    assert_eq!(
        got[0],
        json!({
            "text": "Tally weekly digest · 16–22 Nov 2026: $10.40 spent (+30.0% vs previous week), 3 requests, 2 active developers.",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Tally weekly digest · 16–22 Nov 2026", "emoji": false}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("*Acme* · Times in UTC · Data as of {}", utc_minute(received))}]},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Total spend*\n$10.40"},
                    {"type": "mrkdwn", "text": "*Change vs previous week*\n+30.0% (was $8.00)"},
                    {"type": "mrkdwn", "text": "*Requests*\n3"},
                    {"type": "mrkdwn", "text": "*Active developers*\n2"},
                    {"type": "mrkdwn", "text": "*Cache hit rate*\n74.6%"},
                    {"type": "mrkdwn", "text": "*Saved by caching*\n$18.90"}
                ]},
                {"type": "divider"},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Top developers*\n1. owner@acme.test — $10.00\n2. Bea — $0.40"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Top projects*\n1. Billing API — $10.00\n2. unlabelled {} — $0.40", &other[..8])}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Top models*\n1. claude-opus-4-5 — $9.50\n2. claude-haiku-4-5 — $0.90"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "<https://tally.acme.test/|Open the dashboard>"}}
            ]
        })
    );
    let ledger = stack.d1(&format!("SELECT key, state, attempts, http_status FROM deliveries WHERE team_id = '{}' AND kind = 'digest_weekly' ORDER BY key", team.team_id));
    let member = stack.d1(&format!(
        "SELECT id FROM members WHERE team_id = '{}' AND email = 'owner@acme.test'",
        team.team_id
    ))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut expected = vec![
        json!({"key": format!("digest_weekly:2026-11-16:email:{member}"), "state": "sent", "attempts": 1, "http_status": 200}),
        json!({"key": format!("digest_weekly:2026-11-16:{id}"), "state": "sent", "attempts": 1, "http_status": 200}),
    ];
    expected.sort_by_key(|v| v["key"].as_str().unwrap().to_string());
    assert_eq!(ledger, expected);

    // The e-mail: both parts, the one-click headers, a signed link that needs no sign-in.
    let sent = mails(&f.mail, "weekly digest");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let m = &sent[0];
    assert_eq!(m["to"], json!(["owner@acme.test"]));
    assert_eq!(m["subject"], "Tally weekly digest · 16–22 Nov 2026 · Acme");
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains(
            "Total spend: $10.40\nChange vs previous week: +30.0% (was $8.00)\nRequests: 3\n"
        ),
        "{text}"
    );
    assert!(
        m["html"].as_str().unwrap().contains("<td>$10.40</td>"),
        "{m}"
    );
    let link = m["headers"]["List-Unsubscribe"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    assert_eq!(
        m["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert!(
        link.starts_with(&format!(
            "https://tally.acme.test/unsubscribe?team={}&member={member}&sig=",
            team.team_id
        )),
        "{link}"
    );
    assert!(
        text.contains(&link)
            && m["html"]
                .as_str()
                .unwrap()
                .contains(&link.replace('&', "&amp;"))
    );
    let path = link.strip_prefix("https://tally.acme.test").unwrap();
    let anon = ureq::AgentBuilder::new().redirects(0).build();
    let confirm = anon
        .get(&stack.url(path))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(confirm.contains("data-testid=\"unsubscribe\""), "{confirm}");
    let opted = || {
        stack.d1(&format!(
            "SELECT weekly_email FROM members WHERE id = '{member}'"
        ))[0]["weekly_email"]
            .clone()
    };
    assert_eq!(opted(), 1, "GET (a scanner's prefetch) changes nothing");
    let forged = anon
        .post(&stack.url(&path.replace("sig=", "sig=0")))
        .send_string("List-Unsubscribe=One-Click");
    assert_eq!(status(&forged), 400);
    assert_eq!(opted(), 1);
    let done = anon
        .post(&stack.url(path))
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string("List-Unsubscribe=One-Click")
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done
        .into_string()
        .unwrap()
        .contains("data-testid=\"unsubscribed\""));
    assert_eq!(opted(), 0);

    // Next Monday: Slack gets the next week's digest, the e-mail does not go out.
    stack.cron(HOURLY, monday + 7 * DAY_MS);
    let got = posts(&f.slack);
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1]["blocks"][0]["text"]["text"],
        "Tally weekly digest · 23–29 Nov 2026"
    );
    assert_eq!(mails(&f.mail, "weekly digest").len(), 1);
    assert!(
        f.anthropic.requests().is_empty(),
        "the AI summary is off by default"
    );
}

fn insert_alert(stack: &Stack, team: &str, id: &str, title: &str, created: i64) {
    stack.d1(&format!(
        "INSERT INTO alerts (team_id, id, kind, scope, period, threshold_pct, title, detail_json, created_ms) VALUES ('{team}', '{id}', 'budget', 'team', '2026-11', 80, '{title}', '{{}}', {created})"
    ));
}

#[test]
fn alerts_go_out_once_and_slack_refusals_break_the_integration_until_retested() {
    let (stack, f) = stack();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);
    let t = team.team_id.clone();
    stack.d1(&format!("INSERT INTO members (team_id, id, email, role, created_at) VALUES ('{t}', 'm-admin', 'admin@acme.test', 'admin', 1), ('{t}', 'm-viewer', 'viewer@acme.test', 'viewer', 1)"));
    // No digests in this test: only alerts.
    assert_eq!(
        owner
            .post_form("/integrations/schedule", &[("hour", "9")])
            .0,
        303
    );
    let hook = add_webhook(&stack, &owner, &f.slack);
    let (code, _) = owner.post_form(
        "/integrations/slack",
        &[
            ("kind", "bot"),
            ("token", SLACK_BOT_TOKEN),
            ("channel", "C0FAKE0001"),
        ],
    );
    assert_eq!(code, 303);
    let bot = stack.d1("SELECT id, last4, channel FROM integrations WHERE kind = 'slack_bot'");
    assert_eq!(
        (bot[0]["last4"].as_str(), bot[0]["channel"].as_str()),
        (Some("0099"), Some("C0FAKE0001"))
    );
    let bot = bot[0]["id"].as_str().unwrap().to_string();
    let test_post = &f.slack.requests()[1];
    assert_eq!(
        (test_post.path.as_str(), test_post.header("authorization")),
        (
            "/api/chat.postMessage",
            Some(format!("Bearer {SLACK_BOT_TOKEN}").as_str())
        )
    );

    let now = at(2026, 11, 24, 14);
    insert_alert(
        &stack,
        &t,
        "budget:team:2026-11:80",
        "Team budget 80% reached: $800.00 of $1,000.00",
        now - MINUTE_MS,
    );
    stack.cron(HOURLY, now);
    stack.cron(HOURLY, now);
    let got = posts(&f.slack);
    assert_eq!(got.len(), 2, "webhook and bot, once each: {got:?}");
    assert_eq!(
        got[0]["text"],
        "Tally alert for Acme: Team budget 80% reached: $800.00 of $1,000.00"
    );
    assert_eq!(
        got[0]["blocks"][1]["text"]["text"],
        "*Team budget 80% reached: $800.00 of $1,000.00*"
    );
    assert_eq!(got[1]["channel"], "C0FAKE0001");
    let alert_mails = mails(&f.mail, "Tally alert");
    let mut to: Vec<&str> = alert_mails
        .iter()
        .map(|m| m["to"][0].as_str().unwrap())
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["admin@acme.test", "owner@acme.test"],
        "owners and admins, not viewers"
    );
    assert_eq!(
        alert_mails[0]["subject"],
        "Tally alert: Team budget 80% reached: $800.00 of $1,000.00"
    );

    // The channel is gone (webhook 404) and the bot was removed from its channel (200 ok:false).
    f.slack.set_responder(|req| {
        if req.path.starts_with("/services/") {
            Reply::text(404, "channel_not_found")
        } else {
            Reply::json(200, json!({"ok": false, "error": "not_in_channel"}))
        }
    });
    insert_alert(
        &stack,
        &t,
        "budget:team:2026-11:100",
        "Team budget 100% reached",
        now,
    );
    stack.cron(HOURLY, now + HOUR_MS);
    let states = || {
        stack.d1(&format!(
            "SELECT id, state, broken_reason FROM integrations WHERE team_id = '{t}' ORDER BY id"
        ))
    };
    let mut expected = vec![
        json!({"id": hook, "state": "broken", "broken_reason": "channel_not_found"}),
        json!({"id": bot, "state": "broken", "broken_reason": "not_in_channel"}),
    ];
    expected.sort_by_key(|v| v["id"].as_str().unwrap().to_string());
    assert_eq!(states(), expected);
    let failed = stack.d1(&format!("SELECT channel, state, http_status, error FROM deliveries WHERE team_id = '{t}' AND subject = 'budget:team:2026-11:100' AND channel NOT LIKE 'email:%' ORDER BY channel"));
    let mut expected = vec![
        json!({"channel": hook, "state": "failed", "http_status": 404, "error": "channel_not_found"}),
        json!({"channel": bot, "state": "failed", "http_status": 200, "error": "not_in_channel"}),
    ];
    expected.sort_by_key(|v| v["channel"].as_str().unwrap().to_string());
    assert_eq!(failed, expected);
    let mut broken = stack.audit_details(&t, "integration.broken");
    broken.sort_by_key(|v| v["integration_id"].as_str().unwrap().to_string());
    let mut expected = vec![
        json!({"integration_id": hook, "kind": "slack_webhook", "reason": "channel_not_found"}),
        json!({"integration_id": bot, "kind": "slack_bot", "reason": "not_in_channel"}),
    ];
    expected.sort_by_key(|v| v["integration_id"].as_str().unwrap().to_string());
    assert_eq!(broken, expected);
    let notices = mails(&f.mail, "stopped working");
    assert_eq!(
        notices
            .iter()
            .map(|m| m["to"][0].clone())
            .collect::<Vec<_>>(),
        vec![json!("owner@acme.test"), json!("owner@acme.test")]
    );
    assert_eq!(
        mails(&f.mail, "Tally alert").len(),
        4,
        "e-mail still carries the alert"
    );
    let overview = page(&owner, "/");
    assert_eq!(
        overview
            .matches("data-testid=\"integration-broken\"")
            .count(),
        2,
        "{overview}"
    );
    assert!(overview.contains("channel_not_found"));

    // Broken means silent: a new alert posts nothing to Slack.
    let before = f.slack.requests().len();
    insert_alert(
        &stack,
        &t,
        "spike:team:2026-11-24",
        "Spend spike",
        now + HOUR_MS,
    );
    stack.cron(HOURLY, now + 2 * HOUR_MS);
    assert_eq!(f.slack.requests().len(), before);

    // Fixed in Slack, re-tested: the webhook works again; then its channel is archived (410).
    f.slack.set_responder(fakes::slack_reply);
    let (code, location) = owner.post_form("/integrations/test", &[("id", &hook)]);
    assert_eq!(
        (code, location.as_str()),
        (303, "/integrations?saved=test+message+sent")
    );
    assert_eq!(
        stack.d1(&format!(
            "SELECT state FROM integrations WHERE id = '{hook}'"
        ))[0]["state"],
        "ok"
    );
    assert_eq!(
        stack.audit_details(&t, "integration.test").last().unwrap(),
        &json!({"integration_id": hook, "result": "sent", "http_status": 200})
    );
    f.slack
        .set_responder(|_| Reply::text(410, "channel_is_archived"));
    insert_alert(
        &stack,
        &t,
        "spike:team:2026-11-25",
        "Another spike",
        now + 3 * HOUR_MS,
    );
    stack.cron(HOURLY, now + 3 * HOUR_MS);
    assert_eq!(
        stack.d1(&format!(
            "SELECT state, broken_reason FROM integrations WHERE id = '{hook}'"
        ))[0],
        json!({"state": "broken", "broken_reason": "channel_is_archived"})
    );
    let html = page(&owner, "/integrations");
    assert!(
        html.contains("channel_is_archived") && html.contains("not_in_channel"),
        "every attempt is listed"
    );
    assert_eq!(mails(&f.mail, "stopped working").len(), 3);
}

#[test]
fn rate_limits_wait_for_retry_after_server_errors_retry_then_give_up_and_the_ai_summary_falls_back()
{
    let (stack, f) = stack();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);
    let t = team.team_id.clone();
    add_webhook(&stack, &owner, &f.slack);
    assert_eq!(
        owner
            .post_form(
                "/integrations/schedule",
                &[("weekly", "1"), ("hour", "9"), ("ai_summary", "1")]
            )
            .0,
        303
    );
    assert_eq!(
        stack.audit_details(&t, "digest.schedule"),
        vec![json!({"daily": false, "weekly": true, "hour": 9, "ai_summary": true})]
    );

    // Anthropic is overloaded and Slack rate limits: the digest waits 120 s, then goes out without a summary.
    f.anthropic.set_responder(|_| fakes::anthropic_overloaded());
    f.slack
        .set_responder(|_| Reply::text(429, "rate_limited").with_header("Retry-After", "120"));
    let monday = at(2026, 11, 23, 9);
    stack.cron(HOURLY, monday);
    let row = || {
        stack.d1(&format!("SELECT state, attempts, http_status, error, next_attempt_ms FROM deliveries WHERE team_id = '{t}' AND kind = 'digest_weekly'"))[0].clone()
    };
    assert_eq!(
        row(),
        json!({"state": "retry", "attempts": 1, "http_status": 429, "error": "rate_limited", "next_attempt_ms": monday + 120_000})
    );
    assert_eq!(f.anthropic.requests().len(), 1);
    f.slack.set_responder(fakes::slack_reply);
    let slack_before = f.slack.requests().len();
    stack.cron(HOURLY, monday + 60_000);
    assert_eq!(
        f.slack.requests().len(),
        slack_before,
        "not before Retry-After"
    );
    stack.cron(HOURLY, monday + 121_000);
    assert_eq!(
        row(),
        json!({"state": "sent", "attempts": 2, "http_status": 200, "error": null, "next_attempt_ms": null})
    );
    let got = posts(&f.slack);
    assert_eq!(
        got.len(),
        2,
        "the refused post and the one that went through"
    );
    assert_eq!(got[0], got[1]);
    assert!(!got[1].to_string().contains("*Summary*"), "{}", got[1]);
    let spent = || {
        stack.d1(&format!("SELECT day, calls, input_tokens, output_tokens, cost_micro_usd, cost_pico_usd FROM categorization_usage WHERE team_id = '{t}'"))
    };
    assert_eq!(
        spent(),
        Vec::<Value>::new(),
        "a failed summary costs nothing"
    );

    // The next Monday Anthropic answers: the summary is in the digest and its cost is recorded.
    let text = "Spend was flat at $0.00. No developer was active.";
    f.anthropic
        .set_responder(move |req| fakes::anthropic_text_reply(req, text));
    let next = monday + 7 * DAY_MS;
    stack.cron(HOURLY, next);
    let got = posts(&f.slack);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[2]["blocks"][3],
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Summary*\n{text}")}})
    );
    let asked = f.anthropic.requests().last().unwrap().json();
    assert_eq!(asked["model"], "claude-haiku-4-5");
    assert!(
        asked["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("\"total_spend\":\"$0.00\""),
        "{asked}"
    );
    // Haiku 4.5: 412 input tokens at $1/M and 38 output at $5/M = 602 µ$.
    assert_eq!(
        spent(),
        vec![
            json!({"day": next / DAY_MS, "calls": 1, "input_tokens": 412, "output_tokens": 38, "cost_micro_usd": 602, "cost_pico_usd": 0})
        ]
    );

    // Past the team's daily AI budget the summary is not even asked for.
    stack.d1(&format!(
        "UPDATE teams SET categorize_budget_micro_usd = 0 WHERE id = '{t}'"
    ));
    let asked_so_far = f.anthropic.requests().len();

    // Slack has an outage: retried on later ticks (not a doubled one), given up after five attempts.
    f.slack
        .set_responder(|_| Reply::text(503, "service_unavailable"));
    let third = next + 7 * DAY_MS;
    stack.cron(HOURLY, third);
    stack.cron(HOURLY, third);
    let key = "digest_weekly:2026-11-30:";
    let row = || {
        stack.d1(&format!("SELECT state, attempts, error FROM deliveries WHERE team_id = '{t}' AND key LIKE '{key}%'"))[0].clone()
    };
    assert_eq!(
        row(),
        json!({"state": "retry", "attempts": 1, "error": "HTTP 503: service_unavailable"})
    );
    for h in 1..=4 {
        stack.cron(HOURLY, third + h * HOUR_MS);
    }
    assert_eq!(
        row(),
        json!({"state": "failed", "attempts": 5, "error": "gave up after 5 attempts: HTTP 503: service_unavailable"})
    );
    let html = page(&owner, "/integrations");
    assert!(
        html.contains("gave up after 5 attempts"),
        "shown on the Integrations page"
    );
    assert_eq!(
        f.anthropic.requests().len(),
        asked_so_far,
        "over budget: no summary"
    );
    stack.cron(HOURLY, third + 5 * HOUR_MS);
    assert_eq!(row()["attempts"], 5);

    // A claim whose invocation died during the post is failed after an hour, never posted again.
    stack.d1(&format!("INSERT INTO deliveries (team_id, key, kind, subject, channel, state, attempts, created_ms, updated_ms) VALUES ('{t}', 'digest_weekly:2026-11-09:gone', 'digest_weekly', '2026-11-09', 'gone', 'sending', 1, {third}, {third})"));
    stack.cron(HOURLY, third + 6 * HOUR_MS);
    assert_eq!(
        stack.d1(&format!(
            "SELECT state, error FROM deliveries WHERE team_id = '{t}' AND channel = 'gone'"
        ))[0],
        json!({"state": "failed", "error": "interrupted during the post; not retried, so it cannot go out twice"})
    );
}

#[test]
fn bad_webhooks_and_a_missing_kms_key_save_nothing() {
    let slack = fakes::slack();
    let stack = Stack::start_with(StackConfig {
        vars: vec![
            ("SLACK_ALLOW_LOOPBACK".into(), "1".into()),
            ("KMS_KEY".into(), String::new()),
        ],
    });
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let owner = stack.sign_in(&team.signin_path);
    let html = page(&owner, "/integrations");
    assert!(
        html.contains("data-testid=\"integrations-disabled\""),
        "{html}"
    );
    let url = format!("{}{SLACK_WEBHOOK_PATH}", slack.base);
    let (code, location) =
        owner.post_form("/integrations/slack", &[("kind", "webhook"), ("url", &url)]);
    assert_eq!(
        (code, location.as_str()),
        (
            303,
            "/integrations?error=Integrations+are+disabled%3A+KMS_KEY+is+not+set."
        )
    );
    assert!(slack.requests().is_empty());
    assert_eq!(
        stack.d1("SELECT COUNT(*) AS n FROM integrations")[0]["n"],
        0
    );
}

/// The digest carries the budgets' standing and what seats cost, from the
/// same queries as the Budgets and Developers pages.
#[test]
fn the_digest_carries_budget_standing_and_seat_spend() {
    let (stack, f) = stack();
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let tid = team.team_id.clone();
    let owner = stack.sign_in(&team.signin_path);
    let a = stack.enroll(&team.install_token);
    // Week of 16–22 Nov 2026: 1M Opus input tokens = $5.00.
    assert_eq!(
        status(&a.post(&batch(
            "batch-reports-budget-01",
            vec![event(
                &a,
                1,
                at(2026, 11, 17, 10),
                "claude-opus-4-5",
                "/repo",
                (1_000_000, 0, 0)
            )]
        ))),
        202
    );
    wait_requests(&stack, &tid, 1);
    // A $20 team budget and a Max 5× seat ($100 a month) for the developer.
    stack.d1(&format!(
        "INSERT INTO budgets (team_id, scope, scope_key, amount_micro_usd, thresholds, created_ms, updated_ms) \
         VALUES ('{tid}', 'team', '', 20000000, '50,80,100', 0, 0)"
    ));
    stack.d1(&format!(
        "INSERT INTO seat_plans (team_id, developer_id, plan, monthly_micro_usd, updated_ms) \
         VALUES ('{tid}', '{}', 'max_5x', 100000000, 0)",
        a.developer_id
    ));
    add_webhook(&stack, &owner, &f.slack);
    stack.cron(HOURLY, at(2026, 11, 23, 9));
    let sent = posts(&f.slack);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let texts: Vec<String> = sent[0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_string))
        .collect();
    // Month to date $5.00 of $20.00; the seat prorated over the week's 7 of
    // November's 30 days: $100 × 7 / 30 = $23.33, replacing its $5.00 of tokens.
    assert!(
        texts.contains(&"*Budgets this month*\nTeam: $5.00 of $20.00 (25.0%)".to_string()),
        "{texts:?}"
    );
    assert!(
        texts.contains(
            &"*Actual spend (seats)*\n$23.33 actual vs $5.00 API-equivalent (1 seat)".to_string()
        ),
        "{texts:?}"
    );

    // Crossing 50 % of the budget: the next tick raises the alert and
    // delivers it, once, whatever further ticks run.
    assert_eq!(
        status(&a.post(&batch(
            "batch-reports-budget-02",
            vec![event(
                &a,
                2,
                at(2026, 11, 23, 9) + 60_000,
                "claude-opus-4-5",
                "/repo",
                (1_000_000, 0, 0)
            )]
        ))),
        202
    );
    wait_requests(&stack, &tid, 2);
    stack.cron(HOURLY, at(2026, 11, 23, 10));
    stack.cron(HOURLY, at(2026, 11, 23, 10));
    stack.cron(HOURLY, at(2026, 11, 23, 11));
    let alerts: Vec<String> = posts(&f.slack)
        .iter()
        .skip(1)
        .map(|p| p["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        alerts,
        ["Tally alert for Acme: Team budget 50% reached: $10.00 of $20.00 (November)"]
    );
}
