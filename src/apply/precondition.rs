//! A step's preconditions at the moment of its write: the facts about its
//! destination checked against one read of it right before, the refusals
//! by which the broker itself checks the rest (admission to a
//! load-balanced pool, `If-Match`), and the pool revisions apply expects
//! after its own writes. A fact that no longer holds fails the step; apply
//! never re-plans around it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{ApplyError, Changed, Seen};
use crate::address::Kind;
use crate::contract::problem::codes;
use crate::contract::wire::Destination;
use crate::contract::{Broker, BrokerError};
use crate::plan::{Fact, Op, Step};

/// Whether the step's facts are checked against a read of its destination
/// right before the write: for the steps that act on sessions and
/// maintenance mode. Every other step's facts are checked by the broker as
/// part of the write itself, atomically (admission to a load-balanced
/// pool, `If-Match`), which no earlier read could match, and costs no
/// request.
pub(super) fn reads_destination(step: &Step) -> bool {
    !step.preconditions.is_empty()
        && matches!(
            step.op,
            Op::StopLogons { .. }
                | Op::DrainSessions { .. }
                | Op::RemoveMember { .. }
                | Op::PutMaintenance { .. }
                | Op::DeleteMaintenance { .. }
        )
}

/// Reads `destination` and checks the step's facts about it; returns what
/// was read, for a step that goes on working with it (a drain).
pub(super) async fn read_and_check<B: Broker>(
    broker: &B,
    step: &Step,
    destination: &str,
) -> Result<Option<Destination>, ApplyError> {
    let live = broker.get_destination(destination).await?;
    check(step, live.as_ref())?;
    Ok(live)
}

/// Checks the step's destination facts against `live` (`None`: the
/// destination is gone).
fn check(step: &Step, live: Option<&Destination>) -> Result<(), ApplyError> {
    for fact in &step.preconditions {
        let seen = match live {
            Some(d) if holds(fact, d) => continue,
            Some(d) => Seen::Destination(Box::new(d.clone())),
            None => Seen::Gone,
        };
        return Err(changed(fact, seen));
    }
    Ok(())
}

fn holds(fact: &Fact, d: &Destination) -> bool {
    match fact {
        Fact::Online { online, .. } => d.online == *online,
        Fact::ActiveSessions { at_most, .. } => d.sessions.active <= *at_most,
        Fact::Ready { .. } => d.process_execution_ready,
        Fact::Maintenance { enabled, owner, .. } => {
            d.maintenance.enabled == *enabled
                && (!enabled || d.maintenance.owner.as_deref() == owner.as_deref())
        }
        Fact::LbServiceInstalled { installed, .. } => d.lb_service_installed == *installed,
        Fact::NotLoadBalancedElsewhere { .. } | Fact::Revision { .. } => true,
    }
}

fn changed(fact: &Fact, live: Seen) -> ApplyError {
    ApplyError::PreconditionChanged(Box::new(Changed {
        planned: fact.clone(),
        live,
    }))
}

/// A broker refusal of the step's write, as the planned fact it
/// contradicts when the step has one; otherwise the refusal itself.
pub(super) fn refused(step: &Step, error: BrokerError) -> ApplyError {
    let Some(problem) = error.problem() else {
        return error.into();
    };
    let contradicts = |fact: &Fact| match problem.code.as_str() {
        codes::DESTINATION_UNREACHABLE => matches!(fact, Fact::Online { online: true, .. }),
        codes::DESTINATION_NOT_READY => matches!(fact, Fact::Ready { .. }),
        codes::CONFLICT => matches!(fact, Fact::NotLoadBalancedElsewhere { .. }),
        codes::PRECONDITION_FAILED => matches!(fact, Fact::Revision { .. }),
        _ => false,
    };
    match step.preconditions.iter().find(|f| contradicts(f)) {
        Some(fact) => changed(fact, Seen::Refused(Box::new(problem.clone()))),
        None => error.into(),
    }
}

/// The revision the step's write expects of the resource it writes: the
/// planned one, or for a pool the newest apply's own writes left it at.
/// `None` when the plan recorded none (a hand-made plan): the write is
/// unconditional.
pub(super) fn expected_revision(step: &Step, pools: &PoolRevisions) -> Option<Option<u64>> {
    let (address, planned) = step.preconditions.iter().find_map(|f| match f {
        Fact::Revision { address, revision } => Some((address, *revision)),
        _ => None,
    })?;
    if address.kind != Kind::Pool {
        return Some(planned);
    }
    Some(match (planned, pools.seen(&address.name)) {
        (Some(planned), Some(seen)) => Some(planned.max(seen)),
        (planned, seen) => planned.or(seen),
    })
}

/// Pool revisions apply's own writes were answered with. Revisions come from
/// one broker-wide counter, so the largest seen is the pool's current one;
/// pool-level writes run alone among their pool's steps, so nothing of ours
/// moves it while one is in flight.
#[derive(Default)]
pub(super) struct PoolRevisions(Mutex<HashMap<String, u64>>);

impl PoolRevisions {
    pub(super) fn saw(&self, pool: &str, revision: u64) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(pool.to_owned()).or_default();
        *entry = (*entry).max(revision);
    }

    fn seen(&self, pool: &str) -> Option<u64> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(pool).copied()
    }
}
