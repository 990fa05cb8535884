//! Persona desired state (pure): the day's check-in plan, its CronJobs, and the status.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use k8s_openapi::{
    api::{
        batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec},
        core::v1::{
            Container, EnvVar, PodSpec, PodTemplateSpec, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume,
            VolumeMount, VolumeProjection,
        },
    },
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{Resource, ResourceExt, api::ObjectMeta};
use wellbeing_crds::{
    Persona, PersonaStatus,
    conditions::{Desired, merge, reasons, types},
    schedule::{self, ScheduleError},
};

use crate::{
    config::OperatorConfig,
    names::{LABEL_NAME, LABEL_PERSONA, LABEL_SLOT, child_name, common_labels, truncate_label},
    security::{container_security, pod_security},
};

/// CronJob names must leave room for the 11 characters the controller appends to Job names.
const CRONJOB_NAME_MAX: usize = 52;

/// A check-in missed by more than this (controller down, node pressure) is skipped rather than
/// sent late: a "how are you?" hours after its time is worse than none.
pub const STARTING_DEADLINE_SECONDS: i64 = 300;

/// The Job only posts one prompt to the assistant; a few minutes is plenty, retries included.
const JOB_ACTIVE_DEADLINE_SECONDS: i64 = 300;
const JOB_BACKOFF_LIMIT: i32 = 2;
/// Finished Jobs linger a day for `kubectl logs`, then go.
const JOB_TTL_SECONDS: i32 = 86_400;

/// Projected token: the minimum lifetime the kubelet accepts; it is refreshed automatically.
const TOKEN_EXPIRATION_SECONDS: i64 = 600;
pub const TOKEN_DIR: &str = "/var/run/secrets/wellbeing.dev";
pub const TOKEN_FILE: &str = "token";

/// Annotations recording which draw a CronJob carries.
pub const ANNOTATION_SCHEDULE_DATE: &str = "wellbeing.dev/schedule-date";
pub const ANNOTATION_CHECKIN_TIME: &str = "wellbeing.dev/check-in-time";

/// The check-ins of one local day.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub time_zone: Tz,
    /// The local date the plan is for.
    pub date: NaiveDate,
    /// Today's times; empty on a quiet day.
    pub times: Vec<DateTime<Tz>>,
    /// The times the CronJobs carry: today's, or on a quiet day the next active day's (suspended
    /// until then, so `kubectl get cronjobs` shows what comes next).
    pub cron_times: Vec<DateTime<Tz>>,
    pub suspended: bool,
}

/// Draw the plan for the local date at `now`. A quiet day keeps its CronJobs, suspended, with
/// the times of the next day that is not quiet (the same draw that day will make again, since
/// it is seeded by uid and date).
pub fn plan(persona: &Persona, now: DateTime<Utc>) -> Result<Plan, ScheduleError> {
    let spec = &persona.spec.check_ins;
    let tz = schedule::validate(spec)?;
    let seed = persona.uid().unwrap_or_default();
    let date = schedule::local_date(tz, now);
    let times = schedule::draw(spec, &seed, date)?;
    if !times.is_empty() {
        return Ok(Plan { time_zone: tz, date, cron_times: times.clone(), times, suspended: false });
    }
    let cron_times = next_active_day(spec, &seed, date)?;
    Ok(Plan { time_zone: tz, date, times, cron_times, suspended: true })
}

/// The draw of the first day after `date` (within a week) that has check-ins; empty when none does.
fn next_active_day(
    spec: &wellbeing_crds::persona::CheckInSchedule,
    seed: &str,
    date: NaiveDate,
) -> Result<Vec<DateTime<Tz>>, ScheduleError> {
    for d in date.iter_days().skip(1).take(7) {
        let times = schedule::draw(spec, seed, d)?;
        if !times.is_empty() {
            return Ok(times);
        }
    }
    Ok(Vec::new())
}

/// Name of slot `i`'s CronJob.
pub fn cronjob_name(persona: &str, slot: usize) -> String {
    child_name(persona, &format!("checkin-{slot}"), CRONJOB_NAME_MAX)
}

/// Selector for every CronJob of a persona (to find the ones a lower `perDay` left behind).
pub fn cronjob_selector(persona: &str) -> String {
    format!("{LABEL_PERSONA}={}", truncate_label(persona))
}

/// One CronJob per check-in slot of the day. Empty when there is nothing to schedule.
pub fn desired_cronjobs(persona: &Persona, plan: &Plan, config: &OperatorConfig) -> Vec<CronJob> {
    let name = persona.name_any();
    plan.cron_times.iter().enumerate().map(|(slot, t)| cronjob(persona, &name, slot, t, plan, config)).collect()
}

fn cronjob(
    persona: &Persona,
    name: &str,
    slot: usize,
    t: &DateTime<Tz>,
    plan: &Plan,
    config: &OperatorConfig,
) -> CronJob {
    let mut labels = common_labels("checkin", name);
    labels.insert(LABEL_NAME.into(), "wellbeing-checkin".into());
    labels.insert(LABEL_PERSONA.into(), truncate_label(name));
    labels.insert(LABEL_SLOT.into(), slot.to_string());
    let annotations = BTreeMap::from([
        (ANNOTATION_SCHEDULE_DATE.to_string(), plan.date.to_string()),
        (ANNOTATION_CHECKIN_TIME.to_string(), t.to_rfc3339()),
    ]);
    let container = Container {
        name: "checkin".into(),
        image: Some(config.image.clone()),
        command: Some(vec!["wellbeing".into()]),
        args: Some(vec!["checkin".into(), "trigger".into(), "--persona".into(), name.to_string()]),
        env: Some(vec![
            env("WELLBEING_URL", &config.assistant_url),
            env("WELLBEING_TOKEN_FILE", &format!("{TOKEN_DIR}/{TOKEN_FILE}")),
            env("WELLBEING_CHECKIN_SLOT", &slot.to_string()),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: "assistant-token".into(),
            mount_path: TOKEN_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        }]),
        security_context: Some(container_security()),
        resources: Some(crate::security::resources("10m", "32Mi", "200m", "128Mi")),
        ..Default::default()
    };
    let pod = PodSpec {
        restart_policy: Some("Never".into()),
        service_account_name: config.checkin_service_account.clone(),
        // Only the projected token below, with the assistant's audience, is mounted: the Job
        // needs no access to the Kubernetes API.
        automount_service_account_token: Some(false),
        security_context: Some(pod_security()),
        containers: vec![container],
        volumes: Some(vec![Volume {
            name: "assistant-token".into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(config.checkin_token_audience.clone()),
                        expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
                        path: TOKEN_FILE.into(),
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    CronJob {
        metadata: ObjectMeta {
            name: Some(cronjob_name(name, slot)),
            namespace: persona.namespace(),
            labels: Some(labels.clone()),
            annotations: Some(annotations),
            owner_references: persona.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: Some(CronJobSpec {
            schedule: schedule::cron_expression(t),
            time_zone: Some(plan.time_zone.name().to_string()),
            concurrency_policy: Some("Forbid".into()),
            starting_deadline_seconds: Some(STARTING_DEADLINE_SECONDS),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(3),
            suspend: Some(plan.suspended),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels.clone()), ..Default::default() }),
                spec: Some(JobSpec {
                    backoff_limit: Some(JOB_BACKOFF_LIMIT),
                    active_deadline_seconds: Some(JOB_ACTIVE_DEADLINE_SECONDS),
                    ttl_seconds_after_finished: Some(JOB_TTL_SECONDS),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                        spec: Some(pod),
                    },
                    ..Default::default()
                }),
            },
        }),
        status: None,
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), value_from: None }
}

/// What the reconcile found about the other Personas of the namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    /// Names of the other active Personas (not being deleted), sorted.
    pub other_active: Vec<String>,
}

impl Peers {
    pub fn from_list(me: &Persona, all: &[Persona]) -> Self {
        let mut other_active: Vec<String> = all
            .iter()
            .filter(|p| p.spec.active && p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.name_any() != me.name_any())
            .map(|p| p.name_any())
            .collect();
        other_active.sort();
        Peers { other_active }
    }
}

/// The outcome of deciding a Persona: CronJobs to have, and the status to show.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub cronjobs: Vec<CronJob>,
    pub status: PersonaStatus,
    /// When to look again: the next check-in of today (it then leaves `nextCheckIns`), else the
    /// next local midnight (a new draw), when the zone is known.
    pub wake_at: Option<DateTime<Utc>>,
}

/// Decide everything about one Persona. Pure: `now` and the peer list are inputs.
pub fn decide(persona: &Persona, peers: &Peers, now: DateTime<Utc>, config: &OperatorConfig) -> Decision {
    let old = persona.status.clone().unwrap_or_default();
    let generation = persona.metadata.generation;
    let name = persona.name_any();
    let plan = plan(persona, now);
    let conflict = persona.spec.active && !peers.other_active.is_empty();

    let schedule_cond = match &plan {
        Ok(_) => Desired::new(types::SCHEDULE_INVALID, false, reasons::SCHEDULE_VALID, "check-in settings can be met"),
        Err(e) => Desired::new(types::SCHEDULE_INVALID, true, reasons::SCHEDULE_INVALID, e.to_string()),
    };
    let conflict_cond = if conflict {
        let mut all = peers.other_active.clone();
        all.push(name.clone());
        all.sort();
        Desired::new(
            types::CONFLICT,
            true,
            reasons::MULTIPLE_ACTIVE,
            format!(
                "Personas {} are all active; set spec.active to false on all but one. None of them gets check-ins until then",
                all.join(", ")
            ),
        )
    } else {
        Desired::new(types::CONFLICT, false, reasons::NO_CONFLICT, "no other active Persona in the namespace")
    };

    let scheduling = persona.spec.active && !conflict;
    let (cronjobs, times, ready) = match (&plan, scheduling) {
        (Err(e), _) => (vec![], vec![], Desired::new(types::READY, false, reasons::SCHEDULE_INVALID, e.to_string())),
        (Ok(_), false) if conflict => (
            vec![],
            vec![],
            Desired::new(
                types::READY,
                false,
                reasons::MULTIPLE_ACTIVE,
                "another active Persona exists in the namespace",
            ),
        ),
        (Ok(_), false) => (
            vec![],
            vec![],
            Desired::new(types::READY, true, reasons::INACTIVE, "not active: no check-ins are scheduled"),
        ),
        (Ok(p), true) => {
            let message = if p.suspended {
                format!("{} is a quiet day: check-ins are suspended until the next active day", p.date)
            } else {
                format!("{} check-ins scheduled for {}", p.times.len(), p.date)
            };
            (
                desired_cronjobs(persona, p, config),
                p.times.clone(),
                Desired::new(types::READY, true, reasons::SCHEDULED, message),
            )
        }
    };

    // Only what is still to come: a time of today that has passed is not a "next" check-in.
    let upcoming: Vec<_> = times.iter().filter(|t| t.with_timezone(&Utc) > now).collect();
    let next_check_in = match (upcoming.first(), &plan, scheduling) {
        (Some(t), _, _) => Some(t.to_rfc3339()),
        // Today's are over (or today is quiet): the first of the next active day's draw.
        (None, Ok(p), true) => next_active_day(&persona.spec.check_ins, &persona.uid().unwrap_or_default(), p.date)
            .ok()
            .and_then(|t| t.into_iter().next())
            .map(|t| t.to_rfc3339()),
        _ => None,
    };
    let now_time = wellbeing_crds::conditions::time_from_chrono(now);
    let conditions = merge(&old.conditions, &[ready, schedule_cond, conflict_cond], generation, now_time);
    let status = PersonaStatus {
        conditions,
        next_check_ins: upcoming.iter().map(|t| t.to_rfc3339()).collect(),
        next_check_in,
        check_ins_today: times.len() as i32,
        schedule_date: plan.as_ref().ok().map(|p| p.date.to_string()),
        version: Some(persona.version()),
        observed_generation: generation,
    };
    let midnight = plan
        .as_ref()
        .ok()
        .map(|p| p.time_zone)
        .or_else(|| schedule::time_zone(&persona.spec.check_ins.time_zone).ok())
        .map(|tz| schedule::next_local_midnight(tz, now));
    // Look again when the next check-in passes (so the status drops it) or at midnight to redraw.
    let wake_at = match (upcoming.first(), midnight) {
        (Some(t), Some(m)) => Some(t.with_timezone(&Utc).min(m)),
        (_, m) => m,
    };
    Decision { cronjobs, status, wake_at }
}

/// The status after a failed reconcile: `Ready=False` with the failure. With the `decided` status
/// (the CronJobs failed) its other conditions stand, but no check-in is announced: which of the
/// CronJobs carry today's times is not known. Without one (the peers could not be listed) the
/// previous status stays, with the failure.
pub fn failed_status(
    persona: &Persona,
    decided: Option<&PersonaStatus>,
    failure: &crate::failure::ChildFailure,
    now: DateTime<Utc>,
) -> PersonaStatus {
    let old = persona.status.clone().unwrap_or_default();
    let generation = persona.metadata.generation;
    let now = wellbeing_crds::conditions::time_from_chrono(now);
    let decided_conditions = decided.map(|d| d.conditions.as_slice()).unwrap_or_default();
    let conditions = crate::failure::conditions(&old.conditions, decided_conditions, failure, generation, now);
    match decided {
        Some(d) => PersonaStatus { conditions, next_check_ins: vec![], next_check_in: None, ..d.clone() },
        None => PersonaStatus { conditions, version: Some(persona.version()), observed_generation: generation, ..old },
    }
}

/// Whether the status must be written: anything but condition timestamps differs.
pub fn status_changed(old: Option<&PersonaStatus>, new: &PersonaStatus) -> bool {
    let Some(old) = old else { return true };
    let PersonaStatus {
        conditions,
        next_check_ins,
        next_check_in,
        check_ins_today,
        schedule_date,
        version,
        observed_generation,
    } = new;
    wellbeing_crds::conditions::differ_ignoring_time(&old.conditions, conditions)
        || &old.next_check_ins != next_check_ins
        || &old.next_check_in != next_check_in
        || &old.check_ins_today != check_ins_today
        || &old.schedule_date != schedule_date
        || &old.version != version
        || &old.observed_generation != observed_generation
}

/// The status apply body: only the fields this operator owns.
pub fn status_patch(status: &PersonaStatus) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": Persona::api_version(&()),
        "kind": Persona::kind(&()),
        "status": status,
    })
}

/// Condition list of a status, or empty.
pub fn conditions_of(status: Option<&PersonaStatus>) -> &[Condition] {
    status.map(|s| s.conditions.as_slice()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{at, persona};
    use wellbeing_crds::conditions::{find, is_true};

    fn config() -> OperatorConfig {
        OperatorConfig {
            image: "registry.example/wellbeing:1.2.3".into(),
            assistant_url: "http://wellbeing-assistant.wellbeing.svc:8080".into(),
            checkin_service_account: Some("wellbeing-checkin".into()),
            ..Default::default()
        }
    }

    const NOON_BERLIN: &str = "2026-05-04T10:00:00Z"; // a Monday, 12:00 in Berlin

    #[test]
    fn one_cronjob_per_slot_with_the_drawn_times() {
        let p = persona("sunny", true, 3, "Europe/Berlin");
        let d = decide(&p, &Peers::default(), at(NOON_BERLIN), &config());
        let expected = schedule::draw(&p.spec.check_ins, "uid-sunny", "2026-05-04".parse().unwrap()).unwrap();
        assert_eq!(d.cronjobs.len(), 3);
        for (i, (cj, t)) in d.cronjobs.iter().zip(&expected).enumerate() {
            assert_eq!(cj.metadata.name.as_deref(), Some(format!("sunny-checkin-{i}").as_str()));
            assert_eq!(cj.spec.as_ref().unwrap().schedule, schedule::cron_expression(t));
        }
        let upcoming: Vec<String> =
            expected.iter().filter(|t| t.with_timezone(&Utc) > at(NOON_BERLIN)).map(|t| t.to_rfc3339()).collect();
        assert_eq!(d.status.next_check_ins, upcoming);
        assert_eq!(d.status.check_ins_today, 3);
        assert_eq!(d.status.next_check_in, upcoming.first().cloned());
        assert_eq!(d.status.schedule_date.as_deref(), Some("2026-05-04"));
        assert_eq!(d.status.version, Some(p.version()));
        assert!(is_true(&d.status.conditions, types::READY));
        assert!(!is_true(&d.status.conditions, types::CONFLICT));
        assert_eq!(find(&d.status.conditions, types::READY).unwrap().observed_generation, Some(1));
        // Awake when the next check-in passes, else right after midnight in Berlin (22:00 UTC in
        // summer time) for the next draw.
        let midnight = at("2026-05-04T22:00:00Z");
        let first_upcoming = expected.iter().map(|t| t.with_timezone(&Utc)).find(|t| *t > at(NOON_BERLIN));
        assert_eq!(d.wake_at, Some(first_upcoming.map_or(midnight, |t| t.min(midnight))));
    }

    #[test]
    fn cronjob_yaml_has_the_required_fields() {
        let p = persona("sunny", true, 1, "Europe/Berlin");
        let d = decide(&p, &Peers::default(), at(NOON_BERLIN), &config());
        let yaml: serde_yaml::Value = serde_yaml::from_str(&serde_yaml::to_string(&d.cronjobs[0]).unwrap()).unwrap();
        let spec = &yaml["spec"];
        assert_eq!(spec["timeZone"], "Europe/Berlin");
        assert_eq!(spec["concurrencyPolicy"], "Forbid");
        assert_eq!(spec["startingDeadlineSeconds"], 300);
        assert_eq!(spec["successfulJobsHistoryLimit"], 1);
        assert_eq!(spec["failedJobsHistoryLimit"], 3);
        assert_eq!(spec["suspend"], false);
        let owner = &yaml["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "Persona");
        assert_eq!(owner["uid"], "uid-sunny");
        assert_eq!(owner["controller"], true);
        assert_eq!(yaml["metadata"]["labels"]["wellbeing.dev/persona"], "sunny");
        assert_eq!(yaml["metadata"]["labels"]["app.kubernetes.io/managed-by"], "wellbeing-operator");
        let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["serviceAccountName"], "wellbeing-checkin");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "registry.example/wellbeing:1.2.3");
        let cmd: Vec<&str> = c["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .chain(c["args"].as_sequence().unwrap())
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(cmd, ["wellbeing", "checkin", "trigger", "--persona", "sunny"]);
        let env = c["env"].as_sequence().unwrap();
        let url = env.iter().find(|e| e["name"] == "WELLBEING_URL").unwrap();
        assert_eq!(url["value"], "http://wellbeing-assistant.wellbeing.svc:8080");
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["capabilities"]["drop"][0], "ALL");
        let token = &pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(token["audience"], "wellbeing-assistant");
        assert_eq!(token["path"], "token");
        assert_eq!(c["volumeMounts"][0]["mountPath"], TOKEN_DIR);
    }

    #[test]
    fn lowering_per_day_lowers_the_cronjob_count() {
        let p = persona("sunny", true, 5, "Europe/Berlin");
        assert_eq!(decide(&p, &Peers::default(), at(NOON_BERLIN), &config()).cronjobs.len(), 5);
        let p = persona("sunny", true, 2, "Europe/Berlin");
        let names: Vec<String> = decide(&p, &Peers::default(), at(NOON_BERLIN), &config())
            .cronjobs
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["sunny-checkin-0", "sunny-checkin-1"]);
    }

    #[test]
    fn restart_on_the_same_day_keeps_the_times_and_midnight_redraws() {
        let p = persona("sunny", true, 3, "Europe/Berlin");
        let morning = decide(&p, &Peers::default(), at("2026-05-04T06:00:00Z"), &config());
        let evening = decide(&p, &Peers::default(), at("2026-05-04T21:59:00Z"), &config());
        let schedules = |d: &Decision| -> Vec<String> {
            d.cronjobs.iter().map(|c| c.spec.as_ref().unwrap().schedule.clone()).collect()
        };
        assert_eq!(schedules(&morning), schedules(&evening));
        assert_eq!(morning.status.check_ins_today, 3);
        assert_eq!(morning.status.next_check_ins.len(), 3);
        // Late in the evening today's are over: nothing listed for today, the next is tomorrow's.
        assert!(evening.status.next_check_ins.is_empty());
        let next_day = decide(&p, &Peers::default(), at("2026-05-04T22:00:30Z"), &config());
        assert_eq!(next_day.status.schedule_date.as_deref(), Some("2026-05-05"));
        assert_ne!(schedules(&morning), schedules(&next_day));
        assert_eq!(evening.status.next_check_in, next_day.status.next_check_ins.first().cloned());
        assert!(evening.status.next_check_in.as_deref().unwrap().starts_with("2026-05-05T"));
    }

    #[test]
    fn quiet_day_suspends_with_the_next_days_times() {
        let mut p = persona("sunny", true, 2, "UTC");
        p.spec.check_ins.quiet_days = vec![wellbeing_crds::persona::Weekday::Sunday];
        let d = decide(&p, &Peers::default(), at("2026-05-03T12:00:00Z"), &config()); // a Sunday
        assert!(d.status.next_check_ins.is_empty());
        assert_eq!(d.cronjobs.len(), 2);
        assert!(d.cronjobs.iter().all(|c| c.spec.as_ref().unwrap().suspend == Some(true)));
        let monday = schedule::draw(&p.spec.check_ins, "uid-sunny", "2026-05-04".parse().unwrap()).unwrap();
        assert_eq!(d.cronjobs[0].spec.as_ref().unwrap().schedule, schedule::cron_expression(&monday[0]));
        assert!(find(&d.status.conditions, types::READY).unwrap().message.contains("quiet day"));
    }

    #[test]
    fn impossible_schedule_is_a_condition_and_no_cronjob() {
        let mut p = persona("sunny", true, 3, "Europe/Berlin");
        p.spec.check_ins.windows[0].end = "10:00".into();
        let d = decide(&p, &Peers::default(), at(NOON_BERLIN), &config());
        assert!(d.cronjobs.is_empty());
        let c = find(&d.status.conditions, types::SCHEDULE_INVALID).unwrap();
        assert_eq!(c.status, "True");
        assert!(c.message.contains("lower perDay"), "{}", c.message);
        assert!(!is_true(&d.status.conditions, types::READY));

        let mut bad_zone = persona("sunny", true, 1, "Mars/Olympus");
        bad_zone.spec.check_ins.per_day = 1;
        let d = decide(&bad_zone, &Peers::default(), at(NOON_BERLIN), &config());
        assert!(d.cronjobs.is_empty());
        assert_eq!(d.wake_at, None);
        assert!(find(&d.status.conditions, types::SCHEDULE_INVALID).unwrap().message.contains("Mars/Olympus"));
    }

    #[test]
    fn conflict_and_inactive_have_no_cronjobs() {
        let p = persona("sunny", true, 3, "Europe/Berlin");
        let peers = Peers { other_active: vec!["stormy".into()] };
        let d = decide(&p, &peers, at(NOON_BERLIN), &config());
        assert!(d.cronjobs.is_empty());
        assert!(d.status.next_check_ins.is_empty());
        let c = find(&d.status.conditions, types::CONFLICT).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", reasons::MULTIPLE_ACTIVE));
        assert!(c.message.contains("stormy, sunny"));

        let inactive = persona("calm", false, 3, "Europe/Berlin");
        let d = decide(&inactive, &peers, at(NOON_BERLIN), &config());
        assert!(d.cronjobs.is_empty());
        assert!(!is_true(&d.status.conditions, types::CONFLICT), "an inactive persona conflicts with nobody");
        assert_eq!(find(&d.status.conditions, types::READY).unwrap().reason, reasons::INACTIVE);
    }

    #[test]
    fn peers_ignore_inactive_deleted_and_self() {
        let me = persona("sunny", true, 3, "UTC");
        let other = persona("stormy", true, 3, "UTC");
        let off = persona("calm", false, 3, "UTC");
        let mut leaving = persona("gone", true, 3, "UTC");
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        let peers = Peers::from_list(&me, &[me.clone(), other, off, leaving]);
        assert_eq!(peers.other_active, ["stormy"]);
    }

    #[test]
    fn a_failure_keeps_the_decided_conditions_and_announces_nothing() {
        let p = persona("sunny", true, 3, "Europe/Berlin");
        let d = decide(&p, &Peers::default(), at(NOON_BERLIN), &config());
        let failure = crate::failure::ChildFailure {
            reason: reasons::FORBIDDEN,
            message: "failed to apply CronJob sunny-checkin-0: no".into(),
        };
        let failed = failed_status(&p, Some(&d.status), &failure, at(NOON_BERLIN));
        assert!(failed.next_check_ins.is_empty() && failed.next_check_in.is_none());
        assert_eq!(failed.observed_generation, Some(1));
        assert_eq!(find(&failed.conditions, types::READY).unwrap().reason, reasons::FORBIDDEN);
        assert!(find(&failed.conditions, types::CONFLICT).is_some());
        assert!(status_changed(None, &failed));

        // The peers could not be listed: the last status stays, with the failure.
        let mut scheduled = p.clone();
        scheduled.status = Some(d.status.clone());
        let failed = failed_status(&scheduled, None, &failure, at(NOON_BERLIN));
        assert_eq!(failed.next_check_ins, d.status.next_check_ins, "the CronJobs were not touched");
        assert!(!is_true(&failed.conditions, types::READY));
        assert_eq!(failed.conditions.len(), d.status.conditions.len());
    }

    #[test]
    fn unchanged_status_is_not_changed_even_later_in_the_day() {
        let mut p = persona("sunny", true, 3, "Europe/Berlin");
        let first = decide(&p, &Peers::default(), at(NOON_BERLIN), &config());
        p.status = Some(first.status.clone());
        let next = first.wake_at.unwrap();
        let second = decide(&p, &Peers::default(), next - chrono::Duration::seconds(30), &config());
        assert!(!status_changed(p.status.as_ref(), &second.status));
        assert!(status_changed(None, &second.status));
        // Once the next check-in has passed, it leaves the list: one write per check-in.
        let after = decide(&p, &Peers::default(), next + chrono::Duration::seconds(1), &config());
        assert!(status_changed(p.status.as_ref(), &after.status));
        assert_eq!(after.status.next_check_ins.len(), first.status.next_check_ins.len() - 1);
    }
}
