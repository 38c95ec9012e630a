//! Wire types of the broker HTTP API: the JSON bodies both the client and the
//! reference broker speak. Every type here is a compatibility promise; the
//! OpenAPI file in `schema/broker-api.openapi.yaml` describes the same shapes.

use serde::{Deserialize, Serialize};

/// Largest page a list request may ask for.
pub const MAX_PAGE_LIMIT: usize = 1000;

// Defined beside the label helpers; named here too as the wire type it is.
pub use super::labels::Labels;
use super::rare::{Rare, StaticDefault};

/// One page of a paginated list:
/// `{"total": N, "items": [...], "next_cursor": "..."|null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page<T> {
    /// How many items the whole list held when this page was cut: a hint
    /// that lets a client size its list once (see `page::decode_into`);
    /// the list may change between pages, and the cursor alone ends it.
    /// First, so that a client knows it before the items arrive.
    pub total: u64,
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Header on every answer of the broker API: the identity of the broker
/// state that answered (see [`BrokerInfo`]).
pub const BROKER_ID_HEADER: &str = "Poolform-Broker-Id";

/// `GET /v1/broker`: who this broker is. The id is minted at random when the
/// broker's state is created and never copied from a seed or snapshot, so a
/// broker started from another's snapshot is a different broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerInfo {
    pub id: String,
}

/// Per-destination maintenance mode: users outside `allowed_groups` cannot
/// start app instances on it and see the notice instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_de: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_en: Option<String>,
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// The stack that switched maintenance on; none when set by hand, so
    /// that a stack only ever switches off what it switched on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The load-balanced pools the owning stack took the destination out
    /// of for this maintenance, sorted: the broker keeps them so that the
    /// memberships can be recovered from live state (export).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out_of_rotation: Vec<String>,
}

impl StaticDefault for Maintenance {
    fn default_ref() -> &'static Maintenance {
        static OFF: Maintenance = Maintenance {
            enabled: false,
            notice_de: None,
            notice_en: None,
            allowed_groups: Vec::new(),
            owner: None,
            out_of_rotation: Vec::new(),
        };
        &OFF
    }
}

/// `PUT /v1/destinations/{name}/drain` body: who puts the destination in
/// drain mode (a stack name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainBody {
    pub holder: String,
}

/// A load-balancing service a removal could not uninstall because the host
/// was offline: which pool's removal left it, and who owned that pool then
/// (its `poolform.stack` label), so that stack can clean it up later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leftover {
    pub pool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// Session counts of a destination, carried on the destination itself so that
/// one paginated read of destinations is enough to plan drains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCounts {
    pub active: u32,
    pub disconnected: u32,
}

/// A Windows server registered in the broker. poolform never creates one.
/// Fields at their defaults are left out of its JSON: destinations are the
/// longest list a broker holds, and most of them are at those defaults, so
/// this halves what a plan reads and decodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub name: String,
    /// Reachable by the metrics exporter; an offline host shows the "box" icon.
    pub online: bool,
    pub process_execution_ready: bool,
    pub lb_service_installed: bool,
    #[serde(default, skip_serializing_if = "Rare::is_default")]
    pub maintenance: Rare<Maintenance>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub sessions: SessionCounts,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Drain mode ("no new logons"): set to its holder while the destination
    /// refuses new sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining: Option<String>,
    /// Set while a removal's load-balancing service is left on the host
    /// (boxed: rare, and 48 bytes inline on every destination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lb_service_leftover: Option<Box<Leftover>>,
    pub revision: u64,
}

impl Destination {
    /// A destination as registered: out of maintenance, without sessions,
    /// labels, drain or leftover service, and without a service installed.
    pub fn registered(name: &str, online: bool, ready: bool, revision: u64) -> Destination {
        Destination {
            name: name.to_owned(),
            online,
            process_execution_ready: ready,
            lb_service_installed: false,
            maintenance: Rare::default(),
            sessions: SessionCounts::default(),
            labels: Labels::new(),
            draining: None,
            lb_service_leftover: None,
            revision,
        }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancing {
    pub enabled: bool,
    /// 0 switches sticky sessions off; otherwise at least 1.
    #[serde(default)]
    pub sticky_sessions_minutes: u32,
    #[serde(default)]
    pub grace_period_seconds: u32,
}

/// Default credentials as sent to the broker. The password travels only in
/// write requests; the broker answers with `password_set` instead.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for CredentialsBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsBody")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(sensitive)"))
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub password_set: bool,
}

/// `PUT /v1/pools/{name}` body: settings only; members have their own paths.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolBody {
    #[serde(default)]
    pub load_balancing: LoadBalancing,
    #[serde(default)]
    pub default_credentials: CredentialsBody,
    #[serde(default)]
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    pub load_balancing: LoadBalancing,
    pub default_credentials: Credentials,
    pub labels: Labels,
    /// Destination names, sorted.
    #[serde(deserialize_with = "exact_names")]
    pub members: Vec<String>,
    pub revision: u64,
}

/// A list of names with no room to spare: a JSON array does not say its
/// length up front, so a decoded list keeps the room its growth left (a
/// pool of ten members has room for 16), and a live state of 100k pools
/// keeps them all: 14 MB.
fn exact_names<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let mut names = Vec::<String>::deserialize(deserializer)?;
    names.shrink_to_fit();
    Ok(names)
}

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
#[schemars(title = "app type")]
/// Type of an app configuration.
pub enum AppType {
    /// The entire desktop.
    Desktop,
    /// A single program (Remote App).
    RemoteApp,
    /// A web application.
    Web,
    /// A shell.
    Shell,
    /// A published application.
    PublishedApp,
}

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
#[schemars(title = "remote protocol")]
/// Remote protocol of an app configuration.
pub enum Protocol {
    /// Remote Desktop Protocol.
    Rdp,
    /// Virtual Network Computing.
    Vnc,
}

/// `PUT /v1/app-configs/{name}` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppConfigBody {
    pub pool: String,
    #[serde(rename = "type")]
    pub app_type: AppType,
    pub protocol: Protocol,
    #[serde(default)]
    pub admin_session: bool,
    #[serde(default)]
    pub keep_credentials_on_destination_change: bool,
    #[serde(default)]
    pub allow_destination_change: bool,
    #[serde(default)]
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub name: String,
    pub pool: String,
    #[serde(rename = "type")]
    pub app_type: AppType,
    pub protocol: Protocol,
    pub admin_session: bool,
    pub keep_credentials_on_destination_change: bool,
    pub allow_destination_change: bool,
    pub labels: Labels,
    pub revision: u64,
}

/// `PUT /v1/app-instances/{name}` body: exactly one of `user` / `group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppInstanceBody {
    pub app_config: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default)]
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppInstance {
    pub name: String,
    pub app_config: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub labels: Labels,
    pub revision: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Active,
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub id: String,
    pub user: String,
    pub destination: String,
    pub state: SessionState,
}

/// A user's binding to the destination they last used in a pool; expires at
/// `expires_at` (unix seconds) = disconnect time + sticky period + grace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyBinding {
    pub pool: String,
    pub user: String,
    pub destination: String,
    pub expires_at: u64,
}

/// `PUT /v1/locks/{stack}` body. Re-sending it with the same holder renews
/// the lease (heartbeat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockBody {
    pub holder: String,
    pub ttl_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub stack: String,
    pub holder: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Longest text of a session message, per language, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// `POST /v1/destinations/{name}/sessions/message` body: a notice shown to
/// the user of every active session on the destination, in German and
/// English. Plain text: no control characters but line breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionMessage {
    pub de: String,
    pub en: String,
}

/// Answer of `PUT|DELETE /v1/pools/{name}/members/{destination}`: the
/// membership as the write left it, with the pool's revision. Not the whole
/// pool, as other pool writes answer: an answer as large as the pool made
/// growing a pool to N members, one write each, cost O(N²) on the broker
/// (copying and encoding the pool) and on the client (decoding it): an
/// apply adding 20k members to one pool took 12 times as long as one adding
/// 5k.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    pub pool: String,
    pub destination: String,
    /// Whether the destination is a member now: `true` after an add,
    /// `false` after a removal (also when it was none to begin with).
    pub member: bool,
    /// The pool's revision after the write (unchanged by a no-op).
    pub revision: u64,
}

/// Answer of `POST /v1/destinations/{name}/sessions/disconnect` (the active
/// sessions disconnected), `POST .../sessions/message` (the active sessions
/// messaged) and `DELETE /v1/pools/{name}/sticky-sessions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affected {
    pub affected: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    Ok,
    /// The mutation happened in part; the problem code says what was left.
    Partial,
}

/// One entry of the broker's ordered mutation log (`GET /v1/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub seq: u64,
    /// Unix milliseconds.
    pub time: u64,
    /// Operation, e.g. `member.remove`, `sessions.message`, `sticky.clear`.
    pub op: String,
    /// Resource address, e.g. `pool/live/member/rds-02`.
    pub resource: String,
    pub outcome: EventOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The whole broker state (`GET /v1/snapshot`); `--seed` files have this format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    #[serde(default)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub pools: Vec<Pool>,
    #[serde(default)]
    pub app_configs: Vec<AppConfig>,
    #[serde(default)]
    pub app_instances: Vec<AppInstance>,
    #[serde(default)]
    pub sessions: Vec<Session>,
    #[serde(default)]
    pub sticky_bindings: Vec<StickyBinding>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination() -> Destination {
        Destination::registered("rds-01", true, true, 3)
    }

    #[test]
    fn a_destination_keeps_its_rare_parts_out_of_line() {
        // The broker's longest list: every byte here is 200 KB of a plan
        // at 200k destinations.
        assert_eq!(std::mem::size_of::<Destination>(), 104);
    }

    /// A live state keeps every pool's members for the whole plan.
    #[test]
    fn a_decoded_pool_keeps_no_room_beyond_its_members() {
        let names: Vec<String> = (0..10).map(|i| format!("rds-{i:02}")).collect();
        let written = Pool {
            name: "live".to_owned(),
            load_balancing: LoadBalancing::default(),
            default_credentials: Default::default(),
            labels: Labels::new(),
            members: names.clone(),
            revision: 1,
        };
        let json = serde_json::to_string(&written).unwrap();
        let pool: Pool = serde_json::from_str(&json).unwrap();
        assert_eq!(pool.members, names);
        assert_eq!(pool.members.capacity(), pool.members.len());
    }

    #[test]
    fn maintenance_off_is_the_default_and_no_box() {
        assert_eq!(*Maintenance::default_ref(), Maintenance::default());
        assert!(std::mem::size_of::<Rare<Maintenance>>() < std::mem::size_of::<Maintenance>() / 8);
    }

    #[test]
    fn a_destination_at_its_defaults_leaves_them_out_and_reads_back_the_same() {
        let plain = destination();
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(
            json,
            r#"{"name":"rds-01","online":true,"process_execution_ready":true,"lb_service_installed":false,"revision":3}"#
        );
        assert_eq!(serde_json::from_str::<Destination>(&json).unwrap(), plain);
    }

    #[test]
    fn a_destination_off_its_defaults_carries_them_and_reads_back_the_same() {
        let mut busy = destination();
        busy.maintenance.allowed_groups = vec!["admins".into()];
        busy.sessions.disconnected = 1;
        busy.labels.insert("poolform.stack".into(), "s".into());
        let json = serde_json::to_string(&busy).unwrap();
        for field in [
            r#""maintenance":{"enabled":false,"allowed_groups":["admins"]}"#,
            r#""sessions":{"active":0,"disconnected":1}"#,
            r#""labels":{"poolform.stack":"s"}"#,
        ] {
            assert!(json.contains(field), "{field} in {json}");
        }
        assert_eq!(serde_json::from_str::<Destination>(&json).unwrap(), busy);
    }
}
