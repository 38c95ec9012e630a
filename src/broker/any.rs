//! `AnyBroker`: one concrete type over both backends, chosen from a broker
//! URL, because the `Broker` trait returns `impl Future` and so cannot be
//! used as `dyn Broker`.

use std::path::Path;

use secrecy::SecretString;

use super::embedded::EmbeddedBroker;
use super::http::{HttpBroker, HttpOptions};
use super::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Destination, Event, Lock,
    LockBody, Maintenance, Pool, PoolBody, Session,
};
use super::{Broker, BrokerError, LiveState, Result};

#[derive(Debug)]
pub enum AnyBroker {
    Http(HttpBroker),
    Embedded(EmbeddedBroker),
}

impl AnyBroker {
    /// `http://…` or `https://…` is a live broker API; `file:PATH` is the
    /// embedded broker on state file PATH, and `file:PATH?seed=SEED` creates
    /// that file from snapshot SEED when it does not exist yet.
    pub fn from_url(
        url: &str,
        token: Option<SecretString>,
        options: HttpOptions,
    ) -> Result<AnyBroker> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return HttpBroker::new(url, token, options).map(AnyBroker::Http);
        }
        if let Some(rest) = url.strip_prefix("file:") {
            let (path, seed) = match rest.split_once("?seed=") {
                Some((path, seed)) => (path, Some(Path::new(seed))),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(BrokerError::Transport(
                    "file: broker URL needs a path".into(),
                ));
            }
            return EmbeddedBroker::open(Path::new(path), seed).map(AnyBroker::Embedded);
        }
        Err(BrokerError::Transport(format!(
            "broker URL {url:?} must start with http://, https:// or file:"
        )))
    }
}

/// Forwards each trait method to the backend in use.
macro_rules! forward {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Broker for AnyBroker {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$ret> {
                    match self {
                        AnyBroker::Http(b) => b.$name($($arg),*).await,
                        AnyBroker::Embedded(b) => b.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

forward! {
    fn read_live(&self) -> LiveState;
    fn get_destination(&self, name: &str) -> Option<Destination>;
    fn get_pool(&self, name: &str) -> Option<Pool>;
    fn get_app_config(&self, name: &str) -> Option<AppConfig>;
    fn get_app_instance(&self, name: &str) -> Option<AppInstance>;
    fn list_sessions(&self, destination: &str) -> Vec<Session>;
    fn events(&self, since: u64) -> Vec<Event>;
    fn put_pool(&self, name: &str, body: &PoolBody, if_match: Option<u64>) -> Pool;
    fn delete_pool(&self, name: &str, if_match: Option<u64>) -> ();
    fn put_member(&self, pool: &str, destination: &str) -> Pool;
    fn delete_member(&self, pool: &str, destination: &str) -> Pool;
    fn clear_sticky(&self, pool: &str, destination: Option<&str>) -> Affected;
    fn disconnect_sessions(&self, destination: &str) -> Affected;
    fn put_maintenance(&self, destination: &str, body: &Maintenance) -> Destination;
    fn delete_maintenance(&self, destination: &str) -> Destination;
    fn delete_lb_service(&self, destination: &str) -> Destination;
    fn put_app_config(&self, name: &str, body: &AppConfigBody, if_match: Option<u64>) -> AppConfig;
    fn delete_app_config(&self, name: &str, if_match: Option<u64>) -> ();
    fn put_app_instance(&self, name: &str, body: &AppInstanceBody, if_match: Option<u64>) -> AppInstance;
    fn delete_app_instance(&self, name: &str, if_match: Option<u64>) -> ();
    fn put_lock(&self, stack: &str, body: &LockBody) -> Lock;
    fn delete_lock(&self, stack: &str, holder: &str) -> ();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("file:{}", dir.path().join("b.json").display());
        assert!(matches!(
            AnyBroker::from_url(&file, None, HttpOptions::default()),
            Ok(AnyBroker::Embedded(_))
        ));
        assert!(matches!(
            AnyBroker::from_url("http://127.0.0.1:1", None, HttpOptions::default()),
            Ok(AnyBroker::Http(_))
        ));
        assert!(AnyBroker::from_url("ftp://x", None, HttpOptions::default()).is_err());
    }

    #[tokio::test]
    async fn a_file_url_can_name_the_seed_for_a_new_state() {
        let dir = tempfile::tempdir().unwrap();
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/maintenance/broker-seed.json");
        let url = format!(
            "file:{}?seed={}",
            dir.path().join("b.json").display(),
            seed.display()
        );
        let broker = AnyBroker::from_url(&url, None, HttpOptions::default()).unwrap();
        let live = broker.read_live().await.unwrap();
        assert_eq!(live.pools.len(), 2);
        assert!(dir.path().join("b.json").exists());
    }
}
