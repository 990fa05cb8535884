//! Local file store for the embedded mode: `secrets.json` in the data directory, mode 0600,
//! replaced atomically on every write so a crash leaves either the old or the new file.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::Mutex,
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{Presence, SecretStore, SecretValue, StoreError, validate_secret_id};

const STORE: &str = "local";

/// File name inside the data directory.
pub const FILE_NAME: &str = "secrets.json";
/// Lock file serialising writers across processes (`wellbeing up` and `wellbeing secrets resolve`
/// may run at once). A separate file, because the data file is replaced by rename on every write.
const LOCK_NAME: &str = ".secrets.lock";

/// On-disk shape. `version` lets a later format be told apart from this one.
#[derive(Serialize, Deserialize, Default)]
struct SecretsFile {
    version: u32,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// `secrets.json` in one directory.
pub struct LocalStore {
    dir: PathBuf,
    // Serialises writers inside this process; the lock file does it across processes.
    write_lock: Mutex<()>,
}

impl LocalStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalStore { dir: dir.into(), write_lock: Mutex::new(()) }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The value of one secret, for the embedded plugin host, which hands it to a plugin process
    /// as an environment variable. The operator and the trait never read values.
    pub fn value(&self, secret_id: &str) -> Result<Option<SecretValue>, StoreError> {
        validate_secret_id(secret_id)?;
        let file = read_file(&self.path())?;
        Ok(file.secrets.get(secret_id).filter(|v| !v.is_empty()).map(|v| SecretValue::new(v.clone())))
    }

    fn put_sync(&self, secret_id: &str, value: &SecretValue) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        create_private_dir(&self.dir)?;
        let lock_path = self.dir.join(LOCK_NAME);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| StoreError::Io { action: "open", path: lock_path.clone(), source })?;
        lock.lock().map_err(|source| StoreError::Io { action: "lock", path: lock_path, source })?;
        // Read under the lock: a corrupt file stops the write here, so nothing in it is lost.
        let path = self.path();
        let mut file = read_file(&path)?;
        file.version = 1;
        file.secrets.insert(secret_id.to_string(), value.expose().to_string());
        write_atomically(&self.dir, &path, &file)
        // The lock is released when `lock` is dropped.
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|source| StoreError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Read and parse the file; a missing file is an empty store.
fn read_file(path: &Path) -> Result<SecretsFile, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SecretsFile::default()),
        Err(source) => return Err(StoreError::Io { action: "read", path: path.to_path_buf(), source }),
    };
    let mode = fs::metadata(path)
        .map_err(|source| StoreError::Io { action: "stat", path: path.to_path_buf(), source })?
        .permissions()
        .mode();
    // Like ssh with a private key: a file others can read is refused rather than used, so the
    // mistake is noticed and fixed instead of silently persisting.
    if mode & 0o077 != 0 {
        return Err(StoreError::InsecurePermissions { path: path.to_path_buf(), mode: mode & 0o777 });
    }
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt { path: path.to_path_buf(), source })
}

/// Write to a temporary file (0600) beside the target, fsync it, rename it over the target and
/// fsync the directory, so the rename itself survives a power loss.
fn write_atomically(dir: &Path, path: &Path, file: &SecretsFile) -> Result<(), StoreError> {
    let tmp = dir.join(format!(".{FILE_NAME}.tmp-{}", std::process::id()));
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| StoreError::Io { action, path: p, source }
    };
    let json = serde_json::to_vec_pretty(file).expect("a map of strings serializes");
    let result = (|| {
        let mut out = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        // `mode` applies only when the file is created; a leftover temporary file from a crash
        // may carry other bits.
        out.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io("chmod", &tmp))?;
        out.write_all(&json).map_err(io("write", &tmp))?;
        out.sync_all().map_err(io("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io("replace", path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync directory", dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[async_trait]
impl SecretStore for LocalStore {
    fn kind(&self) -> &'static str {
        STORE
    }

    #[instrument(skip(self), fields(store = STORE))]
    async fn presence(&self, secret_id: &str) -> Result<Presence, StoreError> {
        // A few hundred bytes read from local disk: not worth a blocking-pool hop.
        Ok(if self.value(secret_id)?.is_some() { Presence::Present } else { Presence::Missing })
    }

    #[instrument(skip(self, value), fields(store = STORE))]
    async fn put(&self, secret_id: &str, value: &SecretValue) -> Result<(), StoreError> {
        validate_secret_id(secret_id)?;
        if value.is_empty() {
            return Err(StoreError::EmptyValue { secret_id: secret_id.to_string() });
        }
        self.put_sync(secret_id, value)?;
        tracing::info!(secret_id, "stored secret");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_then_presence_with_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("data"));
        assert_eq!(store.presence("openweather-api-key").await.unwrap(), Presence::Missing);
        store.put("openweather-api-key", &SecretValue::new("abc")).await.unwrap();
        store.put("other", &SecretValue::new("def")).await.unwrap();
        store.put("openweather-api-key", &SecretValue::new("new")).await.unwrap();
        assert_eq!(store.presence("openweather-api-key").await.unwrap(), Presence::Present);
        assert_eq!(store.presence("third").await.unwrap(), Presence::Missing);
        assert_eq!(store.value("openweather-api-key").unwrap().unwrap().expose(), "new");
        assert_eq!(store.value("other").unwrap().unwrap().expose(), "def");

        let meta = fs::metadata(store.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path().join("data")).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[tokio::test]
    async fn corrupt_file_is_named_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let garbage = b"{\"version\": 1, \"secrets\": {\"kept\": \"x\"";
        fs::write(store.path(), garbage).unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o600)).unwrap();
        let err = store.put("new", &SecretValue::new("v")).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        assert!(err.to_string().contains(&store.path().display().to_string()), "{err}");
        assert_eq!(fs::read(store.path()).unwrap(), garbage);
        assert!(matches!(store.presence("kept").await, Err(StoreError::Corrupt { .. })));
    }

    #[tokio::test]
    async fn group_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.put("a", &SecretValue::new("v")).await.unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = store.presence("a").await.unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(matches!(err, StoreError::InsecurePermissions { mode: 0o644, .. }));
    }

    #[tokio::test]
    async fn empty_values_and_bad_ids_are_refused_before_touching_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("never"));
        assert!(matches!(store.put("a", &SecretValue::new("")).await, Err(StoreError::EmptyValue { .. })));
        assert!(matches!(store.put("../a", &SecretValue::new("v")).await, Err(StoreError::InvalidId { .. })));
        assert!(!dir.path().join("never").exists());
    }

    #[tokio::test]
    async fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(LocalStore::new(dir.path()));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.put_sync(&format!("s{i}"), &SecretValue::new("v")))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        for i in 0..16 {
            assert_eq!(store.presence(&format!("s{i}")).await.unwrap(), Presence::Present);
        }
    }
}
