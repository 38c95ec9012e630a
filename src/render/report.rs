//! Rendering of apply progress and reports: one line per finished step (CI
//! logs), the warning and failure explanations, and the closing summary.

use std::io::{self, Write};
use std::time::Duration;

use super::plan::Style;
use super::words;
use crate::apply::{NoticeReport, Progress, Report, SkipReason, StepOutcome, Warning};
use crate::plan::{ExpectedWarning, Op, Plan};

/// What a downgraded warning means for the admin. `op` is the step's
/// operation, which names the pool.
pub fn warning(op: Option<&Op>, w: &Warning) -> String {
    let pool = match op {
        Some(Op::RemoveMember { pool, .. }) => format!("pool {pool}"),
        _ => "the pool".to_owned(),
    };
    match &w.warning {
        ExpectedWarning::LbServiceUninstallFailed { destination } => {
            format!(
                "{destination} left {pool}; its load-balancing service could not be uninstalled because the host \
                 is offline. It stays installed until the host is back online; then the first apply of this stack \
                 removes it, whatever pools the host is in, unless it is in a load-balanced pool again{}",
                if w.expected {
                    ""
                } else {
                    " (this warning was not announced by the plan)"
                }
            )
        }
    }
}

fn seconds(d: Duration) -> String {
    if d.as_secs() >= 1 {
        words::duration(d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The outcome of one step in a few words.
pub fn outcome(plan: &Plan, step: usize, outcome: &StepOutcome) -> String {
    match outcome {
        StepOutcome::Done => "done".to_owned(),
        StepOutcome::Warning(w) => format!(
            "warning: {}",
            warning(plan.steps.get(step).map(|s| &s.op), w)
        ),
        StepOutcome::Failed(e) => format!("failed: {e}"),
        StepOutcome::Skipped(SkipReason::DependencyFailed { step }) => {
            let what = plan
                .steps
                .get(*step)
                .map(|s| words::step(&s.op))
                .unwrap_or_default();
            format!("skipped: step {} ({what}) did not succeed", step + 1)
        }
        StepOutcome::Skipped(SkipReason::Cancelled) => "skipped: apply was interrupted".to_owned(),
    }
}

/// "waiting for 2 sessions to end, 14m left".
pub fn waiting(remaining_sessions: u32, time_left: Duration) -> String {
    format!(
        "waiting for {} to end, {} left",
        words::count(remaining_sessions, "session", "sessions"),
        seconds(time_left)
    )
}

/// "2 users still logged on, disconnecting the rest in 9m58s".
pub fn lead_time(remaining_sessions: u32, time_left: Duration) -> String {
    format!(
        "{} still logged on, disconnecting the rest in {}",
        words::count(remaining_sessions, "user", "users"),
        seconds(time_left)
    )
}

/// "rds-02: of 3 users notified, 1 logged off by themselves and 2 were
/// disconnected".
pub fn notice(plan: &Plan, notice: &NoticeReport) -> String {
    let destination = plan
        .steps
        .get(notice.step)
        .and_then(|s| s.op.destination())
        .unwrap_or("the destination");
    format!(
        "{destination}: of {} notified, {} logged off by themselves and {} disconnected",
        words::count(notice.notified, "user", "users"),
        notice.logged_off,
        match notice.disconnected {
            1 => "1 was".to_owned(),
            n => format!("{n} were"),
        }
    )
}

/// One log line for an apply event, or `None` for events only a live
/// progress display shows.
pub fn event_line(plan: &Plan, event: &Progress) -> Option<String> {
    let total = plan.steps.len();
    let what = |step: usize| {
        plan.steps
            .get(step)
            .map(|s| words::step(&s.op))
            .unwrap_or_default()
    };
    match event {
        Progress::StepStarted { .. } => None,
        Progress::StepFinished {
            step,
            outcome: o,
            duration,
        } => {
            let took = duration
                .map(|d| format!(" ({})", seconds(d)))
                .unwrap_or_default();
            Some(format!(
                "[{}/{total}] {}: {}{took}",
                step + 1,
                what(*step),
                outcome(plan, *step, o)
            ))
        }
        Progress::SessionsDisconnected { step, affected } => Some(format!(
            "[{}/{total}] {}",
            step + 1,
            words::disconnected(*affected)
        )),
        Progress::UsersNotified { step, affected } => Some(format!(
            "[{}/{total}] {}",
            step + 1,
            words::notified(*affected)
        )),
        Progress::LeadTime {
            remaining_sessions: 0,
            ..
        } => None,
        Progress::LeadTime {
            step,
            remaining_sessions,
            time_left,
        } => Some(format!(
            "[{}/{total}] {}",
            step + 1,
            lead_time(*remaining_sessions, *time_left)
        )),
        Progress::DrainProgress {
            remaining_sessions: 0,
            ..
        } => None,
        Progress::DrainProgress {
            step,
            remaining_sessions,
            time_left,
        } => Some(format!(
            "[{}/{total}] {}",
            step + 1,
            waiting(*remaining_sessions, *time_left)
        )),
        Progress::Cancelling { running } => Some(format!(
            "interrupted: starting no new steps, waiting for {running} running"
        )),
        Progress::Overridden { violation } => plan
            .violations
            .get(*violation)
            .map(|v| format!("overridden with --force: {}", words::violation(v))),
    }
}

/// The closing report: warnings and failures spelled out, then the summary.
pub fn report(plan: &Plan, report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    for v in report
        .overridden
        .iter()
        .filter_map(|&i| plan.violations.get(i))
    {
        writeln!(
            out,
            "{} {} ({})",
            style.yellow("overridden:"),
            words::violation(v),
            v.code()
        )?;
    }
    for r in &report.steps {
        let op = plan.steps.get(r.step).map(|s| &s.op);
        let what = op.map(words::step).unwrap_or_default();
        match &r.outcome {
            StepOutcome::Warning(w) => writeln!(
                out,
                "{} step {} ({what}): {}",
                style.yellow("warning:"),
                r.step + 1,
                warning(op, w)
            )?,
            StepOutcome::Failed(e) => writeln!(
                out,
                "{} step {} ({what}): {e}",
                style.red("error:"),
                r.step + 1
            )?,
            _ => {}
        }
    }
    for n in &report.notices {
        writeln!(out, "{}", notice(plan, n))?;
    }
    let s = report.summary();
    let head = if report.cancelled {
        "Apply interrupted"
    } else if s.failed > 0 {
        "Apply failed"
    } else {
        "Apply complete"
    };
    let overridden = match s.overridden {
        0 => String::new(),
        1 => ", 1 safety rule overridden".to_owned(),
        n => format!(", {n} safety rules overridden"),
    };
    let line = format!(
        "{head}: {} done, {} {}, {} failed, {} skipped{overridden} in {}",
        s.done,
        s.warnings,
        if s.warnings == 1 {
            "warning"
        } else {
            "warnings"
        },
        s.failed,
        s.skipped,
        seconds(report.duration)
    );
    let painted = if s.failed > 0 || report.cancelled {
        style.red(&line)
    } else {
        style.green(&line)
    };
    writeln!(out, "{}", style.bold(&painted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_one_are_singular() {
        assert_eq!(
            waiting(1, Duration::from_secs(90)),
            "waiting for 1 session to end, 1m30s left"
        );
        assert_eq!(words::disconnected(1), "disconnected 1 session");
        assert_eq!(words::disconnected(4), "disconnected 4 sessions");
        assert_eq!(
            lead_time(1, Duration::from_secs(598)),
            "1 user still logged on, disconnecting the rest in 9m58s"
        );
    }
}
