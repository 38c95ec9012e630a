//! The commands behind the CLI: each takes the shared `Context` and its
//! parsed arguments, does its IO, and returns an `ExitStatus` or an `Error`;
//! `main` alone turns those into exit codes and prints errors.

pub mod annotate;
pub mod apply;
pub mod apply_output;
pub mod broker;
pub mod completions;
pub mod context;
pub mod error;
pub mod export;
pub mod import;
pub mod logging;
pub mod output;
pub mod plan;
pub mod schema;
pub mod show;
pub mod validate;

pub use context::Context;
pub use error::Error;

/// How a command that did not fail ended. A command that failed returns an
/// `Error` instead, which exits 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exit 0: success, or nothing to change.
    Success,
    /// Exit 2: the plan has changes (`plan --detailed-exitcode` only).
    Changes,
}

impl ExitStatus {
    pub fn exit_code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Changes => 2,
        }
    }
}
