//! Goal controller: which Plugins cover a goal (`status.coveredBy`, `Uncovered`). The goal's
//! progress belongs to the assistant (field manager `wellbeing-assistant`) and is never written here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Api, Resource, ResourceExt, api::ListParams, runtime::controller::Action};
use tracing::{Span, field, info, instrument};
use wellbeing_crds::{
    Goal, Plugin,
    conditions::{Desired, differ_ignoring_time, merge, reasons, time_from_chrono, types},
};

use crate::{
    apply::apply_status,
    context::Context,
    error::{Error, Result, kube_err},
    events,
    failure::{self, ChildFailure},
};

pub const KIND: &str = "Goal";

/// The operator's part of a Goal's status.
#[derive(Clone, Debug, PartialEq)]
pub struct GoalView {
    pub covered_by: Vec<String>,
    pub conditions: Vec<Condition>,
    pub observed_generation: Option<i64>,
}

/// Plugins (not being deleted) whose triggers match the goal, sorted by name.
pub fn covered_by(goal: &Goal, plugins: &[Plugin]) -> Vec<String> {
    let name = goal.name_any();
    let mut names: Vec<String> = plugins
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.spec.covers_goal(&name, &goal.spec))
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Decide the operator's part of the status.
pub fn decide(goal: &Goal, plugins: &[Plugin], now: DateTime<Utc>) -> GoalView {
    let covered = covered_by(goal, plugins);
    let uncovered = if covered.is_empty() {
        Desired::new(
            types::UNCOVERED,
            true,
            reasons::NO_MATCHING_PLUGIN,
            format!("no Plugin's triggers match pillar {:?}, the goal's name or its keywords", goal.spec.pillar),
        )
    } else {
        Desired::new(types::UNCOVERED, false, reasons::COVERED, format!("covered by {}", covered.join(", ")))
    };
    let ready = Desired::new(types::READY, true, reasons::RECONCILED, "goal accepted");
    let old = goal.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let generation = goal.metadata.generation;
    GoalView {
        covered_by: covered,
        conditions: merge(old, &[ready, uncovered], generation, time_from_chrono(now)),
        observed_generation: generation,
    }
}

/// The operator's part of the status when the Plugins could not be listed: `Ready=False` with
/// the failure; the coverage found last stays, with its condition as it was.
pub fn failed(goal: &Goal, failure: &ChildFailure, now: DateTime<Utc>) -> GoalView {
    let old = goal.status.clone().unwrap_or_default();
    let generation = goal.metadata.generation;
    GoalView {
        covered_by: old.covered_by,
        conditions: crate::failure::conditions(&old.conditions, &[], failure, generation, time_from_chrono(now)),
        observed_generation: generation,
    }
}

pub fn changed(goal: &Goal, view: &GoalView) -> bool {
    let Some(old) = goal.status.as_ref() else { return true };
    let GoalView { covered_by, conditions, observed_generation } = view;
    &old.covered_by != covered_by
        || differ_ignoring_time(&old.conditions, conditions)
        || &old.observed_generation != observed_generation
}

/// Apply body naming only the operator's fields, so `status.progress` stays the assistant's.
pub fn status_patch(view: &GoalView) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": Goal::api_version(&()),
        "kind": Goal::kind(&()),
        "status": {
            "coveredBy": view.covered_by,
            "conditions": view.conditions,
            "observedGeneration": view.observed_generation,
        },
    })
}

#[instrument(skip_all, fields(namespace = field::Empty, name = %goal.name_any()))]
pub async fn reconcile(goal: Arc<Goal>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let name = goal.name_any();
    let ns = goal.namespace().ok_or_else(|| Error::MissingNamespace { kind: KIND, name: name.clone() })?;
    Span::current().record("namespace", field::display(&ns));
    if goal.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let plugins: Api<Plugin> = Api::namespaced(ctx.client.clone(), &ns);
    let goals: Api<Goal> = Api::namespaced(ctx.client.clone(), &ns);
    let list = match plugins.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(e) => {
            // Say so in the status (once), then let the error policy retry with backoff.
            let error = kube_err("list", "Plugins in", &ns)(e);
            let Some(failure) = failure::of(&error) else { return Err(error) };
            let view = failed(&goal, &failure, ctx.now());
            if changed(&goal, &view) {
                let written = write_status(&ctx, &goals, &goal, &view).await;
                if let Err(write) = written {
                    failure::status_write_failed(KIND, &ns, &name, &write);
                }
            }
            return Err(error);
        }
    };
    let view = decide(&goal, &list.items, ctx.now());
    if changed(&goal, &view) {
        // A failed write goes to the error policy: logged at warn with the object, retried with backoff.
        write_status(&ctx, &goals, &goal, &view).await?;
        info!(namespace = %ns, name = %name, covered_by = ?view.covered_by, "goal status updated");
    }
    // Plugin changes trigger this reconcile through the watch; the requeue is only a safety net.
    Ok(Action::requeue(std::time::Duration::from_secs(3600)))
}

/// Write the operator's part of the status, then publish the Events of its condition transitions.
async fn write_status(ctx: &Context, api: &Api<Goal>, goal: &Goal, view: &GoalView) -> Result<()> {
    apply_status(api, &goal.name_any(), &status_patch(view), KIND).await?;
    let old = goal.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    events::publish(ctx, goal, old, &view.conditions).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::OperatorConfig,
        test_support::{FakeStore, Routes, api_error, at, fixture, goal, list, plugin, to_json, with_status},
    };
    use http::Method;
    use serde_json::json;
    use wellbeing_crds::conditions::find;

    const GOALS: &str = "/apis/wellbeing.dev/v1alpha1/namespaces/ns/goals";
    const PLUGINS: &str = "/apis/wellbeing.dev/v1alpha1/namespaces/ns/plugins";

    #[test]
    fn coverage_by_pillar_name_or_keyword() {
        let g = goal("water", "hydration");
        let by_pillar = plugin("weather", &[]); // triggers.pillars: hydration
        let mut by_name = plugin("tracker", &[]);
        by_name.spec.triggers = Default::default();
        by_name.spec.triggers.goals = vec!["water".into()];
        let mut unrelated = plugin("sleepy", &[]);
        unrelated.spec.triggers = Default::default();
        unrelated.spec.triggers.pillars = vec!["sleep".into()];
        let mut leaving = plugin("gone", &[]);
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(covered_by(&g, &[unrelated.clone(), by_pillar, by_name, leaving]), ["tracker", "weather"]);

        let view = decide(&g, &[unrelated], at("2026-05-04T10:00:00Z"));
        assert!(view.covered_by.is_empty());
        let c = find(&view.conditions, types::UNCOVERED).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", reasons::NO_MATCHING_PLUGIN));
        assert_eq!(c.observed_generation, Some(2));
    }

    #[tokio::test]
    async fn plugins_that_cannot_be_listed_fail_ready_with_one_event() {
        let g = goal("water", "hydration");
        let refusal = "plugins.wellbeing.dev is forbidden: User \"system:serviceaccount:wellbeing:wellbeing-operator\" \
                       cannot list resource \"plugins\" in API group \"wellbeing.dev\" in the namespace \"ns\"";
        let routes = |g: &Goal| {
            Routes::new().on(Method::GET, PLUGINS, move |_| api_error(403, "Forbidden", refusal)).on(
                Method::PATCH,
                GOALS,
                with_status(to_json(g)),
            )
        };
        let f = fixture(
            OperatorConfig::default(),
            FakeStore::default(),
            at("2026-05-04T10:00:00Z"),
            routes(&g).into_responder(),
        );
        let error = reconcile(Arc::new(g.clone()), f.ctx.clone()).await.unwrap_err();
        assert!(matches!(&error, Error::Kube { action: "list", .. }), "{error:?}");
        let status = f.find(Method::PATCH, "/status")[0].body["status"].clone();
        let mut keys: Vec<&str> = status.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["conditions", "coveredBy", "observedGeneration"], "progress stays the assistant's");
        assert_eq!(status["observedGeneration"], 2);
        let ready = &status["conditions"][0];
        assert_eq!(
            (&ready["type"], &ready["status"], &ready["reason"]),
            (&json!("Ready"), &json!("False"), &json!("Forbidden"))
        );
        assert_eq!(ready["message"], format!("failed to list Plugins in ns: {refusal}"));
        let events = f.find(Method::POST, "/events");
        assert_eq!(events.len(), 1, "{:?}", f.lines());
        assert_eq!((&events[0].body["type"], &events[0].body["reason"]), (&json!("Warning"), &json!("Forbidden")));

        let mut again = g;
        again.status = Some(serde_json::from_value(status).unwrap());
        let f = fixture(
            OperatorConfig::default(),
            FakeStore::default(),
            at("2026-05-04T10:00:05Z"),
            routes(&again).into_responder(),
        );
        reconcile(Arc::new(again), f.ctx.clone()).await.unwrap_err();
        assert_eq!(f.lines(), [format!("GET {PLUGINS}")], "the same failure writes nothing");
    }

    #[tokio::test]
    async fn status_names_only_operator_fields_and_is_written_once() {
        let mut g = goal("water", "hydration");
        // The assistant's progress is on the object; the operator must not send it back.
        g.status = Some(wellbeing_crds::GoalStatus {
            progress: Some(wellbeing_crds::goal::GoalProgress {
                current: 3,
                target: 8,
                summary: "3/8".into(),
                period_start: "2026-05-04".into(),
                period_end: "2026-05-04".into(),
                on_track: false,
                streak: 0,
            }),
            ..Default::default()
        });
        let plugins = vec![to_json(&plugin("weather", &[]))];
        let stored = to_json(&g);
        let routes = Routes::new().on(Method::GET, PLUGINS, move |_| list(plugins.clone())).on(
            Method::PATCH,
            GOALS,
            with_status(stored),
        );
        let f = fixture(
            OperatorConfig::default(),
            FakeStore::default(),
            at("2026-05-04T10:00:00Z"),
            routes.into_responder(),
        );
        reconcile(Arc::new(g.clone()), f.ctx.clone()).await.unwrap();

        let patch = &f.find(Method::PATCH, "/status")[0];
        assert_eq!(patch.path(), format!("{GOALS}/water/status"));
        assert!(patch.query().contains("fieldManager=wellbeing-operator"));
        let status = patch.body["status"].as_object().unwrap();
        let mut keys: Vec<&str> = status.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["conditions", "coveredBy", "observedGeneration"], "progress stays the assistant's");
        assert_eq!(status["coveredBy"], serde_json::json!(["weather"]));

        // Same goal with the written status: nothing to write.
        let view = decide(&g, &[plugin("weather", &[])], at("2026-05-04T10:00:00Z"));
        let mut again = g.clone();
        let s = again.status.as_mut().unwrap();
        s.covered_by = view.covered_by.clone();
        s.conditions = view.conditions.clone();
        s.observed_generation = view.observed_generation;
        let plugins = vec![to_json(&plugin("weather", &[]))];
        let routes = Routes::new().on(Method::GET, PLUGINS, move |_| list(plugins.clone()));
        let f = fixture(
            OperatorConfig::default(),
            FakeStore::default(),
            at("2026-05-05T10:00:00Z"),
            routes.into_responder(),
        );
        reconcile(Arc::new(again), f.ctx.clone()).await.unwrap();
        assert_eq!(f.lines(), [format!("GET {PLUGINS}")]);
    }
}
