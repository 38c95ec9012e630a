//! Safety checks on a computed plan against live state: each finding is a
//! violation with the real numbers in it. The plan is always rendered in
//! full; `plan` and `apply` refuse a plan with violations unless forced, and
//! refuse it even then when a violation makes a step certain to fail.

use std::collections::{BTreeSet, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::diff::{Delta, LiveIndex, MaintenanceDelta, PoolChange, PoolDelta};
use super::{Action, Op, Step};
use crate::address::{Address, Kind};
use crate::contract::labels::owner;
use crate::contract::wire::{Destination, Labels};
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
    /// A load-balanced pool would admit a destination that is offline; the
    /// broker admits only hosts it can reach.
    DestinationOffline { pool: String, destination: String },
    /// A destination would join a second load-balanced pool.
    LoadBalancedElsewhere {
        pool: String,
        destination: String,
        other_pool: String,
    },
    /// Fewer available members than `min_members` would remain; the
    /// members counted unavailable are named: offline, or in maintenance
    /// mode once the plan is applied.
    MinMembers {
        pool: String,
        min_members: u32,
        available_after: u32,
        members_after: u32,
        offline: Vec<String>,
        in_maintenance: Vec<String>,
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
            | Violation::DestinationOffline { pool, .. }
            | Violation::LoadBalancedElsewhere { pool, .. }
            | Violation::MinMembers { pool, .. }
            | Violation::LastMemberInUse { pool, .. }
            | Violation::DrainRefused { pool, .. } => Some(Address::new(Kind::Pool, pool.as_str())),
            Violation::UnknownDestination {
                pool: None,
                destination,
            } => Some(Address::new(Kind::Destination, destination.as_str())),
            Violation::NotOwned { address, .. } => Some(address.clone()),
            Violation::DeleteLimit { .. } => None,
        }
    }

    /// Stable code for diagnostics and machine consumers.
    pub fn code(&self) -> &'static str {
        match self {
            Violation::UnknownDestination { .. } => "plan::unknown_destination",
            Violation::DestinationNotReady { .. } => "plan::destination_not_ready",
            Violation::DestinationOffline { .. } => "plan::destination_offline",
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
            | Violation::DestinationOffline { pool, destination }
            | Violation::LoadBalancedElsewhere {
                pool, destination, ..
            }
            | Violation::DrainRefused {
                pool, destination, ..
            } => Some((pool, destination)),
            _ => None,
        }
    }

    /// Whether `--force` may override the violation. Not when it makes a
    /// step certain to fail: the broker refuses a host it cannot admit to a
    /// load-balanced pool, and a `refuse` drain with active sessions fails,
    /// so forcing would only stop the apply halfway.
    pub fn can_be_overridden(&self) -> bool {
        !matches!(
            self,
            Violation::DestinationNotReady { .. }
                | Violation::DestinationOffline { .. }
                | Violation::LoadBalancedElsewhere { .. }
                | Violation::DrainRefused { .. }
        )
    }
}

/// What every rule but one finds: all of them read the delta and the
/// live state alone, except the refused drains, which read the steps. So
/// they run while the steps are expanded and ordered (see
/// [`super::compute_unsealed`]), and [`Found::with_drains`] completes them.
pub(super) struct Found {
    /// Ownership, declared destinations, then per pool its joining and its
    /// leaving members.
    before_drains: Vec<Violation>,
    delete_limit: Option<Violation>,
}

/// Every rule against the delta (see [`Found`]).
pub(super) fn check_delta(desired: &Desired, index: &LiveIndex, delta: &Delta) -> Found {
    let mut found = not_owned(delta);
    found.extend(unknown_declared_destinations(desired, index));
    let lookups = Lookups::new(desired, index, delta);
    for pool in &delta.pools {
        for destination in &pool.adds {
            let dest = match known_member(pool, destination, index) {
                Ok(dest) => dest,
                Err(unknown) => {
                    found.push(unknown);
                    continue;
                }
            };
            if pool.load_balanced_after {
                found.extend(destination_offline(pool, dest));
                found.extend(destination_not_ready(pool, dest));
                found.extend(load_balanced_elsewhere(pool, destination, &lookups));
            }
        }
        if pool.removes.is_empty() || matches!(pool.change, PoolChange::Delete) {
            continue;
        }
        found.extend(min_members(pool, index, &lookups));
        found.extend(last_member_in_use(pool, &lookups));
    }
    Found {
        before_drains: found,
        delete_limit: delete_limit(desired, index, delta),
    }
}

impl Found {
    /// Every finding against the plan, with the refused drains among
    /// `steps`. Their order (ownership, declared destinations, then per
    /// pool its joining and its leaving members, drains, the delete limit)
    /// is part of the plan document.
    pub(super) fn with_drains(self, delta: &Delta, steps: &[Step]) -> Vec<Violation> {
        let mut found = self.before_drains;
        found.extend(drain_refused(delta, steps));
        found.extend(self.delete_limit);
        found
    }
}

/// What the rules look up, indexed once per plan so that every lookup costs
/// the same whatever the size of the stack: a rule that scanned the pools
/// for each member it checks would make a plan that replaces members cubic.
struct Lookups<'a> {
    /// For each destination joining a load-balanced pool that is in
    /// another: the live pools that have it as a member, still
    /// load-balance once the plan is applied and keep it, in the order the
    /// broker lists them.
    load_balanced_with: foldhash::HashMap<&'a str, Vec<&'a str>>,
    /// Planned maintenance changes by destination (the first one, as a
    /// scan would find it).
    maintenance: HashMap<&'a str, &'a MaintenanceDelta>,
    /// App configs, declared or live, by the pool they use; only for pools
    /// the plan leaves empty.
    app_configs_of_emptied: HashMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> Lookups<'a> {
    fn new(desired: &'a Desired, index: &'a LiveIndex<'a>, delta: &'a Delta) -> Lookups<'a> {
        let mut maintenance = HashMap::with_capacity(delta.maintenance.len());
        for planned in &delta.maintenance {
            maintenance
                .entry(planned.destination.as_str())
                .or_insert(planned);
        }
        Lookups {
            load_balanced_with: load_balanced_with(index, delta),
            maintenance,
            app_configs_of_emptied: app_configs_of_emptied(desired, index, delta),
        }
    }
}

/// See [`Lookups::load_balanced_with`].
fn load_balanced_with<'a>(
    index: &'a LiveIndex,
    delta: &'a Delta,
) -> foldhash::HashMap<&'a str, Vec<&'a str>> {
    // Looked up once per member of every load-balanced pool, by names a
    // config declares: foldhash, seeded at random, where SipHash cost a
    // tenth of the check at 100k members.
    let joins = delta.pools.iter().filter(|p| p.load_balanced_after);
    // Sized up front: collected from a flat map, the table grew by
    // rehashing, about a sixth of the check at 1M members moving.
    let mut joining: foldhash::HashMap<&str, Vec<&str>> =
        foldhash::HashMap::with_capacity_and_hasher(
            joins.clone().map(|p| p.adds.len()).sum(),
            foldhash::fast::RandomState::default(),
        );
    joining.extend(joins.flat_map(|p| p.adds.iter().map(|&d| (d, Vec::new()))));
    if joining.is_empty() {
        return joining;
    }
    let planned: foldhash::HashMap<&str, &PoolDelta> =
        delta.pools.iter().map(|p| (p.name.as_str(), p)).collect();
    for other in &index.live.pools {
        let planned = planned.get(other.name.as_str());
        if !planned.map_or(other.load_balancing.enabled, |p| p.load_balanced_after) {
            continue;
        }
        for member in &other.members {
            // The pool's removes are looked up only for the few members
            // that join another pool: a set of them per pool cost 10k
            // small hash sets at 10% changed.
            if let Some(pools) = joining.get_mut(member.as_str())
                && !planned.is_some_and(|p| p.removes_member(member))
                && pools.last() != Some(&other.name.as_str())
            {
                pools.push(&other.name);
            }
        }
    }
    // Only the entries with a pool are ever found: emptied of the rest
    // (nearly all of them), a lookup of a joining member reads the table's
    // control bytes alone, where at 1M members joining it was a cache miss
    // into the entries.
    joining.retain(|_, pools| !pools.is_empty());
    joining
}

/// See [`Lookups::app_configs_of_emptied`].
fn app_configs_of_emptied<'a>(
    desired: &'a Desired,
    index: &'a LiveIndex,
    delta: &'a Delta,
) -> HashMap<&'a str, BTreeSet<&'a str>> {
    let mut users: HashMap<&str, BTreeSet<&str>> = delta
        .pools
        .iter()
        .filter(|p| p.members_after.is_empty())
        .map(|p| (p.name.as_str(), BTreeSet::new()))
        .collect();
    if users.is_empty() {
        return users;
    }
    let declared = desired
        .app_configs
        .iter()
        .map(|(name, c)| (name.as_str(), c.pool.as_str()));
    let live = index
        .live
        .app_configs
        .iter()
        .map(|c| (c.name.as_str(), c.pool.as_str()));
    for (name, pool) in declared.chain(live) {
        if let Some(names) = users.get_mut(pool) {
            names.insert(name);
        }
    }
    users
}

fn not_owned(delta: &Delta) -> Vec<Violation> {
    delta
        .not_owned
        .iter()
        .map(|(address, owner)| Violation::NotOwned {
            address: address.clone(),
            owner: owner.clone(),
        })
        .collect()
}

/// A `destinations` entry the broker does not have.
fn unknown_declared_destinations<'a>(
    desired: &'a Desired,
    index: &'a LiveIndex,
) -> impl Iterator<Item = Violation> + 'a {
    desired
        .destinations
        .keys()
        .filter(|name| !index.destinations.contains_key(name.as_str()))
        .map(|name| Violation::UnknownDestination {
            pool: None,
            destination: name.clone(),
        })
}

/// A member the broker does not have; nothing more can be checked about it.
fn known_member<'a>(
    pool: &PoolDelta,
    destination: &str,
    index: &LiveIndex<'a>,
) -> Result<&'a Destination, Violation> {
    index
        .destinations
        .get(destination)
        .ok_or_else(|| Violation::UnknownDestination {
            pool: Some(pool.name.clone()),
            destination: destination.to_owned(),
        })
}

/// Only hosts the broker can reach may join a load-balanced pool: the add
/// would fail (and a move would leave the host in no pool).
fn destination_offline(pool: &PoolDelta, dest: &Destination) -> Option<Violation> {
    (!dest.online).then(|| Violation::DestinationOffline {
        pool: pool.name.clone(),
        destination: dest.name.clone(),
    })
}

/// Only hosts prepared for process execution may join a load-balanced pool.
fn destination_not_ready(pool: &PoolDelta, dest: &Destination) -> Option<Violation> {
    (!dest.process_execution_ready).then(|| Violation::DestinationNotReady {
        pool: pool.name.clone(),
        destination: dest.name.clone(),
    })
}

/// A destination joining a load-balanced pool while it stays in another
/// pool that load-balances once the plan is applied.
fn load_balanced_elsewhere<'a>(
    pool: &'a PoolDelta,
    destination: &'a str,
    lookups: &'a Lookups,
) -> impl Iterator<Item = Violation> + 'a {
    lookups
        .load_balanced_with
        .get(destination)
        .into_iter()
        .flatten()
        .filter(move |other| **other != pool.name)
        .map(move |other| Violation::LoadBalancedElsewhere {
            pool: pool.name.clone(),
            destination: destination.to_owned(),
            other_pool: (*other).to_owned(),
        })
}

/// Members offline, or in maintenance mode once the plan is applied, count
/// as unavailable; the violation names them.
fn min_members(pool: &PoolDelta, index: &LiveIndex, lookups: &Lookups) -> Option<Violation> {
    let min = pool.min_members?;
    let in_maintenance_after = |name: &str| match lookups.maintenance.get(name) {
        Some(planned) => planned.put.is_some(),
        None => index
            .destinations
            .get(name)
            .is_some_and(|d| d.maintenance.enabled),
    };
    let (offline, online): (Vec<&str>, Vec<&str>) =
        pool.members_after.iter().partition(|m| !index.is_online(m));
    let in_maintenance: Vec<String> = online
        .into_iter()
        .filter(|m| in_maintenance_after(m))
        .map(str::to_owned)
        .collect();
    let members_after = pool.members_after.len() as u32;
    let available = members_after - (offline.len() + in_maintenance.len()) as u32;
    (available < min).then(|| Violation::MinMembers {
        pool: pool.name.clone(),
        min_members: min,
        available_after: available,
        members_after,
        offline: offline.into_iter().map(str::to_owned).collect(),
        in_maintenance,
    })
}

/// App configs, declared or live, that use a pool about to lose its last member.
fn last_member_in_use(pool: &PoolDelta, lookups: &Lookups) -> Option<Violation> {
    let users = lookups.app_configs_of_emptied.get(pool.name.as_str())?;
    (!users.is_empty()).then(|| Violation::LastMemberInUse {
        pool: pool.name.clone(),
        app_configs: users.iter().map(|name| (*name).to_owned()).collect(),
    })
}

/// A planned drain under the `refuse` policy; only planned where sessions
/// are active.
fn drain_refused<'s>(delta: &Delta, steps: &'s [Step]) -> impl Iterator<Item = Violation> + 's {
    // A drain's policy is its pool's: the steps (about 0.9 GB at 1M
    // members and 100% changed) are scanned only when a pool refuses.
    let refusing =
        (delta.pools.iter()).any(|p| p.drain.sessions == crate::desired::DrainSessions::Refuse);
    let steps = if refusing { steps } else { &[] };
    steps.iter().filter_map(|step| match &step.op {
        Op::DrainSessions {
            pool,
            destination,
            policy: crate::desired::DrainSessions::Refuse,
            active_sessions,
            ..
        } => Some(Violation::DrainRefused {
            pool: pool.to_string(),
            destination: destination.to_string(),
            active_sessions: *active_sessions,
        }),
        _ => None,
    })
}

/// More deletes than `max_delete_percent` of the managed resources; small
/// stacks (under ten resources) are exempt.
fn delete_limit(desired: &Desired, index: &LiveIndex, delta: &Delta) -> Option<Violation> {
    let stack = desired.stack.as_str();
    let owned = |labels: &Labels| owner(labels) == Some(stack);
    let live = index.live;
    let managed = live.pools.iter().filter(|p| owned(&p.labels)).count()
        + live.app_configs.iter().filter(|c| owned(&c.labels)).count()
        + live
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
    (managed >= 10 && deletes * 100 > usize::from(max) * managed).then_some(
        Violation::DeleteLimit {
            deletes,
            managed,
            max_delete_percent: max,
        },
    )
}
