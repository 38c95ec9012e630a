//! `poolform broker serve`: opens the state, binds the listener, announces
//! the address on stdout once ready, and serves the reference broker until
//! interrupted.

use std::io::Write;
use std::time::Duration;

use secrecy::SecretString;

use crate::cli::{BrokerCommand, ServeArgs};
use crate::commands::ExitStatus;
use crate::commands::error::{During, Error, IoAction};
use crate::refbroker::{ServeOptions, Store, router};

pub fn run(command: &BrokerCommand) -> Result<ExitStatus, Error> {
    match command {
        BrokerCommand::Serve(args) => serve(args.clone()).map(|()| ExitStatus::Success),
    }
}

fn serve(args: ServeArgs) -> Result<(), Error> {
    // A log that cannot be written (a full disk, a closed pipe) must not
    // take requests down: left on, the subscriber reports its own failure
    // with `eprintln!`, which panics the handler and drops the connection.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .log_internal_errors(false)
        .try_init();
    let token = args
        .token
        .filter(|t| !t.is_empty())
        .ok_or(Error::NoServeToken)?;
    let options = ServeOptions {
        token: SecretString::from(token),
        latency: Duration::from_millis(args.latency),
        fail_rate: args.fail_rate,
        rate_limit: args.rate_limit,
        random_seed: args.seed_random,
    };
    let store = Store::open(&args.state, args.seed.as_deref())?;
    // Many clients at once (load tests, parallel applies): unlike the
    // commands that call a broker, the server wants every core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .during(IoAction::StartRuntime)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .during(IoAction::Listen(args.listen))?;
        let addr = listener
            .local_addr()
            .during(IoAction::Listen(args.listen))?;
        // Tests and scripts wait for this exact line before connecting.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}")
            .and_then(|()| stdout.flush())
            .during(IoAction::Announce)?;
        drop(stdout);
        axum::serve(listener, router(store, options))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .during(IoAction::Serve)
    })
}
