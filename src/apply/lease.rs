//! The per-stack lease lock that keeps two applies of one stack apart: taken
//! before the first write, renewed by a heartbeat while the apply runs, and
//! deleted at the end. A killed run's lease simply expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::contract::problem::codes;
use crate::contract::wire::LockBody;
use crate::contract::{Broker, BrokerError};

/// Pause between two attempts while another holder has the lease.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, thiserror::Error)]
pub enum LockError {
    /// Still held by someone else when `lock_timeout` ran out. The broker's
    /// conflict answer normally names the holder and expiry (unix seconds).
    #[error(
        "stack {stack} is locked by {}; the lease expires at unix time {}",
        holder.as_deref().unwrap_or("an unnamed holder"),
        expires_at.map_or_else(|| "unknown".to_owned(), |t| t.to_string())
    )]
    Held {
        stack: String,
        holder: Option<String>,
        expires_at: Option<u64>,
    },
    /// The apply was cancelled (a signal) while it waited for the lease.
    #[error("cancelled while waiting for the lease on stack {stack}")]
    Cancelled { stack: String },
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// A held lease. Dropping it stops the heartbeat (the lease then expires);
/// [`Lease::release`] also deletes it so the next apply need not wait.
pub struct Lease<B: Broker + 'static> {
    broker: Arc<B>,
    stack: String,
    holder: String,
    heartbeat: JoinHandle<()>,
}

impl<B: Broker + 'static> Lease<B> {
    /// Takes the lease on `stack` for `ttl`, retrying while another holder
    /// has it until `lock_timeout` runs out. While held, a heartbeat renews it
    /// every `ttl / 3`; if renewal shows the lease lost (another holder, or no
    /// successful renewal within `ttl`), it sets `on_lost` so the apply stops
    /// starting steps (pass `Options::cancel`). Waiting for another holder
    /// ends at once when that flag is set (a signal): nothing was done yet.
    pub async fn acquire(
        broker: Arc<B>,
        stack: &str,
        holder: &str,
        ttl: Duration,
        lock_timeout: Duration,
        on_lost: Arc<AtomicBool>,
    ) -> Result<Self, LockError> {
        // The broker counts whole seconds; beating on the same rounded
        // value keeps renewals inside the lease it actually granted.
        let ttl_seconds = ttl.as_secs().max(1);
        let ttl = Duration::from_secs(ttl_seconds);
        let body = LockBody {
            holder: holder.to_owned(),
            ttl_seconds,
        };
        let deadline = Instant::now() + lock_timeout;
        loop {
            let error = match broker.put_lock(stack, &body).await {
                Ok(_) => break,
                Err(e) if e.code() == Some(codes::CONFLICT) => e,
                Err(e) => return Err(e.into()),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let problem = error.problem();
                return Err(LockError::Held {
                    stack: stack.to_owned(),
                    holder: problem.and_then(|p| p.holder.clone()),
                    expires_at: problem.and_then(|p| p.expires_at),
                });
            }
            if super::sleep_unless_cancelled(&on_lost, RETRY_INTERVAL.min(left)).await {
                return Err(LockError::Cancelled {
                    stack: stack.to_owned(),
                });
            }
        }
        let heartbeat = tokio::spawn(heartbeat(
            Arc::clone(&broker),
            stack.to_owned(),
            body,
            ttl,
            on_lost,
        ));
        Ok(Lease {
            broker,
            stack: stack.to_owned(),
            holder: holder.to_owned(),
            heartbeat,
        })
    }

    /// Stops the heartbeat and deletes the lease. A lease that already
    /// expired counts as released.
    pub async fn release(mut self) -> Result<(), BrokerError> {
        self.heartbeat.abort();
        // Wait for the abort so no renewal lands after the delete.
        let _ = (&mut self.heartbeat).await;
        match self.broker.delete_lock(&self.stack, &self.holder).await {
            Err(e) if e.code() == Some(codes::NOT_FOUND) => Ok(()),
            other => other,
        }
    }
}

impl<B: Broker + 'static> Drop for Lease<B> {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn heartbeat<B: Broker>(
    broker: Arc<B>,
    stack: String,
    body: LockBody,
    ttl: Duration,
    on_lost: Arc<AtomicBool>,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        match broker.put_lock(&stack, &body).await {
            Ok(_) => renewed = Instant::now(),
            // Someone else holds it now: our writes are no longer protected.
            Err(e) if e.code() == Some(codes::CONFLICT) => break,
            // Transient failures are retried on the next beat while the lease
            // can still be alive.
            Err(_) if renewed.elapsed() >= ttl => break,
            Err(_) => {}
        }
    }
    on_lost.store(true, Ordering::SeqCst);
}

/// Who holds a lease, as other users see it: `user@host pid N`.
pub fn default_holder() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{user}@{host} pid {}", std::process::id())
}
