//! The `poolform` binary: parses flags, dispatches one command, and decides
//! the process exit code in one place.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use poolform::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "poolform",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Broker(command) => poolform::commands::broker::run(command),
        Command::Validate(_) | Command::Schema(_) => {
            eprintln!("poolform: not built yet");
            ExitCode::FAILURE
        }
    }
}
