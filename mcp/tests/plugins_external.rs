//! An MCP server from PyPI that we did not write (`mcp-server-time`), used as a plugin.

#[path = "plugins_support/mod.rs"]
mod support;

use serde_json::json;
use support::*;
use wellbeing_crds::manifest::{Resource, parse_documents};
use wellbeing_mcp::{PluginEndpoint, ToolRole};

const MANIFEST: &str = r#"
apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: time}
spec:
  description: Current time and time zone conversion
  triggers: {keywords: [time zone, timezone]}
  source:
    mcp:
      command: [PYTHON, -m, mcp_server_time, --local-timezone, UTC]
"#;

#[tokio::test]
async fn mcp_server_time_serves_as_a_plugin_over_stdio() {
    let rt = runtime();
    let text = MANIFEST.replace("PYTHON", &rt.python);
    let Ok(Resource::Plugin(plugin)) = parse_documents(&text).remove(0) else { panic!("not a Plugin") };
    let endpoint = PluginEndpoint::from_plugin(&plugin, Some(&rt)).unwrap();
    let (pool, sink) = pool(vec![endpoint], quick());

    let discovered = pool.discover().await;
    assert!(discovered["time"].is_ok(), "{:?}", discovered["time"]);
    let defs = pool.tool_definitions().await;
    let names: Vec<_> = defs.iter().map(|d| d.function_name.as_str()).collect();
    assert!(names.contains(&"time__get_current_time") && names.contains(&"time__convert_time"), "{names:?}");
    // Tools without our role marker are ordinary tools for the LLM.
    assert!(defs.iter().all(|d| d.role == ToolRole::Run));

    let out = pool.call("time", "get_current_time", args(json!({"timezone": "Asia/Tokyo"})), None).await.unwrap();
    let shown = out.structured.clone().map(|s| s.to_string()).unwrap_or(out.text.clone());
    assert!(shown.contains("Asia/Tokyo"), "{shown}");
    assert!(shown.contains("+09:00"), "{shown}");

    let err = pool.call("time", "get_current_time", args(json!({"timezone": "Mars/Olympus"})), None).await;
    assert!(err.is_err(), "an invalid zone is an error result: {err:?}");
    assert_eq!(sink.invocations().len(), 2);
}
