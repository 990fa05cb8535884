//! Load generator for the webhook's acknowledgement path: signed `message.im` events, each with a
//! unique event_id, sent over N keep-alive connections to a running `wellbeing webhook` for a
//! fixed time. Reports accepted events/s and p50/p99 acknowledgement latency, then (with
//! `--data-dir`) checks that the inbox holds exactly one row per acknowledged event.
//!
//! ```sh
//! cargo run --release -p wellbeing-webhook --example loadgen -- \
//!     --url http://127.0.0.1:8080 --connections 48 --seconds 10 --data-dir /tmp/wb-bench
//! ```
//!
//! The signing secret comes from `--secret` or `SLACK_SIGNING_SECRET` (the server's).
//!
//! With `--sms`, Twilio Messaging webhooks instead: form posts to `/sms/twilio`, each with a unique
//! `MessageSid`, signed with `--twilio-token` / `TWILIO_AUTH_TOKEN` over `--twilio-url` (the
//! server's `TWILIO_WEBHOOK_URL`; default: `URL/sms/twilio`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use wellbeing_webhook::slack::signature::{SigningSecret, sign};
use wellbeing_webhook::sms::signature::{AuthToken, compute as twilio_signature};

#[derive(Parser, Debug)]
#[command(about = "Send signed Slack events to a running webhook and measure the acknowledgements")]
struct Args {
    /// The webhook's base URL (http only: this is for loopback).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent keep-alive connections, each sending one request at a time.
    #[arg(long, default_value_t = 48)]
    connections: usize,
    /// How long to send.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Distinct Slack users the events come from.
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// The server's signing secret.
    #[arg(long, env = "SLACK_SIGNING_SECRET")]
    secret: String,
    /// Send signed Twilio SMS webhooks instead of Slack events.
    #[arg(long)]
    sms: bool,
    /// The server's Twilio auth token (with `--sms`).
    #[arg(long, env = "TWILIO_AUTH_TOKEN", default_value = "")]
    twilio_token: String,
    /// The public URL the server checks Twilio signatures against (with `--sms`).
    #[arg(long, env = "TWILIO_WEBHOOK_URL")]
    twilio_url: Option<String>,
    /// The server's data dir: check the inbox afterwards (exactly one row per acknowledged event).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also serve a minimal fake Slack Web API here (for a webhook run with its worker on and
    /// `SLACK_API_BASE_URL=http://ADDR/api`); reports how many replies were posted.
    #[arg(long, value_name = "ADDR:PORT")]
    fake_slack: Option<std::net::SocketAddr>,
}

/// Answers the Web API methods the worker calls with `ok: true`; counts posted messages.
async fn fake_slack(
    addr: std::net::SocketAddr,
    posted: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<(), Error> {
    use axum::extract::{Path, State};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let router = axum::Router::new()
        .route(
            "/api/{method}",
            axum::routing::post(
                |State(posted): State<std::sync::Arc<std::sync::atomic::AtomicU64>>, Path(method): Path<String>| async move {
                    let n = posted.fetch_add(u64::from(method == "chat.postMessage"), std::sync::atomic::Ordering::Relaxed);
                    // conversations.open names the channel as an object, chat.postMessage as an id.
                    let channel = if method == "conversations.open" {
                        serde_json::json!({"id": "DLOAD"})
                    } else {
                        serde_json::json!("DLOAD")
                    };
                    axum::Json(serde_json::json!({
                        "ok": true, "user_id": "UBOTLOAD", "team_id": "TLOAD",
                        "channel": channel, "ts": format!("1800000000.{n:06}"), "messages": []
                    }))
                },
            ),
        )
        .with_state(posted);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(())
}

struct ConnectionResult {
    latencies_us: Vec<u32>,
    acked: Vec<String>,
    failures: u64,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Error> {
    let authority = args.url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let run_id = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let posted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(addr) = args.fake_slack {
        fake_slack(addr, posted.clone()).await?;
    }
    let signer = if args.sms {
        let url = args.twilio_url.clone().unwrap_or_else(|| format!("{}/sms/twilio", args.url.trim_end_matches('/')));
        Signer::Sms { token: AuthToken::new(args.twilio_token.clone()), url }
    } else {
        Signer::Slack(SigningSecret::new(args.secret.clone()))
    };
    let signer = std::sync::Arc::new(signer);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let (authority, run_id, signer, users) = (authority.clone(), run_id.clone(), signer.clone(), args.users);
        tasks.push(tokio::spawn(async move { connection(c, &authority, &run_id, &signer, users, deadline).await }));
    }
    let mut latencies = Vec::new();
    let mut acked = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let result = task.await??;
        latencies.extend(result.latencies_us);
        acked.extend(result.acked);
        failures += result.failures;
    }
    if args.fake_slack.is_some() {
        // With no connections this only serves the fake Slack (to watch the worker drain a backlog).
        tokio::time::sleep_until(deadline.into()).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    println!("run {run_id}: {} connections, {:.1} s", args.connections, elapsed);
    println!(
        "acknowledged: {} events ({:.0} events/s), failures: {failures}",
        acked.len(),
        acked.len() as f64 / elapsed
    );
    println!(
        "ack latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    if args.fake_slack.is_some() {
        println!(
            "fake Slack: {} replies posted by the worker so far",
            posted.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    if let Some(dir) = &args.data_dir {
        let path = dir.join(wellbeing_assistant::store::DB_FILE);
        let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut stmt = conn.prepare("SELECT event_id FROM inbox WHERE event_id LIKE ?1")?;
        let pattern = if args.sms { format!("sms:SM{run_id}-%") } else { format!("Ev{run_id}-%") };
        let rows: Vec<String> = stmt.query_map([pattern], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let stored: HashSet<&str> = rows.iter().map(String::as_str).collect();
        let missing = acked.iter().filter(|id| !stored.contains(id.as_str())).count();
        let acked_set: HashSet<&str> = acked.iter().map(String::as_str).collect();
        let extra = stored.iter().filter(|id| !acked_set.contains(*id)).count();
        println!(
            "inbox check: {} rows for this run, {} acknowledged, {missing} acknowledged but missing, {extra} stored but not acknowledged, duplicates {}",
            rows.len(),
            acked.len(),
            rows.len() - stored.len()
        );
        if missing > 0 || rows.len() != stored.len() || rows.len() != acked.len() {
            return Err("inbox does not hold exactly one row per acknowledged event".into());
        }
        println!("inbox check: ok (exactly one row per acknowledged event)");
    }
    Ok(())
}

/// How requests are signed: Slack's events, or Twilio's Messaging webhook.
enum Signer {
    Slack(SigningSecret),
    Sms { token: AuthToken, url: String },
}

/// One keep-alive connection sending events back to back until the deadline; in-flight requests
/// are always awaited, so every acknowledged event is counted.
async fn connection(
    c: usize,
    authority: &str,
    run_id: &str,
    signer: &Signer,
    users: usize,
    deadline: Instant,
) -> Result<ConnectionResult, Error> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut result = ConnectionResult { latencies_us: Vec::with_capacity(1 << 16), acked: Vec::new(), failures: 0 };
    let mut seq = 0u64;
    while Instant::now() < deadline {
        seq += 1;
        let (event_id, request) = match signer {
            Signer::Slack(secret) => slack_request(authority, run_id, secret, users, c, seq)?,
            Signer::Sms { token, url } => sms_request(authority, run_id, token, url, users, c, seq)?,
        };
        let sent_at = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        let micros = sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32;
        if status.is_success() {
            result.latencies_us.push(micros);
            result.acked.push(event_id);
        } else {
            result.failures += 1;
        }
    }
    Ok(result)
}

/// A signed `message.im` event from one of `users` Slack users.
fn slack_request(
    authority: &str,
    run_id: &str,
    secret: &SigningSecret,
    users: usize,
    c: usize,
    seq: u64,
) -> Result<(String, Request<Full<Bytes>>), Error> {
    let event_id = format!("Ev{run_id}-{c}-{seq}");
    let user = format!("ULOAD{}", (c * 7919 + seq as usize) % users.max(1));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let ts = format!("{}.{:06}", now.as_secs(), now.subsec_micros());
    let body = serde_json::json!({
        "token": "unused",
        "team_id": "TLOAD",
        "api_app_id": "ALOAD",
        "event": {
            "type": "message", "channel": format!("D{user}"), "user": user, "channel_type": "im",
            "text": "Kinda drained. Haven't eaten yet and didn't sleep much.", "ts": ts, "event_ts": ts,
            "team": "TLOAD"
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": now.as_secs(),
        "authorizations": [{"team_id": "TLOAD", "user_id": "UBOTLOAD", "is_bot": true}]
    })
    .to_string();
    let timestamp = now.as_secs().to_string();
    let signature = sign(secret, &timestamp, body.as_bytes());
    let request = Request::post("/slack/events")
        .header("host", authority)
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", timestamp)
        .header("x-slack-signature", signature)
        .body(Full::new(Bytes::from(body)))?;
    Ok((event_id, request))
}

/// A signed Twilio Messaging webhook (an inbound text) from one of `users` numbers.
fn sms_request(
    authority: &str,
    run_id: &str,
    token: &AuthToken,
    url: &str,
    users: usize,
    c: usize,
    seq: u64,
) -> Result<(String, Request<Full<Bytes>>), Error> {
    let sid = format!("SM{run_id}-{c}-{seq}");
    let from = format!("+1555{:07}", (c * 7919 + seq as usize) % users.max(1));
    let params: Vec<(String, String)> = [
        ("AccountSid", "ACload"),
        ("MessageSid", sid.as_str()),
        ("SmsSid", sid.as_str()),
        ("From", from.as_str()),
        ("To", "+15550000000"),
        ("Body", "Kinda drained. Haven't eaten yet and didn't sleep much."),
        ("NumMedia", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signature = twilio_signature(token, url, &params);
    let body = serde_urlencoded::to_string(&params)?;
    let request = Request::post("/sms/twilio")
        .header("host", authority)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(Full::new(Bytes::from(body)))?;
    Ok((format!("sms:{sid}"), request))
}
