//! The commands behind the CLI: each takes parsed arguments, does its IO and
//! returns an `ExitStatus`; `main` alone turns outcomes and errors into exit codes.

pub mod apply;
pub mod broker;
pub mod export;
pub mod import;
pub mod plan;
pub mod schema;
pub mod show;
pub mod validate;

use std::io::{self, IsTerminal, Write};

use clap::CommandFactory;

use crate::cli::{Cli, ColorChoice};

/// How a command ended, as far as the exit code is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exit 0: success, or nothing to change.
    Success,
    /// Exit 1: the input was rejected or a step failed; the reason has been written.
    Rejected,
    /// Exit 2: the plan has changes (`plan --detailed-exitcode` only).
    Changes,
}

impl ExitStatus {
    pub fn exit_code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Rejected => 1,
            ExitStatus::Changes => 2,
        }
    }
}

/// Whether to colour what goes to stderr: `--color`, then `NO_COLOR`, then
/// whether stderr is a terminal.
pub fn stderr_color(choice: ColorChoice) -> bool {
    color(choice, io::stderr().is_terminal())
}

/// The same decision for stdout (plans).
pub fn stdout_color(choice: ColorChoice) -> bool {
    color(choice, io::stdout().is_terminal())
}

fn color(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal,
    }
}

/// Terminal width for wrapping diagnostics: `COLUMNS` when set, else 100.
pub fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|c| *c >= 40)
        .unwrap_or(100)
}

/// `poolform completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> io::Result<ExitStatus> {
    // clap_complete panics when its writer fails; generating into memory
    // first turns a closed pipe into an ordinary error that `main` handles.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "poolform", &mut script);
    io::stdout().lock().write_all(&script)?;
    Ok(ExitStatus::Success)
}
