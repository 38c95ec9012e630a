//! The ten findings of the plan-as-contract review, each end to end: the
//! `poolform` binary against `poolform broker serve` over HTTP, the saved
//! plan -> `show` -> `apply PLANFILE` workflow, every apply checked for
//! fidelity to its plan against the broker's event log.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::{Run, SEED_ENV, Server, copy_example, edit, run, seed_path, without_locks};

const ENV: &[(&str, &str)] = SEED_ENV;

fn seeded() -> Server {
    let seed = seed_path();
    Server::start(&["--seed", seed.to_str().unwrap()])
}

/// A variant of the runbook's steady config, and a place for plan files.
struct Case {
    config: tempfile::TempDir,
    plans: tempfile::TempDir,
}

impl Case {
    fn steady() -> Case {
        Case {
            config: copy_example("maintenance/steady"),
            plans: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.config.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.config.path().join(name)
    }

    fn plan_file(&self, name: &str) -> PathBuf {
        self.plans.path().join(name)
    }

    /// Takes rds-02 out of `live`.
    fn without_rds02_in_live(&self) {
        edit(&self.file("pools.yaml"), "      - rds-02\n", "");
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.file(name), text).unwrap();
    }
}

fn poolform(server: &Server, args: &[&str]) -> Run {
    run(server.poolform(args).envs(ENV.iter().copied()))
}

/// `poolform show PLANFILE ARGS...`: needs no broker.
fn show(file: &Path, args: &[&str]) -> Run {
    let mut command = std::process::Command::new(crate::support::bin());
    command
        .arg("show")
        .arg(file)
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    run(&mut command)
}

/// Switches maintenance mode on as an admin would, with no stack as owner.
async fn maintenance_by_hand(server: &Server, destination: &str, body: serde_json::Value) {
    let answer = server
        .raw(
            reqwest::Method::PUT,
            &format!("/v1/destinations/{destination}/maintenance"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

async fn log_on(server: &Server, destination: &str, user: &str) {
    server
        .sim(
            &format!("/v1/_sim/destinations/{destination}/sessions"),
            json!({ "user": user, "state": "active" }),
        )
        .await;
}

/// Finding 1: a plan saved while rds-02 was offline (no drain, policy
/// `refuse`) must not remove it once it is back with users on it.
#[tokio::test]
async fn f01_a_saved_plan_carries_its_assumptions() {
    let server = seeded();
    let case = Case::steady();
    case.without_rds02_in_live();
    edit(
        &case.file("pools.yaml"),
        "    drain: { sessions: disconnect, timeout: 15m }\n",
        "",
    );
    server.power("rds-02", false).await;
    let saved = case.plan_file("offline.json");
    server.save_plan(case.path(), &saved, ENV);
    server.power("rds-02", true).await;
    log_on(&server, "rds-02", "ann@corp.example").await;
    log_on(&server, "rds-02", "ben@corp.example").await;

    let (applied, _) = server
        .apply_plan_checked("f01 host back online", &saved, case.path(), &[], ENV)
        .await;
    let applied = applied.expect_code(1, "the removal's precondition changed");
    assert!(
        applied.stdout.contains(
            "precondition changed: rds-02 planned offline -> live online with 2 active sessions; re-plan"
        ),
        "{}",
        applied.stdout
    );
    assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
    assert_eq!(server.destination("rds-02").await.sessions.active, 2);
}

/// Finding 2: plans with a field going from or to nothing (maintenance on
/// and off, an instance's destination unset, a pool username set) are
/// shown and applied from their saved file.
#[tokio::test]
async fn f02_saved_plans_with_fields_from_or_to_nothing_round_trip() {
    let server = seeded();
    let case = Case::steady();
    case.write(
        "destinations.yaml",
        "destinations:\n  rds-03:\n    maintenance:\n      enabled: true\n      notice_en: Patching until 14:00\n",
    );
    edit(&case.file("apps.yaml"), "    destination: rds-02\n", "");
    edit(
        &case.file("pools.yaml"),
        "    min_members: 2\n",
        "    min_members: 2\n    default_credentials: { username: 'CORP\\svc-live' }\n",
    );
    let on = case.plan_file("on.json");
    let planned = poolform(&server, &["plan", arg(case.path()), "--out", arg(&on)])
        .expect_code(0, "plan --out");
    let shown = show(&on, &[]).expect_code(0, "show");
    assert_eq!(
        shown.stdout, planned.stdout,
        "show renders what plan printed"
    );
    server
        .apply_plan_checked("f02 fields set", &on, case.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "apply the saved plan");

    // The natural revert: the entries go, maintenance goes off.
    std::fs::remove_file(case.file("destinations.yaml")).unwrap();
    edit(
        &case.file("pools.yaml"),
        "    default_credentials: { username: 'CORP\\svc-live' }\n",
        "",
    );
    let off = case.plan_file("off.json");
    server.save_plan(case.path(), &off, ENV);
    for format in ["text", "json", "markdown"] {
        show(&off, &["--format", format]).expect_code(0, &format!("show --format {format}"));
    }
    server
        .apply_plan_checked("f02 fields unset", &off, case.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "apply the saved revert");
}

/// Finding 5: adding an offline host to a load-balanced pool is a located
/// violation before any write, which --force does not override; a move
/// between load-balanced pools that cannot complete is refused whole.
#[tokio::test]
async fn f05_an_offline_host_joining_a_load_balanced_pool_is_refused_up_front() {
    let server = seeded();
    let case = Case::steady();
    case.without_rds02_in_live();
    // rds-02 is out of live and powered off for maintenance.
    server
        .apply_checked("f05 rds-02 out", case.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "out");
    server.power("rds-02", false).await;

    // Putting it back while it is still off.
    let back = Case::steady();
    let planned = poolform(&server, &["plan", arg(back.path()), "--force"]);
    let planned = planned.expect_code(1, "a violation --force cannot override");
    let line = std::fs::read_to_string(back.file("pools.yaml"))
        .unwrap()
        .lines()
        .position(|l| l == "      - rds-02")
        .unwrap()
        + 1;
    assert!(
        planned.stderr.contains("plan::destination_offline")
            && planned.stderr.contains(&format!("pools.yaml:{line}:9")),
        "located at the member entry:\n{}",
        planned.stderr
    );
    assert!(
        planned
            .stderr
            .contains("power rds-02 on, or leave it out of the pool until it is back"),
        "{}",
        planned.stderr
    );
    let start = server.last_seq().await;
    let (applied, _) = server
        .apply_checked("f05 offline add refused", back.path(), &["--force"], ENV)
        .await;
    applied.expect_code(1, "apply refuses too");
    assert!(without_locks(&server.events(start).await).is_empty());

    // Moving it from live to a new load-balanced pool while it is off.
    let moving = Case::steady();
    server.power("rds-02", true).await;
    server
        .apply_checked("f05 rds-02 back", moving.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "back");
    server.power("rds-02", false).await;
    moving.without_rds02_in_live();
    edit(
        &moving.file("pools.yaml"),
        "  maintenance:\n",
        "  batch:\n    load_balancing: { enabled: true }\n    members: [rds-02]\n  maintenance:\n",
    );
    let start = server.last_seq().await;
    let (applied, _) = server
        .apply_checked("f05 move refused whole", moving.path(), &["--force"], ENV)
        .await;
    let applied = applied.expect_code(1, "the move is refused whole");
    assert!(
        applied.stderr.contains("'rds-02' is offline"),
        "{}",
        applied.stderr
    );
    assert!(without_locks(&server.events(start).await).is_empty());
    assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
}

/// Finding 7: a forced violation is recorded in the saved plan, shown by
/// `show`, announced by apply as it starts, listed in its report and counted
/// in its summary.
#[tokio::test]
async fn f07_forced_violations_leave_a_trace() {
    let server = seeded();
    let case = Case::steady();
    case.without_rds02_in_live();
    server.power("rds-03", false).await;
    let refused = poolform(&server, &["plan", arg(case.path())]).expect_code(1, "unforced");
    let line = std::fs::read_to_string(case.file("pools.yaml"))
        .unwrap()
        .lines()
        .position(|l| l == "    min_members: 2")
        .unwrap()
        + 1;
    assert!(
        refused.stderr.contains("plan::min_members")
            && refused.stderr.contains(&format!("pools.yaml:{line}:18"))
            && refused.stderr.contains("unavailable: rds-03 offline"),
        "located at min_members, naming rds-03:\n{}",
        refused.stderr
    );
    let saved = case.plan_file("forced.json");
    poolform(
        &server,
        &["plan", arg(case.path()), "--force", "--out", arg(&saved)],
    )
    .expect_code(0, "plan --force");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(document["forced"], json!(true));
    assert_eq!(document["violations"][0]["rule"], json!("min_members"));
    assert_eq!(document["violations"][0]["offline"], json!(["rds-03"]));
    let shown = show(&saved, &[]).expect_code(0, "show");
    assert!(
        shown
            .stdout
            .contains("! overridden: would leave 1 available member"),
        "{}",
        shown.stdout
    );

    let (applied, _) = server
        .apply_plan_checked("f07 forced plan", &saved, case.path(), &[], ENV)
        .await;
    let applied = applied.expect_code(0, "the reviewed override stands");
    assert!(
        applied
            .stderr
            .contains("overridden with --force: would leave 1 available member in pool 'live'"),
        "progress:\n{}",
        applied.stderr
    );
    assert!(
        applied
            .stdout
            .contains("overridden: would leave 1 available member"),
        "report:\n{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains("1 safety rule overridden"),
        "{}",
        applied.stdout
    );
}

/// Finding 8, its scope: `--target` with a saved plan is refused before
/// anything is written; the targets chosen at plan time are shown by `show`.
#[tokio::test]
async fn f08_a_saved_plan_keeps_the_targets_it_was_made_with() {
    let server = seeded();
    let case = Case::steady();
    case.without_rds02_in_live();
    let saved = case.plan_file("all.json");
    server.save_plan(case.path(), &saved, ENV);
    let start = server.last_seq().await;
    let (refused, _) = server
        .apply_plan_checked(
            "f08 --target with a saved plan",
            &saved,
            case.path(),
            &["--target", "destination/rds-03"],
            ENV,
        )
        .await;
    let refused = refused.expect_code(1, "usage error");
    assert!(
        refused
            .stderr
            .contains("--target cannot be used with a saved plan"),
        "{}",
        refused.stderr
    );
    assert!(server.events(start).await.is_empty(), "not even the lease");

    let targeted = case.plan_file("targeted.json");
    poolform(
        &server,
        &[
            "plan",
            arg(case.path()),
            "--target",
            "destination/rds-02",
            "--out",
            arg(&targeted),
        ],
    )
    .expect_code(0, "plan --target");
    let shown = show(&targeted, &[]).expect_code(0, "show");
    assert!(
        shown
            .stdout
            .contains("Planned with --target destination/rds-02"),
        "{}",
        shown.stdout
    );
}

/// Finding 10: a plan file is recognised by its content, whatever its name.
#[tokio::test]
async fn f10_a_saved_plan_is_recognised_by_its_content() {
    let server = seeded();
    let case = Case::steady();
    case.without_rds02_in_live();
    let saved = case.plan_file("prod.tfplan");
    server.save_plan(case.path(), &saved, ENV);
    show(&saved, &[]).expect_code(0, "show prod.tfplan");
    server
        .apply_plan_checked("f10 prod.tfplan", &saved, case.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "apply prod.tfplan");
    assert_eq!(server.members("live").await, ["rds-01", "rds-03"]);
}

/// Finding 3: `disconnect` disconnects the active sessions and leaves
/// disconnected ones alone; plan, progress and report name one number.
#[tokio::test]
async fn f03_disconnect_means_disconnect() {
    let server = seeded();
    server
        .sim(
            "/v1/_sim/destinations/rds-02/sessions",
            json!({ "user": "dora@corp.example", "state": "disconnected" }),
        )
        .await;
    let case = Case::steady();
    case.without_rds02_in_live();
    let saved = case.plan_file("out.json");
    server.save_plan(case.path(), &saved, ENV);
    let shown = show(&saved, &[]).expect_code(0, "show");
    assert!(
        shown
            .stdout
            .contains("drain rds-02: disconnect 2 active sessions"),
        "{}",
        shown.stdout
    );
    let (applied, _) = server
        .apply_plan_checked("f03 disconnect", &saved, case.path(), &[], ENV)
        .await;
    let applied = applied.expect_code(0, "out");
    assert!(
        applied.stderr.contains("disconnected 2 sessions"),
        "{}",
        applied.stderr
    );
    let sessions = server.snapshot().await.sessions;
    let dora: Vec<_> = sessions
        .iter()
        .filter(|s| s.user == "dora@corp.example")
        .collect();
    assert_eq!(dora.len(), 1, "not logged off: {sessions:?}");
    assert_eq!(
        sessions
            .iter()
            .filter(|s| s.destination == "rds-02")
            .count(),
        3,
        "the two active users are disconnected, nobody is logged off"
    );
}

/// Finding 4: removing the `destinations:` entry that switched maintenance
/// on switches it off again; maintenance set by hand is never touched.
#[tokio::test]
async fn f04_reverting_maintenance_switches_it_off() {
    let server = seeded();
    maintenance_by_hand(
        &server,
        "rds-03",
        json!({ "enabled": true, "notice_en": "hardware check" }),
    )
    .await;
    let case = Case::steady();
    // Maintenance takes rds-02 out of `live`, and rds-03 is in maintenance
    // by hand: one server is left. This finding is about who switches
    // maintenance off, not about capacity.
    edit(
        &case.file("pools.yaml"),
        "    min_members: 2\n",
        "    min_members: 1\n",
    );
    case.write(
        "destinations.yaml",
        "destinations:\n  rds-02:\n    maintenance:\n      enabled: true\n      notice_en: Patching\n",
    );
    server
        .apply_checked("f04 maintenance on", case.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "on");
    std::fs::remove_file(case.file("destinations.yaml")).unwrap();
    let planned = poolform(&server, &["plan", arg(case.path())]).expect_code(0, "plan");
    assert!(
        planned
            .stdout
            .contains("switch off maintenance mode of rds-02"),
        "{}",
        planned.stdout
    );
    server
        .apply_checked("f04 the revert", case.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "the revert");
    let destinations = server.snapshot().await.destinations;
    let maintenance = |name: &str| {
        destinations
            .iter()
            .find(|d| d.name == name)
            .unwrap()
            .maintenance
            .clone()
    };
    assert!(!maintenance("rds-02").enabled, "switched off");
    assert!(maintenance("rds-03").enabled, "set by hand: untouched");
}

/// Finding 6: the stack whose removal left a load-balancing service on an
/// offline host removes it once the host is back, though the host is in
/// none of the stack's pools by then.
#[tokio::test]
async fn f06_a_leftover_is_cleaned_up_by_the_stack_that_left_it() {
    let server = seeded();
    server.power("rds-02", false).await;
    let case = Case::steady();
    case.without_rds02_in_live();
    edit(
        &case.file("pools.yaml"),
        "members: [rds-01, rds-02, rds-03]",
        "members: [rds-01, rds-03]",
    );
    edit(
        &case.file("apps.yaml"),
        "destination: rds-02",
        "destination: rds-01",
    );
    let (applied, _) = server
        .apply_checked("f06 rds-02 out while off", case.path(), &[], ENV)
        .await;
    let applied = applied.expect_code(0, "out, with the announced warning");
    assert!(
        applied
            .stdout
            .contains("the first apply of this stack removes it, whatever pools the host is in"),
        "{}",
        applied.stdout
    );
    server.power("rds-02", true).await;
    let planned = poolform(&server, &["plan", arg(case.path())]).expect_code(0, "plan");
    assert!(
        planned
            .stdout
            .contains("remove the leftover load-balancing service from rds-02"),
        "{}",
        planned.stdout
    );
    server
        .apply_checked("f06 the cleanup", case.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "cleanup");
    let rds02 = server.destination("rds-02").await;
    assert!(!rds02.lb_service_installed);
    assert_eq!(rds02.lb_service_leftover, None);
}

/// Finding 8, its broker: a saved plan applies only on the broker it was
/// made against; one started from that broker's snapshot is another broker
/// and gets no write at all.
#[tokio::test]
async fn f08_a_saved_plan_runs_only_on_its_broker() {
    let server = seeded();
    let case = Case::steady();
    case.without_rds02_in_live();
    let saved = case.plan_file("out.json");
    server.save_plan(case.path(), &saved, ENV);
    let snapshot = case.plan_file("snapshot.json");
    std::fs::write(&snapshot, server.get_text("/v1/snapshot").await).unwrap();
    let copy = Server::start(&["--seed", arg(&snapshot)]);

    let start = copy.last_seq().await;
    let (refused, _) = copy
        .apply_plan_checked("f08 another broker", &saved, case.path(), &[], ENV)
        .await;
    let refused = refused.expect_code(1, "another broker");
    assert!(
        refused
            .stderr
            .contains("the saved plan was made against broker"),
        "{}",
        refused.stderr
    );
    assert!(copy.events(start).await.is_empty(), "not even the lease");
    assert_eq!(copy.members("live").await, ["rds-01", "rds-02", "rds-03"]);
    server
        .apply_plan_checked("f08 its own broker", &saved, case.path(), &[], ENV)
        .await
        .0
        .expect_code(0, "its own broker");
}

/// Finding 9: from the first step of a removal on, the host takes no new
/// users (but the groups maintenance mode lets in), so a `wait` drain ends
/// when the users there log off.
#[tokio::test]
async fn f09_a_draining_server_takes_no_new_users() {
    let server = seeded();
    maintenance_by_hand(
        &server,
        "rds-02",
        json!({ "enabled": true, "allowed_groups": ["admins"] }),
    )
    .await;
    let case = Case::steady();
    case.without_rds02_in_live();
    edit(
        &case.file("pools.yaml"),
        "drain: { sessions: disconnect, timeout: 15m }",
        "drain: { sessions: wait, timeout: 15m }",
    );
    let saved = case.plan_file("out.json");
    let plan = server.save_plan(case.path(), &saved, ENV);
    let start = server.last_seq().await;
    let apply = server
        .poolform(&["apply", arg(&saved), "--auto-approve"])
        .envs(ENV.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !server
        .events(start)
        .await
        .iter()
        .any(|e| e.op == "destination.drain.start")
    {
        assert!(std::time::Instant::now() < deadline, "drain mode starts");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let late = server
        .raw(
            reqwest::Method::POST,
            "/v1/_sim/destinations/rds-02/sessions",
        )
        .json(&json!({ "user": "late@corp.example", "state": "active", "groups": ["users"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), reqwest::StatusCode::CONFLICT);
    let problem: serde_json::Value = late.json().await.unwrap();
    assert_eq!(problem["code"], json!("destination_draining"));
    // An admin may still log on to a host under maintenance.
    server
        .sim(
            "/v1/_sim/destinations/rds-02/sessions",
            json!({ "user": "root@corp.example", "state": "active", "groups": ["admins"] }),
        )
        .await;
    for session in server.snapshot().await.sessions {
        if session.destination == "rds-02" {
            server
                .sim(&format!("/v1/_sim/sessions/{}/end", session.id), json!({}))
                .await;
        }
    }
    let applied = Run::of(apply.wait_with_output().unwrap());
    let converged = server.converged(case.path(), ENV);
    crate::support::fidelity(
        "f09 a wait drain in drain mode",
        Some(&plan),
        &server.events(start).await,
        applied.code == Some(0),
        converged,
    );
    applied.expect_code(0, "the drain ends when the users log off");
    assert_eq!(server.members("live").await, ["rds-01", "rds-03"]);
}
