//! Offline extractor benchmark: per-field accuracy over the labelled set and throughput.
//!
//! `cargo run --release -p wellbeing-assistant --example offline_extractor_bench [-- PATH.jsonl]`
//! (default: `assistant/tests/data/checkins.jsonl`). Prints the Markdown table kept in
//! BENCHMARKS.md, then messages per second on one thread.

use std::time::{Duration, Instant};

use wellbeing_assistant::extract::offline::{self, eval};

/// Run the whole set repeatedly for at least this long so the figure is stable.
const MEASURE_FOR: Duration = Duration::from_secs(3);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/checkins.jsonl").to_string());
    let data = std::fs::read_to_string(&path)?;
    let examples = eval::parse(&data)?;
    let report = eval::evaluate(&examples, offline::extract);
    println!("{} labelled messages from {path}\n", report.messages);
    println!("{}", report.table());
    if std::env::var_os("SHOW_MISSES").is_some() {
        println!("{}", report.failures());
    }

    // Warm up the lazily compiled rule tables, then measure.
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    for t in &texts {
        std::hint::black_box(offline::extract(t));
    }
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < MEASURE_FOR {
        for t in &texts {
            std::hint::black_box(offline::extract(std::hint::black_box(t)));
        }
        n += texts.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "throughput: {:.0} messages/s on one thread ({n} extractions in {secs:.2} s, {:.1} µs each)",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
    Ok(())
}
