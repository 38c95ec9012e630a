//! Renderers: turn diagnostics (and later plans and apply reports) into text
//! or JSON on any `io::Write`. They only read what they are given and never
//! touch the network or the file system.

pub mod diagnostics;
