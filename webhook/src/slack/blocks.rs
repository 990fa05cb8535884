//! The Slack rendering of channel-neutral messages: text and actions as Block Kit.

use serde_json::{Value, json};
use wellbeing_assistant::message::{Action, ActionStyle};

/// Escape text for Slack mrkdwn (`&`, `<`, `>` are control characters there).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn button(action: &Action) -> Value {
    let mut b = json!({
        "type": "button",
        "text": { "type": "plain_text", "text": action.label },
        "action_id": action.id,
        "value": action.value,
    });
    match action.style {
        ActionStyle::Primary => b["style"] = json!("primary"),
        ActionStyle::Danger => b["style"] = json!("danger"),
        ActionStyle::Default => {}
    }
    b
}

/// Block Kit for `text` with its actions: a section, then one actions block. `None` when there
/// are no actions (the message is sent as plain text). The block id is the shared prefix of the
/// action ids (`wellbeing.goal`, `wellbeing.pillar`), as in messages sent before.
pub fn render(text: &str, actions: &[Action]) -> Option<Value> {
    let first = actions.first()?;
    let block_id = first.id.rsplit_once('.').map_or(first.id.as_str(), |(prefix, _)| prefix);
    Some(json!([
        { "type": "section", "text": { "type": "mrkdwn", "text": slack_escape(text) } },
        { "type": "actions", "block_id": block_id, "elements": actions.iter().map(button).collect::<Vec<_>>() }
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_assistant::goals::actions::{self, GOAL_DONE, GOAL_SKIP, GOAL_SNOOZE, PILLAR_NEVER};

    #[test]
    fn block_kit_carries_the_documented_action_ids_and_escapes_text() {
        let b = render("Eat <something> & drink", &actions::goal_actions("meals", "2026-05-08T13:00")).unwrap();
        assert_eq!(b[0]["text"]["text"], "Eat &lt;something&gt; &amp; drink");
        assert_eq!(b[1]["block_id"], "wellbeing.goal");
        let ids: Vec<&str> =
            b[1]["elements"].as_array().unwrap().iter().map(|e| e["action_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [GOAL_DONE, GOAL_SNOOZE, GOAL_SKIP]);
        assert_eq!(b[1]["elements"][0]["value"], "meals|2026-05-08T13:00");
        assert_eq!(b[1]["elements"][0]["style"], "primary");
        assert!(b[1]["elements"][1].get("style").is_none());
        let p = render("Track sleep?", &actions::pillar_actions(42)).unwrap();
        assert_eq!(p[1]["elements"][2]["action_id"], PILLAR_NEVER);
        assert_eq!(p[1]["elements"][2]["style"], "danger");
        assert_eq!(p[1]["elements"][0]["value"], "42");
        assert_eq!(render("plain", &[]), None);
    }
}
