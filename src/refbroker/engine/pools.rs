//! Pools and their membership: pool settings and passwords (kept as Argon2id
//! hashes only), adding and removing members, the admission rules of a
//! load-balanced pool (one such pool per destination; online and prepared
//! for process execution), installing and uninstalling the load-balancing
//! service, the leftover service an offline host keeps after a removal
//! (recorded with the pool and its owning stack), and drain mode ending when
//! a host leaves its load-balanced pool.

use super::{Engine, Result, check_expect, check_name, unreachable_host};
use crate::contract::Expect;
use crate::contract::hash;
use crate::contract::labels;
use crate::contract::problem::{self, Problem, codes};
use crate::contract::wire::{Credentials, Labels, Leftover, Membership, Pool, PoolBody};

/// The stored password of a pool that has one nobody knows (seeded with
/// `password_set: true`, or kept as a fast hash by an older state file):
/// not a hash, so no password ever verifies against it.
pub const UNKNOWN_PASSWORD: &str = "unknown";

fn uninstall_failed(names: &[String]) -> Box<Problem> {
    let mut p = problem::new(
        502,
        codes::LB_SERVICE_UNINSTALL_FAILED,
        format!(
            "the load-balancing service stays installed on offline {}; the membership change was made",
            names.join(", ")
        ),
    );
    p.destination_online = Some(false);
    p
}

impl Engine {
    /// Installs the load-balancing service on `destinations` joining a
    /// load-balanced pool; a leftover there is one no longer.
    fn install_lb_service(&mut self, destinations: &[String]) {
        for name in destinations {
            self.revise_destination(name, |d| {
                d.lb_service_installed = true;
                d.lb_service_leftover = None;
            });
        }
    }

    /// `destinations` leave load-balanced pool `pool` (labelled `labels`):
    /// drain mode ends, the service is uninstalled from online hosts, and
    /// offline ones keep it as a leftover recorded with the pool and its
    /// owning stack. Returns the offline ones.
    fn release_from_lb(
        &mut self,
        pool: &str,
        labels: &Labels,
        destinations: &[String],
    ) -> Vec<String> {
        let mut leftovers = Vec::new();
        for name in destinations {
            let Some(d) = self.destinations.get(name) else {
                continue;
            };
            let stays = d.lb_service_installed && !d.online;
            let leftover = stays.then(|| {
                Box::new(Leftover {
                    pool: pool.to_owned(),
                    owner: labels::owner(labels).map(str::to_owned),
                })
            });
            if stays {
                leftovers.push(name.clone());
            }
            self.revise_destination(name, |d| {
                d.draining = None;
                d.lb_service_installed = stays;
                d.lb_service_leftover = leftover;
            });
        }
        leftovers
    }

    /// Why `destination` cannot join load-balanced pool `pool`, if it cannot.
    fn lb_admission(&self, pool: &str, destination: &str) -> Result<()> {
        let d = self.destination_or_404(destination)?;
        if let Some(other) = self.lb_pool_of(destination).filter(|p| p.name != pool) {
            return Err(problem::new(
                409,
                codes::CONFLICT,
                format!(
                    "destination {destination} is already in load-balanced pool {}",
                    other.name
                ),
            ));
        }
        if !d.online {
            return Err(unreachable_host(destination));
        }
        if !d.process_execution_ready {
            let mut p = problem::new(
                409,
                codes::DESTINATION_NOT_READY,
                format!("destination {destination} is not prepared for process execution"),
            );
            p.destination_online = Some(true);
            return Err(p);
        }
        Ok(())
    }

    /// Creates or replaces a pool's settings. The body is complete: an absent
    /// password clears the stored one. Switching load balancing on installs
    /// the service on every member (all must be admissible); switching it
    /// off releases every member as a member removal does (drain mode ends,
    /// offline members keep a leftover owned by the pool's stack as labelled
    /// by this write).
    pub fn put_pool(&mut self, name: &str, body: PoolBody, expect: Expect) -> Result<Pool> {
        check_name("pool", name)?;
        let existing = self.pools.get(name);
        check_expect("pool", name, existing.map(|p| p.revision), expect)?;
        let old_hash = self.password_hashes.get(name);
        let new_hash = match &body.default_credentials.password {
            Some(pw) => match old_hash {
                Some(h) if hash::verify(h, pw) => Some(h.clone()),
                _ => Some(hash::hash(pw)),
            },
            None => None,
        };
        let credentials = Credentials {
            username: body.default_credentials.username.clone(),
            password_set: new_hash.is_some(),
        };
        let members = existing.map(|p| p.members.clone()).unwrap_or_default();
        let was_lb = existing.is_some_and(|p| p.load_balancing.enabled);
        let created = existing.is_none();
        if let Some(p) = existing {
            let unchanged = p.load_balancing == body.load_balancing
                && p.default_credentials == credentials
                && p.labels == body.labels
                && old_hash == new_hash.as_ref();
            if unchanged {
                return Ok(p.clone());
            }
        }
        let now_lb = body.load_balancing.enabled;
        if now_lb && !was_lb {
            for m in &members {
                self.lb_admission(name, m)?;
            }
        }
        let leftovers = match (was_lb, now_lb) {
            (false, true) => {
                self.install_lb_service(&members);
                Vec::new()
            }
            (true, false) => self.release_from_lb(name, &body.labels, &members),
            _ => Vec::new(),
        };
        let revision = self.next_revision();
        let pool = Pool {
            name: name.to_owned(),
            load_balancing: body.load_balancing,
            default_credentials: credentials,
            labels: body.labels,
            members,
            revision,
        };
        // The members stay as they were: the lookups stand.
        self.pools.insert(name.to_owned(), pool.clone());
        match new_hash {
            Some(h) => self.password_hashes.insert(name.to_owned(), h),
            None => self.password_hashes.remove(name),
        };
        if !now_lb {
            self.sticky_bindings.remove(name);
        }
        let failure = (!leftovers.is_empty()).then(|| uninstall_failed(&leftovers));
        let op = if created {
            "pool.create"
        } else {
            "pool.update"
        };
        self.log(op, format!("pool/{name}"), failure.as_deref());
        match failure {
            Some(p) => Err(p),
            None => Ok(pool),
        }
    }

    /// Deletes a pool. Refused while an app config uses it; its members are
    /// released as by member removal (drain mode ends, leftover services on
    /// offline hosts).
    pub fn delete_pool(&mut self, name: &str, expect: Expect) -> Result<()> {
        let p = self.pool_or_404(name)?;
        check_expect("pool", name, Some(p.revision), expect)?;
        if let Some(c) = self.lookups().configs_of(name).first() {
            return Err(problem::new(
                409,
                codes::IN_USE,
                format!("pool {name} is used by app config {c}"),
            ));
        }
        let p = self.pools.remove(name).expect("checked above");
        if let Some(lookups) = self.lookups.get_mut() {
            lookups.pool_changed(name, Some(&p), None);
        }
        self.password_hashes.remove(name);
        self.sticky_bindings.remove(name);
        let leftovers = if p.load_balancing.enabled {
            self.release_from_lb(name, &p.labels, &p.members)
        } else {
            Vec::new()
        };
        let failure = (!leftovers.is_empty()).then(|| uninstall_failed(&leftovers));
        self.log("pool.delete", format!("pool/{name}"), failure.as_deref());
        match failure {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    /// Adds `destination` to `pool`; for a load-balanced pool the service is
    /// installed. Adding a member again changes nothing. Answers the
    /// membership, not the pool (see [`Membership`]): nothing here is
    /// proportional to the pool's size but the insertion into its sorted
    /// member list.
    pub fn put_member(&mut self, pool: &str, destination: &str) -> Result<Membership> {
        let p = self.pool_or_404(pool)?;
        let lb = p.load_balancing.enabled;
        if is_member(p, destination) {
            return Ok(membership(pool, destination, true, p.revision));
        }
        self.destination_or_404(destination)?;
        if lb {
            self.lb_admission(pool, destination)?;
            self.install_lb_service(&[destination.to_owned()]);
        }
        let answer = membership(pool, destination, true, self.next_revision());
        self.set_membership(&answer);
        // Recorded as the membership it answers (see `Delta`).
        self.member_changes.push(answer.clone());
        self.log(
            "member.add",
            format!("pool/{pool}/member/{destination}"),
            None,
        );
        Ok(answer)
    }

    /// Removes `destination` from `pool`. For a load-balanced pool drain
    /// mode ends and the service is uninstalled; when the host is offline the
    /// membership is still removed, the service stays (a leftover recorded
    /// with the pool's owner) and the answer is 502
    /// `lb_service_uninstall_failed`. Refused while an app instance of the
    /// pool targets the destination (retarget it first: make before break).
    pub fn delete_member(&mut self, pool: &str, destination: &str) -> Result<Membership> {
        let p = self.pool_or_404(pool)?;
        let lb = p.load_balancing.enabled;
        if !is_member(p, destination) {
            return Ok(membership(pool, destination, false, p.revision));
        }
        let pinned = (self.lookups().pinned_to(destination).iter())
            .filter_map(|name| self.app_instances.get(name))
            .find(|i| (self.app_configs.get(&i.app_config)).is_some_and(|c| c.pool == pool));
        if let Some(i) = pinned {
            return Err(problem::new(
                409,
                codes::IN_USE,
                format!(
                    "app instance {} targets {destination} through pool {pool}",
                    i.name
                ),
            ));
        }
        let leftovers = if lb {
            let labels = self.pools[pool].labels.clone();
            self.release_from_lb(pool, &labels, &[destination.to_owned()])
        } else {
            Vec::new()
        };
        let answer = membership(pool, destination, false, self.next_revision());
        self.set_membership(&answer);
        // Recorded as the membership it answers (see `Delta`).
        self.member_changes.push(answer.clone());
        let failure = (!leftovers.is_empty()).then(|| uninstall_failed(&leftovers));
        self.log(
            "member.remove",
            format!("pool/{pool}/member/{destination}"),
            failure.as_deref(),
        );
        match failure {
            Some(p) => Err(p),
            None => Ok(answer),
        }
    }

    /// Makes `change` so: the destination a member of its pool or not, the
    /// pool at the change's revision, and the lookups told. The one place a
    /// membership changes, for a member write and for the replay of its
    /// record alike. Not counted as a change of the pool's entry: a member
    /// write is recorded as the membership (see `Delta`). A pool that is
    /// gone is left alone; no record names one (a pool deleted in the same
    /// commit is recorded whole).
    pub(super) fn set_membership(&mut self, change: &Membership) {
        let Some(p) = self.pools.get_mut_recorded_elsewhere(&change.pool) else {
            return;
        };
        let lookups = self.lookups.get_mut();
        let destination = change.destination.as_str();
        match (position(p, destination), change.member) {
            (Err(at), true) => {
                if let Some(lookups) = lookups {
                    lookups.member_added(&change.pool, destination);
                }
                p.members.insert(at, destination.to_owned());
            }
            (Ok(at), false) => {
                if let Some(lookups) = lookups {
                    lookups.member_removed(&change.pool, destination);
                }
                p.members.remove(at);
            }
            _ => {}
        }
        p.revision = change.revision;
    }
}

/// Where `destination` is in the pool's sorted member list, or would be.
fn position(pool: &Pool, destination: &str) -> std::result::Result<usize, usize> {
    pool.members
        .binary_search_by(|m| m.as_str().cmp(destination))
}

/// Whether `destination` is a member of the pool: the one way the engine
/// asks, for member writes and app items alike.
pub(super) fn is_member(pool: &Pool, destination: &str) -> bool {
    position(pool, destination).is_ok()
}

fn membership(pool: &str, destination: &str, member: bool, revision: u64) -> Membership {
    Membership {
        pool: pool.to_owned(),
        destination: destination.to_owned(),
        member,
        revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refbroker::engine::fixtures::{engine, lb_pool, ops_since};

    #[test]
    fn a_member_write_answers_the_membership_and_a_repeat_changes_nothing() {
        let mut e = engine();
        let added = e.put_member("live", "rds-02").unwrap();
        assert_eq!(e.pool("live").unwrap().members, vec!["rds-02"]);
        assert_eq!(
            added,
            membership("live", "rds-02", true, e.pool("live").unwrap().revision)
        );
        assert!(e.destination("rds-02").unwrap().lb_service_installed);
        let seq = e.seq();
        let again = e.put_member("live", "rds-02").unwrap();
        assert_eq!(again, added);
        assert_eq!(e.seq(), seq, "a repeated add logs nothing");
        let removed = e.delete_member("live", "rds-02").unwrap();
        assert_eq!(
            removed,
            membership("live", "rds-02", false, e.pool("live").unwrap().revision)
        );
        assert!(removed.revision > added.revision);
        assert_eq!(e.delete_member("live", "rds-02").unwrap(), removed);
    }

    #[test]
    fn lb_admission_refuses_unready_offline_and_taken_destinations() {
        let mut e = engine();
        e.sim_destination("rds-02", true, false).unwrap();
        assert_eq!(
            e.put_member("live", "rds-02").unwrap_err().code,
            codes::DESTINATION_NOT_READY
        );
        e.sim_power("rds-03", false).unwrap();
        let err = e.put_member("live", "rds-03").unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (502, codes::DESTINATION_UNREACHABLE)
        );
        e.put_member("live", "rds-01").unwrap();
        e.put_pool("other", lb_pool(0), Expect::Any).unwrap();
        let err = e.put_member("other", "rds-01").unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (409, codes::CONFLICT));
        e.put_pool("plain", PoolBody::default(), Expect::Any)
            .unwrap();
        e.put_member("plain", "rds-03").unwrap();
        assert!(!e.destination("rds-03").unwrap().lb_service_installed);
    }

    #[test]
    fn removing_from_an_offline_host_leaves_a_leftover_and_answers_502() {
        let mut e = engine();
        e.put_member("live", "rds-02").unwrap();
        e.sim_power("rds-02", false).unwrap();
        let seq = e.seq();
        let err = e.delete_member("live", "rds-02").unwrap_err();
        assert_eq!(err.status, 502);
        assert_eq!(err.code, codes::LB_SERVICE_UNINSTALL_FAILED);
        assert_eq!(err.destination_online, Some(false));
        assert!(e.pool("live").unwrap().members.is_empty());
        assert!(e.destination("rds-02").unwrap().lb_service_installed);
        assert_eq!(
            ops_since(&e, seq),
            vec![
                "member.remove pool/live/member/rds-02 Partial Some(\"lb_service_uninstall_failed\")"
            ]
        );
        assert!(
            e.delete_member("live", "rds-02").is_ok(),
            "non-member: no-op"
        );
        assert_eq!(
            e.delete_lb_service("rds-02").unwrap_err().code,
            codes::DESTINATION_UNREACHABLE
        );
        e.sim_power("rds-02", true).unwrap();
        assert!(!e.delete_lb_service("rds-02").unwrap().lb_service_installed);
    }

    fn owned_lb_pool(stack: &str) -> PoolBody {
        PoolBody {
            labels: labels::with_stack(&Labels::new(), stack),
            ..lb_pool(0)
        }
    }

    fn leftover(e: &Engine, name: &str) -> Option<Leftover> {
        e.destination(name)
            .unwrap()
            .lb_service_leftover
            .as_deref()
            .cloned()
    }

    #[test]
    fn a_leftover_records_the_pool_and_its_stack_until_removed_or_rejoined() {
        let mut e = engine();
        e.put_pool("live", owned_lb_pool("corp-rds"), Expect::Any)
            .unwrap();
        e.put_member("live", "rds-02").unwrap();
        e.sim_power("rds-02", false).unwrap();
        e.delete_member("live", "rds-02").unwrap_err();
        let expected = Leftover {
            pool: "live".into(),
            owner: Some("corp-rds".into()),
        };
        assert_eq!(leftover(&e, "rds-02"), Some(expected));
        e.sim_power("rds-02", true).unwrap();
        e.delete_lb_service("rds-02").unwrap();
        assert_eq!(leftover(&e, "rds-02"), None);

        e.put_member("live", "rds-03").unwrap();
        e.sim_power("rds-03", false).unwrap();
        e.delete_member("live", "rds-03").unwrap_err();
        e.sim_power("rds-03", true).unwrap();
        e.put_pool("other", lb_pool(0), Expect::Any).unwrap();
        e.put_member("other", "rds-03").unwrap();
        assert_eq!(leftover(&e, "rds-03"), None, "joining again clears it");
    }

    #[test]
    fn deleting_a_pool_or_switching_load_balancing_off_leaves_owned_leftovers() {
        let mut e = engine();
        e.put_pool("batch", owned_lb_pool("batch-stack"), Expect::Any)
            .unwrap();
        e.put_member("batch", "rds-01").unwrap();
        e.put_member("live", "rds-02").unwrap();
        e.sim_power("rds-01", false).unwrap();
        e.sim_power("rds-02", false).unwrap();
        e.delete_pool("batch", Expect::Any).unwrap_err();
        assert_eq!(
            leftover(&e, "rds-01").and_then(|l| l.owner),
            Some("batch-stack".into())
        );
        let off = PoolBody {
            labels: labels::with_stack(&Labels::new(), "new-owner"),
            ..PoolBody::default()
        };
        e.put_pool("live", off, Expect::Any).unwrap_err();
        assert_eq!(
            leftover(&e, "rds-02"),
            Some(Leftover {
                pool: "live".into(),
                owner: Some("new-owner".into())
            }),
            "the owner is the pool's stack as this write labels it"
        );
    }

    #[test]
    fn removing_from_an_online_host_uninstalls() {
        let mut e = engine();
        e.put_member("live", "rds-01").unwrap();
        e.delete_member("live", "rds-01").unwrap();
        assert!(!e.destination("rds-01").unwrap().lb_service_installed);
    }

    #[test]
    fn if_match_guards_writes() {
        let mut e = engine();
        let rev = e.pool("live").unwrap().revision;
        let err = e
            .put_pool("live", lb_pool(5), Expect::Revision(rev + 100))
            .unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (412, codes::PRECONDITION_FAILED)
        );
        let p = e
            .put_pool("live", lb_pool(5), Expect::Revision(rev))
            .unwrap();
        assert!(p.revision > rev);
        assert_eq!(
            e.put_pool("new", lb_pool(5), Expect::Revision(1))
                .unwrap_err()
                .status,
            412
        );
        assert_eq!(
            e.delete_pool("live", Expect::Revision(rev))
                .unwrap_err()
                .status,
            412
        );
    }

    #[test]
    fn expecting_absence_creates_but_never_overwrites() {
        let mut e = engine();
        let created = e.put_pool("new", lb_pool(5), Expect::Absent).unwrap();
        let err = e.put_pool("new", lb_pool(6), Expect::Absent).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (412, codes::PRECONDITION_FAILED)
        );
        assert!(err.detail.unwrap().contains("exists"));
        assert_eq!(e.pool("new").unwrap(), &created);
        assert_eq!(
            e.delete_pool("new", Expect::Absent).unwrap_err().status,
            412
        );
    }

    #[test]
    fn passwords_are_kept_only_as_salted_hashes() {
        let mut e = engine();
        let mut body = PoolBody::default();
        body.default_credentials.password = Some("hunter2-secret".into());
        let p = e.put_pool("maint", body.clone(), Expect::Any).unwrap();
        assert!(p.default_credentials.password_set);
        let seq = e.seq();
        assert_eq!(
            e.put_pool("maint", body.clone(), Expect::Any)
                .unwrap()
                .revision,
            p.revision
        );
        assert_eq!(e.seq(), seq, "same password: no change");
        body.default_credentials.password = Some("other".into());
        assert!(e.put_pool("maint", body, Expect::Any).unwrap().revision > p.revision);
        let file = serde_json::to_string(&e).unwrap();
        assert!(!file.contains("hunter2-secret") && !file.contains("\"other\""));
    }

    /// The state keeps an Argon2id hash at today's cost, which verifies the
    /// password and nothing else; a password nobody knows verifies nothing,
    /// so the next one sent is a change.
    #[test]
    fn passwords_are_kept_as_argon2id_hashes_at_todays_cost() {
        let mut e = engine();
        let mut body = PoolBody::default();
        body.default_credentials.password = Some("hunter2-secret".into());
        e.put_pool("maint", body.clone(), Expect::Any).unwrap();
        let stored = e.password_hashes["maint"].clone();
        assert!(
            stored.starts_with("$argon2id$") && hash::is_current(&stored),
            "{stored}"
        );
        assert!(hash::verify(&stored, "hunter2-secret") && !hash::verify(&stored, "hunter3"));
        e.password_hashes
            .insert("maint".into(), UNKNOWN_PASSWORD.into());
        let before = e.pool("maint").unwrap().revision;
        let again = e.put_pool("maint", body, Expect::Any).unwrap();
        assert!(again.revision > before, "an unknown password is replaced");
        assert!(hash::verify(&e.password_hashes["maint"], "hunter2-secret"));
    }

    #[test]
    fn enabling_load_balancing_checks_and_installs_every_member() {
        let mut e = engine();
        e.put_pool("plain", PoolBody::default(), Expect::Any)
            .unwrap();
        e.put_member("plain", "rds-01").unwrap();
        e.sim_destination("rds-02", true, false).unwrap();
        e.put_member("plain", "rds-02").unwrap();
        let err = e.put_pool("plain", lb_pool(0), Expect::Any).unwrap_err();
        assert_eq!(err.code, codes::DESTINATION_NOT_READY);
        assert!(!e.destination("rds-01").unwrap().lb_service_installed);
        e.sim_destination("rds-02", true, true).unwrap();
        e.put_pool("plain", lb_pool(0), Expect::Any).unwrap();
        assert!(e.destination("rds-02").unwrap().lb_service_installed);
        e.sim_power("rds-02", false).unwrap();
        let err = e
            .put_pool("plain", PoolBody::default(), Expect::Any)
            .unwrap_err();
        assert_eq!(err.code, codes::LB_SERVICE_UNINSTALL_FAILED);
        assert!(!e.pool("plain").unwrap().load_balancing.enabled);
        assert!(!e.destination("rds-01").unwrap().lb_service_installed);
    }
}
