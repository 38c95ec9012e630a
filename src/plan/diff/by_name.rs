//! A live list's items by name: a hash table of positions in the list.

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
        ByName { items, name, table }
    }

    pub fn get(&self, key: &str) -> Option<&'a T> {
        let hash = FxBuildHasher.hash_one(key);
        let items = self.items;
        let name = self.name;
        self.table
            .find(hash, |&at| name(&items[at as usize]) == key)
            .map(|&at| &items[at as usize])
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
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
}
