//! Pool diffing: a declared pool is created or updated, an owned pool the
//! config no longer declares is deleted, each as its own rule.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Delta, LiveIndex, PoolChange, PoolDelta, diff_labels, diff_value, field, optional};
use crate::address::{Address, Kind};
use crate::contract::labels::{self, owner};
use crate::contract::wire::{Labels, LoadBalancing, Pool};
use crate::desired::{Desired, DesiredPool, Drain};
use crate::plan::{
    Action, Change, Field, FieldDiff, FieldValue, Names, PoolSettings, Revision, Targets,
};

fn pool_settings(pool: &DesiredPool, stack: &str) -> PoolSettings {
    PoolSettings {
        load_balancing: pool.load_balancing,
        username: pool.username.clone(),
        password: pool.password.as_ref().map(|s| s.source.clone()),
        labels: labels::with_stack(&pool.labels, stack),
    }
}

/// Each declared pool is created or updated, each owned pool no longer
/// declared is deleted; a declared pool owned elsewhere is left alone.
pub(super) fn diff_pools<'a>(
    desired: &'a Desired,
    index: &LiveIndex<'a>,
    targets: &Targets,
    delta: &mut Delta<'a>,
) {
    let stack = desired.stack.as_str();
    // Room for every declared pool to change: grown by doubling, these
    // lists were copied into fresh pages several times over at 100k
    // changed pools. Room left unused is never touched.
    let most = desired.pools.len();
    delta.pools.reserve(most);
    delta.changes.reserve(most);
    delta.revisions.reserve(most);
    let mut live = index.pools.walk();
    for (name, want) in &desired.pools {
        let address = Address::new(Kind::Pool, name.as_str());
        let whole = targets.covers(&address);
        match live.get(name.as_str()) {
            Some(have) if owner(&have.labels) == Some(stack) => {
                update_pool(address, want, have, stack, targets, delta)
            }
            Some(have) if whole => delta
                .not_owned
                .push((address, owner(&have.labels).map(str::to_owned))),
            None if whole => create_pool(address, want, stack, delta),
            Some(_) | None => {}
        }
    }
    for pool in index
        .pools
        .undeclared(&desired.pools, |p| owner(&p.labels) == Some(stack))
    {
        if targets.covers(&Address::new(Kind::Pool, pool.name.as_str())) {
            delete_pool(pool, delta);
        }
    }
    delta.pools.sort_by(|a, b| a.name.cmp(&b.name));
}

/// A new pool: every setting that is set, its labels and all its members.
fn create_pool<'a>(address: Address, want: &'a DesiredPool, stack: &str, delta: &mut Delta<'a>) {
    let settings = pool_settings(want, stack);
    let lb = want.load_balancing;
    let mut fields: Vec<FieldDiff> = load_balancing_fields(lb)
        .into_iter()
        .map(|(name, value)| field(name, None, Some(value)))
        .collect();
    if let Some(user) = &want.username {
        fields.push(field(Field::Username, None, Some(json!(user))));
    }
    if want.password.is_some() {
        fields.push(password_field());
    }
    diff_labels(&mut fields, &Labels::new(), &settings.labels);
    let adds: Vec<&str> = want.members.iter().map(String::as_str).collect();
    let members_after = adds.clone();
    if !adds.is_empty() {
        fields.push(members_field(None, adds.iter().collect()));
    }
    let pool = PoolDelta {
        name: address.name.to_string(),
        change: PoolChange::Create(settings),
        adds,
        removes: Vec::new(),
        drain: want.drain.clone(),
        removal_load_balanced: lb.enabled,
        removal_sticky: is_sticky(lb),
        load_balanced_after: lb.enabled,
        min_members: want.min_members,
        members_after,
    };
    record_pool(
        Change {
            address,
            action: Action::Create,
            fields,
        },
        None,
        pool,
        delta,
    );
}

/// A live pool: the settings that differ (only when the whole pool is
/// targeted) and the members that come and go (as far as targeted).
fn update_pool<'a>(
    address: Address,
    want: &'a DesiredPool,
    have: &'a Pool,
    stack: &str,
    targets: &Targets,
    delta: &mut Delta<'a>,
) {
    let settings = pool_settings(want, stack);
    let mut fields = Vec::new();
    if targets.covers(&address) {
        diff_pool_settings(&mut fields, have, want, &settings);
    }
    let put = (!fields.is_empty()).then_some(settings);
    // Sorted here, not trusted to be sorted on the wire: the plan must not
    // depend on the order the broker lists members in.
    let mut live_members: Vec<&str> = have.members.iter().map(String::as_str).collect();
    live_members.sort_unstable();
    live_members.dedup();
    let (adds, removes, kept) = member_changes(&live_members, &want.members, |m| {
        targets.covers_member(&address.name, m)
    });
    if put.is_none() && adds.is_empty() && removes.is_empty() {
        return;
    }
    let members_after = kept;
    if !adds.is_empty() || !removes.is_empty() {
        fields.push(members_field(
            Some(live_members.iter().collect()),
            members_after.iter().collect(),
        ));
    }
    let lb = have.load_balancing;
    let pool = PoolDelta {
        name: address.name.to_string(),
        change: PoolChange::Update(put),
        adds,
        removes,
        drain: want.drain.clone(),
        removal_load_balanced: lb.enabled,
        removal_sticky: is_sticky(lb),
        load_balanced_after: want.load_balancing.enabled,
        min_members: want.min_members,
        members_after,
    };
    record_pool(
        Change {
            address,
            action: Action::Update,
            fields,
        },
        Some(have.revision),
        pool,
        delta,
    );
}

/// The members `declared` adds to and removes from the sorted `live` members
/// (as far as `covered`), and the members after both, in order: one walk
/// over the two sorted lists, which a pool of 10k members and 10k pools of
/// ten both need to be cheap.
fn member_changes<'a>(
    live: &[&'a str],
    declared: &'a BTreeSet<String>,
    covered: impl Fn(&str) -> bool,
) -> (Vec<&'a str>, Vec<&'a str>, Vec<&'a str>) {
    use std::cmp::Ordering;
    let (mut adds, mut removes, mut after) = (Vec::new(), Vec::new(), Vec::new());
    let mut wanted = declared.iter().map(String::as_str).peekable();
    let mut live = live.iter().copied().peekable();
    loop {
        let order = match (wanted.peek(), live.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(w), Some(l)) => w.cmp(l),
        };
        match order {
            Ordering::Equal => {
                after.extend(wanted.next());
                live.next();
            }
            // Declared, not live: added when covered.
            Ordering::Less => {
                let m = wanted.next().expect("peeked");
                if covered(m) {
                    adds.push(m);
                    after.push(m);
                }
            }
            // Live, not declared: removed when covered.
            Ordering::Greater => {
                let m = live.next().expect("peeked");
                if covered(m) {
                    removes.push(m);
                } else {
                    after.push(m);
                }
            }
        }
    }
    (adds, removes, after)
}

fn diff_pool_settings(
    out: &mut Vec<FieldDiff>,
    have: &Pool,
    want: &DesiredPool,
    settings: &PoolSettings,
) {
    for ((name, before), (_, after)) in load_balancing_fields(have.load_balancing)
        .into_iter()
        .zip(load_balancing_fields(want.load_balancing))
    {
        diff_value(out, name, before, after);
    }
    diff_value(
        out,
        Field::Username,
        optional(&have.default_credentials.username),
        optional(&want.username),
    );
    if password_changes(have, want) {
        out.push(password_field());
    }
    diff_labels(out, &labels::comparable(&have.labels), &settings.labels);
}

/// An owned pool the config no longer declares: all its members leave (by
/// the default drain policy), then it goes.
fn delete_pool<'a>(pool: &'a Pool, delta: &mut Delta<'a>) {
    let lb = pool.load_balancing;
    record_pool(
        Change {
            address: Address::new(Kind::Pool, pool.name.as_str()),
            action: Action::Delete,
            fields: Vec::new(),
        },
        Some(pool.revision),
        PoolDelta {
            name: pool.name.clone(),
            change: PoolChange::Delete,
            adds: Vec::new(),
            removes: pool
                .members
                .iter()
                .map(String::as_str)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            drain: Drain::default(),
            removal_load_balanced: lb.enabled,
            removal_sticky: is_sticky(lb),
            load_balanced_after: false,
            min_members: None,
            members_after: Vec::new(),
        },
        delta,
    );
}

/// A list of names as a JSON array, built directly: `json!` goes through
/// serde's serializer for each of them, for every changed pool.
/// The members field: the names before (none for a new pool) and after.
fn members_field(before: Option<Names>, after: Names) -> FieldDiff {
    FieldDiff {
        field: Field::Members,
        before: before.map(FieldValue::Names),
        after: Some(FieldValue::Names(after)),
        sensitive: false,
    }
}

fn record_pool<'a>(
    mut change: Change,
    revision: Option<u64>,
    pool: PoolDelta<'a>,
    delta: &mut Delta<'a>,
) {
    // A change is kept until the plan is rendered, and most have one or
    // two fields where a pushed-to list has room for four: at 100k changed
    // pools, 33 MB of room never used.
    change.fields.shrink_to_fit();
    debug_assert!(
        pool.removes.windows(2).all(|pair| pair[0] < pair[1]),
        "a pool's removes are sorted and distinct: {:?}",
        pool.removes
    );
    delta.revisions.push(Revision {
        address: change.address.clone(),
        revision,
    });
    delta.changes.push(change);
    delta.pools.push(pool);
}

fn load_balancing_fields(lb: LoadBalancing) -> [(Field, Value); 3] {
    [
        (Field::LoadBalancingEnabled, json!(lb.enabled)),
        (
            Field::StickySessionsMinutes,
            json!(lb.sticky_sessions_minutes),
        ),
        (Field::GracePeriodSeconds, json!(lb.grace_period_seconds)),
    ]
}

/// Sticky bindings exist only while a pool load-balances with a sticky period.
fn is_sticky(lb: LoadBalancing) -> bool {
    lb.enabled && lb.sticky_sessions_minutes >= 1
}

/// The password is a secret: the diff records only that it changes.
fn password_field() -> FieldDiff {
    FieldDiff {
        sensitive: true,
        ..field(Field::Password, None, None)
    }
}

/// A password changes when one is wanted and the live fingerprint label is
/// missing or was made from another secret, or when one is set live but no
/// longer wanted.
fn password_changes(have: &Pool, want: &DesiredPool) -> bool {
    use secrecy::ExposeSecret;
    match &want.password {
        None => have.default_credentials.password_set,
        Some(secret) => {
            !have.default_credentials.password_set
                || !have
                    .labels
                    .get(&crate::contract::labels::password_fingerprint())
                    .is_some_and(|label| {
                        crate::secret::fingerprint_matches(label, secret.value.expose_secret())
                    })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::member_changes;

    fn names() -> impl Strategy<Value = BTreeSet<String>> {
        proptest::collection::btree_set("[a-f]{1,2}", 0..12)
    }

    proptest! {
        /// The one walk over both sorted lists says what the set algebra
        /// says: adds are declared minus live, removes live minus declared,
        /// each as far as covered, and the members after are live plus
        /// adds minus removes, all sorted.
        #[test]
        fn member_changes_are_the_set_differences(
            live in names(),
            declared in names(),
            uncovered in names(),
        ) {
            let live_sorted: Vec<&str> = live.iter().map(String::as_str).collect();
            let (adds, removes, after) =
                member_changes(&live_sorted, &declared, |m| !uncovered.contains(m));
            let covered = |m: &&String| !uncovered.contains(*m);
            let want_adds: Vec<String> =
                declared.difference(&live).filter(covered).cloned().collect();
            let want_removes: Vec<String> =
                live.difference(&declared).filter(covered).cloned().collect();
            let mut want_after = live.clone();
            want_after.extend(want_adds.iter().cloned());
            for r in &want_removes {
                want_after.remove(r);
            }
            prop_assert_eq!(adds, want_adds);
            prop_assert_eq!(removes, want_removes);
            prop_assert_eq!(
                after.into_iter().map(str::to_owned).collect::<Vec<_>>(),
                want_after.into_iter().collect::<Vec<_>>()
            );
        }
    }
}
