//! `poolform plan` and `poolform show` as a user runs them: the real binary on
//! the maintenance runbook states against an embedded broker in a temp dir
//! (snapshots of all three renderings), exit codes, located violations, saved
//! plans, `--target`, colour, and the refresh's request count against the
//! reference broker over loopback.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::Command;
use poolform::contract::labels::STACK_LABEL;
use poolform::contract::wire::{
    AppConfig, AppInstance, AppType, Credentials, Destination, Labels, LoadBalancing, Pool,
    Protocol, Snapshot,
};
use poolform::refbroker::server::Stats;
use serde_json::Value;

/// The password whose fingerprint `examples/maintenance/broker-seed.json` holds.
const MAINT_PASSWORD: &str = "maintenance-demo";
const TOKEN: &str = "plan-test-token-7c21";
/// Generous: the machine is shared and may be loaded.
const STARTUP: Duration = Duration::from_secs(60);
const FORMATS: [&str; 3] = ["text", "markdown", "json"];

fn poolform() -> Command {
    let mut command = Command::cargo_bin("poolform").expect("binary built");
    command
        .env_remove("NO_COLOR")
        .env_remove("POOLFORM_BROKER")
        .env_remove("POOLFORM_TOKEN")
        .env("MAINT_PASSWORD", MAINT_PASSWORD)
        .env("COLUMNS", "100");
    command
}

fn example_seed() -> Value {
    let text = std::fs::read_to_string("examples/maintenance/broker-seed.json").expect("seed");
    serde_json::from_str(&text).expect("seed is JSON")
}

fn destination<'a>(seed: &'a mut Value, name: &str) -> &'a mut Value {
    seed["destinations"]
        .as_array_mut()
        .expect("destinations")
        .iter_mut()
        .find(|d| d["name"] == name)
        .expect("destination in seed")
}

/// The example seed with rds-02 powered off: no sessions left on it, the
/// load-balancing service still installed.
fn seed_rds02_offline() -> Value {
    let mut seed = example_seed();
    let rds02 = destination(&mut seed, "rds-02");
    rds02["online"] = false.into();
    rds02["sessions"]["active"] = 0.into();
    rds02["sessions"]["disconnected"] = 0.into();
    seed["sessions"]
        .as_array_mut()
        .expect("sessions")
        .retain(|s| s["destination"] != "rds-02");
    seed
}

/// The example seed after rds-02 was taken out of `live` while online: not a
/// member any more, its load-balancing service uninstalled.
fn seed_rds02_removed() -> Value {
    let mut seed = example_seed();
    destination(&mut seed, "rds-02")["lb_service_installed"] = false.into();
    let live = seed["pools"]
        .as_array_mut()
        .expect("pools")
        .iter_mut()
        .find(|p| p["name"] == "live")
        .expect("live pool");
    live["members"]
        .as_array_mut()
        .expect("members")
        .retain(|m| m != "rds-02");
    seed
}

/// A temp dir holding the three runbook states and a broker seed, planned
/// against an embedded broker whose state file lives in the same dir.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(seed: &Value) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        for state in ["steady", "rds-02-out", "rds-02-back"] {
            let to = dir.path().join(state);
            std::fs::create_dir(&to).expect("state dir");
            for entry in std::fs::read_dir(format!("examples/maintenance/{state}")).expect("state")
            {
                let path = entry.expect("entry").path();
                std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
            }
        }
        std::fs::write(
            dir.path().join("broker-seed.json"),
            serde_json::to_vec_pretty(seed).expect("seed encodes"),
        )
        .expect("write seed");
        Sandbox { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn broker(&self) -> String {
        format!("file:{}", self.path("broker.json").display())
    }

    /// `poolform plan STATE --broker file:...` with `args` appended.
    fn plan(&self, state: &str, args: &[&str]) -> Command {
        let mut command = poolform();
        command
            .arg("plan")
            .arg(self.path(state))
            .args(["--broker", &self.broker()])
            .args(args);
        command
    }

    /// Replaces `from` with `to` in one config file of a state.
    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.path(file);
        let text = std::fs::read_to_string(&path).expect("config file");
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write config");
    }
}

/// `FILE:LINE:COLUMN` of the first occurrence of `needle` in `file`: where a
/// diagnostic about it must point.
fn place_of(file: &Path, needle: &str) -> String {
    let text = std::fs::read_to_string(file).expect("config file");
    let (line, column) = text
        .lines()
        .enumerate()
        .find_map(|(n, line)| line.find(needle).map(|c| (n + 1, c + 1)))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()));
    format!("{}:{line}:{column}", file.display())
}

fn stdout_of(command: &mut Command, code: i32) -> String {
    let output = command.output().expect("poolform runs");
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 stdout")
}

/// The ops of a JSON plan's steps with their dependencies and whether each
/// carries an expected warning.
fn steps(json: &str) -> Vec<(String, Vec<u64>, bool)> {
    let plan: Value = serde_json::from_str(json).expect("JSON plan");
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                format!(
                    "{} {}",
                    s["op"].as_str().expect("op"),
                    s["destination"].as_str().unwrap_or("-")
                ),
                s["depends_on"]
                    .as_array()
                    .expect("depends_on")
                    .iter()
                    .map(|d| d.as_u64().expect("step id"))
                    .collect(),
                s.get("expected_warning").is_some_and(|w| !w.is_null()),
            )
        })
        .collect()
}

/// A JSON plan with what differs from one sandbox to the next replaced: the
/// broker's identity (minted with its state), where it was reached (a temp
/// dir), and the checksum over both. Other renderings are returned as they are.
fn without_broker(rendering: &str) -> String {
    let Ok(plan) = serde_json::from_str::<Value>(rendering) else {
        return rendering.to_owned();
    };
    let mut redacted = rendering.to_owned();
    for (field, placeholder) in [
        (&plan["broker"]["id"], "[broker id]"),
        (&plan["broker"]["url"], "[broker url]"),
        (&plan["checksum"], "[checksum]"),
    ] {
        let value = field.as_str().expect("a string field");
        redacted = redacted.replace(&format!("\"{value}\""), &format!("\"{placeholder}\""));
    }
    redacted
}

/// Plans `state` in every format, snapshots each rendering and checks the
/// exit codes with and without `--detailed-exitcode`; returns the JSON plan.
fn plan_all_formats(sandbox: &Sandbox, case: &str, state: &str, changes: bool) -> String {
    let mut json = String::new();
    for format in FORMATS {
        let detailed = stdout_of(
            &mut sandbox.plan(state, &["--format", format, "--detailed-exitcode"]),
            if changes { 2 } else { 0 },
        );
        let plain = stdout_of(&mut sandbox.plan(state, &["--format", format]), 0);
        assert_eq!(
            detailed, plain,
            "{case} {format}: the flag changes only the exit code"
        );
        insta::assert_snapshot!(format!("{case}_{format}"), without_broker(&plain));
        if format == "json" {
            json = plain;
        }
    }
    json
}

#[test]
fn steady_state_has_no_changes_and_exits_0() {
    let sandbox = Sandbox::new(&example_seed());
    let json = plan_all_formats(&sandbox, "steady", "steady", false);
    assert!(steps(&json).is_empty());
    let text = stdout_of(&mut sandbox.plan("steady", &[]), 0);
    assert!(text.contains("No changes"), "{text}");
}

#[test]
fn rds02_out_while_online_drains_then_clears_sticky_then_removes() {
    let sandbox = Sandbox::new(&example_seed());
    let json = plan_all_formats(&sandbox, "out_online", "rds-02-out", true);
    assert_eq!(
        steps(&json),
        [
            ("stop_logons rds-02".to_owned(), vec![], false),
            ("drain_sessions rds-02".to_owned(), vec![0], false),
            ("clear_sticky rds-02".to_owned(), vec![1], false),
            ("remove_member rds-02".to_owned(), vec![2], false),
        ]
    );
}

#[test]
fn rds02_out_while_offline_skips_the_drain_and_warns_in_advance() {
    let sandbox = Sandbox::new(&seed_rds02_offline());
    let json = plan_all_formats(&sandbox, "out_offline", "rds-02-out", true);
    assert_eq!(
        steps(&json),
        [
            ("stop_logons rds-02".to_owned(), vec![], false),
            ("clear_sticky rds-02".to_owned(), vec![0], false),
            ("remove_member rds-02".to_owned(), vec![1], true),
        ]
    );
    let text = stdout_of(&mut sandbox.plan("rds-02-out", &[]), 0);
    assert!(
        text.contains("load-balancing service cannot be uninstalled while rds-02 is offline"),
        "{text}"
    );
}

#[test]
fn rds02_back_after_removal_is_one_add() {
    let sandbox = Sandbox::new(&seed_rds02_removed());
    let json = plan_all_formats(&sandbox, "back", "rds-02-back", true);
    assert_eq!(
        steps(&json),
        [("add_member rds-02".to_owned(), vec![], false)]
    );
    let plan: Value = serde_json::from_str(&json).expect("JSON plan");
    assert_eq!(plan["changes"].as_array().expect("changes").len(), 1);
}

/// A member no destination on the broker has: a violation that points at the
/// member's own line in the config.
fn sandbox_with_unknown_member() -> Sandbox {
    let sandbox = Sandbox::new(&example_seed());
    sandbox.edit(
        "steady/pools.yaml",
        "      - rds-03\n",
        "      - rds-03\n      - rds-09\n",
    );
    sandbox
}

#[test]
fn a_violation_exits_1_with_the_member_entry_located_unless_forced() {
    let sandbox = sandbox_with_unknown_member();
    let place = place_of(&sandbox.path("steady/pools.yaml"), "rds-09");
    let output = sandbox
        .plan("steady", &["--color", "never"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&place), "no {place} in\n{stderr}");
    assert!(stderr.contains("plan::unknown_destination"), "{stderr}");
    assert!(stderr.contains("│       - rds-09"), "{stderr}");
    assert!(
        stderr.contains("apply refuses it unless --force"),
        "{stderr}"
    );
    // The plan is still rendered in full, the violation flagged in it.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Violations"), "{stdout}");
    assert!(stdout.contains("+ member rds-09"), "{stdout}");

    let forced = sandbox
        .plan("steady", &["--color", "never", "--force"])
        .output()
        .expect("runs");
    assert_eq!(forced.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(
        stderr.contains(&place),
        "still located when forced:\n{stderr}"
    );
    assert!(!stderr.contains("apply refuses"), "{stderr}");
    stdout_of(
        &mut sandbox.plan("steady", &["--force", "--detailed-exitcode"]),
        2,
    );
}

#[test]
fn a_saved_plan_shows_exactly_what_plan_printed_in_every_format() {
    let sandbox = Sandbox::new(&example_seed());
    let saved = sandbox.path("plan.json");
    let output = sandbox
        .plan(
            "rds-02-out",
            &["--out", saved.to_str().expect("UTF-8 path")],
        )
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Saved the plan to"));
    for format in FORMATS {
        let planned = stdout_of(&mut sandbox.plan("rds-02-out", &["--format", format]), 0);
        let shown = stdout_of(
            poolform()
                .arg("show")
                .arg(&saved)
                .args(["--format", format]),
            0,
        );
        assert_eq!(shown, planned, "show --format {format}");
        if format == "json" {
            let file = std::fs::read_to_string(&saved).expect("plan file");
            assert_eq!(file, planned, "the plan file is the JSON rendering");
        }
    }
}

#[test]
fn a_tampered_plan_file_is_refused_by_show_and_apply() {
    let sandbox = Sandbox::new(&example_seed());
    let saved = sandbox.path("plan.json");
    stdout_of(
        &mut sandbox.plan(
            "rds-02-out",
            &["--out", saved.to_str().expect("UTF-8 path")],
        ),
        0,
    );
    // Point the removal at another server without fixing the checksum.
    let text = std::fs::read_to_string(&saved).expect("plan file");
    let tampered = text.replace("\"destination\": \"rds-02\"", "\"destination\": \"rds-03\"");
    assert_ne!(tampered, text);
    std::fs::write(&saved, tampered).expect("write");

    let output = poolform().arg("show").arg(&saved).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("checksum does not match"), "{stderr}");

    let broker_state = std::fs::read(sandbox.path("broker.json")).expect("state");
    let logged = crate::support::state_events(&sandbox.path("broker.json")).len();
    let output = poolform()
        .arg("apply")
        .arg(&saved)
        .args(["--auto-approve", "--broker", &sandbox.broker()])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("checksum does not match"), "{stderr}");
    assert_eq!(
        std::fs::read(sandbox.path("broker.json")).expect("state"),
        broker_state,
        "a refused plan changes nothing on the broker"
    );
    crate::support::fidelity(
        "a tampered plan file",
        None,
        &crate::support::state_events(&sandbox.path("broker.json"))[logged..],
        false,
        false,
    );
}

#[test]
fn target_restricts_the_plan_to_the_named_resources() {
    let sandbox = Sandbox::new(&example_seed());
    let untouched = stdout_of(
        &mut sandbox.plan(
            "rds-02-out",
            &["--target", "pool/maintenance", "--detailed-exitcode"],
        ),
        0,
    );
    assert!(untouched.contains("No changes"), "{untouched}");
    for target in ["pool/live", "destination/rds-02"] {
        let json = stdout_of(
            &mut sandbox.plan(
                "rds-02-out",
                &[
                    "--target",
                    target,
                    "--format",
                    "json",
                    "--detailed-exitcode",
                ],
            ),
            2,
        );
        let ops: Vec<String> = steps(&json).into_iter().map(|s| s.0).collect();
        assert_eq!(
            ops,
            [
                "stop_logons rds-02",
                "drain_sessions rds-02",
                "clear_sticky rds-02",
                "remove_member rds-02"
            ],
            "--target {target}"
        );
    }
    let other = stdout_of(
        &mut sandbox.plan(
            "rds-02-out",
            &["--target", "destination/rds-03", "--detailed-exitcode"],
        ),
        0,
    );
    assert!(other.contains("No changes"), "{other}");
}

#[test]
fn colour_only_when_asked_for() {
    let sandbox = sandbox_with_unknown_member();
    let run = |args: &[&str], no_color: bool| {
        let mut command = sandbox.plan("steady", args);
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let output = command.output().expect("runs");
        assert_eq!(output.status.code(), Some(1));
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for (args, no_color) in [(&["--color", "never"][..], false), (&[][..], true)] {
        let (stdout, stderr) = run(args, no_color);
        assert!(
            !stdout.contains('\x1b'),
            "{args:?}: ANSI in stdout {stdout:?}"
        );
        assert!(
            !stderr.contains('\x1b'),
            "{args:?}: ANSI in stderr {stderr:?}"
        );
        assert!(stdout.contains("+ member rds-09"));
    }
    let (stdout, stderr) = run(&["--color", "always"], false);
    assert!(stdout.contains("\x1b["), "no ANSI in stdout {stdout:?}");
    assert!(stderr.contains("\x1b["), "no ANSI in stderr {stderr:?}");
}

/// A running `poolform broker serve` on 127.0.0.1, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(seed: &Path, dir: &Path) -> Server {
        let mut child = Process::new(env!("CARGO_BIN_EXE_poolform"))
            .args([
                "broker",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--token",
                TOKEN,
            ])
            .arg("--state")
            .arg(dir.join("broker-state.json"))
            .arg("--seed")
            .arg(seed)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("broker starts");
        let stdout = child.stdout.take().expect("stdout");
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
        Server { child, url }
    }

    /// Requests received per route, leaving out the simulation routes (the
    /// stats request itself among them).
    fn requests(&self) -> BTreeMap<String, u64> {
        let url = format!("{}/v1/_sim/stats", self.url);
        let stats: Stats = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                reqwest::Client::new()
                    .get(url)
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .expect("stats answer")
                    .json()
                    .await
                    .expect("stats JSON")
            });
        stats
            .requests
            .into_iter()
            .filter(|(route, _)| !route.contains("/_sim/"))
            .collect()
    }

    fn plan(&self, config: &Path) -> Command {
        let mut command = poolform();
        command
            .arg("plan")
            .arg(config)
            .args(["--broker", &self.url])
            .env("POOLFORM_TOKEN", TOKEN);
        command
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_invalid_config_or_a_missing_secret_exits_1_with_zero_broker_writes() {
    let sandbox = Sandbox::new(&example_seed());
    let server = Server::start(&sandbox.path("broker-seed.json"), sandbox.dir.path());
    sandbox.edit(
        "rds-02-out/apps.yaml",
        "pool: maintenance",
        "pool: maintenanse",
    );
    let output = server
        .plan(&sandbox.path("rds-02-out"))
        .args(["--color", "never"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let place = place_of(&sandbox.path("rds-02-out/apps.yaml"), "maintenanse");
    assert!(stderr.contains(&place), "no {place} in\n{stderr}");

    let output = server
        .plan(&sandbox.path("steady"))
        .args(["--color", "never"])
        .env_remove("MAINT_PASSWORD")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let place = place_of(
        &sandbox.path("steady/pools.yaml"),
        "{ env: MAINT_PASSWORD }",
    );
    assert!(stderr.contains(&place), "no {place} in\n{stderr}");
    assert!(stderr.contains("config::secret_unavailable"), "{stderr}");
    assert!(stderr.contains("MAINT_PASSWORD is"), "{stderr}");
    assert!(!stderr.contains(MAINT_PASSWORD));

    // plan reads an HTTP broker while the config loads (a reader thread, for
    // speed), so reads may have been made; a write never is.
    let requests = server.requests();
    assert!(
        requests.keys().all(|route| route.starts_with("GET ")),
        "only reads, never a write: {requests:?}"
    );

    // The embedded broker is not even opened: its state file never appears.
    let output = sandbox.plan("rds-02-out", &[]).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(!sandbox.path("broker.json").exists());
}

fn owned(stack: &str) -> Labels {
    [(STACK_LABEL.to_owned(), stack.to_owned())].into()
}

/// A config and matching seed: `pools` pools of one member each (a
/// destination of its own), `configs` app configs spread over them and
/// `instances` app instances spread over the configs.
fn large(dir: &Path, pools: usize, configs: usize, instances: usize) -> (PathBuf, PathBuf) {
    let mut yaml = String::from("stack: big\npools:\n");
    let mut seed = Snapshot::default();
    for p in 0..pools {
        let _ = writeln!(yaml, "  p{p:05}: {{ members: [d{p:05}] }}");
        seed.destinations
            .push(Destination::registered(&format!("d{p:05}"), true, true, 1));
        seed.pools.push(Pool {
            name: format!("p{p:05}"),
            load_balancing: LoadBalancing::default(),
            default_credentials: Credentials::default(),
            labels: owned("big"),
            members: vec![format!("d{p:05}")],
            revision: 1,
        });
    }
    yaml.push_str("app_configs:\n");
    for c in 0..configs {
        let pool = format!("p{:05}", c % pools);
        let _ = writeln!(
            yaml,
            "  c{c:05}: {{ pool: {pool}, type: desktop, protocol: rdp }}"
        );
        seed.app_configs.push(AppConfig {
            name: format!("c{c:05}"),
            pool,
            app_type: AppType::Desktop,
            protocol: Protocol::Rdp,
            admin_session: false,
            keep_credentials_on_destination_change: false,
            allow_destination_change: false,
            labels: owned("big"),
            revision: 1,
        });
    }
    yaml.push_str("app_instances:\n");
    for i in 0..instances {
        let config = format!("c{:05}", i % configs);
        let _ = writeln!(
            yaml,
            "  i{i:05}: {{ app_config: {config}, user: u{i}@corp.example }}"
        );
        seed.app_instances.push(AppInstance {
            name: format!("i{i:05}"),
            app_config: config,
            user: Some(format!("u{i}@corp.example")),
            group: None,
            destination: None,
            labels: owned("big"),
            revision: 1,
        });
    }
    let (config, seed_path) = (dir.join("big.yaml"), dir.join("big-seed.json"));
    std::fs::write(&config, yaml).expect("write config");
    std::fs::write(&seed_path, serde_json::to_vec(&seed).expect("seed")).expect("write seed");
    (config, seed_path)
}

#[test]
fn refresh_reads_each_collection_in_pages_of_1000_and_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 2,000 app configs: an exact multiple must not cost an empty last page.
    let (pools, configs, instances) = (2_500, 2_000, 1_001);
    let (config, seed) = large(dir.path(), pools, configs, instances);
    let server = Server::start(&seed, dir.path());
    let output = stdout_of(server.plan(&config).arg("--detailed-exitcode"), 0);
    assert!(output.contains("No changes"), "{output}");
    let pages = |n: usize| n.div_ceil(1000) as u64;
    let expected: BTreeMap<String, u64> = [
        ("GET /v1/destinations", pages(pools)),
        ("GET /v1/pools", pages(pools)),
        ("GET /v1/app-configs", pages(configs)),
        ("GET /v1/app-instances", pages(instances)),
    ]
    .into_iter()
    .map(|(route, n)| (route.to_owned(), n))
    .collect();
    assert_eq!(server.requests(), expected);
}
