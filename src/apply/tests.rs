//! Apply against the in-memory fake broker: the runbook's three states, the
//! scheduling rules (dependencies, one step per destination, parallelism,
//! cancellation), the drain policies, the warning downgrade, secrets, the
//! stale-plan check and the lease. Time is tokio's paused clock.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::SecretString;

use super::fake::{Fake, State, destination, pool, problem};
use super::*;
use crate::address::{Address, Kind};
use crate::contract::Broker;
use crate::contract::problem::codes;
use crate::contract::wire::{
    AppConfig, AppType, Labels, LoadBalancing, Maintenance, Protocol, Session, SessionState,
};
use crate::desired::{Desired, DesiredPool, Drain, DrainSessions, Safety};
use crate::plan::{self, Op, PoolSettings, Revision, Step, Targets, Unmanaged};

const LATENCY: Duration = Duration::from_millis(20);

fn step(id: usize, op: Op, depends_on: &[usize]) -> Step {
    Step {
        id,
        op,
        depends_on: depends_on.to_vec(),
        cause: Address::new(Kind::Pool, "live"),
        expected_warning: None,
    }
}

fn plan_of(steps: Vec<Step>) -> Plan {
    Plan {
        format_version: plan::FORMAT_VERSION,
        stack: super::fake::STACK.to_owned(),
        changes: Vec::new(),
        steps,
        violations: Vec::new(),
        unmanaged: Unmanaged::default(),
        revisions: Vec::new(),
        checksum: String::new(),
    }
}

fn drain(destination: &str, policy: DrainSessions, timeout_seconds: Option<u64>) -> Op {
    Op::DrainSessions {
        pool: "live".to_owned(),
        destination: destination.to_owned(),
        policy,
        timeout_seconds,
        active_sessions: 3,
    }
}

fn clear_sticky(destination: &str) -> Op {
    Op::ClearSticky {
        pool: "live".to_owned(),
        destination: destination.to_owned(),
    }
}

fn remove(pool: &str, destination: &str) -> Op {
    Op::RemoveMember {
        pool: pool.to_owned(),
        destination: destination.to_owned(),
    }
}

fn add(pool: &str, destination: &str) -> Op {
    Op::AddMember {
        pool: pool.to_owned(),
        destination: destination.to_owned(),
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
    remove_step.expected_warning = Some(offline_warning("rds-02"));
    plan_of(vec![step(0, clear_sticky("rds-02"), &[]), remove_step])
}

/// The runbook's starting point: three servers in `live` (load-balanced,
/// 10 min sticky) and `maintenance`; rds-02 has three active sessions when
/// online.
fn runbook(rds02_online: bool) -> Fake {
    Fake::new(LATENCY).with(|s| {
        for (name, online) in [("rds-01", true), ("rds-02", rds02_online), ("rds-03", true)] {
            s.destinations
                .insert(name.to_owned(), destination(name, online));
        }
        let all = ["rds-01", "rds-02", "rds-03"];
        s.pools.insert("live".to_owned(), pool("live", true, &all));
        s.pools
            .insert("maintenance".to_owned(), pool("maintenance", false, &all));
        if rds02_online {
            for user in ["ada", "bob", "cy"] {
                s.sessions.push(Session {
                    id: format!("s-{user}"),
                    user: user.to_owned(),
                    destination: "rds-02".to_owned(),
                    state: SessionState::Active,
                });
            }
        }
    })
}

fn fail(call: &str, error: BrokerError) -> impl FnOnce(&mut State) {
    let call = call.to_owned();
    move |s: &mut State| {
        s.failures.insert(call, error);
    }
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

async fn run_with(fake: &Fake, plan: &Plan, options: &Options) -> Run {
    let events = Mutex::new(Vec::new());
    let report = execute(fake, plan, options, &no_secrets, &|e| {
        events.lock().unwrap().push(e)
    })
    .await;
    Run {
        report,
        events: events.into_inner().unwrap(),
    }
}

async fn run(fake: &Fake, plan: &Plan) -> Run {
    run_with(fake, plan, &options()).await
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
            StepOutcome::Skipped(SkipReason::DependencyFailed { step }) => {
                format!("skipped after {step}")
            }
            StepOutcome::Skipped(SkipReason::Cancelled) => "skipped cancelled".to_owned(),
        })
        .collect()
}

fn is_member(fake: &Fake, pool: &str, destination: &str) -> bool {
    fake.state.lock().unwrap().pools[pool]
        .members
        .iter()
        .any(|m| m == destination)
}

/// The runbook's config with `live` holding `live_members`.
fn config(live_members: &[&str]) -> Desired {
    let all = ["rds-01", "rds-02", "rds-03"];
    let live = pool("live", true, live_members);
    let maintenance = pool("maintenance", false, &all);
    let desired_pool = |p: crate::contract::wire::Pool, drain| DesiredPool {
        load_balancing: p.load_balancing,
        username: None,
        password: None,
        members: p.members.into_iter().collect(),
        drain,
        min_members: None,
        labels: Labels::new(),
    };
    let disconnect = Drain {
        sessions: DrainSessions::Disconnect,
        timeout_seconds: Some(900),
    };
    Desired {
        stack: super::fake::STACK.to_owned(),
        safety: Safety::default(),
        pools: [
            ("live".to_owned(), desired_pool(live, disconnect)),
            (
                "maintenance".to_owned(),
                desired_pool(maintenance, Drain::default()),
            ),
        ]
        .into(),
        app_configs: Default::default(),
        app_instances: Default::default(),
        destinations: Default::default(),
    }
}

async fn plan_against(fake: &Fake, desired: &Desired) -> Plan {
    let live = fake.read_live().await.expect("fake reads");
    plan::compute(desired, &live, &Targets::default()).expect("plan orders")
}

/// Real plans for the runbook, applied, then planned again: the second plan
/// must be empty, or apply did not reach what plan asked for.
#[tokio::test(start_paused = true)]
async fn the_runbook_round_trip_converges_with_an_online_server() {
    let fake = runbook(true);
    let out = config(&["rds-01", "rds-03"]);
    let plan = plan_against(&fake, &out).await;
    assert_eq!(outcomes(&run(&fake, &plan).await.report), ["done"; 3]);
    assert_eq!(
        fake.writes(),
        [
            "disconnect_sessions rds-02",
            "clear_sticky live rds-02",
            "delete_member live rds-02"
        ]
    );
    assert!(!plan_against(&fake, &out).await.has_changes());

    fake.state.lock().unwrap().calls.clear();
    let back = config(&["rds-01", "rds-02", "rds-03"]);
    let plan = plan_against(&fake, &back).await;
    assert_eq!(outcomes(&run(&fake, &plan).await.report), ["done"]);
    assert_eq!(fake.writes(), ["put_member live rds-02"]);
    assert!(!plan_against(&fake, &back).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn the_runbook_round_trip_converges_with_an_offline_server() {
    let fake = runbook(false);
    let out = config(&["rds-01", "rds-03"]);
    let plan = plan_against(&fake, &out).await;
    let run_out = run(&fake, &plan).await;
    assert_eq!(outcomes(&run_out.report), ["done", "expected warning"]);
    assert_eq!(
        fake.writes(),
        ["clear_sticky live rds-02", "delete_member live rds-02"]
    );
    // The leftover service cannot be removed while the host is offline.
    assert!(!plan_against(&fake, &out).await.has_changes());

    // Maintenance done: the host is back online and rejoins.
    fake.state
        .lock()
        .unwrap()
        .destinations
        .get_mut("rds-02")
        .unwrap()
        .online = true;
    fake.state.lock().unwrap().calls.clear();
    let back = config(&["rds-01", "rds-02", "rds-03"]);
    let plan = plan_against(&fake, &back).await;
    assert_eq!(outcomes(&run(&fake, &plan).await.report), ["done"]);
    assert_eq!(fake.writes(), ["put_member live rds-02"]);
    assert!(!plan_against(&fake, &back).await.has_changes());
}

#[tokio::test(start_paused = true)]
async fn cancelling_interrupts_a_drain_that_waits() {
    let fake = runbook(true);
    let options = options();
    let cancel = Arc::clone(&options.cancel);
    let report = execute(
        &fake,
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
    assert!(fake.writes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn taking_out_an_online_server_disconnects_then_clears_sticky_then_removes() {
    let fake = runbook(true);
    let run = run(&fake, &out_online(DrainSessions::Disconnect, Some(900))).await;
    assert_eq!(outcomes(&run.report), ["done", "done", "done"]);
    assert_eq!(
        fake.writes(),
        [
            "disconnect_sessions rds-02",
            "clear_sticky live rds-02",
            "delete_member live rds-02"
        ]
    );
    // The disconnect created bindings to rds-02; clearing after it caught them.
    assert!(fake.state.lock().unwrap().sticky.is_empty());
    assert!(!is_member(&fake, "live", "rds-02"));
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
    let fake = runbook(true);
    let plan = out_online(DrainSessions::Disconnect, Some(900));
    run(&fake, &plan).await;
    fake.state.lock().unwrap().calls.clear();
    let rerun = run(&fake, &plan).await;
    assert_eq!(outcomes(&rerun.report), ["done", "done", "done"]);
    assert_eq!(
        fake.writes(),
        ["clear_sticky live rds-02", "delete_member live rds-02"]
    );
}

#[tokio::test(start_paused = true)]
async fn taking_out_an_offline_server_gives_exactly_the_expected_warning() {
    let fake = runbook(false);
    let run = run(&fake, &out_offline()).await;
    assert_eq!(outcomes(&run.report), ["done", "expected warning"]);
    assert_eq!(
        fake.writes(),
        ["clear_sticky live rds-02", "delete_member live rds-02"]
    );
    assert!(fake.calls().contains(&"get_pool live".to_owned()));
    assert!(!is_member(&fake, "live", "rds-02"));
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
    let fake = runbook(false);
    let run = run(&fake, &out_online(DrainSessions::Disconnect, Some(900))).await;
    // The plan did not announce the warning: it still counts, as unexpected.
    assert_eq!(
        outcomes(&run.report),
        ["done", "done", "unexpected warning"]
    );
    assert_eq!(
        fake.writes(),
        ["clear_sticky live rds-02", "delete_member live rds-02"]
    );
    assert_eq!(run.report.summary().unexpected_warnings, 1);
}

#[tokio::test(start_paused = true)]
async fn putting_the_server_back_is_one_add_and_safe_to_repeat() {
    let fake = runbook(true).with(|s| {
        s.pools
            .get_mut("live")
            .unwrap()
            .members
            .retain(|m| m != "rds-02")
    });
    let plan = plan_of(vec![step(0, add("live", "rds-02"), &[])]);
    assert_eq!(outcomes(&run(&fake, &plan).await.report), ["done"]);
    assert_eq!(outcomes(&run(&fake, &plan).await.report), ["done"]);
    assert_eq!(
        fake.writes(),
        ["put_member live rds-02", "put_member live rds-02"]
    );
    assert_eq!(
        fake.state.lock().unwrap().pools["live"].members,
        ["rds-01", "rds-02", "rds-03"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_skips_its_dependents_while_other_branches_finish() {
    let fake = runbook(true)
        .with(|s| {
            s.destinations
                .insert("rds-04".to_owned(), destination("rds-04", true));
        })
        .with(fail(
            "put_member live rds-04",
            problem(422, codes::DESTINATION_NOT_READY, Some(true)),
        ));
    let plan = plan_of(vec![
        step(0, add("live", "rds-04"), &[]),
        step(1, clear_sticky("rds-02"), &[0]),
        step(2, remove("live", "rds-02"), &[1]),
        step(3, remove("maintenance", "rds-03"), &[]),
    ]);
    let run = run(&fake, &plan).await;
    assert_eq!(
        outcomes(&run.report),
        [
            "failed destination_not_ready",
            "skipped after 0",
            "skipped after 1",
            "done"
        ]
    );
    assert!(is_member(&fake, "live", "rds-02"));
    assert!(!is_member(&fake, "maintenance", "rds-03"));
    let summary = run.report.summary();
    assert_eq!((summary.failed, summary.skipped, summary.done), (1, 2, 1));
    assert!(!run.report.succeeded());
}

#[tokio::test(start_paused = true)]
async fn steps_on_one_destination_never_overlap() {
    let fake = runbook(true);
    let plan = plan_of(vec![
        step(
            0,
            Op::PutMaintenance {
                destination: "rds-01".to_owned(),
                maintenance: Maintenance {
                    enabled: true,
                    ..Maintenance::default()
                },
            },
            &[],
        ),
        step(1, clear_sticky("rds-01"), &[]),
        step(2, remove("maintenance", "rds-01"), &[]),
        step(3, clear_sticky("rds-03"), &[]),
    ]);
    let run = run(&fake, &plan).await;
    assert_eq!(outcomes(&run.report), ["done"; 4]);
    let state = fake.state.lock().unwrap();
    assert!(state.overlaps.is_empty(), "overlaps: {:?}", state.overlaps);
    // rds-03's step ran beside the rds-01 ones: exclusion is per destination.
    assert_eq!(state.max_in_flight, 2);
    let started: Vec<_> = run.report.steps.iter().map(|r| r.started).collect();
    assert!(started[0] < started[1] && started[1] < started[2]);
    assert_eq!(started[3], started[0]);
}

#[tokio::test(start_paused = true)]
async fn no_more_than_parallelism_steps_run_at_once() {
    let fake = Fake::new(LATENCY).with(|s| {
        s.pools.insert("lab".to_owned(), pool("lab", false, &[]));
    });
    let steps = (0..30)
        .map(|i| step(i, add("lab", &format!("rds-{i:02}")), &[]))
        .collect();
    let options = Options {
        parallelism: 4,
        ..options()
    };
    let run = run_with(&fake, &plan_of(steps), &options).await;
    assert_eq!(run.report.summary().done, 30);
    assert_eq!(fake.state.lock().unwrap().max_in_flight, 4);
    assert_eq!(fake.writes().len(), 30);
}

#[tokio::test(start_paused = true)]
async fn wait_policy_waits_for_sessions_to_end() {
    let fake = runbook(true).with(|s| s.sessions_end_after_lists = Some(3));
    let run = run(&fake, &out_online(DrainSessions::Wait, Some(60))).await;
    assert_eq!(outcomes(&run.report), ["done", "done", "done"]);
    assert!(!fake.writes().iter().any(|c| c.starts_with("disconnect")));
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
    let fake = runbook(true);
    let run = run(&fake, &out_online(DrainSessions::Wait, Some(60))).await;
    assert_eq!(
        outcomes(&run.report),
        [
            "failed drain timed out 3",
            "skipped after 0",
            "skipped after 1"
        ]
    );
    assert!(fake.writes().is_empty());
    assert!(is_member(&fake, "live", "rds-02"));
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
    let fake = runbook(true);
    let run = run(&fake, &out_online(DrainSessions::Refuse, None)).await;
    assert_eq!(
        outcomes(&run.report),
        [
            "failed sessions active 3",
            "skipped after 0",
            "skipped after 1"
        ]
    );
    assert!(fake.writes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn uninstall_failure_from_an_online_host_is_a_failure() {
    let fake = runbook(true).with(fail(
        "delete_member live rds-02",
        problem(502, codes::LB_SERVICE_UNINSTALL_FAILED, Some(true)),
    ));
    let plan = plan_of(vec![step(0, remove("live", "rds-02"), &[])]);
    let run = run(&fake, &plan).await;
    assert_eq!(
        outcomes(&run.report),
        ["failed lb_service_uninstall_failed"]
    );
    assert!(!fake.calls().contains(&"get_pool live".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn another_error_from_an_offline_host_is_a_failure() {
    let fake = runbook(false).with(fail(
        "delete_member live rds-02",
        problem(502, codes::DESTINATION_UNREACHABLE, Some(false)),
    ));
    let run = run(&fake, &out_offline()).await;
    assert_eq!(
        outcomes(&run.report),
        ["done", "failed destination_unreachable"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_warning_needs_a_reread_showing_the_membership_gone() {
    // The scripted answer leaves the member in place, unlike the real rule.
    let fake = runbook(false).with(fail(
        "delete_member live rds-02",
        problem(502, codes::LB_SERVICE_UNINSTALL_FAILED, Some(false)),
    ));
    let run = run(&fake, &out_offline()).await;
    assert_eq!(outcomes(&run.report), ["done", "failed membership remains"]);
    assert!(is_member(&fake, "live", "rds-02"));
}

#[tokio::test(start_paused = true)]
async fn a_resource_already_deleted_counts_as_deleted() {
    let fake = runbook(true);
    let plan = plan_of(vec![
        step(
            0,
            Op::DeleteAppInstance {
                app_instance: "gone".to_owned(),
            },
            &[],
        ),
        step(
            1,
            Op::DeleteAppConfig {
                app_config: "gone".to_owned(),
            },
            &[0],
        ),
        step(
            2,
            Op::DeletePool {
                pool: "gone".to_owned(),
            },
            &[1],
        ),
    ]);
    assert_eq!(outcomes(&run(&fake, &plan).await.report), ["done"; 3]);
}

#[tokio::test(start_paused = true)]
async fn put_pool_sends_the_password_and_labels_its_fingerprint_only() {
    const SECRET: &str = "correct horse battery staple";
    let fake = Fake::new(LATENCY);
    let source = SecretSource::Env("POOL_PASSWORD".to_owned());
    let plan = plan_of(vec![step(
        0,
        Op::PutPool {
            pool: "lab".to_owned(),
            settings: PoolSettings {
                load_balancing: LoadBalancing::default(),
                username: Some("svc".to_owned()),
                password: Some(source.clone()),
                labels: Labels::new(),
            },
        },
        &[],
    )]);
    let secrets = |s: &SecretSource| {
        assert_eq!(s, &source);
        Ok(SecretString::from(SECRET.to_owned()))
    };
    let events = Mutex::new(Vec::new());
    let report = execute(&fake, &plan, &options(), &secrets, &|e| {
        events.lock().unwrap().push(e)
    })
    .await;
    assert_eq!(outcomes(&report), ["done"]);
    let body = fake.state.lock().unwrap().pool_bodies[0].clone();
    assert_eq!(body.default_credentials.password.as_deref(), Some(SECRET));
    let label = &body.labels[&crate::contract::labels::password_fingerprint()];
    assert!(crate::secret::fingerprint_matches(label, SECRET));
    assert!(!label.contains(SECRET));
    assert!(!format!("{report:?}{:?}{body:?}", events.lock().unwrap()).contains(SECRET));
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_password_fails_the_step_before_any_write() {
    let fake = Fake::new(LATENCY);
    let plan = plan_of(vec![step(
        0,
        Op::PutPool {
            pool: "lab".to_owned(),
            settings: PoolSettings {
                load_balancing: LoadBalancing::default(),
                username: None,
                password: Some(SecretSource::Env("UNSET".to_owned())),
                labels: Labels::new(),
            },
        },
        &[],
    )]);
    assert_eq!(outcomes(&run(&fake, &plan).await.report), ["failed secret"]);
    assert!(fake.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancelling_starts_nothing_new_and_lets_running_steps_finish() {
    let fake = runbook(true);
    let plan = plan_of(vec![
        step(0, clear_sticky("rds-01"), &[]),
        step(1, clear_sticky("rds-02"), &[]),
        step(2, remove("maintenance", "rds-01"), &[0]),
        step(3, remove("maintenance", "rds-02"), &[1]),
    ]);
    let options = options();
    let cancel = Arc::clone(&options.cancel);
    let report = execute(&fake, &plan, &options, &no_secrets, &|e| {
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
        fake.writes(),
        ["clear_sticky live rds-01", "clear_sticky live rds-02"]
    );
}

#[tokio::test(start_paused = true)]
async fn the_stale_check_names_every_moved_resource_and_writes_nothing() {
    let fake = runbook(true).with(|s| {
        s.app_configs.insert(
            "new-desktop".to_owned(),
            AppConfig {
                name: "new-desktop".to_owned(),
                pool: "live".to_owned(),
                app_type: AppType::Desktop,
                protocol: Protocol::Rdp,
                admin_session: false,
                keep_credentials_on_destination_change: false,
                allow_destination_change: false,
                labels: Labels::new(),
                revision: 1,
            },
        );
    });
    let mut plan = plan_of(Vec::new());
    let revision = |kind, name: &str, revision| Revision {
        address: Address::new(kind, name),
        revision,
    };
    plan.revisions = vec![
        revision(Kind::Pool, "live", Some(3)),
        revision(Kind::Pool, "maintenance", Some(2)),
        revision(Kind::AppConfig, "new-desktop", None),
        revision(Kind::AppInstance, "admin", None),
        revision(Kind::Destination, "rds-02", Some(1)),
        revision(Kind::Destination, "rds-09", Some(1)),
    ];
    let Err(StaleCheckError::Stale(stale)) = check_fresh(&fake, &plan).await else {
        panic!("the plan should be stale")
    };
    let named: Vec<_> = stale
        .iter()
        .map(|s| (s.address.to_string(), s.planned, s.live))
        .collect();
    assert_eq!(
        named,
        [
            ("pool/maintenance".to_owned(), Some(2), Some(3)),
            ("app_config/new-desktop".to_owned(), None, Some(1)),
            ("destination/rds-09".to_owned(), Some(1), None),
        ]
    );
    assert!(fake.writes().is_empty());
    plan.revisions
        .retain(|r| !stale.iter().any(|s| s.address == r.address));
    assert!(check_fresh(&fake, &plan).await.is_ok());
}

fn held_by_bob(expires_in: u64) -> impl FnOnce(&mut State) {
    move |s: &mut State| {
        s.locks.insert(
            "corp-rds".to_owned(),
            crate::contract::wire::Lock {
                stack: "corp-rds".to_owned(),
                holder: "bob@ws7 pid 42".to_owned(),
                expires_at: 1_800_000_000 + expires_in,
            },
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_names_its_holder_and_expiry_after_the_timeout() {
    let fake = Arc::new(Fake::new(LATENCY).with(held_by_bob(600)));
    let lost = Arc::new(AtomicBool::new(false));
    let error = Lease::acquire(
        Arc::clone(&fake),
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
    assert!(fake.calls().len() > 2);
}

#[tokio::test(start_paused = true)]
async fn the_lease_is_taken_once_free_renewed_and_released() {
    let fake = Arc::new(Fake::new(LATENCY).with(held_by_bob(3)));
    let lost = Arc::new(AtomicBool::new(false));
    let lease = Lease::acquire(
        Arc::clone(&fake),
        "corp-rds",
        "ada@laptop pid 1",
        Duration::from_secs(30),
        Duration::from_secs(10),
        Arc::clone(&lost),
    )
    .await
    .expect("bob's lease expires within the timeout");
    let taken = fake.calls().len();
    tokio::time::sleep(Duration::from_secs(35)).await;
    // Renewed every 10 s: three beats in 35 s.
    assert_eq!(fake.calls().len(), taken + 3);
    assert!(!lost.load(Ordering::SeqCst));
    lease.release().await.expect("release");
    assert!(fake.state.lock().unwrap().locks.is_empty());
    assert_eq!(
        fake.calls().last().map(String::as_str),
        Some("delete_lock corp-rds ada@laptop pid 1")
    );
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_over_by_someone_else_cancels_the_apply() {
    let fake = Arc::new(Fake::new(LATENCY));
    let options = options();
    let _lease = Lease::acquire(
        Arc::clone(&fake),
        "corp-rds",
        "ada@laptop pid 1",
        Duration::from_secs(30),
        Duration::ZERO,
        Arc::clone(&options.cancel),
    )
    .await
    .expect("free lock");
    held_by_bob(600)(&mut fake.state.lock().unwrap());
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(options.cancel.load(Ordering::SeqCst));
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
    let fake = Fake::new(LATENCY).with(|s| {
        for name in &names {
            s.destinations.insert(name.clone(), destination(name, true));
        }
    });
    let mut plan = plan_of(Vec::new());
    plan.revisions = names
        .iter()
        .map(|n| Revision {
            address: Address::new(Kind::Destination, n),
            revision: Some(1),
        })
        .collect();
    assert!(check_fresh(&fake, &plan).await.is_ok());
    assert_eq!(fake.state.lock().unwrap().max_in_flight, 16);
    assert_eq!(fake.calls().len(), 40);

    let fake = fake.with(fail(
        "get_destination rds-07",
        problem(503, codes::UNAVAILABLE, None),
    ));
    let result = check_fresh(&fake, &plan).await;
    assert!(
        matches!(&result, Err(StaleCheckError::Broker(e)) if e.code() == Some(codes::UNAVAILABLE)),
        "{result:?}"
    );
}

/// DESIGN.md section 9's apply bar, on the virtual clock: 1,000 independent
/// member changes at 20 ms per call with parallelism 20 take at most 1.5x
/// the ideal 1 s, with exactly one request per step.
#[tokio::test(start_paused = true)]
async fn a_thousand_independent_changes_meet_the_apply_bar() {
    let fake = Fake::new(LATENCY).with(|s| {
        s.pools.insert("lab".to_owned(), pool("lab", false, &[]));
    });
    let steps = (0..1000)
        .map(|i| step(i, add("lab", &format!("rds-{i:04}")), &[]))
        .collect();
    let options = Options {
        parallelism: 20,
        ..options()
    };
    let run = run_with(&fake, &plan_of(steps), &options).await;
    assert_eq!(run.report.summary().done, 1000);
    assert!(
        run.report.duration <= Duration::from_millis(1500),
        "{:?}",
        run.report.duration
    );
    assert_eq!(fake.calls().len(), 1000);
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
    let fake = Fake::new(Duration::ZERO);
    let run = run(&fake, &many(20_000, false)).await;
    assert_eq!(run.report.summary().done, 20_000);
    assert_eq!(fake.calls().len(), 20_000);
    assert_eq!(finished_events(&run.events), 20_000);
}

#[tokio::test(start_paused = true)]
async fn a_long_chain_finishes_and_a_failure_at_its_head_skips_the_rest_once() {
    let fake = Fake::new(Duration::ZERO);
    let plan = many(20_000, true);
    let run_ok = run(&fake, &plan).await;
    assert_eq!(run_ok.report.summary().done, 20_000);

    let fake = fake.with(fail(
        "clear_sticky live d-00000",
        problem(503, codes::UNAVAILABLE, None),
    ));
    let run_failed = run(&fake, &plan).await;
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
    let fake = runbook(true);
    let plan = plan_of(vec![
        step(0, clear_sticky("rds-01"), &[]),
        step(1, clear_sticky("rds-01"), &[]),
        step(2, clear_sticky("rds-03"), &[]),
    ]);
    let run = run(&fake, &plan).await;
    assert_eq!(outcomes(&run.report), ["done"; 3]);
    let started: Vec<_> = run.report.steps.iter().map(|r| r.started).collect();
    assert_eq!(started[1], started[0].map(|s| s + LATENCY));
    assert_eq!(started[2], started[0]);
}
