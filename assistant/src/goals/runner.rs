//! The shell a scheduler tick calls: read the state, run the pure decisions, record what will be
//! sent (so the cap and "never twice" survive restarts), and return the messages to deliver.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use rusqlite::Connection;
use wellbeing_crds::Goal;
use wellbeing_crds::goal::GoalProgress;
use wellbeing_crds::persona::PersonaSpec;

use super::gate::{self, Backoff, CheckinDecision, Due};
use super::nudge::{self, Candidate, Today};
use super::progress::{self, Inputs};
use super::{GoalsConfig, OutgoingMessage, SendKind, actions, db, followthrough, pause, pillars};
use crate::{Store, StoreError};

/// How far back a tick reads check-ins: the longest period (a month) plus a margin for
/// follow-through and pillar windows.
const TICK_HISTORY_DAYS: i64 = 40;

/// What the runner works with besides the database.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub persona: &'a PersonaSpec,
    /// Seeds every drawn time (the same seed the check-in schedule uses).
    pub persona_uid: &'a str,
    pub goals: &'a [Goal],
    pub config: &'a GoalsConfig,
}

impl Context<'_> {
    pub fn tz(&self) -> Tz {
        super::persona_tz(self.persona)
    }

    fn named_goals(&self) -> impl Iterator<Item = (&str, &Goal)> {
        self.goals.iter().filter_map(|g| g.metadata.name.as_deref().map(|n| (n, g)))
    }
}

/// Everything the decisions of one user need, read once per tick.
struct UserState {
    today: NaiveDate,
    tz: Tz,
    paused: bool,
    paused_days: BTreeSet<NaiveDate>,
    events: Vec<super::Event>,
    manual: Vec<super::ManualLog>,
    sent_today: HashSet<(SendKind, String, String)>,
    snoozes: Vec<db::Snooze>,
    backoff: Backoff,
    prompts_today: usize,
}

fn read_state(
    conn: &Connection,
    user: &str,
    ctx: &Context<'_>,
    now: DateTime<Utc>,
    history_days: Option<i64>,
) -> Result<UserState, StoreError> {
    let tz = ctx.tz();
    let today = super::local_date(tz, now);
    let since = history_days.map(|d| today - Duration::days(d));
    let pauses = db::load_pauses(conn, user)?;
    let prompts = db::prompts_since(conn, user, now - Duration::days(14))?;
    let last = db::last_user_activity(conn, user)?;
    Ok(UserState {
        today,
        tz,
        paused: pause::is_paused(&pauses, now),
        paused_days: pause::paused_days(&pauses, tz),
        events: db::load_events(conn, user, since)?,
        manual: db::load_manual(conn, user, since)?,
        sent_today: db::sends_on(conn, user, today)?.into_iter().collect(),
        snoozes: db::snoozes_on(conn, user, today)?,
        backoff: gate::backoff(&prompts, last, ctx.config.backoff_after),
        prompts_today: db::prompts_sent_on(conn, user, tz, today)?,
    })
}

/// Progress of every goal for a user at `now` (with streaks over the whole history), for
/// `Goal.status.progress` and the dashboard.
pub fn goal_progress(
    store: &Store,
    user: &str,
    ctx: &Context<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, GoalProgress)>, StoreError> {
    let conn = store.conn();
    let st = read_state(&conn, user, ctx, now, None)?;
    drop(conn);
    let fraction = gate::window_fraction(ctx.persona, st.tz, now);
    let inputs = Inputs { events: &st.events, manual: &st.manual, paused_days: &st.paused_days };
    Ok(ctx
        .named_goals()
        .map(|(name, g)| (name.to_string(), progress::progress(name, &g.spec, &inputs, st.today, fraction)))
        .collect())
}

/// One scheduler tick for every known user.
#[tracing::instrument(skip_all, fields(users))]
pub fn tick(store: &Store, ctx: &Context<'_>, now: DateTime<Utc>) -> Result<Vec<OutgoingMessage>, StoreError> {
    let users = db::users(&store.conn())?;
    tracing::Span::current().record("users", users.len());
    let mut out = Vec::new();
    for user in users {
        out.extend(tick_user(store, &user, ctx, now)?);
    }
    Ok(out)
}

/// One tick for one user: nudges, reminders, pillar questions and follow-through questions that
/// are due now, recorded before they are returned.
pub fn tick_user(
    store: &Store,
    user: &str,
    ctx: &Context<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<OutgoingMessage>, StoreError> {
    let mut conn = store.conn();
    let st = read_state(&conn, user, ctx, now, Some(TICK_HISTORY_DAYS))?;
    if st.paused || wellbeing_crds::schedule::is_quiet_day(&ctx.persona.check_ins, st.today) {
        return Ok(Vec::new());
    }
    let today =
        Today { persona: ctx.persona, uid: ctx.persona_uid, tz: st.tz, date: st.today, paused_days: &st.paused_days };
    let inputs = Inputs { events: &st.events, manual: &st.manual, paused_days: &st.paused_days };
    let cfg = ctx.config;

    let mut candidates: Vec<Candidate> = Vec::new();
    for (name, goal) in ctx.named_goals() {
        if st.snoozes.iter().any(|s| s.goal == name && s.skip) {
            continue;
        }
        let counts = progress::day_counts(name, &goal.spec, &inputs);
        let snoozes: Vec<DateTime<Utc>> =
            st.snoozes.iter().filter(|s| s.goal == name && !s.skip).map(|s| s.until).collect();
        let snoozed_now = snoozes.iter().any(|until| *until > now);
        let mut mine = nudge::reminders(name, &goal.spec, &counts, &today, &snoozes);
        mine.extend(nudge::nudge(name, &goal.spec, &counts, &today));
        // While snoozed, only the snoozed reminder itself comes back.
        mine.retain(|c| !snoozed_now || c.slot.starts_with("snooze:"));
        candidates.extend(mine);
    }
    if let Some(c) = pillar_candidate(&conn, user, ctx, &st, now)? {
        candidates.push(c);
    }

    let is_due = |c: &Candidate| {
        gate::due(c.at, now, cfg.grace_minutes) == Due::Now
            && gate::in_windows(ctx.persona, st.tz, c.at)
            && !st.sent_today.contains(&(c.kind, c.goal.clone(), c.slot.clone()))
    };
    let mut due: Vec<Candidate> = candidates.into_iter().filter(is_due).collect();
    // Reminders the user configured come first, then nudges by goal priority, then questions.
    due.sort_by_key(|c| {
        (c.kind != SendKind::Reminder, c.kind == SendKind::Pillar, std::cmp::Reverse(c.priority), c.at)
    });

    let planned = gate::planned_checkins(ctx.persona, ctx.persona_uid, st.today, st.backoff.active);
    let capped_sent = st.sent_today.iter().filter(|(k, _, _)| k.counts_against_cap()).count();
    let mut budget = gate::cap_remaining(cfg.daily_cap, planned.len(), st.prompts_today, capped_sent);

    let tx = conn.transaction()?;
    let mut out = Vec::new();
    for c in due {
        if budget == 0 {
            tracing::debug!(user, kind = c.kind.as_str(), goal = %c.goal, "daily cap reached; not sent");
            continue;
        }
        let mut msg = OutgoingMessage {
            user_id: user.to_string(),
            kind: c.kind,
            goal: c.goal.clone(),
            slot: c.slot.clone(),
            text: c.text.clone(),
            actions: Vec::new(),
        };
        if !db::record_send(&tx, &msg, st.today, now)? {
            continue;
        }
        msg.actions = match c.kind {
            SendKind::Pillar => {
                let s = pillar_suggestion(&tx, user, ctx, &st, now)?;
                let Some(s) = s.filter(|s| s.pillar == c.goal) else { continue };
                let id = pillars::record_question(&tx, user, &s, now)?;
                actions::pillar_actions(id)
            }
            _ => actions::goal_actions(&msg.goal, &msg.slot),
        };
        budget -= 1;
        out.push(msg);
    }
    out.extend(follow_through(&tx, user, ctx, &st, &planned, now)?);
    tx.commit()?;
    for m in &out {
        tracing::info!(user, kind = m.kind.as_str(), goal = %m.goal, slot = %m.slot, "proactive message due");
    }
    Ok(out)
}

fn pillar_suggestion(
    conn: &Connection,
    user: &str,
    ctx: &Context<'_>,
    st: &UserState,
    now: DateTime<Utc>,
) -> Result<Option<pillars::Suggestion>, StoreError> {
    let tracked: BTreeSet<String> = ctx.goals.iter().filter_map(|g| pillars::normalize(&g.spec.pillar)).collect();
    let past = pillars::past_questions(conn, user)?;
    let cfg = ctx.config;
    Ok(pillars::suggestions(
        &st.events,
        st.today,
        now,
        &tracked,
        &past,
        cfg.pillar_mentions,
        cfg.pillar_window_days,
        cfg.not_now_days,
    )
    .into_iter()
    .max_by_key(|s| (s.mentions, std::cmp::Reverse(s.pillar.clone()))))
}

/// At most one pillar question a day, at a drawn time inside the windows.
fn pillar_candidate(
    conn: &Connection,
    user: &str,
    ctx: &Context<'_>,
    st: &UserState,
    now: DateTime<Utc>,
) -> Result<Option<Candidate>, StoreError> {
    if st.sent_today.iter().any(|(k, _, _)| *k == SendKind::Pillar) {
        return Ok(None);
    }
    let Some(s) = pillar_suggestion(conn, user, ctx, st, now)? else { return Ok(None) };
    let Some(at) = gate::proactive_slot(ctx.persona, ctx.persona_uid, "pillar", st.today) else { return Ok(None) };
    Ok(Some(Candidate {
        kind: SendKind::Pillar,
        text: pillars::question(&s, ctx.config.pillar_window_days),
        goal: s.pillar,
        slot: st.today.to_string(),
        at,
        priority: Default::default(),
    }))
}

/// Follow-through questions ride on the check-in that is due now.
fn follow_through(
    conn: &Connection,
    user: &str,
    ctx: &Context<'_>,
    st: &UserState,
    planned: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Result<Vec<OutgoingMessage>, StoreError> {
    let Some(checkin_at) = planned.iter().copied().find(|t| gate::due(*t, now, ctx.config.grace_minutes) == Due::Now)
    else {
        return Ok(Vec::new());
    };
    let asked_today = st.sent_today.iter().filter(|(k, _, _)| *k == SendKind::FollowThrough).count();
    let remaining = (ctx.config.follow_through_per_day as usize).saturating_sub(asked_today);
    let asked = |id: i64| db::was_sent(conn, user, SendKind::FollowThrough, "", &id.to_string()).unwrap_or(true);
    let mut out = Vec::new();
    for q in followthrough::due(&st.events, checkin_at, &asked, remaining) {
        let msg = OutgoingMessage {
            user_id: user.to_string(),
            kind: SendKind::FollowThrough,
            goal: String::new(),
            slot: q.checkin_id.to_string(),
            text: q.question,
            actions: Vec::new(),
        };
        if db::record_send(conn, &msg, st.today, now)? {
            out.push(msg);
        }
    }
    Ok(out)
}

/// Decide a check-in at its slot (for the embedded scheduler and the internal check-in endpoint):
/// paused, quiet day or backed off means skip; the backoff notice is recorded so it is said once.
pub fn checkin_gate(
    store: &Store,
    user: &str,
    ctx: &Context<'_>,
    slot: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<CheckinDecision, StoreError> {
    let conn = store.conn();
    let pauses = db::load_pauses(&conn, user)?;
    let prompts = db::prompts_since(&conn, user, now - Duration::days(14))?;
    let backoff = gate::backoff(&prompts, db::last_user_activity(&conn, user)?, ctx.config.backoff_after);
    let streak = backoff.streak_start.map(|id| id.to_string()).unwrap_or_default();
    let said = db::was_sent(&conn, user, SendKind::BackoffNotice, "", &streak)?;
    let decision =
        gate::checkin_decision(ctx.persona, ctx.persona_uid, slot, pause::is_paused(&pauses, now), &backoff, said);
    if let CheckinDecision::Send { notice: Some(text) } = &decision {
        let msg = OutgoingMessage {
            user_id: user.to_string(),
            kind: SendKind::BackoffNotice,
            goal: String::new(),
            slot: streak,
            text: text.clone(),
            actions: Vec::new(),
        };
        if !db::record_send(&conn, &msg, super::local_date(ctx.tz(), now), now)? {
            return Ok(CheckinDecision::Send { notice: None });
        }
    }
    Ok(decision)
}

/// "/wellbeing pause <arg>": store the pause and return the reply (or the reason it was refused).
pub fn pause_command(store: &Store, user: &str, arg: &str, tz: Tz, now: DateTime<Utc>) -> Result<String, StoreError> {
    match pause::parse(arg, now, tz) {
        Ok(p) => {
            db::add_pause(&store.conn(), user, &p, now)?;
            tracing::info!(user, until = %p.until, "paused");
            Ok(pause::confirmation(&p, tz))
        }
        Err(e) => Ok(e.to_string()),
    }
}

/// "/wellbeing resume".
pub fn resume_command(store: &Store, user: &str, now: DateTime<Utc>) -> Result<String, StoreError> {
    Ok(if db::end_pauses(&store.conn(), user, now)? > 0 {
        "Welcome back! Check-ins and reminders are on again.".to_string()
    } else {
        "Nothing was paused.".to_string()
    })
}

/// Whether proactive messages to a user are paused at `now`.
pub fn is_paused(store: &Store, user: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(pause::is_paused(&db::load_pauses(&store.conn(), user)?, now))
}

/// Goal counts per day, for callers that want the raw series (the dashboard).
pub fn day_counts(
    store: &Store,
    user: &str,
    goal: &Goal,
    since: Option<NaiveDate>,
) -> Result<BTreeMap<NaiveDate, i32>, StoreError> {
    let conn = store.conn();
    let events = db::load_events(&conn, user, since)?;
    let manual = db::load_manual(&conn, user, since)?;
    let none = BTreeSet::new();
    let name = goal.metadata.name.as_deref().unwrap_or_default();
    Ok(progress::day_counts(name, &goal.spec, &Inputs { events: &events, manual: &manual, paused_days: &none }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::testutil::{at, goal, persona};
    use rusqlite::params;
    use wellbeing_crds::goal::{GoalReminder, Metric, Period};

    fn seed_user(store: &Store, user: &str) {
        store
            .conn()
            .execute("INSERT INTO people (person_id, created_at) VALUES (?1, '2026-01-01T00:00:00Z')", params![user])
            .unwrap();
    }

    fn checkin(store: &Store, user: &str, created: DateTime<Utc>, date: &str, data: &str) {
        store
            .conn()
            .execute(
                "INSERT INTO checkins (user_id, created_at, local_date, data, extractor, persona_name, persona_version)
                 VALUES (?1, ?2, ?3, ?4, 'offline', 'p', 'v')",
                params![user, db::ts(created), date, data],
            )
            .unwrap();
    }

    fn meal_goal() -> Goal {
        let mut spec = goal(Metric::Meal, 3, Period::Day);
        spec.reminders = vec![GoalReminder { at: "13:00".into(), message: String::new() }];
        Goal::new("meals", spec)
    }

    /// A day of ticks every 5 minutes (inside the 10-minute grace, so nothing due is skipped).
    fn run_day(store: &Store, ctx: &Context<'_>, tz: &str, date: &str) -> Vec<OutgoingMessage> {
        let start = at(tz, &format!("{date} 00:00"));
        (0..24 * 12).flat_map(|m| tick(store, ctx, start + Duration::minutes(5 * m)).unwrap()).collect()
    }

    #[test]
    fn a_meal_reminder_fires_once_when_nothing_was_eaten_and_not_after_a_restart() {
        let store = Store::in_memory().unwrap();
        seed_user(&store, "u");
        let p = persona("Europe/Berlin");
        let goals = [meal_goal()];
        let cfg = GoalsConfig::default();
        let ctx = Context { persona: &p, persona_uid: "uid", goals: &goals, config: &cfg };
        let sent = run_day(&store, &ctx, "Europe/Berlin", "2026-05-08");
        let reminders: Vec<_> = sent.iter().filter(|m| m.kind == SendKind::Reminder).collect();
        assert_eq!(reminders.len(), 1, "{sent:?}");
        assert_eq!(reminders[0].slot, "2026-05-08T13:00");
        assert_eq!(reminders[0].actions[0].id, actions::GOAL_DONE);
        // A second pass over the same day (a restart) sends nothing again.
        assert!(run_day(&store, &ctx, "Europe/Berlin", "2026-05-08").is_empty());
    }

    #[test]
    fn no_reminder_when_a_meal_was_logged_and_a_missed_one_is_dropped() {
        let store = Store::in_memory().unwrap();
        seed_user(&store, "u");
        let p = persona("Europe/Berlin");
        let goals = [meal_goal()];
        let cfg = GoalsConfig::default();
        let ctx = Context { persona: &p, persona_uid: "uid", goals: &goals, config: &cfg };
        checkin(
            &store,
            "u",
            at("Europe/Berlin", "2026-05-08 08:00"),
            "2026-05-08",
            r#"{"meals":[{"meal":"breakfast","status":"eaten"}]}"#,
        );
        assert!(tick(&store, &ctx, at("Europe/Berlin", "2026-05-08 13:00")).unwrap().is_empty());
        // The next day nothing was eaten, but the process was down until 13:30: dropped, not late.
        assert!(tick(&store, &ctx, at("Europe/Berlin", "2026-05-09 13:30")).unwrap().is_empty());
        assert_eq!(tick(&store, &ctx, at("Europe/Berlin", "2026-05-10 13:05")).unwrap().len(), 1);
    }

    #[test]
    fn the_daily_cap_holds_and_pause_stops_everything() {
        let store = Store::in_memory().unwrap();
        seed_user(&store, "u");
        let mut p = persona("UTC");
        p.check_ins.per_day = 2;
        let goals: Vec<Goal> = (0..5)
            .map(|i| {
                let mut spec = goal(Metric::Water, 6, Period::Day);
                spec.reminders = vec![GoalReminder { at: format!("1{i}:00"), message: String::new() }];
                Goal::new(&format!("water-{i}"), spec)
            })
            .collect();
        let cfg = GoalsConfig::default();
        let ctx = Context { persona: &p, persona_uid: "uid", goals: &goals, config: &cfg };
        let sent = run_day(&store, &ctx, "UTC", "2026-05-08");
        // Cap 4 minus 2 planned check-ins.
        assert_eq!(sent.iter().filter(|m| m.kind.counts_against_cap()).count(), 2, "{sent:?}");

        let reply = pause_command(&store, "u", "2d", Tz::UTC, at("UTC", "2026-05-09 08:00")).unwrap();
        assert!(reply.contains("Monday 11 May"), "{reply}");
        assert!(run_day(&store, &ctx, "UTC", "2026-05-09").is_empty());
        assert!(run_day(&store, &ctx, "UTC", "2026-05-10").is_empty());
        assert!(!run_day(&store, &ctx, "UTC", "2026-05-11").is_empty());
    }

    #[test]
    fn snooze_brings_the_reminder_back_and_skip_silences_the_day() {
        let store = Store::in_memory().unwrap();
        seed_user(&store, "u");
        let p = persona("UTC");
        let goals = [meal_goal()];
        let cfg = GoalsConfig::default();
        let ctx = Context { persona: &p, persona_uid: "uid", goals: &goals, config: &cfg };
        let first = tick(&store, &ctx, at("UTC", "2026-05-08 13:00")).unwrap();
        assert_eq!(first.len(), 1);
        actions::handle(
            &store,
            &cfg,
            actions::GOAL_SNOOZE,
            "meals|2026-05-08T13:00",
            "u",
            Tz::UTC,
            at("UTC", "2026-05-08 13:01"),
        )
        .unwrap();
        assert!(tick(&store, &ctx, at("UTC", "2026-05-08 13:20")).unwrap().is_empty());
        let back = tick(&store, &ctx, at("UTC", "2026-05-08 13:31")).unwrap();
        assert_eq!(back.len(), 1);
        assert!(back[0].slot.starts_with("snooze:"));
        actions::handle(&store, &cfg, actions::GOAL_SKIP, "meals|x", "u", Tz::UTC, at("UTC", "2026-05-08 13:32"))
            .unwrap();
        assert!(run_day(&store, &ctx, "UTC", "2026-05-08").is_empty());
    }

    #[test]
    fn pillar_question_is_asked_once_with_buttons() {
        let store = Store::in_memory().unwrap();
        seed_user(&store, "u");
        let p = persona("UTC");
        let cfg = GoalsConfig::default();
        let ctx = Context { persona: &p, persona_uid: "uid", goals: &[], config: &cfg };
        for day in ["2026-05-06", "2026-05-07", "2026-05-08"] {
            checkin(&store, "u", at("UTC", &format!("{day} 08:00")), day, r#"{"pillars":["sleep"]}"#);
        }
        let sent = run_day(&store, &ctx, "UTC", "2026-05-08");
        let q: Vec<_> = sent.iter().filter(|m| m.kind == SendKind::Pillar).collect();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].text, "You've mentioned sleep 3 times this week. Should I keep track of sleep for you?");
        assert_eq!(q[0].actions[0].id, actions::PILLAR_YES);
        let learned = pillars::learned(&store.conn(), "u").unwrap();
        assert_eq!(learned[0].evidence.len(), 3);
        // Unanswered: not asked again the next day.
        assert!(run_day(&store, &ctx, "UTC", "2026-05-09").iter().all(|m| m.kind != SendKind::Pillar));
    }

    #[test]
    fn backoff_after_three_unanswered_check_ins_is_said_once() {
        let store = Store::in_memory().unwrap();
        seed_user(&store, "u");
        let mut p = persona("UTC");
        p.check_ins.per_day = 4;
        let cfg = GoalsConfig::default();
        let ctx = Context { persona: &p, persona_uid: "uid", goals: &[], config: &cfg };
        for h in [9, 12, 15] {
            store
                .conn()
                .execute(
                    "INSERT INTO checkin_prompts (user_id, persona_name, persona_version, prompt, sent_at) VALUES ('u', 'p', 'v', 'How are you?', ?1)",
                    params![db::ts(at("UTC", &format!("2026-05-07 {h}:00")))],
                )
                .unwrap();
        }
        let day = "2026-05-08".parse().unwrap();
        let drawn = gate::planned_checkins(&p, "uid", day, false);
        let now = at("UTC", "2026-05-08 00:00");
        let decisions: Vec<_> = drawn.iter().map(|s| checkin_gate(&store, "u", &ctx, *s, now).unwrap()).collect();
        let notices = decisions.iter().filter(|d| matches!(d, CheckinDecision::Send { notice: Some(_) })).count();
        let sends = decisions.iter().filter(|d| matches!(d, CheckinDecision::Send { .. })).count();
        assert_eq!((sends, notices), (2, 1), "{decisions:?}");
        // The user answers: back to normal.
        checkin(&store, "u", at("UTC", "2026-05-08 00:30"), "2026-05-08", "{}");
        let after: Vec<_> = drawn.iter().map(|s| checkin_gate(&store, "u", &ctx, *s, now).unwrap()).collect();
        assert!(after.iter().all(|d| *d == CheckinDecision::Send { notice: None }), "{after:?}");
    }

    #[test]
    fn follow_through_rides_on_the_next_check_in() {
        let store = Store::in_memory().unwrap();
        seed_user(&store, "u");
        let p = persona("UTC");
        let cfg = GoalsConfig::default();
        let ctx = Context { persona: &p, persona_uid: "uid", goals: &[], config: &cfg };
        checkin(&store, "u", at("UTC", "2026-05-07 20:00"), "2026-05-07", r#"{"intentions":["going to bed early"]}"#);
        let sent = run_day(&store, &ctx, "UTC", "2026-05-08");
        let ft: Vec<_> = sent.iter().filter(|m| m.kind == SendKind::FollowThrough).collect();
        assert_eq!(ft.len(), 1, "{sent:?}");
        assert_eq!(ft[0].text, "You said you were going to bed early. How did that go?");
    }
}
