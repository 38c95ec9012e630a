//! Renderings of diagnostics, plans and apply reports to any `Write`. Only
//! reads its inputs; never touches the network.

pub mod markdown;
pub mod plan;
pub mod words;

#[cfg(test)]
mod tests;
