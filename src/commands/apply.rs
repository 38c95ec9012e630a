//! `poolform apply PATH|PLANFILE`: takes the stack's lease, plans (or loads
//! and re-checks a saved plan), asks for confirmation, executes, and reports.
//! With `--rehearse` it plans (or loads and re-checks) the same way, runs the
//! plan against a copy of the live state instead, shows what it found, and
//! stops: it only reads the broker.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::apply::{self, Lease, LockError, Options, Progress, Stale, StaleCheckError};
use crate::backend::AnyBroker;
use crate::cli::ApplyArgs;
use crate::commands::ExitStatus;
use crate::commands::annotate::Forge;
use crate::commands::apply_output::ApplyOutput;
use crate::commands::context::{
    Context, Loaded, broker_url, connect, is_plan_file, read_plan, refuse_failed_rehearsal,
    refuse_partial, refuse_unsafe, rehearsed,
};
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;
use crate::config::Located;
use crate::contract::Broker;
use crate::plan::{self, Plan, Targets};
use crate::render::words;
use crate::secret::SecretSource;

pub fn run(ctx: &Context, args: &ApplyArgs) -> Result<ExitStatus, Error> {
    let output = ApplyOutput::new(ctx, args.format, &args.path);
    if is_plan_file(&args.path)? {
        let outcome = match args.rehearse {
            true => rehearse_saved(ctx, args, &output),
            false => apply_saved(ctx, args, &output),
        };
        output.finish()?;
        return outcome;
    }
    let mut loaded = ctx.load(&args.path, Forge::of_apply(args.format))?;
    refuse_partial(&args.path, args.allow_partial)?;
    let broker = Arc::new(connect(&args.broker, Some(&loaded))?);
    if args.rehearse {
        let outcome = rehearse_planned(ctx, args, &broker, &mut loaded, &output);
        output.finish()?;
        return outcome;
    }
    let outcome = ctx.runtime()?.block_on(async {
        let options = options(args);
        let signals = watch_signals(Arc::clone(&options.cancel));
        let lease = take_lease(&broker, &loaded.desired.stack, args, &options).await?;
        let outcome = plan_and_execute(args, &broker, &mut loaded, options, &output).await;
        release(lease).await?;
        signals.abort();
        outcome
    });
    output.finish()?;
    outcome
}

/// SIGINT (Ctrl-C) and SIGTERM (what CI sends on cancel) both set the
/// apply's cancel flag instead of killing the process: no new step starts,
/// writes in flight finish, waits are abandoned, and the lease is released
/// and the report printed, all within seconds.
fn watch_signals(cancel: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let name = received_signal().await;
        cancel.store(true, Ordering::SeqCst);
        let _ = writeln!(
            io::stderr().lock(),
            "poolform: {name} received; finishing the steps in flight, starting no new ones"
        );
    })
}

/// Waits for SIGINT or SIGTERM and names the one that came.
async fn received_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => "SIGINT",
        // No handler could be installed: the default (exit) stays in force.
        Err(_) => std::future::pending().await,
    }
}

/// Under the lease: plans from the live state, shows the plan, asks, and
/// executes it.
async fn plan_and_execute(
    args: &ApplyArgs,
    broker: &AnyBroker,
    loaded: &mut Loaded,
    options: Options,
    output: &ApplyOutput<'_>,
) -> Result<ExitStatus, Error> {
    let live = broker.read_live().await.map_err(Error::ReadLive)?;
    let plan = plan_of(args, loaded, &live)?;
    output.ctx().report_violations(loaded, &plan, args.force)?;
    output.plan(&plan, Some(&loaded.config), args.force)?;
    refuse_unsafe(&plan, args.force, false)?;
    if !plan.has_changes() {
        return Ok(ExitStatus::Success);
    }
    if !args.auto_approve {
        confirm(&plan, &options.cancel).await?;
    }
    execute(args, broker, &plan, options, output, Some(&loaded.config)).await
}

/// The plan that takes `live` to the config, as made for this apply.
fn plan_of(
    args: &ApplyArgs,
    loaded: &Loaded,
    live: &crate::contract::LiveState,
) -> Result<Plan, Error> {
    let url = broker_url(&args.broker, Some(loaded))?;
    let plan = plan::compute_at(
        &loaded.desired,
        live,
        &Targets(args.targets.clone()),
        url.to_string(),
    )?;
    Ok(if args.force { plan.force() } else { plan })
}

/// `apply --rehearse PATH`: plans as the apply would, rehearses the plan
/// against a copy of the live state, and shows it; no lease, no write.
fn rehearse_planned(
    ctx: &Context,
    args: &ApplyArgs,
    broker: &AnyBroker,
    loaded: &mut Loaded,
    output: &ApplyOutput,
) -> Result<ExitStatus, Error> {
    let live = ctx
        .runtime()?
        .block_on(broker.read_live())
        .map_err(Error::ReadLive)?;
    let plan = plan_of(args, loaded, &live)?;
    let parallelism = usize::from(args.parallelism);
    let plan = rehearsed(ctx, broker, plan, Some(&loaded.desired), parallelism)?;
    output.ctx().report_violations(loaded, &plan, args.force)?;
    output.plan(&plan, Some(&loaded.config), args.force)?;
    refuse_unsafe(&plan, args.force, false)?;
    refuse_failed_rehearsal(&plan)?;
    rehearsed_only()
}

/// `apply --rehearse PLANFILE`: the saved plan is checked against the
/// broker as an apply would (same broker, nothing moved), then rehearsed
/// against a copy of the live state; without its config, whether it
/// converges is not checked.
fn rehearse_saved(
    ctx: &Context,
    args: &ApplyArgs,
    output: &ApplyOutput,
) -> Result<ExitStatus, Error> {
    if !args.targets.is_empty() {
        return Err(Error::TargetWithSavedPlan);
    }
    let plan = read_plan(&args.path)?;
    let url = broker_url(&args.broker, None)?;
    let broker = connect(&args.broker, None)?;
    ctx.runtime()?.block_on(async {
        same_broker(&broker, &url.to_string(), &plan).await?;
        check_fresh(&broker, &plan).await
    })?;
    let plan = rehearsed(ctx, &broker, plan, None, usize::from(args.parallelism))?;
    output.plan(&plan, None, args.force)?;
    refuse_unsafe(&plan, args.force, true)?;
    refuse_failed_rehearsal(&plan)?;
    rehearsed_only()
}

/// Closes a rehearsal that found no failing step: the plan and its results
/// look like an apply's, so say that none of it happened.
fn rehearsed_only() -> Result<ExitStatus, Error> {
    writeln!(
        output::stderr(),
        "Rehearsed only: nothing was written to the broker; apply without --rehearse to carry it out."
    )
    .during(IoAction::WriteStderr)?;
    Ok(ExitStatus::Success)
}

fn apply_saved(ctx: &Context, args: &ApplyArgs, output: &ApplyOutput) -> Result<ExitStatus, Error> {
    if !args.targets.is_empty() {
        return Err(Error::TargetWithSavedPlan);
    }
    let plan = read_plan(&args.path)?;
    {
        let mut err = output::stderr();
        for v in plan.blocking(args.force) {
            writeln!(err, "violation: {}", words::violation(v)).during(IoAction::WriteStderr)?;
        }
    }
    output.saved_plan(&plan, args.force)?;
    refuse_unsafe(&plan, args.force, true)?;
    let url = broker_url(&args.broker, None)?;
    let broker = Arc::new(connect(&args.broker, None)?);
    ctx.runtime()?.block_on(async {
        same_broker(&broker, &url.to_string(), &plan).await?;
        // Checked before the lease so that a stale plan causes no write at
        // all, and again under it so that nothing slips in between.
        check_fresh(&broker, &plan).await?;
        let options = options(args);
        let signals = watch_signals(Arc::clone(&options.cancel));
        let lease = take_lease(&broker, &plan.stack, args, &options).await?;
        let outcome = match check_fresh(&broker, &plan).await {
            Ok(()) => execute(args, &broker, &plan, options, output, None).await,
            Err(stale) => Err(stale),
        };
        release(lease).await?;
        signals.abort();
        outcome
    })
}

/// Refuses a saved plan made against another broker, before anything is
/// written: a broker started from this one's snapshot or seed is another.
async fn same_broker(broker: &AnyBroker, url: &str, plan: &Plan) -> Result<(), Error> {
    let id = broker.identity().await.map_err(Error::Identity)?;
    if id == plan.broker.id {
        return Ok(());
    }
    Err(Error::OtherBroker {
        planned: plan.broker.clone(),
        url: url.to_owned(),
        id,
    })
}

fn options(args: &ApplyArgs) -> Options {
    Options {
        parallelism: usize::from(args.parallelism),
        force: args.force,
        ..Options::default()
    }
}

/// Refuses a saved plan whose resources changed since it was made, after
/// listing them.
async fn check_fresh(broker: &AnyBroker, plan: &Plan) -> Result<(), Error> {
    match apply::check_fresh(broker, plan).await {
        Ok(()) => Ok(()),
        Err(StaleCheckError::Stale(changed)) => {
            list_stale(&changed).during(IoAction::WriteStderr)?;
            Err(Error::Stale {
                changed: changed.len(),
            })
        }
        Err(StaleCheckError::Broker(e)) => Err(Error::CheckFresh(e)),
    }
}

fn list_stale(changed: &[Stale]) -> io::Result<()> {
    let mut err = output::stderr();
    writeln!(err, "Changed since the plan was made:")?;
    for s in changed {
        let was = s
            .planned
            .map_or("absent".to_owned(), |r| format!("revision {r}"));
        let now = s
            .live
            .map_or("absent".to_owned(), |r| format!("revision {r}"));
        writeln!(err, "  {} ({was} when planned, {now} now)", s.address)?;
    }
    Ok(())
}

async fn take_lease(
    broker: &Arc<AnyBroker>,
    stack: &str,
    args: &ApplyArgs,
    options: &Options,
) -> Result<Lease<AnyBroker>, Error> {
    let holder = apply::default_holder();
    Lease::acquire(
        broker.clone(),
        stack,
        &holder,
        args.lock_ttl,
        args.lock_timeout,
        options.cancel.clone(),
    )
    .await
    .map_err(|e| match e {
        LockError::Held {
            stack,
            holder,
            expires_at,
        } => Error::Locked {
            stack,
            holder: holder.unwrap_or_else(|| "another apply".to_owned()),
            expires_in: expires_at.map(seconds_until),
        },
        LockError::Cancelled { .. } => Error::Cancelled,
        LockError::Broker(e) => Error::Lock(e),
    })
}

/// Seconds from now until `unix_seconds`; 0 once it has passed.
fn seconds_until(unix_seconds: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    unix_seconds.saturating_sub(now)
}

/// Gives the lease back. A failure only delays the next apply until the
/// lease runs out, so it is a warning and the apply's outcome stands.
async fn release(lease: Lease<AnyBroker>) -> Result<(), Error> {
    if let Err(e) = lease.release().await {
        writeln!(
            output::stderr(),
            "warning: could not release the stack's lock (it expires by itself): {e}"
        )
        .during(IoAction::WriteStderr)?;
    }
    Ok(())
}

/// Asks on the terminal; refuses when there is none to ask on. A signal
/// while waiting for the answer cancels (the lease is then released).
async fn confirm(plan: &Plan, cancel: &AtomicBool) -> Result<(), Error> {
    if !io::stdin().is_terminal() {
        return Err(Error::NoTerminal);
    }
    let mut err = output::stderr();
    write!(
        err,
        "\nApply these {} steps to stack {}? Only 'yes' is accepted: ",
        plan.steps.len(),
        plan.stack
    )
    .and_then(|()| err.flush())
    .during(IoAction::WriteStderr)?;
    drop(err);
    // Reading stdin blocks; on a thread of its own it cannot hold up the
    // runtime, and it is left behind if a signal comes first.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let read = io::stdin().lock().read_line(&mut answer).map(|_| answer);
        let _ = tx.send(read);
    });
    let answer = tokio::select! {
        read = rx => read.unwrap_or_else(|_| Ok(String::new())),
        () = apply::cancelled(cancel) => return Err(Error::Cancelled),
    };
    if answer.during(IoAction::ReadStdin)?.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::Cancelled)
    }
}

async fn execute(
    args: &ApplyArgs,
    broker: &AnyBroker,
    plan: &Plan,
    options: Options,
    output: &ApplyOutput<'_>,
    config: Option<&Located>,
) -> Result<ExitStatus, Error> {
    let progress = output.progress(plan);
    let on_event = |event: Progress| progress.event(&event);
    let secrets = |source: &SecretSource| source.resolve();
    let result = apply::execute(broker, plan, &options, &secrets, &on_event).await;
    drop(progress);
    output.report(plan, &result, config)?;
    let summary = result.summary();
    if summary.failed > 0 || result.cancelled {
        // The report says what failed or did not run.
        return Err(Error::Rejected);
    }
    if args.warnings_as_errors && summary.warnings > 0 {
        return Err(Error::WarningsAsErrors {
            warnings: summary.warnings,
        });
    }
    Ok(ExitStatus::Success)
}
