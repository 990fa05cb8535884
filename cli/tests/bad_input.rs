//! Bad input to `wellbeing up` and the data tools: one clear line saying what and where, a
//! non-zero exit code, and no data touched. Each test runs the built binary.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use support::{free_port, run, wellbeing};

/// The `error:` lines of a run: exactly one is expected.
fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(!out.status.success(), "exit code must be non-zero: {stderr}");
    lines[0].to_string()
}

fn up(data_dir: &Path, manifests: &Path, port: u16) -> Command {
    let mut cmd = wellbeing(data_dir);
    cmd.args(["up", "--listen", &format!("127.0.0.1:{port}"), "--manifests"]).arg(manifests);
    cmd
}

fn empty_manifests(root: &Path) -> std::path::PathBuf {
    let dir = root.join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn manifests_folder_that_does_not_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let missing = tmp.path().join("no-such-folder");
    let out = run(&mut up(&data, &missing, free_port()));
    let line = error_line(&out);
    assert!(line.contains("manifests folder") && line.contains("no-such-folder"), "{line}");
    assert!(line.contains("does not exist"), "{line}");
    assert!(!data.exists(), "the data dir was not created");
}

#[test]
fn database_file_that_is_not_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("wellbeing.db");
    let garbage = b"these are my notes, not a database; please do not overwrite them\n".repeat(20);
    std::fs::write(&db, &garbage).unwrap();
    let out = run(&mut up(&data, &empty_manifests(tmp.path()), free_port()));
    let line = error_line(&out);
    assert!(line.contains("is not a wellbeing database") && line.contains(db.to_str().unwrap()), "{line}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "the file is untouched");
    assert!(!data.join("instance.json").exists());

    // The data tools refuse it the same way.
    let out = run(wellbeing(&data).args(["chat", "slept badly"]));
    assert!(error_line(&out).contains("is not a wellbeing database"));
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
}

#[test]
fn database_file_that_is_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A real database with one check-in in it.
    let out = run(wellbeing(&data).args(["chat", "slept well"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = data.join("wellbeing.db");
    let before = std::fs::read(&db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();

    let mut cmd = up(&data, &empty_manifests(tmp.path()), free_port());
    // Root writes through any file mode, so as root run the binary as `nobody`, who owns the data
    // dir (so the lock file can be created) but not write access to the database file.
    let as_root = std::process::Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if as_root {
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for entry in walk(tmp.path()) {
            std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).unwrap();
        }
        let mut wrapped = Command::new("setpriv");
        wrapped.args(["--reuid=65534", "--regid=65534", "--clear-groups", support::BIN]);
        wrapped.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        cmd = wrapped;
    }
    let out = run(&mut cmd);
    let line = error_line(&out);
    assert!(line.contains("read-only") && line.contains(db.to_str().unwrap()), "{line}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "the database is untouched");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn port_already_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = run(&mut up(&data, &empty_manifests(tmp.path()), port));
    let line = error_line(&out);
    assert!(line.contains(&format!("127.0.0.1:{port}")) && line.contains("already in use"), "{line}");
    assert!(!data.exists(), "nothing was created in the data dir");
}

#[test]
fn corrupt_local_secret_store() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let secrets = data.join("secrets.json");
    let garbage = b"{\"version\": 1, \"secrets\": {\"openweather-api-key\": \"abc\"";
    std::fs::write(&secrets, garbage).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&mut up(&data, &empty_manifests(tmp.path()), free_port()));
    let line = error_line(&out);
    assert!(line.contains("secret store") && line.contains(secrets.to_str().unwrap()), "{line}");
    assert_eq!(std::fs::read(&secrets).unwrap(), garbage, "the store is untouched");
    assert!(!data.join("wellbeing.db").exists(), "no database was created");
}

#[test]
fn forget_without_yes_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(run(wellbeing(&data).args(["chat", "ran 5k, feeling great"])).status.success());
    let out = run(wellbeing(&data).args(["forget"]));
    assert!(error_line(&out).contains("without --yes"));
    let list = run(wellbeing(&data).args(["checkins", "--json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.len(), 1);

    let out = run(wellbeing(&data).args(["forget", "--yes"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = run(wellbeing(&data).args(["checkins", "--json"]));
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "[]");
}

#[test]
fn bad_since_is_refused_by_the_parser() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(wellbeing(tmp.path()).args(["checkins", "--since", "7y"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
}

#[test]
fn half_configured_slack() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = run(up(&data, &empty_manifests(tmp.path()), free_port()).env("SLACK_BOT_TOKEN", "xoxb-1"));
    let line = error_line(&out);
    assert!(line.contains("Slack settings") && line.contains("SLACK_SIGNING_SECRET"), "{line}");
    assert!(!data.exists());
}

#[test]
fn llm_config_that_routes_to_an_endpoint_it_does_not_declare() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("llm.yaml");
    std::fs::write(
        &config,
        "endpoints:\n  local: {baseUrl: 'http://127.0.0.1:9/v1'}\nroutes:\n  reply: {endpoint: cloud}\n",
    )
    .unwrap();
    let out = run(up(&data, &empty_manifests(tmp.path()), free_port()).arg("--llm-config").arg(&config));
    let line = error_line(&out);
    assert!(line.contains("LLM route reply") && line.contains("\"cloud\""), "{line}");
    let out =
        run(up(&data, &empty_manifests(tmp.path()), free_port()).arg("--llm-config").arg(tmp.path().join("nope.yaml")));
    let line = error_line(&out);
    assert!(line.contains("failed to read the LLM configuration") && line.contains("nope.yaml"), "{line}");
}
