//! The recording broker: the real engine in-process, in memory only, on a
//! virtual clock, logging every call it answers. It is the test double of
//! everything that talks to a broker (so no test re-implements a broker
//! rule) and the sandbox for running an apply against a copy of live state.
//!
//! Beyond the engine it adds only what a caller cannot get from a real
//! broker on demand: a latency per call, scripted problem answers, and
//! counters of how many calls were in flight at once.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::engine::{self, Engine};
use super::host::{Call, EngineHost, Operation, typed};
use crate::contract::Result;
use crate::contract::problem::Problem;
use crate::contract::wire::{Event, Snapshot};

/// A scripted answer: calls of `operation` get `answer` instead of the
/// engine's. By default every such call; [`Fault::on`] narrows it to one
/// target, [`Fault::nth`] to one of the matching calls.
#[derive(Debug, Clone)]
pub struct Fault {
    operation: Operation,
    target: Option<String>,
    nth: Option<usize>,
    answer: Box<Problem>,
    after_applying: bool,
}

impl Fault {
    pub fn new(operation: Operation, answer: Box<Problem>) -> Fault {
        Fault {
            operation,
            target: None,
            nth: None,
            answer,
            after_applying: false,
        }
    }

    /// Only calls whose target is `target` (`live rds-02`, see [`Call`]).
    pub fn on(mut self, target: &str) -> Fault {
        self.target = Some(target.to_owned());
        self
    }

    /// Only the `n`th matching call (1-based) after the fault is added.
    pub fn nth(mut self, n: usize) -> Fault {
        self.nth = Some(n);
        self
    }

    /// The engine applies the call, then the answer is replaced: a change
    /// made whose answer was lost. Without this the engine never sees the call.
    pub fn after_applying(mut self) -> Fault {
        self.after_applying = true;
        self
    }

    fn matches(&self, call: &Call) -> bool {
        self.operation == call.operation && self.target.as_ref().is_none_or(|t| *t == call.target)
    }
}

/// The most calls that were in flight at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Concurrency {
    pub most: usize,
    /// Per destination, counting the calls that act on it.
    pub most_per_destination: BTreeMap<String, usize>,
}

struct ArmedFault {
    fault: Fault,
    /// Matching calls seen since the fault was added.
    seen: usize,
}

#[derive(Default)]
struct Journal {
    calls: Vec<Call>,
    faults: Vec<ArmedFault>,
    in_flight: usize,
    on_destination: BTreeMap<String, usize>,
    concurrency: Concurrency,
}

impl Journal {
    /// Logs the call as started and picks the fault that answers it.
    fn enter(&mut self, call: &Call) -> Option<Fault> {
        self.calls.push(call.clone());
        self.in_flight += 1;
        self.concurrency.most = self.concurrency.most.max(self.in_flight);
        if let Some(d) = &call.destination {
            let now = self.on_destination.entry(d.clone()).or_default();
            *now += 1;
            let most = self
                .concurrency
                .most_per_destination
                .entry(d.clone())
                .or_default();
            *most = (*most).max(*now);
        }
        self.faults.iter_mut().find_map(|armed| {
            if !armed.fault.matches(call) {
                return None;
            }
            armed.seen += 1;
            armed
                .fault
                .nth
                .is_none_or(|n| n == armed.seen)
                .then(|| armed.fault.clone())
        })
    }

    fn leave(&mut self, destination: Option<&str>) {
        self.in_flight -= 1;
        if let Some(n) = destination.and_then(|d| self.on_destination.get_mut(d)) {
            *n -= 1;
        }
    }
}

/// Ends a call in the journal even when its future is dropped midway (a
/// lease heartbeat aborted during its renewal).
struct InFlight<'r> {
    journal: &'r Mutex<Journal>,
    destination: Option<String>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(self.journal).leave(self.destination.as_deref());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The real engine as a `Broker`: in memory, on a virtual clock, logging
/// every call. Share it with `Arc` where a caller needs `'static` (a lease).
pub struct Recording {
    engine: Mutex<Engine>,
    /// Unix milliseconds the virtual clock shows at `started`.
    start_ms: u64,
    started: Instant,
    latency: Duration,
    journal: Mutex<Journal>,
}

impl Recording {
    /// Hosts `engine` with its clock at `start_ms` (unix milliseconds) now,
    /// advancing with tokio's clock: paused-time tests see sticky bindings
    /// and leases expire as they advance it.
    pub fn new(engine: Engine, start_ms: u64) -> Recording {
        Recording {
            engine: Mutex::new(engine),
            start_ms,
            started: Instant::now(),
            latency: Duration::ZERO,
            journal: Mutex::new(Journal::default()),
        }
    }

    /// The state `snapshot` describes (as `broker serve --seed` builds it).
    pub fn from_snapshot(snapshot: Snapshot, start_ms: u64) -> engine::Result<Recording> {
        Ok(Recording::new(Engine::from_snapshot(snapshot)?, start_ms))
    }

    /// Every call takes `latency` of tokio time before the engine answers it.
    pub fn with_latency(mut self, latency: Duration) -> Recording {
        self.latency = latency;
        self
    }

    /// Adds a scripted answer; the first fault added that matches a call
    /// answers it.
    pub fn fail(&self, fault: Fault) {
        lock(&self.journal)
            .faults
            .push(ArmedFault { fault, seen: 0 });
    }

    /// The virtual clock, in unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start_ms.saturating_add(elapsed)
    }

    /// Reads the engine's state directly (not a logged call).
    pub fn engine<T>(&self, read: impl FnOnce(&Engine) -> T) -> T {
        read(&lock(&self.engine))
    }

    /// Changes the engine's state directly, at the virtual clock's time:
    /// the world moving on (a user logging off, another client's write)
    /// while a caller works. Not a logged call.
    pub fn engine_mut<T>(&self, change: impl FnOnce(&mut Engine) -> T) -> T {
        let mut engine = lock(&self.engine);
        engine.set_clock(self.now_ms());
        let result = change(&mut engine);
        // Nothing persists a recording: what a store would record of the
        // change is dropped at once, so that a rehearsal of millions of
        // member writes does not keep a list of them.
        engine.forget_changes();
        result
    }

    /// The whole state at the virtual clock's time.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.now_ms();
        self.engine(|e| e.snapshot(now))
    }

    /// The engine's event log: every change made, in order.
    pub fn event_log(&self) -> Vec<Event> {
        self.engine(|e| {
            e.events_page(0, usize::MAX)
                .items
                .into_iter()
                .cloned()
                .collect()
        })
    }

    /// Every call answered so far, in the order they started.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.journal).calls.clone()
    }

    /// The calls so far, forgetting them: the next `calls` starts afresh.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut lock(&self.journal).calls)
    }

    pub fn concurrency(&self) -> Concurrency {
        lock(&self.journal).concurrency.clone()
    }

    /// Logs the call, holds it for the latency, and answers it with a
    /// scripted fault or by `answer` on the engine.
    async fn answer<T>(
        &self,
        call: Call,
        answer: impl FnOnce(&mut Engine) -> engine::Result<T>,
    ) -> Result<T> {
        let fault = lock(&self.journal).enter(&call);
        let _in_flight = InFlight {
            journal: &self.journal,
            destination: call.destination,
        };
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        match fault {
            Some(fault) => {
                if fault.after_applying {
                    let _lost = self.engine_mut(answer);
                }
                Err(typed(fault.answer))
            }
            None => self.engine_mut(answer).map_err(typed),
        }
    }
}

impl EngineHost for Recording {
    async fn read<T: Send>(
        &self,
        call: Call,
        answer: impl FnOnce(&Engine) -> engine::Result<T> + Send,
    ) -> Result<T> {
        self.answer(call, |e| answer(e)).await
    }

    async fn write<T: Send + 'static>(
        &self,
        call: Call,
        change: impl FnOnce(&mut Engine) -> engine::Result<T> + Send,
    ) -> Result<T> {
        self.answer(call, change).await
    }

    fn now_ms(&self) -> u64 {
        Recording::now_ms(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::problem::{self, codes};
    use crate::contract::wire::{LoadBalancing, PoolBody, SessionState};
    use crate::contract::{Broker, Expect};

    const START_MS: u64 = 1_800_000_000_000;

    /// `live` (load-balanced, 1 min sticky) with member rds-01, where jane works.
    fn broker() -> Recording {
        let mut engine = Engine::new();
        engine.sim_destination("rds-01", true, true).unwrap();
        let lb = PoolBody {
            load_balancing: LoadBalancing {
                enabled: true,
                sticky_sessions_minutes: 1,
                grace_period_seconds: 0,
            },
            ..PoolBody::default()
        };
        engine.put_pool("live", lb, Expect::Any).unwrap();
        engine.put_member("live", "rds-01").unwrap();
        engine
            .sim_start_session("rds-01", "jane", SessionState::Active, &[])
            .unwrap();
        Recording::new(engine, START_MS).with_latency(Duration::from_millis(20))
    }

    fn unavailable() -> Box<Problem> {
        problem::new(503, codes::UNAVAILABLE, "scripted")
    }

    /// Nothing persists a recording, so it keeps no record of what changed,
    /// neither of the snapshot it was built from nor of its writes: a
    /// rehearsal of millions of member writes would hold a list of them.
    #[tokio::test(start_paused = true)]
    async fn a_recording_keeps_no_record_of_its_changes() {
        let broker = broker();
        broker.delete_member("live", "rds-01").await.unwrap();
        broker.clear_sticky("live", None).await.unwrap();
        let record = broker.engine(|e| {
            let events = e.events_len();
            serde_json::to_value(e.clone().take_delta(events)).unwrap()
        });
        let nothing = serde_json::json!({});
        for changes in ["destinations", "pools", "sessions", "sticky_bindings"] {
            assert_eq!(record[changes], nothing, "{changes}: {record}");
        }
        assert!(record.get("members").is_none(), "{record}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_tokio_time_so_sticky_bindings_expire() {
        let broker = broker();
        broker.disconnect_sessions("rds-01").await.unwrap();
        assert_eq!(broker.snapshot().sticky_bindings.len(), 1);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(broker.now_ms(), START_MS + 61_020);
        assert!(broker.snapshot().sticky_bindings.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_logged_in_order_and_changes_reach_the_event_log() {
        let broker = broker();
        broker.get_pool("live").await.unwrap();
        broker.clear_sticky("live", None).await.unwrap();
        broker.delete_member("live", "rds-01").await.unwrap();
        let calls: Vec<String> = broker.calls().iter().map(ToString::to_string).collect();
        assert_eq!(
            calls,
            [
                "get_pool live",
                "clear_sticky live",
                "delete_member live rds-01"
            ]
        );
        assert!(!broker.calls()[0].operation.writes());
        let last = broker.event_log().pop().unwrap();
        assert_eq!(
            (last.op.as_str(), last.time),
            ("member.remove", START_MS + 60)
        );
        assert_eq!(broker.take_calls().len(), 3);
        assert!(broker.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_answers_only_the_calls_it_names() {
        let broker = broker();
        broker.fail(
            Fault::new(Operation::GetDestination, unavailable())
                .on("rds-01")
                .nth(2),
        );
        assert!(broker.get_destination("rds-01").await.is_ok());
        let err = broker.get_destination("rds-01").await.unwrap_err();
        assert_eq!(err.code(), Some(codes::UNAVAILABLE));
        assert!(broker.get_destination("rds-01").await.is_ok());
        assert!(broker.get_destination("rds-02").await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_answers_before_the_engine_or_after_it_applied_the_call() {
        let broker = broker();
        broker.fail(Fault::new(Operation::DeleteMember, unavailable()).nth(1));
        broker.delete_member("live", "rds-01").await.unwrap_err();
        assert_eq!(broker.engine(|e| e.pool("live").unwrap().members.len()), 1);

        broker.fail(Fault::new(Operation::DeleteMember, unavailable()).after_applying());
        broker.delete_member("live", "rds-01").await.unwrap_err();
        assert!(broker.engine(|e| e.pool("live").unwrap().members.is_empty()));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_mode_and_identity_are_logged_calls_that_faults_can_answer() {
        let broker = broker();
        let id = broker.identity().await.unwrap();
        assert_eq!(broker.read_live().await.unwrap().identity, id);
        broker.fail(Fault::new(Operation::StartDrain, unavailable()).nth(1));
        broker.start_drain("rds-01", "corp-rds").await.unwrap_err();
        let d = broker.start_drain("rds-01", "corp-rds").await.unwrap();
        assert_eq!(d.draining.as_deref(), Some("corp-rds"));
        assert!(broker.end_drain("rds-01").await.unwrap().draining.is_none());
        let calls: Vec<String> = broker.calls().iter().map(ToString::to_string).collect();
        assert_eq!(
            calls,
            [
                "identity",
                "read_live",
                "start_drain rds-01 corp-rds",
                "start_drain rds-01 corp-rds",
                "end_drain rds-01"
            ]
        );
        assert!(broker.calls()[2].operation.writes() && !broker.calls()[0].operation.writes());
    }

    #[tokio::test(start_paused = true)]
    async fn messages_are_logged_writes_and_the_snapshot_a_logged_read() {
        let broker = broker();
        let notice = crate::contract::wire::SessionMessage {
            de: "Wartung".into(),
            en: "Maintenance".into(),
        };
        assert_eq!(
            broker
                .message_sessions("rds-01", &notice)
                .await
                .unwrap()
                .affected,
            1
        );
        let copy = broker.read_snapshot().await.unwrap();
        assert_eq!(copy, broker.snapshot());
        let calls = broker.calls();
        assert_eq!(calls[0].to_string(), "message_sessions rds-01");
        assert!(calls[0].operation.writes() && !calls[1].operation.writes());
        assert_eq!(broker.event_log().pop().unwrap().op, "sessions.message");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_counts_calls_in_flight_overall_and_per_destination() {
        let broker = broker();
        let (d, s, p) = tokio::join!(
            broker.get_destination("rds-01"),
            broker.list_sessions("rds-01"),
            broker.get_pool("live"),
        );
        assert!(d.is_ok() && s.is_ok() && p.is_ok());
        let concurrency = broker.concurrency();
        assert_eq!(concurrency.most, 3);
        assert_eq!(concurrency.most_per_destination["rds-01"], 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_dropped_midway_is_no_longer_in_flight() {
        let broker = broker();
        // A lease heartbeat aborted during its renewal drops its call.
        let dropped = tokio::time::timeout(Duration::from_millis(5), broker.get_pool("live")).await;
        assert!(dropped.is_err());
        let (a, b) = tokio::join!(broker.get_pool("live"), broker.get_pool("live"));
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(broker.concurrency().most, 2);
    }
}
