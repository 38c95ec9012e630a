//! What the commands share, built once from the global flags: how stderr
//! and stdout are styled, the async runtime, and the steps several commands
//! take alike (loading a config, connecting to the broker, reporting
//! violations, rendering, saving and reading plans).

use std::cell::OnceCell;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use tokio::runtime::Runtime;

use crate::backend::{AnyBroker, BrokerUrl};
use crate::cli::{BrokerArgs, ColorChoice, PlanFormat};
use crate::client::http::{HttpOptions, read_token};
use crate::commands::annotate::{self, Forge};
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;
use crate::config::{self, Located, Lowered, lower};
use crate::desired::Desired;
use crate::diagnostic::{Diagnostic, Severity, SourceMap};
use crate::plan::{Plan, SavedPlanError, Violation};
use crate::render::diagnostics::{self, TextStyle};
use crate::render::json;
use crate::render::markdown::{COMMENT_LIMIT, markdown};
use crate::render::plan::{Style, text};
use crate::render::words;
use crate::secret::SecretSource;

/// Bytes gathered before a write to a standard stream.
const BUFFER: usize = 64 * 1024;

/// Built by `main` from the parsed flags and handed to every command.
pub struct Context {
    /// How diagnostics are drawn on stderr.
    pub diagnostics: TextStyle,
    /// How plans and apply reports are drawn on stdout.
    pub stdout: Style,
    /// Made on first use: validate, show and schema never need one.
    runtime: OnceCell<Runtime>,
}

impl Context {
    pub fn new(color: ColorChoice) -> Context {
        Context {
            diagnostics: TextStyle {
                color: use_color(color, io::stderr().is_terminal()),
                unicode: true,
                width: terminal_width(),
            },
            stdout: Style {
                color: use_color(color, io::stdout().is_terminal()),
            },
            runtime: OnceCell::new(),
        }
    }

    /// The single-threaded runtime the broker calls run on.
    pub fn runtime(&self) -> Result<&Runtime, Error> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let runtime = runtime()?;
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// Loads, validates and resolves `path`, writing its warnings to
    /// stderr. On failure the diagnostics are written to stderr (and as
    /// annotations for `forge` to stdout) before the error returns; nothing
    /// has touched the broker.
    pub fn load(&self, path: &Path, forge: Option<Forge>) -> Result<Loaded, Error> {
        let config = match config::load(path) {
            Ok(config) => config,
            Err(rejected) => {
                return Err(self.invalid(path, &rejected.items, &rejected.sources, forge));
            }
        };
        self.write_diagnostics(&config.warnings, &config.sources)?;
        match lower(config, &SecretSource::resolve) {
            Ok(Lowered {
                mut config,
                desired,
            }) => {
                // Read again only to show a finding with its lines, which
                // few plans have (see `report_violations`).
                config.sources.release();
                Ok(Loaded {
                    path: path.to_owned(),
                    config,
                    desired,
                })
            }
            Err(rejected) => Err(self.invalid(path, &rejected.items, &rejected.sources, forge)),
        }
    }

    /// Writes the diagnostics that reject the config at `path` (and their
    /// annotations for `forge`) and returns the error that ends the command.
    pub fn invalid(
        &self,
        path: &Path,
        items: &[Diagnostic],
        sources: &SourceMap,
        forge: Option<Forge>,
    ) -> Error {
        let written = self
            .write_diagnostics(items, sources)
            .and_then(|()| match forge {
                Some(forge) => annotate::write(forge, &annotate::of_diagnostics(items), path),
                None => Ok(()),
            });
        match written {
            Ok(()) => Error::InvalidConfig {
                path: path.to_owned(),
                count: items.len(),
            },
            Err(e) => e,
        }
    }

    /// Writes located diagnostics to stderr.
    pub fn write_diagnostics(
        &self,
        items: &[Diagnostic],
        sources: &SourceMap,
    ) -> Result<(), Error> {
        // Standard error is unbuffered: each piece of a rendered snippet
        // would be a write of its own.
        let err = &mut io::BufWriter::with_capacity(BUFFER, output::stderr());
        diagnostics::text(err, items, sources, self.diagnostics)
            .and_then(|()| err.flush())
            .during(IoAction::WriteStderr)
    }

    /// Writes the violations of `plan` as diagnostics on stderr, located in
    /// the config it was planned from; warnings when `force` overrides them.
    /// The config's texts are read again for their lines; a file that
    /// changed since it was loaded is said so, and shown without them.
    pub fn report_violations(
        &self,
        loaded: &mut Loaded,
        plan: &Plan,
        force: bool,
    ) -> Result<(), Error> {
        if plan.violations.is_empty() {
            return Ok(());
        }
        let items = violation_diagnostics(loaded, plan, force);
        self.write_diagnostics(&items, &loaded.config.sources)
    }

    /// Renders a plan in the chosen format: on stdout, except for `gitlab`,
    /// whose stdout is the code quality report, so the text goes to stderr.
    pub fn render(&self, plan: &Plan, format: PlanFormat) -> Result<(), Error> {
        self.render_sealing(plan, format, || plan.checksum.clone())
            .map(drop)
    }

    /// [`Context::render`] of a plan that may still be being sealed: `seal`
    /// returns its checksum (waiting for it), and is asked once the rest
    /// is written. Only the JSON document shows the checksum, at its end.
    /// Returns the checksum.
    pub fn render_sealing(
        &self,
        plan: &Plan,
        format: PlanFormat,
        seal: impl FnOnce() -> String,
    ) -> Result<String, Error> {
        if format == PlanFormat::Gitlab {
            text(plan, Style { color: false }, &mut output::stderr())
                .during(IoAction::WriteStderr)?;
            return Ok(seal());
        }
        // Standard output is line-buffered: a plan of 100k steps is a
        // million lines, each a write of its own.
        let out = &mut io::BufWriter::with_capacity(BUFFER, output::stdout());
        match format {
            PlanFormat::Text | PlanFormat::Github | PlanFormat::Gitlab => {
                text(plan, self.stdout, out).map(|()| seal())
            }
            PlanFormat::Markdown => markdown(plan, COMMENT_LIMIT, out).map(|()| seal()),
            PlanFormat::Json => json::write_plan(out, plan, seal)
                .and_then(|checksum| writeln!(out).map(|()| checksum)),
        }
        .and_then(|checksum| out.flush().map(|()| checksum))
        .during(IoAction::WriteStdout)
    }
}

/// Refuses to plan one file of a config that is split over its directory:
/// the resources its neighbours declare would be planned for deletion.
/// Checked once the file itself validated, so that its own problems come
/// first.
pub fn refuse_partial(path: &Path, allow: bool) -> Result<(), Error> {
    if allow {
        return Ok(());
    }
    let siblings = config::siblings_with_config(path);
    if siblings.is_empty() {
        return Ok(());
    }
    Err(Error::PartialConfig {
        file: path.to_owned(),
        dir: path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned(),
        siblings: siblings
            .into_iter()
            .map(|(file, keys)| {
                let name = file.file_name().unwrap_or_default().to_string_lossy();
                format!("{name} ({})", keys.join(", "))
            })
            .collect(),
    })
}

/// A config that loaded, validated and had its secrets resolved.
pub struct Loaded {
    /// Where it was loaded from: a file or a directory.
    pub path: PathBuf,
    /// Kept to locate what the plan finds; the desired state holds its values.
    pub config: Located,
    pub desired: Desired,
}

/// Whether to colour a stream: `--color`, then `NO_COLOR`, then whether the
/// stream is a terminal.
fn use_color(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal,
    }
}

/// Width for wrapping diagnostics: the width of the terminal stderr is on,
/// else `COLUMNS`, else 100.
fn terminal_width() -> usize {
    terminal_size::terminal_size_of(io::stderr())
        .map(|(width, _)| usize::from(width.0))
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .filter(|c| *c >= 40)
        .unwrap_or(100)
}

/// A runtime of its own, for a thread that talks to the broker while the
/// main thread does something else.
pub fn runtime() -> Result<Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .during(IoAction::StartRuntime)
}

/// The broker named by `--broker` (clap fills it from `POOLFORM_BROKER` when
/// the flag is absent), else by the config's `broker.url`. A `file:` URL
/// without a seed of its own takes `--seed` or the one beside the config.
pub fn broker_url(args: &BrokerArgs, config: Option<&Loaded>) -> Result<BrokerUrl, Error> {
    let from_config = config.and_then(|c| c.config.broker_url.as_ref());
    let text = args
        .broker
        .as_deref()
        .or_else(|| from_config.map(|url| url.value.value.as_str()))
        .ok_or(Error::NoBroker)?;
    let url = text.parse::<BrokerUrl>()?;
    Ok(url.with_default_seed(seed_for(args, config.map(|c| c.path.as_path()))))
}

/// Connects to the broker `broker_url` names, with the API token for an
/// HTTP broker.
pub fn connect(args: &BrokerArgs, config: Option<&Loaded>) -> Result<AnyBroker, Error> {
    let url = broker_url(args, config)?;
    let opened = match url {
        BrokerUrl::Http(_) => read_token(args.token_file.as_deref())
            .and_then(|token| AnyBroker::open(&url, token, HttpOptions::default())),
        BrokerUrl::File { .. } => AnyBroker::open(&url, None, HttpOptions::default()),
    };
    opened.map_err(|source| Error::Open {
        url: url.to_string(),
        source,
    })
}

/// The snapshot an embedded broker starts from when its state file is new:
/// `--seed`, else `broker-seed.json` in the config's directory or the one
/// above it (where `examples/maintenance/` keeps it for all its states).
fn seed_for(args: &BrokerArgs, config_path: Option<&Path>) -> Option<PathBuf> {
    if let Some(seed) = &args.seed {
        return Some(seed.clone());
    }
    let path = config_path?;
    let dir = if path.is_dir() { path } else { path.parent()? };
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("broker-seed.json"))
        .find(|candidate| candidate.is_file())
}

/// The violations of `plan` as diagnostics, located in the config with its
/// texts read again, after a warning for each file that changed since.
fn violation_diagnostics(loaded: &mut Loaded, plan: &Plan, force: bool) -> Vec<Diagnostic> {
    let changed = config::reread(&mut loaded.config.sources);
    let config = &loaded.config;
    (changed.into_iter())
        .map(changed_since_loaded)
        .chain((plan.violations.iter()).map(|v| violation_diagnostic(config, v, force)))
        .collect()
}

/// The warning that config file `file` changed, or cannot be read any
/// more, between loading it and showing a finding in it.
fn changed_since_loaded(file: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        ..Diagnostic::error(
            "plan::config_changed",
            format!(
                "{file} changed, or cannot be read, since it was loaded; the findings in it are shown without its lines"
            ),
        )
    }
    .with_help("the plan is made from the file as it was read; plan again to see the change")
}

/// A violation as a diagnostic underlining what the config says about it;
/// a warning when `--force` overrides it.
pub fn violation_diagnostic(config: &Located, violation: &Violation, force: bool) -> Diagnostic {
    let mut diagnostic = Diagnostic::error(violation.code(), words::violation(violation));
    let overridden = force && violation.can_be_overridden();
    if overridden {
        diagnostic.severity = Severity::Warning;
    }
    let help = match (words::violation_help(violation), force && !overridden) {
        (Some(help), true) => Some(format!(
            "{help}; --force cannot override this, the step would fail"
        )),
        (None, true) => Some("--force cannot override this: the step would fail".to_owned()),
        (help, false) => help,
    };
    if let Some(help) = help {
        diagnostic = diagnostic.with_help(help);
    }
    let location = match violation {
        Violation::MinMembers { pool, .. } => config.locate_min_members(pool),
        _ => None,
    }
    .or_else(|| {
        violation
            .member()
            .and_then(|(pool, member)| config.locate_member(pool, member))
    })
    .or_else(|| violation.address().and_then(|a| config.locate(&a)));
    let diagnostic = match location {
        Some(location) => diagnostic.with_label(location, "here"),
        None => diagnostic,
    };
    maintenance_lines(config, violation, diagnostic)
}

/// Points a `min_members` violation at the lines that put the members it
/// counts unavailable into maintenance, too.
fn maintenance_lines(
    config: &Located,
    violation: &Violation,
    diagnostic: Diagnostic,
) -> Diagnostic {
    let Violation::MinMembers { in_maintenance, .. } = violation else {
        return diagnostic;
    };
    in_maintenance.iter().fold(diagnostic, |d, member| {
        match config.locate_maintenance(member) {
            Some(location) => d.with_secondary(location, format!("{member} in maintenance")),
            None => d,
        }
    })
}

/// The error for a plan whose violations are not overridden: without
/// `--force` (now or when the plan was made) every violation stops it,
/// with it those that would make a step fail.
pub fn refuse_unsafe(plan: &Plan, force: bool, saved: bool) -> Result<(), Error> {
    let count = plan.blocking(force).count();
    match count {
        0 => Ok(()),
        _ if force || plan.forced => Err(Error::Unforceable { count }),
        _ => Err(Error::Unsafe { count, saved }),
    }
}

/// Rehearses `plan` against a copy of `broker`'s live state, `parallelism`
/// steps at once, and records what it found in the plan; `desired` (the
/// config the plan was made from) tells whether it converges.
pub fn rehearsed(
    ctx: &Context,
    broker: &AnyBroker,
    plan: Plan,
    desired: Option<&Desired>,
    parallelism: usize,
) -> Result<Plan, Error> {
    let copy = ctx
        .runtime()?
        .block_on(crate::rehearse::copy_live(broker))?;
    let rehearsal = crate::rehearse::rehearse(copy, &plan, desired, parallelism)?;
    Ok(plan.rehearsed(rehearsal))
}

/// The error for a plan whose rehearsal found steps that would fail (their
/// results are shown with the plan).
pub fn refuse_failed_rehearsal(plan: &Plan) -> Result<(), Error> {
    match plan.rehearsal.as_ref().map(|r| r.tally().errors) {
        Some(errors) if errors > 0 => Err(Error::RehearsalFailed { errors }),
        _ => Ok(()),
    }
}

/// Writes a plan file by atomic replace, so a crash never leaves half a plan.
pub fn save_plan(plan: &Plan, path: &Path) -> Result<(), Error> {
    let write = || {
        let mut bytes = json::to_vec_pretty(plan)?;
        bytes.push(b'\n');
        crate::atomic_file::write(path, &bytes)
    };
    write().during(IoAction::Write(path.to_owned()))
}

/// Reads a saved plan and checks its format version and checksum.
pub fn read_plan(path: &Path) -> Result<Plan, Error> {
    let bytes = std::fs::read(path).during(IoAction::Read(path.to_owned()))?;
    crate::plan::read_saved(&bytes).map_err(|source| match source {
        SavedPlanError::NotJson(_) | SavedPlanError::NoVersion => Error::NotAPlan {
            path: path.to_owned(),
            source,
        },
        source => Error::SavedPlan {
            path: path.to_owned(),
            source,
        },
    })
}

/// Whether `path` is a saved plan, by its content whatever its name: a
/// file holding a JSON object with a `format_version`.
pub fn is_plan_file(path: &Path) -> Result<bool, Error> {
    if !path.is_file() {
        return Ok(false);
    }
    let bytes = std::fs::read(path).during(IoAction::Read(path.to_owned()))?;
    Ok(crate::plan::is_saved_plan(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Targets, compute_at, fixtures};

    /// A config whose pool lists a destination the live state lacks, loaded
    /// as `plan` loads it (its text released), and the plan of it.
    fn loaded_with_a_violation(dir: &Path) -> (Loaded, Plan) {
        let text =
            "stack: corp-rds\npools:\n  extra:\n    members:\n      - rds-01\n      - ghost\n";
        std::fs::write(dir.join("pools.yaml"), text).unwrap();
        let config = config::load(dir).expect("valid");
        let no_secrets = |_: &SecretSource| -> Result<secrecy::SecretString, String> {
            Err("no secrets here".to_owned())
        };
        let Lowered {
            mut config,
            desired,
        } = lower(config, &no_secrets).expect("lowers");
        config.sources.release();
        let plan = compute_at(
            &desired,
            &fixtures::live(true),
            &Targets::default(),
            String::new(),
        )
        .expect("plans");
        let loaded = Loaded {
            path: dir.to_owned(),
            config,
            desired,
        };
        (loaded, plan)
    }

    fn ghost(items: &[Diagnostic]) -> &Diagnostic {
        (items.iter())
            .find(|d| d.message.contains("ghost"))
            .unwrap_or_else(|| panic!("no violation about ghost in {items:#?}"))
    }

    #[test]
    fn violations_are_located_in_the_text_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut loaded, plan) = loaded_with_a_violation(dir.path());
        let items = violation_diagnostics(&mut loaded, &plan, false);
        assert!(
            items.iter().all(|d| d.code != "plan::config_changed"),
            "{items:#?}"
        );
        let at = &ghost(&items).primary.as_ref().expect("located").location;
        assert_eq!((at.line, at.column), (6, 9));
        let text = loaded.config.sources.text_of(&at.file).expect("kept");
        assert_eq!(&text[at.offset..at.offset + at.len], "ghost");
    }

    #[test]
    fn a_file_edited_since_loading_is_said_so_and_keeps_its_places() {
        let dir = tempfile::tempdir().unwrap();
        let (mut loaded, plan) = loaded_with_a_violation(dir.path());
        let file = dir.path().join("pools.yaml");
        let edited = std::fs::read_to_string(&file).unwrap() + "# edited\n";
        std::fs::write(&file, edited).unwrap();
        let items = violation_diagnostics(&mut loaded, &plan, false);
        assert_eq!(items[0].code, "plan::config_changed");
        assert!(items[0].message.starts_with(&file.display().to_string()));
        assert!(!items[0].is_error());
        let at = &ghost(&items).primary.as_ref().expect("located").location;
        assert_eq!((at.line, at.column), (6, 9));
        let index = loaded.config.sources.index_of(&at.file).expect("listed");
        assert!(loaded.config.sources.is_released(index));
    }
}
