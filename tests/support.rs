//! Shared by the integration tests that need a live reference broker: a
//! `poolform broker serve` child on 127.0.0.1:0 (killed on drop), raw and
//! typed clients for it, fault-tolerant reads of its event log, snapshot and
//! request counts, and a runner for `poolform` CLI processes pointed at it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use poolform::client::http::{HttpBroker, HttpOptions, RetryPolicy};
use poolform::contract::wire::{Event, Snapshot};
use poolform::plan::{Op, Plan};
use poolform::refbroker::server::Stats;
use secrecy::SecretString;
use serde_json::Value;

pub const TOKEN: &str = "test-token-3f9a";
/// The password whose fingerprint `examples/maintenance/broker-seed.json`
/// holds, so the maintenance examples plan no credential change with it.
pub const SEED_PASSWORD: &str = "maintenance-demo";
/// The environment a poolform run against the seed needs.
pub const SEED_ENV: &[(&str, &str)] = &[("MAINT_PASSWORD", SEED_PASSWORD)];
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

impl Server {
    /// One destination as the broker has it now.
    pub async fn destination(&self, name: &str) -> poolform::contract::wire::Destination {
        self.snapshot()
            .await
            .destinations
            .into_iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is in the snapshot"))
    }

    /// A pool's members as the broker has them now.
    pub async fn members(&self, pool: &str) -> Vec<String> {
        self.snapshot()
            .await
            .pools
            .into_iter()
            .find(|p| p.name == pool)
            .unwrap_or_else(|| panic!("{pool} is in the snapshot"))
            .members
    }

    /// Powers a destination on or off.
    pub async fn power(&self, destination: &str, online: bool) {
        self.sim(
            &format!("/v1/_sim/destinations/{destination}/power"),
            serde_json::json!({ "online": online }),
        )
        .await;
    }

    /// `poolform plan CONFIG --out FILE` with `env`: the saved plan an apply
    /// is compared with. A plan with violations is saved too (and exits 1).
    pub fn save_plan(&self, config: &Path, file: &Path, env: &[(&str, &str)]) -> Plan {
        let mut command = self.poolform(&["plan"]);
        command
            .arg(config)
            .arg("--out")
            .arg(file)
            .envs(env.iter().copied());
        let planned = run(&mut command);
        if !file.exists() {
            planned.expect_code(0, "plan --out");
        }
        read_plan(file)
    }

    /// Whether a plan of `config` now shows no changes.
    pub fn converged(&self, config: &Path, env: &[(&str, &str)]) -> bool {
        let mut command = self.poolform(&["plan"]);
        command
            .arg(config)
            .arg("--detailed-exitcode")
            .envs(env.iter().copied());
        run(&mut command).code == Some(0)
    }

    /// Saves the plan of `config`, applies `config` with `args`, and checks
    /// the apply's fidelity to that plan (see [`fidelity`]).
    pub async fn apply_checked(
        &self,
        scenario: &str,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Run, Fidelity) {
        let dir = tempfile::tempdir().unwrap();
        let plan = self.save_plan(config, &dir.path().join("plan.json"), env);
        let start = self.last_seq().await;
        let mut command = self.poolform(&["apply"]);
        command
            .arg(config)
            .arg("--auto-approve")
            .args(args)
            .envs(env.iter().copied());
        let applied = run(&mut command);
        let events = self.events(start).await;
        let converged = self.converged(config, env);
        let counts = fidelity(
            scenario,
            Some(&plan),
            &events,
            applied.code == Some(0),
            converged,
        );
        (applied, counts)
    }

    /// Applies the saved plan `file` with `args` and checks the apply's
    /// fidelity to it; `config` is what the plan was made from.
    pub async fn apply_plan_checked(
        &self,
        scenario: &str,
        file: &Path,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Run, Fidelity) {
        let plan = poolform::plan::read_saved(&std::fs::read(file).unwrap()).ok();
        let start = self.last_seq().await;
        let mut command = self.poolform(&["apply"]);
        command
            .arg(file)
            .arg("--auto-approve")
            .args(args)
            .envs(env.iter().copied());
        let applied = run(&mut command);
        let events = self.events(start).await;
        let converged = self.converged(config, env);
        let counts = fidelity(
            scenario,
            plan.as_ref(),
            &events,
            applied.code == Some(0),
            converged,
        );
        (applied, counts)
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

/// Requests that could change state (anything but GET), per route, leaving
/// out the simulation controls the test itself calls.
pub fn writes(stats: &Stats) -> BTreeMap<String, u64> {
    stats
        .requests
        .iter()
        .filter(|(route, _)| !route.starts_with("GET ") && !route.contains("/v1/_sim/"))
        .map(|(route, n)| (route.clone(), *n))
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

/// What one apply did, compared with the saved plan it was to carry out:
/// the broker's event log is the witness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Fidelity {
    pub steps_planned: usize,
    pub writes_observed: usize,
    /// Writes that no planned step accounts for (or a step's write repeated).
    pub writes_not_in_plan: usize,
    /// A step's write logged before the write of a step it depends on.
    pub order_violations: usize,
    /// Partial outcomes (warnings) of writes whose step announced none.
    pub unpredicted_warnings: usize,
    /// The last apply exited 0.
    pub exited_zero: bool,
    /// A plan afterwards shows no changes.
    pub converged: bool,
}

impl std::ops::AddAssign for Fidelity {
    fn add_assign(&mut self, other: Fidelity) {
        self.steps_planned += other.steps_planned;
        self.writes_observed += other.writes_observed;
        self.writes_not_in_plan += other.writes_not_in_plan;
        self.order_violations += other.order_violations;
        self.unpredicted_warnings += other.unpredicted_warnings;
    }
}

/// The broker events a step's writes append, each as (the ops it may be,
/// resource) and each at most once. Drains and sticky clearing may find
/// nothing to do and append none; a drain with a notice messages the users
/// before it disconnects the rest.
fn planned_events(op: &Op) -> Vec<(Vec<&'static str>, String)> {
    if let Op::DrainSessions {
        destination,
        notice: Some(_),
        ..
    } = op
    {
        let sessions = format!("destination/{destination}/sessions");
        return vec![
            (vec!["sessions.message"], sessions.clone()),
            (vec!["sessions.disconnect"], sessions),
        ];
    }
    if let Op::AwaitNewMembers { .. } = op {
        return Vec::new();
    }
    vec![planned_event(op)]
}

/// The one broker event the write of a step without a notice appends.
fn planned_event(op: &Op) -> (Vec<&'static str>, String) {
    match op {
        Op::AwaitNewMembers { .. } => unreachable!("writes nothing: see planned_events"),
        Op::PutPool { pool, .. } => (vec!["pool.create", "pool.update"], format!("pool/{pool}")),
        Op::DeletePool { pool } => (vec!["pool.delete"], format!("pool/{pool}")),
        Op::AddMember { pool, destination } => (
            vec!["member.add"],
            format!("pool/{pool}/member/{destination}"),
        ),
        Op::RemoveMember { pool, destination } => (
            vec!["member.remove"],
            format!("pool/{pool}/member/{destination}"),
        ),
        Op::DrainSessions { destination, .. } => (
            vec!["sessions.disconnect"],
            format!("destination/{destination}/sessions"),
        ),
        Op::ClearSticky { pool, destination } => (
            vec!["sticky.clear"],
            format!("pool/{pool}/sticky-sessions/{destination}"),
        ),
        Op::PutMaintenance { destination, .. } => (
            vec!["destination.maintenance.set"],
            format!("destination/{destination}/maintenance"),
        ),
        Op::DeleteMaintenance { destination } => (
            vec!["destination.maintenance.clear"],
            format!("destination/{destination}/maintenance"),
        ),
        Op::StopLogons { destination } => (
            vec!["destination.drain.start"],
            format!("destination/{destination}/drain"),
        ),
        Op::AllowLogons { destination } => (
            vec!["destination.drain.end"],
            format!("destination/{destination}/drain"),
        ),
        Op::RemoveLbService { destination } => (
            vec!["destination.lb_service.remove"],
            format!("destination/{destination}/lb-service"),
        ),
        Op::PutAppConfig { app_config, .. } => (
            vec!["app_config.create", "app_config.update"],
            format!("app_config/{app_config}"),
        ),
        Op::DeleteAppConfig { app_config } => (
            vec!["app_config.delete"],
            format!("app_config/{app_config}"),
        ),
        Op::PutAppInstance { app_instance, .. } => (
            vec!["app_instance.create", "app_instance.update"],
            format!("app_instance/{app_instance}"),
        ),
        Op::DeleteAppInstance { app_instance } => (
            vec!["app_instance.delete"],
            format!("app_instance/{app_instance}"),
        ),
    }
}

/// Compares what the broker logged (`events`, everything after the apply
/// began, across its re-runs) with `plan`, the saved plan it carried out
/// (`None`: a plan file that could not be used, so no write is planned).
/// Every write must be a planned step's, once; every step's write must
/// follow those of the steps it depends on; every partial outcome must be
/// an announced warning; and an apply that exited 0 must have converged.
/// Panics naming each difference; returns the counts, prints them, and
/// appends them as a JSON line to `$POOLFORM_FIDELITY_LOG` when set. The
/// totals over every end-to-end apply:
///
/// ```sh
/// POOLFORM_FIDELITY_LOG=/tmp/fidelity.jsonl cargo test --test main
/// jq -s '{applies: length,
///   steps_planned: (map(.fidelity.steps_planned) | add),
///   writes_observed: (map(.fidelity.writes_observed) | add),
///   writes_not_in_plan: (map(.fidelity.writes_not_in_plan) | add),
///   order_violations: (map(.fidelity.order_violations) | add),
///   unpredicted_warnings: (map(.fidelity.unpredicted_warnings) | add),
///   exited_0_without_converging:
///     (map(select(.fidelity.exited_zero and (.fidelity.converged | not))) | length)}' \
///   /tmp/fidelity.jsonl
/// ```
pub fn fidelity(
    scenario: &str,
    plan: Option<&Plan>,
    events: &[Event],
    exited_zero: bool,
    converged: bool,
) -> Fidelity {
    let steps = plan.map_or(&[][..], |p| p.steps.as_slice());
    let writes: Vec<&Event> = events
        .iter()
        .filter(|e| !e.op.starts_with("lock.") && !e.op.starts_with("sim."))
        .collect();
    let mut problems = Vec::new();
    let expected: Vec<Vec<(Vec<&str>, String)>> =
        steps.iter().map(|s| planned_events(&s.op)).collect();
    // Per step, the seq of each of its writes seen, and of its first and last.
    let mut seen: Vec<Vec<Option<u64>>> = expected.iter().map(|e| vec![None; e.len()]).collect();
    let mut seq_of_step: Vec<Option<(u64, u64)>> = vec![None; steps.len()];
    let mut counts = Fidelity {
        steps_planned: steps.len(),
        writes_observed: writes.len(),
        exited_zero,
        converged,
        ..Fidelity::default()
    };
    for event in &writes {
        let found = expected.iter().enumerate().find_map(|(i, writes)| {
            writes
                .iter()
                .position(|(ops, resource)| {
                    ops.contains(&event.op.as_str()) && *resource == event.resource
                })
                .map(|w| (i, w))
        });
        let Some((i, w)) = found.filter(|&(i, w)| seen[i][w].is_none()) else {
            counts.writes_not_in_plan += 1;
            problems.push(format!(
                "write not in the plan: {} {}",
                event.op, event.resource
            ));
            continue;
        };
        seen[i][w] = Some(event.seq);
        seq_of_step[i] = Some(match seq_of_step[i] {
            Some((first, _)) => (first, event.seq),
            None => (event.seq, event.seq),
        });
        if let Some(code) = &event.code
            && steps[i].expected_warning.is_none()
        {
            counts.unpredicted_warnings += 1;
            problems.push(format!(
                "unpredicted warning: {} {} answered {code}, which step {} did not announce",
                event.op,
                event.resource,
                i + 1
            ));
        }
    }
    // The last write a step's dependents must follow: its own, or, for a
    // step that writes nothing (the wait for a pool's new members), the
    // last of those it waits for. A plan lists each step after those it
    // depends on.
    let mut last_before: Vec<Option<u64>> = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let last = if expected[i].is_empty() {
            step.depends_on
                .iter()
                .filter_map(|&dep| last_before.get(dep).copied().flatten())
                .max()
        } else {
            seq_of_step[i].map(|(_, last)| last)
        };
        last_before.push(last);
    }
    for (i, step) in steps.iter().enumerate() {
        let Some((first, _)) = seq_of_step[i] else {
            continue;
        };
        for &dep in &step.depends_on {
            if last_before
                .get(dep)
                .copied()
                .flatten()
                .is_some_and(|last| last > first)
            {
                counts.order_violations += 1;
                problems.push(format!(
                    "step {} wrote before step {} it waits for",
                    i + 1,
                    dep + 1
                ));
            }
        }
    }
    if exited_zero && !converged {
        problems.push("the apply exited 0, but a plan afterwards still shows changes".to_owned());
    }
    record(scenario, counts);
    assert!(problems.is_empty(), "{scenario}: {problems:#?}");
    counts
}

fn record(scenario: &str, counts: Fidelity) {
    eprintln!("fidelity {scenario}: {counts:?}");
    if let Some(log) = std::env::var_os("POOLFORM_FIDELITY_LOG") {
        use std::io::Write as _;
        let line = serde_json::json!({ "scenario": scenario, "fidelity": counts });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("the fidelity log opens");
        writeln!(file, "{line}").expect("the fidelity log is written");
    }
}

/// The event log an embedded broker keeps in its state file (none before
/// the file exists).
pub fn state_events(state: &Path) -> Vec<Event> {
    if !state.exists() {
        return Vec::new();
    }
    let engine = poolform::refbroker::store::load_state(state).expect("the state file is readable");
    let events = engine.events_page(0, usize::MAX).items;
    events.into_iter().cloned().collect()
}

/// Reads a plan file written by `plan --out`.
pub fn read_plan(path: &Path) -> Plan {
    poolform::plan::read_saved(&std::fs::read(path).unwrap()).expect("a valid saved plan")
}
