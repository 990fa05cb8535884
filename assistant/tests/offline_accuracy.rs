//! Per-field accuracy of the offline extractor over the labelled set in `tests/data/checkins.jsonl`.
//!
//! The labels were written from what each message says, not from what the extractor outputs.
//! Conventions: `mood` is one canonical word (slang maps to its plain synonym: "knackered" is
//! "exhausted", "hangry" is "irritable"); `valence` is asserted only when the message expresses a
//! feeling; a mild "a bit stressed" is `medium`; `water` counts 250 ml glasses; `intentions` match
//! by content words. The test fails when any field is below 0.85.
//!
//! `valence` is left out: this set predates docs/labelling.md, which says tiredness alone is
//! energy, not valence ("knackered" is valence `unknown` there, `negative` here). The held-out
//! splits in `assistant/data/extract/` judge valence (tests/extract_heldout.rs).

use wellbeing_assistant::extract::offline::{self, eval};

const DATA: &str = include_str!("data/checkins.jsonl");
/// The accuracy the issue asks for on every field.
const MIN_ACCURACY: f64 = 0.85;
/// Fields this set no longer judges (see above).
const SUPERSEDED: &[&str] = &["valence"];
/// The issue asks for at least 80 messages; the set keeps well above that.
const MIN_MESSAGES: usize = 100;

#[test]
fn every_field_is_at_least_85_percent_accurate() {
    let examples = eval::parse(DATA).expect("the labelled set parses");
    assert!(examples.len() >= MIN_MESSAGES, "only {} labelled messages", examples.len());
    let report = eval::evaluate(&examples, offline::extract);
    println!("{} messages\n{}", report.messages, report.table());
    println!("misses:\n{}", report.failures());
    for field in report.fields.iter().filter(|f| !SUPERSEDED.contains(&f.field)) {
        assert!(field.scored > 0, "no label asserts {}", field.field);
        assert!(
            field.accuracy() >= MIN_ACCURACY,
            "{} accuracy {:.3} is below {MIN_ACCURACY}; failures:\n{}",
            field.field,
            field.accuracy(),
            report.failures()
        );
    }
}

#[test]
fn the_set_covers_crisis_and_hyperbole_both_ways() {
    let examples = eval::parse(DATA).expect("the labelled set parses");
    let crisis = examples.iter().filter(|e| e.expected.get("crisis") == Some(&serde_json::Value::Bool(true))).count();
    let hyperbole =
        examples.iter().filter(|e| e.expected.get("crisis") == Some(&serde_json::Value::Bool(false))).count();
    assert!(crisis >= 5 && hyperbole >= 5, "{crisis} crisis and {hyperbole} hyperbole labels");
}
