//! Decoding a list page straight into the list being gathered: the items of
//! every page land in one vector, sized once from the page's `total`.
//!
//! Decoding each page into a `Page<T>` and appending its items costs a
//! page-sized vector per page and a doubling of the gathered list, which at
//! 200k destinations is about a tenth of a plan's CPU time (copies and the
//! page faults of fresh memory) and up to twice the list's memory at once.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The most items a page's `total` may make room for at once: the total is
/// a hint from the broker, and a wrong one must not reserve without bound.
/// Past this the list grows as it fills.
const MAX_RESERVE: u64 = 1 << 22;

/// What is left of a page once its items are in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEnd {
    pub next_cursor: Option<String>,
    pub total: u64,
}

/// Decodes one page (`{"total": N, "items": [...], "next_cursor": ...}`, in
/// any field order), appending its items to `items`. It accepts and refuses
/// what the derived decoder of [`super::wire::Page`] does: `total` and
/// `items` are required, a missing `next_cursor` is the last page, and an
/// unknown field is refused.
pub fn decode_into<T: for<'de> Deserialize<'de>>(
    json: &[u8],
    items: &mut Vec<T>,
) -> serde_json::Result<PageEnd> {
    // Checked as UTF-8 once, so that the decoder need not check each
    // string it reads (a call per key and value, a twentieth of a 200k
    // destination read). A body that is not UTF-8 is decoded as bytes, for
    // the decoder's located error.
    match std::str::from_utf8(json) {
        Ok(text) => decode(&mut serde_json::Deserializer::from_str(text), items),
        Err(_) => decode(&mut serde_json::Deserializer::from_slice(json), items),
    }
}

fn decode<'de, R: serde_json::de::Read<'de>, T: for<'a> Deserialize<'a>>(
    de: &mut serde_json::Deserializer<R>,
    items: &mut Vec<T>,
) -> serde_json::Result<PageEnd> {
    let end = PageInto { items }.deserialize(&mut *de)?;
    de.end()?;
    Ok(end)
}

const FIELDS: &[&str] = &["total", "items", "next_cursor"];

struct PageInto<'v, T> {
    items: &'v mut Vec<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for PageInto<'_, T> {
    type Value = PageEnd;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<PageEnd, D::Error> {
        deserializer.deserialize_struct("Page", FIELDS, self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for PageInto<'_, T> {
    type Value = PageEnd;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a page: an object with total, items and next_cursor")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PageEnd, A::Error> {
        let (mut total, mut items_seen, mut next_cursor) = (None, false, None);
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Total => {
                    if total.is_some() {
                        return Err(de::Error::duplicate_field("total"));
                    }
                    let n: u64 = map.next_value()?;
                    // Sized once, on the first page (the later ones say the
                    // same, give or take a concurrent change).
                    if !items_seen && self.items.capacity() == 0 {
                        let room = usize::try_from(n.min(MAX_RESERVE)).unwrap_or(0);
                        self.items.reserve_exact(room);
                    }
                    total = Some(n);
                }
                Field::Items => {
                    if items_seen {
                        return Err(de::Error::duplicate_field("items"));
                    }
                    map.next_value_seed(Append {
                        items: &mut *self.items,
                    })?;
                    items_seen = true;
                }
                Field::NextCursor => {
                    if next_cursor.is_some() {
                        return Err(de::Error::duplicate_field("next_cursor"));
                    }
                    next_cursor = Some(map.next_value::<Option<String>>()?);
                }
            }
        }
        if !items_seen {
            return Err(de::Error::missing_field("items"));
        }
        Ok(PageEnd {
            // As serde's derive reads a missing `Option`: the last page.
            next_cursor: next_cursor.flatten(),
            total: total.ok_or_else(|| de::Error::missing_field("total"))?,
        })
    }
}

enum Field {
    Total,
    Items,
    NextCursor,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a page field")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                match name {
                    "total" => Ok(Field::Total),
                    "items" => Ok(Field::Items),
                    "next_cursor" => Ok(Field::NextCursor),
                    other => Err(E::unknown_field(other, FIELDS)),
                }
            }
        }
        deserializer.deserialize_identifier(Name)
    }
}

/// The `items` array, each element pushed onto the list as it is decoded.
struct Append<'v, T> {
    items: &'v mut Vec<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Append<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Append<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            self.items.push(item);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::wire::Page;

    #[test]
    fn a_page_appends_its_items_and_tells_the_cursor_and_total() {
        let mut items: Vec<u32> = vec![1];
        let end = decode_into(
            br#"{"total":4,"items":[2,3],"next_cursor":"c"}"#,
            &mut items,
        )
        .expect("a page");
        assert_eq!(items, [1, 2, 3]);
        assert_eq!(
            end,
            PageEnd {
                next_cursor: Some("c".into()),
                total: 4
            }
        );
    }

    #[test]
    fn the_first_page_sizes_the_list_from_its_total() {
        let mut items: Vec<u32> = Vec::new();
        decode_into(
            br#"{"total":5000,"items":[1],"next_cursor":"a"}"#,
            &mut items,
        )
        .unwrap();
        assert!(items.capacity() >= 5000, "capacity {}", items.capacity());
        // A later page's total does not resize what is already sized.
        let before = items.capacity();
        decode_into(
            br#"{"total":9000,"items":[2],"next_cursor":null}"#,
            &mut items,
        )
        .unwrap();
        assert_eq!(items.capacity(), before);
    }

    #[test]
    fn a_huge_total_reserves_at_most_the_bound() {
        let mut items: Vec<u8> = Vec::new();
        let json = format!(r#"{{"total":{},"items":[],"next_cursor":null}}"#, u64::MAX);
        decode_into(json.as_bytes(), &mut items).unwrap();
        assert!(items.capacity() as u64 <= MAX_RESERVE);
    }

    #[test]
    fn a_page_without_a_cursor_is_the_last_one_as_for_page() {
        let json = br#"{"total":0,"items":[]}"#;
        let end = decode_into::<u32>(json, &mut Vec::new()).unwrap();
        assert_eq!(end.next_cursor, None);
        let page: Page<u32> = serde_json::from_slice(json).unwrap();
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn field_order_does_not_matter() {
        let mut items: Vec<u32> = Vec::new();
        let end =
            decode_into(br#"{"next_cursor":null,"items":[7],"total":1}"#, &mut items).unwrap();
        assert_eq!((items, end.next_cursor, end.total), (vec![7], None, 1));
    }

    #[test]
    fn missing_duplicate_unknown_and_trailing_are_refused_as_for_page() {
        for (json, needle) in [
            (
                r#"{"items":[],"next_cursor":null}"#,
                "missing field `total`",
            ),
            (r#"{"total":0,"next_cursor":null}"#, "missing field `items`"),
            (
                r#"{"total":0,"items":[],"items":[],"next_cursor":null}"#,
                "duplicate field `items`",
            ),
            (
                r#"{"total":0,"items":[],"next_cursor":null,"more":1}"#,
                "unknown field `more`",
            ),
            (r#"{"total":0,"items":[],"next_cursor":null} x"#, "trailing"),
            (
                r#"{"total":0,"items":["x"],"next_cursor":null}"#,
                "invalid type",
            ),
            (r#"[]"#, "invalid type"),
        ] {
            let mut items: Vec<u32> = Vec::new();
            let error = decode_into(json.as_bytes(), &mut items)
                .expect_err(json)
                .to_string();
            assert!(error.contains(needle), "{json}: {error}");
            // The derived decoder of the same page agrees that it is bad.
            assert!(serde_json::from_str::<Page<u32>>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_with_its_place_as_for_page() {
        let json = b"{\"total\":1,\"items\":[\"\xff\"],\"next_cursor\":null}";
        let mut items: Vec<String> = Vec::new();
        let error = decode_into(json, &mut items).expect_err("not UTF-8");
        let derived = serde_json::from_slice::<Page<String>>(json).expect_err("not UTF-8");
        assert_eq!(error.to_string(), derived.to_string());
        assert!(error.column() > 0, "{error}");
    }

    #[test]
    fn agrees_with_the_derived_page_decoder() {
        let page = Page {
            total: 3,
            items: vec![10u32, 20, 30],
            next_cursor: Some("x".to_string()),
        };
        let json = serde_json::to_vec(&page).unwrap();
        let mut items = Vec::new();
        let end = decode_into(&json, &mut items).unwrap();
        assert_eq!(
            Page {
                total: end.total,
                items,
                next_cursor: end.next_cursor
            },
            page
        );
    }
}
