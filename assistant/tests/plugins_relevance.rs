//! Plugin triggers as written in manifests pick the plugins that fit a message (no MCP needed;
//! the pool's own tests live in the wellbeing-mcp crate).

use std::path::PathBuf;

use wellbeing_assistant::plugins::{PluginEndpoint, PluginTransport, relevant};
use wellbeing_crds::manifest::{Resource, parse_documents};

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

fn endpoint(text: &str) -> PluginEndpoint {
    let Ok(Resource::Plugin(plugin)) = parse_documents(text).remove(0) else { panic!("not a Plugin") };
    PluginEndpoint {
        name: plugin.metadata.name.clone().unwrap_or_default(),
        version: plugin.spec.version,
        transport: PluginTransport::Http { url: "http://127.0.0.1:9/mcp".into() },
        triggers: plugin.spec.triggers.clone(),
    }
}

#[test]
fn manifest_triggers_pick_the_hydration_plugin_not_the_sleep_one() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("assistant/ has a parent").to_path_buf();
    let sleep = std::fs::read_to_string(root.join("examples/plugin-sleep-winddown.yaml")).unwrap();
    let endpoints = vec![endpoint(HYDRATION_MANIFEST), endpoint(&sleep)];
    let names = |text: &str| relevant(&endpoints, text, &[]).iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names("forgot to drink water all day, headache"), ["hydration"]);
    assert_eq!(names("so tired, off to bed"), ["sleep-winddown"]);
}
