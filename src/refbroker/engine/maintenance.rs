//! Destination writes: maintenance mode on and off (with the stack that set
//! it), and removing a leftover load-balancing service (refused while the
//! host is a member of a load-balanced pool, impossible while it is offline).

use super::{Engine, Result, check_expect, check_name, unreachable_host};
use crate::contract::Expect;
use crate::contract::problem::{self, codes};
use crate::contract::rare::Rare;
use crate::contract::wire::{Destination, Maintenance};

impl Engine {
    pub fn put_maintenance(
        &mut self,
        destination: &str,
        body: Maintenance,
        expect: Expect,
    ) -> Result<Destination> {
        // A malformed body is a 400 whatever the precondition would say.
        for pool in &body.out_of_rotation {
            check_name("pool", pool)?;
        }
        let d = self.destination_or_404(destination)?;
        check_expect("destination", destination, Some(d.revision), expect)?;
        if d.maintenance == body {
            return Ok(d.clone());
        }
        Ok(self.change_destination(
            destination,
            "destination.maintenance.set",
            "maintenance",
            |d| {
                d.maintenance = body.into();
            },
        ))
    }

    pub fn delete_maintenance(&mut self, destination: &str, expect: Expect) -> Result<Destination> {
        let d = self.destination_or_404(destination)?;
        check_expect("destination", destination, Some(d.revision), expect)?;
        if d.maintenance.is_default() {
            return Ok(d.clone());
        }
        Ok(self.change_destination(
            destination,
            "destination.maintenance.clear",
            "maintenance",
            |d| d.maintenance = Rare::default(),
        ))
    }

    /// Removes a leftover load-balancing service (one a removal from an
    /// offline host could not uninstall).
    pub fn delete_lb_service(&mut self, destination: &str) -> Result<Destination> {
        let d = self.destination_or_404(destination)?;
        if let Some(pool) = self.lb_pool_of(destination) {
            return Err(problem::new(
                409,
                codes::IN_USE,
                format!(
                    "destination {destination} is a member of load-balanced pool {}",
                    pool.name
                ),
            ));
        }
        if !d.lb_service_installed && d.lb_service_leftover.is_none() {
            return Ok(d.clone());
        }
        if !d.online {
            return Err(unreachable_host(destination));
        }
        Ok(self.change_destination(
            destination,
            "destination.lb_service.remove",
            "lb-service",
            |d| {
                d.lb_service_installed = false;
                d.lb_service_leftover = None;
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refbroker::engine::fixtures::engine;

    #[test]
    fn maintenance_keeps_the_stack_that_set_it_until_switched_off() {
        let mut e = engine();
        let owned = Maintenance {
            enabled: true,
            owner: Some("corp-rds".into()),
            ..Maintenance::default()
        };
        let d = e
            .put_maintenance("rds-02", owned.clone(), Expect::Any)
            .unwrap();
        assert_eq!(d.maintenance.owner.as_deref(), Some("corp-rds"));
        let by_hand = Maintenance {
            owner: None,
            ..owned
        };
        let d = e.put_maintenance("rds-02", by_hand, Expect::Any).unwrap();
        assert_eq!(
            d.maintenance.owner, None,
            "a write without owner is by hand"
        );
        let off = e.delete_maintenance("rds-02", Expect::Any).unwrap();
        assert_eq!(off.maintenance, Maintenance::default());
    }

    #[test]
    fn lb_service_of_a_current_member_cannot_be_removed() {
        let mut e = engine();
        e.put_member("live", "rds-01").unwrap();
        assert_eq!(
            e.delete_lb_service("rds-01").unwrap_err().code,
            codes::IN_USE
        );
    }
}
