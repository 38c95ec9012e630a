//! The `poolform` binary: parses flags, dispatches one command, and decides
//! the process exit code in one place.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use poolform::cli::{Cli, Command};
use poolform::commands::{self, ExitStatus};
use poolform::render::diagnostics::TextStyle;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = TextStyle {
        color: commands::stderr_color(cli.color),
        unicode: true,
        width: commands::terminal_width(),
    };
    let result = match &cli.command {
        Command::Validate(args) => commands::validate::run(args, style),
        Command::Plan(args) => commands::plan::run(args, style, commands::stdout_color(cli.color)),
        Command::Show(args) => commands::show::run(args, commands::stdout_color(cli.color)),
        Command::Apply(args) => {
            commands::apply::run(args, style, commands::stdout_color(cli.color))
        }
        Command::Export(args) => commands::export::run(args, style),
        Command::Import(args) => commands::import::run(args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Completions { shell } => commands::completions(*shell),
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
