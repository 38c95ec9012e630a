//! An in-memory broker for the apply tests: the broker rules apply relies on
//! (offline removal answers `lb_service_uninstall_failed` yet removes the
//! member, disconnecting creates sticky bindings, lease conflicts), a log of
//! every call, scripted failures, and counters that catch overlapping work.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::contract::labels::STACK_LABEL;
use crate::contract::problem::{Problem, codes};
use crate::contract::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Credentials, Destination,
    Event, Labels, LoadBalancing, Lock, LockBody, Maintenance, Pool, PoolBody, SessionCounts,
    SessionState, StickyBinding,
};
use crate::contract::{Broker, BrokerError, LiveState, Result};

/// The stack that owns the fake's pools.
pub const STACK: &str = "corp-rds";

/// Unix time at which the fake's clock starts.
const EPOCH: u64 = 1_800_000_000;

#[derive(Default)]
pub struct State {
    pub destinations: BTreeMap<String, Destination>,
    pub pools: BTreeMap<String, Pool>,
    pub app_configs: BTreeMap<String, AppConfig>,
    pub app_instances: BTreeMap<String, AppInstance>,
    pub sessions: Vec<crate::contract::wire::Session>,
    pub sticky: Vec<StickyBinding>,
    pub locks: BTreeMap<String, Lock>,
    /// Every call as `method arg...`, in the order they started.
    pub calls: Vec<String>,
    /// Answers for calls (by their log text), used once each, before any change.
    pub failures: BTreeMap<String, BrokerError>,
    /// Active sessions end by themselves after this many `list_sessions` calls.
    pub sessions_end_after_lists: Option<usize>,
    pub lists: usize,
    pub in_flight: usize,
    pub max_in_flight: usize,
    busy: BTreeMap<String, usize>,
    /// Destinations that had two calls in flight at once.
    pub overlaps: Vec<String>,
    pub pool_bodies: Vec<PoolBody>,
}

pub struct Fake {
    pub state: Mutex<State>,
    latency: Duration,
    started: Instant,
}

pub fn problem(status: u16, code: &str, online: Option<bool>) -> BrokerError {
    BrokerError::Problem {
        status,
        problem: Box::new(Problem {
            type_uri: "about:blank".to_owned(),
            title: code.to_owned(),
            status,
            code: code.to_owned(),
            detail: None,
            destination_online: online,
            holder: None,
            expires_at: None,
        }),
    }
}

pub fn destination(name: &str, online: bool) -> Destination {
    Destination {
        name: name.to_owned(),
        online,
        process_execution_ready: true,
        lb_service_installed: true,
        maintenance: Maintenance::default(),
        sessions: SessionCounts::default(),
        labels: Labels::new(),
        revision: 1,
    }
}

pub fn pool(name: &str, load_balanced: bool, members: &[&str]) -> Pool {
    Pool {
        name: name.to_owned(),
        load_balancing: LoadBalancing {
            enabled: load_balanced,
            sticky_sessions_minutes: if load_balanced { 10 } else { 0 },
            grace_period_seconds: if load_balanced { 30 } else { 0 },
        },
        default_credentials: Credentials::default(),
        labels: [(STACK_LABEL.to_owned(), STACK.to_owned())].into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        revision: 3,
    }
}

impl Fake {
    /// Every call takes `latency` of (tokio) time, so concurrency is visible.
    pub fn new(latency: Duration) -> Self {
        Fake {
            state: Mutex::new(State::default()),
            latency,
            started: Instant::now(),
        }
    }

    pub fn with(self, f: impl FnOnce(&mut State)) -> Self {
        f(&mut self.state.lock().unwrap());
        self
    }

    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls that change something.
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| !["get_", "list_", "read_"].iter().any(|r| c.starts_with(r)))
            .collect()
    }

    fn now(&self) -> u64 {
        EPOCH + self.started.elapsed().as_secs()
    }

    /// Logs the call, holds it for the latency, and answers a scripted
    /// failure if there is one.
    async fn enter(&self, call: String, destination: Option<&str>) -> Result<()> {
        {
            let mut s = self.state.lock().unwrap();
            s.calls.push(call.clone());
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            if let Some(d) = destination {
                let n = s.busy.entry(d.to_owned()).or_default();
                *n += 1;
                if *n > 1 {
                    s.overlaps.push(d.to_owned());
                }
            }
        }
        tokio::time::sleep(self.latency).await;
        let mut s = self.state.lock().unwrap();
        s.in_flight -= 1;
        if let Some(d) = destination {
            *s.busy.get_mut(d).unwrap() -= 1;
        }
        match s.failures.remove(&call) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn not_found() -> BrokerError {
    problem(404, codes::NOT_FOUND, None)
}

fn with_counts(s: &State, d: &Destination) -> Destination {
    let mut d = d.clone();
    let count = |state| {
        s.sessions
            .iter()
            .filter(|x| x.destination == d.name && x.state == state)
            .count() as u32
    };
    d.sessions = SessionCounts {
        active: count(SessionState::Active),
        disconnected: count(SessionState::Disconnected),
    };
    d
}

impl Broker for Fake {
    async fn read_live(&self) -> Result<LiveState> {
        self.enter("read_live".to_owned(), None).await?;
        let s = self.state.lock().unwrap();
        Ok(LiveState {
            destinations: s
                .destinations
                .values()
                .map(|d| with_counts(&s, d))
                .collect(),
            pools: s.pools.values().cloned().collect(),
            app_configs: s.app_configs.values().cloned().collect(),
            app_instances: s.app_instances.values().cloned().collect(),
        })
    }

    async fn get_destination(&self, name: &str) -> Result<Option<Destination>> {
        self.enter(format!("get_destination {name}"), None).await?;
        let s = self.state.lock().unwrap();
        Ok(s.destinations.get(name).map(|d| with_counts(&s, d)))
    }

    async fn get_pool(&self, name: &str) -> Result<Option<Pool>> {
        self.enter(format!("get_pool {name}"), None).await?;
        Ok(self.state.lock().unwrap().pools.get(name).cloned())
    }

    async fn get_app_config(&self, name: &str) -> Result<Option<AppConfig>> {
        self.enter(format!("get_app_config {name}"), None).await?;
        Ok(self.state.lock().unwrap().app_configs.get(name).cloned())
    }

    async fn get_app_instance(&self, name: &str) -> Result<Option<AppInstance>> {
        self.enter(format!("get_app_instance {name}"), None).await?;
        Ok(self.state.lock().unwrap().app_instances.get(name).cloned())
    }

    async fn list_sessions(
        &self,
        destination: &str,
    ) -> Result<Vec<crate::contract::wire::Session>> {
        self.enter(format!("list_sessions {destination}"), Some(destination))
            .await?;
        let mut s = self.state.lock().unwrap();
        s.lists += 1;
        if s.sessions_end_after_lists.is_some_and(|n| s.lists >= n) {
            s.sessions.retain(|x| x.destination != destination);
        }
        Ok(s.sessions
            .iter()
            .filter(|x| x.destination == destination)
            .cloned()
            .collect())
    }

    async fn events(&self, since: u64) -> Result<Vec<Event>> {
        self.enter(format!("events {since}"), None).await?;
        Ok(Vec::new())
    }

    async fn put_pool(&self, name: &str, body: &PoolBody, _if_match: Option<u64>) -> Result<Pool> {
        self.enter(format!("put_pool {name}"), None).await?;
        let mut s = self.state.lock().unwrap();
        s.pool_bodies.push(body.clone());
        let members = s
            .pools
            .get(name)
            .map(|p| p.members.clone())
            .unwrap_or_default();
        let revision = s.pools.get(name).map_or(1, |p| p.revision + 1);
        let pool = Pool {
            name: name.to_owned(),
            load_balancing: body.load_balancing,
            default_credentials: Credentials {
                username: body.default_credentials.username.clone(),
                password_set: body.default_credentials.password.is_some(),
            },
            labels: body.labels.clone(),
            members,
            revision,
        };
        s.pools.insert(name.to_owned(), pool.clone());
        Ok(pool)
    }

    async fn delete_pool(&self, name: &str, _if_match: Option<u64>) -> Result<()> {
        self.enter(format!("delete_pool {name}"), None).await?;
        let mut s = self.state.lock().unwrap();
        s.pools.remove(name).map(|_| ()).ok_or_else(not_found)
    }

    async fn put_member(&self, pool: &str, destination: &str) -> Result<Pool> {
        self.enter(
            format!("put_member {pool} {destination}"),
            Some(destination),
        )
        .await?;
        let mut s = self.state.lock().unwrap();
        let p = s.pools.get_mut(pool).ok_or_else(not_found)?;
        if !p.members.iter().any(|m| m == destination) {
            p.members.push(destination.to_owned());
            p.members.sort();
            p.revision += 1;
        }
        let answer = p.clone();
        if answer.load_balancing.enabled
            && let Some(d) = s.destinations.get_mut(destination)
        {
            d.lb_service_installed = true;
        }
        Ok(answer)
    }

    async fn delete_member(&self, pool: &str, destination: &str) -> Result<Pool> {
        self.enter(
            format!("delete_member {pool} {destination}"),
            Some(destination),
        )
        .await?;
        let mut s = self.state.lock().unwrap();
        let online = s.destinations.get(destination).is_some_and(|d| d.online);
        let p = s.pools.get_mut(pool).ok_or_else(not_found)?;
        let was_member = p.members.iter().any(|m| m == destination);
        p.members.retain(|m| m != destination);
        p.revision += u64::from(was_member);
        let answer = p.clone();
        if was_member && answer.load_balancing.enabled {
            // The membership goes either way; only a reachable host loses
            // its service.
            if !online {
                return Err(problem(
                    502,
                    codes::LB_SERVICE_UNINSTALL_FAILED,
                    Some(false),
                ));
            }
            if let Some(d) = s.destinations.get_mut(destination) {
                d.lb_service_installed = false;
            }
        }
        Ok(answer)
    }

    async fn clear_sticky(&self, pool: &str, destination: Option<&str>) -> Result<Affected> {
        let target = destination.unwrap_or("*");
        self.enter(format!("clear_sticky {pool} {target}"), destination)
            .await?;
        let mut s = self.state.lock().unwrap();
        let before = s.sticky.len();
        s.sticky
            .retain(|b| !(b.pool == pool && destination.is_none_or(|d| b.destination == d)));
        Ok(Affected {
            affected: (before - s.sticky.len()) as u32,
        })
    }

    async fn disconnect_sessions(&self, destination: &str) -> Result<Affected> {
        self.enter(
            format!("disconnect_sessions {destination}"),
            Some(destination),
        )
        .await?;
        let now = self.now();
        let mut s = self.state.lock().unwrap();
        let mut users = Vec::new();
        for x in &mut s.sessions {
            if x.destination == destination && x.state == SessionState::Active {
                x.state = SessionState::Disconnected;
                users.push(x.user.clone());
            }
        }
        // Disconnected users get a binding back to this host in each sticky pool.
        let sticky_pools: Vec<(String, u64)> = s
            .pools
            .values()
            .filter(|p| {
                p.load_balancing.sticky_sessions_minutes > 0
                    && p.members.iter().any(|m| m == destination)
            })
            .map(|p| {
                let lb = p.load_balancing;
                let period = u64::from(lb.sticky_sessions_minutes) * 60;
                (p.name.clone(), period + u64::from(lb.grace_period_seconds))
            })
            .collect();
        for (pool, period) in sticky_pools {
            for user in &users {
                s.sticky.push(StickyBinding {
                    pool: pool.clone(),
                    user: user.clone(),
                    destination: destination.to_owned(),
                    expires_at: now + period,
                });
            }
        }
        Ok(Affected {
            affected: users.len() as u32,
        })
    }

    async fn put_maintenance(&self, destination: &str, body: &Maintenance) -> Result<Destination> {
        self.enter(format!("put_maintenance {destination}"), Some(destination))
            .await?;
        let mut s = self.state.lock().unwrap();
        let d = s.destinations.get_mut(destination).ok_or_else(not_found)?;
        d.maintenance = body.clone();
        Ok(d.clone())
    }

    async fn delete_maintenance(&self, destination: &str) -> Result<Destination> {
        self.enter(
            format!("delete_maintenance {destination}"),
            Some(destination),
        )
        .await?;
        let mut s = self.state.lock().unwrap();
        let d = s.destinations.get_mut(destination).ok_or_else(not_found)?;
        d.maintenance = Maintenance::default();
        Ok(d.clone())
    }

    async fn delete_lb_service(&self, destination: &str) -> Result<Destination> {
        self.enter(
            format!("delete_lb_service {destination}"),
            Some(destination),
        )
        .await?;
        let mut s = self.state.lock().unwrap();
        let d = s.destinations.get_mut(destination).ok_or_else(not_found)?;
        d.lb_service_installed = false;
        Ok(d.clone())
    }

    async fn put_app_config(
        &self,
        name: &str,
        body: &AppConfigBody,
        _if_match: Option<u64>,
    ) -> Result<AppConfig> {
        self.enter(format!("put_app_config {name}"), None).await?;
        let mut s = self.state.lock().unwrap();
        let revision = s.app_configs.get(name).map_or(1, |c| c.revision + 1);
        let config = AppConfig {
            name: name.to_owned(),
            pool: body.pool.clone(),
            app_type: body.app_type,
            protocol: body.protocol,
            admin_session: body.admin_session,
            keep_credentials_on_destination_change: body.keep_credentials_on_destination_change,
            allow_destination_change: body.allow_destination_change,
            labels: body.labels.clone(),
            revision,
        };
        s.app_configs.insert(name.to_owned(), config.clone());
        Ok(config)
    }

    async fn delete_app_config(&self, name: &str, _if_match: Option<u64>) -> Result<()> {
        self.enter(format!("delete_app_config {name}"), None)
            .await?;
        let mut s = self.state.lock().unwrap();
        s.app_configs.remove(name).map(|_| ()).ok_or_else(not_found)
    }

    async fn put_app_instance(
        &self,
        name: &str,
        body: &AppInstanceBody,
        _if_match: Option<u64>,
    ) -> Result<AppInstance> {
        self.enter(format!("put_app_instance {name}"), None).await?;
        let mut s = self.state.lock().unwrap();
        let revision = s.app_instances.get(name).map_or(1, |i| i.revision + 1);
        let instance = AppInstance {
            name: name.to_owned(),
            app_config: body.app_config.clone(),
            user: body.user.clone(),
            group: body.group.clone(),
            destination: body.destination.clone(),
            labels: body.labels.clone(),
            revision,
        };
        s.app_instances.insert(name.to_owned(), instance.clone());
        Ok(instance)
    }

    async fn delete_app_instance(&self, name: &str, _if_match: Option<u64>) -> Result<()> {
        self.enter(format!("delete_app_instance {name}"), None)
            .await?;
        let mut s = self.state.lock().unwrap();
        s.app_instances
            .remove(name)
            .map(|_| ())
            .ok_or_else(not_found)
    }

    async fn put_lock(&self, stack: &str, body: &LockBody) -> Result<Lock> {
        self.enter(format!("put_lock {stack} {}", body.holder), None)
            .await?;
        let now = self.now();
        let mut s = self.state.lock().unwrap();
        if let Some(held) = s.locks.get(stack)
            && held.holder != body.holder
            && held.expires_at > now
        {
            let BrokerError::Problem {
                status,
                mut problem,
            } = problem(409, codes::CONFLICT, None)
            else {
                unreachable!("problem() builds a problem answer")
            };
            problem.holder = Some(held.holder.clone());
            problem.expires_at = Some(held.expires_at);
            return Err(BrokerError::Problem { status, problem });
        }
        let lock = Lock {
            stack: stack.to_owned(),
            holder: body.holder.clone(),
            expires_at: now + body.ttl_seconds,
        };
        s.locks.insert(stack.to_owned(), lock.clone());
        Ok(lock)
    }

    async fn delete_lock(&self, stack: &str, holder: &str) -> Result<()> {
        self.enter(format!("delete_lock {stack} {holder}"), None)
            .await?;
        let mut s = self.state.lock().unwrap();
        match s.locks.get(stack) {
            Some(l) if l.holder == holder => {
                s.locks.remove(stack);
                Ok(())
            }
            Some(_) => Err(problem(409, codes::CONFLICT, None)),
            None => Err(not_found()),
        }
    }
}
