//! A map of the engine state that remembers which keys were changed since it
//! was last asked, so that the store writes a record of what a mutation
//! changed instead of the whole state. Reads go through `Deref`; every way
//! to change an entry goes through a method here, so none can be missed
//! (one of them, for changes recorded otherwise, says so in its name).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct Tracked<V> {
    map: BTreeMap<String, V>,
    #[serde(skip)]
    changed: BTreeSet<String>,
}

impl<V> Default for Tracked<V> {
    fn default() -> Self {
        Tracked {
            map: BTreeMap::new(),
            changed: BTreeSet::new(),
        }
    }
}

impl<V> Deref for Tracked<V> {
    type Target = BTreeMap<String, V>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<V: Clone> Tracked<V> {
    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let value = self.map.get_mut(key)?;
        if !self.changed.contains(key) {
            self.changed.insert(key.to_owned());
        }
        Some(value)
    }

    /// The value of `key`, to change in a way its caller records itself:
    /// not counted as a change, so the record will not hold the entry
    /// whole. Only for changes a record carries otherwise (a member write,
    /// recorded as the membership: see `Delta::members`).
    pub(super) fn get_mut_recorded_elsewhere(&mut self, key: &str) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    /// The entry of `key`, counted as changed whatever the caller does with
    /// it.
    pub(super) fn entry(&mut self, key: String) -> Entry<'_, String, V> {
        self.changed.insert(key.clone());
        self.map.entry(key)
    }

    pub(super) fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.changed.insert(key.clone());
        self.map.insert(key, value)
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<V> {
        let removed = self.map.remove(key)?;
        self.changed.insert(key.to_owned());
        Some(removed)
    }

    /// The keys changed since the last call, each with its value now
    /// (`None`: removed).
    pub(super) fn take_changes(&mut self) -> BTreeMap<String, Option<V>> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|k| {
                let value = self.map.get(&k).cloned();
                (k, value)
            })
            .collect()
    }

    /// Sets every key of `changes` to its value, without counting it as a
    /// change: the changes come from the record that already holds them.
    pub(super) fn apply(&mut self, changes: BTreeMap<String, Option<V>>) {
        for (key, value) in changes {
            match value {
                Some(v) => self.map.insert(key, v),
                None => self.map.remove(&key),
            };
        }
    }

    pub(super) fn forget_changes(&mut self) {
        self.changed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_written_keys_are_changes_and_asking_clears_them() {
        let mut map = Tracked::default();
        map.insert("a".to_owned(), 1);
        map.insert("b".to_owned(), 2);
        map.insert("c".to_owned(), 3);
        map.take_changes();
        *map.get_mut("a").unwrap() = 10;
        map.remove("b");
        assert!(map.get_mut("zz").is_none() && map.remove("zz").is_none());
        let _ = map.get("c");
        let changes = map.take_changes();
        assert_eq!(
            changes,
            BTreeMap::from([("a".to_owned(), Some(10)), ("b".to_owned(), None)])
        );
        assert!(map.take_changes().is_empty());
        let mut copy: Tracked<i32> = Tracked::default();
        copy.insert("b".to_owned(), 2);
        copy.insert("c".to_owned(), 3);
        copy.forget_changes();
        copy.apply(changes);
        assert_eq!(*copy, *map);
        assert!(copy.take_changes().is_empty());
    }
}
