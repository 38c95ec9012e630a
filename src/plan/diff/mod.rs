//! The diff: desired state against live state by identity (kind, name), then
//! field by field. Produces the resource changes shown to users and the
//! structured deltas that step expansion and the safety checks work from.

mod by_name;
mod items;
mod pools;

use std::collections::{BTreeSet, HashMap};

use rustc_hash::{FxHashMap, FxHashSet};

use by_name::ByName;
use items::diff_items;

use serde_json::{Value, json};

use super::{
    Action, Change, Field, FieldDiff, FieldValue, PoolSettings, Revision, Targets, Unmanaged,
};
use crate::address::{Address, Kind};
use crate::contract::LiveState;
use crate::contract::labels::owner;
use crate::contract::wire::{
    AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Destination, Labels, Maintenance, Pool,
};
use crate::desired::Drain;

/// Live state indexed by name, built once per plan so that every lookup is
/// O(1) whatever the size.
pub(super) struct LiveIndex<'a> {
    pub destinations: ByName<'a, Destination>,
    pub pools: ByName<'a, Pool>,
    pub app_configs: ByName<'a, AppConfig>,
    pub app_instances: ByName<'a, AppInstance>,
    pub live: &'a LiveState,
}

impl<'a> LiveIndex<'a> {
    pub fn new(live: &'a LiveState) -> Self {
        // The two big tables (a destination and an app instance per
        // member) are built on two cores.
        std::thread::scope(|scope| {
            let destinations = scope.spawn(|| ByName::new(&live.destinations, |d| &d.name));
            let app_instances = ByName::new(&live.app_instances, |i| &i.name);
            LiveIndex {
                destinations: destinations
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                pools: ByName::new(&live.pools, |p| &p.name),
                app_configs: ByName::new(&live.app_configs, |c| &c.name),
                app_instances,
                live,
            }
        })
    }

    pub fn is_online(&self, destination: &str) -> bool {
        self.destinations.get(destination).is_some_and(|d| d.online)
    }
}

/// Whether a pool comes, changes or goes, with the settings to write.
#[derive(Debug)]
pub(super) enum PoolChange {
    Create(PoolSettings),
    /// `None` when only members change.
    Update(Option<PoolSettings>),
    Delete,
}

impl PoolChange {
    /// The settings to write: on create, and on update when a setting differs.
    pub fn settings(&self) -> Option<&PoolSettings> {
        match self {
            PoolChange::Create(settings) | PoolChange::Update(Some(settings)) => Some(settings),
            PoolChange::Update(None) | PoolChange::Delete => None,
        }
    }
}

/// What happens to one pool.
#[derive(Debug)]
pub(super) struct PoolDelta<'a> {
    pub name: String,
    pub change: PoolChange,
    /// Sorted, without duplicates (the expansion finds a member's add by
    /// binary search).
    pub adds: Vec<&'a str>,
    /// Sorted, without duplicates (see [`PoolDelta::removes_member`]).
    pub removes: Vec<&'a str>,
    /// How to drain members leaving the pool (the default for deleted pools).
    pub drain: Drain,
    /// Whether the pool load-balances at the time members leave it (its live
    /// setting), which decides drain, sticky clearing and expected warnings.
    pub removal_load_balanced: bool,
    pub removal_sticky: bool,
    /// Whether the pool load-balances once the plan is applied.
    pub load_balanced_after: bool,
    pub min_members: Option<u32>,
    /// Members once the plan is applied, sorted (a vector: built for every
    /// changed pool, and looked up only now and then).
    pub members_after: Vec<&'a str>,
}

impl PoolDelta<'_> {
    /// Whether the plan removes `member` from the pool: a binary search, as
    /// every pool diff lists its removes in order.
    pub fn removes_member(&self, member: &str) -> bool {
        sorted_contains(&self.removes, member)
    }

    /// Whether `member` is in the pool once the plan is applied.
    pub fn keeps(&self, member: &str) -> bool {
        sorted_contains(&self.members_after, member)
    }
}

fn sorted_contains(sorted: &[&str], name: &str) -> bool {
    sorted.binary_search(&name).is_ok()
}

/// Whether an app config or app instance is written (created or updated)
/// or deleted: the steps are the same for a create and an update.
#[derive(Debug)]
pub(super) enum ItemChange<B> {
    Put(B),
    Delete,
}

impl<B> ItemChange<B> {
    pub fn body(&self) -> Option<&B> {
        match self {
            ItemChange::Put(body) => Some(body),
            ItemChange::Delete => None,
        }
    }
}

#[derive(Debug)]
pub(super) struct ItemDelta<B> {
    pub name: String,
    pub change: ItemChange<B>,
}

#[derive(Debug)]
pub(super) struct MaintenanceDelta {
    pub destination: String,
    /// `None` switches maintenance mode off.
    pub put: Option<Maintenance>,
}

#[derive(Debug, Default)]
pub(super) struct Delta<'a> {
    pub changes: Vec<Change>,
    pub unmanaged: Unmanaged,
    pub revisions: Vec<Revision>,
    pub pools: Vec<PoolDelta<'a>>,
    pub app_configs: Vec<ItemDelta<AppConfigBody>>,
    pub app_instances: Vec<ItemDelta<AppInstanceBody>>,
    pub maintenance: Vec<MaintenanceDelta>,
    /// Destinations this stack left in drain mode that stay in their pools.
    pub allow_logons: Vec<String>,
    pub lb_cleanups: Vec<String>,
    /// Declared resources that exist live but belong to another stack (or none).
    pub not_owned: Vec<(Address, Option<String>)>,
}

fn field(name: Field, before: Option<Value>, after: Option<Value>) -> FieldDiff {
    FieldDiff {
        field: name,
        before: before.map(FieldValue::Json),
        after: after.map(FieldValue::Json),
        sensitive: false,
    }
}

fn diff_value(out: &mut Vec<FieldDiff>, name: Field, before: Value, after: Value) {
    if before != after {
        out.push(field(name, Some(before), Some(after)));
    }
}

fn diff_labels(out: &mut Vec<FieldDiff>, before: &Labels, after: &Labels) {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let (b, a) = (before.get(key), after.get(key));
        if b != a {
            out.push(field(
                Field::Label(key.clone()),
                b.map(|v| json!(v)),
                a.map(|v| json!(v)),
            ));
        }
    }
}

fn optional(value: &Option<String>) -> Value {
    value.as_ref().map_or(Value::Null, |v| json!(v))
}

pub(super) fn diff<'a>(
    desired: &'a crate::desired::Desired,
    index: &LiveIndex<'a>,
    targets: &Targets,
) -> Delta<'a> {
    let stack = desired.stack.as_str();
    // App instances are the most numerous resource and depend on nothing
    // else the diff finds, so they are diffed on a second core, into a part
    // of their own that joins the rest below (both lists are sorted then).
    let (app_instances, unmanaged_instances, mut delta) = std::thread::scope(|scope| {
        let instances = scope.spawn(|| {
            let mut part = Delta::default();
            let items = diff_items(
                stack,
                &desired.app_instances,
                &index.app_instances,
                targets,
                &mut part,
            );
            let unmanaged = index
                .app_instances
                .undeclared(&desired.app_instances, |i| owner(&i.labels) != Some(stack))
                .len();
            tracing::trace!("diffed the app instances");
            (items, unmanaged, part)
        });
        let delta = diff_all_but_instances(desired, index, targets);
        tracing::trace!("diffed all but the app instances");
        let (items, unmanaged, part) = instances
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (items, unmanaged, delta.joined(part))
    });
    delta.app_instances = app_instances;
    delta.unmanaged.app_instances = unmanaged_instances;
    delta.changes.sort_by(|a, b| a.address.cmp(&b.address));
    delta.revisions.sort_by(|a, b| a.address.cmp(&b.address));
    delta
}

/// Everything [`diff`] finds but the app instances.
fn diff_all_but_instances<'a>(
    desired: &'a crate::desired::Desired,
    index: &LiveIndex<'a>,
    targets: &Targets,
) -> Delta<'a> {
    let mut delta = Delta::default();
    let stack = desired.stack.as_str();
    // Unmanaged: live resources neither owned nor declared (app instances
    // are counted beside their diff).
    delta.unmanaged.pools = index
        .pools
        .undeclared(&desired.pools, |p| owner(&p.labels) != Some(stack))
        .len();
    delta.unmanaged.app_configs = index
        .app_configs
        .undeclared(&desired.app_configs, |c| owner(&c.labels) != Some(stack))
        .len();
    pools::diff_pools(desired, index, targets, &mut delta);
    delta.app_configs = diff_items(
        stack,
        &desired.app_configs,
        &index.app_configs,
        targets,
        &mut delta,
    );
    diff_maintenance(desired, index, targets, &mut delta);
    find_allow_logons(stack, index, targets, &mut delta);
    find_lb_cleanups(desired, index, targets, &mut delta);
    delta
}

impl<'a> Delta<'a> {
    /// This delta with the changes, revisions and ownership findings of
    /// `part` (the app instances' diff) added after its own.
    fn joined(mut self, part: Delta) -> Delta<'a> {
        self.changes.extend(part.changes);
        self.revisions.extend(part.revisions);
        self.not_owned.extend(part.not_owned);
        self
    }
}

fn maintenance_value(m: &Maintenance) -> Vec<(Field, Value)> {
    vec![
        (Field::MaintenanceEnabled, json!(m.enabled)),
        (Field::NoticeDe, optional(&m.notice_de)),
        (Field::NoticeEn, optional(&m.notice_en)),
        (Field::AllowedGroups, json!(m.allowed_groups)),
        (Field::MaintenanceOwner, optional(&m.owner)),
        (Field::OutOfRotation, json!(m.out_of_rotation)),
    ]
}

/// Destinations are never created or deleted by poolform; a declared
/// destination's maintenance mode is brought to what the config says, and
/// switched on as this stack's. Maintenance this stack switched on for a
/// destination the config no longer declares is switched off; maintenance
/// set by hand or by another stack is never touched.
fn diff_maintenance(
    desired: &crate::desired::Desired,
    index: &LiveIndex,
    targets: &Targets,
    delta: &mut Delta,
) {
    let stack = desired.stack.as_str();
    let declared = desired.destinations.iter().map(|(name, want)| {
        let on = want.maintenance.enabled.then(|| Maintenance {
            owner: Some(stack.to_owned()),
            ..want.maintenance.clone()
        });
        (name.as_str(), on)
    });
    let mut ours: Vec<&str> = index
        .live
        .destinations
        .iter()
        .filter(|d| {
            d.maintenance.enabled
                && d.maintenance.owner.as_deref() == Some(stack)
                && !desired.destinations.contains_key(&d.name)
        })
        .map(|d| d.name.as_str())
        .collect();
    ours.sort_unstable();
    for (name, want) in declared.chain(ours.into_iter().map(|name| (name, None))) {
        let address = Address::new(Kind::Destination, name);
        if !targets.covers(&address) {
            continue;
        }
        // An unknown destination is reported by the safety checks.
        let Some(have) = index.destinations.get(name) else {
            continue;
        };
        // Maintenance as declared that someone else switched on stays
        // theirs: only a stack that writes it becomes its owner.
        let unchanged = match &want {
            Some(on) => {
                *on == Maintenance {
                    owner: on.owner.clone(),
                    ..(*have.maintenance).clone()
                }
            }
            None => !have.maintenance.enabled,
        };
        if unchanged {
            continue;
        }
        let mut fields = Vec::new();
        let after = want.clone().unwrap_or_default();
        for ((field_name, b), (_, a)) in maintenance_value(&have.maintenance)
            .into_iter()
            .zip(maintenance_value(&after))
        {
            diff_value(&mut fields, field_name, b, a);
        }
        delta.changes.push(Change {
            address,
            action: Action::Update,
            fields,
        });
        delta.maintenance.push(MaintenanceDelta {
            destination: name.to_owned(),
            put: want,
        });
    }
}

/// A destination this stack left in drain mode (an apply that stopped
/// before the removal, then a reverted config) takes new logons again,
/// unless the plan takes it out of its load-balanced pool after all.
fn find_allow_logons(stack: &str, index: &LiveIndex, targets: &Targets, delta: &mut Delta) {
    let mut draining: Vec<&Destination> = index
        .live
        .destinations
        .iter()
        .filter(|d| d.draining.as_deref() == Some(stack))
        .filter(|d| targets.covers_name(Kind::Destination, &d.name))
        .collect();
    if draining.is_empty() {
        // Nearly always: the set below would hold every member leaving a
        // load-balanced pool, 1M names when a whole stack is replaced.
        return;
    }
    let leaving: BTreeSet<&str> = delta
        .pools
        .iter()
        .filter(|p| p.removal_load_balanced)
        .flat_map(|p| p.removes.iter().copied())
        .collect();
    draining.retain(|d| !leaving.contains(d.name.as_str()));
    draining.sort_by(|a, b| a.name.cmp(&b.name));
    let mut changes = Vec::with_capacity(draining.len());
    for d in draining {
        changes.push(Change {
            address: Address::new(Kind::Destination, d.name.as_str()),
            action: Action::Update,
            fields: vec![field(
                Field::Draining,
                Some(json!(stack)),
                Some(Value::Null),
            )],
        });
        delta.allow_logons.push(d.name.clone());
    }
    merge_changes(delta, changes);
}

/// Adds `changes` to the plan's changes, joining the fields of a change of
/// the same resource already there, found through an index of them rather
/// than a scan per change.
fn merge_changes(delta: &mut Delta, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    let mut position: HashMap<Address, usize> = HashMap::with_capacity(delta.changes.len());
    for (i, change) in delta.changes.iter().enumerate() {
        position.entry(change.address.clone()).or_insert(i);
    }
    for change in changes {
        match position.get(&change.address) {
            Some(&i) => delta.changes[i].fields.extend(change.fields),
            None => {
                position.insert(change.address.clone(), delta.changes.len());
                delta.changes.push(change);
            }
        }
    }
}

/// A destination that is online, in no load-balanced pool once the plan is
/// applied, and still has the service installed (left behind by a removal
/// while it was offline) gets the service removed. Only destinations this
/// stack has to do with are considered: in its pools, or holding a leftover
/// of its own.
///
/// Every member of a large stack is one of those, and nearly all of them
/// stay in a load-balanced pool: a member a pool keeps while that pool
/// load-balances after the plan is ruled out by that pool alone, with no
/// lookup. Only the rest are looked up, and the set of every member that
/// load-balances after the plan is built only when one of them is left.
fn find_lb_cleanups(
    desired: &crate::desired::Desired,
    index: &LiveIndex,
    targets: &Targets,
    delta: &mut Delta,
) {
    let stack = desired.stack.as_str();
    let planned: FxHashMap<&str, &PoolDelta> =
        delta.pools.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut candidates: Vec<&str> = Vec::new();
    for pool in &index.live.pools {
        if owner(&pool.labels) != Some(stack) {
            continue;
        }
        let members = pool.members.iter().map(String::as_str);
        match planned.get(pool.name.as_str()) {
            // An updated pool's members after the plan are its live members
            // plus its adds minus its removes (`pools::member_changes`), so
            // the live members it will not have are its removes: no lookup
            // per member.
            // Those that leave while it load-balances lose the service
            // with their removal (`leaving_lb` below): not candidates at
            // all, or a whole stack replaced makes 1M of them.
            Some(p) if p.load_balanced_after && matches!(p.change, PoolChange::Update(_)) => {
                if !p.removal_load_balanced {
                    candidates.extend(p.removes.iter().copied());
                }
            }
            Some(p) if p.load_balanced_after => {
                candidates.extend(members.filter(|m| !p.keeps(m)));
            }
            None if pool.load_balancing.enabled => {}
            _ => candidates.extend(members),
        }
    }
    for (name, pool) in &desired.pools {
        let members = pool.members.iter().map(String::as_str);
        match (planned.get(name.as_str()), index.pools.get(name.as_str())) {
            // With every change targeted, a planned pool keeps or adds
            // every declared member (`pools::member_changes`; a created one
            // has them all): none is left out.
            (Some(p), _) if p.load_balanced_after && targets.all() => {}
            (Some(p), _) if p.load_balanced_after => {
                candidates.extend(members.filter(|m| !p.keeps(m)));
            }
            (None, Some(live)) if live.load_balancing.enabled => {
                // Unplanned, so the live pool stays as it is: usually with
                // just the declared members (its changes are not targeted
                // otherwise).
                let same = live.members.len() == pool.members.len()
                    && live.members.iter().all(|m| pool.members.contains(m));
                if !same {
                    let kept: FxHashSet<&str> = live.members.iter().map(String::as_str).collect();
                    candidates.extend(members.filter(|m| !kept.contains(m)));
                }
            }
            _ => candidates.extend(members),
        }
    }
    // A leftover this stack's removal left is its to clean up, whatever
    // pools the host is in now.
    candidates.extend(
        index
            .live
            .destinations
            .iter()
            .filter(|d| {
                d.lb_service_leftover
                    .as_ref()
                    .and_then(|l| l.owner.as_deref())
                    == Some(stack)
            })
            .map(|d| d.name.as_str()),
    );
    if candidates.is_empty() {
        return;
    }
    // Leaving a load-balanced pool uninstalls the service already.
    let leaving_lb: FxHashSet<&str> = delta
        .pools
        .iter()
        .filter(|p| p.removal_load_balanced)
        .flat_map(|p| p.removes.iter().copied())
        .collect();
    // Filtered before they are sorted: when a whole stack leaves, every
    // member is a candidate and nearly all of them leave with the service.
    candidates.retain(|name| {
        index
            .destinations
            .get(name)
            .is_some_and(|d| d.online && d.lb_service_installed)
            && !leaving_lb.contains(name)
            && targets.covers_name(Kind::Destination, name)
    });
    if candidates.is_empty() {
        return;
    }
    candidates.sort_unstable();
    candidates.dedup();
    let in_lb_after = members_load_balanced_after(index, delta, &planned);
    let found: Vec<&str> = candidates
        .into_iter()
        .filter(|name| !in_lb_after.contains(name))
        .collect();
    let mut cleanups = Vec::with_capacity(found.len());
    for name in found {
        cleanups.push(Change {
            address: Address::new(Kind::Destination, name),
            action: Action::Update,
            fields: vec![field(
                Field::LbServiceInstalled,
                Some(json!(true)),
                Some(json!(false)),
            )],
        });
        delta.lb_cleanups.push(name.to_owned());
    }
    merge_changes(delta, cleanups);
}

/// Every destination in a pool that load-balances once the plan is applied.
fn members_load_balanced_after<'a>(
    index: &LiveIndex<'a>,
    delta: &'a Delta,
    planned: &FxHashMap<&str, &'a PoolDelta>,
) -> FxHashSet<&'a str> {
    let mut in_lb_after: FxHashSet<&str> =
        FxHashSet::with_capacity_and_hasher(index.live.destinations.len(), Default::default());
    for pool in &index.live.pools {
        match planned.get(pool.name.as_str()) {
            Some(p) if p.load_balanced_after => in_lb_after.extend(p.members_after.iter().copied()),
            None if pool.load_balancing.enabled => {
                in_lb_after.extend(pool.members.iter().map(String::as_str))
            }
            _ => {}
        }
    }
    for p in delta
        .pools
        .iter()
        .filter(|p| matches!(p.change, PoolChange::Create(_)) && p.load_balanced_after)
    {
        in_lb_after.extend(p.members_after.iter().copied());
    }
    in_lb_after
}
