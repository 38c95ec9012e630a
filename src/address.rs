//! Identity of a managed resource: its kind and name, as written in
//! `--target KIND/NAME`, in plans and in diagnostics; and the shared
//! [`Name`] plans hold names in.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use arcstr::ArcStr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kinds of resource poolform manages, as written in `--target KIND/NAME`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Pool,
    AppConfig,
    AppInstance,
    Destination,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Pool,
        Kind::AppConfig,
        Kind::AppInstance,
        Kind::Destination,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pool => "pool",
            Kind::AppConfig => "app_config",
            Kind::AppInstance => "app_instance",
            Kind::Destination => "destination",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of a resource: (kind, name).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Address {
    pub kind: Kind,
    // Shared, not owned: every step of a plan names its cause, and the
    // steps of one pool (five a member when members are replaced) share
    // the pool's name rather than copy it.
    pub name: Name,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<Name>) -> Self {
        Address {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl std::str::FromStr for Address {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, name) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not KIND/NAME"))?;
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind || k.as_str().replace('_', "-") == kind)
            .ok_or_else(|| {
                format!(
                    "unknown kind '{kind}' (expected pool, app_config, app_instance or destination)"
                )
            })?;
        if name.is_empty() {
            return Err(format!("'{s}' has no name after the '/'"));
        }
        Ok(Address::new(kind, name))
    }
}

/// A shared, immutable name: one pointer (8 bytes), the length kept beside
/// the text, where an `Arc<str>` is 16 and a `String` 24. A plan that
/// replaces 1M members holds about 8M names in its steps and 7M in their
/// facts, and those are most of what a step and a fact are made of.
/// Compares, hashes, prints and serialises as the text itself.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(ArcStr);

impl Name {
    /// Whether `a` and `b` are one shared allocation, not two equal texts.
    pub fn ptr_eq(a: &Name, b: &Name) -> bool {
        ArcStr::ptr_eq(&a.0, &b.0)
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        Name(ArcStr::from(text))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read from the text as it stands, not through a `String` first:
        // a name is copied once, into its shared allocation.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Name;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Name, E> {
                Ok(Name::from(text))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl schemars::JsonSchema for Name {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_one_pointer_and_reads_writes_orders_and_prints_as_its_text() {
        assert_eq!(std::mem::size_of::<Name>(), 8);
        assert_eq!(std::mem::size_of::<Option<Name>>(), 8);
        let name = Name::from("rds-01");
        assert_eq!(serde_json::to_string(&name).unwrap(), r#""rds-01""#);
        let read: Name = serde_json::from_str(r#""rds-\u00301""#).unwrap();
        assert_eq!(read, name);
        assert!(serde_json::from_str::<Name>("1").is_err());
        assert_eq!(format!("{name} {name:?}"), r#"rds-01 "rds-01""#);
        let (a, b) = (Name::from("a"), Name::from("b"));
        assert!(a < b && &*b == "b");
        assert!(Name::ptr_eq(&name, &name.clone()));
        assert!(!Name::ptr_eq(&name, &Name::from("rds-01")));
        assert_eq!(
            serde_json::to_value(schemars::schema_for!(Name)).unwrap()["type"],
            "string"
        );
    }
}
