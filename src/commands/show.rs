//! `poolform show PLANFILE`: renders a saved plan after checking its format
//! version and checksum.

use std::io::{self, Write};
use std::path::Path;

use crate::cli::ShowArgs;
use crate::commands::ExitStatus;
use crate::commands::plan::render;
use crate::plan::Plan;

/// Reads and verifies a saved plan; the error says what is wrong with it.
pub fn read(path: &Path) -> Result<Plan, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let plan: Plan = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a poolform plan file: {e}", path.display()))?;
    plan.verify()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(plan)
}

pub fn run(args: &ShowArgs, color: bool) -> io::Result<ExitStatus> {
    match read(&args.planfile) {
        Ok(plan) => {
            render(&plan, args.format, color, &mut io::stdout().lock())?;
            Ok(ExitStatus::Success)
        }
        Err(message) => {
            writeln!(io::stderr().lock(), "poolform: {message}")?;
            Ok(ExitStatus::Rejected)
        }
    }
}
