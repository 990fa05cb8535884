//! What `wellbeing up`'s scheduler does besides drawing check-in times: the goals and
//! weekly-insight ticks once a minute (delivered to the local page, or by Slack DM to Slack
//! users), local check-ins through the goals gate (pause, quiet days, back-off notice), and the
//! names of the secrets the manifests need that the local store lacks (for the dashboard).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::ResourceExt as _;
use tokio::sync::watch;
use tracing::info;
use wellbeing_assistant::engine::{Assistant, Channel, SentPrompt};
use wellbeing_assistant::goals::gate::CheckinDecision;
use wellbeing_assistant::goals::runner::{Context, checkin_gate};
use wellbeing_assistant::goals::{GoalsConfig, OutgoingMessage, SendKind};
use wellbeing_crds::{Goal, Persona};
use wellbeing_webhook::goals_loop::{LoadedGoals, SourceError};
use wellbeing_webhook::nudges::{self, Delivery, error_chain};

use super::LOCAL_USER;
use super::manifests::{self, ManifestSet};
use super::scheduler::{Outcome, embedded_seed};

/// The goals job: what is due for every known user at a minute, delivered to each one's channel.
pub struct GoalJobs {
    pub engine: Assistant,
    /// Goals come from the folder as it is now (edits apply at the next minute).
    pub manifests: watch::Receiver<Arc<ManifestSet>>,
    pub config: GoalsConfig,
    pub delivery: Delivery,
}

impl GoalJobs {
    pub async fn run(&self, persona: &Persona, now: DateTime<Utc>) -> Result<Outcome, String> {
        let goals: Vec<Goal> = self.manifests.borrow().goals.clone();
        let seed = embedded_seed(persona);
        let messages = nudges::due_messages(&self.engine, &persona.spec, &seed, &goals, &self.config, now)
            .await
            .map_err(|e| error_chain(&e))?;
        if messages.is_empty() {
            return Ok(Outcome::Skipped);
        }
        let delivered = self.delivery.deliver_all(&messages).await;
        info!(persona = %persona.name_any(), due = messages.len(), delivered, "proactive messages sent");
        Ok(Outcome::Sent)
    }
}

/// A scheduled check-in on the local page, through the same gate as Slack's `/internal/checkins`:
/// paused or a quiet day skips it, the back-off drops every other one (and says so once, on the
/// page, before the prompt). A slot recorded before (a restart) is not sent again.
pub async fn local_checkin(
    engine: &Assistant,
    persona: &Persona,
    slot: DateTime<Utc>,
    config: &GoalsConfig,
    now: DateTime<Utc>,
) -> Result<Outcome, String> {
    let (store, spec, seed, cfg) =
        (engine.store().clone(), persona.spec.clone(), embedded_seed(persona), config.clone());
    let decision = tokio::task::spawn_blocking(move || {
        let ctx = Context { persona: &spec, persona_uid: &seed, goals: &[], config: &cfg };
        checkin_gate(&store, LOCAL_USER, &ctx, slot, now)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("failed to check the check-in rules: {}", error_chain(&e)))?;
    let notice = match decision {
        CheckinDecision::Send { notice } => notice,
        CheckinDecision::Skip(reason) => {
            info!(persona = %persona.name_any(), slot = %slot, reason = reason.as_str(), "check-in skipped");
            return Ok(Outcome::Skipped);
        }
    };
    let assistant = engine.clone();
    let recorded = tokio::task::spawn_blocking(move || -> Result<SentPrompt, String> {
        if let Some(text) = notice {
            let active = assistant.personas().active();
            let msg = OutgoingMessage {
                user_id: LOCAL_USER.to_string(),
                kind: SendKind::BackoffNotice,
                goal: String::new(),
                slot: slot.to_rfc3339(),
                text,
                actions: Vec::new(),
            };
            nudges::store_on_page(&assistant.store().conn(), &msg, active.name(), &active.version(), Utc::now())
                .map_err(|e| format!("failed to store the back-off notice: {e}"))?;
        }
        let sent = assistant
            .record_checkin_prompt(LOCAL_USER, Channel::Local, Some(slot))
            .map_err(|e| format!("failed to record the check-in prompt: {e}"))?;
        if !sent.prompt().delivered() {
            assistant
                .mark_prompt_delivered(sent.prompt().id, Some("local".into()), None)
                .map_err(|e| format!("failed to record the check-in prompt: {e}"))?;
        }
        Ok(sent)
    })
    .await
    .map_err(|e| e.to_string())??;
    match recorded {
        SentPrompt::New(p) => {
            info!(persona = %persona.name_any(), prompt_id = p.id, slot = %slot, "check-in prompt sent");
            Ok(Outcome::Sent)
        }
        SentPrompt::AlreadySent(_) => Ok(Outcome::AlreadySent),
    }
}

/// Secret ids the manifests need (Plugins' `requiredSecrets` and SecretRequirements) that
/// `present` says are not in the store, sorted and distinct. Names only: values are never read
/// for the dashboard beyond "is it there".
pub fn missing_secrets(set: &ManifestSet, present: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = set
        .plugins
        .iter()
        .flat_map(|p| p.spec.secret_names())
        .chain(set.secret_requirements.iter().map(|r| r.spec.secret_id.clone()))
        .filter(|name| !present(name))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `wellbeing webhook --manifests DIR`: the folder's Goals, read again at every tick so a Goal
/// written for a learned pillar is counted from the next minute.
pub fn folder_goals(dir: PathBuf) -> LoadedGoals {
    LoadedGoals(Arc::new(move || -> Result<Vec<Goal>, SourceError> { Ok(manifests::load_dir(&dir)?.goals) }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Duration;
    use wellbeing_assistant::engine::AssistantConfig;
    use wellbeing_assistant::goals::runner;
    use wellbeing_assistant::persona::PersonaRegistry;
    use wellbeing_assistant::store::Store;
    use wellbeing_webhook::goals_loop::GoalSource as _;
    use wellbeing_webhook::local::engine::history;

    use super::*;
    use crate::embedded::manifests::build_set;
    use crate::embedded::scheduler::{Job, JobKind, JobRunner, Scheduler, plan};

    const PERSONA: &str = r#"apiVersion: wellbeing.dev/v1alpha1
kind: Persona
metadata: {name: coach}
spec:
  displayName: Sunny
  active: true
  checkIns:
    timeZone: Europe/Berlin
    windows: [{start: "09:00", end: "21:00"}]
    perDay: 1
    minGapMinutes: 60
"#;

    const MEALS: &str = r#"apiVersion: wellbeing.dev/v1alpha1
kind: Goal
metadata: {name: meals}
spec:
  description: Eat three meals
  pillar: nutrition
  metric: meal
  target: {count: 3, per: day}
  reminders: [{at: "13:00"}]
"#;

    const PLUGIN: &str = r#"apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: weather-walks}
spec:
  description: Walks when the weather is good
  version: 1
  source: {python: {module: weather_walks/v1.py}}
  requiredSecrets:
    - {name: openweather-api-key, env: OPENWEATHER_API_KEY}
    - {name: calendar-token, env: CALENDAR_TOKEN}
"#;

    fn set(docs: &[&str]) -> ManifestSet {
        let files = docs.iter().enumerate().map(|(i, d)| (format!("{i}.yaml").into(), Ok(d.to_string()))).collect();
        let set = build_set(files);
        assert!(set.errors.is_empty(), "{:?}", set.errors);
        set
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// The embedded runner's dispatch, as `wellbeing up` does it (without Slack).
    struct Runner {
        goals: GoalJobs,
        outcomes: Mutex<Vec<(&'static str, Outcome)>>,
    }

    impl JobRunner for Arc<Runner> {
        async fn run(&self, job: Job, persona: Persona) -> Result<Outcome, String> {
            let kind = job.kind_name();
            let outcome = match job.kind {
                JobKind::Goals { minute } => self.goals.run(&persona, minute).await?,
                JobKind::CheckIn { slot, .. } => {
                    local_checkin(&self.goals.engine, &persona, slot, &self.goals.config, slot).await?
                }
            };
            self.outcomes.lock().unwrap().push((kind, outcome));
            Ok(outcome)
        }

        fn runs_goals(&self) -> bool {
            true
        }
    }

    fn runner(set: &ManifestSet) -> Arc<Runner> {
        let registry = PersonaRegistry::default();
        registry.replace_all(set.personas.clone());
        let engine = Assistant::new(Store::in_memory().unwrap(), registry, None, AssistantConfig::default());
        engine
            .store()
            .conn()
            .execute("INSERT INTO people (person_id, created_at) VALUES (?1, '2026-05-01T00:00:00Z')", [LOCAL_USER])
            .unwrap();
        let (_tx, rx) = watch::channel(Arc::new(set.clone()));
        let delivery = Delivery::new(engine.clone(), None);
        Arc::new(Runner {
            goals: GoalJobs { engine, manifests: rx, config: GoalsConfig::default(), delivery },
            outcomes: Mutex::new(Vec::new()),
        })
    }

    fn count(engine: &Assistant, sql: &str) -> i64 {
        engine.store().conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[tokio::test]
    async fn a_reminder_job_runs_at_its_minute_and_is_sent_once_across_a_restart() {
        let set = set(&[PERSONA, MEALS]);
        let runner = runner(&set);
        let engine = runner.goals.engine.clone();
        // 12:50 to 13:20 in Berlin (UTC+2), waking exactly when the scheduler asks to.
        let mut s = Scheduler::default();
        let mut now = t("2026-05-08T10:50:00Z");
        let mut wakes = 0;
        while now < t("2026-05-08T11:20:00Z") {
            now = s.tick(&runner, &set, now).await;
            wakes += 1;
        }
        assert!(wakes >= 30, "woken every minute for the goals job: {wakes}");
        let reminders = "SELECT COUNT(*) FROM interactions WHERE kind = 'reminder' AND user_id = 'local:me'";
        assert_eq!(count(&engine, reminders), 1);
        assert_eq!(count(&engine, "SELECT COUNT(*) FROM scheduled_sends WHERE kind = 'reminder'"), 1);

        // On the page, with its buttons.
        let page = history(engine.store(), LOCAL_USER, None, 50).unwrap();
        let reminder = page.iter().find(|m| m.kind == "reminder").unwrap();
        assert!(reminder.text.contains("meal"), "{}", reminder.text);
        let labels: Vec<&str> = reminder.actions.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["Done", "Snooze 30 min", "Skip today"]);
        assert_eq!(reminder.actions[0].value, "meals|2026-05-08T13:00");

        // A restart at 13:05 (inside the grace period): the record says it was sent.
        let mut s = Scheduler::default();
        s.tick(&runner, &set, t("2026-05-08T11:05:00Z")).await;
        assert_eq!(count(&engine, reminders), 1);
    }

    #[tokio::test]
    async fn local_check_ins_go_through_the_gate() {
        let set = set(&[PERSONA]);
        let runner = runner(&set);
        let engine = runner.goals.engine.clone();
        let persona = &set.personas[0];
        let slot = t("2026-05-08T10:00:00Z");
        let paused_until =
            runner::pause_command(engine.store(), LOCAL_USER, "2d", chrono_tz::Tz::UTC, slot - Duration::hours(1));
        assert!(paused_until.unwrap().contains("Sunday 10 May"));
        let paused = local_checkin(&engine, persona, slot, &GoalsConfig::default(), slot).await.unwrap();
        assert_eq!(paused, Outcome::Skipped);
        assert_eq!(count(&engine, "SELECT COUNT(*) FROM checkin_prompts"), 0);

        runner::resume_command(engine.store(), LOCAL_USER, slot).unwrap();
        let sent = local_checkin(&engine, persona, slot, &GoalsConfig::default(), slot).await.unwrap();
        assert_eq!(sent, Outcome::Sent);
        let again = local_checkin(&engine, persona, slot, &GoalsConfig::default(), slot).await.unwrap();
        assert_eq!(again, Outcome::AlreadySent);
        assert_eq!(count(&engine, "SELECT COUNT(*) FROM checkin_prompts"), 1);
    }

    #[tokio::test]
    async fn after_three_unanswered_check_ins_the_notice_comes_once_before_the_prompt() {
        let mut persona = PERSONA.replace("perDay: 1", "perDay: 4");
        persona = persona.replace("minGapMinutes: 60", "minGapMinutes: 30");
        let set = set(&[&persona]);
        let runner = runner(&set);
        let engine = runner.goals.engine.clone();
        for h in [9, 12, 15] {
            engine
                .store()
                .conn()
                .execute(
                    "INSERT INTO checkin_prompts (user_id, persona_name, persona_version, prompt, sent_at)
                     VALUES ('local:me', 'coach', 'v', 'How are you?', ?1)",
                    [format!("2026-05-07T{h:02}:00:00Z")],
                )
                .unwrap();
        }
        let p = &set.personas[0];
        let day = "2026-05-08".parse().unwrap();
        let slots = wellbeing_assistant::goals::gate::planned_checkins(&p.spec, &embedded_seed(p), day, false);
        let mut outcomes = Vec::new();
        for slot in &slots {
            outcomes.push(local_checkin(&engine, p, *slot, &GoalsConfig::default(), *slot).await.unwrap());
        }
        assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Sent).count(), 2, "{outcomes:?}");
        assert_eq!(count(&engine, "SELECT COUNT(*) FROM interactions WHERE kind = 'backoff_notice'"), 1);
        let page = history(engine.store(), LOCAL_USER, None, 50).unwrap();
        let kinds: Vec<&str> = page.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["backoff_notice", "checkin_prompt", "checkin_prompt"]);
    }

    #[test]
    fn a_goals_job_never_costs_a_check_in_its_turn() {
        let slot = t("2026-05-08T10:00:00Z");
        let checkin =
            |s: DateTime<Utc>| Job { due: s, kind: JobKind::CheckIn { persona: "p".into(), slot: s, index: 0 } };
        let goals = super::super::scheduler::goals_job(slot + Duration::seconds(90));
        assert_eq!(goals.due, t("2026-05-08T10:01:00Z"));
        let p = plan(vec![checkin(slot), goals.clone()], slot + Duration::minutes(2), &Default::default());
        assert_eq!(p.fire, vec![checkin(slot), goals]);
        assert!(p.skip.is_empty());
    }

    #[test]
    fn missing_secrets_are_the_needed_names_the_store_lacks() {
        let set = set(&[PLUGIN]);
        assert_eq!(missing_secrets(&set, |_| false), ["calendar-token", "openweather-api-key"]);
        assert_eq!(missing_secrets(&set, |name| name == "calendar-token"), ["openweather-api-key"]);
        assert!(missing_secrets(&set, |_| true).is_empty());
        assert!(missing_secrets(&ManifestSet::default(), |_| false).is_empty());
    }

    #[tokio::test]
    async fn a_folder_source_reads_the_goals_again_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let source = folder_goals(dir.path().to_path_buf());
        assert!(source.goals().await.unwrap().is_empty());
        std::fs::write(dir.path().join("meals.yaml"), MEALS).unwrap();
        let goals = source.goals().await.unwrap();
        assert_eq!(goals.iter().map(|g| g.name_any()).collect::<Vec<_>>(), ["meals"]);
    }
}
