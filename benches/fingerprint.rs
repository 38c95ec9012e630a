//! Benchmark: what one guess at a pool password costs an attacker holding
//! its fingerprint label (one Argon2id verification on one core), printed
//! as guesses per second.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use poolform::secret::{fingerprint, fingerprint_matches};

fn bench(c: &mut Criterion) {
    let label = fingerprint("maintenance-demo");
    let mut group = c.benchmark_group("fingerprint");
    group.sample_size(10);
    group.bench_function("one_guess", |b| {
        b.iter(|| fingerprint_matches(&label, "a-wrong-guess"))
    });
    group.finish();
}

/// Wrong guesses made on this thread in `budget`, as guesses per second.
fn guesses_per_second(budget: Duration) -> f64 {
    let label = fingerprint("maintenance-demo");
    let start = Instant::now();
    let mut guesses = 0u32;
    while start.elapsed() < budget {
        assert!(!fingerprint_matches(&label, &format!("guess-{guesses}")));
        guesses += 1;
    }
    f64::from(guesses) / start.elapsed().as_secs_f64()
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --all-targets` runs benchmarks once as a smoke test; only a
    // real `cargo bench` run (which passes --bench) measures.
    if std::env::args().any(|a| a == "--bench") {
        println!(
            "fingerprint: {:.1} guesses/s on one core",
            guesses_per_second(Duration::from_secs(10))
        );
    }
}
