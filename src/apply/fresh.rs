//! The stale-plan check for saved plans: re-read exactly the resources whose
//! revisions the plan recorded and name every one that moved since. Reads
//! only; a stale plan is refused whole, never re-planned.

use super::{InFlight, next_finished};
use crate::address::{Address, Kind};
use crate::contract::{Broker, BrokerError};
use crate::plan::Plan;

/// A resource that changed between plan and apply. `None` revisions mean
/// "did not exist": a resource that appeared or disappeared shows as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub address: Address,
    pub planned: Option<u64>,
    pub live: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StaleCheckError {
    #[error("the plan is stale: {} resources changed since it was made", .0.len())]
    Stale(Vec<Stale>),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// Reads kept in flight at once: a saved plan may record thousands of
/// revisions, and reading them one by one would dwarf the apply itself.
const READS_IN_FLIGHT: usize = 16;

/// Compares each of `plan.revisions` with the broker's current revision and
/// lists the moved ones in the plan's order.
pub async fn check_fresh<B: Broker>(broker: &B, plan: &Plan) -> Result<(), StaleCheckError> {
    let mut stale = Vec::new();
    let mut queue = plan.revisions.iter().enumerate();
    let mut running: InFlight<'_, usize, Result<Option<u64>, BrokerError>> = Vec::new();
    loop {
        while running.len() < READS_IN_FLIGHT {
            let Some((i, recorded)) = queue.next() else {
                break;
            };
            running.push((i, Box::pin(live_revision(broker, &recorded.address))));
        }
        if running.is_empty() {
            break;
        }
        let (i, live) = next_finished(&mut running).await;
        let recorded = &plan.revisions[i];
        let live = live?;
        if live != recorded.revision {
            stale.push((
                i,
                Stale {
                    address: recorded.address.clone(),
                    planned: recorded.revision,
                    live,
                },
            ));
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    stale.sort_by_key(|(i, _)| *i);
    Err(StaleCheckError::Stale(
        stale.into_iter().map(|(_, s)| s).collect(),
    ))
}

async fn live_revision<B: Broker>(
    broker: &B,
    address: &Address,
) -> Result<Option<u64>, BrokerError> {
    let name = &*address.name;
    Ok(match address.kind {
        Kind::Pool => broker.get_pool(name).await?.map(|r| r.revision),
        Kind::AppConfig => broker.get_app_config(name).await?.map(|r| r.revision),
        Kind::AppInstance => broker.get_app_instance(name).await?.map(|r| r.revision),
        Kind::Destination => broker.get_destination(name).await?.map(|r| r.revision),
    })
}
