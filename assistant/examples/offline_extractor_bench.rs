//! Offline extractor benchmark: scores over labelled sets and throughput.
//!
//! `cargo run --release -p wellbeing-assistant --example offline_extractor_bench [-- PATH.jsonl...]`
//! (default: the held-out check-in and crisis test splits under `assistant/data/extract/`). Prints,
//! per file, the state-field and crisis tables kept in BENCHMARKS.md, then messages per second on
//! one thread over all the files' messages. `SHOW_MISSES=1` lists every miss; `RULES_ONLY=1`
//! scores the rule tables without the learned model.

use std::time::{Duration, Instant};

use wellbeing_assistant::extract::offline::{self, eval};

/// Run the whole set repeatedly for at least this long so the figure is stable.
const MEASURE_FOR: Duration = Duration::from_secs(3);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/extract");
        paths = vec![format!("{dir}/test.jsonl"), format!("{dir}/crisis-test.jsonl")];
    }
    let extract: fn(&str) -> wellbeing_assistant::checkin::CheckIn =
        if std::env::var_os("RULES_ONLY").is_some() { offline::rules } else { offline::extract };
    let mut texts = Vec::new();
    for path in &paths {
        let data = std::fs::read_to_string(path)?;
        let examples = eval::parse(&data)?;
        let report = eval::score(&examples, extract);
        println!("{} labelled messages from {path}\n", report.messages);
        println!("{}", report.table());
        if std::env::var_os("SHOW_MISSES").is_some() {
            println!("{}", report.failures());
        }
        texts.extend(examples.into_iter().map(|e| e.text));
    }

    // Warm up the lazily compiled rule tables and the model, then measure.
    for t in &texts {
        std::hint::black_box(extract(t));
    }
    let start = Instant::now();
    let mut n = 0usize;
    let mut slowest = Duration::ZERO;
    while start.elapsed() < MEASURE_FOR {
        for t in &texts {
            let one = Instant::now();
            std::hint::black_box(extract(std::hint::black_box(t)));
            slowest = slowest.max(one.elapsed());
        }
        n += texts.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "throughput: {:.0} messages/s on one thread ({n} extractions in {secs:.2} s, {:.1} µs each, slowest {:.1} µs)",
        n as f64 / secs,
        secs * 1e6 / n as f64,
        slowest.as_secs_f64() * 1e6
    );
    Ok(())
}
