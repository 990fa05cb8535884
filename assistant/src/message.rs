//! What the assistant says, independent of the channel it goes out on: text plus the actions
//! (buttons) the person can answer with. Each channel adapter renders it (Block Kit in Slack,
//! buttons on the local page, plain text where a channel has no buttons) and sends the value of
//! a pressed action back with its id.

use serde::{Deserialize, Serialize};

/// How an action is shown where the channel can show emphasis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStyle {
    #[default]
    Default,
    /// The expected answer.
    Primary,
    /// An answer with lasting effect ("Never").
    Danger,
}

/// One answer the person can give with a press.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Stable id the press comes back with (e.g. `wellbeing.goal.done`); in messages already
    /// sent, so never renamed.
    pub id: String,
    pub label: String,
    /// What the press is about (e.g. `goal|slot`).
    pub value: String,
    #[serde(default)]
    pub style: ActionStyle,
}

impl Action {
    pub fn new(id: &str, label: &str, value: &str, style: ActionStyle) -> Action {
        Action { id: id.to_string(), label: label.to_string(), value: value.to_string(), style }
    }
}
