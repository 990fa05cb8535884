//! Every Python Plugin manifest in examples/ parses with the crds crate and names a module that
//! exists and loads in the plugin host.

#[path = "plugins_support/mod.rs"]
mod support;

use std::process::Command;

use support::*;
use wellbeing_crds::manifest::{Resource, parse_documents};
use wellbeing_mcp::{PluginEndpoint, PluginTransport};

fn example_plugins() -> Vec<(String, wellbeing_crds::Plugin)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in parse_documents(&text) {
                match doc {
                    Ok(Resource::Plugin(p)) => found.push((path.display().to_string(), p)),
                    Ok(_) => {}
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
    }
    found
}

#[test]
fn sleep_winddown_manifest_is_as_specified() {
    let plugins = example_plugins();
    let (_, sleep) = plugins.iter().find(|(_, p)| p.metadata.name.as_deref() == Some("sleep-winddown")).unwrap();
    assert_eq!(sleep.spec.source.python.as_ref().unwrap().module, "sleep-winddown/v1.py");
    assert_eq!(sleep.spec.triggers.pillars, ["sleep"]);
    assert_eq!(sleep.spec.triggers.keywords, ["tired", "bed", "insomnia", "sleep"]);
    assert!(sleep.spec.required_secrets.is_empty());
}

#[test]
fn every_python_plugin_module_exists_and_passes_its_self_test() {
    let rt = runtime();
    let plugins = example_plugins();
    assert!(!plugins.is_empty());
    for (file, plugin) in plugins.iter().filter(|(_, p)| p.spec.source.python.is_some()) {
        let endpoint = PluginEndpoint::from_plugin(plugin, Some(&rt)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let PluginTransport::Stdio { args, .. } = &endpoint.transport else { panic!("{file}: not stdio") };
        let module = &args[3];
        let out = Command::new(&rt.python)
            .args(["-m", "wellbeing_host", "selftest", "--module", module])
            .env("PYTHONPATH", repo_root().join("plugins/host"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {module}: {}", String::from_utf8_lossy(&out.stdout));
    }
}
