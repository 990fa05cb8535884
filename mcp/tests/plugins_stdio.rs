//! The real Python plugin host over stdio, driven by the MCP client pool (rmcp).

#[path = "plugins_support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use wellbeing_crds::manifest::{Resource, parse_documents};
use wellbeing_mcp::{InvocationOutcome, PluginEndpoint, PluginError, PluginTransport, PoolConfig, ToolRole};

const HYDRATION_MANIFEST: &str = r#"
apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: hydration}
spec:
  description: Hydration reminder
  version: 2
  triggers: {pillars: [hydration], keywords: [water, thirsty, headache]}
  source: {python: {module: hydration/v1.py}}
"#;

fn from_manifest(text: &str) -> PluginEndpoint {
    let Ok(Resource::Plugin(plugin)) = parse_documents(text).remove(0) else { panic!("not a Plugin") };
    PluginEndpoint::from_plugin(&plugin, Some(&runtime())).expect("endpoint")
}

fn sleep_endpoint() -> PluginEndpoint {
    let text = std::fs::read_to_string(repo_root().join("examples/plugin-sleep-winddown.yaml")).unwrap();
    from_manifest(&text)
}

#[tokio::test]
async fn hydration_tool_is_discovered_and_called_over_stdio() {
    let hydration = from_manifest(HYDRATION_MANIFEST);
    let endpoints = vec![hydration.clone(), sleep_endpoint()];
    let message = "forgot to drink water all day, headache";

    let (pool, sink) = pool(endpoints, quick());
    let discovered = pool.discover().await;
    assert_eq!(discovered["hydration"].as_ref().unwrap(), &2, "run + match tools");
    assert_eq!(discovered["sleep-winddown"].as_ref().unwrap(), &2);

    let defs = pool.tool_definitions().await;
    let names: Vec<_> = defs.iter().map(|d| d.function_name.as_str()).collect();
    assert_eq!(names, ["hydration__hydration", "sleep-winddown__sleep_winddown"]);
    assert!(defs.iter().all(|d| d.role == ToolRole::Run));
    assert_eq!(defs[0].to_openai()["function"]["parameters"]["properties"]["hours_since_water"]["maximum"], 48);
    assert_eq!(pool.resolve("hydration__hydration").await, Some(("hydration".into(), "hydration".into())));

    let outcome =
        pool.call("hydration", "hydration", args(json!({"text": message, "now": "15:00"})), None).await.unwrap();
    let structured = outcome.structured.expect("structured content");
    assert_eq!(structured["urgency"], "high");
    assert_eq!(structured["schedule"][0], json!({"time": "15:00", "ml": 250, "note": "now"}));
    assert!(outcome.text.contains("glass of water"));

    let recorded = sink.invocations();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].plugin.as_str(), recorded[0].version, recorded[0].tool.as_str()),
        ("hydration", 2, "hydration")
    );
    assert_eq!(recorded[0].outcome, InvocationOutcome::Ok);
    pool.shutdown().await;
}

#[tokio::test]
async fn match_tool_answers_for_the_no_llm_path() {
    let (pool, _) = pool(vec![sleep_endpoint()], quick());
    assert_eq!(pool.matches("sleep-winddown", "insomnia again, so tired", &[]).await.unwrap(), Some(true));
    assert_eq!(pool.matches("sleep-winddown", "great lunch today", &[]).await.unwrap(), Some(false));
}

#[tokio::test]
async fn a_crashing_plugin_fails_cleanly_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let body = "    if context.get('text') == 'boom':\n        raise RuntimeError('kaput')\n    return {'ok': True}";
    let (pool, sink) = pool(vec![module_endpoint(&dir, "probe", &probe_module(body))], quick());
    let err = pool.call("probe", "probe", args(json!({"text": "boom"})), None).await.unwrap_err();
    assert!(
        matches!(&err, PluginError::ToolFailed { message, .. } if message == "plugin failed: RuntimeError: kaput"),
        "{err}"
    );
    let ok = pool.call("probe", "probe", args(json!({"text": "fine"})), None).await.unwrap();
    assert_eq!(ok.structured, Some(json!({"ok": true})));
    let outcomes: Vec<_> = sink.invocations().iter().map(|i| i.outcome).collect();
    assert_eq!(outcomes, [InvocationOutcome::Error, InvocationOutcome::Ok]);
    assert!(sink.invocations()[0].reason.as_deref().unwrap().contains("kaput"));
}

#[tokio::test]
async fn a_child_that_dies_is_respawned_on_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    // os._exit ends the process mid-call, as a segfault or an OOM kill would.
    let body = "    if context.get('text') == 'die':\n        import os\n        os._exit(3)\n    return 'alive'";
    let (pool, sink) = pool(vec![module_endpoint(&dir, "probe", &probe_module(body))], quick());
    assert_eq!(pool.call("probe", "probe", args(json!({"text": "hi"})), None).await.unwrap().text, "alive");
    let err = pool.call("probe", "probe", args(json!({"text": "die"})), None).await.unwrap_err();
    assert!(matches!(err, PluginError::Call { .. }), "{err:?}");
    assert_eq!(pool.call("probe", "probe", args(json!({"text": "hi"})), None).await.unwrap().text, "alive");
    assert_eq!(sink.invocations().len(), 3);
}

#[tokio::test]
async fn a_hanging_plugin_times_out_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // A busy loop blocks the host's event loop: only killing the child ends it.
    let body = "    if context.get('text') == 'hang':\n        while True:\n            pass\n    return 'done'";
    let (pool, sink) = pool(vec![module_endpoint(&dir, "probe", &probe_module(body))], quick());
    pool.discover().await;
    let started = std::time::Instant::now();
    let err =
        pool.call("probe", "probe", args(json!({"text": "hang"})), Some(Duration::from_millis(800))).await.unwrap_err();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(sink.invocations()[0].outcome, InvocationOutcome::Timeout);
    assert_eq!(pool.call("probe", "probe", args(json!({"text": "x"})), None).await.unwrap().text, "done");
}

#[tokio::test]
async fn invalid_output_and_undeclared_secrets_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let body = "    t = context.get('text')\n    if t == 'list':\n        return [1, 2]\n    \
                if t == 'secret':\n        return secrets['slack-token']\n    return {'key': secrets['weather-key']}";
    let mut ep = module_endpoint(&dir, "probe", &probe_module(body));
    if let PluginTransport::Stdio { env, .. } = &mut ep.transport {
        env.insert("WEATHER_KEY".into(), "s3cr3t-value".into());
        env.insert("SLACK_TOKEN".into(), "other-value".into());
    }
    let (pool, sink) = pool(vec![ep], quick());
    let err = pool.call("probe", "probe", args(json!({"text": "list"})), None).await.unwrap_err();
    assert!(err.to_string().contains("InvalidOutput: run must return a dict or a str, not list"), "{err}");
    let err = pool.call("probe", "probe", args(json!({"text": "secret"})), None).await.unwrap_err();
    assert!(err.to_string().contains("SecretNotDeclared: secret 'slack-token'"), "{err}");
    let ok = pool.call("probe", "probe", args(json!({"text": "x"})), None).await.unwrap();
    assert_eq!(ok.structured, Some(json!({"key": "[redacted]"})), "secret values never come back");
    let err = pool.call("probe", "probe", args(json!({"text": 7})), None).await.unwrap_err();
    assert!(err.to_string().contains("InvalidArguments"), "{err}");
    let err = pool.call("probe", "nope", args(json!({})), None).await.unwrap_err();
    assert!(matches!(err, PluginError::UnknownTool { .. }), "{err}");
    assert!(sink.invocations().iter().all(|i| !format!("{i:?}").contains("other-value")));
}

#[tokio::test]
async fn a_module_that_breaks_the_contract_fails_to_connect_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, _) = pool(vec![module_endpoint(&dir, "broken", "name = 'broken'\n")], quick());
    let err = pool.tools("broken").await.unwrap_err();
    let PluginError::Connect { stderr, .. } = &err else { panic!("{err:?}") };
    assert_eq!(stderr.as_deref(), Some("failed to load plugin module: module-level 'description' is missing"));
}

#[tokio::test]
async fn a_child_that_never_answers_the_handshake_times_out() {
    // A partial line on stdout and then silence: without our timeout rmcp would wait forever.
    let script = "import sys, time\nsys.stdout.write('{\"jsonrpc\": ')\nsys.stdout.flush()\ntime.sleep(60)\n";
    let transport =
        PluginTransport::Stdio { command: python(), args: vec!["-c".into(), script.into()], env: Default::default() };
    let config = PoolConfig { connect_timeout: Duration::from_secs(2), ..quick() };
    let (pool, sink) = pool(vec![endpoint("mute", transport)], config);
    let err = pool.call("mute", "anything", args(json!({})), None).await.unwrap_err();
    assert!(matches!(err, PluginError::ConnectTimeout { .. }), "{err:?}");
    assert_eq!(sink.invocations()[0].outcome, InvocationOutcome::Timeout);
}

#[tokio::test]
async fn a_server_that_answers_garbage_fails_cleanly() {
    // Answers initialize and tools/list properly, then replies to tools/call with a non-JSON line.
    let script = r#"
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg:
        continue
    if msg["method"] == "initialize":
        result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "garbage", "version": "0"}}
    elif msg["method"] == "tools/list":
        result = {"tools": [{"name": "t", "inputSchema": {"type": "object"}}]}
    else:
        sys.stdout.write("this is not json\n"); sys.stdout.flush(); continue
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\n"); sys.stdout.flush()
"#;
    let transport =
        PluginTransport::Stdio { command: python(), args: vec!["-c".into(), script.into()], env: Default::default() };
    let (pool, _) = pool(vec![endpoint("garbage", transport)], quick());
    let err = pool.call("garbage", "t", args(json!({})), Some(Duration::from_secs(2))).await.unwrap_err();
    assert!(matches!(err, PluginError::Timeout { .. } | PluginError::Call { .. }), "{err:?}");
}

#[test]
fn an_unapproved_plugin_is_not_run() {
    let text = HYDRATION_MANIFEST.replace("  version: 2\n", "  version: 2\n  approved: false\n");
    let Ok(Resource::Plugin(plugin)) = parse_documents(&text).remove(0) else { panic!() };
    let err = PluginEndpoint::from_plugin(&plugin, Some(&runtime())).unwrap_err();
    assert!(matches!(err, PluginError::NotApproved { .. }), "{err}");
}

#[test]
fn a_manifest_pointing_at_a_missing_module_is_refused_with_the_path() {
    let text = HYDRATION_MANIFEST.replace("hydration/v1.py", "hydration/v9.py");
    let Ok(Resource::Plugin(plugin)) = parse_documents(&text).remove(0) else { panic!() };
    let err = PluginEndpoint::from_plugin(&plugin, Some(&runtime())).unwrap_err();
    assert!(err.to_string().ends_with("plugins/hydration/v9.py does not exist"), "{err}");
}
