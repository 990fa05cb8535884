//! The clock seam: code that decides by the time asks a [`Clock`], so tests can pin it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// Where "now" comes from. Always UTC; callers convert to a persona's time zone themselves.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// What components keep and share.
pub type SharedClock = Arc<dyn Clock>;

/// Closures are clocks, so a test can write `Arc::new(move || at)` without a type of its own.
impl<F> Clock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The wall clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until told otherwise (tests).
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<DateTime<Utc>>,
}

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock { now: Mutex::new(at) }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let clock = Arc::new(FixedClock::new(at("2026-03-01T08:00:00Z")));
        let shared: SharedClock = clock.clone();
        assert_eq!(shared.now(), at("2026-03-01T08:00:00Z"));
        clock.advance(chrono::Duration::minutes(90));
        assert_eq!(shared.now(), at("2026-03-01T09:30:00Z"));
        clock.set(at("2026-03-02T00:00:00Z"));
        assert_eq!(shared.now(), at("2026-03-02T00:00:00Z"));
    }

    #[test]
    fn closures_and_the_system_clock_are_clocks() {
        let fixed = at("2026-03-01T08:00:00Z");
        let closure: SharedClock = Arc::new(move || fixed);
        assert_eq!(closure.now(), fixed);
        let before = Utc::now();
        let now = system().now();
        assert!(now >= before && now <= Utc::now());
    }
}
