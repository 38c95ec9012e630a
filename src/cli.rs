//! Command-line definitions (clap derive): a plain mirror of the flags. No IO
//! happens here; `main` turns these into real objects after parsing.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::address::Address;

#[derive(Debug, Parser)]
#[command(
    name = "poolform",
    version,
    // Help follows the terminal's width, but a wide terminal still gets
    // lines short enough to read.
    max_term_width = 100,
    about = "Config-as-code for oneclick destination pools: validate, plan and apply pool membership, sticky sessions, app configs and app instances.",
    after_help = "Examples:\n  poolform validate examples/maintenance/steady\n  poolform plan examples/maintenance/rds-02-out --broker file:/tmp/broker.json\n  poolform apply examples/maintenance/rds-02-out --auto-approve\n  poolform broker serve --listen 127.0.0.1:8080 --state broker.json --seed examples/maintenance/broker-seed.json"
)]
pub struct Cli {
    /// When to colour output; NO_COLOR in the environment means never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a config offline and report every problem at once.
    #[command(
        after_help = "Examples:\n  poolform validate examples/maintenance/steady\n  poolform validate config/ --format json"
    )]
    Validate(ValidateArgs),
    /// Diff a config against the live broker and show what would change, in order.
    #[command(
        after_help = "Examples:\n  poolform plan examples/maintenance/rds-02-out --broker file:/tmp/sandbox.json\n  poolform plan config/ --format markdown > plan.md\n  poolform plan config/ --out plan.json --detailed-exitcode\n  poolform plan config/ --target destination/rds-02\n  poolform plan config/ --rehearse --format markdown"
    )]
    Plan(PlanArgs),
    /// Render a saved plan file.
    #[command(
        after_help = "Examples:\n  poolform show plan.json\n  poolform show plan.json --format markdown > comment.md"
    )]
    Show(ShowArgs),
    /// Perform a plan: from a config (plans first and asks) or a saved plan file.
    #[command(
        after_help = "Examples:\n  poolform apply examples/maintenance/rds-02-out --broker file:/tmp/sandbox.json --auto-approve\n  poolform apply plan.json --auto-approve\n  poolform apply plan.json --rehearse"
    )]
    Apply(ApplyArgs),
    /// Write the live resources of a stack as config YAML that plans no changes.
    #[command(
        after_help = "Examples:\n  poolform export --stack corp-rds --broker https://broker.corp.example\n  poolform export --stack corp-rds -o config/\n  poolform export --stack corp-rds --all -o config/   # then import what it marks"
    )]
    Export(ExportArgs),
    /// Adopt unowned live resources into a stack by labelling them, changing nothing else.
    #[command(
        after_help = "Examples:\n  poolform import --stack corp-rds pool/legacy app_config/legacy-desktop\n  POOLFORM_LEGACY_PASSWORD=... poolform import --stack corp-rds pool/legacy"
    )]
    Import(ImportArgs),
    /// Write the JSON Schemas (config, plan, apply events).
    #[command(after_help = "Examples:\n  poolform schema\n  poolform schema -o /tmp/schemas")]
    Schema(SchemaArgs),
    /// Run the reference broker (sandbox, tests, rehearsals).
    #[command(
        subcommand,
        after_help = "Examples:\n  poolform broker serve --state /tmp/broker.json --token dev --seed examples/maintenance/broker-seed.json"
    )]
    Broker(BrokerCommand),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  poolform completions bash > /etc/bash_completion.d/poolform\n  poolform completions zsh > \"${fpath[1]}/_poolform\""
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Whether `--verbose` was given, on the commands that talk to a broker.
    pub fn verbose(&self) -> bool {
        match self {
            Command::Plan(args) => args.broker.verbose,
            Command::Apply(args) => args.broker.verbose,
            Command::Export(args) => args.broker.verbose,
            Command::Import(args) => args.broker.verbose,
            _ => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A config file or a directory of `*.yaml`/`*.yml` files.
    pub path: PathBuf,
    /// text: diagnostics on stderr; json: one document on stdout; github:
    /// workflow commands that annotate the pull request; gitlab: a code
    /// quality report for the merge request.
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Text,
    Json,
    Github,
    Gitlab,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Directory to write the schema files into (created when missing).
    #[arg(short = 'o', long = "out-dir", default_value = "schema", value_parser = parse_dir)]
    pub out_dir: PathBuf,
}

/// A directory to write several files into: `-` (stdout) cannot be one.
fn parse_dir(text: &str) -> Result<PathBuf, String> {
    if text == "-" {
        return Err("several files are written, so this takes a directory, not `-`".to_owned());
    }
    Ok(PathBuf::from(text))
}

/// Where the broker is: `--broker`, else `POOLFORM_BROKER`, else the config's `broker.url`.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// `http(s)://HOST[:PORT]` for a live broker API, `file:PATH` for the embedded broker.
    #[arg(long, env = "POOLFORM_BROKER")]
    pub broker: Option<String>,
    /// File holding the API token (default: env POOLFORM_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// For a `file:` broker whose state file does not exist yet: the snapshot
    /// to create it from (default: `broker-seed.json` beside the config).
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Log broker requests and retries on stderr (never a secret); the same
    /// as POOLFORM_LOG=debug, which takes any tracing filter.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// How `plan` prints a plan, and `show` a saved one (`show` has no
/// github/gitlab: annotations need the config a plan was made from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
    Github,
    Gitlab,
}

/// How `show` prints a saved plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Text,
    Json,
    Markdown,
}

impl From<ShowFormat> for PlanFormat {
    fn from(format: ShowFormat) -> PlanFormat {
        match format {
            ShowFormat::Text => PlanFormat::Text,
            ShowFormat::Json => PlanFormat::Json,
            ShowFormat::Markdown => PlanFormat::Markdown,
        }
    }
}

/// How `apply` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    Text,
    Json,
    Github,
    Gitlab,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A config file or a directory of `*.yaml`/`*.yml` files.
    pub path: PathBuf,
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// text: for terminals and logs; json: the plan document; markdown: a
    /// pull-request comment, riskiest changes first; github: workflow
    /// commands that annotate the pull request, then the text; gitlab: a
    /// code quality report on stdout, the text on stderr.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also save the plan (JSON, no secret values) for `apply PLANFILE` or `show`.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes (0: none, 1: error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan only these resources (KIND/NAME; kinds: pool, app_config,
    /// app_instance, destination). Repeatable.
    #[arg(long = "target", value_name = "KIND/NAME")]
    pub targets: Vec<Address>,
    /// Do not fail on safety violations (they are still shown).
    #[arg(long)]
    pub force: bool,
    /// Plan PATH even when it is one file of a directory whose other YAML
    /// files hold config too (their resources would be planned for deletion).
    #[arg(long)]
    pub allow_partial: bool,
    /// Also rehearse the plan: run it against a copy of the live state (the
    /// broker's snapshot, in process, on a virtual clock) and say what each
    /// step would meet. Nothing is written to the broker. Exits 1 when the
    /// rehearsal finds a step that would fail.
    #[arg(long)]
    pub rehearse: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The stack whose resources to export; also the config's `stack`.
    #[arg(long)]
    pub stack: String,
    /// Export every live pool, app config and app instance, not only the
    /// stack's; those it does not own are marked for `poolform import`.
    #[arg(long)]
    pub all: bool,
    /// Directory to write `pools.yaml`, `apps.yaml` (and `destinations.yaml`)
    /// into; without it, one document goes to stdout.
    #[arg(short = 'o', long = "out-dir")]
    pub out_dir: Option<PathBuf>,
    /// Overwrite files already in the directory.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

// The doc comments are clap's help text, printed verbatim: the variable's
// placeholder stays `<POOL>` as the README writes it, not an HTML escape.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The stack to adopt the resources into.
    #[arg(long)]
    pub stack: String,
    /// Resources to adopt (kinds: pool, app_config, app_instance). A pool with
    /// a password needs it in POOLFORM_<POOL>_PASSWORD, as the broker's pool
    /// write replaces the password too.
    #[arg(required = true, value_name = "KIND/NAME")]
    pub resources: Vec<Address>,
    /// Take over resources another stack owns.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved with `plan --out`.
    pub planfile: PathBuf,
    /// text: for terminals and logs; json: the plan document; markdown: a
    /// pull-request comment, riskiest changes first.
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A config (file or directory) to plan and apply, or a plan file saved by `plan --out`.
    pub path: PathBuf,
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Apply without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Steps run at once, at most (never two on one destination).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Apply despite safety violations.
    #[arg(long)]
    pub force: bool,
    /// How long to wait for another apply's lock on the stack (e.g. 30s, 5m).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// How long the stack's lease lasts without a heartbeat (whole seconds,
    /// at least 1s): a killed apply blocks the stack this long. Shorten it
    /// for scripted sandboxes and tests that kill applies on purpose.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub lock_ttl: std::time::Duration,
    /// Exit 1 when a step ends with a warning.
    #[arg(long)]
    pub warnings_as_errors: bool,
    /// Apply only these resources (KIND/NAME), when planning from a config.
    #[arg(long = "target", value_name = "KIND/NAME")]
    pub targets: Vec<Address>,
    /// text: progress on stderr, report on stdout; json: one JSON object per
    /// event on stdout, the report last (schema/apply-events.schema.json);
    /// github: workflow commands for warnings and failures, then the text;
    /// gitlab: a code quality report on stdout, the text on stderr.
    #[arg(long, value_enum, default_value_t = ApplyFormat::Text)]
    pub format: ApplyFormat,
    /// Apply PATH even when it is one file of a directory whose other YAML
    /// files hold config too (their resources would be deleted).
    #[arg(long)]
    pub allow_partial: bool,
    /// Rehearse instead of applying: run the plan against a copy of the
    /// live state (in process, on a virtual clock), show what each step
    /// would meet, and stop. Nothing is written to the broker, not even the
    /// lock. Exits 1 when the rehearsal finds a step that would fail.
    #[arg(long)]
    pub rehearse: bool,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::config::spec::parse_duration(text, 1)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is not a duration like 90s, 10m or 1h30m"))
}

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Serve the broker HTTP API from a state file.
    #[command(
        after_help = "Examples:\n  POOLFORM_BROKER_TOKEN=dev poolform broker serve --state broker.json --seed examples/maintenance/broker-seed.json\n  poolform broker serve --listen 127.0.0.1:0 --state /tmp/b.json --token dev --fail-rate 0.1 --latency 20"
    )]
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// State file: loaded when it exists, rewritten atomically after every change.
    #[arg(long)]
    pub state: PathBuf,
    /// Snapshot JSON to start from when the state file does not exist yet.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Bearer token clients must send.
    #[arg(long, env = "POOLFORM_BROKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Delay added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency: u64,
    /// Share of requests (0.0-1.0) answered 503 before anything is done.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fail_rate)]
    pub fail_rate: f64,
    /// Admit at most N requests per second (`N/s` or `N`); others get 429 with Retry-After.
    #[arg(long, value_parser = parse_rate_limit)]
    pub rate_limit: Option<u32>,
    /// Seed for the random source behind --fail-rate, for repeatable runs.
    #[arg(long)]
    pub seed_random: Option<u64>,
}

fn parse_fail_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a share between 0.0 and 1.0")),
    }
}

fn parse_rate_limit(text: &str) -> Result<u32, String> {
    match text.strip_suffix("/s").unwrap_or(text).parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} is not a rate like 50/s")),
    }
}
