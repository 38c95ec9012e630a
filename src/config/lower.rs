//! Conversion of a validated config into the desired state: durations into
//! broker units, secret references resolved into `SecretString`s. A secret that
//! cannot be resolved becomes a diagnostic on the place that references it.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::SecretString;

use super::Config;
use super::Validated;
use super::spec::{
    AppTypeSpec, DrainSessionsSpec, DurationValue, LabelMap, ProtocolSpec, SecretValue,
};
use crate::contract::wire::{AppType, Labels, LoadBalancing, Maintenance, Protocol};
use crate::desired::{
    Assignee, Desired, DesiredAppConfig, DesiredAppInstance, DesiredDestination, DesiredPool,
    Drain, DrainSessions, Safety,
};
use crate::diagnostic::Diagnostic;
use crate::secret::Secret;
use crate::secret::SecretSource;

/// The desired state a validated config asks for.
pub fn lower(
    config: &Validated<Config>,
    resolve: &dyn Fn(&SecretSource) -> Result<SecretString, String>,
) -> Result<Desired, Vec<Diagnostic>> {
    let config: &Config = config;
    let mut diagnostics = Vec::new();
    let mut pools = BTreeMap::new();
    for (name, declared) in &config.pools {
        let spec = &declared.spec;
        let load_balancing = spec
            .load_balancing
            .as_ref()
            .map(|lb| LoadBalancing {
                enabled: lb.enabled.value,
                sticky_sessions_minutes: seconds(lb.sticky_sessions.as_ref().map(|d| &d.value), 60)
                    .map_or(0, |s| u32::try_from(s / 60).unwrap_or(u32::MAX)),
                grace_period_seconds: seconds(lb.grace_period.as_ref().map(|d| &d.value), 1)
                    .map_or(0, |s| u32::try_from(s).unwrap_or(u32::MAX)),
            })
            .unwrap_or_default();
        let credentials = spec.default_credentials.as_ref();
        let password = match credentials.and_then(|c| c.password.as_ref()) {
            None => None,
            Some(secret) => {
                let reference = match &secret.value {
                    SecretValue::Env(var) => Some(SecretSource::Env(var.clone())),
                    SecretValue::File(path) => Some(SecretSource::File(path.clone())),
                    // Validation rejects inline secrets; nothing to resolve.
                    SecretValue::Inline => None,
                };
                match reference.map(|r| (resolve(&r), r)) {
                    Some((Ok(value), source)) => Some(Secret { source, value }),
                    Some((Err(reason), _)) => {
                        diagnostics.push(
                            Diagnostic::error(
                                "config::secret_unavailable",
                                format!("the password of pool '{name}' cannot be read: {reason}"),
                            )
                            .with_label(config.at(declared.file, &secret.at), "referenced here"),
                        );
                        None
                    }
                    None => None,
                }
            }
        };
        let drain = spec
            .drain
            .as_ref()
            .map(|drain| Drain {
                sessions: match drain.sessions.as_ref().map(|s| s.value) {
                    None | Some(DrainSessionsSpec::Refuse) => DrainSessions::Refuse,
                    Some(DrainSessionsSpec::Disconnect) => DrainSessions::Disconnect,
                    Some(DrainSessionsSpec::Wait) => DrainSessions::Wait,
                },
                timeout_seconds: seconds(drain.timeout.as_ref().map(|d| &d.value), 1),
            })
            .unwrap_or_default();
        pools.insert(
            name.clone(),
            DesiredPool {
                load_balancing,
                username: credentials
                    .and_then(|c| c.username.as_ref())
                    .map(|u| u.value.clone()),
                password,
                members: spec
                    .members
                    .iter()
                    .map(|m| m.value.clone())
                    .collect::<BTreeSet<_>>(),
                drain,
                min_members: spec.min_members.as_ref().map(|m| m.value),
                labels: labels(&spec.labels),
            },
        );
    }
    let app_configs = config
        .app_configs
        .iter()
        .map(|(name, declared)| {
            let spec = &declared.spec;
            let desired = DesiredAppConfig {
                pool: spec.pool.value.clone(),
                app_type: match spec.app_type.value {
                    AppTypeSpec::Desktop => AppType::Desktop,
                    AppTypeSpec::RemoteApp => AppType::RemoteApp,
                    AppTypeSpec::Web => AppType::Web,
                    AppTypeSpec::Shell => AppType::Shell,
                    AppTypeSpec::PublishedApp => AppType::PublishedApp,
                },
                protocol: match spec.protocol.value {
                    ProtocolSpec::Rdp => Protocol::Rdp,
                    ProtocolSpec::Vnc => Protocol::Vnc,
                },
                admin_session: spec.admin_session,
                keep_credentials_on_destination_change: spec.keep_credentials_on_destination_change,
                allow_destination_change: spec.allow_destination_change,
                labels: labels(&spec.labels),
            };
            (name.clone(), desired)
        })
        .collect();
    let app_instances = config
        .app_instances
        .iter()
        .filter_map(|(name, declared)| {
            let spec = &declared.spec;
            // Validation guarantees exactly one of user / group.
            let assignee = match (&spec.user, &spec.group) {
                (Some(user), None) => Assignee::User(user.value.clone()),
                (None, Some(group)) => Assignee::Group(group.value.clone()),
                _ => return None,
            };
            let desired = DesiredAppInstance {
                app_config: spec.app_config.value.clone(),
                assignee,
                destination: spec.destination.as_ref().map(|d| d.value.clone()),
                labels: labels(&spec.labels),
            };
            Some((name.clone(), desired))
        })
        .collect();
    let destinations = config
        .destinations
        .iter()
        .map(|(name, declared)| {
            let maintenance = declared
                .spec
                .maintenance
                .as_ref()
                .map(|m| Maintenance {
                    enabled: m.enabled.value,
                    notice_de: m.notice_de.as_ref().map(|n| n.value.clone()),
                    notice_en: m.notice_en.as_ref().map(|n| n.value.clone()),
                    allowed_groups: m.allowed_groups.iter().map(|g| g.value.clone()).collect(),
                })
                .unwrap_or_default();
            (name.clone(), DesiredDestination { maintenance })
        })
        .collect();
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let safety = config
        .safety
        .as_ref()
        .and_then(|s| s.value.value.max_delete_percent.as_ref())
        .map_or_else(Safety::default, |percent| Safety {
            max_delete_percent: percent.value,
        });
    Ok(Desired {
        stack: config
            .stack
            .as_ref()
            .map(|s| s.value.value.clone())
            .unwrap_or_default(),
        safety,
        pools,
        app_configs,
        app_instances,
        destinations,
    })
}

fn seconds(value: Option<&DurationValue>, unit_seconds: u64) -> Option<u64> {
    value.and_then(|v| v.seconds(unit_seconds))
}

fn labels(map: &LabelMap) -> Labels {
    map.0
        .iter()
        .map(|(k, v)| (k.value.clone(), v.value.clone()))
        .collect()
}
