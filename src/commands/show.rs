//! `poolform show PLANFILE`: renders a saved plan after checking its format
//! version and checksum.

use crate::cli::ShowArgs;
use crate::commands::ExitStatus;
use crate::commands::context::{Context, read_plan};
use crate::commands::error::Error;

pub fn run(ctx: &Context, args: &ShowArgs) -> Result<ExitStatus, Error> {
    ctx.render(&read_plan(&args.planfile)?, args.format.into())?;
    Ok(ExitStatus::Success)
}
