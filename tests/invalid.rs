//! The invalid-config corpus: every entry of tests/invalid (a file, or a
//! directory merged as one config), plus what git cannot hold (a FIFO),
//! made at run time. One runner checks each case twice: loaded in-process,
//! it is rejected with diagnostics that are all located at a real line and
//! column (never the file-start fallback), rendered as a snapshot; run as
//! `poolform validate CASE` and as `poolform apply CASE --auto-approve`
//! against an embedded broker, it exits 1 with that location on stderr,
//! without a panic, without opening the broker (so with zero writes),
//! within bounded time and memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use poolform::config;
use poolform::diagnostic::SourceLocation;
use poolform::render::diagnostics::{self, TextStyle};

use crate::support::{bin, seed_path};

/// Far above the few milliseconds a case takes, for a loaded machine.
const TIME_BOUND: Duration = Duration::from_secs(60);
/// Address space a case may use, in KiB (1 GiB): an alias or budget
/// blow-up would need far more.
const MEMORY_BOUND_KIB: u64 = 1024 * 1024;

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir("tests/invalid")
        .expect("tests/invalid exists")
        .map(|entry| entry.expect("readable entry").path())
        .collect();
    cases.sort();
    cases
}

/// The file-start fallback a diagnostic gets when the parser gave no
/// position: line 1, column 1, nothing underlined.
fn is_fallback(location: &SourceLocation) -> bool {
    location.line == 1 && location.column == 1 && location.len == 0
}

/// Loads `path`, checks that every diagnostic is located, and returns the
/// first location and the rendered text.
fn rejected(path: &Path) -> (SourceLocation, String) {
    let rejected = match config::load(path) {
        Ok(_) => panic!("{} should be invalid", path.display()),
        Err(rejected) => rejected,
    };
    assert!(!rejected.items.is_empty());
    for diagnostic in &rejected.items {
        let label = diagnostic
            .primary
            .as_ref()
            .unwrap_or_else(|| panic!("{}: unlocated {diagnostic:?}", path.display()));
        assert!(
            !is_fallback(&label.location),
            "{}: located only at the file start: {diagnostic:?}",
            path.display()
        );
    }
    let mut out = Vec::new();
    diagnostics::text(
        &mut out,
        &rejected.items,
        &rejected.sources,
        TextStyle::PLAIN,
    )
    .expect("render to memory");
    let first = rejected.items[0].primary.clone().expect("located");
    (first.location, String::from_utf8(out).expect("UTF-8"))
}

/// `poolform validate CASE`, and `poolform apply CASE` against an embedded
/// broker that would be created (from the example seed) the moment it is
/// opened, under a memory limit.
fn poolform(command: &str, case: &Path, state: &Path) -> (Option<i32>, String) {
    let broker = format!("file:{}?seed={}", state.display(), seed_path().display());
    let extra: &[&str] = match command {
        "apply" => &["--auto-approve", "--broker", &broker],
        _ => &[],
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_BOUND_KIB} && exec \"$@\""))
        .arg("sh")
        .arg(bin())
        .arg(command)
        .arg(case)
        .args(extra)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("POOLFORM_BROKER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("poolform starts");
    let started = Instant::now();
    while child.try_wait().expect("waitable").is_none() {
        if started.elapsed() > TIME_BOUND {
            let _ = child.kill();
            panic!("{}: still running after {TIME_BOUND:?}", case.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("finished");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Both checks of one case; the in-process rendering is returned for the
/// snapshot.
fn check(case: &Path) -> String {
    let (first, rendered) = rejected(case);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    for command in ["validate", "apply"] {
        let (code, stderr) = poolform(command, case, &state);
        let what = format!("{command} {}", case.display());
        assert_eq!(code, Some(1), "{what}: exit {code:?}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{what}:\n{stderr}");
        // The snippet header names the file and line (its column is
        // counted by the renderer from the underlined bytes).
        let header = format!("[{}:{}:", first.file, first.line);
        assert!(
            stderr.contains(&header),
            "{what}: {header} is not on stderr:\n{stderr}"
        );
    }
    assert!(!state.exists(), "{}: the broker was opened", case.display());
    rendered
}

/// A directory whose apps.yaml is a FIFO (git cannot hold one): reading
/// it would wait for a writer forever.
fn fifo_case() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pools.yaml"),
        "stack: corp-rds\npools:\n  live:\n    members: [rds-01]\n",
    )
    .unwrap();
    let made = Command::new("mkfifo")
        .arg(dir.path().join("apps.yaml"))
        .status()
        .unwrap();
    assert!(made.success());
    dir
}

#[test]
fn every_invalid_config_is_rejected_located_with_zero_writes() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for path in &cases {
        let name = path
            .file_stem()
            .expect("named")
            .to_string_lossy()
            .into_owned();
        insta::assert_snapshot!(name, check(path));
    }
    let fifo = fifo_case();
    check(fifo.path());
    eprintln!(
        "{} invalid configs, each rejected with located diagnostics and zero writes",
        cases.len() + 1
    );
}

#[test]
fn the_file_start_fallback_does_not_count_as_located() {
    assert!(is_fallback(&SourceLocation::file_start("x.yaml")));
    let real = SourceLocation {
        len: 3,
        ..SourceLocation::file_start("x.yaml")
    };
    assert!(!is_fallback(&real));
}
