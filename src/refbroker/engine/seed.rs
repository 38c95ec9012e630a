//! Building the state from a snapshot (the `--seed` file): the references a
//! seed must keep (members, pools, app configs, session destinations) and
//! the facts it cannot carry (session counts, unknowable passwords).

use std::collections::HashMap;

use super::{Engine, Result, UNKNOWN_PASSWORD, bad_request, count_mut};
use crate::contract::wire::{SessionCounts, Snapshot};

impl Engine {
    /// Builds the state a `--seed` file describes. Session counts are
    /// recomputed from the sessions, members sorted, and a pool seeded with
    /// `password_set: true` gets a password nobody knows ([`UNKNOWN_PASSWORD`]).
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Engine> {
        let mut engine = Engine::new();
        let mut max_rev = 0;
        // The load-balanced pool of each member seen so far: asking the
        // engine would scan every pool per member, and a large seed would
        // take minutes to load.
        let mut load_balanced_in: HashMap<String, String> = HashMap::new();
        for mut d in snapshot.destinations {
            d.sessions = SessionCounts::default();
            max_rev = max_rev.max(d.revision);
            engine.destinations.insert(d.name.clone(), d);
        }
        for mut p in snapshot.pools {
            p.members.sort();
            p.members.dedup();
            for m in &p.members {
                if !engine.destinations.contains_key(m) {
                    return Err(bad_request(format!(
                        "seed: pool {} has unknown member {m}",
                        p.name
                    )));
                }
            }
            if p.default_credentials.password_set {
                engine
                    .password_hashes
                    .insert(p.name.clone(), UNKNOWN_PASSWORD.to_owned());
            }
            if p.load_balancing.enabled {
                for m in &p.members {
                    if let Some(other) = load_balanced_in.insert(m.clone(), p.name.clone()) {
                        return Err(bad_request(format!(
                            "seed: {m} is in load-balanced pools {other} and {}",
                            p.name
                        )));
                    }
                }
                // Membership in a load-balanced pool means the service is there.
                for m in &p.members {
                    if let Some(d) = engine.destinations.get_mut(m) {
                        d.lb_service_installed = true;
                    }
                }
            }
            max_rev = max_rev.max(p.revision);
            engine.pools.insert(p.name.clone(), p);
        }
        for c in snapshot.app_configs {
            if !engine.pools.contains_key(&c.pool) {
                return Err(bad_request(format!(
                    "seed: app config {} uses unknown pool {}",
                    c.name, c.pool
                )));
            }
            max_rev = max_rev.max(c.revision);
            engine.app_configs.insert(c.name.clone(), c);
        }
        for i in snapshot.app_instances {
            if !engine.app_configs.contains_key(&i.app_config) {
                return Err(bad_request(format!(
                    "seed: app instance {} uses unknown app config {}",
                    i.name, i.app_config
                )));
            }
            max_rev = max_rev.max(i.revision);
            engine.app_instances.insert(i.name.clone(), i);
        }
        for s in snapshot.sessions {
            let Some(d) = engine.destinations.get_mut(&s.destination) else {
                return Err(bad_request(format!(
                    "seed: session {} is on unknown destination {}",
                    s.id, s.destination
                )));
            };
            *count_mut(&mut d.sessions, s.state) += 1;
            engine.sessions.insert(s.id.clone(), s);
        }
        engine.next_session = engine.sessions.len() as u64;
        for b in snapshot.sticky_bindings {
            engine
                .sticky_bindings
                .entry(b.pool.clone())
                .or_default()
                .insert(b.user.clone(), b);
        }
        engine.revision = max_rev;
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refbroker::engine::fixtures::{T0, engine};

    #[test]
    fn seeds_are_checked_for_broken_references() {
        let e = engine();
        let mut snap = e.snapshot(T0);
        snap.pools[0].members = vec!["rds-01".into()];
        let mut second = snap.pools[0].clone();
        second.name = "live-2".into();
        snap.pools.push(second);
        let err = Engine::from_snapshot(snap.clone()).unwrap_err();
        assert!(
            err.detail
                .unwrap()
                .contains("load-balanced pools live and live-2")
        );
        snap.pools.pop();
        let restored = Engine::from_snapshot(snap).unwrap();
        assert!(restored.destination("rds-01").unwrap().lb_service_installed);
    }
}
