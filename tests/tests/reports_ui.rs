//! The Integrations page in a real Chromium: a webhook pasted, proven by a
//! test post and shown by its last four characters only; "Send test" again;
//! a refusal showing as broken on the page and the Overview; the weekly
//! e-mail toggled on the Settings page and its HTML rendering (the digest
//! screenshot the README shows).

use serde_json::json;
use tally_core::time::{days_from_civil, DAY_MS, HOUR_MS};
use tally_e2e::fakes::{self, Reply, SLACK_WEBHOOK_PATH};
use tally_e2e::webdriver::Browser;
use tally_e2e::{batch, off_event, status, Stack, StackConfig};

#[test]
fn integrations_page_adds_tests_and_shows_a_broken_webhook() {
    let slack = fakes::slack();
    let mail = fakes::email();
    let stack = Stack::start_with(StackConfig {
        vars: vec![
            ("EMAIL_API_URL".into(), format!("{}/emails", mail.base)),
            ("EMAIL_API_KEY".into(), "re_test_key".into()),
            ("PUBLIC_URL".into(), "https://tally.acme.test".into()),
            ("SLACK_ALLOW_LOOPBACK".into(), "1".into()),
        ],
    });
    let team = stack.bootstrap("Acme", "owner@acme.test");
    let agent = stack.enroll(&team.install_token);
    let day = |d: u32, h: i64| days_from_civil(2026, 11, d) * DAY_MS + h * HOUR_MS;
    let mut events = Vec::new();
    for (n, (d, model)) in [
        (17, "claude-opus-4-5"),
        (18, "claude-sonnet-4-5"),
        (19, "claude-haiku-4-5"),
        (11, "claude-opus-4-5"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = off_event(n as u64 + 1, day(d, 10), model, 1);
        e["tokens"] = json!({"input": 150_000, "output": 20_000, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 900_000});
        events.push(e);
    }
    assert_eq!(
        status(&agent.post(&batch("batch-reports-ui-0001", events))),
        202
    );

    let b = Browser::start();
    b.confirm_sign_in(&stack.url(&team.signin_path));
    b.goto(&stack.url("/integrations"));
    b.type_into(
        "[data-testid=webhook-url]",
        &format!("{}{SLACK_WEBHOOK_PATH}", slack.base),
    );
    b.click("[data-testid=add-webhook-button]");
    assert_eq!(
        b.text("[data-testid=saved]"),
        "Saved: Slack integration tested and saved"
    );
    assert_eq!(b.text("[data-testid=integration-name]"), "webhook …0042");
    assert!(!b.source().contains("fakeWebhookSecret"));
    b.click("[data-testid=send-test]");
    assert_eq!(b.text("[data-testid=saved]"), "Saved: test message sent");
    assert_eq!(slack.requests().len(), 2);
    assert_eq!(
        slack.requests()[1].json()["text"],
        "Tally test message: this channel will receive Acme's digests and alerts."
    );
    b.screenshot("reports-integrations");

    slack.set_responder(|_| Reply::text(404, "channel_not_found"));
    b.click("[data-testid=send-test]");
    let err = b.text("[data-testid=integrations-error]");
    assert_eq!(
        err,
        "Slack refused the test post (channel_not_found); the integration stays broken."
    );
    assert_eq!(
        b.text("[data-testid=integration-state]"),
        "broken (channel_not_found)"
    );
    assert!(b
        .text("[data-testid=integration-broken]")
        .contains("channel_not_found"));
    b.goto(&stack.url("/"));
    assert!(b
        .text("[data-testid=integration-broken]")
        .contains("is broken: channel_not_found"));
    b.screenshot("reports-integration-broken");

    // The weekly e-mail, switched on by the member on the Settings page.
    b.goto(&stack.url("/settings"));
    b.click("[data-testid=weekly-email-toggle]");
    assert_eq!(b.text("[data-testid=saved]"), "Saved: weekly e-mail on");
    stack.cron("0 * * * *", day(23, 9));
    let sent: Vec<_> = mail
        .requests()
        .into_iter()
        .map(|r| r.json())
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap_or("")
                .contains("weekly digest")
        })
        .collect();
    assert_eq!(sent.len(), 1);
    let page = stack.dir.path().join("digest-email.html");
    std::fs::write(&page, sent[0]["html"].as_str().unwrap()).unwrap();
    b.goto(&format!("file://{}", page.display()));
    assert_eq!(b.text("h2"), "Tally weekly digest · 16–22 Nov 2026");
    b.screenshot("reports-digest-email");
}
