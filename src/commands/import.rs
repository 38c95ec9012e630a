//! `poolform import`: adopts live resources into a stack by writing the
//! stack label through each resource's PUT, every other setting sent back as
//! read and guarded by its revision, so that nothing but ownership changes.

use std::io::Write;

use crate::address::{Address, Kind};
use crate::backend::AnyBroker;
use crate::cli::ImportArgs;
use crate::commands::ExitStatus;
use crate::commands::context::{Context, connect};
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;
use crate::contract::labels::{owner, with_stack};
use crate::contract::wire::{
    AppConfig, AppConfigBody, AppInstance, AppInstanceBody, CredentialsBody, Labels, Pool, PoolBody,
};
use crate::contract::{Broker, BrokerError, Expect, names};
use crate::export::password_env;

/// What became of a resource that did not fail.
enum Adopted {
    Now,
    Already,
}

/// Why one resource was not imported; the others still are.
#[derive(Debug, thiserror::Error)]
enum NotImported {
    #[error("not found on the broker")]
    Missing,
    #[error("not imported: {0}")]
    Broker(#[from] BrokerError),
    #[error(
        "owned by stack {owner}; not imported (--force takes it over; stack {owner}'s plans then report it as plan::not_owned)"
    )]
    Owned { owner: String },
    #[error(
        "has a password, which the broker never returns and a pool write would clear; set {var} to it and run again"
    )]
    NoPassword { var: String },
    #[error(
        "{var} is not the password poolform last wrote to this pool (by its fingerprint label); not imported, the password is unchanged"
    )]
    WrongPassword { var: String },
    #[error(
        "destinations have no owner; declare it under `destinations:` to manage its maintenance mode"
    )]
    Destination,
}

pub fn run(ctx: &Context, args: &ImportArgs) -> Result<ExitStatus, Error> {
    if !names::is_valid(&args.stack) {
        return Err(Error::InvalidStack(args.stack.clone()));
    }
    let broker = connect(&args.broker, None)?;
    let runtime = ctx.runtime()?;
    let mut failed = 0;
    for address in &args.resources {
        let line = match runtime.block_on(adopt(&broker, address, &args.stack, args.force)) {
            Ok(Adopted::Now) => format!("{address}: imported into stack {}", args.stack),
            Ok(Adopted::Already) => format!("{address}: already in stack {}", args.stack),
            Err(reason) => {
                failed += 1;
                writeln!(output::stderr(), "error: {address}: {reason}")
                    .during(IoAction::WriteStderr)?;
                continue;
            }
        };
        writeln!(output::stdout(), "{line}").during(IoAction::WriteStdout)?;
    }
    if failed > 0 {
        return Err(Error::NotImported {
            failed,
            total: args.resources.len(),
        });
    }
    Ok(ExitStatus::Success)
}

async fn adopt(
    broker: &AnyBroker,
    address: &Address,
    stack: &str,
    force: bool,
) -> Result<Adopted, NotImported> {
    let name = &*address.name;
    match address.kind {
        Kind::Pool => {
            let pool = broker.get_pool(name).await?.ok_or(NotImported::Missing)?;
            if owned(&pool.labels, stack, force)? {
                return Ok(Adopted::Already);
            }
            let password = std::env::var(password_env(name)).ok();
            let body = pool_body(&pool, stack, password)?;
            broker
                .put_pool(name, &body, Expect::Revision(pool.revision))
                .await?;
        }
        Kind::AppConfig => {
            let config = broker
                .get_app_config(name)
                .await?
                .ok_or(NotImported::Missing)?;
            if owned(&config.labels, stack, force)? {
                return Ok(Adopted::Already);
            }
            let body = app_config_body(&config, stack);
            broker
                .put_app_config(name, &body, Expect::Revision(config.revision))
                .await?;
        }
        Kind::AppInstance => {
            let instance = broker
                .get_app_instance(name)
                .await?
                .ok_or(NotImported::Missing)?;
            if owned(&instance.labels, stack, force)? {
                return Ok(Adopted::Already);
            }
            let body = app_instance_body(&instance, stack);
            broker
                .put_app_instance(name, &body, Expect::Revision(instance.revision))
                .await?;
        }
        Kind::Destination => return Err(NotImported::Destination),
    }
    Ok(Adopted::Now)
}

/// Whether the resource is in `stack` already; an error when another stack
/// owns it and `--force` was not given.
fn owned(labels: &Labels, stack: &str, force: bool) -> Result<bool, NotImported> {
    match owner(labels) {
        Some(owner) if owner == stack => Ok(true),
        Some(owner) if !force => Err(NotImported::Owned {
            owner: owner.to_owned(),
        }),
        _ => Ok(false),
    }
}

/// The pool as it is, plus the stack label. A pool write replaces the
/// password too (an absent one clears it), and the broker never returns it:
/// a pool with a password is re-sent with the one in `POOLFORM_<POOL>_PASSWORD`,
/// checked against poolform's fingerprint label when the pool has one.
fn pool_body(pool: &Pool, stack: &str, password: Option<String>) -> Result<PoolBody, NotImported> {
    let mut labels = with_stack(&pool.labels, stack);
    let password = if pool.default_credentials.password_set {
        let var = password_env(&pool.name);
        let Some(secret) = password else {
            return Err(NotImported::NoPassword { var });
        };
        let key = crate::contract::labels::password_fingerprint();
        match pool.labels.get(&key) {
            Some(label) if crate::secret::fingerprint_matches(label, &secret) => {}
            Some(label) if crate::secret::is_current_fingerprint(label) => {
                return Err(NotImported::WrongPassword { var });
            }
            // Later plans compare the configured password with this
            // fingerprint, as for a password poolform wrote itself. A label
            // in an older format cannot vouch for the password; it is
            // replaced like a missing one.
            _ => {
                labels.insert(key, crate::secret::fingerprint(&secret));
            }
        }
        Some(secret)
    } else {
        None
    };
    Ok(PoolBody {
        load_balancing: pool.load_balancing,
        default_credentials: CredentialsBody {
            username: pool.default_credentials.username.clone(),
            password,
        },
        labels,
    })
}

fn app_config_body(config: &AppConfig, stack: &str) -> AppConfigBody {
    AppConfigBody {
        pool: config.pool.clone(),
        app_type: config.app_type,
        protocol: config.protocol,
        admin_session: config.admin_session,
        keep_credentials_on_destination_change: config.keep_credentials_on_destination_change,
        allow_destination_change: config.allow_destination_change,
        labels: with_stack(&config.labels, stack),
    }
}

fn app_instance_body(instance: &AppInstance, stack: &str) -> AppInstanceBody {
    AppInstanceBody {
        app_config: instance.app_config.clone(),
        user: instance.user.clone(),
        group: instance.group.clone(),
        destination: instance.destination.clone(),
        labels: with_stack(&instance.labels, stack),
    }
}
