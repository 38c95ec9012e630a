//! What `apply` shows, by `--format`: the plan, progress as it happens, and
//! the closing report. `text`: progress on stderr (a live bar on a
//! terminal), plan and report on stdout. `json`: one event object per line
//! on stdout, the report last; the plan as text on stderr. `github`: as
//! text, plus workflow commands for violations, warnings and failures.
//! `gitlab`: every text on stderr, and one code quality report on stdout
//! when the apply ends.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::apply::{Progress, Report};
use crate::cli::{ApplyFormat, PlanFormat};
use crate::commands::annotate::{self, Forge};
use crate::commands::context::Context;
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;
use crate::config::Located;
use crate::plan::Plan;
use crate::render::annotations::Annotation;
use crate::render::events::{self, Event};
use crate::render::{report, words};

/// The output of one apply.
pub struct ApplyOutput<'a> {
    ctx: &'a Context,
    format: ApplyFormat,
    /// The config or plan file given, where GitLab places unlocated findings.
    path: PathBuf,
    /// GitLab's findings, written as one report by [`ApplyOutput::finish`].
    pending: RefCell<Vec<Annotation>>,
}

impl<'a> ApplyOutput<'a> {
    pub fn new(ctx: &'a Context, format: ApplyFormat, path: &Path) -> ApplyOutput<'a> {
        ApplyOutput {
            ctx,
            format,
            path: path.to_owned(),
            pending: RefCell::new(Vec::new()),
        }
    }

    pub fn ctx(&self) -> &Context {
        self.ctx
    }

    /// Annotates the violations and predicted warnings of a saved plan
    /// (there is no config to locate them in).
    pub fn saved_plan(&self, plan: &Plan, force: bool) -> Result<(), Error> {
        self.annotate(annotate::of_plan(None, plan, force))
    }

    /// Shows the plan about to run and annotates its violations and
    /// predicted warnings (located in `config` when planned from one).
    pub fn plan(&self, plan: &Plan, config: Option<&Located>, force: bool) -> Result<(), Error> {
        self.annotate(annotate::of_plan(config, plan, force))?;
        let as_format = match self.format {
            ApplyFormat::Text | ApplyFormat::Github => PlanFormat::Text,
            // Stdout is the machine's: the plan goes to stderr.
            ApplyFormat::Json | ApplyFormat::Gitlab => PlanFormat::Gitlab,
        };
        self.ctx.render(plan, as_format)
    }

    /// Annotates findings: at once for GitHub, in the closing report for
    /// GitLab.
    fn annotate(&self, items: Vec<Annotation>) -> Result<(), Error> {
        match Forge::of_apply(self.format) {
            Some(Forge::Github) => annotate::write(Forge::Github, &items, &self.path),
            Some(Forge::Gitlab) => {
                self.pending.borrow_mut().extend(items);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Writes GitLab's report; every other format has written all already.
    pub fn finish(&self) -> Result<(), Error> {
        if Forge::of_apply(self.format) == Some(Forge::Gitlab) {
            annotate::write(Forge::Gitlab, &self.pending.borrow(), &self.path)?;
        }
        Ok(())
    }

    /// The progress display while `plan` runs.
    pub fn progress<'p>(&self, plan: &'p Plan) -> Progressing<'p> {
        if self.format == ApplyFormat::Json {
            let _ = events::write(&mut output::stdout(), &Event::started(plan));
            return Progressing {
                plan,
                bar: None,
                json: true,
            };
        }
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(plan.steps.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progressing {
            plan,
            bar,
            json: false,
        }
    }

    /// The closing report, and the annotations of its warnings and failures.
    pub fn report(
        &self,
        plan: &Plan,
        result: &Report,
        config: Option<&Located>,
    ) -> Result<(), Error> {
        self.annotate(annotate::of_report(config, plan, result))?;
        match self.format {
            ApplyFormat::Json => events::write(&mut output::stdout(), &Event::report(result))
                .during(IoAction::WriteStdout),
            ApplyFormat::Gitlab => {
                report::report(plan, result, Default::default(), &mut output::stderr())
                    .during(IoAction::WriteStderr)
            }
            ApplyFormat::Text | ApplyFormat::Github => {
                report::report(plan, result, self.ctx.stdout, &mut output::stdout())
                    .during(IoAction::WriteStdout)
            }
        }
    }
}

/// Progress of a running apply: a live bar on a terminal, log lines on
/// stderr otherwise, or JSON event lines on stdout.
pub struct Progressing<'p> {
    plan: &'p Plan,
    bar: Option<ProgressBar>,
    json: bool,
}

impl Progressing<'_> {
    /// Shows one event. A display that fails does not stop the apply.
    pub fn event(&self, event: &Progress) {
        let plan = self.plan;
        if self.json {
            let _ = events::write(&mut output::stdout(), &Event::of(plan, event));
            return;
        }
        let line = report::event_line(plan, event);
        let Some(bar) = &self.bar else {
            if let Some(line) = line {
                let _ = writeln!(output::stderr(), "{line}");
            }
            return;
        };
        match event {
            Progress::DrainProgress { .. } | Progress::LeadTime { .. } => {
                bar.set_message(line.unwrap_or_default())
            }
            Progress::StepStarted { step } => bar.set_message(
                plan.steps
                    .get(*step)
                    .map(|s| words::step(&s.op))
                    .unwrap_or_default(),
            ),
            event => {
                if matches!(event, Progress::StepFinished { .. }) {
                    bar.inc(1);
                }
                if let Some(line) = line {
                    bar.println(line);
                }
            }
        }
    }
}

impl Drop for Progressing<'_> {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
