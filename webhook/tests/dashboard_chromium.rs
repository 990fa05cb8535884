//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) loads the page from a
//! server on 127.0.0.1 with a seeded database, through the token login link; the charts must be
//! in the DOM and a screenshot goes to ci-artifacts/dashboard.png. Skipped (and says so) when no
//! Chromium is installed; `.ci/run` installs it.

mod dashboard_seed;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wellbeing_assistant::Store;
use wellbeing_webhook::dashboard::{self, DashboardState};

const TOKEN: &str = "test-dashboard-token-0123456789abcdef";

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WELLBEING_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

async fn run_chromium(bin: &Path, profile: &Path, extra: &[String], url: &str) -> String {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium finished in time")
        .expect("chromium ran");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 DOM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_in_headless_chromium() {
    let Some(bin) = chromium() else {
        eprintln!("SKIPPED: no Chromium found (apt-get install -y chromium, or set WELLBEING_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let end = "2026-05-10".parse().unwrap();
    dashboard_seed::seed(&store, end, 400, 3);
    let now: DateTime<Utc> = "2026-05-10T16:00:00Z".parse().unwrap();
    let ctx = dashboard_seed::context();
    let state =
        DashboardState::new(store, TOKEN.into(), Arc::new(move || ctx.clone())).with_clock(Arc::new(move || now));
    let app: axum::Router = dashboard::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Without the token: the login form, no data.
    let anon_profile = tempfile::tempdir().unwrap();
    let dom =
        run_chromium(&bin, anon_profile.path(), &["--dump-dom".into()], &format!("http://{addr}/dashboard")).await;
    assert!(dom.contains("Dashboard token"), "{dom}");
    assert!(!dom.contains("mood-calendar"));

    // With the token: the login link sets the cookie and redirects to the page.
    let profile = tempfile::tempdir().unwrap();
    let login = format!("http://{addr}/dashboard/login?token={TOKEN}");
    let dom = run_chromium(&bin, profile.path(), &["--dump-dom".into()], &login).await;
    for needle in [
        "class=\"chart mood-calendar\"",
        "class=\"chart sleep-energy\"",
        "class=\"chart progress\"",
        "id=\"pillars\"",
        "openweather-api-key",
        "Work out 3 times a week",
    ] {
        assert!(dom.contains(needle), "{needle} missing from the rendered page");
    }
    assert_eq!(dom.matches("class=\"day\"").count(), 365, "a year of days in the mood calendar");
    assert!(dom.matches("class=\"sleep\"").count() >= 80, "about 90 nights of sleep bars");
    // Raw text is shown escaped: the user's "<3" is text, not markup.
    assert!(dom.contains("went for a run &lt;3 &amp; felt \"great\""), "escaped raw text");
    assert!(!dom.contains(TOKEN), "the token never appears in the page");

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("ci-artifacts");
    std::fs::create_dir_all(&root).unwrap();
    let shot = root.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let extra = [format!("--screenshot={}", shot.display()), "--window-size=1280,2000".into()];
    run_chromium(&bin, profile.path(), &extra, &login).await;
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 20_000, "a screenshot of a page with charts, not a blank one ({} bytes)", png.len());
    eprintln!("screenshot: {} ({} KB)", shot.display(), png.len() / 1024);
}
