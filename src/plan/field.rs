//! The fields a plan's diffs can name, and their dotted string form, and
//! the values a diff shows for them. The string form is what saved plans,
//! `--format json` and the renderers show, so it must never change for an
//! existing field.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One field of a resource that a diff reports as changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    LoadBalancingEnabled,
    StickySessionsMinutes,
    GracePeriodSeconds,
    Username,
    /// Sensitive: only that it changes is ever recorded.
    Password,
    Members,
    /// One label, by key.
    Label(String),
    /// The pool an app config uses.
    Pool,
    AppType,
    Protocol,
    AdminSession,
    KeepCredentialsOnDestinationChange,
    AllowDestinationChange,
    /// The app config an app instance belongs to.
    AppConfig,
    User,
    Group,
    Destination,
    MaintenanceEnabled,
    NoticeDe,
    NoticeEn,
    AllowedGroups,
    /// The stack that switched maintenance mode on.
    MaintenanceOwner,
    /// The load-balanced pools maintenance took the destination out of.
    OutOfRotation,
    /// Drain mode, by its holder.
    Draining,
    LbServiceInstalled,
}

const LABEL_PREFIX: &str = "labels.";

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Field::Label(key) => return write!(f, "{LABEL_PREFIX}{key}"),
            Field::LoadBalancingEnabled => "load_balancing.enabled",
            Field::StickySessionsMinutes => "load_balancing.sticky_sessions_minutes",
            Field::GracePeriodSeconds => "load_balancing.grace_period_seconds",
            Field::Username => "default_credentials.username",
            Field::Password => "default_credentials.password",
            Field::Members => "members",
            Field::Pool => "pool",
            Field::AppType => "type",
            Field::Protocol => "protocol",
            Field::AdminSession => "admin_session",
            Field::KeepCredentialsOnDestinationChange => "keep_credentials_on_destination_change",
            Field::AllowDestinationChange => "allow_destination_change",
            Field::AppConfig => "app_config",
            Field::User => "user",
            Field::Group => "group",
            Field::Destination => "destination",
            Field::MaintenanceEnabled => "maintenance.enabled",
            Field::NoticeDe => "maintenance.notice_de",
            Field::NoticeEn => "maintenance.notice_en",
            Field::AllowedGroups => "maintenance.allowed_groups",
            Field::MaintenanceOwner => "maintenance.owner",
            Field::OutOfRotation => "maintenance.out_of_rotation",
            Field::Draining => "draining",
            Field::LbServiceInstalled => "lb_service_installed",
        };
        f.write_str(name)
    }
}

/// A string that names no plan field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan field `{0}`")]
pub struct UnknownField(String);

impl FromStr for Field {
    type Err = UnknownField;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(key) = text.strip_prefix(LABEL_PREFIX) {
            return Ok(Field::Label(key.to_owned()));
        }
        Ok(match text {
            "load_balancing.enabled" => Field::LoadBalancingEnabled,
            "load_balancing.sticky_sessions_minutes" => Field::StickySessionsMinutes,
            "load_balancing.grace_period_seconds" => Field::GracePeriodSeconds,
            "default_credentials.username" => Field::Username,
            "default_credentials.password" => Field::Password,
            "members" => Field::Members,
            "pool" => Field::Pool,
            "type" => Field::AppType,
            "protocol" => Field::Protocol,
            "admin_session" => Field::AdminSession,
            "keep_credentials_on_destination_change" => Field::KeepCredentialsOnDestinationChange,
            "allow_destination_change" => Field::AllowDestinationChange,
            "app_config" => Field::AppConfig,
            "user" => Field::User,
            "group" => Field::Group,
            "destination" => Field::Destination,
            "maintenance.enabled" => Field::MaintenanceEnabled,
            "maintenance.notice_de" => Field::NoticeDe,
            "maintenance.notice_en" => Field::NoticeEn,
            "maintenance.allowed_groups" => Field::AllowedGroups,
            "maintenance.owner" => Field::MaintenanceOwner,
            "maintenance.out_of_rotation" => Field::OutOfRotation,
            "draining" => Field::Draining,
            "lb_service_installed" => Field::LbServiceInstalled,
            _ => return Err(UnknownField(text.to_owned())),
        })
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A value a field diff shows: any JSON value, or a list of names kept as
/// one string. A pool's members are the one value that grows with the
/// stack: as a JSON array each name is a 32-byte value plus an allocation
/// of its own, and a plan that touches 100k pools of ten members holds 2M
/// of them (about 100 MB at 1M members) until it is rendered. Both kinds
/// serialise the same way (a list of names is a JSON array of strings), so
/// a saved plan, which always reads back as JSON, is equal to the plan it
/// was saved from and has the same checksum.
#[derive(Debug, Clone)]
pub enum FieldValue {
    Json(Value),
    Names(Names),
}

/// Names, in their order, in one string (no separator is needed: `ends`
/// says where each name ends).
#[derive(Debug, Clone, Default)]
pub struct Names {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Names {
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        let text = &*self.text;
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let name = &text[start..end as usize];
            start = end as usize;
            name
        })
    }
}

impl<S: AsRef<str>> FromIterator<S> for Names {
    fn from_iter<I: IntoIterator<Item = S>>(names: I) -> Names {
        let mut text = String::new();
        let mut ends = Vec::new();
        for name in names {
            text.push_str(name.as_ref());
            ends.push(u32::try_from(text.len()).expect("a list of names under 4 GB"));
        }
        Names {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

impl FieldValue {
    /// The value as JSON: borrowed for JSON, built for a list of names.
    pub fn to_json(&self) -> Cow<'_, Value> {
        match self {
            FieldValue::Json(value) => Cow::Borrowed(value),
            FieldValue::Names(names) => Cow::Owned(Value::Array(
                names.iter().map(|n| Value::String(n.to_owned())).collect(),
            )),
        }
    }
}

impl From<Value> for FieldValue {
    fn from(value: Value) -> FieldValue {
        FieldValue::Json(value)
    }
}

/// Equal when they serialise the same: a list of names equals the JSON
/// array of the same strings.
impl PartialEq for FieldValue {
    fn eq(&self, other: &FieldValue) -> bool {
        match (self, other) {
            (FieldValue::Json(a), FieldValue::Json(b)) => a == b,
            (FieldValue::Names(a), FieldValue::Names(b)) => a.iter().eq(b.iter()),
            (FieldValue::Names(names), FieldValue::Json(value))
            | (FieldValue::Json(value), FieldValue::Names(names)) => match value {
                Value::Array(items) => {
                    items.len() == names.iter().len()
                        && items
                            .iter()
                            .zip(names.iter())
                            .all(|(item, name)| item.as_str() == Some(name))
                }
                _ => false,
            },
        }
    }
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Json(value) => value.serialize(serializer),
            FieldValue::Names(names) => {
                let mut seq = serializer.serialize_seq(Some(names.iter().len()))?;
                for name in names.iter() {
                    seq.serialize_element(name)?;
                }
                seq.end()
            }
        }
    }
}

/// A saved plan's values read back as JSON.
impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FieldValue, D::Error> {
        Value::deserialize(deserializer).map(FieldValue::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reads_back_from_its_string_form() {
        let all = [
            Field::LoadBalancingEnabled,
            Field::StickySessionsMinutes,
            Field::GracePeriodSeconds,
            Field::Username,
            Field::Password,
            Field::Members,
            Field::Label("team".to_owned()),
            Field::Label("a.b".to_owned()),
            Field::Pool,
            Field::AppType,
            Field::Protocol,
            Field::AdminSession,
            Field::KeepCredentialsOnDestinationChange,
            Field::AllowDestinationChange,
            Field::AppConfig,
            Field::User,
            Field::Group,
            Field::Destination,
            Field::MaintenanceEnabled,
            Field::NoticeDe,
            Field::NoticeEn,
            Field::AllowedGroups,
            Field::MaintenanceOwner,
            Field::Draining,
            Field::LbServiceInstalled,
        ];
        for field in all {
            let text = field.to_string();
            assert_eq!(text.parse::<Field>(), Ok(field.clone()), "{text}");
            assert_eq!(
                serde_json::to_value(&field).unwrap(),
                serde_json::json!(text)
            );
        }
    }

    #[test]
    fn the_string_forms_are_the_dotted_paths() {
        assert_eq!(
            Field::StickySessionsMinutes.to_string(),
            "load_balancing.sticky_sessions_minutes"
        );
        assert_eq!(Field::Label("team".to_owned()).to_string(), "labels.team");
        assert_eq!(Field::AppType.to_string(), "type");
        assert_eq!(
            "maintenance.notice".parse::<Field>(),
            Err(UnknownField("maintenance.notice".to_owned()))
        );
    }

    /// A list of names is written as the JSON array of its strings, reads
    /// back as that JSON, and equals it both ways, so a saved plan equals
    /// the plan it was saved from.
    #[test]
    fn a_list_of_names_is_the_json_array_of_its_strings() {
        use serde_json::json;
        for names in [vec![], vec!["rds-01"], vec!["a", "bb", "ccc-01.x"]] {
            let compact = FieldValue::Names(names.iter().collect());
            let json = FieldValue::Json(json!(names));
            let text = serde_json::to_string(&compact).unwrap();
            assert_eq!(text, serde_json::to_string(&json).unwrap());
            let read: FieldValue = serde_json::from_str(&text).unwrap();
            assert!(matches!(read, FieldValue::Json(_)));
            assert_eq!(read, compact);
            assert_eq!(compact, read);
            assert_eq!(compact.to_json().into_owned(), json!(names));
            assert_eq!(json.to_json().into_owned(), json!(names));
        }
    }

    #[test]
    fn lists_of_names_differ_by_any_name_its_order_or_its_kind() {
        use serde_json::json;
        let names = FieldValue::Names(["a", "b"].iter().collect());
        for other in [
            json!(["b", "a"]),
            json!(["a"]),
            json!(["a", "b", "c"]),
            json!(["a", 1]),
            json!("a"),
            json!(null),
        ] {
            assert_ne!(names, FieldValue::Json(other.clone()), "{other}");
            assert_ne!(FieldValue::Json(other.clone()), names, "{other}");
        }
        assert_ne!(names, FieldValue::Names(["a", "c"].iter().collect()));
        assert_eq!(names, FieldValue::Names(["a", "b"].iter().collect()));
    }
}
