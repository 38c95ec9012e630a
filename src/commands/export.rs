//! `poolform export`: reads the live state once, turns a stack's resources
//! into config YAML (`crate::export`), checks that the result validates, and
//! prints it or writes it into a directory without overwriting by accident.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::cli::ExportArgs;
use crate::commands::ExitStatus;
use crate::commands::context::{Context, connect};
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;
use crate::config;
use crate::contract::Broker;
use crate::contract::names;
use crate::export::{DESTINATIONS_FILE, Dangling, Files, Scope, to_config_yaml};

pub fn run(ctx: &Context, args: &ExportArgs) -> Result<ExitStatus, Error> {
    if !names::is_valid(&args.stack) {
        return Err(Error::InvalidStack(args.stack.clone()));
    }
    // Refused before the broker is asked, so a mistyped directory costs no
    // broker read.
    if let Some(dir) = &args.out_dir {
        let existing = yaml_files(dir)?;
        if !existing.is_empty() && !args.force {
            return Err(Error::WouldOverwrite {
                dir: dir.clone(),
                files: names(&existing),
            });
        }
    }
    let broker = connect(&args.broker, None)?;
    let live = ctx
        .runtime()?
        .block_on(broker.read_live())
        .map_err(Error::ReadLive)?;
    let scope = if args.all { Scope::All } else { Scope::Stack };
    let files = match to_config_yaml(&live, &args.stack, scope) {
        Ok(files) => files,
        Err(dangling) => {
            let mut err = output::stderr();
            for d in &dangling {
                writeln!(err, "error: {}", dangling_message(d, &args.stack))
                    .during(IoAction::WriteStderr)?;
            }
            return Err(Error::Dangling {
                count: dangling.len(),
            });
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
        return Err(Error::Unexportable);
    }
    match &args.out_dir {
        None => output::stdout()
            .write_all(files.document().as_bytes())
            .during(IoAction::WriteStdout)?,
        Some(dir) => write_dir(dir, &files)?,
    }
    report_not_owned(&files, &args.stack).during(IoAction::WriteStderr)?;
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
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let list = || IoAction::ListDir(dir.to_owned());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).during(list()),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.during(list())?.path();
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

fn write_dir(dir: &Path, files: &Files) -> Result<(), Error> {
    std::fs::create_dir_all(dir).during(IoAction::CreateDir(dir.to_owned()))?;
    let schema = schema_path(dir)?;
    let named = files.named(schema.as_deref());
    for (name, text) in &named {
        let path = dir.join(name);
        std::fs::write(&path, text).during(IoAction::Write(path))?;
    }
    // A destinations file from an earlier export would switch maintenance
    // back on for destinations that have left it; it is export's own file.
    if files.destinations.is_none() {
        let path = dir.join(DESTINATIONS_FILE);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).during(IoAction::Remove(path));
            }
            _ => {}
        }
    }
    let written: Vec<&str> = named.iter().map(|(name, _)| *name).collect();
    let others: Vec<PathBuf> = yaml_files(dir)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_none_or(|n| !written.iter().any(|w| n == *w))
        })
        .collect();
    report_written(dir, &written, &others).during(IoAction::WriteStderr)
}

fn report_written(dir: &Path, written: &[&str], others: &[PathBuf]) -> io::Result<()> {
    let mut err = output::stderr();
    writeln!(err, "Wrote {} to {}", written.join(", "), dir.display())?;
    if !others.is_empty() {
        writeln!(
            err,
            "warning: {} also holds {}, which validate, plan and apply read together with the export",
            dir.display(),
            names(others)
        )?;
    }
    Ok(())
}

/// `schema/config.schema.json` relative to `dir`, when `dir` is inside a
/// checkout that has it (the nearest ancestor holding the file); editors
/// resolve the schema line relative to the YAML file, and an absolute path
/// would not survive a commit.
fn schema_path(dir: &Path) -> Result<Option<String>, Error> {
    let dir = dir
        .canonicalize()
        .during(IoAction::Resolve(dir.to_owned()))?;
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
fn report_not_owned(files: &Files, stack: &str) -> io::Result<()> {
    if files.not_owned.is_empty() {
        return Ok(());
    }
    let mut err = output::stderr();
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
