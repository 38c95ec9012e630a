//! One plan step against the broker: its preconditions checked right before
//! its write, the call each `Op` maps to, the drain protocol, the pool
//! password with its fingerprint label, and the rule that turns an offline
//! host's `lb_service_uninstall_failed` into a warning. Every step is safe to
//! re-run after a crash.

use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::precondition::{expected_revision, read_and_check, reads_destination, refused};
use super::{ApplyError, Context, NoticeReport, Progress, StepOutcome, Warning};
use crate::contract::problem::codes;
use crate::contract::wire::{CredentialsBody, PoolBody, SessionMessage, SessionState};
use crate::contract::{Broker, BrokerError, Expect};
use crate::desired::{DrainNotice, DrainSessions};
use crate::plan::{ExpectedWarning, Op, PoolSettings, Step};

pub(super) async fn run<B: Broker>(ctx: &Context<'_, B>, step: &Step) -> StepOutcome {
    match execute(ctx, step).await {
        Ok(outcome) => outcome,
        Err(error) => StepOutcome::Failed(error),
    }
}

async fn execute<B: Broker>(ctx: &Context<'_, B>, step: &Step) -> Result<StepOutcome, ApplyError> {
    let broker = ctx.broker;
    if let Some(destination) = step.op.destination().filter(|_| reads_destination(step))
        && !matches!(step.op, Op::DrainSessions { .. })
    {
        read_and_check(broker, step, destination).await?;
    }
    let refused = |e| refused(step, e);
    let expected = || match expected_revision(step, &ctx.pools) {
        None => Expect::Any,
        Some(Some(revision)) => Expect::Revision(revision),
        Some(None) => Expect::Absent,
    };
    match &step.op {
        Op::PutPool { pool, settings } => {
            let body = pool_body(ctx, settings)?;
            let written = broker.put_pool(pool, &body, expected()).await;
            ctx.pools.saw(pool, written.map_err(refused)?.revision);
        }
        Op::AddMember { pool, destination } => {
            let written = broker.put_member(pool, destination).await;
            ctx.pools.saw(pool, written.map_err(refused)?.revision);
        }
        // Done once it runs: the adds it waits for are done.
        Op::AwaitNewMembers { .. } => {}
        Op::PutAppConfig { app_config, body } => {
            let written = broker.put_app_config(app_config, body, expected()).await;
            written.map_err(refused)?;
        }
        Op::PutAppInstance { app_instance, body } => {
            let written = broker
                .put_app_instance(app_instance, body, expected())
                .await;
            written.map_err(refused)?;
        }
        Op::PutMaintenance {
            destination,
            maintenance,
        } => {
            broker.put_maintenance(destination, maintenance).await?;
        }
        Op::DeleteMaintenance { destination } => {
            broker.delete_maintenance(destination).await?;
        }
        Op::StopLogons { destination } => {
            broker.start_drain(destination, ctx.stack).await?;
        }
        Op::AllowLogons { destination } => {
            broker.end_drain(destination).await?;
        }
        Op::DrainSessions {
            destination,
            policy,
            timeout_seconds,
            notice,
            ..
        } => {
            let timeout = timeout_seconds
                .map(Duration::from_secs)
                .unwrap_or(ctx.options.default_drain_timeout);
            let notice = notice
                .as_deref()
                .filter(|_| *policy == DrainSessions::Disconnect);
            drain(ctx, step, destination, *policy, notice, timeout).await?;
        }
        Op::ClearSticky { pool, destination } => {
            broker.clear_sticky(pool, Some(destination)).await?;
        }
        Op::RemoveMember { pool, destination } => {
            return remove_member(ctx, step, pool, destination).await;
        }
        Op::RemoveLbService { destination } => {
            broker
                .delete_lb_service(destination)
                .await
                .map_err(refused)?;
        }
        Op::DeleteAppInstance { app_instance } => {
            already_gone(broker.delete_app_instance(app_instance, expected()).await)
                .map_err(refused)?;
        }
        Op::DeleteAppConfig { app_config } => {
            already_gone(broker.delete_app_config(app_config, expected()).await)
                .map_err(refused)?;
        }
        Op::DeletePool { pool } => {
            already_gone(broker.delete_pool(pool, expected()).await).map_err(refused)?;
        }
    }
    Ok(StepOutcome::Done)
}

/// A delete re-run after a crash finds the resource gone: that is success.
fn already_gone(result: Result<(), BrokerError>) -> Result<(), BrokerError> {
    match result {
        Err(e) if e.code() == Some(codes::NOT_FOUND) => Ok(()),
        other => other,
    }
}

/// The write body for a pool. The password is resolved here, not at plan
/// time, so a saved plan never holds it; its salted fingerprint goes into a
/// label so later plans can tell whether the configured password changed.
fn pool_body<B>(ctx: &Context<'_, B>, settings: &PoolSettings) -> Result<PoolBody, ApplyError> {
    let mut labels = settings.labels.clone();
    let password = match &settings.password {
        Some(source) => {
            let secret = (ctx.secrets)(source).map_err(|reason| ApplyError::Secret {
                secret: source.clone(),
                reason,
            })?;
            labels.insert(
                crate::contract::labels::password_fingerprint(),
                crate::secret::fingerprint(secret.expose_secret()),
            );
            Some(secret.expose_secret().to_owned())
        }
        None => None,
    };
    Ok(PoolBody {
        load_balancing: settings.load_balancing,
        default_credentials: CredentialsBody {
            username: settings.username.clone(),
            password,
        },
        labels,
    })
}

/// Empties `destination` of active sessions per `policy`. An offline host
/// has none to empty, and a host already empty gets no disconnect call, so
/// a re-run repeats no side effect.
async fn drain<B: Broker>(
    ctx: &Context<'_, B>,
    step: &Step,
    destination: &str,
    policy: DrainSessions,
    notice: Option<&DrainNotice>,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let broker = ctx.broker;
    // The destination carries its session counts, so one read both checks
    // the preconditions and decides whether there is anything to drain.
    let mut active = match read_and_check(broker, step, destination).await? {
        Some(d) if d.online => d.sessions.active,
        // Gone or offline: no sessions can be running there.
        _ => return Ok(()),
    };
    let step = step.id;
    let mut deadline = Instant::now() + timeout;
    if active == 0 {
        return Ok(());
    }
    match (policy, notice) {
        (DrainSessions::Refuse, _) => {
            return Err(ApplyError::SessionsActive {
                destination: destination.to_owned(),
                active,
            });
        }
        (DrainSessions::Disconnect, None) => {
            disconnect(ctx, step, destination).await?;
            active = active_sessions(broker, destination).await?;
        }
        (DrainSessions::Disconnect, Some(notice)) => {
            active = warn_then_disconnect(ctx, step, destination, notice, active).await?;
            // The timeout bounds the disconnect, which begins after the lead time.
            deadline = Instant::now() + timeout;
        }
        (DrainSessions::Wait, _) => {}
    }
    loop {
        let now = Instant::now();
        let time_left = deadline.saturating_duration_since(now);
        (ctx.events)(Progress::DrainProgress {
            step,
            remaining_sessions: active,
            time_left,
        });
        if active == 0 {
            return Ok(());
        }
        if time_left.is_zero() {
            return Err(ApplyError::DrainTimedOut {
                destination: destination.to_owned(),
                active,
                waited: timeout,
            });
        }
        let pause = ctx.options.drain_poll_interval.min(time_left);
        if super::sleep_unless_cancelled(&ctx.options.cancel, pause).await {
            return Err(ApplyError::Cancelled);
        }
        active = active_sessions(broker, destination).await?;
    }
}

/// Disconnects the active sessions on `destination`; returns how many.
async fn disconnect<B: Broker>(
    ctx: &Context<'_, B>,
    step: usize,
    destination: &str,
) -> Result<u32, ApplyError> {
    let affected = ctx.broker.disconnect_sessions(destination).await?.affected;
    (ctx.events)(Progress::SessionsDisconnected { step, affected });
    Ok(affected)
}

/// A drain with a notice: the users are told, then given the lead time to
/// log off (it ends early once nobody is left), then the rest are
/// disconnected. Returns the active sessions left afterwards; the report
/// learns how many left by themselves and how many were disconnected.
async fn warn_then_disconnect<B: Broker>(
    ctx: &Context<'_, B>,
    step: usize,
    destination: &str,
    notice: &DrainNotice,
    mut active: u32,
) -> Result<u32, ApplyError> {
    let broker = ctx.broker;
    let message = SessionMessage {
        de: notice.de.clone(),
        en: notice.en.clone(),
    };
    let notified = broker
        .message_sessions(destination, &message)
        .await?
        .affected;
    (ctx.events)(Progress::UsersNotified {
        step,
        affected: notified,
    });
    let deadline = Instant::now() + Duration::from_secs(notice.lead_time_seconds);
    loop {
        let time_left = deadline.saturating_duration_since(Instant::now());
        (ctx.events)(Progress::LeadTime {
            step,
            remaining_sessions: active,
            time_left,
        });
        if active == 0 || time_left.is_zero() {
            break;
        }
        let pause = ctx.options.drain_poll_interval.min(time_left);
        if super::sleep_unless_cancelled(&ctx.options.cancel, pause).await {
            return Err(ApplyError::Cancelled);
        }
        active = active_sessions(broker, destination).await?;
    }
    let disconnected = match active {
        0 => 0,
        _ => disconnect(ctx, step, destination).await?,
    };
    ctx.notices
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(NoticeReport {
            step,
            notified,
            logged_off: notified.saturating_sub(active),
            disconnected,
        });
    match active {
        0 => Ok(0),
        _ => Ok(active_sessions(broker, destination).await?),
    }
}

async fn active_sessions<B: Broker>(broker: &B, destination: &str) -> Result<u32, BrokerError> {
    let sessions = broker.list_sessions(destination).await?;
    let active = sessions
        .iter()
        .filter(|s| s.state == SessionState::Active)
        .count();
    Ok(u32::try_from(active).unwrap_or(u32::MAX))
}

/// Removes a member. The broker answers `lb_service_uninstall_failed` when
/// it cannot reach the host to uninstall the load-balancing service; for an
/// offline host the membership is gone anyway, which a re-read of the pool
/// must confirm before the error counts as a warning.
async fn remove_member<B: Broker>(
    ctx: &Context<'_, B>,
    step: &Step,
    pool: &str,
    destination: &str,
) -> Result<StepOutcome, ApplyError> {
    let error = match ctx.broker.delete_member(pool, destination).await {
        Ok(answer) => {
            ctx.pools.saw(pool, answer.revision);
            return Ok(StepOutcome::Done);
        }
        Err(error) => error,
    };
    let offline_uninstall = error.code() == Some(codes::LB_SERVICE_UNINSTALL_FAILED)
        && error
            .problem()
            .is_some_and(|p| p.destination_online == Some(false));
    let Some(problem) = error.problem().filter(|_| offline_uninstall) else {
        return Err(error.into());
    };
    let problem = Box::new(problem.clone());
    // Without the confirming read the broker's claim is unverified: the
    // original error stands.
    // A pool deleted meanwhile has no members left either.
    let still_member = match ctx.broker.get_pool(pool).await {
        Ok(Some(live)) => {
            ctx.pools.saw(pool, live.revision);
            live.members.iter().any(|m| m == destination)
        }
        Ok(None) => false,
        Err(_) => return Err(error.into()),
    };
    if still_member {
        return Err(ApplyError::MembershipRemains {
            pool: pool.to_owned(),
            destination: destination.to_owned(),
            problem,
        });
    }
    let warning = ExpectedWarning::LbServiceUninstallFailed {
        destination: destination.to_owned(),
    };
    let expected = step.expected_warning.as_deref() == Some(&warning);
    Ok(StepOutcome::Warning(Warning {
        warning,
        problem,
        expected,
    }))
}
