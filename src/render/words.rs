//! The human words for plan data: one sentence per step, violation and
//! expected warning, shared by every rendering so that text, markdown and
//! apply reports say the same thing the same way.

use crate::desired::DrainSessions;
use crate::plan::{ExpectedWarning, Op, Violation};

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

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
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
            let sessions = plural(*active_sessions, "active session", "active sessions");
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
                plural(*available_after, "available member", "available members"),
                plural(*members_after, "member", "members"),
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
            plural(*active_sessions, "active session", "active sessions")
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

/// The summary line: "Plan: 1 to add, 2 to change, 0 to destroy; 1 expected warning".
pub fn summary(plan: &crate::plan::Plan) -> String {
    if !plan.has_changes() {
        return "No changes. The broker matches the configuration.".to_owned();
    }
    let (add, change, destroy) = plan.counts();
    let warnings = plan.expected_warnings().count() as u32;
    let mut line = format!("Plan: {add} to add, {change} to change, {destroy} to destroy");
    if warnings > 0 {
        line.push_str(&format!(
            "; {}",
            plural(warnings, "expected warning", "expected warnings")
        ));
    }
    if !plan.violations.is_empty() {
        line.push_str(&format!(
            "; {}",
            plural(plan.violations.len() as u32, "violation", "violations")
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
