//! `plan --rehearse` and `apply --rehearse` end to end over HTTP against
//! `poolform broker serve`: a rehearsal runs the plan against a copy of the
//! live state and finds what the plan alone cannot know (a write the broker
//! refuses with 409, a destination not ready for process execution, a
//! `wait` drain that would time out) without a single write to the live
//! broker; and a rehearsal of a clean plan predicts the very events the
//! apply of that plan then makes the broker log.

use std::path::Path;

use poolform::contract::labels::STACK_LABEL;
use poolform::contract::wire::{AppConfigBody, AppInstanceBody, AppType, PoolBody, Protocol};
use poolform::contract::{Broker, Expect};
use poolform::plan::{Plan, Rehearsal, Rehearsed};
use serde_json::json;

use crate::support::{
    Run, SEED_ENV, Server, copy_example, edit, example, read_plan, run, seed_path, without_locks,
    writes,
};

/// The stack's pool `batch` as it is live: not load-balanced.
const BATCH: &str = "pools:\n  batch:\n    members: [rds-04]\n";

fn seeded() -> Server {
    Server::start(&["--seed", seed_path().to_str().unwrap()])
}

/// `poolform plan CONFIG --rehearse --format json --detailed-exitcode`, and
/// the plan it printed.
fn rehearse(server: &Server, config: &Path) -> (Run, Plan) {
    let mut command = server.poolform(&["plan", "--rehearse", "--format", "json"]);
    command
        .arg(config)
        .arg("--detailed-exitcode")
        .envs(SEED_ENV.iter().copied());
    let planned = run(&mut command);
    let plan = serde_json::from_str(&planned.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", planned.stdout, planned.stderr));
    (planned, plan)
}

fn rehearsal(plan: &Plan) -> &Rehearsal {
    plan.rehearsal.as_ref().expect("a rehearsed plan")
}

/// Each step's description and what the copy answered, in plan order.
fn outcomes(plan: &Plan) -> Vec<(String, Rehearsed)> {
    rehearsal(plan)
        .steps
        .iter()
        .map(|s| {
            let what = poolform::render::words::step(&plan.steps[s.step].op);
            (what, s.outcome.clone())
        })
        .collect()
}

fn code_of(outcome: &Rehearsed) -> Option<&str> {
    match outcome {
        Rehearsed::Error { code, .. } => code.as_deref(),
        _ => None,
    }
}

/// What the plan cannot know: an app instance outside the stack pinned to
/// rds-02 through `live`, so the broker keeps rds-02 there (409 in_use).
async fn pinned_outside_the_stack(server: &Server) {
    let broker = server.client();
    let kiosk = AppConfigBody {
        pool: "live".to_owned(),
        app_type: AppType::Desktop,
        protocol: Protocol::Rdp,
        admin_session: false,
        keep_credentials_on_destination_change: false,
        allow_destination_change: false,
        labels: Default::default(),
    };
    broker
        .put_app_config("kiosk", &kiosk, Expect::Any)
        .await
        .unwrap();
    let pinned = AppInstanceBody {
        app_config: "kiosk".to_owned(),
        user: Some("lobby@corp.example".to_owned()),
        group: None,
        destination: Some("rds-02".to_owned()),
        labels: Default::default(),
    };
    broker
        .put_app_instance("kiosk-lobby", &pinned, Expect::Any)
        .await
        .unwrap();
}

/// What the plan cannot know: a pool of the stack whose member is not
/// ready for process execution, so switching its load balancing on is
/// refused (409 destination_not_ready).
async fn unready_member(server: &Server) {
    let broker = server.client();
    server
        .sim(
            "/v1/_sim/destinations",
            json!({"name": "rds-04", "online": true, "process_execution_ready": false}),
        )
        .await;
    let batch = PoolBody {
        labels: [(STACK_LABEL.to_owned(), "corp-rds".to_owned())].into(),
        ..PoolBody::default()
    };
    broker.put_pool("batch", &batch, Expect::Any).await.unwrap();
    broker.put_member("batch", "rds-04").await.unwrap();
}

#[tokio::test]
async fn a_rehearsal_finds_what_the_plan_cannot_know_without_writing_to_the_broker() {
    let server = seeded();
    pinned_outside_the_stack(&server).await;
    unready_member(&server).await;
    let start = server.last_seq().await;
    let before = writes(&server.stats().await);

    // rds-02 out of `live`: the broker refuses the removal.
    let out = copy_example("maintenance/rds-02-out");
    std::fs::write(out.path().join("batch.yaml"), BATCH).unwrap();
    let (planned, plan) = rehearse(&server, out.path());
    planned.expect_code(1, "a rehearsal error exits 1");
    assert!(
        plan.violations.is_empty(),
        "the plan alone sees nothing wrong"
    );
    let found = outcomes(&plan);
    assert_eq!(found[3].0, "remove rds-02 from pool live");
    assert_eq!(code_of(&found[3].1), Some("in_use"), "{found:?}");
    assert!(
        found[..3].iter().all(|(_, o)| *o == Rehearsed::Done),
        "{found:?}"
    );
    assert_eq!(rehearsal(&plan).converges, Some(false));

    // Load balancing switched on for a pool with an unready member.
    let batch = copy_example("maintenance/steady");
    std::fs::write(
        batch.path().join("batch.yaml"),
        BATCH.replace("members:", "load_balancing: {enabled: true}\n    members:"),
    )
    .unwrap();
    let (planned, plan) = rehearse(&server, batch.path());
    planned.expect_code(1, "a rehearsal error exits 1");
    assert!(
        plan.violations.is_empty(),
        "the plan alone sees nothing wrong"
    );
    let found = outcomes(&plan);
    assert_eq!(found[0].0, "write settings of pool batch");
    assert_eq!(
        code_of(&found[0].1),
        Some("destination_not_ready"),
        "{found:?}"
    );

    // A `wait` drain: nobody logs off on the copy.
    edit(
        &out.path().join("pools.yaml"),
        "drain: { sessions: disconnect, timeout: 15m }",
        "drain: { sessions: wait, timeout: 10m }",
    );
    let (planned, plan) = rehearse(&server, out.path());
    let planned = planned.expect_code(2, "a wait is no error: changes, exit 2");
    let found = outcomes(&plan);
    assert_eq!(
        found[1].1,
        Rehearsed::Blocked {
            wait_seconds: 600,
            active_sessions: 2
        }
    );
    assert_eq!(found[2].1, Rehearsed::Skipped { after: Some(1) });
    assert_eq!(found[3].1, Rehearsed::Skipped { after: Some(2) });
    let mut show = server.poolform(&["plan", "--rehearse"]);
    let text = run(show.arg(out.path()).envs(SEED_ENV.iter().copied())).stdout;
    assert!(
        text.contains("2. drain rds-02: wait for 2 active sessions to end, up to 10m: would wait up to 10m unless users log off (2 active sessions on the host)"),
        "{text}\n{}",
        planned.stderr
    );

    // And apply --rehearse stops after the rehearsal, taking no lock.
    let mut apply = server.poolform(&["apply", "--rehearse", "--auto-approve"]);
    let applied = run(apply
        .arg(copy_example("maintenance/rds-02-out").path())
        .envs(SEED_ENV.iter().copied()));
    let applied = applied.expect_code(1, "apply --rehearse with an error");
    assert!(
        applied
            .stdout
            .contains("Rehearsal: rehearsed against a copy of live state"),
        "{}",
        applied.stdout
    );
    assert!(
        applied
            .stderr
            .contains("the rehearsal found 1 step that would fail"),
        "{}",
        applied.stderr
    );

    assert_eq!(
        server.events(start).await,
        Vec::new(),
        "no event on the live broker"
    );
    assert_eq!(
        writes(&server.stats().await),
        before,
        "no write request, not even a lock"
    );
}

#[tokio::test]
async fn a_rehearsal_of_a_clean_plan_predicts_the_events_its_apply_makes() {
    let server = seeded();
    let config = copy_example("maintenance/rds-02-maintenance");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let start = server.last_seq().await;
    let mut command = server.poolform(&["plan", "--rehearse"]);
    command
        .arg(config.path())
        .arg("--out")
        .arg(&file)
        .envs(SEED_ENV.iter().copied());
    let planned = run(&mut command).expect_code(0, "plan --rehearse");
    assert_eq!(
        server.events(start).await,
        Vec::new(),
        "the rehearsal wrote nothing"
    );
    let plan = read_plan(&file);
    let rehearsed = rehearsal(&plan).clone();
    assert!(
        rehearsed.steps.iter().all(|s| s.outcome == Rehearsed::Done),
        "{}",
        planned.stdout
    );
    assert_eq!(rehearsed.converges, Some(true));
    assert!(
        planned.stdout.contains("5 of 5 steps ok, converges"),
        "{}",
        planned.stdout
    );

    let mut show = std::process::Command::new(crate::support::bin());
    show.args(["show", "--format", "markdown"]).arg(&file);
    let comment = run(&mut show).expect_code(0, "show").stdout;
    let verdict = comment.lines().nth(3).unwrap_or_default();
    assert!(
        verdict.starts_with("**Rehearsal:** rehearsed against a copy of live state taken ")
            && verdict.contains(": 5 of 5 steps ok, converges, "),
        "{comment}"
    );

    // The saved plan rehearsed again, as `apply` would take it: still nothing
    // written, and it says so.
    let mut again = server.poolform(&["apply", "--rehearse"]);
    let again = run(again.arg(&file)).expect_code(0, "apply --rehearse PLANFILE");
    assert!(
        again
            .stdout
            .contains("5 of 5 steps ok, convergence not checked (no config)")
            && again
                .stderr
                .contains("Rehearsed only: nothing was written to the broker"),
        "{}\n{}",
        again.stdout,
        again.stderr
    );
    assert_eq!(server.events(start).await, Vec::new());

    let (applied, _) = server
        .apply_plan_checked("rehearsed plan", &file, config.path(), &[], SEED_ENV)
        .await;
    applied.expect_code(0, "apply");
    let predicted: Vec<String> = rehearsed
        .events
        .iter()
        .map(|e| format!("{} {}", e.op, e.resource))
        .collect();
    assert_eq!(without_locks(&server.events(start).await), predicted);
    assert_eq!(predicted.len(), 5, "{predicted:?}");
}

#[tokio::test]
async fn a_rotated_password_is_rehearsed_without_the_secret_leaving_poolform() {
    let server = seeded();
    let start = server.last_seq().await;
    let before = writes(&server.stats().await);
    let secret = "rotated-4f1c9a-secret";
    let mut command = server.poolform(&["plan", "--rehearse", "--format", "json"]);
    command
        .arg(example("maintenance/steady"))
        .env("MAINT_PASSWORD", secret);
    let planned = run(&mut command).expect_code(0, "plan --rehearse");
    let plan: Plan = serde_json::from_str(&planned.stdout).unwrap();
    let found = outcomes(&plan);
    assert_eq!(
        found,
        vec![(
            "write settings of pool maintenance".to_owned(),
            Rehearsed::Done
        )]
    );
    assert_eq!(rehearsal(&plan).converges, Some(true));
    assert!(
        !planned.stdout.contains(secret) && !planned.stderr.contains(secret),
        "{}\n{}",
        planned.stdout,
        planned.stderr
    );
    assert_eq!(server.events(start).await, Vec::new());
    assert_eq!(writes(&server.stats().await), before);
}
