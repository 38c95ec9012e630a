//! Whole-process `poolform apply` benchmark for the apply bar: N
//! independent member additions (N pools each gaining one member, every
//! step on its own destination) against the reference broker over loopback
//! at `--latency 20`, with `--parallelism 20`, the broker's state file on
//! disk (under Cargo's target directory, refused if that is tmpfs). Prints
//! medians of wall time against the ideal, ceil(requests / 20) x 20 ms,
//! where requests are the HTTP requests the broker received during the
//! apply (from `/v1/_sim/stats`, less the stats call itself): every one of
//! them waits the latency, at most 20 at a time. Sizes are 1,000 and 10,000
//! steps by default (`POOLFORM_BENCH_APPLY_SIZES=1000,10000`), to show the
//! apply scales linearly.

#[path = "common/serve.rs"]
mod serve;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use poolform::contract::labels::STACK_LABEL;
use poolform::contract::wire::{Destination, Event, Page, Pool, Snapshot};
use poolform::refbroker::server::Stats;
use serve::{BIN, Server, TOKEN};

const STACK: &str = "bench";
const LATENCY_MS: u64 = 20;
const PARALLELISM: u64 = 20;
const RUNS: usize = 5;
const SIZES_ENV: &str = "POOLFORM_BENCH_APPLY_SIZES";

fn destination(name: String) -> Destination {
    Destination::registered(&name, true, true, 1)
}

/// `pools` owned pools with one member each in the seed; the config gives
/// each a second, distinct member, so the plan is `pools` independent adds.
fn generate(dir: &Path, pools: usize) {
    let mut seed = Snapshot::default();
    let mut yaml = format!("stack: {STACK}\npools:\n");
    for p in 0..pools {
        let (kept, added) = (format!("d{p:05}-a"), format!("d{p:05}-b"));
        let _ = writeln!(yaml, "  p{p:05}: {{ members: [{kept}, {added}] }}");
        seed.destinations.push(destination(kept.clone()));
        seed.destinations.push(destination(added));
        seed.pools.push(Pool {
            name: format!("p{p:05}"),
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
/// every run applies the same changes.
fn serve(dir: &Path, state_dir: &Path, run: usize) -> Server {
    let latency = LATENCY_MS.to_string();
    Server::start(
        &state_dir.join(format!("state-{run}.json")),
        &dir.join("seed.json"),
        &["--latency", &latency],
        Stdio::null(),
    )
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
    let sizes: Vec<usize> = if full {
        std::env::var(SIZES_ENV)
            .unwrap_or_else(|_| "1000,10000".to_owned())
            .split(',')
            .map(|s| s.trim().parse().expect("sizes are step counts"))
            .collect()
    } else {
        vec![20]
    };
    let runs = if full { RUNS } else { 1 };
    // The broker fsyncs before it answers a write; on tmpfs that costs
    // nothing, so the figure would hide the durability cost.
    let state_root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(state_root).unwrap();
    let fs_type = filesystem(state_root);
    assert_ne!(fs_type, "tmpfs", "the state must be on disk");
    let mut walls = Vec::new();
    for &steps in &sizes {
        let dir = tempfile::tempdir_in(state_root).unwrap();
        generate(dir.path(), steps);
        let wall = measure(dir.path(), steps, runs, &fs_type);
        walls.push((steps, wall));
    }
    for pair in walls.windows(2) {
        let ((small, a), (large, b)) = (pair[0], pair[1]);
        println!(
            "scaling {small} -> {large} steps: wall x{:.2} for x{:.0} steps",
            b / a,
            large as f64 / small as f64
        );
    }
}

/// The file system type of `dir`, as `stat -f` names it.
fn filesystem(dir: &Path) -> String {
    let output = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .expect("stat runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Medians over `runs` applies with the broker's state file beside the
/// generated files in `dir`; returns the median wall in ms.
fn measure(dir: &Path, steps: usize, runs: usize, storage: &str) -> f64 {
    let (mut walls, mut executes, mut requests) = (Vec::new(), Vec::new(), Vec::new());
    let mut breakdown = String::new();
    for run in 0..runs {
        let server = serve(dir, dir, run);
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
    let requests = median(requests);
    let ideal_ms = (requests / PARALLELISM as f64).ceil() * LATENCY_MS as f64;
    println!(
        "apply of {steps} independent member adds, broker --latency {LATENCY_MS} \
         with its state file on {storage} (not tmpfs), --parallelism {PARALLELISM} (median of {runs} runs)"
    );
    println!(
        "  whole process wall: {wall:.0} ms = {:.2}x the ideal ceil({requests:.0} / {PARALLELISM}) x {LATENCY_MS} ms = {ideal_ms:.0} ms (target: <= 1.25x)",
        wall / ideal_ms
    );
    if !executes.is_empty() {
        let execute = median(executes);
        let steps_ideal = steps.div_ceil(PARALLELISM as usize) as f64 * LATENCY_MS as f64;
        println!(
            "  step phase (first to last add, from the broker's log): {execute:.0} ms = {:.2}x its ideal {steps_ideal:.0} ms",
            execute / steps_ideal
        );
    }
    println!(
        "  HTTP requests: {requests:.0} (one write per step: {steps}, plus paginated reads and the lease){breakdown}"
    );
    wall
}
