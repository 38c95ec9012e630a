//! The apply engine: executes a plan's steps against a broker in dependency
//! order, concurrently where the plan allows, and returns a report of data
//! (no human strings; render turns reports and events into text). Also owns
//! the stale-plan check and the per-stack lease lock that guard an apply.
//!
//! Invariants: apply never re-plans or re-diffs (a stale saved plan is
//! refused by [`check_fresh`], a step whose planned facts changed fails, a
//! re-run re-plans in the CLI); it never
//! prints (progress goes out as [`Progress`] events); a secret value exists only
//! inside the `PutPool` write; and every step is safe to repeat after a
//! crash, so a re-run converges without duplicate side effects.

mod fresh;
mod lease;
mod precondition;
mod schedule;
mod step;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use crate::contract::problem::Problem;
use crate::contract::wire::Destination;
use crate::contract::{Broker, BrokerError};
use crate::plan::{ExpectedWarning, Fact, Plan};
use crate::secret::SecretSource;

use precondition::PoolRevisions;

use schedule::Schedule;

pub use fresh::{Stale, StaleCheckError, check_fresh};
pub use lease::{Lease, LockError, default_holder};

/// How an apply runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most steps in flight at once (`--parallelism`); at least 1 is used.
    pub parallelism: usize,
    /// Pause between two session counts while draining a destination.
    pub drain_poll_interval: Duration,
    /// Drain deadline for a pool whose config sets no `timeout`: a drain
    /// must end, or the apply (and the lease it holds) would never finish.
    pub default_drain_timeout: Duration,
    /// Set from outside (Ctrl-C, a lost lease) to stop starting steps.
    pub cancel: Arc<AtomicBool>,
    /// `--force`: the plan's violations that can be overridden are, and
    /// are reported as such.
    pub force: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 10,
            drain_poll_interval: Duration::from_secs(2),
            default_drain_timeout: Duration::from_secs(900),
            cancel: Arc::new(AtomicBool::new(false)),
            force: false,
        }
    }
}

/// Progress as it happens, for the CLI's bar or log lines.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A safety rule the plan breaks is overridden (`--force`): announced
    /// before any step starts. `violation` indexes `Plan::violations`.
    Overridden {
        violation: usize,
    },
    StepStarted {
        step: usize,
    },
    StepFinished {
        step: usize,
        outcome: StepOutcome,
        /// `None` for a step that never started (skipped).
        duration: Option<Duration>,
    },
    /// The broker disconnected `affected` sessions on the step's destination.
    SessionsDisconnected {
        step: usize,
        affected: u32,
    },
    /// The broker showed the drain's notice to `affected` users.
    UsersNotified {
        step: usize,
        affected: u32,
    },
    /// One count of active sessions during a notice's lead time: the users
    /// left, and how long until they are disconnected.
    LeadTime {
        step: usize,
        remaining_sessions: u32,
        time_left: Duration,
    },
    /// One count of active sessions while draining.
    DrainProgress {
        step: usize,
        remaining_sessions: u32,
        time_left: Duration,
    },
    /// The cancel flag was seen: no further step starts.
    Cancelling {
        running: usize,
    },
}

/// What became of one step.
#[derive(Debug, Clone)]
pub enum StepOutcome {
    Done,
    /// The broker answered with an error that is known to leave the wanted
    /// state in place; counts as success for dependents.
    Warning(Warning),
    Failed(ApplyError),
    Skipped(SkipReason),
}

impl StepOutcome {
    /// Whether dependents may run after this outcome.
    pub fn succeeded(&self) -> bool {
        matches!(self, StepOutcome::Done | StepOutcome::Warning(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub warning: ExpectedWarning,
    /// The broker's answer, kept for the renderer and logs.
    pub problem: Box<Problem>,
    /// Whether the plan announced exactly this warning for the step.
    pub expected: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The step it waits for (directly or not) failed or was skipped.
    DependencyFailed {
        step: usize,
    },
    Cancelled,
}

/// Why a step failed, beyond a plain broker error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{destination} has {active} active sessions and the drain policy is refuse")]
    SessionsActive { destination: String, active: u32 },
    #[error("{destination} still has {active} active sessions after {waited:?}")]
    DrainTimedOut {
        destination: String,
        active: u32,
        waited: Duration,
    },
    /// The broker said the membership went although the service stayed, but a
    /// re-read of the pool still lists the destination.
    #[error("{destination} is still a member of {pool} after the broker answered {}", problem.code)]
    MembershipRemains {
        pool: String,
        destination: String,
        problem: Box<Problem>,
    },
    /// The resolver's message; resolvers never include the secret itself.
    #[error("cannot read the secret from {secret:?}: {reason}")]
    Secret {
        secret: SecretSource,
        reason: String,
    },
    #[error("cancelled while the step was running")]
    Cancelled,
    /// A fact the step was planned on no longer holds; worded by
    /// `render::words`, which owns the sentences about facts.
    #[error("{0}")]
    PreconditionChanged(Box<Changed>),
}

impl ApplyError {
    /// The broker's problem code behind the failure, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApplyError::Broker(e) => e.code(),
            ApplyError::MembershipRemains { problem, .. } => Some(&problem.code),
            ApplyError::PreconditionChanged(changed) => match &changed.live {
                Seen::Refused(problem) => Some(&problem.code),
                Seen::Destination(_) | Seen::Gone => None,
            },
            _ => None,
        }
    }
}

/// A planned fact, and what was found instead right before the write.
#[derive(Debug, Clone)]
pub struct Changed {
    pub planned: Fact,
    pub live: Seen,
}

/// What apply found where a fact was planned.
#[derive(Debug, Clone)]
pub enum Seen {
    /// The destination as read right before the write.
    Destination(Box<Destination>),
    /// The destination the fact is about no longer exists.
    Gone,
    /// The broker refused the write for a reason that contradicts the fact.
    Refused(Box<Problem>),
}

#[derive(Debug, Clone)]
pub struct StepReport {
    /// `Step::id` in the plan.
    pub step: usize,
    pub outcome: StepOutcome,
    /// Offset from the start of the apply; `None` when the step never started.
    pub started: Option<Duration>,
    pub duration: Option<Duration>,
}

/// How a drain with a notice went: of the users told, how many logged off
/// by themselves within the lead time and how many were disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeReport {
    /// `Step::id` of the drain.
    pub step: usize,
    pub notified: u32,
    pub logged_off: u32,
    pub disconnected: u32,
}

/// The result of an apply: one entry per plan step, in plan order.
#[derive(Debug, Clone)]
pub struct Report {
    pub steps: Vec<StepReport>,
    /// Every drain that gave notice, in the order they ended.
    pub notices: Vec<NoticeReport>,
    /// Indexes into `Plan::violations` of the rules overridden by `--force`.
    pub overridden: Vec<usize>,
    pub cancelled: bool,
    pub duration: Duration,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub done: usize,
    pub warnings: usize,
    /// Warnings the plan did not announce (a subset of `warnings`).
    pub unexpected_warnings: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Safety rules overridden by `--force`.
    pub overridden: usize,
}

impl Report {
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            overridden: self.overridden.len(),
            ..Summary::default()
        };
        for r in &self.steps {
            match &r.outcome {
                StepOutcome::Done => s.done += 1,
                StepOutcome::Warning(w) => {
                    s.warnings += 1;
                    if !w.expected {
                        s.unexpected_warnings += 1;
                    }
                }
                StepOutcome::Failed(_) => s.failed += 1,
                StepOutcome::Skipped(_) => s.skipped += 1,
            }
        }
        s
    }

    /// Every step done or warned: the desired state was reached.
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|r| r.outcome.succeeded())
    }
}

/// Resolves a secret source to its value; its error text must not contain it.
pub type Secrets<'a> = &'a dyn Fn(&SecretSource) -> Result<SecretString, String>;

/// How often a wait looks at the cancel flag: a cancelled apply abandons
/// whatever is only waiting (a drain between two session counts, a lease
/// held by someone else) within this.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// Returns once `flag` is set (by a signal, or a lost lease).
pub async fn cancelled(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(CANCEL_CHECK).await;
    }
}

/// Sleeps for `duration`, or until `flag` is set; says whether it was.
pub(crate) async fn sleep_unless_cancelled(flag: &AtomicBool, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => flag.load(Ordering::SeqCst),
        () = cancelled(flag) => true,
    }
}

/// What a step runs with.
struct Context<'a, B> {
    broker: &'a B,
    options: &'a Options,
    secrets: Secrets<'a>,
    events: &'a dyn Fn(Progress),
    pools: PoolRevisions,
    /// The plan's stack: the holder of the drain mode it starts.
    stack: &'a str,
    notices: std::sync::Mutex<Vec<NoticeReport>>,
}

type InFlight<'a, K, T> = Vec<(K, Pin<Box<dyn Future<Output = T> + 'a>>)>;

/// Waits for whichever future in `running` finishes first and takes it out.
/// Futures borrow the broker, so they run inside this task (no spawn, no
/// `'static` bound); a handful in flight makes polling them all cheap.
async fn next_finished<K, T>(running: &mut InFlight<'_, K, T>) -> (K, T) {
    let (slot, output) = std::future::poll_fn(|cx| {
        for (slot, (_, fut)) in running.iter_mut().enumerate() {
            if let Poll::Ready(output) = fut.as_mut().poll(cx) {
                return Poll::Ready((slot, output));
            }
        }
        Poll::Pending
    })
    .await;
    let (key, _) = running.swap_remove(slot);
    (key, output)
}

/// Executes `plan`'s steps. A step starts once every step it depends on
/// succeeded (done or warning); it is skipped once any of them did not.
/// At most `options.parallelism` steps run at once and never two on the same
/// destination. Never returns early: the report covers every step.
pub async fn execute<B: Broker>(
    broker: &B,
    plan: &Plan,
    options: &Options,
    secrets: &dyn Fn(&SecretSource) -> Result<SecretString, String>,
    events: &dyn Fn(Progress),
) -> Report {
    let began = Instant::now();
    let ctx = Context {
        broker,
        options,
        secrets,
        events,
        pools: PoolRevisions::default(),
        stack: &plan.stack,
        notices: std::sync::Mutex::default(),
    };
    let overridden: Vec<usize> = plan.overridden(options.force).map(|(i, _)| i).collect();
    for &violation in &overridden {
        events(Progress::Overridden { violation });
    }
    let steps = &plan.steps;
    let mut schedule = Schedule::new(steps, options.parallelism, began);
    let mut running: InFlight<'_, usize, StepOutcome> = Vec::new();
    let mut cancelled = false;
    loop {
        if !cancelled && options.cancel.load(Ordering::SeqCst) {
            cancelled = true;
            events(Progress::Cancelling {
                running: running.len(),
            });
        }
        if !cancelled {
            schedule.advance(events, |i| {
                running.push((i, Box::pin(step::run(&ctx, &steps[i]))));
            });
        }
        if running.is_empty() {
            break;
        }
        let (i, outcome) = next_finished(&mut running).await;
        schedule.finish(i, outcome, events);
    }
    let steps = schedule.close(cancelled, events);
    Report {
        steps,
        notices: std::mem::take(&mut ctx.notices.lock().unwrap_or_else(|e| e.into_inner())),
        overridden,
        cancelled,
        duration: began.elapsed(),
    }
}

#[cfg(test)]
mod tests;
