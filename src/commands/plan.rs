//! `poolform plan PATH`: load and validate the config, read the live state
//! once, compute the plan (and with `--rehearse`, run it against a copy of
//! the live state), and render it; violations become located diagnostics.

use std::io::Write;

use crate::cli::{BrokerArgs, PlanArgs};
use crate::commands::ExitStatus;
use crate::commands::annotate::{self, Forge};
use crate::commands::context::{
    Context, broker_url, connect, refuse_failed_rehearsal, refuse_partial, refuse_unsafe,
    rehearsed, runtime, save_plan,
};
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;
use crate::contract::{Broker, LiveState};
use crate::plan::{self, Targets};

/// The live state as read by a thread of its own (see `read_ahead`).
type Reading = std::thread::JoinHandle<Result<LiveState, Error>>;

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
        let live = runtime()?
            .block_on(broker.read_live())
            .map_err(Error::ReadLive);
        tracing::debug!("read the live state");
        live
    }))
}

pub fn run(ctx: &Context, args: &PlanArgs) -> Result<ExitStatus, Error> {
    tracing::debug!("planning");
    let forge = Forge::of_plan(args.format);
    let reading = read_ahead(&args.broker);
    let mut loaded = ctx.load(&args.path, forge)?;
    tracing::debug!("loaded the config");
    refuse_partial(&args.path, args.allow_partial)?;
    let live = match reading {
        // A panic there is a bug like one here, and ends the run the same way.
        Some(reading) => reading
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
        None => {
            let broker = connect(&args.broker, Some(&loaded))?;
            ctx.runtime()?
                .block_on(broker.read_live())
                .map_err(Error::ReadLive)?
        }
    };
    let url = broker_url(&args.broker, Some(&loaded))?;
    let mut plan = plan::compute_unsealed(
        &loaded.desired,
        &live,
        &Targets(args.targets.clone()),
        url.to_string(),
    )?;
    tracing::debug!(steps = plan.steps.len(), "computed the plan");
    if args.force {
        plan = plan.force();
    }
    if args.rehearse {
        let broker = connect(&args.broker, Some(&loaded))?;
        let parallelism = crate::apply::Options::default().parallelism;
        plan = rehearsed(ctx, &broker, plan, Some(&loaded.desired), parallelism)?;
    }
    // Sealing serialises the whole plan once more (tens of ms at 100k
    // members): it runs on the other core while the plan is reported and
    // rendered, which is all single-threaded. Nothing reads the checksum
    // before the JSON document's last line, which waits for it.
    let checksum = std::thread::scope(|scope| {
        let sealing = plan
            .checksum
            .is_empty()
            .then(|| scope.spawn(|| plan::checksum(&plan)));
        let seal = || match sealing {
            // A panic there is a bug like one here, and ends the run the same way.
            Some(sealing) => sealing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => plan.checksum.clone(),
        };
        ctx.report_violations(&mut loaded, &plan, args.force)?;
        if let Some(forge) = forge {
            let items = annotate::of_plan(Some(&loaded.config), &plan, args.force);
            annotate::write(forge, &items, &args.path)?;
        }
        ctx.render_sealing(&plan, args.format, seal)
    })?;
    plan.checksum = checksum;
    tracing::debug!("rendered the plan");
    if let Some(out) = &args.out {
        save_plan(&plan, out)?;
        writeln!(
            output::stderr(),
            "Saved the plan to {}; apply it with: poolform apply {}",
            out.display(),
            out.display()
        )
        .during(IoAction::WriteStderr)?;
    }
    let outcome = refuse_unsafe(&plan, args.force, false)
        .and_then(|()| refuse_failed_rehearsal(&plan))
        .map(|()| {
            if args.detailed_exitcode && plan.has_changes() {
                ExitStatus::Changes
            } else {
                ExitStatus::Success
            }
        });
    // The process ends right after this: freeing the config, the live state
    // and the plan one allocation at a time would cost tens of ms at 100k
    // members, for memory the exit hands back at once.
    std::mem::forget((loaded, live, plan));
    outcome
}
