//! The `poolform` binary: parses flags, builds the shared command context,
//! dispatches one command, and decides the process exit code in one place.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use poolform::cli::{Cli, Command};
use poolform::commands::{self, Context, ExitStatus};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Context::new(cli.color);
    let result = match &cli.command {
        Command::Validate(args) => commands::validate::run(&ctx, args),
        Command::Plan(args) => commands::plan::run(&ctx, args),
        Command::Show(args) => commands::show::run(&ctx, args),
        Command::Apply(args) => commands::apply::run(&ctx, args),
        Command::Export(args) => commands::export::run(&ctx, args),
        Command::Import(args) => commands::import::run(&ctx, args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Completions { shell } => commands::completions::run(*shell),
        Command::Broker(command) => commands::broker::run(command),
    };
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        // A reader that went away (`| head`) is not a failure of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("poolform: {e}");
            ExitCode::from(ExitStatus::Rejected.exit_code())
        }
    }
}
