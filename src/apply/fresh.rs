//! The stale-plan check for saved plans: re-read exactly the resources whose
//! revisions the plan recorded and name every one that moved since. Reads
//! only; a stale plan is refused whole, never re-planned.

use crate::broker::{Broker, BrokerError};
use crate::desired::{Address, Kind};
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

/// Compares each of `plan.revisions` with the broker's current revision.
pub async fn check_fresh<B: Broker>(broker: &B, plan: &Plan) -> Result<(), StaleCheckError> {
    let mut stale = Vec::new();
    for recorded in &plan.revisions {
        let address = &recorded.address;
        let name = address.name.as_str();
        let live = match address.kind {
            Kind::Pool => broker.get_pool(name).await?.map(|r| r.revision),
            Kind::AppConfig => broker.get_app_config(name).await?.map(|r| r.revision),
            Kind::AppInstance => broker.get_app_instance(name).await?.map(|r| r.revision),
            Kind::Destination => broker.get_destination(name).await?.map(|r| r.revision),
        };
        if live != recorded.revision {
            stale.push(Stale {
                address: address.clone(),
                planned: recorded.revision,
                live,
            });
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(StaleCheckError::Stale(stale))
    }
}
