//! The instance file: how `wellbeing chat`, `checkins`, `export` and `forget` find a running
//! `wellbeing up` that uses the same data dir, and the lock that keeps a data dir to one writer.
//!
//! `up` holds an exclusive lock on `instance.lock` for its whole life and writes `instance.json`
//! (URL and API token, mode 0600) once it listens. The lock, not the JSON file, says whether an
//! instance runs: a crash releases the lock but may leave a stale JSON file behind.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const INSTANCE_FILE: &str = "instance.json";
pub const LOCK_FILE: &str = "instance.lock";

/// What a running instance tells the other subcommands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Base URL of the local page and API, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Bearer token for `/api/local/...`.
    pub token: String,
    pub pid: u32,
    pub started_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("another `wellbeing up` is already running with data dir {}{}", dir.display(), url.as_ref().map(|u| format!(" at {u}")).unwrap_or_default())]
    AlreadyRunning { dir: PathBuf, url: Option<String> },
    #[error("failed to {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstanceError {
    let path = path.to_path_buf();
    move |source| InstanceError::Io { action, path, source }
}

/// Create the data dir readable only by its owner (it holds wellbeing data and secrets).
pub fn create_data_dir(dir: &Path) -> Result<(), InstanceError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io("create data dir", dir))
}

/// The data dir's writer lock, held by `up` (and briefly by commands that write to the database
/// directly). Released when dropped; the instance file is removed with it.
#[derive(Debug)]
pub struct InstanceLock {
    dir: PathBuf,
    _file: File,
    wrote_instance: bool,
}

/// Take the data dir's lock, or say who holds it.
pub fn acquire(dir: &Path) -> Result<InstanceLock, InstanceError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io("open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(InstanceLock { dir: dir.to_path_buf(), _file: file, wrote_instance: false }),
        Err(fs::TryLockError::WouldBlock) => {
            let url = read(dir).ok().flatten().map(|i| i.url);
            Err(InstanceError::AlreadyRunning { dir: dir.to_path_buf(), url })
        }
        Err(fs::TryLockError::Error(source)) => Err(InstanceError::Io { action: "lock", path, source }),
    }
}

/// Whether some process holds the data dir's lock right now.
pub fn is_locked(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else { return false };
    matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
}

impl InstanceLock {
    /// Publish the instance: written to a temporary file and renamed, so a reader never sees half
    /// a file; mode 0600 because the token grants access to the user's data.
    pub fn write_instance(&mut self, instance: &Instance) -> Result<(), InstanceError> {
        let path = self.dir.join(INSTANCE_FILE);
        let tmp = self.dir.join(format!(".{INSTANCE_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(instance).expect("instance serializes");
        let mut out = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        out.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io("chmod", &tmp))?;
        out.write_all(&json).map_err(io("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("replace", &path))?;
        self.wrote_instance = true;
        Ok(())
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        if self.wrote_instance {
            let _ = fs::remove_file(self.dir.join(INSTANCE_FILE));
        }
    }
}

/// The instance file, if there is one. It may be stale (left by a crash): check [`is_locked`] or
/// simply try the URL.
pub fn read(dir: &Path) -> Result<Option<Instance>, InstanceError> {
    let path = dir.join(INSTANCE_FILE);
    match fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstanceError::Io { action: "read", path, source }),
    }
}

/// A fresh random API token: 32 bytes from the OS-seeded generator, hex encoded.
pub fn generate_token() -> String {
    wellbeing_common::id::new_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> Instance {
        Instance { url: "http://127.0.0.1:1".into(), token: generate_token(), pid: 1, started_at: "now".into() }
    }

    #[test]
    fn one_writer_per_data_dir_and_the_file_goes_with_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut lock = acquire(dir.path()).unwrap();
        assert!(is_locked(dir.path()));
        lock.write_instance(&instance()).unwrap();
        let mode = fs::metadata(dir.path().join(INSTANCE_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let err = acquire(dir.path()).unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        assert!(err.to_string().contains("http://127.0.0.1:1"), "{err}");

        assert_eq!(read(dir.path()).unwrap().unwrap().url, "http://127.0.0.1:1");
        drop(lock);
        assert!(!is_locked(dir.path()));
        assert!(read(dir.path()).unwrap().is_none());
        acquire(dir.path()).unwrap();
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (generate_token(), generate_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
