//! The edge runs `decode_batch` on untrusted bytes: no input may panic it.

use proptest::prelude::*;
use tally_core::wire::decode_batch;

fn valid_event() -> serde_json::Value {
    serde_json::json!({
        "id": "0123456789abcdef0123456789abcdef", "ts": 1_763_800_000_000i64, "agent": "claude_code",
        "model": "claude-sonnet-4-5",
        "tokens": {"input": 1, "output": 2, "cache_write_5m": 3, "cache_write_1h": 4, "cache_read": 5},
        "cost_pico_usd": 6, "project": "a".repeat(64), "session": "b".repeat(64), "mode": "off"
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode_batch(&bytes, 1_763_800_000_000);
    }

    /// Mutations of a valid batch explore the validator's branches far more
    /// than noise does.
    #[test]
    fn mutated_batches_never_panic(pos in 0usize..2000, byte in any::<u8>(), cut in 0usize..2000) {
        let mut b = serde_json::to_vec(&serde_json::json!({"batch_id": "batch-0000000000000001", "events": [valid_event(), valid_event()]})).unwrap();
        let p = pos % b.len();
        b[p] = byte;
        b.truncate(cut.max(p + 1).min(b.len()));
        let _ = decode_batch(&b, 1_763_800_000_000);
    }

    #[test]
    fn arbitrary_json_values_never_panic(v in arb_json()) {
        let body = serde_json::to_vec(&serde_json::json!({"batch_id": "batch-0000000000000001", "events": [v]})).unwrap();
        let _ = decode_batch(&body, 1_763_800_000_000);
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        "[a-z_0-9]{0,70}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            proptest::collection::hash_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("ts".to_string()),
                    Just("tokens".to_string()),
                    Just("mode".to_string()),
                    Just("prompt".to_string()),
                    Just("category".to_string()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
