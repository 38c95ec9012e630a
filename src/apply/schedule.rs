//! Which step of a running apply starts next: a ready queue fed by counts of
//! unfinished dependencies (each step's dependents are listed once, so a
//! completion touches only its own dependents), the one-step-per-destination
//! rule, the pool rule (a write of a whole pool runs alone among the steps
//! that move that pool's revision, so apply knows the revision it expects),
//! the parallelism limit, and the skips a failure passes on. It holds every
//! step's report and emits the start and finish events; running the steps is
//! the caller's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use tokio::time::Instant;

use super::{Progress, SkipReason, StepOutcome, StepReport};
use crate::plan::{Op, Step};

/// Plan positions, smallest first: among the steps that could start or must
/// be skipped, the earliest in the plan goes first.
type Queue = BinaryHeap<Reverse<usize>>;

/// What a running step holds that another step may have to wait for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Resource<'p> {
    Destination(&'p str),
    Pool(&'p str),
}

/// How a step uses a pool's revision: a member change moves it (many may
/// run at once), a write of the whole pool expects it (alone).
#[derive(Clone, Copy)]
enum PoolUse<'p> {
    Member(&'p str),
    Whole(&'p str),
}

fn pool_use(op: &Op) -> Option<PoolUse<'_>> {
    match op {
        Op::AddMember { pool, .. } | Op::RemoveMember { pool, .. } => Some(PoolUse::Member(pool)),
        Op::PutPool { pool, .. } | Op::DeletePool { pool } => Some(PoolUse::Whole(pool)),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum State {
    Pending,
    Running,
    Finished { succeeded: bool },
}

pub(super) struct Schedule<'p> {
    steps: &'p [Step],
    limit: usize,
    began: Instant,
    /// Step id → position in the plan. Plan step ids are positions; the map
    /// keeps this correct even for a hand-made plan whose ids are not.
    positions: HashMap<usize, usize>,
    state: Vec<State>,
    reports: Vec<StepReport>,
    /// Per step, the positions of the steps that depend on it.
    dependents: Vec<Vec<usize>>,
    /// Per step, how many of its dependencies have not succeeded yet.
    unfinished: Vec<usize>,
    /// Steps whose dependencies all succeeded.
    ready: Queue,
    /// Ready steps whose destination or pool was busy: a destination's first
    /// one becomes ready again as soon as it frees up, a pool's all of them.
    parked: HashMap<Resource<'p>, Queue>,
    /// Steps with a dependency that failed or was skipped.
    doomed: Queue,
    busy: HashSet<&'p str>,
    /// Per pool, its member steps running.
    pool_members: HashMap<&'p str, usize>,
    /// Pools with a whole-pool write running.
    pool_whole: HashSet<&'p str>,
    /// Per pool, its whole-pool writes parked: member steps wait behind
    /// them, so a pool's write is not put off by its later member changes.
    pool_whole_waiting: HashMap<&'p str, usize>,
    running: usize,
}

impl<'p> Schedule<'p> {
    pub(super) fn new(steps: &'p [Step], parallelism: usize, began: Instant) -> Self {
        let positions: HashMap<usize, usize> =
            steps.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        let mut dependents = vec![Vec::new(); steps.len()];
        let mut unfinished = vec![0; steps.len()];
        let mut ready = Queue::new();
        let mut doomed = Queue::new();
        for (i, step) in steps.iter().enumerate() {
            let mut unknown = false;
            for dep in &step.depends_on {
                match positions.get(dep) {
                    Some(&p) => {
                        dependents[p].push(i);
                        unfinished[i] += 1;
                    }
                    None => unknown = true,
                }
            }
            // A dependency missing from the plan can never succeed.
            if unknown {
                doomed.push(Reverse(i));
            } else if unfinished[i] == 0 {
                ready.push(Reverse(i));
            }
        }
        Schedule {
            steps,
            limit: parallelism.max(1),
            began,
            positions,
            state: vec![State::Pending; steps.len()],
            reports: steps
                .iter()
                .map(|s| StepReport {
                    step: s.id,
                    outcome: StepOutcome::Skipped(SkipReason::Cancelled),
                    started: None,
                    duration: None,
                })
                .collect(),
            dependents,
            unfinished,
            ready,
            parked: HashMap::new(),
            doomed,
            busy: HashSet::new(),
            pool_members: HashMap::new(),
            pool_whole: HashSet::new(),
            pool_whole_waiting: HashMap::new(),
            running: 0,
        }
    }

    /// Skips the steps a failure doomed and starts every step that may
    /// start, both in plan order, handing each started position to `start`.
    pub(super) fn advance(&mut self, events: &dyn Fn(Progress), mut start: impl FnMut(usize)) {
        loop {
            let doomed = self.doomed.peek().map(|r| r.0);
            let ready = self
                .ready
                .peek()
                .map(|r| r.0)
                .filter(|_| self.running < self.limit);
            match (doomed, ready) {
                (Some(d), r) if r.is_none_or(|r| d < r) => {
                    self.doomed.pop();
                    self.skip(d, events);
                }
                (_, Some(r)) => {
                    self.ready.pop();
                    if self.claim(r) {
                        self.start(r, events);
                        start(r);
                    }
                }
                (_, None) => break,
            }
        }
    }

    /// Takes the step's destination and pool, or parks the step on the
    /// first of them that is busy.
    fn claim(&mut self, i: usize) -> bool {
        let op = &self.steps[i].op;
        let destination = op.destination();
        let pool = pool_use(op);
        let blocker = match (destination, pool) {
            (Some(d), _) if self.busy.contains(d) => Some(Resource::Destination(d)),
            (_, Some(PoolUse::Whole(p)))
                if self.pool_whole.contains(p)
                    || self.pool_members.get(p).is_some_and(|n| *n > 0) =>
            {
                Some(Resource::Pool(p))
            }
            (_, Some(PoolUse::Member(p)))
                if self.pool_whole.contains(p)
                    || self.pool_whole_waiting.get(p).is_some_and(|n| *n > 0) =>
            {
                Some(Resource::Pool(p))
            }
            _ => None,
        };
        if let Some(blocker) = blocker {
            if let (Resource::Pool(p), Some(PoolUse::Whole(_))) = (blocker, pool) {
                *self.pool_whole_waiting.entry(p).or_default() += 1;
            }
            self.parked.entry(blocker).or_default().push(Reverse(i));
            return false;
        }
        if let Some(d) = destination {
            self.busy.insert(d);
        }
        match pool {
            Some(PoolUse::Whole(p)) => {
                self.pool_whole.insert(p);
            }
            Some(PoolUse::Member(p)) => *self.pool_members.entry(p).or_default() += 1,
            None => {}
        }
        true
    }

    /// Frees what a finished step held and makes the steps waiting for it
    /// ready again.
    fn release(&mut self, i: usize) {
        let op = &self.steps[i].op;
        if let Some(destination) = op.destination() {
            self.busy.remove(destination);
            let parked = self.parked.get_mut(&Resource::Destination(destination));
            if let Some(Reverse(next)) = parked.and_then(Queue::pop) {
                self.ready.push(Reverse(next));
            }
        }
        let freed = match pool_use(op) {
            Some(PoolUse::Whole(p)) => {
                self.pool_whole.remove(p);
                Some(p)
            }
            Some(PoolUse::Member(p)) => {
                let running = self.pool_members.entry(p).or_default();
                *running -= 1;
                (*running == 0).then_some(p)
            }
            None => None,
        };
        if let Some(p) = freed
            && let Some(waiting) = self.parked.remove(&Resource::Pool(p))
        {
            // Each claims its pool again from the ready queue, in plan order.
            self.pool_whole_waiting.remove(p);
            self.ready.extend(waiting);
        }
    }

    fn start(&mut self, i: usize, events: &dyn Fn(Progress)) {
        self.state[i] = State::Running;
        self.running += 1;
        self.reports[i].started = Some(self.began.elapsed());
        events(Progress::StepStarted {
            step: self.steps[i].id,
        });
    }

    /// Records a started step's outcome, frees its destination, and passes
    /// the outcome on to its dependents.
    pub(super) fn finish(&mut self, i: usize, outcome: StepOutcome, events: &dyn Fn(Progress)) {
        self.running -= 1;
        self.release(i);
        let duration = self.began.elapsed() - self.reports[i].started.unwrap_or_default();
        let succeeded = outcome.succeeded();
        self.state[i] = State::Finished { succeeded };
        self.reports[i].duration = Some(duration);
        self.reports[i].outcome = outcome.clone();
        events(Progress::StepFinished {
            step: self.steps[i].id,
            outcome,
            duration: Some(duration),
        });
        for j in std::mem::take(&mut self.dependents[i]) {
            if !succeeded {
                self.doomed.push(Reverse(j));
                continue;
            }
            self.unfinished[j] -= 1;
            if self.unfinished[j] == 0 && matches!(self.state[j], State::Pending) {
                self.ready.push(Reverse(j));
            }
        }
    }

    /// Skips a pending step whose dependency failed or was skipped, and dooms
    /// its dependents in turn.
    fn skip(&mut self, i: usize, events: &dyn Fn(Progress)) {
        if !matches!(self.state[i], State::Pending) {
            return;
        }
        let failed = self.first_dependency(i, |s| {
            s.is_none_or(|s| matches!(s, State::Finished { succeeded: false }))
        });
        self.skipped(i, SkipReason::DependencyFailed { step: failed }, events);
        self.doomed.extend(
            std::mem::take(&mut self.dependents[i])
                .into_iter()
                .map(Reverse),
        );
    }

    fn skipped(&mut self, i: usize, reason: SkipReason, events: &dyn Fn(Progress)) {
        self.state[i] = State::Finished { succeeded: false };
        self.reports[i].outcome = StepOutcome::Skipped(reason);
        events(Progress::StepFinished {
            step: self.steps[i].id,
            outcome: StepOutcome::Skipped(reason),
            duration: None,
        });
    }

    /// The first of step `i`'s dependencies whose state (`None`: not in the
    /// plan) `wanted` accepts, or the step's own id when there is none.
    fn first_dependency(&self, i: usize, wanted: impl Fn(Option<State>) -> bool) -> usize {
        let step = &self.steps[i];
        step.depends_on
            .iter()
            .copied()
            .find(|d| wanted(self.positions.get(d).map(|&p| self.state[p])))
            .unwrap_or(step.id)
    }

    /// Ends the schedule: every step still pending is skipped, as cancelled,
    /// or (without a cancel: a dependency cycle in a hand-made plan) naming
    /// the dependency that never succeeded. Returns the reports in plan order.
    pub(super) fn close(mut self, cancelled: bool, events: &dyn Fn(Progress)) -> Vec<StepReport> {
        for i in 0..self.steps.len() {
            if !matches!(self.state[i], State::Pending) {
                continue;
            }
            let reason = if cancelled {
                SkipReason::Cancelled
            } else {
                let dep = self.first_dependency(i, |s| {
                    !matches!(s, Some(State::Finished { succeeded: true }))
                });
                SkipReason::DependencyFailed { step: dep }
            };
            self.skipped(i, reason, events);
        }
        self.reports
    }
}
