//! One module per subcommand: each turns parsed flags into real objects,
//! runs, and returns the process exit code.

pub mod broker;
