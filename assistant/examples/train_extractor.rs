//! Trains the offline extractor's model from the train split, tunes it on dev, and writes
//! `assistant/data/extract/model.json` (checked in; `tests/extract_heldout.rs` fails when it is not
//! what this command produces).
//!
//! `cargo run -p wellbeing-assistant --example train_extractor [-- --check]`
//!
//! `--check` writes nothing and exits non-zero when the checked-in file is out of date.

use wellbeing_assistant::extract::offline::{self, eval, model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/extract");
    let read = |name: &str| -> Result<Vec<eval::Example>, Box<dyn std::error::Error>> {
        Ok(eval::parse(&std::fs::read_to_string(format!("{dir}/{name}"))?)?)
    };
    let (train, dev) = (read("train.jsonl")?, read("dev.jsonl")?);
    let file = model::train(&train, &dev, offline::rules);
    let json = model::to_json(&file);
    let path = format!("{dir}/model.json");
    for f in &file.fields {
        println!(
            "{}: rule weight {}, unknown bias {}, rule margin {}",
            f.field, f.rule_weight, f.unknown_bias, f.rule_margin
        );
    }
    println!("{} features, {} bytes", file.features.len(), json.len());
    if std::env::args().any(|a| a == "--check") {
        if std::fs::read_to_string(&path)? != json {
            return Err(format!("{path} is out of date: run this command without --check").into());
        }
        println!("{path} is current");
        return Ok(());
    }
    std::fs::write(&path, json)?;
    println!("wrote {path}");
    Ok(())
}
