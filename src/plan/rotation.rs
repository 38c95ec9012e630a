//! Maintenance takes a server out of rotation. A destination the stack
//! declares in maintenance leaves every load-balanced pool of the stack
//! that lists it, while the config keeps listing it: the rule rewrites the
//! desired membership before the diff, so the removal (and, once
//! maintenance ends, the add) goes through the ordinary steps. Pools that
//! do not load-balance (the admins' way onto the server) keep it. The
//! pools it leaves are recorded with its maintenance on the broker, so
//! live state alone says where it belongs.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::diff::LiveIndex;
use super::{Op, Step, Violation};
use crate::contract::wire::Maintenance;
use crate::desired::Desired;

/// Why a step changes a membership, when the config's member list does not
/// say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The destination is in maintenance: out of rotation.
    Maintenance,
    /// The maintenance that took it out of rotation ended: back in.
    MaintenanceEnded,
}

/// The destinations maintenance takes out of rotation: those the stack
/// declares in maintenance, but for maintenance someone else switched on
/// exactly as declared, which the plan leaves theirs, consequences and all.
pub(super) struct Rotation<'a> {
    out: BTreeSet<&'a str>,
}

impl<'a> Rotation<'a> {
    pub(super) fn new(desired: &'a Desired, index: &LiveIndex) -> Rotation<'a> {
        let stack = desired.stack.as_str();
        let out = desired
            .destinations
            .iter()
            .filter(|(_, d)| d.maintenance.enabled)
            .filter(|(name, d)| {
                !index
                    .destinations
                    .get(name.as_str())
                    .is_some_and(|live| left_to_others(&d.maintenance, &live.maintenance, stack))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        Rotation { out }
    }

    /// Members the config lists in `pool` that maintenance takes out of
    /// it: none unless the pool load-balances.
    fn taken_out<'d>(&self, desired: &'d Desired, pool: &str) -> Vec<&'d str> {
        let Some(want) = desired.pools.get(pool).filter(|p| p.load_balancing.enabled) else {
            return Vec::new();
        };
        want.members
            .iter()
            .map(String::as_str)
            .filter(|m| self.out.contains(m))
            .collect()
    }

    /// The desired state the plan is computed from: `desired` as written
    /// when maintenance takes nothing out of a load-balanced pool
    /// (borrowed, so a large stack is not copied), otherwise a copy with
    /// those memberships taken out and each such destination's maintenance
    /// naming the pools.
    pub(super) fn effective(&self, desired: &'a Desired) -> Cow<'a, Desired> {
        // Nothing in maintenance (the usual case) changes no pool: no need
        // to look up each of them.
        if self.out.is_empty() {
            return Cow::Borrowed(desired);
        }
        let affected: Vec<(&String, Vec<&str>)> = desired
            .pools
            .keys()
            .map(|pool| (pool, self.taken_out(desired, pool)))
            .filter(|(_, out)| !out.is_empty())
            .collect();
        if affected.is_empty() {
            return Cow::Borrowed(desired);
        }
        let mut effective = desired.clone();
        for (pool, out) in affected {
            for destination in out {
                let want = effective.pools.get_mut(pool).expect("a declared pool");
                want.members.remove(destination);
                let d = effective
                    .destinations
                    .get_mut(destination)
                    .expect("a declared destination");
                d.maintenance.out_of_rotation.push(pool.clone());
            }
        }
        Cow::Owned(effective)
    }

    /// Marks the membership changes maintenance causes: a removal of a
    /// member the config lists (maintenance took it out), and an add to a
    /// pool the destination's maintenance took it out of (maintenance
    /// ended).
    pub(super) fn annotate(&self, steps: &mut [Step], desired: &Desired, index: &LiveIndex) {
        let stack = desired.stack.as_str();
        // The hosts this stack's maintenance took out of a pool, found in
        // one pass over the live list: nearly always none, and then no
        // step needs a lookup. Looked up per step instead (a pool by name
        // in the config for each removal, a live destination for each
        // add, each a few cache misses), a plan that moves 1M members
        // spent 0.37 s of 0.9 s between its facts and its violations.
        let taken_out_by_us: BTreeMap<&str, &[String]> = index
            .live
            .destinations
            .iter()
            .filter(|d| {
                d.maintenance.owner.as_deref() == Some(stack)
                    && !d.maintenance.out_of_rotation.is_empty()
            })
            .map(|d| (d.name.as_str(), d.maintenance.out_of_rotation.as_slice()))
            .collect();
        if self.out.is_empty() && taken_out_by_us.is_empty() {
            // Steps are made without a reason.
            return;
        }
        for step in steps {
            step.reason = match &step.op {
                Op::RemoveMember { pool, destination }
                    if !self.out.is_empty()
                        && self.taken_out(desired, pool).contains(&&**destination) =>
                {
                    Some(Reason::Maintenance)
                }
                Op::AddMember { pool, destination }
                    if taken_out_by_us
                        .get(&**destination)
                        .is_some_and(|pools| pools.iter().any(|p| p.as_str() == &**pool)) =>
                {
                    Some(Reason::MaintenanceEnded)
                }
                _ => None,
            };
        }
    }

    /// A `min_members` violation counts the members maintenance takes out
    /// of the pool as unavailable (they are gone from the membership the
    /// plan leaves) and names them.
    pub(super) fn name_unavailable(&self, violations: &mut [Violation], desired: &Desired) {
        for violation in violations {
            let Violation::MinMembers {
                pool,
                members_after,
                in_maintenance,
                ..
            } = violation
            else {
                continue;
            };
            for member in self.taken_out(desired, pool) {
                if !in_maintenance.iter().any(|m| m == member) {
                    in_maintenance.push(member.to_owned());
                    *members_after += 1;
                }
            }
            in_maintenance.sort();
        }
    }
}

/// Whether maintenance switched on by someone else is exactly what the
/// config declares, so the plan leaves it theirs.
fn left_to_others(want: &Maintenance, live: &Maintenance, stack: &str) -> bool {
    let bare = |m: &Maintenance| Maintenance {
        owner: None,
        out_of_rotation: Vec::new(),
        ..m.clone()
    };
    live.enabled && live.owner.as_deref() != Some(stack) && bare(want) == bare(live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::LiveState;
    use crate::desired::DesiredDestination;
    use crate::plan::fixtures::{STACK, live, steady, with_active_sessions};
    use crate::plan::{Targets, Violation, compute};

    fn in_maintenance_desired(names: &[&str]) -> Desired {
        let mut desired = steady();
        for name in names {
            desired.destinations.insert(
                (*name).to_owned(),
                DesiredDestination {
                    maintenance: Maintenance {
                        enabled: true,
                        ..Maintenance::default()
                    },
                },
            );
        }
        desired
    }

    fn steps(desired: &Desired, live: &LiveState) -> Vec<String> {
        compute(desired, live, &Targets::default())
            .expect("orders")
            .steps
            .iter()
            .map(|s| {
                let debug = format!("{:?}", s.op);
                let op = debug.split(' ').next().unwrap_or_default();
                let why = s.reason.map(|r| format!(" [{r:?}]")).unwrap_or_default();
                let destination = s.op.destination().unwrap_or("-");
                format!("{op} {destination}{why} after {:?}", s.depends_on)
            })
            .collect()
    }

    /// The live state once rds-02's maintenance took it out of `live`.
    fn rds02_out_of_rotation() -> LiveState {
        let mut state = live(true);
        state.pools[0].members.retain(|m| m != "rds-02");
        let rds02 = &mut state.destinations[1];
        rds02.lb_service_installed = false;
        rds02.maintenance = Maintenance {
            enabled: true,
            owner: Some(STACK.to_owned()),
            out_of_rotation: vec!["live".to_owned()],
            ..Maintenance::default()
        }
        .into();
        state
    }

    #[test]
    fn maintenance_takes_a_server_out_of_the_load_balanced_pool_only() {
        let desired = in_maintenance_desired(&["rds-02"]);
        let state = with_active_sessions(live(true), "rds-02", 2);
        assert_eq!(
            steps(&desired, &state),
            [
                "PutMaintenance rds-02 after []",
                "StopLogons rds-02 after [0]",
                "DrainSessions rds-02 after [1]",
                "ClearSticky rds-02 after [2]",
                "RemoveMember rds-02 [Maintenance] after [3]",
            ]
        );
        let plan = compute(&desired, &state, &Targets::default()).unwrap();
        let Op::PutMaintenance { maintenance, .. } = &plan.steps[0].op else {
            panic!("maintenance first");
        };
        assert_eq!(maintenance.out_of_rotation, ["live"]);
        assert_eq!(maintenance.owner.as_deref(), Some(STACK));
        assert!(
            plan.steps.iter().all(
                |s| !matches!(&s.op, Op::RemoveMember { pool, .. } if &**pool == "maintenance")
            ),
            "the admins' pool keeps it"
        );
        assert!(
            desired.pools["live"].members.contains("rds-02"),
            "the config still lists it"
        );
        assert!(
            steps(&desired, &rds02_out_of_rotation()).is_empty(),
            "once out, nothing more to do"
        );
    }

    /// Pools whose membership of rds-02 the plan of `desired` removes or adds.
    fn member_pools(desired: &Desired, state: &LiveState) -> (Vec<String>, Vec<String>) {
        let plan = compute(desired, state, &Targets::default()).expect("orders");
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        for step in &plan.steps {
            match &step.op {
                Op::RemoveMember { pool, .. } => removed.push(pool.to_string()),
                Op::AddMember { pool, .. } => added.push(pool.to_string()),
                _ => {}
            }
        }
        (removed, added)
    }

    /// Config validation admits a server to one load-balanced pool at a
    /// time; the rule itself takes it out of each one that lists it, and
    /// the revert puts it back into each.
    #[test]
    fn every_load_balanced_pool_listing_the_server_loses_it_and_gets_it_back() {
        let office = |pool: &mut crate::contract::wire::Pool| {
            pool.name = "office".to_owned();
            pool.members = vec!["rds-02".to_owned(), "rds-03".to_owned()];
        };
        let mut desired = in_maintenance_desired(&["rds-02"]);
        let mut wanted = desired.pools["live"].clone();
        wanted.members = ["rds-02".to_owned(), "rds-03".to_owned()].into();
        wanted.min_members = None;
        desired.pools.insert("office".to_owned(), wanted);
        let mut state = live(true);
        let mut second = state.pools[0].clone();
        office(&mut second);
        state.pools.push(second);
        assert_eq!(
            member_pools(&desired, &state),
            (vec!["live".to_owned(), "office".to_owned()], Vec::new())
        );
        let plan = compute(&desired, &state, &Targets::default()).unwrap();
        let Op::PutMaintenance { maintenance, .. } = &plan.steps[0].op else {
            panic!("maintenance first");
        };
        assert_eq!(maintenance.out_of_rotation, ["live", "office"]);

        let mut out = rds02_out_of_rotation();
        out.destinations[1].maintenance.out_of_rotation =
            vec!["live".to_owned(), "office".to_owned()];
        let mut second = out.pools[0].clone();
        office(&mut second);
        second.members.retain(|m| m != "rds-02");
        out.pools.push(second);
        assert_eq!(member_pools(&desired, &out), (Vec::new(), Vec::new()));
        desired.destinations.clear();
        assert_eq!(
            member_pools(&desired, &out),
            (Vec::new(), vec!["live".to_owned(), "office".to_owned()])
        );
    }

    #[test]
    fn reverting_maintenance_switches_it_off_before_the_server_rejoins() {
        let mut off = in_maintenance_desired(&["rds-02"]);
        off.destinations
            .get_mut("rds-02")
            .unwrap()
            .maintenance
            .enabled = false;
        for desired in [steady(), off] {
            assert_eq!(
                steps(&desired, &rds02_out_of_rotation()),
                [
                    "DeleteMaintenance rds-02 after []",
                    "AddMember rds-02 [MaintenanceEnded] after [0]",
                ]
            );
        }
    }

    #[test]
    fn maintenance_switched_on_by_hand_as_declared_stays_theirs_and_takes_nothing_out() {
        let desired = in_maintenance_desired(&["rds-02"]);
        let mut state = live(true);
        state.destinations[1].maintenance = Maintenance {
            enabled: true,
            ..Maintenance::default()
        }
        .into();
        assert!(steps(&desired, &state).is_empty());
        // Declared otherwise: the stack writes it, so it is the stack's.
        state.destinations[1].maintenance.notice_en = Some("by hand".to_owned());
        let planned = steps(&desired, &state);
        assert_eq!(planned[0], "PutMaintenance rds-02 after []");
        assert_eq!(
            planned.last().map(String::as_str),
            Some("RemoveMember rds-02 [Maintenance] after [3]")
        );
    }

    #[test]
    fn too_many_servers_in_maintenance_break_min_members_naming_them() {
        let desired = in_maintenance_desired(&["rds-02", "rds-03"]);
        let plan = compute(&desired, &live(true), &Targets::default()).unwrap();
        assert_eq!(
            plan.violations,
            [Violation::MinMembers {
                pool: "live".to_owned(),
                min_members: 2,
                available_after: 1,
                members_after: 3,
                offline: Vec::new(),
                in_maintenance: vec!["rds-02".to_owned(), "rds-03".to_owned()],
            }]
        );
    }

    #[test]
    fn without_maintenance_in_a_load_balanced_pool_the_config_is_used_as_written() {
        let state = live(true);
        let index = LiveIndex::new(&state);
        let borrowed = |desired: &Desired| {
            matches!(
                Rotation::new(desired, &index).effective(desired),
                Cow::Borrowed(_)
            )
        };
        assert!(borrowed(&steady()));
        let mut admins_only = in_maintenance_desired(&["rds-02"]);
        let live_pool = admins_only.pools.get_mut("live").unwrap();
        live_pool.members.remove("rds-02");
        assert!(borrowed(&admins_only));
        assert!(!borrowed(&in_maintenance_desired(&["rds-02"])));
    }
}
