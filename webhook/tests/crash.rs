//! Crashes mid-processing: rows left pending are resumed at the next start and processed once,
//! with one reply, whether the crash came before Slack got the reply or after.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(10);

/// Run a service on its own runtime until `crash_when` holds, then drop the runtime without any
/// graceful shutdown: tasks stop at whatever await they were in, as when the process is killed.
fn run_until_crash(
    dir: std::path::PathBuf,
    slack: FakeSlack,
    event: serde_json::Value,
    crash_when: impl Fn(&FakeSlack) -> bool,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let service = start_service(&dir, &slack, Options::default()).await;
        assert_eq!(post_event(service.addr, &event).await.status(), 200);
        let deadline = tokio::time::Instant::now() + WAIT;
        while !crash_when(&slack) {
            assert!(tokio::time::Instant::now() < deadline, "the crash point was never reached");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::mem::forget(service);
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
}

#[test]
fn a_row_pending_at_a_crash_is_resumed_and_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let slack = rt.block_on(FakeSlack::start());

    // Crash after Slack received the first reply but before its answer came back (and so before
    // the delivery was recorded as posted and the row marked done).
    slack.behaviour.hang_posts.store(true, Ordering::SeqCst);
    slack.behaviour.record_before_hang.store(true, Ordering::SeqCst);
    let event = dm_event("EvCrash", "U1", "slept badly and skipped breakfast", "1700000000.000100");
    run_until_crash(dir.path().to_path_buf(), slack.clone(), event, |s| !s.calls("chat.postMessage").is_empty());
    let (status, attempts) = inbox_status(dir.path(), "EvCrash").unwrap();
    assert_eq!((status.as_str(), attempts), ("pending", 0));
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM deliveries WHERE key = 'EvCrash' AND status = 'posting'"), 1);

    // Restart: the row is resumed; the reply Slack already has is found in the thread, not sent again.
    slack.behaviour.hang_posts.store(false, Ordering::SeqCst);
    rt.block_on(async {
        let service = start_service(dir.path(), &slack, Options::default()).await;
        wait_status(dir.path(), "EvCrash", "done", WAIT).await;
        service.shutdown().await.unwrap();
    });
    assert!(!slack.calls("conversations.replies").is_empty(), "the thread was not checked");
    let posts = slack.calls("chat.postMessage");
    let mut seqs: Vec<i64> =
        posts.iter().map(|p| p.body["metadata"]["event_payload"]["seq"].as_i64().unwrap()).collect();
    let total = seqs.len();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), total, "a reply was posted twice: {posts:?}");
    assert_eq!(seqs[0], 0);
    // The engine ran once: one check-in.
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins"), 1);
}

#[test]
fn a_reply_slack_never_got_is_sent_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let slack = rt.block_on(FakeSlack::start());

    // Crash while the first reply is on its way, before Slack stored it.
    slack.behaviour.hang_posts.store(true, Ordering::SeqCst);
    slack.behaviour.record_before_hang.store(false, Ordering::SeqCst);
    let event = dm_event("EvLost", "U1", "tired", "1700000000.000100");
    run_until_crash(dir.path().to_path_buf(), slack.clone(), event, |_| {
        count(dir.path(), "SELECT COUNT(*) FROM deliveries WHERE key = 'EvLost'") == 1
    });
    assert!(slack.calls("chat.postMessage").is_empty());

    slack.behaviour.hang_posts.store(false, Ordering::SeqCst);
    rt.block_on(async {
        let service = start_service(dir.path(), &slack, Options::default()).await;
        wait_status(dir.path(), "EvLost", "done", WAIT).await;
        service.shutdown().await.unwrap();
    });
    let posts = slack.calls("chat.postMessage");
    assert!(!posts.is_empty(), "the lost reply was never sent");
    let seq0 = posts.iter().filter(|p| p.body["metadata"]["event_payload"]["seq"] == 0).count();
    assert_eq!(seq0, 1);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins"), 1);
}

/// Events stored while the worker was off (or the process down) are all processed at start-up.
#[test]
fn rows_stored_without_a_worker_are_processed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let slack = FakeSlack::start().await;
        let people = || slack_people(&["U0", "U1", "U2"]);
        let options = Options { worker: None, people: people(), ..Options::default() };
        let service = start_service(dir.path(), &slack, options).await;
        for i in 0..10 {
            let ev =
                dm_event(&format!("EvLater{i}"), &format!("U{}", i % 3), "slept ok", &format!("170000000{i}.000100"));
            assert_eq!(post_event(service.addr, &ev).await.status(), 200);
        }
        service.shutdown().await.unwrap();
        assert!(slack.calls("chat.postMessage").is_empty());
        let service = start_service(dir.path(), &slack, Options { people: people(), ..Options::default() }).await;
        for i in 0..10 {
            wait_status(dir.path(), &format!("EvLater{i}"), "done", WAIT).await;
        }
        service.shutdown().await.unwrap();
        // Each message reached the engine exactly once (later ones may merge into a follow-up).
        assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM interactions WHERE direction = 'in'"), 10);
    });
}
