//! What a rehearsal found: the plan run by the real apply engine against a
//! copy of live state, step by step, with the events the copy logged, whether
//! a plan afterwards showed no changes, and how long the apply would take.
//! Pure data, carried in the plan document (and sealed by its checksum).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The findings of one rehearsal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rehearsal {
    /// When the copy of live state was read (unix milliseconds).
    pub taken_at_ms: u64,
    /// The live broker's median read latency, which every call on the copy
    /// took, in milliseconds.
    pub latency_ms: u64,
    /// Steps run at once, at most, as the apply would.
    pub parallelism: usize,
    /// What became of each step, in plan order.
    pub steps: Vec<RehearsedStep>,
    /// The events the copy logged, in order: what the apply is predicted to
    /// make the live broker log (its lease aside).
    pub events: Vec<RehearsedEvent>,
    /// Whether a plan against the copy afterwards showed no changes; `None`
    /// when there was no config to plan from (a saved plan).
    pub converges: Option<bool>,
    /// The apply's duration on the copy's clock, in milliseconds.
    pub estimated_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RehearsedStep {
    /// `Step::id` in the plan.
    pub step: usize,
    pub outcome: Rehearsed,
}

/// What the copy answered a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rehearsed {
    Done,
    /// The warning the plan announced.
    ExpectedWarning {
        code: String,
    },
    /// A warning the plan did not announce.
    UnpredictedWarning {
        code: String,
        message: String,
    },
    /// The step failed: the apply would stop here.
    Error {
        /// The broker's problem code, when it answered with one.
        code: Option<String>,
        message: String,
    },
    /// A `wait` drain that sessions on the copy never end (nobody logs off
    /// there): the apply would wait up to this long unless users log off.
    Blocked {
        wait_seconds: u64,
        active_sessions: u32,
    },
    /// Not reached: `after`, a step it waits for, did not succeed.
    Skipped {
        after: Option<usize>,
    },
}

/// One event the copy logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RehearsedEvent {
    pub op: String,
    pub resource: String,
    /// The problem code of a partial outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Counts for the verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Done, or ended with the expected warning.
    pub ok: usize,
    pub expected_warnings: usize,
    pub unpredicted_warnings: usize,
    pub errors: usize,
    pub blocked: usize,
    pub skipped: usize,
}

impl Rehearsal {
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for s in &self.steps {
            match s.outcome {
                Rehearsed::Done => t.ok += 1,
                Rehearsed::ExpectedWarning { .. } => {
                    t.ok += 1;
                    t.expected_warnings += 1;
                }
                Rehearsed::UnpredictedWarning { .. } => t.unpredicted_warnings += 1,
                Rehearsed::Error { .. } => t.errors += 1,
                Rehearsed::Blocked { .. } => t.blocked += 1,
                Rehearsed::Skipped { .. } => t.skipped += 1,
            }
        }
        t
    }

    /// Whether the rehearsal found a step that would fail: not a `wait`
    /// drain, which users may still end by logging off.
    pub fn found_errors(&self) -> bool {
        self.tally().errors > 0
    }
}
