//! The words for a rehearsal's findings, shared by the text and markdown
//! renderings: the one-line verdict, and each step's result.

use super::words;
use crate::plan::{Plan, Rehearsal, Rehearsed, RehearsedStep};

/// "rehearsed against a copy of live state taken 12:04:31 UTC: 5 of 5
/// steps ok, 1 expected warning, converges, about 40s".
pub fn verdict(r: &Rehearsal) -> String {
    let t = r.tally();
    let mut parts = vec![format!(
        "{} of {} ok",
        t.ok,
        words::count(r.steps.len() as u32, "step", "steps")
    )];
    for (n, one, many) in [
        (t.expected_warnings, "expected warning", "expected warnings"),
        (
            t.unpredicted_warnings,
            "unpredicted warning",
            "unpredicted warnings",
        ),
        (t.errors, "error", "errors"),
        (t.blocked, "wait for users", "waits for users"),
        (t.skipped, "step not reached", "steps not reached"),
    ] {
        if n > 0 {
            parts.push(words::count(n as u32, one, many));
        }
    }
    parts.push(
        match r.converges {
            Some(true) => "converges",
            Some(false) => "does not converge",
            None => "convergence not checked (no config)",
        }
        .to_owned(),
    );
    parts.push(match r.estimated_ms {
        0..1000 => "under 1s".to_owned(),
        ms => format!("about {}", words::duration(ms.div_ceil(1000))),
    });
    format!(
        "rehearsed against a copy of live state taken {}: {}",
        clock(r.taken_at_ms),
        parts.join(", ")
    )
}

/// `HH:MM:SS UTC` of a unix time in milliseconds.
fn clock(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// What the copy answered one step.
pub fn result(step: &RehearsedStep) -> String {
    match &step.outcome {
        Rehearsed::Done => "done".to_owned(),
        Rehearsed::ExpectedWarning { code } => format!("the expected warning ({code})"),
        Rehearsed::UnpredictedWarning { code, message } => {
            format!("unpredicted warning: {message} ({code})")
        }
        Rehearsed::Error { message, .. } => format!("error: {message}"),
        Rehearsed::Blocked {
            wait_seconds,
            active_sessions,
        } => format!(
            "would wait up to {} unless users log off ({} on the host)",
            words::duration(*wait_seconds),
            words::count(*active_sessions, "active session", "active sessions")
        ),
        Rehearsed::Skipped { after: Some(after) } => {
            format!("not reached: step {} did not succeed", after + 1)
        }
        Rehearsed::Skipped { after: None } => "not reached".to_owned(),
    }
}

/// "3. remove rds-02 from pool live: error: ...", for each step.
pub fn lines(plan: &Plan, r: &Rehearsal) -> Vec<String> {
    r.steps
        .iter()
        .map(|s| {
            let what = plan
                .steps
                .get(s.step)
                .map(|p| words::step(&p.op))
                .unwrap_or_default();
            format!("{}. {what}: {}", s.step + 1, result(s))
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A rehearsal of steps that met `outcomes`, taken 12:04:31 UTC, about 40s.
    pub(in crate::render) fn rehearsal(
        outcomes: Vec<Rehearsed>,
        converges: Option<bool>,
    ) -> Rehearsal {
        Rehearsal {
            taken_at_ms: 1_800_014_671_000,
            latency_ms: 20,
            parallelism: 10,
            steps: outcomes
                .into_iter()
                .enumerate()
                .map(|(step, outcome)| RehearsedStep { step, outcome })
                .collect(),
            events: Vec::new(),
            converges,
            estimated_ms: 39_200,
        }
    }

    #[test]
    fn the_verdict_counts_what_the_copy_answered() {
        let warned = Rehearsed::ExpectedWarning {
            code: "lb_service_uninstall_failed".to_owned(),
        };
        let clean = rehearsal(
            vec![
                Rehearsed::Done,
                Rehearsed::Done,
                Rehearsed::Done,
                Rehearsed::Done,
                warned,
            ],
            Some(true),
        );
        assert_eq!(
            verdict(&clean),
            "rehearsed against a copy of live state taken 12:04:31 UTC: 5 of 5 steps ok, \
             1 expected warning, converges, about 40s"
        );
        let failed = rehearsal(
            vec![
                Rehearsed::Blocked {
                    wait_seconds: 900,
                    active_sessions: 2,
                },
                Rehearsed::Skipped { after: Some(0) },
                Rehearsed::Error {
                    code: Some("in_use".to_owned()),
                    message: "refused".to_owned(),
                },
            ],
            Some(false),
        );
        assert_eq!(
            verdict(&failed),
            "rehearsed against a copy of live state taken 12:04:31 UTC: 0 of 3 steps ok, 1 error, \
             1 wait for users, 1 step not reached, does not converge, about 40s"
        );
        assert_eq!(
            result(&failed.steps[0]),
            "would wait up to 15m unless users log off (2 active sessions on the host)"
        );
        assert_eq!(
            result(&failed.steps[1]),
            "not reached: step 1 did not succeed"
        );
    }
}
