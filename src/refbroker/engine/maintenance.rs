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
        Ok(self.change_destination(
            destination,
            "destination.maintenance.set",
            "maintenance",
            |d| {
                d.maintenance = body;
            },
        ))
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
        Ok(self.change_destination(
            destination,
            "destination.maintenance.clear",
            "maintenance",
            |d| d.maintenance = Maintenance::default(),
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
        if !d.lb_service_installed {
            return Ok(d.clone());
        }
        if !d.online {
            return Err(unreachable_host(destination));
        }
        Ok(self.change_destination(
            destination,
            "destination.lb_service.remove",
            "lb-service",
            |d| d.lb_service_installed = false,
        ))
    }

    /// Applies `change` to an existing destination as one logged write: a
    /// new revision and one event on `destination/NAME/PART`.
    fn change_destination(
        &mut self,
        name: &str,
        op: &str,
        part: &str,
        change: impl FnOnce(&mut Destination),
    ) -> Destination {
        let rev = self.next_revision();
        let d = self
            .destinations
            .get_mut(name)
            .expect("callers look the destination up first");
        change(d);
        d.revision = rev;
        let answer = d.clone();
        self.log(op, format!("destination/{name}/{part}"), None);
        answer
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
