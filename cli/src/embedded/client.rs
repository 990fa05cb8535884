//! How the tools reach a running `wellbeing up`: its URL and token from `--url`/`WELLBEING_URL`
//! or from the instance file in the data dir, then the local JSON API.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::de::DeserializeOwned;
use wellbeing_webhook::local::{ForgetRequest, ForgetResponse, SendRequest, SendResult};

use super::instance;

/// Time budget of one API call: the engine's LLM budget (20 s by default) plus headroom.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where a command does its work.
pub enum Target {
    /// A running instance: talk to it, never to its database behind its back.
    Running(Api),
    /// Nothing runs on this data dir: work on the database directly.
    Direct,
}

/// Find the instance for `data_dir`, or an explicit `url`.
pub fn find(data_dir: &Path, url: Option<&str>, token: Option<&str>) -> anyhow::Result<Target> {
    let found = instance::read(data_dir)?;
    if let Some(url) = url {
        let token = token
            .map(str::to_string)
            .or_else(|| found.filter(|i| i.url.trim_end_matches('/') == url.trim_end_matches('/')).map(|i| i.token))
            .context("failed to find a token for --url (pass --token or set WELLBEING_TOKEN)")?;
        return Ok(Target::Running(Api::new(url, &token)?));
    }
    if !instance::is_locked(data_dir) {
        // A file without a lock holder was left by a process that died: ignore it.
        return Ok(Target::Direct);
    }
    match found {
        Some(i) => Ok(Target::Running(Api::new(&i.url, &i.token)?)),
        None => bail!(
            "a `wellbeing up` holds data dir {} but has not published its address yet; try again in a moment",
            data_dir.display()
        ),
    }
}

/// The local API of one instance.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().context("failed to build the HTTP client")?;
        Ok(Api { base: base.trim_end_matches('/').to_string(), token: token.to_string(), http })
    }

    /// Send one message. It carries a key of its own, so when the connection drops before the
    /// answer arrives, the one resend is the same message: recorded and answered once.
    pub async fn send(&self, text: &str) -> anyhow::Result<SendResult> {
        let request = SendRequest { text: text.to_string(), key: Some(wellbeing_common::id::new_id()) };
        match self.post("/api/local/messages", &request).await {
            Err(e)
                if e.downcast_ref::<reqwest::Error>()
                    .is_some_and(|e| e.is_connect() || e.is_timeout() || e.is_request()) =>
            {
                self.post("/api/local/messages", &request).await
            }
            other => other,
        }
    }

    pub async fn forget(&self) -> anyhow::Result<u64> {
        let r: ForgetResponse = self.post("/api/local/forget", &ForgetRequest { confirm: true }).await?;
        Ok(r.deleted)
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let res = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("failed to reach the running assistant at {}", self.base))?;
        let status = res.status();
        let bytes = res.bytes().await.with_context(|| format!("failed to read the answer from {url}"))?;
        // 202: recorded, but not answered yet (the answer appears on the page and in `wellbeing chat` history).
        if !status.is_success() || status == reqwest::StatusCode::ACCEPTED {
            let reason = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
            bail!("the assistant at {} answered {status}: {reason}", self.base);
        }
        serde_json::from_slice(&bytes).with_context(|| format!("failed to decode the answer from {url}"))
    }
}
