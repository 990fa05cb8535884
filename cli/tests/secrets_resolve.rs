//! `wellbeing secrets resolve` as a user runs it, on the built binary, with the local store:
//! the non-interactive path (`--from-stdin`) and the dry run over a manifests folder.

use std::{
    io::Write as _,
    process::{Command, Output, Stdio},
};

const PLUGIN: &str = r#"
apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: weather-walks}
spec:
  description: Weather for walks
  source: {mcp: {image: "example.com/weather:1"}}
  requiredSecrets: [{name: openweather-api-key, env: OPENWEATHER_API_KEY}]
"#;

fn wellbeing(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wellbeing"))
        .args(args)
        .env_remove("WELLBEING_SECRET_STORE")
        .env_remove("WELLBEING_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn from_stdin_fills_the_requirement_the_dry_run_listed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plugins.yaml"), PLUGIN).unwrap();
    let manifests = dir.path().to_str().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let base = ["secrets", "resolve", "--store", "local", "--data-dir", data];

    let listed = wellbeing(&[&base[..], &["--manifests", manifests, "--dry-run"]].concat(), "");
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let out = text(&listed.stdout);
    assert!(out.contains("Missing in the local store (1 of 1)"), "{out}");
    assert!(out.contains("openweather-api-key  (used by weather-walks)"), "{out}");

    let secret = "owm-0123456789abcdef";
    let stored = wellbeing(&[&base[..], &["--from-stdin", "openweather-api-key"]].concat(), &format!("{secret}\n"));
    assert!(stored.status.success(), "{}", text(&stored.stderr));
    assert_eq!(text(&stored.stdout), "stored openweather-api-key in the local store\n");
    assert!(!text(&stored.stderr).contains(secret), "the value reached the logs");

    let file = std::fs::read_to_string(dir.path().join("data/secrets.json")).unwrap();
    assert!(file.contains(&format!("\"openweather-api-key\": \"{secret}\"")), "{file}");

    let listed = wellbeing(&[&base[..], &["--manifests", manifests, "--dry-run"]].concat(), "");
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert_eq!(text(&listed.stdout), "All 1 required secrets are present in the local store.\n");
}

#[test]
fn empty_stdin_fails_and_the_data_dir_defaults_to_wellbeing_ups() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let empty =
        wellbeing(&["secrets", "resolve", "--store", "local", "--data-dir", data, "--from-stdin", "some-key"], "");
    assert!(!empty.status.success());
    assert!(text(&empty.stderr).contains("no value on stdin"), "{}", text(&empty.stderr));

    // Without --data-dir the value lands where `wellbeing up` looks: $XDG_DATA_HOME/wellbeing.
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wellbeing"))
        .args(["secrets", "resolve", "--store", "local", "--from-stdin", "some-key"])
        .env_remove("WELLBEING_DATA_DIR")
        .env_remove("WELLBEING_SECRET_STORE")
        .env("XDG_DATA_HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"v").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(home.path().join("wellbeing/secrets.json").exists());
}
