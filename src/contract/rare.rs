//! `Rare<T>`: a field that almost every value holds at its default, kept as
//! one null pointer until it is not.
//!
//! A destination's maintenance settings are 128 bytes inline, and at 200k
//! destinations almost all of them are "off": 24 MB of a plan's memory for
//! nothing. `Rare` stores only what differs from the default, reads as the
//! value itself (`Deref`), and encodes and decodes as it, so the wire format
//! and every reader are unchanged.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A type whose default lives in a `static`, so that a `Rare` at its
/// default can lend a reference to it.
pub trait StaticDefault: Default + PartialEq + 'static {
    fn default_ref() -> &'static Self;
}

/// `T`, boxed only when it is not `T::default()`.
#[derive(Clone, Default)]
pub struct Rare<T>(Option<Box<T>>);

impl<T: StaticDefault> Rare<T> {
    pub fn is_default(&self) -> bool {
        **self == *T::default_ref()
    }
}

impl<T: StaticDefault> From<T> for Rare<T> {
    fn from(value: T) -> Rare<T> {
        if value == *T::default_ref() {
            Rare(None)
        } else {
            Rare(Some(Box::new(value)))
        }
    }
}

impl<T: StaticDefault> Deref for Rare<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(value) => value,
            None => T::default_ref(),
        }
    }
}

/// A write boxes the value, even one that leaves it at the default again;
/// equality and encoding look at the value, so nobody can tell.
impl<T: StaticDefault> DerefMut for Rare<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: StaticDefault> PartialEq for Rare<T> {
    fn eq(&self, other: &Rare<T>) -> bool {
        **self == **other
    }
}

impl<T: StaticDefault + Eq> Eq for Rare<T> {}

impl<T: StaticDefault> PartialEq<T> for Rare<T> {
    fn eq(&self, other: &T) -> bool {
        **self == *other
    }
}

impl<T: StaticDefault + fmt::Debug> fmt::Debug for Rare<T> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: StaticDefault + Serialize> Serialize for Rare<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de, T: StaticDefault + Deserialize<'de>> Deserialize<'de> for Rare<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rare<T>, D::Error> {
        T::deserialize(deserializer).map(Rare::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    struct Notes {
        text: Option<String>,
        tags: Vec<String>,
    }

    impl StaticDefault for Notes {
        fn default_ref() -> &'static Notes {
            static NONE: Notes = Notes {
                text: None,
                tags: Vec::new(),
            };
            &NONE
        }
    }

    #[test]
    fn a_default_takes_no_box_and_reads_as_the_default() {
        let rare = Rare::from(Notes::default());
        assert!(rare.0.is_none());
        assert!(rare.is_default());
        assert_eq!(*rare, Notes::default());
        assert_eq!(std::mem::size_of::<Rare<Notes>>(), 8);
    }

    #[test]
    fn a_value_off_its_default_is_kept_and_compares_by_value() {
        let notes = Notes {
            text: Some("x".into()),
            tags: vec![],
        };
        let rare = Rare::from(notes.clone());
        assert_eq!(rare, notes);
        assert!(!rare.is_default());
        // Written back to the default through `DerefMut`: boxed, yet equal
        // to a `Rare` that never was.
        let mut written = rare.clone();
        written.text = None;
        assert!(written.0.is_some());
        assert_eq!(written, Rare::from(Notes::default()));
        assert!(written.is_default());
    }

    #[test]
    fn encodes_and_decodes_as_the_value_itself() {
        let notes = Notes {
            text: None,
            tags: vec!["a".into()],
        };
        let rare = Rare::from(notes.clone());
        let json = serde_json::to_string(&rare).unwrap();
        assert_eq!(json, serde_json::to_string(&notes).unwrap());
        assert_eq!(serde_json::from_str::<Rare<Notes>>(&json).unwrap(), rare);
        let off: Rare<Notes> = serde_json::from_str(r#"{"text":null,"tags":[]}"#).unwrap();
        assert!(off.0.is_none());
        assert_eq!(format!("{off:?}"), format!("{:?}", Notes::default()));
    }
}
