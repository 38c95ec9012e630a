//! Simulation controls (reference broker only): registering destinations
//! and their observed flags, powering hosts on and off (shutting down logs
//! every user off), and users starting sessions (as drain mode admits them)
//! and ending them.

use super::{Engine, Result, bad_request, check_name, count_mut, not_found, unreachable_host};
use crate::contract::wire::{Destination, Session, SessionState};

impl Engine {
    /// Registers a destination, or updates the observed flags of an existing
    /// one (going offline ends its sessions, as powering off does).
    pub fn sim_destination(
        &mut self,
        name: &str,
        online: bool,
        process_execution_ready: bool,
    ) -> Result<Destination> {
        check_name("destination", name)?;
        if let Some(d) = self.destinations.get(name) {
            if d.online == online && d.process_execution_ready == process_execution_ready {
                return Ok(d.clone());
            }
            if !online {
                for id in self.session_ids_of(name) {
                    self.end_session(&id);
                }
            }
        }
        let rev = self.next_revision();
        let d = self
            .destinations
            .entry(name.to_owned())
            .or_insert_with(|| Destination::registered(name, online, process_execution_ready, rev));
        d.online = online;
        d.process_execution_ready = process_execution_ready;
        d.revision = rev;
        let answer = d.clone();
        self.log("sim.destination", format!("destination/{name}"), None);
        Ok(answer)
    }

    /// Powers a host on or off. Shutting down logs every user off (roaming
    /// profiles are written back), which leaves sticky bindings like any
    /// logoff.
    pub fn sim_power(&mut self, name: &str, online: bool) -> Result<Destination> {
        let d = self.destination_or_404(name)?;
        if d.online == online {
            return Ok(d.clone());
        }
        if !online {
            for id in self.session_ids_of(name) {
                self.end_session(&id);
            }
        }
        let rev = self.next_revision();
        let d = self.destinations.get_mut(name).expect("checked above");
        d.online = online;
        d.revision = rev;
        let answer = d.clone();
        let op = if online {
            "sim.power.on"
        } else {
            "sim.power.off"
        };
        self.log(op, format!("destination/{name}"), None);
        Ok(answer)
    }

    /// A user who belongs to `groups` starts a session: refused on an
    /// offline host, and on a draining one unless maintenance lets a group in.
    pub fn sim_start_session(
        &mut self,
        destination: &str,
        user: &str,
        state: SessionState,
        groups: &[String],
    ) -> Result<Session> {
        let d = self.destination_or_404(destination)?;
        if !d.online {
            return Err(unreachable_host(destination));
        }
        self.admit_session(d, groups)?;
        if user.is_empty() {
            return Err(bad_request("session user must not be empty"));
        }
        // Seeded sessions may use any ids; skip over taken ones.
        let id = loop {
            self.next_session += 1;
            let id = format!("s-{:08}", self.next_session);
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let session = Session {
            id,
            user: user.to_owned(),
            destination: destination.to_owned(),
            state,
        };
        let d = self
            .destinations
            .get_mut(destination)
            .expect("checked above");
        *count_mut(&mut d.sessions, state) += 1;
        if let Some(lookups) = self.lookups.get_mut() {
            lookups.session_changed(&session.id, None, Some(&session));
        }
        self.sessions.insert(session.id.clone(), session.clone());
        self.log("sim.session.start", format!("session/{}", session.id), None);
        Ok(session)
    }

    /// The user logs off: the session ends and leaves a sticky binding.
    pub fn sim_end_session(&mut self, id: &str) -> Result<()> {
        if !self.sessions.contains_key(id) {
            return Err(not_found("session", id));
        }
        self.end_session(id);
        self.log("sim.session.end", format!("session/{id}"), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::problem::codes;
    use crate::contract::wire::SessionCounts;
    use crate::refbroker::engine::fixtures::engine;

    #[test]
    fn power_off_ends_sessions_with_sticky_bindings_and_blocks_disconnect() {
        let mut e = engine();
        e.put_member("live", "rds-03").unwrap();
        e.sim_start_session("rds-03", "jane", SessionState::Active, &[])
            .unwrap();
        e.sim_power("rds-03", false).unwrap();
        assert_eq!(
            e.destination("rds-03").unwrap().sessions,
            SessionCounts::default()
        );
        assert_eq!(e.snapshot(e.now_ms).sticky_bindings.len(), 1);
        let err = e.disconnect_sessions("rds-03").unwrap_err();
        assert_eq!(err.code, codes::DESTINATION_UNREACHABLE);
    }
}
