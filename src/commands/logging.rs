//! Diagnostic logging for the commands that talk to a broker: requests,
//! answers and retries at `debug`, on stderr. `POOLFORM_LOG` takes any
//! tracing filter (`debug`, `poolform=trace`); `--verbose` means
//! `poolform=debug`. Off by default. The client never logs a secret.

use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter.
pub const LOG_ENV: &str = "POOLFORM_LOG";

/// Starts logging when `POOLFORM_LOG` is set or `verbose` is asked for.
pub fn init(verbose: bool) {
    let filter = match std::env::var(LOG_ENV) {
        Ok(filter) if !filter.is_empty() => EnvFilter::new(filter),
        _ if verbose => EnvFilter::new("poolform=debug"),
        _ => return,
    };
    // Fails only when a subscriber is set already, which then logs instead.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        // A log that cannot be written must not stop the run: left on, the
        // subscriber reports its own failure with `eprintln!`, which panics.
        .log_internal_errors(false)
        .try_init();
}
