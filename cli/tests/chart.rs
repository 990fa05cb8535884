//! The Helm chart, rendered by a real helm (`scripts/install-helm.sh`, as `make helm` and CI use).
//!
//! Its containers run this binary with arguments written in YAML templates; a renamed flag would
//! only show as a crash-looping pod. So the real argument parser must accept every container's
//! arguments: they are followed by `--help`, so parsing stops there with exit code 0 after every
//! earlier argument was checked, and nothing is started. The rendered objects must also keep the
//! chart's promises: restricted pods, least-privilege RBAC, labels.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde::Deserialize as _;
use serde_yaml::Value;

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

/// Every object `helm template` renders with these extra arguments.
fn render(extra: &[&str]) -> Vec<Value> {
    let out = Command::new(helm())
        .current_dir(repo())
        .args(["template", "wellbeing", "charts/wellbeing", "--namespace", "wellbeing"])
        .args(extra)
        .output()
        .expect("helm runs");
    assert!(out.status.success(), "helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn id(doc: &Value) -> String {
    format!("{}/{}", doc["kind"].as_str().unwrap_or_default(), doc["metadata"]["name"].as_str().unwrap_or_default())
}

/// (object, container, args) of every container that runs the wellbeing image.
fn wellbeing_containers(extra: &[&str]) -> Vec<(String, String, Vec<String>)> {
    let mut found = Vec::new();
    for doc in render(extra) {
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

/// The restricted Pod Security profile, on every pod the chart runs.
#[test]
fn every_pod_is_restricted() {
    for extra in [&[][..], &["-f", "charts/wellbeing/values-gcp.yaml"][..]] {
        for doc in render(extra) {
            let pod = &doc["spec"]["template"]["spec"];
            if pod.is_null() {
                continue;
            }
            let name = id(&doc);
            assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true), "{name}");
            assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{name}");
            for c in pod["containers"].as_sequence().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], Value::Bool(false), "{name}");
                assert_eq!(sc["readOnlyRootFilesystem"], Value::Bool(true), "{name}");
                assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
                assert!(!c["resources"]["limits"].is_null(), "{name} has no limits");
            }
        }
    }
}

/// Cluster-wide rights only where the API has no namespaced alternative, unless asked for.
#[test]
fn rbac_is_namespaced_unless_every_namespace_is_watched() {
    let cluster_roles = |extra: &[&str]| -> Vec<(String, Vec<String>)> {
        render(extra)
            .iter()
            .filter(|d| d["kind"] == "ClusterRole")
            .map(|d| {
                let resources = d["rules"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .flat_map(|r| r["resources"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap().to_string()))
                    .collect();
                (id(d), resources)
            })
            .collect()
    };
    // Default: only TokenReviews (cluster-scoped) for the assistant.
    assert_eq!(
        cluster_roles(&[]),
        [("ClusterRole/wellbeing-assistant-wellbeing-tokenreview".to_string(), vec!["tokenreviews".to_string()])]
    );
    // A sandbox runtime adds read access to RuntimeClasses (cluster-scoped) for the operator.
    let with_sandbox = cluster_roles(&["--set", "plugins.runtimeClassName=gvisor"]);
    assert!(with_sandbox.iter().any(|(_, r)| r == &["runtimeclasses"]), "{with_sandbox:?}");
    assert_eq!(with_sandbox.len(), 2, "{with_sandbox:?}");
    // Listed namespaces: a Role in each, still no cluster-wide operator rights.
    let listed = render(&["--set", "watchNamespaces={team-a,team-b}"]);
    let operator_roles: Vec<String> = listed
        .iter()
        .filter(|d| d["kind"] == "Role" && d["metadata"]["name"] == "wellbeing-operator")
        .map(|d| d["metadata"]["namespace"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(operator_roles, ["wellbeing", "team-a", "team-b"]);
    assert_eq!(listed.iter().filter(|d| d["kind"] == "ClusterRole").count(), 1);
    // Every namespace: now the operator's rules move to a ClusterRole.
    let all = cluster_roles(&["--set", "watchNamespaces={*}"]);
    let operator =
        all.iter().find(|(n, _)| n == "ClusterRole/wellbeing-operator-wellbeing").expect("operator ClusterRole");
    assert!(operator.1.contains(&"personas".to_string()) && operator.1.contains(&"cronjobs".to_string()));
}

#[test]
fn gcp_values_mount_secret_manager_instead_of_kubernetes_secrets() {
    let docs = render(&["-f", "charts/wellbeing/values-gcp.yaml"]);
    let spc = docs.iter().find(|d| d["kind"] == "SecretProviderClass").expect("a SecretProviderClass");
    let secrets = spc["spec"]["parameters"]["secrets"].as_str().unwrap();
    assert!(secrets.contains("projects/my-project/secrets/slack-bot-token/versions/latest"), "{secrets}");
    let sts = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"SLACK_BOT_TOKEN_FILE") && !names.contains(&"SLACK_BOT_TOKEN"), "{names:?}");
    let sa = docs.iter().find(|d| id(d) == "ServiceAccount/wellbeing-operator").unwrap();
    assert_eq!(
        sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        "wellbeing-operator@my-project.iam.gserviceaccount.com"
    );
}

#[test]
fn every_object_carries_the_recommended_labels() {
    for doc in render(&[]) {
        let labels = &doc["metadata"]["labels"];
        for key in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
        ] {
            assert!(labels[key].is_string(), "{} lacks {key}", id(&doc));
        }
    }
}

/// `assistant.people` reaches the assistant as a WELLBEING_PEOPLE the binary reads back as the
/// same people; an identity the binary would refuse is refused by the chart's schema first.
#[test]
fn the_people_served_render_as_a_list_the_assistant_reads() {
    let people = r#"assistant.people=[{"name":"ana","identities":["slack:T01ABC:U02DEF","sms:+4915112345678"]},{"name":"bo","identities":["email:bo@example.org"]}]"#;
    let docs = render(&["--set-json", people]);
    let sts = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let value =
        env.iter().find(|e| e["name"] == "WELLBEING_PEOPLE").expect("WELLBEING_PEOPLE")["value"].as_str().unwrap();
    let parsed = wellbeing_assistant::people::parse_people(value).unwrap();
    assert_eq!(parsed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["ana", "bo"]);
    assert_eq!(parsed[0].identities.len(), 2);

    let out = Command::new(helm())
        .current_dir(repo())
        .args(["template", "wellbeing", "charts/wellbeing", "--set-json"])
        .arg(r#"assistant.people=[{"name":"ana","identities":["fax:123"]}]"#)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an identity of no known channel was accepted");
}

/// With `assistant.sms.enabled`, the assistant gets Twilio settings the binary reads as they are
/// (the auth token from the credentials Secret, or Secret Manager through the CSI driver), and
/// half-set values are refused at render time.
#[test]
fn sms_values_render_twilio_settings_the_assistant_reads() {
    let sms = [
        "--set",
        "assistant.sms.enabled=true",
        "--set",
        "assistant.sms.accountSid=AC0123456789abcdef",
        "--set-string",
        "assistant.sms.fromNumber=+15551234567",
        "--set",
        "assistant.sms.webhookUrl=https://wellbeing.example.org/sms/twilio",
    ];
    assert_accepted(&sms);
    let docs = render(&sms);
    let sts = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let token = env.iter().find(|e| e["name"] == "TWILIO_AUTH_TOKEN").expect("TWILIO_AUTH_TOKEN");
    assert_eq!(token["valueFrom"]["secretKeyRef"]["key"], "twilio-auth-token");
    // What the container sees, with the Secret's value filled in.
    let vars: std::collections::HashMap<String, String> = env
        .iter()
        .filter_map(|e| {
            let name = e["name"].as_str()?.to_string();
            let value =
                e["value"].as_str().map(str::to_string).or_else(|| e.get("valueFrom").map(|_| "x".to_string()))?;
            Some((name, value))
        })
        .collect();
    let config = wellbeing_webhook::config::SmsConfig::from_env(|k| vars.get(k).cloned()).unwrap().expect("SMS is on");
    assert_eq!(config.sender, wellbeing_webhook::sms::client::Sender::From("+15551234567".into()));
    assert_eq!(config.webhook_url.as_deref(), Some("https://wellbeing.example.org/sms/twilio"));

    let mut gcp = sms.to_vec();
    gcp.extend(["-f", "charts/wellbeing/values-gcp.yaml"]);
    let docs = render(&gcp);
    let spc = docs.iter().find(|d| d["kind"] == "SecretProviderClass").unwrap();
    assert!(
        spc["spec"]["parameters"]["secrets"].as_str().unwrap().contains("secrets/twilio-auth-token/versions/latest")
    );

    let half = Command::new(helm())
        .current_dir(repo())
        .args(["template", "wellbeing", "charts/wellbeing", "--set", "assistant.sms.enabled=true"])
        .args(["--set", "assistant.sms.accountSid=AC1"])
        .output()
        .unwrap();
    assert!(!half.status.success(), "SMS without a sender was accepted");
    let off = render(&[]);
    let sts = off.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    assert!(!env.iter().any(|e| e["name"].as_str().unwrap().starts_with("TWILIO_")), "SMS is off by default");
}
