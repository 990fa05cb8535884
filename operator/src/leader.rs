//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas never both
//! reconcile. kube-runtime has none built in; this is the small loop linkerd and kubert use:
//! read the Lease, decide (pure), write it back with an optimistic-concurrency precondition.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PostParams},
};
use tokio::sync::watch;
use tracing::{info, instrument, warn};

/// How long a Lease holds without renewal: a crashed leader is replaced within this.
/// client-go's default `LeaseDuration` (15 s).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// A leader that has not renewed for this long steps down, measured from the start of its last
/// successful renew request (the renewTime it wrote is from then), so it stops before any standby
/// may take over at `LEASE_DURATION`. client-go's default `RenewDeadline` (10 s).
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Renew well inside the deadline.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// After a failed round, try again this soon. client-go's default `RetryPeriod` (2 s).
pub const RETRY_EVERY: Duration = Duration::from_secs(2);
/// One round (read + write) may take this long; a hung connection must not outlast the deadline.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(4);

// A leader steps down before a standby may take over, and a renewal that hangs until its timeout
// still leaves a retry before the deadline. Checked when the crate compiles.
const _: () = assert!(RENEW_DEADLINE.as_secs() < LEASE_DURATION.as_secs());
const _: () = assert!(ROUND_TIMEOUT.as_secs() < RENEW_EVERY.as_secs());
const _: () = assert!(RENEW_EVERY.as_secs() + ROUND_TIMEOUT.as_secs() < RENEW_DEADLINE.as_secs());
pub const LEASE_NAME: &str = "wellbeing-operator";

/// What this replica should do with the Lease it just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: write a fresh renewTime.
    Renew,
    /// Free or expired: take it (leaseTransitions becomes `transitions`).
    Acquire { transitions: i32 },
    /// Someone else holds a live lease until `expires`.
    Standby { holder: String, expires: jiff::Timestamp },
}

/// Decide from the Lease spec (None: no Lease yet) at `now`. Pure, tested with a fixed clock.
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: jiff::Timestamp) -> Decision {
    let Some(spec) = spec else { return Decision::Acquire { transitions: 0 } };
    let transitions = spec.lease_transitions.unwrap_or(0);
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    match holder {
        None => Decision::Acquire { transitions: transitions + 1 },
        Some(h) if h == me => Decision::Renew,
        Some(h) => {
            let duration = jiff::SignedDuration::from_secs(
                spec.lease_duration_seconds.unwrap_or(LEASE_DURATION.as_secs() as i32).into(),
            );
            let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(|t| t.0);
            match renewed.and_then(|r| r.checked_add(duration).ok()) {
                Some(expires) if expires > now => Decision::Standby { holder: h, expires },
                _ => Decision::Acquire { transitions: transitions + 1 },
            }
        }
    }
}

/// The Lease this replica writes when it holds the lease.
pub fn desired(
    namespace: &str,
    me: &str,
    now: jiff::Timestamp,
    acquired: Option<MicroTime>,
    transitions: i32,
    resource_version: Option<String>,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            namespace: Some(namespace.into()),
            // With a resourceVersion the apiserver refuses the write if someone else wrote in
            // between: two replicas can never both believe they took the lease.
            resource_version,
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(me.into()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lost the leader lease to {holder}")]
    Lost { holder: String },
    #[error("failed to renew the leader lease within {0:?}; stepping down before another replica may take it")]
    RenewTimeout(Duration),
}

/// Whether a leader whose last successful renew started `since_last_renew_started` ago must step
/// down. Pure, so the rule is tested without a clock.
pub fn must_step_down(since_last_renew_started: Duration) -> bool {
    since_last_renew_started >= RENEW_DEADLINE
}

/// Keep trying to hold the Lease; `leading` turns true once held. Returns only when leadership
/// is lost, and the caller then exits the process: controllers may be mid-reconcile, and the only
/// way to be sure this replica stops writing is to stop it (Kubernetes restarts it as a standby).
#[instrument(skip(client, leading), fields(lease = LEASE_NAME))]
pub async fn run(client: Client, namespace: String, me: String, leading: watch::Sender<bool>) -> LeaseError {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    // Start of the last round that renewed: the renewTime in the Lease is from then.
    let mut last_renewed: Option<tokio::time::Instant> = None;
    loop {
        let started = tokio::time::Instant::now();
        let round = match tokio::time::timeout(ROUND_TIMEOUT, step(&api, &namespace, &me)).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer from the apiserver within {ROUND_TIMEOUT:?}")),
        };
        let wait = match round {
            Ok(Round::Holding) => {
                if last_renewed.is_none() {
                    info!(identity = %me, "acquired the leader lease");
                }
                last_renewed = Some(started);
                leading.send_replace(true);
                RENEW_EVERY
            }
            Ok(Round::HeldBy(holder)) => {
                if last_renewed.is_some() {
                    leading.send_replace(false);
                    return LeaseError::Lost { holder };
                }
                RETRY_EVERY
            }
            Err(error) => {
                warn!(%error, "leader lease round failed");
                RETRY_EVERY
            }
        };
        if let Some(at) = last_renewed
            && must_step_down(at.elapsed())
        {
            leading.send_replace(false);
            return LeaseError::RenewTimeout(RENEW_DEADLINE);
        }
        tokio::time::sleep(wait).await;
    }
}

/// Give the Lease up on a clean shutdown (client-go's `ReleaseOnCancel`), so a standby takes
/// over at once instead of after `LEASE_DURATION`. Only a Lease this replica holds is touched,
/// with a resourceVersion precondition.
pub async fn release(client: Client, namespace: &str, me: &str) -> Result<bool, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let Some(current) = api.get_opt(LEASE_NAME).await? else { return Ok(false) };
    if current.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(me) {
        return Ok(false);
    }
    let patch = release_patch(current.metadata.resource_version.clone(), jiff::Timestamp::now());
    api.patch(LEASE_NAME, &kube::api::PatchParams::default(), &Patch::Merge(&patch)).await?;
    info!(identity = %me, "released the leader lease");
    Ok(true)
}

/// The merge patch that frees the Lease: no holder, and a duration of one second for clients
/// that only look at the times.
pub fn release_patch(resource_version: Option<String>, now: jiff::Timestamp) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"resourceVersion": resource_version},
        "spec": {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": MicroTime(now)},
    })
}

enum Round {
    Holding,
    HeldBy(String),
}

/// One round: read, decide, write.
async fn step(api: &Api<Lease>, namespace: &str, me: &str) -> Result<Round, kube::Error> {
    let now = jiff::Timestamp::now();
    let current = api.get_opt(LEASE_NAME).await?;
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let other = || spec.and_then(|s| s.holder_identity.clone()).unwrap_or_else(|| "another replica".into());
    let (acquired, transitions) = match decide(spec, me, now) {
        Decision::Standby { holder, .. } => return Ok(Round::HeldBy(holder)),
        Decision::Renew => {
            (spec.and_then(|s| s.acquire_time.clone()), spec.and_then(|s| s.lease_transitions).unwrap_or(0))
        }
        Decision::Acquire { transitions } => (None, transitions),
    };
    let result = match &current {
        None => {
            let lease = desired(namespace, me, now, None, transitions, None);
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        Some(existing) => {
            let rv = existing.metadata.resource_version.clone();
            let lease = desired(namespace, me, now, acquired, transitions, rv);
            api.patch(LEASE_NAME, &crate::apply::ssa(), &Patch::Apply(&lease)).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(Round::Holding),
        // Someone else wrote first (create raced, or the resourceVersion moved on): they lead.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Round::HeldBy(other())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(secs).unwrap()
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            acquire_time: Some(MicroTime(at(renewed - 100))),
            lease_transitions: Some(3),
            ..Default::default()
        }
    }

    #[test]
    fn a_leader_steps_down_before_a_standby_may_take_over() {
        // The deadline is measured from before the request (the constants' relations are
        // checked at compile time, beside them).
        assert!(!must_step_down(Duration::from_millis(9_999)));
        assert!(must_step_down(RENEW_DEADLINE));
    }

    #[test]
    fn a_released_lease_is_free_for_the_next_replica() {
        let patch = release_patch(Some("42".into()), at(1000));
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        let mut spec = held_by("a", 999);
        spec.holder_identity = patch["spec"]["holderIdentity"].as_str().map(str::to_string);
        assert_eq!(decide(Some(&spec), "b", at(1000)), Decision::Acquire { transitions: 4 });
    }

    #[test]
    fn no_lease_is_taken() {
        assert_eq!(decide(None, "a", at(1000)), Decision::Acquire { transitions: 0 });
    }

    #[test]
    fn own_lease_is_renewed_even_when_late() {
        assert_eq!(decide(Some(&held_by("a", 900)), "a", at(1000)), Decision::Renew);
    }

    #[test]
    fn live_lease_of_another_waits_until_expiry() {
        let spec = held_by("b", 990);
        assert_eq!(decide(Some(&spec), "a", at(1000)), Decision::Standby { holder: "b".into(), expires: at(1005) });
        assert_eq!(decide(Some(&spec), "a", at(1004)), Decision::Standby { holder: "b".into(), expires: at(1005) });
        assert_eq!(decide(Some(&spec), "a", at(1005)), Decision::Acquire { transitions: 4 });
    }

    #[test]
    fn released_lease_is_taken() {
        let mut spec = held_by("b", 999);
        spec.holder_identity = Some(String::new());
        assert_eq!(decide(Some(&spec), "a", at(1000)), Decision::Acquire { transitions: 4 });
    }

    #[test]
    fn desired_lease_carries_precondition_and_times() {
        let l = desired("ns", "pod-1", at(50), Some(MicroTime(at(10))), 2, Some("77".into()));
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "77");
        assert_eq!(v["spec"]["holderIdentity"], "pod-1");
        assert_eq!(v["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(v["spec"]["leaseTransitions"], 2);
        assert_eq!(v["spec"]["acquireTime"], "1970-01-01T00:00:10.000000Z");
        assert_eq!(v["spec"]["renewTime"], "1970-01-01T00:00:50.000000Z");
    }
}
