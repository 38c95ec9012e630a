//! Sessions and sticky bindings: a session that stops being active binds its
//! user to the destination for the load-balanced pool's sticky period plus
//! grace; disconnecting sessions on a host, and clearing a pool's bindings.

use super::{Engine, Result, count_mut, unreachable_host};
use crate::contract::wire::{Affected, SessionState, StickyBinding};

impl Engine {
    /// A session of `user` on `destination` stopped being active (disconnect,
    /// logoff, shutdown): when the destination's load-balanced pool keeps
    /// sessions sticky, the user is bound to it for period + grace.
    fn bind_sticky(&mut self, user: &str, destination: &str) {
        let Some(pool) = self.lb_pool_of(destination) else {
            return;
        };
        let lb = pool.load_balancing;
        if lb.sticky_sessions_minutes == 0 {
            return;
        }
        let pool_name = pool.name.clone();
        let expires_at = self.now_secs()
            + u64::from(lb.sticky_sessions_minutes) * 60
            + u64::from(lb.grace_period_seconds);
        self.sticky_bindings
            .entry(pool_name.clone())
            .or_default()
            .insert(
                user.to_owned(),
                StickyBinding {
                    pool: pool_name,
                    user: user.to_owned(),
                    destination: destination.to_owned(),
                    expires_at,
                },
            );
    }

    pub(super) fn end_session(&mut self, id: &str) {
        if let Some(s) = self.sessions.remove(id) {
            if let Some(lookups) = self.lookups.get_mut() {
                lookups.session_changed(id, Some(&s), None);
            }
            if let Some(d) = self.destinations.get_mut(&s.destination) {
                *count_mut(&mut d.sessions, s.state) -= 1;
            }
            self.bind_sticky(&s.user, &s.destination);
        }
    }

    pub(super) fn session_ids_of(&self, destination: &str) -> Vec<String> {
        self.lookups().sessions_on(destination).to_vec()
    }

    /// Active sessions become disconnected, each leaving a sticky binding
    /// when the pool is sticky; disconnected ones are left alone (ending
    /// them would log their users off and lose unsaved work). `affected` is
    /// the number disconnected. Offline hosts cannot be told.
    pub fn disconnect_sessions(&mut self, destination: &str) -> Result<Affected> {
        if !self.destination_or_404(destination)?.online {
            return Err(unreachable_host(destination));
        }
        let active: Vec<String> = (self.lookups().sessions_on(destination).iter())
            .filter(|id| {
                self.sessions
                    .get(*id)
                    .is_some_and(|s| s.state == SessionState::Active)
            })
            .cloned()
            .collect();
        for id in &active {
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            s.state = SessionState::Disconnected;
            let user = s.user.clone();
            if let Some(d) = self.destinations.get_mut(destination) {
                d.sessions.active -= 1;
                d.sessions.disconnected += 1;
            }
            self.bind_sticky(&user, destination);
        }
        if !active.is_empty() {
            self.log(
                "sessions.disconnect",
                format!("destination/{destination}/sessions"),
                None,
            );
        }
        Ok(Affected {
            affected: active.len() as u32,
        })
    }

    /// Removes sticky bindings of `pool` (only those to `destination` when given).
    pub fn clear_sticky(&mut self, pool: &str, destination: Option<&str>) -> Result<Affected> {
        self.pool_or_404(pool)?;
        let mut removed = 0;
        if let Some(bindings) = self.sticky_bindings.get_mut(pool) {
            let before = bindings.len();
            bindings.retain(|_, b| destination.is_some_and(|d| b.destination != d));
            removed = before - bindings.len();
            if bindings.is_empty() {
                self.sticky_bindings.remove(pool);
            }
        }
        if removed > 0 {
            let resource = match destination {
                Some(d) => format!("pool/{pool}/sticky-sessions/{d}"),
                None => format!("pool/{pool}/sticky-sessions"),
            };
            self.log("sticky.clear", resource, None);
        }
        Ok(Affected {
            affected: removed as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Expect;
    use crate::contract::wire::{PoolBody, SessionCounts};
    use crate::refbroker::engine::fixtures::{T0, engine, lb_pool};

    #[test]
    fn disconnect_creates_sticky_bindings_and_clear_removes_them() {
        let mut e = engine();
        e.put_member("live", "rds-02").unwrap();
        e.sim_start_session("rds-02", "jane", SessionState::Active, &[])
            .unwrap();
        e.sim_start_session("rds-02", "kim", SessionState::Active, &[])
            .unwrap();
        e.sim_start_session("rds-02", "joe", SessionState::Disconnected, &[])
            .unwrap();
        let affected = e.disconnect_sessions("rds-02").unwrap();
        assert_eq!(affected.affected, 2, "only the active sessions");
        let d = e.destination("rds-02").unwrap();
        assert_eq!(
            d.sessions,
            SessionCounts {
                active: 0,
                disconnected: 3
            }
        );
        let bindings = e.snapshot(e.now_ms).sticky_bindings;
        assert_eq!(bindings.len(), 2);
        assert_eq!(bindings[0].expires_at, T0 / 1000 + 600 + 30);
        assert_eq!(e.clear_sticky("live", Some("rds-01")).unwrap().affected, 0);
        assert_eq!(e.clear_sticky("live", Some("rds-02")).unwrap().affected, 2);
        assert!(e.snapshot(e.now_ms).sticky_bindings.is_empty());
        let seq = e.seq();
        assert_eq!(e.disconnect_sessions("rds-02").unwrap().affected, 0);
        assert_eq!(e.seq(), seq, "nothing active: nothing changes");
        assert_eq!(e.destination("rds-02").unwrap().sessions.disconnected, 3);
    }

    #[test]
    fn no_sticky_bindings_below_one_minute_or_without_load_balancing() {
        let mut e = engine();
        e.put_pool("live", lb_pool(0), Expect::Any).unwrap();
        e.put_member("live", "rds-01").unwrap();
        e.put_pool("plain", PoolBody::default(), Expect::Any)
            .unwrap();
        e.put_member("plain", "rds-02").unwrap();
        e.sim_start_session("rds-01", "jane", SessionState::Active, &[])
            .unwrap();
        e.sim_start_session("rds-02", "joe", SessionState::Active, &[])
            .unwrap();
        e.disconnect_sessions("rds-01").unwrap();
        e.disconnect_sessions("rds-02").unwrap();
        assert!(e.snapshot(e.now_ms).sticky_bindings.is_empty());
    }

    #[test]
    fn sticky_bindings_expire() {
        let mut e = engine();
        e.put_member("live", "rds-01").unwrap();
        e.sim_start_session("rds-01", "jane", SessionState::Active, &[])
            .unwrap();
        e.disconnect_sessions("rds-01").unwrap();
        e.set_clock(T0 + 631_000);
        assert!(e.snapshot(e.now_ms).sticky_bindings.is_empty());
    }
}
