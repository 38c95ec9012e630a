//! Preconditions: the live facts a step was planned on, recorded with the
//! step so that apply can check them again right before the step's write.
//! Which facts each kind of step carries is decided here, in one place: the
//! facts whose change would make the step unsafe or do something other than
//! the plan says.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::diff::{LiveIndex, PoolDelta};
use super::{Name, Op, Step};
use crate::address::{Address, Kind};
use crate::contract::wire::Destination;

/// One observation of the live state a step relies on, as it must hold
/// right before the step runs (after the steps it depends on).
// Names are shared with the step's operation, and the rare revision's
// address is boxed: a plan that replaces 1M members holds about 9M facts,
// and at 56 bytes each rather than 40 they peaked 170 MB higher (with
// names of one pointer, they are 32).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "fact", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fact {
    /// The destination is online (or offline).
    Online { destination: Name, online: bool },
    /// No more active sessions than this; fewer are harmless.
    ActiveSessions { destination: Name, at_most: u32 },
    /// The destination is prepared for process execution.
    Ready { destination: Name },
    /// The destination is in no load-balanced pool other than `pool`.
    NotLoadBalancedElsewhere { destination: Name, pool: Name },
    /// Maintenance mode is on or off, switched on by `owner` (a stack;
    /// `None`: by hand, or off).
    Maintenance {
        destination: Name,
        enabled: bool,
        owner: Option<Box<str>>,
    },
    /// The resource's revision (`None`: it does not exist).
    Revision {
        address: Box<Address>,
        revision: Option<u64>,
    },
    /// The load-balancing service is installed (or not).
    LbServiceInstalled { destination: Name, installed: bool },
}

/// Fills in every step's preconditions from the live state the plan was
/// computed on and the pool changes it makes. `hosts` has, for each step,
/// the live destination it acts on where expansion already looked it up
/// (`None`: look it up here).
pub(super) fn attach(
    steps: &mut [Step],
    hosts: &[Option<&Destination>],
    index: &LiveIndex,
    pools: &[PoolDelta],
) {
    attach_from(steps, hosts, index, pools, PARALLEL_FROM);
}

/// Pools by name, for the facts of member steps.
// Looked up once per member step, by names a config declares: foldhash,
// seeded at random, rather than SipHash.
type Pools<'a> = foldhash::HashMap<&'a str, &'a PoolDelta<'a>>;

/// From this many steps on, the facts are found on two cores: below it the
/// thread costs more than it saves.
const PARALLEL_FROM: usize = 20_000;

/// [`attach`], the steps split in two halves, one on a second core, from
/// `parallel_from` steps on. Each step's facts depend on that step alone.
fn attach_from(
    steps: &mut [Step],
    hosts: &[Option<&Destination>],
    index: &LiveIndex,
    pools: &[PoolDelta],
    parallel_from: usize,
) {
    assert_eq!(steps.len(), hosts.len(), "a host, or none, for each step");
    let pools: Pools = pools.iter().map(|p| (p.name.as_str(), p)).collect();
    let attach = |steps: &mut [Step], hosts: &[Option<&Destination>]| {
        for (step, &host) in steps.iter_mut().zip(hosts) {
            let live = Live { index, host };
            step.preconditions = preconditions(&step.op, &live, &pools);
        }
    };
    if steps.len() < parallel_from {
        attach(steps, hosts);
        return;
    }
    let half = steps.len() / 2;
    let (first, second) = steps.split_at_mut(half);
    let (first_hosts, second_hosts) = hosts.split_at(half);
    std::thread::scope(|scope| {
        scope.spawn(|| attach(second, second_hosts));
        attach(first, first_hosts);
    });
}

/// The live state as one step sees it: its host, if expansion found it.
struct Live<'i, 'a> {
    index: &'i LiveIndex<'a>,
    host: Option<&'i Destination>,
}

impl Live<'_, '_> {
    /// The live destination `name`: the step's host, if expansion found
    /// it, is the one its operation names (not compared again: that would
    /// read the name, one of the cache misses the host saves).
    fn destination(&self, name: &str) -> Option<&Destination> {
        match self.host {
            Some(host) => {
                debug_assert_eq!(host.name, name, "a step's host is its destination");
                Some(host)
            }
            None => self.index.destinations.get(name),
        }
    }

    fn is_online(&self, name: &str) -> bool {
        self.destination(name).is_some_and(|d| d.online)
    }
}

fn preconditions(op: &Op, live: &Live, pools: &Pools) -> Vec<Fact> {
    let index = live.index;
    match op {
        Op::PutPool { pool, .. } | Op::DeletePool { pool } => {
            vec![revision(index, Kind::Pool, pool)]
        }
        Op::PutAppConfig { app_config, .. } | Op::DeleteAppConfig { app_config } => {
            vec![revision(index, Kind::AppConfig, app_config)]
        }
        Op::PutAppInstance { app_instance, .. } | Op::DeleteAppInstance { app_instance } => {
            vec![revision(index, Kind::AppInstance, app_instance)]
        }
        Op::AddMember { pool, destination } => {
            let load_balanced = pools.get(&**pool).is_some_and(|p| p.load_balanced_after);
            if load_balanced {
                joining_load_balanced(pool, destination)
            } else {
                Vec::new()
            }
        }
        Op::DrainSessions {
            destination,
            active_sessions,
            ..
        } => host(destination, true, Some(*active_sessions)),
        Op::RemoveMember { pool, destination } => {
            let load_balanced = pools.get(&**pool).is_some_and(|p| p.removal_load_balanced);
            if !load_balanced {
                return Vec::new();
            }
            // Drained before, and kept empty by drain mode: an online
            // member leaves with nobody on it.
            let online = live.is_online(destination);
            host(destination, online, online.then_some(0))
        }
        Op::PutMaintenance { destination, .. } | Op::DeleteMaintenance { destination } => {
            let live = live.destination(destination);
            vec![Fact::Maintenance {
                destination: destination.clone(),
                enabled: live.is_some_and(|d| d.maintenance.enabled),
                owner: live.and_then(|d| d.maintenance.owner.as_deref().map(Box::from)),
            }]
        }
        // The head of a removal chain: as the drain after it, it relies on
        // the host being as planned, so a changed host stops the chain
        // before its first write.
        Op::StopLogons { destination } => {
            let live = live.destination(destination);
            let online = live.is_some_and(|d| d.online);
            let active = live.map_or(0, |d| d.sessions.active);
            host(destination, online, online.then_some(active))
        }
        Op::RemoveLbService { destination } => vec![
            Fact::Online {
                destination: destination.clone(),
                online: true,
            },
            Fact::LbServiceInstalled {
                destination: destination.clone(),
                installed: true,
            },
        ],
        // Writes nothing: a fact it relied on would have nothing to guard.
        Op::ClearSticky { .. } | Op::AllowLogons { .. } | Op::AwaitNewMembers { .. } => Vec::new(),
    }
}

/// The live revision of what a step writes (`None`: it does not exist).
fn revision(index: &LiveIndex, kind: Kind, name: &str) -> Fact {
    let revision = match kind {
        Kind::Pool => index.pools.get(name).map(|p| p.revision),
        Kind::AppConfig => index.app_configs.get(name).map(|c| c.revision),
        Kind::AppInstance => index.app_instances.get(name).map(|i| i.revision),
        Kind::Destination => index.destinations.get(name).map(|d| d.revision),
    };
    Fact::Revision {
        address: Box::new(Address::new(kind, name)),
        revision,
    }
}

/// The broker admits a destination to a load-balanced pool only when it is
/// online, ready, and in no other load-balanced pool.
fn joining_load_balanced(pool: &Name, destination: &Name) -> Vec<Fact> {
    vec![
        Fact::Online {
            destination: destination.clone(),
            online: true,
        },
        Fact::Ready {
            destination: destination.clone(),
        },
        Fact::NotLoadBalancedElsewhere {
            destination: destination.clone(),
            pool: pool.clone(),
        },
    ]
}

fn host(destination: &Name, online: bool, at_most: Option<u32>) -> Vec<Fact> {
    // Sized for both: grown from one, each removal chain's facts were
    // allocated twice.
    let mut facts = Vec::with_capacity(2);
    facts.push(Fact::Online {
        destination: destination.clone(),
        online,
    });
    if let Some(at_most) = at_most {
        facts.push(Fact::ActiveSessions {
            destination: destination.clone(),
            at_most,
        });
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{live, steady, with_active_sessions, without_member};
    use super::super::{Targets, compute, diff};
    use super::*;

    #[test]
    fn facts_found_on_two_cores_are_the_facts_found_on_one() {
        // rds-02 leaves the load-balanced pool with users on it: a chain of
        // steps that each carry facts (online, sessions, load balancing).
        let desired = without_member(steady(), "live", "rds-02");
        let live = with_active_sessions(live(true), "rds-02", 3);
        let plan = compute(&desired, &live, &Targets::default()).expect("no cycle");
        assert!(plan.steps.len() >= 3);
        assert!(plan.steps.iter().any(|s| !s.preconditions.is_empty()));

        let index = diff::LiveIndex::new(&live);
        let delta = diff::diff(&desired, &index, &Targets::default());
        let mut split = plan.steps.clone();
        for step in &mut split {
            step.preconditions.clear();
        }
        let looked_up_here = vec![None; split.len()];
        attach_from(&mut split, &looked_up_here, &index, &delta.pools, 1);

        assert_eq!(split, plan.steps);
    }
}
