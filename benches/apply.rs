//! Whole-process `poolform apply` benchmark for the apply bar: 1,000
//! independent member additions (1,000 pools each gaining one member, every
//! step on its own destination) against the reference broker over loopback
//! at `--latency 20`, with `--parallelism 20`. Prints medians of wall time
//! against the ideal 1,000 x 20 ms / 20 = 1 s, and the HTTP requests the
//! broker received (from `/v1/_sim/stats`) against the minimum.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use poolform::contract::labels::STACK_LABEL;
use poolform::contract::wire::{Destination, Event, Labels, Page, Pool, Snapshot};
use poolform::refbroker::server::Stats;

const BIN: &str = env!("CARGO_BIN_EXE_poolform");
const TOKEN: &str = "bench-token";
const STACK: &str = "bench";
const LATENCY_MS: u64 = 20;
const PARALLELISM: u64 = 20;
const RUNS: usize = 5;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn destination(name: String) -> Destination {
    Destination {
        name,
        online: true,
        process_execution_ready: true,
        lb_service_installed: false,
        maintenance: Default::default(),
        sessions: Default::default(),
        labels: Labels::new(),
        draining: None,
        lb_service_leftover: None,
        revision: 1,
    }
}

/// `pools` owned pools with one member each in the seed; the config gives
/// each a second, distinct member, so the plan is `pools` independent adds.
fn generate(dir: &Path, pools: usize) {
    let mut seed = Snapshot::default();
    let mut yaml = format!("stack: {STACK}\npools:\n");
    for p in 0..pools {
        let (kept, added) = (format!("d{p:04}-a"), format!("d{p:04}-b"));
        let _ = writeln!(yaml, "  p{p:04}: {{ members: [{kept}, {added}] }}");
        seed.destinations.push(destination(kept.clone()));
        seed.destinations.push(destination(added));
        seed.pools.push(Pool {
            name: format!("p{p:04}"),
            load_balancing: Default::default(),
            default_credentials: Default::default(),
            labels: [(STACK_LABEL.to_owned(), STACK.to_owned())].into(),
            members: vec![kept],
            revision: 1,
        });
    }
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    std::fs::write(dir.join("seed.json"), serde_json::to_vec(&seed).unwrap()).unwrap();
}

/// A fresh broker on the seed (in `dir`), its state file in `state_dir`, so
/// every run applies the same 1,000 changes.
fn serve(dir: &Path, state_dir: &Path, run: usize) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "broker",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token",
            TOKEN,
        ])
        .arg("--state")
        .arg(state_dir.join(format!("state-{run}.json")))
        .arg("--seed")
        .arg(dir.join("seed.json"))
        .args(["--latency", &LATENCY_MS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("server prints its address")
        .to_owned();
    Server { child, url }
}

fn get<T: serde::de::DeserializeOwned>(url: &str) -> T {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("the broker answers")
            .json()
            .await
            .expect("a JSON answer")
    })
}

fn stats(url: &str) -> Stats {
    get(&format!("{url}/v1/_sim/stats"))
}

/// The whole event log, across pages.
fn events(url: &str) -> Vec<Event> {
    let mut all: Vec<Event> = Vec::new();
    loop {
        let since = all.last().map_or(0, |e| e.seq);
        let page: Page<Event> = get(&format!("{url}/v1/events?since={since}&limit=1000"));
        let more = page.next_cursor.is_some() && !page.items.is_empty();
        all.extend(page.items);
        if !more {
            return all;
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it, as a smoke test with 20 changes and one run.
    let full = std::env::args().any(|a| a == "--bench");
    let (steps, runs) = if full { (1_000, RUNS) } else { (20, 1) };
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), steps);
    // The broker fsyncs its state file (and directory) before answering a
    // write, which is the sandbox's durability cost, not the client's. Runs
    // with the state on tmpfs and on disk show how much of the figure a slow
    // disk adds.
    let tmpfs = Path::new("/dev/shm");
    if tmpfs.is_dir() {
        let state_dir = tempfile::tempdir_in(tmpfs).unwrap();
        measure(dir.path(), state_dir.path(), steps, runs, "tmpfs");
    }
    measure(dir.path(), dir.path(), steps, runs, "disk");
}

/// Medians over `runs` applies with the broker's state file in `state_dir`.
fn measure(dir: &Path, state_dir: &Path, steps: usize, runs: usize, storage: &str) {
    let ideal_ms = (steps as u64 * LATENCY_MS / PARALLELISM) as f64;
    let (mut walls, mut executes, mut requests) = (Vec::new(), Vec::new(), Vec::new());
    let mut breakdown = String::new();
    for run in 0..runs {
        let server = serve(dir, state_dir, run);
        let started = Instant::now();
        let output = Command::new(BIN)
            .arg("apply")
            .arg(dir.join("config.yaml"))
            .args(["--broker", &server.url, "--auto-approve"])
            .args(["--parallelism", &PARALLELISM.to_string()])
            .env("POOLFORM_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        walls.push(started.elapsed().as_secs_f64() * 1000.0);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "apply failed:\n{stdout}");
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("Apply complete"))
            .expect("apply prints its summary");
        assert!(
            summary.contains(&format!("{steps} done, 0 warnings, 0 failed")),
            "{summary}"
        );
        let stats = stats(&server.url);
        // The stats call itself is not the apply's.
        requests.push((stats.total - 1) as f64);
        // The report rounds to whole seconds above 1 s, so the step phase is
        // timed from the broker's log instead: first to last member add,
        // plus the one latency the first add spent before it was logged.
        let adds: Vec<u64> = events(&server.url)
            .iter()
            .filter(|e| e.op == "member.add")
            .map(|e| e.time)
            .collect();
        assert_eq!(adds.len(), steps, "one member.add per step");
        let first = adds.iter().min().unwrap();
        let last = adds.iter().max().unwrap();
        executes.push((last - first + LATENCY_MS) as f64);
        if run == 0 {
            for (route, n) in &stats.requests {
                if route != "GET /v1/_sim/stats" {
                    let _ = write!(breakdown, "\n    {n:>5}  {route}");
                }
            }
        }
    }
    let wall = median(walls);
    println!(
        "apply of {steps} independent member adds, broker --latency {LATENCY_MS} \
         with its state file on {storage}, --parallelism {PARALLELISM} (median of {runs} runs)"
    );
    println!(
        "  whole process wall: {wall:.0} ms = {:.2}x the ideal {ideal_ms:.0} ms (target at 1,000 steps: <= 1.5x)",
        wall / ideal_ms
    );
    if !executes.is_empty() {
        let execute = median(executes);
        println!(
            "  step phase (first to last add, from the broker's log): {execute:.0} ms = {:.2}x the ideal",
            execute / ideal_ms
        );
    }
    println!(
        "  HTTP requests: {:.0} (one write per step: {steps}, plus paginated reads and the lease){breakdown}",
        median(requests)
    );
}
