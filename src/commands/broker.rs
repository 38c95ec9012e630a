//! `poolform broker serve`: opens the state, binds the listener, announces
//! the address on stdout once ready, and serves the reference broker until
//! interrupted.

use std::io::{self, Write};
use std::time::Duration;

use secrecy::SecretString;

use crate::cli::{BrokerCommand, ServeArgs};
use crate::commands::ExitStatus;
use crate::refbroker::{ServeOptions, Store, router};

pub fn run(command: &BrokerCommand) -> io::Result<ExitStatus> {
    match command {
        BrokerCommand::Serve(args) => match serve(args.clone()) {
            Ok(()) => Ok(ExitStatus::Success),
            Err(message) => {
                writeln!(io::stderr().lock(), "poolform broker serve: {message}")?;
                Ok(ExitStatus::Rejected)
            }
        },
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let token = args
        .token
        .filter(|t| !t.is_empty())
        .ok_or("a token is required: pass --token or set POOLFORM_BROKER_TOKEN")?;
    let options = ServeOptions {
        token: SecretString::from(token),
        latency: Duration::from_millis(args.latency),
        fail_rate: args.fail_rate,
        rate_limit: args.rate_limit,
        random_seed: args.seed_random,
    };
    let store = Store::open(&args.state, args.seed.as_deref()).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        // Tests and scripts wait for this exact line before connecting.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
        drop(stdout);
        axum::serve(listener, router(store, options))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| format!("server failed: {e}"))
    })
}
