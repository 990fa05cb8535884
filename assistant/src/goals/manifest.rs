//! A learned pillar's Goal as a manifest file (embedded mode): the YAML is a pure function, the
//! writer only puts it in the manifests folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use wellbeing_crds::{Goal, GoalSpec};

/// Label on Goals the assistant created from a learned pillar.
pub const LEARNED_LABEL: &str = "wellbeing.dev/learned-pillar";

/// The Goal object for a learned pillar, as applied in the cluster or written to a file.
pub fn goal_object(name: &str, namespace: Option<&str>, spec: &GoalSpec) -> Goal {
    let mut goal = Goal::new(name, spec.clone());
    goal.metadata.namespace = namespace.map(str::to_string);
    goal.metadata.labels = Some([(LEARNED_LABEL.to_string(), spec.pillar.clone())].into());
    goal
}

/// The manifest text, with a header saying where it came from and that it may be edited.
pub fn goal_yaml(name: &str, namespace: Option<&str>, spec: &GoalSpec) -> String {
    let body = wellbeing_crds::kubectl_yaml::to_string(&goal_object(name, namespace, spec))
        .expect("a Goal serializes to YAML");
    format!(
        "# Created by the wellbeing assistant when you said \"Yes\" to keeping track of {}.\n\
         # Edit the target as you like; delete this file to stop tracking it.\n{body}",
        spec.pillar
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestWriteError {
    #[error("failed to write goal manifest {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Write the manifest into `dir` as `<name>.yaml`. An existing file is left alone (the user may
/// have edited it) and reported as `Ok(None)`.
pub fn write_goal_manifest(dir: &Path, name: &str, yaml: &str) -> Result<Option<PathBuf>, ManifestWriteError> {
    let path = dir.join(format!("{name}.yaml"));
    let err = |source| ManifestWriteError::Write { path: path.clone(), source };
    // Written to a temporary name first, then linked into place: the manifests watcher never sees
    // a half-written file, and `hard_link` refuses to replace an existing one.
    let tmp = dir.join(format!(".{name}.yaml.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(yaml.as_bytes()).and_then(|()| f.sync_all()).map_err(err)?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::pillars::{default_goal, goal_name};
    use wellbeing_crds::manifest::{Resource, parse_documents};

    #[test]
    fn yaml_round_trips_through_the_manifest_parser() {
        let spec = default_goal("sleep");
        let yaml = goal_yaml(&goal_name("sleep"), Some("wellbeing"), &spec);
        assert!(yaml.starts_with("# Created by the wellbeing assistant"));
        assert!(yaml.contains("apiVersion: wellbeing.dev/v1alpha1"), "{yaml}");
        let docs = parse_documents(&yaml);
        let [Ok(Resource::Goal(goal))] = docs.as_slice() else { panic!("{yaml}") };
        let goal = goal.clone();
        assert_eq!(goal.spec, spec);
        assert_eq!(goal.metadata.name.as_deref(), Some("learned-sleep"));
        assert_eq!(goal.metadata.labels.unwrap()[LEARNED_LABEL], "sleep");
    }

    #[test]
    fn writer_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = goal_yaml("learned-sleep", None, &default_goal("sleep"));
        let path = write_goal_manifest(dir.path(), "learned-sleep", &yaml).unwrap().unwrap();
        std::fs::write(&path, "edited by the user").unwrap();
        assert_eq!(write_goal_manifest(dir.path(), "learned-sleep", &yaml).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "edited by the user");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
        assert!(write_goal_manifest(&dir.path().join("missing"), "x", &yaml).is_err());
    }
}
