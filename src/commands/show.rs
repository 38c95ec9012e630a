//! `poolform show PLANFILE`: renders a saved plan after checking its format
//! version and checksum.

use std::io::{self, Write};

use crate::cli::ShowArgs;
use crate::commands::ExitStatus;
use crate::commands::context::{Context, read_plan};

pub fn run(ctx: &Context, args: &ShowArgs) -> io::Result<ExitStatus> {
    match read_plan(&args.planfile) {
        Ok(plan) => {
            ctx.render(&plan, args.format)?;
            Ok(ExitStatus::Success)
        }
        Err(message) => {
            writeln!(io::stderr().lock(), "poolform: {message}")?;
            Ok(ExitStatus::Rejected)
        }
    }
}
