//! Slack buttons on reminders, nudges and pillar questions: the Block Kit they are sent with and
//! the handler Slack's interactivity endpoint routes their clicks to.
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
use serde_json::{Value, json};
use wellbeing_crds::GoalSpec;

use super::db::{self, Snooze};
use super::pillars::{self, Answer};
use super::{GoalsConfig, local_date};
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

/// Escape text for Slack mrkdwn (`&`, `<`, `>` are control characters there).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn button(text: &str, action_id: &str, value: &str, style: Option<&str>) -> Value {
    let mut b = json!({
        "type": "button",
        "text": { "type": "plain_text", "text": text },
        "action_id": action_id,
        "value": value,
    });
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    b
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": slack_escape(text) } })
}

/// Blocks of a reminder or nudge: the text, then Done / Snooze 30 min / Skip today.
pub fn goal_blocks(text: &str, goal: &str, slot: &str) -> Value {
    let value = format!("{goal}|{slot}");
    json!([
        section(text),
        { "type": "actions", "block_id": "wellbeing.goal", "elements": [
            button("Done", GOAL_DONE, &value, Some("primary")),
            button("Snooze 30 min", GOAL_SNOOZE, &value, None),
            button("Skip today", GOAL_SKIP, &value, None),
        ]}
    ])
}

/// Blocks of a pillar question: the text, then Yes / Not now / Never.
pub fn pillar_blocks(text: &str, suggestion_id: i64) -> Value {
    let value = suggestion_id.to_string();
    json!([
        section(text),
        { "type": "actions", "block_id": "wellbeing.pillar", "elements": [
            button("Yes", PILLAR_YES, &value, Some("primary")),
            button("Not now", PILLAR_NOT_NOW, &value, None),
            button("Never", PILLAR_NEVER, &value, Some("danger")),
        ]}
    ])
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
    fn blocks_carry_the_documented_action_ids_and_escape_text() {
        let b = goal_blocks("Eat <something> & drink", "meals", "2026-05-08T13:00");
        assert_eq!(b[0]["text"]["text"], "Eat &lt;something&gt; &amp; drink");
        let ids: Vec<&str> =
            b[1]["elements"].as_array().unwrap().iter().map(|e| e["action_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [GOAL_DONE, GOAL_SNOOZE, GOAL_SKIP]);
        assert_eq!(b[1]["elements"][0]["value"], "meals|2026-05-08T13:00");
        let p = pillar_blocks("Track sleep?", 42);
        assert_eq!(p[1]["elements"][2]["action_id"], PILLAR_NEVER);
        assert_eq!(p[1]["elements"][0]["value"], "42");
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
