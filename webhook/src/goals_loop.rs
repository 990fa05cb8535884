//! The assistant service's background loop (`wellbeing webhook`): once a minute the goals and
//! weekly-insight ticks for every known user, delivered by Slack DM with Block Kit buttons; and
//! Goal progress written to `Goal.status.progress` (server-side apply, field manager
//! `wellbeing-assistant`) once a minute and soon after each processed check-in or button press,
//! only when it changed.
//!
//! The loop is the only timer: what is due is decided by the pure goals functions from the stored
//! data and the clock, and every send is recorded before delivery, so a restart neither repeats
//! nor (past the grace period) delays a message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use kube::api::{Api, ListParams};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use wellbeing_assistant::engine::Assistant;
use wellbeing_assistant::goals::{GoalsConfig, runner};
use wellbeing_crds::goal::GoalProgress;
use wellbeing_crds::secret_requirement::SecretPhase;
use wellbeing_crds::{Goal, SecretRequirement};

use crate::app::Clock;
use crate::goal_status;
use crate::job_log::{self, JobLog, JobOutcome};
use crate::nudges::{self, ClusterGoals, Delivery, error_chain};

/// How often the goals and insight ticks run: reminder times are whole minutes, and the goals
/// rules' grace period (10 minutes) covers a slow tick.
pub const TICK_EVERY: TimeDelta = TimeDelta::minutes(1);

/// How often the loop looks for new check-ins and button presses between ticks (one indexed
/// query), so `kubectl get goals` shows a workout a few seconds after it was reported.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where the loop reads Goals and missing secrets, and writes progress.
#[async_trait]
pub trait GoalSource: Send + Sync {
    async fn goals(&self) -> Result<Vec<Goal>, SourceError>;

    /// Names (never values) of secrets the system needs and does not have.
    async fn missing_secrets(&self) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }

    /// Write the progress of the goals whose stored progress differs; returns how many.
    async fn write_progress(&self, goals: &[Goal], computed: &[(String, GoalProgress)]) -> Result<usize, SourceError> {
        let _ = (goals, computed);
        Ok(0)
    }
}

#[async_trait]
impl GoalSource for ClusterGoals {
    async fn goals(&self) -> Result<Vec<Goal>, SourceError> {
        let api: Api<Goal> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(api.list(&ListParams::default()).await?.items)
    }

    /// SecretRequirements the operator found missing in the store.
    async fn missing_secrets(&self) -> Result<Vec<String>, SourceError> {
        let api: Api<SecretRequirement> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(missing_names(&api.list(&ListParams::default()).await?.items))
    }

    async fn write_progress(&self, goals: &[Goal], computed: &[(String, GoalProgress)]) -> Result<usize, SourceError> {
        Ok(goal_status::sync_progress(&self.client, goals, computed).await?)
    }
}

/// Secret ids of requirements whose status says `Missing`, sorted and distinct. A requirement
/// the operator has not checked yet (no status) is not reported: nobody knows yet.
pub fn missing_names(requirements: &[SecretRequirement]) -> Vec<String> {
    let mut names: Vec<String> = requirements
        .iter()
        .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == SecretPhase::Missing))
        .map(|r| r.spec.secret_id.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A fixed list (no cluster and no manifests folder: no goals; tests).
pub struct FixedGoals(pub Vec<Goal>);

#[async_trait]
impl GoalSource for FixedGoals {
    async fn goals(&self) -> Result<Vec<Goal>, SourceError> {
        Ok(self.0.clone())
    }
}

/// Goals read by a blocking function at every tick (a folder of manifests).
pub struct LoadedGoals(pub Arc<dyn Fn() -> Result<Vec<Goal>, SourceError> + Send + Sync>);

#[async_trait]
impl GoalSource for LoadedGoals {
    async fn goals(&self) -> Result<Vec<Goal>, SourceError> {
        let load = self.0.clone();
        tokio::task::spawn_blocking(move || load()).await?
    }
}

/// What the loop last read, shared with the dashboard.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub goals: Vec<Goal>,
    pub missing_secrets: Vec<String>,
}

pub type SharedKnown = Arc<RwLock<Known>>;

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub due: usize,
    pub delivered: usize,
    pub progress_written: usize,
}

/// Changes whenever something that goal progress depends on was written: a message processed
/// (interactions), a check-in stored or deleted, a "Done" pressed.
type Fingerprint = (i64, i64, i64);

pub struct GoalsLoop {
    pub engine: Assistant,
    pub delivery: Delivery,
    pub source: Arc<dyn GoalSource>,
    pub config: GoalsConfig,
    /// Whose progress goes into `Goal.status` (a Goal names no person): this person when set,
    /// else the first person served.
    pub progress_user: Option<String>,
    pub known: SharedKnown,
    pub clock: Clock,
    pub poll_every: Duration,
    /// False until the persona watch has listed the cluster's Personas: the loop waits for it, so
    /// nothing is decided (or written to `Goal.status`) in the built-in persona's zone by mistake.
    pub personas_synced: Arc<AtomicBool>,
}

impl GoalsLoop {
    /// Re-read the goals and missing secrets; on failure the previous ones are kept.
    async fn refresh(&self) {
        match self.source.goals().await {
            Ok(goals) => self.known.write().unwrap_or_else(|e| e.into_inner()).goals = goals,
            Err(error) => warn!(error = %error_chain(&*error), "failed to list goals; using the last list"),
        }
        match self.source.missing_secrets().await {
            Ok(names) => self.known.write().unwrap_or_else(|e| e.into_inner()).missing_secrets = names,
            Err(error) => warn!(error = %error_chain(&*error), "failed to list secret requirements"),
        }
    }

    fn goals(&self) -> Vec<Goal> {
        self.known.read().unwrap_or_else(|e| e.into_inner()).goals.clone()
    }

    /// One tick: refresh, send what is due, write progress.
    #[tracing::instrument(name = "goals_tick", skip(self))]
    pub async fn tick(&self, now: DateTime<Utc>) -> TickReport {
        self.refresh().await;
        let goals = self.goals();
        let active = self.engine.personas().active();
        let mut report = TickReport::default();
        // Without an active Persona the operator schedules no check-ins, and nothing proactive
        // is sent either (the same rule as `wellbeing up`).
        if !active.is_default() {
            let seed = active.persona.metadata.uid.clone().unwrap_or_default();
            match nudges::due_messages(&self.engine, active.spec(), &seed, &goals, &self.config, now).await {
                Ok(messages) => {
                    report.due = messages.len();
                    report.delivered = self.delivery.deliver_all(&messages).await;
                }
                Err(error) => warn!(error = %error_chain(&error), "goals tick failed"),
            }
        }
        report.progress_written = self.sync_progress(now).await;
        if report.due > 0 || report.progress_written > 0 {
            info!(due = report.due, delivered = report.delivered, progress = report.progress_written, "goals tick");
        }
        report
    }

    /// The tick of the minute containing `now`, once: a minute already in the scheduler's record
    /// (`scheduler_runs`, which `wellbeing up` keeps too) is not run again after a restart within
    /// the minute. `None` when it was. The record is read, then written after the tick; two
    /// replicas in the same instant may both run it, and the goals rules' own per-message keys
    /// (`scheduled_sends`) still send each message once.
    pub async fn tick_once(&self, now: DateTime<Utc>) -> Option<TickReport> {
        let minute = now.duration_trunc(TICK_EVERY).unwrap_or(now);
        let key = job_log::goals_key(minute);
        let log = JobLog::new(self.engine.store().clone());
        match log.contains(&key).await {
            Ok(true) => {
                tracing::debug!(%minute, "goals tick of this minute already ran");
                return None;
            }
            Ok(false) => {}
            Err(error) => warn!(error = %error_chain(&error), "failed to read the scheduler's record; ticking"),
        }
        let report = self.tick(now).await;
        if let Err(error) = log.record(&key, "goals", minute, JobOutcome::Sent, self.clock.now()).await {
            warn!(error = %error_chain(&error), "failed to record the goals tick");
        }
        Some(report)
    }

    /// Write `Goal.status.progress` where it changed; returns how many goals were written.
    pub async fn sync_progress(&self, now: DateTime<Utc>) -> usize {
        let goals = self.goals();
        if goals.is_empty() {
            return 0;
        }
        let store = self.engine.store().clone();
        let configured = self.progress_user.clone();
        let active = self.engine.personas().active();
        let (spec, seed, cfg, list) = (
            active.spec().clone(),
            active.persona.metadata.uid.clone().unwrap_or_default(),
            self.config.clone(),
            goals.clone(),
        );
        let computed = tokio::task::spawn_blocking(move || {
            let user = match configured {
                Some(user) => Some(user),
                None => crate::dashboard::data::default_user(&store)?,
            };
            let Some(user) = user else { return Ok(Vec::new()) };
            let ctx = runner::Context { persona: &spec, persona_uid: &seed, goals: &list, config: &cfg };
            runner::goal_progress(&store, &user, &ctx, now)
        })
        .await;
        let computed = match computed {
            Ok(Ok(computed)) => computed,
            Ok(Err(error)) => {
                warn!(error = %error_chain(&error), "failed to compute goal progress");
                return 0;
            }
            Err(error) => {
                warn!(error = %error, "goal progress computation failed");
                return 0;
            }
        };
        match self.source.write_progress(&goals, &computed).await {
            Ok(written) => {
                // What is stored now, so the next sync writes only what changes after this.
                let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
                for goal in &mut known.goals {
                    let name = goal.metadata.name.as_deref().unwrap_or_default();
                    if let Some((_, p)) = computed.iter().find(|(n, _)| n == name) {
                        goal.status.get_or_insert_with(Default::default).progress = Some(p.clone());
                    }
                }
                written
            }
            Err(error) => {
                warn!(error = %error_chain(&*error), "failed to write goal progress");
                0
            }
        }
    }

    async fn fingerprint(&self) -> Option<Fingerprint> {
        let store = self.engine.store().clone();
        let read = tokio::task::spawn_blocking(move || {
            store.conn().query_row(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM interactions), (SELECT COUNT(*) FROM checkins),
                        (SELECT COALESCE(MAX(id), 0) FROM goal_logs)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .await;
        match read {
            Ok(Ok(fp)) => Some(fp),
            Ok(Err(error)) => {
                warn!(error = %error, "failed to read the goals fingerprint");
                None
            }
            Err(_) => None,
        }
    }

    /// Run until `cancel`: a tick at start and on every minute, progress in between when the data
    /// changed. A tick in progress finishes (its messages are already recorded as sent).
    pub async fn run(self, cancel: CancellationToken) {
        let mut next_tick = self.clock.now();
        let mut seen: Option<Fingerprint> = None;
        loop {
            let now = self.clock.now();
            if !self.personas_synced.load(Ordering::Relaxed) {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(self.poll_every) => continue,
                }
            }
            if now >= next_tick {
                // Read before the tick: a change made while it runs (a "Done" pressed) is then
                // seen at the next poll instead of being taken for what the tick already wrote.
                let before = self.fingerprint().await;
                self.tick_once(now).await;
                seen = before;
                next_tick = now.duration_trunc(TICK_EVERY).unwrap_or(now) + TICK_EVERY;
            } else if let Some(fp) = self.fingerprint().await
                && seen != Some(fp)
            {
                self.sync_progress(now).await;
                seen = Some(fp);
            }
            let until_tick = (next_tick - self.clock.now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.poll_every.min(until_tick)) => {}
            }
        }
        info!("goals loop stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_crds::{SecretRequirementSpec, SecretRequirementStatus};

    fn requirement(id: &str, phase: Option<SecretPhase>) -> SecretRequirement {
        let mut r =
            SecretRequirement::new(id, SecretRequirementSpec { secret_id: id.into(), description: String::new() });
        r.status = phase.map(|phase| SecretRequirementStatus { phase, ..Default::default() });
        r
    }

    #[test]
    fn only_requirements_found_missing_are_reported() {
        let reqs = [
            requirement("b-key", Some(SecretPhase::Missing)),
            requirement("a-key", Some(SecretPhase::Missing)),
            requirement("present", Some(SecretPhase::Present)),
            requirement("unchecked", None),
        ];
        assert_eq!(missing_names(&reqs), ["a-key", "b-key"]);
    }
}
