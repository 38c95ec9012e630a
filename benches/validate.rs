//! Benchmark: load and validate a generated config with 100,000 pool members
//! (1,000 load-balanced pools of 100, plus an app config and an app instance
//! per pool), from text in memory to `Validated<Config>`.

use std::fmt::Write;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use poolform::config::{merge, validate};

const POOLS: usize = 1_000;
const MEMBERS_PER_POOL: usize = 100;

fn generate() -> Vec<(String, String)> {
    let mut pools = String::from("stack: bench\npools:\n");
    for p in 0..POOLS {
        let _ = writeln!(pools, "  pool-{p}:");
        pools.push_str(
            "    load_balancing: {enabled: true, sticky_sessions: 10m, grace_period: 30s}\n",
        );
        pools.push_str("    drain: {sessions: disconnect, timeout: 15m}\n");
        pools.push_str("    min_members: 2\n    members:\n");
        for m in 0..MEMBERS_PER_POOL {
            let _ = writeln!(pools, "      - rds-{p}-{m}");
        }
    }
    let mut apps = String::from("app_configs:\n");
    for p in 0..POOLS {
        let _ = writeln!(
            apps,
            "  app-{p}: {{pool: pool-{p}, type: desktop, protocol: rdp}}"
        );
    }
    apps.push_str("app_instances:\n");
    for p in 0..POOLS {
        let _ = writeln!(
            apps,
            "  instance-{p}: {{app_config: app-{p}, group: group-{p}, destination: rds-{p}-0}}"
        );
    }
    vec![
        ("pools.yaml".to_owned(), pools),
        ("apps.yaml".to_owned(), apps),
    ]
}

fn bench(c: &mut Criterion) {
    let files = generate();
    let mut group = c.benchmark_group("validate");
    group.sample_size(20);
    group.bench_function("100k_members", |b| {
        b.iter(|| {
            let config = merge(files.clone()).map_err(|e| e.items);
            let validated = config.and_then(|c| validate(c).map_err(|e| e.items));
            assert!(validated.is_ok(), "the generated config is valid");
            validated
        })
    });
    group.finish();
}

/// The median of `runs` plain timings of load + validate, printed as one line
/// because criterion's summary shows the mean.
fn median(files: &[(String, String)], runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let validated = merge(files.to_vec()).map(validate);
            assert!(
                matches!(validated, Ok(Ok(_))),
                "the generated config is valid"
            );
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --all-targets` runs benchmarks once as a smoke test; only a
    // real `cargo bench` run (which passes --bench) measures the median.
    if std::env::args().any(|a| a == "--bench") {
        let files = generate();
        let members = POOLS * MEMBERS_PER_POOL;
        let median = median(&files, 11);
        println!("validate: {members} members, median of 11 runs: {median:.1?}");
    }
}
