//! Plugin call latency and discovery, against the real Python plugin host on loopback.
//!
//! `cargo bench -p wellbeing-mcp --bench plugin_calls` (needs `make python-deps`).
//! Prints a Markdown table for BENCHMARKS.md. Targets from issue 6: a tool call through the host
//! over loopback HTTP adds under 20 ms at p50; 20 plugins discovered and their tool lists cached
//! in under 1 s.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wellbeing_crds::plugin::Triggers;
use wellbeing_mcp::{
    InvocationSink, LocalRuntime, PluginEndpoint, PluginPool, PluginTransport, PoolConfig, TracingSink,
};

const WARMUP: usize = 50;
const CALLS: usize = 1000;
const PLUGINS: usize = 20;
const DISCOVERY_ROUNDS: usize = 10;

struct Hosts(Vec<Child>);

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn python() -> String {
    std::env::var("WELLBEING_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_http_hosts(n: usize) -> (Hosts, Vec<u16>) {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let children = ports
        .iter()
        .map(|port| {
            Command::new(python())
                .args(["-m", "wellbeing_host", "--module", "hydration/v1.py", "--transport", "http"])
                .args(["--port", &port.to_string()])
                .current_dir(repo().join("plugins"))
                .env("PYTHONPATH", repo().join("plugins/host"))
                .env("WELLBEING_LOG_LEVEL", "WARNING")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the plugin host (run `make python-deps`)")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for port in &ports {
        while TcpStream::connect(("127.0.0.1", *port)).is_err() {
            assert!(Instant::now() < deadline, "plugin hosts did not listen within 120 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (Hosts(children), ports)
}

fn endpoint(name: String, transport: PluginTransport) -> PluginEndpoint {
    PluginEndpoint { name, version: 1, transport, triggers: Triggers::default() }
}

struct NoSink;
impl InvocationSink for NoSink {
    fn record(&self, _: wellbeing_mcp::Invocation) {}
}

fn new_pool(endpoints: Vec<PluginEndpoint>, http: &reqwest::Client) -> PluginPool {
    let sink: Arc<dyn InvocationSink> =
        if std::env::var_os("BENCH_LOG").is_some() { Arc::new(TracingSink) } else { Arc::new(NoSink) };
    PluginPool::new(endpoints, sink, http.clone(), PoolConfig::default())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn call_latencies(pool: &PluginPool, plugin: &str) -> Vec<Duration> {
    let args = json!({"text": "forgot to drink water all day, headache", "now": "15:00"});
    let args = args.as_object().unwrap().clone();
    for _ in 0..WARMUP {
        pool.call(plugin, "hydration", args.clone(), None).await.expect("warm-up call");
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        pool.call(plugin, "hydration", args.clone(), None).await.expect("call");
        samples.push(started.elapsed());
    }
    samples.sort();
    samples
}

#[tokio::main]
async fn main() {
    let http = reqwest::Client::builder().pool_max_idle_per_host(4).build().unwrap();
    let mut rows: Vec<String> = Vec::new();

    // 1. One tool call through the host over loopback streamable HTTP.
    let (hosts, ports) = start_http_hosts(PLUGINS);
    let url = |port: u16| format!("http://127.0.0.1:{port}/mcp");
    let pool = new_pool(vec![endpoint("hydration".into(), PluginTransport::Http { url: url(ports[0]) })], &http);
    let http_calls = call_latencies(&pool, "hydration").await;
    pool.shutdown().await;

    // 2. The same call over stdio (embedded mode), for comparison.
    let rt = LocalRuntime { python: python(), plugins_dir: repo().join("plugins") };
    let stdio = endpoint("hydration".into(), rt.python_transport("hydration/v1.py").unwrap());
    let pool = new_pool(vec![stdio.clone()], &http);
    let stdio_calls = call_latencies(&pool, "hydration").await;
    pool.shutdown().await;

    // 3. Discovery of 20 running HTTP plugins: connect, initialize, list and cache tools.
    let endpoints: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| endpoint(format!("plugin-{i:02}"), PluginTransport::Http { url: url(*p) }))
        .collect();
    let mut discovery = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..DISCOVERY_ROUNDS {
        let pool = new_pool(endpoints.clone(), &http);
        let started = Instant::now();
        let found = pool.discover().await;
        let defs = pool.tool_definitions().await;
        discovery.push(started.elapsed());
        assert!(found.values().all(|r| r.is_ok()), "{found:?}");
        assert_eq!(defs.len(), PLUGINS);
        let started = Instant::now();
        assert_eq!(pool.tool_definitions().await.len(), PLUGINS);
        cached.push(started.elapsed());
        pool.shutdown().await;
    }
    discovery.sort();
    cached.sort();
    drop(hosts);

    // 4. Cold start of 20 stdio children (embedded mode): spawn + handshake + tools.
    let children: Vec<_> =
        (0..PLUGINS).map(|i| PluginEndpoint { name: format!("plugin-{i:02}"), ..stdio.clone() }).collect();
    let pool = new_pool(children, &http);
    let started = Instant::now();
    let found = pool.discover().await;
    let stdio_cold = started.elapsed();
    assert!(found.values().all(|r| r.is_ok()), "{found:?}");
    pool.shutdown().await;

    rows.push(format!(
        "| tool call, streamable HTTP on loopback ({CALLS} calls) | {} | {} | {} |",
        ms(percentile(&http_calls, 50.0)),
        ms(percentile(&http_calls, 99.0)),
        ms(*http_calls.last().unwrap())
    ));
    rows.push(format!(
        "| tool call, stdio child ({CALLS} calls) | {} | {} | {} |",
        ms(percentile(&stdio_calls, 50.0)),
        ms(percentile(&stdio_calls, 99.0)),
        ms(*stdio_calls.last().unwrap())
    ));
    rows.push(format!(
        "| discover {PLUGINS} running HTTP plugins + cache tool lists ({DISCOVERY_ROUNDS} rounds) | {} | {} | {} |",
        ms(percentile(&discovery, 50.0)),
        ms(percentile(&discovery, 99.0)),
        ms(*discovery.last().unwrap())
    ));
    rows.push(format!(
        "| read cached tool definitions of {PLUGINS} plugins | {} | {} | {} |",
        ms(percentile(&cached, 50.0)),
        ms(percentile(&cached, 99.0)),
        ms(*cached.last().unwrap())
    ));
    rows.push(format!(
        "| cold start of {PLUGINS} stdio children (spawn, handshake, tools; once) | {} | | |",
        ms(stdio_cold)
    ));

    println!("| what | p50 | p99 | max |\n| --- | --- | --- | --- |");
    for row in &rows {
        println!("{row}");
    }
}
