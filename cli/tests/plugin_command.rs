//! `wellbeing plugin generate | list | approve | rollback` end to end: a temporary GitOps
//! repository, a goal in its manifests folder, a fake OpenAI-compatible code model on 127.0.0.1,
//! the real plugin host (checker, self-test, MCP over stdio) and the git CLI.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

const MODULE: &str = r#"name = "stretch_breaks"
description = "Plans a stretch break every two hours until the end of the working day."
input_schema = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "now": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
        "until": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
    },
}
required_secrets = []


def _minutes(hhmm):
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


async def run(context, llm, secrets):
    now = _minutes(context.get("now", "09:00"))
    until = _minutes(context.get("until", "17:00"))
    times = []
    t = now + 120
    while t <= until:
        times.append("{:02d}:{:02d}".format(t // 60, t % 60))
        t += 120
    return {"breaks": times, "count": len(times)}


examples = [
    {"input": {"now": "09:00", "until": "17:00"}, "expect": {"count": 4, "breaks": ["11:00", "13:00", "15:00", "17:00"]}},
]
"#;

const MANIFESTS: &str = "apiVersion: wellbeing.dev/v1alpha1
kind: Persona
metadata:
  name: coach
spec:
  displayName: Coach
  systemPrompt: Be kind.
  active: true
  checkIns:
    timeZone: UTC
    windows: [{start: \"09:00\", end: \"21:00\"}]
    perDay: 1
  models:
    code: coder-model
---
apiVersion: wellbeing.dev/v1alpha1
kind: Goal
metadata:
  name: stretch-breaks
spec:
  description: Stretch every two hours on work days
  pillar: physical-activity
  metric: exercise
  target: {count: 5, per: week}
";

/// A one-route HTTP/1.1 server answering every chat completion with `MODULE`; records bodies.
fn fake_model() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(String::from_utf8_lossy(&body).to_string());
            let reply = serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "coder-model",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                    "message": {"role": "assistant", "content": format!("```python\n{MODULE}```")}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (format!("http://{addr}/v1"), bodies)
}

fn host_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/host")
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(repo).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn plugin(repo: &Path, llm: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_wellbeing"))
        .current_dir(repo)
        .arg("plugin")
        .args(args)
        .args(["--plugins-dir", "plugins", "--manifests", "manifests"])
        .env("WELLBEING_LLM_BASE_URL", llm)
        .env("WELLBEING_LLM_MODEL", "default-model")
        .env_remove("WELLBEING_LLM_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plugin {args:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn generate_commit_approve_list_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q"]);
    git(repo, &["config", "user.email", "you@example.com"]);
    git(repo, &["config", "user.name", "You"]);
    std::fs::create_dir_all(repo.join("manifests")).unwrap();
    std::fs::create_dir_all(repo.join("plugins")).unwrap();
    std::fs::write(repo.join("manifests/coach.yaml"), MANIFESTS).unwrap();
    // The plugin host is found through the plugins directory, as in this repository.
    std::os::unix::fs::symlink(host_dir().canonicalize().unwrap(), repo.join("plugins/host")).unwrap();
    std::fs::write(repo.join("unrelated.txt"), "staged but not part of the plugin commit").unwrap();
    git(repo, &["add", "unrelated.txt"]);

    let (llm, bodies) = fake_model();
    let out = plugin(repo, &llm, &["generate", "--goal", "stretch-breaks", "--commit"]);
    let text = stdout(&out);
    assert!(text.contains("plugins/stretch-breaks/v1.py") && text.contains("not approved"), "{text}");
    // The persona's code model was asked, about the goal.
    let request: serde_json::Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(request["model"], "coder-model");
    assert!(request.to_string().contains("Stretch every two hours on work days"));

    let log = git(repo, &["log", "--format=%B", "-1"]);
    assert!(log.contains("goal stretch-breaks") && log.contains("coder-model"), "{log}");
    let files = git(repo, &["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        ["plugins/stretch-breaks/plugin.yaml", "plugins/stretch-breaks/v1.py"]
    );
    assert!(git(repo, &["status", "--porcelain"]).contains("A  unrelated.txt"), "other staged files stay staged");
    let manifest = std::fs::read_to_string(repo.join("plugins/stretch-breaks/plugin.yaml")).unwrap();
    assert!(manifest.contains("approved: false"), "{manifest}");

    let listed = stdout(&plugin(repo, &llm, &["list"]));
    let row = listed.lines().find(|l| l.starts_with("stretch-breaks")).unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("NotApproved"), "{listed}");

    plugin(repo, &llm, &["approve", "stretch-breaks", "--commit"]);
    assert!(git(repo, &["log", "--format=%s", "-1"]).contains("Approve plugin stretch-breaks v1"));
    let listed = stdout(&plugin(repo, &llm, &["list"]));
    let row = listed.lines().find(|l| l.starts_with("stretch-breaks")).unwrap();
    assert!(row.contains("Ready") && row.contains("stretch_breaks"), "the approved plugin serves its tool: {listed}");

    // A second version starts unapproved; rolling back returns to the approved v1 and keeps v2.py.
    plugin(repo, &llm, &["generate", "--goal", "stretch-breaks"]);
    let manifest = std::fs::read_to_string(repo.join("plugins/stretch-breaks/plugin.yaml")).unwrap();
    assert!(manifest.contains("module: stretch-breaks/v2.py") && manifest.contains("approved: false"), "{manifest}");
    let out = stdout(&plugin(repo, &llm, &["rollback", "stretch-breaks"]));
    assert!(out.contains("from version 2 to 1"), "{out}");
    let manifest = std::fs::read_to_string(repo.join("plugins/stretch-breaks/plugin.yaml")).unwrap();
    assert!(manifest.contains("module: stretch-breaks/v1.py") && manifest.contains("approved: true"), "{manifest}");
    assert!(repo.join("plugins/stretch-breaks/v2.py").is_file());

    // The goal is covered now: automatic generation has nothing to do.
    let out = stdout(&plugin(repo, &llm, &["generate", "--uncovered"]));
    assert!(out.contains("Every goal is covered"), "{out}");
    assert_eq!(bodies.lock().unwrap().len(), 2, "no model call for covered goals");
}
