//! Labels on broker resources: the compact [`Labels`] map every wire type
//! carries, and the labels poolform keeps for its own bookkeeping (which
//! stack owns a resource, and the fingerprints of secrets it wrote). One home
//! for reading and writing them, so plan, apply, export and import agree on
//! what "owned" means.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resource's labels: string keys to string values, sorted by key, keys
/// unique. It behaves as a `BTreeMap<String, String>` does (same iteration
/// order, JSON, schema and `Debug`), but stores its entries in one vector:
/// almost every resource has a single label (the stack label), and a
/// `BTreeMap` allocates a whole leaf node (~540 bytes) even for one entry,
/// 54 MB of a 100k-instance live state. Lookups are binary searches; label
/// maps are small, so an insert shifting the tail costs nothing noticeable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub const fn new() -> Labels {
        Labels(Vec::new())
    }

    /// Where `key` is, or where it would go to keep the keys sorted. Keys
    /// are looked up by `Borrow`, as in `BTreeMap`, so `&str` and `&String`
    /// both work.
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        String: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&String>
    where
        String: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        String: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaces, as
    /// `BTreeMap::insert` does.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<String>
    where
        String: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k)
    }

    /// Entries in any order, possibly with repeated keys, made sorted and
    /// unique with the last value of a repeated key winning, as collecting
    /// into a `BTreeMap` would. The sort is stable, so among equal keys the
    /// entries stay in the order given; the sort is linear on input already
    /// in key order (what poolform writes).
    fn from_entries(mut entries: Vec<(String, String)>) -> Labels {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the first of a run and drops the later ones; move
        // each later value into the kept slot first so the last one stays.
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        // Repeated keys leave spare slots, and collecting or decoding without
        // a length hint grows the vector by doubling; keep only what is held,
        // since a live state holds one of these per resource and most hold
        // one entry.
        entries.shrink_to_fit();
        Labels(entries)
    }
}

/// Iterator over `&Labels`, yielding `(&key, &value)` as `BTreeMap::iter` does.
#[derive(Clone, Debug)]
pub struct Iter<'a>(std::slice::Iter<'a, (String, String)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a String);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// `labels["key"]`: the value, panicking when the key is absent, as
/// indexing a `BTreeMap` does.
impl<Q: Ord + ?Sized> Index<&Q> for Labels
where
    String: Borrow<Q>,
{
    type Output = String;

    fn index(&self, key: &Q) -> &String {
        self.get(key).expect("no entry found for key")
    }
}

impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Labels {
        Labels::from_entries(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(entries: [(String, String); N]) -> Labels {
        Labels::from_entries(Vec::from(entries))
    }
}

// `{"k": "v"}`, as a `BTreeMap` prints, so `Debug` output (and any snapshot
// of it) does not depend on the representation.
impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

// A JSON object in key order, byte for byte what a `BTreeMap` writes, so
// plans, their checksums and the broker's state file are unchanged.
impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Labels, D::Error> {
        deserializer.deserialize_map(LabelsVisitor)
    }
}

struct LabelsVisitor;

impl<'de> Visitor<'de> for LabelsVisitor {
    type Value = Labels;

    // serde's wording for a `BTreeMap`, so a rejected body reads the same.
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
        // The hint comes from the input; cap it as serde does for its own
        // collections, so a lying length cannot reserve unbounded memory.
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = map.next_entry::<String, String>()? {
            entries.push(entry);
        }
        // Sorted, deduplicated keeping the last value, and shrunk to fit.
        Ok(Labels::from_entries(entries))
    }
}

// The schema of a `BTreeMap<String, String>` under its name and id, so the
// generated schemas in `schema/` do not change.
impl JsonSchema for Labels {
    fn inline_schema() -> bool {
        <BTreeMap<String, String>>::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        <BTreeMap<String, String>>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        <BTreeMap<String, String>>::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <BTreeMap<String, String>>::json_schema(generator)
    }
}

/// Label key that marks a live resource as owned by a poolform stack.
pub const STACK_LABEL: &str = "poolform.stack";

/// Label key prefix under which poolform stores salted fingerprints of secrets
/// it has written, so that a later plan can detect a changed secret without
/// the broker ever returning it.
pub const FINGERPRINT_LABEL_PREFIX: &str = "poolform.fingerprint/";

/// Label keys with this prefix belong to poolform; users may not set them.
pub const RESERVED_PREFIX: &str = "poolform.";

/// The stack that owns a resource with these labels, if any.
pub fn owner(labels: &Labels) -> Option<&str> {
    labels.get(STACK_LABEL).map(String::as_str)
}

/// Labels as poolform writes them: the user's plus the stack label.
pub fn with_stack(user: &Labels, stack: &str) -> Labels {
    let mut labels = user.clone();
    // One slot for the stack label rather than the doubling `insert` would do.
    labels.0.reserve_exact(1);
    labels.insert(STACK_LABEL.to_owned(), stack.to_owned());
    labels
}

/// Whether a label is poolform's own bookkeeping (a secret fingerprint),
/// which never takes part in a diff.
pub fn is_fingerprint(key: &str) -> bool {
    key.starts_with(FINGERPRINT_LABEL_PREFIX)
}

/// Live labels without the fingerprints: what a diff compares.
pub fn comparable(live: &Labels) -> Labels {
    live.iter()
        .filter(|(k, _)| !is_fingerprint(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Label key of a pool password's fingerprint.
pub fn password_fingerprint() -> String {
    format!("{FINGERPRINT_LABEL_PREFIX}default_credentials.password")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(labels: &Labels) -> Vec<(&str, &str)> {
        labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn entry(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn insert_keeps_keys_in_order_and_overwrites() {
        let mut labels = Labels::new();
        assert_eq!(labels.insert("b".into(), "1".into()), None);
        assert_eq!(labels.insert("c".into(), "2".into()), None);
        assert_eq!(labels.insert("a".into(), "3".into()), None);
        assert_eq!(labels.insert("b".into(), "4".into()), Some("1".to_owned()));
        assert_eq!(pairs(&labels), [("a", "3"), ("b", "4"), ("c", "2")]);
        assert_eq!(labels.len(), 3);
    }

    #[test]
    fn collecting_keeps_the_last_value_of_a_repeated_key_as_a_btreemap_does() {
        let given = [
            entry("b", "1"),
            entry("a", "2"),
            entry("b", "3"),
            entry("c", "4"),
            entry("b", "5"),
            entry("a", "6"),
        ];
        let labels: Labels = given.iter().cloned().collect();
        let map: BTreeMap<String, String> = given.iter().cloned().collect();
        assert_eq!(pairs(&labels), [("a", "6"), ("b", "5"), ("c", "4")]);
        assert!(labels.iter().eq(map.iter()));
        assert_eq!(Labels::from(given.clone()), labels);
    }

    #[test]
    fn get_contains_key_and_remove() {
        let mut labels = Labels::from([entry("a", "1"), entry("b", "2")]);
        assert_eq!(labels.get("a"), Some(&"1".to_owned()));
        assert_eq!(labels.get(&"b".to_owned()), Some(&"2".to_owned()));
        assert_eq!(labels.get("c"), None);
        assert_eq!(labels["b"], "2");
        assert!(labels.contains_key("a"));
        assert!(!labels.contains_key("c"));
        assert_eq!(labels.remove("a"), Some("1".to_owned()));
        assert_eq!(labels.remove("a"), None);
        assert!(!labels.contains_key("a"));
        assert_eq!(pairs(&labels), [("b", "2")]);
        labels.clear();
        assert!(labels.is_empty());
    }

    #[test]
    fn json_is_an_object_in_key_order_as_a_btreemap_writes_it() {
        let labels = Labels::from([
            entry("z", "1"),
            entry("poolform.stack", "s"),
            entry("a", "2"),
        ]);
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(json, r#"{"a":"2","poolform.stack":"s","z":"1"}"#);
        let map: BTreeMap<String, String> = labels.clone().into_iter().collect();
        assert_eq!(json, serde_json::to_string(&map).unwrap());
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), labels);
        assert_eq!(serde_json::to_string(&Labels::new()).unwrap(), "{}");
        assert_eq!(format!("{labels:?}"), format!("{map:?}"));
    }

    #[test]
    fn a_repeated_key_in_json_keeps_the_last_value_as_a_btreemap_does() {
        let json = r#"{"b":"1","a":"2","b":"3"}"#;
        let labels: Labels = serde_json::from_str(json).unwrap();
        let map: BTreeMap<String, String> = serde_json::from_str(json).unwrap();
        assert_eq!(pairs(&labels), [("a", "2"), ("b", "3")]);
        assert!(labels.iter().eq(map.iter()));
        // Read from a `serde_json::Value` too, as the reference broker reads bodies.
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::from_value::<Labels>(value).unwrap(), labels);
    }

    #[test]
    fn a_decoded_map_holds_no_spare_slots() {
        let labels: Labels = serde_json::from_str(r#"{"poolform.stack":"s"}"#).unwrap();
        assert_eq!(labels.0.capacity(), 1);
        let repeated: Labels = serde_json::from_str(r#"{"a":"1","a":"2","a":"3"}"#).unwrap();
        assert_eq!(repeated.0.capacity(), 1);
    }

    #[test]
    fn what_is_not_a_map_is_refused_as_for_a_btreemap() {
        for json in [r#"["a"]"#, "null", r#"{"a":1}"#] {
            let ours = serde_json::from_str::<Labels>(json)
                .unwrap_err()
                .to_string();
            let theirs = serde_json::from_str::<BTreeMap<String, String>>(json)
                .unwrap_err()
                .to_string();
            assert_eq!(ours, theirs, "{json}");
        }
    }

    #[test]
    fn the_schema_is_a_btreemap_of_strings() {
        let ours = crate::json_schema::draft07::<Labels>();
        let theirs = crate::json_schema::draft07::<BTreeMap<String, String>>();
        assert_eq!(ours, theirs);
        assert_eq!(Labels::schema_id(), <BTreeMap<String, String>>::schema_id());
    }
}
