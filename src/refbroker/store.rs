//! The durable engine: the reference broker state behind a lock, loaded from
//! the state file (or a seed), owner-readable only. Each group commit appends
//! a record of what it changed to the state file and syncs it; once the
//! records are as large as the state, the whole state is written back by
//! atomic replace, which is also what happens on open when there are any. The HTTP server and the embedded broker
//! share it. One process at a time holds a state file: an OS lock on a lock
//! file beside it, taken on open and held until the store is dropped. A
//! mutation that cannot be written is rolled back before it is answered, so
//! what a caller was told is done is on disk and nothing else ever is. A state
//! file of the previous format (1, before broker identities) is upgraded when
//! opened and written back at once, so the identity minted for it stays.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::atomic_file::{self, Access};
use crate::contract::problem::{self, Problem, codes};
use crate::contract::wire::Snapshot;

use super::engine::{self, Delta, Engine};
use super::wal::{self, Log};

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
    #[error(
        "{path} is in use by {holder} (it holds {lock}); one process at a time may serve or apply to a state file",
        holder = holder.map_or("another process".to_owned(), |pid| format!("process {pid}"))
    )]
    Locked {
        path: PathBuf,
        lock: PathBuf,
        /// The holder's pid as it wrote it into the lock file; none when
        /// the holder has not written it yet.
        holder: Option<u32>,
    },
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads a state file (the state written by `atomic_file::write` and the
/// records appended since), upgraded to the current format in memory.
pub fn load_state(path: &Path) -> Result<Engine, StoreError> {
    load_upgraded(path).map(|(engine, _)| engine)
}

/// The state file with its records applied, and whether it has to be
/// written whole (upgraded, or records to fold in).
fn load_upgraded(path: &Path) -> Result<(Engine, bool), StoreError> {
    const WHAT: &str = "broker state file";
    let bytes = fs::read(path).map_err(|source| StoreError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (state, records) =
        wal::split(&bytes, path).map_err(|e| invalid(path, WHAT, e.to_string()))?;
    let (mut engine, upgraded) = Engine::from_state(state).map_err(|m| invalid(path, WHAT, m))?;
    let replayed = !records.is_empty();
    for record in records {
        engine.apply_delta(record);
    }
    engine.forget_changes();
    Ok((engine, upgraded || replayed))
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

fn write_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Write { path, source }
}

/// The exclusive hold on a state file: an OS lock (flock) on `STATE.lock`,
/// which the OS releases when the holder exits, however it exits. The lock
/// file stays; it holds the pid of the last holder, for the message a second
/// process gets.
#[derive(Debug)]
struct StateLock {
    _file: File,
}

impl StateLock {
    fn take(state: &Path) -> Result<StateLock, StoreError> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let lock = PathBuf::from(name);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&lock).map_err(write_error(&lock))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)
                    .and_then(|()| write!(file, "{}", std::process::id()))
                    .and_then(|()| file.flush())
                    .map_err(write_error(&lock))?;
                Ok(StateLock { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                Err(StoreError::Locked {
                    path: state.to_owned(),
                    lock,
                    holder,
                })
            }
            Err(TryLockError::Error(source)) => Err(StoreError::Write { path: lock, source }),
        }
    }
}

/// What became of a mutation: written to disk with the state that covered
/// it, or undone because that write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Durable,
    RolledBack,
}

/// The engine with its state file. Reads share a read lock; a mutation takes
/// the write lock, and when it changed anything (the event sequence moved)
/// waits for its fate before the caller gets an answer. Writes are group
/// commits: a writer takes what changed as it is when its turn comes, which
/// covers every mutation pending at that moment, and decides all their
/// fates at once. When the write fails, the engine goes back to the state
/// last made durable, and every mutation made since (those the write covered
/// and any made while it ran) fails with it: none is answered as done, and
/// none can be found by a retry that would then be answered "already done".
#[derive(Debug)]
pub struct Store {
    engine: RwLock<Engine>,
    path: PathBuf,
    /// Mutations made in memory that no write has covered yet.
    pending: Mutex<Vec<Arc<OnceLock<Fate>>>>,
    /// What is on disk; its lock also lets one writer at a time run.
    durable: Mutex<Durable>,
    _lock: StateLock,
}

/// The state as the state file holds it: what a failed write rolls back to.
#[derive(Debug)]
struct Durable {
    engine: Engine,
    /// The records appended after the state written whole.
    log: Log,
    /// The size of the state last written whole: it is written whole again
    /// once the records after it are as large (and at least [`FOLD_AT`]),
    /// so that rewriting the state costs at most as much as the appends
    /// before it.
    state_len: u64,
    /// Set when an append failed: the file may end in a torn record, after
    /// which nothing may be appended, so the next write is of the whole
    /// state.
    must_fold: bool,
}

/// The least size of the records at which the state is written whole.
const FOLD_AT: u64 = 1 << 20;

impl Store {
    /// Takes the state file's lock, removes temporaries a killed writer left,
    /// then loads `path` (with the writes its log holds) when it exists, else
    /// builds the state from `seed`, else starts empty; the state is then
    /// written whole (when new, upgraded or logged to) and the log emptied,
    /// so the file exists and keeps the identity minted for it.
    pub fn open(path: &Path, seed: Option<&Path>) -> Result<Arc<Store>, StoreError> {
        let lock = StateLock::take(path)?;
        let removed = atomic_file::remove_leftovers(path).map_err(write_error(path))?;
        if removed > 0 {
            tracing::info!(path = %path.display(), removed, "removed temporary files of an interrupted write");
        }
        let (mut engine, rewrite) = match (path.exists(), seed) {
            (true, _) => load_upgraded(path)?,
            (false, Some(seed)) => (load_seed(seed)?, true),
            (false, None) => (Engine::new(), true),
        };
        engine.forget_changes();
        let bytes = encode(&engine);
        if rewrite {
            atomic_file::replace(path, &bytes, Access::Owner).map_err(write_error(path))?;
        } else {
            owner_only(path).map_err(write_error(path))?;
        }
        let log = Log::after_state(path);
        Ok(Arc::new(Store {
            durable: Mutex::new(Durable {
                engine: engine.clone(),
                log,
                state_len: bytes.len() as u64,
                must_fold: false,
            }),
            engine: RwLock::new(engine),
            path: path.to_owned(),
            pending: Mutex::new(Vec::new()),
            _lock: lock,
        }))
    }

    /// Runs a read-only operation; callers serialise answers inside `f` so
    /// that no state is cloned beyond what the answer holds.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        let engine = self.engine.read().unwrap_or_else(|e| e.into_inner());
        f(&engine)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Engine> {
        self.engine.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a mutation at the current time and persists its effect. A
    /// failed operation that still changed state (a partial removal) is
    /// persisted too. When the state cannot be written the change is undone
    /// and the answer is 503 `unavailable`, whatever the operation said.
    pub async fn mutate<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Engine) -> engine::Result<T>,
    ) -> engine::Result<T> {
        let (result, fate) = {
            let mut engine = self.write();
            engine.set_clock(now_ms());
            let before = engine.seq();
            let result = f(&mut engine);
            let fate = (engine.seq() != before).then(|| {
                let fate = Arc::new(OnceLock::new());
                lock(&self.pending).push(Arc::clone(&fate));
                fate
            });
            (result, fate)
        };
        if let Some(fate) = fate {
            let store = Arc::clone(self);
            match tokio::task::spawn_blocking(move || store.persist(&fate)).await {
                Ok(Fate::Durable) => {}
                Ok(Fate::RolledBack) => return Err(storage_problem()),
                Err(e) => {
                    tracing::error!(error = %e, "persist task failed");
                    return Err(storage_problem());
                }
            }
        }
        result
    }

    /// Waits for the fate of a mutation: decided by an earlier writer, or
    /// by this caller, which then writes for every pending mutation.
    fn persist(&self, fate: &OnceLock<Fate>) -> Fate {
        let mut durable = lock(&self.durable);
        if let Some(decided) = fate.get() {
            return *decided;
        }
        let (delta, covered) = {
            let mut engine = self.write();
            let delta = engine.take_delta(durable.engine.events_len());
            (delta, std::mem::take(&mut *lock(&self.pending)))
        };
        let outcome = match durable.commit(&self.path, delta) {
            Ok(()) => Fate::Durable,
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot persist broker state; rolling back");
                self.roll_back(&durable.engine);
                Fate::RolledBack
            }
        };
        for f in covered {
            let _ = f.set(outcome);
        }
        fate.get().copied().unwrap_or(outcome)
    }

    /// Puts the engine back to the state last made durable; mutations made
    /// since the failed write took its changes are undone with it.
    fn roll_back(&self, durable: &Engine) {
        let mut engine = self.write();
        *engine = durable.clone();
        for f in std::mem::take(&mut *lock(&self.pending)) {
            let _ = f.set(Fate::RolledBack);
        }
    }
}

impl Durable {
    /// Makes `delta` durable: appended as a record, or, when the records
    /// are due to be folded or the file cannot take one more, with the
    /// whole state written back. Only when neither is possible is it
    /// refused.
    fn commit(&mut self, path: &Path, delta: Delta) -> Result<(), StoreError> {
        if !self.must_fold && self.log.len() < self.state_len.max(FOLD_AT) {
            match self.log.append(&delta) {
                Ok(()) => {
                    self.engine.apply_delta(delta);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot append to the state file; writing it whole");
                    self.must_fold = true;
                }
            }
        }
        let mut next = self.engine.clone();
        next.apply_delta(delta);
        let bytes = encode(&next);
        atomic_file::replace(path, &bytes, Access::Owner).map_err(write_error(path))?;
        self.engine = next;
        self.state_len = bytes.len() as u64;
        self.log = Log::after_state(path);
        self.must_fold = false;
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tightens a state file written before state files were created 0600.
fn owner_only(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if fs::metadata(path)?.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn storage_problem() -> Box<Problem> {
    problem::new(
        503,
        codes::UNAVAILABLE,
        "the broker could not persist its state; nothing was changed",
    )
}

fn encode(engine: &Engine) -> Vec<u8> {
    serde_json::to_vec(engine).expect("engine state serialises to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Expect;
    use crate::contract::wire::{Pool, PoolBody};
    use crate::refbroker::engine::STATE_FORMAT;

    /// A new state file at `path` holding pool `live` (the log folded in by
    /// a reopen, so that the file alone holds it).
    async fn with_a_pool(path: &Path) {
        let store = Store::open(path, None).unwrap();
        store
            .mutate(|e| e.put_pool("live", PoolBody::default(), Expect::Any))
            .await
            .unwrap();
        drop(store);
        drop(reopen(path));
    }

    #[tokio::test]
    async fn mutations_are_persisted_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        with_a_pool(&path).await;
        let reloaded = reopen(&path);
        assert!(reloaded.read(|e| e.pool("live").is_some()));
        let mut files: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        files.sort();
        assert_eq!(
            files,
            ["state.json", "state.json.lock"],
            "no temp file stays behind"
        );
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let first = Store::open(&path, None).unwrap();
        let err = Store::open(&path, None).unwrap_err();
        assert!(
            matches!(&err, StoreError::Locked { holder: Some(pid), .. } if *pid == std::process::id()),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("in use by process {}", std::process::id())),
            "{text}"
        );
        drop(first);
        reopen(&path);
    }

    #[test]
    fn temporaries_of_a_killed_writer_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        drop(Store::open(&path, None).unwrap());
        let leftover = dir.path().join(".state.json.tmp-4242");
        fs::write(&leftover, b"{\"torn").unwrap();
        reopen(&path);
        assert!(!leftover.exists());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_state_and_its_lock_are_readable_by_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        with_a_pool(&path).await;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("state.json.lock")), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        reopen(&path);
        assert_eq!(
            mode(&path),
            0o600,
            "an older, wider state file is tightened"
        );
    }

    /// Opens the store again once this process's earlier handle is gone. A
    /// test elsewhere in this process that starts a child process forks
    /// with every descriptor, the lock's included, until the child's exec
    /// closes them: for that moment the lock is still held, by this pid.
    fn reopen(path: &Path) -> Arc<Store> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match Store::open(path, None) {
                Err(StoreError::Locked {
                    holder: Some(pid), ..
                }) if pid == std::process::id() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                opened => return opened.unwrap(),
            }
        }
    }

    /// Makes every write of `path` fail (a directory can be neither renamed
    /// over nor appended to; permissions would not stop root) until `fix` is
    /// called.
    fn break_writes(path: &Path) {
        fs::remove_file(path).unwrap();
        fs::create_dir_all(path.join("in-the-way")).unwrap();
    }

    fn fix_writes(path: &Path) {
        fs::remove_dir_all(path).unwrap();
    }

    fn pool(
        store: &Arc<Store>,
        name: &'static str,
    ) -> impl Future<Output = engine::Result<Pool>> + use<> {
        let store = Arc::clone(store);
        async move {
            store
                .mutate(move |e| e.put_pool(name, PoolBody::default(), Expect::Any))
                .await
        }
    }

    /// A write that cannot be persisted is undone before it is answered,
    /// for every mutation the failed group commit covered; a retry is then
    /// refused too instead of finding the change in memory and answering
    /// "already done"; and what a reopen finds is exactly what was answered
    /// as done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_cannot_be_persisted_is_rolled_back_and_never_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path, None).unwrap();
        pool(&store, "kept").await.unwrap();
        break_writes(&path);
        let names = ["a", "b", "c", "d", "e", "f"];
        let tasks: Vec<_> = names
            .iter()
            .map(|n| tokio::spawn(pool(&store, n)))
            .collect();
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert_eq!((err.status, err.code.as_str()), (503, codes::UNAVAILABLE));
        }
        let err = pool(&store, "a").await.unwrap_err();
        assert_eq!(err.status, 503, "a retry is not answered from memory");
        for name in names {
            assert!(store.read(|e| e.pool(name).is_none()), "{name} was undone");
        }
        assert_eq!(store.read(|e| e.seq()), 1);
        fix_writes(&path);
        pool(&store, "a").await.unwrap();
        drop(store);
        let reopened = reopen(&path);
        let pools = reopened.read(|e| {
            let live = e.snapshot(0).pools;
            live.into_iter().map(|p| p.name).collect::<Vec<_>>()
        });
        assert_eq!(pools, ["a", "kept"]);
    }

    fn pool_names(store: &Store) -> Vec<String> {
        store.read(|e| e.snapshot(0).pools.into_iter().map(|p| p.name).collect())
    }

    /// Pools `a`, `b` and `c` put and `a` deleted: four records in the log,
    /// none folded into the state file yet.
    async fn four_logged_writes(path: &Path) -> Arc<Store> {
        let store = Store::open(path, None).unwrap();
        for name in ["a", "b", "c"] {
            pool(&store, name).await.unwrap();
        }
        store
            .mutate(|e| e.delete_pool("a", Expect::Any))
            .await
            .unwrap();
        store
    }

    /// The state written whole at the head of the file at `path`, and the
    /// records appended after it.
    fn parts(path: &Path) -> (Engine, Vec<Delta>) {
        let (state, records) = wal::split(&fs::read(path).unwrap(), path).unwrap();
        (serde_json::from_value(state).unwrap(), records)
    }

    /// A kill after writes were acknowledged as records alone: the state
    /// written whole does not hold them, the records do, and opening writes
    /// the state whole with them.
    #[tokio::test]
    async fn a_crash_before_the_state_is_written_whole_loses_no_acknowledged_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        drop(four_logged_writes(&path).await);
        let (whole, records) = parts(&path);
        assert_eq!((whole.seq(), records.len()), (0, 4));
        assert_eq!(load_state(&path).unwrap().seq(), 4);
        let reopened = reopen(&path);
        assert_eq!(pool_names(&reopened), ["b", "c"]);
        let folded: Engine = read_json(&path, "state").unwrap();
        assert_eq!(folded.seq(), 4, "the file is the state alone again");
    }

    /// A kill in the middle of an append tears the last record, which no
    /// caller was told about: it is dropped, the records before it kept.
    #[tokio::test]
    async fn a_torn_last_record_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        drop(four_logged_writes(&path).await);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"seq": 5, "revision": 9, "pools": {"to"#)
            .unwrap();
        let reopened = reopen(&path);
        assert_eq!(pool_names(&reopened), ["b", "c"]);
        assert_eq!(reopened.read(|e| e.seq()), 4);
    }

    /// Once the records have grown past their threshold the next write
    /// writes the state whole: the file then holds no record.
    #[tokio::test]
    async fn large_records_are_folded_into_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path, None).unwrap();
        let filler = "x".repeat(64 * 1024);
        let mut written = 0;
        while written == 0 || !parts(&path).1.is_empty() {
            let mut body = PoolBody::default();
            body.labels.insert("filler".to_owned(), filler.clone());
            let name = format!("p{written:03}");
            store
                .mutate(move |e| e.put_pool(&name, body, Expect::Any))
                .await
                .unwrap();
            written += 1;
            assert!(written < 100, "folded before the records pass 6 MB");
        }
        assert!(written > 2, "records were appended before the fold");
        assert_eq!(parts(&path).0.seq(), written);
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
        newer["format"] = (STATE_FORMAT + 1).into();
        fs::write(&path, serde_json::to_vec(&newer).unwrap()).unwrap();
        let err = Store::open(&path, None).unwrap_err().to_string();
        let refused = format!(
            "format {} is not the supported {STATE_FORMAT}",
            STATE_FORMAT + 1
        );
        assert!(err.contains(&refused), "{err}");
    }

    /// A member write is recorded as the membership it changed, not as its
    /// pool whole (which made growing a pool one member at a time write
    /// O(N²) bytes), and a reopen replays the records to what was answered.
    #[tokio::test]
    async fn member_writes_are_recorded_as_memberships_and_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path, None).unwrap();
        store
            .mutate(|e| {
                for d in ["d1", "d2"] {
                    e.sim_destination(d, true, true)?;
                }
                e.put_pool("big", PoolBody::default(), Expect::Any)
            })
            .await
            .unwrap();
        let before = parts(&path).1.len();
        store.mutate(|e| e.put_member("big", "d1")).await.unwrap();
        store.mutate(|e| e.put_member("big", "d2")).await.unwrap();
        let removed = store.mutate(|e| e.delete_member("big", "d1")).await;
        let records: Vec<serde_json::Value> = (parts(&path).1[before..].iter())
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        assert_eq!(records.len(), 3);
        for record in &records {
            assert_eq!(record["pools"], serde_json::json!({}), "{record}");
        }
        assert_eq!(
            records[2]["members"],
            serde_json::json!([{"pool": "big", "destination": "d1", "member": false,
                "revision": removed.unwrap().revision}])
        );
        let answered = store.read(|e| e.snapshot(0));
        assert_eq!(answered.pools[0].members, ["d2"]);
        drop(store);
        assert_eq!(reopen(&path).read(|e| e.snapshot(0)), answered);
    }

    /// A state file at `path` holding pool `live`, as `older` makes it
    /// look to an older format; returns what it wrote.
    async fn older_state(
        path: &Path,
        older: impl FnOnce(&mut serde_json::Value),
    ) -> serde_json::Value {
        with_a_pool(path).await;
        let mut old: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        older(&mut old);
        fs::write(path, serde_json::to_vec(&old).unwrap()).unwrap();
        old
    }

    /// Format 3 is format 4 without membership records: read as it is,
    /// and written back as format 4 at once.
    #[tokio::test]
    async fn a_format_3_state_is_upgraded_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let old = older_state(&path, |old| old["format"] = 3.into()).await;
        let upgraded = reopen(&path);
        assert!(upgraded.read(|e| e.pool("live").is_some()));
        let written: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(written["format"], STATE_FORMAT);
        assert_eq!(written["id"], old["id"]);
    }

    #[tokio::test]
    async fn a_format_1_state_is_upgraded_once_with_an_identity_that_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        older_state(&path, |old| {
            old["format"] = 1.into();
            old.as_object_mut().unwrap().remove("id");
        })
        .await;
        let upgraded = Store::open(&path, None).unwrap();
        let id = upgraded.read(|e| e.id().to_owned());
        assert_eq!(id.len(), 32);
        assert!(upgraded.read(|e| e.pool("live").is_some()));
        drop(upgraded);
        let again = Store::open(&path, None).unwrap();
        assert_eq!(again.read(|e| e.id().to_owned()), id);
    }

    /// A state file of format 2 kept salted SHA-256 password hashes; on
    /// open they are gone from the file at once, the pool still has a
    /// password, and the next one sent is stored as Argon2id.
    #[tokio::test]
    async fn fast_password_hashes_of_an_older_state_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path, None).unwrap();
        let mut body = PoolBody::default();
        body.default_credentials.password = Some("maintenance-demo".into());
        let put = body.clone();
        store
            .mutate(move |e| e.put_pool("maint", put, Expect::Any))
            .await
            .unwrap();
        drop(store);
        drop(Store::open(&path, None).unwrap());
        let mut old: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        old["format"] = 2.into();
        old["password_hashes"]["maint"] = serde_json::json!({
            "salt": "00112233445566778899aabbccddeeff",
            "sha256": "57fb1ff44fde50db13fe171b85d363a0027f2dc7b29ff7ebcc1792379be4507e"
        });
        fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        let store = Store::open(&path, None).unwrap();
        let file = fs::read_to_string(&path).unwrap();
        assert!(
            !file.contains("sha256") && !file.contains("57fb1ff4"),
            "{file}"
        );
        assert!(store.read(|e| e.pool("maint").unwrap().default_credentials.password_set));
        let before = store.read(|e| e.pool("maint").unwrap().revision);
        let pool = store
            .mutate(move |e| e.put_pool("maint", body, Expect::Any))
            .await
            .unwrap();
        assert!(pool.revision > before);
        drop(store);
        drop(Store::open(&path, None).unwrap());
        let file = fs::read_to_string(&path).unwrap();
        assert!(file.contains("$argon2id$v=19$m=32768,t=2,p=1$"), "{file}");
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
        drop(store);
        fs::write(&seed, b"{}").unwrap();
        let again = Store::open(&path, Some(&seed)).unwrap();
        assert!(again.read(|e| e.destination("rds-01").is_some()));
    }
}
