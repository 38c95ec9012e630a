//! The reference broker's state file across real processes: one holder at a
//! time (`broker serve` and `--broker file:` alike, refused with the holder's
//! pid), nothing acknowledged lost and nothing unacknowledged kept when the
//! disk refuses a write, and files private to their owner.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use poolform::client::http::HttpBroker;
use poolform::contract::problem::codes;
use poolform::contract::wire::{Labels, PoolBody};
use poolform::contract::{Broker, BrokerError, Expect};
use poolform::refbroker::store::load_state;
use reqwest::Method;
use serde_json::json;

use crate::support::{Server, bin, example, run, seed_path};

/// The seed's fingerprint label was made from this password.
const SEED_PASSWORD: &str = "maintenance-demo";
/// Far above what any step here needs, so a loaded machine never trips it.
const PATIENCE: Duration = Duration::from_secs(120);

/// `poolform apply CONFIG --broker file:STATE --auto-approve ...`.
fn file_apply(state: &Path, config: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command
        .arg("apply")
        .arg(config)
        .arg("--broker")
        .arg(format!("file:{}", state.display()))
        .arg("--auto-approve")
        .args(extra)
        .env("MAINT_PASSWORD", SEED_PASSWORD)
        .env("NO_COLOR", "1")
        .env_remove("POOLFORM_BROKER")
        .stdin(Stdio::null());
    command
}

fn lock_file(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A `file:` apply on the state a running `broker serve` holds is refused,
/// naming the server's pid, and changes nothing.
#[tokio::test]
async fn a_file_apply_is_refused_a_state_that_broker_serve_holds() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let refused = run(&mut file_apply(
        &server.state,
        &example("maintenance/rds-02-out"),
        &[],
    ))
    .expect_code(1, "a second process on the state");
    let holder = format!("in use by process {}", server.child.id());
    assert!(refused.stderr.contains(&holder), "{}", refused.stderr);
    assert!(server.events(0).await.is_empty());
}

/// Two `file:` applies on one state: while the first holds it (waiting for
/// a stack lease someone else has), the second is refused at once with the
/// first one's pid, and the state keeps only what was there.
#[tokio::test]
async fn two_file_applies_never_share_a_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let seed = seed_path();
    let server = Server::start_on(None, state.clone(), &["--seed", seed.to_str().unwrap()]);
    let lease = server
        .raw(Method::PUT, "/v1/locks/corp-rds")
        .json(&json!({"holder": "someone-else", "ttl_seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(lease.status(), 200);
    drop(server);
    let before = load_state(&state).unwrap().seq();

    let config = example("maintenance/rds-02-out");
    let mut first = file_apply(&state, &config, &["--lock-timeout", "600s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id().to_string();
    let deadline = Instant::now() + PATIENCE;
    while std::fs::read_to_string(lock_file(&state)).unwrap_or_default() != pid {
        assert!(first.try_wait().unwrap().is_none(), "the first apply waits");
        assert!(Instant::now() < deadline, "the first apply takes the state");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = run(&mut file_apply(&state, &config, &["--lock-timeout", "1s"]))
        .expect_code(1, "the second apply on the same state");
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        second.stderr.contains(&format!("in use by process {pid}")),
        "{}",
        second.stderr
    );
    assert_eq!(load_state(&state).unwrap().seq(), before);
}

fn filled(filler: &str) -> PoolBody {
    PoolBody {
        labels: Labels::from([("filler".to_owned(), filler.to_owned())]),
        ..PoolBody::default()
    }
}

async fn pool_names(broker: &HttpBroker) -> BTreeSet<String> {
    let live = broker.read_live().await.unwrap();
    live.pools.into_iter().map(|p| p.name).collect()
}

fn refused(result: &Result<(), BrokerError>) -> bool {
    match result {
        Ok(()) => false,
        Err(e) if e.code() == Some(codes::UNAVAILABLE) => true,
        Err(e) => panic!("only 503 is expected, got {e}"),
    }
}

/// A broker whose disk refuses the state file once it passes 32 KiB: four
/// writers at a time (so group commits cover several changes) until writes
/// fail. A refused write is undone (a retry is refused too, not answered
/// from memory), deleting makes room again, and after a SIGKILL and a
/// restart without the limit the broker holds exactly the acknowledged
/// pools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_refuses_writes_loses_no_acknowledged_write_and_keeps_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let server = Server::start_with_file_size_limit(state.clone(), 64);
    let broker = server.client();
    let filler = "x".repeat(900);
    let put = |name: String| {
        let (broker, body) = (&broker, filled(&filler));
        async move {
            let result = broker.put_pool(&name, &body, Expect::Any).await;
            (name, result.map(|_| ()))
        }
    };
    let mut acknowledged = BTreeSet::new();
    let mut turned_away = BTreeSet::new();
    for batch in 0..100 {
        let names: Vec<String> = (0..4).map(|k| format!("p{batch:02}-{k}")).collect();
        let [a, b, c, d] = names.try_into().unwrap();
        let (a, b, c, d) = tokio::join!(put(a), put(b), put(c), put(d));
        for (name, result) in [a, b, c, d] {
            if refused(&result) {
                turned_away.insert(name);
            } else {
                acknowledged.insert(name);
            }
        }
        if turned_away.len() >= 8 {
            break;
        }
    }
    assert!(turned_away.len() >= 8 && acknowledged.len() >= 4);
    // A group of four can be refused where one write alone would still fit:
    // fill the disk one write at a time, so that no retry below can fit.
    for k in 0.. {
        let (name, result) = put(format!("q{k:04}")).await;
        if refused(&result) {
            turned_away.insert(name);
            break;
        }
        acknowledged.insert(name);
    }
    for name in turned_away.iter().take(4) {
        let (_, again) = put(name.clone()).await;
        assert!(
            refused(&again),
            "the retry of {name} is not answered from memory"
        );
    }
    assert_eq!(
        pool_names(&broker).await,
        acknowledged,
        "what was turned away was undone"
    );

    for name in acknowledged.clone().iter().take(3) {
        broker.delete_pool(name, Expect::Any).await.unwrap();
        acknowledged.remove(name);
    }
    let comeback = turned_away.first().unwrap().clone();
    let (_, result) = put(comeback.clone()).await;
    result.unwrap();
    acknowledged.insert(comeback);

    drop(broker);
    drop(server);
    let restarted = Server::start_on(None, state, &[]);
    assert_eq!(pool_names(&restarted.client()).await, acknowledged);
}

/// A broker removes the temporary file a killed one left beside the state,
/// and its state and lock files are readable by their owner only.
#[test]
fn a_broker_cleans_up_after_a_killed_one_and_keeps_its_files_private() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let leftover = dir.path().join(".state.json.tmp-999999");
    std::fs::write(&leftover, b"{\"torn").unwrap();
    let server = Server::start_on(None, state.clone(), &[]);
    assert!(!leftover.exists());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o600);
    assert_eq!(mode(&lock_file(&state)), 0o600);
    drop(server);
}
