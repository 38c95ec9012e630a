//! The human words for plan data: one sentence per step, violation and
//! expected warning, shared by every rendering so that text, markdown and
//! apply reports say the same thing the same way.

use crate::contract::labels::RESERVED_PREFIX;
use crate::desired::DrainSessions;
use crate::plan::{ExpectedWarning, Field, Op, Plan, Violation};

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

/// "disconnected 4 sessions".
pub fn disconnected(sessions: u32) -> String {
    format!("disconnected {}", count(sessions, "session", "sessions"))
}

pub fn step(op: &Op) -> String {
    match op {
        Op::PutPool { pool, .. } => format!("write settings of pool {pool}"),
        Op::AddMember { pool, destination } => format!("add {destination} to pool {pool}"),
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

pub fn expected_warning(warning: &ExpectedWarning) -> String {
    match warning {
        ExpectedWarning::LbServiceUninstallFailed { destination } => format!(
            "expected warning: load-balancing service cannot be uninstalled while {destination} is offline; \
             it stays installed until the host is back"
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
        } => {
            let offline = members_after - available_after;
            let offline = if offline > 0 {
                format!(", {offline} of them offline")
            } else {
                String::new()
            };
            format!(
                "would leave {} in pool '{pool}' ({}{offline}); min_members is {min_members}",
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
}
