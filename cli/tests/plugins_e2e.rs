//! End to end: `wellbeing up` with the repository's examples/ runs the hydration plugin as a local
//! child of the plugin host, and a message about forgetting to drink gets its suggestion in the
//! reply, with no LLM configured and without being asked for it. Needs `make python-deps`.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Up;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_path_buf()
}

fn python() -> String {
    std::env::var("WELLBEING_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Fails (never skips) when the plugin host cannot run, naming the fix.
fn require_python_deps() {
    match Command::new(python()).args(["-c", "import mcp, mcp.server.lowlevel, jsonschema"]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the plugin host's Python dependencies are missing for {}: run `make python-deps`\n{}",
            python(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run {} ({e}): install Python 3.11+ and run `make python-deps`", python()),
    }
}

/// Invocation rows (plugin, tool, outcome) in the running instance's database.
fn invocations(data: &std::path::Path) -> Vec<(String, String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(data.join("wellbeing.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn.prepare("SELECT plugin, tool, outcome FROM plugin_invocations ORDER BY id").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_the_example_plugins_and_the_reply_uses_hydration_unasked() {
    require_python_deps();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // The repository's examples/ and, beside them, plugins/ (found without a flag).
    let up = Up::start(&data, &repo_root().join("examples"), &[("WELLBEING_PYTHON", &python())]);
    let token = up.token();

    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let started = Instant::now();
    let r = http
        .post(format!("{}/api/local/messages", up.url))
        .bearer_auth(&token)
        .json(&json!({"text": "forgot to drink water all day, headache"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", up.stderr());
    let sent: Value = r.json().await.unwrap();
    let reply = sent["reply"].as_str().unwrap();
    eprintln!("reply after {:?}: {reply}", started.elapsed());
    // plugins/hydration/v1.py: a glass now, sips every half hour when urgent, and the headache line.
    assert!(reply.contains("Drink a glass of water (250 ml) now"), "{reply}\n{}", up.stderr());
    assert!(reply.contains("small sips every half hour"), "{reply}");
    assert!(reply.contains("Headaches often ease within an hour of drinking"), "{reply}");

    // Recorded in the database: the match tool and the run tool of hydration, both ok. The sink
    // writes on the blocking pool, so the rows may land just after the reply.
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = invocations(&data);
        if rows.iter().filter(|r| r.0 == "hydration").count() >= 2 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let hydration: Vec<_> = rows.iter().filter(|r| r.0 == "hydration").collect();
    assert!(hydration.len() >= 2, "{rows:?}");
    assert!(hydration.iter().all(|r| r.2 == "ok"), "{rows:?}");
    assert!(hydration.iter().any(|r| r.1 == "hydration"), "the run tool was called: {rows:?}");
    // The sleep plugin's triggers do not fit this message: it was not called.
    assert!(rows.iter().all(|r| r.0 != "sleep-winddown"), "{rows:?}");

    // The image-only plugin cannot run locally and says so; both approved Python plugins were
    // connected by the background discovery (it reports once every plugin has answered).
    let log = up.stderr();
    assert!(log.lines().any(|l| l.contains("plugin not run") && l.contains("plugin=weather-walks")), "{log}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = up.stderr();
        let connected = |name: &str| log.lines().any(|l| l.contains("plugin connected") && l.contains(name));
        if connected("plugin=hydration") && connected("plugin=sleep-winddown") {
            break;
        }
        assert!(Instant::now() < deadline, "plugins not connected: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A clean stop shuts the children down.
    let children = plugin_children(up.child.id());
    assert!(!children.is_empty(), "the plugin host runs as a child of wellbeing up");
    let (code, _) = up.stop();
    assert_eq!(code, Some(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    while children.iter().any(|pid| alive(*pid)) {
        assert!(Instant::now() < deadline, "plugin children {children:?} outlived wellbeing up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of the plugin host processes whose parent is `parent` (Linux /proc).
fn plugin_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:")).map(|v| v.trim().to_string());
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if ppid.as_deref() == Some(&parent.to_string()) && String::from_utf8_lossy(&cmdline).contains("wellbeing_host")
        {
            out.push(pid);
        }
    }
    out
}

/// Still running (a zombie, reaped by nobody yet, counts as stopped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| !s.lines().any(|l| l.starts_with("State:") && l.contains('Z')))
}
