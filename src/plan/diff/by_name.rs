//! A live list's items by name: a hash table of positions in the list.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// The items of `items` by the name `name` gives each. The table holds a
/// 4-byte position per item where a map of (`&str`, `&T`) holds 24 bytes:
/// at 1M destinations and 1M app instances, 105 MB of the plan's peak
/// became 21 MB. Names come from the broker, which keeps them unique; of
/// a name listed twice the last item is found, as a map built from the
/// list would have it.
pub(in crate::plan) struct ByName<'a, T> {
    items: &'a [T],
    name: fn(&T) -> &str,
    table: HashTable<u32>,
    /// Whether the names are in strictly ascending order (see [`Walk`]).
    sorted: bool,
}

impl<'a, T> ByName<'a, T> {
    pub fn new(items: &'a [T], name: fn(&T) -> &str) -> Self {
        let mut table = HashTable::with_capacity(items.len());
        for (at, item) in items.iter().enumerate() {
            let at = u32::try_from(at).expect("a live list of fewer than 4G items");
            let key = name(item);
            let hash = FxBuildHasher.hash_one(key);
            let same = |&other: &u32| name(&items[other as usize]) == key;
            match table.find_mut(hash, same) {
                Some(listed) => *listed = at,
                None => {
                    table.insert_unique(hash, at, |&other| {
                        FxBuildHasher.hash_one(name(&items[other as usize]))
                    });
                }
            }
        }
        let sorted = items.windows(2).all(|pair| name(&pair[0]) < name(&pair[1]));
        ByName {
            items,
            name,
            table,
            sorted,
        }
    }

    /// Lookups of names in ascending order (see [`Walk`]).
    pub fn walk<'k>(&self) -> Walk<'_, 'a, 'k, T> {
        Walk {
            by_name: self,
            next: 0,
            last: None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a T> {
        self.position(key).map(|at| &self.items[at])
    }

    /// Where the item named `key` is in the list.
    fn position(&self, key: &str) -> Option<usize> {
        let hash = FxBuildHasher.hash_one(key);
        let items = self.items;
        let name = self.name;
        self.table
            .find(hash, |&at| name(&items[at as usize]) == key)
            .map(|&at| at as usize)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The items `keep` accepts whose names `declared` does not hold, in
    /// ascending name order: the live resources a config no longer
    /// declares. A list in strictly ascending order, as the reference
    /// broker lists it, is merged with the map's (sorted) keys; a lookup
    /// of each name in the map took about 40 string comparisons at 1M app
    /// instances, and most of their diff's time. Any other list is looked
    /// up name by name and sorted.
    pub fn undeclared<D>(
        &self,
        declared: &BTreeMap<String, D>,
        keep: impl Fn(&T) -> bool,
    ) -> Vec<&'a T> {
        let name = self.name;
        if !self.sorted {
            let mut found: Vec<&T> = self
                .items
                .iter()
                .filter(|item| keep(item) && !declared.contains_key(name(item)))
                .collect();
            found.sort_by(|a, b| name(a).cmp(name(b)));
            return found;
        }
        let mut keys = declared.keys().map(String::as_str).peekable();
        self.items
            .iter()
            .filter(|item| keep(item))
            .filter(|item| {
                let item = name(item);
                while keys.next_if(|key| *key < item).is_some() {}
                keys.peek() != Some(&item)
            })
            .collect()
    }
}

/// Lookups of names in ascending order, as the diff makes them: it goes
/// through the config's sorted maps. When the live list is itself in
/// strictly ascending order, as the reference broker lists it, a lookup
/// steps along the list, reading it in order where the table costs about
/// three cache misses a lookup; at 1M app instances those were most of
/// their diff. A name further ahead than the next two items is asked of
/// the table, and the walk goes on after the item the table found: names
/// asked far apart (one in ten changed, or fewer) cost a lookup each, not
/// a read of every item between them, each a cache miss of its own. For
/// a list in another order, or a name that comes before one already
/// looked up, the table answers.
pub(in crate::plan) struct Walk<'i, 'a, 'k, T> {
    by_name: &'i ByName<'a, T>,
    /// No item before it has a name after the greatest name asked.
    next: usize,
    /// The greatest name asked so far.
    last: Option<&'k str>,
}

/// How many items a walk reads before it asks the table: the next name
/// asked is the next item's when every name is asked, or the one after
/// when every other one is. With eight, a plan retargeting one in ten of
/// 1M app instances was slower than with the table alone.
const STEPS: usize = 2;

impl<'a, 'k, T> Walk<'_, 'a, 'k, T> {
    pub fn get(&mut self, key: &'k str) -> Option<&'a T> {
        let by_name = self.by_name;
        let in_order = self.last.is_none_or(|last| last < key);
        if !by_name.sorted || !in_order {
            return by_name.get(key);
        }
        self.last = Some(key);
        for _ in 0..STEPS {
            let item = by_name.items.get(self.next)?;
            match (by_name.name)(item).cmp(key) {
                Ordering::Less => self.next += 1,
                Ordering::Equal => {
                    self.next += 1;
                    return Some(item);
                }
                Ordering::Greater => return None,
            }
        }
        // In a strictly ascending list, no item up to the one named `key`
        // has a greater name: the walk may go on after it.
        let at = by_name.position(key)?;
        self.next = at + 1;
        Some(&by_name.items[at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(pair: &(String, u32)) -> &str {
        &pair.0
    }

    #[test]
    fn finds_each_item_by_its_name_and_nothing_else() {
        let items: Vec<(String, u32)> = (0..1000).map(|i| (format!("d{i}"), i)).collect();
        let index = ByName::new(&items, first);
        for (name, value) in &items {
            assert_eq!(index.get(name).map(|item| item.1), Some(*value));
        }
        assert!(index.get("d1000").is_none());
        assert!(!index.contains_key(""));
        assert!(index.contains_key("d999"));
    }

    #[test]
    fn a_name_listed_twice_finds_its_last_item() {
        let items = vec![
            ("a".to_owned(), 1),
            ("b".to_owned(), 2),
            ("a".to_owned(), 3),
        ];
        let index = ByName::new(&items, first);
        assert_eq!(index.get("a").map(|item| item.1), Some(3));
    }

    /// What a walk finds for `keys`, asked in that order.
    fn walked(items: &[(String, u32)], keys: &[&str]) -> Vec<Option<u32>> {
        let index = ByName::new(items, first);
        let mut walk = index.walk();
        keys.iter()
            .map(|key| walk.get(key).map(|item| item.1))
            .collect()
    }

    #[test]
    fn a_walk_finds_what_the_table_finds_in_any_list_and_any_order() {
        let sorted: Vec<(String, u32)> = (0..50).map(|i| (format!("d{i:02}"), i)).collect();
        let mut shuffled = sorted.clone();
        shuffled.swap(3, 40);
        let twice = vec![
            ("a".to_owned(), 1),
            ("a".to_owned(), 2),
            ("b".to_owned(), 3),
        ];
        // Near names, names far apart (the table answers and the walk goes
        // on from there), misses between them, and names out of order.
        let keys = [
            "", "d00", "d03", "d031", "d04", "d02", "d05", "d20", "d21", "d215", "d23", "d40",
            "d03", "d41", "d49", "d50", "e", "a",
        ];
        for items in [&sorted, &shuffled, &twice] {
            let index = ByName::new(items, first);
            let by_table: Vec<Option<u32>> = keys
                .iter()
                .map(|key| index.get(key).map(|item| item.1))
                .collect();
            assert_eq!(walked(items, &keys), by_table);
        }
        assert!(ByName::new(&sorted, first).sorted);
        assert!(!ByName::new(&shuffled, first).sorted);
        assert!(!ByName::new(&twice, first).sorted);
    }
}
