//! Token-bucket arithmetic for the per-team rate limit.
//!
//! The Durable Object stores a `BucketState` and calls `take` with the time it
//! read from the platform; the math here is pure integer so a fake clock can pin
//! every refill and every Retry-After exactly.

use serde::{Deserialize, Serialize};

/// One event is worth this many units; refill per millisecond is then exactly
/// `per_minute` units, so no fractions ever appear.
const UNITS_PER_EVENT: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketConfig {
    /// Burst size in events.
    pub capacity: u64,
    /// Sustained events per minute.
    pub per_minute: u64,
}

impl Default for BucketConfig {
    fn default() -> Self {
        BucketConfig {
            capacity: 10_000,
            per_minute: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketState {
    pub units: u64,
    pub updated_ms: i64,
}

impl BucketState {
    pub fn full(config: BucketConfig, now_ms: i64) -> Self {
        BucketState {
            units: config.capacity.saturating_mul(UNITS_PER_EVENT),
            updated_ms: now_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Take {
    Granted {
        remaining: u64,
    },
    /// Whole seconds until enough tokens will have refilled (HTTP Retry-After).
    Limited {
        retry_after_secs: u64,
    },
    /// The request can never fit: it is larger than the whole bucket.
    TooLarge {
        capacity: u64,
    },
}

/// Refills for the elapsed time, then takes `cost` events if they are there.
/// A clock that goes backwards refills nothing rather than draining the bucket.
pub fn take(
    state: BucketState,
    config: BucketConfig,
    now_ms: i64,
    cost: u64,
) -> (BucketState, Take) {
    let cap_units = config.capacity.saturating_mul(UNITS_PER_EVENT);
    let elapsed = now_ms.saturating_sub(state.updated_ms).max(0) as u64;
    let refilled = state
        .units
        .saturating_add(elapsed.saturating_mul(config.per_minute))
        .min(cap_units);
    let refreshed = BucketState {
        units: refilled,
        updated_ms: now_ms.max(state.updated_ms),
    };
    if cost > config.capacity {
        return (
            refreshed,
            Take::TooLarge {
                capacity: config.capacity,
            },
        );
    }
    let need = cost.saturating_mul(UNITS_PER_EVENT);
    if need <= refilled {
        let units = refilled - need;
        (
            BucketState { units, ..refreshed },
            Take::Granted {
                remaining: units / UNITS_PER_EVENT,
            },
        )
    } else if config.per_minute == 0 {
        // A team whose refill is zero is paused; tell clients to come back in an hour.
        (
            refreshed,
            Take::Limited {
                retry_after_secs: 3600,
            },
        )
    } else {
        let deficit = need - refilled;
        let wait_ms = deficit.div_ceil(config.per_minute);
        (
            refreshed,
            Take::Limited {
                retry_after_secs: wait_ms.div_ceil(1000).max(1),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: BucketConfig = BucketConfig {
        capacity: 1_000,
        per_minute: 600, // 10 per second
    };

    #[test]
    fn drains_then_limits_with_exact_retry_after() {
        let t0 = 1_700_000_000_000;
        let s = BucketState::full(CFG, t0);
        let (s, r) = take(s, CFG, t0, 800);
        assert_eq!(r, Take::Granted { remaining: 200 });
        let (s, r) = take(s, CFG, t0, 500);
        // deficit 300 events at 10/s = 30 s.
        assert_eq!(
            r,
            Take::Limited {
                retry_after_secs: 30
            }
        );
        // 29.9 s later: 299 refilled + 200 = 499 < 500 → still 1 s to go (rounded up).
        let (s, r) = take(s, CFG, t0 + 29_900, 500);
        assert_eq!(
            r,
            Take::Limited {
                retry_after_secs: 1
            }
        );
        let (s, r) = take(s, CFG, t0 + 30_000, 500);
        assert_eq!(r, Take::Granted { remaining: 0 });
        assert_eq!(s.units, 0);
    }

    #[test]
    fn refill_caps_at_capacity_and_ignores_clock_regression() {
        let t0 = 0;
        let s = BucketState {
            units: 0,
            updated_ms: t0,
        };
        let (s, _) = take(s, CFG, t0 + 3_600_000, 0);
        assert_eq!(s.units, 1_000 * UNITS_PER_EVENT);
        let (s2, r) = take(s, CFG, t0, 1);
        assert_eq!(r, Take::Granted { remaining: 999 });
        assert_eq!(s2.updated_ms, t0 + 3_600_000);
    }

    #[test]
    fn fractional_refill_is_not_lost() {
        // 1 event per minute: 30 s gives half an event, which must be kept.
        let cfg = BucketConfig {
            capacity: 1,
            per_minute: 1,
        };
        let s = BucketState {
            units: 0,
            updated_ms: 0,
        };
        let (s, r) = take(s, cfg, 30_000, 1);
        assert_eq!(
            r,
            Take::Limited {
                retry_after_secs: 30
            }
        );
        let (_, r) = take(s, cfg, 60_000, 1);
        assert_eq!(r, Take::Granted { remaining: 0 });
    }

    #[test]
    fn oversize_and_paused() {
        let s = BucketState::full(CFG, 0);
        assert_eq!(take(s, CFG, 0, 1_001).1, Take::TooLarge { capacity: 1_000 });
        let paused = BucketConfig {
            capacity: 10,
            per_minute: 0,
        };
        let s = BucketState {
            units: 0,
            updated_ms: 0,
        };
        assert_eq!(
            take(s, paused, 10, 1).1,
            Take::Limited {
                retry_after_secs: 3600
            }
        );
    }
}
