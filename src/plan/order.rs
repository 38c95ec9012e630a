//! Step expansion and ordering: each resource change becomes broker
//! operations with explicit dependencies (make before break; drain, then
//! clear sticky bindings, then remove the member; deletes in reverse
//! dependency order), then one topological pass fixes the execution order.

// Steps are looked up by names a config declares, tens of thousands of
// times in a large plan: foldhash, seeded at random, rather than SipHash.
use foldhash::HashMap;

use super::diff::{Delta, ItemChange, LiveIndex, PoolChange, PoolDelta};
use super::ready::Ready;
use super::{ExpectedWarning, Name, Op, Step};
use crate::address::{Address, Kind};
use crate::contract::wire::{AppInstanceBody, Destination};
use crate::desired::Desired;

/// Phases break ties between independent steps so that the list reads in
/// the order a person would do the work; dependencies alone decide safety.
fn phase(op: &Op) -> u8 {
    match op {
        Op::PutPool { .. } => 0,
        Op::PutMaintenance { .. } => 1,
        Op::AddMember { .. } => 2,
        Op::AwaitNewMembers { .. } => 3,
        Op::DeleteMaintenance { .. } => 4,
        Op::AllowLogons { .. } => 5,
        Op::PutAppConfig { .. } => 6,
        Op::PutAppInstance { .. } => 7,
        Op::DeleteAppInstance { .. } => 8,
        Op::StopLogons { .. } => 9,
        Op::DrainSessions { .. } => 10,
        Op::ClearSticky { .. } => 11,
        Op::RemoveMember { .. } => 12,
        Op::RemoveLbService { .. } => 13,
        Op::DeleteAppConfig { .. } => 14,
        Op::DeletePool { .. } => LAST_PHASE,
    }
}

const LAST_PHASE: u8 = 15;

/// Steps whose dependencies form a cycle; the plan cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the planned steps depend on each other in a cycle (involving {})", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
pub struct CycleError(pub Vec<Address>);

/// The steps as the rules plan them: in creation order, each `id` its
/// index and each `depends_on` indices of that order, until [`sort`] puts
/// them in their final order. They are `Step`s from the start, so that a
/// large plan is held in one buffer rather than drafts and steps at once.
#[derive(Default)]
struct Builder<'a> {
    steps: Vec<Step>,
    /// See [`Expanded::hosts`].
    hosts: Vec<Option<&'a Destination>>,
}

impl<'a> Builder<'a> {
    fn push(&mut self, op: Op, cause: Address, deps: Vec<usize>) -> usize {
        self.push_on(None, op, cause, deps)
    }

    /// [`Self::push`] for a step on a host its rule has looked up.
    fn push_on(
        &mut self,
        host: Option<&'a Destination>,
        op: Op,
        cause: Address,
        deps: Vec<usize>,
    ) -> usize {
        let id = self.steps.len();
        self.hosts.push(host);
        self.steps.push(Step {
            id,
            op,
            depends_on: deps,
            cause,
            preconditions: Vec::new(),
            expected_warning: None,
            reason: None,
        });
        id
    }

    fn depend(&mut self, step: usize, on: impl IntoIterator<Item = usize>) {
        self.steps[step].depends_on.extend(on);
    }

    fn expect(&mut self, step: usize, warning: ExpectedWarning) {
        self.steps[step].expected_warning = Some(Box::new(warning));
    }
}

/// What the rules need to know about the steps already planned, by resource.
#[derive(Default)]
struct Planned<'a> {
    put_pool: HashMap<&'a str, usize>,
    created_pool: HashMap<&'a str, usize>,
    /// A changed pool's place in the delta, by name.
    pool_at: HashMap<&'a str, usize>,
    /// The step adding each member, pool by pool in the delta's order and
    /// in each pool's order of `adds`: the pool at place `p` has
    /// `add_member[adds_from[p]..adds_from[p + 1]]`. Pools and members
    /// are planned in that order, so most of the rules read these in
    /// order; a table of 1M (pool, member) keys was a cache miss each.
    add_member: Vec<usize>,
    adds_from: Vec<usize>,
    /// Each removed member's chain, laid out as `add_member` by `removes`:
    /// its first step (logons stopped, drain, sticky or the removal
    /// itself) and its removal.
    chains: Vec<Chain>,
    chains_from: Vec<usize>,
    /// The removals from each pool being deleted, which waits for them.
    removes_of_pool: HashMap<&'a str, Vec<usize>>,
    maintenance_on: HashMap<&'a str, usize>,
    maintenance_off: HashMap<&'a str, usize>,
    put_config: HashMap<&'a str, usize>,
    /// Steps that take an app instance off an app config (by the live config).
    instance_steps_of_config: HashMap<String, Vec<usize>>,
    /// Steps that take an app config off a pool (by the live pool).
    config_steps_of_pool: HashMap<String, Vec<usize>>,
}

/// The first step and the removal of one member's removal chain.
#[derive(Clone, Copy)]
struct Chain {
    head: usize,
    remove: usize,
}

impl Planned<'_> {
    /// The add steps of the pool at place `p` of the delta.
    fn adds_of(&self, p: usize) -> &[usize] {
        &self.add_member[self.adds_from[p]..self.adds_from[p + 1]]
    }

    /// The removal chains of the pool at place `p` of the delta.
    fn chains_of(&self, p: usize) -> &[Chain] {
        &self.chains[self.chains_from[p]..self.chains_from[p + 1]]
    }
}

/// Step expansion: each rule below adds the steps of one kind of change and
/// the dependencies it demands. Steps are created in a fixed order (the
/// order of the calls in [`expand`]), which breaks ties in the sort.
struct Expansion<'a> {
    desired: &'a Desired,
    index: &'a LiveIndex<'a>,
    delta: &'a Delta<'a>,
    steps: Builder<'a>,
    planned: Planned<'a>,
}

/// What [`expand`] plans.
pub(super) struct Expanded<'a> {
    /// The steps, in the order the rules make them (a member's steps side
    /// by side), for [`sort`] to order.
    pub steps: Vec<Step>,
    /// For each step, the live destination it acts on, where its rule
    /// looked it up (a removal chain's member): the facts read it from
    /// here rather than look it up again, at 1M members a few cache misses
    /// each. `None` where no rule looked, or the broker does not have it.
    pub hosts: Vec<Option<&'a Destination>>,
}

/// The steps `delta` takes, and the hosts they were planned on.
pub(super) fn expand<'a>(
    desired: &'a Desired,
    index: &'a LiveIndex<'a>,
    delta: &'a Delta,
) -> Expanded<'a> {
    let mut rules = Expansion {
        desired,
        index,
        delta,
        steps: Builder::default(),
        planned: Planned::default(),
    };
    // Sized once from the delta's counts: grown one push at a time, the
    // lists would be copied and the map rehashed at each doubling, and a
    // large plan removes 100k members or more.
    let removes = delta.pools.iter().map(|pool| pool.removes.len()).sum();
    let adds = delta.pools.iter().map(|pool| pool.adds.len()).sum();
    rules.planned.chains.reserve(removes);
    rules.planned.add_member.reserve(adds);
    rules.planned.pool_at.reserve(delta.pools.len());
    debug_assert!(delta.pools.iter().all(|pool| {
        let sorted = |names: &[&str]| names.windows(2).all(|w| w[0] < w[1]);
        sorted(&pool.adds) && sorted(&pool.removes)
    }));
    // The steps too, by a bound on what the rules below can add: grown by
    // doubling, the buffer of 400k steps was copied about once over, into
    // fresh pages, and that was a third of the expansion. The part of the
    // bound left unused is never touched, so it costs address space only.
    let bound = most_steps(delta);
    rules.steps.steps.reserve(bound);
    rules.steps.hosts.reserve(bound);
    rules.maintenance();
    // Every leaving member's host, looked up in a loop of its own before
    // the chains are planned: the lookups do not wait for each other, so
    // the processor overlaps their cache misses, where between the steps
    // of a chain it could not reach the next member's (at 1M members and
    // 100% replaced, the expansion 1.19 s to 1.00 s).
    let mut leaving = Vec::with_capacity(removes);
    leaving.extend(
        (delta.pools.iter())
            .flat_map(|pool| &pool.removes)
            .map(|destination| index.destinations.get(destination)),
    );
    let mut leaving = leaving.into_iter();
    for (at, pool) in delta.pools.iter().enumerate() {
        let planned = &mut rules.planned;
        planned.pool_at.insert(&pool.name, at);
        planned.adds_from.push(planned.add_member.len());
        planned.chains_from.push(planned.chains.len());
        // One name for all the pool's steps and their facts.
        let name = Name::from(pool.name.as_str());
        rules.pool_settings(pool, &name);
        rules.add_members(pool, &name);
        for destination in &pool.removes {
            let host = leaving.next().expect("a host, or none, per removal");
            rules.removal_chain(pool, &name, destination, host);
        }
    }
    let planned = &mut rules.planned;
    planned.adds_from.push(planned.add_member.len());
    planned.chains_from.push(planned.chains.len());
    rules.rejoin_after_maintenance_ends();
    let moving_adds = rules.leave_one_load_balanced_pool_before_joining_another();
    rules.make_before_break(&moving_adds);
    rules.put_app_configs();
    rules.app_instances();
    rules.allow_logons();
    rules.lb_cleanups();
    rules.delete_app_configs_after_their_instances();
    rules.delete_pools_last();
    debug_assert!(
        rules.steps.steps.len() <= bound,
        "more steps than the bound"
    );
    Expanded {
        steps: rules.steps.steps,
        hosts: rules.steps.hosts,
    }
}

/// Where `name` is in the sorted `names`.
fn find(names: &[&str], name: &str) -> Option<usize> {
    names.binary_search(&name).ok()
}

/// At most how many steps `expand` plans for `delta`: per pool a put, a
/// delete and the wait for its new members, per added member an add, per
/// removed one the four steps of its chain (logons stopped, drain, sticky
/// bindings, removal), and one per other change.
fn most_steps(delta: &Delta) -> usize {
    let members: usize = (delta.pools.iter())
        .map(|pool| 3 + pool.adds.len() + 4 * pool.removes.len())
        .sum();
    members
        + delta.app_configs.len()
        + delta.app_instances.len()
        + delta.maintenance.len()
        + delta.allow_logons.len()
        + delta.lb_cleanups.len()
}

impl<'a> Expansion<'a> {
    /// The step adding `destination` to `pool`, if one is planned.
    fn add(&self, pool: &str, destination: &str) -> Option<usize> {
        let p = *self.planned.pool_at.get(pool)?;
        let at = find(&self.delta.pools[p].adds, destination)?;
        Some(self.planned.adds_of(p)[at])
    }

    /// The removal chain of `destination` leaving `pool`, if one is planned.
    fn chain(&self, pool: &str, destination: &str) -> Option<Chain> {
        let p = *self.planned.pool_at.get(pool)?;
        let at = find(&self.delta.pools[p].removes, destination)?;
        Some(self.planned.chains_of(p)[at])
    }

    /// Maintenance mode is switched on or off; a drain of the destination
    /// waits for it to be on (see [`Self::drain`]).
    fn maintenance(&mut self) {
        for m in &self.delta.maintenance {
            let destination = Name::from(m.destination.as_str());
            let cause = Address::new(Kind::Destination, destination.clone());
            let op = match &m.put {
                Some(maintenance) => Op::PutMaintenance {
                    destination,
                    maintenance: Box::new(maintenance.clone()),
                },
                None => Op::DeleteMaintenance { destination },
            };
            let id = self.steps.push(op, cause, Vec::new());
            let planned = match m.put {
                Some(_) => &mut self.planned.maintenance_on,
                None => &mut self.planned.maintenance_off,
            };
            planned.insert(&m.destination, id);
        }
    }

    /// A pool's settings are written (created) before its members are added.
    fn pool_settings(&mut self, pool: &'a PoolDelta, name: &Name) {
        let Some(settings) = pool.change.settings() else {
            return;
        };
        let id = self.steps.push(
            Op::PutPool {
                pool: name.clone(),
                settings: Box::new(settings.clone()),
            },
            Address::new(Kind::Pool, name.clone()),
            Vec::new(),
        );
        self.planned.put_pool.insert(&pool.name, id);
        if let PoolChange::Create(_) = pool.change {
            self.planned.created_pool.insert(&pool.name, id);
        }
    }

    fn add_members(&mut self, pool: &'a PoolDelta, name: &Name) {
        let put_pool = self.planned.put_pool.get(pool.name.as_str()).copied();
        for destination in &pool.adds {
            let deps = put_pool.into_iter().collect();
            let id = self.steps.push(
                Op::AddMember {
                    pool: name.clone(),
                    destination: Name::from(*destination),
                },
                Address::new(Kind::Pool, name.clone()),
                deps,
            );
            self.planned.add_member.push(id);
        }
    }

    /// A member leaves in a chain: stop new logons on it (leaving a
    /// load-balanced pool), drain its sessions, then clear sticky bindings to
    /// it, then remove it. Leaving a load-balanced pool while offline is
    /// announced as an expected warning. `host` is the live destination,
    /// looked up once for the whole chain and its facts.
    fn removal_chain(
        &mut self,
        pool: &'a PoolDelta,
        name: &Name,
        destination: &'a str,
        host: Option<&'a Destination>,
    ) {
        let online = host.is_some_and(|d| d.online);
        // One name for all the chain's steps and their facts.
        let member = Name::from(destination);
        let mut head = None;
        let mut last = None;
        if pool.removal_load_balanced {
            last = Some(self.stop_logons(name, &member, host));
            head = last;
        }
        if pool.removal_load_balanced
            && online
            && let Some(drain) = self.drain(pool, name, &member, host, last)
        {
            last = Some(drain);
        }
        if pool.removal_sticky {
            let id = self.steps.push_on(
                host,
                Op::ClearSticky {
                    pool: name.clone(),
                    destination: member.clone(),
                },
                Address::new(Kind::Pool, name.clone()),
                last.into_iter().collect(),
            );
            head.get_or_insert(id);
            last = Some(id);
        }
        let id = self.steps.push_on(
            host,
            Op::RemoveMember {
                pool: name.clone(),
                destination: member,
            },
            Address::new(Kind::Pool, name.clone()),
            last.into_iter().collect(),
        );
        if pool.removal_load_balanced && !online {
            self.steps.expect(
                id,
                ExpectedWarning::LbServiceUninstallFailed {
                    destination: destination.to_owned(),
                },
            );
        }
        let planned = &mut self.planned;
        planned.chains.push(Chain {
            head: head.unwrap_or(id),
            remove: id,
        });
        if let PoolChange::Delete = pool.change {
            planned
                .removes_of_pool
                .entry(&pool.name)
                .or_default()
                .push(id);
        }
    }

    /// Drain mode for a member leaving a load-balanced pool, from the head
    /// of its removal chain on: after its maintenance mode is on, so that the
    /// groups maintenance lets in can still log on.
    fn stop_logons(
        &mut self,
        pool: &Name,
        destination: &Name,
        host: Option<&'a Destination>,
    ) -> usize {
        let deps = self
            .planned
            .maintenance_on
            .get(&**destination)
            .copied()
            .into_iter()
            .collect();
        self.steps.push_on(
            host,
            Op::StopLogons {
                destination: destination.clone(),
            },
            Address::new(Kind::Pool, pool.clone()),
            deps,
        )
    }

    /// The drain of an online member with active sessions, once new logons
    /// stopped. An empty host needs no drain; planning one anyway would
    /// repeat a side effect on every re-run after a crash.
    fn drain(
        &mut self,
        pool: &PoolDelta,
        name: &Name,
        destination: &Name,
        host: Option<&'a Destination>,
        after: Option<usize>,
    ) -> Option<usize> {
        let active = host.map_or(0, |d| d.sessions.active);
        if active == 0 {
            return None;
        }
        let deps = after.into_iter().collect();
        Some(self.steps.push_on(
            host,
            Op::DrainSessions {
                pool: name.clone(),
                destination: destination.clone(),
                policy: pool.drain.sessions,
                timeout_seconds: pool.drain.timeout_seconds,
                active_sessions: active,
                notice: pool.drain.notice.clone().map(Box::new),
            },
            Address::new(Kind::Pool, name.clone()),
            deps,
        ))
    }

    /// A destination whose maintenance goes off rejoins a load-balanced pool
    /// only after: load balancing would otherwise send users to a host
    /// that still refuses them.
    fn rejoin_after_maintenance_ends(&mut self) {
        let planned = &self.planned;
        for (p, pool) in self.delta.pools.iter().enumerate() {
            if !pool.load_balanced_after {
                continue;
            }
            for (destination, &add) in pool.adds.iter().zip(planned.adds_of(p)) {
                if let Some(&off) = planned.maintenance_off.get(destination) {
                    self.steps.depend(add, [off]);
                }
            }
        }
    }

    /// A destination moving between load-balanced pools must leave the old
    /// one first: the broker admits it to one load-balanced pool at a time.
    /// Returns which steps (by id) are those adds: they are not "make"
    /// steps, so they are kept out of make-before-break.
    fn leave_one_load_balanced_pool_before_joining_another(&mut self) -> Vec<bool> {
        // Removals from load-balanced pools by destination, so that each
        // add finds its own without a pass over every changed pool: one
        // flat list of (pool, removal, the destination's next), the first
        // of each destination found by name. A list per destination had
        // been an allocation per member moved.
        const END: usize = usize::MAX;
        let planned = &self.planned;
        let pools = self.delta.pools.iter().enumerate();
        let leaving_lb = pools.clone().filter(|(_, o)| o.removal_load_balanced);
        let count = leaving_lb.clone().map(|(_, o)| o.removes.len()).sum();
        let mut first: HashMap<&str, usize> = HashMap::default();
        first.reserve(count);
        let mut removals: Vec<(&str, usize, usize)> = Vec::with_capacity(count);
        for (p, other) in leaving_lb {
            for (destination, chain) in other.removes.iter().zip(planned.chains_of(p)) {
                let next = first.insert(destination, removals.len()).unwrap_or(END);
                removals.push((&other.name, chain.remove, next));
            }
        }
        let mut moving_adds = vec![false; self.steps.steps.len()];
        for (p, pool) in pools.filter(|(_, p)| p.load_balanced_after) {
            for (destination, &add) in pool.adds.iter().zip(planned.adds_of(p)) {
                let mut at = first.get(destination).copied().unwrap_or(END);
                while let Some(&(other, removal, next)) = removals.get(at) {
                    if other != pool.name {
                        self.steps.depend(add, [removal]);
                        moving_adds[add] = true;
                    }
                    at = next;
                }
            }
        }
        moving_adds
    }

    /// Make before break: a pool's removal chains start only once its new
    /// members are in. Each chain waits for every add, or, where that is
    /// more dependencies than adds and chains together, all wait for one
    /// step that waits for the adds: the same order, and the same skips
    /// when an add fails, in a number of dependencies linear in the pool's
    /// change rather than its square.
    fn make_before_break(&mut self, moving_adds: &[bool]) {
        let planned = &self.planned;
        for (p, pool) in self.delta.pools.iter().enumerate() {
            let makes: Vec<usize> = (planned.adds_of(p).iter().copied())
                .filter(|&id| !moving_adds[id])
                .collect();
            let chains = planned.chains_of(p);
            if makes.is_empty() || chains.is_empty() {
                continue;
            }
            let makes = if makes.len() * chains.len() > makes.len() + chains.len() {
                let name = Name::from(pool.name.as_str());
                let op = Op::AwaitNewMembers { pool: name.clone() };
                vec![(self.steps).push(op, Address::new(Kind::Pool, name), makes)]
            } else {
                makes
            };
            for chain in chains {
                self.steps.depend(chain.head, makes.iter().copied());
            }
        }
    }

    /// An app config is written after the pool it uses is created.
    fn put_app_configs(&mut self) {
        for config in &self.delta.app_configs {
            let ItemChange::Put(body) = &config.change else {
                continue;
            };
            let deps = self
                .planned
                .created_pool
                .get(body.pool.as_str())
                .copied()
                .into_iter()
                .collect();
            let name = Name::from(config.name.as_str());
            let id = self.steps.push(
                Op::PutAppConfig {
                    app_config: name.clone(),
                    body: Box::new(body.clone()),
                },
                Address::new(Kind::AppConfig, name),
                deps,
            );
            self.planned.put_config.insert(&config.name, id);
        }
    }

    /// App instances are written or deleted; "retarget before remove": a
    /// member's removal chain waits for every instance pinned to it through
    /// that pool that lets go of it.
    fn app_instances(&mut self) {
        let delta = self.delta;
        // The delta lists the instances it writes by name, as the broker
        // does (then those it deletes, which the walk's table answers): a
        // walk reads the live list in order, where looking each of 1M up
        // in the table was a few cache misses apiece.
        let mut live_instances = self.index.app_instances.walk();
        for instance in &delta.app_instances {
            let id = match &instance.change {
                ItemChange::Put(body) => self.put_app_instance(&instance.name, body),
                ItemChange::Delete => {
                    let name = Name::from(instance.name.as_str());
                    self.steps.push(
                        Op::DeleteAppInstance {
                            app_instance: name.clone(),
                        },
                        Address::new(Kind::AppInstance, name),
                        Vec::new(),
                    )
                }
            };
            let Some(live) = live_instances.get(&instance.name) else {
                continue;
            };
            let body = instance.change.body();
            // The broker keeps a member in a pool while an instance is pinned
            // to it through its config's pool; a new destination or a new
            // config both let go of it.
            let retargets_away = body.is_none_or(|body| {
                body.destination != live.destination || body.app_config != live.app_config
            });
            let pinned = live.destination.as_deref().zip(
                self.index
                    .app_configs
                    .get(live.app_config.as_str())
                    .map(|c| c.pool.as_str()),
            );
            if retargets_away
                && let Some((old, pool)) = pinned
                && let Some(chain) = self.chain(pool, old)
            {
                self.steps.depend(chain.head, [id]);
            }
            if body.is_none_or(|body| body.app_config != live.app_config) {
                self.planned
                    .instance_steps_of_config
                    .entry(live.app_config.clone())
                    .or_default()
                    .push(id);
            }
        }
    }

    /// An instance is written after its app config, and after its
    /// destination joins the config's pool.
    fn put_app_instance(&mut self, name: &str, body: &AppInstanceBody) -> usize {
        let mut deps: Vec<usize> = self
            .planned
            .put_config
            .get(body.app_config.as_str())
            .copied()
            .into_iter()
            .collect();
        if let Some(destination) = &body.destination {
            let pool = self
                .desired
                .app_configs
                .get(&body.app_config)
                .map(|c| c.pool.as_str())
                .or_else(|| {
                    self.index
                        .app_configs
                        .get(body.app_config.as_str())
                        .map(|c| c.pool.as_str())
                });
            if let Some(add) = pool.and_then(|p| self.add(p, destination)) {
                deps.push(add);
            }
        }
        let name = Name::from(name);
        self.steps.push(
            Op::PutAppInstance {
                app_instance: name.clone(),
                body: Box::new(body.clone()),
            },
            Address::new(Kind::AppInstance, name),
            deps,
        )
    }

    /// Drain mode this stack left on a destination that stays in its pools
    /// goes off.
    fn allow_logons(&mut self) {
        for destination in &self.delta.allow_logons {
            let destination = Name::from(destination.as_str());
            self.steps.push(
                Op::AllowLogons {
                    destination: destination.clone(),
                },
                Address::new(Kind::Destination, destination),
                Vec::new(),
            );
        }
    }

    fn lb_cleanups(&mut self) {
        for destination in &self.delta.lb_cleanups {
            let destination = Name::from(destination.as_str());
            self.steps.push(
                Op::RemoveLbService {
                    destination: destination.clone(),
                },
                Address::new(Kind::Destination, destination),
                Vec::new(),
            );
        }
    }

    /// Deletes go in reverse dependency order: an app config goes after the
    /// instances leaving it. Every step taking a config off its live pool is
    /// noted for the pool's deletion.
    fn delete_app_configs_after_their_instances(&mut self) {
        for config in &self.delta.app_configs {
            let id = match &config.change {
                ItemChange::Delete => {
                    let deps = self
                        .planned
                        .instance_steps_of_config
                        .get(&config.name)
                        .cloned()
                        .unwrap_or_default();
                    let name = Name::from(config.name.as_str());
                    self.steps.push(
                        Op::DeleteAppConfig {
                            app_config: name.clone(),
                        },
                        Address::new(Kind::AppConfig, name),
                        deps,
                    )
                }
                ItemChange::Put(_) => self.planned.put_config[config.name.as_str()],
            };
            let Some(live) = self.index.app_configs.get(config.name.as_str()) else {
                continue;
            };
            if config
                .change
                .body()
                .is_none_or(|body| body.pool != live.pool)
            {
                self.planned
                    .config_steps_of_pool
                    .entry(live.pool.clone())
                    .or_default()
                    .push(id);
            }
        }
    }

    /// A pool goes last: after its members are removed and its app configs
    /// left it.
    fn delete_pools_last(&mut self) {
        let planned = &self.planned;
        for pool in &self.delta.pools {
            if !matches!(pool.change, PoolChange::Delete) {
                continue;
            }
            let mut deps = planned
                .removes_of_pool
                .get(pool.name.as_str())
                .cloned()
                .unwrap_or_default();
            deps.extend(
                planned
                    .config_steps_of_pool
                    .get(&pool.name)
                    .into_iter()
                    .flatten()
                    .copied(),
            );
            let name = Name::from(pool.name.as_str());
            self.steps.push(
                Op::DeletePool { pool: name.clone() },
                Address::new(Kind::Pool, name),
                deps,
            );
        }
    }
}

/// Kahn's algorithm; among ready steps the lowest (phase, creation order)
/// goes first, so the order is deterministic and reads naturally. The
/// steps are renumbered and moved to their places in their own buffer.
pub(super) fn sort(mut steps: Vec<Step>) -> Result<Vec<Step>, CycleError> {
    let n = steps.len();
    // The work arrays hold step numbers as `u32`: at 1M members and 100%
    // changed they are arrays of 5M steps and 14M dependencies, and as
    // `usize` they were 120 MB more at the plan's peak, read at random.
    let number = |id: usize| u32::try_from(id).expect("a plan of fewer than 4G steps");
    // Who waits for each step, as one flat list cut by `first`: one
    // allocation rather than a list per step. Offsets stay `usize`: the
    // step numbers bound the steps, not the dependencies between them.
    let mut first = vec![0usize; n + 1];
    let mut waiting: Vec<u32> = vec![0; n];
    // Each step's phase, read here in order: the loop below asks for it as
    // steps become ready, all over the steps' 136-byte records, and at 1M
    // members each read of an `Op` there was a cache miss (the sort at 1M
    // and 100% replaced: about 0.75 s to 0.65 s).
    let mut phases: Vec<u8> = vec![0; n];
    for step in &mut steps {
        step.depends_on.sort_unstable();
        step.depends_on.dedup();
        phases[step.id] = phase(&step.op);
        waiting[step.id] = number(step.depends_on.len());
        for &dep in &step.depends_on {
            first[dep + 1] += 1;
        }
    }
    for id in 0..n {
        first[id + 1] += first[id];
    }
    let mut dependents = vec![0u32; first[n]];
    // Each step's offset serves as its cursor while the list fills, which
    // leaves it at the next step's offset; shifted back by one place, the
    // offsets are whole again. A copy of them as cursors was 5M offsets
    // (40 MB) more at the peak of a plan that replaces 1M members.
    for step in &steps {
        for &dep in &step.depends_on {
            dependents[first[dep]] = number(step.id);
            first[dep] += 1;
        }
    }
    first.copy_within(0..n, 1);
    first[0] = 0;
    // Keyed by phase, then creation order: (phase, id) as phase * n + id.
    let key = |id: usize| usize::from(phases[id]) * n + id;
    let mut ready = Ready::new(n * (usize::from(LAST_PHASE) + 1));
    for id in (0..n).filter(|&id| waiting[id] == 0) {
        ready.insert(key(id));
    }
    let mut position = vec![u32::MAX; n];
    let mut placed = 0;
    while let Some(first_ready) = ready.pop_first() {
        let id = first_ready % n;
        position[id] = number(placed);
        placed += 1;
        for &next in &dependents[first[id]..first[id + 1]] {
            let next = next as usize;
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.insert(key(next));
            }
        }
    }
    if placed < n {
        let mut stuck: Vec<Address> = (0..n)
            .filter(|&id| position[id] == u32::MAX)
            .map(|id| steps[id].cause.clone())
            .collect();
        stuck.sort();
        stuck.dedup();
        return Err(CycleError(stuck));
    }
    for step in &mut steps {
        step.id = position[step.id] as usize;
        for dep in &mut step.depends_on {
            *dep = position[*dep] as usize;
        }
        // Still without duplicates: the renumbering is one to one.
        step.depends_on.sort_unstable();
    }
    drop((first, dependents, phases));
    // Places are filled in order, each by one swap with wherever its step
    // is by then. Following each cycle of the permutation instead (swap a
    // step to its place, then the one it displaced) is a chain of cache
    // misses, each address read from the step just moved: at 1M members
    // and 100% changed, a second of waiting. Here the addresses come from
    // the small arrays, so the moves of several places overlap.
    let mut order = waiting;
    for (old, &new) in position.iter().enumerate() {
        order[new as usize] = number(old);
    }
    // Where each step (by its creation index) is now, and which step each
    // place holds now.
    let mut now_at = position;
    now_at
        .iter_mut()
        .enumerate()
        .for_each(|(old, at)| *at = number(old));
    let mut holds: Vec<u32> = (0..number(n)).collect();
    for (place, &old) in order.iter().enumerate() {
        let from = now_at[old as usize] as usize;
        if from != place {
            steps.swap(place, from);
            let displaced = holds[place];
            now_at[displaced as usize] = number(from);
            holds[from] = displaced;
        }
    }
    debug_assert!(steps.iter().enumerate().all(|(at, step)| step.id == at));
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remove(pool: &str, destination: &str) -> Op {
        Op::RemoveMember {
            pool: pool.into(),
            destination: destination.into(),
        }
    }

    fn delete_pool(pool: &str) -> Op {
        Op::DeletePool { pool: pool.into() }
    }

    fn cause(pool: &str) -> Address {
        Address::new(Kind::Pool, pool)
    }

    #[test]
    fn sorting_renumbers_the_steps_and_their_dependencies_in_place() {
        let mut builder = Builder::default();
        // Created last-first: the pools' deletions before the removals
        // they wait for, and a dependency listed twice.
        let delete_a = builder.push(delete_pool("a"), cause("a"), Vec::new());
        let delete_b = builder.push(delete_pool("b"), cause("b"), Vec::new());
        let remove_b = builder.push(remove("b", "d2"), cause("b"), Vec::new());
        let remove_a = builder.push(remove("a", "d1"), cause("a"), Vec::new());
        builder.depend(delete_a, [remove_a, remove_a]);
        builder.depend(delete_b, [remove_b, remove_a]);

        let steps = sort(builder.steps).expect("no cycle");

        let ops: Vec<&Op> = steps.iter().map(|s| &s.op).collect();
        assert_eq!(
            ops,
            [
                &remove("b", "d2"),
                &remove("a", "d1"),
                &delete_pool("a"),
                &delete_pool("b"),
            ]
        );
        let ids: Vec<usize> = steps.iter().map(|s| s.id).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        assert_eq!(steps[2].depends_on, [1]);
        assert_eq!(steps[3].depends_on, [0, 1]);
        assert!(steps[0].depends_on.is_empty() && steps[1].depends_on.is_empty());
    }

    #[test]
    fn a_cycle_names_the_resources_of_the_steps_caught_in_it() {
        let mut builder = Builder::default();
        let free = builder.push(remove("c", "d3"), cause("c"), Vec::new());
        let one = builder.push(remove("a", "d1"), cause("a"), Vec::new());
        let other = builder.push(remove("b", "d2"), cause("b"), vec![one, free]);
        builder.depend(one, [other]);

        let stuck = sort(builder.steps).expect_err("a cycle");

        assert_eq!(stuck, CycleError(vec![cause("a"), cause("b")]));
    }

    proptest::proptest! {
        /// Whatever order the rules create steps in, the sorted steps are
        /// in the order of Kahn's algorithm with a heap, numbered by place,
        /// each after the steps it depends on, and each depends on exactly
        /// the steps it was planned to.
        #[test]
        fn sorted_steps_keep_their_dependencies(
            planned in proptest::collection::vec(
                (0u8..4, proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..4)),
                1..40,
            )
        ) {
            let mut builder = Builder::default();
            let mut wanted = Vec::new();
            for (created, (kind, deps)) in planned.iter().enumerate() {
                let name = format!("d{created}");
                // Different phases, so the order differs from creation.
                let op = match kind {
                    0 => Op::DeletePool { pool: name.as_str().into() },
                    1 => remove("p", &name),
                    2 => Op::StopLogons { destination: name.as_str().into() },
                    _ => Op::AddMember { pool: "p".into(), destination: name.as_str().into() },
                };
                // Only on steps created earlier: no cycles.
                let deps: Vec<usize> = if created == 0 {
                    Vec::new()
                } else {
                    deps.iter().map(|i| i.index(created)).collect()
                };
                let mut names: Vec<String> = deps.iter().map(|&d| format!("d{d}")).collect();
                names.sort();
                names.dedup();
                wanted.push((name.clone(), names));
                builder.push(op, cause(&name), deps);
            }

            // Kahn's algorithm as written down: among the ready steps, the
            // lowest (phase, creation order) first.
            let reference: Vec<String> = {
                use std::cmp::Reverse;
                use std::collections::BinaryHeap;
                let drafts = &builder.steps;
                let mut waiting: Vec<usize> = drafts.iter().map(|s| {
                    let mut deps = s.depends_on.clone();
                    deps.sort_unstable();
                    deps.dedup();
                    deps.len()
                }).collect();
                let mut ready: BinaryHeap<_> = (0..drafts.len())
                    .filter(|&id| waiting[id] == 0)
                    .map(|id| Reverse((phase(&drafts[id].op), id)))
                    .collect();
                let mut order = Vec::new();
                while let Some(Reverse((_, id))) = ready.pop() {
                    order.push(drafts[id].cause.name.to_string());
                    for (next, step) in drafts.iter().enumerate() {
                        if step.depends_on.contains(&id) {
                            waiting[next] -= 1;
                            if waiting[next] == 0 {
                                ready.push(Reverse((phase(&step.op), next)));
                            }
                        }
                    }
                }
                order
            };

            let steps = sort(builder.steps).expect("no cycle");

            let order: Vec<&str> = steps.iter().map(|s| &*s.cause.name).collect();
            proptest::prop_assert_eq!(order, reference.iter().map(String::as_str).collect::<Vec<_>>());
            proptest::prop_assert_eq!(steps.len(), wanted.len());
            let mut got = Vec::new();
            for (at, step) in steps.iter().enumerate() {
                proptest::prop_assert_eq!(step.id, at);
                proptest::prop_assert!(step.depends_on.iter().all(|&d| d < at));
                proptest::prop_assert!(step.depends_on.windows(2).all(|w| w[0] < w[1]));
                let mut names: Vec<String> = step
                    .depends_on
                    .iter()
                    .map(|&d| steps[d].cause.name.to_string())
                    .collect();
                names.sort();
                got.push((step.cause.name.to_string(), names));
            }
            got.sort();
            wanted.sort();
            proptest::prop_assert_eq!(got, wanted);
        }
    }
}
