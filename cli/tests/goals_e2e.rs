//! End to end: `wellbeing up` sends a goal reminder to the local page at its minute, with Done /
//! Snooze / Skip as real buttons that a click in headless Chromium answers; the dashboard lists
//! the secrets the manifests need and the local store lacks; the banner says where the dashboard
//! and its token are.

mod support;

use std::path::Path;
use std::time::Duration;

use support::Up;

/// A persona awake all day (UTC), a meals goal with a reminder at the current minute, and a
/// plugin that needs a secret nobody stored.
fn manifests(dir: &Path) {
    let mut now = chrono::Utc::now();
    // The reminder must fall inside today's window, which ends at 23:59, on the day it is sent.
    if now.format("%H:%M").to_string().as_str() >= "23:58" {
        std::thread::sleep(Duration::from_secs(150));
        now = chrono::Utc::now();
    }
    let at = now.format("%H:%M");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("persona.yaml"),
        r#"apiVersion: wellbeing.dev/v1alpha1
kind: Persona
metadata: {name: coach}
spec:
  displayName: Sunny
  active: true
  checkIns:
    timeZone: UTC
    windows: [{start: "00:00", end: "23:59"}]
    perDay: 1
    minGapMinutes: 0
    channel: local
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("meals.yaml"),
        format!(
            r#"apiVersion: wellbeing.dev/v1alpha1
kind: Goal
metadata: {{name: meals}}
spec:
  description: Eat three meals
  pillar: nutrition
  metric: meal
  target: {{count: 3, per: day}}
  reminders: [{{at: "{at}"}}]
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("plugin.yaml"),
        r#"apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: weather-walks}
spec:
  description: Walks when the weather is good
  version: 1
  source: {mcp: {image: "ghcr.io/example/weather:1", port: 8000, path: /mcp}}
  requiredSecrets: [{name: openweather-api-key, env: OPENWEATHER_API_KEY}]
"#,
    )
    .unwrap();
}

/// The local user exists before start-up (as after a first message), so the goals job at
/// start-up has someone to remind.
fn seed_user(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    let store = wellbeing_assistant::Store::open_in(data).unwrap();
    store
        .conn()
        .execute("INSERT INTO people (person_id, created_at) VALUES ('local:me', '2026-01-01T00:00:00Z')", [])
        .unwrap();
    store.conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
}

fn count(data: &Path, sql: &str) -> i64 {
    let store = wellbeing_assistant::Store::open_in(data).unwrap();
    store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_reminder_arrives_on_the_page_and_its_done_button_counts_the_meal() {
    if !Path::new(support::cdp::CHROMIUM).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must install Debian's chromium ({})", support::cdp::CHROMIUM);
        eprintln!("SKIPPED: {} is missing (apt-get install -y chromium)", support::cdp::CHROMIUM);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (data, folder) = (tmp.path().join("data"), tmp.path().join("manifests"));
    manifests(&folder);
    seed_user(&data);
    let up = Up::start(&data, &folder, &[]);

    let mut browser = support::cdp::Browser::launch(&tmp.path().join("profile"));
    browser.open(&format!("{}/", up.url));
    let done = r#"#messages li.kind-reminder button[data-action-id="wellbeing.goal.done"]"#;
    let text = browser.wait_for(
        &format!("(document.querySelector({done:?}) || null) && document.querySelector('#messages li.kind-reminder .text').textContent"),
        Duration::from_secs(30),
    );
    assert_eq!(text, "No meal logged yet today. Time for something to eat?");
    let labels = browser.eval(
        "Array.from(document.querySelectorAll('#messages li.kind-reminder .actions button')).map(b => b.textContent).join('|')",
    );
    assert_eq!(labels, "Done|Snooze 30 min|Skip today");

    browser.click(done);
    let reply = browser.wait_for(
        "Array.from(document.querySelectorAll('#messages li.kind-reply .text')).map(e => e.textContent).join('\\n')",
        Duration::from_secs(20),
    );
    assert_eq!(reply, "Nice one, counted for today.");
    assert_eq!(browser.eval("document.querySelectorAll('#messages li.kind-reminder .actions').length"), 0);
    assert_eq!(browser.eval("document.getElementById('status').textContent"), "");
    drop(browser);

    // Counted once, sent once; a reload shows no buttons on the answered reminder.
    assert_eq!(count(&data, "SELECT COUNT(*) FROM goal_logs WHERE user_id = 'local:me' AND goal = 'meals'"), 1);
    assert_eq!(count(&data, "SELECT COUNT(*) FROM scheduled_sends WHERE kind = 'reminder'"), 1);
    let token = up.token();
    let dashboard_token = std::fs::read_to_string(data.join("dashboard-token")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (page, html) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let page: serde_json::Value = client
            .get(format!("{}/api/local/messages?after=0", up.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let html =
            client.get(format!("{}/dashboard", up.url)).bearer_auth(dashboard_token.trim()).send().await.unwrap();
        (page, html.text().await.unwrap())
    });
    let reminder = page["messages"].as_array().unwrap().iter().find(|m| m["kind"] == "reminder").unwrap().clone();
    assert!(reminder.get("actions").is_none(), "{reminder}");
    // `wellbeing dashboard token` prints the same token (how it is read in a shell-less image).
    let printed = support::run(support::wellbeing(&data).args(["dashboard", "token"]));
    assert_eq!(String::from_utf8_lossy(&printed.stdout).trim(), dashboard_token.trim());
    // The dashboard names the missing secret (never a value).
    assert!(html.contains("id=\"missing-secrets\"") && html.contains("openweather-api-key"), "{html}");

    let (code, stdout) = up.stop();
    assert_eq!(code, Some(0));
    let line = stdout.lines().find(|l| l.trim_start().starts_with("Dashboard:")).expect("a dashboard line");
    assert!(line.contains(&format!("{}/dashboard", up_url(&stdout))), "{line}");
    assert!(line.contains(&data.join("dashboard-token").display().to_string()), "{line}");
}

/// The local page's address as the banner printed it.
fn up_url(stdout: &str) -> String {
    let line = stdout.lines().find(|l| l.trim_start().starts_with("Local page:")).unwrap();
    line.split_whitespace().last().unwrap().trim_end_matches('/').to_string()
}

#[test]
fn insights_weekly_prints_without_recording_so_sundays_message_still_goes_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, folder) = (tmp.path().join("data"), tmp.path().join("manifests"));
    manifests(&folder);
    seed_user(&data);
    {
        let store = wellbeing_assistant::Store::open_in(&data).unwrap();
        let today = chrono::Utc::now().date_naive();
        store
            .conn()
            .execute(
                "INSERT INTO checkins (user_id, created_at, local_date, data, extractor, persona_name, persona_version)
                 VALUES ('local:me', ?1, ?2, '{\"valence\":\"positive\",\"exercise\":\"done\"}', 'offline', 'coach', 'v')",
                [chrono::Utc::now().to_rfc3339(), today.to_string()],
            )
            .unwrap();
    }
    let print = || support::run(support::wellbeing(&data).args(["insights", "weekly", "--manifests"]).arg(&folder));
    let out = print();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Your week,"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not sent yet"));
    assert_eq!(count(&data, "SELECT COUNT(*) FROM insights"), 0, "printing is not sending");

    // Once Sunday's is recorded (as sent), that text is what is shown.
    let week_start = {
        let today = chrono::Utc::now().date_naive();
        today - chrono::Duration::days(chrono::Datelike::weekday(&today).num_days_from_monday() as i64)
    };
    let store = wellbeing_assistant::Store::open_in(&data).unwrap();
    store
        .conn()
        .execute(
            "INSERT INTO insights (user_id, week_start, created_at, facts, text, phrased_by)
             VALUES ('local:me', ?1, '2026-01-01T18:00:00Z', '{}', 'The text as sent.', 'template')",
            [week_start.to_string()],
        )
        .unwrap();
    drop(store);
    let out = print();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "The text as sent.");
}
