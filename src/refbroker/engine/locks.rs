//! Leases on a stack: taken or renewed by one holder for a bounded TTL,
//! refused to anyone else while live, free for anyone once expired.

use super::{Engine, MAX_LOCK_TTL_SECONDS, Result, bad_request, check_name};
use crate::contract::problem::{self, Problem, codes};
use crate::contract::wire::{Lock, LockBody};

impl Engine {
    fn live_lock(&self, stack: &str) -> Option<&Lock> {
        let now = self.now_secs();
        self.locks.get(stack).filter(|l| l.expires_at > now)
    }

    fn lock_conflict(lock: &Lock) -> Box<Problem> {
        let mut p = problem::new(
            409,
            codes::CONFLICT,
            format!("stack {} is locked by {}", lock.stack, lock.holder),
        );
        p.holder = Some(lock.holder.clone());
        p.expires_at = Some(lock.expires_at);
        p
    }

    /// Takes the lease on `stack`, or renews it for the same holder. An
    /// expired lease is free for anyone.
    pub fn put_lock(&mut self, stack: &str, body: LockBody) -> Result<Lock> {
        check_name("lock stack", stack)?;
        check_holder(&body.holder)?;
        if !(1..=MAX_LOCK_TTL_SECONDS).contains(&body.ttl_seconds) {
            return Err(bad_request(format!(
                "ttl_seconds must be 1..={MAX_LOCK_TTL_SECONDS}"
            )));
        }
        let renew = match self.live_lock(stack) {
            Some(l) if l.holder != body.holder => return Err(Engine::lock_conflict(l)),
            Some(_) => true,
            None => false,
        };
        let lock = Lock {
            stack: stack.to_owned(),
            holder: body.holder,
            expires_at: self.now_secs() + body.ttl_seconds,
        };
        if self.locks.get(stack) == Some(&lock) {
            return Ok(lock);
        }
        self.locks.insert(stack.to_owned(), lock.clone());
        let op = if renew { "lock.renew" } else { "lock.acquire" };
        self.log(op, format!("lock/{stack}"), None);
        Ok(lock)
    }

    /// Releases the lease if `holder` has it; releasing a free or expired
    /// lease changes nothing.
    pub fn delete_lock(&mut self, stack: &str, holder: &str) -> Result<()> {
        check_holder(holder)?;
        match self.live_lock(stack) {
            Some(l) if l.holder != holder => Err(Engine::lock_conflict(l)),
            Some(_) => {
                self.locks.remove(stack);
                self.log("lock.release", format!("lock/{stack}"), None);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Nobody holds a lease as "": an empty holder is a caller's mistake, and
/// releasing as nobody must not read as "it was free".
fn check_holder(holder: &str) -> Result<()> {
    if holder.is_empty() {
        Err(bad_request("lock holder must not be empty"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refbroker::engine::fixtures::{T0, engine};

    #[test]
    fn locks_lease_and_expire() {
        let mut e = engine();
        let body = |h: &str| LockBody {
            holder: h.into(),
            ttl_seconds: 60,
        };
        e.put_lock("corp-rds", body("a")).unwrap();
        let err = e.put_lock("corp-rds", body("b")).unwrap_err();
        assert_eq!(err.holder.as_deref(), Some("a"));
        assert_eq!(
            e.delete_lock("corp-rds", "b").unwrap_err().code,
            codes::CONFLICT
        );
        e.set_clock(T0 + 61_000);
        e.put_lock("corp-rds", body("b")).unwrap();
        e.delete_lock("corp-rds", "b").unwrap();
        e.delete_lock("corp-rds", "b").unwrap();
        assert_eq!(e.delete_lock("corp-rds", "").unwrap_err().status, 400);
    }
}
