//! Safety checks on a computed plan against live state: each finding is a
//! violation with the real numbers in it. The plan is always rendered in
//! full; `plan` and `apply` refuse a plan with violations unless forced.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::diff::{Delta, LiveIndex, PoolChange};
use super::{Action, Op, Step};
use crate::address::{Address, Kind};
use crate::contract::labels::owner;
use crate::desired::Desired;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Violation {
    /// The config names a destination the broker does not have. `pool` is
    /// `None` for a `destinations` entry.
    UnknownDestination {
        pool: Option<String>,
        destination: String,
    },
    /// A load-balanced pool would admit a destination that is not prepared
    /// for process execution.
    DestinationNotReady { pool: String, destination: String },
    /// A destination would join a second load-balanced pool.
    LoadBalancedElsewhere {
        pool: String,
        destination: String,
        other_pool: String,
    },
    /// Fewer available (online) members than `min_members` would remain.
    MinMembers {
        pool: String,
        min_members: u32,
        available_after: u32,
        members_after: u32,
    },
    /// The last member of a pool that app configs use would go.
    LastMemberInUse {
        pool: String,
        app_configs: Vec<String>,
    },
    /// Drain policy `refuse`, and the destination has active sessions.
    DrainRefused {
        pool: String,
        destination: String,
        active_sessions: u32,
    },
    /// More managed resources would be deleted than `safety.max_delete_percent` allows.
    DeleteLimit {
        deletes: usize,
        managed: usize,
        max_delete_percent: u8,
    },
    /// A declared resource exists on the broker but belongs to another stack
    /// (or none); poolform will not take it over.
    NotOwned {
        address: Address,
        owner: Option<String>,
    },
}

impl Violation {
    /// The resource the violation is about, for locating it in the config.
    pub fn address(&self) -> Option<Address> {
        match self {
            Violation::UnknownDestination {
                pool: Some(pool), ..
            }
            | Violation::DestinationNotReady { pool, .. }
            | Violation::LoadBalancedElsewhere { pool, .. }
            | Violation::MinMembers { pool, .. }
            | Violation::LastMemberInUse { pool, .. }
            | Violation::DrainRefused { pool, .. } => Some(Address::new(Kind::Pool, pool)),
            Violation::UnknownDestination {
                pool: None,
                destination,
            } => Some(Address::new(Kind::Destination, destination)),
            Violation::NotOwned { address, .. } => Some(address.clone()),
            Violation::DeleteLimit { .. } => None,
        }
    }

    /// Stable code for diagnostics and machine consumers.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::UnknownDestination { .. } => "plan::unknown_destination",
            Violation::DestinationNotReady { .. } => "plan::destination_not_ready",
            Violation::LoadBalancedElsewhere { .. } => "plan::load_balanced_elsewhere",
            Violation::MinMembers { .. } => "plan::min_members",
            Violation::LastMemberInUse { .. } => "plan::last_member_in_use",
            Violation::DrainRefused { .. } => "plan::drain_refused",
            Violation::DeleteLimit { .. } => "plan::delete_limit",
            Violation::NotOwned { .. } => "plan::not_owned",
        }
    }

    /// The pool member entry the violation is about, when there is one.
    pub fn member(&self) -> Option<(&str, &str)> {
        match self {
            Violation::UnknownDestination {
                pool: Some(pool),
                destination,
            }
            | Violation::DestinationNotReady { pool, destination }
            | Violation::LoadBalancedElsewhere {
                pool, destination, ..
            }
            | Violation::DrainRefused {
                pool, destination, ..
            } => Some((pool, destination)),
            _ => None,
        }
    }
}

pub(super) fn check(
    desired: &Desired,
    index: &LiveIndex,
    delta: &Delta,
    steps: &[Step],
) -> Vec<Violation> {
    let mut found = Vec::new();
    for (address, owner) in &delta.not_owned {
        found.push(Violation::NotOwned {
            address: address.clone(),
            owner: owner.clone(),
        });
    }
    for name in desired.destinations.keys() {
        if !index.destinations.contains_key(name.as_str()) {
            found.push(Violation::UnknownDestination {
                pool: None,
                destination: name.clone(),
            });
        }
    }
    let leaving: BTreeSet<(&str, &str)> = delta
        .pools
        .iter()
        .flat_map(|p| p.removes.iter().map(move |d| (p.name.as_str(), d.as_str())))
        .collect();
    for pool in &delta.pools {
        for destination in &pool.adds {
            let Some(dest) = index.destinations.get(destination.as_str()) else {
                found.push(Violation::UnknownDestination {
                    pool: Some(pool.name.clone()),
                    destination: destination.clone(),
                });
                continue;
            };
            if !pool.load_balanced_after {
                continue;
            }
            if !dest.process_execution_ready {
                found.push(Violation::DestinationNotReady {
                    pool: pool.name.clone(),
                    destination: destination.clone(),
                });
            }
            for other in &index.live.pools {
                let other_stays_lb = delta
                    .pools
                    .iter()
                    .find(|p| p.name == other.name)
                    .map_or(other.load_balancing.enabled, |p| p.load_balanced_after);
                if other.name != pool.name
                    && other_stays_lb
                    && other.members.iter().any(|m| m == destination)
                    && !leaving.contains(&(other.name.as_str(), destination.as_str()))
                {
                    found.push(Violation::LoadBalancedElsewhere {
                        pool: pool.name.clone(),
                        destination: destination.clone(),
                        other_pool: other.name.clone(),
                    });
                }
            }
        }
        if pool.removes.is_empty() || matches!(pool.change, PoolChange::Delete) {
            continue;
        }
        if let Some(min) = pool.min_members {
            let available = pool
                .members_after
                .iter()
                .filter(|m| index.is_online(m))
                .count() as u32;
            if available < min {
                found.push(Violation::MinMembers {
                    pool: pool.name.clone(),
                    min_members: min,
                    available_after: available,
                    members_after: pool.members_after.len() as u32,
                });
            }
        }
        if pool.members_after.is_empty() {
            let mut users: BTreeSet<String> = desired
                .app_configs
                .iter()
                .filter(|(_, c)| c.pool == pool.name)
                .map(|(name, _)| name.clone())
                .collect();
            users.extend(
                index
                    .live
                    .app_configs
                    .iter()
                    .filter(|c| c.pool == pool.name)
                    .map(|c| c.name.clone()),
            );
            if !users.is_empty() {
                found.push(Violation::LastMemberInUse {
                    pool: pool.name.clone(),
                    app_configs: users.into_iter().collect(),
                });
            }
        }
    }
    for step in steps {
        if let Op::DrainSessions {
            pool,
            destination,
            policy: crate::desired::DrainSessions::Refuse,
            active_sessions,
            ..
        } = &step.op
        {
            found.push(Violation::DrainRefused {
                pool: pool.clone(),
                destination: destination.clone(),
                active_sessions: *active_sessions,
            });
        }
    }
    let stack = desired.stack.as_str();
    let owned = |labels: &crate::contract::wire::Labels| owner(labels) == Some(stack);
    let managed = index.live.pools.iter().filter(|p| owned(&p.labels)).count()
        + index
            .live
            .app_configs
            .iter()
            .filter(|c| owned(&c.labels))
            .count()
        + index
            .live
            .app_instances
            .iter()
            .filter(|i| owned(&i.labels))
            .count();
    let deletes = delta
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .count();
    let max = desired.safety.max_delete_percent;
    if managed >= 10 && deletes * 100 > usize::from(max) * managed {
        found.push(Violation::DeleteLimit {
            deletes,
            managed,
            max_delete_percent: max,
        });
    }
    found
}
