//! The human words for plan data: one sentence per step, violation and
//! expected warning, shared by every rendering so that text, markdown and
//! apply reports say the same thing the same way.

use std::fmt;

use crate::apply::{Changed, Seen};
use crate::contract::labels::RESERVED_PREFIX;
use crate::contract::wire::Destination;
use crate::desired::DrainSessions;
use crate::plan::{ExpectedWarning, Fact, Field, Op, Plan, Reason, Step, Violation};

/// `90` -> `1m30s`, `900` -> `15m`.
pub fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// "1 session", "2 sessions".
pub fn count(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "notified 3 users".
pub fn notified(users: u32) -> String {
    format!("notified {}", count(users, "user", "users"))
}

/// "disconnected 4 sessions".
pub fn disconnected(sessions: u32) -> String {
    format!("disconnected {}", count(sessions, "session", "sessions"))
}

pub fn step(op: &Op) -> String {
    match op {
        Op::PutPool { pool, .. } => format!("write settings of pool {pool}"),
        Op::AddMember { pool, destination } => format!("add {destination} to pool {pool}"),
        Op::AwaitNewMembers { pool } => {
            format!("wait until the new members of pool {pool} are in (no broker call)")
        }
        Op::PutAppConfig { app_config, .. } => format!("write app config {app_config}"),
        Op::PutAppInstance { app_instance, body } => match &body.destination {
            Some(d) => format!("write app instance {app_instance} (destination {d})"),
            None => format!("write app instance {app_instance}"),
        },
        Op::PutMaintenance { destination, .. } => {
            format!("switch on maintenance mode of {destination}")
        }
        Op::DeleteMaintenance { destination } => {
            format!("switch off maintenance mode of {destination}")
        }
        Op::StopLogons { destination } => format!("stop new logons on {destination}"),
        Op::AllowLogons { destination } => format!("allow new logons on {destination} again"),
        Op::DrainSessions {
            destination,
            active_sessions,
            notice: Some(notice),
            ..
        } => format!(
            "notify {} on {destination}, wait up to {}, then disconnect the rest",
            count(*active_sessions, "user", "users"),
            duration(notice.lead_time_seconds)
        ),
        Op::DrainSessions {
            destination,
            policy,
            timeout_seconds,
            active_sessions,
            ..
        } => {
            let sessions = count(*active_sessions, "active session", "active sessions");
            let within = timeout_seconds
                .map(|t| format!(", up to {}", duration(t)))
                .unwrap_or_default();
            match policy {
                DrainSessions::Disconnect => {
                    format!("drain {destination}: disconnect {sessions}{within}")
                }
                DrainSessions::Wait => {
                    format!("drain {destination}: wait for {sessions} to end{within}")
                }
                DrainSessions::Refuse => {
                    format!("drain {destination}: refuse while {sessions} remain")
                }
            }
        }
        Op::ClearSticky { pool, destination } => {
            format!("clear sticky bindings of pool {pool} that point to {destination}")
        }
        Op::RemoveMember { pool, destination } => format!("remove {destination} from pool {pool}"),
        Op::RemoveLbService { destination } => {
            format!("remove the leftover load-balancing service from {destination}")
        }
        Op::DeleteAppInstance { app_instance } => format!("delete app instance {app_instance}"),
        Op::DeleteAppConfig { app_config } => format!("delete app config {app_config}"),
        Op::DeletePool { pool } => format!("delete pool {pool}"),
    }
}

/// Why a step changes a membership the config's member list does not:
/// "rds-02 out of rotation: maintenance".
pub fn reason(step: &Step) -> Option<String> {
    let destination = step.op.destination()?;
    Some(match step.reason? {
        Reason::Maintenance => format!("{destination} out of rotation: maintenance"),
        Reason::MaintenanceEnded => {
            format!("{destination} back in rotation: maintenance ended")
        }
    })
}

pub fn expected_warning(warning: &ExpectedWarning) -> String {
    match warning {
        ExpectedWarning::LbServiceUninstallFailed { destination } => format!(
            "expected warning: load-balancing service cannot be uninstalled while {destination} is offline; \
             it stays installed until the host is back online, and the first plan of this stack after that \
             removes it, unless the host is in a load-balanced pool again"
        ),
    }
}

pub fn violation(v: &Violation) -> String {
    match v {
        Violation::UnknownDestination {
            pool: Some(pool),
            destination,
        } => {
            format!("pool '{pool}' lists '{destination}', which no destination on the broker has")
        }
        Violation::UnknownDestination {
            pool: None,
            destination,
        } => {
            format!("destination '{destination}' is not registered on the broker")
        }
        Violation::DestinationNotReady { pool, destination } => format!(
            "pool '{pool}' load-balances, but '{destination}' is not prepared for process execution"
        ),
        Violation::DestinationOffline { pool, destination } => format!(
            "pool '{pool}' load-balances, but '{destination}' is offline; the broker admits only hosts it can reach"
        ),
        Violation::LoadBalancedElsewhere {
            pool,
            destination,
            other_pool,
        } => format!(
            "'{destination}' would join load-balanced pool '{pool}' while it is a member of load-balanced pool \
             '{other_pool}'; a destination is load-balanced in one pool only"
        ),
        Violation::MinMembers {
            pool,
            min_members,
            available_after,
            members_after,
            offline,
            in_maintenance,
        } => {
            let unavailable: Vec<String> = offline
                .iter()
                .map(|m| format!("{m} offline"))
                .chain(in_maintenance.iter().map(|m| format!("{m} in maintenance")))
                .collect();
            let unavailable = if unavailable.is_empty() {
                String::new()
            } else {
                format!("; unavailable: {}", unavailable.join(", "))
            };
            format!(
                "would leave {} in pool '{pool}' ({}{unavailable}); min_members is {min_members}",
                count(*available_after, "available member", "available members"),
                count(*members_after, "member", "members"),
            )
        }
        Violation::LastMemberInUse { pool, app_configs } => format!(
            "would remove the last member of pool '{pool}', which app config{} {} use{}",
            if app_configs.len() == 1 { "" } else { "s" },
            app_configs
                .iter()
                .map(|c| format!("'{c}'"))
                .collect::<Vec<_>>()
                .join(", "),
            if app_configs.len() == 1 { "s" } else { "" },
        ),
        Violation::DrainRefused {
            pool,
            destination,
            active_sessions,
        } => format!(
            "'{destination}' has {} and pool '{pool}' drains with 'refuse'; set drain.sessions to disconnect or \
             wait, or move the users first",
            count(*active_sessions, "active session", "active sessions")
        ),
        Violation::DeleteLimit {
            deletes,
            managed,
            max_delete_percent,
        } => format!(
            "would delete {deletes} of {managed} managed resources ({}%); safety.max_delete_percent is {max_delete_percent}",
            deletes * 100 / (*managed).max(1)
        ),
        Violation::NotOwned {
            address,
            owner: Some(owner),
        } => format!(
            "{} {} exists on the broker but belongs to stack '{owner}'; poolform will not take it over",
            address.kind, address.name
        ),
        Violation::NotOwned {
            address,
            owner: None,
        } => format!(
            "{} {} exists on the broker but is not labelled with any stack; poolform will not take it over",
            address.kind, address.name
        ),
    }
}

/// A fact as planned, as (what it is about, its state): `("rds-02", "offline")`.
pub fn fact(f: &Fact) -> (String, String) {
    match f {
        Fact::Online {
            destination,
            online,
        } => (destination.to_string(), online_word(*online).to_owned()),
        Fact::ActiveSessions {
            destination,
            at_most,
        } => (
            destination.to_string(),
            format!(
                "with at most {}",
                count(*at_most, "active session", "active sessions")
            ),
        ),
        Fact::Ready { destination } => (
            destination.to_string(),
            "prepared for process execution".to_owned(),
        ),
        Fact::NotLoadBalancedElsewhere { destination, pool } => (
            destination.to_string(),
            format!("in no load-balanced pool but {pool}"),
        ),
        Fact::Maintenance {
            destination,
            enabled,
            owner,
        } => (
            destination.to_string(),
            maintenance_state(*enabled, owner.as_deref()),
        ),
        Fact::Revision { address, revision } => (
            address.to_string(),
            revision.map_or("absent".to_owned(), |r| format!("at revision {r}")),
        ),
        Fact::LbServiceInstalled {
            destination,
            installed,
        } => (
            destination.to_string(),
            lb_service_state(*installed).to_owned(),
        ),
    }
}

fn online_word(online: bool) -> &'static str {
    if online { "online" } else { "offline" }
}

fn lb_service_state(installed: bool) -> &'static str {
    if installed {
        "with the load-balancing service installed"
    } else {
        "without the load-balancing service"
    }
}

fn maintenance_state(enabled: bool, owner: Option<&str>) -> String {
    match (enabled, owner) {
        (false, _) => "with maintenance mode off".to_owned(),
        (true, Some(stack)) => format!("in maintenance mode set by stack {stack}"),
        (true, None) => "in maintenance mode set by hand".to_owned(),
    }
}

/// What was found where `planned` was expected, in the terms of that fact.
fn seen(planned: &Fact, live: &Seen) -> String {
    match live {
        Seen::Destination(d) => seen_destination(planned, d),
        Seen::Gone => "not registered on the broker any more".to_owned(),
        Seen::Refused(problem) => format!(
            "refused by the broker: {} ({})",
            problem.detail.as_deref().unwrap_or(&problem.title),
            problem.code
        ),
    }
}

fn seen_destination(planned: &Fact, d: &Destination) -> String {
    match planned {
        Fact::Ready { .. } if !d.process_execution_ready => {
            "not prepared for process execution".to_owned()
        }
        Fact::Maintenance { .. } => {
            maintenance_state(d.maintenance.enabled, d.maintenance.owner.as_deref())
        }
        Fact::LbServiceInstalled { .. } => lb_service_state(d.lb_service_installed).to_owned(),
        _ if d.online => format!(
            "online with {}",
            count(d.sessions.active, "active session", "active sessions")
        ),
        _ => online_word(false).to_owned(),
    }
}

/// "precondition changed: rds-02 planned offline -> live online with 2
/// active sessions; re-plan". Apply's error shows this sentence, so it is
/// its `Display`, kept here with the other words about facts.
impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (subject, planned) = fact(&self.planned);
        write!(
            f,
            "precondition changed: {subject} planned {planned} -> live {}; re-plan",
            seen(&self.planned, &self.live)
        )
    }
}

/// The line naming a plan's `--target` addresses, when it was restricted.
pub fn targets(plan: &Plan) -> Option<String> {
    if plan.targets.is_empty() {
        return None;
    }
    let named: Vec<String> = plan.targets.iter().map(ToString::to_string).collect();
    Some(format!(
        "Planned with --target {}: nothing else in the configuration was compared.",
        named.join(", ")
    ))
}

/// The heading over a plan's violations.
pub fn violations_heading(plan: &Plan) -> &'static str {
    if plan.forced {
        "Violations (made with --force: overridden where --force can override them):"
    } else {
        "Violations (apply refuses unless --force):"
    }
}

/// A violation as listed under the heading: in a forced plan, whether
/// --force overrode it.
pub fn listed_violation(plan: &Plan, v: &Violation) -> String {
    match (plan.forced, v.can_be_overridden()) {
        (false, _) => violation(v),
        (true, true) => format!("overridden: {}", violation(v)),
        (true, false) => format!("not overridable, the step would fail: {}", violation(v)),
    }
}

/// What to do about a violation, when there is one thing to say.
pub fn violation_help(v: &Violation) -> Option<String> {
    match v {
        Violation::DestinationOffline { destination, .. } => Some(format!(
            "power {destination} on, or leave it out of the pool until it is back"
        )),
        Violation::DestinationNotReady { destination, .. } => Some(format!(
            "prepare {destination} for process execution, or leave it out of the pool until it is"
        )),
        Violation::MinMembers { .. } => Some(
            "bring members back online or out of maintenance first, or lower min_members"
                .to_owned(),
        ),
        _ => None,
    }
}

/// Whether a field is poolform's own bookkeeping (the stack label), which a
/// reviewer need not see in a diff.
pub fn is_internal(field: &Field) -> bool {
    matches!(field, Field::Label(key) if key.starts_with(RESERVED_PREFIX))
}

/// The users a plan's drains move, as (active sessions, destinations), with
/// one session per user.
pub fn drained(plan: &Plan) -> (u32, usize) {
    plan.steps
        .iter()
        .filter_map(|s| match &s.op {
            Op::DrainSessions {
                active_sessions, ..
            } => Some(*active_sessions),
            _ => None,
        })
        .fold((0, 0), |(users, drains), sessions| {
            (users + sessions, drains + 1)
        })
}

/// The summary line: "Plan: 1 to add, 2 to change, 0 to destroy; drains 3
/// users off 1 destination; 1 expected warning".
pub fn summary(plan: &Plan) -> String {
    if !plan.has_changes() {
        return match plan.violations.len() {
            0 => "No changes. The broker matches the configuration.".to_owned(),
            n => format!(
                "No changes to make, but {}.",
                count(n as u32, "violation", "violations")
            ),
        };
    }
    let (add, change, destroy) = plan.counts();
    let warnings = plan.expected_warnings().count() as u32;
    let mut line = format!("Plan: {add} to add, {change} to change, {destroy} to destroy");
    let (users, destinations) = drained(plan);
    if destinations > 0 {
        line.push_str(&format!(
            "; drains {} off {}",
            count(users, "user", "users"),
            count(destinations as u32, "destination", "destinations")
        ));
    }
    if warnings > 0 {
        line.push_str(&format!(
            "; {}",
            count(warnings, "expected warning", "expected warnings")
        ));
    }
    if !plan.violations.is_empty() {
        line.push_str(&format!(
            "; {}",
            count(plan.violations.len() as u32, "violation", "violations")
        ));
        let overridden = plan.overridden(false).count() as u32;
        if overridden > 0 {
            line.push_str(&format!(" ({overridden} overridden with --force)"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_config() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(90), "1m30s");
        assert_eq!(duration(900), "15m");
        assert_eq!(duration(5400), "1h30m");
    }

    #[test]
    fn a_drain_with_a_notice_says_who_is_told_and_how_long_they_have() {
        let drain = Op::DrainSessions {
            pool: "live".into(),
            destination: "rds-02".into(),
            policy: DrainSessions::Disconnect,
            timeout_seconds: Some(900),
            active_sessions: 3,
            notice: Some(Box::new(crate::desired::DrainNotice {
                de: "Wartung".to_owned(),
                en: "Maintenance".to_owned(),
                lead_time_seconds: 600,
            })),
        };
        assert_eq!(
            step(&drain),
            "notify 3 users on rds-02, wait up to 10m, then disconnect the rest"
        );
        assert_eq!(notified(1), "notified 1 user");
    }
}
