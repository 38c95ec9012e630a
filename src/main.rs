//! The `poolform` binary: parses flags, builds the shared command context,
//! dispatches one command, and decides the exit code and prints a failure
//! in one place.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use poolform::cli::{Cli, Command};
use poolform::commands::{self, Context};

/// A plan at 100k members makes millions of small allocations, from
/// several threads (the config's files parse in parallel while the live
/// state is read): mimalloc took the whole plan from about 0.6 s to about
/// 0.5 s against glibc's allocator. Without transparent huge pages, as a
/// huge page counts whole in the peak memory however little of it is used.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    // The reference broker sets up its own logging (RUST_LOG).
    if !matches!(cli.command, Command::Broker(_)) {
        commands::logging::init(cli.command.verbose());
    }
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
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(message) = e.message() {
                // Nothing is left to tell anyone if stderr itself is gone.
                let _ = writeln!(io::stderr().lock(), "poolform: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `--help` and `--version` succeed; every usage error exits 1, never clap's
/// 2, which `plan --detailed-exitcode` reserves for "changes present".
fn usage(error: &clap::Error) -> ExitCode {
    // A closed pipe (`poolform --help | head`) is no failure, and a usage
    // error stays one whether or not its message could be written.
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
