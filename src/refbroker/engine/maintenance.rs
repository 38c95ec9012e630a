//! Destination writes: maintenance mode on and off, and removing a leftover
//! load-balancing service (refused while the host is a member of a
//! load-balanced pool, impossible while it is offline).

use super::{Engine, Result, check_match, unreachable_host};
use crate::contract::problem::{self, codes};
use crate::contract::wire::{Destination, Maintenance};

impl Engine {
    pub fn put_maintenance(
        &mut self,
        destination: &str,
        body: Maintenance,
        if_match: Option<u64>,
    ) -> Result<Destination> {
        let d = self.destination_or_404(destination)?;
        check_match("destination", destination, Some(d.revision), if_match)?;
        if d.maintenance == body {
            return Ok(d.clone());
        }
        let rev = self.next_revision();
        let d = self
            .destinations
            .get_mut(destination)
            .expect("checked above");
        d.maintenance = body;
        d.revision = rev;
        let answer = d.clone();
        self.log(
            "destination.maintenance.set",
            format!("destination/{destination}/maintenance"),
            None,
        );
        Ok(answer)
    }

    pub fn delete_maintenance(
        &mut self,
        destination: &str,
        if_match: Option<u64>,
    ) -> Result<Destination> {
        let d = self.destination_or_404(destination)?;
        check_match("destination", destination, Some(d.revision), if_match)?;
        if d.maintenance == Maintenance::default() {
            return Ok(d.clone());
        }
        let rev = self.next_revision();
        let d = self
            .destinations
            .get_mut(destination)
            .expect("checked above");
        d.maintenance = Maintenance::default();
        d.revision = rev;
        let answer = d.clone();
        self.log(
            "destination.maintenance.clear",
            format!("destination/{destination}/maintenance"),
            None,
        );
        Ok(answer)
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
        if !d.lb_service_installed {
            return Ok(d.clone());
        }
        if !d.online {
            return Err(unreachable_host(destination));
        }
        let rev = self.next_revision();
        let d = self
            .destinations
            .get_mut(destination)
            .expect("checked above");
        d.lb_service_installed = false;
        d.revision = rev;
        let answer = d.clone();
        self.log(
            "destination.lb_service.remove",
            format!("destination/{destination}/lb-service"),
            None,
        );
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refbroker::engine::fixtures::engine;

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
