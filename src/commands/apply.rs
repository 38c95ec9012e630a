//! `poolform apply PATH|PLANFILE`: takes the stack's lease, plans (or loads
//! and re-checks a saved plan), asks for confirmation, executes, and reports.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use indicatif::{ProgressBar, ProgressStyle};

use crate::apply::{self, Lease, LockError, Options, Progress, StaleCheckError};
use crate::backend::AnyBroker;
use crate::cli::{ApplyArgs, PlanFormat};
use crate::commands::ExitStatus;
use crate::commands::context::{Context, broker_failed, connect, read_plan};
use crate::contract::Broker;
use crate::plan::{self, Plan, Targets};
use crate::render::{report, words};
use crate::secret::SecretSource;

/// A saved plan is JSON; a config is YAML (or a directory).
fn is_plan_file(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "json")
}

pub fn run(ctx: &Context, args: &ApplyArgs) -> io::Result<ExitStatus> {
    let runtime = ctx.runtime()?;
    if is_plan_file(&args.path) {
        let plan = match read_plan(&args.path) {
            Ok(plan) => plan,
            Err(message) => return fail(&message),
        };
        if !plan.violations.is_empty() && !args.force {
            for v in &plan.violations {
                writeln!(io::stderr().lock(), "violation: {}", words::violation(v))?;
            }
            return fail("the saved plan breaks safety rules; apply refuses it unless --force");
        }
        let broker = match connect(&args.broker, None) {
            Ok(broker) => Arc::new(broker),
            Err(message) => return fail(&message),
        };
        return runtime.block_on(apply_saved(ctx, args, broker, plan));
    }
    let Some(loaded) = ctx.load(&args.path)? else {
        return Ok(ExitStatus::Rejected);
    };
    let broker = match connect(&args.broker, Some(&loaded)) {
        Ok(broker) => Arc::new(broker),
        Err(message) => return fail(&message),
    };
    runtime.block_on(async {
        let options = options(args);
        let lease = match take_lease(&broker, &loaded.desired.stack, args, &options).await? {
            Some(lease) => lease,
            None => return Ok(ExitStatus::Rejected),
        };
        let outcome = async {
            let live = match broker.read_live().await {
                Ok(live) => live,
                Err(e) => return broker_failed("cannot read the live state", &e),
            };
            let plan = match plan::compute(&loaded.desired, &live, &Targets(args.targets.clone())) {
                Ok(plan) => plan,
                Err(cycle) => return fail(&cycle.to_string()),
            };
            ctx.report_violations(&loaded, &plan, args.force)?;
            ctx.render(&plan, PlanFormat::Text)?;
            if !plan.violations.is_empty() && !args.force {
                return Ok(ExitStatus::Rejected);
            }
            if !plan.has_changes() {
                return Ok(ExitStatus::Success);
            }
            if !args.auto_approve && !confirm(&plan)? {
                return Ok(ExitStatus::Rejected);
            }
            execute(ctx, args, &broker, &plan, options.clone()).await
        }
        .await;
        release(lease).await?;
        outcome
    })
}

async fn apply_saved(
    ctx: &Context,
    args: &ApplyArgs,
    broker: Arc<AnyBroker>,
    plan: Plan,
) -> io::Result<ExitStatus> {
    // Checked before the lease so that a stale plan causes no write at all,
    // and again under it so that nothing slips in between.
    if let Some(outcome) = stale(&broker, &plan).await? {
        return Ok(outcome);
    }
    let options = options(args);
    let Some(lease) = take_lease(&broker, &plan.stack, args, &options).await? else {
        return Ok(ExitStatus::Rejected);
    };
    let outcome = match stale(&broker, &plan).await? {
        Some(outcome) => Ok(outcome),
        None => execute(ctx, args, &broker, &plan, options).await,
    };
    release(lease).await?;
    outcome
}

fn options(args: &ApplyArgs) -> Options {
    Options {
        parallelism: usize::from(args.parallelism),
        ..Options::default()
    }
}

fn fail(message: &str) -> io::Result<ExitStatus> {
    writeln!(io::stderr().lock(), "poolform: {message}")?;
    Ok(ExitStatus::Rejected)
}

/// `Some(outcome)` when the plan cannot be applied as saved.
async fn stale(broker: &AnyBroker, plan: &Plan) -> io::Result<Option<ExitStatus>> {
    match apply::check_fresh(broker, plan).await {
        Ok(()) => Ok(None),
        Err(StaleCheckError::Stale(changed)) => {
            let mut err = io::stderr().lock();
            writeln!(
                err,
                "poolform: the saved plan is stale; these resources changed since it was made:"
            )?;
            for s in &changed {
                let was = s
                    .planned
                    .map_or("absent".to_owned(), |r| format!("revision {r}"));
                let now = s
                    .live
                    .map_or("absent".to_owned(), |r| format!("revision {r}"));
                writeln!(err, "  {} ({was} when planned, {now} now)", s.address)?;
            }
            writeln!(err, "Nothing was changed. Run plan again.")?;
            Ok(Some(ExitStatus::Rejected))
        }
        Err(StaleCheckError::Broker(e)) => {
            broker_failed("cannot check the saved plan against the broker", &e).map(Some)
        }
    }
}

async fn take_lease(
    broker: &Arc<AnyBroker>,
    stack: &str,
    args: &ApplyArgs,
    options: &Options,
) -> io::Result<Option<Lease<AnyBroker>>> {
    let holder = apply::default_holder();
    match Lease::acquire(
        broker.clone(),
        stack,
        &holder,
        args.lock_ttl,
        args.lock_timeout,
        options.cancel.clone(),
    )
    .await
    {
        Ok(lease) => Ok(Some(lease)),
        Err(LockError::Held {
            stack,
            holder,
            expires_at,
        }) => {
            let who = holder.unwrap_or_else(|| "another apply".to_owned());
            let until = expires_at.map(expiry).unwrap_or_default();
            fail(&format!(
                "stack {stack} is locked by {who}{until}; wait for it to finish or pass --lock-timeout"
            ))
            .map(|_| None)
        }
        Err(LockError::Broker(e)) => {
            broker_failed("cannot take the stack's lock", &e).map(|_| None)
        }
    }
}

/// "; the lease expires in 25s" from a unix-seconds expiry.
fn expiry(expires_at: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "; the lease expires in {} unless renewed",
        words::duration(expires_at.saturating_sub(now))
    )
}

async fn release(lease: Lease<AnyBroker>) -> io::Result<()> {
    if let Err(e) = lease.release().await {
        writeln!(
            io::stderr().lock(),
            "poolform: could not release the stack's lock (it expires by itself): {e}"
        )?;
    }
    Ok(())
}

/// Asks on the terminal; refuses when there is none to ask on.
fn confirm(plan: &Plan) -> io::Result<bool> {
    if !io::stdin().is_terminal() {
        writeln!(
            io::stderr().lock(),
            "poolform: not applying: stdin is not a terminal to confirm on; pass --auto-approve"
        )?;
        return Ok(false);
    }
    let mut err = io::stderr().lock();
    write!(
        err,
        "\nApply these {} steps to stack {}? Only 'yes' is accepted: ",
        plan.steps.len(),
        plan.stack
    )?;
    err.flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() == "yes" {
        Ok(true)
    } else {
        writeln!(err, "Apply cancelled; nothing was changed.")?;
        Ok(false)
    }
}

async fn execute(
    ctx: &Context,
    args: &ApplyArgs,
    broker: &AnyBroker,
    plan: &Plan,
    options: Options,
) -> io::Result<ExitStatus> {
    let cancel = options.cancel.clone();
    // Ctrl-C stops new steps from starting; running ones finish.
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.store(true, Ordering::SeqCst);
        }
    });
    let bar = io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(plan.steps.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let on_event = |event: Progress| {
        let line = report::event_line(plan, &event);
        match (&bar, &event) {
            (Some(bar), Progress::DrainProgress { .. }) => {
                bar.set_message(line.unwrap_or_default())
            }
            (Some(bar), Progress::StepStarted { step }) => bar.set_message(
                plan.steps
                    .get(*step)
                    .map(|s| words::step(&s.op))
                    .unwrap_or_default(),
            ),
            (Some(bar), event) => {
                if matches!(event, Progress::StepFinished { .. }) {
                    bar.inc(1);
                }
                if let Some(line) = line {
                    bar.println(line);
                }
            }
            (None, _) => {
                if let Some(line) = line {
                    let _ = writeln!(io::stderr().lock(), "{line}");
                }
            }
        }
    };
    let secrets = |source: &SecretSource| source.resolve();
    let result = apply::execute(broker, plan, &options, &secrets, &on_event).await;
    watcher.abort();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report::report(plan, &result, ctx.stdout, &mut io::stdout().lock())?;
    let summary = result.summary();
    Ok(
        if summary.failed > 0
            || result.cancelled
            || (args.warnings_as_errors && summary.warnings > 0)
        {
            ExitStatus::Rejected
        } else {
            ExitStatus::Success
        },
    )
}
