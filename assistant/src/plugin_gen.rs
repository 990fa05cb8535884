//! Plugin generation: from a need or a Goal, ask the code model for a plugin module that follows
//! plugins/README.md, run the plugin host's checker on it (static rules, then its `examples` in the
//! sandboxed child), retry with the checker's reason at most twice, and write
//! `plugins/<id>/v<N>.py` plus its manifest `plugins/<id>/plugin.yaml` (a Plugin with
//! `spec.approved: false`: nothing generated runs until a person approves it).
//!
//! Decisions (the id, the prompt, the code in a reply, the manifest) are pure functions; the shell
//! ([`generate`]) calls the model, the checker (a Python child) and the plugin host over MCP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use tracing::{info, instrument, warn};
use wellbeing_crds::manifest::{self, Resource};
use wellbeing_crds::plugin::{EgressHost, LlmTask, PythonSource, SecretRef, Triggers};
use wellbeing_crds::{GoalSpec, Plugin, PluginSpec};

use crate::error_chain;
use crate::llm::{ChatRequest, LlmClient, LlmError, system_message, user_message};
use crate::plugins::{MemorySink, PluginEndpoint, PluginPool, PluginTransport, PoolConfig, ToolRole};

/// The first attempt plus two retries with the checker's reason (issue 6).
pub const MAX_ATTEMPTS: u32 = 3;
/// Manifest file of a plugin in its directory.
pub const MANIFEST_FILE: &str = "plugin.yaml";
/// Annotation: the model that wrote the module.
pub const ANNOTATION_MODEL: &str = "wellbeing.dev/generated-by-model";
/// Annotation: the goal (`goal/<name>`) or need (`need: <text>`) it was written for.
pub const ANNOTATION_FOR: &str = "wellbeing.dev/generated-for";
/// Annotation: versions a person approved, comma-separated; `approve` adds to it and `rollback`
/// reads it, so returning to an approved version keeps it approved.
pub const ANNOTATION_APPROVED_VERSIONS: &str = "wellbeing.dev/approved-versions";
/// Label on generated Plugins (so `kubectl get plugins -l wellbeing.dev/generated=true` finds them).
pub const LABEL_GENERATED: &str = "wellbeing.dev/generated";
/// The checker runs the examples with its own 20 s limit; this bounds the whole child.
const CHECK_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest plugin id: the operator prefixes `plugin-` and suffixes `-gateway` within 63.
const MAX_ID: usize = 40;

/// What a plugin is generated for.
#[derive(Clone, Debug, PartialEq)]
pub enum Need {
    /// The user's words: "remind me to stretch every 2 hours while I'm in meetings".
    Text(String),
    /// A Goal the user keeps (by name) with its spec.
    Goal { name: String, spec: GoalSpec },
}

impl Need {
    /// For commit messages and the manifest's annotation.
    pub fn describe(&self) -> String {
        match self {
            Need::Text(text) => format!("need \"{}\"", truncate(text.trim(), 120)),
            Need::Goal { name, .. } => format!("goal {name}"),
        }
    }

    fn annotation(&self) -> String {
        match self {
            Need::Text(text) => format!("need: {}", truncate(text.trim(), 200)),
            Need::Goal { name, .. } => format!("goal/{name}"),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "the", "to", "me", "my", "i", "im", "i'm", "in", "on", "at", "of", "for", "every", "while",
    "with", "when", "please", "remind", "help", "want", "would", "like", "be", "is", "am", "are", "it", "that", "this",
    "do", "more", "some", "about", "from", "by", "or", "so", "can", "you", "your", "after", "before", "during", "each",
];

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(&w.as_str()) && !w.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// The plugin's id (directory, Plugin name): the goal's name, or the first meaningful words of
/// the need, as lowercase letters, digits and dashes that the module path rule accepts.
pub fn plugin_id(need: &Need) -> String {
    let raw = match need {
        Need::Goal { name, .. } => name.replace('.', "-"),
        Need::Text(text) => {
            let w = words(text);
            if w.is_empty() { "plugin".to_string() } else { w.into_iter().take(4).collect::<Vec<_>>().join("-") }
        }
    };
    let mut id: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if id.len() > MAX_ID {
        id.truncate(MAX_ID);
        id = id.trim_end_matches('-').to_string();
    }
    if id.is_empty() { "plugin".to_string() } else { id }
}

/// The tool name the module should use: the id with `_` (OpenAI's function-name alphabet).
pub fn tool_name(id: &str) -> String {
    id.replace('-', "_")
}

/// Keywords that tie a generated plugin to messages and goals.
pub fn keywords(need: &Need) -> Vec<String> {
    let mut out: Vec<String> = match need {
        Need::Goal { spec, .. } => spec.keywords.clone(),
        Need::Text(text) => words(text).into_iter().filter(|w| w.len() > 3).take(6).collect(),
    };
    out.dedup();
    out
}

/// The system prompt: the module contract of plugins/README.md and the checker's rules.
pub const SYSTEM_PROMPT: &str = r#"You write plugins for a personal wellbeing assistant. A plugin is ONE Python 3.11 module that the
assistant's plugin host serves as an MCP tool. Reply with the whole module in one ```python block and nothing else.

The module defines at module level:
- name: str, the tool name, 1-64 of [a-zA-Z0-9_-]
- description: str, what the tool does and when to use it (an LLM reads it to decide)
- input_schema: dict, a JSON schema with "type": "object"; include an optional "text" string property
  (the user's message) so the tool also works when called with {"text": ...} only
- required_secrets: list[str], secret names the plugin reads (usually [])
- async def run(context, llm, secrets): returns a dict of JSON values (or a str). context holds the arguments.
- optional def match(context) -> bool: context is {"text": ..., "pillars": [...]}
- examples: list of {"input": {...}, "expect": ...} used as the self-test. expect matches the output:
  a string = output contains it (case-insensitive); a dict = those keys, values matched recursively, or an
  operator {"$contains": s} {"$type": "str|int|float|number|bool|list|dict"} {"$min": n} {"$max": n}
  {"$len_min": n} {"$len_max": n} {"$any": true}; a list = same length item by item; else equality.
  Give 2-4 examples whose outputs are deterministic (no current time, no randomness in what expect checks).
- optional egress_hosts: list[str], only hosts the user allowed.

llm: `await llm.complete(task, prompt)` returns text; task is one of "chat", "extraction", "summary", "code".
In the self-test it raises unless an example gives "llm_reply"; a plugin that uses it must handle
wellbeing_host.api.LlmUnavailable / LlmError and still return something useful.
Network: only `from wellbeing_host.api import http_get` (await http_get(url) -> response with .status, .text,
.json()), only to declared egress_hosts, with the host written literally in the URL.

The checker refuses, naming the rule:
- import: anything but json math statistics datetime re string textwrap random itertools functools collections
  dataclasses typing zoneinfo decimal fractions enum calendar operator bisect heapq copy __future__ and
  wellbeing_host.api
- forbidden-call: eval exec compile __import__ open globals locals vars breakpoint input exit quit memoryview help;
  getattr/setattr/delattr/hasattr without a literal non-underscore name
- dunder: any __dunder__ name or attribute (do not write if __name__ == "__main__"), format strings reaching ._x
- network: undeclared hosts; credential: hard-coded keys or tokens; examples: a failing example
- contract: a missing name above, or run not `async def run(context, llm, secrets)`

Be kind and practical; never diagnose or give medical advice. Keep it small and readable."#;

/// The user message asking for a plugin.
pub fn request_prompt(need: &Need, id: &str, allow_hosts: &[String]) -> String {
    let mut out = String::new();
    match need {
        Need::Text(text) => out.push_str(&format!("Write a plugin for this need of the user: {}\n", text.trim())),
        Need::Goal { name, spec } => {
            out.push_str(&format!("Write a plugin that helps the user keep their goal \"{name}\".\n"));
            out.push_str(&format!("Goal: {}\n", spec.description.trim()));
            out.push_str(&format!("Pillar: {}\n", spec.pillar));
            out.push_str(&format!(
                "What counts in a check-in: {} ({} per {})\n",
                spec.metric.as_str(),
                spec.target.count,
                serde_json::to_value(spec.target.per)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ));
            if !spec.keywords.is_empty() {
                out.push_str(&format!("Keywords: {}\n", spec.keywords.join(", ")));
            }
        }
    }
    out.push_str(&format!("Use name = \"{}\".\n", tool_name(id)));
    if allow_hosts.is_empty() {
        out.push_str("The plugin gets no network access: do not use http_get and leave egress_hosts out.\n");
    } else {
        out.push_str(&format!("The plugin may reach only these hosts: {}.\n", allow_hosts.join(", ")));
    }
    out
}

/// The message that sends a rejection back to the model.
pub fn feedback_prompt(report: &CheckReport) -> String {
    let mut out = format!(
        "The checker rejected the module: rule `{}`: {}.\n",
        report.rule.as_deref().unwrap_or("unknown"),
        report.detail.as_deref().unwrap_or("no detail")
    );
    let others: Vec<String> = report
        .violations
        .iter()
        .skip(1)
        .take(5)
        .map(|v| format!("- rule `{}` line {}: {}", v.rule, v.line, v.detail))
        .collect();
    if !others.is_empty() {
        out.push_str("Also:\n");
        out.push_str(&others.join("\n"));
        out.push('\n');
    }
    out.push_str("Fix it and reply with the whole corrected module in one ```python block.");
    out
}

/// The module in a model's reply: the longest fenced block (```python or ```), else the text.
pub fn extract_code(reply: &str) -> Option<String> {
    let fence = Regex::new(r"(?s)```[a-zA-Z0-9_+-]*[ \t]*\n(.*?)```").expect("static regex");
    let best = fence.captures_iter(reply).filter_map(|c| c.get(1)).map(|m| m.as_str()).max_by_key(|s| s.len());
    let code = best.unwrap_or(reply).trim();
    (!code.is_empty()).then(|| format!("{code}\n"))
}

/// The task class a module asks the gateway for: the first literal of `llm.complete("<task>"`,
/// `chat` when it calls `llm.complete` with a computed task, `none` when it never does.
pub fn llm_task(code: &str) -> LlmTask {
    let literal = Regex::new(r#"llm\.complete\(\s*(?:task\s*=\s*)?["'](chat|extraction|summary|code)["']"#)
        .expect("static regex");
    match literal.captures(code).and_then(|c| c.get(1)).map(|m| m.as_str()) {
        Some("extraction") => LlmTask::Extraction,
        Some("summary") => LlmTask::Summary,
        Some("code") => LlmTask::Code,
        Some(_) => LlmTask::Chat,
        None if code.contains("llm.complete(") => LlmTask::Chat,
        None => LlmTask::None,
    }
}

/// The module's `required_secrets` names (string literals of the module-level list).
pub fn required_secrets(code: &str) -> Vec<String> {
    let list = Regex::new(r"(?ms)^required_secrets\s*(?::[^=\n]*)?=\s*\[(.*?)\]").expect("static regex");
    let item = Regex::new(r#"["']([a-zA-Z0-9_-]{1,255})["']"#).expect("static regex");
    list.captures(code)
        .and_then(|c| c.get(1))
        .map(|m| item.captures_iter(m.as_str()).filter_map(|c| c.get(1)).map(|n| n.as_str().to_string()).collect())
        .unwrap_or_default()
}

/// `openweather-api-key` -> `OPENWEATHER_API_KEY` (the plugin host's lookup rule).
pub fn env_name(secret: &str) -> String {
    secret.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// The versions present in a plugin's directory (`v<N>.py`), sorted.
pub fn versions(dir: &Path) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix('v')?.strip_suffix(".py")?.parse::<i32>().ok().filter(|n| *n >= 1)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Everything the manifest is built from.
pub struct ManifestInput<'a> {
    pub id: &'a str,
    pub version: i32,
    pub description: &'a str,
    pub code: &'a str,
    pub need: &'a Need,
    pub model: &'a str,
    pub allow_hosts: &'a [String],
    /// Annotations of the plugin's previous manifest to carry over (approved versions).
    pub previous: Option<&'a Plugin>,
}

/// The Plugin resource of a generated module: unapproved, triggers from the goal or need, the
/// code inline (the operator's ConfigMap) and the module path.
pub fn build_manifest(input: &ManifestInput<'_>) -> Plugin {
    let triggers = match input.need {
        Need::Goal { name, spec } => {
            Triggers { pillars: vec![spec.pillar.clone()], goals: vec![name.clone()], keywords: keywords(input.need) }
        }
        Need::Text(_) => Triggers { keywords: keywords(input.need), ..Default::default() },
    };
    let mut annotations = BTreeMap::from([
        (ANNOTATION_MODEL.to_string(), input.model.to_string()),
        (ANNOTATION_FOR.to_string(), input.need.annotation()),
    ]);
    if let Some(approved) =
        input.previous.and_then(|p| p.metadata.annotations.as_ref()).and_then(|a| a.get(ANNOTATION_APPROVED_VERSIONS))
    {
        annotations.insert(ANNOTATION_APPROVED_VERSIONS.to_string(), approved.clone());
    }
    let spec = PluginSpec {
        description: truncate(input.description.trim(), 1000),
        version: input.version,
        triggers,
        source: wellbeing_crds::plugin::PluginSource {
            python: Some(PythonSource {
                module: format!("{}/v{}.py", input.id, input.version),
                code: Some(input.code.to_string()),
            }),
            mcp: None,
        },
        required_secrets: required_secrets(input.code)
            .into_iter()
            .map(|name| SecretRef { env: env_name(&name), name })
            .collect(),
        llm: llm_task(input.code),
        egress: input.allow_hosts.iter().map(|h| EgressHost { host: h.clone(), port: 443 }).collect(),
        approved: false,
    };
    let mut plugin = Plugin::new(input.id, spec);
    plugin.metadata.annotations = Some(annotations);
    plugin.metadata.labels = Some(BTreeMap::from([(LABEL_GENERATED.to_string(), "true".to_string())]));
    plugin
}

/// A Plugin as manifest YAML: apiVersion, kind, metadata (name, namespace, labels, annotations)
/// and spec, with empty lists and objects left out. Status never goes into the GitOps repository.
pub fn manifest_yaml(plugin: &Plugin) -> Result<String, serde_yaml::Error> {
    fn prune(v: &mut serde_json::Value) {
        if let serde_json::Value::Object(map) = v {
            for value in map.values_mut() {
                prune(value);
            }
            map.retain(|_, value| match value {
                serde_json::Value::Null => false,
                serde_json::Value::Array(a) => !a.is_empty(),
                serde_json::Value::Object(o) => !o.is_empty(),
                _ => true,
            });
        }
    }
    let mut metadata = serde_json::Map::new();
    let m = &plugin.metadata;
    metadata.insert("name".into(), serde_json::json!(m.name));
    if let Some(ns) = &m.namespace {
        metadata.insert("namespace".into(), serde_json::json!(ns));
    }
    metadata.insert("labels".into(), serde_json::json!(m.labels));
    metadata.insert("annotations".into(), serde_json::json!(m.annotations));
    let mut spec = serde_json::to_value(&plugin.spec).map_err(<serde_yaml::Error as serde::ser::Error>::custom)?;
    prune(&mut spec);
    // `approved: false` is the point of a generated manifest: always written, even though the
    // CRD's default is true.
    spec["approved"] = serde_json::Value::Bool(plugin.spec.approved);
    let mut doc = serde_json::json!({
        "apiVersion": format!("{}/{}", wellbeing_crds::GROUP, wellbeing_crds::VERSION),
        "kind": "Plugin",
        "metadata": metadata,
        "spec": spec,
    });
    prune(&mut doc["metadata"]);
    wellbeing_crds::kubectl_yaml::to_string(&doc)
}

/// The checker's JSON report (`python -m wellbeing_host check`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct CheckReport {
    pub ok: bool,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub violations: Vec<Violation>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Violation {
    pub rule: String,
    pub detail: String,
    #[serde(default)]
    pub line: i64,
}

/// One refused attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub rule: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("failed to ask the code model for a plugin")]
    Llm(#[source] LlmError),
    #[error("failed to run the plugin checker ({python} -m wellbeing_host check)")]
    Checker {
        python: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the plugin checker did not finish within {0:?}")]
    CheckerTimeout(Duration),
    #[error("the plugin checker failed: {0}")]
    CheckerOutput(String),
    #[error(
        "the generated plugin was rejected {attempts} times; the last attempt broke rule `{rule}`: {detail}",
        rule = last.rule, detail = last.detail
    )]
    Rejected { attempts: u32, last: Rejection, all: Vec<Rejection> },
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to serialize the plugin manifest")]
    Yaml(#[source] serde_yaml::Error),
    #[error("the generated manifest {} is not valid", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: manifest::ManifestError,
    },
}

/// Where and how to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// The `plugins/` directory the module and manifest are written into.
    pub plugins_dir: PathBuf,
    /// The plugin host package (`plugins/host`), for the checker and the serving check.
    pub host_dir: PathBuf,
    pub python: String,
    /// The code model (the persona's `models.code`, or the configured default).
    pub model: String,
    /// Hosts the plugin may reach (`--allow-host`); none by default.
    pub allow_hosts: Vec<String>,
    pub max_attempts: u32,
    /// Max completion tokens of each attempt (the route's); `None`: the endpoint's default.
    pub max_completion_tokens: Option<u32>,
}

impl GenerateOptions {
    pub fn new(plugins_dir: impl Into<PathBuf>, model: impl Into<String>) -> GenerateOptions {
        let plugins_dir = plugins_dir.into();
        GenerateOptions {
            host_dir: plugins_dir.join("host"),
            plugins_dir,
            python: "python3".into(),
            model: model.into(),
            allow_hosts: Vec::new(),
            max_attempts: MAX_ATTEMPTS,
            max_completion_tokens: None,
        }
    }
}

/// A plugin written to disk.
#[derive(Clone, Debug)]
pub struct Generated {
    pub id: String,
    pub version: i32,
    pub module_path: PathBuf,
    pub manifest_path: PathBuf,
    pub model: String,
    pub plugin: Plugin,
    /// Tools the module served in the check, by name.
    pub tools: Vec<String>,
    /// Attempts refused before the one that passed.
    pub rejections: Vec<Rejection>,
}

/// Ask, check, retry, write. Nothing is written unless an attempt passes every check.
#[instrument(skip_all, fields(need = %need.describe(), model = %options.model))]
pub async fn generate(llm: &LlmClient, need: &Need, options: &GenerateOptions) -> Result<Generated, GenError> {
    let id = plugin_id(need);
    let scratch = tempfile::tempdir().map_err(|source| GenError::Write { path: std::env::temp_dir(), source })?;
    let candidate = scratch.path().join(format!("{id}.py"));
    let mut messages =
        vec![system_message(SYSTEM_PROMPT), user_message(&request_prompt(need, &id, &options.allow_hosts))];
    let mut rejections: Vec<Rejection> = Vec::new();
    let attempts = options.max_attempts.max(1);
    for attempt in 1..=attempts {
        // No temperature: OpenAI's reasoning models (a likely `models.code`) refuse anything but
        // their default.
        let request = ChatRequest {
            model: Some(options.model.clone()),
            messages: messages.clone(),
            max_completion_tokens: options.max_completion_tokens,
            ..Default::default()
        };
        let reply = llm.chat(request).await.map_err(GenError::Llm)?;
        let text = reply.text().unwrap_or_default().to_string();
        let verdict = match extract_code(&text) {
            None => Err(CheckReport {
                ok: false,
                rule: Some("contract".into()),
                detail: Some("the reply held no module".into()),
                violations: Vec::new(),
            }),
            Some(code) => {
                std::fs::write(&candidate, &code)
                    .map_err(|source| GenError::Write { path: candidate.clone(), source })?;
                let report = run_checker(options, &candidate).await?;
                if report.ok {
                    match serve_check(options, &id, &candidate).await {
                        Ok(tools) => Ok((code, tools)),
                        Err(detail) => Err(CheckReport {
                            ok: false,
                            rule: Some("contract".into()),
                            detail: Some(format!("the plugin host could not serve the module: {detail}")),
                            violations: Vec::new(),
                        }),
                    }
                } else {
                    Err(report)
                }
            }
        };
        match verdict {
            Ok((code, tools)) => {
                info!(attempt, id = %id, "generated plugin passed the checks");
                return write(need, &id, &code, tools, rejections, options);
            }
            Err(report) => {
                let rejection = Rejection {
                    rule: report.rule.clone().unwrap_or_else(|| "unknown".into()),
                    detail: report.detail.clone().unwrap_or_default(),
                };
                warn!(attempt, rule = %rejection.rule, "generated plugin rejected");
                rejections.push(rejection);
                messages.push(crate::llm::types::ChatCompletionRequestMessage::Assistant(
                    crate::llm::types::ChatCompletionRequestAssistantMessage {
                        content: Some(crate::llm::types::ChatCompletionRequestAssistantMessageContent::Text(text)),
                        ..Default::default()
                    },
                ));
                messages.push(user_message(&feedback_prompt(&report)));
            }
        }
    }
    let last = rejections.last().cloned().unwrap_or(Rejection { rule: "unknown".into(), detail: String::new() });
    Err(GenError::Rejected { attempts, last, all: rejections })
}

/// Run `python -m wellbeing_host check` on a candidate module.
pub async fn run_checker(options: &GenerateOptions, module: &Path) -> Result<CheckReport, GenError> {
    let mut command = tokio::process::Command::new(&options.python);
    command.args(["-m", "wellbeing_host", "check", "--module"]).arg(module);
    for host in &options.allow_hosts {
        command.args(["--allow-host", host]);
    }
    command
        .env("PYTHONPATH", &options.host_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(CHECK_TIMEOUT, command.output())
        .await
        .map_err(|_| GenError::CheckerTimeout(CHECK_TIMEOUT))?
        .map_err(|source| GenError::Checker { python: options.python.clone(), source })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match (output.status.code(), serde_json::from_str::<CheckReport>(&stdout)) {
        (Some(0 | 1), Ok(report)) => Ok(report),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
            Err(GenError::CheckerOutput(format!("exit {:?}: {}", output.status.code(), truncate(last, 300))))
        }
    }
}

/// Start the module in the real plugin host over stdio and list its tools (names of the tools
/// the LLM would see), so a module that passes the checker but cannot be served is refused too.
async fn serve_check(options: &GenerateOptions, id: &str, module: &Path) -> Result<Vec<String>, String> {
    let endpoint = PluginEndpoint {
        name: id.to_string(),
        version: 0,
        transport: PluginTransport::Stdio {
            command: options.python.clone(),
            args: ["-m", "wellbeing_host", "--module", &module.display().to_string(), "--transport", "stdio"]
                .map(String::from)
                .to_vec(),
            env: BTreeMap::from([
                ("PYTHONPATH".to_string(), options.host_dir.display().to_string()),
                ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
            ]),
        },
        triggers: Triggers::default(),
    };
    let pool =
        PluginPool::new(vec![endpoint], Arc::new(MemorySink::default()), reqwest::Client::new(), PoolConfig::default());
    let tools = pool.tools(id).await;
    pool.shutdown().await;
    let tools = tools.map_err(|e| error_chain(&e))?;
    let run: Vec<String> = tools.iter().filter(|t| t.role == ToolRole::Run).map(|t| t.tool.clone()).collect();
    if run.is_empty() {
        return Err("the module serves no tool".into());
    }
    Ok(run)
}

/// The module's `description` as the host serves it, else the first line of its docstring.
fn description_of(code: &str, need: &Need) -> String {
    let assigned = Regex::new(r#"(?ms)^description\s*=\s*\(?\s*((?:["'][^"'\n]*["']\s*)+)\)?"#).expect("static regex");
    let part = Regex::new(r#"["']([^"'\n]*)["']"#).expect("static regex");
    if let Some(m) = assigned.captures(code).and_then(|c| c.get(1)) {
        let text: String = part.captures_iter(m.as_str()).filter_map(|c| c.get(1)).map(|p| p.as_str()).collect();
        if !text.trim().is_empty() {
            return text.trim().to_string();
        }
    }
    match need {
        Need::Text(text) => format!("Generated for: {}", truncate(text.trim(), 200)),
        Need::Goal { spec, .. } => format!("Helps with: {}", spec.description.trim()),
    }
}

fn write(
    need: &Need,
    id: &str,
    code: &str,
    tools: Vec<String>,
    rejections: Vec<Rejection>,
    options: &GenerateOptions,
) -> Result<Generated, GenError> {
    let dir = options.plugins_dir.join(id);
    std::fs::create_dir_all(&dir).map_err(|source| GenError::Write { path: dir.clone(), source })?;
    let version = versions(&dir).last().copied().unwrap_or(0) + 1;
    let manifest_path = dir.join(MANIFEST_FILE);
    let previous = read_plugin(&manifest_path);
    let plugin = build_manifest(&ManifestInput {
        id,
        version,
        description: &description_of(code, need),
        code,
        need,
        model: &options.model,
        allow_hosts: &options.allow_hosts,
        previous: previous.as_ref(),
    });
    let yaml = manifest_yaml(&plugin).map_err(GenError::Yaml)?;
    check_manifest(&yaml, &manifest_path)?;
    let module_path = dir.join(format!("v{version}.py"));
    std::fs::write(&module_path, code).map_err(|source| GenError::Write { path: module_path.clone(), source })?;
    std::fs::write(&manifest_path, yaml).map_err(|source| GenError::Write { path: manifest_path.clone(), source })?;
    Ok(Generated {
        id: id.to_string(),
        version,
        module_path,
        manifest_path,
        model: options.model.clone(),
        plugin,
        tools,
        rejections,
    })
}

/// The Plugin in a manifest file, if it holds exactly one valid Plugin.
pub fn read_plugin(path: &Path) -> Option<Plugin> {
    let text = std::fs::read_to_string(path).ok()?;
    manifest::parse_documents(&text).into_iter().find_map(|r| match r {
        Ok(Resource::Plugin(p)) => Some(p),
        _ => None,
    })
}

/// Parse `yaml` the way `wellbeing up` and the CRD would (CEL rules included).
pub fn check_manifest(yaml: &str, path: &Path) -> Result<(), GenError> {
    for result in manifest::parse_documents(yaml) {
        result.map_err(|source| GenError::Manifest { path: path.to_path_buf(), source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_crds::goal::{GoalTarget, Metric, Period, Priority};

    fn goal() -> Need {
        Need::Goal {
            name: "drink-more-water".into(),
            spec: GoalSpec {
                description: "Drink six glasses of water a day".into(),
                pillar: "hydration".into(),
                metric: Metric::Water,
                target: GoalTarget { count: 6, per: Period::Day, threshold: None },
                priority: Priority::Medium,
                reminders: vec![],
                rest_days: vec![],
                keywords: vec!["water".into(), "thirsty".into()],
            },
        }
    }

    #[test]
    fn ids_are_module_path_safe() {
        assert_eq!(plugin_id(&goal()), "drink-more-water");
        let need = Need::Text("Remind me to stretch every 2 hours while I'm in meetings!".into());
        assert_eq!(plugin_id(&need), "stretch-hours-meetings");
        assert_eq!(tool_name("stretch-hours-meetings"), "stretch_hours_meetings");
        assert_eq!(plugin_id(&Need::Text("!!!".into())), "plugin");
        let long = Need::Text("extraordinarily-long-words everywhere incomprehensibilities superlatives".into());
        let id = plugin_id(&long);
        assert!(id.len() <= MAX_ID && !id.ends_with('-'), "{id}");
        let re = Regex::new(r"^[a-z0-9][a-z0-9_-]*$").unwrap();
        for id in [plugin_id(&goal()), plugin_id(&need), id] {
            assert!(re.is_match(&id), "{id}");
        }
    }

    #[test]
    fn code_comes_out_of_the_longest_fence() {
        let reply = "Here you go:\n```python\nname = \"x\"\nrun = 1\n```\nand a note\n```\nshort\n```";
        assert_eq!(extract_code(reply).unwrap(), "name = \"x\"\nrun = 1\n");
        assert_eq!(extract_code("name = 'bare'").unwrap(), "name = 'bare'\n");
        assert_eq!(extract_code("   "), None);
    }

    #[test]
    fn llm_task_and_secrets_are_read_from_the_code() {
        assert_eq!(llm_task("x = await llm.complete('summary', p)"), LlmTask::Summary);
        assert_eq!(llm_task("x = await llm.complete(task=\"extraction\", prompt=p)"), LlmTask::Extraction);
        assert_eq!(llm_task("x = await llm.complete(kind, p)"), LlmTask::Chat);
        assert_eq!(llm_task("return {}"), LlmTask::None);
        let code = "required_secrets = [\n    \"openweather-api-key\",\n    'calendar_token',\n]\n";
        assert_eq!(required_secrets(code), ["openweather-api-key", "calendar_token"]);
        assert!(required_secrets("required_secrets = []").is_empty());
        assert_eq!(env_name("openweather-api-key"), "OPENWEATHER_API_KEY");
    }

    #[test]
    fn feedback_names_the_rule_and_the_detail() {
        let report = CheckReport {
            ok: false,
            rule: Some("import".into()),
            detail: Some("import of 'os' is not allowed (file and process access)".into()),
            violations: vec![
                Violation { rule: "import".into(), detail: "import of 'os'".into(), line: 3 },
                Violation { rule: "credential".into(), detail: "hard-coded credential (openai)".into(), line: 9 },
            ],
        };
        let text = feedback_prompt(&report);
        assert!(text.contains("rule `import`: import of 'os' is not allowed"), "{text}");
        assert!(text.contains("rule `credential` line 9"), "{text}");
    }

    #[test]
    fn the_manifest_is_unapproved_valid_and_tied_to_the_goal() {
        let code = "name = \"drink_more_water\"\ndescription = \"Water\"\nrequired_secrets = []\n";
        let mut previous = Plugin::new(
            "drink-more-water",
            build_manifest(&ManifestInput {
                id: "drink-more-water",
                version: 1,
                description: "d",
                code,
                need: &goal(),
                model: "m",
                allow_hosts: &[],
                previous: None,
            })
            .spec,
        );
        previous.metadata.annotations =
            Some(BTreeMap::from([(ANNOTATION_APPROVED_VERSIONS.to_string(), "1".to_string())]));
        let plugin = build_manifest(&ManifestInput {
            id: "drink-more-water",
            version: 2,
            description: "Suggests when to drink",
            code,
            need: &goal(),
            model: "coder-7b",
            allow_hosts: &["api.example.com".to_string()],
            previous: Some(&previous),
        });
        let yaml = manifest_yaml(&plugin).unwrap();
        assert!(yaml.contains("approved: false"), "{yaml}");
        assert!(!yaml.contains("status"), "{yaml}");
        let parsed = manifest::parse_documents(&yaml);
        let Ok(Resource::Plugin(p)) = &parsed[0] else { panic!("{parsed:?}\n{yaml}") };
        assert!(!p.spec.approved);
        assert_eq!(p.spec.version, 2);
        let python = p.spec.source.python.as_ref().unwrap();
        assert_eq!(python.module, "drink-more-water/v2.py");
        assert_eq!(python.code.as_deref(), Some(code));
        assert_eq!(p.spec.triggers.goals, ["drink-more-water"]);
        assert_eq!(p.spec.triggers.pillars, ["hydration"]);
        assert_eq!(p.spec.triggers.keywords, ["water", "thirsty"]);
        assert_eq!(p.spec.egress[0].host, "api.example.com");
        let annotations = p.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[ANNOTATION_MODEL], "coder-7b");
        assert_eq!(annotations[ANNOTATION_FOR], "goal/drink-more-water");
        assert_eq!(annotations[ANNOTATION_APPROVED_VERSIONS], "1", "approvals of earlier versions are kept");
    }

    #[test]
    fn description_is_read_from_the_module() {
        let code = "description = (\n    \"Plans stretch breaks \"\n    \"every two hours.\"\n)\n";
        assert_eq!(description_of(code, &goal()), "Plans stretch breaks every two hours.");
        assert_eq!(description_of("x = 1", &goal()), "Helps with: Drink six glasses of water a day");
    }

    #[test]
    fn versions_are_counted_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["v1.py", "v3.py", "v10.py", "notes.txt", "v0.py", "vx.py"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        assert_eq!(versions(dir.path()), [1, 3, 10]);
        assert!(versions(&dir.path().join("missing")).is_empty());
    }
}
