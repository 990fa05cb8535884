//! SecretRequirement controller: which Plugins use a secret (`status.usedBy`), whether the store
//! has it (polled, metadata only), and removal of requirements no Plugin uses any more. The
//! secret in the store is never touched.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ListParams},
    runtime::controller::Action,
};
use tracing::{Span, field, info, instrument, warn};
use wellbeing_crds::{
    Plugin, SecretRequirement, SecretRequirementStatus,
    conditions::{Desired, Status, differ_ignoring_time, find, merge, reasons, time_from_chrono, types},
    secret_requirement::SecretPhase,
};

use crate::{
    apply::apply_status,
    context::Context,
    error::{Error, Result, kube_err},
    events,
    names::{FIELD_MANAGER, LABEL_MANAGED_BY},
    secret_store::{Presence, StoreError},
};

pub const KIND: &str = "SecretRequirement";

/// Approved Plugins (not being deleted) that declare `secret_id`, sorted. An unapproved plugin
/// asks for nothing: nobody should be prompted for a secret of code not yet reviewed.
pub fn used_by(secret_id: &str, plugins: &[Plugin]) -> Vec<String> {
    let mut names: Vec<String> = plugins
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && p.spec.approved)
        .filter(|p| p.spec.required_secrets.iter().any(|s| s.name == secret_id))
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether the operator created this requirement (and may delete it when unused). A requirement
/// someone wrote by hand is kept even when no Plugin uses it.
pub fn is_managed(req: &SecretRequirement) -> bool {
    req.labels().get(LABEL_MANAGED_BY).is_some_and(|v| v == FIELD_MANAGER)
}

/// How long until the store should be asked again; zero when a check is due now (never checked,
/// spec changed, or the poll interval has passed). `checked_in_memory` is when this replica last
/// asked: `status.lastChecked` only moves when the phase changes, so it is the older bound.
pub fn until_next_check(
    req: &SecretRequirement,
    now: DateTime<Utc>,
    interval: Duration,
    checked_in_memory: Option<DateTime<Utc>>,
) -> Duration {
    let Some(status) = req.status.as_ref() else { return Duration::ZERO };
    if status.observed_generation != req.metadata.generation {
        return Duration::ZERO;
    }
    // A failed check leaves Ready Unknown: retry on the error policy's backoff, not the poll.
    if find(&status.conditions, types::READY).is_none_or(|c| c.status == Status::Unknown.as_str()) {
        return Duration::ZERO;
    }
    let in_status = status.last_checked.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let Some(last) = in_status.map(|t| t.with_timezone(&Utc)).into_iter().chain(checked_in_memory).max() else {
        return Duration::ZERO;
    };
    let next = last + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    (next - now).to_std().unwrap_or(Duration::ZERO)
}

/// The status after an (optional) store answer. `checked: None` keeps the previous answer.
pub fn decide(
    req: &SecretRequirement,
    used_by: Vec<String>,
    checked: Option<&Result<Presence, StoreError>>,
    store_kind: &str,
    now: DateTime<Utc>,
) -> SecretRequirementStatus {
    let old = req.status.clone().unwrap_or_default();
    let id = &req.spec.secret_id;
    // The store said the same as before: keep `lastChecked`, so a poll writes nothing and does not
    // wake every Plugin that watches this requirement.
    let stamp = |phase: SecretPhase| {
        if phase == old.phase && old.last_checked.is_some() && old.observed_generation == req.metadata.generation {
            old.last_checked.clone()
        } else {
            Some(now.to_rfc3339_opts(SecondsFormat::Secs, true))
        }
    };
    let (phase, last_checked, ready) = match checked {
        None => {
            let kept = find(&old.conditions, types::READY).map(|c| Desired {
                type_: types::READY,
                status: match c.status.as_str() {
                    "True" => Status::True,
                    "False" => Status::False,
                    _ => Status::Unknown,
                },
                reason: reason_const(&c.reason),
                message: c.message.clone(),
            });
            (old.phase, old.last_checked.clone(), kept)
        }
        Some(Ok(Presence::Present)) => (
            SecretPhase::Present,
            stamp(SecretPhase::Present),
            Some(Desired::new(
                types::READY,
                true,
                reasons::SECRET_PRESENT,
                format!("{id} is in the {store_kind} store"),
            )),
        ),
        Some(Ok(Presence::Missing)) => (
            SecretPhase::Missing,
            stamp(SecretPhase::Missing),
            Some(Desired::new(
                types::READY,
                false,
                reasons::SECRET_MISSING,
                format!("{id} is not in the {store_kind} store yet; run `wellbeing secrets resolve` to add it"),
            )),
        ),
        Some(Err(e)) => (
            old.phase,
            old.last_checked.clone(),
            Some(Desired::new(types::READY, Status::Unknown, reasons::STORE_UNREACHABLE, crate::error_chain(e))),
        ),
    };
    let generation = req.metadata.generation;
    let desired: Vec<Desired> = ready.into_iter().collect();
    SecretRequirementStatus {
        phase,
        used_by,
        last_checked,
        conditions: merge(&old.conditions, &desired, generation, time_from_chrono(now)),
        observed_generation: generation,
    }
}

/// Reasons are `&'static str` in `Desired`; map a stored one back to ours.
fn reason_const(reason: &str) -> &'static str {
    [reasons::SECRET_PRESENT, reasons::SECRET_MISSING, reasons::STORE_UNREACHABLE]
        .into_iter()
        .find(|r| *r == reason)
        .unwrap_or(reasons::RECONCILED)
}

pub fn changed(old: Option<&SecretRequirementStatus>, new: &SecretRequirementStatus) -> bool {
    let Some(old) = old else { return true };
    let SecretRequirementStatus { phase, used_by, last_checked, conditions, observed_generation } = new;
    &old.phase != phase
        || &old.used_by != used_by
        || &old.last_checked != last_checked
        || differ_ignoring_time(&old.conditions, conditions)
        || &old.observed_generation != observed_generation
}

pub fn status_patch(status: &SecretRequirementStatus) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": SecretRequirement::api_version(&()),
        "kind": SecretRequirement::kind(&()),
        "status": {
            "phase": status.phase,
            "usedBy": status.used_by,
            "lastChecked": status.last_checked,
            "conditions": status.conditions,
            "observedGeneration": status.observed_generation,
        },
    })
}

#[instrument(skip_all, fields(namespace = field::Empty, name = %req.name_any()))]
pub async fn reconcile(req: Arc<SecretRequirement>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let name = req.name_any();
    let ns = req.namespace().ok_or_else(|| Error::MissingNamespace { kind: KIND, name: name.clone() })?;
    Span::current().record("namespace", field::display(&ns));
    if req.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let reqs: Api<SecretRequirement> = Api::namespaced(ctx.client.clone(), &ns);
    let plugins: Api<Plugin> = Api::namespaced(ctx.client.clone(), &ns);
    let all = match ctx.caches.plugins_in(&ns).await {
        Some(cached) => cached,
        None => plugins.list(&ListParams::default()).await.map_err(kube_err("list", "Plugin", &ns))?.items,
    };
    let users = used_by(&req.spec.secret_id, &all);

    if users.is_empty() && is_managed(&req) {
        // Only the requirement goes; the secret stays in the store for whoever needs it next.
        match reqs.delete(&name, &DeleteParams::background()).await {
            Ok(_) => info!(namespace = %ns, name = %name, "removed secret requirement no plugin uses"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(kube_err("delete", KIND, &name)(e)),
        }
        return Ok(Action::await_change());
    }

    let now = ctx.now();
    let interval = ctx.config.poll_interval;
    let check_key = format!("{ns}/{name}");
    let wait = until_next_check(&req, now, interval, ctx.store_checks.last(&check_key));
    let store = (ctx.store_for)(&ns);
    let answer = if wait.is_zero() {
        Some(match &store {
            Ok(store) => store.presence(&req.spec.secret_id).await,
            Err(e) => Err(clone_config_error(e)),
        })
    } else {
        None
    };
    if matches!(answer, Some(Ok(_))) {
        ctx.store_checks.record(&check_key, now);
        ctx.metrics.store_checked(KIND);
    }
    let store_kind = store.as_ref().map(|s| s.kind()).unwrap_or("configured");
    let status = decide(&req, users, answer.as_ref(), store_kind, now);

    let old = req.status.as_ref();
    if changed(old, &status) {
        apply_status(&reqs, &name, &status_patch(&status), KIND).await?;
        let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
        events::publish(&ctx, req.as_ref(), old_conditions, &status.conditions).await;
    }
    match answer {
        Some(Err(source)) => {
            warn!(namespace = %ns, name = %name, reason = source.reason(), "secret store check failed");
            Err(Error::Store { secret_id: req.spec.secret_id.clone(), source })
        }
        Some(Ok(_)) => Ok(Action::requeue(interval)),
        None => Ok(Action::requeue(wait)),
    }
}

/// `StoreError` is not `Clone`; a configuration error is rebuilt from its message.
fn clone_config_error(e: &StoreError) -> StoreError {
    StoreError::Config { store: "configured", reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::OperatorConfig,
        test_support::{FakeStore, Routes, at, fixture, list, plugin, requirement, to_json, with_status},
    };
    use http::Method;
    use serde_json::json;

    const REQS: &str = "/apis/wellbeing.dev/v1alpha1/namespaces/ns/secretrequirements";
    const PLUGINS: &str = "/apis/wellbeing.dev/v1alpha1/namespaces/ns/plugins";
    const NOW: &str = "2026-05-04T10:00:00Z";

    #[test]
    fn used_by_counts_approved_live_plugins() {
        let a = plugin("a", &["owm-key"]);
        let b = plugin("b", &["owm-key", "other"]);
        let c = plugin("c", &["other"]);
        let mut unapproved = plugin("d", &["owm-key"]);
        unapproved.spec.approved = false;
        let mut leaving = plugin("e", &["owm-key"]);
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(used_by("owm-key", &[b, a, c, unapproved, leaving]), ["a", "b"]);
    }

    #[test]
    fn polling_is_due_after_the_interval_or_a_spec_change() {
        let interval = Duration::from_secs(60);
        let mut r = requirement("owm-key", Some("Missing"));
        assert_eq!(until_next_check(&r, at(NOW), interval, None), Duration::ZERO, "no Ready condition yet");
        r.status = Some(decide(&r, vec!["a".into()], Some(&Ok(Presence::Missing)), "fake", at(NOW)));
        assert_eq!(until_next_check(&r, at("2026-05-04T10:00:20Z"), interval, None), Duration::from_secs(40));
        assert_eq!(until_next_check(&r, at("2026-05-04T10:01:00Z"), interval, None), Duration::ZERO);
        r.metadata.generation = Some(2);
        assert_eq!(until_next_check(&r, at("2026-05-04T10:00:20Z"), interval, None), Duration::ZERO);
    }

    #[test]
    fn a_poll_with_the_same_answer_writes_nothing_and_a_new_phase_is_stamped() {
        let mut r = requirement("owm-key", None);
        r.status = Some(decide(&r, vec!["a".into()], Some(&Ok(Presence::Missing)), "fake", at(NOW)));
        let again = decide(&r, vec!["a".into()], Some(&Ok(Presence::Missing)), "fake", at("2026-05-04T10:05:00Z"));
        assert!(!changed(r.status.as_ref(), &again), "{again:?}");
        assert_eq!(again.last_checked.as_deref(), Some("2026-05-04T10:00:00Z"));
        let turned = decide(&r, vec!["a".into()], Some(&Ok(Presence::Present)), "fake", at("2026-05-04T10:06:00Z"));
        assert!(changed(r.status.as_ref(), &turned));
        assert_eq!(turned.last_checked.as_deref(), Some("2026-05-04T10:06:00Z"));
        // The next poll is timed from this replica's last answer, not the older status stamp.
        let interval = Duration::from_secs(60);
        let polled = Some(at("2026-05-04T10:05:00Z"));
        assert_eq!(until_next_check(&r, at("2026-05-04T10:05:20Z"), interval, polled), Duration::from_secs(40));
    }

    #[test]
    fn unchecked_reconcile_keeps_phase_and_time() {
        let mut r = requirement("owm-key", None);
        r.status = Some(decide(&r, vec!["a".into()], Some(&Ok(Presence::Present)), "fake", at(NOW)));
        let kept = decide(&r, vec!["a".into(), "b".into()], None, "fake", at("2026-05-04T10:00:30Z"));
        assert_eq!(kept.phase, SecretPhase::Present);
        assert_eq!(kept.last_checked.as_deref(), Some("2026-05-04T10:00:00Z"));
        assert_eq!(kept.used_by, ["a", "b"]);
        assert!(!differ_ignoring_time(&r.status.as_ref().unwrap().conditions, &kept.conditions));
    }

    #[tokio::test]
    async fn present_secret_is_recorded_with_users() {
        let r = requirement("owm-key", Some("Missing"));
        let plugins = vec![to_json(&plugin("weather", &["owm-key"])), to_json(&plugin("other", &["x"]))];
        let routes = Routes::new().on(Method::GET, PLUGINS, move |_| list(plugins.clone())).on(
            Method::PATCH,
            REQS,
            with_status(to_json(&r)),
        );
        let store = FakeStore { present: vec!["owm-key".into()], ..Default::default() };
        let f = fixture(OperatorConfig::default(), store, at(NOW), routes.into_responder());
        let action = reconcile(Arc::new(r), f.ctx.clone()).await.unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(60)));
        assert_eq!(*f.store_calls.lock().unwrap(), ["owm-key"]);
        let patch = &f.find(Method::PATCH, "/status")[0];
        assert_eq!(patch.path(), format!("{REQS}/owm-key/status"));
        assert!(patch.query().contains("fieldManager=wellbeing-operator"));
        let s = &patch.body["status"];
        assert_eq!(s["phase"], "Present");
        assert_eq!(s["usedBy"], json!(["weather"]));
        assert_eq!(s["lastChecked"], NOW);
        assert_eq!(s["conditions"][0]["type"], "Ready");
        assert_eq!(s["conditions"][0]["status"], "True");
        let event = &f.find(Method::POST, "/events")[0];
        assert_eq!(event.body["reason"], "SecretPresent");
    }

    #[tokio::test]
    async fn not_due_means_no_store_call_and_no_write() {
        let mut r = requirement("owm-key", None);
        r.status = Some(decide(&r, vec!["weather".into()], Some(&Ok(Presence::Missing)), "fake", at(NOW)));
        let plugins = vec![to_json(&plugin("weather", &["owm-key"]))];
        let routes = Routes::new().on(Method::GET, PLUGINS, move |_| list(plugins.clone()));
        let f = fixture(
            OperatorConfig::default(),
            FakeStore::default(),
            at("2026-05-04T10:00:45Z"),
            routes.into_responder(),
        );
        let action = reconcile(Arc::new(r), f.ctx.clone()).await.unwrap();
        assert_eq!(action, Action::requeue(Duration::from_secs(15)));
        assert!(f.store_calls.lock().unwrap().is_empty());
        assert_eq!(f.lines(), [format!("GET {PLUGINS}")]);
    }

    #[tokio::test]
    async fn unused_requirement_is_deleted_but_a_hand_written_one_stays() {
        let r = requirement("owm-key", Some("Present"));
        let routes = Routes::new()
            .on(Method::GET, PLUGINS, |_| list(vec![]))
            .on(Method::DELETE, REQS, |_| (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})));
        let f = fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes.into_responder());
        reconcile(Arc::new(r.clone()), f.ctx.clone()).await.unwrap();
        assert_eq!(f.lines(), [format!("GET {PLUGINS}"), format!("DELETE {REQS}/owm-key")]);
        assert!(f.store_calls.lock().unwrap().is_empty(), "the store is never touched");

        let mut hand_written = r;
        hand_written.metadata.labels = None;
        let routes = Routes::new().on(Method::GET, PLUGINS, |_| list(vec![])).on(
            Method::PATCH,
            REQS,
            with_status(to_json(&hand_written)),
        );
        let f = fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes.into_responder());
        reconcile(Arc::new(hand_written), f.ctx.clone()).await.unwrap();
        assert!(f.find(Method::DELETE, REQS).is_empty());
    }

    #[tokio::test]
    async fn unreachable_store_is_a_condition_an_event_and_an_error() {
        let r = requirement("owm-key", Some("Missing"));
        let plugins = vec![to_json(&plugin("weather", &["owm-key"]))];
        let routes = Routes::new().on(Method::GET, PLUGINS, move |_| list(plugins.clone())).on(
            Method::PATCH,
            REQS,
            with_status(to_json(&r)),
        );
        let store = FakeStore { unreachable: true, ..Default::default() };
        let f = fixture(OperatorConfig::default(), store, at(NOW), routes.into_responder());
        let err = reconcile(Arc::new(r), f.ctx.clone()).await.unwrap_err();
        assert_eq!(err.metric_label(), "StoreUnreachable");
        let s = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(s["phase"], "Missing", "an unanswered check changes no phase");
        assert_eq!(s["conditions"][0]["status"], "Unknown");
        assert_eq!(s["conditions"][0]["reason"], "StoreUnreachable");
        assert!(s["conditions"][0]["message"].as_str().unwrap().contains("connection refused"));
        let event = &f.find(Method::POST, "/events")[0];
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "StoreUnreachable");
    }
}
