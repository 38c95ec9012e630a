//! The `Broker` trait answered by the engine in-process, written once for
//! every in-process host of the engine (the embedded broker, which persists
//! each change to its state file, and the recording broker, which runs on a
//! virtual clock and logs every call). Each trait method names its call and
//! the engine method that answers it; a host only decides how the engine is
//! reached.

use std::fmt;
use std::future::Future;

use super::engine::{self, Engine};
use crate::contract::problem::Problem;
use crate::contract::wire::{
    Affected, AppConfig, AppConfigBody, AppInstance, AppInstanceBody, Destination, Event, Lock,
    LockBody, Maintenance, Membership, Pool, PoolBody, Session, SessionMessage, Snapshot,
};
use crate::contract::{Broker, BrokerError, Expect, LiveState, Result};

/// A `Broker` method, as a value: what a call log records and a scripted
/// fault matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Identity,
    ReadLive,
    GetDestination,
    GetPool,
    GetAppConfig,
    GetAppInstance,
    ListSessions,
    Events,
    ReadSnapshot,
    PutPool,
    DeletePool,
    PutMember,
    DeleteMember,
    ClearSticky,
    DisconnectSessions,
    MessageSessions,
    PutMaintenance,
    DeleteMaintenance,
    DeleteLbService,
    StartDrain,
    EndDrain,
    PutAppConfig,
    DeleteAppConfig,
    PutAppInstance,
    DeleteAppInstance,
    PutLock,
    DeleteLock,
}

impl Operation {
    /// The `Broker` method's name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Identity => "identity",
            Operation::ReadLive => "read_live",
            Operation::GetDestination => "get_destination",
            Operation::GetPool => "get_pool",
            Operation::GetAppConfig => "get_app_config",
            Operation::GetAppInstance => "get_app_instance",
            Operation::ListSessions => "list_sessions",
            Operation::Events => "events",
            Operation::ReadSnapshot => "read_snapshot",
            Operation::PutPool => "put_pool",
            Operation::DeletePool => "delete_pool",
            Operation::PutMember => "put_member",
            Operation::DeleteMember => "delete_member",
            Operation::ClearSticky => "clear_sticky",
            Operation::DisconnectSessions => "disconnect_sessions",
            Operation::MessageSessions => "message_sessions",
            Operation::PutMaintenance => "put_maintenance",
            Operation::DeleteMaintenance => "delete_maintenance",
            Operation::DeleteLbService => "delete_lb_service",
            Operation::StartDrain => "start_drain",
            Operation::EndDrain => "end_drain",
            Operation::PutAppConfig => "put_app_config",
            Operation::DeleteAppConfig => "delete_app_config",
            Operation::PutAppInstance => "put_app_instance",
            Operation::DeleteAppInstance => "delete_app_instance",
            Operation::PutLock => "put_lock",
            Operation::DeleteLock => "delete_lock",
        }
    }

    /// Whether the operation may change broker state (a lease counts).
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Operation::Identity
                | Operation::ReadLive
                | Operation::GetDestination
                | Operation::GetPool
                | Operation::GetAppConfig
                | Operation::GetAppInstance
                | Operation::ListSessions
                | Operation::Events
                | Operation::ReadSnapshot
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One call of a `Broker` method: `put_member live rds-02`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: Operation,
    /// The call's arguments that name things, space-separated (`live rds-02`
    /// for a pool and a destination); bodies are left out.
    pub target: String,
    /// The destination the call acts on, if any.
    pub destination: Option<String>,
}

impl Call {
    fn new(operation: Operation, target: &[&str]) -> Call {
        Call {
            operation,
            target: target.join(" "),
            destination: None,
        }
    }

    fn on(operation: Operation, target: &[&str], destination: &str) -> Call {
        Call {
            destination: Some(destination.to_owned()),
            ..Call::new(operation, target)
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.target.is_empty() {
            write!(f, "{}", self.operation)
        } else {
            write!(f, "{} {}", self.operation, self.target)
        }
    }
}

/// A problem the engine answered, as the error a `Broker` caller sees.
pub(super) fn typed(problem: Box<Problem>) -> BrokerError {
    BrokerError::Problem {
        status: problem.status,
        problem,
    }
}

/// Something that holds an engine and lets calls reach it. Every host is a
/// `Broker`.
pub(crate) trait EngineHost: Send + Sync {
    /// Answers a call that only reads.
    fn read<T: Send>(
        &self,
        call: Call,
        answer: impl FnOnce(&Engine) -> engine::Result<T> + Send,
    ) -> impl Future<Output = Result<T>> + Send;

    /// Answers a call that may change the state.
    fn write<T: Send + 'static>(
        &self,
        call: Call,
        change: impl FnOnce(&mut Engine) -> engine::Result<T> + Send,
    ) -> impl Future<Output = Result<T>> + Send;

    /// The host's clock (unix milliseconds), for answers that depend on the
    /// time they are given at (which sticky bindings have expired).
    fn now_ms(&self) -> u64;
}

/// Every collection in one sweep, sorted by name as the maps are.
fn live_state(e: &Engine) -> LiveState {
    LiveState {
        identity: e.id().to_owned(),
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
    }
}

impl<H: EngineHost> Broker for H {
    async fn identity(&self) -> Result<String> {
        self.read(Call::new(Operation::Identity, &[]), |e| {
            Ok(e.id().to_owned())
        })
        .await
    }

    async fn read_live(&self) -> Result<LiveState> {
        self.read(Call::new(Operation::ReadLive, &[]), |e| Ok(live_state(e)))
            .await
    }

    async fn get_destination(&self, name: &str) -> Result<Option<Destination>> {
        let call = Call::on(Operation::GetDestination, &[name], name);
        self.read(call, |e| Ok(e.destination(name).cloned())).await
    }

    async fn get_pool(&self, name: &str) -> Result<Option<Pool>> {
        let call = Call::new(Operation::GetPool, &[name]);
        self.read(call, |e| Ok(e.pool(name).cloned())).await
    }

    async fn get_app_config(&self, name: &str) -> Result<Option<AppConfig>> {
        let call = Call::new(Operation::GetAppConfig, &[name]);
        self.read(call, |e| Ok(e.app_config(name).cloned())).await
    }

    async fn get_app_instance(&self, name: &str) -> Result<Option<AppInstance>> {
        let call = Call::new(Operation::GetAppInstance, &[name]);
        self.read(call, |e| Ok(e.app_instance(name).cloned())).await
    }

    async fn list_sessions(&self, destination: &str) -> Result<Vec<Session>> {
        let call = Call::on(Operation::ListSessions, &[destination], destination);
        self.read(call, |e| {
            e.sessions_page(destination, None, usize::MAX)
                .map(|p| p.items.into_iter().cloned().collect())
        })
        .await
    }

    async fn events(&self, since: u64) -> Result<Vec<Event>> {
        let call = Call::new(Operation::Events, &[&since.to_string()]);
        self.read(call, |e| {
            Ok(e.events_page(since, usize::MAX)
                .items
                .into_iter()
                .cloned()
                .collect())
        })
        .await
    }

    async fn read_snapshot(&self) -> Result<Snapshot> {
        let now = self.now_ms();
        self.read(Call::new(Operation::ReadSnapshot, &[]), move |e| {
            Ok(e.snapshot(now))
        })
        .await
    }

    async fn put_pool(&self, name: &str, body: &PoolBody, expect: Expect) -> Result<Pool> {
        let call = Call::new(Operation::PutPool, &[name]);
        self.write(call, |e| e.put_pool(name, body.clone(), expect))
            .await
    }

    async fn delete_pool(&self, name: &str, expect: Expect) -> Result<()> {
        let call = Call::new(Operation::DeletePool, &[name]);
        self.write(call, |e| e.delete_pool(name, expect)).await
    }

    async fn put_member(&self, pool: &str, destination: &str) -> Result<Membership> {
        let call = Call::on(Operation::PutMember, &[pool, destination], destination);
        self.write(call, |e| e.put_member(pool, destination)).await
    }

    async fn delete_member(&self, pool: &str, destination: &str) -> Result<Membership> {
        let call = Call::on(Operation::DeleteMember, &[pool, destination], destination);
        self.write(call, |e| e.delete_member(pool, destination))
            .await
    }

    async fn clear_sticky(&self, pool: &str, destination: Option<&str>) -> Result<Affected> {
        let call = match destination {
            Some(d) => Call::on(Operation::ClearSticky, &[pool, d], d),
            None => Call::new(Operation::ClearSticky, &[pool]),
        };
        self.write(call, |e| e.clear_sticky(pool, destination))
            .await
    }

    async fn disconnect_sessions(&self, destination: &str) -> Result<Affected> {
        let call = Call::on(Operation::DisconnectSessions, &[destination], destination);
        self.write(call, |e| e.disconnect_sessions(destination))
            .await
    }

    async fn message_sessions(
        &self,
        destination: &str,
        message: &SessionMessage,
    ) -> Result<Affected> {
        let call = Call::on(Operation::MessageSessions, &[destination], destination);
        self.write(call, |e| e.message_sessions(destination, message))
            .await
    }

    async fn put_maintenance(&self, destination: &str, body: &Maintenance) -> Result<Destination> {
        let call = Call::on(Operation::PutMaintenance, &[destination], destination);
        self.write(call, |e| {
            e.put_maintenance(destination, body.clone(), Expect::Any)
        })
        .await
    }

    async fn delete_maintenance(&self, destination: &str) -> Result<Destination> {
        let call = Call::on(Operation::DeleteMaintenance, &[destination], destination);
        self.write(call, |e| e.delete_maintenance(destination, Expect::Any))
            .await
    }

    async fn delete_lb_service(&self, destination: &str) -> Result<Destination> {
        let call = Call::on(Operation::DeleteLbService, &[destination], destination);
        self.write(call, |e| e.delete_lb_service(destination)).await
    }

    async fn start_drain(&self, destination: &str, holder: &str) -> Result<Destination> {
        let call = Call::on(Operation::StartDrain, &[destination, holder], destination);
        self.write(call, |e| e.start_drain(destination, holder))
            .await
    }

    async fn end_drain(&self, destination: &str) -> Result<Destination> {
        let call = Call::on(Operation::EndDrain, &[destination], destination);
        self.write(call, |e| e.end_drain(destination)).await
    }

    async fn put_app_config(
        &self,
        name: &str,
        body: &AppConfigBody,
        expect: Expect,
    ) -> Result<AppConfig> {
        let call = Call::new(Operation::PutAppConfig, &[name]);
        self.write(call, |e| e.put_app_config(name, body.clone(), expect))
            .await
    }

    async fn delete_app_config(&self, name: &str, expect: Expect) -> Result<()> {
        let call = Call::new(Operation::DeleteAppConfig, &[name]);
        self.write(call, |e| e.delete_app_config(name, expect))
            .await
    }

    async fn put_app_instance(
        &self,
        name: &str,
        body: &AppInstanceBody,
        expect: Expect,
    ) -> Result<AppInstance> {
        let call = Call::new(Operation::PutAppInstance, &[name]);
        self.write(call, |e| e.put_app_instance(name, body.clone(), expect))
            .await
    }

    async fn delete_app_instance(&self, name: &str, expect: Expect) -> Result<()> {
        let call = Call::new(Operation::DeleteAppInstance, &[name]);
        self.write(call, |e| e.delete_app_instance(name, expect))
            .await
    }

    async fn put_lock(&self, stack: &str, body: &LockBody) -> Result<Lock> {
        let call = Call::new(Operation::PutLock, &[stack, &body.holder]);
        self.write(call, |e| e.put_lock(stack, body.clone())).await
    }

    async fn delete_lock(&self, stack: &str, holder: &str) -> Result<()> {
        let call = Call::new(Operation::DeleteLock, &[stack, holder]);
        self.write(call, |e| e.delete_lock(stack, holder)).await
    }
}
