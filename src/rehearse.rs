//! Rehearsal: the real apply engine run against a copy of live state on a
//! virtual clock, so that what the broker would answer each step is known
//! before anything is written to it. The copy is the reference engine in
//! memory (`refbroker::Recording`), seeded from the live broker's snapshot;
//! every call on it takes the live broker's measured latency, so the copy's
//! clock estimates the apply's wall time. The live broker is only read.
//! Secrets never reach the copy: a pool's password is written there as a
//! placeholder, and the copy knows only what the live broker reports
//! (`password_set`).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

use crate::apply::{self, ApplyError, Options, Report, SkipReason, StepOutcome};
use crate::contract::wire::Snapshot;
use crate::contract::{Broker, BrokerError};
use crate::desired::Desired;
use crate::plan::{
    self, CycleError, Op, Plan, Rehearsal, Rehearsed, RehearsedEvent, RehearsedStep, Targets,
};
use crate::refbroker::Recording;
use crate::secret::SecretSource;

/// What the copy holds in place of every password written to it.
const PLACEHOLDER: &str = "poolform-rehearsal-placeholder";

/// Live state as read for a rehearsal.
#[derive(Debug, Clone)]
pub struct LiveCopy {
    snapshot: Snapshot,
    taken_at_ms: u64,
    /// The live broker's median read latency.
    latency: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    #[error("cannot read the live state to copy")]
    Read(#[source] BrokerError),
    #[error("the live state cannot be copied: {0}")]
    Copy(String),
    #[error("cannot read the copy back to plan against it")]
    ReadCopy(#[source] BrokerError),
    #[error("cannot start the rehearsal's clock")]
    Clock(#[source] std::io::Error),
    #[error(transparent)]
    Cycle(#[from] CycleError),
}

/// Reads the live broker's snapshot. The broker's identity is read before
/// and after it, so that three reads time the broker; their median is the
/// latency every call on the copy takes.
pub async fn copy_live<B: Broker>(live: &B) -> Result<LiveCopy, RehearseError> {
    let mut samples = Vec::with_capacity(3);
    let timed = std::time::Instant::now();
    live.identity().await.map_err(RehearseError::Read)?;
    samples.push(timed.elapsed());
    let timed = std::time::Instant::now();
    let snapshot = live.read_snapshot().await.map_err(RehearseError::Read)?;
    samples.push(timed.elapsed());
    let taken_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let timed = std::time::Instant::now();
    live.identity().await.map_err(RehearseError::Read)?;
    samples.push(timed.elapsed());
    samples.sort();
    Ok(LiveCopy {
        snapshot,
        taken_at_ms,
        latency: samples[samples.len() / 2],
    })
}

/// Runs `plan` against `copy` as `apply` would with `parallelism`, and
/// says what each step met, what the copy logged, and (when `desired` is
/// given) whether a plan afterwards shows no changes. Blocks; the copy's
/// paused clock runs on a thread of its own, so this may be called from
/// inside another runtime.
pub fn rehearse(
    copy: LiveCopy,
    plan: &Plan,
    desired: Option<&Desired>,
    parallelism: usize,
) -> Result<Rehearsal, RehearseError> {
    std::thread::scope(|scope| {
        let thread = scope.spawn(move || {
            let clock = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .map_err(RehearseError::Clock)?;
            clock.block_on(run(copy, plan, desired, parallelism))
        });
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

async fn run(
    copy: LiveCopy,
    plan: &Plan,
    desired: Option<&Desired>,
    parallelism: usize,
) -> Result<Rehearsal, RehearseError> {
    let broker = Recording::from_snapshot(copy.snapshot, copy.taken_at_ms)
        .map_err(|p| RehearseError::Copy(p.detail.unwrap_or(p.title)))?
        .with_latency(copy.latency);
    let read = (copy.taken_at_ms, copy.latency);
    on_copy(&broker, read, plan, desired, parallelism).await
}

/// The rehearsal proper, on `broker`, the copy of live state read at
/// `taken_at_ms` from a broker that answered in `latency`.
async fn on_copy(
    broker: &Recording,
    (taken_at_ms, latency): (u64, Duration),
    plan: &Plan,
    desired: Option<&Desired>,
    parallelism: usize,
) -> Result<Rehearsal, RehearseError> {
    let options = Options {
        parallelism,
        ..Options::default()
    };
    let began = tokio::time::Instant::now();
    let report = apply::execute(broker, plan, &options, &placeholder, &|_| {}).await;
    let estimated = began.elapsed();
    let converges = match desired {
        Some(desired) => Some(converges(broker, plan, desired).await?),
        None => None,
    };
    let events = broker
        .event_log()
        .into_iter()
        .map(|e| RehearsedEvent {
            op: e.op,
            resource: e.resource,
            code: e.code,
        })
        .collect();
    Ok(Rehearsal {
        taken_at_ms,
        latency_ms: millis(latency),
        parallelism: parallelism.max(1),
        steps: steps(&report),
        events,
        converges,
        estimated_ms: millis(estimated),
    })
}

fn placeholder(_: &SecretSource) -> Result<SecretString, String> {
    Ok(SecretString::from(PLACEHOLDER))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a plan of `desired` against the copy, as the apply left it,
/// shows no changes. A password the rehearsal wrote is the placeholder on
/// the copy, so it is compared as such; the others keep the fingerprint
/// label the live broker has.
async fn converges(
    broker: &Recording,
    plan: &Plan,
    desired: &Desired,
) -> Result<bool, RehearseError> {
    let live = broker.read_live().await.map_err(RehearseError::ReadCopy)?;
    let written: BTreeSet<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::PutPool { pool, settings } if settings.password.is_some() => Some(&**pool),
            _ => None,
        })
        .collect();
    let mut desired = desired.clone();
    for (name, pool) in &mut desired.pools {
        if let Some(secret) = pool
            .password
            .as_mut()
            .filter(|_| written.contains(name.as_str()))
        {
            secret.value = SecretString::from(PLACEHOLDER);
        }
    }
    let after = plan::compute(&desired, &live, &Targets(plan.targets.clone()))?;
    Ok(!after.has_changes())
}

/// Each step's outcome on the copy, in the plan's terms.
fn steps(report: &Report) -> Vec<RehearsedStep> {
    report
        .steps
        .iter()
        .map(|r| RehearsedStep {
            step: r.step,
            outcome: match &r.outcome {
                StepOutcome::Done => Rehearsed::Done,
                StepOutcome::Warning(w) if w.expected => Rehearsed::ExpectedWarning {
                    code: w.problem.code.clone(),
                },
                StepOutcome::Warning(w) => Rehearsed::UnpredictedWarning {
                    code: w.problem.code.clone(),
                    message: w.problem.detail.clone().unwrap_or(w.problem.title.clone()),
                },
                StepOutcome::Failed(ApplyError::DrainTimedOut { active, waited, .. }) => {
                    Rehearsed::Blocked {
                        wait_seconds: waited.as_secs(),
                        active_sessions: *active,
                    }
                }
                StepOutcome::Failed(e) => Rehearsed::Error {
                    code: e.code().map(str::to_owned),
                    message: e.to_string(),
                },
                StepOutcome::Skipped(SkipReason::DependencyFailed { step }) => {
                    Rehearsed::Skipped { after: Some(*step) }
                }
                StepOutcome::Skipped(SkipReason::Cancelled) => Rehearsed::Skipped { after: None },
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::contract::Expect;
    use crate::contract::LiveState;
    use crate::contract::wire::{CredentialsBody, Destination, LoadBalancing, PoolBody};
    use crate::desired::{Desired, DesiredPool, Drain, Safety};
    use crate::plan::fixtures::{STACK, dest, pool};
    use crate::secret::Secret;

    /// `count` destinations and, for each, an empty pool of the stack that
    /// does not load-balance.
    fn lab(count: usize) -> Snapshot {
        let names: Vec<String> = (0..count).map(|i| format!("d{i:02}")).collect();
        Snapshot {
            destinations: names
                .iter()
                .map(|n| Destination {
                    lb_service_installed: false,
                    ..dest(n, true, 0)
                })
                .collect(),
            pools: names
                .iter()
                .map(|n| pool(&format!("p-{n}"), LoadBalancing::default(), &[], None))
                .collect(),
            ..Snapshot::default()
        }
    }

    /// Each pool of `snapshot` gains its destination; `password` for all.
    fn filled(snapshot: &Snapshot, password: Option<&str>) -> Desired {
        let pools = snapshot
            .destinations
            .iter()
            .map(|d| {
                let want = DesiredPool {
                    load_balancing: LoadBalancing::default(),
                    username: None,
                    password: password.map(|p| Secret {
                        source: SecretSource::Env("LAB_PASSWORD".to_owned()),
                        value: SecretString::from(p),
                    }),
                    members: [d.name.clone()].into(),
                    drain: Drain::default(),
                    min_members: None,
                    labels: Default::default(),
                };
                (format!("p-{}", d.name), want)
            })
            .collect();
        Desired {
            stack: STACK.to_owned(),
            safety: Safety::default(),
            pools,
            app_configs: BTreeMap::new(),
            app_instances: BTreeMap::new(),
            destinations: BTreeMap::new(),
        }
    }

    fn planned(snapshot: &Snapshot, desired: &Desired) -> Plan {
        let live = LiveState {
            identity: "live".to_owned(),
            destinations: snapshot.destinations.clone(),
            pools: snapshot.pools.clone(),
            ..LiveState::default()
        };
        plan::compute(desired, &live, &Targets::default()).expect("orders")
    }

    fn copy(snapshot: &Snapshot, latency_ms: u64) -> LiveCopy {
        LiveCopy {
            snapshot: snapshot.clone(),
            taken_at_ms: 1_800_000_000_000,
            latency: Duration::from_millis(latency_ms),
        }
    }

    #[test]
    fn the_estimate_follows_the_latency_and_the_parallelism() {
        let snapshot = lab(20);
        let desired = filled(&snapshot, None);
        let plan = planned(&snapshot, &desired);
        assert_eq!(plan.steps.len(), 20, "one add per pool, all independent");
        let at = |parallelism| {
            rehearse(copy(&snapshot, 100), &plan, Some(&desired), parallelism).expect("rehearses")
        };
        let ten = at(10);
        assert_eq!(ten.estimated_ms, 200, "two rounds of ten calls");
        assert_eq!(ten.converges, Some(true));
        assert_eq!(ten.events.len(), 20);
        assert_eq!(at(1).estimated_ms, 2_000);
    }

    #[test]
    fn a_password_written_to_the_copy_is_the_placeholder_and_still_converges() {
        let snapshot = lab(2);
        let desired = filled(&snapshot, Some("the-real-secret"));
        let plan = planned(&snapshot, &desired);
        assert!(
            plan.steps
                .iter()
                .any(|s| matches!(s.op, Op::PutPool { .. }))
        );
        let found = rehearse(copy(&snapshot, 0), &plan, Some(&desired), 10).expect("rehearses");
        assert!(
            found.steps.iter().all(|s| s.outcome == Rehearsed::Done),
            "{found:?}"
        );
        assert_eq!(found.converges, Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn the_copy_holds_the_placeholder_never_the_secret() {
        let snapshot = lab(1);
        let desired = filled(&snapshot, Some("the-real-secret"));
        let plan = planned(&snapshot, &desired);
        let broker = Recording::from_snapshot(snapshot, 0).expect("seeds");
        let found = on_copy(&broker, (0, Duration::ZERO), &plan, Some(&desired), 10)
            .await
            .expect("rehearses");
        assert_eq!(found.converges, Some(true));
        // The copy keeps a salted hash: writing the password it holds again
        // changes nothing, writing any other one moves the revision.
        let moves = |password: &str| {
            broker.engine_mut(|e| {
                let pool = e.pool("p-d00").expect("written").clone();
                let body = PoolBody {
                    load_balancing: pool.load_balancing,
                    default_credentials: CredentialsBody {
                        username: pool.default_credentials.username.clone(),
                        password: Some(password.to_owned()),
                    },
                    labels: pool.labels,
                };
                let after = e.put_pool("p-d00", body, Expect::Any).expect("writes");
                after.revision != pool.revision
            })
        };
        assert!(!moves(PLACEHOLDER), "the copy holds the placeholder");
        assert!(moves("the-real-secret"), "and never held the secret");
    }
}
