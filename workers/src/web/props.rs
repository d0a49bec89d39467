//! Property tests of the request layer, native: whatever method, path,
//! query, headers and body arrive, routing resolves cleanly, the pure
//! parsers handlers start with do not panic, and every error renders as a
//! 4xx/5xx JSON body with one `message`.

use proptest::prelude::*;
use tally_core::wire::BatchError;

use super::auth::{cookie_value, parse_form, secret_eq};
use super::export::Format;
use super::onetime::SIGNIN;
use super::range::{Range, MAX_DAYS};
use super::routes::{resolve, Resolved, TABLE};
use super::signin::limiter_keys;
use crate::error::ApiError;
use crate::zone::Zone;

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("%".to_string()),
        Just("%ff".to_string()),
        Just("%2F".to_string()),
        Just("%00".to_string()),
        Just(":id".to_string()),
        Just("*file".to_string()),
        "[a-z]{1,12}",
        "\\PC{0,16}",
        any::<String>(),
        // Long segments: up to 100 KB paths overall.
        (1usize..20_000).prop_map(|n| "a".repeat(n)),
        // Known segments, so routes are hit and near-missed.
        prop::sample::select(
            TABLE
                .iter()
                .flat_map(|(_, p, _)| p.split('/'))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        ),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(segment(), 0..8).prop_map(|s| format!("/{}", s.join("/"))),
        any::<String>(),
        prop::sample::select(
            TABLE
                .iter()
                .map(|(_, p, _)| p.to_string())
                .collect::<Vec<_>>()
        ),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "get",
            ""
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ]
}

fn assert_clean(method: &str, path: &str) {
    match resolve(method, path) {
        Resolved::Found(route, params) => {
            let entry = TABLE.iter().find(|(_, _, r)| *r == route).unwrap();
            assert_eq!(entry.0, method, "{route:?} found for another method");
            // Parameters the router reports are never empty.
            for (_, p, r) in TABLE {
                if *r == route {
                    for seg in p.split('/').filter(|s| s.starts_with([':', '*'])) {
                        assert!(!params.get(&seg[1..]).is_empty());
                    }
                }
            }
        }
        Resolved::WrongMethod(allow) => {
            assert!(!allow.is_empty());
            assert!(!allow.contains(&method), "{method} both allowed and wrong");
        }
        Resolved::NotFound => {}
    }
}

fn render_ok(e: &ApiError) {
    let (status, body, headers) = e.parts();
    assert!((400..600).contains(&status), "{e:?} → {status}");
    let raw = serde_json::to_string(&body).unwrap();
    assert_eq!(raw.matches("\"message\"").count(), 1, "{raw}");
    assert!(body["error"].is_string(), "{raw}");
    for (k, v) in headers {
        assert!(!k.is_empty() && !v.contains(['\r', '\n']));
    }
}

/// An error of every kind with arbitrary text (built in the test: `ApiError` is not `Clone`).
fn error_of(kind: u8, a: String, b: String, n: u64) -> ApiError {
    match kind % 10 {
        0 => ApiError::bad_request(a),
        1 => ApiError::unauthorized(a),
        2 => ApiError::forbidden(a),
        3 => ApiError::not_found(a),
        4 => ApiError::BadBatch(BatchError {
            index: n.is_multiple_of(2).then_some(n as usize),
            field: a,
            message: b,
        }),
        5 => ApiError::MethodNotAllowed {
            allow: vec!["GET", "POST"],
        },
        6 => ApiError::PayloadTooLarge {
            code: "too_large",
            message: a.into(),
        },
        7 => ApiError::Gone {
            code: "gone",
            message: a.into(),
        },
        8 => ApiError::TooManyRequests {
            retry_after_s: n,
            message: a.into(),
        },
        _ => ApiError::Internal(worker::Error::RustError(a)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_method_and_raw_path_resolves_cleanly(m in method(), p in path()) {
        assert_clean(&m, &p);
    }

    /// What the Worker really sees: the path after URL parsing, as
    /// `Request::path` gives it (percent-encoded, dot segments resolved).
    #[test]
    fn any_url_path_resolves_cleanly(m in method(), p in path(), q in any::<String>()) {
        if let Ok(u) = url::Url::parse(&format!("http://127.0.0.1{p}?{q}")) {
            assert_clean(&m, u.path());
            // Queries feed the range parser and the download switch.
            let pairs = u.query_pairs().into_owned().collect();
            let zone = Zone::new("Europe/Paris");
            let r = Range::parse(&pairs, 1_780_000_000_000, &zone);
            prop_assert!(r.to_day - r.from_day < MAX_DAYS);
            let (a, b) = r.quarters();
            prop_assert!(a <= b);
            let _ = (r.first_date(), r.last_date(), r.utc_days(), r.ms());
            let _ = pairs.get("format").and_then(|f| Format::parse(f));
        }
    }

    #[test]
    fn any_body_and_header_is_parsed_without_panic(
        body in prop::collection::vec(any::<u8>(), 0..4096),
        header in any::<String>(),
        tz in any::<String>(),
    ) {
        let form = parse_form(&body);
        let token = form.get("token").cloned().unwrap_or_default();
        let csrf = form.get("csrf").cloned().unwrap_or_default();
        let nonce = cookie_value(&header, SIGNIN.cookie).unwrap_or("");
        // A forged or missing CSRF value never matches the bound one.
        let good = SIGNIN.form_token("pepper", &token, nonce);
        prop_assert!(secret_eq(&good, &good));
        prop_assert!(csrf == good || !secret_eq(&csrf, &good));
        let _ = cookie_value(&header, super::auth::COOKIE);
        let _ = Zone::valid(&tz);
        let z = Zone::new(&tz);
        let _ = (z.local_day(0), z.day_start(0));
        let keys = limiter_keys(&header, &tz);
        prop_assert!(keys[0] != keys[1] && keys[1] != keys[2]);
    }

    #[test]
    fn every_error_renders_a_4xx_or_5xx_with_one_message(
        kind in any::<u8>(), a in any::<String>(), b in any::<String>(), n in any::<u64>()
    ) {
        render_ok(&error_of(kind, a, b, n));
    }
}

#[test]
fn odd_requests_resolve_to_not_found_or_wrong_method() {
    assert_eq!(resolve("POST", "/api/agents/revoke"), Resolved::NotFound);
    assert_eq!(resolve("GET", "/%ff"), Resolved::NotFound);
    assert_eq!(
        resolve("GET", &format!("/{}", "a".repeat(100_000))),
        Resolved::NotFound
    );
    assert_eq!(resolve("GET", "/../healthz"), Resolved::NotFound);
    assert!(matches!(
        resolve("BREW", "/healthz"),
        Resolved::WrongMethod(_)
    ));
}
