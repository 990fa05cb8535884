//! Dashboard render and weekly insight with 5 years of data (3 check-ins a day, 5,475 rows).
//! Budgets from the issue: dashboard < 100 ms, weekly insight < 50 ms. Exits non-zero when over.
//!
//! `cargo bench -p wellbeing-webhook --bench dashboard`

#[path = "../tests/dashboard_seed/mod.rs"]
mod seed;

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use wellbeing_assistant::Store;
use wellbeing_assistant::insights;
use wellbeing_webhook::dashboard::{data, html};

const DASHBOARD_BUDGET: Duration = Duration::from_millis(100);
const INSIGHT_BUDGET: Duration = Duration::from_millis(50);
const RUNS: usize = 30;

fn measure(mut f: impl FnMut()) -> (Duration, Duration, Duration) {
    f(); // warm the page cache and SQLite's statement cache
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[RUNS / 2], times[RUNS * 95 / 100], times[RUNS - 1])
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_in(dir.path()).expect("database");
    let end: NaiveDate = "2026-05-10".parse().unwrap();
    let t = Instant::now();
    let rows = seed::seed(&store, end, 5 * 365, 3);
    println!("seeded {rows} check-ins (5 years, 3 a day) in {:?}", t.elapsed());
    let now: DateTime<Utc> = "2026-05-10T16:00:00Z".parse().unwrap();
    let ctx = seed::context();

    let mut size = 0;
    let (d50, d95, dmax) = measure(|| {
        let d = data::load(&store, None, &ctx, now).expect("dashboard data");
        size = html::dashboard_page(&d).len();
    });
    println!("dashboard render (read + HTML + SVG, {} KB): median {d50:?}, p95 {d95:?}, max {dmax:?}", size / 1024);

    let goals = seed::goals();
    let persona = seed::persona();
    let (i50, i95, imax) = measure(|| {
        let f = insights::compute(&store, seed::USER, &persona, &goals, now).expect("facts");
        std::hint::black_box(insights::text::template(&f));
    });
    println!("weekly insight (facts + template): median {i50:?}, p95 {i95:?}, max {imax:?}");

    let mut ok = true;
    if d95 > DASHBOARD_BUDGET {
        eprintln!("dashboard p95 {d95:?} is over the {DASHBOARD_BUDGET:?} budget");
        ok = false;
    }
    if i95 > INSIGHT_BUDGET {
        eprintln!("weekly insight p95 {i95:?} is over the {INSIGHT_BUDGET:?} budget");
        ok = false;
    }
    if !ok {
        std::process::exit(1);
    }
}
