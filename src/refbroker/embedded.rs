//! The embedded backend of the `Broker` trait (`--broker file:PATH`): the
//! reference broker's engine in-process, with no HTTP in between, persisting
//! its state file after each mutation exactly as `poolform broker serve` does.

use std::path::Path;
use std::sync::Arc;

use super::Store;
use super::engine::{self, Engine};
use super::store::now_ms;
use crate::contract::problem::Problem;
use crate::contract::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Destination, Event, Lock,
    LockBody, Maintenance, Pool, PoolBody, Session, Snapshot,
};
use crate::contract::{Broker, BrokerError, LiveState, Result};

#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    store: Arc<Store>,
}

fn typed(problem: Box<Problem>) -> BrokerError {
    BrokerError::Problem {
        status: problem.status,
        problem,
    }
}

impl EmbeddedBroker {
    /// Opens the state file at `path`; when it does not exist yet it is
    /// created from `seed` (a snapshot file), or empty without one.
    pub fn open(path: &Path, seed: Option<&Path>) -> Result<EmbeddedBroker> {
        let store = Store::open(path, seed).map_err(|e| BrokerError::Transport(e.to_string()))?;
        Ok(EmbeddedBroker { store })
    }

    /// The whole state, as `GET /v1/snapshot` answers it.
    pub fn snapshot(&self) -> Snapshot {
        let now = now_ms();
        self.store.read(|e| e.snapshot(now))
    }

    async fn mutate<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> engine::Result<T>,
    ) -> Result<T> {
        self.store.mutate(f).await.map_err(typed)
    }
}

impl Broker for EmbeddedBroker {
    async fn read_live(&self) -> Result<LiveState> {
        Ok(self.store.read(|e| LiveState {
            destinations: e
                .destinations_page(None, usize::MAX)
                .items
                .into_iter()
                .cloned()
                .collect(),
            pools: e
                .pools_page(None, usize::MAX)
                .items
                .into_iter()
                .cloned()
                .collect(),
            app_configs: e
                .app_configs_page(None, usize::MAX)
                .items
                .into_iter()
                .cloned()
                .collect(),
            app_instances: e
                .app_instances_page(None, usize::MAX)
                .items
                .into_iter()
                .cloned()
                .collect(),
        }))
    }

    async fn get_destination(&self, name: &str) -> Result<Option<Destination>> {
        Ok(self.store.read(|e| e.destination(name).cloned()))
    }

    async fn get_pool(&self, name: &str) -> Result<Option<Pool>> {
        Ok(self.store.read(|e| e.pool(name).cloned()))
    }

    async fn get_app_config(&self, name: &str) -> Result<Option<AppConfig>> {
        Ok(self.store.read(|e| e.app_config(name).cloned()))
    }

    async fn get_app_instance(&self, name: &str) -> Result<Option<AppInstance>> {
        Ok(self.store.read(|e| e.app_instance(name).cloned()))
    }

    async fn list_sessions(&self, destination: &str) -> Result<Vec<Session>> {
        self.store
            .read(|e| {
                e.sessions_page(destination, None, usize::MAX)
                    .map(|p| p.items.into_iter().cloned().collect())
            })
            .map_err(typed)
    }

    async fn events(&self, since: u64) -> Result<Vec<Event>> {
        Ok(self.store.read(|e| {
            e.events_page(since, usize::MAX)
                .items
                .into_iter()
                .cloned()
                .collect()
        }))
    }

    async fn put_pool(&self, name: &str, body: &PoolBody, if_match: Option<u64>) -> Result<Pool> {
        let (name, body) = (name.to_owned(), body.clone());
        self.mutate(move |e| e.put_pool(&name, body, if_match))
            .await
    }

    async fn delete_pool(&self, name: &str, if_match: Option<u64>) -> Result<()> {
        let name = name.to_owned();
        self.mutate(move |e| e.delete_pool(&name, if_match)).await
    }

    async fn put_member(&self, pool: &str, destination: &str) -> Result<Pool> {
        let (pool, destination) = (pool.to_owned(), destination.to_owned());
        self.mutate(move |e| e.put_member(&pool, &destination))
            .await
    }

    async fn delete_member(&self, pool: &str, destination: &str) -> Result<Pool> {
        let (pool, destination) = (pool.to_owned(), destination.to_owned());
        self.mutate(move |e| e.delete_member(&pool, &destination))
            .await
    }

    async fn clear_sticky(&self, pool: &str, destination: Option<&str>) -> Result<Affected> {
        let (pool, destination) = (pool.to_owned(), destination.map(str::to_owned));
        self.mutate(move |e| e.clear_sticky(&pool, destination.as_deref()))
            .await
    }

    async fn disconnect_sessions(&self, destination: &str) -> Result<Affected> {
        let destination = destination.to_owned();
        self.mutate(move |e| e.disconnect_sessions(&destination))
            .await
    }

    async fn put_maintenance(&self, destination: &str, body: &Maintenance) -> Result<Destination> {
        let (destination, body) = (destination.to_owned(), body.clone());
        self.mutate(move |e| e.put_maintenance(&destination, body, None))
            .await
    }

    async fn delete_maintenance(&self, destination: &str) -> Result<Destination> {
        let destination = destination.to_owned();
        self.mutate(move |e| e.delete_maintenance(&destination, None))
            .await
    }

    async fn delete_lb_service(&self, destination: &str) -> Result<Destination> {
        let destination = destination.to_owned();
        self.mutate(move |e| e.delete_lb_service(&destination))
            .await
    }

    async fn put_app_config(
        &self,
        name: &str,
        body: &AppConfigBody,
        if_match: Option<u64>,
    ) -> Result<AppConfig> {
        let (name, body) = (name.to_owned(), body.clone());
        self.mutate(move |e| e.put_app_config(&name, body, if_match))
            .await
    }

    async fn delete_app_config(&self, name: &str, if_match: Option<u64>) -> Result<()> {
        let name = name.to_owned();
        self.mutate(move |e| e.delete_app_config(&name, if_match))
            .await
    }

    async fn put_app_instance(
        &self,
        name: &str,
        body: &AppInstanceBody,
        if_match: Option<u64>,
    ) -> Result<AppInstance> {
        let (name, body) = (name.to_owned(), body.clone());
        self.mutate(move |e| e.put_app_instance(&name, body, if_match))
            .await
    }

    async fn delete_app_instance(&self, name: &str, if_match: Option<u64>) -> Result<()> {
        let name = name.to_owned();
        self.mutate(move |e| e.delete_app_instance(&name, if_match))
            .await
    }

    async fn put_lock(&self, stack: &str, body: &LockBody) -> Result<Lock> {
        let (stack, body) = (stack.to_owned(), body.clone());
        self.mutate(move |e| e.put_lock(&stack, body)).await
    }

    async fn delete_lock(&self, stack: &str, holder: &str) -> Result<()> {
        let (stack, holder) = (stack.to_owned(), holder.to_owned());
        self.mutate(move |e| e.delete_lock(&stack, &holder)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::problem::codes;
    use crate::contract::wire::LoadBalancing;

    fn seed(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("seed.json");
        let json = r#"{"destinations": [
            {"name": "rds-01", "online": true, "process_execution_ready": true, "lb_service_installed": false, "revision": 1},
            {"name": "rds-02", "online": false, "process_execution_ready": true, "lb_service_installed": true, "revision": 2}],
          "pools": [{"name": "live", "load_balancing": {"enabled": true, "sticky_sessions_minutes": 10, "grace_period_seconds": 30},
            "default_credentials": {"password_set": false}, "labels": {}, "members": ["rds-02"], "revision": 3}]}"#;
        std::fs::write(&path, json).unwrap();
        path
    }

    #[tokio::test]
    async fn the_embedded_broker_speaks_the_engine_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let broker = EmbeddedBroker::open(&state, Some(&seed(dir.path()))).unwrap();
        let pool = broker.put_member("live", "rds-01").await.unwrap();
        assert_eq!(pool.members, vec!["rds-01", "rds-02"]);
        let err = broker.delete_member("live", "rds-02").await.unwrap_err();
        assert_eq!(err.code(), Some(codes::LB_SERVICE_UNINSTALL_FAILED));
        assert_eq!(err.problem().unwrap().destination_online, Some(false));
        let reopened = EmbeddedBroker::open(&state, None).unwrap();
        let live = reopened.read_live().await.unwrap();
        assert_eq!(live.pools[0].members, vec!["rds-01"]);
        assert_eq!(
            live.pools[0].load_balancing,
            LoadBalancing {
                enabled: true,
                sticky_sessions_minutes: 10,
                grace_period_seconds: 30
            }
        );
        let ops: Vec<_> = reopened
            .events(0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.op)
            .collect();
        assert_eq!(ops, vec!["member.add", "member.remove"]);
        let leftover = reopened.snapshot().destinations;
        assert!(
            leftover
                .iter()
                .any(|d| d.name == "rds-02" && d.lb_service_installed)
        );
    }
}
