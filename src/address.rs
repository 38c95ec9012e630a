//! Identity of a managed resource: its kind and name, as written in
//! `--target KIND/NAME`, in plans and in diagnostics.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

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
    pub name: Arc<str>,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<Arc<str>>) -> Self {
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
