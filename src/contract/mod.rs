//! The broker contract, the neutral ground between poolform's client side and
//! the reference broker: the wire types, the problem codes, the name rule, the
//! labels poolform keeps on the broker, the one password hash both sides
//! keep, the broker URL, and the `Broker` trait that both backends (the HTTP client and the
//! in-process reference broker) implement. It depends on nothing else in the
//! crate.

pub mod hash;
pub mod labels;
pub mod names;
pub mod page;
pub mod problem;
pub mod rare;
pub mod url;
pub mod wire;

use std::future::Future;

use problem::Problem;
use wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Destination, Event, Lock,
    LockBody, Maintenance, Membership, Pool, PoolBody, Session, SessionMessage, Snapshot,
};

/// Everything the planner needs from the broker, read with one paginated
/// sweep per collection. Each list is sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    /// The identity of the broker that answered (`Broker::identity`), so a
    /// plan can be bound to the broker it was made against.
    pub identity: String,
    pub destinations: Vec<Destination>,
    pub pools: Vec<Pool>,
    pub app_configs: Vec<AppConfig>,
    pub app_instances: Vec<AppInstance>,
}

/// Why a broker call failed. A problem answer keeps its stable `code` so that
/// callers (the apply engine) can tell expected failures from real ones.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    #[error("broker answered {status} {}: {}", problem.code, problem.detail.as_deref().unwrap_or(&problem.title))]
    Problem { status: u16, problem: Box<Problem> },
    #[error("{0}")]
    Transport(Transport),
    #[error("unexpected answer from the broker: {0}")]
    Protocol(String),
    /// Refused before anything was sent: it cannot be put in a URL safely.
    #[error("{0:?} is not a name the broker API can address ({rule}); nothing was sent", rule = names::RULE)]
    InvalidName(String),
}

impl BrokerError {
    /// The problem `code`, when the broker answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            BrokerError::Problem { problem, .. } => Some(&problem.code),
            _ => None,
        }
    }

    pub fn problem(&self) -> Option<&Problem> {
        match self {
            BrokerError::Problem { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// What kind of failure kept a request from getting an answer: what the
/// message advises, and whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Nothing listens at the address (yet: a broker restarting).
    Refused,
    /// The TLS handshake failed, most often on an untrusted certificate.
    Tls,
    /// The host name does not resolve.
    Dns,
    /// No answer in time.
    Timeout,
    Other,
}

/// A request that got no answer: its kind and what happened, in words
/// that name the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub kind: TransportKind,
    pub message: String,
}

impl Transport {
    pub fn other(message: impl Into<String>) -> Transport {
        Transport {
            kind: TransportKind::Other,
            message: message.into(),
        }
    }

    /// Whether a retry can help: a refused connection or a timeout may pass;
    /// a certificate or a name that does not resolve will not change.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            TransportKind::Refused | TransportKind::Timeout | TransportKind::Other
        )
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = &self.message;
        match self.kind {
            TransportKind::Refused => write!(
                f,
                "cannot reach the broker: connection refused ({message}); is the broker running, and are the \
                 URL's host and port right?"
            ),
            TransportKind::Tls if message.contains("certificate") => write!(
                f,
                "the broker's TLS certificate is not trusted ({message}); if your organisation signs it with its \
                 own CA, add that CA to the system's trust store (copy it to /usr/local/share/ca-certificates/ \
                 and run update-ca-certificates) or set SSL_CERT_FILE to a PEM file that includes it"
            ),
            TransportKind::Tls => write!(
                f,
                "the TLS handshake with the broker failed ({message}); does the URL say https:// for a port \
                 that speaks TLS?"
            ),
            TransportKind::Dns => write!(
                f,
                "cannot resolve the broker's host name ({message}); check the host in the broker URL"
            ),
            TransportKind::Timeout => write!(
                f,
                "the broker did not answer in time ({message}); it may be overloaded, or a firewall drops \
                 the connection"
            ),
            TransportKind::Other => write!(f, "cannot reach the broker: {message}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, BrokerError>;

/// What a conditional write expects of the resource it writes. Over HTTP,
/// `Revision` is `If-Match: "N"` and `Absent` is `If-None-Match: *`; the
/// broker answers 412 (`precondition_failed`) when the expectation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No condition: create or overwrite whatever is there.
    Any,
    /// The resource exists at exactly this revision.
    Revision(u64),
    /// The resource does not exist (a create that must not overwrite).
    Absent,
}

/// The broker operations poolform uses. Reads and writes are separate methods
/// so that a read-only caller (plan) never needs write access.
///
/// `expect` states what a conditional write assumes about the resource; the
/// broker answers 412 (`precondition_failed`) when that no longer holds.
pub trait Broker: Send + Sync {
    /// The broker's identity (`GET /v1/broker`).
    fn identity(&self) -> impl Future<Output = Result<String>> + Send;

    /// The whole live state, ceil(N/1000) list requests per collection, with
    /// the broker's identity taken from those answers (no extra request).
    fn read_live(&self) -> impl Future<Output = Result<LiveState>> + Send;

    fn get_destination(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Destination>>> + Send;
    fn get_pool(&self, name: &str) -> impl Future<Output = Result<Option<Pool>>> + Send;
    fn get_app_config(&self, name: &str) -> impl Future<Output = Result<Option<AppConfig>>> + Send;
    fn get_app_instance(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<AppInstance>>> + Send;
    fn list_sessions(&self, destination: &str)
    -> impl Future<Output = Result<Vec<Session>>> + Send;
    fn events(&self, since: u64) -> impl Future<Output = Result<Vec<Event>>> + Send;
    /// The whole state (`GET /v1/snapshot`): what a rehearsal copies.
    fn read_snapshot(&self) -> impl Future<Output = Result<Snapshot>> + Send;

    fn put_pool(
        &self,
        name: &str,
        body: &PoolBody,
        expect: Expect,
    ) -> impl Future<Output = Result<Pool>> + Send;
    fn delete_pool(&self, name: &str, expect: Expect) -> impl Future<Output = Result<()>> + Send;
    fn put_member(
        &self,
        pool: &str,
        destination: &str,
    ) -> impl Future<Output = Result<Membership>> + Send;
    fn delete_member(
        &self,
        pool: &str,
        destination: &str,
    ) -> impl Future<Output = Result<Membership>> + Send;
    /// Clears sticky bindings of `pool`, only those pointing at `destination` when given.
    fn clear_sticky(
        &self,
        pool: &str,
        destination: Option<&str>,
    ) -> impl Future<Output = Result<Affected>> + Send;
    /// Disconnects the active sessions (disconnected ones are left alone);
    /// `affected` is how many were active.
    fn disconnect_sessions(
        &self,
        destination: &str,
    ) -> impl Future<Output = Result<Affected>> + Send;
    /// Shows `message` to the user of every active session on the
    /// destination; `affected` is how many were shown it.
    fn message_sessions(
        &self,
        destination: &str,
        message: &SessionMessage,
    ) -> impl Future<Output = Result<Affected>> + Send;
    /// Drain mode on: the destination refuses new sessions (except users in
    /// its maintenance `allowed_groups`) until `end_drain` or until it leaves
    /// its last load-balanced pool. `conflict` when another holder drains it.
    fn start_drain(
        &self,
        destination: &str,
        holder: &str,
    ) -> impl Future<Output = Result<Destination>> + Send;
    /// Drain mode off, whoever holds it; a no-op when it is off.
    fn end_drain(&self, destination: &str) -> impl Future<Output = Result<Destination>> + Send;
    fn put_maintenance(
        &self,
        destination: &str,
        body: &Maintenance,
    ) -> impl Future<Output = Result<Destination>> + Send;
    fn delete_maintenance(
        &self,
        destination: &str,
    ) -> impl Future<Output = Result<Destination>> + Send;
    /// Removes a leftover load-balancing service from a destination.
    fn delete_lb_service(
        &self,
        destination: &str,
    ) -> impl Future<Output = Result<Destination>> + Send;
    fn put_app_config(
        &self,
        name: &str,
        body: &AppConfigBody,
        expect: Expect,
    ) -> impl Future<Output = Result<AppConfig>> + Send;
    fn delete_app_config(
        &self,
        name: &str,
        expect: Expect,
    ) -> impl Future<Output = Result<()>> + Send;
    fn put_app_instance(
        &self,
        name: &str,
        body: &AppInstanceBody,
        expect: Expect,
    ) -> impl Future<Output = Result<AppInstance>> + Send;
    fn delete_app_instance(
        &self,
        name: &str,
        expect: Expect,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Takes or renews the lease on `stack`; `conflict` when another holder has it.
    fn put_lock(&self, stack: &str, body: &LockBody) -> impl Future<Output = Result<Lock>> + Send;
    fn delete_lock(&self, stack: &str, holder: &str) -> impl Future<Output = Result<()>> + Send;
}
