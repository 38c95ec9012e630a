//! Load measurement of the reference broker on loopback: requests/second
//! for `GET /v1/pools?limit=1000` over 10k pools / 100k members, the time of
//! one full paginated sweep of the pools, requests/second of member PUTs
//! (each a persisted mutation) on a 10k-pool and a 100-pool state, and the
//! rate of member PUTs early and late in growing one pool to 20k members.
//! Every run is bounded in time or in requests; the figures printed are
//! medians of several runs.

#[path = "common/serve.rs"]
mod serve;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use poolform::contract::wire::{Destination, LoadBalancing, Pool, Snapshot};
use serve::{Server, TOKEN};

/// Whether this is a real `cargo bench` run (which passes --bench) rather
/// than `cargo test --all-targets` running the benchmark once as a smoke
/// test: that run loads 100 pools for a moment instead of 10k for minutes.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Runs per figure (the median is printed).
fn runs() -> usize {
    if measuring() { 5 } else { 1 }
}

/// How long each run sends requests.
fn run_time() -> Duration {
    if measuring() {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(200)
    }
}
const CLIENTS: usize = 8;
const MEMBERS_PER_POOL: usize = 10;
/// Destinations outside every pool, for the member PUTs to add.
const SPARE: usize = 2000;

fn destination(name: String) -> Destination {
    Destination::registered(&name, true, true, 1)
}

/// `pools` pools of ten members each over `pools` destinations, plus spares.
fn seed(dir: &Path, pools: usize) -> std::path::PathBuf {
    let mut s = Snapshot::default();
    for i in 0..pools {
        s.destinations.push(destination(format!("d{i:05}")));
    }
    for i in 0..SPARE {
        s.destinations.push(destination(format!("spare{i:05}")));
    }
    for i in 0..pools {
        let mut members: Vec<String> = (0..MEMBERS_PER_POOL)
            .map(|k| format!("d{:05}", (i * MEMBERS_PER_POOL + k) % pools))
            .collect();
        members.sort();
        members.dedup();
        s.pools.push(Pool {
            name: format!("pool-{i:05}"),
            load_balancing: LoadBalancing::default(),
            default_credentials: Default::default(),
            labels: [("poolform.stack".to_owned(), "bench".to_owned())].into(),
            members,
            revision: 1,
        });
    }
    let path = dir.join(format!("seed-{pools}.json"));
    std::fs::write(&path, serde_json::to_vec(&s).unwrap()).unwrap();
    path
}

fn start(dir: &Path, seed: &Path, tag: &str) -> Server {
    let state = dir.join(format!("state-{tag}.json"));
    Server::start(&state, seed, &[], Stdio::inherit())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// Runs `CLIENTS` loops of `request(client, n)` for [`run_time`]; answers/second.
async fn throughput<F, Fut>(request: F) -> f64
where
    F: Fn(reqwest::Client, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (request, done, counter) = (request.clone(), done.clone(), counter.clone());
        let client = reqwest::Client::new();
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < run_time() {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if request(client.clone(), n).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn page_cursors(url: &str) -> Vec<Option<String>> {
    let client = reqwest::Client::new();
    let mut cursors = vec![None];
    loop {
        let mut u = format!("{url}/v1/pools?limit=1000");
        if let Some(Some(c)) = cursors.last() {
            u.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = client
            .get(u)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match page["next_cursor"].as_str() {
            Some(c) => cursors.push(Some(c.to_owned())),
            None => return cursors,
        }
    }
}

async fn bench_pool_pages(server: &Server, pools: usize) {
    let cursors = Arc::new(page_cursors(&server.url).await);
    let mut rps = Vec::new();
    let mut sweeps = Vec::new();
    let mut sweep_requests = 0;
    for _ in 0..runs() {
        let (url, cursors2) = (server.url.clone(), cursors.clone());
        rps.push(
            throughput(move |client, n| {
                let mut u = format!("{url}/v1/pools?limit=1000");
                if let Some(c) = &cursors2[n as usize % cursors2.len()] {
                    u.push_str(&format!("&cursor={c}"));
                }
                async move {
                    match client.get(u).bearer_auth(TOKEN).send().await {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    }
                }
            })
            .await,
        );
        let broker = poolform::client::http::HttpBroker::new(
            &server.url,
            Some(secrecy::SecretString::from(TOKEN.to_owned())),
            Default::default(),
        )
        .unwrap();
        let started = Instant::now();
        let live = poolform::contract::Broker::read_live(&broker)
            .await
            .unwrap();
        sweeps.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(live.pools.len(), pools);
        sweep_requests = broker.requests();
    }
    println!(
        "GET /v1/pools?limit=1000 ({pools} pools), {CLIENTS} clients: median {:.0} req/s ({:.0} pools/s); runs {:?}",
        median(rps.clone()),
        median(rps.clone()) * 1000.0,
        rps.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    println!(
        "read_live sweep ({pools} pools; {sweep_requests} paginated requests): median {:.0} ms; runs {:?}",
        median(sweeps.clone()),
        sweeps.iter().map(|s| s.round()).collect::<Vec<_>>()
    );
}

async fn bench_member_puts(server: &Server, pools: usize, label: &str) {
    let mut rps = Vec::new();
    let next = Arc::new(AtomicU64::new(0));
    for _ in 0..runs() {
        let (url, next) = (server.url.clone(), next.clone());
        rps.push(
            throughput(move |client, _| {
                // Each PUT adds a fresh (pool, spare) pair: a real, persisted change.
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                let pool = k % pools;
                let spare = (k / pools) % SPARE;
                let u = format!("{url}/v1/pools/pool-{pool:05}/members/spare{spare:05}");
                async move {
                    matches!(client.put(u).bearer_auth(TOKEN).send().await, Ok(r) if r.status().is_success())
                }
            })
            .await,
        );
    }
    println!(
        "PUT /v1/pools/{{name}}/members/{{destination}} ({label}), {CLIENTS} clients, each persisted before its answer: median {:.0} req/s; runs {:?}",
        median(rps.clone()),
        rps.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
}

/// Member PUTs growing one empty pool to `members` members, by [`CLIENTS`]
/// clients: the rate over the second and over the last quarter of the adds
/// (the first also pays for the clients' connecting).
/// A member write answers and records the membership, not the pool, so the
/// rate holds as the pool grows; when both were the whole pool, growing a
/// pool to 20k members took twelve times as long as growing one to 5k.
async fn bench_growing_pool(dir: &Path) {
    let members = if measuring() { 20_000 } else { 400 };
    let mut s = Snapshot::default();
    for i in 0..members {
        s.destinations.push(destination(format!("g{i:05}")));
    }
    // A fresh empty pool per run; a pool that does not load-balance takes
    // a destination that is in others.
    for run in 0..runs() {
        s.pools.push(Pool {
            name: format!("grow-{run}"),
            load_balancing: LoadBalancing::default(),
            default_credentials: Default::default(),
            labels: [("poolform.stack".to_owned(), "bench".to_owned())].into(),
            members: Vec::new(),
            revision: 1,
        });
    }
    let seed = dir.join("seed-grow.json");
    std::fs::write(&seed, serde_json::to_vec(&s).unwrap()).unwrap();
    let server = start(dir, &seed, "grow");
    let quarter = members / 4;
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for run in 0..runs() {
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (url, next) = (server.url.clone(), next.clone());
            let client = reqwest::Client::new();
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if k >= members {
                        return done;
                    }
                    let u = format!("{url}/v1/pools/grow-{run}/members/g{k:05}");
                    let answer = client.put(u).bearer_auth(TOKEN).send().await.unwrap();
                    assert!(answer.status().is_success(), "{}", answer.status());
                    done.push(started.elapsed().as_secs_f64());
                }
            }));
        }
        let mut at = Vec::with_capacity(members);
        for t in tasks {
            at.extend(t.await.unwrap());
        }
        at.sort_by(f64::total_cmp);
        assert_eq!(at.len(), members);
        first.push(quarter as f64 / (at[2 * quarter - 1] - at[quarter - 1]));
        last.push(quarter as f64 / (at[members - 1] - at[members - quarter - 1]));
    }
    let (first_rate, last_rate) = (median(first.clone()), median(last.clone()));
    println!(
        "PUT /v1/pools/{{name}}/members/{{destination}} growing one pool from 0 to {members} members, {CLIENTS} clients, each persisted before its answer: second quarter median {first_rate:.0} req/s, last quarter {last_rate:.0} req/s ({:.2}x the second); runs second {:?}, last {:?}",
        last_rate / first_rate,
        first.iter().map(|r| r.round()).collect::<Vec<_>>(),
        last.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pools = if measuring() { 10_000 } else { 100 };
        let big_seed = seed(dir.path(), pools);
        let started = Instant::now();
        let big = start(dir.path(), &big_seed, "big");
        println!(
            "startup with a {pools}-pool seed: {:.0} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
        bench_pool_pages(&big, pools).await;
        let label = format!("{pools} pools / {} members state", pools * MEMBERS_PER_POOL);
        bench_member_puts(&big, pools, &label).await;
        drop(big);
        let small_seed = seed(dir.path(), 100);
        let small = start(dir.path(), &small_seed, "small");
        bench_member_puts(&small, 100, "100 pools / 1k members state").await;
        drop(small);
        bench_growing_pool(dir.path()).await;
    });
}
