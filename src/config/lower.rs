//! Conversion of a validated config into the desired state: durations into
//! broker units, secret references resolved into `SecretString`s, the app
//! instances' values moved rather than copied. A secret that cannot be
//! resolved becomes a diagnostic on the place that references it.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::SecretString;

use super::spec::{
    AppConfigSpec, AppInstanceSpec, CredentialsSpec, DestinationSpec, DrainSpec, DurationValue,
    LabelMap, LoadBalancingSpec, PoolSpec, SecretValue, Sp,
};
use super::{Config, Declared, Diagnostics, Located, Moved, Validated};
use crate::contract::wire::{Labels, LoadBalancing, Maintenance};
use crate::desired::{
    Assignee, Desired, DesiredAppConfig, DesiredAppInstance, DesiredDestination, DesiredPool,
    Drain, DrainNotice, DrainSessions, Safety,
};
use crate::diagnostic::Diagnostic;
use crate::secret::Secret;
use crate::secret::SecretSource;

/// Reads the value behind a secret reference.
type Resolve<'a> = &'a dyn Fn(&SecretSource) -> Result<SecretString, String>;

/// A lowered config: the desired state, and the config kept to locate
/// what a plan finds.
#[derive(Debug, Clone)]
pub struct Lowered {
    pub config: Located,
    pub desired: Desired,
}

/// From this many app instances on, they are moved on a second core: below
/// it the thread costs more than it saves.
const PARALLEL_FROM: usize = 10_000;

/// The desired state a validated config asks for, and the config with the
/// values it moved out; or every secret that cannot be read, located.
pub fn lower(config: Validated<Config>, resolve: Resolve) -> Result<Lowered, Diagnostics> {
    let mut config = config.into_inner();
    let instances = std::mem::take(&mut config.app_instances);
    let (rest, (app_instances, declared)) = if instances.len() < PARALLEL_FROM {
        (lower_rest(&config, resolve), move_app_instances(instances))
    } else {
        // The app instances are most of a large config and need nothing
        // else of it: they move on the second core, idle by now, while the
        // rest is lowered.
        std::thread::scope(|scope| {
            let moving = scope.spawn(move || move_app_instances(instances));
            let rest = lower_rest(&config, resolve);
            let moved = moving
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (rest, moved)
        })
    };
    let mut desired = match rest {
        Ok(desired) => desired,
        Err(items) => {
            return Err(Diagnostics {
                sources: config.sources,
                items,
            });
        }
    };
    desired.app_instances = app_instances;
    Ok(Lowered {
        config: located(config, declared),
        desired,
    })
}

/// Everything but the app instances; every secret that cannot be read,
/// located, when one cannot.
fn lower_rest(config: &Config, resolve: Resolve) -> Result<Desired, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let pools = config
        .pools
        .iter()
        .map(|(name, declared)| {
            let pool = pool(config, name, declared, resolve, &mut diagnostics);
            (name.clone(), pool)
        })
        .collect();
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    Ok(Desired {
        stack: config
            .stack
            .as_ref()
            .map(|s| s.value.value.clone())
            .unwrap_or_default(),
        safety: safety(config),
        pools,
        app_configs: lower_each(&config.app_configs, app_config),
        app_instances: BTreeMap::new(),
        destinations: lower_each(&config.destinations, destination),
    })
}

/// The app instances, their values moved rather than copied out of the
/// config (they are most of a large config), and what stays of each: where
/// it was declared.
fn move_app_instances(
    instances: BTreeMap<String, Declared<AppInstanceSpec>>,
) -> (
    BTreeMap<String, DesiredAppInstance>,
    BTreeMap<String, Declared<Moved>>,
) {
    let mut lowered = Vec::with_capacity(instances.len());
    let declared = instances
        .into_iter()
        .map(|(name, declared)| {
            let Sp { value, at } = declared.name;
            if let Some(instance) = app_instance(*declared.spec) {
                // The located name's copy becomes the desired state's key;
                // the map key goes on naming the declaration.
                lowered.push((value, instance));
            }
            let kept = Declared {
                file: declared.file,
                name: Sp {
                    value: String::new(),
                    at,
                },
                spec: Box::new(Moved),
            };
            (name, kept)
        })
        .collect();
    (lowered.into_iter().collect(), declared)
}

/// The config as kept after lowering: `config` (its app instances taken)
/// with the app instances' declarations.
fn located(config: Config, app_instances: BTreeMap<String, Declared<Moved>>) -> Located {
    let Config {
        sources,
        conflicts,
        unusable_secret_files,
        warnings,
        stack,
        broker_url,
        safety,
        pools,
        app_configs,
        app_instances: _,
        destinations,
    } = config;
    Config {
        sources,
        conflicts,
        unusable_secret_files,
        warnings,
        stack,
        broker_url,
        safety,
        pools,
        app_configs,
        app_instances,
        destinations,
    }
}

/// Each declared resource of one kind, lowered by `one`.
fn lower_each<S, T>(
    declared: &BTreeMap<String, Declared<S>>,
    one: impl Fn(&S) -> T,
) -> BTreeMap<String, T> {
    declared
        .iter()
        .map(|(name, declared)| (name.clone(), one(&declared.spec)))
        .collect()
}

/// A pool; a password that cannot be read becomes a diagnostic on its
/// reference, and the pool goes on without it so that every unreadable
/// secret is reported at once.
fn pool(
    config: &Config,
    name: &str,
    declared: &Declared<PoolSpec>,
    resolve: Resolve,
    diagnostics: &mut Vec<Diagnostic>,
) -> DesiredPool {
    let spec = &declared.spec;
    let credentials = spec.default_credentials.as_ref();
    let password = match password(credentials, resolve) {
        Ok(password) => password,
        Err((reason, at)) => {
            diagnostics.push(
                Diagnostic::error(
                    "config::secret_unavailable",
                    format!("the password of pool '{name}' cannot be read: {reason}"),
                )
                .with_label(config.at(declared.file, at), "referenced here"),
            );
            None
        }
    };
    DesiredPool {
        load_balancing: spec
            .load_balancing
            .as_ref()
            .map(load_balancing)
            .unwrap_or_default(),
        username: credentials
            .and_then(|c| c.username.as_ref())
            .map(|u| u.value.clone()),
        password,
        members: spec
            .members
            .iter()
            .map(|m| m.value.clone())
            .collect::<BTreeSet<_>>(),
        drain: spec.drain.as_ref().map(drain).unwrap_or_default(),
        min_members: spec.min_members.as_ref().map(|m| m.value),
        labels: labels(&spec.labels),
    }
}

/// The resolved password, if one is referenced; the reason and the place
/// of the reference when it cannot be read.
fn password<'a>(
    credentials: Option<&'a CredentialsSpec>,
    resolve: Resolve,
) -> Result<Option<Secret>, (String, &'a super::spec::At)> {
    let Some(secret) = credentials.and_then(|c| c.password.as_ref()) else {
        return Ok(None);
    };
    let source = match &secret.value {
        SecretValue::Env(var) => SecretSource::Env(var.clone()),
        SecretValue::File(path) => SecretSource::File(path.clone()),
        // Validation rejects inline secrets; nothing to resolve.
        SecretValue::Inline => return Ok(None),
    };
    match resolve(&source) {
        Ok(value) => Ok(Some(Secret { source, value })),
        Err(reason) => Err((reason, &secret.at)),
    }
}

fn load_balancing(lb: &LoadBalancingSpec) -> LoadBalancing {
    LoadBalancing {
        enabled: lb.enabled.value,
        sticky_sessions_minutes: seconds(lb.sticky_sessions.as_ref().map(|d| &d.value), 60)
            .map_or(0, |s| u32::try_from(s / 60).unwrap_or(u32::MAX)),
        grace_period_seconds: seconds(lb.grace_period.as_ref().map(|d| &d.value), 1)
            .map_or(0, |s| u32::try_from(s).unwrap_or(u32::MAX)),
    }
}

fn drain(drain: &DrainSpec) -> Drain {
    Drain {
        sessions: drain
            .sessions
            .as_ref()
            .map_or(DrainSessions::default(), |s| s.value),
        timeout_seconds: seconds(drain.timeout.as_ref().map(|d| &d.value), 1),
        // Validation guarantees a notice comes with its lead time.
        notice: drain
            .notice
            .as_ref()
            .zip(drain.lead_time.as_ref())
            .map(|(notice, lead_time)| DrainNotice {
                de: notice.value.de.value.clone(),
                en: notice.value.en.value.clone(),
                lead_time_seconds: lead_time.value.seconds(1).unwrap_or_default(),
            }),
    }
}

fn app_config(spec: &AppConfigSpec) -> DesiredAppConfig {
    DesiredAppConfig {
        pool: spec.pool.value.clone(),
        app_type: spec.app_type.value,
        protocol: spec.protocol.value,
        admin_session: spec.admin_session,
        keep_credentials_on_destination_change: spec.keep_credentials_on_destination_change,
        allow_destination_change: spec.allow_destination_change,
        labels: labels(&spec.labels),
    }
}

fn app_instance(spec: AppInstanceSpec) -> Option<DesiredAppInstance> {
    // Validation guarantees exactly one of user / group.
    let assignee = match (spec.user, spec.group) {
        (Some(user), None) => Assignee::User(user.value),
        (None, Some(group)) => Assignee::Group(group.value),
        _ => return None,
    };
    Some(DesiredAppInstance {
        labels: labels(&spec.labels),
        app_config: spec.app_config.value,
        assignee,
        destination: spec.destination.map(|d| d.value),
    })
}

fn destination(spec: &DestinationSpec) -> DesiredDestination {
    let maintenance = spec
        .maintenance
        .as_ref()
        .map(|m| Maintenance {
            enabled: m.enabled.value,
            notice_de: m.notice_de.as_ref().map(|n| n.value.clone()),
            notice_en: m.notice_en.as_ref().map(|n| n.value.clone()),
            allowed_groups: m.allowed_groups.iter().map(|g| g.value.clone()).collect(),
            owner: None,
            out_of_rotation: Vec::new(),
        })
        .unwrap_or_default();
    DesiredDestination { maintenance }
}

fn safety(config: &Config) -> Safety {
    config
        .safety
        .as_ref()
        .and_then(|s| s.value.value.max_delete_percent.as_ref())
        .map_or_else(Safety::default, |percent| Safety {
            max_delete_percent: percent.value,
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
