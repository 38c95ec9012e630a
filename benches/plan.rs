//! Whole-process `poolform plan` benchmark over the shapes of change users
//! make: drop, replace (add + remove), move between load-balanced pools,
//! settings change, app-instance retarget, drains with sessions, and
//! replace in a stack of one pool (where one pool's member list grows with
//! the size, not the number of pools), each at 1%, 10% and 100% changed,
//! on stacks of 1k to 1M members. The reference
//! broker serves each shape's live state on 127.0.0.1 (started once per
//! shape and size; a plan only reads); every plan is a fresh release-build
//! process. Prints one table: median wall time and peak RSS (GNU time's
//! `%M`) per shape, share and size, and the growth per 10x size (of the
//! medians, and the lowest and highest of each run's own); then one
//! figure for errors at scale: `poolform validate` printing 100 located
//! diagnostics on a 12 MB config.
//!
//! `POOLFORM_BENCH_SIZES=1k,10k,100k,1m` picks the sizes (default 1k, 10k,
//! 100k), `POOLFORM_BENCH_SHAPES=drop,move` the shapes, `POOLFORM_BENCH_RUNS`
//! the runs per figure (default 5). Runs of one shape interleave its sizes
//! and shares. Without `--bench` (as `cargo test --all-targets` runs it) it
//! is a smoke test: 1k members, one run each, every plan is checked to have
//! exactly the steps its shape makes and every diagnostic to be printed.

#[path = "plan/generate.rs"]
mod generate;
#[path = "common/serve.rs"]
mod serve;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use generate::{Shape, changed_count, units};
use serve::{BIN, Server, TOKEN};

const SHARES: [usize; 3] = [1, 10, 100];

/// `1k`, `100k`, `1m` or a plain number.
fn parse_size(text: &str) -> usize {
    let text = text.trim().to_ascii_lowercase();
    let (digits, factor) = match text.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match text.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (text.as_str(), 1),
        },
    };
    let n: usize = digits
        .parse()
        .unwrap_or_else(|_| panic!("not a size: {text}"));
    assert!(
        n * factor >= 200 && (n * factor).is_multiple_of(100),
        "a size is a multiple of 100 members, at least 200: {text}"
    );
    n * factor
}

fn label(size: usize) -> String {
    match size {
        s if s.is_multiple_of(1_000_000) => format!("{}M", s / 1_000_000),
        s if s.is_multiple_of(1_000) => format!("{}k", s / 1_000),
        s => s.to_string(),
    }
}

struct Settings {
    measuring: bool,
    sizes: Vec<usize>,
    shapes: Vec<Shape>,
    runs: usize,
    /// `POOLFORM_BENCH_KEEP=DIR`: write each shape's seed and configs under
    /// DIR and keep them, so a profiler can replay one plan by hand.
    keep: Option<std::path::PathBuf>,
}

impl Settings {
    fn from_env() -> Settings {
        // `cargo bench` passes --bench; `cargo test --all-targets` does not.
        let measuring = std::env::args().any(|a| a == "--bench");
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let sizes = match env("POOLFORM_BENCH_SIZES") {
            Some(list) => list.split(',').map(parse_size).collect(),
            None if measuring => vec![1_000, 10_000, 100_000],
            None => vec![1_000],
        };
        let shapes = match env("POOLFORM_BENCH_SHAPES") {
            Some(list) => list
                .split(',')
                .map(|name| {
                    *Shape::ALL
                        .iter()
                        .find(|s| s.name() == name.trim())
                        .unwrap_or_else(|| panic!("no shape {name}"))
                })
                .collect(),
            None => Shape::ALL.to_vec(),
        };
        let runs = match env("POOLFORM_BENCH_RUNS") {
            Some(n) => n.parse().expect("POOLFORM_BENCH_RUNS is a number"),
            None if measuring => 5,
            None => 1,
        };
        Settings {
            measuring,
            sizes,
            shapes,
            runs,
            keep: env("POOLFORM_BENCH_KEEP").map(Into::into),
        }
    }
}

/// A plan that runs longer than this is stopped and reported as a timeout
/// (`POOLFORM_BENCH_TIMEOUT`, seconds).
fn timeout() -> Duration {
    let seconds = std::env::var("POOLFORM_BENCH_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(seconds)
}

/// One whole process of the release binary with `args`, timed by GNU
/// time: its exit status, wall seconds, peak RSS in MB and standard error
/// (without time's line), or `None` when it ran out of time.
fn timed(dir: &Path, args: &[&OsStr], stdout: Stdio) -> Option<(ExitStatus, f64, f64, String)> {
    let err_path = dir.join("run.err");
    let started = Instant::now();
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(BIN)
        .args(args)
        .env("POOLFORM_TOKEN", TOKEN)
        .stdout(stdout)
        .stderr(File::create(&err_path).expect("create run.err"))
        .spawn()
        .expect("run /usr/bin/time poolform");
    // Polled rather than waited on, so that a run can be given up on; the
    // poll adds at most a millisecond.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for poolform") {
            break status;
        }
        if started.elapsed() > timeout() {
            // `time` waits for its child, which killing `time` leaves running.
            let id = child.id();
            let children = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children"));
            for pid in children.unwrap_or_default().split_whitespace() {
                let _ = Command::new("kill").arg(pid).status();
            }
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let wall = started.elapsed().as_secs_f64();
    let mut stderr = std::fs::read_to_string(&err_path).expect("read run.err");
    let kb: f64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("time prints the peak RSS last: {stderr}"));
    let body = stderr.trim_end().rfind('\n').map_or(0, |i| i + 1);
    stderr.truncate(body);
    Some((status, wall, kb / 1024.0, stderr))
}

/// One plan process: wall seconds and peak RSS in MB, or `None` when it
/// ran out of time. Checks that it succeeded (or broke the safety rules its
/// shape breaks on purpose) and, when `check` is set, that its JSON has
/// exactly `check` steps.
fn plan_once(
    dir: &Path,
    config: &Path,
    url: &str,
    violates: bool,
    check: Option<usize>,
) -> Option<(f64, f64)> {
    let out_path = dir.join("plan.out");
    let stdout = match check {
        Some(_) => Stdio::from(File::create(&out_path).expect("create plan.out")),
        None => Stdio::null(),
    };
    let args = ["plan".as_ref(), config.as_os_str()];
    let tail = ["--broker", url, "--format", "json"].map(OsStr::new);
    let (status, wall, rss, stderr) = timed(dir, &[&args[..], &tail[..]].concat(), stdout)?;
    if violates {
        assert!(
            stderr.contains("safety"),
            "the plan should break a safety rule: {stderr}"
        );
    } else {
        assert!(status.success(), "plan failed: {stderr}");
    }
    if let Some(expected) = check {
        let text = std::fs::read(&out_path).expect("read plan.out");
        let plan: serde_json::Value = serde_json::from_slice(&text).expect("plan JSON");
        let steps = plan["steps"].as_array().map_or(0, Vec::len);
        assert_eq!(steps, expected, "steps of {}", config.display());
    }
    Some((wall, rss))
}

/// Diagnostics the error-reporting figure prints.
const DIAGNOSTICS: usize = 100;

/// `poolform validate` of a large config with [`DIAGNOSTICS`] errors in
/// it: the config's size in MB and the median (wall, RSS), or `None` for a
/// timeout. Checks that every diagnostic is printed.
fn measure_diagnostics(settings: &Settings) -> (f64, Option<(f64, f64)>) {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = settings
        .keep
        .as_ref()
        .map_or(temp.path().to_owned(), |root| {
            let kept = root.join("diagnostics");
            std::fs::create_dir_all(&kept).expect("create the kept directory");
            eprintln!("plan bench: keeping {}", kept.display());
            kept
        });
    let config = dir.join("config");
    // 120k members write about 12 MB of YAML.
    let members = if settings.measuring { 120_000 } else { 1_000 };
    let bytes = generate::broken_config(&config, members, DIAGNOSTICS).expect("write the config");
    let mut runs = Vec::new();
    for _ in 0..settings.runs {
        let args = ["validate".as_ref(), config.as_os_str()];
        let Some((status, wall, rss, stderr)) = timed(&dir, &args, Stdio::null()) else {
            return (bytes as f64 / 1e6, None);
        };
        assert!(!status.success(), "validate took a broken config");
        let printed = stderr.matches("config::dangling_reference").count();
        assert_eq!(printed, DIAGNOSTICS, "diagnostics printed: {stderr}");
        runs.push((wall, rss));
    }
    let wall = median(runs.iter().map(|r| r.0).collect());
    let rss = median(runs.iter().map(|r| r.1).collect());
    (bytes as f64 / 1e6, Some((wall, rss)))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One cell of the table: its runs' (wall, RSS), in run order.
struct Cell {
    runs: Vec<(f64, f64)>,
}

impl Cell {
    fn median_wall(&self) -> f64 {
        median(self.runs.iter().map(|r| r.0).collect())
    }

    fn median_rss(&self) -> f64 {
        median(self.runs.iter().map(|r| r.1).collect())
    }
}

/// Cells by (shape, share, size); `None` for a timeout.
type Figures = BTreeMap<(usize, usize, usize), Option<Cell>>;

/// The lowest and highest growth of `larger` over `smaller` run by run.
/// Run `i` of each size is measured in the same pass over the sizes, so a
/// run's ratio divides figures taken a minute apart at most: where the
/// ratio of the medians moves with the machine (one slow minute on one
/// side), these show whether every run grew that much. `None` with fewer
/// than two runs.
fn paired_growth(smaller: &Cell, larger: &Cell) -> Option<(f64, f64)> {
    let ratios: Vec<f64> = smaller
        .runs
        .iter()
        .zip(&larger.runs)
        .map(|(s, l)| l.0 / s.0)
        .collect();
    let low = ratios.iter().copied().reduce(f64::min)?;
    let high = ratios.iter().copied().reduce(f64::max)?;
    (ratios.len() > 1).then_some((low, high))
}

/// Every size and share of one shape, runs interleaved across both.
fn measure_shape(settings: &Settings, shape: Shape, figures: &mut Figures) {
    let temp = tempfile::tempdir().expect("temp dir");
    // Every size's inputs and broker first, so that the runs of the sizes
    // can interleave (below).
    let mut stacks = Vec::new();
    for &size in &settings.sizes {
        eprintln!("plan bench: {} at {} members", shape.name(), label(size));
        let dir = match &settings.keep {
            Some(root) => {
                let kept = root.join(format!("{}-{}", shape.name(), label(size)));
                std::fs::create_dir_all(&kept).expect("create the kept directory");
                eprintln!("plan bench: keeping {}", kept.display());
                kept
            }
            None => temp.path().join(label(size)),
        };
        std::fs::create_dir_all(&dir).expect("create the stack's directory");
        generate::seed(&dir.join("seed.json"), shape, size).expect("write the seed");
        for share in SHARES {
            let config = dir.join(format!("config-{share}"));
            generate::config(&config, shape, size, share).expect("write the config");
        }
        settle(&dir);
        let server = Server::start(
            &dir.join("state.json"),
            &dir.join("seed.json"),
            &[],
            Stdio::inherit(),
        );
        stacks.push((size, dir, server));
    }
    // A growth factor divides one size's figure by another's, so both are
    // measured in the same minutes: run by run, every size and share in
    // turn. Measured one size after the other, a machine that slowed down
    // for a few minutes (this one is a virtual machine) moved one side of
    // the ratio alone.
    let mut samples: BTreeMap<(usize, usize), Vec<(f64, f64)>> = BTreeMap::new();
    let mut timed_out = Vec::new();
    for _ in 0..settings.runs {
        for (size, dir, server) in &stacks {
            for share in SHARES {
                if timed_out.contains(&(*size, share)) {
                    continue;
                }
                let expected =
                    shape.expected_steps(changed_count(units(shape, *size), share), share);
                let check = (!settings.measuring).then_some(expected);
                let config = dir.join(format!("config-{share}"));
                match plan_once(dir, &config, &server.url, shape.violates(share), check) {
                    Some(sample) => samples.entry((*size, share)).or_default().push(sample),
                    None => timed_out.push((*size, share)),
                }
            }
        }
    }
    drop(stacks);
    let index = Shape::ALL.iter().position(|s| *s == shape).unwrap_or(0);
    for &size in &settings.sizes {
        for share in SHARES {
            let figure = samples
                .remove(&(size, share))
                .filter(|_| !timed_out.contains(&(size, share)))
                .map(|runs| Cell { runs });
            figures.insert((index, share, size), figure);
        }
    }
}

/// Writes the generated inputs to disk before anything is timed: at 1M
/// members they are 0.7 GB, and the kernel's write-back of them otherwise
/// runs during the first plans, on the same two cores.
fn settle(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("list the inputs").flatten() {
        let path = entry.path();
        if path.is_dir() {
            settle(&path);
        } else {
            File::open(&path)
                .and_then(|file| file.sync_all())
                .unwrap_or_else(|e| panic!("sync {}: {e}", path.display()));
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Seconds to touch a gigabyte of memory this process never had, one
/// write per page: the cost of the page faults every plan's fresh memory
/// pays. On this virtual machine it drifts with the host (memory the host
/// has taken back costs several times what memory it still backs), and
/// the larger plans touch the most, so the figure is printed beside the
/// table as the load average is.
fn fresh_memory_cost() -> f64 {
    const GB: usize = 1 << 30;
    let started = Instant::now();
    // Zeroed: mapped fresh and left untouched until written.
    let mut block = vec![0u8; GB];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&block);
    started.elapsed().as_secs_f64()
}

/// The machine's state at one moment, printed beside the table.
struct Conditions {
    load: String,
    /// Not sampled in the smoke run, which measures nothing: a gigabyte
    /// is a lot to fault in for a test.
    fresh_memory: Option<f64>,
}

impl Conditions {
    fn now(settings: &Settings) -> Conditions {
        Conditions {
            load: load_average(),
            fresh_memory: settings.measuring.then(fresh_memory_cost),
        }
    }
}

fn print_table(settings: &Settings, figures: &Figures, before: &Conditions) {
    println!(
        "\nwhole `poolform plan DIR --broker URL --format json` against `poolform broker serve` on \
         127.0.0.1, {}; median of {} runs: wall ms / peak RSS MB",
        if settings.measuring {
            "release build"
        } else {
            "smoke run (test build, not a measurement)"
        },
        settings.runs
    );
    let after = Conditions::now(settings);
    println!(
        "load average (1, 5, 15 min) before: {}; after: {}",
        before.load, after.load
    );
    if let (Some(before), Some(after)) = (before.fresh_memory, after.fresh_memory) {
        println!("touching 1 GB of fresh memory before: {before:.2} s; after: {after:.2} s");
    }
    let mut header = format!("{:<9} {:>5}", "shape", "share");
    for size in &settings.sizes {
        header.push_str(&format!(" | {:>17}", label(*size)));
    }
    header.push_str(" | wall growth per 10x: of the medians (each run's, lowest-highest)");
    println!("{header}");
    for (index, shape) in Shape::ALL.iter().enumerate() {
        if !settings.shapes.contains(shape) {
            continue;
        }
        for share in SHARES {
            let mut line = format!("{:<9} {:>4}%", shape.name(), share);
            let mut growth = Vec::new();
            for (i, size) in settings.sizes.iter().enumerate() {
                let cell = match figures.get(&(index, share, *size)) {
                    Some(Some(cell)) => cell,
                    Some(None) => {
                        let limit = format!("> {} s", timeout().as_secs());
                        line.push_str(&format!(" | {limit:>17}"));
                        continue;
                    }
                    None => {
                        line.push_str(&format!(" | {:>17}", "-"));
                        continue;
                    }
                };
                let wall = cell.median_wall();
                line.push_str(&format!(
                    " | {:>7.0} ms {:>5.0} MB",
                    wall * 1000.0,
                    cell.median_rss()
                ));
                let previous = i.checked_sub(1).map(|p| settings.sizes[p]);
                if let Some(previous) = previous.filter(|p| p * 10 == *size)
                    && let Some(Some(before)) = figures.get(&(index, share, previous))
                {
                    let runs = paired_growth(before, cell)
                        .map(|(low, high)| format!(" (runs {low:.1}-{high:.1}x)"))
                        .unwrap_or_default();
                    growth.push(format!(
                        "{}->{} {:.1}x{runs}",
                        label(previous),
                        label(*size),
                        wall / before.median_wall()
                    ));
                }
            }
            println!("{line} | {}", growth.join(", "));
        }
    }
}

fn main() {
    let settings = Settings::from_env();
    let before = Conditions::now(&settings);
    let mut figures = Figures::new();
    for &shape in &settings.shapes {
        measure_shape(&settings, shape, &mut figures);
    }
    eprintln!("plan bench: {DIAGNOSTICS} diagnostics");
    let diagnostics = measure_diagnostics(&settings);
    print_table(&settings, &figures, &before);
    let (mb, figure) = diagnostics;
    let figure = figure.map_or_else(
        || format!("> {} s", timeout().as_secs()),
        |(wall, rss)| format!("{:.0} ms {:.0} MB", wall * 1000.0, rss),
    );
    println!(
        "\n`poolform validate DIR` printing {DIAGNOSTICS} diagnostics on a {mb:.1} MB config: {figure}"
    );
}
