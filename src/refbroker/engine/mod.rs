//! The reference broker engine: the whole broker state and every operation on
//! it as typed, transport-independent methods. The HTTP server and the
//! embedded broker both call these; neither adds behaviour of its own.
//!
//! This file owns the state itself (the `Engine` struct, serialised as the
//! state file), the broker's identity, the revision counter, the event log,
//! the virtual clock, the reads and pages, the snapshot, and the problems and
//! checks every rule family shares. Each rule family has a file of its own:
//! `seed` (building from a snapshot), `pools` (pools, membership,
//! load-balancing admission and the service, leftovers), `sessions`
//! (sessions, sticky bindings), `messages` (notices to users), `maintenance`
//! (maintenance mode, leftover service removal), `drain` (drain mode), `apps` (app configs and app
//! instances), `locks` (leases) and `sim` (simulation controls).
//!
//! Conventions:
//! - every state change appends exactly one event; a write that changes
//!   nothing (idempotent repeat) appends none and keeps revisions;
//! - revisions come from one broker-wide counter, so a deleted and re-created
//!   resource never reuses a revision;
//! - session counts on a destination are observed data and do not bump its
//!   revision (a user logging in must not make a saved plan stale).

mod apps;
mod delta;
mod drain;
mod locks;
mod lookups;
mod maintenance;
mod messages;
mod pools;
mod seed;
mod sessions;
mod sim;
mod tracked;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::Expect;
use crate::contract::names;
use crate::contract::problem::{self, Problem, codes};
use crate::contract::wire::{
    AppConfig, AppInstance, Destination, Event, EventOutcome, Lock, Membership, Page, Pool,
    Session, SessionCounts, SessionState, Snapshot, StickyBinding,
};

pub use delta::Delta;
pub use pools::UNKNOWN_PASSWORD;

use lookups::Lookups;
use tracked::Tracked;

/// Version of the state file layout written by `store`. Format 2 added the
/// broker identity, format 3 Argon2id password hashes, format 4 records of
/// member writes as memberships (which a broker reading format 3 would take
/// for a torn end and drop); older files are upgraded on load (see
/// [`Engine::from_state`]).
pub const STATE_FORMAT: u32 = 4;

/// Longest lock lease the broker grants; a killed apply must not hold a stack
/// for longer than a day.
pub const MAX_LOCK_TTL_SECONDS: u64 = 86_400;

/// The broker state. It serialises as the state file (see `store`), which is
/// why it holds maps keyed by name: the file stays sorted and diffable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    format: u32,
    /// The broker's identity, minted when this state was created. Absent
    /// only in format-1 files.
    #[serde(default)]
    id: String,
    /// Broker-wide revision counter; every changed resource takes the next value.
    revision: u64,
    next_session: u64,
    destinations: Tracked<Destination>,
    pools: Tracked<Pool>,
    /// Pool name → Argon2id hash of its default password (a PHC string
    /// from `contract::hash`), or [`UNKNOWN_PASSWORD`].
    password_hashes: Tracked<String>,
    app_configs: Tracked<AppConfig>,
    app_instances: Tracked<AppInstance>,
    sessions: Tracked<Session>,
    /// Pool → user → binding.
    sticky_bindings: Tracked<BTreeMap<String, StickyBinding>>,
    locks: Tracked<Lock>,
    events: Vec<Event>,
    /// Member writes since the last record, in order: recorded as the
    /// memberships they left, not as their pools whole (see `Delta`).
    #[serde(skip)]
    member_changes: Vec<Membership>,
    /// Derived from `pools`, `app_configs`, `app_instances` and `sessions`
    /// (see `lookups`): built on first need, then kept up to date by every
    /// write of them.
    #[serde(skip)]
    lookups: OnceLock<Lookups>,
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

/// Checks a conditional write against the resource's current revision
/// (`None` when it does not exist).
fn check_expect(kind: &str, name: &str, current: Option<u64>, expect: Expect) -> Result<()> {
    let detail = match (expect, current) {
        (Expect::Any, _) | (Expect::Absent, None) => return Ok(()),
        (Expect::Revision(wanted), Some(rev)) if rev == wanted => return Ok(()),
        (Expect::Revision(wanted), Some(rev)) => {
            format!("{kind} {name} is at revision {rev}, not {wanted}")
        }
        (Expect::Revision(_), None) => format!("{kind} {name} does not exist"),
        (Expect::Absent, Some(rev)) => format!("{kind} {name} exists (revision {rev})"),
    };
    Err(problem::new(412, codes::PRECONDITION_FAILED, detail))
}

/// A fresh broker identity: 128 random bits as hex.
fn mint_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
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
    Page {
        total: map.len() as u64,
        items,
        next_cursor,
    }
}

fn count_mut(counts: &mut SessionCounts, state: SessionState) -> &mut u32 {
    match state {
        SessionState::Active => &mut counts.active,
        SessionState::Disconnected => &mut counts.disconnected,
    }
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new()
    }
}

impl Engine {
    /// An empty broker state with an identity of its own.
    pub fn new() -> Engine {
        Engine {
            format: STATE_FORMAT,
            id: mint_id(),
            revision: 0,
            next_session: 0,
            destinations: Tracked::default(),
            pools: Tracked::default(),
            password_hashes: Tracked::default(),
            app_configs: Tracked::default(),
            app_instances: Tracked::default(),
            sessions: Tracked::default(),
            sticky_bindings: Tracked::default(),
            locks: Tracked::default(),
            events: Vec::new(),
            member_changes: Vec::new(),
            lookups: OnceLock::new(),
            now_ms: 0,
        }
    }

    /// The broker's identity.
    pub fn id(&self) -> &str {
        &self.id
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
        let ids = self.lookups().sessions_on(destination);
        // Ids are in order: the page starts after its cursor.
        let from = cursor.map_or(0, |c| ids.partition_point(|id| id.as_str() <= c));
        let mut iter = ids[from..].iter().filter_map(|id| self.sessions.get(id));
        let items: Vec<&Session> = iter.by_ref().take(limit).collect();
        let next_cursor = match iter.next() {
            Some(_) => items.last().map(|s| s.id.clone()),
            None => None,
        };
        let total = ids.len() as u64;
        Ok(Page {
            total,
            items,
            next_cursor,
        })
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
        // The list asked for is the events after `since`.
        Page {
            total: (self.events.len() - start) as u64,
            items,
            next_cursor,
        }
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
        (self.lookups().pools_of(destination).iter())
            .filter_map(|name| self.pools.get(name))
            .find(|p| p.load_balancing.enabled)
    }

    fn lookups(&self) -> &Lookups {
        self.lookups.get_or_init(|| Lookups::build(&self.sources()))
    }

    fn sources(&self) -> lookups::Sources<'_> {
        lookups::Sources {
            pools: &self.pools,
            app_configs: &self.app_configs,
            app_instances: &self.app_instances,
            sessions: &self.sessions,
        }
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

    /// Applies `change` to destination `name` as part of a larger write (no
    /// event of its own), taking a new revision only when it changed
    /// something.
    fn revise_destination(&mut self, name: &str, change: impl FnOnce(&mut Destination)) {
        let Some(current) = self.destinations.get(name) else {
            return;
        };
        let mut next = current.clone();
        change(&mut next);
        if next != *current {
            next.revision = self.next_revision();
            self.destinations.insert(name.to_owned(), next);
        }
    }

    fn destination_or_404(&self, name: &str) -> Result<&Destination> {
        self.destinations
            .get(name)
            .ok_or_else(|| not_found("destination", name))
    }

    fn pool_or_404(&self, name: &str) -> Result<&Pool> {
        self.pools.get(name).ok_or_else(|| not_found("pool", name))
    }

    /// Decodes a state file, upgrading an earlier format on the way:
    /// format 1 predates identities, so it gets one minted now (its state
    /// was never seen under another); formats 1 and 2 kept salted SHA-256
    /// password hashes, too fast to guess against to keep, so each becomes
    /// [`UNKNOWN_PASSWORD`]: the pool still has a password, and the next one
    /// sent for it counts as a change and is hashed with Argon2id. Returns
    /// whether it upgraded; the caller writes an upgraded state back at once,
    /// so neither a new identity is lost nor an old hash kept.
    pub fn from_state(mut state: Value) -> std::result::Result<(Engine, bool), String> {
        let format = state.get("format").and_then(Value::as_u64);
        let upgraded = match format {
            Some(f) if f == u64::from(STATE_FORMAT) => false,
            Some(old @ (1..=3)) => {
                if old == 1 {
                    state["id"] = mint_id().into();
                }
                if old < 3
                    && let Some(Value::Object(hashes)) = state.get_mut("password_hashes")
                {
                    hashes
                        .values_mut()
                        .for_each(|h| *h = UNKNOWN_PASSWORD.into());
                }
                // Format 3 is format 4 without membership records, which
                // its records, read as they are, do not have.
                state["format"] = STATE_FORMAT.into();
                true
            }
            _ => {
                let found = state
                    .get("format")
                    .map_or("none".to_owned(), Value::to_string);
                return Err(format!(
                    "state file format {found} is not the supported {STATE_FORMAT} (nor 1 to 3, which are upgraded)"
                ));
            }
        };
        let engine: Engine = serde_json::from_value(state).map_err(|e| e.to_string())?;
        if engine.id.is_empty() {
            return Err("the state file has no broker id".to_owned());
        }
        Ok((engine, upgraded))
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::wire::PoolBody;

    #[test]
    fn pages_follow_the_cursor() {
        let mut e = Engine::new();
        for i in 0..25 {
            e.put_pool(&format!("p{i:03}"), PoolBody::default(), Expect::Any)
                .unwrap();
        }
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = e.pools_page(cursor.as_deref(), 10);
            assert_eq!(page.total, 25);
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
        // The events after `since` are the list asked for.
        assert_eq!(ev.total, 5);
        assert!(e.events_page(23, 3).next_cursor.is_none());
        assert_eq!(e.events_page(23, 3).total, 2);
    }

    #[test]
    fn names_are_checked() {
        let mut e = Engine::new();
        assert_eq!(
            e.put_pool("bad name", PoolBody::default(), Expect::Any)
                .unwrap_err()
                .status,
            400
        );
        assert!(names::is_valid(&"a".repeat(63)) && !names::is_valid(&"a".repeat(64)));
    }
}
