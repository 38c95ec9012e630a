//! Step expansion and ordering: each resource change becomes broker
//! operations with explicit dependencies (make before break; drain, then
//! clear sticky bindings, then remove the member; deletes in reverse
//! dependency order), then one topological pass fixes the execution order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::diff::{Delta, ItemChange, LiveIndex, PoolChange};
use super::{ExpectedWarning, Op, Step};
use crate::address::{Address, Kind};
use crate::desired::Desired;

/// Phases break ties between independent steps so that the list reads in
/// the order a person would do the work; dependencies alone decide safety.
fn phase(op: &Op) -> u8 {
    match op {
        Op::PutPool { .. } => 0,
        Op::PutMaintenance { .. } => 1,
        Op::AddMember { .. } => 2,
        Op::DeleteMaintenance { .. } => 3,
        Op::PutAppConfig { .. } => 4,
        Op::PutAppInstance { .. } => 5,
        Op::DeleteAppInstance { .. } => 6,
        Op::DrainSessions { .. } => 7,
        Op::ClearSticky { .. } => 8,
        Op::RemoveMember { .. } => 9,
        Op::RemoveLbService { .. } => 10,
        Op::DeleteAppConfig { .. } => 11,
        Op::DeletePool { .. } => 12,
    }
}

/// Steps whose dependencies form a cycle; the plan cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the planned steps depend on each other in a cycle (involving {})", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
pub struct CycleError(pub Vec<Address>);

struct Draft {
    op: Op,
    deps: Vec<usize>,
    cause: Address,
    warning: Option<ExpectedWarning>,
}

#[derive(Default)]
struct Builder {
    drafts: Vec<Draft>,
}

impl Builder {
    fn push(&mut self, op: Op, cause: Address, deps: Vec<usize>) -> usize {
        self.drafts.push(Draft {
            op,
            deps,
            cause,
            warning: None,
        });
        self.drafts.len() - 1
    }

    fn depend(&mut self, step: usize, on: impl IntoIterator<Item = usize>) {
        self.drafts[step].deps.extend(on);
    }
}

type Key = (String, String);

fn key(a: &str, b: &str) -> Key {
    (a.to_owned(), b.to_owned())
}

pub(super) fn expand(
    desired: &Desired,
    index: &LiveIndex,
    delta: &Delta,
) -> Result<Vec<Step>, CycleError> {
    let mut b = Builder::default();
    let mut put_pool: HashMap<&str, usize> = HashMap::new();
    let mut created_pool: HashMap<&str, usize> = HashMap::new();
    let mut add_member: HashMap<Key, usize> = HashMap::new();
    let mut chain_head: HashMap<Key, usize> = HashMap::new();
    let mut remove_member: HashMap<Key, usize> = HashMap::new();
    let mut removes_of_pool: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut maintenance_on: HashMap<&str, usize> = HashMap::new();

    for m in &delta.maintenance {
        let cause = Address::new(Kind::Destination, &m.destination);
        let op = match &m.put {
            Some(maintenance) => Op::PutMaintenance {
                destination: m.destination.clone(),
                maintenance: maintenance.clone(),
            },
            None => Op::DeleteMaintenance {
                destination: m.destination.clone(),
            },
        };
        let id = b.push(op, cause, Vec::new());
        if m.put.is_some() {
            maintenance_on.insert(&m.destination, id);
        }
    }

    for pool in &delta.pools {
        let cause = Address::new(Kind::Pool, &pool.name);
        if let Some(settings) = pool.change.settings() {
            let id = b.push(
                Op::PutPool {
                    pool: pool.name.clone(),
                    settings: settings.clone(),
                },
                cause.clone(),
                Vec::new(),
            );
            put_pool.insert(&pool.name, id);
            if let PoolChange::Create(_) = pool.change {
                created_pool.insert(&pool.name, id);
            }
        }
        for destination in &pool.adds {
            let deps = put_pool
                .get(pool.name.as_str())
                .copied()
                .into_iter()
                .collect();
            let id = b.push(
                Op::AddMember {
                    pool: pool.name.clone(),
                    destination: destination.clone(),
                },
                cause.clone(),
                deps,
            );
            add_member.insert(key(&pool.name, destination), id);
        }
        for destination in &pool.removes {
            let online = index.is_online(destination);
            let mut head = None;
            let mut last = None;
            if pool.removal_load_balanced && online {
                let active = index
                    .destinations
                    .get(destination.as_str())
                    .map_or(0, |d| d.sessions.active);
                // An empty host needs no drain; planning one anyway would
                // repeat a side effect on every re-run after a crash.
                if active > 0 {
                    let deps = maintenance_on
                        .get(destination.as_str())
                        .copied()
                        .into_iter()
                        .collect();
                    let id = b.push(
                        Op::DrainSessions {
                            pool: pool.name.clone(),
                            destination: destination.clone(),
                            policy: pool.drain.sessions,
                            timeout_seconds: pool.drain.timeout_seconds,
                            active_sessions: active,
                        },
                        cause.clone(),
                        deps,
                    );
                    head = Some(id);
                    last = Some(id);
                }
            }
            if pool.removal_sticky {
                let id = b.push(
                    Op::ClearSticky {
                        pool: pool.name.clone(),
                        destination: destination.clone(),
                    },
                    cause.clone(),
                    last.into_iter().collect(),
                );
                head.get_or_insert(id);
                last = Some(id);
            }
            let id = b.push(
                Op::RemoveMember {
                    pool: pool.name.clone(),
                    destination: destination.clone(),
                },
                cause.clone(),
                last.into_iter().collect(),
            );
            if pool.removal_load_balanced && !online {
                b.drafts[id].warning = Some(ExpectedWarning::LbServiceUninstallFailed {
                    destination: destination.clone(),
                });
            }
            let head = head.unwrap_or(id);
            chain_head.insert(key(&pool.name, destination), head);
            remove_member.insert(key(&pool.name, destination), id);
            removes_of_pool.entry(&pool.name).or_default().push(id);
        }
    }

    // A destination moving between load-balanced pools must leave the old
    // one first: the broker admits it to one load-balanced pool at a time.
    // Such adds are not "make" steps, so they are kept out of make-before-break.
    let mut moving_adds = std::collections::HashSet::new();
    for pool in delta.pools.iter().filter(|p| p.load_balanced_after) {
        for destination in &pool.adds {
            let add = add_member[&key(&pool.name, destination)];
            for other in delta
                .pools
                .iter()
                .filter(|o| o.name != pool.name && o.removal_load_balanced)
            {
                if let Some(&removal) = remove_member.get(&key(&other.name, destination)) {
                    b.depend(add, [removal]);
                    moving_adds.insert(add);
                }
            }
        }
    }
    for pool in &delta.pools {
        let makes: Vec<usize> = pool
            .adds
            .iter()
            .map(|d| add_member[&key(&pool.name, d)])
            .filter(|id| !moving_adds.contains(id))
            .collect();
        for destination in &pool.removes {
            b.depend(
                chain_head[&key(&pool.name, destination)],
                makes.iter().copied(),
            );
        }
    }

    let mut put_config: HashMap<&str, usize> = HashMap::new();
    for config in &delta.app_configs {
        if let ItemChange::Put(body) = &config.change {
            let deps = created_pool
                .get(body.pool.as_str())
                .copied()
                .into_iter()
                .collect();
            let id = b.push(
                Op::PutAppConfig {
                    app_config: config.name.clone(),
                    body: body.clone(),
                },
                Address::new(Kind::AppConfig, &config.name),
                deps,
            );
            put_config.insert(&config.name, id);
        }
    }

    // Which removal chains an instance's old destination belongs to.
    let heads_by_destination = {
        let mut map: HashMap<&str, Vec<usize>> = HashMap::new();
        for ((_, destination), &head) in &chain_head {
            map.entry(destination.as_str()).or_default().push(head);
        }
        map
    };
    let mut instance_steps_of_config: HashMap<String, Vec<usize>> = HashMap::new();
    for instance in &delta.app_instances {
        let cause = Address::new(Kind::AppInstance, &instance.name);
        let live = index.app_instances.get(instance.name.as_str()).copied();
        let id = match instance.change.body() {
            Some(body) => {
                let mut deps: Vec<usize> = put_config
                    .get(body.app_config.as_str())
                    .copied()
                    .into_iter()
                    .collect();
                if let Some(destination) = &body.destination {
                    let pool = desired
                        .app_configs
                        .get(&body.app_config)
                        .map(|c| c.pool.as_str())
                        .or_else(|| {
                            index
                                .app_configs
                                .get(body.app_config.as_str())
                                .map(|c| c.pool.as_str())
                        });
                    if let Some(&add) = pool.and_then(|p| add_member.get(&key(p, destination))) {
                        deps.push(add);
                    }
                }
                b.push(
                    Op::PutAppInstance {
                        app_instance: instance.name.clone(),
                        body: body.clone(),
                    },
                    cause,
                    deps,
                )
            }
            None => b.push(
                Op::DeleteAppInstance {
                    app_instance: instance.name.clone(),
                },
                cause,
                Vec::new(),
            ),
        };
        if let Some(live) = live {
            let retargets_away = instance
                .change
                .body()
                .is_none_or(|body| body.destination != live.destination);
            if let (true, Some(old)) = (retargets_away, &live.destination)
                && let Some(heads) = heads_by_destination.get(old.as_str())
            {
                for &head in heads {
                    b.depend(head, [id]);
                }
            }
            let leaves_config = instance
                .change
                .body()
                .is_none_or(|body| body.app_config != live.app_config);
            if leaves_config {
                instance_steps_of_config
                    .entry(live.app_config.clone())
                    .or_default()
                    .push(id);
            }
        }
    }

    for destination in &delta.lb_cleanups {
        b.push(
            Op::RemoveLbService {
                destination: destination.clone(),
            },
            Address::new(Kind::Destination, destination),
            Vec::new(),
        );
    }

    let mut config_steps_of_pool: HashMap<String, Vec<usize>> = HashMap::new();
    for config in &delta.app_configs {
        let live = index.app_configs.get(config.name.as_str()).copied();
        let id = match &config.change {
            ItemChange::Delete => {
                let deps = instance_steps_of_config
                    .get(&config.name)
                    .cloned()
                    .unwrap_or_default();
                Some(b.push(
                    Op::DeleteAppConfig {
                        app_config: config.name.clone(),
                    },
                    Address::new(Kind::AppConfig, &config.name),
                    deps,
                ))
            }
            ItemChange::Put(_) => put_config.get(config.name.as_str()).copied(),
        };
        if let (Some(id), Some(live)) = (id, live) {
            let leaves_pool = config
                .change
                .body()
                .is_none_or(|body| body.pool != live.pool);
            if leaves_pool {
                config_steps_of_pool
                    .entry(live.pool.clone())
                    .or_default()
                    .push(id);
            }
        }
    }

    for pool in delta
        .pools
        .iter()
        .filter(|p| matches!(p.change, PoolChange::Delete))
    {
        let mut deps = removes_of_pool
            .get(pool.name.as_str())
            .cloned()
            .unwrap_or_default();
        deps.extend(
            config_steps_of_pool
                .get(&pool.name)
                .cloned()
                .unwrap_or_default(),
        );
        b.push(
            Op::DeletePool {
                pool: pool.name.clone(),
            },
            Address::new(Kind::Pool, &pool.name),
            deps,
        );
    }

    sort(b.drafts)
}

/// Kahn's algorithm; among ready steps the lowest (phase, creation order)
/// goes first, so the order is deterministic and reads naturally.
fn sort(drafts: Vec<Draft>) -> Result<Vec<Step>, CycleError> {
    let n = drafts.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (id, draft) in drafts.iter().enumerate() {
        let mut deps = draft.deps.clone();
        deps.sort_unstable();
        deps.dedup();
        waiting[id] = deps.len();
        for dep in deps {
            dependents[dep].push(id);
        }
    }
    let mut ready: BinaryHeap<Reverse<(u8, usize)>> = (0..n)
        .filter(|&id| waiting[id] == 0)
        .map(|id| Reverse((phase(&drafts[id].op), id)))
        .collect();
    let mut position = vec![usize::MAX; n];
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse((_, id))) = ready.pop() {
        position[id] = order.len();
        order.push(id);
        for &next in &dependents[id] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(Reverse((phase(&drafts[next].op), next)));
            }
        }
    }
    if order.len() < n {
        let mut stuck: Vec<Address> = (0..n)
            .filter(|&id| position[id] == usize::MAX)
            .map(|id| drafts[id].cause.clone())
            .collect();
        stuck.sort();
        stuck.dedup();
        return Err(CycleError(stuck));
    }
    let mut slots: Vec<Option<Draft>> = drafts.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .enumerate()
        .map(|(new_id, old_id)| {
            let draft = slots[old_id].take().expect("each step is placed once");
            let mut depends_on: Vec<usize> = draft.deps.iter().map(|&d| position[d]).collect();
            depends_on.sort_unstable();
            depends_on.dedup();
            Step {
                id: new_id,
                op: draft.op,
                depends_on,
                cause: draft.cause,
                expected_warning: draft.warning,
            }
        })
        .collect())
}
