//! The embedded backend of the `Broker` trait (`--broker file:PATH`): the
//! reference broker's engine in-process, with no HTTP in between, persisting
//! its state file after each mutation exactly as `poolform broker serve` does.

use std::path::Path;
use std::sync::Arc;

use super::Store;
use super::engine::{self, Engine};
use super::host::{Call, EngineHost, typed};
use super::store::now_ms;
use crate::contract::wire::Snapshot;
use crate::contract::{BrokerError, Result, Transport};

#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    store: Arc<Store>,
}

impl EmbeddedBroker {
    /// Opens the state file at `path`; when it does not exist yet it is
    /// created from `seed` (a snapshot file), or empty without one.
    pub fn open(path: &Path, seed: Option<&Path>) -> Result<EmbeddedBroker> {
        let store = Store::open(path, seed)
            .map_err(|e| BrokerError::Transport(Transport::other(e.to_string())))?;
        Ok(EmbeddedBroker { store })
    }

    /// The whole state, as `GET /v1/snapshot` answers it.
    pub fn snapshot(&self) -> Snapshot {
        let now = now_ms();
        self.store.read(|e| e.snapshot(now))
    }
}

/// Calls go straight to the store: no log, and the real clock.
impl EngineHost for EmbeddedBroker {
    async fn read<T: Send>(
        &self,
        _call: Call,
        answer: impl FnOnce(&Engine) -> engine::Result<T> + Send,
    ) -> Result<T> {
        self.store.read(answer).map_err(typed)
    }

    async fn write<T: Send + 'static>(
        &self,
        _call: Call,
        change: impl FnOnce(&mut Engine) -> engine::Result<T> + Send,
    ) -> Result<T> {
        self.store.mutate(change).await.map_err(typed)
    }

    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Broker;
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
        let added = broker.put_member("live", "rds-01").await.unwrap();
        assert!(added.member);
        let pool = broker.get_pool("live").await.unwrap().unwrap();
        assert_eq!(pool.members, vec!["rds-01", "rds-02"]);
        assert_eq!(added.revision, pool.revision);
        let err = broker.delete_member("live", "rds-02").await.unwrap_err();
        assert_eq!(err.code(), Some(codes::LB_SERVICE_UNINSTALL_FAILED));
        assert_eq!(err.problem().unwrap().destination_online, Some(false));
        drop(broker);
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
