//! The manifests folder: every `*.yaml`/`*.yml` file under it, parsed and validated by the crds
//! crate, published as one [`ManifestSet`] snapshot that is replaced whenever a file changes.
//!
//! A bad document never hides the good ones: it is reported with its file, field and reason and
//! left out of the snapshot, and everything else still loads.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt as _;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};
use wellbeing_crds::manifest::{ManifestError, Resource, parse_documents};
use wellbeing_crds::{Goal, Persona, Plugin, SecretRequirement};

/// Namespace given to objects whose manifest names none, as `kubectl apply` would with the
/// default context.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Quiet time after the last file event before the folder is read again: editors write a file in
/// several steps (truncate, write, rename), and one reload per save is enough.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Fallback rescan for file systems where change notifications do not arrive (network mounts,
/// some container volumes). Cheap: the folder holds a handful of small files.
pub const RESCAN_EVERY: Duration = Duration::from_secs(30);

/// Everything the folder holds right now. Goals, plugins and secret requirements are kept for the
/// parts that use them; personas feed the engine's persona registry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManifestSet {
    pub personas: Vec<Persona>,
    pub goals: Vec<Goal>,
    pub plugins: Vec<Plugin>,
    pub secret_requirements: Vec<SecretRequirement>,
    /// Documents that were refused, in file order.
    pub errors: Vec<FileError>,
    /// Manifest files read.
    pub files: usize,
}

impl ManifestSet {
    /// The persona that is routed to: the one active persona. Two active personas are a conflict
    /// (as in the cluster) and neither is used.
    pub fn active_persona(&self) -> Option<&Persona> {
        let mut active = self.personas.iter().filter(|p| p.spec.active);
        match (active.next(), active.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        }
    }
}

/// One refused document, with the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    pub error: ManifestError,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// The folder itself cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("manifests folder {} does not exist (pass --manifests or set WELLBEING_MANIFESTS)", path.display())]
    Missing { path: PathBuf },
    #[error("manifests path {} is not a folder", path.display())]
    NotADirectory { path: PathBuf },
    #[error("failed to read manifests folder {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Read every manifest file under `dir` (recursively; hidden files and folders are skipped, as
/// editors keep their swap files there). A file that cannot be read is reported like a bad
/// document, so one unreadable file does not stop the rest.
pub fn load_dir(dir: &Path) -> Result<ManifestSet, LoadError> {
    let meta = std::fs::metadata(dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing { path: dir.to_path_buf() },
        _ => LoadError::Read { path: dir.to_path_buf(), source },
    })?;
    if !meta.is_dir() {
        return Err(LoadError::NotADirectory { path: dir.to_path_buf() });
    }
    let mut paths = Vec::new();
    collect_files(dir, &mut paths).map_err(|source| LoadError::Read { path: dir.to_path_buf(), source })?;
    paths.sort();
    let files = paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string());
            (path, text)
        })
        .collect();
    Ok(build_set(files))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() || (kind.is_symlink() && path.is_dir()) {
            collect_files(&path, out)?;
        } else if is_manifest_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_manifest_file(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Turn file contents into a snapshot (pure: the tests feed it text directly). Files are taken in
/// the given order; an object whose kind, namespace and name were already seen is refused, so
/// which copy wins never depends on chance.
pub fn build_set(files: Vec<(PathBuf, Result<String, String>)>) -> ManifestSet {
    let mut set = ManifestSet { files: files.len(), ..Default::default() };
    let mut seen: BTreeMap<(&'static str, String, String), PathBuf> = BTreeMap::new();
    for (path, text) in files {
        let text = match text {
            Ok(text) => text,
            Err(reason) => {
                let error =
                    ManifestError { document: 0, field: String::new(), reason: format!("unreadable: {reason}") };
                set.errors.push(FileError { path, error });
                continue;
            }
        };
        for (i, parsed) in parse_documents(&text).into_iter().enumerate() {
            let mut resource = match parsed {
                Ok(resource) => resource,
                Err(error) => {
                    set.errors.push(FileError { path: path.clone(), error });
                    continue;
                }
            };
            let namespace = fill_identity(&mut resource);
            let key = (resource.kind(), namespace.clone(), resource.name());
            if let Some(first) = seen.get(&key) {
                let error = ManifestError {
                    document: i + 1,
                    field: "metadata.name".into(),
                    reason: format!("{} {namespace}/{} is already defined in {}", key.0, key.2, first.display()),
                };
                set.errors.push(FileError { path: path.clone(), error });
                continue;
            }
            seen.insert(key, path.clone());
            match resource {
                Resource::Persona(p) => set.personas.push(p),
                Resource::Goal(g) => set.goals.push(g),
                Resource::Plugin(p) => set.plugins.push(p),
                Resource::SecretRequirement(s) => set.secret_requirements.push(s),
            }
        }
    }
    set
}

/// Give an object what the apiserver would: a namespace (`default`) and a uid. Manifests in a
/// folder have no uid, and the uid seeds the check-in draw (the operator's CronJobs and the
/// assistant's `/internal/checkins` both use it), so it is derived from what identifies the
/// object here: `embedded:<kind>/<namespace>/<name>`. Stable across restarts and edits of the file;
/// a renamed object gets a new one, as a re-created object would in a cluster.
fn fill_identity(resource: &mut Resource) -> String {
    let kind = resource.kind().to_ascii_lowercase();
    let meta = match resource {
        Resource::Persona(r) => &mut r.metadata,
        Resource::Goal(r) => &mut r.metadata,
        Resource::Plugin(r) => &mut r.metadata,
        Resource::SecretRequirement(r) => &mut r.metadata,
    };
    let namespace = meta.namespace.get_or_insert_with(|| DEFAULT_NAMESPACE.to_string()).clone();
    if meta.uid.as_deref().is_none_or(str::is_empty) {
        meta.uid = Some(format!("embedded:{kind}/{namespace}/{}", meta.name.as_deref().unwrap_or_default()));
    }
    namespace
}

/// Live view of the folder. `subscribe()` hands out receivers that always hold the newest
/// snapshot; a task reloads on change notifications (debounced) and on a periodic rescan.
pub struct ManifestWatcher {
    rx: watch::Receiver<Arc<ManifestSet>>,
}

impl ManifestWatcher {
    /// Load the folder once (an unusable folder is an error for the caller to report), then keep
    /// watching it until `cancel` fires: through file notifications when `notifications` is set
    /// (and the platform has them), and by rescanning every `rescan_every` in any case.
    pub fn start(
        dir: PathBuf,
        rescan_every: Duration,
        notifications: bool,
        cancel: CancellationToken,
    ) -> Result<Self, LoadError> {
        let first = load_dir(&dir)?;
        report(&first, None);
        let (tx, rx) = watch::channel(Arc::new(first));
        // Watch before returning, so a change made right after start-up is not missed.
        let (events_tx, events) = mpsc::unbounded_channel::<()>();
        let watcher = match notifications.then(|| notify_watcher(&dir, events_tx)) {
            None => None,
            Some(Ok(w)) => Some(w),
            Some(Err(e)) => {
                warn!(error = %e, every_s = rescan_every.as_secs(), "file notifications unavailable; rescanning periodically");
                None
            }
        };
        tokio::spawn(watch_loop(dir, rescan_every, tx, events, watcher, cancel));
        Ok(ManifestWatcher { rx })
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<ManifestSet>> {
        self.rx.clone()
    }

    pub fn current(&self) -> Arc<ManifestSet> {
        self.rx.borrow().clone()
    }
}

#[instrument(name = "manifests", skip_all, fields(dir = %dir.display()))]
async fn watch_loop(
    dir: PathBuf,
    rescan_every: Duration,
    tx: watch::Sender<Arc<ManifestSet>>,
    mut events: mpsc::UnboundedReceiver<()>,
    // Held for the life of the loop: dropping the watcher stops the notifications.
    _watcher: Option<notify::RecommendedWatcher>,
    cancel: CancellationToken,
) {
    let mut rescan = tokio::time::interval(rescan_every);
    rescan.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = rescan.tick() => {}
            Some(()) = events.recv() => {
                // Debounce: wait until the folder has been quiet for a moment.
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        more = tokio::time::timeout(DEBOUNCE, events.recv()) => match more {
                            Ok(Some(())) => continue,
                            _ => break,
                        },
                    }
                }
            }
        }
        let dir2 = dir.clone();
        let loaded = tokio::task::spawn_blocking(move || load_dir(&dir2)).await;
        match loaded {
            Ok(Ok(set)) => {
                let old = tx.borrow().clone();
                if *old != set {
                    report(&set, Some(&old));
                    tx.send_replace(Arc::new(set));
                }
            }
            // The folder vanished or became unreadable: keep serving the last good snapshot
            // rather than dropping every persona and goal at once.
            Ok(Err(e)) => warn!(error = %e, "failed to reload manifests; keeping the previous ones"),
            Err(e) => warn!(error = %e, "manifest reload task failed"),
        }
    }
}

fn notify_watcher(dir: &Path, events: mpsc::UnboundedSender<()>) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res
            && !event.kind.is_access()
        {
            let _ = events.send(());
        }
    })?;
    watcher.watch(dir, notify::RecursiveMode::Recursive)?;
    Ok(watcher)
}

/// Log what a (re)load found. Errors are logged when they are new, so the periodic rescan does not
/// repeat the same complaint every 30 seconds.
fn report(set: &ManifestSet, previous: Option<&ManifestSet>) {
    for e in &set.errors {
        if previous.is_none_or(|p| !p.errors.contains(e)) {
            warn!(
                path = %e.path.display(),
                document = e.error.document,
                field = %e.error.field,
                reason = %e.error.reason,
                "invalid manifest skipped"
            );
        }
    }
    let active = set.active_persona().map(|p| p.name_any());
    info!(
        files = set.files,
        personas = set.personas.len(),
        goals = set.goals.len(),
        plugins = set.plugins.len(),
        secret_requirements = set.secret_requirements.len(),
        invalid = set.errors.len(),
        active_persona = active.as_deref().unwrap_or("(built-in default)"),
        "manifests loaded"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn persona_yaml(name: &str, active: bool) -> String {
        format!(
            r#"apiVersion: wellbeing.dev/v1alpha1
kind: Persona
metadata: {{name: {name}}}
spec:
  displayName: Sunny
  active: {active}
  checkIns:
    timeZone: Europe/Berlin
    windows: [{{start: "09:00", end: "21:00"}}]
"#
        )
    }

    const GOAL: &str = r#"apiVersion: wellbeing.dev/v1alpha1
kind: Goal
metadata: {name: workouts, namespace: home}
spec:
  description: Work out 3 times a week
  pillar: physical-activity
  metric: exercise
  target: {count: 3, per: week}
"#;

    fn file(path: &str, text: &str) -> (PathBuf, Result<String, String>) {
        (PathBuf::from(path), Ok(text.to_string()))
    }

    #[test]
    fn bad_documents_are_reported_with_path_field_and_reason_and_the_rest_loads() {
        let bad = persona_yaml("broken", true).replace("Europe/Berlin", "Mars/Olympus");
        let set = build_set(vec![
            file("m/a.yaml", &format!("{}---\n{GOAL}", persona_yaml("coach", true))),
            file("m/b.yaml", &bad),
            (PathBuf::from("m/c.yaml"), Err("permission denied".into())),
        ]);
        assert_eq!(set.files, 3);
        assert_eq!(set.personas.len(), 1);
        assert_eq!(set.goals.len(), 1);
        assert_eq!(set.errors.len(), 2);
        assert_eq!(set.errors[0].path, PathBuf::from("m/b.yaml"));
        assert_eq!(set.errors[0].error.field, "spec.checkIns.timeZone");
        let line = set.errors[0].to_string();
        assert!(line.starts_with("m/b.yaml: document 1, field spec.checkIns.timeZone:"), "{line}");
        assert!(set.errors[1].error.reason.contains("permission denied"));
    }

    #[test]
    fn namespace_defaults_and_duplicates_are_refused_in_file_order() {
        let set = build_set(vec![
            file("a.yaml", &persona_yaml("coach", true)),
            file("b.yaml", &persona_yaml("coach", false)),
            file("c.yaml", GOAL),
        ]);
        assert_eq!(set.personas.len(), 1);
        assert!(set.personas[0].spec.active, "the first file wins");
        assert_eq!(set.personas[0].metadata.namespace.as_deref(), Some(DEFAULT_NAMESPACE));
        assert_eq!(set.goals[0].metadata.namespace.as_deref(), Some("home"));
        assert_eq!(set.personas[0].metadata.uid.as_deref(), Some("embedded:persona/default/coach"));
        assert_eq!(set.goals[0].metadata.uid.as_deref(), Some("embedded:goal/home/workouts"));
        assert_eq!(set.errors.len(), 1);
        assert!(set.errors[0].error.reason.contains("already defined in a.yaml"), "{}", set.errors[0]);
    }

    #[test]
    fn two_active_personas_route_to_neither() {
        let one = build_set(vec![file("a.yaml", &persona_yaml("a", true)), file("b.yaml", &persona_yaml("b", false))]);
        assert_eq!(one.active_persona().map(|p| p.name_any()).as_deref(), Some("a"));
        let two = build_set(vec![file("a.yaml", &persona_yaml("a", true)), file("b.yaml", &persona_yaml("b", true))]);
        assert!(two.active_persona().is_none());
    }

    #[test]
    fn load_dir_reads_nested_yaml_and_skips_hidden_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("goals")).unwrap();
        std::fs::write(dir.path().join("persona.yaml"), persona_yaml("coach", true)).unwrap();
        std::fs::write(dir.path().join("goals/workouts.yml"), GOAL).unwrap();
        std::fs::write(dir.path().join(".persona.yaml.swp"), "garbage").unwrap();
        std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
        let set = load_dir(dir.path()).unwrap();
        assert_eq!((set.files, set.personas.len(), set.goals.len(), set.errors.len()), (2, 1, 1, 0));

        let missing = load_dir(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, LoadError::Missing { .. }), "{missing}");
        assert!(missing.to_string().contains("nope"));
        let not_dir = load_dir(&dir.path().join("persona.yaml")).unwrap_err();
        assert!(matches!(not_dir, LoadError::NotADirectory { .. }));
    }

    #[tokio::test]
    async fn an_edited_or_added_file_takes_effect_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("persona.yaml"), persona_yaml("coach", true)).unwrap();
        let cancel = CancellationToken::new();
        // A long rescan interval: the change must arrive through file notifications.
        let watcher =
            ManifestWatcher::start(dir.path().to_path_buf(), Duration::from_secs(3600), true, cancel.clone()).unwrap();
        let mut rx = watcher.subscribe();
        assert_eq!(watcher.current().personas[0].spec.display_name, "Sunny");

        std::fs::write(dir.path().join("persona.yaml"), persona_yaml("coach", true).replace("Sunny", "Moon")).unwrap();
        std::fs::write(dir.path().join("goal.yaml"), GOAL).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let snapshot = rx.borrow_and_update().clone();
            if snapshot.personas[0].spec.display_name == "Moon" && snapshot.goals.len() == 1 {
                break;
            }
            tokio::time::timeout_at(deadline, rx.changed()).await.expect("reloaded in time").unwrap();
        }
        cancel.cancel();
    }

    #[tokio::test]
    async fn periodic_rescan_picks_up_changes_when_notifications_are_missed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("persona.yaml"), persona_yaml("coach", true)).unwrap();
        let cancel = CancellationToken::new();
        let watcher =
            ManifestWatcher::start(dir.path().to_path_buf(), Duration::from_millis(200), false, cancel.clone())
                .unwrap();
        let mut rx = watcher.subscribe();
        std::fs::write(dir.path().join("goal.yaml"), GOAL).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while rx.borrow_and_update().goals.is_empty() {
                rx.changed().await.unwrap();
            }
        })
        .await
        .expect("rescanned in time");
        cancel.cancel();
    }
}
