//! Condition types, reasons and the churn-free way to update a condition list.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition types used across the four kinds.
pub mod types {
    /// Every kind carries `Ready` so Flux and Argo CD can judge health.
    pub const READY: &str = "Ready";
    /// Persona: another active Persona exists in the namespace.
    pub const CONFLICT: &str = "Conflict";
    /// Persona: the check-in settings cannot be satisfied.
    pub const SCHEDULE_INVALID: &str = "ScheduleInvalid";
    /// Goal: no Plugin's triggers match the goal.
    pub const UNCOVERED: &str = "Uncovered";
    /// Plugin: approval state of generated plugins.
    pub const APPROVED: &str = "Approved";
    /// Plugin: all declared secrets are present in the store.
    pub const SECRETS_PRESENT: &str = "SecretsPresent";
}

/// Reasons, in `CamelCase` as the API conventions ask.
pub mod reasons {
    pub const RECONCILED: &str = "Reconciled";
    pub const SCHEDULED: &str = "Scheduled";
    pub const INACTIVE: &str = "Inactive";
    pub const MULTIPLE_ACTIVE: &str = "MultipleActivePersonas";
    pub const NO_CONFLICT: &str = "NoConflict";
    pub const SCHEDULE_INVALID: &str = "ScheduleInvalid";
    pub const SCHEDULE_VALID: &str = "ScheduleValid";
    pub const COVERED: &str = "CoveredByPlugins";
    pub const NO_MATCHING_PLUGIN: &str = "NoMatchingPlugin";
    pub const WAITING_FOR_SECRETS: &str = "WaitingForSecrets";
    pub const SECRETS_PRESENT: &str = "SecretsPresent";
    pub const DEPLOYING: &str = "Deploying";
    pub const AVAILABLE: &str = "Available";
    pub const NOT_APPROVED: &str = "NotApproved";
    pub const APPROVED: &str = "Approved";
    pub const SOURCE_TOO_LARGE: &str = "SourceTooLarge";
    pub const SOURCE_INVALID: &str = "SourceInvalid";
    pub const SANDBOX_MISSING: &str = "SandboxUnavailable";
    pub const STORE_UNREACHABLE: &str = "StoreUnreachable";
    pub const SECRET_PRESENT: &str = "SecretPresent";
    pub const SECRET_MISSING: &str = "SecretMissing";

    // Why a child (Deployment, Service, CronJob ...) could not be fetched, built or applied; the
    // operator puts these on `Ready=False` and retries with backoff.
    /// The apiserver failed the request (5xx, a full Service IP range, no connection ...).
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// A ResourceQuota of the namespace refused the child (403 "exceeded quota").
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    /// RBAC or an admission webhook refused the request (403).
    pub const FORBIDDEN: &str = "Forbidden";
    /// Another field manager owns a field the operator sets, or the object changed meanwhile (409).
    pub const CONFLICT: &str = "Conflict";
    /// The apiserver found the child invalid (400, 422).
    pub const INVALID: &str = "Invalid";
    /// The child is larger than the apiserver accepts (413, or a ConfigMap over 1 MiB).
    pub const TOO_LARGE: &str = "TooLarge";

    /// Every reason of a failed child, for telling a failure from a stage of normal progress.
    pub const CHILD_FAILURES: [&str; 6] = [APPLY_FAILED, QUOTA_EXCEEDED, FORBIDDEN, CONFLICT, INVALID, TOO_LARGE];
}

/// The three values `metav1.Condition.status` may take. The upstream schema carries no enum, so
/// the apiserver would accept anything: we only ever write these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(value: bool) -> Self {
        if value { Status::True } else { Status::False }
    }
}

/// A condition as a reconcile decides it, before timestamps are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: impl Into<Status>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self { type_, status: status.into(), reason, message: message.into() }
    }
}

/// Merge desired conditions into the existing list. `lastTransitionTime` changes only when a
/// condition's status changes, so an unchanged reconcile produces an identical list (and no write).
/// Conditions of types not in `desired` are dropped: each reconcile states the whole set.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    observed_generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let previous = existing.iter().find(|c| c.type_ == d.type_);
            let last_transition_time = match previous {
                Some(p) if p.status == d.status.as_str() => p.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: d.type_.to_string(),
                status: d.status.as_str().to_string(),
                reason: d.reason.to_string(),
                message: d.message.clone(),
                observed_generation,
                last_transition_time,
            }
        })
        .collect()
}

/// Whether two condition lists differ in anything but timestamps.
pub fn differ_ignoring_time(a: &[Condition], b: &[Condition]) -> bool {
    let key =
        |c: &Condition| (c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone(), c.observed_generation);
    a.len() != b.len() || a.iter().zip(b).any(|(x, y)| key(x) != key(y))
}

/// Find a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether a condition of this type is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Convert a chrono instant into the apimachinery `Time` (jiff based in k8s-openapi 0.29).
pub fn time_from_chrono(t: chrono::DateTime<chrono::Utc>) -> Time {
    let ts = jiff::Timestamp::from_second(t.timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    Time(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let first = merge(&[], &[Desired::new(types::READY, false, reasons::DEPLOYING, "waiting")], Some(1), at(100));
        let second =
            merge(&first, &[Desired::new(types::READY, false, reasons::DEPLOYING, "still waiting")], Some(2), at(200));
        assert_eq!(second[0].last_transition_time, at(100));
        assert_eq!(second[0].message, "still waiting");
        let third = merge(&second, &[Desired::new(types::READY, true, reasons::AVAILABLE, "up")], Some(2), at(300));
        assert_eq!(third[0].last_transition_time, at(300));
    }

    #[test]
    fn unchanged_conditions_do_not_differ() {
        let a = merge(&[], &[Desired::new(types::READY, true, reasons::RECONCILED, "ok")], Some(1), at(1));
        let b = merge(&a, &[Desired::new(types::READY, true, reasons::RECONCILED, "ok")], Some(1), at(99));
        assert!(!differ_ignoring_time(&a, &b));
        let c = merge(&a, &[Desired::new(types::READY, true, reasons::RECONCILED, "ok")], Some(2), at(99));
        assert!(differ_ignoring_time(&a, &c));
    }
}
