//! Lookups derived from the engine's maps, by destination: the pools it is
//! a member of, the app instances pinned to it, and its sessions. Every
//! member change and drain asks them (the load-balanced pool a host is in,
//! the instances that keep it in a pool, the sessions to disconnect), and
//! asked of the maps they were a scan of every pool, instance or session:
//! an apply of N member changes against a state of N resources was
//! quadratic (rehearsals at 100k members: 10% replaced took 11.5 s, 10%
//! drained 40 s, nearly all of it in these scans).
//!
//! Never part of the state file. Built on first need, in one pass over the
//! maps, and from then on kept up to date by every write of a pool, an app
//! instance or a session; a broker that is only read never builds them.

use std::collections::{BTreeMap, HashMap};

use crate::contract::wire::{AppInstance, Pool, Session};

/// Names, in name order, so that a lookup finds what a scan of the
/// name-ordered map found first. A destination is in one pool or a few and
/// has one instance pinned to it or none: a sorted vector, not a set (a
/// session, which ends, is removed from the vector of its host's).
type Names = Vec<String>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Lookups {
    /// Destination → the pools it is a member of.
    pools_of: HashMap<String, Names>,
    /// Destination → the app instances pinned to it.
    pinned_to: HashMap<String, Names>,
    /// Destination → the ids of its sessions.
    sessions_on: HashMap<String, Names>,
}

impl Lookups {
    pub(super) fn build(
        pools: &BTreeMap<String, Pool>,
        instances: &BTreeMap<String, AppInstance>,
        sessions: &BTreeMap<String, Session>,
    ) -> Lookups {
        let mut lookups = Lookups::default();
        // The maps are walked in name order, so each list is sorted as built.
        for pool in pools.values() {
            for member in &pool.members {
                push(&mut lookups.pools_of, member, &pool.name);
            }
        }
        for instance in instances.values() {
            if let Some(destination) = &instance.destination {
                push(&mut lookups.pinned_to, destination, &instance.name);
            }
        }
        for session in sessions.values() {
            push(&mut lookups.sessions_on, &session.destination, &session.id);
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

    pub(super) fn member_added(&mut self, pool: &str, destination: &str) {
        insert(&mut self.pools_of, destination, pool);
    }

    pub(super) fn member_removed(&mut self, pool: &str, destination: &str) {
        remove(&mut self.pools_of, destination, pool);
    }

    /// Pool `name` is now `new` (`None`: deleted), where it was `old`.
    pub(super) fn pool_changed(&mut self, name: &str, old: Option<&Pool>, new: Option<&Pool>) {
        let (old, new) = (members(old), members(new));
        if old == new {
            return;
        }
        // Members are kept sorted (see `Engine::put_member`).
        for member in old.iter().filter(|m| new.binary_search(m).is_err()) {
            remove(&mut self.pools_of, member, name);
        }
        for member in new.iter().filter(|m| old.binary_search(m).is_err()) {
            insert(&mut self.pools_of, member, name);
        }
    }

    /// App instance `name` is now `new` (`None`: deleted), where it was `old`.
    pub(super) fn instance_changed(
        &mut self,
        name: &str,
        old: Option<&AppInstance>,
        new: Option<&AppInstance>,
    ) {
        let destination = |i: Option<&AppInstance>| i.and_then(|i| i.destination.clone());
        let (old, new) = (destination(old), destination(new));
        if old == new {
            return;
        }
        if let Some(old) = old {
            remove(&mut self.pinned_to, &old, name);
        }
        if let Some(new) = new {
            insert(&mut self.pinned_to, &new, name);
        }
    }
}

fn members(pool: Option<&Pool>) -> &[String] {
    pool.map_or(&[], |p| p.members.as_slice())
}

impl Lookups {
    /// Session `id` is now `new` (`None`: ended), where it was `old`. A
    /// session keeps its host; only its start and end change the lookups.
    pub(super) fn session_changed(
        &mut self,
        id: &str,
        old: Option<&Session>,
        new: Option<&Session>,
    ) {
        let (old, new) = (old.map(|s| &s.destination), new.map(|s| &s.destination));
        if old == new {
            return;
        }
        if let Some(old) = old {
            remove(&mut self.sessions_on, old, id);
        }
        if let Some(new) = new {
            insert(&mut self.sessions_on, new, id);
        }
    }
}

/// Appends `name` to `key`'s list: for a build that walks names in order.
fn push(map: &mut HashMap<String, Names>, key: &str, name: &str) {
    match map.get_mut(key) {
        Some(names) => names.push(name.to_owned()),
        None => {
            map.insert(key.to_owned(), vec![name.to_owned()]);
        }
    }
}

fn insert(map: &mut HashMap<String, Names>, key: &str, name: &str) {
    let Some(names) = map.get_mut(key) else {
        map.insert(key.to_owned(), vec![name.to_owned()]);
        return;
    };
    if let Err(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
        names.insert(at, name.to_owned());
    }
}

fn remove(map: &mut HashMap<String, Names>, key: &str, name: &str) {
    let Some(names) = map.get_mut(key) else {
        return;
    };
    if let Ok(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
        names.remove(at);
    }
    if names.is_empty() {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Lookups;
    use crate::contract::Expect;
    use crate::contract::wire::{
        AppConfigBody, AppInstanceBody, AppType, LoadBalancing, PoolBody, Protocol, SessionState,
    };
    use crate::refbroker::engine::Engine;

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
                let body = AppConfigBody {
                    pool: POOLS[p].to_owned(),
                    app_type: AppType::Desktop,
                    protocol: Protocol::Rdp,
                    admin_session: false,
                    keep_credentials_on_destination_change: false,
                    allow_destination_change: false,
                    labels: Default::default(),
                };
                e.put_app_config(CONFIGS[c], body, Expect::Any).map(drop)
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
        Ok(())
    }

    fn fresh(e: &Engine) -> Lookups {
        Lookups::build(&e.pools, &e.app_instances, &e.sessions)
    }

    proptest! {
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
            }
            durable.apply_delta(e.take_delta(durable.events_len()));
            agrees_with_scans(&durable)?;
        }
    }
}
