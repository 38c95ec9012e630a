//! `poolform validate PATH`: load, check, and report every problem, or a
//! one-line summary of what the config declares.

use std::io::Write;

use crate::cli::{DiagnosticFormat, ValidateArgs};
use crate::commands::ExitStatus;
use crate::commands::annotate::{self, Forge};
use crate::commands::context::Context;
use crate::commands::error::{During, Error, IoAction, plural};
use crate::commands::output;
use crate::config::{self, Config};
use crate::render::diagnostics;

pub fn run(ctx: &Context, args: &ValidateArgs) -> Result<ExitStatus, Error> {
    let result = config::load(&args.path);
    let out = &mut output::stdout();
    match (result, args.format) {
        (Ok(config), DiagnosticFormat::Text | DiagnosticFormat::Github) => {
            ctx.write_diagnostics(&config.warnings, &config.sources)?;
            if args.format == DiagnosticFormat::Github {
                let warnings = annotate::of_diagnostics(&config.warnings);
                annotate::write(Forge::Github, &warnings, &args.path)?;
            }
            writeln!(out, "{}: valid", summary(&config)).during(IoAction::WriteStdout)?;
            Ok(ExitStatus::Success)
        }
        (Ok(config), DiagnosticFormat::Json) => {
            diagnostics::json(out, &config.warnings).during(IoAction::WriteStdout)?;
            Ok(ExitStatus::Success)
        }
        // The warnings only, often none: GitLab then shows the findings of
        // the base branch as fixed.
        (Ok(config), DiagnosticFormat::Gitlab) => {
            let warnings = annotate::of_diagnostics(&config.warnings);
            annotate::write(Forge::Gitlab, &warnings, &args.path)?;
            Ok(ExitStatus::Success)
        }
        (
            Err(rejected),
            DiagnosticFormat::Text | DiagnosticFormat::Github | DiagnosticFormat::Gitlab,
        ) => Err(ctx.invalid(
            &args.path,
            &rejected.items,
            &rejected.sources,
            Forge::of_validate(args.format),
        )),
        // Machine consumers read one JSON document from stdout either way.
        (Err(rejected), DiagnosticFormat::Json) => {
            diagnostics::json(out, &rejected.items).during(IoAction::WriteStdout)?;
            Err(Error::Rejected)
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
