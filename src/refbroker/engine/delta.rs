//! What the mutations since the last write changed: the entries written or
//! removed, the memberships added or removed, the counters, and the events
//! appended. The store appends one per group commit to the state file, and
//! applies them on open.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Engine;
use crate::contract::wire::{
    AppConfig, AppInstance, Destination, Event, Lock, Membership, Pool, Session, StickyBinding,
};

type Changes<V> = BTreeMap<String, Option<V>>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delta {
    revision: u64,
    next_session: u64,
    destinations: Changes<Destination>,
    pools: Changes<Pool>,
    password_hashes: Changes<String>,
    app_configs: Changes<AppConfig>,
    app_instances: Changes<AppInstance>,
    sessions: Changes<Session>,
    sticky_bindings: Changes<BTreeMap<String, StickyBinding>>,
    locks: Changes<Lock>,
    /// Member writes as the memberships they left, with the pool's revision
    /// after each, not as their pools whole: a record of the whole pool for
    /// every group commit made growing a pool to N members one write at a
    /// time write O(N²) bytes to the state file. In the order they were
    /// made; none of a pool the record holds whole (its entry is already as
    /// they left it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    members: Vec<Membership>,
    events: Vec<Event>,
}

impl Engine {
    /// Takes what changed since the last call; the durable state it is
    /// meant for holds the first `durable_events` events.
    pub fn take_delta(&mut self, durable_events: usize) -> Delta {
        let pools = self.pools.take_changes();
        let mut members = std::mem::take(&mut self.member_changes);
        members.retain(|change| !pools.contains_key(&change.pool));
        Delta {
            revision: self.revision,
            next_session: self.next_session,
            destinations: self.destinations.take_changes(),
            pools,
            password_hashes: self.password_hashes.take_changes(),
            app_configs: self.app_configs.take_changes(),
            app_instances: self.app_instances.take_changes(),
            sessions: self.sessions.take_changes(),
            sticky_bindings: self.sticky_bindings.take_changes(),
            locks: self.locks.take_changes(),
            members,
            events: self.events[durable_events.min(self.events.len())..].to_vec(),
        }
    }

    /// Brings the state up to `delta`.
    pub fn apply_delta(&mut self, delta: Delta) {
        self.revision = delta.revision;
        self.next_session = delta.next_session;
        self.destinations.apply(delta.destinations);
        if let Some(lookups) = self.lookups.get_mut() {
            for (name, pool) in &delta.pools {
                lookups.pool_changed(name, self.pools.get(name), pool.as_ref());
            }
            for (name, config) in &delta.app_configs {
                lookups.config_changed(name, self.app_configs.get(name), config.as_ref());
            }
            for (name, instance) in &delta.app_instances {
                lookups.instance_changed(name, self.app_instances.get(name), instance.as_ref());
            }
            for (id, session) in &delta.sessions {
                lookups.session_changed(id, self.sessions.get(id), session.as_ref());
            }
        }
        self.pools.apply(delta.pools);
        for change in &delta.members {
            self.set_membership(change);
        }
        self.password_hashes.apply(delta.password_hashes);
        self.app_configs.apply(delta.app_configs);
        self.app_instances.apply(delta.app_instances);
        self.sessions.apply(delta.sessions);
        self.sticky_bindings.apply(delta.sticky_bindings);
        self.locks.apply(delta.locks);
        self.events.extend(delta.events);
    }

    /// Forgets the changes made so far: the state as it is is durable.
    pub fn forget_changes(&mut self) {
        self.member_changes.clear();
        self.destinations.forget_changes();
        self.pools.forget_changes();
        self.password_hashes.forget_changes();
        self.app_configs.forget_changes();
        self.app_instances.forget_changes();
        self.sessions.forget_changes();
        self.sticky_bindings.forget_changes();
        self.locks.forget_changes();
    }

    pub fn events_len(&self) -> usize {
        self.events.len()
    }
}
