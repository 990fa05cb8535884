//! `wellbeing plugin generate | approve | list | rollback`: plugins as files in a GitOps
//! repository (`plugins/<id>/v<N>.py` and `plugins/<id>/plugin.yaml`, or Plugin documents in the
//! manifests folder), or Plugin resources in the cluster with `--cluster`.
//!
//! Automatic generation for uncovered goals is `plugin generate --uncovered`: every Goal with the
//! operator's `Uncovered=True` condition (with `--cluster`), or every Goal of the manifests folder
//! no Plugin covers, that has no generated plugin yet. Turning it on means running that command on
//! a schedule where the GitOps checkout lives (a CI job or a cron entry with `--commit`); it never
//! approves, so a person still reads and approves every generated plugin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use kube::api::{Api, ListParams, Patch, PatchParams};
use wellbeing_assistant::error_chain;
use wellbeing_assistant::llm::{LlmClient, LlmTask};
use wellbeing_assistant::plugin_gen::{
    self, ANNOTATION_APPROVED_VERSIONS, ANNOTATION_FOR, GenerateOptions, Generated, MANIFEST_FILE, Need,
};
use wellbeing_assistant::plugins::{
    LocalRuntime, MemorySink, PluginEndpoint, PluginError, PluginPool, PoolConfig, ToolRole,
};
use wellbeing_crds::conditions::types::UNCOVERED;
use wellbeing_crds::manifest::{Resource, parse_documents};
use wellbeing_crds::{Goal, Persona, Plugin};

use crate::embedded;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PluginCommand {
    /// Ask the code model for a plugin, check it, and write it unapproved.
    Generate(GenerateArgs),
    /// Approve a plugin so the operator (or `wellbeing up`) runs it.
    Approve(ApproveArgs),
    /// Plugins, their versions, phase and tools.
    List(ListArgs),
    /// Point a plugin back at its previous version (the newer file is kept).
    Rollback(RollbackArgs),
}

/// Where plugins and manifests live.
#[derive(clap::Args, Debug, Clone)]
struct Places {
    /// The plugins directory: <id>/v<N>.py, <id>/plugin.yaml, and the plugin host in host/.
    #[arg(long, default_value = "plugins", value_name = "DIR")]
    plugins_dir: PathBuf,
    /// Folder of Goal, Persona and Plugin manifests [default: ./examples when it exists].
    #[arg(long, env = "WELLBEING_MANIFESTS", value_name = "DIR")]
    manifests: Option<PathBuf>,
}

/// Talk to the cluster instead of the files.
#[derive(clap::Args, Debug, Clone)]
struct ClusterArgs {
    /// Read (and for approve, patch) the cluster's resources with the kubeconfig.
    #[arg(long)]
    cluster: bool,
    /// Namespace [default: the kubeconfig's].
    #[arg(long, short = 'n', env = "WELLBEING_NAMESPACE")]
    namespace: Option<String>,
}

#[derive(clap::Args, Debug)]
#[group(id = "what", required = true, multiple = false)]
struct GenerateArgs {
    /// A Goal (from the manifests folder, or the cluster with --cluster).
    #[arg(long, value_name = "NAME", group = "what")]
    goal: Option<String>,
    /// The need in your words, e.g. "remind me to stretch every 2 hours while I'm in meetings".
    #[arg(long, value_name = "TEXT", group = "what")]
    need: Option<String>,
    /// Every uncovered Goal that has no generated plugin yet (never approves anything).
    #[arg(long, group = "what")]
    uncovered: bool,
    /// Commit the module and manifest to the GitOps repository.
    #[arg(long)]
    commit: bool,
    /// The GitOps repository [default: the git repository of the current directory].
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// A host the plugin may reach with http_get (repeatable); none by default.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// The plugin host package used by the checker [default: <plugins-dir>/host].
    #[arg(long, value_name = "DIR")]
    host_dir: Option<PathBuf>,
    /// Python 3.11+ with the plugin host's requirements.
    #[arg(long, env = "WELLBEING_PYTHON", default_value = "python3")]
    python: String,
    /// OpenAI-compatible endpoint (with /v1) of the code model.
    #[arg(long, env = "WELLBEING_LLM_BASE_URL", value_name = "URL")]
    llm_base_url: Option<String>,
    /// Default model, used when the active persona names no `models.code`.
    #[arg(long, env = "WELLBEING_LLM_MODEL", value_name = "NAME")]
    llm_model: Option<String>,
    /// YAML or JSON file of LLM endpoints and routes (its `plugin-code` route writes plugins).
    #[arg(long, env = "WELLBEING_LLM_CONFIG", value_name = "FILE")]
    llm_config: Option<PathBuf>,
    #[command(flatten)]
    places: Places,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(clap::Args, Debug)]
struct ApproveArgs {
    /// The plugin's name (its id).
    id: String,
    /// Commit the changed manifest to the GitOps repository.
    #[arg(long)]
    commit: bool,
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    places: Places,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Do not start local plugins to list their tools.
    #[arg(long)]
    no_tools: bool,
    #[arg(long, env = "WELLBEING_PYTHON", default_value = "python3")]
    python: String,
    #[command(flatten)]
    places: Places,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(clap::Args, Debug)]
struct RollbackArgs {
    id: String,
    /// Commit the changed manifest to the GitOps repository.
    #[arg(long)]
    commit: bool,
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    places: Places,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start tokio")?;
    runtime.block_on(async move {
        match args.command {
            PluginCommand::Generate(a) => generate(a).await,
            PluginCommand::Approve(a) => approve(a).await,
            PluginCommand::List(a) => list(a).await,
            PluginCommand::Rollback(a) => rollback(a),
        }
    })
}

async fn kube_client(cluster: &ClusterArgs) -> anyhow::Result<(kube::Client, String)> {
    let client = kube::Client::try_default().await.context("failed to connect to the Kubernetes API")?;
    let ns = cluster.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
    Ok((client, ns))
}

/// Goals, the active persona and Plugins, from the manifests folder or the cluster.
struct Known {
    goals: Vec<Goal>,
    persona: Option<Persona>,
    plugins: Vec<Plugin>,
}

async fn known(places: &Places, cluster: &ClusterArgs) -> anyhow::Result<Known> {
    if cluster.cluster {
        let (client, ns) = kube_client(cluster).await?;
        let goals = Api::<Goal>::namespaced(client.clone(), &ns).list(&ListParams::default()).await?.items;
        let personas = Api::<Persona>::namespaced(client.clone(), &ns).list(&ListParams::default()).await?.items;
        let plugins = Api::<Plugin>::namespaced(client, &ns).list(&ListParams::default()).await?.items;
        let mut active = personas.into_iter().filter(|p| p.spec.active);
        let persona = match (active.next(), active.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        };
        return Ok(Known { goals, persona, plugins });
    }
    let mut known = Known { goals: Vec::new(), persona: None, plugins: Vec::new() };
    if let Some(dir) = embedded::manifests_dir(places.manifests.as_deref()) {
        let set = embedded::manifests::load_dir(&dir)
            .with_context(|| format!("failed to read the manifests in {}", dir.display()))?;
        known.persona = set.active_persona().cloned();
        known.goals = set.goals;
        known.plugins = set.plugins;
    }
    for (_, plugin) in plugin_dir_manifests(&places.plugins_dir) {
        if !known.plugins.iter().any(|p| p.metadata.name == plugin.metadata.name) {
            known.plugins.push(plugin);
        }
    }
    Ok(known)
}

/// `plugins/<id>/plugin.yaml` files and their Plugins.
fn plugin_dir_manifests(plugins_dir: &Path) -> Vec<(PathBuf, Plugin)> {
    let mut out: Vec<(PathBuf, Plugin)> = std::fs::read_dir(plugins_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(MANIFEST_FILE))
        .filter_map(|path| plugin_gen::read_plugin(&path).map(|p| (path, p)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Goals that need a plugin: the cluster's `Uncovered=True`, or locally no Plugin covering them;
/// minus those a generated plugin already answers (approved or not: generation is not repeated
/// while one waits for review).
fn uncovered_goals(known: &Known, cluster: bool) -> Vec<Goal> {
    known
        .goals
        .iter()
        .filter(|g| {
            let name = g.metadata.name.clone().unwrap_or_default();
            let uncovered = if cluster {
                g.status
                    .as_ref()
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == UNCOVERED && c.status == "True"))
            } else {
                !known.plugins.iter().any(|p| p.spec.covers_goal(&name, &g.spec))
            };
            let generated = known.plugins.iter().any(|p| {
                p.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_FOR)) == Some(&format!("goal/{name}"))
            });
            uncovered && !generated
        })
        .cloned()
        .collect()
}

async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let router =
        embedded::llm_router(args.llm_base_url.as_deref(), args.llm_model.as_deref(), args.llm_config.as_deref())?;
    let known = known(&args.places, &args.cluster).await?;
    let needs: Vec<Need> = if let Some(text) = &args.need {
        if text.trim().is_empty() {
            bail!("--need is empty: say what the plugin should do");
        }
        vec![Need::Text(text.clone())]
    } else if let Some(name) = &args.goal {
        let goal = known.goals.iter().find(|g| g.metadata.name.as_deref() == Some(name)).with_context(|| {
            let names: Vec<String> = known.goals.iter().filter_map(|g| g.metadata.name.clone()).collect();
            let from = if args.cluster.cluster { "the cluster" } else { "the manifests folder" };
            format!(
                "no Goal named {name} in {from} (known: {})",
                if names.is_empty() { "none".into() } else { names.join(", ") }
            )
        })?;
        vec![Need::Goal { name: name.clone(), spec: goal.spec.clone() }]
    } else {
        let goals = uncovered_goals(&known, args.cluster.cluster);
        if goals.is_empty() {
            println!("Every goal is covered by a plugin or has a generated one waiting for approval.");
            return Ok(());
        }
        goals
            .into_iter()
            .map(|g| Need::Goal { name: g.metadata.name.clone().unwrap_or_default(), spec: g.spec })
            .collect()
    };

    let prefs = known.persona.as_ref().map(|p| p.spec.models.clone()).unwrap_or_default();
    let route = router.route(LlmTask::PluginCode, &prefs).context(
        "plugin generation needs a code model: set WELLBEING_LLM_BASE_URL (and WELLBEING_LLM_MODEL), --llm-base-url, \
         or --llm-config",
    )?;
    let llm = route.client.clone();
    let mut options = GenerateOptions::new(&args.places.plugins_dir, route.model());
    options.max_completion_tokens = route.max_completion_tokens();
    options.python = args.python.clone();
    options.allow_hosts = args.allow_hosts.clone();
    if let Some(host) = &args.host_dir {
        options.host_dir = host.clone();
    }
    if !options.host_dir.join("wellbeing_host").is_dir() {
        bail!(
            "the plugin host is not in {} (run from the repository root, or pass --plugins-dir or --host-dir)",
            options.host_dir.display()
        );
    }
    let repo = if args.commit { Some(repo_root(args.repo.as_deref())?) } else { None };
    let mut failed = 0;
    for need in &needs {
        match generate_one(&llm, need, &options, repo.as_deref()).await {
            Ok(()) => {}
            Err(error) if needs.len() > 1 => {
                failed += 1;
                eprintln!("{}: {error:#}", need.describe());
            }
            Err(error) => return Err(error),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} plugins could not be generated", needs.len());
    }
    Ok(())
}

async fn generate_one(
    llm: &LlmClient,
    need: &Need,
    options: &GenerateOptions,
    repo: Option<&Path>,
) -> anyhow::Result<()> {
    println!("Generating a plugin for {} with {}…", need.describe(), options.model);
    let generated: Generated = plugin_gen::generate(llm, need, options).await?;
    for (i, r) in generated.rejections.iter().enumerate() {
        println!("  attempt {} rejected: rule `{}`: {}", i + 1, r.rule, r.detail);
    }
    println!(
        "Wrote {} and {} (version {}, tools: {}).",
        generated.module_path.display(),
        generated.manifest_path.display(),
        generated.version,
        generated.tools.join(", ")
    );
    println!(
        "It is not approved: read {}, then `wellbeing plugin approve {}`.",
        generated.module_path.display(),
        generated.id
    );
    if let Some(repo) = repo {
        let message = format!(
            "Add generated plugin {} v{} for {}\n\nWritten by the model {}; checked by the plugin host's checker \
             (static rules and its examples in the sandbox). Not approved yet.",
            generated.id,
            generated.version,
            need.describe(),
            generated.model
        );
        git_commit(repo, &[&generated.module_path, &generated.manifest_path], &message)?;
    }
    Ok(())
}

/// The top of the git repository `dir` (or the current directory) is in.
fn repo_root(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    let out = cmd.args(["rev-parse", "--show-toplevel"]).output().context("failed to run git")?;
    if !out.status.success() {
        bail!(
            "{} is not in a git repository: {}",
            dir.map_or_else(|| "the current directory".to_string(), |d| d.display().to_string()),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `git add` and `git commit` exactly `files` (nothing else staged goes in).
fn git_commit(repo: &Path, files: &[&Path], message: &str) -> anyhow::Result<()> {
    let repo = repo.canonicalize().with_context(|| format!("failed to find {}", repo.display()))?;
    let mut paths = Vec::new();
    for file in files {
        let abs = file.canonicalize().with_context(|| format!("failed to find {}", file.display()))?;
        let rel = abs
            .strip_prefix(&repo)
            .with_context(|| format!("{} is outside the repository {}", abs.display(), repo.display()))?;
        paths.push(rel.to_path_buf());
    }
    let git = |args: &[&std::ffi::OsStr]| -> anyhow::Result<()> {
        let out = Command::new("git").arg("-C").arg(&repo).args(args).output().context("failed to run git")?;
        if !out.status.success() {
            bail!("git {:?} failed: {}", args, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    };
    let mut add: Vec<&std::ffi::OsStr> = vec!["add".as_ref(), "--".as_ref()];
    add.extend(paths.iter().map(|p| p.as_os_str()));
    git(&add)?;
    let mut commit: Vec<&std::ffi::OsStr> = vec!["commit".as_ref(), "-q".as_ref(), "-m".as_ref(), message.as_ref()];
    commit.push("--".as_ref());
    commit.extend(paths.iter().map(|p| p.as_os_str()));
    git(&commit)?;
    println!("Committed to {}.", repo.display());
    Ok(())
}

/// The file holding a Plugin document named `id`: `plugins/<id>/plugin.yaml`, else a manifest
/// of the manifests folder.
fn find_manifest(places: &Places, id: &str) -> anyhow::Result<PathBuf> {
    let own = places.plugins_dir.join(id).join(MANIFEST_FILE);
    if plugin_gen::read_plugin(&own).is_some_and(|p| p.metadata.name.as_deref() == Some(id)) {
        return Ok(own);
    }
    if let Some(dir) = embedded::manifests_dir(places.manifests.as_deref()) {
        let mut files = Vec::new();
        yaml_files(&dir, &mut files);
        files.sort();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            if parse_documents(&text)
                .iter()
                .any(|r| matches!(r, Ok(Resource::Plugin(p)) if p.metadata.name.as_deref() == Some(id)))
            {
                return Ok(file);
            }
        }
    }
    bail!(
        "no Plugin named {id}: looked in {} and the manifests folder{}",
        own.display(),
        places.manifests.as_ref().map(|d| format!(" {}", d.display())).unwrap_or_default()
    )
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(path);
        }
    }
}

/// Replace the Plugin document named `id` in a (multi-document) manifest with `change` applied,
/// keeping the other documents and the comment lines above it. Pure: the tests feed it text.
pub fn edit_plugin_document(
    text: &str,
    id: &str,
    change: impl FnOnce(&mut Plugin) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut docs: Vec<String> = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(line.to_string());
        } else {
            docs.last_mut().expect("one document").push_str(line);
        }
    }
    let mut change = Some(change);
    for doc in docs.iter_mut() {
        let body: String =
            doc.lines().filter(|l| !(l.trim_end() == "---" || l.starts_with("--- "))).collect::<Vec<_>>().join("\n");
        let parsed = parse_documents(&body);
        let Some(Ok(Resource::Plugin(mut plugin))) = parsed.into_iter().next() else { continue };
        if plugin.metadata.name.as_deref() != Some(id) {
            continue;
        }
        let Some(change) = change.take() else { break };
        change(&mut plugin)?;
        let yaml = plugin_gen::manifest_yaml(&plugin).context("failed to write the Plugin as YAML")?;
        let separator: String = doc
            .lines()
            .next()
            .filter(|l| l.trim_end() == "---" || l.starts_with("--- "))
            .map(|l| format!("{l}\n"))
            .unwrap_or_default();
        let comments: String = body
            .lines()
            .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        *doc = format!("{separator}{comments}{yaml}");
    }
    if change.is_some() {
        bail!("no Plugin named {id} in the file");
    }
    let out = docs.concat();
    for (i, result) in parse_documents(&out).into_iter().enumerate() {
        result.with_context(|| format!("the edited manifest's document {} is not valid", i + 1))?;
    }
    Ok(out)
}

fn approved_versions(plugin: &Plugin) -> Vec<i32> {
    plugin
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_APPROVED_VERSIONS))
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_default()
}

fn set_approved_versions(plugin: &mut Plugin, mut versions: Vec<i32>) {
    versions.sort_unstable();
    versions.dedup();
    let text = versions.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    plugin.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(ANNOTATION_APPROVED_VERSIONS.into(), text);
}

/// Approve: `spec.approved: true`, and the version is remembered as approved.
pub fn approve_plugin(plugin: &mut Plugin) {
    plugin.spec.approved = true;
    let mut versions = approved_versions(plugin);
    versions.push(plugin.spec.version);
    set_approved_versions(plugin, versions);
}

/// Roll back to version N-1: module path, version and inline code follow; approved only if that
/// version was approved before.
pub fn rollback_plugin(plugin: &mut Plugin, plugins_dir: &Path) -> anyhow::Result<i32> {
    let id = plugin.metadata.name.clone().unwrap_or_default();
    let current = plugin.spec.version;
    let Some(python) = plugin.spec.source.python.as_mut() else {
        bail!("plugin {id} is an MCP server, not a versioned Python module: change its image or command instead");
    };
    let previous = current - 1;
    let module_id = python.module.split('/').next().unwrap_or(&id).to_string();
    let module = format!("{module_id}/v{previous}.py");
    let path = plugins_dir.join(&module);
    if previous < 1 {
        bail!("plugin {id} is at version {current}; there is no earlier version to roll back to");
    }
    if !path.is_file() {
        bail!("plugin {id} has no version before {current}: {} does not exist", path.display());
    }
    if python.code.is_some() {
        python.code =
            Some(std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?);
    }
    python.module = module;
    plugin.spec.version = previous;
    plugin.spec.approved = approved_versions(plugin).contains(&previous);
    Ok(previous)
}

async fn approve(args: ApproveArgs) -> anyhow::Result<()> {
    if args.cluster.cluster {
        let (client, ns) = kube_client(&args.cluster).await?;
        let api: Api<Plugin> = Api::namespaced(client, &ns);
        let mut plugin = api.get(&args.id).await.with_context(|| format!("failed to get Plugin {ns}/{}", args.id))?;
        approve_plugin(&mut plugin);
        let patch = serde_json::json!({
            "metadata": {"annotations": plugin.metadata.annotations},
            "spec": {"approved": true},
        });
        api.patch(&args.id, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("failed to approve Plugin {ns}/{}", args.id))?;
        println!("Approved Plugin {ns}/{} (version {}).", args.id, plugin.spec.version);
        println!(
            "If Argo CD or Flux syncs it from a repository that still says approved: false, approve it there too \
             (`wellbeing plugin approve {} --commit`), or the sync undoes this.",
            args.id
        );
        return Ok(());
    }
    let path = find_manifest(&args.places, &args.id)?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut version = 0;
    let edited = edit_plugin_document(&text, &args.id, |p| {
        approve_plugin(p);
        version = p.spec.version;
        Ok(())
    })?;
    std::fs::write(&path, edited).with_context(|| format!("failed to write {}", path.display()))?;
    println!("Approved {} version {version} in {}.", args.id, path.display());
    if args.commit {
        let repo = repo_root(args.repo.as_deref())?;
        git_commit(&repo, &[&path], &format!("Approve plugin {} v{version}", args.id))?;
    }
    Ok(())
}

fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let path = find_manifest(&args.places, &args.id)?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let mut outcome = (0, false);
    let plugins_dir = args.places.plugins_dir.clone();
    let edited = edit_plugin_document(&text, &args.id, |p| {
        let from = p.spec.version;
        let to = rollback_plugin(p, &plugins_dir)?;
        outcome = (to, p.spec.approved);
        println!("Rolling {} back from version {from} to {to} (v{from}.py stays in place).", args.id);
        Ok(())
    })?;
    std::fs::write(&path, edited).with_context(|| format!("failed to write {}", path.display()))?;
    let (version, approved) = outcome;
    println!("{} now points at version {version}.", path.display());
    if !approved {
        println!("Version {version} was never approved here: `wellbeing plugin approve {}` to run it.", args.id);
    }
    if args.commit {
        let repo = repo_root(args.repo.as_deref())?;
        git_commit(&repo, &[&path], &format!("Roll plugin {} back to v{version}", args.id))?;
    }
    Ok(())
}

/// One row of `plugin list`.
#[derive(Debug, PartialEq)]
struct Row {
    name: String,
    version: i32,
    versions: Vec<i32>,
    approved: bool,
    phase: String,
    tools: Vec<String>,
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let rows = if args.cluster.cluster {
        let (client, ns) = kube_client(&args.cluster).await?;
        let plugins = Api::<Plugin>::namespaced(client, &ns).list(&ListParams::default()).await?.items;
        plugins
            .into_iter()
            .map(|p| {
                let status = p.status.clone().unwrap_or_default();
                Row {
                    name: p.metadata.name.clone().unwrap_or_default(),
                    version: p.spec.version,
                    versions: versions_of(&p, &args.places.plugins_dir),
                    approved: p.spec.approved,
                    phase: format!("{:?}", status.phase),
                    tools: status.tools.iter().map(|t| t.name.clone()).collect(),
                }
            })
            .collect()
    } else {
        let known = known(&args.places, &args.cluster).await?;
        local_rows(known.plugins, &args).await
    };
    print!("{}", render(&rows));
    Ok(())
}

fn versions_of(plugin: &Plugin, plugins_dir: &Path) -> Vec<i32> {
    let id = plugin
        .spec
        .source
        .python
        .as_ref()
        .and_then(|p| p.module.split('/').next().map(str::to_string))
        .or(plugin.metadata.name.clone())
        .unwrap_or_default();
    plugin_gen::versions(&plugins_dir.join(id))
}

/// Phase and tools of local plugins: unapproved ones are not started (as in `wellbeing up`);
/// the others are started over stdio and asked for their tools.
async fn local_rows(plugins: Vec<Plugin>, args: &ListArgs) -> Vec<Row> {
    let runtime = LocalRuntime { python: args.python.clone(), plugins_dir: args.places.plugins_dir.clone() };
    let mut endpoints = Vec::new();
    let mut phases: BTreeMap<String, String> = BTreeMap::new();
    for p in &plugins {
        let name = p.metadata.name.clone().unwrap_or_default();
        match PluginEndpoint::from_plugin(p, Some(&runtime)) {
            Ok(endpoint) if !args.no_tools => endpoints.push(endpoint),
            Ok(_) => {
                phases.insert(name, "Approved".into());
            }
            Err(error) => {
                let phase = match error {
                    _ if !p.spec.approved => "NotApproved".to_string(),
                    // An image-only MCP server runs in the cluster; nothing to start here.
                    PluginError::NoEndpoint { .. } => "ClusterOnly".to_string(),
                    other => format!("Failed: {}", error_chain(&other)),
                };
                phases.insert(name, phase);
            }
        }
    }
    let pool =
        PluginPool::new(endpoints, Arc::new(MemorySink::default()), reqwest::Client::new(), PoolConfig::default());
    let discovered = pool.discover().await;
    let mut tools: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, result) in discovered {
        match result {
            Ok(_) => {
                let names = pool
                    .tools(&name)
                    .await
                    .map(|t| t.into_iter().filter(|t| t.role == ToolRole::Run).map(|t| t.tool).collect())
                    .unwrap_or_default();
                tools.insert(name.clone(), names);
                phases.insert(name, "Ready".into());
            }
            Err(error) => {
                phases.insert(name, format!("Failed: {}", error_chain(&error)));
            }
        }
    }
    pool.shutdown().await;
    plugins
        .into_iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            Row {
                versions: versions_of(&p, &args.places.plugins_dir),
                version: p.spec.version,
                approved: p.spec.approved,
                phase: phases.remove(&name).unwrap_or_default(),
                tools: tools.remove(&name).unwrap_or_default(),
                name,
            }
        })
        .collect()
}

fn render(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "No plugins.\n".into();
    }
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let versions = r.versions.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(",");
            [
                r.name.clone(),
                format!("v{}", r.version),
                if versions.is_empty() { "-".into() } else { versions },
                if r.approved { "yes".into() } else { "no".into() },
                r.phase.clone(),
                if r.tools.is_empty() { "-".into() } else { r.tools.join(",") },
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "FILES", "APPROVED", "PHASE", "TOOLS"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = line.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFESTS: &str =
        "# Two Plugins.\n# kubectl apply -f examples/plugins.yaml\napiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata:
  name: hydration
spec:
  description: Tracks water.
  version: 1
  source:
    python:
      module: hydration/v1.py
  triggers:
    pillars: [hydration]
---
# The second one
apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata:
  name: stretch
  annotations:
    wellbeing.dev/approved-versions: \"1\"
spec:
  description: Stretch breaks.
  version: 2
  approved: false
  source:
    python:
      module: stretch/v2.py
      code: |
        name = 'v2'
";

    fn plugin_named(text: &str, name: &str) -> Plugin {
        parse_documents(text)
            .into_iter()
            .find_map(|r| match r {
                Ok(Resource::Plugin(p)) if p.metadata.name.as_deref() == Some(name) => Some(p),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn approve_edits_only_its_document_and_keeps_comments() {
        let out = edit_plugin_document(MANIFESTS, "stretch", |p| {
            approve_plugin(p);
            Ok(())
        })
        .unwrap();
        assert!(out.starts_with("# Two Plugins.\n# kubectl apply"), "{out}");
        assert!(out.contains("---\n# The second one\n"), "{out}");
        let stretch = plugin_named(&out, "stretch");
        assert!(stretch.spec.approved);
        assert_eq!(stretch.metadata.annotations.unwrap()[ANNOTATION_APPROVED_VERSIONS], "1,2");
        assert_eq!(plugin_named(&out, "hydration"), plugin_named(MANIFESTS, "hydration"), "the other is untouched");
        assert!(edit_plugin_document(MANIFESTS, "missing", |_| Ok(())).unwrap_err().to_string().contains("missing"));
    }

    #[test]
    fn rollback_points_at_the_previous_file_and_its_approval() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("stretch")).unwrap();
        std::fs::write(dir.path().join("stretch/v1.py"), "name = 'v1'\n").unwrap();
        std::fs::write(dir.path().join("stretch/v2.py"), "name = 'v2'\n").unwrap();
        let out = edit_plugin_document(MANIFESTS, "stretch", |p| rollback_plugin(p, dir.path()).map(|_| ())).unwrap();
        let stretch = plugin_named(&out, "stretch");
        assert_eq!(stretch.spec.version, 1);
        let python = stretch.spec.source.python.unwrap();
        assert_eq!(python.module, "stretch/v1.py");
        assert_eq!(python.code.as_deref(), Some("name = 'v1'\n"));
        assert!(stretch.spec.approved, "v1 was approved before");
        assert!(dir.path().join("stretch/v2.py").is_file(), "the newer file is kept");

        // Version 1 has nothing before it.
        let err = edit_plugin_document(&out, "stretch", |p| rollback_plugin(p, dir.path()).map(|_| ())).unwrap_err();
        assert!(err.to_string().contains("no earlier version"), "{err}");
        // A missing file is named.
        let err = edit_plugin_document(MANIFESTS, "hydration", |p| {
            p.spec.version = 3;
            rollback_plugin(p, dir.path()).map(|_| ())
        })
        .unwrap_err();
        assert!(err.to_string().contains("hydration/v2.py"), "{err}");
    }

    #[test]
    fn uncovered_goals_skip_covered_and_already_generated_ones() {
        let goals = parse_documents(
            "apiVersion: wellbeing.dev/v1alpha1\nkind: Goal\nmetadata: {name: water}\nspec: {description: Drink water, pillar: hydration, metric: water, target: {count: 6, per: day}}\n---\n\
             apiVersion: wellbeing.dev/v1alpha1\nkind: Goal\nmetadata: {name: stretch}\nspec: {description: Stretch daily, pillar: physical-activity, metric: exercise, target: {count: 1, per: day}}\n---\n\
             apiVersion: wellbeing.dev/v1alpha1\nkind: Goal\nmetadata: {name: read}\nspec: {description: Read a book, pillar: purpose, metric: checkin, target: {count: 3, per: week}}\n",
        );
        let goals: Vec<Goal> = goals
            .into_iter()
            .filter_map(|r| match r {
                Ok(Resource::Goal(g)) => Some(g),
                _ => None,
            })
            .collect();
        let mut generated = plugin_named(MANIFESTS, "stretch");
        generated.metadata.annotations = Some(BTreeMap::from([(ANNOTATION_FOR.to_string(), "goal/read".to_string())]));
        generated.spec.triggers = Default::default();
        let known = Known { goals, persona: None, plugins: vec![plugin_named(MANIFESTS, "hydration"), generated] };
        let names: Vec<String> = uncovered_goals(&known, false).into_iter().filter_map(|g| g.metadata.name).collect();
        assert_eq!(names, ["stretch"], "water is covered by hydration; read has a generated plugin");
    }

    #[test]
    fn the_table_lines_up() {
        let rows = vec![
            Row {
                name: "hydration".into(),
                version: 1,
                versions: vec![1],
                approved: true,
                phase: "Ready".into(),
                tools: vec!["hydration".into()],
            },
            Row {
                name: "stretch".into(),
                version: 2,
                versions: vec![1, 2],
                approved: false,
                phase: "NotApproved".into(),
                tools: vec![],
            },
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME       VERSION  FILES  APPROVED  PHASE        TOOLS");
        assert_eq!(lines[1], "hydration  v1       v1     yes       Ready        hydration");
        assert_eq!(lines[2], "stretch    v2       v1,v2  no        NotApproved  -");
    }
}
