//! The shape of one config file as written: serde types that keep the source
//! location of every value (`Sp`), and the JSON Schema derived from them. Doc
//! comments here are the field descriptions users see in their editor.
//!
//! Every type is externally tagged and free of `flatten`/`untagged`: serde
//! buffers those through a generic value and serde-saphyr then loses spans.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::contract::names;
use crate::contract::wire::{AppType, Protocol};
use crate::desired::DrainSessions;

/// A value with the place in its file where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub at: At,
}

/// Where a value is written: its 1-based line and character column, and its
/// bytes in the file (the quotes included, for a quoted scalar; the first
/// key of a block mapping, empty; the opening bracket of a flow
/// collection). An offset the parser could not give is `u32::MAX`, which no
/// text reaches: locating then falls back to line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct At {
    pub line: u32,
    pub column: u32,
    pub offset: u32,
    pub len: u32,
}

impl From<&Location> for At {
    fn from(location: &Location) -> At {
        let span = location.span();
        let clamp = |n: Option<u64>| n.map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX));
        At {
            line: u32::try_from(location.line()).unwrap_or(u32::MAX),
            column: u32::try_from(location.column()).unwrap_or(u32::MAX),
            offset: clamp(span.byte_offset()),
            len: clamp(span.byte_len()),
        }
    }
}

/// The name under which `Sp` asks a deserializer for a value and its place.
/// serde-saphyr knows it not and hands over itself, from which `Spanned`
/// reads the place; the fast front end (`config::fast`) knows it and hands
/// over the place, then the value, as a sequence.
pub(super) const SPANNED: &str = "poolform::Sp";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(SPANNED, SpVisitor(PhantomData))
    }
}

struct SpVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
    type Value = Sp<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value with its place")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Sp<T>, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        Ok(Sp {
            value: spanned.value,
            at: At::from(&spanned.referenced),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sp<T>, A::Error> {
        let missing = || de::Error::custom("a place and a value");
        let at: At = seq.next_element()?.ok_or_else(missing)?;
        let value: T = seq.next_element()?.ok_or_else(missing)?;
        Ok(Sp { value, at })
    }
}

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let [line, column, offset, len] = <[u32; 4]>::deserialize(deserializer)?;
        Ok(At {
            line,
            column,
            offset,
            len,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A mapping from resource name to resource, in file order, keeping the
/// location of every name. (A `BTreeMap` would lose the key spans.) Each
/// resource is boxed as it is read: the merge sorts and gathers them by
/// moving them, and at 1M app instances of 184 bytes each, moving them
/// whole cost hundreds of MB in the buffers between those steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources<V>(pub Vec<(Sp<String>, Box<V>)>);

impl<V> Default for Resources<V> {
    fn default() -> Self {
        Resources(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Resources<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_option(EntriesVisitor::<V, Box<V>>(PhantomData))
            .map(Resources)
    }
}

impl<V: JsonSchema> JsonSchema for Resources<V> {
    fn schema_name() -> Cow<'static, str> {
        format!("Resources_{}", V::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let value = generator.subschema_for::<V>();
        json_schema!({
            "type": "object",
            "propertyNames": {
                "pattern": names::PATTERN,
                "description": "A name: 1-63 characters of A-Z, a-z, 0-9, '.', '_' and '-'."
            },
            "additionalProperties": value
        })
    }
}

/// User labels: string keys and values, in file order, with locations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelMap(pub Vec<(Sp<String>, Sp<String>)>);

impl<'de> Deserialize<'de> for LabelMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_option(EntriesVisitor(PhantomData))
            .map(LabelMap)
    }
}

impl JsonSchema for LabelMap {
    fn schema_name() -> Cow<'static, str> {
        "Labels".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "Free-form labels (string to string). Keys starting with `poolform.` are reserved for poolform.",
            "propertyNames": { "not": { "pattern": "^poolform\\." } },
            "additionalProperties": { "type": "string" }
        })
    }
}

/// Reads a mapping's entries in order, each value read as a `V` and kept
/// as an `S` (the `V` itself, or a box of it).
struct EntriesVisitor<V, S = V>(PhantomData<(V, S)>);

impl<'de, V: Deserialize<'de>, S: From<V>> Visitor<'de> for EntriesVisitor<V, S> {
    type Value = Vec<(Sp<String>, S)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping from name to value")
    }

    // `pools:` with nothing under it (say, every pool commented out) is an
    // empty section, not a type error.
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<Sp<String>>()? {
            let value = map.next_value::<V>()?;
            entries.push((key, S::from(value)));
        }
        Ok(entries)
    }
}

/// One config file. Every key is optional here: a directory's files are
/// merged, and only the merged whole must be complete.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "poolform config file")]
pub struct ConfigFile {
    /// Ownership: poolform labels everything it creates with this stack name
    /// and only ever changes or deletes live resources carrying it. Required
    /// (in exactly one file) as soon as any resource is declared.
    pub stack: Option<Sp<String>>,
    /// Where the broker API is, unless `--broker` or `POOLFORM_BROKER` says otherwise.
    pub broker: Option<Sp<BrokerSection>>,
    /// Guards that stop a plan from doing too much at once.
    pub safety: Option<Sp<SafetySection>>,
    /// Destination pools by name: their members and load-balancing settings.
    #[serde(default)]
    pub pools: Resources<PoolSpec>,
    /// App configurations by name: how users connect to a pool.
    #[serde(default)]
    pub app_configs: Resources<AppConfigSpec>,
    /// App instances by name: an app configuration given to one user or one group.
    #[serde(default)]
    pub app_instances: Resources<AppInstanceSpec>,
    /// Destinations (Windows servers already registered in the broker) whose
    /// maintenance mode poolform manages. poolform never creates destinations.
    #[serde(default)]
    pub destinations: Resources<DestinationSpec>,
}

/// Connection to the broker API.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// `http(s)://HOST[:PORT]` for a live broker API, or `file:PATH` for the
    /// embedded broker.
    pub url: Option<Sp<String>>,
}

/// Plan-wide safety limits.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SafetySection {
    /// Refuse a plan that deletes more than this percentage (0-100) of the
    /// managed resources; only checked when at least 10 are managed. Default 30.
    #[schemars(range(max = 100))]
    pub max_delete_percent: Option<Sp<u8>>,
}

/// A destination pool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Spread users over the members. Without this block the pool does not
    /// load-balance.
    pub load_balancing: Option<LoadBalancingSpec>,
    /// Credentials used by users who have no individual login data.
    pub default_credentials: Option<CredentialsSpec>,
    /// Names of the destinations in the pool. A destination may be a member of
    /// at most one load-balanced pool.
    #[serde(default)]
    #[schemars(inner(regex(pattern = names::PATTERN)))]
    pub members: Vec<Sp<String>>,
    /// What happens to sessions on a destination that leaves the pool.
    pub drain: Option<DrainSpec>,
    /// Capacity guard: a plan never leaves fewer members than this.
    pub min_members: Option<Sp<u32>>,
    /// User labels.
    #[serde(default)]
    pub labels: LabelMap,
}

/// Load balancing and sticky sessions of a pool.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancingSpec {
    /// Whether the pool load-balances. Every member must be prepared for
    /// process execution.
    pub enabled: Sp<bool>,
    /// Sticky-session period: a user who returns within it lands on the same
    /// destination. Whole minutes: `10m`, `1h30m` or a plain number of minutes;
    /// 0 switches sticky sessions off, otherwise at least 1 minute.
    pub sticky_sessions: Option<Sp<DurationValue>>,
    /// Extra time after the sticky period: `30s`, `1m` or a plain number of seconds.
    pub grace_period: Option<Sp<DurationValue>>,
}

/// Default credentials of a pool: username only, password only, or both.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsSpec {
    /// Login name, e.g. `CORP\svc-maint` (quote it in YAML).
    pub username: Option<Sp<String>>,
    /// The password, as a reference: `{env: VAR}` or `{file: PATH}`; never the
    /// password itself.
    pub password: Option<Sp<SecretValue>>,
}

/// Drain policy of a pool.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainSpec {
    /// `refuse` (default): fail the removal while the destination has active
    /// sessions; `disconnect`: disconnect them first; `wait`: wait for them to end.
    pub sessions: Option<Sp<DrainSessions>>,
    /// Longest time to disconnect or wait: `15m`, `90s` or a plain number of
    /// seconds. Only with `sessions: wait` or `sessions: disconnect`; with a
    /// `notice`, counted from the end of the lead time.
    pub timeout: Option<Sp<DurationValue>>,
    /// A notice shown to the users on a destination before they are
    /// disconnected, in German and English. Only with `sessions:
    /// disconnect`, and needs `lead_time`.
    pub notice: Option<Sp<NoticeSpec>>,
    /// How long users have to log off after the notice before the rest are
    /// disconnected: `10m`, `90s` or a plain number of seconds. The drain goes
    /// on as soon as nobody is left. Only with `notice`.
    pub lead_time: Option<Sp<DurationValue>>,
}

/// The notice of a drain: plain text, at most 1000 characters each.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeSpec {
    /// The notice in German.
    #[schemars(length(min = 1, max = 1000))]
    pub de: Sp<String>,
    /// The notice in English.
    #[schemars(length(min = 1, max = 1000))]
    pub en: Sp<String>,
}

/// An app configuration.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppConfigSpec {
    /// Name of the pool whose destinations this app connects to.
    pub pool: Sp<String>,
    /// What the app shows.
    #[serde(rename = "type")]
    pub app_type: Sp<AppType>,
    /// Remote protocol.
    pub protocol: Sp<Protocol>,
    /// Start the destination as an admin session (at most 2 per server). Default false.
    #[serde(default)]
    pub admin_session: bool,
    /// Keep the login data when the destination of an app instance changes. Default false.
    #[serde(default)]
    pub keep_credentials_on_destination_change: bool,
    /// Let users choose another destination of the pool. Default false.
    #[serde(default)]
    pub allow_destination_change: bool,
    /// User labels.
    #[serde(default)]
    pub labels: LabelMap,
}

/// An app instance: exactly one of `user` or `group`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppInstanceSpec {
    /// Name of the app configuration this instance starts.
    pub app_config: Sp<String>,
    /// The user who gets it (single licence). Exactly one of `user` or `group`.
    pub user: Option<Sp<String>>,
    /// The group that gets it (group licence). Exactly one of `user` or `group`.
    pub group: Option<Sp<String>>,
    /// A fixed destination; must be a member of the app configuration's pool.
    pub destination: Option<Sp<String>>,
    /// User labels.
    #[serde(default)]
    pub labels: LabelMap,
}

/// A destination whose settings poolform manages.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    /// Maintenance mode. Omitted means maintenance mode off.
    pub maintenance: Option<MaintenanceSpec>,
}

/// Maintenance mode of a destination: app instances stay visible but cannot start.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    /// Whether maintenance mode is on.
    pub enabled: Sp<bool>,
    /// Notice shown to users, in German.
    pub notice_de: Option<Sp<String>>,
    /// Notice shown to users, in English.
    pub notice_en: Option<Sp<String>>,
    /// Groups that keep access during maintenance.
    #[serde(default)]
    pub allowed_groups: Vec<Sp<String>>,
}

/// A secret as written: a reference to where it lives, or (an error that
/// validation reports) the secret itself. An inline value is dropped on
/// reading; only the fact that it was there is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// `{env: VAR}`: read from an environment variable when planning.
    Env(String),
    /// `{file: PATH}`: read from a file when planning.
    File(PathBuf),
    /// A literal secret in the YAML.
    Inline,
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = SecretValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a secret reference `{env: VAR}` or `{file: PATH}`")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretValue, E> {
        Ok(SecretValue::Inline)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretValue, E> {
        Ok(SecretValue::Inline)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretValue, E> {
        Ok(SecretValue::Inline)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretValue, E> {
        Ok(SecretValue::Inline)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretValue, E> {
        Ok(SecretValue::Inline)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretValue, A::Error> {
        let Some(kind) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "empty secret reference: write `{env: VAR}` or `{file: PATH}`",
            ));
        };
        let secret = match kind.as_str() {
            "env" => SecretValue::Env(map.next_value()?),
            "file" => SecretValue::File(map.next_value()?),
            other => {
                return Err(de::Error::custom(format!(
                    "unknown secret source `{other}`: write `{{env: VAR}}` or `{{file: PATH}}`"
                )));
            }
        };
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "a secret reference has exactly one key, `env` or `file`",
            ));
        }
        Ok(secret)
    }
}

impl JsonSchema for SecretValue {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Where a secret lives; secrets are never written in the config.",
            "oneOf": [
                {
                    "type": "object",
                    "properties": { "env": { "type": "string", "description": "Name of an environment variable holding the secret." } },
                    "required": ["env"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "file": { "type": "string", "description": "Path of a file holding the secret (relative to the working directory)." } },
                    "required": ["file"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// A duration as written: a plain number in the field's unit, or text such as
/// `90s`, `10m`, `1h30m`. Validation turns it into seconds and reports text
/// that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationValue {
    Number(u64),
    Text(String),
}

impl DurationValue {
    /// The duration in seconds, where a plain number counts `unit_seconds`
    /// each; `None` when the text is not a duration or overflows.
    pub fn seconds(&self, unit_seconds: u64) -> Option<u64> {
        match self {
            DurationValue::Number(n) => n.checked_mul(unit_seconds),
            DurationValue::Text(text) => parse_duration(text, unit_seconds),
        }
    }
}

/// Parses `1h30m`, `90s`, `10m`, or digits alone (in `unit_seconds`). Units
/// appear at most once and from largest to smallest.
pub fn parse_duration(text: &str, unit_seconds: u64) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().ok()?.checked_mul(unit_seconds);
    }
    let mut rest = text;
    let mut total: u64 = 0;
    let mut allowed: &[(char, u64)] = &[('h', 3600), ('m', 60), ('s', 1)];
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let position = allowed.iter().position(|(c, _)| *c == unit)?;
        total = total.checked_add(number.checked_mul(allowed[position].1)?)?;
        allowed = &allowed[position + 1..];
        rest = &rest[digits + unit.len_utf8()..];
    }
    Some(total)
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = DurationValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as 90s, 10m, 1h30m or a plain number")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
        Ok(DurationValue::Number(v))
    }

    // Negative and fractional numbers are kept as text so that validation
    // reports them with the other invalid durations, at their location.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
        Ok(match u64::try_from(v) {
            Ok(v) => DurationValue::Number(v),
            Err(_) => DurationValue::Text(v.to_string()),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
        Ok(DurationValue::Text(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
        Ok(DurationValue::Text(v.to_owned()))
    }
}

impl JsonSchema for DurationValue {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: `90s`, `10m`, `1h30m`, or a plain number in the field's unit.",
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^([0-9]+|([0-9]+h)?([0-9]+m)?([0-9]+s)?)$" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_field_unit() {
        let cases = [
            ("90s", 1, Some(90)),
            ("10m", 1, Some(600)),
            ("1h30m", 1, Some(5400)),
            ("1m30s", 60, Some(90)),
            ("15", 60, Some(900)),
            ("", 1, None),
            ("10x", 1, None),
            ("m", 1, None),
            ("30s1h", 1, None),
            ("1h1h", 1, None),
            ("99999999999999999999s", 1, None),
        ];
        for (text, unit, expected) in cases {
            assert_eq!(parse_duration(text, unit), expected, "{text:?}");
        }
    }
}
