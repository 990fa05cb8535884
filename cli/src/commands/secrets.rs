//! `wellbeing secrets resolve`: find the secrets the system still lacks and put their values
//! straight into the secret store. Values are read from a hidden prompt or stdin, never from
//! arguments (which land in shell history and `ps`), and are never printed or logged.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context as _, bail};
use kube::{Api, api::ListParams};
use wellbeing_crds::{SecretRequirement, manifest};
use wellbeing_operator::secret_store::{self, Presence, SecretStore, SecretValue, StoreConfig, StoreKind};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List the missing secrets and store a value for each (hidden prompt or stdin).
    Resolve(ResolveArgs),
}

#[derive(clap::Args, Debug)]
pub struct ResolveArgs {
    /// Where values go: kubernetes (Secrets in the namespace), gcp (Secret Manager) or local
    /// (secrets.json in the data directory, for `wellbeing up`).
    #[arg(long, env = "WELLBEING_SECRET_STORE", default_value = "kubernetes")]
    store: StoreKind,
    /// GCP project holding the secrets (store gcp).
    #[arg(long, env = "WELLBEING_GCP_PROJECT")]
    gcp_project: Option<String>,
    /// Namespace of the SecretRequirements and of the Secrets (default: the kubeconfig's).
    #[arg(long, short = 'n', env = "WELLBEING_NAMESPACE")]
    namespace: Option<String>,
    /// Embedded mode: read requirements from the Plugins and SecretRequirements in this folder
    /// of manifests instead of from the cluster.
    #[arg(long, env = "WELLBEING_MANIFESTS")]
    manifests: Option<PathBuf>,
    /// Data directory of the local store (default: the one `wellbeing up` uses,
    /// ~/.local/share/wellbeing on Linux).
    #[arg(long, env = "WELLBEING_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// List the missing secrets and ask for nothing.
    #[arg(long, conflicts_with = "from_stdin")]
    dry_run: bool,
    /// Store one value read from stdin (trailing newline removed) under this secret id, without
    /// prompting: `printf %s "$KEY" | wellbeing secrets resolve --from-stdin openweather-api-key`.
    #[arg(long, value_name = "NAME")]
    from_stdin: Option<String>,
}

/// A secret the system needs, wherever that need was declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub secret_id: String,
    pub description: String,
    pub used_by: Vec<String>,
}

/// Where a value comes from in interactive mode. A trait so the flow is tested without a terminal.
pub trait Prompter {
    /// Ask for one value; `None` when the person left it empty (skip).
    fn ask(&mut self, requirement: &Requirement) -> anyhow::Result<Option<SecretValue>>;
}

/// Hidden prompt on the controlling terminal (rpassword turns echo off).
struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn ask(&mut self, requirement: &Requirement) -> anyhow::Result<Option<SecretValue>> {
        let value = rpassword::prompt_password(format!("{} (hidden, empty to skip): ", requirement.secret_id))
            .context("failed to read from the terminal")?;
        Ok(non_empty(strip_line_end(value)))
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let Command::Resolve(args) = args.command;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("failed to start the runtime")?;
    runtime.block_on(run_resolve(args))
}

async fn run_resolve(args: ResolveArgs) -> anyhow::Result<()> {
    let stdout = &mut std::io::stdout().lock();
    if let Some(name) = &args.from_stdin {
        let store = build_store(&args, client_if(args.store == StoreKind::Kubernetes).await?)?;
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("failed to read the value from stdin")?;
        return store_from_stdin(store.as_ref(), name, text, stdout).await;
    }
    // rpassword prompts on the controlling terminal, not stdin; find out before listing anything.
    if !args.dry_run && std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").is_err() {
        bail!("no terminal to ask on: use --from-stdin NAME for one value, or --dry-run to list");
    }
    let client = client_if(args.manifests.is_none() || args.store == StoreKind::Kubernetes).await?;
    let requirements = match (&args.manifests, &client) {
        (Some(dir), _) => requirements_from_folder(dir)?,
        (None, Some(client)) => requirements_from_cluster(client.clone(), args.namespace.as_deref()).await?,
        (None, None) => bail!("requirements come from the cluster or from --manifests DIR"),
    };
    let store = build_store(&args, client)?;
    let mut terminal = TerminalPrompter;
    let prompter: Option<&mut dyn Prompter> = if args.dry_run { None } else { Some(&mut terminal) };
    resolve(store.as_ref(), &requirements, prompter, stdout).await?;
    Ok(())
}

async fn client_if(needed: bool) -> anyhow::Result<Option<kube::Client>> {
    if !needed {
        return Ok(None);
    }
    let client =
        kube::Client::try_default().await.context("failed to connect to the cluster (kubeconfig or in-cluster)")?;
    Ok(Some(client))
}

fn build_store(args: &ResolveArgs, client: Option<kube::Client>) -> anyhow::Result<Arc<dyn SecretStore>> {
    let cfg = StoreConfig {
        kind: args.store,
        gcp_project: args.gcp_project.clone(),
        namespace: args.namespace.clone(),
        // Same default as `wellbeing up`, so both find the same secrets.json.
        data_dir: args.data_dir.clone().or_else(|| dirs::data_dir().map(|d| d.join("wellbeing"))),
        client,
    };
    Ok(secret_store::from_config(&cfg)?)
}

/// SecretRequirements in the namespace, as the operator wrote them.
async fn requirements_from_cluster(client: kube::Client, namespace: Option<&str>) -> anyhow::Result<Vec<Requirement>> {
    let namespace = namespace.map(str::to_string).unwrap_or_else(|| client.default_namespace().to_string());
    let api: Api<SecretRequirement> = Api::namespaced(client, &namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("failed to list SecretRequirements in {namespace}"))?;
    let mut out: Vec<Requirement> = list
        .items
        .into_iter()
        .map(|r| Requirement {
            secret_id: r.spec.secret_id,
            description: r.spec.description,
            used_by: r.status.map(|s| s.used_by).unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.secret_id.cmp(&b.secret_id));
    Ok(out)
}

/// Requirements declared by the manifests of a folder (`*.yaml`, `*.yml`): every Plugin's
/// `requiredSecrets` and every SecretRequirement, one entry per distinct secret id, as the
/// operator would create them. Documents that do not parse are reported and skipped.
pub fn requirements_from_folder(dir: &Path) -> anyhow::Result<Vec<Requirement>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("failed to read manifests folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut resources = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("failed to read {}", file.display()))?;
        for result in manifest::parse_documents(&text) {
            match result {
                Ok(resource) => resources.push(resource),
                Err(e) => eprintln!("skipping {}: {e}", file.display()),
            }
        }
    }
    Ok(collect_requirements(&resources))
}

/// One requirement per distinct secret id, with the plugins that use it (sorted, distinct).
pub fn collect_requirements(resources: &[manifest::Resource]) -> Vec<Requirement> {
    let mut by_id: BTreeMap<String, Requirement> = BTreeMap::new();
    fn entry<'a>(by_id: &'a mut BTreeMap<String, Requirement>, id: &str) -> &'a mut Requirement {
        by_id.entry(id.to_string()).or_insert_with(|| Requirement {
            secret_id: id.to_string(),
            description: String::new(),
            used_by: Vec::new(),
        })
    }
    for resource in resources {
        match resource {
            manifest::Resource::Plugin(p) => {
                let name = p.metadata.name.clone().unwrap_or_default();
                for id in p.spec.secret_names() {
                    let req = entry(&mut by_id, &id);
                    if !req.used_by.contains(&name) {
                        req.used_by.push(name.clone());
                        req.used_by.sort();
                    }
                }
            }
            manifest::Resource::SecretRequirement(s) => {
                let req = entry(&mut by_id, &s.spec.secret_id);
                if req.description.is_empty() {
                    req.description = s.spec.description.clone();
                }
            }
            manifest::Resource::Persona(_) | manifest::Resource::Goal(_) => {}
        }
    }
    by_id.into_values().collect()
}

/// What one resolve run did, for tests and the closing line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub missing: Vec<String>,
    pub stored: Vec<String>,
    pub skipped: Vec<String>,
}

/// Ask the store about every requirement, list the missing ones, and (with a prompter) ask for
/// and store each value. `prompter == None` is the dry run. Presence comes from the store itself,
/// not from the requirement's status, which may lag by a poll interval.
pub async fn resolve(
    store: &dyn SecretStore,
    requirements: &[Requirement],
    prompter: Option<&mut dyn Prompter>,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut missing = Vec::new();
    for req in requirements {
        let presence = store
            .presence(&req.secret_id)
            .await
            .with_context(|| format!("failed to check secret {} in the {} store", req.secret_id, store.kind()))?;
        if presence == Presence::Missing {
            missing.push(req);
        }
    }
    if missing.is_empty() {
        writeln!(out, "All {} required secrets are present in the {} store.", requirements.len(), store.kind())?;
        return Ok(outcome);
    }
    writeln!(out, "Missing in the {} store ({} of {}):", store.kind(), missing.len(), requirements.len())?;
    for req in &missing {
        let used_by = if req.used_by.is_empty() { "-".to_string() } else { req.used_by.join(",") };
        let description = if req.description.is_empty() { String::new() } else { format!("  {}", req.description) };
        writeln!(out, "  {}  (used by {used_by}){description}", req.secret_id)?;
        outcome.missing.push(req.secret_id.clone());
    }
    let Some(prompter) = prompter else {
        return Ok(outcome);
    };
    out.flush()?;
    for req in missing {
        match prompter.ask(req)? {
            Some(value) => {
                store.put(&req.secret_id, &value).await.with_context(|| {
                    format!("failed to store secret {} in the {} store", req.secret_id, store.kind())
                })?;
                writeln!(out, "stored {}", req.secret_id)?;
                outcome.stored.push(req.secret_id.clone());
            }
            None => {
                writeln!(out, "skipped {}", req.secret_id)?;
                outcome.skipped.push(req.secret_id.clone());
            }
        }
    }
    if !outcome.skipped.is_empty() {
        writeln!(out, "{} still missing: {}", outcome.skipped.len(), outcome.skipped.join(", "))?;
    }
    Ok(outcome)
}

/// The non-interactive path: one value from stdin.
pub async fn store_from_stdin(
    store: &dyn SecretStore,
    secret_id: &str,
    text: String,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Some(value) = non_empty(strip_line_end(text)) else {
        bail!("no value on stdin for secret {secret_id}");
    };
    store
        .put(secret_id, &value)
        .await
        .with_context(|| format!("failed to store secret {secret_id} in the {} store", store.kind()))?;
    writeln!(out, "stored {secret_id} in the {} store", store.kind())?;
    Ok(())
}

/// `echo` and terminals end input with a newline that is not part of the value.
fn strip_line_end(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

fn non_empty(text: String) -> Option<SecretValue> {
    (!text.is_empty()).then(|| SecretValue::new(text))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use wellbeing_operator::secret_store::LocalStore;

    use super::*;

    const PLUGINS: &str = r#"
apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: weather-walks}
spec:
  description: Weather for walks
  source: {mcp: {image: "example.com/weather:1"}}
  requiredSecrets: [{name: openweather-api-key, env: OPENWEATHER_API_KEY}]
---
apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: air-quality}
spec:
  description: Air quality
  source: {mcp: {image: "example.com/air:1"}}
  requiredSecrets:
    - {name: openweather-api-key, env: OWM_KEY}
    - {name: calendar-token, env: CAL_TOKEN}
---
apiVersion: wellbeing.dev/v1alpha1
kind: SecretRequirement
metadata: {name: openweather-api-key}
spec: {secretId: openweather-api-key, description: OpenWeather API key}
"#;

    struct Scripted(VecDeque<Option<&'static str>>, Vec<String>);

    impl Prompter for Scripted {
        fn ask(&mut self, requirement: &Requirement) -> anyhow::Result<Option<SecretValue>> {
            self.1.push(requirement.secret_id.clone());
            Ok(self.0.pop_front().expect("asked once per missing secret").map(SecretValue::new))
        }
    }

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plugins.yaml"), PLUGINS).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        dir
    }

    #[test]
    fn one_requirement_per_secret_with_every_user() {
        let dir = folder();
        let reqs = requirements_from_folder(dir.path()).unwrap();
        assert_eq!(
            reqs,
            [
                Requirement {
                    secret_id: "calendar-token".into(),
                    description: String::new(),
                    used_by: vec!["air-quality".into()]
                },
                Requirement {
                    secret_id: "openweather-api-key".into(),
                    description: "OpenWeather API key".into(),
                    used_by: vec!["air-quality".into(), "weather-walks".into()],
                },
            ]
        );
    }

    #[tokio::test]
    async fn dry_run_lists_and_stores_nothing() {
        let dir = folder();
        let store = LocalStore::new(dir.path().join("data"));
        let reqs = requirements_from_folder(dir.path()).unwrap();
        let mut out = Vec::new();
        let outcome = resolve(&store, &reqs, None, &mut out).await.unwrap();
        assert_eq!(outcome.missing, ["calendar-token", "openweather-api-key"]);
        assert!(outcome.stored.is_empty());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("openweather-api-key  (used by air-quality,weather-walks)  OpenWeather API key"),
            "{text}"
        );
        assert!(!dir.path().join("data").exists());
    }

    #[tokio::test]
    async fn prompted_values_go_to_the_store_and_are_never_printed() {
        let dir = folder();
        let store = LocalStore::new(dir.path().join("data"));
        let reqs = requirements_from_folder(dir.path()).unwrap();
        let mut prompter = Scripted(VecDeque::from([None, Some("owm-value-123")]), Vec::new());
        let mut out = Vec::new();
        let outcome = resolve(&store, &reqs, Some(&mut prompter), &mut out).await.unwrap();
        assert_eq!(prompter.1, ["calendar-token", "openweather-api-key"]);
        assert_eq!(outcome.stored, ["openweather-api-key"]);
        assert_eq!(outcome.skipped, ["calendar-token"]);
        assert_eq!(store.value("openweather-api-key").unwrap().unwrap().expose(), "owm-value-123");
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("owm-value-123"), "{text}");
        assert!(text.contains("1 still missing: calendar-token"), "{text}");

        // A second run asks only for what is still missing.
        let mut prompter = Scripted(VecDeque::from([Some("cal")]), Vec::new());
        let outcome = resolve(&store, &reqs, Some(&mut prompter), &mut Vec::new()).await.unwrap();
        assert_eq!(prompter.1, ["calendar-token"]);
        assert_eq!(outcome.stored, ["calendar-token"]);
        let mut out = Vec::new();
        resolve(&store, &reqs, None, &mut out).await.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "All 2 required secrets are present in the local store.\n");
    }

    #[tokio::test]
    async fn stdin_value_loses_only_its_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let mut out = Vec::new();
        store_from_stdin(&store, "k", "  spaced value \r\n".into(), &mut out).await.unwrap();
        assert_eq!(store.value("k").unwrap().unwrap().expose(), "  spaced value ");
        assert_eq!(String::from_utf8(out).unwrap(), "stored k in the local store\n");
        let err = store_from_stdin(&store, "k", "\n".into(), &mut Vec::new()).await.unwrap_err();
        assert!(err.to_string().contains("no value on stdin"), "{err}");
        let err = store_from_stdin(&store, "bad/id", "v".into(), &mut Vec::new()).await.unwrap_err();
        assert!(format!("{err:#}").contains("invalid secret id"), "{err:#}");
    }
}
