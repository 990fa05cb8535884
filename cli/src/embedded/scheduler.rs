//! The in-process scheduler of `wellbeing up`: what the operator's CronJobs do in a cluster.
//!
//! Pure planning ([`checkin_jobs`], [`plan`]) decides what is due; a thin loop ([`run`]) sleeps
//! until the next job, hands due jobs to a [`JobRunner`] and re-plans when the manifests change.
//! Jobs are a closed enum ([`JobKind`]) so reminders and weekly insights become more variants with
//! their own planning function, sharing the due/missed/grace rules below.
//!
//! Restarts: every job that ran, was skipped or was missed is recorded in `scheduler_runs`
//! ([`JobLog`], the same record the service's goals loop keeps), and a restarted scheduler starts
//! from it, so a job is never run twice. A job whose time passed while the process was down is
//! recorded as missed unless it is still inside [`GRACE`]. The runner also records each send under
//! its own unique key (check-ins: the `(user_id, slot)` index of `checkin_prompts`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound as _, NaiveDate, Utc};
use kube::ResourceExt as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, info_span, warn};
use wellbeing_crds::Persona;
use wellbeing_crds::schedule::{self, ScheduleError};

use wellbeing_webhook::job_log::{self, JobLog, JobOutcome};
use wellbeing_webhook::nudges::error_chain;

use super::manifests::{DEFAULT_NAMESPACE, ManifestSet};

/// How late a job may still run. Long enough to survive a quick restart or a laptop waking from a
/// short sleep; short enough that a check-in never arrives long after its moment (a batch of stale
/// prompts after a night with the lid closed is exactly what must not happen).
pub const GRACE: Duration = Duration::minutes(10);

/// Longest sleep between two plans, so a wall-clock jump (suspend, NTP step) is noticed soon.
pub const MAX_SLEEP: Duration = Duration::minutes(5);

/// Wait before retrying a job whose runner failed (still only inside the grace period).
pub const RETRY_AFTER: Duration = Duration::seconds(30);

/// The seed of a persona's draw: its uid, as in the cluster. The manifests folder gives every
/// object a stable uid derived from kind, namespace and name (see `manifests::build_set`), so the
/// same persona draws the same times here, in `/internal/checkins`, and across restarts.
pub fn embedded_seed(persona: &Persona) -> String {
    let namespace = persona.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
    match persona.metadata.uid.as_deref() {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => format!("embedded:persona/{namespace}/{}", persona.name_any()),
    }
}

/// One thing to do at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub due: DateTime<Utc>,
    pub kind: JobKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Ask the user how they are doing, in the persona's voice.
    CheckIn {
        /// `namespace/name` of the persona.
        persona: String,
        /// The drawn slot (equal to `due`); recorded with the prompt as its idempotency key.
        slot: DateTime<Utc>,
        /// Position of the slot in its day (0-based): picks the prompt text.
        index: usize,
    },
    /// The goals and weekly-insight ticks (nudges, reminders, pillar and follow-through questions,
    /// the Sunday insight), once a minute. What is due is decided by the goals rules, which keep
    /// their own grace period and record every send (see `embedded::jobs`).
    Goals { minute: DateTime<Utc> },
}

impl Job {
    /// Unique name of the job, for the in-memory "already handled" set and logs.
    pub fn key(&self) -> String {
        match &self.kind {
            JobKind::CheckIn { persona, slot, .. } => job_log::checkin_key(persona, *slot),
            JobKind::Goals { minute } => job_log::goals_key(*minute),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            JobKind::CheckIn { .. } => "checkin",
            JobKind::Goals { .. } => "goals",
        }
    }
}

/// The goals job of the minute containing `now`.
pub fn goals_job(now: DateTime<Utc>) -> Job {
    let minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    Job { due: minute, kind: JobKind::Goals { minute } }
}

/// The check-in jobs of the local dates that can still matter at `now`: today's and, while inside
/// the grace period after local midnight, yesterday's.
pub fn checkin_jobs(persona: &Persona, now: DateTime<Utc>) -> Result<Vec<Job>, ScheduleError> {
    let tz = schedule::validate(&persona.spec.check_ins)?;
    let seed = embedded_seed(persona);
    let id = format!("{}/{}", persona.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE), persona.name_any());
    let mut dates: Vec<NaiveDate> = vec![schedule::local_date(tz, now - GRACE), schedule::local_date(tz, now)];
    dates.dedup();
    let mut jobs = Vec::new();
    for date in dates {
        for (index, t) in schedule::draw(&persona.spec.check_ins, &seed, date)?.into_iter().enumerate() {
            let slot = t.with_timezone(&Utc);
            jobs.push(Job { due: slot, kind: JobKind::CheckIn { persona: id.clone(), slot, index } });
        }
    }
    Ok(jobs)
}

/// What to do with jobs at one moment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Due and still inside the grace period.
    pub fire: Vec<Job>,
    /// Due too long ago (the process was down or asleep): dropped, never delivered late.
    pub skip: Vec<Job>,
    /// When the earliest future job is due.
    pub next_due: Option<DateTime<Utc>>,
}

/// Sort jobs into fire / skip / later. `handled` holds the keys already fired or skipped by this
/// process; they are left alone.
pub fn plan(jobs: Vec<Job>, now: DateTime<Utc>, handled: &BTreeMap<String, DateTime<Utc>>) -> Plan {
    let mut out = Plan::default();
    for job in jobs {
        if handled.contains_key(&job.key()) {
            continue;
        }
        if job.due > now {
            out.next_due = Some(out.next_due.map_or(job.due, |d| d.min(job.due)));
        } else if now - job.due <= GRACE {
            out.fire.push(job);
        } else {
            out.skip.push(job);
        }
    }
    out.fire.sort_by_key(|j| j.due);
    // Several check-ins inside the grace period at once (possible only with tiny gaps): send the
    // newest, skip the rest, so the user never gets a burst. Goals jobs keep their own rules.
    let (mut checkins, others): (Vec<Job>, Vec<Job>) =
        out.fire.drain(..).partition(|j| matches!(j.kind, JobKind::CheckIn { .. }));
    if checkins.len() > 1 {
        let newest = checkins.pop().expect("len > 1");
        out.skip.append(&mut checkins);
        checkins.push(newest);
    }
    out.fire = checkins.into_iter().chain(others).collect();
    out.fire.sort_by_key(|j| j.due);
    out
}

/// What a runner reports for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// The durable record shows it was sent before (e.g. before a restart): nothing sent now.
    AlreadySent,
    /// Deliberately not sent (paused, quiet day, backing off): done, not retried.
    Skipped,
}

/// Does the work of a job: in `wellbeing up`, records the check-in prompt for the local user and
/// delivers it. Errors are strings because they are only logged (the job is retried while inside
/// its grace period).
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, job: Job, persona: Persona) -> impl Future<Output = Result<Outcome, String>> + Send;

    /// Whether this runner takes [`JobKind::Goals`] jobs (planned once a minute when it does).
    fn runs_goals(&self) -> bool {
        false
    }
}

/// Wall clock, replaceable in tests.
pub type Clock = wellbeing_common::SharedClock;

pub fn system_clock() -> Clock {
    wellbeing_common::clock::system()
}

/// State the loop keeps between plans; with a [`JobLog`], also across restarts.
#[derive(Default)]
pub struct Scheduler {
    handled: BTreeMap<String, DateTime<Utc>>,
    /// Last schedule error per persona, so a bad schedule is logged once, not on every plan.
    last_error: Option<String>,
    log: Option<JobLog>,
}

impl Scheduler {
    /// A scheduler that starts from, and keeps, the persisted record of jobs.
    pub async fn persisted(log: JobLog, now: DateTime<Utc>) -> Scheduler {
        let handled = match log.recorded_since(now - Duration::days(3), now).await {
            Ok(handled) => handled,
            Err(error) => {
                // Still safe: each kind keeps its own unique keys (prompts per slot, sends per
                // message); only a missed job may be logged twice.
                warn!(error = %error_chain(&error), "failed to read the scheduler's record; starting without it");
                BTreeMap::new()
            }
        };
        Scheduler { handled, last_error: None, log: Some(log) }
    }

    /// Remember a finished or missed job, in memory and in the record.
    async fn remember(&mut self, job: &Job, outcome: JobOutcome, now: DateTime<Utc>) {
        self.handled.insert(job.key(), job.due);
        if let Some(log) = &self.log
            && let Err(error) = log.record(&job.key(), job.kind_name(), job.due, outcome, now).await
        {
            warn!(kind = job.kind_name(), error = %error_chain(&error), "failed to record a scheduled job");
        }
    }

    /// One planning step: fire what is due, drop what was missed, and say when to wake next.
    pub async fn tick<R: JobRunner>(
        &mut self,
        runner: &R,
        manifests: &ManifestSet,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let mut wake = now + MAX_SLEEP;
        // Forget keys of jobs older than any date that can still be planned (goals jobs are
        // planned for the current minute only).
        self.handled.retain(|key, due| {
            let keep = if key.starts_with("goals/") { GRACE } else { Duration::days(3) };
            now - *due < keep
        });
        let Some(persona) = manifests.active_persona() else {
            return wake;
        };
        let mut jobs = match checkin_jobs(persona, now) {
            Ok(jobs) => {
                self.last_error = None;
                jobs
            }
            Err(e) => {
                let message = e.to_string();
                if self.last_error.as_deref() != Some(&message) {
                    warn!(persona = %persona.name_any(), error = %message, "check-in schedule cannot be drawn");
                    self.last_error = Some(message);
                }
                // Reminders and the weekly insight keep going: the goals rules skip what a
                // schedule that cannot be drawn makes impossible.
                Vec::new()
            }
        };
        if let Ok(tz) = schedule::time_zone(&persona.spec.check_ins.time_zone) {
            wake = wake.min(schedule::next_local_midnight(tz, now));
        }
        if runner.runs_goals() {
            let job = goals_job(now);
            wake = wake.min(job.due + Duration::minutes(1));
            jobs.push(job);
        }
        let planned = plan(jobs, now, &self.handled);
        for job in planned.skip {
            info!(kind = job.kind_name(), due = %job.due, "missed while not running; skipped");
            self.remember(&job, JobOutcome::Missed, now).await;
        }
        for job in planned.fire {
            let (due, kind) = (job.due, job.kind_name());
            let span = info_span!("job", kind, due = %due);
            match runner.run(job.clone(), persona.clone()).instrument(span).await {
                Ok(outcome) => {
                    debug!(kind, ?outcome, "job done");
                    let outcome = match outcome {
                        Outcome::Sent => JobOutcome::Sent,
                        Outcome::AlreadySent => JobOutcome::AlreadySent,
                        Outcome::Skipped => JobOutcome::Skipped,
                    };
                    self.remember(&job, outcome, now).await;
                }
                Err(error) => {
                    warn!(%error, due = %due, "job failed; retrying while inside the grace period");
                    wake = wake.min(now + RETRY_AFTER);
                }
            }
        }
        if let Some(next) = planned.next_due {
            wake = wake.min(next);
        }
        wake
    }
}

/// Run until `cancel` fires: plan, sleep until the next job (or a manifest change), repeat.
pub async fn run<R: JobRunner>(
    runner: R,
    mut manifests: watch::Receiver<Arc<ManifestSet>>,
    log: JobLog,
    clock: Clock,
    cancel: CancellationToken,
) {
    let mut scheduler = Scheduler::persisted(log, clock.now()).await;
    loop {
        let snapshot = manifests.borrow_and_update().clone();
        let now = clock.now();
        let wake = scheduler.tick(&runner, &snapshot, now).await;
        let sleep = (wake - clock.now()).to_std().unwrap_or_default();
        debug!(wake = %wake, "scheduler sleeping");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
            changed = manifests.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::embedded::manifests::build_set;

    fn persona(windows: &str, per_day: i32, gap: i32) -> ManifestSet {
        let text = format!(
            r#"apiVersion: wellbeing.dev/v1alpha1
kind: Persona
metadata: {{name: coach}}
spec:
  displayName: Sunny
  active: true
  checkIns:
    timeZone: Europe/Berlin
    windows: {windows}
    perDay: {per_day}
    minGapMinutes: {gap}
"#
        );
        let set = build_set(vec![("p.yaml".into(), Ok(text))]);
        assert!(set.errors.is_empty(), "{:?}", set.errors);
        set
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Records jobs like the real runner: a unique key per slot, so a second send is refused.
    #[derive(Default)]
    struct FakeRunner {
        sent: Mutex<Vec<DateTime<Utc>>>,
        durable: Mutex<Vec<DateTime<Utc>>>,
        fail: Mutex<bool>,
    }

    impl JobRunner for Arc<FakeRunner> {
        async fn run(&self, job: Job, _persona: Persona) -> Result<Outcome, String> {
            if *self.fail.lock().unwrap() {
                return Err("slack is down".into());
            }
            let JobKind::CheckIn { slot, .. } = job.kind else { unreachable!("this runner takes no goals jobs") };
            let mut durable = self.durable.lock().unwrap();
            if durable.contains(&slot) {
                return Ok(Outcome::AlreadySent);
            }
            durable.push(slot);
            self.sent.lock().unwrap().push(slot);
            Ok(Outcome::Sent)
        }
    }

    #[test]
    fn seed_is_stable_and_names_namespace_and_name() {
        let set = persona(r#"[{start: "09:00", end: "21:00"}]"#, 3, 90);
        assert_eq!(embedded_seed(&set.personas[0]), "embedded:persona/default/coach");
        let mut no_uid = set.personas[0].clone();
        no_uid.metadata.uid = None;
        assert_eq!(embedded_seed(&no_uid), "embedded:persona/default/coach");
        let mut with_uid = set.personas[0].clone();
        with_uid.metadata.uid = Some("1234".into());
        assert_eq!(embedded_seed(&with_uid), "1234", "a real uid is used as the operator uses it");
    }

    #[test]
    fn jobs_are_the_schedule_functions_times() {
        let set = persona(r#"[{start: "09:00", end: "21:00"}]"#, 3, 90);
        let p = &set.personas[0];
        let now = t("2026-05-04T06:00:00Z"); // 08:00 in Berlin
        let jobs = checkin_jobs(p, now).unwrap();
        let date = "2026-05-04".parse().unwrap();
        let drawn: Vec<_> = schedule::draw(&p.spec.check_ins, "embedded:persona/default/coach", date)
            .unwrap()
            .into_iter()
            .map(|t| t.with_timezone(&Utc))
            .collect();
        assert_eq!(jobs.iter().map(|j| j.due).collect::<Vec<_>>(), drawn);
    }

    #[test]
    fn plan_fires_inside_grace_skips_older_and_waits_for_the_future() {
        let slot = |m: i64| t("2026-05-04T10:00:00Z") + Duration::minutes(m);
        let job =
            |m: i64| Job { due: slot(m), kind: JobKind::CheckIn { persona: "p".into(), slot: slot(m), index: 0 } };
        let now = slot(0);
        let p = plan(vec![job(-11), job(-9), job(30), job(5)], now, &BTreeMap::new());
        assert_eq!(p.fire, vec![job(-9)]);
        assert_eq!(p.skip, vec![job(-11)]);
        assert_eq!(p.next_due, Some(slot(5)));

        let mut handled = BTreeMap::new();
        handled.insert(job(-9).key(), slot(-9));
        let p = plan(vec![job(-9)], now, &handled);
        assert_eq!(p, Plan::default());

        // Two inside the grace period: only the newest goes out, no burst.
        let p = plan(vec![job(-8), job(-2)], now, &BTreeMap::new());
        assert_eq!((p.fire, p.skip), (vec![job(-2)], vec![job(-8)]));
    }

    #[tokio::test]
    async fn a_day_with_a_restart_sends_each_check_in_once_and_never_late() {
        let set = persona(r#"[{start: "09:00", end: "21:00"}]"#, 4, 60);
        let p = &set.personas[0];
        let day = "2026-05-04".parse().unwrap();
        let slots: Vec<_> = schedule::draw(&p.spec.check_ins, &embedded_seed(p), day)
            .unwrap()
            .into_iter()
            .map(|t| t.with_timezone(&Utc))
            .collect();
        let runner = Arc::new(FakeRunner::default());

        // First process: wakes exactly when told, until just after the first slot.
        let mut s = Scheduler::default();
        let mut now = t("2026-05-04T05:00:00Z");
        while now <= slots[0] {
            now = s.tick(&runner, &set, now).await;
        }
        assert_eq!(*runner.sent.lock().unwrap(), vec![slots[0]]);

        // Crash; the process is down over the second slot and comes back 5 minutes after the
        // third one: the second is skipped, the third is still inside the grace period.
        let mut s = Scheduler::default();
        let back = slots[2] + Duration::minutes(5);
        let wake = s.tick(&runner, &set, back).await;
        assert_eq!(*runner.sent.lock().unwrap(), vec![slots[0], slots[2]]);
        assert!(wake <= slots[3]);

        // Another restart a minute later: the third was recorded durably, nothing is sent twice.
        let mut s = Scheduler::default();
        s.tick(&runner, &set, back + Duration::minutes(1)).await;
        assert_eq!(*runner.sent.lock().unwrap(), vec![slots[0], slots[2]]);

        // The runner fails at the fourth slot: retried within the grace period, then given up.
        *runner.fail.lock().unwrap() = true;
        let wake = s.tick(&runner, &set, slots[3]).await;
        assert_eq!(wake, slots[3] + RETRY_AFTER);
        *runner.fail.lock().unwrap() = false;
        s.tick(&runner, &set, wake).await;
        assert_eq!(runner.sent.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn no_active_persona_or_a_schedule_that_does_not_fit_sends_nothing() {
        let runner = Arc::new(FakeRunner::default());
        let now = t("2026-05-04T12:00:00Z");
        let mut s = Scheduler::default();
        assert_eq!(s.tick(&runner, &ManifestSet::default(), now).await, now + MAX_SLEEP);
        let tight = persona(r#"[{start: "09:00", end: "09:30"}]"#, 3, 60);
        assert_eq!(s.tick(&runner, &tight, now).await, now + MAX_SLEEP);
        assert!(runner.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn after_local_midnight_the_next_day_is_drawn() {
        let set = persona(r#"[{start: "00:00", end: "00:30"}]"#, 1, 0);
        let runner = Arc::new(FakeRunner::default());
        let mut s = Scheduler::default();
        // 23:00 in Berlin: today's only slot (before 00:30) passed long ago. The loop must wake at
        // local midnight (22:00 UTC), draw the new day and send its slot on time.
        let mut now = t("2026-05-04T21:00:00Z");
        let mut wakes = Vec::new();
        while now < t("2026-05-04T22:31:00Z") {
            now = s.tick(&runner, &set, now).await;
            wakes.push(now);
        }
        assert!(wakes.contains(&t("2026-05-04T22:00:00Z")), "{wakes:?}");
        let sent = runner.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert!(sent[0] >= t("2026-05-04T22:00:00Z") && sent[0] < t("2026-05-04T22:30:00Z"), "{sent:?}");
        assert!(wakes.contains(&sent[0]), "woken exactly at the slot: {wakes:?}");
    }

    #[tokio::test]
    async fn the_persisted_record_survives_a_restart_and_a_runner_with_no_record_of_its_own() {
        let set = persona(r#"[{start: "09:00", end: "21:00"}]"#, 4, 60);
        let p = &set.personas[0];
        let slots: Vec<_> = schedule::draw(&p.spec.check_ins, &embedded_seed(p), "2026-05-04".parse().unwrap())
            .unwrap()
            .into_iter()
            .map(|t| t.with_timezone(&Utc))
            .collect();
        let store = wellbeing_assistant::Store::in_memory().unwrap();
        let log = JobLog::new(store.clone());

        let runner = Arc::new(FakeRunner::default());
        let mut s = Scheduler::persisted(log.clone(), slots[0]).await;
        s.tick(&runner, &set, slots[0]).await;
        assert_eq!(*runner.sent.lock().unwrap(), vec![slots[0]]);

        // A new process whose runner remembers nothing (say its own record was lost): the
        // scheduler's record alone keeps the slot from going out twice.
        let forgetful = Arc::new(FakeRunner::default());
        let mut s = Scheduler::persisted(log.clone(), slots[0] + Duration::minutes(1)).await;
        s.tick(&forgetful, &set, slots[0] + Duration::minutes(1)).await;
        assert!(forgetful.sent.lock().unwrap().is_empty());

        // Down over the second slot: recorded as missed, with the first as sent.
        s.tick(&forgetful, &set, slots[1] + GRACE + Duration::minutes(1)).await;
        let rows: Vec<(String, String)> = {
            let conn = store.conn();
            let mut stmt = conn.prepare("SELECT job_key, outcome FROM scheduler_runs ORDER BY due_at").unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(
            rows,
            vec![
                (job_log::checkin_key("default/coach", slots[0]), "sent".to_string()),
                (job_log::checkin_key("default/coach", slots[1]), "missed".to_string()),
            ]
        );
    }
}
