//! Rules for app configs and app instances: names, labels, the pool or app
//! config each refers to, one assignee, and a destination from the pool.

use super::Checker;
use crate::address::Kind;
use crate::config::spec::{AppInstanceSpec, PoolSpec, Sp};
use crate::config::{Config, Declared};
use crate::diagnostic::Label;

impl<'a> Checker<'a> {
    pub(super) fn app_configs(&mut self) {
        for (name, declared) in &self.config.app_configs {
            let file = declared.file;
            let spec = &declared.spec;
            self.name(file, &declared.name, "app config");
            self.labels(file, &spec.labels, Kind::AppConfig, name);
            let pools = &self.config.pools;
            self.reference(file, &spec.pool, Kind::Pool, pools, Kind::AppConfig, name);
        }
    }

    pub(super) fn app_instances(&mut self) {
        let config = self.config;
        // Looked up once per instance (1M of them in a large stack): an
        // instance's app config and the pool it uses by one hash, rather
        // than a walk down the config's B-tree of each (at 1M instances,
        // most of validation's time waited for these walks).
        let pools_of_configs: foldhash::HashMap<&str, Option<Pool>> = (config.app_configs.iter())
            .map(|(name, app_config)| {
                let pool = config.pools.get_key_value(&app_config.spec.pool.value);
                (
                    name.as_str(),
                    pool.map(|(name, declared)| (name.as_str(), declared)),
                )
            })
            .collect();
        let mut in_maintenance = InMaintenance::default();
        let mut members = Members::default();
        for (name, declared) in &config.app_instances {
            let file = declared.file;
            let spec = &declared.spec;
            self.name(file, &declared.name, "app instance");
            self.labels(file, &spec.labels, Kind::AppInstance, name);
            let pool = pools_of_configs.get(spec.app_config.value.as_str());
            if pool.is_none() {
                self.reference(
                    file,
                    &spec.app_config,
                    Kind::AppConfig,
                    &config.app_configs,
                    Kind::AppInstance,
                    name,
                );
            }
            self.assignee(file, name, declared);
            if let Some(destination) = &spec.destination {
                self.name(file, destination, "destination");
                if let Some(&Some(pool)) = pool {
                    let found = members.contains(pool, &destination.value);
                    if found {
                        self.pinned_in_maintenance(
                            file,
                            name,
                            destination,
                            pool,
                            &mut in_maintenance,
                        );
                    } else {
                        self.destination_not_member(file, name, destination, pool);
                    }
                }
            }
        }
    }

    /// Exactly one of `user` and `group`.
    fn assignee(&mut self, file: usize, instance: &str, declared: &Declared<AppInstanceSpec>) {
        match (&declared.spec.user, &declared.spec.group) {
            (Some(_), Some(group)) => {
                self.error(
                    "config::assignee",
                    format!("app instance '{instance}' has both a user and a group"),
                    file,
                    &group.at,
                    "second assignee",
                )
                .help = Some(
                    "an app instance belongs to one user (single licence) or one group (group licence); keep one"
                        .to_owned(),
                );
            }
            (None, None) => {
                self.error(
                    "config::assignee",
                    format!("app instance '{instance}' has neither a user nor a group"),
                    file,
                    &declared.name.at,
                    "no assignee",
                )
                .help = Some("add `user: NAME` or `group: NAME`".to_owned());
            }
            (Some(one), None) | (None, Some(one)) => self.plain_text(file, one),
        }
    }

    /// A pinned destination that is not a member of the pool the
    /// instance's app config uses (when both are declared; a dangling
    /// reference is reported on its own).
    fn destination_not_member(
        &mut self,
        file: usize,
        instance: &str,
        destination: &Sp<String>,
        (pool_name, pool): Pool,
    ) {
        let members: Vec<&str> = pool.spec.members.iter().map(|m| m.value.as_str()).collect();
        let pool_location = self.config.at(pool.file, &pool.name.at);
        let diagnostic = self.error(
            "config::destination_not_member",
            format!(
                "app instance '{instance}' uses destination '{}', which is not a member of pool '{pool_name}'",
                destination.value
            ),
            file,
            &destination.at,
            "not a member",
        );
        diagnostic.secondary.push(Label::new(
            pool_location,
            format!("pool '{pool_name}' declared here"),
        ));
        diagnostic.help = Some(if members.is_empty() {
            format!("pool '{pool_name}' has no members")
        } else {
            format!(
                "members of '{pool_name}': {}",
                super::name_list(members.iter().copied(), members.len())
            )
        });
    }

    /// Maintenance takes a destination out of every load-balanced pool, and
    /// the broker keeps a member in a pool while an instance is pinned to it
    /// through that pool: the removal would be refused.
    fn pinned_in_maintenance(
        &mut self,
        file: usize,
        instance: &str,
        destination: &Sp<String>,
        (pool_name, pool): Pool,
        in_maintenance: &mut InMaintenance<'a>,
    ) {
        let load_balanced = pool
            .spec
            .load_balancing
            .as_ref()
            .is_some_and(|lb| lb.enabled.value);
        if !load_balanced || !in_maintenance.contains(self.config, &destination.value) {
            return;
        }
        let Some(maintenance) = self.config.locate_maintenance(&destination.value) else {
            return;
        };
        let diagnostic = self.error(
            "config::maintenance_pinned",
            format!(
                "app instance '{instance}' is pinned to '{}' through load-balanced pool '{pool_name}', \
                 which maintenance takes '{}' out of",
                destination.value, destination.value
            ),
            file,
            &destination.at,
            "pinned here",
        );
        diagnostic.secondary.push(Label::new(
            maintenance,
            format!("'{}' in maintenance", destination.value),
        ));
        diagnostic.help = Some(
            "pin the instance to another member (or to none) for the maintenance, or reach the server \
             through a pool that does not load-balance"
                .to_owned(),
        );
    }
}

/// A declared pool: its name and its declaration.
type Pool<'a> = (&'a str, &'a Declared<PoolSpec>);

/// The members of each pool pinned instances use, asked once per pinned
/// instance. A pool of more than a few members is asked through a set,
/// built when it is first asked: a scan of its list for each instance is
/// quadratic when a pool has as many instances pinned as members (a pool
/// of 50k members, each with one instance pinned to it, took 4.7 s to
/// validate).
#[derive(Default)]
struct Members<'a>(foldhash::HashMap<&'a str, foldhash::HashSet<&'a str>>);

/// Up to this many members a scan of the list is as fast as a hash.
const SCAN_UP_TO: usize = 16;

impl<'a> Members<'a> {
    fn contains(&mut self, (name, pool): Pool<'a>, destination: &str) -> bool {
        let members = &pool.spec.members;
        if members.len() <= SCAN_UP_TO {
            return members.iter().any(|member| member.value == destination);
        }
        (self.0.entry(name))
            .or_insert_with(|| members.iter().map(|m| m.value.as_str()).collect())
            .contains(destination)
    }
}

/// The destinations the config puts in maintenance, found when an instance
/// pinned through a load-balanced pool first asks. Nearly every config has
/// none, and each such instance (every one, in a large stack of
/// load-balanced pools) asked the B-tree of every destination.
#[derive(Default)]
struct InMaintenance<'a>(Option<foldhash::HashSet<&'a str>>);

impl<'a> InMaintenance<'a> {
    fn contains(&mut self, config: &'a Config, destination: &str) -> bool {
        let set = self.0.get_or_insert_with(|| {
            (config.destinations.iter())
                .filter(|(_, declared)| {
                    (declared.spec.maintenance.as_ref()).is_some_and(|m| m.enabled.value)
                })
                .map(|(name, _)| name.as_str())
                .collect()
        });
        set.contains(destination)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{POOL, check, valid};

    #[test]
    fn dangling_pool_reference() {
        check(
            &format!("{POOL}app_configs:\n  a: {{pool: q, type: desktop, protocol: rdp}}\n"),
            "config::dangling_reference",
            "q",
        );
    }

    #[test]
    fn dangling_app_config_reference() {
        check(
            "app_instances:\n  i: {app_config: nope, user: u}\n",
            "config::dangling_reference",
            "nope",
        );
    }

    #[test]
    fn instance_destination_outside_pool() {
        check(
            &format!(
                "{POOL}app_configs:\n  a: {{pool: p, type: desktop, protocol: rdp}}\napp_instances:\n  i: {{app_config: a, user: u, destination: d9}}\n"
            ),
            "config::destination_not_member",
            "d9",
        );
    }

    #[test]
    fn instance_destination_in_a_pool_asked_through_a_set() {
        // More members than a scan is used for: membership comes from the
        // pool's set, built once and asked by every instance pinned to it.
        let members: Vec<String> = (0..=super::SCAN_UP_TO).map(|i| format!("d{i}")).collect();
        let config = format!(
            "pools:\n  p: {{members: [{}]}}\napp_configs:\n  a: {{pool: p, type: desktop, protocol: rdp}}\napp_instances:\n",
            members.join(", ")
        );
        let pinned = |to: &[&str]| {
            let instances: String = (to.iter().enumerate())
                .map(|(i, d)| format!("  i{i}: {{app_config: a, user: u, destination: {d}}}\n"))
                .collect();
            format!("{config}{instances}")
        };
        let last = members.last().expect("members");
        valid(&pinned(&["d0", last, "d3"]));
        check(
            &pinned(&["d0", "d99", last]),
            "config::destination_not_member",
            "d99",
        );
    }

    #[test]
    fn instance_pinned_to_a_server_maintenance_takes_out_of_its_load_balanced_pool() {
        let pools = "pools:\n  p: {load_balancing: {enabled: true}, members: [d1, d2]}\n  a: {members: [d1]}\n";
        let apps = "app_configs:\n  c: {pool: p, type: desktop, protocol: rdp}\n  admin: {pool: a, type: desktop, protocol: rdp}\n";
        let maintenance = "destinations:\n  d1: {maintenance: {enabled: true}}\n";
        check(
            &format!(
                "{pools}{apps}{maintenance}app_instances:\n  i: {{app_config: c, user: u, destination: d1}}\n"
            ),
            "config::maintenance_pinned",
            "d1",
        );
        valid(&format!(
            "{pools}{apps}{maintenance}app_instances:\n  i: {{app_config: admin, user: u, destination: d1}}\n"
        ));
        // Maintenance declared but off takes nobody out.
        let off = "destinations:\n  d1: {maintenance: {enabled: false}}\n";
        valid(&format!(
            "{pools}{apps}{off}app_instances:\n  i: {{app_config: c, user: u, destination: d1}}\n"
        ));
    }

    #[test]
    fn instance_with_both_user_and_group() {
        check(
            "app_instances:\n  i: {app_config: a, user: u, group: g}\n",
            "config::assignee",
            "g",
        );
    }

    #[test]
    fn instance_with_neither_user_nor_group() {
        check(
            "app_instances:\n  inst: {app_config: a}\n",
            "config::assignee",
            "inst",
        );
    }
}
