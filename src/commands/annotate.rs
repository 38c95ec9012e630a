//! `--format github|gitlab`: which findings of a command become code-review
//! annotations (config diagnostics, violations, predicted warnings, apply
//! warnings and failures), located in the config where it has a place for
//! them, and written to stdout: workflow commands as they come for GitHub,
//! one code quality report at the end for GitLab.

use std::path::Path;

use crate::apply::{Report, StepOutcome};
use crate::cli::{ApplyFormat, DiagnosticFormat, PlanFormat};
use crate::commands::context::violation_diagnostic;
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;
use crate::config::Located;
use crate::contract::problem::codes;
use crate::diagnostic::Diagnostic;
use crate::plan::{ExpectedWarning, Op, Plan};
use crate::render::annotations::{self, Annotation};
use crate::render::{report, words};

/// Where annotations go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitHub Actions workflow commands.
    Github,
    /// A GitLab code quality report.
    Gitlab,
}

impl Forge {
    pub fn of_validate(format: DiagnosticFormat) -> Option<Forge> {
        match format {
            DiagnosticFormat::Github => Some(Forge::Github),
            DiagnosticFormat::Gitlab => Some(Forge::Gitlab),
            DiagnosticFormat::Text | DiagnosticFormat::Json => None,
        }
    }

    pub fn of_plan(format: PlanFormat) -> Option<Forge> {
        match format {
            PlanFormat::Github => Some(Forge::Github),
            PlanFormat::Gitlab => Some(Forge::Gitlab),
            PlanFormat::Text | PlanFormat::Json | PlanFormat::Markdown => None,
        }
    }

    pub fn of_apply(format: ApplyFormat) -> Option<Forge> {
        match format {
            ApplyFormat::Github => Some(Forge::Github),
            ApplyFormat::Gitlab => Some(Forge::Gitlab),
            ApplyFormat::Text | ApplyFormat::Json => None,
        }
    }
}

/// Writes `items` to stdout for `forge`; `config_path` is where GitLab
/// places findings without a place of their own.
pub fn write(forge: Forge, items: &[Annotation], config_path: &Path) -> Result<(), Error> {
    let workdir = std::env::current_dir().unwrap_or_default();
    let out = &mut output::stdout();
    match forge {
        Forge::Github => annotations::github(out, items, &workdir),
        Forge::Gitlab => annotations::gitlab(out, items, &workdir, &config_path.to_string_lossy()),
    }
    .during(IoAction::WriteStdout)
}

/// Config diagnostics as annotations.
pub fn of_diagnostics(items: &[Diagnostic]) -> Vec<Annotation> {
    items.iter().map(Annotation::from).collect()
}

/// A plan's violations (warnings under `force`) and predicted warnings,
/// located in `config` when the plan was made from one.
pub fn of_plan(config: Option<&Located>, plan: &Plan, force: bool) -> Vec<Annotation> {
    // A plan made with --force carries its override.
    let force = force || plan.forced;
    let violations = plan.violations.iter().map(|v| match config {
        Some(config) => Annotation::from(&violation_diagnostic(config, v, force)),
        None => {
            let mut a = Annotation::error(v.code(), words::violation(v));
            if force && v.can_be_overridden() {
                a.severity = crate::diagnostic::Severity::Warning;
            }
            a
        }
    });
    let warnings = plan.steps.iter().filter_map(|s| {
        let w = s.expected_warning.as_ref()?;
        let mut a = Annotation::warning(warning_code(w), words::expected_warning(w));
        a.place = member_place(config, &s.op);
        Some(a)
    });
    violations.chain(warnings).collect()
}

/// The warnings and failures of an apply, each at the config line of the
/// resource its step belongs to.
pub fn of_report(config: Option<&Located>, plan: &Plan, result: &Report) -> Vec<Annotation> {
    result
        .steps
        .iter()
        .filter_map(|r| {
            let step = plan.steps.get(r.step)?;
            let what = words::step(&step.op);
            let mut a = match &r.outcome {
                StepOutcome::Warning(w) => Annotation::warning(
                    w.problem.code.clone(),
                    format!(
                        "step {} ({what}): {}",
                        r.step + 1,
                        report::warning(Some(&step.op), w)
                    ),
                ),
                StepOutcome::Failed(e) => Annotation::error(
                    e.code().unwrap_or("apply::failed").to_owned(),
                    format!("step {} ({what}) failed: {e}", r.step + 1),
                ),
                StepOutcome::Done | StepOutcome::Skipped(_) => return None,
            };
            a.place = member_place(config, &step.op).or_else(|| {
                let location = config?.locate(&step.cause)?;
                Some((location.file, location.line, location.column))
            });
            Some(a)
        })
        .collect()
}

/// Where the config lists the member a step acts on.
fn member_place(config: Option<&Located>, op: &Op) -> Option<(String, u32, u32)> {
    let (pool, destination) = match op {
        Op::RemoveMember { pool, destination }
        | Op::AddMember { pool, destination }
        | Op::DrainSessions {
            pool, destination, ..
        }
        | Op::ClearSticky { pool, destination } => (pool, destination),
        _ => return None,
    };
    let location = config?.locate_member(pool, destination)?;
    Some((location.file, location.line, location.column))
}

/// The broker's problem code a predicted warning stands for.
fn warning_code(warning: &ExpectedWarning) -> &'static str {
    match warning {
        ExpectedWarning::LbServiceUninstallFailed { .. } => codes::LB_SERVICE_UNINSTALL_FAILED,
    }
}
