//! Apply against the real reference broker engine, in-process behind the
//! recording broker: the runbook's three states (from the example seed), the
//! scheduling rules (dependencies, one step per destination, parallelism,
//! cancellation), the drain policies, the warning downgrade, secrets, the
//! stale-plan check and the lease. Time is tokio's paused clock, which the
//! broker's clock follows.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::SecretString;

use super::*;
use crate::address::{Address, Kind};
use crate::contract::Broker;
use crate::contract::Expect;
use crate::contract::problem::{self, codes};
use crate::contract::wire::{
    AppConfigBody, AppType, Labels, LoadBalancing, LockBody, Maintenance, PoolBody, Protocol,
    SessionState, Snapshot,
};
use crate::desired::{Desired, DrainSessions};
use crate::plan::fixtures::{self, STACK};
use crate::plan::{self, Op, PoolSettings, Revision, Step, Targets, Unmanaged};
use crate::refbroker::{Engine, Fault, Operation, Recording};
use crate::secret::Secret;

/// Unix milliseconds the broker's virtual clock starts at.
const EPOCH_MS: u64 = 1_800_000_000_000;

const LATENCY: Duration = Duration::from_millis(20);

fn step(id: usize, op: Op, depends_on: &[usize]) -> Step {
    Step {
        id,
        op,
        depends_on: depends_on.to_vec(),
        cause: Address::new(Kind::Pool, "live"),
        preconditions: Vec::new(),
        expected_warning: None,
        reason: None,
    }
}

fn plan_of(steps: Vec<Step>) -> Plan {
    Plan {
        format_version: plan::FORMAT_VERSION,
        stack: STACK.to_owned(),
        broker: plan::BrokerIdentity::default(),
        targets: Vec::new(),
        forced: false,
        changes: Vec::new(),
        steps,
        violations: Vec::new(),
        unmanaged: Unmanaged::default(),
        revisions: Vec::new(),
        rehearsal: None,
        checksum: String::new(),
    }
}

fn drain(destination: &str, policy: DrainSessions, timeout_seconds: Option<u64>) -> Op {
    Op::DrainSessions {
        pool: "live".into(),
        destination: destination.into(),
        policy,
        timeout_seconds,
        active_sessions: 3,
        notice: None,
    }
}

fn clear_sticky(destination: &str) -> Op {
    Op::ClearSticky {
        pool: "live".into(),
        destination: destination.into(),
    }
}

fn remove(pool: &str, destination: &str) -> Op {
    Op::RemoveMember {
        pool: pool.into(),
        destination: destination.into(),
    }
}

fn add(pool: &str, destination: &str) -> Op {
    Op::AddMember {
        pool: pool.into(),
        destination: destination.into(),
    }
}

fn offline_warning(destination: &str) -> ExpectedWarning {
    ExpectedWarning::LbServiceUninstallFailed {
        destination: destination.to_owned(),
    }
}

/// The runbook's plan for taking rds-02 out while it is online.
fn out_online(policy: DrainSessions, timeout_seconds: Option<u64>) -> Plan {
    plan_of(vec![
        step(0, drain("rds-02", policy, timeout_seconds), &[]),
        step(1, clear_sticky("rds-02"), &[0]),
        step(2, remove("live", "rds-02"), &[1]),
    ])
}

/// The runbook's plan for taking rds-02 out while it is offline.
fn out_offline() -> Plan {
    let mut remove_step = step(1, remove("live", "rds-02"), &[0]);
    remove_step.expected_warning = Some(Box::new(offline_warning("rds-02")));
    plan_of(vec![step(0, clear_sticky("rds-02"), &[]), remove_step])
}

/// The runbook's starting point, `examples/maintenance/broker-seed.json`:
/// rds-01..03 in `live` (load-balanced, 10 min sticky) and `maintenance`,
/// every server with users on it, an admin desktop pinned to rds-02.
fn runbook_seed() -> Snapshot {
    serde_json::from_str(include_str!("../../examples/maintenance/broker-seed.json"))
        .expect("the example seed is a snapshot")
}

fn seeded(snapshot: Snapshot) -> Recording {
    Recording::from_snapshot(snapshot, EPOCH_MS)
        .expect("the seed is consistent")
        .with_latency(LATENCY)
}

/// The runbook's broker. A third user logs on to rds-02, so it has three
/// active sessions; offline, rds-02 has been shut down (which logs its users
/// off, leaving sticky bindings to it).
fn runbook(rds02_online: bool) -> Recording {
    let broker = seeded(runbook_seed());
    broker.engine_mut(|e| {
        e.sim_start_session("rds-02", "cy@corp.example", SessionState::Active, &[])
            .expect("rds-02 is online");
        if !rds02_online {
            e.sim_power("rds-02", false).expect("rds-02 exists");
        }
    });
    broker
}

/// A broker with destinations `names` and, unless `pool` is `None`, that
/// pool owned by the stack, not load-balanced and without members.
fn lab(names: &[String], pool: Option<&str>) -> Recording {
    seeded(Snapshot {
        destinations: names.iter().map(|n| fixtures::dest(n, true, 0)).collect(),
        pools: pool
            .map(|p| fixtures::pool(p, LoadBalancing::default(), &[], None))
            .into_iter()
            .collect(),
        ..Snapshot::default()
    })
}

fn empty() -> Recording {
    Recording::new(Engine::new(), EPOCH_MS).with_latency(LATENCY)
}

/// A problem answer for a scripted fault.
fn answer(status: u16, code: &str, online: Option<bool>) -> Box<problem::Problem> {
    let mut p = problem::new(status, code, "scripted");
    p.destination_online = online;
    p
}

/// Scripts `answer` for the calls of `operation` on `target`; the engine
/// never sees them.
fn script(broker: &Recording, operation: Operation, target: &str, answer: Box<problem::Problem>) {
    broker.fail(Fault::new(operation, answer).on(target));
}

fn options() -> Options {
    Options {
        drain_poll_interval: Duration::from_millis(500),
        ..Options::default()
    }
}

fn no_secrets(_: &SecretSource) -> Result<SecretString, String> {
    Err("no secrets in this test".to_owned())
}

struct Run {
    report: Report,
    events: Vec<Progress>,
}

async fn run_with(broker: &Recording, plan: &Plan, options: &Options) -> Run {
    let events = Mutex::new(Vec::new());
    let report = execute(broker, plan, options, &no_secrets, &|e| {
        events.lock().unwrap().push(e)
    })
    .await;
    Run {
        report,
        events: events.into_inner().unwrap(),
    }
}

async fn run(broker: &Recording, plan: &Plan) -> Run {
    run_with(broker, plan, &options()).await
}

/// Outcomes as short strings, in plan order.
fn outcomes(report: &Report) -> Vec<String> {
    report
        .steps
        .iter()
        .map(|r| match &r.outcome {
            StepOutcome::Done => "done".to_owned(),
            StepOutcome::Warning(w) if w.expected => "expected warning".to_owned(),
            StepOutcome::Warning(_) => "unexpected warning".to_owned(),
            StepOutcome::Failed(ApplyError::Broker(e)) => {
                format!("failed {}", e.code().unwrap_or("transport"))
            }
            StepOutcome::Failed(ApplyError::SessionsActive { active, .. }) => {
                format!("failed sessions active {active}")
            }
            StepOutcome::Failed(ApplyError::DrainTimedOut { active, .. }) => {
                format!("failed drain timed out {active}")
            }
            StepOutcome::Failed(ApplyError::MembershipRemains { .. }) => {
                "failed membership remains".to_owned()
            }
            StepOutcome::Failed(ApplyError::Secret { .. }) => "failed secret".to_owned(),
            StepOutcome::Failed(ApplyError::Cancelled) => "failed cancelled".to_owned(),
            StepOutcome::Failed(ApplyError::PreconditionChanged(changed)) => {
                format!("failed precondition {changed}")
            }
            StepOutcome::Skipped(SkipReason::DependencyFailed { step }) => {
                format!("skipped after {step}")
            }
            StepOutcome::Skipped(SkipReason::Cancelled) => "skipped cancelled".to_owned(),
        })
        .collect()
}

/// Every call so far as `method arg...`.
fn calls(broker: &Recording) -> Vec<String> {
    broker.calls().iter().map(ToString::to_string).collect()
}

/// The calls that may change something.
fn writes(broker: &Recording) -> Vec<String> {
    broker
        .calls()
        .iter()
        .filter(|c| c.operation.writes())
        .map(ToString::to_string)
        .collect()
}

fn is_member(broker: &Recording, pool: &str, destination: &str) -> bool {
    broker.engine(|e| {
        e.pool(pool)
            .expect("the pool exists")
            .members
            .iter()
            .any(|m| m == destination)
    })
}

/// The runbook's config (`examples/maintenance`) with `live` holding
/// `live_members`.
fn config(live_members: &[&str]) -> Desired {
    let mut desired = fixtures::steady();
    let pools = &mut desired.pools;
    pools.get_mut("live").expect("the runbook has live").members = fixtures::members(live_members);
    // The quick start's MAINT_PASSWORD; the seed's fingerprint label matches it.
    pools
        .get_mut("maintenance")
        .expect("the runbook has maintenance")
        .password = Some(Secret {
        source: SecretSource::Env("MAINT_PASSWORD".to_owned()),
        value: SecretString::from("maintenance-demo"),
    });
    desired
}

async fn plan_against(broker: &Recording, desired: &Desired) -> Plan {
    let live = broker.read_live().await.expect("the broker reads");
    plan::compute(desired, &live, &Targets::default()).expect("plan orders")
}

/// Real plans for the runbook, applied, then planned again: the second plan
/// must be empty, or apply did not reach what plan asked for.
#[tokio::test(start_paused = true)]
async fn the_runbook_round_trip_converges_with_an_online_server() {
    let broker = runbook(true);
    let out = config(&["rds-01", "rds-03"]);
    let plan = plan_against(&broker, &out).await;
    assert_eq!(outcomes(&run(&broker, &plan).await.report), ["done"; 4]);
    assert_eq!(
        writes(&broker),
        [
            "start_drain rds-02 corp-rds",
            "disconnect_sessions rds-02",
            "clear_sticky live rds-02",
            "delete_member live rds-02"
        ]
    );
    assert!(!plan_against(&broker, &out).await.has_changes());

    broker.take_calls();
    let back = config(&["rds-01", "rds-02", "rds-03"]);
    let plan = plan_against(&broker, &back).await;
    assert_eq!(outcomes(&run(&broker, &plan).await.report), ["done"]);
    assert_eq!(writes(&broker), ["put_member live rds-02"]);
    assert!(!plan_against(&broker, &back).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn the_runbook_round_trip_converges_with_an_offline_server() {
    let broker = runbook(false);
    let out = config(&["rds-01", "rds-03"]);
    let plan = plan_against(&broker, &out).await;
    let run_out = run(&broker, &plan).await;
    assert_eq!(
        outcomes(&run_out.report),
        ["done", "done", "expected warning"]
    );
    assert_eq!(
        writes(&broker),
        [
            "start_drain rds-02 corp-rds",
            "clear_sticky live rds-02",
            "delete_member live rds-02"
        ]
    );
    // The leftover service cannot be removed while the host is offline.
    assert!(!plan_against(&broker, &out).await.has_changes());

    // Maintenance done: the host is back online and rejoins.
    broker.engine_mut(|e| e.sim_power("rds-02", true).expect("rds-02 exists"));
    broker.take_calls();
    let back = config(&["rds-01", "rds-02", "rds-03"]);
    let plan = plan_against(&broker, &back).await;
    assert_eq!(outcomes(&run(&broker, &plan).await.report), ["done"]);
    assert_eq!(writes(&broker), ["put_member live rds-02"]);
    assert!(!plan_against(&broker, &back).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn cancelling_interrupts_a_drain_that_waits() {
    let broker = runbook(true);
    let options = options();
    let cancel = Arc::clone(&options.cancel);
    let report = execute(
        &broker,
        &out_online(DrainSessions::Wait, Some(900)),
        &options,
        &no_secrets,
        &|e| {
            if let Progress::DrainProgress { .. } = e {
                cancel.store(true, Ordering::SeqCst);
            }
        },
    )
    .await;
    assert!(report.cancelled);
    assert_eq!(
        outcomes(&report),
        ["failed cancelled", "skipped cancelled", "skipped cancelled"]
    );
    assert!(writes(&broker).is_empty());
}

#[tokio::test(start_paused = true)]
async fn taking_out_an_online_server_disconnects_then_clears_sticky_then_removes() {
    let broker = runbook(true);
    let run = run(&broker, &out_online(DrainSessions::Disconnect, Some(900))).await;
    assert_eq!(outcomes(&run.report), ["done", "done", "done"]);
    assert_eq!(
        writes(&broker),
        [
            "disconnect_sessions rds-02",
            "clear_sticky live rds-02",
            "delete_member live rds-02"
        ]
    );
    // The disconnect created bindings to rds-02; clearing after it caught them.
    assert!(broker.snapshot().sticky_bindings.is_empty());
    assert!(!is_member(&broker, "live", "rds-02"));
    assert!(run.events.iter().any(|e| matches!(
        e,
        Progress::SessionsDisconnected {
            step: 0,
            affected: 3
        }
    )));
    assert!(run.events.iter().any(|e| matches!(
        e,
        Progress::DrainProgress {
            step: 0,
            remaining_sessions: 0,
            ..
        }
    )));
    assert_eq!(run.report.summary().done, 3);
    assert!(run.report.succeeded());
}

#[tokio::test(start_paused = true)]
async fn a_rerun_after_completion_disconnects_nobody_again() {
    let broker = runbook(true);
    let plan = out_online(DrainSessions::Disconnect, Some(900));
    run(&broker, &plan).await;
    broker.take_calls();
    let rerun = run(&broker, &plan).await;
    assert_eq!(outcomes(&rerun.report), ["done", "done", "done"]);
    assert_eq!(
        writes(&broker),
        ["clear_sticky live rds-02", "delete_member live rds-02"]
    );
}

#[tokio::test(start_paused = true)]
async fn taking_out_an_offline_server_gives_exactly_the_expected_warning() {
    let broker = runbook(false);
    let run = run(&broker, &out_offline()).await;
    assert_eq!(outcomes(&run.report), ["done", "expected warning"]);
    assert_eq!(
        writes(&broker),
        ["clear_sticky live rds-02", "delete_member live rds-02"]
    );
    assert!(calls(&broker).contains(&"get_pool live".to_owned()));
    assert!(!is_member(&broker, "live", "rds-02"));
    let summary = run.report.summary();
    assert_eq!((summary.warnings, summary.unexpected_warnings), (1, 0));
    assert!(run.report.succeeded());
    let StepOutcome::Warning(w) = &run.report.steps[1].outcome else {
        unreachable!("checked above")
    };
    assert_eq!(w.warning, offline_warning("rds-02"));
    assert_eq!(w.problem.code, codes::LB_SERVICE_UNINSTALL_FAILED);
}

#[tokio::test(start_paused = true)]
async fn a_host_gone_offline_since_planning_is_not_drained() {
    let broker = runbook(false);
    let run = run(&broker, &out_online(DrainSessions::Disconnect, Some(900))).await;
    // The plan did not announce the warning: it still counts, as unexpected.
    assert_eq!(
        outcomes(&run.report),
        ["done", "done", "unexpected warning"]
    );
    assert_eq!(
        writes(&broker),
        ["clear_sticky live rds-02", "delete_member live rds-02"]
    );
    assert_eq!(run.report.summary().unexpected_warnings, 1);
}

#[tokio::test(start_paused = true)]
async fn putting_the_server_back_is_one_add_and_safe_to_repeat() {
    let broker = runbook(true);
    broker.engine_mut(|e| e.delete_member("live", "rds-02").expect("rds-02 is online"));
    let plan = plan_of(vec![step(0, add("live", "rds-02"), &[])]);
    assert_eq!(outcomes(&run(&broker, &plan).await.report), ["done"]);
    assert_eq!(outcomes(&run(&broker, &plan).await.report), ["done"]);
    assert_eq!(
        writes(&broker),
        ["put_member live rds-02", "put_member live rds-02"]
    );
    assert_eq!(
        broker.engine(|e| e.pool("live").unwrap().members.clone()),
        ["rds-01", "rds-02", "rds-03"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_skips_its_dependents_while_other_branches_finish() {
    // rds-04 is registered but not prepared for process execution: the
    // broker refuses it in a load-balanced pool.
    let broker = runbook(true);
    broker.engine_mut(|e| {
        e.sim_destination("rds-04", true, false)
            .expect("a valid name")
    });
    let plan = plan_of(vec![
        step(0, add("live", "rds-04"), &[]),
        step(1, clear_sticky("rds-02"), &[0]),
        step(2, remove("live", "rds-02"), &[1]),
        step(3, remove("maintenance", "rds-03"), &[]),
    ]);
    let run = run(&broker, &plan).await;
    assert_eq!(
        outcomes(&run.report),
        [
            "failed destination_not_ready",
            "skipped after 0",
            "skipped after 1",
            "done"
        ]
    );
    assert!(is_member(&broker, "live", "rds-02"));
    assert!(!is_member(&broker, "maintenance", "rds-03"));
    let summary = run.report.summary();
    assert_eq!((summary.failed, summary.skipped, summary.done), (1, 2, 1));
    assert!(!run.report.succeeded());
}

#[tokio::test(start_paused = true)]
async fn steps_on_one_destination_never_overlap() {
    let broker = runbook(true);
    let plan = plan_of(vec![
        step(
            0,
            Op::PutMaintenance {
                destination: "rds-01".into(),
                maintenance: Box::new(Maintenance {
                    enabled: true,
                    ..Maintenance::default()
                }),
            },
            &[],
        ),
        step(1, clear_sticky("rds-01"), &[]),
        step(2, remove("maintenance", "rds-01"), &[]),
        step(3, clear_sticky("rds-03"), &[]),
    ]);
    let run = run(&broker, &plan).await;
    assert_eq!(outcomes(&run.report), ["done"; 4]);
    let concurrency = broker.concurrency();
    assert!(
        concurrency.most_per_destination.values().all(|&n| n == 1),
        "overlaps: {:?}",
        concurrency.most_per_destination
    );
    // rds-03's step ran beside the rds-01 ones: exclusion is per destination.
    assert_eq!(concurrency.most, 2);
    let started: Vec<_> = run.report.steps.iter().map(|r| r.started).collect();
    assert!(started[0] < started[1] && started[1] < started[2]);
    assert_eq!(started[3], started[0]);
}

#[tokio::test(start_paused = true)]
async fn no_more_than_parallelism_steps_run_at_once() {
    let names: Vec<String> = (0..30).map(|i| format!("rds-{i:02}")).collect();
    let broker = lab(&names, Some("lab"));
    let steps = names
        .iter()
        .enumerate()
        .map(|(i, name)| step(i, add("lab", name), &[]))
        .collect();
    let options = Options {
        parallelism: 4,
        ..options()
    };
    let run = run_with(&broker, &plan_of(steps), &options).await;
    assert_eq!(run.report.summary().done, 30);
    assert_eq!(broker.concurrency().most, 4);
    assert_eq!(writes(&broker).len(), 30);
}

#[tokio::test(start_paused = true)]
async fn wait_policy_waits_for_sessions_to_end() {
    let broker = runbook(true);
    let plan = out_online(DrainSessions::Wait, Some(60));
    // The users log off between the second and the third poll.
    let log_off = async {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        log_everyone_off(&broker, "rds-02");
    };
    let (run, ()) = tokio::join!(run(&broker, &plan), log_off);
    assert_eq!(outcomes(&run.report), ["done", "done", "done"]);
    assert!(!writes(&broker).iter().any(|c| c.starts_with("disconnect")));
    let remaining: Vec<u32> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Progress::DrainProgress {
                remaining_sessions, ..
            } => Some(*remaining_sessions),
            _ => None,
        })
        .collect();
    assert_eq!(remaining, [3, 3, 3, 0]);
}

#[tokio::test(start_paused = true)]
async fn wait_policy_timeout_fails_and_leaves_the_member() {
    let broker = runbook(true);
    let run = run(&broker, &out_online(DrainSessions::Wait, Some(60))).await;
    assert_eq!(
        outcomes(&run.report),
        [
            "failed drain timed out 3",
            "skipped after 0",
            "skipped after 1"
        ]
    );
    assert!(writes(&broker).is_empty());
    assert!(is_member(&broker, "live", "rds-02"));
    let time_left: Vec<Duration> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Progress::DrainProgress { time_left, .. } => Some(*time_left),
            _ => None,
        })
        .collect();
    assert!(time_left.windows(2).all(|w| w[0] > w[1]));
    assert_eq!(time_left.last(), Some(&Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn refuse_policy_fails_while_sessions_are_active() {
    let broker = runbook(true);
    let run = run(&broker, &out_online(DrainSessions::Refuse, None)).await;
    assert_eq!(
        outcomes(&run.report),
        [
            "failed sessions active 3",
            "skipped after 0",
            "skipped after 1"
        ]
    );
    assert!(writes(&broker).is_empty());
}

#[tokio::test(start_paused = true)]
async fn uninstall_failure_from_an_online_host_is_a_failure() {
    // The engine uninstalls from an online host; a failure there is scripted.
    let broker = runbook(true);
    script(
        &broker,
        Operation::DeleteMember,
        "live rds-02",
        answer(502, codes::LB_SERVICE_UNINSTALL_FAILED, Some(true)),
    );
    let plan = plan_of(vec![step(0, remove("live", "rds-02"), &[])]);
    let run = run(&broker, &plan).await;
    assert_eq!(
        outcomes(&run.report),
        ["failed lb_service_uninstall_failed"]
    );
    assert!(!calls(&broker).contains(&"get_pool live".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn another_error_from_an_offline_host_is_a_failure() {
    let broker = runbook(false);
    script(
        &broker,
        Operation::DeleteMember,
        "live rds-02",
        answer(502, codes::DESTINATION_UNREACHABLE, Some(false)),
    );
    let run = run(&broker, &out_offline()).await;
    assert_eq!(
        outcomes(&run.report),
        ["done", "failed destination_unreachable"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_warning_needs_a_reread_showing_the_membership_gone() {
    // The scripted answer leaves the member in place, unlike the real rule.
    let broker = runbook(false);
    script(
        &broker,
        Operation::DeleteMember,
        "live rds-02",
        answer(502, codes::LB_SERVICE_UNINSTALL_FAILED, Some(false)),
    );
    let run = run(&broker, &out_offline()).await;
    assert_eq!(outcomes(&run.report), ["done", "failed membership remains"]);
    assert!(is_member(&broker, "live", "rds-02"));
}

#[tokio::test(start_paused = true)]
async fn a_resource_already_deleted_counts_as_deleted() {
    let broker = runbook(true);
    let plan = plan_of(vec![
        step(
            0,
            Op::DeleteAppInstance {
                app_instance: "gone".into(),
            },
            &[],
        ),
        step(
            1,
            Op::DeleteAppConfig {
                app_config: "gone".into(),
            },
            &[0],
        ),
        step(
            2,
            Op::DeletePool {
                pool: "gone".into(),
            },
            &[1],
        ),
    ]);
    assert_eq!(outcomes(&run(&broker, &plan).await.report), ["done"; 3]);
}

#[tokio::test(start_paused = true)]
async fn put_pool_sends_the_password_and_labels_its_fingerprint_only() {
    const SECRET: &str = "correct horse battery staple";
    let broker = empty();
    let source = SecretSource::Env("POOL_PASSWORD".to_owned());
    let plan = plan_of(vec![step(
        0,
        Op::PutPool {
            pool: "lab".into(),
            settings: Box::new(PoolSettings {
                load_balancing: LoadBalancing::default(),
                username: Some("svc".to_owned()),
                password: Some(source.clone()),
                labels: Labels::new(),
            }),
        },
        &[],
    )]);
    let secrets = |s: &SecretSource| {
        assert_eq!(s, &source);
        Ok(SecretString::from(SECRET.to_owned()))
    };
    let events = Mutex::new(Vec::new());
    let report = execute(&broker, &plan, &options(), &secrets, &|e| {
        events.lock().unwrap().push(e)
    })
    .await;
    assert_eq!(outcomes(&report), ["done"]);
    // The broker keeps only an Argon2id hash of what it was sent, in its
    // state file: it must be the hash of the secret.
    let state = broker.engine(|e| serde_json::to_value(e).expect("the state serialises"));
    let stored = state["password_hashes"]["lab"]
        .as_str()
        .expect("the pool has a password hash");
    assert!(crate::contract::hash::verify(stored, SECRET));
    let pool = broker
        .engine(|e| e.pool("lab").cloned())
        .expect("the pool exists");
    assert!(pool.default_credentials.password_set);
    let label = &pool.labels[&crate::contract::labels::password_fingerprint()];
    assert!(crate::secret::fingerprint_matches(label, SECRET));
    assert!(!label.contains(SECRET));
    let seen = format!(
        "{report:?}{:?}{:?}{state}",
        events.lock().unwrap(),
        broker.calls()
    );
    assert!(!seen.contains(SECRET));
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_password_fails_the_step_before_any_write() {
    let broker = empty();
    let plan = plan_of(vec![step(
        0,
        Op::PutPool {
            pool: "lab".into(),
            settings: Box::new(PoolSettings {
                load_balancing: LoadBalancing::default(),
                username: None,
                password: Some(SecretSource::Env("UNSET".to_owned())),
                labels: Labels::new(),
            }),
        },
        &[],
    )]);
    assert_eq!(
        outcomes(&run(&broker, &plan).await.report),
        ["failed secret"]
    );
    assert!(calls(&broker).is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancelling_starts_nothing_new_and_lets_running_steps_finish() {
    let broker = runbook(true);
    let plan = plan_of(vec![
        step(0, clear_sticky("rds-01"), &[]),
        step(1, clear_sticky("rds-02"), &[]),
        step(2, remove("maintenance", "rds-01"), &[0]),
        step(3, remove("maintenance", "rds-02"), &[1]),
    ]);
    let options = options();
    let cancel = Arc::clone(&options.cancel);
    let report = execute(&broker, &plan, &options, &no_secrets, &|e| {
        if let Progress::StepStarted { step: 1 } = e {
            cancel.store(true, Ordering::SeqCst);
        }
    })
    .await;
    assert!(report.cancelled);
    assert_eq!(
        outcomes(&report),
        ["done", "done", "skipped cancelled", "skipped cancelled"]
    );
    assert_eq!(
        writes(&broker),
        ["clear_sticky live rds-01", "clear_sticky live rds-02"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_stale_check_names_every_moved_resource_and_writes_nothing() {
    // Since the plan, someone created an app config; the seed's revisions
    // are rds-02 2, live 4, maintenance 5, and the new config takes 8.
    let broker = runbook(true);
    let body = AppConfigBody {
        pool: "live".to_owned(),
        app_type: AppType::Desktop,
        protocol: Protocol::Rdp,
        admin_session: false,
        keep_credentials_on_destination_change: false,
        allow_destination_change: false,
        labels: Labels::new(),
    };
    broker.engine_mut(|e| {
        e.put_app_config("new-desktop", body, Expect::Any)
            .expect("pool live exists")
    });
    let mut plan = plan_of(Vec::new());
    let revision = |kind, name: &str, revision| Revision {
        address: Address::new(kind, name),
        revision,
    };
    plan.revisions = vec![
        revision(Kind::Pool, "live", Some(4)),
        revision(Kind::Pool, "maintenance", Some(4)),
        revision(Kind::AppConfig, "new-desktop", None),
        revision(Kind::AppInstance, "admin", None),
        revision(Kind::Destination, "rds-02", Some(2)),
        revision(Kind::Destination, "rds-09", Some(1)),
    ];
    let Err(StaleCheckError::Stale(stale)) = check_fresh(&broker, &plan).await else {
        panic!("the plan should be stale")
    };
    let named: Vec<_> = stale
        .iter()
        .map(|s| (s.address.to_string(), s.planned, s.live))
        .collect();
    assert_eq!(
        named,
        [
            ("pool/maintenance".to_owned(), Some(4), Some(5)),
            ("app_config/new-desktop".to_owned(), None, Some(8)),
            ("destination/rds-09".to_owned(), Some(1), None),
        ]
    );
    assert!(writes(&broker).is_empty());
    plan.revisions
        .retain(|r| !stale.iter().any(|s| s.address == r.address));
    assert!(check_fresh(&broker, &plan).await.is_ok());
}

/// Bob takes the stack's lease for `ttl_seconds`, through the engine.
fn held_by_bob(broker: &Recording, ttl_seconds: u64) {
    let body = LockBody {
        holder: "bob@ws7 pid 42".to_owned(),
        ttl_seconds,
    };
    broker.engine_mut(|e| e.put_lock(STACK, body).expect("the lease is free"));
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_names_its_holder_and_expiry_after_the_timeout() {
    // Bob's lease runs from the clock's start, unix time 1,800,000,000.
    let broker = Arc::new(empty());
    held_by_bob(&broker, 600);
    let lost = Arc::new(AtomicBool::new(false));
    let error = Lease::acquire(
        Arc::clone(&broker),
        "corp-rds",
        "ada@laptop pid 1",
        Duration::from_secs(60),
        Duration::from_secs(5),
        lost,
    )
    .await
    .err()
    .expect("the lock is held");
    let LockError::Held {
        holder, expires_at, ..
    } = &error
    else {
        panic!("expected a held lock, got {error:?}")
    };
    assert_eq!(holder.as_deref(), Some("bob@ws7 pid 42"));
    assert_eq!(*expires_at, Some(1_800_000_600));
    let text = error.to_string();
    assert!(text.contains("bob@ws7 pid 42") && text.contains("1800000600"));
    // Retried until the timeout, not once.
    assert!(calls(&broker).len() > 2);
}

#[tokio::test(start_paused = true)]
async fn the_lease_is_taken_once_free_renewed_and_released() {
    let broker = Arc::new(empty());
    held_by_bob(&broker, 3);
    let lost = Arc::new(AtomicBool::new(false));
    let lease = Lease::acquire(
        Arc::clone(&broker),
        "corp-rds",
        "ada@laptop pid 1",
        Duration::from_secs(30),
        Duration::from_secs(10),
        Arc::clone(&lost),
    )
    .await
    .expect("bob's lease expires within the timeout");
    let taken = calls(&broker).len();
    tokio::time::sleep(Duration::from_secs(35)).await;
    // Renewed every 10 s: three beats in 35 s.
    assert_eq!(calls(&broker).len(), taken + 3);
    assert!(!lost.load(Ordering::SeqCst));
    lease.release().await.expect("release");
    assert_eq!(
        calls(&broker).last().map(String::as_str),
        Some("delete_lock corp-rds ada@laptop pid 1")
    );
    // Released, not just left to expire: bob can take the stack at once.
    held_by_bob(&broker, 60);
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_over_by_someone_else_cancels_the_apply() {
    let broker = Arc::new(empty());
    let options = options();
    let _lease = Lease::acquire(
        Arc::clone(&broker),
        "corp-rds",
        "ada@laptop pid 1",
        Duration::from_secs(30),
        Duration::ZERO,
        Arc::clone(&options.cancel),
    )
    .await
    .expect("free lock");
    // An operator breaks ada's lease and bob takes the stack.
    broker.engine_mut(|e| {
        e.delete_lock(STACK, "ada@laptop pid 1")
            .expect("ada holds it")
    });
    held_by_bob(&broker, 600);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(options.cancel.load(Ordering::SeqCst));
}

/// A signal while another holder has the lease ends the wait at once, not
/// when `--lock-timeout` runs out.
#[tokio::test(start_paused = true)]
async fn a_cancel_abandons_the_wait_for_a_held_lease_at_once() {
    let broker = Arc::new(empty());
    held_by_bob(&broker, 600);
    let cancel = Arc::new(AtomicBool::new(false));
    let signal = Arc::clone(&cancel);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        signal.store(true, Ordering::SeqCst);
    });
    let start = tokio::time::Instant::now();
    let waited = Lease::acquire(
        Arc::clone(&broker),
        STACK,
        "ada@laptop pid 1",
        Duration::from_secs(30),
        Duration::from_secs(3600),
        cancel,
    )
    .await;
    assert!(matches!(waited, Err(LockError::Cancelled { .. })));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

/// A cancel while a `wait` drain sleeps between two session counts ends it
/// at once, not after the poll interval.
#[tokio::test(start_paused = true)]
async fn a_cancel_abandons_a_drain_between_two_counts_at_once() {
    let broker = runbook(true);
    let options = Options {
        drain_poll_interval: Duration::from_secs(600),
        ..options()
    };
    let signal = Arc::clone(&options.cancel);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        signal.store(true, Ordering::SeqCst);
    });
    let start = tokio::time::Instant::now();
    let report = execute(
        &broker,
        &out_online(DrainSessions::Wait, Some(900)),
        &options,
        &no_secrets,
        &|_| {},
    )
    .await;
    assert!(report.cancelled);
    assert_eq!(outcomes(&report)[0], "failed cancelled");
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn the_default_holder_names_user_host_and_pid() {
    let holder = default_holder();
    assert!(holder.contains('@'));
    assert!(holder.ends_with(&format!(" pid {}", std::process::id())));
}

#[tokio::test(start_paused = true)]
async fn the_stale_check_reads_in_parallel_and_passes_broker_errors_on() {
    let names: Vec<String> = (0..40).map(|i| format!("rds-{i:02}")).collect();
    let broker = lab(&names, None);
    let mut plan = plan_of(Vec::new());
    plan.revisions = names
        .iter()
        .map(|n| Revision {
            address: Address::new(Kind::Destination, n.as_str()),
            revision: Some(1),
        })
        .collect();
    assert!(check_fresh(&broker, &plan).await.is_ok());
    assert_eq!(broker.concurrency().most, 16);
    assert_eq!(calls(&broker).len(), 40);

    script(
        &broker,
        Operation::GetDestination,
        "rds-07",
        answer(503, codes::UNAVAILABLE, None),
    );
    let result = check_fresh(&broker, &plan).await;
    assert!(
        matches!(&result, Err(StaleCheckError::Broker(e)) if e.code() == Some(codes::UNAVAILABLE)),
        "{result:?}"
    );
}

/// What makes the apply bar reachable: 1,000 independent member changes at
/// 20 ms per call with parallelism 20 keep 20 calls in flight, with exactly
/// one request per step. How fast that is is measured by `benches/apply.rs`.
#[tokio::test(start_paused = true)]
async fn a_thousand_independent_changes_run_twenty_at_a_time() {
    let names: Vec<String> = (0..1000).map(|i| format!("rds-{i:04}")).collect();
    let broker = lab(&names, Some("lab"));
    let steps = names
        .iter()
        .enumerate()
        .map(|(i, name)| step(i, add("lab", name), &[]))
        .collect();
    let options = Options {
        parallelism: 20,
        ..options()
    };
    let run = run_with(&broker, &plan_of(steps), &options).await;
    assert_eq!(run.report.summary().done, 1000);
    assert_eq!(broker.concurrency().most, 20);
    assert_eq!(calls(&broker).len(), 1000);
}

/// The runbook's broker answering at once: these tests count scheduler
/// work, not broker time.
fn instant() -> Recording {
    Recording::from_snapshot(runbook_seed(), EPOCH_MS).expect("the seed is consistent")
}

/// Independent steps that never touch the same destination, or a chain in
/// which each step waits for the one before.
fn many(count: usize, chained: bool) -> Plan {
    plan_of(
        (0..count)
            .map(|i| {
                let depends_on: &[usize] = if chained && i > 0 { &[i - 1] } else { &[] };
                step(i, clear_sticky(&format!("d-{i:05}")), depends_on)
            })
            .collect(),
    )
}

fn finished_events(events: &[Progress]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Progress::StepFinished { .. }))
        .count()
}

#[tokio::test(start_paused = true)]
async fn twenty_thousand_independent_steps_all_finish() {
    let broker = instant();
    let run = run(&broker, &many(20_000, false)).await;
    assert_eq!(run.report.summary().done, 20_000);
    assert_eq!(calls(&broker).len(), 20_000);
    assert_eq!(finished_events(&run.events), 20_000);
}

#[tokio::test(start_paused = true)]
async fn a_long_chain_finishes_and_a_failure_at_its_head_skips_the_rest_once() {
    let broker = instant();
    let plan = many(20_000, true);
    let run_ok = run(&broker, &plan).await;
    assert_eq!(run_ok.report.summary().done, 20_000);

    script(
        &broker,
        Operation::ClearSticky,
        "live d-00000",
        answer(503, codes::UNAVAILABLE, None),
    );
    let run_failed = run(&broker, &plan).await;
    let summary = run_failed.report.summary();
    assert_eq!((summary.failed, summary.skipped), (1, 19_999));
    assert_eq!(finished_events(&run_failed.events), 20_000);
    assert!(matches!(
        run_failed.report.steps[19_999].outcome,
        StepOutcome::Skipped(SkipReason::DependencyFailed { step: 19_998 })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_step_waiting_only_for_its_destination_starts_the_moment_it_frees() {
    let broker = runbook(true);
    let plan = plan_of(vec![
        step(0, clear_sticky("rds-01"), &[]),
        step(1, clear_sticky("rds-01"), &[]),
        step(2, clear_sticky("rds-03"), &[]),
    ]);
    let run = run(&broker, &plan).await;
    assert_eq!(outcomes(&run.report), ["done"; 3]);
    let started: Vec<_> = run.report.steps.iter().map(|r| r.started).collect();
    assert_eq!(started[1], started[0].map(|s| s + LATENCY));
    assert_eq!(started[2], started[0]);
}

/// Every user on `destination` logs off.
fn log_everyone_off(broker: &Recording, destination: &str) {
    broker.engine_mut(|e| {
        let ids: Vec<String> = e
            .sessions_page(destination, None, usize::MAX)
            .expect("the destination exists")
            .items
            .iter()
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            e.sim_end_session(&id).expect("the session exists");
        }
    });
}

/// The failure of step `i`, as the sentence the report shows.
fn failure(report: &Report, i: usize) -> String {
    match &report.steps[i].outcome {
        StepOutcome::Failed(e) => e.to_string(),
        other => panic!("step {i} did not fail: {other:?}"),
    }
}

/// The position of the only failed step.
fn failed_step(report: &Report) -> usize {
    let failed: Vec<usize> = (0..report.steps.len())
        .filter(|&i| matches!(report.steps[i].outcome, StepOutcome::Failed(_)))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", outcomes(report));
    failed[0]
}

#[tokio::test(start_paused = true)]
async fn a_host_back_online_with_users_is_not_removed_as_planned_offline() {
    let broker = runbook(false);
    let plan = plan_against(&broker, &config(&["rds-01", "rds-03"])).await;
    broker.engine_mut(|e| {
        e.sim_power("rds-02", true).expect("rds-02 exists");
        for user in ["ann@corp.example", "ben@corp.example"] {
            e.sim_start_session("rds-02", user, SessionState::Active, &[])
                .expect("rds-02 is online");
        }
    });
    let run = run(&broker, &plan).await;
    // The head of the removal chain checks the host first: nothing is written.
    let failed = failed_step(&run.report);
    assert!(matches!(plan.steps[failed].op, Op::StopLogons { .. }));
    assert_eq!(
        failure(&run.report, failed),
        "precondition changed: rds-02 planned offline -> live online with 2 active sessions; re-plan"
    );
    assert!(writes(&broker).is_empty(), "{:?}", writes(&broker));
    assert!(is_member(&broker, "live", "rds-02"));
    assert!(
        !writes(&broker)
            .iter()
            .any(|w| w.starts_with("delete_member"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_user_who_logged_off_since_planning_changes_nothing_that_matters() {
    let broker = runbook(true);
    let plan = plan_against(&broker, &config(&["rds-01", "rds-03"])).await;
    broker.engine_mut(|e| {
        let id = e
            .sessions_page("rds-02", None, usize::MAX)
            .expect("rds-02 exists")
            .items[0]
            .id
            .clone();
        e.sim_end_session(&id).expect("the session exists");
    });
    let run = run(&broker, &plan).await;
    assert!(run.report.succeeded(), "{:?}", outcomes(&run.report));
}

#[tokio::test(start_paused = true)]
async fn a_new_user_on_a_drained_host_fails_its_removal() {
    let broker = runbook(true);
    log_everyone_off(&broker, "rds-02");
    let plan = plan_against(&broker, &config(&["rds-01", "rds-03"])).await;
    broker.engine_mut(|e| {
        e.sim_start_session("rds-02", "late@corp.example", SessionState::Active, &[])
            .expect("rds-02 is online")
    });
    // Between the drain mode and the removal, apply's own steps: the late
    // user logged on before them, and the chain's head notices.
    let run = run(&broker, &plan).await;
    assert_eq!(
        failure(&run.report, failed_step(&run.report)),
        "precondition changed: rds-02 planned with at most 0 active sessions -> live online with 1 active session; re-plan"
    );
    assert!(is_member(&broker, "live", "rds-02"));
}

/// `live` with a longer grace period: one `PutPool` step.
fn longer_grace() -> Desired {
    let mut desired = config(&["rds-01", "rds-02", "rds-03"]);
    let live = desired.pools.get_mut("live").expect("the runbook has live");
    live.load_balancing.grace_period_seconds += 15;
    desired
}

#[tokio::test(start_paused = true)]
async fn a_pool_changed_since_planning_fails_its_write_and_keeps_the_change() {
    let broker = runbook(true);
    let plan = plan_against(&broker, &longer_grace()).await;
    assert_eq!(plan.steps.len(), 1);
    broker.engine_mut(|e| {
        let mut body = PoolBody {
            load_balancing: e.pool("live").expect("live exists").load_balancing,
            labels: e.pool("live").expect("live exists").labels.clone(),
            ..PoolBody::default()
        };
        body.load_balancing.sticky_sessions_minutes = 30;
        e.put_pool("live", body, Expect::Any)
            .expect("an unconditional write")
    });
    let run = run(&broker, &plan).await;
    let message = failure(&run.report, 0);
    assert!(
        message.starts_with(
            "precondition changed: pool/live planned at revision 4 -> live refused by the broker:"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("(precondition_failed); re-plan"),
        "{message}"
    );
    let live = broker.engine(|e| e.pool("live").expect("live exists").load_balancing);
    assert_eq!(live.sticky_sessions_minutes, 30, "the other change stands");
}

#[tokio::test(start_paused = true)]
async fn a_pool_write_expects_the_revision_its_own_member_changes_left() {
    let broker = runbook(true);
    let mut desired = longer_grace();
    desired.pools.get_mut("live").expect("live").members = fixtures::members(&["rds-01", "rds-03"]);
    let mut plan = plan_against(&broker, &desired).await;
    // Put the pool's write last, after the removal: planned at the
    // revision before the removal, it must expect the one after it.
    let put = plan.steps.remove(0);
    assert!(matches!(put.op, Op::PutPool { .. }));
    for step in &mut plan.steps {
        step.id -= 1;
        step.depends_on.iter_mut().for_each(|d| *d -= 1);
    }
    let last = plan.steps.len() - 1;
    plan.steps.push(Step {
        id: last + 1,
        depends_on: vec![last],
        ..put
    });
    let run = run(&broker, &plan).await;
    assert!(run.report.succeeded(), "{:?}", outcomes(&run.report));
    assert!(!plan_against(&broker, &desired).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn a_whole_pool_write_runs_alone_among_its_pools_member_changes() {
    let names: Vec<String> = (0..3).map(|i| format!("rds-{i:02}")).collect();
    let broker = lab(&names, Some("lab"));
    let settings = PoolSettings {
        load_balancing: LoadBalancing::default(),
        username: Some("svc".to_owned()),
        password: None,
        labels: crate::contract::labels::with_stack(&Labels::new(), STACK),
    };
    let plan = plan_of(vec![
        step(0, add("lab", "rds-00"), &[]),
        step(
            1,
            Op::PutPool {
                pool: "lab".into(),
                settings: Box::new(settings),
            },
            &[],
        ),
        step(2, add("lab", "rds-01"), &[]),
        step(3, add("lab", "rds-02"), &[]),
    ]);
    let run = run(&broker, &plan).await;
    assert_eq!(outcomes(&run.report), ["done"; 4]);
    let started: Vec<_> = run.report.steps.iter().map(|r| r.started).collect();
    // The add in flight first, then the pool alone, then the other adds together.
    assert!(started[0] < started[1] && started[1] < started[2]);
    assert_eq!(started[2], started[3]);
    assert_eq!(broker.concurrency().most, 2);
}

#[tokio::test(start_paused = true)]
async fn an_offline_host_refused_by_the_broker_is_a_changed_precondition() {
    let broker = runbook(true);
    broker.engine_mut(|e| e.delete_member("live", "rds-02").expect("rds-02 is online"));
    let plan = plan_against(&broker, &config(&["rds-01", "rds-02", "rds-03"])).await;
    broker.engine_mut(|e| e.sim_power("rds-02", false).expect("rds-02 exists"));
    let run = run(&broker, &plan).await;
    assert_eq!(
        failure(&run.report, 0),
        "precondition changed: rds-02 planned online -> live refused by the broker: \
         destination rds-02 is offline (destination_unreachable); re-plan"
    );
}

#[tokio::test(start_paused = true)]
async fn forced_violations_are_announced_and_counted() {
    let broker = runbook(true);
    let mut state = broker.read_live().await.expect("reads");
    state
        .destinations
        .iter_mut()
        .find(|d| d.name == "rds-03")
        .expect("rds-03")
        .online = false;
    let plan = plan::compute(&config(&["rds-01", "rds-03"]), &state, &Targets::default())
        .expect("orders")
        .force();
    assert_eq!(plan.violations.len(), 1);
    let run = run(&broker, &plan).await;
    assert!(matches!(
        run.events.first(),
        Some(Progress::Overridden { violation: 0 })
    ));
    assert_eq!(run.report.overridden, [0]);
    assert_eq!(run.report.summary().overridden, 1);
}

#[tokio::test(start_paused = true)]
async fn a_create_of_something_someone_else_created_meanwhile_is_refused() {
    let broker = runbook(true);
    let mut desired = config(&["rds-01", "rds-02", "rds-03"]);
    let mut copy = desired.app_configs["maintenance-desktop"].clone();
    copy.labels.clear();
    desired.app_configs.insert("spare-desktop".to_owned(), copy);
    let plan = plan_against(&broker, &desired).await;
    assert!(matches!(plan.steps[0].op, Op::PutAppConfig { .. }));
    let body = AppConfigBody {
        pool: "live".to_owned(),
        app_type: AppType::Desktop,
        protocol: Protocol::Rdp,
        admin_session: false,
        keep_credentials_on_destination_change: false,
        allow_destination_change: false,
        labels: Labels::new(),
    };
    broker.engine_mut(|e| {
        e.put_app_config("spare-desktop", body, Expect::Any)
            .expect("pool live exists")
    });
    let run = run(&broker, &plan).await;
    let message = failure(&run.report, 0);
    assert!(
        message.starts_with(
            "precondition changed: app_config/spare-desktop planned absent -> live refused by the broker:"
        ),
        "{message}"
    );
    let kept = broker.engine(|e| e.app_config("spare-desktop").expect("kept").pool.clone());
    assert_eq!(kept, "live", "the other write stands");
}

#[tokio::test(start_paused = true)]
async fn maintenance_another_stack_took_over_is_not_switched_off() {
    let broker = runbook(true);
    let ours = Maintenance {
        enabled: true,
        owner: Some(STACK.to_owned()),
        ..Maintenance::default()
    };
    broker.engine_mut(|e| {
        e.put_maintenance("rds-03", ours, Expect::Any)
            .expect("rds-03 exists")
    });
    let plan = plan_against(&broker, &config(&["rds-01", "rds-02", "rds-03"])).await;
    assert!(matches!(
        plan.steps[..],
        [Step {
            op: Op::DeleteMaintenance { .. },
            ..
        }]
    ));
    let theirs = Maintenance {
        enabled: true,
        owner: Some("other-stack".to_owned()),
        ..Maintenance::default()
    };
    broker.engine_mut(|e| {
        e.put_maintenance("rds-03", theirs, Expect::Any)
            .expect("rds-03 exists")
    });
    let run = run(&broker, &plan).await;
    assert_eq!(
        failure(&run.report, 0),
        "precondition changed: rds-03 planned in maintenance mode set by stack corp-rds -> live \
         in maintenance mode set by stack other-stack; re-plan"
    );
    assert!(broker.engine(|e| e.destination("rds-03").expect("rds-03").maintenance.enabled));
}

/// A `disconnect` drain of rds-02 (three users) that warns them first and
/// gives them `lead_time_seconds` to log off.
fn out_with_notice(lead_time_seconds: u64) -> Plan {
    let notice = crate::desired::DrainNotice {
        de: "Wartung: bitte abmelden".to_owned(),
        en: "Maintenance: please log off".to_owned(),
        lead_time_seconds,
    };
    let mut plan = out_online(DrainSessions::Disconnect, Some(60));
    if let Op::DrainSessions { notice: n, .. } = &mut plan.steps[0].op {
        *n = Some(Box::new(notice));
    }
    plan
}

/// The first user of `destination` logs off.
fn one_logs_off(broker: &Recording, destination: &str) {
    broker.engine_mut(|e| {
        let id = e
            .sessions_page(destination, None, 1)
            .expect("the destination exists")
            .items[0]
            .id
            .clone();
        e.sim_end_session(&id).expect("the session exists");
    });
}

fn ops_since(broker: &Recording, since: u64) -> Vec<String> {
    broker
        .event_log()
        .into_iter()
        .filter(|e| e.seq > since)
        .map(|e| format!("{} {}", e.op, e.resource))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_notice_warns_waits_the_lead_time_then_disconnects_the_rest() {
    let broker = runbook(true);
    let since = broker.engine(Engine::seq);
    let leave = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        one_logs_off(&broker, "rds-02");
    };
    let plan = out_with_notice(600);
    let (run, ()) = tokio::join!(run(&broker, &plan), leave);
    assert_eq!(outcomes(&run.report), ["done", "done", "done"]);
    let log = ops_since(&broker, since);
    assert_eq!(log[0], "sessions.message destination/rds-02/sessions");
    assert!(log[1].starts_with("sim.session.end "), "{log:?}");
    assert_eq!(
        log[2..],
        [
            "sessions.disconnect destination/rds-02/sessions",
            "sticky.clear pool/live/sticky-sessions/rds-02",
            "member.remove pool/live/member/rds-02",
        ]
    );
    assert_eq!(
        run.report.notices,
        [NoticeReport {
            step: 0,
            notified: 3,
            logged_off: 1,
            disconnected: 2
        }]
    );
    let counts: Vec<(u32, u64)> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Progress::LeadTime {
                remaining_sessions,
                time_left,
                ..
            } => Some((*remaining_sessions, time_left.as_secs())),
            _ => None,
        })
        .collect();
    assert_eq!(counts.first(), Some(&(3, 600)));
    assert_eq!(counts.last(), Some(&(2, 0)), "the lead time ran out");
    assert!(counts.windows(2).all(|w| w[0].1 >= w[1].1), "{counts:?}");
    assert!(run.events.iter().any(|e| matches!(
        e,
        Progress::UsersNotified {
            step: 0,
            affected: 3
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn a_notice_ends_early_when_everyone_logged_off_and_disconnects_nobody() {
    let broker = runbook(true);
    let leave = async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        log_everyone_off(&broker, "rds-02");
    };
    let started = tokio::time::Instant::now();
    let plan = out_with_notice(600);
    let (run, ()) = tokio::join!(run(&broker, &plan), leave);
    assert_eq!(outcomes(&run.report), ["done", "done", "done"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "no full lead time"
    );
    assert!(!writes(&broker).iter().any(|c| c.starts_with("disconnect")));
    assert_eq!(
        run.report.notices,
        [NoticeReport {
            step: 0,
            notified: 3,
            logged_off: 3,
            disconnected: 0
        }]
    );
}
