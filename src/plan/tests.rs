//! Table tests for the plan: (desired, live) pairs and the expected step
//! list as readable strings, one `check` helper for all of them.

use proptest::prelude::*;
use secrecy::SecretString;

use super::fixtures::*;
use super::*;
use crate::address::Kind;
use crate::contract::labels::STACK_LABEL;
use crate::contract::wire::{Leftover, LoadBalancing, Maintenance};
use crate::desired::{
    Assignee, DesiredAppConfig, DesiredAppInstance, DesiredDestination, DesiredPool, Drain,
};
use crate::secret::{Secret, SecretSource};

fn describe(step: &Step) -> String {
    let text = match &step.op {
        Op::PutPool { pool, .. } => format!("put pool {pool}"),
        Op::AddMember { pool, destination } => format!("add {destination} to {pool}"),
        Op::AwaitNewMembers { pool } => format!("await new members of {pool}"),
        Op::PutAppConfig { app_config, .. } => format!("put app config {app_config}"),
        Op::PutAppInstance { app_instance, body } => {
            format!(
                "put app instance {app_instance} -> {}",
                body.destination.as_deref().unwrap_or("-")
            )
        }
        Op::PutMaintenance { destination, .. } => format!("maintenance on {destination}"),
        Op::DeleteMaintenance { destination } => format!("maintenance off {destination}"),
        Op::StopLogons { destination } => format!("stop logons {destination}"),
        Op::AllowLogons { destination } => format!("allow logons {destination}"),
        Op::DrainSessions {
            destination,
            policy,
            active_sessions,
            ..
        } => {
            format!("drain {destination} ({policy:?}, {active_sessions} active)")
        }
        Op::ClearSticky { pool, destination } => format!("clear sticky {pool}/{destination}"),
        Op::RemoveMember { pool, destination } => format!("remove {destination} from {pool}"),
        Op::RemoveLbService { destination } => format!("remove lb service {destination}"),
        Op::DeleteAppInstance { app_instance } => format!("delete app instance {app_instance}"),
        Op::DeleteAppConfig { app_config } => format!("delete app config {app_config}"),
        Op::DeletePool { pool } => format!("delete pool {pool}"),
    };
    let deps = if step.depends_on.is_empty() {
        String::new()
    } else {
        format!(" after {:?}", step.depends_on)
    };
    let warning = if step.expected_warning.is_some() {
        " [expected warning]"
    } else {
        ""
    };
    format!("{text}{deps}{warning}")
}

fn plan_of(desired: &Desired, live: &LiveState) -> Plan {
    compute(desired, live, &Targets::default()).expect("plan orders")
}

/// The plan's steps as readable strings.
fn described(plan: &Plan) -> Vec<String> {
    plan.steps.iter().map(describe).collect()
}

fn check(desired: &Desired, live: &LiveState, expected: &[&str]) -> Plan {
    let plan = plan_of(desired, live);
    let got = described(&plan);
    assert_eq!(got, expected, "steps of the plan");
    plan
}

#[test]
fn steady_state_plans_no_changes() {
    let plan = check(&steady(), &live(true), &[]);
    assert!(plan.changes.is_empty());
    assert!(plan.violations.is_empty());
}

#[test]
fn taking_out_an_online_server_drains_then_clears_sticky_then_removes() {
    let plan = check(
        &without_member(steady(), "live", "rds-02"),
        &with_active_sessions(live(true), "rds-02", 3),
        &[
            "stop logons rds-02",
            "drain rds-02 (Disconnect, 3 active) after [0]",
            "clear sticky live/rds-02 after [1]",
            "remove rds-02 from live after [2]",
        ],
    );
    assert_eq!(plan.counts(), (0, 1, 0));
    assert!(plan.violations.is_empty());
}

#[test]
fn taking_out_an_offline_server_skips_the_drain_and_expects_the_warning() {
    let plan = check(
        &without_member(steady(), "live", "rds-02"),
        &live(false),
        &[
            "stop logons rds-02",
            "clear sticky live/rds-02 after [0]",
            "remove rds-02 from live after [1] [expected warning]",
        ],
    );
    assert_eq!(
        plan.steps[2].expected_warning.as_deref(),
        Some(&ExpectedWarning::LbServiceUninstallFailed {
            destination: "rds-02".to_owned()
        })
    );
}

#[test]
fn putting_the_server_back_is_one_add() {
    let mut state = live(true);
    state.pools[0].members.retain(|m| m != "rds-02");
    check(&steady(), &state, &["add rds-02 to live"]);
}

#[test]
fn an_online_host_with_a_leftover_service_and_no_lb_pool_gets_a_cleanup() {
    let mut state = live(true);
    state.pools[0].members.retain(|m| m != "rds-02");
    let desired = without_member(steady(), "live", "rds-02");
    check(&desired, &state, &["remove lb service rds-02"]);
    // While the host is still offline nothing can be done.
    state.destinations[1].online = false;
    check(&desired, &state, &[]);
}

#[test]
fn a_server_without_sessions_needs_no_drain() {
    let mut state = live(true);
    state.destinations[1].sessions.active = 0;
    check(
        &without_member(steady(), "live", "rds-02"),
        &state,
        &[
            "stop logons rds-02",
            "clear sticky live/rds-02 after [0]",
            "remove rds-02 from live after [1]",
        ],
    );
}

#[test]
fn without_sticky_sessions_nothing_is_cleared() {
    let mut desired = without_member(steady(), "live", "rds-02");
    desired
        .pools
        .get_mut("live")
        .unwrap()
        .load_balancing
        .sticky_sessions_minutes = 0;
    let mut state = with_active_sessions(live(true), "rds-02", 3);
    state.pools[0].load_balancing.sticky_sessions_minutes = 0;
    check(
        &desired,
        &state,
        &[
            "stop logons rds-02",
            "drain rds-02 (Disconnect, 3 active) after [0]",
            "remove rds-02 from live after [1]",
        ],
    );
}

#[test]
fn members_are_added_before_others_are_removed() {
    let mut desired = without_member(steady(), "live", "rds-02");
    desired
        .pools
        .get_mut("live")
        .unwrap()
        .members
        .insert("rds-04".to_owned());
    let mut state = with_active_sessions(live(true), "rds-02", 3);
    state.destinations.push(dest("rds-04", true, 0));
    check(
        &desired,
        &state,
        &[
            "add rds-04 to live",
            "stop logons rds-02 after [0]",
            "drain rds-02 (Disconnect, 3 active) after [1]",
            "clear sticky live/rds-02 after [2]",
            "remove rds-02 from live after [3]",
        ],
    );
}

/// A load-balanced pool "big" whose `before` members are all replaced by
/// `after` new ones, all online and empty.
fn replacing_big(before: usize, after: usize) -> Plan {
    let old: Vec<String> = (0..before).map(|i| format!("old-{i:02}")).collect();
    let new: Vec<String> = (0..after).map(|i| format!("new-{i:02}")).collect();
    let mut desired = steady();
    let mut big = desired.pools["live"].clone();
    big.members = new.iter().cloned().collect();
    big.min_members = None;
    desired.pools.insert("big".to_owned(), big);
    let mut state = live(true);
    let old_names: Vec<&str> = old.iter().map(String::as_str).collect();
    state.pools.push(pool("big", live_lb(), &old_names, None));
    for name in old.iter().chain(&new) {
        state.destinations.push(dest(name, true, 0));
    }
    let plan = plan_of(&desired, &state);
    assert!(plan.violations.is_empty(), "{:?}", plan.violations);
    plan
}

/// Make before break holds against the least favourable schedule apply
/// could pick: every step of a removal as early as its dependencies let
/// it, every add as late. No removal from the pool starts before every
/// add to it is done, so the pool never has fewer members than before
/// the plan or after it.
#[test]
fn no_removal_from_a_replaced_pool_starts_before_every_add_is_done() {
    for (before, after) in [(3, 3), (5, 2), (2, 5), (12, 12)] {
        let plan = replacing_big(before, after);
        let steps = &plan.steps;
        let in_big = |s: &Step| &*s.cause.name == "big";
        let is_add = |s: &Step| matches!(s.op, Op::AddMember { .. });
        let mut done = vec![false; steps.len()];
        let (mut added, mut removed) = (0, 0);
        let mut fewest = before;
        while let Some(next) = {
            let ready = |s: &&Step| !done[s.id] && s.depends_on.iter().all(|&d| done[d]);
            let mut ready = steps.iter().filter(ready);
            let first = ready.clone().next();
            ready.find(|s| !is_add(s)).or(first)
        } {
            done[next.id] = true;
            if !in_big(next) {
                continue;
            }
            match next.op {
                Op::AddMember { .. } => added += 1,
                Op::RemoveMember { .. } => removed += 1,
                _ => {}
            }
            if !is_add(next) {
                assert_eq!(added, after, "{} before every add", describe(next));
            }
            fewest = fewest.min(before + added - removed);
        }
        assert_eq!((added, removed), (after, before));
        assert_eq!(fewest, before.min(after), "{before} -> {after}");
    }
}

/// A pool's removals wait for its adds through one step where that is
/// fewer dependencies than each waiting for every add, so a pool replaced
/// whole has dependencies linear in its size, not its square; a small
/// change keeps the direct ones.
#[test]
fn removals_wait_for_a_replaced_pools_adds_through_one_step() {
    let awaits = |plan: &Plan| {
        (plan.steps.iter())
            .filter(|s| matches!(s.op, Op::AwaitNewMembers { .. }))
            .map(|s| s.id)
            .collect::<Vec<_>>()
    };
    for (before, after) in [(1, 1), (2, 2), (1, 5), (5, 1)] {
        let plan = replacing_big(before, after);
        assert!(awaits(&plan).is_empty(), "{before} -> {after}");
    }
    for (before, after) in [(2, 3), (3, 2), (12, 12), (400, 400)] {
        let plan = replacing_big(before, after);
        let [join] = awaits(&plan)[..] else {
            panic!("{before} -> {after}: one wait, not {:?}", awaits(&plan));
        };
        let step = |op: fn(&Op) -> bool| plan.steps.iter().filter(move |s| op(&s.op));
        let adds: Vec<usize> = step(|op| matches!(op, Op::AddMember { .. }))
            .map(|s| s.id)
            .collect();
        assert_eq!(plan.steps[join].depends_on, adds, "{before} -> {after}");
        for head in step(|op| matches!(op, Op::StopLogons { .. })) {
            assert_eq!(head.depends_on, [join], "{}", describe(head));
        }
        let dependencies: usize = plan.steps.iter().map(|s| s.depends_on.len()).sum();
        assert!(dependencies <= 5 * (before + after), "{dependencies}");
    }
}

/// A plan keeps its changes until it is rendered; a change keeps no room
/// for fields it does not have (one or two where a list grown by pushing
/// has room for four).
#[test]
fn changes_keep_no_room_beyond_their_fields() {
    let mut desired = without_member(steady(), "live", "rds-02");
    let instance = desired.app_instances.values_mut().next().unwrap();
    instance.destination = None;
    let plan = plan_of(&desired, &live(true));
    let kinds: Vec<Kind> = plan.changes.iter().map(|c| c.address.kind).collect();
    assert!(
        kinds.contains(&Kind::Pool) && kinds.contains(&Kind::AppInstance),
        "{kinds:?}"
    );
    for change in &plan.changes {
        assert!(!change.fields.is_empty(), "{change:?}");
        assert_eq!(change.fields.capacity(), change.fields.len(), "{change:?}");
    }
}

#[test]
fn an_instance_is_retargeted_before_its_destination_leaves_the_pool() {
    let mut desired = without_member(steady(), "maintenance", "rds-02");
    desired
        .app_instances
        .get_mut("admin-maintenance")
        .unwrap()
        .destination = Some("rds-03".to_owned());
    check(
        &desired,
        &live(true),
        &[
            "put app instance admin-maintenance -> rds-03",
            "remove rds-02 from maintenance after [0]",
        ],
    );
}

#[test]
fn an_instance_moving_to_another_config_lets_go_of_its_host_first() {
    // Still pinned to rds-02, but through pool live now: rds-02 may leave
    // maintenance only once the instance no longer reaches it through there.
    let mut desired = without_member(steady(), "maintenance", "rds-02");
    let mut live_desktop = desired.app_configs["maintenance-desktop"].clone();
    live_desktop.pool = "live".to_owned();
    desired
        .app_configs
        .insert("live-desktop".to_owned(), live_desktop);
    desired
        .app_instances
        .get_mut("admin-maintenance")
        .unwrap()
        .app_config = "live-desktop".to_owned();
    check(
        &desired,
        &live(true),
        &[
            "put app config live-desktop",
            "put app instance admin-maintenance -> rds-02 after [0]",
            "remove rds-02 from maintenance after [1]",
        ],
    );
}

#[test]
fn creates_go_pool_then_members_then_config_then_instance() {
    let mut desired = steady();
    desired.pools.insert(
        "lab".to_owned(),
        DesiredPool {
            load_balancing: LoadBalancing::default(),
            username: None,
            password: None,
            members: members(&["rds-04"]),
            drain: Drain::default(),
            min_members: None,
            labels: Labels::new(),
        },
    );
    desired.app_configs.insert(
        "lab-desktop".to_owned(),
        DesiredAppConfig {
            pool: "lab".to_owned(),
            ..desired.app_configs["maintenance-desktop"].clone()
        },
    );
    desired.app_instances.insert(
        "lab-admin".to_owned(),
        DesiredAppInstance {
            app_config: "lab-desktop".to_owned(),
            assignee: Assignee::Group("lab-admins".to_owned()),
            destination: Some("rds-04".to_owned()),
            labels: Labels::new(),
        },
    );
    let mut state = live(true);
    let mut fresh = dest("rds-04", true, 0);
    fresh.lb_service_installed = false;
    state.destinations.push(fresh);
    let plan = check(
        &desired,
        &state,
        &[
            "put pool lab",
            "add rds-04 to lab after [0]",
            "put app config lab-desktop after [0]",
            "put app instance lab-admin -> rds-04 after [1, 2]",
        ],
    );
    assert_eq!(plan.counts(), (3, 0, 0));
}

#[test]
fn deletes_go_instance_then_config_then_pool() {
    let mut desired = steady();
    desired.app_instances.clear();
    desired.app_configs.clear();
    desired.pools.remove("maintenance");
    let mut state = live(true);
    state
        .destinations
        .iter_mut()
        .for_each(|d| d.sessions.active = 0);
    let plan = check(
        &desired,
        &state,
        &[
            "delete app instance admin-maintenance",
            "remove rds-01 from maintenance",
            "remove rds-02 from maintenance after [0]",
            "remove rds-03 from maintenance",
            "delete app config maintenance-desktop after [0]",
            "delete pool maintenance after [1, 2, 3, 4]",
        ],
    );
    assert_eq!(plan.counts(), (0, 0, 3));
}

#[test]
fn unowned_resources_are_counted_and_left_alone() {
    let mut state = live(true);
    let mut foreign = pool("legacy", live_lb(), &[], None);
    foreign.labels.clear();
    state.pools.push(foreign);
    let plan = check(&steady(), &state, &[]);
    assert_eq!(plan.unmanaged.pools, 1);
}

#[test]
fn a_declared_pool_owned_by_another_stack_is_a_violation() {
    let mut state = live(true);
    state.pools[1]
        .labels
        .insert(STACK_LABEL.to_owned(), "other".to_owned());
    let plan = plan_of(&steady(), &state);
    assert_eq!(
        plan.violations,
        vec![Violation::NotOwned {
            address: Address::new(Kind::Pool, "maintenance"),
            owner: Some("other".to_owned())
        }]
    );
}

#[test]
fn min_members_counts_offline_members_as_unavailable() {
    let desired = without_member(steady(), "live", "rds-02");
    let mut state = live(true);
    state.destinations[2].online = false;
    let plan = plan_of(&desired, &state);
    assert_eq!(
        plan.violations,
        vec![Violation::MinMembers {
            pool: "live".to_owned(),
            min_members: 2,
            available_after: 1,
            members_after: 2,
            offline: vec!["rds-03".to_owned()],
            in_maintenance: Vec::new(),
        }]
    );
}

#[test]
fn removing_the_last_member_of_a_pool_in_use_is_a_violation() {
    let mut desired = steady();
    desired
        .pools
        .get_mut("maintenance")
        .unwrap()
        .members
        .clear();
    desired
        .app_instances
        .get_mut("admin-maintenance")
        .unwrap()
        .destination = None;
    let plan = plan_of(&desired, &live(true));
    assert!(plan.violations.contains(&Violation::LastMemberInUse {
        pool: "maintenance".to_owned(),
        app_configs: vec!["maintenance-desktop".to_owned()],
    }));
}

#[test]
fn refuse_policy_with_active_sessions_is_a_violation_with_the_count() {
    let mut desired = without_member(steady(), "live", "rds-02");
    desired.pools.get_mut("live").unwrap().drain = Drain::default();
    let plan = plan_of(&desired, &with_active_sessions(live(true), "rds-02", 3));
    assert_eq!(
        plan.violations,
        vec![Violation::DrainRefused {
            pool: "live".to_owned(),
            destination: "rds-02".to_owned(),
            active_sessions: 3
        }]
    );
}

/// The rules run in two parts, the refused drains after the steps are
/// ordered and the others meanwhile; the plan document lists the findings
/// in one order whatever finishes first.
#[test]
fn findings_are_listed_members_then_drains_then_the_delete_limit() {
    let mut desired = without_member(steady(), "live", "rds-02");
    desired.pools.get_mut("live").unwrap().drain = Drain::default();
    let maintenance = desired.pools.get_mut("maintenance").unwrap();
    maintenance.members.insert("ghost".to_owned());
    let state = with_ten_old_pools(with_active_sessions(live(true), "rds-02", 3));
    let plan = plan_of(&desired, &state);
    assert_eq!(
        plan.violations,
        vec![
            Violation::UnknownDestination {
                pool: Some("maintenance".to_owned()),
                destination: "ghost".to_owned(),
            },
            Violation::DrainRefused {
                pool: "live".to_owned(),
                destination: "rds-02".to_owned(),
                active_sessions: 3
            },
            Violation::DeleteLimit {
                deletes: 10,
                managed: 14,
                max_delete_percent: 30
            },
        ]
    );
}

#[test]
fn unknown_and_unready_destinations_are_violations() {
    let mut desired = steady();
    let live_pool = desired.pools.get_mut("live").unwrap();
    live_pool.members.insert("rds-09".to_owned());
    live_pool.members.insert("rds-04".to_owned());
    desired.destinations.insert(
        "rds-77".to_owned(),
        DesiredDestination {
            maintenance: Maintenance {
                enabled: true,
                ..Default::default()
            },
        },
    );
    let mut state = live(true);
    let mut not_ready = dest("rds-04", true, 0);
    not_ready.process_execution_ready = false;
    state.destinations.push(not_ready);
    let plan = plan_of(&desired, &state);
    assert_eq!(
        plan.violations,
        vec![
            Violation::UnknownDestination {
                pool: None,
                destination: "rds-77".to_owned()
            },
            Violation::DestinationNotReady {
                pool: "live".to_owned(),
                destination: "rds-04".to_owned()
            },
            Violation::UnknownDestination {
                pool: Some("live".to_owned()),
                destination: "rds-09".to_owned()
            },
        ]
    );
}

#[test]
fn joining_a_second_load_balanced_pool_is_a_violation() {
    let mut desired = steady();
    desired.pools.insert(
        "live-b".to_owned(),
        DesiredPool {
            members: members(&["rds-01"]),
            ..desired.pools["live"].clone()
        },
    );
    let plan = plan_of(&desired, &live(true));
    assert!(plan.violations.contains(&Violation::LoadBalancedElsewhere {
        pool: "live-b".to_owned(),
        destination: "rds-01".to_owned(),
        other_pool: "live".to_owned(),
    }));
}

/// `live-b`, a new load-balanced pool with rds-01, and `live` load-balancing
/// after the plan as `live_balances` says (it does live).
fn rds01_joining_live_b(live_balances: bool) -> Desired {
    let mut desired = steady();
    let live = desired.pools.get_mut("live").expect("declared");
    live.load_balancing.enabled = live_balances;
    let live_b = DesiredPool {
        members: members(&["rds-01"]),
        load_balancing: LoadBalancing {
            enabled: true,
            ..live.load_balancing
        },
        ..live.clone()
    };
    desired.pools.insert("live-b".to_owned(), live_b);
    desired
}

fn load_balanced_elsewhere(plan: &Plan) -> Vec<&Violation> {
    plan.violations
        .iter()
        .filter(|v| matches!(v, Violation::LoadBalancedElsewhere { .. }))
        .collect()
}

#[test]
fn a_pool_that_stops_load_balancing_in_the_same_plan_frees_its_members() {
    let plan = plan_of(&rds01_joining_live_b(false), &live(true));
    assert!(plan.changes.iter().any(|c| &*c.address.name == "live"));
    assert_eq!(load_balanced_elsewhere(&plan), Vec::<&Violation>::new());
}

#[test]
fn a_pool_that_starts_load_balancing_in_the_same_plan_holds_its_members() {
    let mut state = live(true);
    state.pools[0].load_balancing.enabled = false;
    let plan = plan_of(&rds01_joining_live_b(true), &state);
    assert_eq!(
        load_balanced_elsewhere(&plan),
        [&Violation::LoadBalancedElsewhere {
            pool: "live-b".to_owned(),
            destination: "rds-01".to_owned(),
            other_pool: "live".to_owned(),
        }]
    );
}

/// rds-02 leaves `live` for a new load-balanced pool `live-b`.
fn rds02_moving_to_live_b() -> Desired {
    let mut desired = without_member(steady(), "live", "rds-02");
    desired.pools.insert(
        "live-b".to_owned(),
        DesiredPool {
            members: members(&["rds-02"]),
            min_members: None,
            ..desired.pools["live"].clone()
        },
    );
    desired
}

#[test]
fn a_server_moving_between_load_balanced_pools_leaves_the_old_one_first() {
    // The one exception to make-before-break: the broker admits a destination
    // to one load-balanced pool at a time, so the add must wait for the
    // removal (and its drain), and it is no violation.
    let desired = rds02_moving_to_live_b();
    let plan = check(
        &desired,
        &with_active_sessions(live(true), "rds-02", 3),
        &[
            "put pool live-b",
            "stop logons rds-02",
            "drain rds-02 (Disconnect, 3 active) after [1]",
            "clear sticky live/rds-02 after [2]",
            "remove rds-02 from live after [3]",
            "add rds-02 to live-b after [0, 4]",
        ],
    );
    assert!(plan.violations.is_empty(), "{:?}", plan.violations);
}

#[test]
fn a_server_leaving_two_load_balanced_pools_joins_another_after_both() {
    // A broker admits a destination to one load-balanced pool at a time,
    // but a live state read elsewhere may have it in two: the add waits
    // for each removal, not only for the one found first.
    let mut state = live(true);
    let lb = state.pools.iter().find(|p| p.name == "live").unwrap();
    let lb = lb.load_balancing;
    state.pools.push(pool("live-c", lb, &["rds-02"], None));
    let mut desired = rds02_moving_to_live_b();
    let emptied = DesiredPool {
        members: members(&[]),
        min_members: None,
        ..desired.pools["live"].clone()
    };
    desired.pools.insert("live-c".to_owned(), emptied);
    let plan = plan_of(&desired, &state);
    let step = |wanted: &dyn Fn(&Op) -> bool| {
        let found = plan.steps.iter().find(|s| wanted(&s.op));
        found.unwrap_or_else(|| panic!("{:?}", described(&plan))).id
    };
    let removal =
        |from: &str| step(&|op| matches!(op, Op::RemoveMember { pool, .. } if &**pool == from));
    let add = step(&|op| matches!(op, Op::AddMember { pool, .. } if &**pool == "live-b"));
    let (from_live, from_c) = (removal("live"), removal("live-c"));
    let depends_on = &plan.steps[add].depends_on;
    assert!(
        depends_on.contains(&from_live) && depends_on.contains(&from_c),
        "{:?}",
        described(&plan)
    );
}

/// `state` with ten empty pools of the stack that no config declares: 10
/// deletes of 14 managed resources, over the default delete limit.
fn with_ten_old_pools(mut state: LiveState) -> LiveState {
    for i in 0..10 {
        let old = pool(&format!("old-{i}"), LoadBalancing::default(), &[], None);
        state.pools.push(old);
    }
    state
}

#[test]
fn deleting_too_much_is_a_violation() {
    let plan = plan_of(&steady(), &with_ten_old_pools(live(true)));
    assert_eq!(
        plan.violations,
        vec![Violation::DeleteLimit {
            deletes: 10,
            managed: 14,
            max_delete_percent: 30
        }]
    );
}

#[test]
fn maintenance_mode_is_switched_on_before_the_drain() {
    let mut desired = without_member(steady(), "live", "rds-02");
    let maintenance = Maintenance {
        enabled: true,
        notice_en: Some("Patching until 14:00".to_owned()),
        ..Default::default()
    };
    desired
        .destinations
        .insert("rds-02".to_owned(), DesiredDestination { maintenance });
    check(
        &desired,
        &with_active_sessions(live(true), "rds-02", 3),
        &[
            "maintenance on rds-02",
            "stop logons rds-02 after [0]",
            "drain rds-02 (Disconnect, 3 active) after [1]",
            "clear sticky live/rds-02 after [2]",
            "remove rds-02 from live after [3]",
        ],
    );
}

#[test]
fn a_password_is_planned_by_source_and_compared_by_fingerprint() {
    let mut desired = steady();
    let secret = Secret {
        source: SecretSource::Env("MAINT_PASSWORD".to_owned()),
        value: SecretString::from("hunter2"),
    };
    desired.pools.get_mut("maintenance").unwrap().password = Some(secret);
    let mut state = live(true);
    let plan = check(&desired, &state, &["put pool maintenance"]);
    let json = serde_json::to_string(&plan).unwrap();
    assert!(!json.contains("hunter2"));
    assert!(json.contains("MAINT_PASSWORD"));
    assert!(
        plan.changes[0]
            .fields
            .iter()
            .any(|f| f.sensitive && f.before.is_none() && f.after.is_none())
    );

    state.pools[1].default_credentials.password_set = true;
    state.pools[1].labels.insert(
        crate::contract::labels::password_fingerprint(),
        crate::secret::fingerprint("hunter2"),
    );
    check(&desired, &state, &[]);
    state.pools[1].labels.insert(
        crate::contract::labels::password_fingerprint(),
        crate::secret::fingerprint("old-password"),
    );
    check(&desired, &state, &["put pool maintenance"]);
    // A label from before Argon2id (salted SHA-256) cannot vouch for the
    // password: the password is written once more, with a new label.
    state.pools[1].labels.insert(
        crate::contract::labels::password_fingerprint(),
        "s4lt:2bf23be11234554e6127f2c070edbbb7f10d4c27873cc51e13f72d9704897454".to_owned(),
    );
    check(&desired, &state, &["put pool maintenance"]);
}

#[test]
fn a_target_restricts_the_plan() {
    let mut desired = without_member(steady(), "live", "rds-02");
    desired
        .app_instances
        .get_mut("admin-maintenance")
        .unwrap()
        .destination = Some("rds-03".to_owned());
    let targets = Targets(vec![Address::new(Kind::AppInstance, "admin-maintenance")]);
    let plan = compute(&desired, &live(true), &targets).unwrap();
    let got = described(&plan);
    assert_eq!(got, ["put app instance admin-maintenance -> rds-03"]);
    let targets = Targets(vec![Address::new(Kind::Destination, "rds-02")]);
    let plan = compute(&desired, &live(true), &targets).unwrap();
    assert_eq!(plan.steps.len(), 4);
}

#[test]
fn the_checksum_covers_the_plan() {
    let plan = plan_of(&without_member(steady(), "live", "rds-02"), &live(true));
    assert_eq!(plan.checksum, checksum(&plan));
    assert_eq!(plan.verify(), Ok(()));
    let mut tampered = plan.clone();
    tampered.steps.pop();
    assert_eq!(tampered.verify(), Err(SavedPlanError::Checksum));
    let mut future = plan.clone();
    future.format_version = FORMAT_VERSION + 1;
    assert_eq!(
        future.verify(),
        Err(SavedPlanError::Version {
            found: FORMAT_VERSION + 1
        })
    );
}

proptest! {
    #[test]
    fn the_plan_does_not_depend_on_the_order_live_state_lists_in(seed in any::<u64>()) {
        let mut desired = without_member(steady(), "live", "rds-02");
        // Checking a password fingerprint costs a memory-hard hash per plan,
        // and order independence has nothing to do with passwords.
        desired.pools.get_mut("maintenance").expect("declared").password = None;
        let reference = serde_json::to_vec(&plan_of(&desired, &live(true))).unwrap();
        let mut state = live(true);
        let mut rng = seed;
        let mut shuffle = |n: usize| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 33) as usize % n.max(1)
        };
        for i in (1..state.destinations.len()).rev() { let j = shuffle(i + 1); state.destinations.swap(i, j); }
        for i in (1..state.pools.len()).rev() { let j = shuffle(i + 1); state.pools.swap(i, j); }
        for pool in &mut state.pools {
            for i in (1..pool.members.len()).rev() { let j = shuffle(i + 1); pool.members.swap(i, j); }
        }
        prop_assert_eq!(serde_json::to_vec(&plan_of(&desired, &state)).unwrap(), reference);
    }
}

#[test]
fn the_plan_schema_describes_steps_by_op() {
    let schema = serde_json::to_value(json_schema()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let text = schema.to_string();
    for op in [
        "drain_sessions",
        "clear_sticky",
        "remove_member",
        "lb_service_uninstall_failed",
    ] {
        assert!(text.contains(op), "schema lacks {op}");
    }
}

fn facts(plan: &Plan) -> Vec<Vec<Fact>> {
    plan.steps.iter().map(|s| s.preconditions.clone()).collect()
}

fn online(destination: &str, online: bool) -> Fact {
    Fact::Online {
        destination: destination.into(),
        online,
    }
}

fn at_most(destination: &str, at_most: u32) -> Fact {
    Fact::ActiveSessions {
        destination: destination.into(),
        at_most,
    }
}

#[test]
fn a_removal_records_the_host_as_planned_online_or_offline() {
    let desired = without_member(steady(), "live", "rds-02");
    let plan = plan_of(&desired, &with_active_sessions(live(true), "rds-02", 3));
    assert_eq!(
        facts(&plan),
        [
            // Stop logons and drain: the host as planned.
            vec![online("rds-02", true), at_most("rds-02", 3)],
            vec![online("rds-02", true), at_most("rds-02", 3)],
            vec![],
            // The drain before it emptied the host, and nobody new logged on.
            vec![online("rds-02", true), at_most("rds-02", 0)],
        ]
    );
    let plan = plan_of(&desired, &live(false));
    assert_eq!(
        facts(&plan),
        [
            vec![online("rds-02", false)],
            vec![],
            vec![online("rds-02", false)]
        ]
    );
}

#[test]
fn writes_of_whole_resources_record_the_revision_they_replace() {
    let mut desired = steady();
    desired
        .pools
        .get_mut("live")
        .unwrap()
        .load_balancing
        .grace_period_seconds = 99;
    desired.pools.get_mut("maintenance").unwrap().members = members(&["rds-01", "rds-03"]);
    desired
        .app_instances
        .get_mut("admin-maintenance")
        .unwrap()
        .destination = Some("rds-01".to_owned());
    let plan = plan_of(&desired, &live(true));
    let revision = |kind, name: &str| {
        let address = Address::new(kind, name);
        let live = live(true);
        let revision = match kind {
            Kind::Pool => live
                .pools
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.revision),
            _ => live
                .app_instances
                .iter()
                .find(|i| i.name == name)
                .map(|i| i.revision),
        };
        Fact::Revision {
            address: Box::new(address),
            revision,
        }
    };
    let found: Vec<(String, Vec<Fact>)> = plan
        .steps
        .iter()
        .map(|s| (describe(s), s.preconditions.clone()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "put pool live".to_owned(),
                vec![revision(Kind::Pool, "live")]
            ),
            (
                "put app instance admin-maintenance -> rds-01".to_owned(),
                vec![revision(Kind::AppInstance, "admin-maintenance")]
            ),
            (
                "remove rds-02 from maintenance after [1]".to_owned(),
                vec![],
            ),
        ]
    );
}

#[test]
fn adding_an_offline_host_to_a_load_balanced_pool_is_a_violation_force_cannot_override() {
    let mut state = live(false);
    state.pools[0].members.retain(|m| m != "rds-02");
    let plan = plan_of(&steady(), &state);
    let offline = Violation::DestinationOffline {
        pool: "live".to_owned(),
        destination: "rds-02".to_owned(),
    };
    assert_eq!(plan.violations, std::slice::from_ref(&offline));
    assert!(!offline.can_be_overridden());
    let forced = plan.clone().force();
    assert_eq!(forced.overridden(true).count(), 0);
    assert_eq!(forced.blocking(true).collect::<Vec<_>>(), [&offline]);
    assert_eq!(
        facts(&plan),
        [vec![
            online("rds-02", true),
            Fact::Ready {
                destination: "rds-02".into()
            },
            Fact::NotLoadBalancedElsewhere {
                destination: "rds-02".into(),
                pool: "live".into()
            },
        ]]
    );
}

#[test]
fn a_move_whose_add_cannot_complete_is_refused_as_a_whole() {
    let desired = rds02_moving_to_live_b();
    let plan = plan_of(&desired, &live(false));
    let blocking: Vec<&Violation> = plan.blocking(true).collect();
    assert_eq!(
        blocking,
        [&Violation::DestinationOffline {
            pool: "live-b".to_owned(),
            destination: "rds-02".to_owned(),
        }],
        "even forced, the removal from live is not applied without the add"
    );
}

#[test]
fn a_forced_plan_overrides_only_what_can_be_overridden_and_says_so() {
    let desired = without_member(steady(), "live", "rds-02");
    let mut state = live(true);
    state.destinations[2].online = false;
    let plan = plan_of(&desired, &state);
    assert!(matches!(
        plan.violations[..],
        [Violation::MinMembers { .. }]
    ));
    assert_eq!(plan.blocking(false).count(), 1);
    assert_eq!(plan.overridden(false).count(), 0);
    let forced = plan.force();
    assert!(forced.forced);
    assert_eq!(forced.verify(), Ok(()), "forcing seals the plan again");
    assert_eq!(forced.blocking(false).count(), 0);
    assert_eq!(
        forced.overridden(false).map(|(i, _)| i).collect::<Vec<_>>(),
        [0]
    );
}

#[test]
fn min_members_names_members_in_maintenance_as_unavailable() {
    let mut desired = without_member(steady(), "live", "rds-02");
    desired.destinations.insert(
        "rds-03".to_owned(),
        DesiredDestination {
            maintenance: Maintenance {
                enabled: true,
                ..Default::default()
            },
        },
    );
    let plan = plan_of(&desired, &live(true));
    assert!(plan.violations.contains(&Violation::MinMembers {
        pool: "live".to_owned(),
        min_members: 2,
        available_after: 1,
        members_after: 2,
        offline: Vec::new(),
        in_maintenance: vec!["rds-03".to_owned()],
    }));
}

#[test]
fn the_plan_records_its_targets() {
    let targets = Targets(vec![
        Address::new(Kind::Pool, "live"),
        Address::new(Kind::Destination, "rds-02"),
        Address::new(Kind::Pool, "live"),
    ]);
    let plan = compute(&steady(), &live(true), &targets).unwrap();
    assert_eq!(
        plan.targets,
        [
            Address::new(Kind::Pool, "live"),
            Address::new(Kind::Destination, "rds-02")
        ],
        "sorted by address, each once"
    );
}

#[test]
fn fields_going_from_or_to_nothing_read_back_with_a_matching_checksum() {
    let mut desired = steady();
    desired
        .app_instances
        .get_mut("admin-maintenance")
        .unwrap()
        .destination = None;
    desired.pools.get_mut("live").unwrap().username = Some("CORP\\svc".to_owned());
    desired.destinations.insert(
        "rds-03".to_owned(),
        DesiredDestination {
            maintenance: Maintenance {
                enabled: true,
                notice_en: Some("Patching".to_owned()),
                ..Default::default()
            },
        },
    );
    let plan = plan_of(&desired, &live(true));
    let nulls = plan
        .changes
        .iter()
        .flat_map(|c| &c.fields)
        .filter(|f| {
            f.before == Some(serde_json::Value::Null.into())
                || f.after == Some(serde_json::Value::Null.into())
        })
        .count();
    assert!(nulls >= 3, "{:#?}", plan.changes);
    let saved = serde_json::to_vec_pretty(&plan).unwrap();
    assert_eq!(read_saved(&saved), Ok(plan));
}

fn maintenance_on(owner: Option<&str>) -> Maintenance {
    Maintenance {
        enabled: true,
        notice_en: Some("Patching".to_owned()),
        owner: owner.map(str::to_owned),
        ..Maintenance::default()
    }
}

#[test]
fn maintenance_a_stack_switched_on_goes_off_when_its_config_no_longer_declares_it() {
    let mut state = live(true);
    state.destinations[0].maintenance = maintenance_on(Some(STACK)).into();
    state.destinations[1].maintenance = maintenance_on(None).into();
    state.destinations[2].maintenance = maintenance_on(Some("other-stack")).into();
    let plan = check(&steady(), &state, &["maintenance off rds-01"]);
    let owner = plan.changes[0]
        .fields
        .iter()
        .find(|f| f.field == Field::MaintenanceOwner)
        .expect("the owner goes");
    assert_eq!(
        (owner.before.clone(), owner.after.clone()),
        (
            Some(serde_json::json!(STACK).into()),
            Some(serde_json::Value::Null.into())
        )
    );
    assert_eq!(
        plan.steps[0].preconditions,
        [Fact::Maintenance {
            destination: "rds-01".into(),
            enabled: true,
            owner: Some(STACK.into()),
        }]
    );
}

/// rds-03 in no load-balanced pool: maintenance switches nothing but
/// itself (taking a server out of rotation is tested below).
fn rds03_outside_live() -> (Desired, LiveState) {
    let desired = without_member(steady(), "live", "rds-03");
    let mut state = live(true);
    state.pools[0].members.retain(|m| m != "rds-03");
    state.destinations[2].lb_service_installed = false;
    (desired, state)
}

#[test]
fn declared_maintenance_is_switched_on_as_the_stacks() {
    let (mut desired, outside) = rds03_outside_live();
    desired.destinations.insert(
        "rds-03".to_owned(),
        DesiredDestination {
            maintenance: maintenance_on(None),
        },
    );
    let plan = check(&desired, &outside, &["maintenance on rds-03"]);
    let Op::PutMaintenance { maintenance, .. } = &plan.steps[0].op else {
        panic!("a maintenance write")
    };
    assert_eq!(maintenance.owner.as_deref(), Some(STACK));
    let mut state = outside;
    state.destinations[2].maintenance = maintenance_on(Some(STACK)).into();
    check(&desired, &state, &[]);
    // As declared, but switched on by hand: left as it is, and not taken over.
    state.destinations[2].maintenance = maintenance_on(None).into();
    check(&desired, &state, &[]);
}

#[test]
fn drain_mode_this_stack_left_behind_ends_unless_the_host_leaves_after_all() {
    let mut state = live(true);
    state.destinations[1].draining = Some(STACK.to_owned());
    state.destinations[2].draining = Some("someone".to_owned());
    let plan = check(&steady(), &state, &["allow logons rds-02"]);
    assert_eq!(
        plan.changes[0].address,
        Address::new(Kind::Destination, "rds-02")
    );
    assert_eq!(plan.changes[0].fields[0].field, Field::Draining);
    // Taken out after all: drain mode stays on and the removal goes on.
    let plan = plan_of(&without_member(steady(), "live", "rds-02"), &state);
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s.op, Op::AllowLogons { .. }))
    );
}

#[test]
fn a_leftover_of_this_stacks_pool_is_removed_whatever_pools_the_host_is_in_now() {
    let mut state = live(true);
    let mut desired = steady();
    for pool in desired.pools.values_mut() {
        pool.members.remove("rds-02");
    }
    desired.app_instances.clear();
    desired.app_configs.clear();
    for pool in &mut state.pools {
        pool.members.retain(|m| m != "rds-02");
    }
    state.app_instances.clear();
    state.app_configs.clear();
    state.destinations[1].lb_service_leftover = Some(Box::new(Leftover {
        pool: "live".to_owned(),
        owner: Some(STACK.to_owned()),
    }));
    check(&desired, &state, &["remove lb service rds-02"]);
    // Another stack's leftover on a host this stack has nothing to do with
    // is left to that stack.
    state.destinations[1].lb_service_leftover = Some(Box::new(Leftover {
        pool: "batch".to_owned(),
        owner: Some("batch-stack".to_owned()),
    }));
    check(&desired, &state, &[]);
}

/// A member that leaves a pool while the pool does not load-balance yet
/// (it is switched on in the same plan) keeps its service: the removal
/// uninstalls nothing, so a cleanup follows, found through that pool alone
/// when the host is in no other pool of the stack.
#[test]
fn leaving_a_pool_that_starts_load_balancing_leaves_a_cleanup() {
    let mut desired = steady();
    desired.pools.remove("maintenance");
    desired.app_configs.clear();
    desired.app_instances.clear();
    let desired = without_member(desired, "live", "rds-02");
    let mut state = live(true);
    state.pools.retain(|p| p.name == "live");
    state.app_configs.clear();
    state.app_instances.clear();
    state.pools[0].load_balancing.enabled = false;
    let steps = described(&plan_of(&desired, &state));
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("remove lb service rds-02")),
        "{steps:?}"
    );
    // Leaving it while it load-balances uninstalls the service already.
    state.pools[0].load_balancing.enabled = true;
    let steps = described(&plan_of(&desired, &state));
    assert!(!steps.iter().any(|s| s.contains("lb service")), "{steps:?}");
    // Untouched hosts of a pool that keeps load-balancing need no cleanup.
    assert!(!steps.iter().any(|s| s.contains("rds-01")), "{steps:?}");
}

#[test]
fn a_step_is_sized_for_a_member_change_not_for_pool_settings() {
    // Plans of millions of steps are mostly member changes of two names:
    // the rare large payloads are boxed (see `Op`, `Step::expected_warning`),
    // and names are shared, one pointer each (see `Name`).
    assert_eq!(std::mem::size_of::<Op>(), 48);
    assert_eq!(std::mem::size_of::<Step>(), 136);
    assert_eq!(std::mem::size_of::<Fact>(), 32);
}

#[test]
fn a_removal_chain_and_its_facts_share_one_name_per_member_and_pool() {
    // See `Name`: a plan of 1M members would otherwise hold 24M copies.
    // The steps' causes (their pool) share the pool's name too.
    let plan = plan_of(
        &without_member(steady(), "live", "rds-02"),
        &with_active_sessions(live(true), "rds-02", 3),
    );
    let mut members: Vec<&Name> = Vec::new();
    let mut pools: Vec<&Name> = Vec::new();
    for step in &plan.steps {
        if matches!(step.op, Op::StopLogons { .. } | Op::RemoveMember { .. }) {
            pools.push(&step.cause.name);
        }
        match &step.op {
            Op::StopLogons { destination } => members.push(destination),
            Op::DrainSessions {
                pool, destination, ..
            }
            | Op::ClearSticky { pool, destination }
            | Op::RemoveMember { pool, destination } => {
                members.push(destination);
                pools.push(pool);
            }
            _ => {}
        }
        for fact in &step.preconditions {
            match fact {
                Fact::Online { destination, .. } | Fact::ActiveSessions { destination, .. } => {
                    members.push(destination)
                }
                _ => {}
            }
        }
    }
    // Logons stopped, drain, sticky bindings, removal; and the facts of
    // three. The pool's name in three operations and two causes.
    assert_eq!((members.len(), pools.len()), (10, 5), "{:?}", plan.steps);
    assert!(
        members
            .iter()
            .all(|m| &***m == "rds-02" && Name::ptr_eq(m, members[0]))
    );
    assert!(
        pools
            .iter()
            .all(|p| &***p == "live" && Name::ptr_eq(p, pools[0]))
    );
}
