//! `poolform plan PATH`: load and validate the config, read the live state
//! once, compute the plan, and render it; violations become located
//! diagnostics.

use std::io::{self, Write};

use crate::cli::{BrokerArgs, PlanArgs};
use crate::commands::ExitStatus;
use crate::commands::context::{
    self, Context, broker_failed, broker_url, connect, runtime, save_plan,
};
use crate::contract::{Broker, BrokerError, LiveState};
use crate::plan::{self, Targets};

/// The live state as read by a thread of its own (see `read_ahead`).
type Reading = std::thread::JoinHandle<Result<Result<LiveState, BrokerError>, String>>;

/// When `--broker`/`POOLFORM_BROKER` names an HTTP broker, starts reading the
/// live state at once on another thread, so that the broker's answers arrive
/// while the config loads (on a 10k-pool stack each takes a good part of the
/// plan's time). Reads only: an invalid config still ends the run before any
/// write, and the result of the read is then dropped unseen. A `file:`
/// broker waits for a valid config, so that a rejected plan creates no state
/// file.
fn read_ahead(args: &BrokerArgs) -> Option<Reading> {
    if !broker_url(args, None).ok()?.is_remote() {
        return None;
    }
    let args = args.clone();
    Some(std::thread::spawn(move || {
        let broker = connect(&args, None)?;
        let runtime = runtime().map_err(|e| e.to_string())?;
        Ok(runtime.block_on(broker.read_live()))
    }))
}

pub fn run(ctx: &Context, args: &PlanArgs) -> io::Result<ExitStatus> {
    let reading = read_ahead(&args.broker);
    let Some(loaded) = ctx.load(&args.path)? else {
        return Ok(ExitStatus::Rejected);
    };
    let read = match reading {
        Some(reading) => reading
            .join()
            .unwrap_or_else(|_| Err("the broker reader panicked".to_owned())),
        None => context::connect(&args.broker, Some(&loaded)).and_then(|broker| {
            let runtime = ctx.runtime().map_err(|e| e.to_string())?;
            Ok(runtime.block_on(broker.read_live()))
        }),
    };
    let live = match read {
        Ok(Ok(live)) => live,
        Ok(Err(e)) => return broker_failed("cannot read the live state", &e),
        Err(message) => {
            writeln!(io::stderr().lock(), "poolform: {message}")?;
            return Ok(ExitStatus::Rejected);
        }
    };
    let plan = match plan::compute(&loaded.desired, &live, &Targets(args.targets.clone())) {
        Ok(plan) => plan,
        Err(cycle) => {
            writeln!(io::stderr().lock(), "poolform: {cycle}")?;
            return Ok(ExitStatus::Rejected);
        }
    };
    ctx.report_violations(&loaded, &plan, args.force)?;
    ctx.render(&plan, args.format)?;
    if let Some(out) = &args.out {
        save_plan(&plan, out)?;
        writeln!(
            io::stderr().lock(),
            "Saved the plan to {}; apply it with: poolform apply {}",
            out.display(),
            out.display()
        )?;
    }
    Ok(if !plan.violations.is_empty() && !args.force {
        ExitStatus::Rejected
    } else if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
