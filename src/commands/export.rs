//! `poolform export`: reads the live state once, turns a stack's resources
//! into config YAML (`crate::export`), checks that the result validates, and
//! prints it or writes it into a directory without overwriting by accident.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::cli::ExportArgs;
use crate::commands::ExitStatus;
use crate::commands::context::{Context, broker_failed, connect};
use crate::config;
use crate::contract::Broker;
use crate::contract::names;
use crate::export::{DESTINATIONS_FILE, Dangling, Files, Scope, to_config_yaml};

pub fn run(ctx: &Context, args: &ExportArgs) -> io::Result<ExitStatus> {
    let mut err = io::stderr().lock();
    if !names::is_valid(&args.stack) {
        writeln!(
            err,
            "poolform: '{}' is not a valid stack name ({})",
            args.stack,
            names::RULE
        )?;
        return Ok(ExitStatus::Rejected);
    }
    // Refused before the broker is asked, so a mistyped directory costs no
    // broker read.
    if let Some(dir) = &args.out_dir {
        let existing = yaml_files(dir)?;
        if !existing.is_empty() && !args.force {
            writeln!(
                err,
                "poolform: {} already holds {}; pass --force to overwrite (any other YAML file there becomes part of the config)",
                dir.display(),
                names(&existing)
            )?;
            return Ok(ExitStatus::Rejected);
        }
    }
    let broker = match connect(&args.broker, None) {
        Ok(broker) => broker,
        Err(message) => {
            writeln!(err, "poolform: {message}")?;
            return Ok(ExitStatus::Rejected);
        }
    };
    let live = match ctx.runtime()?.block_on(broker.read_live()) {
        Ok(live) => live,
        Err(e) => return broker_failed("cannot read the live state", &e),
    };
    let scope = if args.all { Scope::All } else { Scope::Stack };
    let files = match to_config_yaml(&live, &args.stack, scope) {
        Ok(files) => files,
        Err(dangling) => {
            for d in &dangling {
                writeln!(err, "poolform: {}", dangling_message(d, &args.stack))?;
            }
            writeln!(err, "poolform: nothing was exported")?;
            return Ok(ExitStatus::Rejected);
        }
    };
    // The output is meant to be committed as is: a live value the config
    // cannot express (say, a name the broker allowed but poolform does not)
    // is reported now rather than by the reviewer's first `validate`.
    let sources = files
        .named(None)
        .into_iter()
        .map(|(name, text)| (name.to_owned(), text))
        .collect();
    if let Err(rejected) = config::load_text(sources) {
        ctx.write_diagnostics(&rejected.items, &rejected.sources)?;
        writeln!(
            err,
            "poolform: the live state cannot be written as a valid config; nothing was exported"
        )?;
        return Ok(ExitStatus::Rejected);
    }
    match &args.out_dir {
        None => io::stdout().lock().write_all(files.document().as_bytes())?,
        Some(dir) => write_dir(dir, &files, &mut err)?,
    }
    report_not_owned(&files, &args.stack, &mut err)?;
    Ok(ExitStatus::Success)
}

fn dangling_message(d: &Dangling, stack: &str) -> String {
    let whose = match &d.owner {
        Some(owner) => format!("stack {owner} owns"),
        None => "no stack owns".to_owned(),
    };
    let force = if d.owner.is_some() { " --force" } else { "" };
    format!(
        "{} uses {}, which {whose}; the config would not validate without it. Adopt it first (`poolform import --stack {stack}{force} {}`) or export with --all",
        d.from, d.to, d.to
    )
}

/// The `*.yaml`/`*.yml` files in `dir` (none when it does not exist yet):
/// the files a config directory is loaded from.
fn yaml_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_dir(dir: &Path, files: &Files, err: &mut dyn Write) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let schema = schema_path(dir)?;
    let named = files.named(schema.as_deref());
    for (name, text) in &named {
        std::fs::write(dir.join(name), text)?;
    }
    // A destinations file from an earlier export would switch maintenance
    // back on for destinations that have left it; it is export's own file.
    if files.destinations.is_none() {
        match std::fs::remove_file(dir.join(DESTINATIONS_FILE)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let written: Vec<&str> = named.iter().map(|(name, _)| *name).collect();
    writeln!(err, "Wrote {} to {}", written.join(", "), dir.display())?;
    let others: Vec<PathBuf> = yaml_files(dir)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_none_or(|n| !written.iter().any(|w| n == *w))
        })
        .collect();
    if !others.is_empty() {
        writeln!(
            err,
            "warning: {} also holds {}, which validate, plan and apply read together with the export",
            dir.display(),
            names(&others)
        )?;
    }
    Ok(())
}

/// `schema/config.schema.json` relative to `dir`, when `dir` is inside a
/// checkout that has it (the nearest ancestor holding the file); editors
/// resolve the schema line relative to the YAML file, and an absolute path
/// would not survive a commit.
fn schema_path(dir: &Path) -> io::Result<Option<String>> {
    let dir = dir.canonicalize()?;
    let Some(root) = dir
        .ancestors()
        .find(|a| a.join("schema").join("config.schema.json").is_file())
    else {
        return Ok(None);
    };
    let depth = dir
        .strip_prefix(root)
        .map_or(0, |rest| rest.components().count());
    Ok(Some(format!(
        "{}schema/config.schema.json",
        "../".repeat(depth)
    )))
}

/// With `--all`: what still has to be imported before `plan` stops
/// reporting `plan::not_owned`.
fn report_not_owned(files: &Files, stack: &str, err: &mut dyn Write) -> io::Result<()> {
    if files.not_owned.is_empty() {
        return Ok(());
    }
    let (unowned, other): (Vec<_>, Vec<_>) = files
        .not_owned
        .iter()
        .partition(|(_, owner)| owner.is_none());
    writeln!(
        err,
        "{} exported resources are not in stack {stack}; plan reports them as plan::not_owned until imported:",
        files.not_owned.len()
    )?;
    for (group, force) in [(unowned, ""), (other, " --force")] {
        if group.is_empty() {
            continue;
        }
        let addresses: Vec<String> = group.iter().map(|(a, _)| a.to_string()).collect();
        writeln!(
            err,
            "  poolform import --stack {stack}{force} {}",
            addresses.join(" ")
        )?;
    }
    Ok(())
}
