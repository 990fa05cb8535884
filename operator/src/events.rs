//! Kubernetes Events on condition transitions: which transitions deserve one (pure), and
//! publishing them (best effort: an Event that cannot be written never fails a reconcile).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{
    Resource,
    runtime::events::{Event, EventType},
};
use wellbeing_crds::conditions::{find, reasons, types};

use crate::context::Context;

/// Condition types where `True` means trouble.
const NEGATIVE: [&str; 3] = [types::CONFLICT, types::SCHEDULE_INVALID, types::UNCOVERED];

/// The apiserver refuses notes over 1 kB.
const MAX_NOTE: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Events for the conditions whose status changed between `old` and `new`. `Ready` is reported
/// on every change (including its first appearance); a trouble condition when it turns on, and
/// when it clears; other conditions when they change from a previous value.
///
/// A child failure is a transition of its own even when `Ready` was already `False` (Deploying
/// -> ApplyFailed, ApplyFailed -> QuotaExceeded, and back): once per reason, never per retry, so
/// a message that changes between retries (a quota's current usage) raises no new Event.
pub fn transitions(old: &[Condition], new: &[Condition]) -> Vec<Transition> {
    let mut out = Vec::new();
    for c in new {
        let previous = find(old, &c.type_);
        let prev = previous.map(|p| p.status.as_str());
        let failure_changed = c.type_ == types::READY
            && previous.is_some_and(|p| p.reason != c.reason && (is_failure(&p.reason) || is_failure(&c.reason)));
        if prev == Some(c.status.as_str()) && !failure_changed {
            continue;
        }
        let is_true = c.status == "True";
        let (report, warning) = if NEGATIVE.contains(&c.type_.as_str()) {
            (is_true || prev == Some("True"), is_true)
        } else if c.type_ == types::READY {
            (true, !is_true)
        } else {
            (prev.is_some(), !is_true)
        };
        if report {
            let mut note = format!("{} is {}: {}", c.type_, c.status, c.message);
            if note.len() > MAX_NOTE {
                let mut cut = MAX_NOTE;
                while !note.is_char_boundary(cut) {
                    cut -= 1;
                }
                note.truncate(cut);
            }
            out.push(Transition { warning, reason: c.reason.clone(), note });
        }
    }
    out
}

fn is_failure(reason: &str) -> bool {
    reasons::CHILD_FAILURES.contains(&reason)
}

/// Publish the transition Events of one object.
pub async fn publish<K>(ctx: &Context, obj: &K, old: &[Condition], new: &[Condition])
where
    K: Resource<DynamicType = ()>,
{
    let reference = obj.object_ref(&());
    for t in transitions(old, new) {
        let event = Event {
            type_: if t.warning { EventType::Warning } else { EventType::Normal },
            reason: t.reason,
            note: Some(t.note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, name = ?reference.name, "failed to publish event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use wellbeing_crds::conditions::{Desired, merge, reasons};

    fn conds(d: &[Desired]) -> Vec<Condition> {
        merge(&[], d, Some(1), Time(jiff::Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn first_reconcile_reports_ready_and_trouble_only() {
        let new = conds(&[
            Desired::new(types::READY, true, reasons::SCHEDULED, "3 check-ins"),
            Desired::new(types::CONFLICT, false, reasons::NO_CONFLICT, "only one"),
        ]);
        let t = transitions(&[], &new);
        assert_eq!(t.len(), 1);
        assert!(!t[0].warning);
        assert_eq!(t[0].reason, reasons::SCHEDULED);
    }

    #[test]
    fn trouble_turning_on_and_off() {
        let ok = conds(&[Desired::new(types::CONFLICT, false, reasons::NO_CONFLICT, "")]);
        let bad = conds(&[Desired::new(types::CONFLICT, true, reasons::MULTIPLE_ACTIVE, "a and b")]);
        let on = transitions(&ok, &bad);
        assert_eq!(on.len(), 1);
        assert!(on[0].warning);
        assert!(on[0].note.contains("a and b"));
        let off = transitions(&bad, &ok);
        assert_eq!(off.len(), 1);
        assert!(!off[0].warning);
        assert!(transitions(&bad, &bad).is_empty(), "no change, no event");
    }

    #[test]
    fn a_child_failure_is_one_event_per_reason_not_per_retry() {
        let deploying = conds(&[Desired::new(types::READY, false, reasons::DEPLOYING, "waiting")]);
        let failed = |reason, msg: &str| {
            merge(
                &deploying,
                &[Desired::new(types::READY, false, reason, msg)],
                Some(1),
                Time(jiff::Timestamp::UNIX_EPOCH),
            )
        };
        let quota = failed(reasons::QUOTA_EXCEEDED, "failed to apply Deployment d: exceeded quota, used: 1");
        let on = transitions(&deploying, &quota);
        assert_eq!(on.len(), 1, "Ready was False already, but now for a failure");
        assert!(on[0].warning);
        assert_eq!(on[0].reason, reasons::QUOTA_EXCEEDED);
        let retried = failed(reasons::QUOTA_EXCEEDED, "failed to apply Deployment d: exceeded quota, used: 2");
        assert!(transitions(&quota, &retried).is_empty(), "a retry with other numbers is no transition");
        let other = failed(reasons::APPLY_FAILED, "failed to apply Service s: Internal error");
        assert_eq!(transitions(&quota, &other).len(), 1);
        assert_eq!(transitions(&other, &deploying).len(), 1, "the failure cleared");
        let secrets = conds(&[Desired::new(types::READY, false, reasons::WAITING_FOR_SECRETS, "waiting")]);
        assert!(transitions(&secrets, &deploying).is_empty(), "progress between non-failure reasons stays quiet");
    }

    #[test]
    fn long_notes_are_cut() {
        let msg = "é".repeat(2000);
        let new = conds(&[Desired::new(types::READY, false, reasons::DEPLOYING, msg)]);
        let t = transitions(&[], &new);
        assert!(t[0].note.len() <= MAX_NOTE);
        assert!(t[0].warning);
    }
}
