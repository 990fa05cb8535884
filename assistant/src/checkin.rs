//! The structured check-in: what one message (plus its follow-up) says about the user's day.
//!
//! One Rust type is the single source of truth: the LLM's JSON schema is generated from it, the
//! offline extractor fills it, SQLite stores it as JSON, `wellbeing extract` prints it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct CheckIn {
    /// One word for how the user feels ("tired", "great", "anxious"); null when not said.
    pub mood: Option<String>,
    pub valence: Valence,
    pub energy: Level,
    pub stress: Level,
    pub sleep_quality: SleepQuality,
    /// Hours slept last night, when stated or clearly implied.
    pub sleep_hours: Option<f64>,
    pub hunger: Hunger,
    /// Meals mentioned, eaten or skipped.
    pub meals: Vec<Meal>,
    /// Glasses of water drunk (a plain "drank water" is 1, "no water all day" is 0); null when not said.
    pub water: Option<f64>,
    pub exercise: Exercise,
    /// The activity, e.g. "run", "yoga", "gym"; null when none was named.
    pub activity: Option<String>,
    /// Things the user means to do ("going to bed early", "call mum").
    pub intentions: Vec<String>,
    /// Wellbeing concerns the message touches.
    pub pillars: Vec<Pillar>,
    /// The message mentions self-harm or suicide.
    pub crisis: bool,
    /// 0 when the message is about today, -1 when about yesterday ("yesterday I went for a run").
    pub day_offset: i32,
    /// Required fields the message did not answer (filled by the assistant, not the extractor).
    pub missing: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Valence {
    Positive,
    Neutral,
    Negative,
    #[default]
    Unknown,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Low,
    Medium,
    High,
    #[default]
    Unknown,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SleepQuality {
    Good,
    Average,
    Poor,
    #[default]
    Unknown,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Hunger {
    Hungry,
    NotHungry,
    #[default]
    Unknown,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Meal {
    pub meal: MealKind,
    pub status: MealStatus,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum MealKind {
    Breakfast,
    Lunch,
    Dinner,
    Snack,
    /// "haven't eaten", "ate something" without naming the meal.
    Meal,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum MealStatus {
    Eaten,
    Skipped,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Exercise {
    Done,
    Planned,
    None,
    #[default]
    Unknown,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Pillar {
    Nutrition,
    PhysicalActivity,
    Sleep,
    Stress,
    Social,
    WorkBalance,
    Hydration,
    Purpose,
}

impl Pillar {
    pub const ALL: [Pillar; 8] = [
        Pillar::Nutrition,
        Pillar::PhysicalActivity,
        Pillar::Sleep,
        Pillar::Stress,
        Pillar::Social,
        Pillar::WorkBalance,
        Pillar::Hydration,
        Pillar::Purpose,
    ];

    /// The same names as `wellbeing_crds::BUILTIN_PILLARS` and Goal.spec.pillar.
    pub fn as_str(self) -> &'static str {
        match self {
            Pillar::Nutrition => "nutrition",
            Pillar::PhysicalActivity => "physical-activity",
            Pillar::Sleep => "sleep",
            Pillar::Stress => "stress",
            Pillar::Social => "social",
            Pillar::WorkBalance => "work-balance",
            Pillar::Hydration => "hydration",
            Pillar::Purpose => "purpose",
        }
    }

    pub fn parse(name: &str) -> Option<Pillar> {
        Pillar::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// Names of the check-in fields a persona can require (`RequiredField` in the crds crate) and
/// whether this check-in answers each. Used to decide the one follow-up question.
pub fn missing_required(checkin: &CheckIn, required: &[wellbeing_crds::persona::RequiredField]) -> Vec<String> {
    use wellbeing_crds::persona::RequiredField as F;
    required
        .iter()
        .filter(|f| match f {
            F::Mood => checkin.mood.is_none() && checkin.valence == Valence::Unknown,
            F::Energy => checkin.energy == Level::Unknown,
            F::Stress => checkin.stress == Level::Unknown,
            F::Sleep => checkin.sleep_quality == SleepQuality::Unknown && checkin.sleep_hours.is_none(),
            F::Hunger => checkin.hunger == Hunger::Unknown && checkin.meals.is_empty(),
            F::Meals => checkin.meals.is_empty(),
            F::Water => checkin.water.is_none(),
            F::Exercise => checkin.exercise == Exercise::Unknown,
        })
        .map(|f| f.as_str().to_string())
        .collect()
}

impl CheckIn {
    /// Merge a follow-up answer into this check-in: known values from `other` fill unknowns here,
    /// lists are united. A check-in and its follow-up are one event.
    pub fn merge(&mut self, other: &CheckIn) {
        fn fill<T: PartialEq + Copy>(mine: &mut T, theirs: T, unknown: T) {
            if *mine == unknown && theirs != unknown {
                *mine = theirs;
            }
        }
        if self.mood.is_none() {
            self.mood.clone_from(&other.mood);
        }
        fill(&mut self.valence, other.valence, Valence::Unknown);
        fill(&mut self.energy, other.energy, Level::Unknown);
        fill(&mut self.stress, other.stress, Level::Unknown);
        fill(&mut self.sleep_quality, other.sleep_quality, SleepQuality::Unknown);
        fill(&mut self.hunger, other.hunger, Hunger::Unknown);
        fill(&mut self.exercise, other.exercise, Exercise::Unknown);
        if self.sleep_hours.is_none() {
            self.sleep_hours = other.sleep_hours;
        }
        if self.water.is_none() {
            self.water = other.water;
        }
        if self.activity.is_none() {
            self.activity.clone_from(&other.activity);
        }
        for m in &other.meals {
            if !self.meals.contains(m) {
                self.meals.push(m.clone());
            }
        }
        for i in &other.intentions {
            if !self.intentions.contains(i) {
                self.intentions.push(i.clone());
            }
        }
        for p in &other.pillars {
            if !self.pillars.contains(p) {
                self.pillars.push(*p);
            }
        }
        self.pillars.sort();
        self.crisis |= other.crisis;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_crds::persona::RequiredField;

    #[test]
    fn json_uses_the_documented_names() {
        let c = CheckIn {
            sleep_quality: SleepQuality::Poor,
            hunger: Hunger::NotHungry,
            meals: vec![Meal { meal: MealKind::Breakfast, status: MealStatus::Skipped }],
            pillars: vec![Pillar::WorkBalance],
            ..Default::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["sleep_quality"], "poor");
        assert_eq!(v["hunger"], "not_hungry");
        assert_eq!(v["meals"][0]["status"], "skipped");
        assert_eq!(v["pillars"][0], "work-balance");
        assert_eq!(v["exercise"], "unknown");
    }

    #[test]
    fn follow_up_fills_what_was_missing() {
        let mut c = CheckIn { energy: Level::Low, ..Default::default() };
        let required = [RequiredField::Energy, RequiredField::Exercise];
        assert_eq!(missing_required(&c, &required), vec!["exercise"]);
        c.merge(&CheckIn { exercise: Exercise::Planned, energy: Level::High, ..Default::default() });
        assert_eq!(c.exercise, Exercise::Planned);
        assert_eq!(c.energy, Level::Low, "a known value is never overwritten");
        assert!(missing_required(&c, &required).is_empty());
    }
}
