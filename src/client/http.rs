//! The HTTP backend of the `Broker` trait: reqwest (rustls) with connect and
//! request timeouts, the bearer token kept secret, typed problem errors,
//! conditional writes as `If-Match` / `If-None-Match`, the broker identity
//! read from the answers' header, names checked and percent-encoded per path
//! segment, and retries: whatever the broker says it did not do (429, or 503
//! with Retry-After) on any method, paced as it asks for as long as the run
//! makes progress; other faults with exponential backoff and jitter, for
//! idempotent methods only and within a bounded number of attempts.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::problem::{Problem, codes};
use crate::contract::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, BROKER_ID_HEADER, BrokerInfo,
    Destination, DrainBody, Event, Lock, LockBody, MAX_PAGE_LIMIT, Maintenance, Membership, Page,
    Pool, PoolBody, Session, SessionMessage, Snapshot,
};
use crate::contract::{Broker, BrokerError, Expect, LiveState, Result, Transport, TransportKind};
use crate::contract::{names, page};

/// Environment variable holding the API token when no `--token-file` is given.
pub const TOKEN_ENV: &str = "POOLFORM_TOKEN";

/// How hard to try before giving up on a request. An answer the contract
/// says comes before anything is done (429, or 503 with Retry-After) is
/// retried on any method after the time it names, with no attempt limit: a
/// rate-limited run converges at the rate the broker allows, and gives up
/// only after `max_elapsed` in which no request of the run got through.
/// Other faults (transport errors, 5xx answers that are not domain errors)
/// may come after the broker acted, so only idempotent methods (GET, PUT,
/// DELETE) retry them, within `max_attempts` and `max_elapsed` per request.
/// A policy of one attempt ([`RetryPolicy::none`]) never retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total for one request, the first one included, when
    /// the broker did not say it did nothing; 1 also turns off retries as
    /// told.
    pub max_attempts: u32,
    /// No retry starts once this much time has passed since the first
    /// attempt (a fault) or since any request of the run last got through
    /// (the broker said to come back).
    pub max_elapsed: Duration,
    /// First backoff delay; later ones double, with jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(30),
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// Whole request, body included.
    pub request_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Reads the API token: from `file` when given (trailing newline dropped),
/// else from `POOLFORM_TOKEN`; none when neither is set.
pub fn read_token(file: Option<&Path>) -> Result<Option<SecretString>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BrokerError::Transport(Transport::other(format!(
                "cannot read token file {}: {e}",
                path.display()
            )))
        })?;
        return Ok(Some(SecretString::from(text.trim_end().to_owned())));
    }
    Ok(std::env::var(TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
        .map(SecretString::from))
}

/// A live broker API over HTTP(S).
pub struct HttpBroker {
    base: String,
    client: reqwest::Client,
    /// `Bearer TOKEN`, marked sensitive so that reqwest never logs it.
    authorization: Option<HeaderValue>,
    retry: RetryPolicy,
    requests: AtomicU64,
    retries: AtomicU64,
    /// When a request last got an answer other than "come back later": the
    /// run's progress, which bounds how long retries as told may go on.
    progress: std::sync::Mutex<Instant>,
}

impl std::fmt::Debug for HttpBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBroker")
            .field("base", &self.base)
            .field("token", &self.authorization.as_ref().map(|_| "(sensitive)"))
            .field("retry", &self.retry)
            .finish()
    }
}

/// Problem codes that describe the outcome of the operation rather than a
/// transient fault: retrying would repeat (or, after a partial removal,
/// hide) the answer.
const DOMAIN_5XX_CODES: [&str; 2] = [
    codes::LB_SERVICE_UNINSTALL_FAILED,
    codes::DESTINATION_UNREACHABLE,
];

struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    /// The `Poolform-Broker-Id` header.
    broker_id: Option<String>,
    body: Vec<u8>,
}

/// A whole collection and the identity of the broker that answered it.
struct Listed<T> {
    items: Vec<T>,
    broker_id: String,
}

impl HttpBroker {
    pub fn new(
        base: &str,
        token: Option<SecretString>,
        options: HttpOptions,
    ) -> Result<HttpBroker> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| {
                BrokerError::Transport(Transport::other(format!(
                    "cannot build the HTTP client: {e}"
                )))
            })?;
        let authorization = match token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose_secret()))
                    .map_err(|_| {
                        BrokerError::Transport(Transport::other(
                            "the API token contains invalid characters",
                        ))
                    })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(HttpBroker {
            base: base.trim_end_matches('/').to_owned(),
            client,
            authorization,
            retry: options.retry,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            progress: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Retries made so far (attempts beyond the first of each call).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
        expect: Expect,
    ) -> std::result::Result<Answer, reqwest::Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self.client.request(method.clone(), url);
        if let Some(auth) = &self.authorization {
            request = request.header(header::AUTHORIZATION, auth.clone());
        }
        match expect {
            Expect::Any => {}
            Expect::Revision(rev) => {
                request = request.header(header::IF_MATCH, format!("\"{rev}\""))
            }
            Expect::Absent => request = request.header(header::IF_NONE_MATCH, "*"),
        }
        if let Some(bytes) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(bytes.to_vec());
        }
        let started = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        tracing::debug!(
            %method,
            url,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "broker request"
        );
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let broker_id = response
            .headers()
            .get(BROKER_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // `From` takes over the received buffer where `to_vec` would copy a
        // page of up to megabytes.
        let body = Vec::from(response.bytes().await?);
        Ok(Answer {
            status,
            retry_after,
            broker_id,
            body,
        })
    }

    fn transient(answer: &Answer) -> bool {
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            return true;
        }
        if !answer.status.is_server_error() {
            return false;
        }
        let code = serde_json::from_slice::<Problem>(&answer.body)
            .ok()
            .map(|p| p.code);
        !code.is_some_and(|c| DOMAIN_5XX_CODES.contains(&c.as_str()))
    }

    /// Sends a request, retrying as the policy allows; any non-2xx answer
    /// becomes a typed error except 404 on reads, which callers map to None.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        expect: Expect,
    ) -> Result<Answer> {
        let url = format!("{}{path}", self.base);
        let started = Instant::now();
        let mut backoff = ExponentialBuilder::new()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempt = 1;
        loop {
            let outcome = self
                .send_once(&method, &url, body.as_deref(), expect)
                .await
                .map_err(|e| transport(&method, &url, &e));
            let retry = retry(&method, &outcome);
            if !matches!(retry, Some(Retry::AsTold(_))) && outcome.is_ok() {
                *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            }
            let delay = match retry {
                Some(Retry::AsTold(after)) if self.retry.max_attempts > 1 => {
                    let delay = after.map_or_else(|| backoff.next(), |a| Some(spread(a)));
                    let since =
                        (*self.progress.lock().unwrap_or_else(|e| e.into_inner())).max(started);
                    delay.filter(|d| since.elapsed() + *d <= self.retry.max_elapsed)
                }
                Some(Retry::Fault(after)) if attempt < self.retry.max_attempts => {
                    let backoff = backoff.next().unwrap_or(self.retry.max_delay);
                    let delay = after.map_or(backoff, |a| a.max(backoff));
                    (started.elapsed() + delay <= self.retry.max_elapsed).then_some(delay)
                }
                Some(_) | None => None,
            };
            let Some(delay) = delay else {
                return outcome.map_err(BrokerError::Transport);
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                %method,
                path,
                attempt,
                delay_ms = delay.as_millis() as u64,
                status = outcome.as_ref().ok().map(|a| a.status.as_u16()),
                error = outcome.as_ref().err().map(ToString::to_string),
                "retrying broker request"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn error(method: &Method, path: &str, answer: &Answer) -> BrokerError {
        match serde_json::from_slice::<Problem>(&answer.body) {
            Ok(problem) => BrokerError::Problem {
                status: answer.status.as_u16(),
                problem: Box::new(problem),
            },
            Err(_) => BrokerError::Protocol(format!(
                "{method} {path} answered {} without a problem body",
                answer.status
            )),
        }
    }

    fn decode<T: DeserializeOwned>(method: &Method, path: &str, answer: &Answer) -> Result<T> {
        serde_json::from_slice(&answer.body)
            .map_err(|e| BrokerError::Protocol(format!("{method} {path}: {e}")))
    }

    /// `T` from a 2xx answer, else the typed error.
    fn success<T: DeserializeOwned>(method: &Method, path: &str, answer: &Answer) -> Result<T> {
        if answer.status.is_success() {
            HttpBroker::decode(method, path, answer)
        } else {
            Err(HttpBroker::error(method, path, answer))
        }
    }

    /// A call whose 2xx answer carries `T`.
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        expect: Expect,
    ) -> Result<T> {
        let answer = self.call(method.clone(), path, body, expect).await?;
        HttpBroker::success(&method, path, &answer)
    }

    /// A call whose 2xx answer carries nothing of interest.
    async fn empty(&self, method: Method, path: &str, expect: Expect) -> Result<()> {
        let answer = self.call(method.clone(), path, None, expect).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(HttpBroker::error(&method, path, &answer))
        }
    }

    async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        let answer = self.call(Method::GET, path, None, Expect::Any).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if answer.status.is_success() {
            HttpBroker::decode(&Method::GET, path, &answer).map(Some)
        } else {
            Err(HttpBroker::error(&Method::GET, path, &answer))
        }
    }

    /// Every item of a collection, ceil(N/1000) requests, with the broker
    /// identity every page carried (one broker must answer them all). Each
    /// page is decoded straight into the one list, sized from the first
    /// page's total.
    async fn list_all<T: DeserializeOwned>(&self, path: &str) -> Result<Listed<T>> {
        let mut items = Vec::new();
        let mut broker_id: Option<String> = None;
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit={MAX_PAGE_LIMIT}&cursor={}", names::encode(c)),
                None => format!("{path}?limit={MAX_PAGE_LIMIT}"),
            };
            let answer = self.call(Method::GET, &url, None, Expect::Any).await?;
            if !answer.status.is_success() {
                return Err(HttpBroker::error(&Method::GET, &url, &answer));
            }
            let end = page::decode_into(&answer.body, &mut items)
                .map_err(|e| BrokerError::Protocol(format!("GET {url}: {e}")))?;
            let id = answer.broker_id.ok_or_else(|| {
                BrokerError::Protocol(format!("GET {url} answered without {BROKER_ID_HEADER}"))
            })?;
            broker_id = Some(same_broker(broker_id, id)?);
            match end.next_cursor {
                Some(c) => cursor = Some(c),
                None => {
                    return Ok(Listed {
                        items,
                        broker_id: broker_id.unwrap_or_default(),
                    });
                }
            }
        }
    }

    async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        expect: Expect,
    ) -> Result<T> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BrokerError::Protocol(format!("cannot encode a request: {e}")))?;
        self.json(Method::PUT, path, Some(bytes), expect).await
    }
}

/// The identity of answers so far (`seen`) and of the next one (`next`),
/// which must agree: a read spread over several requests that reached two
/// brokers (a fail-over, a swapped URL) is not one live state.
fn same_broker(seen: Option<String>, next: String) -> Result<String> {
    match seen {
        Some(seen) if seen != next => Err(BrokerError::Protocol(format!(
            "the broker's identity changed during one read ({seen}, then {next})"
        ))),
        _ => Ok(next),
    }
}

/// Why a request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// The broker said it did nothing and (maybe) when to come back: 429,
    /// or 503 with Retry-After. Safe for every method.
    AsTold(Option<Duration>),
    /// A fault that may have come before or after the broker acted; the
    /// answer's Retry-After, if any, is the least wait.
    Fault(Option<Duration>),
}

/// Whether and why `outcome` of a `method` request may be retried; how
/// long and how often is the caller's budget.
fn retry(method: &Method, outcome: &std::result::Result<Answer, Transport>) -> Option<Retry> {
    let told = |a: &Answer| {
        a.status == StatusCode::TOO_MANY_REQUESTS
            || (a.status == StatusCode::SERVICE_UNAVAILABLE && a.retry_after.is_some())
    };
    match outcome {
        Ok(answer) if told(answer) => Some(Retry::AsTold(answer.retry_after)),
        _ if *method == Method::POST => None,
        Err(e) if e.is_transient() => Some(Retry::Fault(None)),
        Err(_) => None,
        Ok(answer) if HttpBroker::transient(answer) => Some(Retry::Fault(answer.retry_after)),
        Ok(_) => None,
    }
}

/// The broker's Retry-After plus up to half of it again at random, so that
/// the requests it turned away do not all come back in the same instant.
fn spread(after: Duration) -> Duration {
    after.mul_f64(1.0 + rand::random::<f64>() / 2.0)
}

/// `name` as a URL path segment or query value: percent-encoded, and
/// refused before anything is sent when it is not a name at all (`..`
/// would climb out of its path, `""` would address the collection).
fn seg(name: &str) -> Result<String> {
    if names::is_valid(name) {
        Ok(names::encode(name))
    } else {
        Err(BrokerError::InvalidName(name.to_owned()))
    }
}

/// A request that got no answer, classified by its cause so that the
/// message can say what to do and the retry policy what can pass.
fn transport(method: &Method, url: &str, error: &reqwest::Error) -> Transport {
    let mut causes = Vec::new();
    let mut refused = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        let text = e.to_string();
        if !causes.iter().any(|c: &String| c.contains(&text)) {
            causes.push(text);
        }
        source = e.source();
    }
    // reqwest's own line repeats the URL; the causes say what happened.
    let detail = causes.get(1..).unwrap_or_default().join(": ");
    let kind = if error.is_timeout() {
        TransportKind::Timeout
    } else {
        kind_of(refused, &detail)
    };
    let detail = if detail.is_empty() {
        causes.join(": ")
    } else {
        detail
    };
    Transport {
        kind,
        message: format!("{method} {url}: {detail}"),
    }
}

/// The kind of a connection failure from its causes' words (hyper and
/// rustls give no typed errors for these through reqwest).
fn kind_of(refused: bool, causes: &str) -> TransportKind {
    let lower = causes.to_lowercase();
    if refused || lower.contains("connection refused") {
        TransportKind::Refused
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
    {
        TransportKind::Dns
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        TransportKind::Tls
    } else if lower.contains("timed out") {
        TransportKind::Timeout
    } else {
        TransportKind::Other
    }
}

impl Broker for HttpBroker {
    async fn identity(&self) -> Result<String> {
        let info: BrokerInfo = self
            .json(Method::GET, "/v1/broker", None, Expect::Any)
            .await?;
        Ok(info.id)
    }

    async fn read_live(&self) -> Result<LiveState> {
        let (destinations, pools, app_configs, app_instances) = tokio::try_join!(
            self.list_all::<Destination>("/v1/destinations"),
            self.list_all::<Pool>("/v1/pools"),
            self.list_all::<AppConfig>("/v1/app-configs"),
            self.list_all::<AppInstance>("/v1/app-instances"),
        )?;
        let mut identity = same_broker(None, destinations.broker_id)?;
        for id in [
            pools.broker_id,
            app_configs.broker_id,
            app_instances.broker_id,
        ] {
            identity = same_broker(Some(identity), id)?;
        }
        Ok(LiveState {
            identity,
            destinations: destinations.items,
            pools: pools.items,
            app_configs: app_configs.items,
            app_instances: app_instances.items,
        })
    }

    async fn get_destination(&self, name: &str) -> Result<Option<Destination>> {
        self.get_opt(&format!("/v1/destinations/{}", seg(name)?))
            .await
    }

    async fn get_pool(&self, name: &str) -> Result<Option<Pool>> {
        self.get_opt(&format!("/v1/pools/{}", seg(name)?)).await
    }

    async fn get_app_config(&self, name: &str) -> Result<Option<AppConfig>> {
        self.get_opt(&format!("/v1/app-configs/{}", seg(name)?))
            .await
    }

    async fn get_app_instance(&self, name: &str) -> Result<Option<AppInstance>> {
        self.get_opt(&format!("/v1/app-instances/{}", seg(name)?))
            .await
    }

    async fn list_sessions(&self, destination: &str) -> Result<Vec<Session>> {
        self.list_all(&format!("/v1/destinations/{}/sessions", seg(destination)?))
            .await
            .map(|listed| listed.items)
    }

    async fn events(&self, since: u64) -> Result<Vec<Event>> {
        let mut events: Vec<Event> = Vec::new();
        let mut since = since;
        loop {
            let path = format!("/v1/events?since={since}&limit={MAX_PAGE_LIMIT}");
            let page: Page<Event> = self.json(Method::GET, &path, None, Expect::Any).await?;
            let more = page.next_cursor.is_some();
            if let Some(last) = page.items.last() {
                since = last.seq;
            }
            events.extend(page.items);
            if !more {
                return Ok(events);
            }
        }
    }

    async fn read_snapshot(&self) -> Result<Snapshot> {
        self.json(Method::GET, "/v1/snapshot", None, Expect::Any)
            .await
    }

    async fn put_pool(&self, name: &str, body: &PoolBody, expect: Expect) -> Result<Pool> {
        self.put(&format!("/v1/pools/{}", seg(name)?), body, expect)
            .await
    }

    async fn delete_pool(&self, name: &str, expect: Expect) -> Result<()> {
        self.empty(Method::DELETE, &format!("/v1/pools/{}", seg(name)?), expect)
            .await
    }

    async fn put_member(&self, pool: &str, destination: &str) -> Result<Membership> {
        let path = format!("/v1/pools/{}/members/{}", seg(pool)?, seg(destination)?);
        self.json(Method::PUT, &path, None, Expect::Any).await
    }

    async fn delete_member(&self, pool: &str, destination: &str) -> Result<Membership> {
        let path = format!("/v1/pools/{}/members/{}", seg(pool)?, seg(destination)?);
        self.json(Method::DELETE, &path, None, Expect::Any).await
    }

    async fn clear_sticky(&self, pool: &str, destination: Option<&str>) -> Result<Affected> {
        let path = match destination {
            Some(d) => format!(
                "/v1/pools/{}/sticky-sessions?destination={}",
                seg(pool)?,
                seg(d)?
            ),
            None => format!("/v1/pools/{}/sticky-sessions", seg(pool)?),
        };
        self.json(Method::DELETE, &path, None, Expect::Any).await
    }

    async fn disconnect_sessions(&self, destination: &str) -> Result<Affected> {
        let path = format!("/v1/destinations/{}/sessions/disconnect", seg(destination)?);
        self.json(Method::POST, &path, None, Expect::Any).await
    }

    /// A POST, so retried only when the broker says it did not act: a
    /// notice shown twice would tell users the lead time started again.
    async fn message_sessions(
        &self,
        destination: &str,
        message: &SessionMessage,
    ) -> Result<Affected> {
        let path = format!("/v1/destinations/{}/sessions/message", seg(destination)?);
        let bytes = serde_json::to_vec(message)
            .map_err(|e| BrokerError::Protocol(format!("cannot encode a request: {e}")))?;
        self.json(Method::POST, &path, Some(bytes), Expect::Any)
            .await
    }

    async fn put_maintenance(&self, destination: &str, body: &Maintenance) -> Result<Destination> {
        let path = format!("/v1/destinations/{}/maintenance", seg(destination)?);
        self.put(&path, body, Expect::Any).await
    }

    async fn delete_maintenance(&self, destination: &str) -> Result<Destination> {
        let path = format!("/v1/destinations/{}/maintenance", seg(destination)?);
        self.json(Method::DELETE, &path, None, Expect::Any).await
    }

    async fn start_drain(&self, destination: &str, holder: &str) -> Result<Destination> {
        let path = format!("/v1/destinations/{}/drain", seg(destination)?);
        let body = DrainBody {
            holder: holder.to_owned(),
        };
        self.put(&path, &body, Expect::Any).await
    }

    async fn end_drain(&self, destination: &str) -> Result<Destination> {
        let path = format!("/v1/destinations/{}/drain", seg(destination)?);
        self.json(Method::DELETE, &path, None, Expect::Any).await
    }

    async fn delete_lb_service(&self, destination: &str) -> Result<Destination> {
        let path = format!("/v1/destinations/{}/lb-service", seg(destination)?);
        self.json(Method::DELETE, &path, None, Expect::Any).await
    }

    async fn put_app_config(
        &self,
        name: &str,
        body: &AppConfigBody,
        expect: Expect,
    ) -> Result<AppConfig> {
        self.put(&format!("/v1/app-configs/{}", seg(name)?), body, expect)
            .await
    }

    async fn delete_app_config(&self, name: &str, expect: Expect) -> Result<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/app-configs/{}", seg(name)?),
            expect,
        )
        .await
    }

    async fn put_app_instance(
        &self,
        name: &str,
        body: &AppInstanceBody,
        expect: Expect,
    ) -> Result<AppInstance> {
        self.put(&format!("/v1/app-instances/{}", seg(name)?), body, expect)
            .await
    }

    async fn delete_app_instance(&self, name: &str, expect: Expect) -> Result<()> {
        self.empty(
            Method::DELETE,
            &format!("/v1/app-instances/{}", seg(name)?),
            expect,
        )
        .await
    }

    async fn put_lock(&self, stack: &str, body: &LockBody) -> Result<Lock> {
        self.put(&format!("/v1/locks/{}", seg(stack)?), body, Expect::Any)
            .await
    }

    async fn delete_lock(&self, stack: &str, holder: &str) -> Result<()> {
        let path = format!("/v1/locks/{}?holder={}", seg(stack)?, names::encode(holder));
        self.empty(Method::DELETE, &path, Expect::Any).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let broker = HttpBroker::new(
            "http://127.0.0.1:9",
            Some(SecretString::from("s3cret-token".to_owned())),
            HttpOptions::default(),
        )
        .unwrap();
        let text = format!("{broker:?}");
        assert!(!text.contains("s3cret-token"), "{text}");
        assert!(text.contains("(sensitive)"));
    }

    #[test]
    fn a_token_file_wins_and_loses_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let token = read_token(Some(&file)).unwrap().unwrap();
        assert_eq!(token.expose_secret(), "from-file");
        assert!(read_token(Some(&dir.path().join("missing"))).is_err());
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            broker_id: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn failures_are_told_apart_by_their_causes() {
        let cases = [
            (
                "client error (Connect): tcp connect error: Connection refused (os error 111)",
                TransportKind::Refused,
            ),
            (
                "client error (Connect): dns error: failed to lookup address information: Name or service not known",
                TransportKind::Dns,
            ),
            (
                "client error (Connect): invalid peer certificate: UnknownIssuer",
                TransportKind::Tls,
            ),
            (
                "client error (Connect): received corrupt message of type InvalidContentType",
                TransportKind::Other,
            ),
            (
                "client error (SendRequest): connection closed before message completed",
                TransportKind::Other,
            ),
        ];
        for (causes, kind) in cases {
            assert_eq!(kind_of(false, causes), kind, "{causes}");
        }
        assert_eq!(kind_of(true, ""), TransportKind::Refused);
    }

    #[test]
    fn domain_errors_are_not_transient() {
        assert!(HttpBroker::transient(&answer(503, "")));
        assert!(HttpBroker::transient(&answer(429, "")));
        assert!(!HttpBroker::transient(&answer(409, "")));
        let partial = r#"{"title":"x","status":502,"code":"lb_service_uninstall_failed"}"#;
        assert!(!HttpBroker::transient(&answer(502, partial)));
    }

    #[test]
    fn what_the_broker_says_it_did_not_do_is_retried_on_any_method() {
        let told = |status: u16, after: Option<u64>| Answer {
            retry_after: after.map(Duration::from_secs),
            ..answer(status, "")
        };
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::POST] {
            assert_eq!(
                retry(&method, &Ok(told(429, Some(2)))),
                Some(Retry::AsTold(Some(Duration::from_secs(2))))
            );
            assert_eq!(
                retry(&method, &Ok(told(429, None))),
                Some(Retry::AsTold(None))
            );
            assert_eq!(
                retry(&method, &Ok(told(503, Some(1)))),
                Some(Retry::AsTold(Some(Duration::from_secs(1))))
            );
            assert_eq!(retry(&method, &Ok(told(409, Some(1)))), None);
        }
        assert_eq!(
            retry(&Method::POST, &Ok(told(503, None))),
            None,
            "may have been done"
        );
        assert_eq!(
            retry(&Method::PUT, &Ok(told(503, None))),
            Some(Retry::Fault(None))
        );
        let partial = r#"{"title":"x","status":502,"code":"lb_service_uninstall_failed"}"#;
        assert_eq!(retry(&Method::DELETE, &Ok(answer(502, partial))), None);
    }

    #[test]
    fn waits_as_told_are_spread_over_half_the_wait_again() {
        for _ in 0..100 {
            let wait = spread(Duration::from_secs(2));
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_secs(3));
        }
    }

    /// A URL parser removes a `.` or `..` segment even percent-encoded, so
    /// no encoding can carry such a name: the client refuses it.
    #[tokio::test]
    async fn dot_segments_cannot_be_sent_so_they_are_refused_unsent() {
        let url = reqwest::Url::parse("http://broker/v1/pools/%2E%2E").unwrap();
        assert_eq!(url.path(), "/v1/");
        let broker = HttpBroker::new("http://127.0.0.1:9", None, HttpOptions::default()).unwrap();
        for name in ["..", ".", "", "a/b"] {
            let err = broker.delete_member("live", name).await.unwrap_err();
            assert!(
                matches!(&err, BrokerError::InvalidName(n) if n == name),
                "{err}"
            );
        }
        let err = broker.get_pool("..").await.unwrap_err();
        assert!(err.to_string().contains("nothing was sent"), "{err}");
        assert_eq!(broker.requests(), 0);
    }

    #[test]
    fn one_read_must_reach_one_broker() {
        assert_eq!(same_broker(None, "a".into()).unwrap(), "a");
        assert_eq!(same_broker(Some("a".into()), "a".into()).unwrap(), "a");
        let err = same_broker(Some("a".into()), "b".into()).unwrap_err();
        assert!(matches!(err, BrokerError::Protocol(_)), "{err}");
    }

    #[tokio::test]
    async fn connect_errors_are_retried_within_the_bounds() {
        // Bound but never listening: connecting is refused, and the port
        // stays ours for the whole test (a dropped listener frees it for
        // any other process, which may then answer).
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let broker = HttpBroker::new(
            &format!("http://{addr}"),
            None,
            HttpOptions {
                retry: RetryPolicy {
                    max_attempts: 3,
                    max_elapsed: Duration::from_secs(60),
                    min_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(5),
                },
                ..HttpOptions::default()
            },
        )
        .unwrap();
        let err = broker.get_pool("live").await.unwrap_err();
        assert!(
            matches!(&err, BrokerError::Transport(t) if t.kind == TransportKind::Refused),
            "{err:?}"
        );
        assert!(err.to_string().contains("connection refused"), "{err}");
        assert_eq!((broker.requests(), broker.retries()), (3, 2));
        broker.disconnect_sessions("rds-01").await.unwrap_err();
        assert_eq!(broker.retries(), 2, "POST is never retried");
    }
}
