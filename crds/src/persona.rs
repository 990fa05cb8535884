//! Persona: how the assistant speaks, what a check-in should tell, and when it checks in.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bounds;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "wellbeing.dev",
    version = "v1alpha1",
    kind = "Persona",
    namespaced,
    status = "PersonaStatus",
    shortname = "pers",
    cel,
    derive = "PartialEq",
    doc = "How the assistant speaks and when it checks in. One Persona per namespace is active.",
    printcolumn(name = "Display", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Active", type_ = "boolean", json_path = ".spec.active"),
    printcolumn(name = "Next check-in", type_ = "string", json_path = ".status.nextCheckIn"),
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
pub struct PersonaSpec {
    /// Name the assistant uses for itself.
    #[schemars(length(max = bounds::DNS_LABEL))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.displayName must not be empty"))]
    pub display_name: String,
    /// System prompt that shapes every reply in this persona's voice.
    #[serde(default)]
    #[schemars(length(max = bounds::SYSTEM_PROMPT))]
    pub system_prompt: String,
    /// Tone words for the offline reply templates and the LLM prompt, e.g. "warm, brief".
    #[serde(default = "default_tone")]
    #[schemars(length(max = bounds::SHORT_TEXT))]
    pub tone: String,
    /// Only one Persona per namespace may be active; two active ones get a Conflict condition.
    #[serde(default)]
    pub active: bool,
    /// When and how the assistant asks how the user is doing.
    pub check_ins: CheckInSchedule,
    /// What a check-in should tell. Missing fields get one follow-up question.
    #[serde(default)]
    #[schemars(length(max = bounds::REQUIRED_FIELDS))]
    pub required_fields: Vec<RequiredField>,
    /// LLM preferences per task class.
    #[serde(default)]
    pub models: ModelPreferences,
    /// Crisis resources shown instead of coaching when a message mentions self-harm. Empty: the
    /// built-in international default.
    #[serde(default)]
    #[schemars(length(max = bounds::HAND_LIST), inner(length(max = bounds::SHORT_TEXT)))]
    pub crisis_resources: Vec<String>,
}

fn default_tone() -> String {
    "warm, brief, encouraging".to_string()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.perDay >= 1 && self.perDay <= 24").message("spec.checkIns.perDay must be between 1 and 24"))]
#[x_kube(validation = Rule::new("self.minGapMinutes >= 0 && self.minGapMinutes <= 720").message("spec.checkIns.minGapMinutes must be between 0 and 720"))]
#[x_kube(validation = Rule::new("self.windows.size() >= 1").message("spec.checkIns.windows needs at least one window"))]
pub struct CheckInSchedule {
    /// IANA time zone, e.g. "Europe/Berlin". Check-in times and days follow it.
    #[schemars(length(max = bounds::TIME_ZONE))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.checkIns.timeZone must be an IANA time zone such as Europe/Berlin"))]
    pub time_zone: String,
    /// Local time windows in which check-ins may happen.
    #[schemars(length(max = bounds::PER_DAY))]
    pub windows: Vec<TimeWindow>,
    /// Check-ins per day, each at a random time inside the windows.
    #[serde(default = "default_per_day")]
    pub per_day: i32,
    /// Minimum minutes between two check-ins of the same day.
    #[serde(default = "default_min_gap")]
    pub min_gap_minutes: i32,
    /// Days without check-ins.
    #[serde(default)]
    #[schemars(length(max = bounds::WEEKDAYS))]
    pub quiet_days: Vec<Weekday>,
    /// Where check-ins are sent.
    #[serde(default)]
    pub channel: Channel,
    /// Check-in prompts; one is picked per check-in. Empty: built-in prompts.
    #[serde(default)]
    #[schemars(length(max = bounds::HAND_LIST), inner(length(max = bounds::SHORT_TEXT)))]
    pub prompts: Vec<String>,
}

fn default_per_day() -> i32 {
    3
}

fn default_min_gap() -> i32 {
    90
}

const HHMM: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.start < self.end").message("a check-in window's start must be before its end"))]
pub struct TimeWindow {
    /// Local start, "HH:MM".
    #[schemars(regex(pattern = HHMM), length(max = bounds::HHMM))]
    #[x_kube(validation = Rule::new("self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')").message("window start must be HH:MM (00:00 to 23:59)"))]
    pub start: String,
    /// Local end, "HH:MM" (exclusive).
    #[schemars(regex(pattern = HHMM), length(max = bounds::HHMM))]
    #[x_kube(validation = Rule::new("self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')").message("window end must be HH:MM (00:00 to 23:59)"))]
    pub end: String,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub fn from_chrono(day: chrono::Weekday) -> Self {
        match day {
            chrono::Weekday::Mon => Weekday::Monday,
            chrono::Weekday::Tue => Weekday::Tuesday,
            chrono::Weekday::Wed => Weekday::Wednesday,
            chrono::Weekday::Thu => Weekday::Thursday,
            chrono::Weekday::Fri => Weekday::Friday,
            chrono::Weekday::Sat => Weekday::Saturday,
            chrono::Weekday::Sun => Weekday::Sunday,
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Slack,
    Sms,
    Email,
    /// The local page of `wellbeing up`.
    Local,
}

/// Fields of a check-in a persona may require.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RequiredField {
    Mood,
    Energy,
    Stress,
    Sleep,
    Hunger,
    Meals,
    Water,
    Exercise,
}

impl RequiredField {
    pub fn as_str(self) -> &'static str {
        match self {
            RequiredField::Mood => "mood",
            RequiredField::Energy => "energy",
            RequiredField::Stress => "stress",
            RequiredField::Sleep => "sleep",
            RequiredField::Hunger => "hunger",
            RequiredField::Meals => "meals",
            RequiredField::Water => "water",
            RequiredField::Exercise => "exercise",
        }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelPreferences {
    /// Model for turning a message into a structured check-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::MODEL_ID))]
    pub extraction: Option<String>,
    /// Model for replies in the persona's voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::MODEL_ID))]
    pub reply: Option<String>,
    /// Model for writing plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::MODEL_ID))]
    pub code: Option<String>,
    /// Prefer smaller models and shorter prompts.
    #[serde(default)]
    pub conserve_tokens: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PersonaStatus {
    #[serde(default)]
    #[schemars(length(max = bounds::CONDITIONS))]
    pub conditions: Vec<Condition>,
    /// Today's check-in times still to come, RFC 3339 with the persona's offset. Times that have
    /// passed drop out as the day goes on (see `checkInsToday` for the whole day).
    #[serde(default)]
    #[schemars(length(max = bounds::PER_DAY), inner(length(max = bounds::TIMESTAMP)))]
    pub next_check_ins: Vec<String>,
    /// The next check-in, today's or the next active day's; what `kubectl get personas` shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::TIMESTAMP))]
    pub next_check_in: Option<String>,
    /// How many check-ins today's draw holds (past and to come).
    #[serde(default)]
    pub check_ins_today: i32,
    /// Local date the current check-in times were drawn for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::DATE))]
    pub schedule_date: Option<String>,
    /// Generation plus a hash of the prompt fields; recorded with every interaction it shapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::VERSION))]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl PersonaSpec {
    /// A short hash of everything that shapes what the assistant says, so stored interactions can
    /// name the exact persona version that produced them.
    pub fn prompt_hash(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [&self.display_name, &self.system_prompt, &self.tone] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        for prompt in &self.check_ins.prompts {
            hasher.update(prompt.as_bytes());
            hasher.update([0]);
        }
        for field in &self.required_fields {
            hasher.update(field.as_str().as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..6])
    }
}

impl Persona {
    /// `status.version`: generation plus prompt hash, e.g. "3-1a2b3c4d5e6f".
    pub fn version(&self) -> String {
        format!("{}-{}", self.metadata.generation.unwrap_or(0), self.spec.prompt_hash())
    }
}
