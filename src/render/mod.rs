//! Renderings of diagnostics, plans and apply reports to any `io::Write`.
//! They only read what they are given and never touch the network or the
//! file system.

pub mod annotations;
pub mod diagnostics;
pub mod events;
pub mod json;
pub mod markdown;
pub mod plan;
pub mod rehearsal;
pub mod report;
pub mod words;

#[cfg(test)]
mod tests;
