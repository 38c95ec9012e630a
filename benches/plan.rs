//! Whole-process `poolform plan` benchmark: generates a config and a matching
//! broker seed (at full size 10k pools, 100k members, 100k app instances),
//! serves the seed from the reference broker on loopback, and times the plan
//! process at 1%, 10% and 100% of that size. Prints medians of wall time and
//! peak RSS (from /usr/bin/time).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use poolform::contract::labels::STACK_LABEL;
use poolform::contract::wire::{
    AppConfig, AppInstance, AppType, Credentials, Destination, Labels, LoadBalancing, Maintenance,
    Pool, Protocol, SessionCounts, Snapshot,
};

const BIN: &str = env!("CARGO_BIN_EXE_poolform");
const STACK: &str = "bench";
const MEMBERS_PER_POOL: usize = 10;
const RUNS: usize = 5;

fn owned() -> Labels {
    [(STACK_LABEL.to_owned(), STACK.to_owned())].into()
}

/// Writes `pools` pools of ten members each, one app config per pool and ten
/// app instances per config. The live seed matches except that 1% of pools
/// lose a member in the config, so the plan has real work to show.
fn generate(dir: &Path, pools: usize) {
    let mut yaml = String::with_capacity(pools * 400);
    let mut seed = Snapshot::default();
    let _ = writeln!(yaml, "stack: {STACK}\npools:");
    for p in 0..pools {
        let lb = p % 2 == 0;
        let members: Vec<String> = (0..MEMBERS_PER_POOL)
            .map(|m| format!("d{p:05}-{m}"))
            .collect();
        let declared = if p % 100 == 0 {
            &members[1..]
        } else {
            &members[..]
        };
        let _ = writeln!(
            yaml,
            "  p{p:05}:\n    load_balancing: {{ enabled: {lb}, sticky_sessions: {}, grace_period: 30s }}\n    \
             drain: {{ sessions: disconnect, timeout: 5m }}\n    members: [{}]",
            if lb { "10m" } else { "0" },
            declared.join(", ")
        );
        for m in &members {
            seed.destinations.push(Destination {
                name: m.clone(),
                online: true,
                process_execution_ready: true,
                lb_service_installed: lb,
                maintenance: Maintenance::default(),
                sessions: SessionCounts {
                    active: 1,
                    disconnected: 0,
                },
                labels: Labels::new(),
                draining: None,
                lb_service_leftover: None,
                revision: 1,
            });
        }
        seed.pools.push(Pool {
            name: format!("p{p:05}"),
            load_balancing: LoadBalancing {
                enabled: lb,
                sticky_sessions_minutes: if lb { 10 } else { 0 },
                grace_period_seconds: 30,
            },
            default_credentials: Credentials::default(),
            labels: owned(),
            members,
            revision: 1,
        });
    }
    let _ = writeln!(yaml, "app_configs:");
    for p in 0..pools {
        let _ = writeln!(
            yaml,
            "  c{p:05}: {{ pool: p{p:05}, type: desktop, protocol: rdp }}"
        );
        seed.app_configs.push(AppConfig {
            name: format!("c{p:05}"),
            pool: format!("p{p:05}"),
            app_type: AppType::Desktop,
            protocol: Protocol::Rdp,
            admin_session: false,
            keep_credentials_on_destination_change: false,
            allow_destination_change: false,
            labels: owned(),
            revision: 1,
        });
    }
    let _ = writeln!(yaml, "app_instances:");
    for p in 0..pools {
        for i in 0..MEMBERS_PER_POOL {
            // Instance 0 of each pool would point at the member that 1% of
            // pools drop, so it points at member 1 instead.
            let destination = format!("d{p:05}-{}", i.max(1));
            let _ = writeln!(
                yaml,
                "  i{p:05}-{i}: {{ app_config: c{p:05}, user: u{p}-{i}@corp.example, destination: {destination} }}"
            );
            seed.app_instances.push(AppInstance {
                name: format!("i{p:05}-{i}"),
                app_config: format!("c{p:05}"),
                user: Some(format!("u{p}-{i}@corp.example")),
                group: None,
                destination: Some(destination),
                labels: owned(),
                revision: 1,
            });
        }
    }
    std::fs::write(dir.join("config.yaml"), yaml).unwrap();
    std::fs::write(dir.join("seed.json"), serde_json::to_vec(&seed).unwrap()).unwrap();
}

/// The broker process, killed when dropped: a failed plan run panics, and
/// the server must not outlive the benchmark (it would hold a core).
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it, as a smoke test at the smallest size.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[(&str, usize)] = if full {
        &[("1%", 100), ("10%", 1_000), ("100%", 10_000)]
    } else {
        &[("1%", 100)]
    };
    let runs = if full { RUNS } else { 1 };
    let token = "bench-token";
    println!(
        "whole-process plan against the reference broker over loopback (median of {runs} runs)"
    );
    println!(
        "{:>7} {:>8} {:>9} {:>11} {:>10} {:>12}",
        "size", "pools", "members", "instances", "wall ms", "peak RSS MB"
    );
    for &(label, pools) in sizes {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), pools);
        let mut server = Serving(
            Command::new(BIN)
                .args([
                    "broker",
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--token",
                    token,
                ])
                .arg("--state")
                .arg(dir.path().join("state.json"))
                .arg("--seed")
                .arg(dir.path().join("seed.json"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(server.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("server prints its address")
            .to_owned();
        let (mut walls, mut rss) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let started = Instant::now();
            let output = Command::new("/usr/bin/time")
                .args(["-f", "%M"])
                .arg(BIN)
                .arg("plan")
                .arg(dir.path().join("config.yaml"))
                .args(["--broker", &url, "--format", "json"])
                .env("POOLFORM_TOKEN", token)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            walls.push(started.elapsed().as_secs_f64() * 1000.0);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "plan failed: {stderr}");
            let kb: f64 = stderr
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .expect("time prints max RSS");
            rss.push(kb / 1024.0);
        }
        drop(server);
        println!(
            "{label:>7} {pools:>8} {:>9} {:>11} {:>10.0} {:>12.1}",
            pools * MEMBERS_PER_POOL,
            pools * MEMBERS_PER_POOL,
            median(walls),
            median(rss)
        );
    }
}
