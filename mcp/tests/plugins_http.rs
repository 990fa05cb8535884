//! The real Python plugin host over streamable HTTP on loopback, as plugins run in the cluster.

#[path = "plugins_support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::*;
use wellbeing_mcp::{InvocationOutcome, PluginError, PluginTransport, PoolConfig};

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_host(module: &str, port: u16) -> Host {
    runtime();
    let child = Command::new(python())
        .args(["-m", "wellbeing_host", "--module", module, "--transport", "http", "--port", &port.to_string()])
        .current_dir(repo_root().join("plugins"))
        .env("PYTHONPATH", repo_root().join("plugins/host"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the plugin host");
    Host(child)
}

#[tokio::test]
async fn sleep_planner_over_streamable_http_waits_for_the_server_to_listen() {
    let port = free_port();
    // The pool starts polling before the host listens: connect must wait, not fail.
    let _host = start_host("sleep-winddown/v1.py", port);
    let url = format!("http://127.0.0.1:{port}/mcp");
    let (pool, sink) = pool(vec![endpoint("sleep-winddown", PluginTransport::Http { url })], quick());
    let tools = pool.tools("sleep-winddown").await.unwrap();
    assert_eq!(tools.iter().map(|t| t.tool.as_str()).collect::<Vec<_>>(), ["sleep_winddown", "sleep_winddown_match"]);
    let out = pool
        .call("sleep-winddown", "sleep_winddown", args(json!({"bedtime": "22:30", "now": "21:45"})), None)
        .await
        .unwrap();
    let times: Vec<_> = out.structured.unwrap()["plan"].as_array().unwrap().iter().map(|s| s["time"].clone()).collect();
    assert_eq!(times, [json!("21:45"), json!("22:00"), json!("22:20"), json!("22:30")]);
    assert_eq!(sink.invocations()[0].outcome, InvocationOutcome::Ok);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_timeout() {
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let config = PoolConfig { connect_timeout: Duration::from_millis(600), ..quick() };
    let (pool, _) = pool(vec![endpoint("gone", PluginTransport::Http { url })], config);
    let err = pool.tools("gone").await.unwrap_err();
    assert!(matches!(err, PluginError::ConnectTimeout { .. }), "{err:?}");
}
