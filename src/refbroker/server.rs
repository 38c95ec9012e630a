//! The reference broker's HTTP face: the route table (the one list of
//! operations, which the OpenAPI test compares against the spec), bearer
//! auth, problem+json errors, request limits, the broker's identity on every
//! answer, and the simulation controls (latency, injected 503s, rate
//! limiting, request statistics; the `/v1/_sim` handlers are in `sim`).
//! What a request may carry (bodies, names, conditions) is checked in
//! `input` before any handler runs. Every handler is a thin translation
//! onto one engine method.

mod input;
mod sim;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::contract::problem::{self, Problem, codes};
use crate::contract::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, BROKER_ID_HEADER, BrokerInfo,
    Destination, DrainBody, Lock, LockBody, MAX_PAGE_LIMIT, Maintenance, Membership, Page, Pool,
    PoolBody, SessionMessage,
};

use super::engine::{self, Engine};
use super::store::{Store, now_ms};
use input::{Body, Name, P, Q, expect};
use sim::{sim_destination, sim_end_session, sim_power, sim_session, sim_stats};

pub use sim::{SimDestination, SimPower, SimSession};

/// Largest request body; bigger ones get 413 before any parsing.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Page size when a list request names none.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// Knobs of `poolform broker serve` beyond where the state lives.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The bearer token every request must carry.
    pub token: SecretString,
    /// Added before every request is handled.
    pub latency: Duration,
    /// Share of requests answered 503 before anything is done (0.0-1.0).
    pub fail_rate: f64,
    /// Requests per second admitted; the rest get 429 with Retry-After.
    pub rate_limit: Option<u32>,
    /// Seed of the random source behind `fail_rate`, for repeatable runs.
    pub random_seed: Option<u64>,
}

/// Per-route request counts and injected failures (`GET /v1/_sim/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub total: u64,
    /// "METHOD /route/{param}" → requests received.
    pub requests: BTreeMap<String, u64>,
    /// Answered 503 by `--fail-rate`.
    pub injected_unavailable: u64,
    /// Answered 429 by `--rate-limit`.
    pub rate_limited: u64,
    pub unauthorized: u64,
}

struct TokenBucket {
    tokens: f64,
    last: Instant,
}

struct Sim {
    options: ServeOptions,
    rng: Mutex<StdRng>,
    bucket: Mutex<TokenBucket>,
    stats: Mutex<Stats>,
}

#[derive(Clone)]
struct App {
    store: Arc<Store>,
    sim: Arc<Sim>,
}

/// A problem answer (`application/problem+json`).
pub struct ApiError(pub Box<Problem>);

impl From<Box<Problem>> for ApiError {
    fn from(p: Box<Problem>) -> Self {
        ApiError(p)
    }
}

/// Seconds a client is told to wait after a 503: every 503 this broker
/// answers means nothing was done (an injected fault before the handler, or
/// a write rolled back because it could not be persisted), and Retry-After
/// is how the contract says that any method may be sent again.
const UNAVAILABLE_RETRY_AFTER: u64 = 1;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).expect("problem serialises");
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_AFTER),
            );
        }
        response
    }
}

type Answer = Result<Response, ApiError>;

fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError(problem::new(400, codes::BAD_REQUEST, detail))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_LIMIT),
            Some(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(bad_request(format!(
                "limit {n} is not in 1..={MAX_PAGE_LIMIT}"
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    since: Option<u64>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StickyQuery {
    destination: Option<Name>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockQuery {
    holder: String,
}

fn json(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("wire types serialise")
}

/// A single resource with its revision as ETag.
fn resource<T: Serialize>(revision: u64, value: &T) -> Response {
    let mut response = json(StatusCode::OK, to_json(value));
    response.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{revision}\"")).expect("digits are a valid header"),
    );
    response
}

/// How an engine result becomes an HTTP answer: a resource with its
/// revision as ETag, an empty 204, or a plain JSON body.
trait Reply {
    fn reply(&self) -> Response;
}

macro_rules! reply_as_resource {
    ($($t:ty),*) => {$(
        impl Reply for $t {
            fn reply(&self) -> Response {
                resource(self.revision, self)
            }
        }
    )*};
}

// A membership's ETag is its pool's revision, as it is the pool that changed.
reply_as_resource!(Destination, Pool, Membership, AppConfig, AppInstance);

macro_rules! reply_as_json {
    ($($t:ty),*) => {$(
        impl Reply for $t {
            fn reply(&self) -> Response {
                json(StatusCode::OK, to_json(self))
            }
        }
    )*};
}

reply_as_json!(Affected, Lock, BrokerInfo);

impl Reply for () {
    fn reply(&self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// Runs one engine mutation (persisted before the answer) and answers it.
async fn write<T: Reply + Send + 'static>(
    app: &App,
    f: impl FnOnce(&mut Engine) -> engine::Result<T> + Send + 'static,
) -> Answer {
    Ok(app.store.mutate(f).await?.reply())
}

/// One page of a collection.
fn listed<T: Serialize>(
    app: &App,
    q: &ListQuery,
    page: impl for<'e> FnOnce(&'e Engine, Option<&str>, usize) -> Page<&'e T>,
) -> Answer {
    let limit = q.limit()?;
    let bytes = app
        .store
        .read(|e| to_json(&page(e, q.cursor.as_deref(), limit)));
    Ok(json(StatusCode::OK, bytes))
}

/// One resource by name, or a 404 naming its kind.
fn got<T: Reply>(
    app: &App,
    kind: &str,
    name: &str,
    find: impl FnOnce(&Engine) -> Option<&T>,
) -> Answer {
    app.store
        .read(|e| find(e).map(Reply::reply))
        .ok_or_else(|| {
            ApiError(problem::new(
                404,
                codes::NOT_FOUND,
                format!("{kind} {name} does not exist"),
            ))
        })
}

// ----- handlers: reads -----

async fn list_destinations(State(app): State<App>, Q(q): Q<ListQuery>) -> Answer {
    listed(&app, &q, Engine::destinations_page)
}

async fn list_pools(State(app): State<App>, Q(q): Q<ListQuery>) -> Answer {
    listed(&app, &q, Engine::pools_page)
}

async fn list_app_configs(State(app): State<App>, Q(q): Q<ListQuery>) -> Answer {
    listed(&app, &q, Engine::app_configs_page)
}

async fn list_app_instances(State(app): State<App>, Q(q): Q<ListQuery>) -> Answer {
    listed(&app, &q, Engine::app_instances_page)
}

async fn list_sessions(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    Q(q): Q<ListQuery>,
) -> Answer {
    let limit = q.limit()?;
    let bytes = app.store.read(|e| {
        e.sessions_page(&name, q.cursor.as_deref(), limit)
            .map(|p| to_json(&p))
    })?;
    Ok(json(StatusCode::OK, bytes))
}

async fn get_destination(State(app): State<App>, P(Name(name)): P<Name>) -> Answer {
    got(&app, "destination", &name, |e| e.destination(&name))
}

async fn get_pool(State(app): State<App>, P(Name(name)): P<Name>) -> Answer {
    got(&app, "pool", &name, |e| e.pool(&name))
}

async fn get_app_config(State(app): State<App>, P(Name(name)): P<Name>) -> Answer {
    got(&app, "app config", &name, |e| e.app_config(&name))
}

async fn get_app_instance(State(app): State<App>, P(Name(name)): P<Name>) -> Answer {
    got(&app, "app instance", &name, |e| e.app_instance(&name))
}

async fn get_events(State(app): State<App>, Q(q): Q<EventsQuery>) -> Answer {
    let limit = ListQuery {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    // An empty cursor is the first page, as it is for every other list.
    let since = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => c
            .parse()
            .map_err(|_| bad_request(format!("cursor {c:?} is not an event sequence")))?,
        None => q.since.unwrap_or(0),
    };
    Ok(json(
        StatusCode::OK,
        app.store.read(|e| to_json(&e.events_page(since, limit))),
    ))
}

async fn get_broker(State(app): State<App>) -> Answer {
    let id = app.store.read(|e| e.id().to_owned());
    Ok(BrokerInfo { id }.reply())
}

async fn get_snapshot(State(app): State<App>) -> Answer {
    let now = now_ms();
    Ok(json(
        StatusCode::OK,
        app.store.read(|e| to_json(&e.snapshot(now))),
    ))
}

// ----- handlers: writes -----

async fn put_maintenance(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    headers: HeaderMap,
    Body(body): Body<Maintenance>,
) -> Answer {
    let expect = expect(&headers)?;
    write(&app, move |e| e.put_maintenance(&name, body, expect)).await
}

async fn delete_maintenance(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    headers: HeaderMap,
) -> Answer {
    let expect = expect(&headers)?;
    write(&app, move |e| e.delete_maintenance(&name, expect)).await
}

async fn put_drain(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    Body(body): Body<DrainBody>,
) -> Answer {
    write(&app, move |e| e.start_drain(&name, &body.holder)).await
}

async fn delete_drain(State(app): State<App>, P(Name(name)): P<Name>) -> Answer {
    write(&app, move |e| e.end_drain(&name)).await
}

async fn disconnect_sessions(State(app): State<App>, P(Name(name)): P<Name>) -> Answer {
    write(&app, move |e| e.disconnect_sessions(&name)).await
}

async fn message_sessions(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    Body(body): Body<SessionMessage>,
) -> Answer {
    write(&app, move |e| e.message_sessions(&name, &body)).await
}

async fn delete_lb_service(State(app): State<App>, P(Name(name)): P<Name>) -> Answer {
    write(&app, move |e| e.delete_lb_service(&name)).await
}

async fn put_pool(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    headers: HeaderMap,
    Body(body): Body<PoolBody>,
) -> Answer {
    let expect = expect(&headers)?;
    write(&app, move |e| e.put_pool(&name, body, expect)).await
}

async fn delete_pool(State(app): State<App>, P(Name(name)): P<Name>, headers: HeaderMap) -> Answer {
    let expect = expect(&headers)?;
    write(&app, move |e| e.delete_pool(&name, expect)).await
}

async fn put_member(
    State(app): State<App>,
    P((Name(pool), Name(dest))): P<(Name, Name)>,
) -> Answer {
    write(&app, move |e| e.put_member(&pool, &dest)).await
}

async fn delete_member(
    State(app): State<App>,
    P((Name(pool), Name(dest))): P<(Name, Name)>,
) -> Answer {
    write(&app, move |e| e.delete_member(&pool, &dest)).await
}

async fn clear_sticky(
    State(app): State<App>,
    P(Name(pool)): P<Name>,
    Q(q): Q<StickyQuery>,
) -> Answer {
    write(&app, move |e| {
        e.clear_sticky(&pool, q.destination.as_ref().map(|Name(d)| d.as_str()))
    })
    .await
}

async fn put_app_config(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    headers: HeaderMap,
    Body(body): Body<AppConfigBody>,
) -> Answer {
    let expect = expect(&headers)?;
    write(&app, move |e| e.put_app_config(&name, body, expect)).await
}

async fn delete_app_config(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    headers: HeaderMap,
) -> Answer {
    let expect = expect(&headers)?;
    write(&app, move |e| e.delete_app_config(&name, expect)).await
}

async fn put_app_instance(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    headers: HeaderMap,
    Body(body): Body<AppInstanceBody>,
) -> Answer {
    let expect = expect(&headers)?;
    write(&app, move |e| e.put_app_instance(&name, body, expect)).await
}

async fn delete_app_instance(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    headers: HeaderMap,
) -> Answer {
    let expect = expect(&headers)?;
    write(&app, move |e| e.delete_app_instance(&name, expect)).await
}

async fn put_lock(
    State(app): State<App>,
    P(Name(stack)): P<Name>,
    Body(body): Body<LockBody>,
) -> Answer {
    write(&app, move |e| e.put_lock(&stack, body)).await
}

async fn delete_lock(
    State(app): State<App>,
    P(Name(stack)): P<Name>,
    Q(q): Q<LockQuery>,
) -> Answer {
    write(&app, move |e| e.delete_lock(&stack, &q.holder)).await
}

// ----- the route table -----

struct Route {
    method: Method,
    path: &'static str,
    handler: MethodRouter<App>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<App>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every operation the server answers. The router is built from this list
/// and the OpenAPI test compares it with the spec, so the two cannot drift.
fn route_table() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/v1/destinations", get(list_destinations)),
        route(M::GET, "/v1/destinations/{name}", get(get_destination)),
        route(
            M::PUT,
            "/v1/destinations/{name}/maintenance",
            put(put_maintenance),
        ),
        route(
            M::DELETE,
            "/v1/destinations/{name}/maintenance",
            delete(delete_maintenance),
        ),
        route(M::PUT, "/v1/destinations/{name}/drain", put(put_drain)),
        route(
            M::DELETE,
            "/v1/destinations/{name}/drain",
            delete(delete_drain),
        ),
        route(
            M::GET,
            "/v1/destinations/{name}/sessions",
            get(list_sessions),
        ),
        route(
            M::POST,
            "/v1/destinations/{name}/sessions/disconnect",
            post(disconnect_sessions),
        ),
        route(
            M::POST,
            "/v1/destinations/{name}/sessions/message",
            post(message_sessions),
        ),
        route(
            M::DELETE,
            "/v1/destinations/{name}/lb-service",
            delete(delete_lb_service),
        ),
        route(M::GET, "/v1/pools", get(list_pools)),
        route(M::GET, "/v1/pools/{name}", get(get_pool)),
        route(M::PUT, "/v1/pools/{name}", put(put_pool)),
        route(M::DELETE, "/v1/pools/{name}", delete(delete_pool)),
        route(
            M::PUT,
            "/v1/pools/{name}/members/{destination}",
            put(put_member),
        ),
        route(
            M::DELETE,
            "/v1/pools/{name}/members/{destination}",
            delete(delete_member),
        ),
        route(
            M::DELETE,
            "/v1/pools/{name}/sticky-sessions",
            delete(clear_sticky),
        ),
        route(M::GET, "/v1/app-configs", get(list_app_configs)),
        route(M::GET, "/v1/app-configs/{name}", get(get_app_config)),
        route(M::PUT, "/v1/app-configs/{name}", put(put_app_config)),
        route(
            M::DELETE,
            "/v1/app-configs/{name}",
            delete(delete_app_config),
        ),
        route(M::GET, "/v1/app-instances", get(list_app_instances)),
        route(M::GET, "/v1/app-instances/{name}", get(get_app_instance)),
        route(M::PUT, "/v1/app-instances/{name}", put(put_app_instance)),
        route(
            M::DELETE,
            "/v1/app-instances/{name}",
            delete(delete_app_instance),
        ),
        route(M::PUT, "/v1/locks/{stack}", put(put_lock)),
        route(M::DELETE, "/v1/locks/{stack}", delete(delete_lock)),
        route(M::GET, "/v1/events", get(get_events)),
        route(M::GET, "/v1/snapshot", get(get_snapshot)),
        route(M::GET, "/v1/broker", get(get_broker)),
        route(M::POST, "/v1/_sim/destinations", post(sim_destination)),
        route(
            M::POST,
            "/v1/_sim/destinations/{name}/power",
            post(sim_power),
        ),
        route(
            M::POST,
            "/v1/_sim/destinations/{name}/sessions",
            post(sim_session),
        ),
        route(M::POST, "/v1/_sim/sessions/{id}/end", post(sim_end_session)),
        route(M::GET, "/v1/_sim/stats", get(sim_stats)),
    ]
}

/// `(method, path)` of every operation, lower-case method as in OpenAPI.
pub fn operations() -> Vec<(String, &'static str)> {
    route_table()
        .into_iter()
        .map(|r| (r.method.as_str().to_ascii_lowercase(), r.path))
        .collect()
}

// ----- cross-cutting: stats, injected failures, latency, auth -----

impl Sim {
    fn count(&self, route: String) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.total += 1;
        *stats.requests.entry(route).or_default() += 1;
    }

    fn bump(&self, which: fn(&mut Stats) -> &mut u64) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        *which(&mut stats) += 1;
    }

    /// Seconds to wait when the bucket is empty, else takes a token.
    fn rate_limited(&self, per_second: u32) -> Option<u64> {
        let rate = f64::from(per_second.max(1));
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.last).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    fn inject_failure(&self) -> bool {
        self.options.fail_rate > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .random::<f64>()
                < self.options.fail_rate
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        constant_time_eq(
            presented.as_bytes(),
            self.options.token.expose_secret().as_bytes(),
        )
    }
}

/// Compares without an early exit, so response timing does not reveal how
/// much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs before every handler, in this order: count, rate limit, injected
/// 503, latency, auth. Faults come first so that a faulted request has done
/// nothing and retrying it is safe. The simulation controls are exempt from
/// faults: tests must be able to steer and observe a faulty broker.
async fn gate(State(app): State<App>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", |m| m.as_str())
        .to_owned();
    let is_sim = route.starts_with("/v1/_sim/");
    app.sim.count(format!("{} {route}", req.method()));
    if !is_sim {
        if let Some(per_second) = app.sim.options.rate_limit
            && let Some(wait) = app.sim.rate_limited(per_second)
        {
            app.sim.bump(|s| &mut s.rate_limited);
            let mut response = ApiError(problem::new(
                429,
                codes::RATE_LIMITED,
                format!("more than {per_second} requests per second"),
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return response;
        }
        if app.sim.inject_failure() {
            app.sim.bump(|s| &mut s.injected_unavailable);
            return ApiError(problem::new(
                503,
                codes::UNAVAILABLE,
                "injected failure (--fail-rate)",
            ))
            .into_response();
        }
    }
    if !app.sim.options.latency.is_zero() {
        tokio::time::sleep(app.sim.options.latency).await;
    }
    if !app.sim.authorised(req.headers()) {
        app.sim.bump(|s| &mut s.unauthorized);
        let mut response = ApiError(problem::new(
            401,
            codes::UNAUTHORIZED,
            "send Authorization: Bearer TOKEN",
        ))
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(req).await
}

async fn no_route() -> ApiError {
    ApiError(problem::new(404, codes::NOT_FOUND, "no such path"))
}

async fn wrong_method() -> ApiError {
    ApiError(problem::new(
        405,
        codes::BAD_REQUEST,
        "method not allowed on this path",
    ))
}

/// Stamps every answer, problems and simulation answers included, with the
/// broker's identity.
async fn identify(State(id): State<HeaderValue>, mut response: Response) -> Response {
    response.headers_mut().insert(BROKER_ID_HEADER, id);
    response
}

/// The complete application: routes from the table, limits, the gate, and
/// the identity header.
pub fn router(store: Arc<Store>, options: ServeOptions) -> Router {
    let id = HeaderValue::from_str(&store.read(|e| e.id().to_owned()))
        .expect("a minted id is hex, a valid header value");
    let rng = match options.random_seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => rand::make_rng(),
    };
    let burst = f64::from(options.rate_limit.unwrap_or(1));
    let app = App {
        store,
        sim: Arc::new(Sim {
            options,
            rng: Mutex::new(rng),
            bucket: Mutex::new(TokenBucket {
                tokens: burst,
                last: Instant::now(),
            }),
            stats: Mutex::new(Stats::default()),
        }),
    };
    let mut router = Router::new();
    for r in route_table() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(app.clone(), gate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response_with_state(id, identify))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once() {
        let ops = operations();
        let mut unique = ops.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ops.len());
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
