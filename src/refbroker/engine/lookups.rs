//! Lookups derived from the engine's maps: by destination, the pools it is
//! a member of, the app instances pinned to it and its sessions; the app
//! instances of each app config, and the app configs of each pool. Member
//! changes, drains and deletes ask them (the load-balanced pool a host is
//! in, the instances that keep it in a pool, the sessions to disconnect,
//! whether a config or pool is still in use), and asked of the maps they
//! were a scan of every pool, instance, session or config: an apply of N
//! changes against a state of N resources was quadratic (rehearsals at 100k
//! members: 10% replaced took 11.5 s, 10% drained 40 s, nearly all of it in
//! these scans).
//!
//! Never part of the state file. Built on first need, in one pass over the
//! maps, and from then on kept up to date by every write of a pool, an app
//! config, an app instance or a session; a broker that is only read never
//! builds them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::contract::wire::{AppConfig, AppInstance, Pool, Session};

/// The maps the lookups are derived from.
pub(super) struct Sources<'a> {
    pub pools: &'a BTreeMap<String, Pool>,
    pub app_configs: &'a BTreeMap<String, AppConfig>,
    pub app_instances: &'a BTreeMap<String, AppInstance>,
    pub sessions: &'a BTreeMap<String, Session>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Lookups {
    /// Destination → the pools it is a member of.
    pools_of: By<Vec<String>>,
    /// Destination → the app instances pinned to it.
    pinned_to: By<Vec<String>>,
    /// Destination → the ids of its sessions.
    sessions_on: By<Vec<String>>,
    /// App config → its app instances.
    instances_of: By<BTreeSet<String>>,
    /// Pool → the app configs that use it.
    configs_of: By<Vec<String>>,
}

impl Lookups {
    pub(super) fn build(from: &Sources) -> Lookups {
        let mut lookups = Lookups::default();
        // The maps are walked in name order, so each list is sorted as built.
        for pool in from.pools.values() {
            for member in &pool.members {
                lookups.pools_of.push(member, &pool.name);
            }
        }
        for config in from.app_configs.values() {
            lookups.configs_of.push(&config.pool, &config.name);
        }
        for instance in from.app_instances.values() {
            if let Some(destination) = &instance.destination {
                lookups.pinned_to.push(destination, &instance.name);
            }
            lookups
                .instances_of
                .push(&instance.app_config, &instance.name);
        }
        for session in from.sessions.values() {
            lookups.sessions_on.push(&session.destination, &session.id);
        }
        lookups
    }

    /// The pools `destination` is a member of, in name order.
    pub(super) fn pools_of(&self, destination: &str) -> &[String] {
        self.pools_of.get(destination).map_or(&[], Vec::as_slice)
    }

    /// The app instances pinned to `destination`, in name order.
    pub(super) fn pinned_to(&self, destination: &str) -> &[String] {
        self.pinned_to.get(destination).map_or(&[], Vec::as_slice)
    }

    /// The ids of `destination`'s sessions, in order.
    pub(super) fn sessions_on(&self, destination: &str) -> &[String] {
        self.sessions_on.get(destination).map_or(&[], Vec::as_slice)
    }

    /// The app instances of `app_config`, in name order.
    pub(super) fn instances_of(&self, app_config: &str) -> impl Iterator<Item = &String> {
        self.instances_of.get(app_config).into_iter().flatten()
    }

    /// The app configs that use `pool`, in name order.
    pub(super) fn configs_of(&self, pool: &str) -> &[String] {
        self.configs_of.get(pool).map_or(&[], Vec::as_slice)
    }

    pub(super) fn member_added(&mut self, pool: &str, destination: &str) {
        self.pools_of.insert(destination, pool);
    }

    pub(super) fn member_removed(&mut self, pool: &str, destination: &str) {
        self.pools_of.remove(destination, pool);
    }

    /// Pool `name` is now `new` (`None`: deleted), where it was `old`.
    pub(super) fn pool_changed(&mut self, name: &str, old: Option<&Pool>, new: Option<&Pool>) {
        let old = old.map_or(&[][..], |p| p.members.as_slice());
        let new = new.map_or(&[][..], |p| p.members.as_slice());
        if old == new {
            return;
        }
        // Members are kept sorted (see `Engine::put_member`).
        for member in old.iter().filter(|m| new.binary_search(m).is_err()) {
            self.pools_of.remove(member, name);
        }
        for member in new.iter().filter(|m| old.binary_search(m).is_err()) {
            self.pools_of.insert(member, name);
        }
    }

    /// App config `name` is now `new` (`None`: deleted), where it was `old`.
    pub(super) fn config_changed(
        &mut self,
        name: &str,
        old: Option<&AppConfig>,
        new: Option<&AppConfig>,
    ) {
        let (old, new) = (old.map(|c| c.pool.as_str()), new.map(|c| c.pool.as_str()));
        self.configs_of.moved(name, old, new);
    }

    /// App instance `name` is now `new` (`None`: deleted), where it was `old`.
    pub(super) fn instance_changed(
        &mut self,
        name: &str,
        old: Option<&AppInstance>,
        new: Option<&AppInstance>,
    ) {
        self.pinned_to.moved(
            name,
            old.and_then(|i| i.destination.as_deref()),
            new.and_then(|i| i.destination.as_deref()),
        );
        self.instances_of.moved(
            name,
            old.map(|i| i.app_config.as_str()),
            new.map(|i| i.app_config.as_str()),
        );
    }

    /// Session `id` is now `new` (`None`: ended), where it was `old`.
    pub(super) fn session_changed(
        &mut self,
        id: &str,
        old: Option<&Session>,
        new: Option<&Session>,
    ) {
        let (old, new) = (
            old.map(|s| s.destination.as_str()),
            new.map(|s| s.destination.as_str()),
        );
        self.sessions_on.moved(id, old, new);
    }
}

/// Names by a key, each key's in name order. A key without names has no
/// entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct By<N>(HashMap<String, N>);

impl<N: Names> By<N> {
    fn get(&self, key: &str) -> Option<&N> {
        self.0.get(key)
    }

    /// Adds `name` under `key`, for a build that walks names in order.
    fn push(&mut self, key: &str, name: &str) {
        match self.0.get_mut(key) {
            Some(names) => names.push(name),
            None => {
                let mut names = N::default();
                names.push(name);
                self.0.insert(key.to_owned(), names);
            }
        }
    }

    fn insert(&mut self, key: &str, name: &str) {
        match self.0.get_mut(key) {
            Some(names) => names.insert(name),
            None => self.push(key, name),
        }
    }

    fn remove(&mut self, key: &str, name: &str) {
        let Some(names) = self.0.get_mut(key) else {
            return;
        };
        names.remove(name);
        if names.is_empty() {
            self.0.remove(key);
        }
    }

    /// `name` was under `old` and is now under `new` (`None`: under none).
    fn moved(&mut self, name: &str, old: Option<&str>, new: Option<&str>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.remove(old, name);
        }
        if let Some(new) = new {
            self.insert(new, name);
        }
    }
}

/// The names under one key, in name order.
trait Names: Default {
    /// Adds a name after every name already there.
    fn push(&mut self, name: &str);
    fn insert(&mut self, name: &str);
    fn remove(&mut self, name: &str);
    fn is_empty(&self) -> bool;
}

/// A few names: a destination is in a pool or two, has one instance pinned
/// to it or none and a few sessions, and a pool has an app config or a few.
/// A sorted vector, where a B-tree set would allocate a whole node for one
/// name (for 1M destinations, hundreds of MB).
impl Names for Vec<String> {
    fn push(&mut self, name: &str) {
        Vec::push(self, name.to_owned());
    }

    fn insert(&mut self, name: &str) {
        if let Err(at) = self.binary_search_by(|n| n.as_str().cmp(name)) {
            Vec::insert(self, at, name.to_owned());
        }
    }

    fn remove(&mut self, name: &str) {
        if let Ok(at) = self.binary_search_by(|n| n.as_str().cmp(name)) {
            Vec::remove(self, at);
        }
    }

    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

/// Any number of names: an app config may have thousands of instances, and
/// a sorted vector would shift them all for each one deleted in name order.
impl Names for BTreeSet<String> {
    fn push(&mut self, name: &str) {
        Names::insert(self, name);
    }

    fn insert(&mut self, name: &str) {
        if !self.contains(name) {
            BTreeSet::insert(self, name.to_owned());
        }
    }

    fn remove(&mut self, name: &str) {
        BTreeSet::remove(self, name);
    }

    fn is_empty(&self) -> bool {
        BTreeSet::is_empty(self)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Lookups;
    use crate::contract::Expect;
    use crate::contract::wire::{AppInstanceBody, LoadBalancing, PoolBody, SessionState};
    use crate::refbroker::engine::Engine;
    use crate::refbroker::engine::fixtures::desktop;

    const POOLS: [&str; 3] = ["p0", "p1", "p2"];
    const DESTINATIONS: [&str; 4] = ["d0", "d1", "d2", "d3"];
    const CONFIGS: [&str; 2] = ["c0", "c1"];
    const INSTANCES: [&str; 3] = ["i0", "i1", "i2"];

    /// Every write of a pool, a membership or an app instance, and the
    /// record of a group commit applied to the durable copy.
    #[derive(Debug, Clone)]
    enum Write {
        PutPool(usize, bool),
        DeletePool(usize),
        PutMember(usize, usize),
        DeleteMember(usize, usize),
        PutConfig(usize, usize),
        DeleteConfig(usize),
        PutInstance(usize, usize, Option<usize>),
        DeleteInstance(usize),
        StartSession(usize, bool),
        EndSession(usize),
        Disconnect(usize),
        Power(usize, bool),
        Commit,
    }

    fn write() -> impl Strategy<Value = Write> {
        prop_oneof![
            (0..3usize, any::<bool>()).prop_map(|(p, lb)| Write::PutPool(p, lb)),
            (0..3usize).prop_map(Write::DeletePool),
            (0..3usize, 0..4usize).prop_map(|(p, d)| Write::PutMember(p, d)),
            (0..3usize, 0..4usize).prop_map(|(p, d)| Write::DeleteMember(p, d)),
            (0..2usize, 0..3usize).prop_map(|(c, p)| Write::PutConfig(c, p)),
            (0..2usize).prop_map(Write::DeleteConfig),
            (0..3usize, 0..2usize, proptest::option::of(0..4usize))
                .prop_map(|(i, c, d)| Write::PutInstance(i, c, d)),
            (0..3usize).prop_map(Write::DeleteInstance),
            (0..4usize, any::<bool>()).prop_map(|(d, active)| Write::StartSession(d, active)),
            (0..8usize).prop_map(Write::EndSession),
            (0..4usize).prop_map(Write::Disconnect),
            (0..4usize, any::<bool>()).prop_map(|(d, online)| Write::Power(d, online)),
            Just(Write::Commit),
        ]
    }

    fn apply(e: &mut Engine, durable: &mut Engine, write: &Write) {
        // Refusals are part of the sequence: a refused write changes nothing.
        let _ = match *write {
            Write::PutPool(p, enabled) => {
                let body = PoolBody {
                    load_balancing: LoadBalancing {
                        enabled,
                        ..LoadBalancing::default()
                    },
                    ..PoolBody::default()
                };
                e.put_pool(POOLS[p], body, Expect::Any).map(drop)
            }
            Write::DeletePool(p) => e.delete_pool(POOLS[p], Expect::Any),
            Write::PutMember(p, d) => e.put_member(POOLS[p], DESTINATIONS[d]).map(drop),
            Write::DeleteMember(p, d) => e.delete_member(POOLS[p], DESTINATIONS[d]).map(drop),
            Write::PutConfig(c, p) => {
                (e.put_app_config(CONFIGS[c], desktop(POOLS[p]), Expect::Any)).map(drop)
            }
            Write::DeleteConfig(c) => e.delete_app_config(CONFIGS[c], Expect::Any),
            Write::PutInstance(i, c, d) => {
                let body = AppInstanceBody {
                    app_config: CONFIGS[c].to_owned(),
                    user: Some("u".to_owned()),
                    group: None,
                    destination: d.map(|d| DESTINATIONS[d].to_owned()),
                    labels: Default::default(),
                };
                e.put_app_instance(INSTANCES[i], body, Expect::Any)
                    .map(drop)
            }
            Write::DeleteInstance(i) => e.delete_app_instance(INSTANCES[i], Expect::Any),
            Write::StartSession(d, active) => {
                let state = if active {
                    SessionState::Active
                } else {
                    SessionState::Disconnected
                };
                e.sim_start_session(DESTINATIONS[d], "u", state, &[])
                    .map(drop)
            }
            Write::EndSession(k) => match e.sessions.keys().nth(k).cloned() {
                Some(id) => e.sim_end_session(&id),
                None => Ok(()),
            },
            Write::Disconnect(d) => e.disconnect_sessions(DESTINATIONS[d]).map(drop),
            Write::Power(d, online) => e.sim_power(DESTINATIONS[d], online).map(drop),
            Write::Commit => {
                durable.apply_delta(e.take_delta(durable.events_len()));
                Ok(())
            }
        };
    }

    /// What the lookups answer, as scans of the maps answer it.
    fn agrees_with_scans(e: &Engine) -> Result<(), TestCaseError> {
        for d in DESTINATIONS {
            let scanned = (e.pools.values())
                .find(|p| p.load_balancing.enabled && p.members.iter().any(|m| m == d))
                .map(|p| &p.name);
            prop_assert_eq!(e.lb_pool_of(d).map(|p| &p.name), scanned);
            let pinned: Vec<&String> = (e.app_instances.values())
                .filter(|i| i.destination.as_deref() == Some(d))
                .map(|i| &i.name)
                .collect();
            prop_assert_eq!(e.lookups().pinned_to(d).iter().collect::<Vec<_>>(), pinned);
            let sessions: Vec<&String> = (e.sessions.values())
                .filter(|s| s.destination == d)
                .map(|s| &s.id)
                .collect();
            // Two at a time, after every cursor a client can hold.
            for cursor in std::iter::once(None).chain(sessions.iter().map(|id| Some(id.as_str()))) {
                let page = e.sessions_page(d, cursor, 2).unwrap();
                let after: Vec<&&String> = (sessions.iter())
                    .filter(|id| cursor.is_none_or(|c| id.as_str() > c))
                    .collect();
                let ids: Vec<&String> = page.items.iter().map(|s| &s.id).collect();
                prop_assert_eq!(ids.len(), after.len().min(2));
                prop_assert!(ids.iter().zip(&after).all(|(a, b)| a == *b));
                prop_assert_eq!(page.total, sessions.len() as u64);
                prop_assert_eq!(page.next_cursor.is_some(), after.len() > 2);
            }
        }
        for c in CONFIGS {
            let scanned: Vec<&String> = (e.app_instances.values())
                .filter(|i| i.app_config == c)
                .map(|i| &i.name)
                .collect();
            prop_assert_eq!(e.lookups().instances_of(c).collect::<Vec<_>>(), scanned);
        }
        for p in POOLS {
            let scanned: Vec<&String> = (e.app_configs.values())
                .filter(|c| c.pool == p)
                .map(|c| &c.name)
                .collect();
            prop_assert_eq!(
                e.lookups().configs_of(p).iter().collect::<Vec<_>>(),
                scanned
            );
        }
        Ok(())
    }

    fn fresh(e: &Engine) -> Lookups {
        Lookups::build(&e.sources())
    }

    proptest! {
        /// Also checks the records: the durable copy, brought up to date by
        /// them alone, is the live state (members recorded as memberships,
        /// pools written whole, in any mix within one record).
        #[test]
        fn lookups_kept_up_to_date_answer_as_scans_and_as_a_fresh_build(
            writes in proptest::collection::vec(write(), 1..60),
            built_late in any::<bool>(),
        ) {
            let mut e = Engine::new();
            for d in DESTINATIONS {
                e.sim_destination(d, true, true).unwrap();
            }
            let mut durable = e.clone();
            durable.forget_changes();
            e.forget_changes();
            // Built before the writes (kept up to date by each) or, when
            // `built_late`, only where the first write needs them.
            if !built_late {
                e.lookups();
                durable.lookups();
            }
            for write in &writes {
                apply(&mut e, &mut durable, write);
                if let Some(kept) = e.lookups.get() {
                    prop_assert_eq!(kept, &fresh(&e), "after {:?}", write);
                }
                if let Some(kept) = durable.lookups.get() {
                    prop_assert_eq!(kept, &fresh(&durable), "durable, after {:?}", write);
                }
                agrees_with_scans(&e)?;
                if matches!(write, Write::Commit) {
                    prop_assert_eq!(durable.snapshot(0), e.snapshot(0));
                    prop_assert_eq!(durable.revision, e.revision);
                }
            }
            durable.apply_delta(e.take_delta(durable.events_len()));
            agrees_with_scans(&durable)?;
            prop_assert_eq!(durable.snapshot(0), e.snapshot(0));
            prop_assert_eq!(durable.events_len(), e.events_len());
        }
    }
}
