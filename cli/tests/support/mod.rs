//! Helpers for tests that run the built `wellbeing` binary.

#![allow(dead_code)] // each test file uses a different subset

pub mod cdp;

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wellbeing");

/// A `wellbeing` command with a clean environment: no LLM, no Slack, no user data dir.
pub fn wellbeing(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "WELLBEING_LLM_BASE_URL",
        "WELLBEING_LLM_MODEL",
        "WELLBEING_LLM_API_KEY",
        "OPENAI_API_KEY",
        "SLACK_SIGNING_SECRET",
        "SLACK_BOT_TOKEN",
        "WELLBEING_URL",
        "WELLBEING_MANIFESTS",
        "WELLBEING_LISTEN",
    ] {
        cmd.env_remove(var);
    }
    // Plain log lines (no colour codes) so tests can match fields like `goals=1`.
    cmd.env("WELLBEING_DATA_DIR", data_dir).env("RUST_LOG", "info").env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// Run to completion with a time limit.
pub fn run(cmd: &mut Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start wellbeing");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("timed out; stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `wellbeing up`, stopped with SIGTERM when dropped.
pub struct Up {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
}

impl Up {
    /// Start `wellbeing up` on a free port and wait until it has written its instance file.
    pub fn start(data_dir: &Path, manifests: &Path, extra_env: &[(&str, &str)]) -> Up {
        let port = free_port();
        let stderr_path = data_dir.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = wellbeing(data_dir);
        cmd.args(["up", "--listen", &format!("127.0.0.1:{port}"), "--manifests"]).arg(manifests);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().expect("start wellbeing up");
        let mut up = Up { child, url: format!("http://127.0.0.1:{port}"), data_dir: data_dir.into(), stderr_path };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !data_dir.join("instance.json").exists() {
            if let Some(status) = up.child.try_wait().unwrap() {
                panic!("wellbeing up exited with {status}: {}", up.stderr());
            }
            assert!(Instant::now() < deadline, "wellbeing up did not start: {}", up.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        up
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn token(&self) -> String {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.data_dir.join("instance.json")).unwrap()).unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    /// SIGTERM, then wait for a clean exit; returns (exit code, stdout).
    pub fn stop(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        (status.code(), out)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A manifests folder with one active persona whose single daily check-in window is the current
/// UTC minute, so its one check-in is due at start-up (inside the grace period).
pub fn manifests_with_checkin_now(dir: &Path) {
    let mut now = chrono::Utc::now();
    if now.format("%H:%M").to_string() == "23:59" {
        // A window cannot cross midnight: wait for the new day.
        std::thread::sleep(Duration::from_secs(61));
        now = chrono::Utc::now();
    }
    let start = now.format("%H:%M").to_string();
    let end = (now + chrono::Duration::minutes(1)).format("%H:%M").to_string();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("persona.yaml"),
        format!(
            r#"apiVersion: wellbeing.dev/v1alpha1
kind: Persona
metadata:
  name: coach
spec:
  displayName: Sunny
  active: true
  checkIns:
    timeZone: UTC
    windows: [{{start: "{start}", end: "{end}"}}]
    perDay: 1
    minGapMinutes: 0
    channel: local
    prompts: ["Morning check: how did you sleep?"]
  requiredFields: [mood]
"#
        ),
    )
    .unwrap();
}
