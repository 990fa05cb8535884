//! Per-object exponential backoff for the controllers' error policy.
//!
//! kube-runtime's `error_policy` returns one `Action` per failure and keeps no history, so the
//! attempt count lives here, keyed by object, and is cleared when a reconcile succeeds.

use std::{collections::HashMap, sync::Mutex, time::Duration};

/// First retry after a failure.
pub const BASE_DELAY: Duration = Duration::from_secs(1);
/// Upper bound, so a store outage is noticed within minutes of its end.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// Delay before retry number `attempt` (1-based): 1 s, 2 s, 4 s ... capped at [`MAX_DELAY`].
pub fn delay(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    BASE_DELAY.saturating_mul(1u32 << exp).min(MAX_DELAY)
}

/// Failure counts per object key (`kind/namespace/name`).
#[derive(Default)]
pub struct Backoff {
    attempts: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Record a failure and return how long to wait before the next attempt.
    pub fn failed(&self, key: &str) -> Duration {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        delay(*n)
    }

    /// Forget the failures of an object after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_and_resets() {
        assert_eq!(delay(1), Duration::from_secs(1));
        assert_eq!(delay(2), Duration::from_secs(2));
        assert_eq!(delay(5), Duration::from_secs(16));
        assert_eq!(delay(30), MAX_DELAY);
        let b = Backoff::default();
        assert_eq!(b.failed("Plugin/ns/a"), Duration::from_secs(1));
        assert_eq!(b.failed("Plugin/ns/a"), Duration::from_secs(2));
        assert_eq!(b.failed("Plugin/ns/b"), Duration::from_secs(1), "per object");
        b.succeeded("Plugin/ns/a");
        assert_eq!(b.failed("Plugin/ns/a"), Duration::from_secs(1));
    }
}
