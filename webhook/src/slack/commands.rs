//! Slash commands (`/checkin`, `/wellbeing`) and interactivity payloads: parsing and the pure
//! decision of what each one asks for.

use serde::Deserialize;
use serde_json::Value;

/// The form Slack posts for a slash command (the fields the assistant reads).
#[derive(Debug, Clone, Deserialize)]
pub struct SlashCommand {
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub team_id: String,
    pub user_id: String,
    #[serde(default)]
    pub channel_id: Option<String>,
    pub response_url: String,
    pub trigger_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandAction {
    /// `/checkin TEXT`
    CheckIn(String),
    /// `/checkin` alone: open the check-in form.
    OpenCheckInForm,
    Help,
    Export,
    Forget,
    /// `/wellbeing pause [how long]`
    Pause(String),
    Resume,
    /// Anything else: answered with the help text.
    Unknown(String),
}

/// Command names as configured in slack/manifest.yaml.
pub const CHECKIN_COMMAND: &str = "/checkin";
pub const WELLBEING_COMMAND: &str = "/wellbeing";

pub fn parse(command: &str, text: &str) -> CommandAction {
    let text = text.trim();
    match command {
        CHECKIN_COMMAND if text.is_empty() => CommandAction::OpenCheckInForm,
        CHECKIN_COMMAND => CommandAction::CheckIn(text.to_string()),
        WELLBEING_COMMAND => {
            let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
            match word.to_ascii_lowercase().as_str() {
                "" | "help" => CommandAction::Help,
                "export" => CommandAction::Export,
                "forget" | "delete" => CommandAction::Forget,
                "pause" => CommandAction::Pause(rest.trim().to_string()),
                "resume" | "unpause" => CommandAction::Resume,
                other => CommandAction::Unknown(other.to_string()),
            }
        }
        other => CommandAction::Unknown(other.to_string()),
    }
}

/// Action ids of the assistant's own buttons.
pub const FORGET_CONFIRM: &str = "wellbeing_forget_confirm";
pub const FORGET_CANCEL: &str = "wellbeing_forget_cancel";
/// The check-in form's callback id and its input.
pub const CHECKIN_VIEW: &str = "wellbeing_checkin";
const CHECKIN_BLOCK: &str = "checkin";
const CHECKIN_INPUT: &str = "text";

/// An interactivity request (form field `payload`, JSON), the parts the assistant reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Interaction {
    #[serde(rename = "type")]
    pub kind: String,
    pub user: InteractionUser,
    #[serde(default)]
    pub team: Option<Team>,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub response_url: Option<String>,
    #[serde(default)]
    pub view: Option<View>,
    #[serde(default)]
    pub trigger_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InteractionUser {
    pub id: String,
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    pub action_id: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct View {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub callback_id: Option<String>,
    #[serde(default)]
    pub state: Option<Value>,
}

impl Interaction {
    pub fn team_id(&self) -> Option<&str> {
        self.team.as_ref().map(|t| t.id.as_str()).or(self.user.team_id.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractionAction {
    ForgetConfirmed {
        response_url: Option<String>,
    },
    ForgetCancelled {
        response_url: Option<String>,
    },
    /// The check-in form was submitted with this text; `view_id` deduplicates resubmissions.
    CheckInSubmitted {
        view_id: String,
        text: String,
    },
    /// A button or view the assistant does not know (acknowledged, nothing done).
    Other(String),
}

pub fn interpret(interaction: &Interaction) -> InteractionAction {
    match interaction.kind.as_str() {
        "block_actions" => {
            let response_url = interaction.response_url.clone();
            match interaction.actions.first().map(|a| a.action_id.as_str()) {
                Some(FORGET_CONFIRM) => InteractionAction::ForgetConfirmed { response_url },
                Some(FORGET_CANCEL) => InteractionAction::ForgetCancelled { response_url },
                Some(other) => InteractionAction::Other(other.to_string()),
                None => InteractionAction::Other("no_action".into()),
            }
        }
        "view_submission" => {
            let Some(view) = &interaction.view else { return InteractionAction::Other("no_view".into()) };
            if view.callback_id.as_deref() != Some(CHECKIN_VIEW) {
                return InteractionAction::Other(view.callback_id.clone().unwrap_or_default());
            }
            let text = view
                .state
                .as_ref()
                .and_then(|s| s.pointer(&format!("/values/{CHECKIN_BLOCK}/{CHECKIN_INPUT}/value")))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string();
            InteractionAction::CheckInSubmitted { view_id: view.id.clone().unwrap_or_default(), text }
        }
        other => InteractionAction::Other(other.to_string()),
    }
}

/// Block Kit: the confirmation asked before deleting everything.
pub fn forget_confirmation() -> Value {
    serde_json::json!({
        "response_type": "ephemeral",
        "text": "Delete all your wellbeing data?",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Delete all your wellbeing data?*\nEvery check-in, message, goal progress and insight the assistant keeps about you will be deleted. This cannot be undone."
                }
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": FORGET_CONFIRM,
                        "style": "danger",
                        "text": { "type": "plain_text", "text": "Delete everything" },
                        "value": "forget"
                    },
                    {
                        "type": "button",
                        "action_id": FORGET_CANCEL,
                        "text": { "type": "plain_text", "text": "Cancel" },
                        "value": "cancel"
                    }
                ]
            }
        ]
    })
}

/// Block Kit: the check-in form `/checkin` opens when given no text.
pub fn checkin_view(title: &str, prompt: &str) -> Value {
    // Slack limits modal titles to 24 characters.
    let title: String = title.chars().take(24).collect();
    serde_json::json!({
        "type": "modal",
        "callback_id": CHECKIN_VIEW,
        "title": { "type": "plain_text", "text": title },
        "submit": { "type": "plain_text", "text": "Check in" },
        "close": { "type": "plain_text", "text": "Cancel" },
        "blocks": [
            {
                "type": "input",
                "block_id": CHECKIN_BLOCK,
                "label": { "type": "plain_text", "text": prompt },
                "element": { "type": "plain_text_input", "action_id": CHECKIN_INPUT, "multiline": true }
            }
        ]
    })
}

/// A `response_url` / command answer visible only to the user.
pub fn ephemeral(text: &str) -> Value {
    serde_json::json!({ "response_type": "ephemeral", "text": text })
}

/// Replace the message that held the buttons (so they cannot be pressed twice).
pub fn replace_original(text: &str) -> Value {
    serde_json::json!({ "replace_original": true, "text": text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_parsed() {
        assert_eq!(parse("/checkin", " slept great, ran 5k "), CommandAction::CheckIn("slept great, ran 5k".into()));
        assert_eq!(parse("/checkin", ""), CommandAction::OpenCheckInForm);
        assert_eq!(parse("/wellbeing", ""), CommandAction::Help);
        assert_eq!(parse("/wellbeing", "HELP"), CommandAction::Help);
        assert_eq!(parse("/wellbeing", "export"), CommandAction::Export);
        assert_eq!(parse("/wellbeing", "forget"), CommandAction::Forget);
        assert_eq!(parse("/wellbeing", "pause 2 days"), CommandAction::Pause("2 days".into()));
        assert_eq!(parse("/wellbeing", "resume"), CommandAction::Resume);
        assert_eq!(parse("/wellbeing", "dance"), CommandAction::Unknown("dance".into()));
    }

    #[test]
    fn the_forget_button_and_the_form_are_understood() {
        let click: Interaction = serde_json::from_value(serde_json::json!({
            "type": "block_actions", "user": {"id": "U1", "team_id": "T1"}, "team": {"id": "T1"},
            "response_url": "http://127.0.0.1/r", "actions": [{"action_id": FORGET_CONFIRM, "value": "forget"}]
        }))
        .unwrap();
        assert_eq!(
            interpret(&click),
            InteractionAction::ForgetConfirmed { response_url: Some("http://127.0.0.1/r".into()) }
        );
        assert_eq!(click.team_id(), Some("T1"));

        let submit: Interaction = serde_json::from_value(serde_json::json!({
            "type": "view_submission", "user": {"id": "U1", "team_id": "T1"},
            "view": {"id": "V1", "callback_id": CHECKIN_VIEW,
                     "state": {"values": {"checkin": {"text": {"type": "plain_text_input", "value": " tired "}}}}}
        }))
        .unwrap();
        assert_eq!(
            interpret(&submit),
            InteractionAction::CheckInSubmitted { view_id: "V1".into(), text: "tired".into() }
        );
    }

    #[test]
    fn the_confirmation_has_both_buttons() {
        let blocks = forget_confirmation();
        let ids: Vec<&str> = blocks
            .pointer("/blocks/1/elements")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [FORGET_CONFIRM, FORGET_CANCEL]);
    }
}
