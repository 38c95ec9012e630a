//! Which broker a command talks to: the broker URL, parsed in one place, and
//! `AnyBroker`, one concrete type over both backends (the HTTP client and the
//! in-process reference broker). The `Broker` trait returns `impl Future`, so
//! it cannot be used as `dyn Broker`; this enum is what commands hold instead.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::SecretString;

use crate::client::{HttpBroker, HttpOptions};
use crate::contract::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Destination, Event, Lock,
    LockBody, Maintenance, Pool, PoolBody, Session,
};
use crate::contract::{Broker, Expect, LiveState, Result};
use crate::refbroker::EmbeddedBroker;

/// Where a broker is, in every form the CLI, `POOLFORM_BROKER` and the
/// config's `broker.url` accept:
/// - `http://HOST[:PORT][/PREFIX]` or `https://...`: a live broker API;
/// - `file:PATH`: the reference broker in-process, its state kept in PATH;
/// - `file:PATH?seed=SEED`: the same, creating PATH from snapshot SEED when
///   PATH does not exist yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerUrl {
    Http(String),
    File {
        state: PathBuf,
        seed: Option<PathBuf>,
    },
}

/// Why a text is not a broker URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    #[error("broker URL {0:?} must start with http://, https:// or file:")]
    Scheme(String),
    #[error("broker URL {0:?} names no host")]
    NoHost(String),
    #[error("broker URL {0:?} names no state file after file:")]
    NoPath(String),
    #[error("broker URL {0:?} names no seed file after ?seed=")]
    NoSeed(String),
}

impl FromStr for BrokerUrl {
    type Err = BrokerUrlError;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        if let Some(rest) = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
        {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(BrokerUrlError::NoHost(text.to_owned()));
            }
            return Ok(BrokerUrl::Http(text.trim_end_matches('/').to_owned()));
        }
        let Some(rest) = text.strip_prefix("file:") else {
            return Err(BrokerUrlError::Scheme(text.to_owned()));
        };
        let (state, seed) = match rest.split_once("?seed=") {
            Some((_, "")) => return Err(BrokerUrlError::NoSeed(text.to_owned())),
            Some((state, seed)) => (state, Some(PathBuf::from(seed))),
            None => (rest, None),
        };
        if state.is_empty() {
            return Err(BrokerUrlError::NoPath(text.to_owned()));
        }
        Ok(BrokerUrl::File {
            state: PathBuf::from(state),
            seed,
        })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerUrl::Http(url) => f.write_str(url),
            BrokerUrl::File { state, seed: None } => write!(f, "file:{}", state.display()),
            BrokerUrl::File {
                state,
                seed: Some(seed),
            } => write!(f, "file:{}?seed={}", state.display(), seed.display()),
        }
    }
}

impl BrokerUrl {
    /// Whether reading this broker costs network round trips (worth starting
    /// before the config has loaded).
    pub fn is_remote(&self) -> bool {
        matches!(self, BrokerUrl::Http(_))
    }

    /// A `file:` URL without a seed of its own takes `fallback` as its seed.
    pub fn with_default_seed(self, fallback: Option<PathBuf>) -> BrokerUrl {
        match self {
            BrokerUrl::File { state, seed: None } => BrokerUrl::File {
                state,
                seed: fallback,
            },
            other => other,
        }
    }
}

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
    fn put_pool(&self, name: &str, body: &PoolBody, expect: Expect) -> Pool;
    fn delete_pool(&self, name: &str, expect: Expect) -> ();
    fn put_member(&self, pool: &str, destination: &str) -> Pool;
    fn delete_member(&self, pool: &str, destination: &str) -> Pool;
    fn clear_sticky(&self, pool: &str, destination: Option<&str>) -> Affected;
    fn disconnect_sessions(&self, destination: &str) -> Affected;
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

    fn url(text: &str) -> std::result::Result<BrokerUrl, BrokerUrlError> {
        text.parse()
    }

    #[test]
    fn every_documented_form_parses() {
        assert_eq!(
            url("http://127.0.0.1:8080"),
            Ok(BrokerUrl::Http("http://127.0.0.1:8080".into()))
        );
        assert_eq!(
            url("https://broker.corp.example/"),
            Ok(BrokerUrl::Http("https://broker.corp.example".into()))
        );
        assert_eq!(
            url("https://broker.corp.example/api"),
            Ok(BrokerUrl::Http("https://broker.corp.example/api".into()))
        );
        assert_eq!(
            url("file:/tmp/b.json"),
            Ok(BrokerUrl::File {
                state: "/tmp/b.json".into(),
                seed: None
            })
        );
        assert_eq!(
            url("file:b.json?seed=examples/maintenance/broker-seed.json"),
            Ok(BrokerUrl::File {
                state: "b.json".into(),
                seed: Some("examples/maintenance/broker-seed.json".into())
            })
        );
    }

    #[test]
    fn malformed_urls_say_what_is_missing() {
        assert!(matches!(url("ftp://x"), Err(BrokerUrlError::Scheme(_))));
        assert!(matches!(url("broker.json"), Err(BrokerUrlError::Scheme(_))));
        assert!(matches!(url("http://"), Err(BrokerUrlError::NoHost(_))));
        assert!(matches!(url("file:"), Err(BrokerUrlError::NoPath(_))));
        assert!(matches!(
            url("file:?seed=s.json"),
            Err(BrokerUrlError::NoPath(_))
        ));
        assert!(matches!(
            url("file:b.json?seed="),
            Err(BrokerUrlError::NoSeed(_))
        ));
    }

    #[test]
    fn urls_print_as_they_parse() {
        for text in [
            "http://127.0.0.1:1",
            "file:/x/b.json",
            "file:b.json?seed=s.json",
        ] {
            assert_eq!(url(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_url_seed_wins_over_the_fallback() {
        let fallback = Some(PathBuf::from("fallback.json"));
        let own = url("file:b.json?seed=own.json").unwrap();
        assert_eq!(own.clone().with_default_seed(fallback.clone()), own);
        let bare = url("file:b.json").unwrap().with_default_seed(fallback);
        assert_eq!(bare.to_string(), "file:b.json?seed=fallback.json");
    }

    #[test]
    fn urls_pick_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let file = url(&format!("file:{}", dir.path().join("b.json").display())).unwrap();
        assert!(matches!(
            AnyBroker::open(&file, None, HttpOptions::default()),
            Ok(AnyBroker::Embedded(_))
        ));
        let http = url("http://127.0.0.1:1").unwrap();
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
        let broker = AnyBroker::open(&url(&text).unwrap(), None, HttpOptions::default()).unwrap();
        let live = broker.read_live().await.unwrap();
        assert_eq!(live.pools.len(), 2);
        assert!(dir.path().join("b.json").exists());
    }
}
