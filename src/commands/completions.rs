//! `poolform completions SHELL`: the shell completion script on stdout.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::commands::ExitStatus;
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;

pub fn run(shell: clap_complete::Shell) -> Result<ExitStatus, Error> {
    // clap_complete panics when its writer fails; generating into memory
    // first turns a closed pipe into an ordinary error that `main` handles.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "poolform", &mut script);
    output::stdout()
        .write_all(&script)
        .during(IoAction::WriteStdout)?;
    Ok(ExitStatus::Success)
}
