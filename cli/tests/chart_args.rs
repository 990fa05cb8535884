//! The Helm chart's containers run this binary with arguments written in YAML templates; a
//! renamed flag would only show as a crash-looping pod. Render the chart (helm from
//! `scripts/install-helm.sh`, as `make helm` and CI use) and let the real argument parser accept
//! every container's arguments: they are followed by `--help`, so parsing stops there with exit
//! code 0 after every earlier argument was checked, and nothing is started.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn helm() -> String {
    if let Ok(helm) = std::env::var("HELM") {
        return helm;
    }
    let out = Command::new(repo().join("scripts/install-helm.sh")).output().expect("scripts/install-helm.sh runs");
    assert!(out.status.success(), "installing helm failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// (object, container, args) of every container that runs the wellbeing image.
fn wellbeing_containers(extra: &[&str]) -> Vec<(String, String, Vec<String>)> {
    let out = Command::new(helm())
        .current_dir(repo())
        .args(["template", "wellbeing", "charts/wellbeing", "--namespace", "wellbeing"])
        .args(extra)
        .output()
        .expect("helm runs");
    assert!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut found = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
        let kind = doc["kind"].as_str().unwrap_or_default();
        if !["Deployment", "StatefulSet", "Job", "CronJob"].contains(&kind) {
            continue;
        }
        let name = format!("{kind}/{}", doc["metadata"]["name"].as_str().unwrap_or_default());
        let Some(containers) = doc["spec"]["template"]["spec"]["containers"].as_sequence() else { continue };
        for c in containers {
            let image = c["image"].as_str().unwrap_or_default();
            if !image.starts_with("ghcr.io/wellbeing-dev/wellbeing:") {
                continue;
            }
            let args = c["args"].as_sequence().map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect());
            found.push((name.clone(), c["name"].as_str().unwrap().to_string(), args.unwrap_or_default()));
        }
    }
    found
}

fn assert_accepted(extra: &[&str]) {
    let containers = wellbeing_containers(extra);
    let names: Vec<&str> = containers.iter().map(|(n, _, _)| n.as_str()).collect();
    assert!(names.contains(&"Deployment/wellbeing-operator"), "{names:?}");
    assert!(names.contains(&"StatefulSet/wellbeing-assistant"), "{names:?}");
    for (object, container, args) in containers {
        let out = Command::new(env!("CARGO_BIN_EXE_wellbeing")).args(&args).arg("--help").output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{object} container {container}: `wellbeing {}` is refused: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn default_values_render_arguments_the_binary_accepts() {
    assert_accepted(&[]);
}

#[test]
fn gcp_and_cluster_wide_values_render_arguments_the_binary_accepts() {
    assert_accepted(&["-f", "charts/wellbeing/values-gcp.yaml"]);
    assert_accepted(&[
        "--set",
        "watchNamespaces={*}",
        "--set",
        "plugins.requireSandbox=true",
        "--set",
        "operator.pollInterval=5m",
    ]);
}
