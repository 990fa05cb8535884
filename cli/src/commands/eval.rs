//! `wellbeing eval extract FILE.jsonl [--offline]`: score an extractor on a labelled set, so a
//! user can measure the offline extractor, or their own model, on their own words.
//!
//! The file is JSON lines in the format of docs/labelling.md (`{"text": ..., "expected":
//! {...}}`). Printed: per state field the accuracy, the accuracy over messages whose label is
//! not `unknown` (informed) and the false assertions (a value where the label says `unknown`);
//! crisis recall and false alarms. Without `--offline` the configured LLM answers (the same
//! flags and variables as `wellbeing up`), with the offline extractor filling and correcting it
//! field by field exactly as the assistant does. Messages are redacted first and never printed
//! unless `--show-misses` asks for them.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use wellbeing_assistant::checkin::CheckIn;
use wellbeing_assistant::extract::llm::{ExtractorKind, extract_or_fallback};
use wellbeing_assistant::extract::offline::{self, eval};
use wellbeing_assistant::llm::LlmTask;
use wellbeing_assistant::redact::redact;
use wellbeing_crds::persona::ModelPreferences;

use crate::embedded;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Score extraction on a labelled JSON-lines file (format: docs/labelling.md).
    Extract(ExtractArgs),
}

#[derive(clap::Args, Debug)]
struct ExtractArgs {
    /// The labelled set, e.g. assistant/data/extract/test.jsonl.
    #[arg(value_name = "FILE.jsonl")]
    file: PathBuf,
    /// Score the offline extractor even when an LLM endpoint is configured.
    #[arg(long)]
    offline: bool,
    /// Also print every miss (the messages themselves: your own data, on your terminal).
    #[arg(long)]
    show_misses: bool,
    /// OpenAI-compatible endpoint (with /v1), as for `wellbeing up`.
    #[arg(long, env = "WELLBEING_LLM_BASE_URL", value_name = "URL")]
    llm_base_url: Option<String>,
    /// Model name at that endpoint [default: gpt-4o-mini].
    #[arg(long, env = "WELLBEING_LLM_MODEL", value_name = "NAME")]
    llm_model: Option<String>,
    /// LLM routes file, as for `wellbeing up`: its `extraction` route is the one scored.
    #[arg(long, env = "WELLBEING_LLM_CONFIG", value_name = "FILE")]
    llm_config: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Extract(args) => extract(args),
    }
}

fn extract(args: ExtractArgs) -> anyhow::Result<()> {
    let data =
        std::fs::read_to_string(&args.file).with_context(|| format!("failed to read {}", args.file.display()))?;
    let examples =
        eval::parse(&data).with_context(|| format!("failed to read the labels in {}", args.file.display()))?;
    // The same route the assistant takes for extraction, so the figures are of what runs.
    let llm = if args.offline {
        None
    } else {
        embedded::llm_router(args.llm_base_url.as_deref(), args.llm_model.as_deref(), args.llm_config.as_deref())?
            .route(LlmTask::Extraction, &ModelPreferences::default())
    };
    let report = match &llm {
        None => {
            println!("extractor: {} ({} messages)\n", offline::NAME, examples.len());
            eval::score(&examples, |t| offline::extract(&redact(t).text))
        }
        Some(route) => {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start tokio")?;
            let mut answers: HashMap<String, CheckIn> = HashMap::new();
            let mut fallbacks = 0usize;
            for ex in &examples {
                let redacted = redact(&ex.text);
                let got = runtime.block_on(extract_or_fallback(
                    Some(&route.client),
                    Some(route.model()),
                    &redacted.text,
                    offline::extract,
                ));
                fallbacks += usize::from(got.extractor == ExtractorKind::Offline);
                answers.insert(ex.text.clone(), got.checkin);
            }
            println!(
                "extractor: {} with per-field offline fallback ({} messages, {fallbacks} answered offline after an LLM failure)\n",
                route.model(),
                examples.len()
            );
            eval::score(&examples, |t| answers.get(t).cloned().unwrap_or_default())
        }
    };
    println!("{}", report.table());
    if args.show_misses {
        println!("{}", report.failures());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_a_file_offline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.jsonl");
        std::fs::write(
            &path,
            "{\"text\": \"starving\", \"expected\": {\"hunger\": \"hungry\"}}\n{\"text\": \"ran 5k\", \"expected\": {\"hunger\": \"unknown\"}}\n",
        )
        .unwrap();
        let args = ExtractArgs {
            file: path.clone(),
            offline: true,
            show_misses: true,
            llm_base_url: None,
            llm_model: None,
            llm_config: None,
        };
        extract(args).unwrap();
        std::fs::write(&path, "{\"text\": \"x\", \"expected\": {\"hunger\": \"famished\"}}\n").unwrap();
        let args = ExtractArgs {
            file: path,
            offline: true,
            show_misses: false,
            llm_base_url: None,
            llm_model: None,
            llm_config: None,
        };
        assert!(extract(args).is_err(), "a label outside the data model is refused");
    }
}
