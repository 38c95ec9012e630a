//! The reference broker engine: the whole broker state and every operation on
//! it as typed, transport-independent methods. The HTTP server and the
//! embedded broker both call these; neither adds behaviour of its own.
//!
//! Conventions:
//! - every state change appends exactly one event; a write that changes
//!   nothing (idempotent repeat) appends none and keeps revisions;
//! - revisions come from one broker-wide counter, so a deleted and re-created
//!   resource never reuses a revision;
//! - session counts on a destination are observed data and do not bump its
//!   revision (a user logging in must not make a saved plan stale).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::names;
use crate::contract::problem::{self, Problem, codes};
use crate::contract::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Credentials, Destination,
    Event, EventOutcome, Lock, LockBody, Maintenance, Page, Pool, PoolBody, Session, SessionCounts,
    SessionState, Snapshot, StickyBinding,
};

/// Version of the state file layout written by `store`.
pub const STATE_FORMAT: u32 = 1;

/// Longest lock lease the broker grants; a killed apply must not hold a stack
/// for longer than a day.
pub const MAX_LOCK_TTL_SECONDS: u64 = 86_400;

/// A salted SHA-256 of a secret: enough to tell "same password" from
/// "different password", useless for recovering it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaltedHash {
    pub salt: String,
    pub sha256: String,
}

impl SaltedHash {
    pub fn new(secret: &str) -> SaltedHash {
        let salt: [u8; 16] = rand::random();
        SaltedHash::with_salt(hex::encode(salt), secret)
    }

    fn with_salt(salt: String, secret: &str) -> SaltedHash {
        let mut hasher = Sha256::new();
        hasher.update(salt.as_bytes());
        hasher.update(secret.as_bytes());
        let sha256 = hex::encode(hasher.finalize());
        SaltedHash { salt, sha256 }
    }

    pub fn matches(&self, secret: &str) -> bool {
        SaltedHash::with_salt(self.salt.clone(), secret).sha256 == self.sha256
    }
}

/// The broker state. It serialises as the state file (see `store`), which is
/// why it holds maps keyed by name: the file stays sorted and diffable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    format: u32,
    /// Broker-wide revision counter; every changed resource takes the next value.
    revision: u64,
    next_session: u64,
    destinations: BTreeMap<String, Destination>,
    pools: BTreeMap<String, Pool>,
    /// Pool name → salted hash of its default password.
    password_hashes: BTreeMap<String, SaltedHash>,
    app_configs: BTreeMap<String, AppConfig>,
    app_instances: BTreeMap<String, AppInstance>,
    sessions: BTreeMap<String, Session>,
    /// Pool → user → binding.
    sticky_bindings: BTreeMap<String, BTreeMap<String, StickyBinding>>,
    locks: BTreeMap<String, Lock>,
    events: Vec<Event>,
    /// Unix milliseconds of the operation in progress; set by the caller so
    /// that tests control time.
    #[serde(skip)]
    now_ms: u64,
}

/// Problems are boxed: they are large and travel on the rare path.
pub type Result<T> = std::result::Result<T, Box<Problem>>;

fn not_found(kind: &str, name: &str) -> Box<Problem> {
    problem::new(
        404,
        codes::NOT_FOUND,
        format!("{kind} {name} does not exist"),
    )
}

/// A reference in a body to something that does not exist: the request is
/// well-formed but cannot be processed.
fn missing_reference(kind: &str, name: &str) -> Box<Problem> {
    problem::new(
        422,
        codes::NOT_FOUND,
        format!("{kind} {name} does not exist"),
    )
}

fn bad_request(detail: impl Into<String>) -> Box<Problem> {
    problem::new(400, codes::BAD_REQUEST, detail)
}

fn unreachable_host(name: &str) -> Box<Problem> {
    let mut p = problem::new(
        502,
        codes::DESTINATION_UNREACHABLE,
        format!("destination {name} is offline"),
    );
    p.destination_online = Some(false);
    p
}

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

fn check_name(kind: &str, name: &str) -> Result<()> {
    if names::is_valid(name) {
        Ok(())
    } else {
        Err(bad_request(format!(
            "{kind} name {name:?} must be {}",
            names::RULE
        )))
    }
}

fn check_match(kind: &str, name: &str, current: Option<u64>, if_match: Option<u64>) -> Result<()> {
    match if_match {
        Some(wanted) if current != Some(wanted) => Err(problem::new(
            412,
            codes::PRECONDITION_FAILED,
            match current {
                Some(rev) => format!("{kind} {name} is at revision {rev}, not {wanted}"),
                None => format!("{kind} {name} does not exist"),
            },
        )),
        _ => Ok(()),
    }
}

/// One page of a name-ordered map: the cursor is the last name of the
/// previous page, so pages stay stable while other entries change.
fn page<'a, T>(map: &'a BTreeMap<String, T>, cursor: Option<&str>, limit: usize) -> Page<&'a T> {
    use std::ops::Bound;
    let lower = match cursor {
        Some(c) => Bound::Excluded(c),
        None => Bound::Unbounded,
    };
    let mut iter = map.range::<str, _>((lower, Bound::Unbounded));
    let mut items = Vec::with_capacity(limit.min(map.len()));
    let mut last = None;
    for (key, value) in iter.by_ref().take(limit) {
        items.push(value);
        last = Some(key);
    }
    let next_cursor = match iter.next() {
        Some(_) => last.cloned(),
        None => None,
    };
    Page { items, next_cursor }
}

fn count_mut(counts: &mut SessionCounts, state: SessionState) -> &mut u32 {
    match state {
        SessionState::Active => &mut counts.active,
        SessionState::Disconnected => &mut counts.disconnected,
    }
}

impl Engine {
    pub fn new() -> Engine {
        Engine {
            format: STATE_FORMAT,
            ..Engine::default()
        }
    }

    /// Builds the state a `--seed` file describes. Session counts are
    /// recomputed from the sessions, members sorted, and a pool seeded with
    /// `password_set: true` gets the hash of a random secret nobody knows.
    pub fn from_snapshot(snapshot: Snapshot) -> Result<Engine> {
        let mut engine = Engine::new();
        let mut max_rev = 0;
        for mut d in snapshot.destinations {
            d.sessions = SessionCounts::default();
            max_rev = max_rev.max(d.revision);
            engine.destinations.insert(d.name.clone(), d);
        }
        for mut p in snapshot.pools {
            p.members.sort();
            p.members.dedup();
            for m in &p.members {
                if !engine.destinations.contains_key(m) {
                    return Err(bad_request(format!(
                        "seed: pool {} has unknown member {m}",
                        p.name
                    )));
                }
            }
            if p.default_credentials.password_set {
                let unknown: [u8; 32] = rand::random();
                engine
                    .password_hashes
                    .insert(p.name.clone(), SaltedHash::new(&hex::encode(unknown)));
            }
            if p.load_balancing.enabled {
                for m in &p.members {
                    if let Some(other) = engine.lb_pool_of(m) {
                        return Err(bad_request(format!(
                            "seed: {m} is in load-balanced pools {} and {}",
                            other.name, p.name
                        )));
                    }
                }
                // Membership in a load-balanced pool means the service is there.
                for m in &p.members {
                    if let Some(d) = engine.destinations.get_mut(m) {
                        d.lb_service_installed = true;
                    }
                }
            }
            max_rev = max_rev.max(p.revision);
            engine.pools.insert(p.name.clone(), p);
        }
        for c in snapshot.app_configs {
            if !engine.pools.contains_key(&c.pool) {
                return Err(bad_request(format!(
                    "seed: app config {} uses unknown pool {}",
                    c.name, c.pool
                )));
            }
            max_rev = max_rev.max(c.revision);
            engine.app_configs.insert(c.name.clone(), c);
        }
        for i in snapshot.app_instances {
            if !engine.app_configs.contains_key(&i.app_config) {
                return Err(bad_request(format!(
                    "seed: app instance {} uses unknown app config {}",
                    i.name, i.app_config
                )));
            }
            max_rev = max_rev.max(i.revision);
            engine.app_instances.insert(i.name.clone(), i);
        }
        for s in snapshot.sessions {
            let Some(d) = engine.destinations.get_mut(&s.destination) else {
                return Err(bad_request(format!(
                    "seed: session {} is on unknown destination {}",
                    s.id, s.destination
                )));
            };
            *count_mut(&mut d.sessions, s.state) += 1;
            engine.sessions.insert(s.id.clone(), s);
        }
        engine.next_session = engine.sessions.len() as u64;
        for b in snapshot.sticky_bindings {
            engine
                .sticky_bindings
                .entry(b.pool.clone())
                .or_default()
                .insert(b.user.clone(), b);
        }
        engine.revision = max_rev;
        Ok(engine)
    }

    /// Sets the time the next operations happen at (unix milliseconds).
    pub fn set_clock(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// Sequence number of the last event; changes exactly when state changes.
    pub fn seq(&self) -> u64 {
        self.events.last().map_or(0, |e| e.seq)
    }

    fn now_secs(&self) -> u64 {
        self.now_ms / 1000
    }

    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn log(&mut self, op: &str, resource: String, failure: Option<&Problem>) {
        let seq = self.seq() + 1;
        self.events.push(Event {
            seq,
            time: self.now_ms,
            op: op.to_owned(),
            resource,
            outcome: if failure.is_some() {
                EventOutcome::Partial
            } else {
                EventOutcome::Ok
            },
            code: failure.map(|p| p.code.clone()),
        });
    }

    // ----- reads -----

    pub fn destination(&self, name: &str) -> Option<&Destination> {
        self.destinations.get(name)
    }

    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.get(name)
    }

    pub fn app_config(&self, name: &str) -> Option<&AppConfig> {
        self.app_configs.get(name)
    }

    pub fn app_instance(&self, name: &str) -> Option<&AppInstance> {
        self.app_instances.get(name)
    }

    pub fn destinations_page(&self, cursor: Option<&str>, limit: usize) -> Page<&Destination> {
        page(&self.destinations, cursor, limit)
    }

    pub fn pools_page(&self, cursor: Option<&str>, limit: usize) -> Page<&Pool> {
        page(&self.pools, cursor, limit)
    }

    pub fn app_configs_page(&self, cursor: Option<&str>, limit: usize) -> Page<&AppConfig> {
        page(&self.app_configs, cursor, limit)
    }

    pub fn app_instances_page(&self, cursor: Option<&str>, limit: usize) -> Page<&AppInstance> {
        page(&self.app_instances, cursor, limit)
    }

    /// Sessions of one destination, ordered by id; the cursor is the last id.
    pub fn sessions_page(
        &self,
        destination: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<&Session>> {
        if !self.destinations.contains_key(destination) {
            return Err(not_found("destination", destination));
        }
        use std::ops::Bound;
        let lower = match cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        let mut iter = self
            .sessions
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(_, s)| s)
            .filter(|s| s.destination == destination);
        let items: Vec<&Session> = iter.by_ref().take(limit).collect();
        let next_cursor = match iter.next() {
            Some(_) => items.last().map(|s| s.id.clone()),
            None => None,
        };
        Ok(Page { items, next_cursor })
    }

    /// Events with `seq > since`, oldest first; the cursor is the last seq.
    pub fn events_page(&self, since: u64, limit: usize) -> Page<&Event> {
        // seq n is at index n - 1: the log is append-only and never trimmed.
        let start = usize::try_from(since)
            .unwrap_or(usize::MAX)
            .min(self.events.len());
        let items: Vec<&Event> = self.events[start..].iter().take(limit).collect();
        let next_cursor = if start + items.len() < self.events.len() {
            items.last().map(|e| e.seq.to_string())
        } else {
            None
        };
        Page { items, next_cursor }
    }

    /// The whole state in seed format; bindings expired at `now_ms` are left out.
    pub fn snapshot(&self, now_ms: u64) -> Snapshot {
        let now = now_ms / 1000;
        Snapshot {
            destinations: self.destinations.values().cloned().collect(),
            pools: self.pools.values().cloned().collect(),
            app_configs: self.app_configs.values().cloned().collect(),
            app_instances: self.app_instances.values().cloned().collect(),
            sessions: self.sessions.values().cloned().collect(),
            sticky_bindings: self
                .sticky_bindings
                .values()
                .flat_map(|m| m.values())
                .filter(|b| b.expires_at > now)
                .cloned()
                .collect(),
        }
    }

    /// The load-balanced pool `destination` belongs to, if any (at most one).
    fn lb_pool_of(&self, destination: &str) -> Option<&Pool> {
        self.pools.values().find(|p| {
            p.load_balancing.enabled
                && p.members
                    .binary_search_by(|m| m.as_str().cmp(destination))
                    .is_ok()
        })
    }

    fn destination_or_404(&self, name: &str) -> Result<&Destination> {
        self.destinations
            .get(name)
            .ok_or_else(|| not_found("destination", name))
    }

    fn pool_or_404(&self, name: &str) -> Result<&Pool> {
        self.pools.get(name).ok_or_else(|| not_found("pool", name))
    }

    // ----- sessions and sticky bindings -----

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

    fn end_session(&mut self, id: &str) {
        if let Some(s) = self.sessions.remove(id) {
            if let Some(d) = self.destinations.get_mut(&s.destination) {
                *count_mut(&mut d.sessions, s.state) -= 1;
            }
            self.bind_sticky(&s.user, &s.destination);
        }
    }

    fn session_ids_of(&self, destination: &str) -> Vec<String> {
        self.sessions
            .values()
            .filter(|s| s.destination == destination)
            .map(|s| s.id.clone())
            .collect()
    }

    /// Active sessions become disconnected, disconnected ones end; both leave
    /// a sticky binding when the pool is sticky. Offline hosts cannot be told.
    pub fn disconnect_sessions(&mut self, destination: &str) -> Result<Affected> {
        if !self.destination_or_404(destination)?.online {
            return Err(unreachable_host(destination));
        }
        let ids = self.session_ids_of(destination);
        for id in &ids {
            let Some(s) = self.sessions.get_mut(id) else {
                continue;
            };
            match s.state {
                SessionState::Active => {
                    s.state = SessionState::Disconnected;
                    let user = s.user.clone();
                    if let Some(d) = self.destinations.get_mut(destination) {
                        d.sessions.active -= 1;
                        d.sessions.disconnected += 1;
                    }
                    self.bind_sticky(&user, destination);
                }
                SessionState::Disconnected => self.end_session(id),
            }
        }
        if !ids.is_empty() {
            self.log(
                "sessions.disconnect",
                format!("destination/{destination}/sessions"),
                None,
            );
        }
        Ok(Affected {
            affected: ids.len() as u32,
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

    // ----- destinations -----

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

    /// Sets the service flag on `destinations`, skipping offline ones on
    /// uninstall; returns the offline ones that keep a leftover service.
    fn set_lb_service(&mut self, destinations: &[String], installed: bool) -> Vec<String> {
        let mut leftovers = Vec::new();
        for name in destinations {
            let Some(d) = self.destinations.get(name) else {
                continue;
            };
            if !installed && !d.online {
                leftovers.push(name.clone());
                continue;
            }
            if d.lb_service_installed != installed {
                let rev = self.next_revision();
                let d = self.destinations.get_mut(name).expect("checked above");
                d.lb_service_installed = installed;
                d.revision = rev;
            }
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

    // ----- pools -----

    /// Creates or replaces a pool's settings. The body is complete: an absent
    /// password clears the stored one. Switching load balancing on installs
    /// the service on every member (all must be admissible); switching it
    /// off uninstalls it, leaving leftovers on offline members.
    pub fn put_pool(&mut self, name: &str, body: PoolBody, if_match: Option<u64>) -> Result<Pool> {
        check_name("pool", name)?;
        let existing = self.pools.get(name);
        check_match("pool", name, existing.map(|p| p.revision), if_match)?;
        let old_hash = self.password_hashes.get(name);
        let new_hash = match &body.default_credentials.password {
            Some(pw) => match old_hash {
                Some(h) if h.matches(pw) => Some(h.clone()),
                _ => Some(SaltedHash::new(pw)),
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
            (false, true) => self.set_lb_service(&members, true),
            (true, false) => self.set_lb_service(&members, false),
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
    /// released as by member removal (leftover services on offline hosts).
    pub fn delete_pool(&mut self, name: &str, if_match: Option<u64>) -> Result<()> {
        let p = self.pool_or_404(name)?;
        check_match("pool", name, Some(p.revision), if_match)?;
        if let Some(c) = self.app_configs.values().find(|c| c.pool == name) {
            return Err(problem::new(
                409,
                codes::IN_USE,
                format!("pool {name} is used by app config {}", c.name),
            ));
        }
        let p = self.pools.remove(name).expect("checked above");
        self.password_hashes.remove(name);
        self.sticky_bindings.remove(name);
        let leftovers = if p.load_balancing.enabled {
            self.set_lb_service(&p.members, false)
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
    /// installed. Adding a member again changes nothing.
    pub fn put_member(&mut self, pool: &str, destination: &str) -> Result<Pool> {
        let p = self.pool_or_404(pool)?;
        let lb = p.load_balancing.enabled;
        let Err(at) = p.members.binary_search_by(|m| m.as_str().cmp(destination)) else {
            return Ok(p.clone());
        };
        self.destination_or_404(destination)?;
        if lb {
            self.lb_admission(pool, destination)?;
            self.set_lb_service(&[destination.to_owned()], true);
        }
        let rev = self.next_revision();
        let p = self.pools.get_mut(pool).expect("checked above");
        p.members.insert(at, destination.to_owned());
        p.revision = rev;
        let answer = p.clone();
        self.log(
            "member.add",
            format!("pool/{pool}/member/{destination}"),
            None,
        );
        Ok(answer)
    }

    /// Removes `destination` from `pool`. For a load-balanced pool the
    /// service is uninstalled; when the host is offline the membership is
    /// still removed, the service stays (leftover) and the answer is 502
    /// `lb_service_uninstall_failed`. Refused while an app instance of the
    /// pool targets the destination (retarget it first: make before break).
    pub fn delete_member(&mut self, pool: &str, destination: &str) -> Result<Pool> {
        let p = self.pool_or_404(pool)?;
        let lb = p.load_balancing.enabled;
        let Ok(at) = p.members.binary_search_by(|m| m.as_str().cmp(destination)) else {
            return Ok(p.clone());
        };
        if let Some(i) = self.app_instances.values().find(|i| {
            i.destination.as_deref() == Some(destination)
                && self
                    .app_configs
                    .get(&i.app_config)
                    .is_some_and(|c| c.pool == pool)
        }) {
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
            self.set_lb_service(&[destination.to_owned()], false)
        } else {
            Vec::new()
        };
        let rev = self.next_revision();
        let p = self.pools.get_mut(pool).expect("checked above");
        p.members.remove(at);
        p.revision = rev;
        let answer = p.clone();
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

    // ----- app configs and app instances -----

    pub fn put_app_config(
        &mut self,
        name: &str,
        body: AppConfigBody,
        if_match: Option<u64>,
    ) -> Result<AppConfig> {
        check_name("app config", name)?;
        let existing = self.app_configs.get(name);
        check_match("app config", name, existing.map(|c| c.revision), if_match)?;
        let Some(pool) = self.pools.get(&body.pool) else {
            return Err(missing_reference("pool", &body.pool));
        };
        if existing.is_some_and(|c| c.pool != body.pool)
            && let Some(i) = self.app_instances.values().find(|i| {
                i.app_config == name
                    && i.destination
                        .as_ref()
                        .is_some_and(|d| pool.members.binary_search(d).is_err())
            })
        {
            return Err(problem::new(
                409,
                codes::CONFLICT,
                format!(
                    "app instance {} targets a destination outside pool {}",
                    i.name, body.pool
                ),
            ));
        }
        let mut config = AppConfig {
            name: name.to_owned(),
            pool: body.pool,
            app_type: body.app_type,
            protocol: body.protocol,
            admin_session: body.admin_session,
            keep_credentials_on_destination_change: body.keep_credentials_on_destination_change,
            allow_destination_change: body.allow_destination_change,
            labels: body.labels,
            revision: existing.map_or(0, |c| c.revision),
        };
        if existing == Some(&config) {
            return Ok(config);
        }
        let op = if existing.is_some() {
            "app_config.update"
        } else {
            "app_config.create"
        };
        config.revision = self.next_revision();
        self.app_configs.insert(name.to_owned(), config.clone());
        self.log(op, format!("app_config/{name}"), None);
        Ok(config)
    }

    pub fn delete_app_config(&mut self, name: &str, if_match: Option<u64>) -> Result<()> {
        let c = self
            .app_configs
            .get(name)
            .ok_or_else(|| not_found("app config", name))?;
        check_match("app config", name, Some(c.revision), if_match)?;
        if let Some(i) = self.app_instances.values().find(|i| i.app_config == name) {
            return Err(problem::new(
                409,
                codes::IN_USE,
                format!("app config {name} is used by app instance {}", i.name),
            ));
        }
        self.app_configs.remove(name);
        self.log("app_config.delete", format!("app_config/{name}"), None);
        Ok(())
    }

    pub fn put_app_instance(
        &mut self,
        name: &str,
        body: AppInstanceBody,
        if_match: Option<u64>,
    ) -> Result<AppInstance> {
        check_name("app instance", name)?;
        let existing = self.app_instances.get(name);
        check_match("app instance", name, existing.map(|i| i.revision), if_match)?;
        if body.user.is_some() == body.group.is_some() {
            return Err(bad_request(
                "an app instance has exactly one of user / group",
            ));
        }
        let Some(config) = self.app_configs.get(&body.app_config) else {
            return Err(missing_reference("app config", &body.app_config));
        };
        if let Some(d) = &body.destination {
            if !self.destinations.contains_key(d) {
                return Err(missing_reference("destination", d));
            }
            let in_pool = self
                .pools
                .get(&config.pool)
                .is_some_and(|p| p.members.binary_search(d).is_ok());
            if !in_pool {
                return Err(problem::new(
                    409,
                    codes::CONFLICT,
                    format!("destination {d} is not a member of pool {}", config.pool),
                ));
            }
        }
        let mut instance = AppInstance {
            name: name.to_owned(),
            app_config: body.app_config,
            user: body.user,
            group: body.group,
            destination: body.destination,
            labels: body.labels,
            revision: existing.map_or(0, |i| i.revision),
        };
        if existing == Some(&instance) {
            return Ok(instance);
        }
        let op = if existing.is_some() {
            "app_instance.update"
        } else {
            "app_instance.create"
        };
        instance.revision = self.next_revision();
        self.app_instances.insert(name.to_owned(), instance.clone());
        self.log(op, format!("app_instance/{name}"), None);
        Ok(instance)
    }

    pub fn delete_app_instance(&mut self, name: &str, if_match: Option<u64>) -> Result<()> {
        let i = self
            .app_instances
            .get(name)
            .ok_or_else(|| not_found("app instance", name))?;
        check_match("app instance", name, Some(i.revision), if_match)?;
        self.app_instances.remove(name);
        self.log("app_instance.delete", format!("app_instance/{name}"), None);
        Ok(())
    }

    // ----- locks -----

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
        if body.holder.is_empty() {
            return Err(bad_request("lock holder must not be empty"));
        }
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

    // ----- simulation controls -----

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
            .or_insert_with(|| Destination {
                name: name.to_owned(),
                online,
                process_execution_ready,
                lb_service_installed: false,
                maintenance: Maintenance::default(),
                sessions: SessionCounts::default(),
                labels: BTreeMap::new(),
                revision: rev,
            });
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

    pub fn sim_start_session(
        &mut self,
        destination: &str,
        user: &str,
        state: SessionState,
    ) -> Result<Session> {
        if !self.destination_or_404(destination)?.online {
            return Err(unreachable_host(destination));
        }
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

    /// Checks a state file's contents after loading.
    pub fn check_format(&self) -> std::result::Result<(), String> {
        if self.format == STATE_FORMAT {
            Ok(())
        } else {
            Err(format!(
                "state file format {} is not the supported {STATE_FORMAT}",
                self.format
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::wire::{AppType, Labels, LoadBalancing, Protocol};

    const T0: u64 = 1_700_000_000_000;

    fn engine() -> Engine {
        let mut e = Engine::new();
        e.set_clock(T0);
        for n in ["rds-01", "rds-02", "rds-03"] {
            e.sim_destination(n, true, true).unwrap();
        }
        e.put_pool("live", lb_pool(10), None).unwrap();
        e
    }

    fn lb_pool(sticky: u32) -> PoolBody {
        PoolBody {
            load_balancing: LoadBalancing {
                enabled: true,
                sticky_sessions_minutes: sticky,
                grace_period_seconds: 30,
            },
            ..PoolBody::default()
        }
    }

    fn ops_since(e: &Engine, since: u64) -> Vec<String> {
        e.events_page(since, 1000)
            .items
            .iter()
            .map(|ev| format!("{} {} {:?} {:?}", ev.op, ev.resource, ev.outcome, ev.code))
            .collect()
    }

    #[test]
    fn adding_a_member_installs_the_service_and_is_idempotent() {
        let mut e = engine();
        let p = e.put_member("live", "rds-02").unwrap();
        assert_eq!(p.members, vec!["rds-02"]);
        assert!(e.destination("rds-02").unwrap().lb_service_installed);
        let seq = e.seq();
        let again = e.put_member("live", "rds-02").unwrap();
        assert_eq!(again.revision, p.revision);
        assert_eq!(e.seq(), seq, "a repeated add logs nothing");
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
        e.put_pool("other", lb_pool(0), None).unwrap();
        let err = e.put_member("other", "rds-01").unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (409, codes::CONFLICT));
        e.put_pool("plain", PoolBody::default(), None).unwrap();
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

    #[test]
    fn removing_from_an_online_host_uninstalls() {
        let mut e = engine();
        e.put_member("live", "rds-01").unwrap();
        e.delete_member("live", "rds-01").unwrap();
        assert!(!e.destination("rds-01").unwrap().lb_service_installed);
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

    #[test]
    fn disconnect_creates_sticky_bindings_and_clear_removes_them() {
        let mut e = engine();
        e.put_member("live", "rds-02").unwrap();
        e.sim_start_session("rds-02", "jane", SessionState::Active)
            .unwrap();
        e.sim_start_session("rds-02", "joe", SessionState::Disconnected)
            .unwrap();
        let affected = e.disconnect_sessions("rds-02").unwrap();
        assert_eq!(affected.affected, 2);
        let d = e.destination("rds-02").unwrap();
        assert_eq!(
            d.sessions,
            SessionCounts {
                active: 0,
                disconnected: 1
            }
        );
        let bindings = e.snapshot(e.now_ms).sticky_bindings;
        assert_eq!(bindings.len(), 2);
        assert_eq!(bindings[0].expires_at, T0 / 1000 + 600 + 30);
        assert_eq!(e.clear_sticky("live", Some("rds-01")).unwrap().affected, 0);
        assert_eq!(e.clear_sticky("live", Some("rds-02")).unwrap().affected, 2);
        assert!(e.snapshot(e.now_ms).sticky_bindings.is_empty());
        assert_eq!(e.disconnect_sessions("rds-02").unwrap().affected, 1);
        assert_eq!(
            e.destination("rds-02").unwrap().sessions,
            SessionCounts::default()
        );
    }

    #[test]
    fn no_sticky_bindings_below_one_minute_or_without_load_balancing() {
        let mut e = engine();
        e.put_pool("live", lb_pool(0), None).unwrap();
        e.put_member("live", "rds-01").unwrap();
        e.put_pool("plain", PoolBody::default(), None).unwrap();
        e.put_member("plain", "rds-02").unwrap();
        e.sim_start_session("rds-01", "jane", SessionState::Active)
            .unwrap();
        e.sim_start_session("rds-02", "joe", SessionState::Active)
            .unwrap();
        e.disconnect_sessions("rds-01").unwrap();
        e.disconnect_sessions("rds-02").unwrap();
        assert!(e.snapshot(e.now_ms).sticky_bindings.is_empty());
    }

    #[test]
    fn power_off_ends_sessions_with_sticky_bindings_and_blocks_disconnect() {
        let mut e = engine();
        e.put_member("live", "rds-03").unwrap();
        e.sim_start_session("rds-03", "jane", SessionState::Active)
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

    #[test]
    fn sticky_bindings_expire() {
        let mut e = engine();
        e.put_member("live", "rds-01").unwrap();
        e.sim_start_session("rds-01", "jane", SessionState::Active)
            .unwrap();
        e.disconnect_sessions("rds-01").unwrap();
        e.set_clock(T0 + 631_000);
        assert!(e.snapshot(e.now_ms).sticky_bindings.is_empty());
    }

    #[test]
    fn if_match_guards_writes() {
        let mut e = engine();
        let rev = e.pool("live").unwrap().revision;
        let err = e.put_pool("live", lb_pool(5), Some(rev + 100)).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (412, codes::PRECONDITION_FAILED)
        );
        let p = e.put_pool("live", lb_pool(5), Some(rev)).unwrap();
        assert!(p.revision > rev);
        assert_eq!(
            e.put_pool("new", lb_pool(5), Some(1)).unwrap_err().status,
            412
        );
        assert_eq!(e.delete_pool("live", Some(rev)).unwrap_err().status, 412);
    }

    #[test]
    fn references_block_deletes() {
        let mut e = engine();
        e.put_member("live", "rds-01").unwrap();
        let body = AppConfigBody {
            pool: "live".into(),
            app_type: AppType::Desktop,
            protocol: Protocol::Rdp,
            admin_session: false,
            keep_credentials_on_destination_change: false,
            allow_destination_change: false,
            labels: Labels::new(),
        };
        let missing = AppConfigBody {
            pool: "nope".into(),
            ..body.clone()
        };
        let err = e.put_app_config("desk", missing, None).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (422, codes::NOT_FOUND));
        e.put_app_config("desk", body, None).unwrap();
        let instance = |dest: &str| AppInstanceBody {
            app_config: "desk".into(),
            user: Some("jane".into()),
            group: None,
            destination: Some(dest.into()),
            labels: Labels::new(),
        };
        assert_eq!(
            e.put_app_instance("i", instance("rds-02"), None)
                .unwrap_err()
                .code,
            codes::CONFLICT
        );
        e.put_app_instance("i", instance("rds-01"), None).unwrap();
        assert_eq!(
            e.delete_member("live", "rds-01").unwrap_err().code,
            codes::IN_USE
        );
        assert_eq!(e.delete_pool("live", None).unwrap_err().code, codes::IN_USE);
        assert_eq!(
            e.delete_app_config("desk", None).unwrap_err().code,
            codes::IN_USE
        );
        e.delete_app_instance("i", None).unwrap();
        e.delete_app_config("desk", None).unwrap();
        e.delete_pool("live", None).unwrap();
        assert!(!e.destination("rds-01").unwrap().lb_service_installed);
    }

    #[test]
    fn passwords_are_kept_only_as_salted_hashes() {
        let mut e = engine();
        let mut body = PoolBody::default();
        body.default_credentials.password = Some("hunter2-secret".into());
        let p = e.put_pool("maint", body.clone(), None).unwrap();
        assert!(p.default_credentials.password_set);
        let seq = e.seq();
        assert_eq!(
            e.put_pool("maint", body.clone(), None).unwrap().revision,
            p.revision
        );
        assert_eq!(e.seq(), seq, "same password: no change");
        body.default_credentials.password = Some("other".into());
        assert!(e.put_pool("maint", body, None).unwrap().revision > p.revision);
        let file = serde_json::to_string(&e).unwrap();
        assert!(!file.contains("hunter2-secret") && !file.contains("\"other\""));
    }

    #[test]
    fn enabling_load_balancing_checks_and_installs_every_member() {
        let mut e = engine();
        e.put_pool("plain", PoolBody::default(), None).unwrap();
        e.put_member("plain", "rds-01").unwrap();
        e.sim_destination("rds-02", true, false).unwrap();
        e.put_member("plain", "rds-02").unwrap();
        let err = e.put_pool("plain", lb_pool(0), None).unwrap_err();
        assert_eq!(err.code, codes::DESTINATION_NOT_READY);
        assert!(!e.destination("rds-01").unwrap().lb_service_installed);
        e.sim_destination("rds-02", true, true).unwrap();
        e.put_pool("plain", lb_pool(0), None).unwrap();
        assert!(e.destination("rds-02").unwrap().lb_service_installed);
        e.sim_power("rds-02", false).unwrap();
        let err = e.put_pool("plain", PoolBody::default(), None).unwrap_err();
        assert_eq!(err.code, codes::LB_SERVICE_UNINSTALL_FAILED);
        assert!(!e.pool("plain").unwrap().load_balancing.enabled);
        assert!(!e.destination("rds-01").unwrap().lb_service_installed);
    }

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
    }

    #[test]
    fn pages_follow_the_cursor() {
        let mut e = Engine::new();
        for i in 0..25 {
            e.put_pool(&format!("p{i:03}"), PoolBody::default(), None)
                .unwrap();
        }
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = e.pools_page(cursor.as_deref(), 10);
            names.extend(page.items.iter().map(|p| p.name.clone()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(names.len(), 25);
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        let ev = e.events_page(20, 3);
        assert_eq!(
            ev.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![21, 22, 23]
        );
        assert_eq!(ev.next_cursor.as_deref(), Some("23"));
        assert!(e.events_page(23, 3).next_cursor.is_none());
    }

    #[test]
    fn seeds_are_checked_for_broken_references() {
        let e = engine();
        let mut snap = e.snapshot(T0);
        snap.pools[0].members = vec!["rds-01".into()];
        let mut second = snap.pools[0].clone();
        second.name = "live-2".into();
        snap.pools.push(second);
        let err = Engine::from_snapshot(snap.clone()).unwrap_err();
        assert!(
            err.detail
                .unwrap()
                .contains("load-balanced pools live and live-2")
        );
        snap.pools.pop();
        let restored = Engine::from_snapshot(snap).unwrap();
        assert!(restored.destination("rds-01").unwrap().lb_service_installed);
    }

    #[test]
    fn names_are_checked() {
        let mut e = Engine::new();
        assert_eq!(
            e.put_pool("bad name", PoolBody::default(), None)
                .unwrap_err()
                .status,
            400
        );
        assert!(names::is_valid(&"a".repeat(63)) && !names::is_valid(&"a".repeat(64)));
    }
}
