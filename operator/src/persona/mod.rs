//! Persona controller: check-in CronJobs for the one active Persona of a namespace.

pub mod build;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::batch::v1::CronJob;
use kube::{Api, ResourceExt, api::ListParams, runtime::controller::Action};
use tracing::{Span, field, info, instrument};
use wellbeing_crds::{Persona, PersonaStatus};

use crate::{
    apply::{apply, apply_status, delete_stale},
    context::Context,
    error::{Error, Result, kube_err},
    events, failure,
};
use build::{Peers, conditions_of, cronjob_selector, decide, status_changed, status_patch};

pub const KIND: &str = "Persona";

/// Without a valid time zone there is no midnight to wait for; look again after this.
const INVALID_RETRY: Duration = Duration::from_secs(3600);

/// Reconcile one Persona: list its peers (conflict), apply the day's CronJobs, delete the ones
/// no longer wanted, write the status when it changed, and wake up at the next local midnight.
#[instrument(skip_all, fields(namespace = field::Empty, name = %persona.name_any()))]
pub async fn reconcile(persona: Arc<Persona>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let name = persona.name_any();
    let ns = persona.namespace().ok_or_else(|| Error::MissingNamespace { kind: KIND, name: name.clone() })?;
    Span::current().record("namespace", field::display(&ns));
    if persona.metadata.deletion_timestamp.is_some() {
        // Owner references remove the CronJobs; the peers are re-reconciled by the watch.
        return Ok(Action::await_change());
    }

    let personas: Api<Persona> = Api::namespaced(ctx.client.clone(), &ns);
    // The controllers' cache has the namespace's Personas; list only when there is none.
    let all = match ctx.caches.personas_in(&ns).await {
        Some(cached) => cached,
        None => match personas.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => return failed(&ctx, &personas, &persona, None, kube_err("list", "Personas in", &ns)(e)).await,
        },
    };
    let peers = Peers::from_list(&persona, &all);
    let now = ctx.now();
    let decision = decide(&persona, &peers, now, &ctx.config);

    // CronJobs before status: the status must not announce check-ins that were never scheduled.
    if let Err(error) = apply_cronjobs(&ctx, &ns, &name, &decision).await {
        return failed(&ctx, &personas, &persona, Some(&decision), error).await;
    }

    let old = persona.status.as_ref();
    if status_changed(old, &decision.status) {
        // A failed write goes to the error policy: logged at warn with the object, retried with backoff.
        write_status(&ctx, &personas, &persona, &decision.status).await?;
        info!(namespace = %ns, name = %name, check_ins = decision.status.next_check_ins.len(), "persona status updated");
    }

    let wait = match decision.wake_at {
        // A second past the check-in or midnight, so it has certainly passed.
        Some(at) => (at - now).to_std().unwrap_or_default() + Duration::from_secs(1),
        None => INVALID_RETRY,
    };
    Ok(Action::requeue(wait))
}

/// Apply the day's CronJobs and delete the ones no longer wanted.
async fn apply_cronjobs(ctx: &Context, ns: &str, name: &str, decision: &build::Decision) -> Result<()> {
    let cronjobs: Api<CronJob> = Api::namespaced(ctx.client.clone(), ns);
    let mut keep = Vec::with_capacity(decision.cronjobs.len());
    for cj in &decision.cronjobs {
        let cj_name = cj.name_any();
        apply(&cronjobs, &cj_name, cj, "CronJob").await?;
        keep.push(cj_name);
    }
    let deleted = delete_stale(&cronjobs, &cronjob_selector(name), &keep, "CronJob").await?;
    if !deleted.is_empty() {
        info!(namespace = %ns, name = %name, deleted = ?deleted, "removed check-in CronJobs no longer wanted");
    }
    Ok(())
}

/// Say in the status why the reconcile failed (once: an unchanged failure writes nothing), then
/// hand the error to the error policy, which retries with backoff.
async fn failed(
    ctx: &Context,
    api: &Api<Persona>,
    persona: &Persona,
    decision: Option<&build::Decision>,
    error: Error,
) -> Result<Action> {
    let Some(failure) = failure::of(&error) else { return Err(error) };
    let new = build::failed_status(persona, decision.map(|d| &d.status), &failure, ctx.now());
    if status_changed(persona.status.as_ref(), &new) {
        let written = write_status(ctx, api, persona, &new).await;
        if let Err(write) = written {
            let ns = persona.namespace().unwrap_or_default();
            failure::status_write_failed(KIND, &ns, &persona.name_any(), &write);
        }
    }
    Err(error)
}

/// Write the status, then publish the Events of its condition transitions (only once written).
async fn write_status(ctx: &Context, api: &Api<Persona>, persona: &Persona, new: &PersonaStatus) -> Result<()> {
    apply_status(api, &persona.name_any(), &status_patch(new), KIND).await?;
    events::publish(ctx, persona, conditions_of(persona.status.as_ref()), &new.conditions).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::OperatorConfig,
        test_support::{FakeStore, Routes, api_error, at, echo, fixture, list, persona, to_json, with_status},
    };
    use http::Method;
    use serde_json::json;

    const NOW: &str = "2026-05-04T10:00:00Z";
    const CRONJOBS: &str = "/apis/batch/v1/namespaces/ns/cronjobs";
    const PERSONAS: &str = "/apis/wellbeing.dev/v1alpha1/namespaces/ns/personas";

    fn cronjob(name: &str) -> serde_json::Value {
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
               "metadata": {"name": name, "namespace": "ns", "labels": {"wellbeing.dev/persona": "sunny"}},
               "spec": {"schedule": "0 9 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}})
    }

    #[tokio::test]
    async fn active_persona_gets_cronjobs_status_and_an_event() {
        let p = persona("sunny", true, 3, "Europe/Berlin");
        let listed = to_json(&p);
        let routes = Routes::new()
            .on(Method::PATCH, "/status", with_status(listed.clone()))
            .on(Method::GET, PERSONAS, move |_| list(vec![listed.clone()]))
            // A lower perDay left slot 3 behind.
            .on(Method::GET, CRONJOBS, |_| list(vec![cronjob("sunny-checkin-0"), cronjob("sunny-checkin-3")]))
            .on(Method::PATCH, CRONJOBS, echo)
            .on(Method::DELETE, CRONJOBS, |_| {
                (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
            });
        let f = fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes.into_responder());

        let action = reconcile(Arc::new(p.clone()), f.ctx.clone()).await.unwrap();
        // Awake a second after the next check-in passes (so the status drops it), which comes
        // before Berlin's midnight (22:00 UTC, 12 hours away).
        let decision = decide(&p, &Peers::from_list(&p, std::slice::from_ref(&p)), at(NOW), &f.ctx.config);
        let next = decision.wake_at.unwrap();
        assert!(next < at("2026-05-04T22:00:00Z"));
        assert_eq!(action, Action::requeue((next - at(NOW)).to_std().unwrap() + Duration::from_secs(1)));

        assert_eq!(
            f.lines(),
            [
                format!("GET {PERSONAS}"),
                format!("PATCH {CRONJOBS}/sunny-checkin-0"),
                format!("PATCH {CRONJOBS}/sunny-checkin-1"),
                format!("PATCH {CRONJOBS}/sunny-checkin-2"),
                format!("GET {CRONJOBS}"),
                format!("DELETE {CRONJOBS}/sunny-checkin-3"),
                format!("PATCH {PERSONAS}/sunny/status"),
                "POST /apis/events.k8s.io/v1/namespaces/ns/events".to_string(),
            ]
        );
        let applies = f.find(Method::PATCH, CRONJOBS);
        for a in &applies {
            assert!(a.query().contains("fieldManager=wellbeing-operator"), "{}", a.uri);
            assert!(a.query().contains("force=true"), "{}", a.uri);
            assert_eq!(a.body["spec"]["timeZone"], "Europe/Berlin");
            assert_eq!(a.body["metadata"]["ownerReferences"][0]["name"], "sunny");
        }
        let list_cj = &f.find(Method::GET, CRONJOBS)[0];
        assert!(list_cj.query().contains("labelSelector=wellbeing.dev%2Fpersona%3Dsunny"), "{}", list_cj.uri);

        let status = &f.find(Method::PATCH, "/status")[0];
        assert!(status.query().contains("fieldManager=wellbeing-operator"));
        assert_eq!(status.body["apiVersion"], "wellbeing.dev/v1alpha1");
        assert_eq!(status.body["kind"], "Persona");
        let s = &status.body["status"];
        assert_eq!(s["nextCheckIns"].as_array().unwrap().len(), 3);
        for (i, a) in applies.iter().enumerate() {
            // Each CronJob fires at the time the status announces.
            let t: chrono::DateTime<chrono::FixedOffset> = s["nextCheckIns"][i].as_str().unwrap().parse().unwrap();
            assert_eq!(a.body["spec"]["schedule"], format!("{} {} * * *", t.format("%-M"), t.format("%-H")));
        }
        assert_eq!(s["scheduleDate"], "2026-05-04");
        assert_eq!(s["observedGeneration"], 1);
        assert_eq!(s["conditions"][0]["type"], "Ready");
        assert_eq!(s["conditions"][0]["status"], "True");
        let event = &f.find(Method::POST, "/events")[0];
        assert_eq!(event.body["reason"], "Scheduled");
        assert_eq!(event.body["regarding"]["name"], "sunny");
    }

    #[tokio::test]
    async fn a_cronjob_over_quota_fails_ready_announces_nothing_and_raises_one_event() {
        let p = persona("sunny", true, 3, "Europe/Berlin");
        let quota = "cronjobs.batch \"sunny-checkin-1\" is forbidden: exceeded quota: jobs, requested: \
                     count/cronjobs.batch=1, used: count/cronjobs.batch=1, limited: count/cronjobs.batch=1";
        let routes = |p: &Persona| {
            let listed = to_json(p);
            Routes::new()
                .on(Method::PATCH, "/status", with_status(listed.clone()))
                .on(Method::GET, PERSONAS, move |_| list(vec![listed.clone()]))
                .on(Method::PATCH, &format!("{CRONJOBS}/sunny-checkin-1"), move |_| api_error(403, "Forbidden", quota))
                .on(Method::PATCH, CRONJOBS, echo)
        };
        let f = fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes(&p).into_responder());
        let error = reconcile(Arc::new(p.clone()), f.ctx.clone()).await.unwrap_err();
        assert!(matches!(&error, Error::Kube { kind: "CronJob", .. }), "{error:?}");
        assert!(f.find(Method::PATCH, &format!("{CRONJOBS}/sunny-checkin-2")).is_empty(), "stopped at the refusal");
        let status = f.find(Method::PATCH, "/status")[0].body["status"].clone();
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["nextCheckIns"], json!([]), "no check-in is announced that may not be scheduled");
        assert!(status.get("nextCheckIn").is_none_or(|n| n.is_null()), "{status}");
        let ready = status["conditions"][0].clone();
        assert_eq!((&ready["type"], &ready["status"]), (&json!("Ready"), &json!("False")));
        assert_eq!(ready["reason"], "QuotaExceeded");
        assert_eq!(ready["message"], format!("failed to apply CronJob sunny-checkin-1: {quota}"));
        assert_eq!(ready["observedGeneration"], 1);
        let conflict = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Conflict").cloned();
        assert_eq!(conflict.unwrap()["status"], "False", "the other conditions stand");
        let events = f.find(Method::POST, "/events");
        assert_eq!(events.len(), 1, "{:?}", f.lines());
        assert_eq!((&events[0].body["type"], &events[0].body["reason"]), (&json!("Warning"), &json!("QuotaExceeded")));

        // The retry meets the same quota: nothing new to write, no second Event.
        let mut p = p;
        p.status = Some(serde_json::from_value(status).unwrap());
        let f = fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes(&p).into_responder());
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap_err();
        assert!(f.find(Method::PATCH, "/status").is_empty(), "{:?}", f.lines());
        assert!(f.find(Method::POST, "/events").is_empty());
    }

    #[tokio::test]
    async fn second_reconcile_of_an_unchanged_persona_writes_no_status() {
        let mut p = persona("sunny", true, 2, "Europe/Berlin");
        let first = build::decide(&p, &Peers::default(), at(NOW), &OperatorConfig::default());
        p.status = Some(first.status);
        let listed = to_json(&p);
        let routes = Routes::new()
            .on(Method::GET, PERSONAS, move |_| list(vec![listed.clone()]))
            .on(Method::GET, CRONJOBS, |_| list(vec![cronjob("sunny-checkin-0"), cronjob("sunny-checkin-1")]))
            .on(Method::PATCH, CRONJOBS, echo);
        // An hour later, same local day.
        let f = fixture(
            OperatorConfig::default(),
            FakeStore::default(),
            at("2026-05-04T11:00:00Z"),
            routes.into_responder(),
        );
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();
        assert!(f.find(Method::PATCH, "/status").is_empty(), "{:?}", f.lines());
        assert!(f.find(Method::POST, "/events").is_empty());
        assert!(f.find(Method::DELETE, "").is_empty());
    }

    #[tokio::test]
    async fn two_active_personas_both_conflict_and_lose_their_cronjobs() {
        let sunny = persona("sunny", true, 3, "Europe/Berlin");
        let stormy = persona("stormy", true, 3, "Europe/Berlin");
        let listed = vec![to_json(&sunny), to_json(&stormy)];
        let routes = Routes::new()
            .on(Method::PATCH, "/status", with_status(listed[0].clone()))
            .on(Method::GET, PERSONAS, move |_| list(listed.clone()))
            .on(Method::GET, CRONJOBS, |_| list(vec![cronjob("sunny-checkin-0")]))
            .on(Method::DELETE, CRONJOBS, |_| {
                (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
            });
        let f = fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes.into_responder());
        reconcile(Arc::new(sunny), f.ctx.clone()).await.unwrap();

        assert!(f.find(Method::PATCH, CRONJOBS).is_empty(), "no CronJob is applied during a conflict");
        assert_eq!(f.find(Method::DELETE, CRONJOBS)[0].path(), format!("{CRONJOBS}/sunny-checkin-0"));
        let status = &f.find(Method::PATCH, "/status")[0].body["status"];
        let conflict = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Conflict").unwrap();
        assert_eq!(conflict["status"], "True");
        assert_eq!(conflict["reason"], "MultipleActivePersonas");
        assert_eq!(status["nextCheckIns"], json!([]));
        let events = f.find(Method::POST, "/events");
        assert!(
            events.iter().any(|e| e.body["type"] == "Warning" && e.body["reason"] == "MultipleActivePersonas"),
            "{events:?}"
        );
    }
}
