//! App configs and app instances: the pool an app config uses and the
//! destination an app instance targets must exist and stay consistent (an
//! instance targets a member of its config's pool), and a resource in use is
//! not deleted.

use super::pools::is_member;
use super::{Engine, Result, bad_request, check_expect, check_name, missing_reference, not_found};
use crate::contract::Expect;
use crate::contract::problem::{self, codes};
use crate::contract::wire::{AppConfig, AppConfigBody, AppInstance, AppInstanceBody};

impl Engine {
    pub fn put_app_config(
        &mut self,
        name: &str,
        body: AppConfigBody,
        expect: Expect,
    ) -> Result<AppConfig> {
        check_name("app config", name)?;
        // A malformed body is a 400 whatever the precondition would say.
        check_name("pool", &body.pool)?;
        let existing = self.app_configs.get(name);
        check_expect("app config", name, existing.map(|c| c.revision), expect)?;
        let Some(pool) = self.pools.get(&body.pool) else {
            return Err(missing_reference("pool", &body.pool));
        };
        let outside =
            |i: &&AppInstance| (i.destination.as_ref()).is_some_and(|d| !is_member(pool, d));
        if existing.is_some_and(|c| c.pool != body.pool)
            && let Some(i) = (self.lookups().instances_of(name))
                .filter_map(|i| self.app_instances.get(i))
                .find(outside)
        {
            return Err(problem::new(
                409,
                codes::CONFLICT,
                format!(
                    "app instance {} targets a destination outside pool {}",
                    i.name, body.pool
                ),
            ));
        }
        let mut config = AppConfig {
            name: name.to_owned(),
            pool: body.pool,
            app_type: body.app_type,
            protocol: body.protocol,
            admin_session: body.admin_session,
            keep_credentials_on_destination_change: body.keep_credentials_on_destination_change,
            allow_destination_change: body.allow_destination_change,
            labels: body.labels,
            revision: existing.map_or(0, |c| c.revision),
        };
        if existing == Some(&config) {
            return Ok(config);
        }
        let op = if existing.is_some() {
            "app_config.update"
        } else {
            "app_config.create"
        };
        config.revision = self.next_revision();
        if let Some(lookups) = self.lookups.get_mut() {
            lookups.config_changed(name, self.app_configs.get(name), Some(&config));
        }
        self.app_configs.insert(name.to_owned(), config.clone());
        self.log(op, format!("app_config/{name}"), None);
        Ok(config)
    }

    pub fn delete_app_config(&mut self, name: &str, expect: Expect) -> Result<()> {
        let c = self
            .app_configs
            .get(name)
            .ok_or_else(|| not_found("app config", name))?;
        check_expect("app config", name, Some(c.revision), expect)?;
        if let Some(i) = self.lookups().instances_of(name).next() {
            return Err(problem::new(
                409,
                codes::IN_USE,
                format!("app config {name} is used by app instance {i}"),
            ));
        }
        if let Some(lookups) = self.lookups.get_mut() {
            lookups.config_changed(name, self.app_configs.get(name), None);
        }
        self.app_configs.remove(name);
        self.log("app_config.delete", format!("app_config/{name}"), None);
        Ok(())
    }

    pub fn put_app_instance(
        &mut self,
        name: &str,
        body: AppInstanceBody,
        expect: Expect,
    ) -> Result<AppInstance> {
        check_name("app instance", name)?;
        // A malformed body is a 400 whatever the precondition would say.
        if body.user.is_some() == body.group.is_some() {
            return Err(bad_request(
                "an app instance has exactly one of user / group",
            ));
        }
        check_name("app config", &body.app_config)?;
        if let Some(d) = &body.destination {
            check_name("destination", d)?;
        }
        let existing = self.app_instances.get(name);
        check_expect("app instance", name, existing.map(|i| i.revision), expect)?;
        let Some(config) = self.app_configs.get(&body.app_config) else {
            return Err(missing_reference("app config", &body.app_config));
        };
        if let Some(d) = &body.destination {
            if !self.destinations.contains_key(d) {
                return Err(missing_reference("destination", d));
            }
            let in_pool = self
                .pools
                .get(&config.pool)
                .is_some_and(|p| is_member(p, d));
            if !in_pool {
                return Err(problem::new(
                    409,
                    codes::CONFLICT,
                    format!("destination {d} is not a member of pool {}", config.pool),
                ));
            }
        }
        let mut instance = AppInstance {
            name: name.to_owned(),
            app_config: body.app_config,
            user: body.user,
            group: body.group,
            destination: body.destination,
            labels: body.labels,
            revision: existing.map_or(0, |i| i.revision),
        };
        if existing == Some(&instance) {
            return Ok(instance);
        }
        let op = if existing.is_some() {
            "app_instance.update"
        } else {
            "app_instance.create"
        };
        instance.revision = self.next_revision();
        if let Some(lookups) = self.lookups.get_mut() {
            lookups.instance_changed(name, self.app_instances.get(name), Some(&instance));
        }
        self.app_instances.insert(name.to_owned(), instance.clone());
        self.log(op, format!("app_instance/{name}"), None);
        Ok(instance)
    }

    pub fn delete_app_instance(&mut self, name: &str, expect: Expect) -> Result<()> {
        let i = self
            .app_instances
            .get(name)
            .ok_or_else(|| not_found("app instance", name))?;
        check_expect("app instance", name, Some(i.revision), expect)?;
        if let Some(lookups) = self.lookups.get_mut() {
            lookups.instance_changed(name, self.app_instances.get(name), None);
        }
        self.app_instances.remove(name);
        self.log("app_instance.delete", format!("app_instance/{name}"), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::wire::{Labels, PoolBody};
    use crate::refbroker::engine::fixtures::{desktop, engine};

    /// Jane's instance of the app config `desk`, pinned to `destination`.
    fn pinned(destination: &str) -> AppInstanceBody {
        AppInstanceBody {
            app_config: "desk".into(),
            user: Some("jane".into()),
            group: None,
            destination: Some(destination.into()),
            labels: Labels::new(),
        }
    }

    #[test]
    fn an_app_config_moves_only_to_a_pool_holding_its_pinned_instances() {
        let mut e = engine();
        e.put_member("live", "rds-01").unwrap();
        e.put_pool("other", PoolBody::default(), Expect::Any)
            .unwrap();
        e.put_app_config("desk", desktop("live"), Expect::Any)
            .unwrap();
        e.put_app_instance("i", pinned("rds-01"), Expect::Any)
            .unwrap();
        let err = e
            .put_app_config("desk", desktop("other"), Expect::Any)
            .unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (409, codes::CONFLICT));
        assert_eq!(e.app_configs.get("desk").unwrap().pool, "live");
        e.put_member("other", "rds-01").unwrap();
        e.put_app_config("desk", desktop("other"), Expect::Any)
            .unwrap();
        assert_eq!(e.app_configs.get("desk").unwrap().pool, "other");
    }

    #[test]
    fn references_block_deletes() {
        let mut e = engine();
        e.put_member("live", "rds-01").unwrap();
        let body = desktop("live");
        let missing = AppConfigBody {
            pool: "nope".into(),
            ..body.clone()
        };
        let err = e.put_app_config("desk", missing, Expect::Any).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (422, codes::NOT_FOUND));
        e.put_app_config("desk", body, Expect::Any).unwrap();
        assert_eq!(
            e.put_app_instance("i", pinned("rds-02"), Expect::Any)
                .unwrap_err()
                .code,
            codes::CONFLICT
        );
        e.put_app_instance("i", pinned("rds-01"), Expect::Any)
            .unwrap();
        assert_eq!(
            e.delete_member("live", "rds-01").unwrap_err().code,
            codes::IN_USE
        );
        assert_eq!(
            e.delete_pool("live", Expect::Any).unwrap_err().code,
            codes::IN_USE
        );
        assert_eq!(
            e.delete_app_config("desk", Expect::Any).unwrap_err().code,
            codes::IN_USE
        );
        let err = e
            .put_app_instance("i", pinned("rds-01"), Expect::Absent)
            .unwrap_err();
        assert_eq!(err.status, 412, "it exists");
        e.delete_app_instance("i", Expect::Any).unwrap();
        e.delete_app_config("desk", Expect::Any).unwrap();
        e.delete_pool("live", Expect::Any).unwrap();
        assert!(!e.destination("rds-01").unwrap().lb_service_installed);
    }
}
