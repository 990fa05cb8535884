//! `wellbeing chat TEXT`: say something to the assistant from a terminal. Goes through the running
//! `wellbeing up` when there is one (so it stays the only writer of its database); with none
//! running, the message is handled on the database directly.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use wellbeing_assistant::people::{Identity, PersonConfig};
use wellbeing_webhook::local::engine::InboxBackend;
use wellbeing_webhook::local::{LOCAL_NAME, LocalBackend as _, SendResult};
use wellbeing_webhook::metrics::Metrics;
use wellbeing_webhook::people::ServedPeople;
use wellbeing_webhook::pipeline::Pipeline;
use wellbeing_webhook::worker::WorkerOptions;

use crate::embedded::client::{self, Target};
use crate::embedded::manifests::load_dir;
use crate::embedded::{self, DataDirArg, LOCAL_USER, instance};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataDirArg,
    /// Base URL of a running `wellbeing up` [default: the one found in the data dir's instance file].
    #[arg(long, env = "WELLBEING_URL", value_name = "URL")]
    url: Option<String>,
    /// API token of that instance [default: from the instance file].
    #[arg(long, env = "WELLBEING_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Manifests folder for the persona when no instance is running [default: ./examples when it exists].
    #[arg(long, env = "WELLBEING_MANIFESTS", value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Print the reply and the stored check-in as JSON.
    #[arg(long)]
    json: bool,
    /// What to tell the assistant, e.g. "slept badly, skipped breakfast".
    #[arg(required = true, num_args = 1.., value_name = "TEXT")]
    text: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = args.text.join(" ");
    if text.trim().is_empty() {
        bail!("nothing to say: pass the message as an argument");
    }
    let data_dir = args.data.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start tokio")?;
    let result = runtime.block_on(async {
        match client::find(&data_dir, args.url.as_deref(), args.token.as_deref())? {
            Target::Running(api) => api.send(&text).await,
            Target::Direct => direct(&data_dir, args.manifests, &text).await,
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", render(&result));
    }
    Ok(())
}

/// No instance runs: take the data dir's lock (so none starts meanwhile) and use the engine here.
async fn direct(data_dir: &std::path::Path, manifests: Option<PathBuf>, text: &str) -> anyhow::Result<SendResult> {
    instance::create_data_dir(data_dir)?;
    let _lock = instance::acquire(data_dir)?;
    let store = embedded::open_store(data_dir)?;
    let personas = embedded::persona_registry();
    if let Some(dir) = embedded::manifests_dir(manifests.as_deref()) {
        let set = load_dir(&dir)?;
        for e in &set.errors {
            eprintln!("warning: skipped invalid manifest {e}");
        }
        personas.replace_all(set.personas);
    }
    let config = std::env::var_os("WELLBEING_LLM_CONFIG").map(std::path::PathBuf::from);
    let llm = embedded::llm_router(None, None, config.as_deref())?;
    let assistant = embedded::assistant(store.clone(), personas, None).with_router(llm);
    // The same path as the page's: committed to the inbox, handled by a worker (which also
    // finishes anything an earlier run left pending), then read back.
    let me = PersonConfig { name: LOCAL_USER.to_string(), identities: vec![Identity::local(LOCAL_NAME)] };
    let people = ServedPeople::start(store, std::slice::from_ref(&me)).context("failed to enrol the local user")?;
    let options = WorkerOptions::default();
    let pipeline = Pipeline::start(&assistant, Default::default(), people, Metrics::new(), Some(options))
        .context("failed to start the inbox")?;
    let backend = InboxBackend::new(assistant, pipeline.inbox.clone(), pipeline.worker.clone(), LOCAL_USER);
    let row = wellbeing_webhook::channel::local::message_row(&me.identities[0], LOCAL_USER, text, None);
    let result = backend.send(row).await;
    pipeline.shutdown().await;
    Ok(result?)
}

/// The assistant's answer, then the check-in it stored, field by field.
pub fn render(result: &SendResult) -> String {
    let mut out = String::new();
    for m in result.messages.iter().filter(|m| m.direction == "out") {
        out.push_str(&m.text);
        out.push_str("\n\n");
    }
    if result.messages.iter().all(|m| m.direction != "out") && !result.reply.is_empty() {
        out.push_str(&result.reply);
        out.push_str("\n\n");
    }
    match &result.checkin {
        Some(c) => {
            out.push_str(&format!("Stored check-in #{}:\n", c.id));
            let width = c.summary.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (k, v) in &c.summary {
                out.push_str(&format!("  {k:width$}  {v}\n"));
            }
            if c.summary.is_empty() {
                out.push_str("  (nothing recognised)\n");
            }
        }
        None => out.push_str("No check-in stored for this message.\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use wellbeing_assistant::checkin::{CheckIn, Level};
    use wellbeing_webhook::local::{LocalMessage, StoredCheckIn};

    use super::*;

    #[test]
    fn render_shows_replies_then_the_check_in() {
        let msg = |id, direction: &str, text: &str| LocalMessage {
            id,
            direction: direction.into(),
            kind: "reply".into(),
            text: text.into(),
            created_at: String::new(),
            checkin: None,
            actions: Vec::new(),
        };
        let result = SendResult {
            reply: "Rest up.\n\nHow did you sleep?".into(),
            checkin: Some(StoredCheckIn::new(
                4,
                CheckIn { energy: Level::Low, stress: Level::High, ..Default::default() },
            )),
            messages: vec![msg(1, "in", "tired"), msg(2, "out", "Rest up."), msg(3, "out", "How did you sleep?")],
        };
        assert_eq!(
            render(&result),
            "Rest up.\n\nHow did you sleep?\n\nStored check-in #4:\n  energy  low\n  stress  high\n"
        );
        let none = SendResult { reply: "Hi!".into(), checkin: None, messages: vec![] };
        assert_eq!(render(&none), "Hi!\n\nNo check-in stored for this message.\n");
    }
}
