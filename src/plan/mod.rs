//! The plan: what must change on the broker to reach the desired state, as
//! resource changes (field-level diffs) expanded into ordered broker steps,
//! with the safety violations found on the way. Pure data: no IO, no human
//! strings; render turns it into text and apply executes it.

mod diff;
mod fact;
mod field;
mod order;
mod ready;
mod rehearsal;
mod rotation;
mod safety;
mod saved;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::address::Address;
use crate::contract::LiveState;
use crate::contract::wire::{AppConfigBody, AppInstanceBody, Labels, LoadBalancing, Maintenance};
use crate::desired::{Desired, DrainNotice, DrainSessions};
use crate::secret::SecretSource;

pub use fact::Fact;
pub use field::{Field, FieldValue, Names};
pub use order::CycleError;
pub use rehearsal::{Rehearsal, Rehearsed, RehearsedEvent, RehearsedStep, Tally};
pub use rotation::Reason;
pub use safety::Violation;
pub use saved::{SavedPlanError, is_saved_plan, read_saved};

/// Bumped whenever a saved plan's shape changes incompatibly. Format 3
/// added what an older apply cannot carry out: drains that warn users
/// first, maintenance that records the pools it took a server out of, the
/// reason of a membership change, and a rehearsal's findings; format 4 the
/// step a pool's removals wait for until its new members are in.
pub const FORMAT_VERSION: u32 = 4;

/// A computed plan. Serialised as-is into saved plan files and `--format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Version of this document's shape.
    pub format_version: u32,
    /// The stack whose resources this plan manages.
    pub stack: String,
    /// The broker the plan was made against; a saved plan applies there only.
    pub broker: BrokerIdentity,
    /// The `--target` addresses the plan was restricted to (empty: all).
    pub targets: Vec<Address>,
    /// Made with `--force`: its violations that can be overridden are.
    pub forced: bool,
    /// Resource-level changes, sorted by address.
    pub changes: Vec<Change>,
    /// Broker operations in execution order; each names the steps it waits for.
    pub steps: Vec<Step>,
    /// Safety rules the plan would break; apply refuses unless forced.
    pub violations: Vec<Violation>,
    /// Live resources not labelled with this stack: counted, never touched.
    pub unmanaged: Unmanaged,
    /// Revision of every live resource the plan touches, as read at plan
    /// time; `apply PLANFILE` refuses when any of them moved.
    pub revisions: Vec<Revision>,
    /// What a rehearsal against a copy of live state found (`--rehearse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<Rehearsal>,
    /// SHA-256 over the plan with this field empty; guards saved plans.
    pub checksum: String,
}

/// Which broker a plan was made against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokerIdentity {
    /// The identity the broker reports: minted when its state was created,
    /// so a broker started from another's snapshot or seed has another.
    pub id: String,
    /// Where it was reached, for people reading the plan.
    pub url: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unmanaged {
    pub pools: usize,
    pub app_configs: usize,
    pub app_instances: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Revision {
    pub address: Address,
    /// `None` when the resource did not exist at plan time.
    pub revision: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// Only the fields that differ (all set fields on create; none on delete).
    pub fields: Vec<FieldDiff>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDiff {
    /// Dotted path, e.g. `load_balancing.sticky_sessions_minutes`, `labels.team`, `members`.
    #[schemars(with = "String")]
    pub field: Field,
    /// Absent: nothing to show (a created resource, a secret); `null`: the
    /// field was unset.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<serde_json::Value>")]
    pub before: Option<FieldValue>,
    /// Absent: nothing to show (a secret); `null`: the field becomes unset.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<serde_json::Value>")]
    pub after: Option<FieldValue>,
    /// A secret: `before`/`after` are never recorded, only that it changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// A present `null` is a value (unset), so it must read back as
/// `Some(Null)`: serde's default reads it as absent, and the checksum of a
/// saved plan with a field going from or to nothing would no longer match.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<FieldValue>, D::Error> {
    FieldValue::deserialize(deserializer).map(Some)
}

/// One broker operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// Index of this step in `Plan::steps`.
    pub id: usize,
    #[serde(flatten)]
    pub op: Op,
    /// Steps that must finish (successfully, or with an expected warning) first.
    pub depends_on: Vec<usize>,
    /// The resource change this step belongs to.
    pub cause: Address,
    /// The live facts the step was planned on; apply checks them right
    /// before the step's write and fails the step when one changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preconditions: Vec<Fact>,
    // Boxed: few steps have one, and unboxed it made every step 16 bytes
    // larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_warning: Option<Box<ExpectedWarning>>,
    /// Why a membership changes when the config's member list does not say
    /// it: maintenance took the destination out of rotation, or ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// A name in a step or a fact: shared, as a member's steps and their facts
/// all name the same destination and pool (a plan replacing 1M members
/// named them in 24M allocations of their own), and one pointer where a
/// `String` is three, as they are never grown. Serialised as a string.
pub use crate::address::Name;

/// What a step does. The large payloads of rare operations are boxed
/// (the wire and the schema are unchanged): a plan of 3M steps is mostly
/// member changes of two names, and an `Op` sized for a pool's settings
/// made each step 272 bytes rather than 200; with [`Name`]s it is 136.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Create a pool or replace its settings (not its members).
    PutPool {
        pool: Name,
        settings: Box<PoolSettings>,
    },
    AddMember {
        pool: Name,
        destination: Name,
    },
    /// No broker call: done once every member the plan adds to `pool` is
    /// in. The pool's removals wait for it (make before break) instead of
    /// each waiting for every add: a pool of N members replaced whole made
    /// N² dependencies (at 10k members 100M, and 1.2 GB to plan them).
    AwaitNewMembers {
        pool: Name,
    },
    PutAppConfig {
        app_config: Name,
        body: Box<AppConfigBody>,
    },
    PutAppInstance {
        app_instance: Name,
        body: Box<AppInstanceBody>,
    },
    PutMaintenance {
        destination: Name,
        maintenance: Box<Maintenance>,
    },
    DeleteMaintenance {
        destination: Name,
    },
    /// Drain mode on, held by the plan's stack: the destination accepts no
    /// new sessions (but from the groups maintenance mode lets in) until it
    /// leaves its load-balanced pool. Heads every removal from one.
    StopLogons {
        destination: Name,
    },
    /// Drain mode off: the destination was left draining by this stack and
    /// stays in its pools.
    AllowLogons {
        destination: Name,
    },
    /// Empty the destination of sessions per the pool's drain policy.
    DrainSessions {
        pool: Name,
        destination: Name,
        policy: DrainSessions,
        timeout_seconds: Option<u64>,
        /// Active sessions seen at plan time.
        active_sessions: u32,
        /// Users are told first and given the lead time to log off before
        /// the rest are disconnected (`disconnect` only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice: Option<Box<DrainNotice>>,
    },
    /// Drop sticky bindings of `pool` that point at `destination`.
    ClearSticky {
        pool: Name,
        destination: Name,
    },
    RemoveMember {
        pool: Name,
        destination: Name,
    },
    /// Uninstall a load-balancing service left behind on a destination.
    RemoveLbService {
        destination: Name,
    },
    DeleteAppInstance {
        app_instance: Name,
    },
    DeleteAppConfig {
        app_config: Name,
    },
    DeletePool {
        pool: Name,
    },
}

impl Op {
    /// The destination a step acts on, if any: apply never runs two steps on
    /// the same destination at once.
    pub fn destination(&self) -> Option<&str> {
        match self {
            Op::AddMember { destination, .. }
            | Op::PutMaintenance { destination, .. }
            | Op::DeleteMaintenance { destination }
            | Op::StopLogons { destination }
            | Op::AllowLogons { destination }
            | Op::DrainSessions { destination, .. }
            | Op::ClearSticky { destination, .. }
            | Op::RemoveMember { destination, .. }
            | Op::RemoveLbService { destination } => Some(destination),
            _ => None,
        }
    }
}

/// Pool settings as planned. The password is kept as its source, never its
/// value: apply resolves it again and writes its salted fingerprint label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    pub load_balancing: LoadBalancing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretSource>,
    /// Labels to write, including the stack label.
    pub labels: Labels,
}

/// An error the broker is expected to give, announced in advance; apply
/// reports it as a warning instead of a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "code", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExpectedWarning {
    /// Removing an offline destination from a load-balanced pool: the
    /// membership goes, the load-balancing service stays installed.
    LbServiceUninstallFailed { destination: String },
}

/// Restricts a plan to some resources (`--target KIND/NAME`). A destination
/// target covers that destination's maintenance and memberships.
#[derive(Debug, Clone, Default)]
pub struct Targets(pub Vec<Address>);

impl Targets {
    fn all(&self) -> bool {
        self.0.is_empty()
    }

    fn covers(&self, address: &Address) -> bool {
        self.covers_name(address.kind, &address.name)
    }

    /// `covers` without building an address: asked once per resource of a
    /// large stack, most of which are not changed.
    fn covers_name(&self, kind: crate::address::Kind, name: &str) -> bool {
        self.all() || self.0.iter().any(|t| t.kind == kind && *t.name == *name)
    }

    fn covers_member(&self, pool: &str, destination: &str) -> bool {
        self.all()
            || self.0.iter().any(|t| {
                (t.kind == crate::address::Kind::Pool && *t.name == *pool)
                    || (t.kind == crate::address::Kind::Destination && *t.name == *destination)
            })
    }
}

/// Computes the plan that takes `live` to `desired`. Deterministic: the same
/// inputs give the same plan, byte for byte, whatever order `live` lists in.
pub fn compute(desired: &Desired, live: &LiveState, targets: &Targets) -> Result<Plan, CycleError> {
    compute_at(desired, live, targets, String::new())
}

/// [`compute`] for a broker reached at `url`: the URL is part of what the
/// checksum seals, and a seal serialises the whole plan (tens of MB at 100k
/// members), so the plan is sealed once, with it.
pub fn compute_at(
    desired: &Desired,
    live: &LiveState,
    targets: &Targets,
    url: String,
) -> Result<Plan, CycleError> {
    let mut plan = compute_unsealed(desired, live, targets, url)?;
    plan.seal();
    tracing::trace!("sealed the plan");
    Ok(plan)
}

/// [`compute_at`] without the seal: the checksum is left empty, for a
/// caller that computes it ([`checksum`]) on another thread while it
/// reports and renders the plan. Nothing may save or apply the plan before
/// the checksum is set.
pub fn compute_unsealed(
    desired: &Desired,
    live: &LiveState,
    targets: &Targets,
    url: String,
) -> Result<Plan, CycleError> {
    // Phase marks at trace level: `POOLFORM_LOG=poolform=trace` shows, by
    // their timestamps, where the time of a slow plan goes.
    let index = diff::LiveIndex::new(live);
    tracing::trace!("indexed the live state");
    let rotation = rotation::Rotation::new(desired, &index);
    let effective = rotation.effective(desired);
    let delta = diff::diff(&effective, &index, targets);
    tracing::trace!("diffed");
    // The safety rules but one read the delta and the live state alone,
    // and the expansion and the sort use one core: the rules run on the
    // other meanwhile (at 1M members they take a third of a second, most
    // of it lookups in tables of 1M names).
    let (sorted, found) = std::thread::scope(|scope| {
        let checking = scope.spawn(|| {
            let found = safety::check_delta(&effective, &index, &delta);
            tracing::trace!("checked the delta");
            found
        });
        let order::Expanded { mut steps, hosts } = order::expand(&effective, &index, &delta);
        tracing::trace!(steps = steps.len(), "expanded the steps");
        // Before the sort: in the order the steps were made, a member's
        // steps are side by side, and its live destination, read for the
        // facts of the first, is still in the cache for the next (at 1M
        // members each lookup is otherwise a few cache misses). A removal
        // chain's host comes from the expansion, which looked it up already.
        fact::attach(&mut steps, &hosts, &index, &delta.pools);
        drop(hosts);
        tracing::trace!("attached the facts");
        let sorted = order::sort(steps);
        tracing::trace!("ordered the steps");
        // A panic there is a bug like one here, and ends the run the same way.
        let found = checking
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (sorted, found)
    });
    let mut steps = sorted?;
    rotation.annotate(&mut steps, desired, &index);
    let mut violations = found.with_drains(&delta, &steps);
    rotation.name_unavailable(&mut violations, desired);
    tracing::trace!("checked safety");
    let mut recorded_targets = targets.0.clone();
    recorded_targets.sort();
    recorded_targets.dedup();
    Ok(Plan {
        format_version: FORMAT_VERSION,
        stack: desired.stack.clone(),
        broker: BrokerIdentity {
            id: live.identity.clone(),
            url,
        },
        targets: recorded_targets,
        forced: false,
        changes: delta.changes,
        steps,
        violations,
        unmanaged: delta.unmanaged,
        revisions: delta.revisions,
        rehearsal: None,
        checksum: String::new(),
    })
}

/// SHA-256 (hex) over the plan's JSON with the checksum field empty.
pub fn checksum(plan: &Plan) -> String {
    if plan.checksum.is_empty() {
        return digest(plan);
    }
    let mut unsealed = plan.clone();
    unsealed.checksum.clear();
    digest(&unsealed)
}

/// SHA-256 (hex) of the plan's JSON as it stands, streamed into the hash:
/// a plan of 100k steps is tens of MB of JSON, not worth a buffer.
fn digest(plan: &Plan) -> String {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // serde_json writes a field or a number at a time; a buffer keeps the
    // hash fed in blocks.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, Hashing(Sha256::new()));
    serde_json::to_writer(&mut out, plan).expect("plan serialises");
    let hashing = out
        .into_inner()
        .unwrap_or_else(|_| unreachable!("hashing cannot fail"));
    hex::encode(hashing.0.finalize())
}

/// JSON Schema (draft-07) of the plan document, for `schema/plan.schema.json`.
pub fn json_schema() -> schemars::Schema {
    crate::json_schema::draft07::<Plan>()
}

impl Plan {
    /// Sets the checksum over everything else, without a copy of the plan.
    fn seal(&mut self) {
        self.checksum.clear();
        self.checksum = digest(self);
    }

    /// Records that `--force` overrides the violations that can be
    /// overridden, and seals the plan again.
    pub fn force(mut self) -> Plan {
        self.forced = true;
        self.seal();
        self
    }

    /// Records what a rehearsal of the plan found, and seals the plan again.
    pub fn rehearsed(mut self, rehearsal: Rehearsal) -> Plan {
        self.rehearsal = Some(rehearsal);
        self.seal();
        self
    }

    /// Violations overridden, by `--force` now (`force`) or when the plan
    /// was made, with their positions in `violations`.
    pub fn overridden(&self, force: bool) -> impl Iterator<Item = (usize, &Violation)> {
        let forced = force || self.forced;
        self.violations
            .iter()
            .enumerate()
            .filter(move |(_, v)| forced && v.can_be_overridden())
    }

    /// Violations that stop the plan: all of them unless forced, and those
    /// that make a step certain to fail even then.
    pub fn blocking(&self, force: bool) -> impl Iterator<Item = &Violation> {
        let forced = force || self.forced;
        self.violations
            .iter()
            .filter(move |v| !forced || !v.can_be_overridden())
    }

    pub fn has_changes(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Counts for the summary line: (add, change, destroy).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |a| self.changes.iter().filter(|c| c.action == a).count();
        (
            count(Action::Create),
            count(Action::Update),
            count(Action::Delete),
        )
    }

    pub fn expected_warnings(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.expected_warning.is_some())
    }

    /// Touched revisions as a map, for the stale-plan check.
    pub fn revision_map(&self) -> BTreeMap<&Address, Option<u64>> {
        self.revisions
            .iter()
            .map(|r| (&r.address, r.revision))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
