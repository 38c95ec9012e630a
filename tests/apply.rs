//! `poolform apply` and `plan` end to end (issue 5): the CLI as processes
//! against the reference broker as a process over HTTP; behaviour asserted
//! through the broker's event log, snapshot and request counts.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use poolform::contract::wire::Event;
use serde_json::json;

use crate::support::{
    Run, SEED_ENV, SEED_PASSWORD, Server, copy_example, edit, example, fidelity, run, seed_path,
    without_locks,
};

/// Far above what any step here needs, so a loaded machine never trips it.
const PATIENCE: Duration = Duration::from_secs(120);

fn seeded(extra: &[&str]) -> Server {
    let seed = seed_path();
    let mut args = vec!["--seed", seed.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// The environment every poolform run here gets: the seed's password.
const ENV: &[(&str, &str)] = SEED_ENV;

/// `poolform apply CONFIG --auto-approve` with the seed's password, its
/// fidelity to the plan of `config` checked (see `support::fidelity`).
async fn apply(server: &Server, scenario: &str, config: &std::path::Path, extra: &[&str]) -> Run {
    server.apply_checked(scenario, config, extra, ENV).await.0
}

/// `poolform apply CONFIG --auto-approve` with the seed's password, for a
/// caller that checks fidelity over several runs itself.
fn apply_unchecked(server: &Server, config: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec!["apply", path(config), "--auto-approve"];
    args.extend_from_slice(extra);
    run(server.poolform(&args).env("MAINT_PASSWORD", SEED_PASSWORD))
}

/// `plan --detailed-exitcode`: 0 means the broker already matches `config`.
fn plan_code(server: &Server, config: &std::path::Path) -> Run {
    let args = ["plan", path(config), "--detailed-exitcode"];
    run(server.poolform(&args).env("MAINT_PASSWORD", SEED_PASSWORD))
}

/// Requests that could change state (anything but GET), per route, leaving
/// out the simulation controls the test itself calls.
fn writes(stats: &poolform::refbroker::server::Stats) -> BTreeMap<String, u64> {
    stats
        .requests
        .iter()
        .filter(|(route, _)| !route.starts_with("GET ") && !route.contains("/v1/_sim/"))
        .map(|(route, n)| (route.clone(), *n))
        .collect()
}

/// Runbook, part one and three: rds-02 leaves `live` while online with
/// sessions under `drain: disconnect`, in the runbook's order (sessions
/// first, because disconnecting creates the sticky bindings the second step
/// clears), then comes back and gets the load-balancing service again.
#[tokio::test]
async fn the_runbook_out_while_online_then_back_in() {
    let server = seeded(&[]);
    let start = server.last_seq().await;
    let out = apply(
        &server,
        "runbook out while online",
        &example("maintenance/rds-02-out"),
        &[],
    )
    .await
    .expect_code(0, "out");
    assert!(
        out.stdout
            .contains("4 done, 0 warnings, 0 failed, 0 skipped")
    );
    assert_eq!(
        without_locks(&server.events(start).await),
        [
            "destination.drain.start destination/rds-02/drain",
            "sessions.disconnect destination/rds-02/sessions",
            "sticky.clear pool/live/sticky-sessions/rds-02",
            "member.remove pool/live/member/rds-02",
        ]
    );
    assert_eq!(server.members("live").await, ["rds-01", "rds-03"]);
    assert!(
        !server.destination("rds-02").await.lb_service_installed,
        "an online host's service is uninstalled when it leaves"
    );
    assert!(server.snapshot().await.sticky_bindings.is_empty());

    let start = server.last_seq().await;
    apply(
        &server,
        "runbook back after online",
        &example("maintenance/rds-02-back"),
        &[],
    )
    .await
    .expect_code(0, "back");
    assert_eq!(
        without_locks(&server.events(start).await),
        ["member.add pool/live/member/rds-02"]
    );
    assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
    assert!(server.destination("rds-02").await.lb_service_installed);
    plan_code(&server, &example("maintenance/rds-02-back")).expect_code(0, "converged");
}

/// Runbook, part two: rds-02 is powered off first. No drain happens (an
/// offline host has no sessions), the broker's uninstall error comes back
/// as exactly one warning, and the apply succeeds.
#[tokio::test]
async fn the_runbook_out_while_offline_warns_once_and_succeeds() {
    let server = seeded(&[]);
    server.power("rds-02", false).await;
    let start = server.last_seq().await;
    let out = apply(
        &server,
        "runbook out while offline",
        &example("maintenance/rds-02-out"),
        &[],
    )
    .await
    .expect_code(0, "out");
    let warnings: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning in:\n{}", out.stdout);
    assert!(warnings[0].contains("rds-02"), "{}", warnings[0]);
    assert!(out.stdout.contains("1 warning, 0 failed"), "{}", out.stdout);
    assert_eq!(
        out.stderr.matches("warning:").count(),
        1,
        "one progress line warns:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("error"),
        "no error on stderr:\n{}",
        out.stderr
    );
    let log = without_locks(&server.events(start).await);
    assert!(
        !log.iter().any(|e| e.starts_with("sessions.disconnect")),
        "{log:?}"
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some("member.remove pool/live/member/rds-02 lb_service_uninstall_failed")
    );
    assert_eq!(server.members("live").await, ["rds-01", "rds-03"]);
    assert!(server.destination("rds-02").await.lb_service_installed);
    // The plan agrees the membership is gone, warning or not.
    plan_code(&server, &example("maintenance/rds-02-out")).expect_code(0, "converged");

    server.power("rds-02", true).await;
    let start = server.last_seq().await;
    apply(
        &server,
        "runbook back after offline",
        &example("maintenance/rds-02-back"),
        &[],
    )
    .await
    .expect_code(0, "back");
    assert_eq!(
        without_locks(&server.events(start).await),
        ["member.add pool/live/member/rds-02"]
    );
    assert!(server.destination("rds-02").await.lb_service_installed);
}

/// Make before break: an app instance pinned to rds-02 is moved to rds-01
/// before rds-02 leaves the pool its app config uses (the broker would
/// otherwise leave the instance pointing outside its pool).
#[tokio::test]
async fn an_app_instance_is_retargeted_before_its_destination_leaves() {
    let server = seeded(&[]);
    let config = copy_example("maintenance/steady");
    edit(
        &config.path().join("pools.yaml"),
        "members: [rds-01, rds-02, rds-03]",
        "members: [rds-01, rds-03]",
    );
    edit(
        &config.path().join("apps.yaml"),
        "destination: rds-02",
        "destination: rds-01",
    );
    let start = server.last_seq().await;
    apply(&server, "retarget before remove", config.path(), &[])
        .await
        .expect_code(0, "retarget then remove");
    assert_eq!(
        without_locks(&server.events(start).await),
        [
            "app_instance.update app_instance/admin-maintenance",
            "member.remove pool/maintenance/member/rds-02",
        ]
    );
    let snapshot = server.snapshot().await;
    assert_eq!(
        snapshot.app_instances[0].destination.as_deref(),
        Some("rds-01")
    );
    assert_eq!(server.members("maintenance").await, ["rds-01", "rds-03"]);
    plan_code(&server, config.path()).expect_code(0, "converged");
}

/// A failed step skips only what depends on it: rds-04, online when the plan
/// was saved, is powered off before it is applied, so adding it to `live`
/// fails (its precondition changed: the broker answers
/// destination_unreachable), draining and removing rds-02 (make before
/// break: they wait for the add) are skipped and rds-02 keeps its sessions,
/// while the unrelated change to `maintenance` completes.
#[tokio::test]
async fn a_failed_step_skips_its_dependents_and_independent_ones_finish() {
    let server = seeded(&[]);
    server
        .sim(
            "/v1/_sim/destinations",
            json!({"name": "rds-04", "online": true, "process_execution_ready": true}),
        )
        .await;
    let config = copy_example("maintenance/steady");
    let pools = config.path().join("pools.yaml");
    edit(&pools, "      - rds-02\n", "");
    edit(
        &pools,
        "      - rds-03\n",
        "      - rds-03\n      - rds-04\n",
    );
    edit(
        &pools,
        "    members: [rds-01, rds-02, rds-03]",
        "    labels: { owner: ops }\n    members: [rds-01, rds-02, rds-03]",
    );
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("plan.json");
    run(server
        .poolform(&["plan", path(config.path()), "--out", path(&plan_file)])
        .env("MAINT_PASSWORD", SEED_PASSWORD))
    .expect_code(0, "plan --out");
    server.power("rds-04", false).await;
    let start = server.last_seq().await;
    let (out, _) = server
        .apply_plan_checked(
            "a failed add skips its dependents",
            &plan_file,
            config.path(),
            &[],
            ENV,
        )
        .await;
    let out = out.expect_code(1, "one step fails");
    assert!(
        out.stdout
            .contains("1 done, 0 warnings, 1 failed, 4 skipped"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("destination_unreachable"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("precondition changed: rds-04 planned online"),
        "{}",
        out.stdout
    );
    assert_eq!(
        without_locks(&server.events(start).await),
        ["pool.update pool/maintenance"]
    );
    let snapshot = server.snapshot().await;
    let maintenance = snapshot
        .pools
        .iter()
        .find(|p| p.name == "maintenance")
        .unwrap();
    assert_eq!(
        maintenance.labels.get("owner").map(String::as_str),
        Some("ops")
    );
    assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
    assert_eq!(server.destination("rds-02").await.sessions.active, 2);
    // The failed branch is still pending, for a re-run once rds-04 is up;
    // that re-run does only what is left, in order.
    server.power("rds-04", true).await;
    plan_code(&server, config.path()).expect_code(2, "the failed part is still pending");
    let start = server.last_seq().await;
    apply(&server, "re-run after a failed add", config.path(), &[])
        .await
        .expect_code(0, "re-run");
    assert_eq!(
        without_locks(&server.events(start).await),
        [
            "member.add pool/live/member/rds-04",
            "destination.drain.start destination/rds-02/drain",
            "sessions.disconnect destination/rds-02/sessions",
            "sticky.clear pool/live/sticky-sessions/rds-02",
            "member.remove pool/live/member/rds-02",
        ]
    );
    plan_code(&server, config.path()).expect_code(0, "converged");
}

/// A saved plan whose resource changed behind its back is refused as a
/// whole, naming the resource, before any write (not even the lease).
#[tokio::test]
async fn a_stale_saved_plan_is_refused_with_zero_writes() {
    let server = seeded(&[]);
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("plan.json");
    let planned = run(server
        .poolform(&[
            "plan",
            path(&example("maintenance/rds-02-out")),
            "--out",
            path(&plan_file),
        ])
        .env("MAINT_PASSWORD", SEED_PASSWORD));
    planned.expect_code(0, "plan --out");
    // Someone changes `live` by hand: a longer grace period.
    let response = server
        .raw(reqwest::Method::PUT, "/v1/pools/live")
        .json(&json!({
            "load_balancing": {"enabled": true, "sticky_sessions_minutes": 10, "grace_period_seconds": 45},
            "labels": {"poolform.stack": "corp-rds"}
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let start = server.last_seq().await;
    let before = writes(&server.stats().await);

    let (out, _) = server
        .apply_plan_checked(
            "a stale saved plan",
            &plan_file,
            &example("maintenance/rds-02-out"),
            &[],
            ENV,
        )
        .await;
    let out = out.expect_code(1, "stale plan");
    assert!(out.stderr.contains("stale"), "{}", out.stderr);
    assert!(out.stderr.contains("pool/live"), "{}", out.stderr);
    assert_eq!(server.events(start).await, Vec::<Event>::new());
    assert_eq!(writes(&server.stats().await), before, "no write request");
    assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
}

/// Two applies of one stack: the second fails fast naming the first as the
/// lease holder, and the first finishes with a consistent result. The first
/// is held inside its drain (`sessions: wait` with users still logged in)
/// so the overlap does not depend on timing.
#[tokio::test]
async fn a_concurrent_apply_fails_fast_naming_the_lock_holder() {
    let server = seeded(&["--latency", "20"]);
    let config = copy_example("maintenance/rds-02-out");
    edit(
        &config.path().join("pools.yaml"),
        "drain: { sessions: disconnect, timeout: 15m }",
        "drain: { sessions: wait, timeout: 15m }",
    );
    let dir = tempfile::tempdir().unwrap();
    let planned = server.save_plan(config.path(), &dir.path().join("plan.json"), ENV);
    let start = server.last_seq().await;
    let mut first = server
        .poolform(&["apply", path(config.path()), "--auto-approve"])
        .env("MAINT_PASSWORD", SEED_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first_pid = first.id();
    let deadline = Instant::now() + PATIENCE;
    while !server
        .events(start)
        .await
        .iter()
        .any(|e| e.op == "lock.acquire")
    {
        assert!(Instant::now() < deadline, "the first apply takes the lease");
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first apply waits in its drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let second = run(server
        .poolform(&["apply", path(config.path()), "--auto-approve"])
        .env("MAINT_PASSWORD", SEED_PASSWORD))
    .expect_code(1, "second apply");
    assert!(second.stderr.contains("locked by"), "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("pid {first_pid}")),
        "names the holder: {}",
        second.stderr
    );
    assert!(first.try_wait().unwrap().is_none(), "still draining");

    // The users log off; the first apply's drain ends and it finishes.
    for session in server.snapshot().await.sessions {
        if session.destination == "rds-02" {
            server
                .sim(&format!("/v1/_sim/sessions/{}/end", session.id), json!({}))
                .await;
        }
    }
    let output = first.wait_with_output().unwrap();
    Run::of(output).expect_code(0, "first apply");
    let log = server.events(start).await;
    fidelity(
        "two applies at once",
        Some(&planned),
        &log,
        true,
        server.converged(config.path(), ENV),
    );
    assert_eq!(
        log.iter().filter(|e| e.op == "lock.acquire").count(),
        1,
        "only the first apply ever held the lease"
    );
    // New logons stop first; users who log off may leave sticky bindings,
    // which the apply clears; nothing is disconnected (the policy is wait)
    // and nothing is doubled.
    let changes: Vec<String> = without_locks(&log)
        .into_iter()
        .filter(|e| !e.starts_with("sim."))
        .collect();
    assert_eq!(
        changes.first().map(String::as_str),
        Some("destination.drain.start destination/rds-02/drain"),
        "{changes:?}"
    );
    assert_eq!(
        changes.last().map(String::as_str),
        Some("member.remove pool/live/member/rds-02"),
        "{changes:?}"
    );
    assert!(
        changes[1..changes.len() - 1]
            .iter()
            .all(|e| e == "sticky.clear pool/live/sticky-sessions/rds-02"),
        "{changes:?}"
    );
    assert!(changes.len() <= 3, "{changes:?}");
    assert_eq!(server.members("live").await, ["rds-01", "rds-03"]);
    plan_code(&server, config.path()).expect_code(0, "consistent");
}

/// A tiny xorshift, so kill points vary per run yet the seed in the output
/// reproduces a failing run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The reliability bar: with 10% injected 503s and the apply killed at a
/// random point, re-running converges, a plan then shows no changes, and the
/// event log shows no side effect done twice. Each trial alternates taking
/// rds-02 out (with two fresh sessions to drain) and putting it back. The
/// killed run's lease is short (`--lock-ttl 1s`) so the re-run waits briefly.
/// Half the kills land 0-600 ms after the start (at `--latency 20` the CLI
/// needs a few hundred ms of reads before its first write), half right after
/// a random one of the trial's writes shows in the event log.
#[tokio::test]
async fn killed_applies_converge_on_rerun_without_duplicate_side_effects() {
    const TRIALS: usize = 20;
    let server = seeded(&["--fail-rate", "0.1", "--latency", "20"]);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill-point seed {seed}");
    let mut rng = Rng(seed);
    let (out, back) = (
        example("maintenance/rds-02-out"),
        example("maintenance/rds-02-back"),
    );
    let plans = tempfile::tempdir().unwrap();
    let mut reruns_needed = Vec::new();
    let mut done_before_kill = Vec::new();
    for trial in 0..TRIALS {
        let taking_out = trial % 2 == 0;
        let (config, what) = if taking_out {
            (&out, "out")
        } else {
            (&back, "back")
        };
        if taking_out {
            for user in ["a", "b"] {
                server
                    .sim(
                        "/v1/_sim/destinations/rds-02/sessions",
                        json!({"user": format!("{user}{trial}@corp.example"), "state": "active"}),
                    )
                    .await;
            }
        }
        let planned = server.save_plan(config, &plans.path().join(format!("{trial}.json")), ENV);
        let start = server.last_seq().await;
        let mut killed = server
            .poolform(&["apply", path(config), "--auto-approve", "--lock-ttl", "1s"])
            .env("MAINT_PASSWORD", SEED_PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if rng.below(2) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(600)));
        } else {
            // Kill as soon as the k-th side effect shows in the log, which
            // lands between two writes far more often than a blind delay.
            let total = if taking_out { 4 } else { 1 };
            let k = 1 + rng.below(total) as usize;
            let deadline = Instant::now() + PATIENCE;
            while without_locks(&server.events(start).await).len() < k
                && killed.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let _ = killed.kill();
        let _ = killed.wait();
        // How far the killed run got, for the summary: kills before any
        // write, in the middle, and after the last are all worth covering.
        done_before_kill.push(without_locks(&server.events(start).await).len());

        // A re-run can itself meet an injected 503 on a POST (disconnect),
        // which is never retried blindly; running again is the remedy.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let rerun = apply_unchecked(
                &server,
                config,
                &["--lock-ttl", "1s", "--lock-timeout", "60s"],
            );
            if rerun.code == Some(0) {
                break;
            }
            assert!(
                attempts < 5 && (rerun.stdout.contains("503") || rerun.stderr.contains("503")),
                "trial {trial} ({what}) re-run {attempts} failed for a reason other than an injected 503:\n{}\n{}",
                rerun.stdout,
                rerun.stderr
            );
        }
        reruns_needed.push(attempts);
        plan_code(&server, config).expect_code(0, &format!("trial {trial} ({what}) converged"));

        let events = server.events(start).await;
        fidelity(
            &format!("killed apply, trial {trial} ({what}), and its re-runs"),
            Some(&planned),
            &events,
            true,
            true,
        );
        let log = without_locks(&events);
        let count = |entry: &str| log.iter().filter(|e| e.as_str() == entry).count();
        if taking_out {
            assert_eq!(
                count("sessions.disconnect destination/rds-02/sessions"),
                1,
                "trial {trial}: {log:?}"
            );
            assert_eq!(
                count("sticky.clear pool/live/sticky-sessions/rds-02"),
                1,
                "trial {trial}: {log:?}"
            );
            assert_eq!(
                count("member.remove pool/live/member/rds-02"),
                1,
                "trial {trial}: {log:?}"
            );
            assert_eq!(
                count("destination.drain.start destination/rds-02/drain"),
                1,
                "trial {trial}: {log:?}"
            );
            assert_eq!(log.len(), 4, "trial {trial}: {log:?}");
            assert_eq!(server.members("live").await, ["rds-01", "rds-03"]);
        } else {
            assert_eq!(log, ["member.add pool/live/member/rds-02"], "trial {trial}");
            assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
            assert!(server.destination("rds-02").await.lb_service_installed);
        }
    }
    let stats = server.stats().await;
    eprintln!(
        "{TRIALS} trials converged; side effects done before the kill per trial \
         {done_before_kill:?} (out: 4 in all, back: 1); re-runs per trial \
         {reruns_needed:?}; {} injected 503s",
        stats.injected_unavailable
    );
    assert!(stats.injected_unavailable > 0, "faults were injected");
}

/// A pool password from the environment reaches the broker (the change is
/// planned, applied, and then seen as done) but appears in no output of
/// plan or apply, not in the saved plan, the event log, the snapshot, the
/// broker's state file or its trace log.
#[tokio::test]
async fn a_default_credentials_password_never_leaves_its_env_var() {
    let dir = tempfile::tempdir().unwrap();
    let server_log = dir.path().join("server.log");
    let seed = seed_path();
    let server = Server::start_logged(&["--seed", path(&seed)], &server_log);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let secret = format!("Pw{nanos:x}q{}Z", std::process::id());
    let config = example("maintenance/steady");
    let plan_file = dir.path().join("plan.json");
    let mut seen = Vec::new();
    let with_secret = |args: &[&str]| {
        let mut command = server.poolform(args);
        command
            .env("MAINT_PASSWORD", &secret)
            .env("RUST_LOG", "trace");
        command
    };
    let planned = run(&mut with_secret(&[
        "plan",
        path(&config),
        "--out",
        path(&plan_file),
        "--detailed-exitcode",
    ]))
    .expect_code(2, "the new password is a change");
    assert!(planned.stdout.contains("(sensitive)"), "{}", planned.stdout);
    seen.push(("plan stdout", planned.stdout));
    seen.push(("plan stderr", planned.stderr));
    for format in ["json", "markdown"] {
        let shown = run(&mut with_secret(&[
            "plan",
            path(&config),
            "--format",
            format,
        ]))
        .expect_code(0, format);
        seen.push(("plan --format stdout", shown.stdout));
        seen.push(("plan --format stderr", shown.stderr));
    }
    let (applied, _) = server
        .apply_plan_checked(
            "a saved plan with a new password",
            &plan_file,
            &config,
            &[],
            &[("MAINT_PASSWORD", &secret), ("RUST_LOG", "trace")],
        )
        .await;
    let applied = applied.expect_code(0, "apply the saved plan");
    seen.push(("apply stdout", applied.stdout));
    seen.push(("apply stderr", applied.stderr));
    let again = run(&mut with_secret(&[
        "plan",
        path(&config),
        "--detailed-exitcode",
    ]))
    .expect_code(0, "the broker has the new password");
    seen.push(("second plan stdout", again.stdout));

    seen.push(("plan file", std::fs::read_to_string(&plan_file).unwrap()));
    seen.push((
        "events",
        server.get_text("/v1/events?since=0&limit=1000").await,
    ));
    seen.push(("snapshot", server.get_text("/v1/snapshot").await));
    seen.push((
        "state file",
        std::fs::read_to_string(&server.state).unwrap(),
    ));
    seen.push(("server log", std::fs::read_to_string(&server_log).unwrap()));
    for (what, text) in &seen {
        assert!(
            !text.contains(&secret),
            "the password appears in the {what}"
        );
    }
    let maintenance = server
        .snapshot()
        .await
        .pools
        .into_iter()
        .find(|p| p.name == "maintenance")
        .unwrap();
    assert!(maintenance.default_credentials.password_set);
}
