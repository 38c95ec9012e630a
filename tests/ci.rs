//! What CI relies on, end to end through the binary: exit codes (usage
//! errors are 1, a closed pipe is success), annotations for GitHub and
//! GitLab, the JSON event stream of apply, the refusal of one file of a
//! split config, network errors that say what to do, and the help pages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::support::{
    Run, Server, TOKEN, bin, example, fidelity, read_plan, run, seed_path, state_events,
};

/// The password `examples/maintenance` plans with (its seed holds the
/// fingerprint of this one).
const MAINT_PASSWORD: &str = "maintenance-demo";

fn poolform() -> Command {
    let mut command = Command::new(bin());
    command
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("MAINT_PASSWORD", MAINT_PASSWORD)
        .env_remove("POOLFORM_BROKER")
        .env_remove("POOLFORM_TOKEN")
        .env_remove("POOLFORM_LOG")
        .stdin(Stdio::null());
    command
}

fn maintenance(state: &str) -> String {
    example(&format!("maintenance/{state}"))
        .to_string_lossy()
        .into_owned()
}

/// A `file:` broker in a fresh directory, created from the example's seed.
fn sandbox() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file:{}", dir.path().join("broker.json").display());
    (dir, url)
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let out = maintenance("rds-02-out");
    let typo = run(poolform().args(["plan", &out, "--detailed-exitcode", "--targt", "pool/live"]));
    let typo = typo.expect_code(1, "a mistyped flag");
    assert!(typo.stderr.contains("--target"), "{}", typo.stderr);
    run(poolform().args(["plan"])).expect_code(1, "a missing argument");
    run(&mut poolform()).expect_code(1, "no command");
    run(poolform().args(["plan", &out, "--format", "yaml"])).expect_code(1, "a bad value");
    run(poolform().args(["schema", "-o", "-"])).expect_code(1, "`-` for a directory");
    assert!(!Path::new("-").exists(), "schema -o - made a directory");
    let help = run(poolform().args(["--help"])).expect_code(0, "--help");
    assert!(help.stdout.contains("Usage:"));
    run(poolform().args(["--version"])).expect_code(0, "--version");
    run(poolform().args(["plan", "--help"])).expect_code(0, "plan --help");
}

/// Runs `args` with stdout a pipe whose reader is already gone, and
/// returns how it ended.
fn with_closed_stdout(args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = poolform()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Run::of(output)
}

#[test]
fn a_closed_pipe_is_success_for_every_command_and_format() {
    let out = maintenance("rds-02-out");
    let steady = maintenance("steady");
    let (dir, broker) = sandbox();
    let saved = dir.path().join("plan.json");
    run(poolform()
        .args(["plan", &out, "--broker", &broker, "-o"])
        .arg(&saved))
    .expect_code(0, "saving a plan");
    let saved = saved.to_string_lossy().into_owned();
    let mut cases: Vec<(Vec<String>, i32)> = Vec::new();
    for format in ["text", "json", "github", "gitlab"] {
        cases.push((
            vec![
                "validate".into(),
                steady.clone(),
                "--format".into(),
                format.into(),
            ],
            0,
        ));
    }
    for format in ["text", "json", "markdown", "github", "gitlab"] {
        let args = ["plan", &out, "--broker", &broker, "--format", format];
        cases.push((args.iter().map(|s| s.to_string()).collect(), 0));
        let mut detailed: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        detailed.push("--detailed-exitcode".into());
        cases.push((detailed, 2));
    }
    for format in ["text", "json", "markdown"] {
        cases.push((
            vec![
                "show".into(),
                saved.clone(),
                "--format".into(),
                format.into(),
            ],
            0,
        ));
    }
    let mut sandboxes = Vec::new();
    for format in ["text", "json", "github", "gitlab"] {
        let (keep, fresh) = sandbox();
        sandboxes.push((format, keep, fresh.clone()));
        let args = [
            "apply",
            &out,
            "--broker",
            &fresh,
            "--auto-approve",
            "--format",
            format,
        ];
        cases.push((args.iter().map(|s| s.to_string()).collect(), 0));
    }
    cases.push((
        vec![
            "export".into(),
            "--stack".into(),
            "corp-rds".into(),
            "--broker".into(),
            broker.clone(),
        ],
        0,
    ));
    let import = [
        "import",
        "--stack",
        "corp-rds",
        "pool/live",
        "--broker",
        &broker,
    ];
    cases.push((import.iter().map(|s| s.to_string()).collect(), 0));
    let schemas = dir.path().join("schemas").to_string_lossy().into_owned();
    cases.push((vec!["schema".into(), "-o".into(), schemas], 0));
    cases.push((vec!["completions".into(), "bash".into()], 0));
    cases.push((vec!["--help".into()], 0));
    for (args, code) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = with_closed_stdout(&args);
        assert_eq!(ran.code, Some(code), "{args:?}\n{}", ran.stderr);
        assert!(
            !ran.stderr.contains("Broken pipe") && !ran.stderr.contains("panicked"),
            "{args:?}\n{}",
            ran.stderr
        );
    }
    // Each apply did the saved plan's steps, though nobody read its output.
    let planned = read_plan(Path::new(&saved));
    for (format, dir, fresh) in &sandboxes {
        fidelity(
            &format!("apply --format {format} into a closed pipe"),
            Some(&planned),
            &state_events(&dir.path().join("broker.json")),
            true,
            converged(&out, fresh),
        );
    }
}

/// Whether a plan of `config` against `broker` shows no changes.
fn converged(config: &str, broker: &str) -> bool {
    let args = ["plan", config, "--broker", broker, "--detailed-exitcode"];
    run(poolform().args(args)).code == Some(0)
}

#[test]
fn a_closed_pipe_keeps_a_failure_a_failure() {
    let invalid = "tests/invalid/29-many-problems.yaml";
    let ran = with_closed_stdout(&["validate", "--format", "json", invalid]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
}

#[test]
fn validate_annotates_every_problem_for_github_and_gitlab() {
    let file = "tests/invalid/29-many-problems.yaml";
    let github = run(poolform().args(["validate", "--format", "github", file]));
    let github = github.expect_code(1, "github");
    let lines: Vec<&str> = github.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", github.stdout);
    assert!(
        lines.contains(
            &"::error file=tests/invalid/29-many-problems.yaml,line=8,col=19,title=config%3A%3Adangling_reference::app \
              config 'desktop' refers to pool 'lvie', which is not declared%0Ahelp: declared pools: live"
        ),
        "{}",
        github.stdout
    );
    assert!(github.stderr.contains("4 problems"), "{}", github.stderr);
    let gitlab =
        run(poolform().args(["validate", "--format", "gitlab", file])).expect_code(1, "gitlab");
    let report: Value = serde_json::from_str(&gitlab.stdout).expect("a JSON report");
    let issues = report.as_array().expect("an array");
    assert_eq!(issues.len(), 4);
    for issue in issues {
        assert_eq!(issue["location"]["path"], file);
        assert!(issue["location"]["lines"]["begin"].as_u64().unwrap() >= 1);
        for key in ["description", "check_name", "fingerprint", "severity"] {
            assert!(issue[key].is_string(), "{key} in {issue}");
        }
    }
    let valid = run(poolform().args(["validate", "--format", "gitlab", &maintenance("steady")]));
    assert_eq!(valid.expect_code(0, "valid").stdout.trim(), "[]");
}

#[test]
fn plan_annotates_violations_and_predicted_warnings() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(maintenance("rds-02-out")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let pools = dir.path().join("pools.yaml");
    let text = std::fs::read_to_string(&pools).unwrap();
    std::fs::write(
        &pools,
        text.replacen("      - rds-03", "      - rds-03\n      - rds-09", 1),
    )
    .unwrap();
    let (_state, broker) = sandbox();
    let seed = example("maintenance/broker-seed.json");
    let ran = run(poolform()
        .args(["plan", "--format", "github", "--broker", &broker, "--seed"])
        .arg(&seed)
        .arg(dir.path()));
    let ran = ran.expect_code(1, "a violation");
    let violation = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no ::error in\n{}", ran.stdout));
    assert!(
        violation.contains("pools.yaml,line=")
            && violation.contains("title=plan%3A%3Aunknown_destination::"),
        "{violation}"
    );
    assert!(
        ran.stdout.contains("poolform will make these changes"),
        "the text plan follows"
    );
    let gitlab = run(poolform()
        .args(["plan", "--format", "gitlab", "--broker", &broker, "--seed"])
        .arg(&seed)
        .arg(dir.path()));
    let gitlab = gitlab.expect_code(1, "gitlab");
    let report: Value = serde_json::from_str(&gitlab.stdout).expect("stdout is the report alone");
    assert_eq!(report[0]["check_name"], "plan::unknown_destination");
    assert!(
        gitlab.stderr.contains("poolform will make these changes"),
        "the text goes to stderr"
    );
}

/// Checks one event line against `schema/apply-events.schema.json`: an
/// alternative for its `event`, every required key, no key it does not name.
fn check_event(schema: &Value, line: &str) -> Value {
    let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let name = event["event"].as_str().expect("an event name");
    let alternative = schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["properties"]["event"]["const"] == name)
        .unwrap_or_else(|| panic!("no schema for {name}"));
    for key in alternative["required"].as_array().unwrap() {
        assert!(
            event.get(key.as_str().unwrap()).is_some(),
            "{key} missing in {line}"
        );
    }
    for key in event.as_object().unwrap().keys() {
        assert!(
            alternative["properties"].get(key).is_some(),
            "{key} not in the schema: {line}"
        );
    }
    event
}

#[test]
fn apply_streams_json_events_that_match_their_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string("schema/apply-events.schema.json").unwrap())
            .unwrap();
    let (dir, broker) = sandbox();
    let saved = dir.path().join("plan.json");
    run(poolform()
        .args([
            "plan",
            &maintenance("rds-02-out"),
            "--broker",
            &broker,
            "-o",
        ])
        .arg(&saved))
    .expect_code(0, "saving the plan");
    let ran = run(poolform().args([
        "apply",
        &maintenance("rds-02-out"),
        "--broker",
        &broker,
        "--auto-approve",
        "--format",
        "json",
    ]));
    fidelity(
        "apply --format json",
        Some(&read_plan(&saved)),
        &state_events(&dir.path().join("broker.json")),
        ran.code == Some(0),
        converged(&maintenance("rds-02-out"), &broker),
    );
    let ran = ran.expect_code(0, "apply");
    let events: Vec<Value> = ran
        .stdout
        .lines()
        .map(|l| check_event(&schema, l))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"started"));
    assert_eq!(names.last(), Some(&"report"));
    assert_eq!(events.last().unwrap()["outcome"], "complete");
    assert!(
        names.contains(&"step_started") && names.contains(&"done"),
        "{names:?}"
    );
    assert!(
        ran.stderr.contains("poolform will make these changes"),
        "the plan goes to stderr"
    );
}

#[test]
fn one_file_of_a_split_config_is_refused_unless_allowed() {
    let file = format!("{}/pools.yaml", maintenance("steady"));
    let (dir, broker) = sandbox();
    let refused = run(poolform().args(["plan", &file, "--broker", &broker]));
    let refused = refused.expect_code(1, "one file");
    assert!(
        refused
            .stderr
            .contains("apps.yaml (app_configs, app_instances)")
            && refused
                .stderr
                .contains(&format!("pass the directory {}", maintenance("steady"))),
        "{}",
        refused.stderr
    );
    let partial = run(poolform().args(["apply", &file, "--broker", &broker, "--auto-approve"]));
    fidelity(
        "apply of one file of a split config",
        None,
        &state_events(&dir.path().join("broker.json")),
        partial.code == Some(0),
        false,
    );
    partial.expect_code(1, "apply");
    let allowed = run(poolform().args(["plan", &file, "--broker", &broker, "--allow-partial"]));
    assert!(
        allowed
            .expect_code(0, "allowed")
            .stdout
            .contains("to destroy")
    );
}

/// A TCP port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn plan_against(url: &str, extra_env: &[(&str, &str)]) -> Run {
    run(poolform()
        .args(["plan", &maintenance("steady"), "--broker", url])
        .env("POOLFORM_LOG", "debug")
        .env("POOLFORM_TOKEN", TOKEN)
        .envs(extra_env.iter().copied()))
}

#[test]
fn network_errors_name_the_cause_and_what_cannot_pass_is_not_retried() {
    let refused = plan_against(&format!("http://127.0.0.1:{}", closed_port()), &[]);
    let refused = refused.expect_code(1, "refused");
    assert!(
        refused.stderr.contains("connection refused"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("retrying broker request"),
        "a refusal may pass"
    );
    let unknown = plan_against("http://poolform-no-such-host.invalid", &[]);
    let unknown = unknown.expect_code(1, "unknown host");
    assert!(
        unknown
            .stderr
            .contains("cannot resolve the broker's host name"),
        "{}",
        unknown.stderr
    );
    assert!(!unknown.stderr.contains("retrying"), "{}", unknown.stderr);
}

/// `openssl s_server` with a certificate for 127.0.0.1 signed by a fresh
/// private CA, as an organisation's own CA would sign its broker's.
struct TlsServer {
    child: std::process::Child,
    port: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

fn openssl(args: &[&str], dir: &Path) {
    let made = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(made.status.success(), "openssl {args:?}: {made:?}");
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let new_key = ["-newkey", "rsa:2048", "-nodes"];
        openssl(
            &[
                &["req", "-x509"],
                &new_key[..],
                &[
                    "-days",
                    "2",
                    "-subj",
                    "/CN=poolform test CA",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                ],
            ]
            .concat(),
            dir.path(),
        );
        openssl(
            &[
                &["req"],
                &new_key[..],
                &[
                    "-subj",
                    "/CN=127.0.0.1",
                    "-keyout",
                    "key.pem",
                    "-out",
                    "leaf.csr",
                ],
            ]
            .concat(),
            dir.path(),
        );
        std::fs::write(
            dir.path().join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
                "-out",
                "cert.pem",
            ],
            dir.path(),
        );
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let port = closed_port();
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-www",
                "-accept",
                &port.to_string(),
                "-cert",
            ])
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        TlsServer {
            child,
            port,
            ca: dir.path().join("ca.pem"),
            _dir: dir,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_untrusted_certificate_says_how_to_trust_its_ca() {
    let server = TlsServer::start();
    let url = format!("https://127.0.0.1:{}", server.port);
    let untrusted = plan_against(&url, &[]).expect_code(1, "self-signed");
    assert!(
        untrusted.stderr.contains("TLS certificate is not trusted"),
        "{}",
        untrusted.stderr
    );
    assert!(
        untrusted.stderr.contains("SSL_CERT_FILE"),
        "{}",
        untrusted.stderr
    );
    assert!(
        !untrusted.stderr.contains("retrying"),
        "{}",
        untrusted.stderr
    );
    let ca = server.ca.to_string_lossy().into_owned();
    let trusted = plan_against(&url, &[("SSL_CERT_FILE", &ca)]).expect_code(1, "not a broker");
    assert!(
        !trusted.stderr.contains("not trusted"),
        "the advice works:\n{}",
        trusted.stderr
    );
}

#[test]
fn a_refused_token_names_where_tokens_come_from_and_logs_never_show_it() {
    let seed = seed_path();
    let server = Server::start(&["--seed", &seed.to_string_lossy()]);
    let wrong = run(poolform()
        .args([
            "plan",
            &maintenance("steady"),
            "--broker",
            &server.url,
            "--verbose",
        ])
        .env("POOLFORM_TOKEN", "not-the-token"));
    let wrong = wrong.expect_code(1, "wrong token");
    assert!(
        wrong.stderr.contains("POOLFORM_TOKEN") && wrong.stderr.contains("--token-file"),
        "{}",
        wrong.stderr
    );
    let traced = run(server
        .poolform(&["plan", &maintenance("steady")])
        .env("MAINT_PASSWORD", MAINT_PASSWORD)
        .env("POOLFORM_LOG", "trace"));
    let traced = traced.expect_code(0, "traced");
    assert!(
        traced.stderr.contains("broker request"),
        "{}",
        traced.stderr
    );
    assert!(
        !traced.stderr.contains(TOKEN),
        "the token leaked:\n{}",
        traced.stderr
    );
    assert!(
        !traced.stderr.contains(MAINT_PASSWORD),
        "the password leaked"
    );
}

#[test]
fn help_pages_have_examples_described_formats_and_fit_100_columns() {
    let commands: &[&[&str]] = &[
        &[],
        &["validate"],
        &["plan"],
        &["show"],
        &["apply"],
        &["export"],
        &["import"],
        &["schema"],
        &["completions"],
        &["broker"],
        &["broker", "serve"],
    ];
    for command in commands {
        let help = run(poolform().args(*command).arg("--help")).expect_code(0, "help");
        for line in help.stdout.lines() {
            assert!(line.chars().count() <= 100, "{command:?}: {line:?}");
        }
        assert!(
            help.stdout.contains("Examples:"),
            "{command:?} has no examples"
        );
        if help.stdout.contains("--format") {
            let format = &help.stdout[help.stdout.find("--format").unwrap()..];
            let line_end = format.find("\n\n").unwrap_or(format.len());
            assert!(
                format[..line_end].contains("text:"),
                "{command:?}: undescribed --format"
            );
        }
    }
    let plan = run(poolform().args(["plan", "--help"])).expect_code(0, "plan help");
    assert!(plan.stdout.contains("-o, --out <FILE>"), "{}", plan.stdout);
}
