//! Shared by the integration tests that need a live reference broker: a
//! `poolform broker serve` child on 127.0.0.1:0 (killed on drop), raw and
//! typed clients for it, fault-tolerant reads of its event log, snapshot and
//! request counts, and a runner for `poolform` CLI processes pointed at it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use poolform::client::http::{HttpBroker, HttpOptions, RetryPolicy};
use poolform::contract::wire::{Event, Snapshot};
use poolform::refbroker::server::Stats;
use secrecy::SecretString;
use serde_json::Value;

pub const TOKEN: &str = "test-token-3f9a";
/// Generous: the machine is shared and may be loaded.
pub const STARTUP: Duration = Duration::from_secs(60);
/// How often a broker read is retried when `--fail-rate` answers 503: the
/// tests observe a faulty broker and must not fail on its injected faults.
const READ_ATTEMPTS: usize = 50;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_poolform")
}

pub fn seed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/maintenance/broker-seed.json")
}

/// An example directory of the repository, e.g. `maintenance/rds-02-out`.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A running `poolform broker serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub state: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        Server::start_on(Some(dir), state, extra)
    }

    /// Serves `state`; `dir`, when given, lives as long as the server.
    pub fn start_on(dir: Option<tempfile::TempDir>, state: PathBuf, extra: &[&str]) -> Server {
        Server::spawn(Command::new(bin()), dir, state, extra, None)
    }

    /// Serves `state` in a process that may write no file larger than
    /// `blocks` x 512 bytes (RLIMIT_FSIZE, with SIGXFSZ ignored so that a
    /// write over it fails instead of killing the broker): a disk that
    /// refuses the state file once it grows past the limit.
    pub fn start_with_file_size_limit(state: PathBuf, blocks: u64) -> Server {
        let mut shell = Command::new("sh");
        shell.args([
            "-c",
            "trap '' XFSZ; ulimit -f \"$0\"; exec \"$@\"",
            &blocks.to_string(),
            bin(),
        ]);
        Server::spawn(shell, None, state, &[], None)
    }

    /// Like [`Server::start`] with the server's own logging at `trace`,
    /// written to `log` (for tests that search the log for leaks).
    pub fn start_logged(extra: &[&str], log: &Path) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        Server::spawn(Command::new(bin()), Some(dir), state, extra, Some(log))
    }

    /// Runs `command` (the binary, or a wrapper that execs it with the
    /// arguments appended) as `broker serve`.
    fn spawn(
        mut command: Command,
        dir: Option<tempfile::TempDir>,
        state: PathBuf,
        extra: &[&str],
        log: Option<&Path>,
    ) -> Server {
        command
            .args([
                "broker",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--token",
                TOKEN,
            ])
            .arg("--state")
            .arg(&state)
            .args(extra)
            .stdout(Stdio::piped());
        match log {
            Some(log) => {
                command
                    .env("RUST_LOG", "trace")
                    .stderr(std::fs::File::create(log).unwrap());
            }
            None => {
                command.stderr(Stdio::inherit());
            }
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(STARTUP)
            .expect("server announces its address");
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server {
            child,
            url,
            state,
            _dir: dir,
        }
    }

    pub fn client(&self) -> HttpBroker {
        self.client_with(RetryPolicy::none())
    }

    pub fn client_with(&self, retry: RetryPolicy) -> HttpBroker {
        let options = HttpOptions {
            retry,
            ..HttpOptions::default()
        };
        HttpBroker::new(
            &self.url,
            Some(SecretString::from(TOKEN.to_owned())),
            options,
        )
        .unwrap()
    }

    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
    }

    pub async fn sim(&self, path: &str, body: Value) -> Value {
        let response = self
            .raw(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// The body of a GET, retried while the broker injects 503s.
    pub async fn get_text(&self, path: &str) -> String {
        for _ in 0..READ_ATTEMPTS {
            let response = self.raw(reqwest::Method::GET, path).send().await.unwrap();
            if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                continue;
            }
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            return response.text().await.unwrap();
        }
        panic!("{path}: still 503 after {READ_ATTEMPTS} attempts");
    }

    pub async fn snapshot(&self) -> Snapshot {
        serde_json::from_str(&self.get_text("/v1/snapshot").await).unwrap()
    }

    pub async fn stats(&self) -> Stats {
        serde_json::from_str(&self.get_text("/v1/_sim/stats").await).unwrap()
    }

    /// Every event after `since`, across pages.
    pub async fn events(&self, since: u64) -> Vec<Event> {
        let mut events: Vec<Event> = Vec::new();
        let mut since = since;
        loop {
            let text = self
                .get_text(&format!("/v1/events?since={since}&limit=1000"))
                .await;
            let page: Value = serde_json::from_str(&text).unwrap();
            let items: Vec<Event> = serde_json::from_value(page["items"].clone()).unwrap();
            let more = !page["next_cursor"].is_null() && !items.is_empty();
            if let Some(last) = items.last() {
                since = last.seq;
            }
            events.extend(items);
            if !more {
                return events;
            }
        }
    }

    /// The sequence number of the newest event (0 when there is none).
    pub async fn last_seq(&self) -> u64 {
        self.events(0).await.last().map_or(0, |e| e.seq)
    }

    /// `poolform SUBCOMMAND ... --broker URL` with the token in the
    /// environment and nothing inherited that could point elsewhere.
    pub fn poolform(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin());
        command
            .args(args)
            .args(["--broker", &self.url])
            .env("POOLFORM_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env_remove("POOLFORM_BROKER")
            .env_remove("POOLFORM_BROKER_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished CLI process, its streams as text.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32, what: &str) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs a command to the end and captures it.
pub fn run(command: &mut Command) -> Run {
    Run::of(command.output().expect("poolform runs"))
}

/// `op resource[ code]` per event, leaving out lease traffic, which every
/// apply adds around its real work.
pub fn without_locks(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| !e.op.starts_with("lock."))
        .map(|e| {
            let code = e
                .code
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            format!("{} {}{code}", e.op, e.resource)
        })
        .collect()
}

/// Copies an example directory's files into a fresh temp dir, for variants.
pub fn copy_example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(example(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Replaces `from` (which must occur) with `to` in `file`.
pub fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}
