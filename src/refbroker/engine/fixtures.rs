//! Test fixtures shared by the rule families' tests: an engine with three
//! online, prepared destinations and a load-balanced pool `live`.

use super::Engine;
use crate::contract::Expect;
use crate::contract::wire::{AppConfigBody, AppType, LoadBalancing, PoolBody, Protocol};

/// Unix milliseconds the fixtures' clock starts at.
pub const T0: u64 = 1_700_000_000_000;

pub fn engine() -> Engine {
    let mut e = Engine::new();
    e.set_clock(T0);
    for n in ["rds-01", "rds-02", "rds-03"] {
        e.sim_destination(n, true, true).unwrap();
    }
    e.put_pool("live", lb_pool(10), Expect::Any).unwrap();
    e
}

pub fn lb_pool(sticky: u32) -> PoolBody {
    PoolBody {
        load_balancing: LoadBalancing {
            enabled: true,
            sticky_sessions_minutes: sticky,
            grace_period_seconds: 30,
        },
        ..PoolBody::default()
    }
}

/// A desktop app config over RDP using `pool`, every option off.
pub fn desktop(pool: &str) -> AppConfigBody {
    AppConfigBody {
        pool: pool.to_owned(),
        app_type: AppType::Desktop,
        protocol: Protocol::Rdp,
        admin_session: false,
        keep_credentials_on_destination_change: false,
        allow_destination_change: false,
        labels: Default::default(),
    }
}

pub fn ops_since(e: &Engine, since: u64) -> Vec<String> {
    e.events_page(since, 1000)
        .items
        .iter()
        .map(|ev| format!("{} {} {:?} {:?}", ev.op, ev.resource, ev.outcome, ev.code))
        .collect()
}
