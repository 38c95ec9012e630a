//! `poolform validate PATH`: load, check, and report every problem, or a
//! one-line summary of what the config declares.

use std::io::{self, Write};

use crate::cli::{DiagnosticFormat, ValidateArgs};
use crate::commands::ExitStatus;
use crate::commands::context::Context;
use crate::config::{self, Config};
use crate::render::diagnostics;

pub fn run(ctx: &Context, args: &ValidateArgs) -> io::Result<ExitStatus> {
    let result = config::load(&args.path);
    match (result, args.format) {
        (Ok(config), DiagnosticFormat::Text) => {
            writeln!(io::stdout().lock(), "{}: valid", summary(&config))?;
            Ok(ExitStatus::Success)
        }
        (Ok(_), DiagnosticFormat::Json) => {
            diagnostics::json(&mut io::stdout().lock(), &[])?;
            Ok(ExitStatus::Success)
        }
        (Err(rejected), DiagnosticFormat::Text) => {
            ctx.write_diagnostics(&rejected.items, &rejected.sources)?;
            let count = rejected.items.len();
            writeln!(
                io::stderr().lock(),
                "poolform: {count} {} in {}",
                plural(count, "problem", "problems"),
                args.path.display()
            )?;
            Ok(ExitStatus::Rejected)
        }
        // Machine consumers read one JSON document from stdout either way.
        (Err(rejected), DiagnosticFormat::Json) => {
            diagnostics::json(&mut io::stdout().lock(), &rejected.items)?;
            Ok(ExitStatus::Rejected)
        }
    }
}

/// "2 pools, 1 app config, 1 app instance" (destinations only when declared).
pub fn summary(config: &Config) -> String {
    let mut parts = vec![
        count(config.pools.len(), "pool", "pools"),
        count(config.app_configs.len(), "app config", "app configs"),
        count(config.app_instances.len(), "app instance", "app instances"),
    ];
    if !config.destinations.is_empty() {
        parts.push(count(
            config.destinations.len(),
            "destination",
            "destinations",
        ));
    }
    parts.join(", ")
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
