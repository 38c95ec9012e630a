//! The desired state: what a validated config asks of the broker, normalised
//! into broker terms with no spans, no files and secrets already resolved.
//! Plan compares this against `broker::LiveState`; it never sees YAML.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::contract::wire::{AppType, Labels, LoadBalancing, Maintenance, Protocol};

#[derive(Debug, Clone)]
pub struct Desired {
    /// Ownership label value: only live resources carrying it are changed or deleted.
    pub stack: String,
    pub safety: Safety,
    pub pools: BTreeMap<String, DesiredPool>,
    pub app_configs: BTreeMap<String, DesiredAppConfig>,
    pub app_instances: BTreeMap<String, DesiredAppInstance>,
    /// Destinations whose maintenance mode the config manages.
    pub destinations: BTreeMap<String, DesiredDestination>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Safety {
    /// Refuse plans deleting more than this share of managed resources
    /// (only checked when at least 10 are managed).
    pub max_delete_percent: u8,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            max_delete_percent: 30,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DesiredPool {
    pub load_balancing: LoadBalancing,
    pub username: Option<String>,
    pub password: Option<crate::secret::Secret>,
    pub members: BTreeSet<String>,
    pub drain: Drain,
    pub min_members: Option<u32>,
    /// User labels; plan adds the stack label.
    pub labels: Labels,
}

/// What to do with sessions on a destination leaving a pool.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[schemars(title = "drain policy")]
pub enum DrainSessions {
    /// Fail the removal while the destination has active sessions.
    #[default]
    Refuse,
    /// Disconnect the sessions, then remove.
    Disconnect,
    /// Wait until the sessions end (up to `timeout`), then remove.
    Wait,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub sessions: DrainSessions,
    /// Seconds; only meaningful with `wait` and `disconnect`.
    pub timeout_seconds: Option<u64>,
    /// Users are told first and given a lead time (`disconnect` only).
    pub notice: Option<DrainNotice>,
}

/// The warning a `disconnect` drain gives the users on a destination before
/// it disconnects them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainNotice {
    /// The notice in German.
    pub de: String,
    /// The notice in English.
    pub en: String,
    /// How long users have to log off before the rest are disconnected.
    pub lead_time_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAppConfig {
    pub pool: String,
    pub app_type: AppType,
    pub protocol: Protocol,
    pub admin_session: bool,
    pub keep_credentials_on_destination_change: bool,
    pub allow_destination_change: bool,
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAppInstance {
    pub app_config: String,
    pub assignee: Assignee,
    pub destination: Option<String>,
    pub labels: Labels,
}

/// An app instance belongs to exactly one user (single licence) or one group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Assignee {
    User(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDestination {
    pub maintenance: Maintenance,
}
