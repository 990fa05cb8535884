//! The two RFC 3339 spellings stored today: whole seconds (most tables) and milliseconds (the
//! inbox and the plugin gateway, where ordering within a second matters). One place to change
//! when the store settles on one precision.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2026-03-01T08:00:00Z`
pub fn rfc3339_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2026-03-01T08:00:00.123Z`
pub fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn both_precisions_are_utc_with_z() {
        let t = Utc.timestamp_millis_opt(1_772_352_000_123).unwrap();
        assert_eq!(rfc3339_secs(t), "2026-03-01T08:00:00Z");
        assert_eq!(rfc3339_millis(t), "2026-03-01T08:00:00.123Z");
        // Text order must follow time order, which the stored columns rely on.
        let later = t + chrono::Duration::milliseconds(900);
        assert!(rfc3339_millis(later) > rfc3339_millis(t));
    }
}
