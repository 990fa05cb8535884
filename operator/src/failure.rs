//! Why a reconcile could not fetch, build or apply a child (pure): the reason and message of the
//! `Ready=False` condition it leaves on its object, so `kubectl get` shows what the log retries.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use wellbeing_crds::conditions::{Desired, Status, merge, reasons, types};

use crate::error::Error;

/// Longest message put into a condition. The schema allows 32 KiB; an admission webhook's
/// refusal or a quota's numbers fit in far less, and `kubectl get -o wide` shows it on one line.
pub const MAX_MESSAGE: usize = 2048;

/// A child that could not be fetched, built or applied, as the status tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildFailure {
    /// One of [`reasons::CHILD_FAILURES`].
    pub reason: &'static str,
    /// Names the child and carries the apiserver's words, e.g. "failed to apply Service
    /// plugin-weather: Internal error occurred: failed to allocate a serviceIP: range is full".
    pub message: String,
}

/// The reason for an apiserver answer (or for no answer at all).
pub fn classify(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) => match status.code {
            // A ResourceQuota refusal is a 403 like RBAC's, told apart only by its message.
            403 if status.message.contains("exceeded quota") => reasons::QUOTA_EXCEEDED,
            403 => reasons::FORBIDDEN,
            409 => reasons::CONFLICT,
            400 | 422 => reasons::INVALID,
            413 => reasons::TOO_LARGE,
            _ => reasons::APPLY_FAILED,
        },
        _ => reasons::APPLY_FAILED,
    }
}

/// What the apiserver said: its message, or for a request that got no answer, the client's error.
fn apiserver_words(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        kube::Error::Api(status) => format!("{} ({})", status.reason, status.code),
        other => chain_without_repeats(other),
    }
}

/// The error and its sources, skipping a source whose text its parent already ends with (kube's
/// client errors print their source in their own message).
fn chain_without_repeats(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The failure a reconcile error stands for, when it is about a child. `None` for errors no
/// status can report (an object without a namespace) or that are not about a child.
pub fn of(error: &Error) -> Option<ChildFailure> {
    let (reason, message) = match error {
        Error::Kube { action, kind, name, source } => {
            (classify(source), format!("failed to {action} {kind} {name}: {}", apiserver_words(source)))
        }
        Error::TooLarge { .. } => (reasons::TOO_LARGE, error.to_string()),
        Error::Serialize { .. } => (reasons::APPLY_FAILED, crate::error_chain(error)),
        Error::Store { .. } | Error::MissingNamespace { .. } => return None,
    };
    Some(ChildFailure { reason, message: cut(message, MAX_MESSAGE) })
}

/// A status write that failed while a child's failure was being reported. The child's error goes
/// to the error policy (which retries both with backoff); this one is only logged, at warn, with
/// the object.
pub fn status_write_failed(kind: &'static str, namespace: &str, name: &str, error: &Error) {
    tracing::warn!(
        kind,
        namespace,
        name,
        error = %crate::error_chain(error),
        "failed to write the status of a failed reconcile; retrying with backoff"
    );
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

/// The conditions after a failed reconcile: `Ready=False` with the failure first, then the
/// `decided` conditions (what the reconcile still found out, already merged), then every other
/// previous condition as it was, with its own (older) `observedGeneration`.
pub fn conditions(
    old: &[Condition],
    decided: &[Condition],
    failure: &ChildFailure,
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    let ready = Desired {
        type_: types::READY,
        status: Status::False,
        reason: failure.reason,
        message: failure.message.clone(),
    };
    let mut out = merge(old, &[ready], generation, now);
    out.extend(decided.iter().filter(|c| c.type_ != types::READY).cloned());
    let known: Vec<String> = out.iter().map(|c| c.type_.clone()).collect();
    out.extend(old.iter().filter(|c| !known.contains(&c.type_)).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status as ApiStatus;
    use wellbeing_crds::conditions::find;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(ApiStatus::failure(message, reason).with_code(code).boxed())
    }

    fn kube(action: &'static str, kind: &'static str, source: kube::Error) -> Error {
        Error::Kube { action, kind, name: "plugin-weather".into(), source }
    }

    #[test]
    fn apiserver_answers_map_to_reasons() {
        let quota = "deployments.apps \"plugin-weather\" is forbidden: exceeded quota: compute, requested: \
                     limits.memory=256Mi, used: limits.memory=1Gi, limited: limits.memory=1Gi";
        let cases = [
            (
                api(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP"),
                reasons::APPLY_FAILED,
            ),
            (
                api(503, "ServiceUnavailable", "the server is currently unable to handle the request"),
                reasons::APPLY_FAILED,
            ),
            (api(403, "Forbidden", quota), reasons::QUOTA_EXCEEDED),
            (api(403, "Forbidden", "admission webhook \"policy.example\" denied the request: no"), reasons::FORBIDDEN),
            (
                api(409, "Conflict", "Apply failed with 1 conflict: conflict with \"helm\": .spec.replicas"),
                reasons::CONFLICT,
            ),
            (
                api(422, "Invalid", "Service \"plugin-weather\" is invalid: spec.ports[0].port: Invalid value"),
                reasons::INVALID,
            ),
            (api(400, "BadRequest", "the body of the request was in an unknown format"), reasons::INVALID),
            (api(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728"), reasons::TOO_LARGE),
            (api(404, "NotFound", "namespaces \"ns\" not found"), reasons::APPLY_FAILED),
            (kube::Error::Service("connection refused".into()), reasons::APPLY_FAILED),
        ];
        for (error, reason) in cases {
            assert_eq!(classify(&error), reason, "{error}");
        }
    }

    #[test]
    fn the_message_names_the_child_and_carries_the_apiservers_words() {
        let e = kube(
            "apply",
            "Service",
            api(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP"),
        );
        let f = of(&e).unwrap();
        assert_eq!(f.reason, reasons::APPLY_FAILED);
        assert_eq!(
            f.message,
            "failed to apply Service plugin-weather: Internal error occurred: failed to allocate a serviceIP"
        );
        let no_answer = of(&kube("get", "RuntimeClass", kube::Error::Service("connection refused".into()))).unwrap();
        assert_eq!(no_answer.message, "failed to get RuntimeClass plugin-weather: ServiceError: connection refused");
        let silent = of(&kube("apply", "Service", api(502, "", ""))).unwrap();
        assert_eq!(silent.message, "failed to apply Service plugin-weather:  (502)");
        let long = of(&kube("apply", "Service", api(403, "Forbidden", &"é".repeat(5000)))).unwrap();
        assert!(long.message.len() <= MAX_MESSAGE);
        let big =
            of(&Error::TooLarge { kind: "ConfigMap", name: "plugin-weather".into(), size: 2 << 20, limit: 1 << 20 })
                .unwrap();
        assert_eq!(big.reason, reasons::TOO_LARGE);
        assert!(big.message.contains("ConfigMap plugin-weather"), "{}", big.message);
        assert_eq!(of(&Error::MissingNamespace { kind: "Plugin", name: "x".into() }), None);
    }

    #[test]
    fn ready_turns_false_and_the_rest_is_kept() {
        let t0 = Time(jiff::Timestamp::from_second(100).unwrap());
        let t1 = Time(jiff::Timestamp::from_second(200).unwrap());
        let old = merge(
            &[],
            &[
                Desired::new(types::READY, true, reasons::AVAILABLE, "serving"),
                Desired::new("ToolsListed", true, "Listed", "2 tools"),
            ],
            Some(1),
            t0.clone(),
        );
        let failure = ChildFailure { reason: reasons::FORBIDDEN, message: "failed to apply Deployment x: no".into() };
        let approved =
            merge(&[], &[Desired::new(types::APPROVED, true, reasons::APPROVED, "approved")], Some(2), t1.clone());
        let new = conditions(&old, &approved, &failure, Some(2), t1.clone());
        let types: Vec<&str> = new.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [types::READY, types::APPROVED, "ToolsListed"]);
        let ready = find(&new, types::READY).unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", reasons::FORBIDDEN));
        assert_eq!(ready.observed_generation, Some(2));
        assert_eq!(ready.last_transition_time, t1);
        let kept = find(&new, "ToolsListed").unwrap();
        assert_eq!((kept.observed_generation, &kept.last_transition_time), (Some(1), &t0), "as it was");
        // The same failure again: the same list, so nothing to write.
        let again = conditions(&new, &[], &failure, Some(2), Time(jiff::Timestamp::from_second(300).unwrap()));
        assert!(!wellbeing_crds::conditions::differ_ignoring_time(&new, &again));
    }
}
