//! Runbook fixtures shared by the plan and render tests, read from
//! examples/maintenance so that they cannot drift from it: the steady config
//! through the real config pipeline, and the live state the reference
//! broker is seeded with. Builders for resources the example lacks sit
//! beside them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use secrecy::SecretString;

use crate::contract::LiveState;
use crate::contract::labels::with_stack;
use crate::contract::wire::{
    Credentials, Destination, Labels, LoadBalancing, Pool, SessionCounts, Snapshot,
};
use crate::desired::Desired;
use crate::secret::SecretSource;

/// The example's stack, for resources built here and tests that need the
/// name as a constant; [`steady`] checks that the example still says so.
pub const STACK: &str = "corp-rds";

/// The example's demo password, as quickstart.sh exports it: the seed holds
/// its salted fingerprint, so the steady config plans no password change.
const DEMO_PASSWORD: &str = "maintenance-demo";

fn example(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/maintenance")
        .join(relative)
}

fn demo_secret(source: &SecretSource) -> Result<SecretString, String> {
    match source {
        SecretSource::Env(var) if var == "MAINT_PASSWORD" => Ok(DEMO_PASSWORD.into()),
        other => Err(format!("the example has no secret {other:?}")),
    }
}

/// The runbook's steady state as config: examples/maintenance/steady.
pub fn steady() -> Desired {
    static STEADY: OnceLock<Desired> = OnceLock::new();
    STEADY
        .get_or_init(|| {
            let config = crate::config::load(&example("steady"))
                .unwrap_or_else(|e| panic!("the steady example loads: {:#?}", e.items));
            let desired = crate::config::lower(config, &demo_secret)
                .unwrap_or_else(|e| panic!("the steady example lowers: {:#?}", e.items))
                .desired;
            assert_eq!(desired.stack, STACK, "the example's stack");
            desired
        })
        .clone()
}

/// The live state the runbook starts from (the broker seed), with rds-02
/// offline, and so without sessions, unless `rds02_online`.
pub fn live(rds02_online: bool) -> LiveState {
    static SEED: OnceLock<Snapshot> = OnceLock::new();
    let seed = SEED.get_or_init(|| {
        let path = example("broker-seed.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    });
    let mut live = LiveState {
        identity: "fixture-broker".to_owned(),
        destinations: seed.destinations.clone(),
        pools: seed.pools.clone(),
        app_configs: seed.app_configs.clone(),
        app_instances: seed.app_instances.clone(),
    };
    if !rds02_online {
        let rds02 = live
            .destinations
            .iter_mut()
            .find(|d| d.name == "rds-02")
            .expect("the seed has rds-02");
        rds02.online = false;
        rds02.sessions.active = 0;
    }
    live
}

/// `live` with `active` sessions on `destination`: a test asserting a
/// drain's session count sets the count itself.
pub fn with_active_sessions(mut live: LiveState, destination: &str, active: u32) -> LiveState {
    live.destinations
        .iter_mut()
        .find(|d| d.name == destination)
        .expect("a live destination")
        .sessions
        .active = active;
    live
}

/// The live pool's load-balancing settings, for pools built by [`pool`].
pub fn live_lb() -> LoadBalancing {
    live(true)
        .pools
        .iter()
        .find(|p| p.name == "live")
        .expect("the seed has the live pool")
        .load_balancing
}

/// A destination the example does not have.
pub fn dest(name: &str, online: bool, active: u32) -> Destination {
    Destination {
        lb_service_installed: true,
        sessions: SessionCounts {
            active: if online { active } else { 0 },
            disconnected: 0,
        },
        ..Destination::registered(name, online, true, 1)
    }
}

/// A live pool of the example's stack that the example does not have.
pub fn pool(name: &str, lb: LoadBalancing, member_names: &[&str], username: Option<&str>) -> Pool {
    Pool {
        name: name.to_owned(),
        load_balancing: lb,
        default_credentials: Credentials {
            username: username.map(str::to_owned),
            password_set: false,
        },
        labels: with_stack(&Labels::new(), STACK),
        members: member_names.iter().map(|s| s.to_string()).collect(),
        revision: 3,
    }
}

pub fn members(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub fn without_member(mut desired: Desired, pool: &str, member: &str) -> Desired {
    desired.pools.get_mut(pool).unwrap().members.remove(member);
    desired
}
