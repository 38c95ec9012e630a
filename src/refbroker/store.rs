//! The durable engine: the reference broker state behind a lock, loaded from
//! the state file (or a seed) and written back by atomic replace after every
//! mutation. The HTTP server and the embedded broker share it. A state file
//! of the previous format (1, before broker identities) is upgraded when
//! opened and written back at once, so the identity minted for it stays.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::atomic_file;
use crate::contract::problem::{self, Problem, codes};
use crate::contract::wire::Snapshot;

use super::engine::{self, Engine};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} is not a valid {what}: {message}")]
    Invalid {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads a state file written by `atomic_file::write`, upgraded to the
/// current format in memory.
pub fn load_state(path: &Path) -> Result<Engine, StoreError> {
    load_upgraded(path).map(|(engine, _)| engine)
}

/// The state file and whether it had to be upgraded.
fn load_upgraded(path: &Path) -> Result<(Engine, bool), StoreError> {
    const WHAT: &str = "broker state file";
    let mut engine: Engine = read_json(path, WHAT)?;
    let upgraded = engine
        .upgrade_format()
        .map_err(|m| invalid(path, WHAT, m))?;
    Ok((engine, upgraded))
}

/// Reads a seed file (the `GET /v1/snapshot` format).
pub fn load_seed(path: &Path) -> Result<Engine, StoreError> {
    const WHAT: &str = "broker seed (snapshot) file";
    let snapshot: Snapshot = read_json(path, WHAT)?;
    Engine::from_snapshot(snapshot).map_err(|p| invalid(path, WHAT, p.detail.unwrap_or(p.title)))
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(|source| StoreError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(path, what, e.to_string()))
}

fn invalid(path: &Path, what: &'static str, message: String) -> StoreError {
    StoreError::Invalid {
        path: path.to_owned(),
        what,
        message,
    }
}

/// The engine with its state file. Reads share a read lock; a mutation takes
/// the write lock, and when it changed anything (the event sequence moved)
/// the state is on disk before the caller gets its answer. Writes are group
/// commits: the writer encodes the state as it is when its turn comes, which
/// covers every mutation made meanwhile, and those callers then find their
/// change already on disk and skip their own write.
#[derive(Debug)]
pub struct Store {
    engine: RwLock<Engine>,
    path: PathBuf,
    /// Event sequence of the state last written to `path`.
    written: Mutex<u64>,
}

impl Store {
    /// Loads `path` when it exists, else builds the state from `seed`, else
    /// starts empty; a new (or upgraded) state is written at once so the
    /// file exists and keeps the identity minted for it.
    pub fn open(path: &Path, seed: Option<&Path>) -> Result<Arc<Store>, StoreError> {
        let (engine, fresh) = match (path.exists(), seed) {
            (true, _) => load_upgraded(path)?,
            (false, Some(seed)) => (load_seed(seed)?, true),
            (false, None) => (Engine::new(), true),
        };
        let seq = engine.seq();
        if fresh {
            atomic_file::write(path, &encode(&engine)).map_err(|source| StoreError::Write {
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(Arc::new(Store {
            engine: RwLock::new(engine),
            path: path.to_owned(),
            written: Mutex::new(seq),
        }))
    }

    /// Runs a read-only operation; callers serialise answers inside `f` so
    /// that no state is cloned beyond what the answer holds.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        let engine = self.engine.read().unwrap_or_else(|e| e.into_inner());
        f(&engine)
    }

    /// Runs a mutation at the current time and persists its effect. A
    /// failed operation that still changed state (a partial removal) is
    /// persisted too.
    pub async fn mutate<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Engine) -> engine::Result<T>,
    ) -> engine::Result<T> {
        let (result, changed) = {
            let mut engine = self.engine.write().unwrap_or_else(|e| e.into_inner());
            engine.set_clock(now_ms());
            let before = engine.seq();
            let result = f(&mut engine);
            let seq = engine.seq();
            (result, (seq != before).then_some(seq))
        };
        if let Some(seq) = changed {
            let store = Arc::clone(self);
            let written = tokio::task::spawn_blocking(move || store.persist(seq)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(path = %self.path.display(), error = %e, "cannot persist broker state");
                    return Err(storage_problem());
                }
                Err(e) => {
                    tracing::error!(error = %e, "persist task failed");
                    return Err(storage_problem());
                }
            }
        }
        result
    }

    /// Makes sure the state up to event `seq` is on disk.
    fn persist(&self, seq: u64) -> io::Result<()> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if *written >= seq {
            return Ok(());
        }
        let (current, bytes) = self.read(|e| (e.seq(), encode(e)));
        atomic_file::write(&self.path, &bytes)?;
        *written = current;
        Ok(())
    }
}

fn storage_problem() -> Box<Problem> {
    problem::new(
        503,
        codes::UNAVAILABLE,
        "the broker could not persist its state; the change may be lost on restart",
    )
}

fn encode(engine: &Engine) -> Vec<u8> {
    serde_json::to_vec(engine).expect("engine state serialises to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Expect;
    use crate::contract::wire::PoolBody;

    /// A new state file at `path` holding pool `live`.
    async fn with_a_pool(path: &Path) {
        let store = Store::open(path, None).unwrap();
        store
            .mutate(|e| e.put_pool("live", PoolBody::default(), Expect::Any))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn mutations_are_persisted_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        with_a_pool(&path).await;
        let reloaded = Store::open(&path, None).unwrap();
        assert!(reloaded.read(|e| e.pool("live").is_some()));
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file stays behind");
    }

    #[test]
    fn a_bad_state_file_is_an_error_not_an_empty_broker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{\"format\": 1, \"pools\": ").unwrap();
        assert!(matches!(
            Store::open(&path, None),
            Err(StoreError::Invalid { .. })
        ));
        let mut newer = serde_json::to_value(Engine::new()).unwrap();
        newer["format"] = 3.into();
        fs::write(&path, serde_json::to_vec(&newer).unwrap()).unwrap();
        let err = Store::open(&path, None).unwrap_err().to_string();
        assert!(err.contains("format 3 is not the supported 2"), "{err}");
    }

    #[tokio::test]
    async fn a_format_1_state_is_upgraded_once_with_an_identity_that_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        with_a_pool(&path).await;
        let mut old: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        old["format"] = 1.into();
        old.as_object_mut().unwrap().remove("id");
        fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        let upgraded = Store::open(&path, None).unwrap();
        let id = upgraded.read(|e| e.id().to_owned());
        assert_eq!(id.len(), 32);
        assert!(upgraded.read(|e| e.pool("live").is_some()));
        let again = Store::open(&path, None).unwrap();
        assert_eq!(again.read(|e| e.id().to_owned()), id);
    }

    #[test]
    fn every_new_state_mints_its_own_identity() {
        let dir = tempfile::tempdir().unwrap();
        let seed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/maintenance/broker-seed.json");
        let open = |name: &str, seed: Option<&Path>| {
            let store = Store::open(&dir.path().join(name), seed).unwrap();
            store.read(|e| e.id().to_owned())
        };
        let (a, b) = (open("a.json", Some(&seed)), open("b.json", Some(&seed)));
        let empty = open("c.json", None);
        assert!(a != b && a != empty && b != empty);
        assert_eq!(open("a.json", Some(&seed)), a, "reopening keeps it");
    }

    #[test]
    fn the_example_seed_is_the_runbook_starting_point() {
        let seed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/maintenance/broker-seed.json");
        let engine = load_seed(&seed).unwrap();
        let live = engine.pool("live").unwrap();
        assert!(live.load_balancing.enabled);
        assert_eq!(live.members, vec!["rds-01", "rds-02", "rds-03"]);
        let maint = engine.pool("maintenance").unwrap();
        assert!(maint.default_credentials.password_set);
        assert_eq!(
            maint.default_credentials.username.as_deref(),
            Some("CORP\\svc-maint")
        );
        for name in ["rds-01", "rds-02", "rds-03"] {
            let d = engine.destination(name).unwrap();
            assert!(d.online && d.process_execution_ready && d.lb_service_installed);
            assert!(d.sessions.active >= 2, "{name} has users to drain");
        }
        let instance = engine.app_instance("admin-maintenance").unwrap();
        assert_eq!(instance.destination.as_deref(), Some("rds-02"));
    }

    #[test]
    fn the_seed_is_used_only_when_there_is_no_state() {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed.json");
        fs::write(
            &seed,
            br#"{"destinations": [{"name": "rds-01", "online": true,
            "process_execution_ready": true, "lb_service_installed": false, "revision": 3}]}"#,
        )
        .unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path, Some(&seed)).unwrap();
        assert!(store.read(|e| e.destination("rds-01").is_some()));
        fs::write(&seed, b"{}").unwrap();
        let again = Store::open(&path, Some(&seed)).unwrap();
        assert!(again.read(|e| e.destination("rds-01").is_some()));
    }
}
