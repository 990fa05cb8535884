//! `wellbeing`: one binary for the operator, the assistant service, the embedded mode and the tools.

mod commands;
mod embedded;
mod telemetry;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "wellbeing", version, about = "A self-hosted personal wellbeing assistant")]
struct Cli {
    /// Log format: text or json.
    #[arg(long, global = true, env = "WELLBEING_LOG_FORMAT", default_value = "text")]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the CRD manifests into the Helm chart.
    Crdgen(commands::crdgen::Args),
    /// Run the Kubernetes controllers (Personas, Goals, Plugins, SecretRequirements).
    Operator(commands::operator::Args),
    /// Secrets the system needs: `secrets resolve` stores the missing ones.
    Secrets(commands::secrets::Args),
    /// Run the whole assistant on this machine: local chat page, scheduler, manifests folder.
    Up(commands::up::Args),
    /// Tell the assistant how you are doing; prints its reply and the stored check-in.
    Chat(commands::chat::Args),
    /// List stored check-ins.
    Checkins(commands::checkins::Args),
    /// Write everything the assistant stores, as JSON or CSV.
    Export(commands::export::Args),
    /// Delete everything the assistant stores (needs --yes).
    Forget(commands::forget::Args),
    /// Plugins: generate (from a goal or a need), approve, list, rollback.
    Plugin(commands::plugin::Args),
    /// Run the assistant service: Slack endpoints, inbox worker, internal API (in the cluster).
    Webhook(commands::webhook::Args),
    /// Check-ins: `checkin trigger` asks the assistant to send one now (run by CronJobs).
    Checkin(commands::checkin::Args),
    /// Weekly insight: counts, trends, goal progress, patterns and things to try.
    Insights(commands::insights::Args),
    /// The dashboard: `dashboard token` prints the token that opens /dashboard.
    Dashboard(commands::dashboard::Args),
    /// Turn a message into a check-in and print it as JSON (LLM when configured, else offline).
    Extract(commands::extract::Args),
    /// Measure extraction on a labelled set: `eval extract FILE.jsonl [--offline]`.
    Eval(commands::eval::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // kube is built with ring and the Google SDK with aws-lc-rs. With both compiled in, rustls
    // cannot pick a provider by itself and panics on the first TLS connection (kube, Secret
    // Manager, Slack, the LLM endpoint), so the binary picks one, once, before any client exists.
    let _ = rustls::crypto::ring::default_provider().install_default();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Crdgen(args) => commands::crdgen::run(args),
        Command::Operator(args) => commands::operator::run(args),
        Command::Secrets(args) => commands::secrets::run(args),
        Command::Up(args) => commands::up::run(args),
        Command::Chat(args) => commands::chat::run(args),
        Command::Checkins(args) => commands::checkins::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Forget(args) => commands::forget::run(args),
        Command::Plugin(args) => commands::plugin::run(args),
        Command::Insights(args) => commands::insights::run(args),
        Command::Webhook(args) => commands::webhook::run(args),
        Command::Checkin(args) => commands::checkin::run(args),
        Command::Dashboard(args) => commands::dashboard::run(args),
        Command::Extract(args) => commands::extract::run(args),
        Command::Eval(args) => commands::eval::run(args),
    };
    // One line, the cause chain joined by ": ", so a bad input reads as one clear sentence.
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
