//! `wellbeing checkin trigger`: what a persona's CronJob runs at a check-in slot. Asks the
//! assistant service (`POST /internal/checkins`) to send the persona's check-in prompt, and exits
//! non-zero with the reason when it could not.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use wellbeing_webhook::internal::{CheckinRequest, CheckinResponse};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Ask the assistant to send a check-in prompt now.
    Trigger(TriggerArgs),
}

/// Where the operator's CronJobs mount the projected ServiceAccount token.
const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/wellbeing.dev/token";
/// Attempts when the service is unreachable or answers 5xx (a rolling restart): the server
/// deduplicates by slot, so trying again is safe.
const ATTEMPTS: u32 = 3;
const RETRY_DELAY: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug)]
struct TriggerArgs {
    /// The Persona whose check-in this is.
    #[arg(long, env = "WELLBEING_PERSONA")]
    persona: String,
    /// The assistant service.
    #[arg(long, env = "WELLBEING_URL", default_value = "http://wellbeing-assistant:8080")]
    url: String,
    /// Index of today's check-in slot; lets the service recognise a retried Job.
    #[arg(long, env = "WELLBEING_CHECKIN_SLOT")]
    slot: Option<usize>,
    /// File holding the bearer token (the projected ServiceAccount token).
    #[arg(long, env = "WELLBEING_TOKEN_FILE", default_value = DEFAULT_TOKEN_FILE)]
    token_file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Command::Trigger(args) = args.command;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start tokio")?;
    runtime.block_on(trigger(args))
}

/// The token: WELLBEING_INTERNAL_TOKEN (embedded use) or the token file.
fn token(args: &TriggerArgs) -> anyhow::Result<String> {
    if let Ok(token) = std::env::var("WELLBEING_INTERNAL_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_string());
    }
    let token = std::fs::read_to_string(&args.token_file).with_context(|| {
        format!("failed to read the token file {} (or set WELLBEING_INTERNAL_TOKEN)", args.token_file.display())
    })?;
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", args.token_file.display());
    }
    Ok(token)
}

async fn trigger(args: TriggerArgs) -> anyhow::Result<()> {
    let token = token(&args)?;
    let url = format!("{}/internal/checkins", args.url.trim_end_matches('/'));
    let request = CheckinRequest { persona: args.persona.clone(), slot: args.slot };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .context("failed to build the HTTP client")?;
    let mut attempt = 0;
    let response = loop {
        attempt += 1;
        let sent = client.post(&url).bearer_auth(&token).json(&request).send().await;
        match sent {
            Ok(r) if r.status().is_server_error() && attempt < ATTEMPTS => {
                tracing::warn!(status = %r.status(), attempt, "the assistant failed; trying again");
            }
            Ok(r) => break r,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "could not reach the assistant; trying again")
            }
            Err(e) => return Err(e).with_context(|| format!("failed to reach the assistant at {url}")),
        }
        tokio::time::sleep(RETRY_DELAY).await;
    };
    let status = response.status();
    let body = response.text().await.context("failed to read the assistant's answer")?;
    if !status.is_success() {
        let reason = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or(body);
        bail!("the assistant refused the check-in (HTTP {}): {}", status.as_u16(), reason.trim());
    }
    let answer: CheckinResponse = serde_json::from_str(&body).context("failed to understand the assistant's answer")?;
    match answer.status.as_str() {
        "sent" => {
            println!("check-in sent for persona {} (prompt {})", args.persona, answer.prompt_id.unwrap_or_default())
        }
        "already_sent" => {
            println!("check-in for this slot was already sent (prompt {})", answer.prompt_id.unwrap_or_default())
        }
        "skipped" => println!("check-in skipped: {}", answer.reason.as_deref().unwrap_or("no reason given")),
        other => bail!("the assistant answered with an unknown status {other:?}"),
    }
    Ok(())
}
