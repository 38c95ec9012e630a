//! Labels on broker resources: the compact [`Labels`] map every wire type
//! carries, and the labels poolform keeps for its own bookkeeping (which
//! stack owns a resource, and the fingerprints of secrets it wrote). One home
//! for reading and writing them, so plan, apply, export and import agree on
//! what "owned" means.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resource's labels: string keys to string values, sorted by key, keys
/// unique. It behaves as a `BTreeMap<String, String>` does (same iteration
/// order, JSON, schema and `Debug`), but stores its entries in one shared,
/// immutable slice, or nothing when there are none: almost every resource
/// has a single label (the stack label), and a `BTreeMap` allocates a whole
/// leaf node (~540 bytes) even for one entry, 54 MB of a 100k-instance live
/// state. Most resources of a live state carry the same labels, so decoding
/// shares one copy among neighbours that do (see `LabelsVisitor`): at 1M
/// app instances, about 0.1 GB less. Lookups are binary searches; a change
/// copies the (small) slice.
#[derive(Clone, Default)]
pub struct Labels(Option<Arc<[(String, String)]>>);

type Entries = Vec<(String, String)>;

impl Labels {
    pub const fn new() -> Labels {
        Labels(None)
    }

    fn entries(&self) -> &[(String, String)] {
        self.0.as_deref().unwrap_or_default()
    }

    /// Changes the entries: labels are changed rarely (an apply, a broker
    /// write), so a change copies them whether shared or not.
    fn change<R>(&mut self, edit: impl FnOnce(&mut Entries) -> R) -> R {
        let mut entries = self.entries().to_vec();
        let result = edit(&mut entries);
        *self = Labels::from_sorted(entries);
        result
    }

    /// Entries already sorted by key with unique keys.
    fn from_sorted(entries: Entries) -> Labels {
        Labels((!entries.is_empty()).then(|| Arc::from(entries)))
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        String: Borrow<Q>,
    {
        self.entries()
            .binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&String>
    where
        String: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries()[i].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        String: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => self.change(|entries| Some(std::mem::replace(&mut entries[i].1, value))),
            Err(i) => self.change(|entries| {
                entries.insert(i, (key, value));
                None
            }),
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<String>
    where
        String: Borrow<Q>,
    {
        let i = self.find(key).ok()?;
        Some(self.change(|entries| entries.remove(i).1))
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Entries in key order, as `BTreeMap::iter` yields them.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries().iter())
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries().iter().map(|(k, _)| k)
    }

    /// Entries in any order, possibly with repeated keys, made sorted and
    /// unique with the last value of a repeated key winning, as collecting
    /// into a `BTreeMap` would. The sort is stable, so among equal keys the
    /// entries stay in the order given; the sort is linear on input already
    /// in key order (what poolform writes).
    fn sorted_unique<K: Ord, V>(mut entries: Vec<(K, V)>) -> Vec<(K, V)> {
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
        entries
    }

    /// Whether two label maps are one copy.
    #[cfg(test)]
    fn shares_with(&self, other: &Labels) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

// Equal when the entries are: whether shared or not does not matter.
impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        self.entries() == other.entries()
    }
}

impl Eq for Labels {}

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
        self.entries().to_vec().into_iter()
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
        Labels::from_sorted(Labels::sorted_unique(iter.into_iter().collect()))
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(entries: [(String, String); N]) -> Labels {
        entries.into_iter().collect()
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

/// Decodes a label map, sharing one copy among neighbours with the same
/// labels: the last map decoded on this thread is kept, and a map equal to
/// it is a copy of the pointer. The entries are compared as they stand in
/// the input where they can be borrowed, so a shared map costs no
/// allocation. Labels compare by value, so which maps share changes
/// nothing but memory.
struct LabelsVisitor;

thread_local! {
    static LAST_DECODED: std::cell::RefCell<Labels> = const { std::cell::RefCell::new(Labels::new()) };
}

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
        while let Some(entry) = map.next_entry::<Text<'de>, Text<'de>>()? {
            entries.push(entry);
        }
        if entries.is_empty() {
            return Ok(Labels::new());
        }
        let entries = Labels::sorted_unique(entries);
        Ok(LAST_DECODED.with_borrow_mut(|last| {
            let same = last.len() == entries.len()
                && last
                    .iter()
                    .zip(&entries)
                    .all(|((k, v), (key, value))| k == &**key && v == &**value);
            if !same {
                *last = Labels::from_sorted(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect(),
                );
            }
            last.clone()
        }))
    }
}

/// A string of the input: borrowed when the input holds it as is (no
/// escapes), owned otherwise.
struct Text<'de>(Cow<'de, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Text<'_> {}

impl PartialOrd for Text<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl Text<'_> {
    fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text<'de>, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            // serde's wording for a `String`, so a rejected body reads the same.
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                text: &'de str,
            ) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
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
    fn neighbours_with_the_same_labels_share_one_copy() {
        let list = r#"[{"poolform.stack":"s"},{"poolform.stack":"s"},{"poolform.stack":"t"},
            {"poolform.stack":"t","team":"a"},{"team":"a","poolform.stack":"t"},{},
            {"poolform.stack":"t","team":"\u0061"}]"#;
        let decoded: Vec<Labels> = serde_json::from_str(list).unwrap();
        assert!(decoded[0].shares_with(&decoded[1]));
        assert!(!decoded[1].shares_with(&decoded[2]));
        assert_eq!(pairs(&decoded[2]), [("poolform.stack", "t")]);
        // Keys in another order are the same map once sorted.
        assert!(decoded[3].shares_with(&decoded[4]));
        assert!(decoded[5].is_empty());
        // An escaped string is compared as what it decodes to.
        assert!(decoded[6].shares_with(&decoded[4]));
        assert_eq!(decoded[6]["team"], "a");
        // A change to a shared copy changes only the one changed.
        let mut changed = decoded[0].clone();
        changed.insert("team".into(), "b".into());
        assert_eq!(pairs(&decoded[1]), [("poolform.stack", "s")]);
        assert_eq!(pairs(&changed), [("poolform.stack", "s"), ("team", "b")]);
        assert!(!changed.shares_with(&decoded[1]));
    }

    #[test]
    fn a_labels_value_is_two_words() {
        // Held once per resource, a million of them in a large live state.
        assert_eq!(
            std::mem::size_of::<Labels>(),
            2 * std::mem::size_of::<usize>()
        );
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
