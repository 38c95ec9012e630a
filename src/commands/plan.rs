//! `poolform plan PATH`: load and validate the config, read the live state
//! once, compute the plan, and render it; violations become located
//! diagnostics. Also the loading and broker-connection steps `apply` shares.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::backend::{AnyBroker, BrokerUrl};
use crate::cli::{BrokerArgs, PlanArgs, PlanFormat};
use crate::client::http::{HttpOptions, read_token};
use crate::commands::ExitStatus;
use crate::config::validate::Validated;
use crate::config::{self, Config, lower};
use crate::contract::{Broker, BrokerError, LiveState};
use crate::desired::Desired;
use crate::diagnostic::{Diagnostic, Severity};
use crate::plan::{self, Plan, Targets, Violation};
use crate::render::diagnostics::{self, TextStyle};
use crate::render::markdown::{COMMENT_LIMIT, markdown};
use crate::render::plan::{Style, text};
use crate::render::words;
use crate::secret::SecretSource;

/// A config that loaded, validated and had its secrets resolved.
pub struct Loaded {
    pub config: Validated<Config>,
    pub desired: Desired,
}

/// Loads, validates and resolves `path`. On failure the diagnostics are
/// written to stderr and `None` is returned: nothing has touched the broker.
pub fn load(path: &Path, style: TextStyle) -> io::Result<Option<Loaded>> {
    let config = match config::load(path) {
        Ok(config) => config,
        Err(rejected) => {
            diagnostics::text(
                &mut io::stderr().lock(),
                &rejected.items,
                &rejected.sources,
                style,
            )?;
            return Ok(None);
        }
    };
    match lower(&config, &SecretSource::resolve) {
        Ok(desired) => Ok(Some(Loaded { config, desired })),
        Err(items) => {
            diagnostics::text(&mut io::stderr().lock(), &items, &config.sources, style)?;
            Ok(None)
        }
    }
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

/// Connects to the broker named by `--broker`, `POOLFORM_BROKER` or the
/// config's `broker.url`, in that order.
pub fn connect(
    args: &BrokerArgs,
    config_url: Option<&str>,
    config_path: Option<&Path>,
) -> Result<AnyBroker, String> {
    let text = args.broker.as_deref().or(config_url).ok_or(
        "no broker given: pass --broker URL, set POOLFORM_BROKER, or set broker.url in the config",
    )?;
    let url = text
        .parse::<BrokerUrl>()
        .map_err(|e| e.to_string())?
        .with_default_seed(seed_for(args, config_path));
    let token = match url {
        BrokerUrl::Http(_) => read_token(args.token_file.as_deref()).map_err(|e| e.to_string())?,
        BrokerUrl::File { .. } => None,
    };
    AnyBroker::open(&url, token, HttpOptions::default()).map_err(|e| e.to_string())
}

pub fn config_url(config: &Config) -> Option<&str> {
    config.broker_url.as_ref().map(|u| u.value.value.as_str())
}

/// A violation as a diagnostic underlining what the config says about it;
/// a warning when `--force` overrides it.
pub fn violation_diagnostic(config: &Config, violation: &Violation, force: bool) -> Diagnostic {
    let mut diagnostic = Diagnostic::error(violation.code(), words::violation(violation));
    if force {
        diagnostic.severity = Severity::Warning;
    }
    let location = violation
        .member()
        .and_then(|(pool, member)| config.locate_member(pool, member))
        .or_else(|| violation.address().and_then(|a| config.locate(&a)));
    match location {
        Some(location) => diagnostic.with_label(location, "here"),
        None => diagnostic,
    }
}

/// Writes the violations of `plan` as diagnostics on stderr.
pub fn report_violations(
    config: &Config,
    plan: &Plan,
    force: bool,
    style: TextStyle,
) -> io::Result<()> {
    if plan.violations.is_empty() {
        return Ok(());
    }
    let items: Vec<Diagnostic> = plan
        .violations
        .iter()
        .map(|v| violation_diagnostic(config, v, force))
        .collect();
    let mut err = io::stderr().lock();
    diagnostics::text(&mut err, &items, &config.sources, style)?;
    if !force {
        writeln!(
            err,
            "poolform: the plan breaks {} safety {}; apply refuses it unless --force",
            items.len(),
            if items.len() == 1 { "rule" } else { "rules" }
        )?;
    }
    Ok(())
}

/// Renders a plan in the chosen format.
pub fn render(plan: &Plan, format: PlanFormat, color: bool, out: &mut dyn Write) -> io::Result<()> {
    match format {
        PlanFormat::Text => text(plan, Style { color }, out),
        PlanFormat::Markdown => markdown(plan, COMMENT_LIMIT, out),
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, plan).map_err(io::Error::other)?;
            writeln!(out)
        }
    }
}

/// Writes a plan file by atomic replace, so a crash never leaves half a plan.
pub fn save(plan: &Plan, path: &Path) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(plan).map_err(io::Error::other)?;
    bytes.push(b'\n');
    crate::atomic_file::write(path, &bytes)
}

pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Reports a broker failure on stderr.
pub fn broker_failed(what: &str, error: &BrokerError) -> io::Result<ExitStatus> {
    writeln!(io::stderr().lock(), "poolform: {what}: {error}")?;
    Ok(ExitStatus::Rejected)
}

/// The live state as read by a thread of its own (see `read_ahead`).
type Reading = std::thread::JoinHandle<Result<Result<LiveState, BrokerError>, String>>;

/// When `--broker`/`POOLFORM_BROKER` names an HTTP broker, starts reading the
/// live state at once on another thread, so that the broker's answers arrive
/// while the config loads (on a 10k-pool stack each takes a good part of the
/// plan's time). Reads only: an invalid config still ends the run before any
/// write, and the result of the read is then dropped unseen. A `file:`
/// broker waits for a valid config, so that a rejected plan creates no state
/// file.
fn read_ahead(args: &BrokerArgs) -> Option<Reading> {
    let url: BrokerUrl = args.broker.as_deref()?.parse().ok()?;
    if !url.is_remote() {
        return None;
    }
    let args = args.clone();
    Some(std::thread::spawn(move || {
        let broker = connect(&args, None, None)?;
        let runtime = runtime().map_err(|e| e.to_string())?;
        Ok(runtime.block_on(broker.read_live()))
    }))
}

pub fn run(args: &PlanArgs, style: TextStyle, color: bool) -> io::Result<ExitStatus> {
    let reading = read_ahead(&args.broker);
    let Some(loaded) = load(&args.path, style)? else {
        return Ok(ExitStatus::Rejected);
    };
    let read = match reading {
        Some(reading) => reading
            .join()
            .unwrap_or_else(|_| Err("the broker reader panicked".to_owned())),
        None => {
            connect(&args.broker, config_url(&loaded.config), Some(&args.path)).and_then(|broker| {
                let runtime = runtime().map_err(|e| e.to_string())?;
                Ok(runtime.block_on(broker.read_live()))
            })
        }
    };
    let live = match read {
        Ok(Ok(live)) => live,
        Ok(Err(e)) => return broker_failed("cannot read the live state", &e),
        Err(message) => {
            writeln!(io::stderr().lock(), "poolform: {message}")?;
            return Ok(ExitStatus::Rejected);
        }
    };
    let plan = match plan::compute(&loaded.desired, &live, &Targets(args.targets.clone())) {
        Ok(plan) => plan,
        Err(cycle) => {
            writeln!(io::stderr().lock(), "poolform: {cycle}")?;
            return Ok(ExitStatus::Rejected);
        }
    };
    report_violations(&loaded.config, &plan, args.force, style)?;
    render(&plan, args.format, color, &mut io::stdout().lock())?;
    if let Some(out) = &args.out {
        save(&plan, out)?;
        writeln!(
            io::stderr().lock(),
            "Saved the plan to {}; apply it with: poolform apply {}",
            out.display(),
            out.display()
        )?;
    }
    Ok(if !plan.violations.is_empty() && !args.force {
        ExitStatus::Rejected
    } else if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
