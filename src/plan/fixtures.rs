//! Runbook fixtures shared by the plan and render tests: the steady
//! desired state of examples/maintenance and the live state it starts from.

use std::collections::{BTreeMap, BTreeSet};

use crate::contract::LiveState;
use crate::contract::labels::STACK_LABEL;
use crate::contract::wire::{
    AppConfig, AppInstance, AppType, Credentials, Destination, Labels, LoadBalancing, Maintenance,
    Pool, Protocol, SessionCounts,
};
use crate::desired::{
    Assignee, Desired, DesiredAppConfig, DesiredAppInstance, DesiredPool, Drain, DrainSessions,
    Safety,
};

pub const STACK: &str = "corp-rds";

pub fn labels() -> Labels {
    [(STACK_LABEL.to_owned(), STACK.to_owned())].into()
}

pub fn dest(name: &str, online: bool, active: u32) -> Destination {
    Destination {
        name: name.to_owned(),
        online,
        process_execution_ready: true,
        lb_service_installed: true,
        maintenance: Maintenance::default(),
        sessions: SessionCounts {
            active: if online { active } else { 0 },
            disconnected: 0,
        },
        labels: Labels::new(),
        revision: 1,
    }
}

pub fn live_lb() -> LoadBalancing {
    LoadBalancing {
        enabled: true,
        sticky_sessions_minutes: 10,
        grace_period_seconds: 30,
    }
}

pub fn members(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The runbook's steady state as config.
pub fn steady() -> Desired {
    let live_pool = DesiredPool {
        load_balancing: live_lb(),
        username: None,
        password: None,
        members: members(&["rds-01", "rds-02", "rds-03"]),
        drain: Drain {
            sessions: DrainSessions::Disconnect,
            timeout_seconds: Some(900),
        },
        min_members: Some(2),
        labels: Labels::new(),
    };
    let maintenance_pool = DesiredPool {
        load_balancing: LoadBalancing::default(),
        username: Some("CORP\\svc-maint".to_owned()),
        password: None,
        members: members(&["rds-01", "rds-02", "rds-03"]),
        drain: Drain::default(),
        min_members: None,
        labels: Labels::new(),
    };
    Desired {
        stack: STACK.to_owned(),
        safety: Safety::default(),
        pools: [
            ("live".to_owned(), live_pool),
            ("maintenance".to_owned(), maintenance_pool),
        ]
        .into(),
        app_configs: [(
            "maintenance-desktop".to_owned(),
            DesiredAppConfig {
                pool: "maintenance".to_owned(),
                app_type: AppType::Desktop,
                protocol: Protocol::Rdp,
                admin_session: true,
                keep_credentials_on_destination_change: true,
                allow_destination_change: false,
                labels: Labels::new(),
            },
        )]
        .into(),
        app_instances: [(
            "admin-maintenance".to_owned(),
            DesiredAppInstance {
                app_config: "maintenance-desktop".to_owned(),
                assignee: Assignee::User("admin@corp.example".to_owned()),
                destination: Some("rds-02".to_owned()),
                labels: Labels::new(),
            },
        )]
        .into(),
        destinations: BTreeMap::new(),
    }
}

pub fn pool(name: &str, lb: LoadBalancing, member_names: &[&str], username: Option<&str>) -> Pool {
    Pool {
        name: name.to_owned(),
        load_balancing: lb,
        default_credentials: Credentials {
            username: username.map(str::to_owned),
            password_set: false,
        },
        labels: labels(),
        members: member_names.iter().map(|s| s.to_string()).collect(),
        revision: 3,
    }
}

/// The live state the runbook starts from; rds-02 online with 3 sessions
/// unless `rds02_online` is false.
pub fn live(rds02_online: bool) -> LiveState {
    LiveState {
        destinations: vec![
            dest("rds-01", true, 2),
            dest("rds-02", rds02_online, 3),
            dest("rds-03", true, 1),
        ],
        pools: vec![
            pool("live", live_lb(), &["rds-01", "rds-02", "rds-03"], None),
            pool(
                "maintenance",
                LoadBalancing::default(),
                &["rds-01", "rds-02", "rds-03"],
                Some("CORP\\svc-maint"),
            ),
        ],
        app_configs: vec![AppConfig {
            name: "maintenance-desktop".to_owned(),
            pool: "maintenance".to_owned(),
            app_type: AppType::Desktop,
            protocol: Protocol::Rdp,
            admin_session: true,
            keep_credentials_on_destination_change: true,
            allow_destination_change: false,
            labels: labels(),
            revision: 1,
        }],
        app_instances: vec![AppInstance {
            name: "admin-maintenance".to_owned(),
            app_config: "maintenance-desktop".to_owned(),
            user: Some("admin@corp.example".to_owned()),
            group: None,
            destination: Some("rds-02".to_owned()),
            labels: labels(),
            revision: 1,
        }],
    }
}

pub fn without_member(mut desired: Desired, pool: &str, member: &str) -> Desired {
    desired.pools.get_mut(pool).unwrap().members.remove(member);
    desired
}
