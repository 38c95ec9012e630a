//! poolform: config-as-code for oneclick destination pools. The library holds
//! every module; the `poolform` binary only parses flags and dispatches.

pub mod address;
pub mod apply;
pub mod atomic_file;
pub mod backend;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod contract;
pub mod desired;
pub mod diagnostic;
pub mod export;
pub mod plan;
pub mod refbroker;
pub mod render;
pub mod secret;
