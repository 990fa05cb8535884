//! Goal: something the user wants to keep doing, and how far along they are.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bounds;
use crate::persona::Weekday;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "wellbeing.dev",
    version = "v1alpha1",
    kind = "Goal",
    namespaced,
    status = "GoalStatus",
    shortname = "gl",
    cel,
    derive = "PartialEq",
    doc = "Something the user wants to keep doing, with a target per day, week or month.",
    printcolumn(name = "Pillar", type_ = "string", json_path = ".spec.pillar"),
    printcolumn(name = "Metric", type_ = "string", json_path = ".spec.metric"),
    printcolumn(name = "Progress", type_ = "string", json_path = ".status.progress.summary"),
    printcolumn(name = "On track", type_ = "boolean", json_path = ".status.progress.onTrack"),
    printcolumn(name = "Covered by", type_ = "string", json_path = ".status.coveredBy"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct GoalSpec {
    /// What the user wants, in their words.
    #[schemars(length(max = bounds::SHORT_TEXT))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.description must not be empty"))]
    pub description: String,
    /// The wellbeing concern this goal serves: one of the built-in pillars or the user's own.
    #[schemars(length(max = bounds::DNS_LABEL))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')").message("spec.pillar must be lowercase letters, digits and dashes (at most 63)"))]
    pub pillar: String,
    /// What in a check-in counts towards the goal.
    pub metric: Metric,
    /// How many counted events (or days over the threshold) per period.
    pub target: GoalTarget,
    #[serde(default)]
    pub priority: Priority,
    /// Reminders for this goal; they fire only when the goal is behind.
    #[serde(default)]
    #[schemars(length(max = bounds::PER_DAY))]
    pub reminders: Vec<GoalReminder>,
    /// Days that never break a streak.
    #[serde(default)]
    #[schemars(length(max = bounds::WEEKDAYS))]
    pub rest_days: Vec<Weekday>,
    /// Extra words that tie plugins to this goal.
    #[serde(default)]
    #[schemars(length(max = bounds::HAND_LIST), inner(length(max = bounds::DNS_LABEL)))]
    pub keywords: Vec<String>,
}

/// What a check-in contributes to a goal.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A workout done.
    Exercise,
    /// A meal eaten.
    Meal,
    /// Glasses of water (or a mention of drinking water).
    Water,
    /// Hours slept; use with `target.threshold`.
    SleepHours,
    /// A night of good sleep.
    GoodSleep,
    /// Any answered check-in.
    Checkin,
    /// A check-in with positive mood.
    PositiveMood,
    /// A check-in with low stress.
    LowStress,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Exercise => "exercise",
            Metric::Meal => "meal",
            Metric::Water => "water",
            Metric::SleepHours => "sleep_hours",
            Metric::GoodSleep => "good_sleep",
            Metric::Checkin => "checkin",
            Metric::PositiveMood => "positive_mood",
            Metric::LowStress => "low_stress",
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.count >= 1 && self.count <= 1000").message("spec.target.count must be between 1 and 1000"))]
pub struct GoalTarget {
    /// Counted events (or days meeting the threshold) per period.
    pub count: i32,
    pub per: Period,
    /// For measured metrics (sleep_hours, water): a day counts when the value reaches this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Week,
    Month,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GoalReminder {
    /// Local time, "HH:MM", after which the reminder may fire if nothing was logged.
    #[schemars(length(max = bounds::HHMM))]
    #[x_kube(validation = Rule::new("self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')").message("reminder time must be HH:MM"))]
    pub at: String,
    /// Text of the reminder; empty for the built-in one.
    #[serde(default)]
    #[schemars(length(max = bounds::SHORT_TEXT))]
    pub message: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GoalStatus {
    /// Written by the assistant (field manager `wellbeing-assistant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<GoalProgress>,
    /// Plugins whose triggers match this goal (written by the operator).
    #[serde(default)]
    #[schemars(length(max = bounds::NAME_LIST), inner(length(max = bounds::DNS_SUBDOMAIN)))]
    pub covered_by: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = bounds::CONDITIONS))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GoalProgress {
    pub current: i32,
    pub target: i32,
    /// "current/target", for `kubectl get`.
    #[schemars(length(max = bounds::SUMMARY))]
    pub summary: String,
    /// First local date of the period (YYYY-MM-DD).
    #[schemars(length(max = bounds::DATE))]
    pub period_start: String,
    /// Last local date of the period (YYYY-MM-DD).
    #[schemars(length(max = bounds::DATE))]
    pub period_end: String,
    pub on_track: bool,
    /// Consecutive periods met.
    #[serde(default)]
    pub streak: i32,
}
