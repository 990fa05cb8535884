//! The actions (buttons) on reminders, nudges and pillar questions, channel-neutral (each channel
//! renders them: Block Kit in Slack, buttons on the local page), and the handler clicks are
//! routed to.
//!
//! Action ids (stable: they are in messages already sent):
//!
//! | action_id                  | value             | effect                                        |
//! |----------------------------|-------------------|-----------------------------------------------|
//! | `wellbeing.goal.done`      | `<goal>\|<slot>`  | counts one event for the goal today (once)    |
//! | `wellbeing.goal.snooze`    | `<goal>\|<slot>`  | the reminder comes back in 30 minutes          |
//! | `wellbeing.goal.skip`      | `<goal>\|<slot>`  | no more reminders or nudges for it today      |
//! | `wellbeing.pillar.yes`     | suggestion id     | creates a Goal for the pillar                 |
//! | `wellbeing.pillar.not_now` | suggestion id     | asks again at the earliest in 14 days         |
//! | `wellbeing.pillar.never`   | suggestion id     | never asks about that pillar again            |

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use wellbeing_crds::GoalSpec;

use super::db::{self, Snooze};
use super::pillars::{self, Answer};
use super::{GoalsConfig, local_date};
use crate::message::{Action, ActionStyle};
use crate::{Store, StoreError};

pub const GOAL_DONE: &str = "wellbeing.goal.done";
pub const GOAL_SNOOZE: &str = "wellbeing.goal.snooze";
pub const GOAL_SKIP: &str = "wellbeing.goal.skip";
pub const PILLAR_YES: &str = "wellbeing.pillar.yes";
pub const PILLAR_NOT_NOW: &str = "wellbeing.pillar.not_now";
pub const PILLAR_NEVER: &str = "wellbeing.pillar.never";

/// Whether an action id belongs to this module (the interactivity handler routes on this).
pub fn is_ours(action_id: &str) -> bool {
    action_id.starts_with("wellbeing.goal.") || action_id.starts_with("wellbeing.pillar.")
}

/// Actions of a reminder or nudge: Done / Snooze 30 min / Skip today, each carrying `goal|slot`.
pub fn goal_actions(goal: &str, slot: &str) -> Vec<Action> {
    let value = format!("{goal}|{slot}");
    vec![
        Action::new(GOAL_DONE, "Done", &value, ActionStyle::Primary),
        Action::new(GOAL_SNOOZE, "Snooze 30 min", &value, ActionStyle::Default),
        Action::new(GOAL_SKIP, "Skip today", &value, ActionStyle::Default),
    ]
}

/// Actions of a pillar question: Yes / Not now / Never, each carrying the suggestion id.
pub fn pillar_actions(suggestion_id: i64) -> Vec<Action> {
    let value = suggestion_id.to_string();
    vec![
        Action::new(PILLAR_YES, "Yes", &value, ActionStyle::Primary),
        Action::new(PILLAR_NOT_NOW, "Not now", &value, ActionStyle::Default),
        Action::new(PILLAR_NEVER, "Never", &value, ActionStyle::Danger),
    ]
}

/// A Goal the host must create ("Yes" on a learned pillar): a manifest file in embedded mode
/// (`manifest::write_goal_manifest`), a Goal resource in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct NewGoal {
    pub name: String,
    pub spec: GoalSpec,
}

/// What a click did: the text to answer with (replacing the buttons), and a Goal to create.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionOutcome {
    pub reply: String,
    pub create_goal: Option<NewGoal>,
}

impl ActionOutcome {
    fn say(reply: impl Into<String>) -> Self {
        ActionOutcome { reply: reply.into(), create_goal: None }
    }
}

/// Handle one click. Returns None for an action id that is not ours. Values come from Slack
/// (signed, but possibly stale or odd): anything unexpected gets a polite answer, never a panic.
#[tracing::instrument(skip(store, value, config), fields(action_id))]
pub fn handle(
    store: &Store,
    config: &GoalsConfig,
    action_id: &str,
    value: &str,
    user: &str,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Option<ActionOutcome>, StoreError> {
    if !is_ours(action_id) {
        return Ok(None);
    }
    let conn = store.conn();
    let today = local_date(tz, now);
    let outcome = match action_id {
        GOAL_DONE | GOAL_SNOOZE | GOAL_SKIP => {
            let Some((goal, slot)) = value.split_once('|').filter(|(g, _)| !g.is_empty() && g.len() <= 253) else {
                return Ok(Some(ActionOutcome::say("That reminder is no longer valid.")));
            };
            match action_id {
                GOAL_DONE => {
                    let slot = if slot.is_empty() { format!("done:{}", db::ts(now)) } else { slot.to_string() };
                    if db::add_manual(&conn, user, goal, today, &slot, now)? {
                        ActionOutcome::say("Nice one, counted for today.")
                    } else {
                        ActionOutcome::say("Already counted.")
                    }
                }
                GOAL_SNOOZE => {
                    let until = now + Duration::minutes(config.snooze_minutes);
                    db::add_snooze(
                        &conn,
                        user,
                        &Snooze { goal: goal.into(), skip: false, local_date: today, until },
                        now,
                    )?;
                    if local_date(tz, until) == today {
                        ActionOutcome::say(format!(
                            "OK, I'll remind you again at {}.",
                            until.with_timezone(&tz).format("%H:%M")
                        ))
                    } else {
                        ActionOutcome::say("OK, not again today.")
                    }
                }
                _ => {
                    let until = super::pause::start_of_day(tz, today.succ_opt().unwrap_or(today));
                    db::add_snooze(
                        &conn,
                        user,
                        &Snooze { goal: goal.into(), skip: true, local_date: today, until },
                        now,
                    )?;
                    ActionOutcome::say("OK, skipping it today. No more reminders about it until tomorrow.")
                }
            }
        }
        PILLAR_YES | PILLAR_NOT_NOW | PILLAR_NEVER => {
            let answer = match action_id {
                PILLAR_YES => Answer::Yes,
                PILLAR_NOT_NOW => Answer::NotNow,
                _ => Answer::Never,
            };
            let Ok(id) = value.trim().parse::<i64>() else {
                return Ok(Some(ActionOutcome::say("That question is no longer open.")));
            };
            let Some(pillar) = pillars::record_answer(&conn, user, id, answer, now)? else {
                return Ok(Some(ActionOutcome::say("That question was already answered.")));
            };
            let name = pillars::display_name(&pillar);
            match answer {
                Answer::Yes => {
                    // The stored name was normalized when asked; normalize again so a row edited by
                    // hand can never become an invalid Goal.
                    let Some(pillar) = pillars::normalize(&pillar) else {
                        return Ok(Some(ActionOutcome::say("I couldn't make a goal from that name, sorry.")));
                    };
                    let goal_name = pillars::goal_name(&pillar);
                    let spec = pillars::default_goal(&pillar);
                    pillars::set_goal_name(&conn, id, &goal_name)?;
                    ActionOutcome {
                        reply: format!(
                            "Great, I'll keep track of {name}: \"{}\". You can change the target in the Goal `{goal_name}`.",
                            spec.description
                        ),
                        create_goal: Some(NewGoal { name: goal_name, spec }),
                    }
                }
                Answer::NotNow => {
                    ActionOutcome::say(format!("OK, I won't ask about {name} for {} days.", config.not_now_days))
                }
                Answer::Never => ActionOutcome::say(format!("Understood, I won't ask about {name} again.")),
            }
        }
        _ => ActionOutcome::say("I don't know that button."),
    };
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::pillars::{Suggestion, record_question};

    fn now() -> DateTime<Utc> {
        "2026-05-08T13:00:00Z".parse().unwrap()
    }

    #[test]
    fn actions_carry_the_documented_ids_and_values() {
        let goal = goal_actions("meals", "2026-05-08T13:00");
        let ids: Vec<&str> = goal.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, [GOAL_DONE, GOAL_SNOOZE, GOAL_SKIP]);
        assert!(goal.iter().all(|a| a.value == "meals|2026-05-08T13:00"));
        let pillar = pillar_actions(42);
        assert_eq!(pillar[2].id, PILLAR_NEVER);
        assert_eq!(pillar[2].style, ActionStyle::Danger);
        assert_eq!(pillar[0].value, "42");
    }

    #[test]
    fn done_snooze_and_skip_are_stored() {
        let store = Store::in_memory().unwrap();
        let cfg = GoalsConfig::default();
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let h = |id: &str, v: &str| handle(&store, &cfg, id, v, "u", tz, now()).unwrap().unwrap();
        assert_eq!(h(GOAL_DONE, "meals|s1").reply, "Nice one, counted for today.");
        assert_eq!(h(GOAL_DONE, "meals|s1").reply, "Already counted.");
        assert_eq!(h(GOAL_SNOOZE, "meals|s1").reply, "OK, I'll remind you again at 15:30.");
        h(GOAL_SKIP, "meals|s1");
        let conn = store.conn();
        let snoozes = db::snoozes_on(&conn, "u", "2026-05-08".parse().unwrap()).unwrap();
        assert_eq!(snoozes.len(), 2);
        assert!(snoozes.iter().any(|s| s.skip && s.until == "2026-05-08T22:00:00Z".parse::<DateTime<Utc>>().unwrap()));
        assert_eq!(db::load_manual(&conn, "u", None).unwrap().len(), 1);
        drop(conn);
        assert_eq!(h(GOAL_DONE, "garbage").reply, "That reminder is no longer valid.");
        assert_eq!(handle(&store, &cfg, "other.action", "x", "u", tz, now()).unwrap(), None);
    }

    #[test]
    fn pillar_answers() {
        let store = Store::in_memory().unwrap();
        let cfg = GoalsConfig::default();
        let id = record_question(
            &store.conn(),
            "u",
            &Suggestion { pillar: "sleep".into(), mentions: 3, evidence: vec![] },
            now(),
        )
        .unwrap();
        let out = handle(&store, &cfg, PILLAR_YES, &id.to_string(), "u", Tz::UTC, now()).unwrap().unwrap();
        let goal = out.create_goal.unwrap();
        assert_eq!(goal.name, "learned-sleep");
        assert!(out.reply.contains("Sleep at least 7 hours"), "{}", out.reply);
        let again = handle(&store, &cfg, PILLAR_NEVER, &id.to_string(), "u", Tz::UTC, now()).unwrap().unwrap();
        assert_eq!(again.reply, "That question was already answered.");
        let odd = handle(&store, &cfg, PILLAR_NOT_NOW, "💥<script>", "u", Tz::UTC, now()).unwrap().unwrap();
        assert_eq!(odd.reply, "That question is no longer open.");
        let id2 = record_question(
            &store.conn(),
            "u",
            &Suggestion { pillar: "deep-work".into(), mentions: 3, evidence: vec![] },
            now(),
        )
        .unwrap();
        let nn = handle(&store, &cfg, PILLAR_NOT_NOW, &id2.to_string(), "u", Tz::UTC, now()).unwrap().unwrap();
        assert_eq!(nn.reply, "OK, I won't ask about deep work for 14 days.");
    }
}
