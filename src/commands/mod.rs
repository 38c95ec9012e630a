//! The commands behind the CLI: each takes the shared `Context` and its
//! parsed arguments, does its IO and returns an `ExitStatus`; `main` alone
//! turns outcomes and errors into exit codes.

pub mod apply;
pub mod broker;
pub mod completions;
pub mod context;
pub mod export;
pub mod import;
pub mod plan;
pub mod schema;
pub mod show;
pub mod validate;

pub use context::Context;

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
