//! Drain mode ("no new logons"): a holder puts a destination in it before
//! emptying it of sessions, so nobody lands on a host that is about to leave
//! its pool. While it is on, new sessions are refused except for the groups
//! maintenance mode lets in; it ends on request or when the host leaves its
//! load-balanced pool (see `pools`).

use super::{Engine, Result, bad_request};
use crate::contract::problem::{self, Problem, codes};
use crate::contract::wire::Destination;

fn drained_by_another(destination: &str, holder: &str) -> Box<Problem> {
    let mut p = problem::new(
        409,
        codes::CONFLICT,
        format!("destination {destination} is in drain mode held by {holder}"),
    );
    p.holder = Some(holder.to_owned());
    p
}

impl Engine {
    /// Puts `destination` in drain mode for `holder`. Repeating it changes
    /// nothing; another holder's drain is not taken over (`conflict`).
    pub fn start_drain(&mut self, destination: &str, holder: &str) -> Result<Destination> {
        if holder.is_empty() {
            return Err(bad_request("drain holder must not be empty"));
        }
        let d = self.destination_or_404(destination)?;
        match d.draining.as_deref() {
            Some(h) if h == holder => return Ok(d.clone()),
            Some(other) => return Err(drained_by_another(destination, other)),
            None => {}
        }
        Ok(
            self.change_destination(destination, "destination.drain.start", "drain", |d| {
                d.draining = Some(holder.to_owned());
            }),
        )
    }

    /// Ends drain mode, whoever holds it; a no-op when it is off.
    pub fn end_drain(&mut self, destination: &str) -> Result<Destination> {
        let d = self.destination_or_404(destination)?;
        if d.draining.is_none() {
            return Ok(d.clone());
        }
        Ok(
            self.change_destination(destination, "destination.drain.end", "drain", |d| {
                d.draining = None;
            }),
        )
    }

    /// Refuses a new session of a user in `groups` while `destination` is
    /// draining, unless maintenance mode is on and lets one of the groups in.
    pub(super) fn admit_session(&self, destination: &Destination, groups: &[String]) -> Result<()> {
        let Some(holder) = &destination.draining else {
            return Ok(());
        };
        let m = &destination.maintenance;
        if m.enabled && groups.iter().any(|g| m.allowed_groups.contains(g)) {
            return Ok(());
        }
        let mut p = problem::new(
            409,
            codes::DESTINATION_DRAINING,
            format!(
                "destination {} is in drain mode (held by {holder}) and accepts no new sessions",
                destination.name
            ),
        );
        p.holder = Some(holder.clone());
        Err(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Expect;
    use crate::contract::wire::{Maintenance, PoolBody, SessionState};
    use crate::refbroker::engine::fixtures::{engine, ops_since};

    fn start(e: &mut Engine, user: &str, groups: &[&str]) -> Result<()> {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        e.sim_start_session("rds-02", user, SessionState::Active, &groups)
            .map(|_| ())
    }

    #[test]
    fn drain_mode_starts_and_ends_once_and_logs_only_changes() {
        let mut e = engine();
        let seq = e.seq();
        let d = e.start_drain("rds-02", "corp-rds").unwrap();
        assert_eq!(d.draining.as_deref(), Some("corp-rds"));
        let again = e.start_drain("rds-02", "corp-rds").unwrap();
        assert_eq!(again.revision, d.revision);
        let err = e.start_drain("rds-02", "other").unwrap_err();
        assert_eq!((err.status, err.holder.as_deref()), (409, Some("corp-rds")));
        assert!(e.end_drain("rds-02").unwrap().draining.is_none());
        e.end_drain("rds-02").unwrap();
        assert_eq!(e.start_drain("rds-02", "").unwrap_err().status, 400);
        assert_eq!(e.end_drain("rds-99").unwrap_err().status, 404);
        assert_eq!(
            ops_since(&e, seq),
            [
                "destination.drain.start destination/rds-02/drain Ok None",
                "destination.drain.end destination/rds-02/drain Ok None",
            ]
        );
    }

    #[test]
    fn a_draining_destination_admits_only_the_groups_maintenance_lets_in() {
        let mut e = engine();
        e.start_drain("rds-02", "corp-rds").unwrap();
        let err = start(&mut e, "jane", &["users"]).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (409, codes::DESTINATION_DRAINING)
        );
        let maintenance = Maintenance {
            enabled: true,
            allowed_groups: vec!["admins".into()],
            ..Maintenance::default()
        };
        e.put_maintenance("rds-02", maintenance, Expect::Any)
            .unwrap();
        start(&mut e, "jane", &["users"]).unwrap_err();
        start(&mut e, "root", &["users", "admins"]).unwrap();
        e.end_drain("rds-02").unwrap();
        start(&mut e, "jane", &[]).unwrap();
        assert_eq!(e.destination("rds-02").unwrap().sessions.active, 2);
    }

    #[test]
    fn leaving_the_load_balanced_pool_ends_drain_mode_in_the_same_event() {
        let mut e = engine();
        e.put_pool("plain", PoolBody::default(), Expect::Any)
            .unwrap();
        e.put_member("plain", "rds-02").unwrap();
        e.start_drain("rds-02", "corp-rds").unwrap();
        e.delete_member("plain", "rds-02").unwrap();
        assert!(
            e.destination("rds-02").unwrap().draining.is_some(),
            "a pool without load balancing does not end it"
        );
        e.put_member("live", "rds-02").unwrap();
        let seq = e.seq();
        e.delete_member("live", "rds-02").unwrap();
        assert!(e.destination("rds-02").unwrap().draining.is_none());
        assert_eq!(
            ops_since(&e, seq),
            ["member.remove pool/live/member/rds-02 Ok None"]
        );
    }
}
