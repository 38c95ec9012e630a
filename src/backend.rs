//! Which broker a command talks to: `AnyBroker`, one concrete type over both
//! backends, opened from a broker URL (parsed in `contract::url`) (the HTTP client and the
//! in-process reference broker). The `Broker` trait returns `impl Future`, so
//! it cannot be used as `dyn Broker`; this enum is what commands hold instead.

use std::path::Path;

use secrecy::SecretString;

use crate::client::{HttpBroker, HttpOptions};
pub use crate::contract::url::{BrokerUrl, BrokerUrlError};
use crate::contract::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Destination, Event, Lock,
    LockBody, Maintenance, Membership, Pool, PoolBody, Session, SessionMessage, Snapshot,
};
use crate::contract::{Broker, Expect, LiveState, Result};
use crate::refbroker::EmbeddedBroker;

#[derive(Debug)]
pub enum AnyBroker {
    Http(HttpBroker),
    Embedded(EmbeddedBroker),
}

impl AnyBroker {
    /// Opens the broker `url` names. `token` is sent to an HTTP broker; the
    /// embedded one needs none.
    pub fn open(
        url: &BrokerUrl,
        token: Option<SecretString>,
        options: HttpOptions,
    ) -> Result<AnyBroker> {
        match url {
            BrokerUrl::Http(base) => HttpBroker::new(base, token, options).map(AnyBroker::Http),
            BrokerUrl::File { state, seed } => {
                EmbeddedBroker::open(state, seed.as_deref().map(Path::new)).map(AnyBroker::Embedded)
            }
        }
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
    fn identity(&self) -> String;
    fn read_live(&self) -> LiveState;
    fn get_destination(&self, name: &str) -> Option<Destination>;
    fn get_pool(&self, name: &str) -> Option<Pool>;
    fn get_app_config(&self, name: &str) -> Option<AppConfig>;
    fn get_app_instance(&self, name: &str) -> Option<AppInstance>;
    fn list_sessions(&self, destination: &str) -> Vec<Session>;
    fn events(&self, since: u64) -> Vec<Event>;
    fn read_snapshot(&self) -> Snapshot;
    fn put_pool(&self, name: &str, body: &PoolBody, expect: Expect) -> Pool;
    fn delete_pool(&self, name: &str, expect: Expect) -> ();
    fn put_member(&self, pool: &str, destination: &str) -> Membership;
    fn delete_member(&self, pool: &str, destination: &str) -> Membership;
    fn clear_sticky(&self, pool: &str, destination: Option<&str>) -> Affected;
    fn disconnect_sessions(&self, destination: &str) -> Affected;
    fn message_sessions(&self, destination: &str, message: &SessionMessage) -> Affected;
    fn put_maintenance(&self, destination: &str, body: &Maintenance) -> Destination;
    fn delete_maintenance(&self, destination: &str) -> Destination;
    fn start_drain(&self, destination: &str, holder: &str) -> Destination;
    fn end_drain(&self, destination: &str) -> Destination;
    fn delete_lb_service(&self, destination: &str) -> Destination;
    fn put_app_config(&self, name: &str, body: &AppConfigBody, expect: Expect) -> AppConfig;
    fn delete_app_config(&self, name: &str, expect: Expect) -> ();
    fn put_app_instance(&self, name: &str, body: &AppInstanceBody, expect: Expect) -> AppInstance;
    fn delete_app_instance(&self, name: &str, expect: Expect) -> ();
    fn put_lock(&self, stack: &str, body: &LockBody) -> Lock;
    fn delete_lock(&self, stack: &str, holder: &str) -> ();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> BrokerUrl {
        text.parse().unwrap()
    }

    #[test]
    fn urls_pick_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let file = url(&format!("file:{}", dir.path().join("b.json").display()));
        assert!(matches!(
            AnyBroker::open(&file, None, HttpOptions::default()),
            Ok(AnyBroker::Embedded(_))
        ));
        let http = url("http://127.0.0.1:1");
        assert!(matches!(
            AnyBroker::open(&http, None, HttpOptions::default()),
            Ok(AnyBroker::Http(_))
        ));
    }

    #[tokio::test]
    async fn a_file_url_can_name_the_seed_for_a_new_state() {
        let dir = tempfile::tempdir().unwrap();
        let seed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/maintenance/broker-seed.json");
        let text = format!(
            "file:{}?seed={}",
            dir.path().join("b.json").display(),
            seed.display()
        );
        let broker = AnyBroker::open(&url(&text), None, HttpOptions::default()).unwrap();
        let live = broker.read_live().await.unwrap();
        assert_eq!(live.pools.len(), 2);
        assert!(dir.path().join("b.json").exists());
    }
}
