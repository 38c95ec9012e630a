//! `poolform apply` and `plan` end to end (issue 5): the CLI as processes
//! against the reference broker as a process over HTTP; behaviour asserted
//! through the broker's event log, snapshot and request counts.

use std::process::Stdio;
use std::time::{Duration, Instant};

use poolform::contract::wire::Event;
use serde_json::json;

use crate::support::{
    Run, SEED_ENV, SEED_PASSWORD, Server, copy_example, edit, example, fidelity, run, seed_path,
    without_locks, writes,
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

/// Users with a sticky binding to `destination` in pool `live`.
async fn bound_to(server: &Server, destination: &str) -> Vec<String> {
    server
        .snapshot()
        .await
        .sticky_bindings
        .into_iter()
        .filter(|b| b.pool == "live" && b.destination == destination)
        .map(|b| b.user)
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
    assert!(
        !bound_to(&server, "rds-02").await.is_empty(),
        "powering off leaves its users bound to rds-02"
    );
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
    assert_eq!(
        bound_to(&server, "rds-02").await,
        Vec::<String>::new(),
        "the bindings the power-off left are cleared"
    );
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

/// A pool replaced whole: its removals wait for its new members through
/// one step that makes no broker call (the fidelity check follows the
/// order through it), so every add is made before the first removal's
/// write.
#[tokio::test]
async fn a_pool_replaced_whole_gains_its_new_members_before_any_leaves() {
    let server = seeded(&[]);
    for name in ["rds-04", "rds-05", "rds-06"] {
        let body = json!({"name": name, "online": true, "process_execution_ready": true});
        server.sim("/v1/_sim/destinations", body).await;
    }
    let config = copy_example("maintenance/steady");
    let pools = config.path().join("pools.yaml");
    edit(
        &pools,
        "      - rds-01\n      - rds-02\n      - rds-03\n",
        "      - rds-04\n      - rds-05\n      - rds-06\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = server.save_plan(config.path(), &dir.path().join("plan.json"), ENV);
    let start = server.last_seq().await;
    let (out, counts) = server
        .apply_checked("a pool replaced whole", config.path(), &[], ENV)
        .await;
    let out = out.expect_code(0, "replace the pool");
    let wait = "wait until the new members of pool live are in";
    assert!(
        out.stdout.contains(wait) || out.stderr.contains(wait),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let log = without_locks(&server.events(start).await);
    // The adds run at once, in any order among themselves.
    let adds = log
        .iter()
        .take_while(|e| e.starts_with("member.add"))
        .count();
    let mut added = log[..adds].to_vec();
    added.sort();
    assert_eq!(
        added,
        [
            "member.add pool/live/member/rds-04",
            "member.add pool/live/member/rds-05",
            "member.add pool/live/member/rds-06",
        ],
        "{log:#?}"
    );
    let removals = log.iter().filter(|e| e.starts_with("member.remove"));
    assert_eq!(removals.count(), 3, "{log:#?}");
    assert_eq!(server.members("live").await, ["rds-04", "rds-05", "rds-06"]);
    assert_eq!((counts.order_violations, counts.writes_not_in_plan), (0, 0));
    // The fidelity check follows the order through the wait: the same
    // writes with one server's drain before the adds are out of order.
    let mut events = server.events(start).await;
    let drain = (events.iter())
        .position(|e| e.op == "destination.drain.start")
        .unwrap();
    let early = events.remove(drain);
    events.insert(0, early);
    for (seq, event) in (start + 1..).zip(&mut events) {
        event.seq = seq;
    }
    let reordered = std::panic::catch_unwind(|| {
        fidelity("a drain before the adds", Some(&plan), &events, true, true)
    });
    assert!(reordered.is_err(), "the reordered writes passed");
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
/// Each kill lands right after the N-th event of the run shows in the event
/// log, N drawn from a seeded generator: 1 is the lease taken (before any
/// change), 2.. each change. The seed is printed, and `POOLFORM_KILL_SEED`
/// replays the same kill points.
#[tokio::test]
async fn killed_applies_converge_on_rerun_without_duplicate_side_effects() {
    const TRIALS: usize = 20;
    let server = seeded(&["--fail-rate", "0.1", "--latency", "20"]);
    let seed = std::env::var("POOLFORM_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    eprintln!("kill-point seed {seed} (POOLFORM_KILL_SEED={seed} replays it)");
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
        // The lease, then each change (taking out: stop logons, disconnect,
        // clear sticky, remove): kill after the n-th of them.
        let events = if taking_out { 5 } else { 2 };
        let n = 1 + rng.below(events) as usize;
        let deadline = Instant::now() + PATIENCE;
        while server
            .events(start)
            .await
            .iter()
            .filter(|e| e.op == "lock.acquire" || !e.op.starts_with("lock."))
            .count()
            < n
            && killed.try_wait().unwrap().is_none()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
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

/// Starts an apply that waits in a `wait` drain (rds-02 keeps its users)
/// and returns it once it is polling the sessions under its lease.
async fn apply_waiting_in_a_drain(
    server: &Server,
    config: &std::path::Path,
) -> std::process::Child {
    edit(
        &config.join("pools.yaml"),
        "drain: { sessions: disconnect, timeout: 15m }",
        "drain: { sessions: wait, timeout: 15m }",
    );
    let start = server.last_seq().await;
    let mut child = server
        .poolform(&["apply", path(config), "--auto-approve"])
        .env("MAINT_PASSWORD", SEED_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let locked = server
            .events(start)
            .await
            .iter()
            .any(|e| e.op == "lock.acquire");
        let polled = server
            .stats()
            .await
            .requests
            .get("GET /v1/destinations/{name}/sessions")
            .copied()
            .unwrap_or(0);
        if locked && polled >= 2 {
            return child;
        }
        assert!(Instant::now() < deadline, "the apply starts draining");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply waits in its drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM (what CI sends on cancel) and SIGINT (Ctrl-C) stop an apply
/// that waits in a 15-minute drain: it abandons the wait, releases the
/// lease, prints the report and exits 1, without removing rds-02 (whose
/// users are still logged in) and without waiting for the drain to end.
#[tokio::test]
async fn a_signal_stops_a_waiting_apply_releases_the_lease_and_reports() {
    for signal in ["TERM", "INT"] {
        let server = seeded(&[]);
        let config = copy_example("maintenance/rds-02-out");
        let start = server.last_seq().await;
        let child = apply_waiting_in_a_drain(&server, config.path()).await;
        let killed = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = Run::of(child.wait_with_output().unwrap()).expect_code(1, signal);
        assert!(
            out.stderr.contains(&format!("SIG{signal} received")),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout.contains("interrupted"),
            "the report:\n{}",
            out.stdout
        );
        let log = server.events(start).await;
        assert_eq!(
            log.last().map(|e| e.op.as_str()),
            Some("lock.release"),
            "{signal}: the lease is released last: {log:?}"
        );
        // Only the head of the removal chain ran: rds-02 takes no new logons
        // until a later apply finishes the removal or lets it go again.
        assert_eq!(
            without_locks(&log),
            ["destination.drain.start destination/rds-02/drain"],
            "{signal}"
        );
        assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
        assert_eq!(server.destination("rds-02").await.sessions.active, 2);
    }
}

/// Without `--auto-approve`, apply asks on the terminal; with no terminal
/// to ask on it refuses before any change (and gives the lease back).
#[tokio::test]
async fn apply_without_a_terminal_refuses_and_changes_nothing() {
    let server = seeded(&[]);
    let start = server.last_seq().await;
    let out = run(server
        .poolform(&["apply", path(&example("maintenance/rds-02-out"))])
        .env("MAINT_PASSWORD", SEED_PASSWORD))
    .expect_code(1, "no terminal");
    assert!(
        out.stderr.contains("stdin is not a terminal"),
        "{}",
        out.stderr
    );
    assert_eq!(
        without_locks(&server.events(start).await),
        Vec::<String>::new()
    );
    assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
}

/// The leftover service of a host that left while offline is removed by
/// the next apply once the host is back, and then nothing is left to do.
#[tokio::test]
async fn the_leftover_service_is_cleaned_up_once_the_host_is_back() {
    let server = seeded(&[]);
    let out = example("maintenance/rds-02-out");
    server.power("rds-02", false).await;
    apply(&server, "leftover: out while offline", &out, &[])
        .await
        .expect_code(0, "out while offline");
    assert!(server.destination("rds-02").await.lb_service_installed);
    server.power("rds-02", true).await;
    let start = server.last_seq().await;
    let cleaned = apply(&server, "leftover: cleanup", &out, &[])
        .await
        .expect_code(0, "cleanup");
    assert!(cleaned.stdout.contains("leftover"), "{}", cleaned.stdout);
    assert_eq!(
        without_locks(&server.events(start).await),
        ["destination.lb_service.remove destination/rds-02/lb-service"]
    );
    assert!(!server.destination("rds-02").await.lb_service_installed);
    plan_code(&server, &out).expect_code(0, "nothing left");
}

/// `apply --broker file:` runs the runbook on the embedded broker: the
/// state file is created from the seed, changed, and read back by plan.
#[test]
fn apply_against_a_file_broker_converges() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("broker.json");
    let broker = format!("file:{}", state.display());
    let poolform = |args: &[&str]| {
        let mut command = std::process::Command::new(crate::support::bin());
        command
            .args(args)
            .args(["--broker", &broker])
            .env("MAINT_PASSWORD", SEED_PASSWORD)
            .env("NO_COLOR", "1")
            .env_remove("POOLFORM_BROKER")
            .stdin(Stdio::null());
        run(&mut command)
    };
    let out = example("maintenance/rds-02-out");
    let saved = dir.path().join("plan.json");
    poolform(&["plan", path(&out), "--out", path(&saved)]).expect_code(0, "plan");
    let applied = poolform(&["apply", path(&saved), "--auto-approve"]).expect_code(0, "apply");
    assert!(
        applied
            .stdout
            .contains("4 done, 0 warnings, 0 failed, 0 skipped"),
        "{}",
        applied.stdout
    );
    let converged = poolform(&["plan", path(&out), "--detailed-exitcode"]).code == Some(0);
    let engine = poolform::refbroker::store::load_state(&state).expect("the state file");
    let live = engine.pool("live").expect("live is in the state file");
    assert_eq!(live.members, ["rds-01", "rds-03"]);
    let plan = poolform::plan::read_saved(&std::fs::read(&saved).unwrap()).expect("saved plan");
    let events: Vec<_> = engine
        .events_page(0, usize::MAX)
        .items
        .into_iter()
        .cloned()
        .collect();
    crate::support::fidelity(
        "apply --broker file:",
        Some(&plan),
        &events,
        true,
        converged,
    );
}

/// The quick start (README) runs end to end with the binary under test.
#[test]
fn the_quick_start_script_runs() {
    let script = example("maintenance/quickstart.sh");
    let out = run(std::process::Command::new("bash")
        .arg(&script)
        .env("POOLFORM", crate::support::bin())
        .env("NO_COLOR", "1")
        .env_remove("POOLFORM_BROKER")
        .stdin(Stdio::null()))
    .expect_code(0, "quickstart.sh");
    for step in [
        "$ poolform validate examples/maintenance/rds-02-out",
        "$ poolform apply examples/maintenance/rds-02-back",
        "4 done, 0 warnings, 0 failed, 0 skipped",
    ] {
        assert!(
            out.stdout.contains(step),
            "{step:?} missing:\n{}",
            out.stdout
        );
    }
}
