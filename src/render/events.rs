//! `apply --format json`: one JSON object per line for every apply event,
//! ending with the report, for change tickets and audit logs. The shape of a
//! line is `schema/apply-events.schema.json`, generated from these types.

use std::io::{self, Write};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::{report, words};
use crate::apply::{Progress, Report, StepOutcome};
use crate::plan::Plan;

/// Bumped whenever a line's shape changes incompatibly.
pub const EVENTS_VERSION: u32 = 1;

/// One line of `apply --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
#[schemars(title = "poolform apply event")]
pub enum Event {
    /// The first line: which plan runs.
    Started {
        /// Version of the event lines' shape.
        version: u32,
        stack: String,
        /// The plan's checksum, as in its saved file.
        checksum: String,
        /// Number of steps in the plan.
        steps: usize,
    },
    /// A step began.
    StepStarted {
        /// `id` of the step in the plan.
        step: usize,
        /// The step in words.
        description: String,
    },
    /// Progress of a running step: users notified, sessions disconnected,
    /// or a drain waiting for sessions to end (or for its lead time).
    Progress {
        step: usize,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        notified_sessions: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        disconnected_sessions: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        remaining_sessions: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds_left: Option<u64>,
    },
    /// A step succeeded.
    Done {
        step: usize,
        description: String,
        duration_ms: u64,
    },
    /// A step succeeded with a warning (the broker's error left the wanted
    /// state in place).
    Warning {
        step: usize,
        description: String,
        /// The broker's problem code.
        code: String,
        message: String,
        /// Whether the plan announced this warning.
        expected: bool,
        duration_ms: u64,
    },
    /// A step failed; its dependents are skipped.
    Failed {
        step: usize,
        description: String,
        /// The broker's problem code, when it answered with one.
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        message: String,
        duration_ms: u64,
    },
    /// A step did not run.
    Skipped {
        step: usize,
        description: String,
        reason: String,
    },
    /// Interrupted: no new step starts; running ones finish.
    Cancelling { running: usize },
    /// A safety rule the plan breaks, overridden with `--force`: announced
    /// before the first step.
    Overridden {
        /// The violation's code, e.g. `plan::min_members`.
        rule: String,
        message: String,
    },
    /// The last line.
    Report {
        /// `complete`, `failed` or `interrupted`.
        outcome: String,
        done: usize,
        warnings: usize,
        failed: usize,
        skipped: usize,
        /// Safety rules overridden with `--force`.
        overridden: usize,
        duration_ms: u64,
        /// Every drain that gave notice: how its users left.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notices: Vec<Notice>,
    },
}

/// How the users of a drain with a notice left.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Notice {
    /// `id` of the drain step in the plan.
    pub step: usize,
    pub notified: u32,
    /// Logged off by themselves within the lead time.
    pub logged_off: u32,
    /// Disconnected when the lead time was over.
    pub disconnected: u32,
}

fn millis(duration: Option<Duration>) -> u64 {
    duration.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Event {
    /// The first line for `plan`.
    pub fn started(plan: &Plan) -> Event {
        Event::Started {
            version: EVENTS_VERSION,
            stack: plan.stack.clone(),
            checksum: plan.checksum.clone(),
            steps: plan.steps.len(),
        }
    }

    /// The line for an apply progress event.
    pub fn of(plan: &Plan, progress: &Progress) -> Event {
        let description = |step: usize| {
            plan.steps
                .get(step)
                .map(|s| words::step(&s.op))
                .unwrap_or_default()
        };
        match progress {
            Progress::StepStarted { step } => Event::StepStarted {
                step: *step,
                description: description(*step),
            },
            Progress::StepFinished {
                step,
                outcome,
                duration,
            } => finished(plan, *step, description(*step), outcome, *duration),
            Progress::SessionsDisconnected { step, affected } => Event::Progress {
                step: *step,
                message: words::disconnected(*affected),
                notified_sessions: None,
                disconnected_sessions: Some(*affected),
                remaining_sessions: None,
                seconds_left: None,
            },
            Progress::UsersNotified { step, affected } => Event::Progress {
                step: *step,
                message: words::notified(*affected),
                notified_sessions: Some(*affected),
                disconnected_sessions: None,
                remaining_sessions: None,
                seconds_left: None,
            },
            Progress::DrainProgress {
                step,
                remaining_sessions,
                time_left,
            } => Event::Progress {
                step: *step,
                message: report::waiting(*remaining_sessions, *time_left),
                notified_sessions: None,
                disconnected_sessions: None,
                remaining_sessions: Some(*remaining_sessions),
                seconds_left: Some(time_left.as_secs()),
            },
            Progress::LeadTime {
                step,
                remaining_sessions,
                time_left,
            } => Event::Progress {
                step: *step,
                message: report::lead_time(*remaining_sessions, *time_left),
                notified_sessions: None,
                disconnected_sessions: None,
                remaining_sessions: Some(*remaining_sessions),
                seconds_left: Some(time_left.as_secs()),
            },
            Progress::Cancelling { running } => Event::Cancelling { running: *running },
            Progress::Overridden { violation } => {
                let violation = &plan.violations[*violation];
                Event::Overridden {
                    rule: violation.code().to_owned(),
                    message: words::violation(violation),
                }
            }
        }
    }

    /// The last line.
    pub fn report(report: &Report) -> Event {
        let s = report.summary();
        let outcome = if report.cancelled {
            "interrupted"
        } else if s.failed > 0 {
            "failed"
        } else {
            "complete"
        };
        Event::Report {
            outcome: outcome.to_owned(),
            done: s.done,
            warnings: s.warnings,
            failed: s.failed,
            skipped: s.skipped,
            overridden: s.overridden,
            duration_ms: millis(Some(report.duration)),
            notices: report
                .notices
                .iter()
                .map(|n| Notice {
                    step: n.step,
                    notified: n.notified,
                    logged_off: n.logged_off,
                    disconnected: n.disconnected,
                })
                .collect(),
        }
    }
}

fn finished(
    plan: &Plan,
    step: usize,
    description: String,
    outcome: &StepOutcome,
    duration: Option<Duration>,
) -> Event {
    let duration_ms = millis(duration);
    match outcome {
        StepOutcome::Done => Event::Done {
            step,
            description,
            duration_ms,
        },
        StepOutcome::Warning(w) => Event::Warning {
            step,
            description,
            code: w.problem.code.clone(),
            message: report::warning(plan.steps.get(step).map(|s| &s.op), w),
            expected: w.expected,
            duration_ms,
        },
        StepOutcome::Failed(e) => Event::Failed {
            step,
            description,
            code: e.code().map(str::to_owned),
            message: e.to_string(),
            duration_ms,
        },
        StepOutcome::Skipped(_) => Event::Skipped {
            step,
            description,
            reason: report::outcome(plan, step, outcome)
                .trim_start_matches("skipped: ")
                .to_owned(),
        },
    }
}

/// Writes one event as a line of JSON.
pub fn write(out: &mut dyn Write, event: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event).map_err(io::Error::from)?;
    writeln!(out)?;
    out.flush()
}

/// JSON Schema of one event line, for `schema/apply-events.schema.json`.
pub fn json_schema() -> schemars::Schema {
    crate::json_schema::draft07::<Event>()
}
