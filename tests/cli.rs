//! The `poolform` binary end to end: exit codes, which stream gets what,
//! JSON output, colour, and the schema command. Each test works in a fresh
//! temp dir when it writes files.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn poolform() -> Command {
    let mut command = Command::cargo_bin("poolform").expect("binary built");
    command.env_remove("NO_COLOR").env("COLUMNS", "100");
    command
}

/// Copies a directory's files into a fresh temp dir.
fn copy_dir(from: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(from).expect("source dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    dir
}

#[test]
fn every_maintenance_state_validates_with_a_summary() {
    for state in ["steady", "rds-02-out", "rds-02-back"] {
        poolform()
            .args(["validate", &format!("examples/maintenance/{state}")])
            .assert()
            .code(0)
            .stdout("2 pools, 1 app config, 1 app instance: valid\n")
            .stderr("");
    }
}

#[test]
fn a_grace_period_without_sticky_sessions_warns_and_still_validates() {
    let dir = copy_dir("examples/maintenance/steady");
    let pools = dir.path().join("pools.yaml");
    let text = std::fs::read_to_string(&pools).expect("pools.yaml");
    std::fs::write(
        &pools,
        text.replace("sticky_sessions: 10m", "sticky_sessions: 0"),
    )
    .expect("write");
    let expected_place = format!("{}:8:72", pools.display());
    poolform()
        .args(["validate", "--color", "never"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout("2 pools, 1 app config, 1 app instance: valid\n")
        .stderr(predicate::str::contains("config::grace_without_sticky"))
        .stderr(predicate::str::contains(expected_place))
        .stderr(predicate::str::contains("its sticky-session period is 0"));
}

#[test]
fn a_dangling_pool_reference_is_located_and_underlined() {
    let dir = copy_dir("examples/maintenance/steady");
    let apps = dir.path().join("apps.yaml");
    let text = std::fs::read_to_string(&apps).expect("apps.yaml");
    std::fs::write(
        &apps,
        text.replace("pool: maintenance", "pool: maintenanse"),
    )
    .expect("write");
    let expected_place = format!("{}:6:11", apps.display());
    poolform()
        .args(["validate", "--color", "never"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(expected_place))
        .stderr(predicate::str::contains(
            "pool 'maintenanse', which is not declared",
        ))
        .stderr(predicate::str::contains("─────┬─────"))
        .stderr(predicate::str::contains("did you mean 'maintenance'?"));
}

#[test]
fn json_format_lists_diagnostics_on_stdout() {
    let assert = poolform()
        .args([
            "validate",
            "--format",
            "json",
            "tests/invalid/29-many-problems.yaml",
        ])
        .assert()
        .code(1);
    let output: serde_json::Value =
        serde_json::from_slice(&assert.get_output().stdout).expect("JSON on stdout");
    assert_eq!(output["version"], 1);
    assert_eq!(output["valid"], false);
    let diagnostics = output["diagnostics"].as_array().expect("list");
    assert_eq!(diagnostics.len(), 4);
    let dangling = diagnostics
        .iter()
        .find(|d| d["code"] == "config::dangling_reference")
        .expect("dangling reference reported");
    assert_eq!(dangling["file"], "tests/invalid/29-many-problems.yaml");
    assert_eq!(dangling["line"], 8);
    assert_eq!(dangling["column"], 19);
    assert_eq!(
        dangling["message"],
        "app config 'desktop' refers to pool 'lvie', which is not declared"
    );
}

#[test]
fn json_format_on_a_valid_config() {
    poolform()
        .args([
            "validate",
            "--format",
            "json",
            "examples/maintenance/steady",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"valid\": true"));
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let has_escape = predicate::str::contains("\u{1b}[");
    poolform()
        .args([
            "validate",
            "--color",
            "always",
            "tests/invalid/09-dangling-pool.yaml",
        ])
        .assert()
        .code(1)
        .stderr(has_escape.clone());
    poolform()
        .args([
            "validate",
            "--color",
            "never",
            "tests/invalid/09-dangling-pool.yaml",
        ])
        .assert()
        .code(1)
        .stderr(has_escape.clone().not());
    poolform()
        .env("NO_COLOR", "1")
        .args(["validate", "tests/invalid/09-dangling-pool.yaml"])
        .assert()
        .code(1)
        .stderr(has_escape.not());
}

#[test]
fn a_missing_path_is_an_error() {
    poolform()
        .args(["validate", "does/not/exist.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read does/not/exist.yaml"));
}

#[test]
fn a_directory_without_yaml_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    poolform()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "contains no *.yaml or *.yml files",
        ));
}

#[test]
fn schema_writes_the_committed_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("nested");
    poolform().args(["schema", "-o"]).arg(&out).assert().code(0);
    let written = std::fs::read_to_string(out.join("config.schema.json")).expect("written");
    let committed =
        std::fs::read_to_string(Path::new("schema/config.schema.json")).expect("committed");
    assert_eq!(written, committed);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    // Bug: `completions` panicked (exit 101) when its reader went away.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("poolform"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
}

/// Runs `args` with no broker configured (and the examples' secret set)
/// and returns its stderr, after checking that it failed with exit 1.
fn failure(args: &[&str]) -> String {
    let assert = poolform()
        .env_remove("POOLFORM_BROKER")
        .env_remove("POOLFORM_TOKEN")
        .env("MAINT_PASSWORD", "unused")
        .args(["--color", "never"])
        .args(args)
        .assert()
        .code(1);
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

#[test]
fn a_failure_ends_with_one_poolform_line_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.json");
    let cases = [
        (
            vec!["show", missing.to_str().expect("utf-8")],
            "poolform: cannot read ",
        ),
        (
            vec!["show", "examples/maintenance/broker-seed.json"],
            "is not a poolform plan file: ",
        ),
        (
            vec!["plan", "examples/maintenance/steady"],
            "poolform: no broker given: pass --broker URL",
        ),
        (
            vec!["plan", "examples/maintenance/steady", "--broker", "ftp://x"],
            "poolform: broker URL \"ftp://x\" must start with http://",
        ),
        (
            vec!["plan", "tests/invalid/09-dangling-pool.yaml"],
            "poolform: 1 problem in tests/invalid/09-dangling-pool.yaml",
        ),
        (
            vec!["validate", "tests/invalid/29-many-problems.yaml"],
            "poolform: 4 problems in tests/invalid/29-many-problems.yaml",
        ),
        (
            vec!["export", "--stack", "no good"],
            "poolform: 'no good' is not a valid stack name (",
        ),
        (
            vec!["import", "--stack", "no good", "pool/live"],
            "poolform: 'no good' is not a valid stack name (",
        ),
    ];
    for (args, expected) in cases {
        let stderr = failure(&args);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.contains(expected),
            "{args:?}: {expected:?} not in\n{stderr}"
        );
        assert_eq!(
            stderr.matches("poolform:").count(),
            1,
            "{args:?}: one poolform line in\n{stderr}"
        );
    }
}

#[test]
fn json_diagnostics_leave_stderr_empty() {
    let stderr = failure(&[
        "validate",
        "--format",
        "json",
        "tests/invalid/29-many-problems.yaml",
    ]);
    assert_eq!(stderr, "");
}
