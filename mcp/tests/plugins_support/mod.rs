//! Shared by the plugin tests (these and the assistant's engine_plugins): the real Python
//! plugin host from this repository.
#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use wellbeing_crds::plugin::Triggers;
use wellbeing_mcp::{LocalRuntime, MemorySink, PluginEndpoint, PluginPool, PluginTransport, PoolConfig};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("mcp/ has a parent").to_path_buf()
}

pub fn python() -> String {
    std::env::var("WELLBEING_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Fails (never skips) when the host's Python dependencies are missing, naming the fix.
pub fn require_python_deps() {
    let probe = Command::new(python())
        .args(["-c", "import mcp, mcp.server.lowlevel, jsonschema, uvicorn, mcp_server_time"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the plugin host's Python dependencies are missing for {}: run `make python-deps` \
             (pip install -r plugins/host/requirements-dev.txt)\n{}",
            python(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run {} ({e}): install Python 3.11+ and run `make python-deps`", python()),
    }
}

pub fn runtime() -> LocalRuntime {
    require_python_deps();
    LocalRuntime { python: python(), plugins_dir: repo_root().join("plugins") }
}

pub fn endpoint(name: &str, transport: PluginTransport) -> PluginEndpoint {
    PluginEndpoint { name: name.to_string(), version: 1, transport, triggers: Triggers::default() }
}

/// An endpoint for a module written into a temporary plugins dir (with the real host beside it).
pub fn module_endpoint(dir: &tempfile::TempDir, name: &str, source: &str) -> PluginEndpoint {
    let module = format!("{name}/v1.py");
    let path = dir.path().join(&module);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, source).unwrap();
    let rt = runtime();
    let rt = LocalRuntime { python: rt.python, plugins_dir: dir.path().to_path_buf() };
    let mut transport = rt.python_transport(&module).unwrap();
    // The host itself stays in the repository.
    if let PluginTransport::Stdio { env, .. } = &mut transport {
        env.insert("PYTHONPATH".into(), repo_root().join("plugins/host").display().to_string());
    }
    endpoint(name, transport)
}

pub fn pool(endpoints: Vec<PluginEndpoint>, config: PoolConfig) -> (PluginPool, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let http = reqwest::Client::builder().build().expect("reqwest client");
    (PluginPool::new(endpoints, sink.clone(), http, config), sink)
}

pub fn quick() -> PoolConfig {
    PoolConfig { connect_timeout: Duration::from_secs(30), call_timeout: Duration::from_secs(10), ..Default::default() }
}

pub fn args(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().cloned().expect("arguments are an object")
}

/// A plugin module with a valid header and the given `run` body.
pub fn probe_module(run_body: &str) -> String {
    format!(
        "import asyncio\nname = 'probe'\ndescription = 'A test plugin.'\n\
         input_schema = {{'type': 'object', 'properties': {{'text': {{'type': 'string'}}}}}}\n\
         required_secrets = ['weather-key']\n\
         async def run(context, llm, secrets):\n{run_body}\n"
    )
}
