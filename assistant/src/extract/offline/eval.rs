//! Scoring an extractor against a labelled set of messages (`assistant/tests/data/checkins.jsonl`,
//! `assistant/data/extract/*.jsonl`; the labelling guide is docs/labelling.md).
//!
//! Each line is `{"text": ..., "expected": {...}}` where `expected` holds only the fields the
//! label asserts, with the data model's names and values. A field is scored on the messages that
//! assert it, except `crisis` and `day_offset`, which are scored on every message (a label that
//! says nothing means "no crisis", "today"): a false crisis flag or a wrong day must show up.
//!
//! Two reports: [`evaluate`] scores every field by plain agreement (the tuned regression set);
//! [`score`] scores the six state fields the way the held-out splits are judged, where a label of
//! `unknown` is an answer too: accuracy over all labelled messages, accuracy over the messages
//! whose label is not `unknown` (informed), and false assertions (a value where the label says
//! `unknown`, as a share of those messages), plus crisis recall and false alarms.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::checkin::CheckIn;

/// The fields scored, in the order of the data model.
pub const FIELDS: &[&str] = &[
    "mood",
    "valence",
    "energy",
    "stress",
    "sleep_quality",
    "sleep_hours",
    "hunger",
    "meals",
    "water",
    "exercise",
    "activity",
    "intentions",
    "pillars",
    "crisis",
    "day_offset",
];

/// One labelled message.
#[derive(Clone, Debug)]
pub struct Example {
    /// 1-based line in the file.
    pub line: usize,
    pub text: String,
    pub expected: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("failed to parse line {line} of the labelled set")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to read line {line} of the labelled set: {problem}")]
    Shape { line: usize, problem: String },
}

/// Parses the JSON-lines set; every label must name real fields with valid values.
pub fn parse(jsonl: &str) -> Result<Vec<Example>, EvalError> {
    let mut out = Vec::new();
    for (i, raw) in jsonl.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(raw).map_err(|source| EvalError::Json { line, source })?;
        let shape = |problem: &str| EvalError::Shape { line, problem: problem.to_string() };
        let text = value.get("text").and_then(Value::as_str).ok_or_else(|| shape("no \"text\" string"))?;
        let expected =
            value.get("expected").and_then(Value::as_object).ok_or_else(|| shape("no \"expected\" object"))?;
        if let Some(unknown) = expected.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(shape(&format!("unknown field {unknown:?}")));
        }
        // The label must be a valid (partial) check-in: enum values and types are checked here.
        serde_json::from_value::<CheckIn>(Value::Object(expected.clone()))
            .map_err(|source| EvalError::Json { line, source })?;
        out.push(Example { line, text: text.to_string(), expected: expected.clone() });
    }
    Ok(out)
}

/// Words that carry no meaning in an intention ("going to call mum" is "call mum").
const INTENTION_STOPWORDS: &[&str] = &[
    "to", "the", "a", "an", "my", "i", "will", "going", "gonna", "go", "some", "for", "and", "of", "at", "in", "on",
    "later", "tonight", "today", "tomorrow", "this", "evening", "be", "i'll", "try", "get",
];

fn intention_words(phrase: &str) -> BTreeSet<String> {
    phrase
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty() && !INTENTION_STOPWORDS.contains(w))
        .map(|w| w.strip_suffix("ing").filter(|s| s.len() > 2).unwrap_or(w).to_string())
        .collect()
}

/// Same number of intentions, and each expected one found (by its content words) in a distinct
/// extracted one: wording may differ ("go to bed early" / "bed early tonight").
fn intentions_match(expected: &[String], actual: &[String]) -> bool {
    if expected.len() != actual.len() {
        return false;
    }
    let mut used = vec![false; actual.len()];
    expected.iter().all(|e| {
        let want = intention_words(e);
        let found = actual.iter().enumerate().find(|(i, a)| !used[*i] && want.is_subset(&intention_words(a)));
        match found {
            Some((i, _)) => {
                used[i] = true;
                true
            }
            None => false,
        }
    })
}

fn as_set(v: &Value) -> BTreeSet<String> {
    v.as_array().map(|a| a.iter().map(|x| x.to_string()).collect()).unwrap_or_default()
}

/// Whether `actual` agrees with the label's value for `field`.
pub fn field_matches(field: &str, expected: &Value, actual: &CheckIn) -> bool {
    let actual_json = serde_json::to_value(actual).expect("a check-in serializes");
    let got = &actual_json[field];
    match field {
        "sleep_hours" | "water" => match (expected.as_f64(), got.as_f64()) {
            (Some(e), Some(g)) => (e - g).abs() < 0.01,
            (None, None) => expected.is_null() && got.is_null(),
            _ => false,
        },
        "meals" | "pillars" => as_set(expected) == as_set(got),
        "intentions" => {
            let e: Vec<String> = serde_json::from_value(expected.clone()).unwrap_or_default();
            intentions_match(&e, &actual.intentions)
        }
        _ => expected == got,
    }
}

/// A field's score and the messages it got wrong.
#[derive(Clone, Debug, Default)]
pub struct FieldScore {
    pub field: &'static str,
    pub scored: usize,
    pub correct: usize,
    /// (line, text, expected, extracted)
    pub failures: Vec<(usize, String, Value, Value)>,
}

impl FieldScore {
    pub fn accuracy(&self) -> f64 {
        if self.scored == 0 { 1.0 } else { self.correct as f64 / self.scored as f64 }
    }
}

/// Per-field scores over a labelled set.
#[derive(Clone, Debug)]
pub struct Report {
    pub messages: usize,
    pub fields: Vec<FieldScore>,
}

/// Runs `extractor` over every example and scores each field.
pub fn evaluate(examples: &[Example], extractor: impl Fn(&str) -> CheckIn) -> Report {
    let mut fields: Vec<FieldScore> = FIELDS.iter().map(|f| FieldScore { field: f, ..Default::default() }).collect();
    for ex in examples {
        let got = extractor(&ex.text);
        let got_json = serde_json::to_value(&got).expect("a check-in serializes");
        for score in &mut fields {
            let expected = match (ex.expected.get(score.field), score.field) {
                (Some(v), _) => v.clone(),
                (None, "crisis") => Value::Bool(false),
                (None, "day_offset") => Value::from(0),
                (None, _) => continue,
            };
            score.scored += 1;
            if field_matches(score.field, &expected, &got) {
                score.correct += 1;
            } else {
                score.failures.push((ex.line, ex.text.clone(), expected, got_json[score.field].clone()));
            }
        }
    }
    Report { messages: examples.len(), fields }
}

impl Report {
    /// The lowest field accuracy.
    pub fn min_accuracy(&self) -> f64 {
        self.fields.iter().map(FieldScore::accuracy).fold(1.0, f64::min)
    }

    /// A Markdown table: field, messages scored, correct, accuracy.
    pub fn table(&self) -> String {
        let mut out = String::from("| field | scored | correct | accuracy |\n|---|---:|---:|---:|\n");
        for f in &self.fields {
            let _ = writeln!(out, "| {} | {} | {} | {:.3} |", f.field, f.scored, f.correct, f.accuracy());
        }
        out
    }

    /// Every failure, for fixing rules or labels.
    pub fn failures(&self) -> String {
        let mut out = String::new();
        for f in &self.fields {
            for (line, text, expected, got) in &f.failures {
                let _ = writeln!(out, "{}: line {line}: expected {expected}, got {got}: {text}", f.field);
            }
        }
        out
    }
}

/// The state fields the held-out splits label on every message, in the data model's order.
pub const STATE_FIELDS: &[&str] = &["valence", "energy", "stress", "sleep_quality", "hunger", "exercise"];

/// The value every state field uses for "the message does not tell".
pub const UNKNOWN: &str = "unknown";

/// Which split a labelled message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// The split of a message, from its text alone: SHA-256, first 8 bytes big-endian, modulo 100;
/// below 60 train, below 80 dev, else test. Fixed by the text so that no one can move a message
/// to a friendlier split, and so that a new message lands where it lands.
pub fn split_of(text: &str) -> Split {
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    match u64::from_be_bytes(first) % 100 {
        0..60 => Split::Train,
        60..80 => Split::Dev,
        _ => Split::Test,
    }
}

/// The string value of a state field in a check-in (`"unknown"` when not said).
pub fn state_value(checkin: &CheckIn, field: &str) -> String {
    let json = serde_json::to_value(checkin).expect("a check-in serializes");
    json.get(field).and_then(Value::as_str).unwrap_or(UNKNOWN).to_string()
}

/// One state field over a labelled set.
#[derive(Clone, Debug, Default)]
pub struct StateScore {
    pub field: &'static str,
    /// Messages whose label has this field.
    pub labelled: usize,
    pub correct: usize,
    /// Labelled with a value other than `unknown`.
    pub informed: usize,
    pub informed_correct: usize,
    /// Labelled `unknown`.
    pub unknown_truth: usize,
    /// Labelled `unknown` but given a value.
    pub false_assertions: usize,
    /// (line, text, expected, extracted)
    pub failures: Vec<(usize, String, String, String)>,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

impl StateScore {
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.labelled)
    }
    pub fn informed_accuracy(&self) -> f64 {
        ratio(self.informed_correct, self.informed)
    }
    /// Share of the `unknown`-labelled messages that were given a value (0 when there are none).
    pub fn false_assertion_rate(&self) -> f64 {
        if self.unknown_truth == 0 { 0.0 } else { self.false_assertions as f64 / self.unknown_truth as f64 }
    }
}

/// Crisis detection over a labelled set: every message counts, an absent label is `false`.
#[derive(Clone, Debug, Default)]
pub struct CrisisScore {
    pub positives: usize,
    pub caught: usize,
    pub negatives: usize,
    pub false_alarms: usize,
    /// Texts of the missed positives and of the false alarms, for fixing rules or labels.
    pub missed: Vec<(usize, String)>,
    pub alarms: Vec<(usize, String)>,
}

impl CrisisScore {
    pub fn recall(&self) -> f64 {
        ratio(self.caught, self.positives)
    }
    pub fn false_alarm_rate(&self) -> f64 {
        if self.negatives == 0 { 0.0 } else { self.false_alarms as f64 / self.negatives as f64 }
    }
}

/// The held-out report: six state fields and crisis.
#[derive(Clone, Debug)]
pub struct StateReport {
    pub messages: usize,
    pub fields: Vec<StateScore>,
    pub crisis: CrisisScore,
}

/// Scores `extractor` on the state fields and crisis.
pub fn score(examples: &[Example], extractor: impl Fn(&str) -> CheckIn) -> StateReport {
    let mut fields: Vec<StateScore> =
        STATE_FIELDS.iter().map(|f| StateScore { field: f, ..Default::default() }).collect();
    let mut crisis = CrisisScore::default();
    for ex in examples {
        let got = extractor(&ex.text);
        for s in &mut fields {
            let Some(want) = ex.expected.get(s.field).and_then(Value::as_str) else { continue };
            let have = state_value(&got, s.field);
            s.labelled += 1;
            let right = want == have;
            s.correct += usize::from(right);
            if want == UNKNOWN {
                s.unknown_truth += 1;
                s.false_assertions += usize::from(!right);
            } else {
                s.informed += 1;
                s.informed_correct += usize::from(right);
            }
            if !right {
                s.failures.push((ex.line, ex.text.clone(), want.to_string(), have));
            }
        }
        let want = ex.expected.get("crisis").and_then(Value::as_bool).unwrap_or(false);
        if want {
            crisis.positives += 1;
            if got.crisis {
                crisis.caught += 1;
            } else {
                crisis.missed.push((ex.line, ex.text.clone()));
            }
        } else {
            crisis.negatives += 1;
            if got.crisis {
                crisis.false_alarms += 1;
                crisis.alarms.push((ex.line, ex.text.clone()));
            }
        }
    }
    StateReport { messages: examples.len(), fields, crisis }
}

impl StateReport {
    pub fn field(&self, name: &str) -> Option<&StateScore> {
        self.fields.iter().find(|f| f.field == name)
    }

    /// Markdown tables: per field, then crisis. Fields no label asserts are left out.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if self.fields.iter().any(|f| f.labelled > 0) {
            out.push_str(
                "| field | labelled | accuracy | informed | informed accuracy | labelled unknown | false assertions |\n\
                 |---|---:|---:|---:|---:|---:|---:|\n",
            );
        }
        for f in self.fields.iter().filter(|f| f.labelled > 0) {
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {} | {:.3} | {} | {} ({:.1}%) |",
                f.field,
                f.labelled,
                f.accuracy(),
                f.informed,
                f.informed_accuracy(),
                f.unknown_truth,
                f.false_assertions,
                100.0 * f.false_assertion_rate()
            );
        }
        let c = &self.crisis;
        let _ = write!(
            out,
            "{}| crisis | positives | caught | recall | negatives | false alarms |\n|---|---:|---:|---:|---:|---:|\n\
             | crisis | {} | {} | {:.3} | {} | {} ({:.1}%) |\n",
            if out.is_empty() { "" } else { "\n" },
            c.positives,
            c.caught,
            c.recall(),
            c.negatives,
            c.false_alarms,
            100.0 * c.false_alarm_rate()
        );
        out
    }

    /// Every miss, one per line.
    pub fn failures(&self) -> String {
        let mut out = String::new();
        for f in &self.fields {
            for (line, text, want, have) in &f.failures {
                let _ = writeln!(out, "{}: line {line}: expected {want}, got {have}: {text}", f.field);
            }
        }
        for (line, text) in &self.crisis.missed {
            let _ = writeln!(out, "crisis: line {line}: missed: {text}");
        }
        for (line, text) in &self.crisis.alarms {
            let _ = writeln!(out, "crisis: line {line}: false alarm: {text}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkin::{Exercise, Level, Pillar};

    #[test]
    fn labels_are_validated() {
        assert!(parse(r#"{"text": "hi", "expected": {"exercise": "done"}}"#).is_ok());
        assert!(parse(r#"{"text": "hi", "expected": {"exercise": "finished"}}"#).is_err());
        assert!(parse(r#"{"text": "hi", "expected": {"excercise": "done"}}"#).is_err());
        assert!(parse(r#"{"text": "hi"}"#).is_err());
    }

    #[test]
    fn scoring_counts_asserted_fields_and_always_crisis() {
        let examples = parse(
            "{\"text\": \"a\", \"expected\": {\"exercise\": \"done\", \"pillars\": [\"physical-activity\"]}}\n\
             {\"text\": \"b\", \"expected\": {}}",
        )
        .unwrap();
        let report = evaluate(&examples, |t| CheckIn {
            exercise: Exercise::Done,
            pillars: vec![Pillar::PhysicalActivity],
            crisis: t == "b",
            ..Default::default()
        });
        let get = |name: &str| report.fields.iter().find(|f| f.field == name).unwrap().clone();
        assert_eq!((get("exercise").scored, get("exercise").correct), (1, 1));
        assert_eq!(get("mood").scored, 0);
        assert_eq!((get("crisis").scored, get("crisis").correct), (2, 1), "a false crisis flag counts");
        assert!((report.min_accuracy() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn intentions_match_by_content_words() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(intentions_match(&s(&["go to bed early", "call mum"]), &s(&["call mum tonight", "go to bed early"])));
        assert!(!intentions_match(&s(&["call mum"]), &s(&["call dad"])));
        assert!(!intentions_match(&s(&["call mum"]), &s(&["call mum", "run"])), "an extra intention is wrong");
    }

    #[test]
    fn state_scores_count_unknown_labels_as_answers() {
        let examples = parse(
            "{\"text\": \"a\", \"expected\": {\"energy\": \"low\"}}\n\
             {\"text\": \"b\", \"expected\": {\"energy\": \"unknown\", \"crisis\": true}}\n\
             {\"text\": \"c\", \"expected\": {\"energy\": \"unknown\"}}",
        )
        .unwrap();
        // Says "low" for everything and flags only "c".
        let report = score(&examples, |t| CheckIn { energy: Level::Low, crisis: t == "c", ..Default::default() });
        let energy = report.field("energy").unwrap();
        assert_eq!((energy.labelled, energy.correct, energy.informed, energy.informed_correct), (3, 1, 1, 1));
        assert_eq!((energy.unknown_truth, energy.false_assertions), (2, 2));
        assert!((energy.false_assertion_rate() - 1.0).abs() < 1e-9);
        assert_eq!(report.field("stress").unwrap().labelled, 0, "an absent label is not scored");
        let c = &report.crisis;
        assert_eq!((c.positives, c.caught, c.negatives, c.false_alarms), (1, 0, 2, 1));
        assert!(report.table().contains("| energy | 3 | 0.333 | 1 | 1.000 | 2 | 2 (100.0%) |"), "{}", report.table());
    }

    #[test]
    fn splits_follow_the_text_hash() {
        // Fixed points of the rule (SHA-256 of the text), so that the rule cannot drift silently.
        let counts = (0..1000).map(|i| split_of(&format!("message {i}"))).fold([0usize; 3], |mut acc, s| {
            acc[s as usize] += 1;
            acc
        });
        assert!(counts[0] > 550 && counts[0] < 650 && counts[1] > 150 && counts[2] > 150, "{counts:?}");
        // Values computed independently (Python's hashlib): 82, 39, 58 and 81 modulo 100.
        assert_eq!(split_of("starving"), Split::Test);
        assert_eq!(split_of("hungry"), Split::Train);
        assert_eq!(split_of("I want to die"), Split::Train);
        assert_eq!(split_of("ran 5k"), Split::Test);
    }
}
