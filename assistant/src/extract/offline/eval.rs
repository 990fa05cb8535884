//! Scoring an extractor against a labelled set of messages (`assistant/tests/data/checkins.jsonl`).
//!
//! Each line is `{"text": ..., "expected": {...}}` where `expected` holds only the fields the
//! label asserts, with the data model's names and values. A field is scored on the messages that
//! assert it, except `crisis` and `day_offset`, which are scored on every message (a label that
//! says nothing means "no crisis", "today"): a false crisis flag or a wrong day must show up.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkin::{Exercise, Pillar};

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
}
