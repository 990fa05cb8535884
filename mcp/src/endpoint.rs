//! Where a plugin is served: a child process speaking MCP over stdio, or a streamable-HTTP URL.

use std::collections::BTreeMap;
use std::path::PathBuf;

use wellbeing_crds::Plugin;
use wellbeing_crds::plugin::Triggers;

use crate::PluginError;

/// One plugin as the assistant reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginEndpoint {
    /// The Plugin resource's name; the first half of the tools' function names.
    pub name: String,
    /// `spec.version`, recorded with every invocation.
    pub version: i32,
    pub transport: PluginTransport,
    pub triggers: Triggers,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginTransport {
    /// A child process serving MCP on stdin/stdout (embedded mode).
    Stdio { command: String, args: Vec<String>, env: BTreeMap<String, String> },
    /// A streamable-HTTP MCP endpoint, e.g. `http://plugin-hydration.wellbeing.svc:8000/mcp`.
    Http { url: String },
}

/// How embedded mode runs Python plugins: which interpreter, and where `plugins/` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalRuntime {
    pub python: String,
    /// The repository's (or GitOps checkout's) `plugins/` directory; the host is in `host/` below it.
    pub plugins_dir: PathBuf,
}

impl LocalRuntime {
    /// The stdio transport serving `module` (relative to `plugins_dir`) with the plugin host.
    pub fn python_transport(&self, module: &str) -> Result<PluginTransport, PluginError> {
        let path = self.plugins_dir.join(module);
        if !path.is_file() {
            return Err(PluginError::ModuleMissing { path });
        }
        let host = self.plugins_dir.join("host");
        let env = BTreeMap::from([
            ("PYTHONPATH".to_string(), host.display().to_string()),
            // The protocol owns stdout; unbuffered stderr keeps log lines whole and timely.
            ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
        ]);
        let args = ["-m", "wellbeing_host", "--module", &path.display().to_string(), "--transport", "stdio"]
            .map(String::from)
            .to_vec();
        Ok(PluginTransport::Stdio { command: self.python.clone(), args, env })
    }
}

impl PluginEndpoint {
    /// The endpoint of a Plugin resource. In the cluster (`local` is None) a plugin is reached at
    /// `status.endpoint` once Ready, or at `spec.source.mcp.url`; in embedded mode Python modules
    /// and MCP commands run as local children. An unapproved plugin (generated, not yet reviewed)
    /// is refused here too, so embedded mode never runs what the operator would not deploy.
    pub fn from_plugin(plugin: &Plugin, local: Option<&LocalRuntime>) -> Result<Self, PluginError> {
        let name = plugin.metadata.name.clone().unwrap_or_default();
        let spec = &plugin.spec;
        if !spec.approved {
            return Err(PluginError::NotApproved { plugin: name });
        }
        let status_endpoint = plugin.status.as_ref().and_then(|s| s.endpoint.clone());
        let mcp = spec.source.mcp.as_ref();
        let transport = match (local, &spec.source.python, mcp) {
            (Some(rt), Some(py), _) => rt.python_transport(&py.module)?,
            (Some(_), None, Some(m)) if m.command.as_ref().is_some_and(|c| !c.is_empty()) => {
                let mut command = m.command.clone().unwrap_or_default();
                let program = command.remove(0);
                PluginTransport::Stdio { command: program, args: command, env: BTreeMap::new() }
            }
            (_, _, Some(m)) if m.url.is_some() => PluginTransport::Http { url: m.url.clone().unwrap_or_default() },
            (None, _, _) if status_endpoint.is_some() => {
                PluginTransport::Http { url: status_endpoint.unwrap_or_default() }
            }
            _ => return Err(PluginError::NoEndpoint { plugin: name }),
        };
        Ok(Self { name, version: spec.version, transport, triggers: spec.triggers.clone() })
    }

    pub fn is_stdio(&self) -> bool {
        matches!(self.transport, PluginTransport::Stdio { .. })
    }
}
