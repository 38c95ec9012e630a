//! Where a broker is: the one parser of broker URLs, in every form the
//! CLI, `POOLFORM_BROKER` and the config's `broker.url` accept. It lives in
//! the contract so that `validate` (which may not see the backends) and the
//! backend that opens the broker judge a URL by the same rule.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

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
}
