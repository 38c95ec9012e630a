//! The serde side of the fast YAML front end: the `Deserializer`s that
//! hand the config's types a parsed node, or a block mapping read entry by
//! entry from the file as they ask for it.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{SeqDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::{Context, Keys, Node, Reader, SMALL_MAPPING};
use crate::config::spec::{At, SPANNED};

/// Why the tree does not fit the config's types. Never shown: the general
/// parser reads the file again and says what is wrong.
#[derive(Debug)]
pub(super) struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("declined by the fast front end")
    }
}

impl std::error::Error for Declined {}

impl de::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Declined
    }
}

/// Whether a plain scalar is text to every YAML 1.2 reader (no number,
/// boolean or null), judged conservatively: a letter first and not a
/// special word, or digits first and a letter no number spelling uses.
fn is_text(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if first.is_ascii_digit() {
        return !text.contains(':')
            && text
                .bytes()
                .any(|b| b.is_ascii_alphabetic() && !b"abcdefxoABCDEFXO".contains(&b));
    }
    let special = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "inf", "nan", "infinity",
    ];
    (first.is_alphabetic() || first == '_' || first == '/')
        && !special.iter().any(|s| text.eq_ignore_ascii_case(s))
}

/// A plain scalar that is a whole number as written: digits only, no
/// leading zero.
fn whole_number(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    (digits && (text == "0" || !text.starts_with('0')))
        .then(|| text.parse().ok())
        .flatten()
}

impl<'de, 't> Deserializer<'de> for Node<'t> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self {
            Node::Scalar {
                text, plain: true, ..
            } => match whole_number(&text) {
                Some(n) => visitor.visit_u64(n),
                None if is_text(&text) => visitor.visit_str(&text),
                None => Err(Declined),
            },
            Node::Scalar { text, .. } => visitor.visit_str(&text),
            Node::Seq { items, .. } => visitor.visit_seq(SeqDeserializer::new(items.into_iter())),
            Node::Map { entries, .. } => visitor.visit_map(Entries {
                entries: entries.into_iter(),
                value: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self {
            Node::Scalar {
                text, plain: true, ..
            } => match &*text {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                _ => Err(Declined),
            },
            _ => Err(Declined),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self {
            Node::Scalar {
                text, plain: true, ..
            } => visitor.visit_u64(whole_number(&text).ok_or(Declined)?),
            _ => Err(Declined),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self {
            Node::Scalar { text, plain, .. } if !plain || is_text(&text) => match text {
                Cow::Borrowed(text) => visitor.visit_str(text),
                Cow::Owned(text) => visitor.visit_string(text),
            },
            _ => Err(Declined),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        if name == SPANNED {
            visitor.visit_seq(Spanned::new(self.at(), self))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self {
            Node::Seq { items, .. } => visitor.visit_seq(SeqDeserializer::new(items.into_iter())),
            _ => Err(Declined),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        match self {
            Node::Map { entries, .. } => visitor.visit_map(Entries {
                entries: entries.into_iter(),
                value: None,
            }),
            _ => Err(Declined),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Declined> {
        match self {
            Node::Scalar {
                text, plain: true, ..
            } if is_text(&text) => {
                let variant: StrDeserializer<'_, Declined> = text.as_ref().into_deserializer();
                visitor.visit_enum(variant)
            }
            _ => Err(Declined),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u128 f32 f64 char bytes byte_buf unit unit_struct tuple
        tuple_struct
    }
}

impl<'de, 't> IntoDeserializer<'de, Declined> for Node<'t> {
    type Deserializer = Node<'t>;

    fn into_deserializer(self) -> Node<'t> {
        self
    }
}

/// The entries of a mapping, one key and then its value at a time.
struct Entries<'t> {
    entries: std::vec::IntoIter<(Node<'t>, Node<'t>)>,
    value: Option<Node<'t>>,
}

impl<'de, 't> de::MapAccess<'de> for Entries<'t> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Declined> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Declined> {
        seed.deserialize(self.value.take().ok_or(Declined)?)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// What `Sp` asks for (see [`SPANNED`]): the value's place, then the value.
struct Spanned<D> {
    at: At,
    value: Option<D>,
    at_given: bool,
}

impl<D> Spanned<D> {
    fn new(at: At, value: D) -> Spanned<D> {
        Spanned {
            at,
            value: Some(value),
            at_given: false,
        }
    }
}

impl<'de, D: Deserializer<'de, Error = Declined>> de::SeqAccess<'de> for Spanned<D> {
    type Error = Declined;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Declined> {
        if !self.at_given {
            self.at_given = true;
            let at = self.at;
            let parts = [at.line, at.column, at.offset, at.len];
            return seed
                .deserialize(SeqDeserializer::<_, Declined>::new(parts.into_iter()))
                .map(Some);
        }
        match self.value.take() {
            Some(value) => seed.deserialize(value).map(Some),
            None => Ok(None),
        }
    }
}

/// `deserialize_*` methods that decline: the value is not of their kind.
macro_rules! declines {
    ($de:lifetime: $($method:ident)*) => {$(
        fn $method<V: Visitor<$de>>(self, _: V) -> Result<V::Value, Declined> {
            Err(Declined)
        }
    )*};
}

/// A block mapping not read yet: its entries are parsed one at a time, as
/// the config's types ask for them, so that a section of a million entries
/// never stands in memory as a tree. Building that tree, and the page
/// faults of its fresh memory, were half of the parse of a large file;
/// read this way, each entry's few nodes reuse the memory of the last.
pub(super) struct Block<'r, 't> {
    pub(super) reader: &'r mut Reader<'t>,
    pub(super) indent: usize,
    pub(super) depth: usize,
    pub(super) at: At,
}

impl Block<'_, '_> {
    fn visit<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        let mut entries = BlockEntries {
            reader: self.reader,
            indent: self.indent,
            depth: self.depth,
            keys: Keys::default(),
            small: Vec::new(),
            value_from: None,
            ended: false,
        };
        let value = visitor.visit_map(&mut entries)?;
        // A type that stopped reading before the end would leave the
        // reader inside the mapping, where the next read would misplace
        // its lines: that is declined, a type content with less is not.
        match de::MapAccess::next_key::<de::IgnoredAny>(&mut entries)? {
            None => Ok(value),
            Some(_) => Err(Declined),
        }
    }
}

/// A type that reads anything but a mapping declines a block mapping, as
/// it declines a parsed one (see `Node`).
impl<'de> Deserializer<'de> for Block<'_, '_> {
    type Error = Declined;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.visit(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Declined> {
        if name == SPANNED {
            visitor.visit_seq(Spanned::new(self.at, self))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Declined> {
        Err(Declined)
    }

    /// Ignored, the mapping is still read to its end, so that the reader
    /// moves past it.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Declined> {
        self.visit(visitor)
    }

    declines! { 'de: deserialize_bool deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
    deserialize_str deserialize_string deserialize_identifier deserialize_seq }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u128 f32 f64 char bytes byte_buf unit unit_struct tuple
        tuple_struct map struct
    }
}

/// The entries of a block mapping, read from the file one key and then its
/// value at a time.
struct BlockEntries<'r, 't> {
    reader: &'r mut Reader<'t>,
    indent: usize,
    depth: usize,
    keys: Keys,
    /// The first keys, for `Keys` while the mapping is small.
    small: Vec<Cow<'t, str>>,
    /// Just past the colon of the key whose value is to be read next.
    value_from: Option<usize>,
    ended: bool,
}

impl<'de> de::MapAccess<'de> for BlockEntries<'_, '_> {
    type Error = Declined;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Declined> {
        if self.ended {
            return Ok(None);
        }
        if self.value_from.is_some() {
            return Err(Declined);
        }
        let reader = &mut *self.reader;
        match reader.next_content().ok_or(Declined)? {
            Some(found) if found == self.indent => {}
            Some(found) if found > self.indent => return Err(Declined),
            _ => {
                self.ended = true;
                let distinct = std::mem::take(&mut self.keys).distinct();
                return if distinct { Ok(None) } else { Err(Declined) };
            }
        }
        let start = reader.line_start + self.indent;
        if matches!(reader.byte(start), Some(b'-')) {
            return Err(Declined);
        }
        let (key, after) = reader.scalar(start, Context::Key).ok_or(Declined)?;
        if reader.byte(after) != Some(b':') {
            return Err(Declined);
        }
        let Node::Scalar { text, .. } = &key else {
            return Err(Declined);
        };
        if !self.keys.insert(text, &self.small, |k| Some(k)) {
            return Err(Declined);
        }
        if self.small.len() < SMALL_MAPPING {
            self.small.push(text.clone());
        }
        self.value_from = Some(after + 1);
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Declined> {
        let from = self.value_from.take().ok_or(Declined)?;
        match self.reader.mapping_value(self.indent, from, self.depth) {
            Some(Value::Node(node)) => seed.deserialize(node),
            Some(Value::Block(block)) => seed.deserialize(block),
            None => Err(Declined),
        }
    }
}

/// A mapping's value: parsed already (a scalar, a flow collection, or a
/// block sequence of one-line items), or a block mapping to read.
pub(super) enum Value<'r, 't> {
    Node(Node<'t>),
    Block(Block<'r, 't>),
}
