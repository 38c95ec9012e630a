//! Command-line definitions (clap derive): a plain mirror of the flags. No IO
//! happens here; `main` turns these into real objects after parsing.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::desired::Address;

#[derive(Debug, Parser)]
#[command(
    name = "poolform",
    version,
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
    /// Write the JSON Schemas (config, plan).
    Schema(SchemaArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A config file or a directory of `*.yaml`/`*.yml` files.
    pub path: PathBuf,
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
    pub format: DiagnosticFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Directory to write `config.schema.json` and `plan.schema.json` into.
    #[arg(short = 'o', long = "out-dir", default_value = "schema")]
    pub out_dir: PathBuf,
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
}

/// Resource filter for plan and apply.
pub type Targets = Vec<Address>;
