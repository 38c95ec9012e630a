//! The simulation controls of the reference broker's HTTP face
//! (`/v1/_sim/...`): registering destinations, powering hosts, users
//! starting and ending sessions, and the request statistics. Tests steer and
//! observe a broker through them; a real broker has none.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{Answer, App, Body, Name, P, json, to_json, write};
use crate::contract::wire::SessionState;

/// Body of `POST /v1/_sim/destinations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimDestination {
    pub name: String,
    pub online: bool,
    pub process_execution_ready: bool,
}

/// Body of `POST /v1/_sim/destinations/{name}/power`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimPower {
    pub online: bool,
}

/// Body of `POST /v1/_sim/destinations/{name}/sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSession {
    pub user: String,
    pub state: SessionState,
    /// The user's groups: drain mode admits members of the groups maintenance
    /// mode lets in.
    #[serde(default)]
    pub groups: Vec<String>,
}

pub(super) async fn sim_destination(
    State(app): State<App>,
    Body(body): Body<SimDestination>,
) -> Answer {
    write(&app, move |e| {
        e.sim_destination(&body.name, body.online, body.process_execution_ready)
    })
    .await
}

pub(super) async fn sim_power(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    Body(body): Body<SimPower>,
) -> Answer {
    write(&app, move |e| e.sim_power(&name, body.online)).await
}

pub(super) async fn sim_session(
    State(app): State<App>,
    P(Name(name)): P<Name>,
    Body(body): Body<SimSession>,
) -> Answer {
    let s = app
        .store
        .mutate(move |e| e.sim_start_session(&name, &body.user, body.state, &body.groups))
        .await?;
    Ok(json(StatusCode::CREATED, to_json(&s)))
}

pub(super) async fn sim_end_session(State(app): State<App>, P(id): P<String>) -> Answer {
    write(&app, move |e| e.sim_end_session(&id)).await
}

pub(super) async fn sim_stats(State(app): State<App>) -> Answer {
    let stats = app
        .sim
        .stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(json(StatusCode::OK, to_json(&stats)))
}
