//! Which step of a running apply starts next: a ready queue fed by counts of
//! unfinished dependencies (each step's dependents are listed once, so a
//! completion touches only its own dependents), the one-step-per-destination
//! rule, the parallelism limit, and the skips a failure passes on. It holds
//! every step's report and emits the start and finish events; running the
//! steps is the caller's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use tokio::time::Instant;

use super::{Progress, SkipReason, StepOutcome, StepReport};
use crate::plan::Step;

/// Plan positions, smallest first: among the steps that could start or must
/// be skipped, the earliest in the plan goes first.
type Queue = BinaryHeap<Reverse<usize>>;

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
    /// Ready steps whose destination was busy, per destination: the first
    /// one becomes ready again as soon as the destination frees up.
    parked: HashMap<&'p str, Queue>,
    /// Steps with a dependency that failed or was skipped.
    doomed: Queue,
    busy: HashSet<&'p str>,
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
                    if self.claim_destination(r) {
                        self.start(r, events);
                        start(r);
                    }
                }
                (_, None) => break,
            }
        }
    }

    /// Takes the step's destination, or parks the step until it is free.
    fn claim_destination(&mut self, i: usize) -> bool {
        let Some(destination) = self.steps[i].op.destination() else {
            return true;
        };
        if self.busy.insert(destination) {
            return true;
        }
        self.parked.entry(destination).or_default().push(Reverse(i));
        false
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
        if let Some(destination) = self.steps[i].op.destination() {
            self.busy.remove(destination);
            if let Some(Reverse(next)) = self.parked.get_mut(destination).and_then(Queue::pop) {
                self.ready.push(Reverse(next));
            }
        }
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
