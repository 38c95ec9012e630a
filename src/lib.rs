//! poolform: config-as-code for oneclick destination pools. The library holds
//! every module; the `poolform` binary only parses flags and dispatches.

pub mod broker;
pub mod cli;
pub mod commands;
pub mod desired;
pub mod refbroker;
