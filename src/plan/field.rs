//! The fields a plan's diffs can name, and their dotted string form. The
//! string form is what saved plans, `--format json` and the renderers show,
//! so it must never change for an existing field.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
}
