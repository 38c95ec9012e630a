//! The reference broker (`poolform broker serve`) started as a real process
//! on 127.0.0.1:0 and driven through `HttpBroker`; plus the OpenAPI file's
//! validity and its agreement with the server's route table.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use poolform::client::http::{HttpBroker, HttpOptions, RetryPolicy};
use poolform::contract::problem::codes;
use poolform::contract::wire::{
    AppConfigBody, AppInstanceBody, AppType, BROKER_ID_HEADER, Labels, Leftover, LoadBalancing,
    LockBody, Maintenance, PoolBody, Protocol, SessionMessage, SessionState, Snapshot,
};
use poolform::contract::{Broker, BrokerError, Expect};
use poolform::refbroker::server::operations;
use poolform::refbroker::store::load_state;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::{STARTUP, Server, TOKEN, seed_path};

fn lb(sticky: u32) -> PoolBody {
    PoolBody {
        load_balancing: LoadBalancing {
            enabled: true,
            sticky_sessions_minutes: sticky,
            grace_period_seconds: 30,
        },
        ..PoolBody::default()
    }
}

fn desktop(pool: &str) -> AppConfigBody {
    AppConfigBody {
        pool: pool.into(),
        app_type: AppType::Desktop,
        protocol: Protocol::Rdp,
        admin_session: true,
        keep_credentials_on_destination_change: true,
        allow_destination_change: false,
        labels: Labels::new(),
    }
}

fn code(err: &BrokerError) -> (u16, &str) {
    match err {
        BrokerError::Problem { status, problem } => (*status, problem.code.as_str()),
        other => panic!("expected a problem, got {other}"),
    }
}

// ----- the OpenAPI file -----

fn openapi() -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/broker-api.openapi.yaml"),
    )
    .unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

#[test]
fn the_openapi_file_is_structurally_valid() {
    let spec = openapi();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());
    let paths = spec["paths"].as_object().unwrap();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let responses = op["responses"].as_object();
                assert!(
                    responses.is_some_and(|r| !r.is_empty()),
                    "{method} {path} has no responses"
                );
            }
        }
    }
    let mut refs = Vec::new();
    collect_refs(&spec, &mut refs);
    assert!(refs.len() > 50);
    for r in refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(spec.pointer(pointer).is_some(), "$ref {r} does not resolve");
    }
    let spec_codes: BTreeSet<&str> = spec
        .pointer("/components/schemas/Problem/properties/code/enum")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in [
        codes::LB_SERVICE_UNINSTALL_FAILED,
        codes::DESTINATION_NOT_READY,
        codes::DESTINATION_UNREACHABLE,
        codes::CONFLICT,
        codes::IN_USE,
        codes::NOT_FOUND,
        codes::UNAUTHORIZED,
        codes::RATE_LIMITED,
        codes::PRECONDITION_FAILED,
        codes::BAD_REQUEST,
        codes::PAYLOAD_TOO_LARGE,
        codes::UNAVAILABLE,
        codes::LOCKED,
        codes::DESTINATION_DRAINING,
    ] {
        assert!(spec_codes.contains(c), "code {c} missing from the spec");
    }
}

#[test]
fn the_openapi_file_and_the_server_list_the_same_operations() {
    let spec = openapi();
    let mut in_spec = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                in_spec.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = operations()
        .into_iter()
        .map(|(m, p)| (m, p.to_owned()))
        .collect();
    assert_eq!(in_spec, served);
}

// ----- the server -----

#[tokio::test]
async fn requests_without_the_token_get_401_problems() {
    let server = Server::start(&[]);
    let response = reqwest::get(format!("{}/v1/pools", server.url))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    let wrong = HttpBroker::new(
        &server.url,
        Some(SecretString::from("nope".to_owned())),
        HttpOptions::default(),
    )
    .unwrap();
    let err = wrong.get_pool("live").await.unwrap_err();
    assert_eq!(code(&err), (401, codes::UNAUTHORIZED));
    // One request each, in turn: exactly the two counted.
    assert_eq!(server.stats().await.unauthorized, 2);
    // A full read is five list reads at once; the first 401 ends it and
    // cancels the others, which may or may not have reached the server.
    let err = wrong.read_live().await.unwrap_err();
    assert_eq!(code(&err), (401, codes::UNAUTHORIZED));
    let counted = server.stats().await.unauthorized;
    assert!((3..=7).contains(&counted), "{counted}");
}

#[test]
fn serve_refuses_to_start_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_poolform"))
        .args(["broker", "serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(dir.path().join("s.json"))
        .env_remove("POOLFORM_BROKER_TOKEN")
        .timeout(STARTUP)
        .assert()
        .failure()
        .stderr(predicates::str::contains("token is required"));
}

/// The runbook, step by step, against the seed: drain rds-02, clear its
/// sticky bindings, power it off, take it out of `live` (the expected 502),
/// then put it back; the event log shows exactly that order.
#[tokio::test]
async fn the_maintenance_runbook_against_the_seed() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let broker = server.client();
    let live = broker.read_live().await.unwrap();
    assert_eq!(live.destinations.len(), 3);
    assert_eq!(live.pools.len(), 2);
    let start = broker.events(0).await.unwrap().last().map_or(0, |e| e.seq);

    let sessions = broker.list_sessions("rds-02").await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        broker.disconnect_sessions("rds-02").await.unwrap().affected,
        2
    );
    let snap = server.snapshot().await;
    let bound: BTreeSet<_> = snap
        .sticky_bindings
        .iter()
        .filter(|b| b.pool == "live" && b.destination == "rds-02")
        .map(|b| b.user.as_str())
        .collect();
    assert_eq!(
        bound,
        BTreeSet::from(["dave@corp.example", "erin@corp.example"])
    );
    assert_eq!(
        broker.disconnect_sessions("rds-02").await.unwrap().affected,
        0,
        "disconnected sessions are left alone"
    );
    let left = broker.list_sessions("rds-02").await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|s| s.state == SessionState::Disconnected));
    assert_eq!(
        broker
            .clear_sticky("live", Some("rds-02"))
            .await
            .unwrap()
            .affected,
        2
    );
    assert!(server.snapshot().await.sticky_bindings.is_empty());

    server
        .sim(
            "/v1/_sim/destinations/rds-02/power",
            json!({"online": false}),
        )
        .await;
    let err = broker.disconnect_sessions("rds-02").await.unwrap_err();
    assert_eq!(code(&err), (502, codes::DESTINATION_UNREACHABLE));
    let err = broker.delete_member("live", "rds-02").await.unwrap_err();
    assert_eq!(code(&err), (502, codes::LB_SERVICE_UNINSTALL_FAILED));
    assert_eq!(err.problem().unwrap().destination_online, Some(false));
    let pool = broker.get_pool("live").await.unwrap().unwrap();
    assert_eq!(pool.members, vec!["rds-01", "rds-03"]);
    let rds02 = broker.get_destination("rds-02").await.unwrap().unwrap();
    assert!(rds02.lb_service_installed, "the service is left over");
    let again = broker.delete_member("live", "rds-02").await.unwrap();
    assert_eq!(
        again.revision, pool.revision,
        "removing a non-member changes nothing"
    );

    server
        .sim(
            "/v1/_sim/destinations/rds-02/power",
            json!({"online": true}),
        )
        .await;
    let back = broker.put_member("live", "rds-02").await.unwrap();
    let pool = broker.get_pool("live").await.unwrap().unwrap();
    assert_eq!(pool.members, vec!["rds-01", "rds-02", "rds-03"]);
    assert_eq!(
        back.revision, pool.revision,
        "the answer has the pool's revision"
    );
    assert_eq!(
        broker.put_member("live", "rds-02").await.unwrap(),
        back,
        "adding a member again changes nothing"
    );

    let log: Vec<String> = broker
        .events(start)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let code = e
                .code
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            format!("{} {}{code}", e.op, e.resource)
        })
        .collect();
    assert_eq!(
        log,
        vec![
            "sessions.disconnect destination/rds-02/sessions",
            "sticky.clear pool/live/sticky-sessions/rds-02",
            "sim.power.off destination/rds-02",
            "member.remove pool/live/member/rds-02 lb_service_uninstall_failed",
            "sim.power.on destination/rds-02",
            "member.add pool/live/member/rds-02",
        ]
    );
}

#[tokio::test]
async fn every_resource_path_with_revisions_and_refusals() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let broker = server.client();

    // Pools: create, If-Match, stale If-Match, LB rules.
    let pool = broker.put_pool("extra", &lb(5), Expect::Any).await.unwrap();
    let updated = broker
        .put_pool("extra", &lb(6), Expect::Revision(pool.revision))
        .await
        .unwrap();
    let err = broker
        .put_pool("extra", &lb(7), Expect::Revision(pool.revision))
        .await
        .unwrap_err();
    assert_eq!(code(&err), (412, codes::PRECONDITION_FAILED));
    let err = broker
        .delete_pool("extra", Expect::Revision(pool.revision))
        .await
        .unwrap_err();
    assert_eq!(code(&err), (412, codes::PRECONDITION_FAILED));
    let err = broker.put_member("extra", "rds-01").await.unwrap_err();
    assert_eq!(
        code(&err),
        (409, codes::CONFLICT),
        "rds-01 is in load-balanced live"
    );
    server
        .sim(
            "/v1/_sim/destinations",
            json!({"name": "rds-04", "online": true, "process_execution_ready": false}),
        )
        .await;
    let err = broker.put_member("extra", "rds-04").await.unwrap_err();
    assert_eq!(code(&err), (409, codes::DESTINATION_NOT_READY));
    let err = broker.put_member("extra", "rds-99").await.unwrap_err();
    assert_eq!(code(&err), (404, codes::NOT_FOUND));
    assert!(broker.get_pool("nope").await.unwrap().is_none());
    broker
        .delete_pool("extra", Expect::Revision(updated.revision))
        .await
        .unwrap();
    let err = broker.delete_pool("extra", Expect::Any).await.unwrap_err();
    assert_eq!(code(&err), (404, codes::NOT_FOUND));

    // References block deletes.
    let err = broker
        .delete_pool("maintenance", Expect::Any)
        .await
        .unwrap_err();
    assert_eq!(code(&err), (409, codes::IN_USE));
    let err = broker
        .delete_app_config("maintenance-desktop", Expect::Any)
        .await
        .unwrap_err();
    assert_eq!(code(&err), (409, codes::IN_USE));
    let err = broker
        .delete_member("maintenance", "rds-02")
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        (409, codes::IN_USE),
        "admin-maintenance targets rds-02"
    );
    let err = broker
        .put_app_config("x", &desktop("missing"), Expect::Any)
        .await
        .unwrap_err();
    assert_eq!(code(&err), (422, codes::NOT_FOUND));
    let err = broker.delete_lb_service("rds-01").await.unwrap_err();
    assert_eq!(code(&err), (409, codes::IN_USE));

    // App configs and instances.
    let config = broker
        .put_app_config("desk", &desktop("maintenance"), Expect::Any)
        .await
        .unwrap();
    assert_eq!(
        broker.get_app_config("desk").await.unwrap().unwrap(),
        config
    );
    let mut body = AppInstanceBody {
        app_config: "desk".into(),
        user: Some("jane@corp.example".into()),
        group: None,
        destination: Some("rds-03".into()),
        labels: Labels::new(),
    };
    let instance = broker
        .put_app_instance("jane", &body, Expect::Any)
        .await
        .unwrap();
    assert_eq!(
        broker.get_app_instance("jane").await.unwrap().unwrap(),
        instance
    );
    body.destination = Some("rds-04".into());
    let err = broker
        .put_app_instance("jane", &body, Expect::Any)
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        (409, codes::CONFLICT),
        "rds-04 is not in pool maintenance"
    );
    body.group = Some("admins".into());
    let err = broker
        .put_app_instance("jane", &body, Expect::Any)
        .await
        .unwrap_err();
    assert_eq!(code(&err), (400, codes::BAD_REQUEST));
    let err = broker
        .delete_app_instance("jane", Expect::Revision(instance.revision + 1))
        .await
        .unwrap_err();
    assert_eq!(code(&err), (412, codes::PRECONDITION_FAILED));
    broker
        .delete_app_instance("jane", Expect::Revision(instance.revision))
        .await
        .unwrap();
    broker
        .delete_app_config("desk", Expect::Revision(config.revision))
        .await
        .unwrap();
    assert!(broker.get_app_instance("jane").await.unwrap().is_none());

    // Maintenance mode.
    let m = Maintenance {
        enabled: true,
        notice_de: Some("Wartung bis 14:00".into()),
        notice_en: Some("Patching until 14:00".into()),
        allowed_groups: vec!["admins".into()],
        owner: Some("corp-rds".into()),
        out_of_rotation: vec!["live".into()],
    };
    let d = broker.put_maintenance("rds-02", &m).await.unwrap();
    assert_eq!(d.maintenance, m);
    let read = broker.get_destination("rds-02").await.unwrap().unwrap();
    assert_eq!(read.maintenance.owner.as_deref(), Some("corp-rds"));
    let cleared = broker.delete_maintenance("rds-02").await.unwrap();
    assert_eq!(cleared.maintenance, Maintenance::default());
    assert!(cleared.revision > d.revision);

    // Locks.
    let lock = |holder: &str| LockBody {
        holder: holder.into(),
        ttl_seconds: 60,
    };
    broker.put_lock("corp-rds", &lock("ci-1")).await.unwrap();
    broker.put_lock("corp-rds", &lock("ci-1")).await.unwrap();
    let err = broker
        .put_lock("corp-rds", &lock("ci-2"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), (409, codes::CONFLICT));
    assert_eq!(err.problem().unwrap().holder.as_deref(), Some("ci-1"));
    let err = broker.delete_lock("corp-rds", "ci-2").await.unwrap_err();
    assert_eq!(code(&err), (409, codes::CONFLICT));
    broker.delete_lock("corp-rds", "ci-1").await.unwrap();
    broker.put_lock("corp-rds", &lock("ci-2")).await.unwrap();

    // Clearing all sticky bindings of a pool; leftover service removal.
    server
        .sim(
            "/v1/_sim/destinations/rds-01/sessions",
            json!({"user": "zoe", "state": "active"}),
        )
        .await;
    server
        .sim(
            "/v1/_sim/destinations/rds-03/power",
            json!({"online": false}),
        )
        .await;
    assert!(server.snapshot().await.sticky_bindings.len() >= 3);
    broker.disconnect_sessions("rds-01").await.unwrap();
    assert!(broker.clear_sticky("live", None).await.unwrap().affected >= 4);
    assert!(server.snapshot().await.sticky_bindings.is_empty());
    broker.delete_member("live", "rds-03").await.unwrap_err();
    let err = broker.delete_lb_service("rds-03").await.unwrap_err();
    assert_eq!(code(&err), (502, codes::DESTINATION_UNREACHABLE));
    server
        .sim(
            "/v1/_sim/destinations/rds-03/power",
            json!({"online": true}),
        )
        .await;
    let d = broker.delete_lb_service("rds-03").await.unwrap();
    assert!(!d.lb_service_installed);

    // Unknown paths and methods answer problems too.
    let r = server
        .raw(reqwest::Method::GET, "/v1/nothing")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = server
        .raw(reqwest::Method::POST, "/v1/pools")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

/// Every answer names the broker; `GET /v1/broker`, `identity()` and a
/// plan's read agree; two brokers started from one seed are two brokers,
/// and a restart keeps the identity.
#[tokio::test]
async fn every_answer_carries_the_broker_identity_minted_per_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let seed = seed_path();
    let server = Server::start_on(None, state.clone(), &["--seed", seed.to_str().unwrap()]);
    let broker = server.client();
    let id = broker.identity().await.unwrap();
    assert_eq!(id.len(), 32, "128 random bits as hex: {id}");
    assert_eq!(broker.read_live().await.unwrap().identity, id);
    let body: Value = serde_json::from_str(&server.get_text("/v1/broker").await).unwrap();
    assert_eq!(body, json!({ "id": id }));
    for (method, path, status) in [
        (reqwest::Method::GET, "/v1/pools/live", 200),
        (reqwest::Method::GET, "/v1/nothing", 404),
        (reqwest::Method::POST, "/v1/pools", 405),
        (reqwest::Method::GET, "/v1/_sim/stats", 200),
    ] {
        let r = server.raw(method, path).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.headers()[BROKER_ID_HEADER], id.as_str(), "{path}");
    }
    let anonymous = reqwest::get(format!("{}/v1/pools", server.url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()[BROKER_ID_HEADER], id.as_str());

    let twin = Server::start(&["--seed", seed.to_str().unwrap()]);
    let twin_id = twin.client().identity().await.unwrap();
    assert_ne!(twin_id, id, "same seed, different broker");
    assert_eq!(
        twin.snapshot().await,
        server.snapshot().await,
        "same state all the same"
    );
    drop(server);
    let restarted = Server::start_on(None, state, &["--seed", seed.to_str().unwrap()]);
    assert_eq!(restarted.client().identity().await.unwrap(), id);
}

#[tokio::test]
async fn if_none_match_creates_only() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let broker = server.client();
    let pool = broker
        .put_pool("extra", &lb(5), Expect::Absent)
        .await
        .unwrap();
    let err = broker
        .put_pool("extra", &lb(6), Expect::Absent)
        .await
        .unwrap_err();
    assert_eq!(code(&err), (412, codes::PRECONDITION_FAILED));
    assert_eq!(broker.get_pool("extra").await.unwrap().unwrap(), pool);
    let err = broker
        .put_app_config(
            "maintenance-desktop",
            &desktop("maintenance"),
            Expect::Absent,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), (412, codes::PRECONDITION_FAILED));
    let raw = |headers: &[(&'static str, &'static str)]| {
        let mut request = server
            .raw(reqwest::Method::PUT, "/v1/pools/live")
            .json(&json!({}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    assert_eq!(raw(&[("if-none-match", "*")]).await.unwrap().status(), 412);
    assert_eq!(
        raw(&[("if-none-match", "\"3\"")]).await.unwrap().status(),
        400
    );
    let both = raw(&[("if-none-match", "*"), ("if-match", "\"3\"")]);
    assert_eq!(both.await.unwrap().status(), 400);
}

/// A member write answers the membership and the pool's revision (also its
/// ETag), never the pool's member list: an answer that grows with the pool
/// made growing a pool one member at a time quadratic.
#[tokio::test]
async fn a_member_write_answers_the_membership_not_the_pool() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let write = |method: reqwest::Method| async {
        let r = server
            .raw(method, "/v1/pools/live/members/rds-02")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        (etag, r.json::<Value>().await.unwrap())
    };
    let (etag, added) = write(reqwest::Method::PUT).await;
    let revision = server
        .client()
        .get_pool("live")
        .await
        .unwrap()
        .unwrap()
        .revision;
    assert_eq!(
        added,
        json!({"pool": "live", "destination": "rds-02", "member": true, "revision": revision})
    );
    assert_eq!(etag, format!("\"{revision}\""));
    let (_, removed) = write(reqwest::Method::DELETE).await;
    let after = server.client().get_pool("live").await.unwrap().unwrap();
    assert!(!after.members.iter().any(|m| m == "rds-02"));
    assert_eq!(
        removed,
        json!({"pool": "live", "destination": "rds-02", "member": false, "revision": after.revision})
    );
}

/// Drain mode: no new logons on rds-02 (but for the groups maintenance lets
/// in) until it leaves load-balanced `live`, which ends drain mode in the
/// same change; disconnecting leaves disconnected sessions alone.
#[tokio::test]
async fn drain_mode_blocks_new_logons_until_the_host_leaves_its_pool() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let broker = server.client();
    let start = broker.events(0).await.unwrap().len() as u64;
    let d = broker.start_drain("rds-02", "corp-rds").await.unwrap();
    assert_eq!(d.draining.as_deref(), Some("corp-rds"));
    let again = broker.start_drain("rds-02", "corp-rds").await.unwrap();
    assert_eq!(again.revision, d.revision, "repeating changes nothing");
    let err = broker.start_drain("rds-02", "other").await.unwrap_err();
    assert_eq!(code(&err), (409, codes::CONFLICT));

    let logon = |user: &str, groups: Value| {
        server
            .raw(
                reqwest::Method::POST,
                "/v1/_sim/destinations/rds-02/sessions",
            )
            .json(&json!({"user": user, "state": "active", "groups": groups}))
            .send()
    };
    let refused = logon("zoe", json!(["users"])).await.unwrap();
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], codes::DESTINATION_DRAINING);
    assert_eq!(problem["holder"], "corp-rds");
    let maintenance = Maintenance {
        enabled: true,
        allowed_groups: vec!["admins".into()],
        ..Maintenance::default()
    };
    broker
        .put_maintenance("rds-02", &maintenance)
        .await
        .unwrap();
    assert_eq!(
        logon("root", json!(["admins"])).await.unwrap().status(),
        201
    );

    let affected = broker.disconnect_sessions("rds-02").await.unwrap();
    assert_eq!(affected.affected, 3, "the two users and root");
    server
        .sim(
            "/v1/_sim/destinations/rds-02/sessions",
            json!({"user": "kim", "state": "disconnected", "groups": ["admins"]}),
        )
        .await;
    assert_eq!(
        broker.disconnect_sessions("rds-02").await.unwrap().affected,
        0
    );
    assert_eq!(
        broker
            .get_destination("rds-02")
            .await
            .unwrap()
            .unwrap()
            .sessions
            .disconnected,
        4,
        "nobody was logged off"
    );

    broker.delete_member("live", "rds-02").await.unwrap();
    let out = broker.get_destination("rds-02").await.unwrap().unwrap();
    assert_eq!(out.draining, None);
    assert_eq!(logon("zoe", json!([])).await.unwrap().status(), 201);
    assert_eq!(broker.end_drain("rds-02").await.unwrap().draining, None);

    let ops: Vec<String> = broker
        .events(start)
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e.op, e.resource))
        .collect();
    assert_eq!(
        ops,
        [
            "destination.drain.start destination/rds-02/drain",
            "destination.maintenance.set destination/rds-02/maintenance",
            "sim.session.start session/s-00000009",
            "sessions.disconnect destination/rds-02/sessions",
            "sim.session.start session/s-00000010",
            "member.remove pool/live/member/rds-02",
            "sim.session.start session/s-00000011",
        ]
    );
}

/// The offline removal's leftover names the pool and the stack that owned
/// it, until the service is removed; new fields stay out of answers that
/// have nothing to say.
#[tokio::test]
async fn a_leftover_service_records_who_left_it() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let broker = server.client();
    let plain = server.get_text("/v1/destinations/rds-02").await;
    for field in ["draining", "lb_service_leftover", "owner"] {
        assert!(!plain.contains(field), "{field} in {plain}");
    }
    server
        .sim(
            "/v1/_sim/destinations/rds-02/power",
            json!({"online": false}),
        )
        .await;
    broker.start_drain("rds-02", "corp-rds").await.unwrap();
    let err = broker.delete_member("live", "rds-02").await.unwrap_err();
    assert_eq!(code(&err), (502, codes::LB_SERVICE_UNINSTALL_FAILED));
    let d = broker.get_destination("rds-02").await.unwrap().unwrap();
    assert_eq!(
        d.lb_service_leftover.as_deref(),
        Some(&Leftover {
            pool: "live".into(),
            owner: Some("corp-rds".into())
        })
    );
    assert_eq!(d.draining, None, "offline removal ends drain mode too");
    server
        .sim(
            "/v1/_sim/destinations/rds-02/power",
            json!({"online": true}),
        )
        .await;
    let cleaned = broker.delete_lb_service("rds-02").await.unwrap();
    assert_eq!(cleaned.lb_service_leftover, None);
    assert!(!cleaned.lb_service_installed);
}

#[tokio::test]
async fn passwords_never_leave_the_broker() {
    let server = Server::start(&[]);
    let broker = server.client();
    let secret = "Sup3r-Secret-PW-91";
    let mut body = PoolBody::default();
    body.default_credentials.username = Some("CORP\\svc".into());
    body.default_credentials.password = Some(secret.into());
    let pool = broker.put_pool("maint", &body, Expect::Any).await.unwrap();
    assert!(pool.default_credentials.password_set);
    let raw = server
        .raw(reqwest::Method::GET, "/v1/pools/maint")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let snapshot = serde_json::to_string(&server.snapshot().await).unwrap();
    let events = serde_json::to_string(&broker.events(0).await.unwrap()).unwrap();
    let state = std::fs::read_to_string(&server.state).unwrap();
    for text in [&raw, &snapshot, &events, &state] {
        assert!(!text.contains(secret));
    }
    assert!(state.contains("$argon2id$"), "an Argon2id hash is kept");
}

/// A log that cannot be written (here every write to stderr fails: the disk
/// is full) costs the log, never an answer: the subscriber must not report
/// its own failure by panicking the handler.
#[tokio::test]
async fn a_broker_whose_log_cannot_be_written_still_answers() {
    let server = Server::start_logged(&[], Path::new("/dev/full"));
    let broker = server.client();
    for pool in ["a", "b", "c"] {
        broker.put_pool(pool, &lb(0), Expect::Any).await.unwrap();
    }
    let live = broker.read_live().await.unwrap();
    assert_eq!(live.pools.len(), 3);
}

/// Lists cost ceil(N/1000) requests: 2,500 pools are three pages, each
/// telling the whole list's total so that a client sizes its list once.
#[tokio::test]
async fn lists_page_across_more_than_a_thousand_items() {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = Snapshot::default();
    for i in 0..2500 {
        snapshot.pools.push(poolform::contract::wire::Pool {
            name: format!("pool-{i:05}"),
            load_balancing: LoadBalancing::default(),
            default_credentials: Default::default(),
            labels: Labels::from([("poolform.stack".to_owned(), "big".to_owned())]),
            members: vec![],
            revision: i + 1,
        });
    }
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, serde_json::to_vec(&snapshot).unwrap()).unwrap();
    let state = dir.path().join("state.json");
    let server = Server::start_on(Some(dir), state, &["--seed", seed.to_str().unwrap()]);
    let broker = server.client();
    let live = broker.read_live().await.unwrap();
    assert_eq!(live.pools.len(), 2500);
    assert!(live.pools.windows(2).all(|w| w[0].name < w[1].name));
    assert_eq!(server.stats().await.requests["GET /v1/pools"], 3);
    let mut cursor = String::new();
    let mut sizes = Vec::new();
    loop {
        let page: serde_json::Value = server
            .raw(
                reqwest::Method::GET,
                &format!("/v1/pools?limit=1000&cursor={cursor}"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            page["total"], 2500,
            "every page tells the whole list's size"
        );
        sizes.push(page["items"].as_array().unwrap().len());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(sizes, [1000, 1000, 500]);
    let r = server
        .raw(reqwest::Method::GET, "/v1/pools?limit=1001")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn bad_requests_get_problems_and_change_nothing() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let before = server.snapshot().await;
    let big = format!("{{\"labels\": {{\"x\": \"{}\"}}}}", "a".repeat(1 << 20));
    let cases: Vec<(&str, String, u16)> = vec![
        ("/v1/pools/live", "{not json".into(), 400),
        (
            "/v1/pools/live",
            r#"{"load_balancing": {"enabled": "yes"}}"#.into(),
            400,
        ),
        ("/v1/pools/live", r#"{"members": ["rds-01"]}"#.into(), 400),
        ("/v1/pools/bad%20name", "{}".into(), 400),
        (
            "/v1/app-configs/x",
            r#"{"pool": "live", "type": "tv", "protocol": "rdp"}"#.into(),
            400,
        ),
        (
            "/v1/locks/corp-rds",
            r#"{"holder": "a", "ttl_seconds": 0}"#.into(),
            400,
        ),
        ("/v1/pools/live", big, 413),
    ];
    for (path, body, status) in cases {
        let response = server
            .raw(reqwest::Method::PUT, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert!(problem["code"].is_string() && problem["title"].is_string());
    }
    let r = server
        .raw(reqwest::Method::PUT, "/v1/pools/live")
        .header("if-match", "\"seven\"")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(server.snapshot().await, before);
    assert!(server.client().events(0).await.unwrap().is_empty());
}

/// With 20% injected 503s every idempotent call still succeeds, and the
/// client's retry counter matches the failures the server injected.
#[tokio::test]
async fn retries_ride_out_injected_failures() {
    let server = Server::start(&[
        "--seed",
        seed_path().to_str().unwrap(),
        "--fail-rate",
        "0.2",
        "--seed-random",
        "7",
    ]);
    let broker = server.client_with(RetryPolicy {
        max_attempts: 30,
        max_elapsed: Duration::from_secs(120),
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    });
    for i in 0..30 {
        broker
            .put_pool(&format!("p{i}"), &PoolBody::default(), Expect::Any)
            .await
            .unwrap();
        broker.put_member(&format!("p{i}"), "rds-01").await.unwrap();
        broker.read_live().await.unwrap();
    }
    let stats = server.stats().await;
    assert!(broker.retries() > 0);
    assert_eq!(broker.retries(), stats.injected_unavailable);
    assert_eq!(
        broker.requests(),
        stats.total - 1,
        "every request but the stats call is the client's"
    );
    let live = broker.read_live().await.unwrap();
    assert_eq!(live.pools.len(), 32);
}

#[tokio::test]
async fn rate_limiting_answers_429_with_retry_after_and_clients_wait() {
    let server = Server::start(&["--rate-limit", "5/s"]);
    let client = reqwest::Client::new();
    let handles: Vec<_> = (0..30)
        .map(|_| {
            tokio::spawn(
                client
                    .get(format!("{}/v1/pools", server.url))
                    .bearer_auth(TOKEN)
                    .send(),
            )
        })
        .collect();
    let mut answers = Vec::new();
    for h in handles {
        answers.push(h.await.unwrap().unwrap());
    }
    let limited: Vec<_> = answers.iter().filter(|r| r.status() == 429).collect();
    assert!(!limited.is_empty());
    assert!(
        limited
            .iter()
            .all(|r| r.headers().contains_key("retry-after"))
    );
    let burst_limited = limited.len() as u64;
    // The burst emptied the bucket (it refills at 5/s), so the client's
    // five list reads, sent at once, meet 429s and must wait them out.
    let broker = server.client_with(RetryPolicy {
        max_attempts: 10,
        max_elapsed: Duration::from_secs(120),
        ..RetryPolicy::default()
    });
    broker.read_live().await.unwrap();
    assert!(broker.retries() > 0, "the client met a 429 and retried");
    assert_eq!(
        server.stats().await.rate_limited,
        burst_limited + broker.retries(),
        "every retry answered a 429"
    );
}

#[tokio::test]
async fn state_survives_a_restart_and_wins_over_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let seed = seed_path();
    let first = Server::start_on(None, state.clone(), &["--seed", seed.to_str().unwrap()]);
    first
        .client()
        .put_pool("added", &PoolBody::default(), Expect::Any)
        .await
        .unwrap();
    drop(first);
    let again = Server::start_on(None, state, &["--seed", seed.to_str().unwrap()]);
    let live = again.client().read_live().await.unwrap();
    assert!(live.pools.iter().any(|p| p.name == "added"));
    assert_eq!(live.pools.len(), 3);
}

/// SIGKILL during a burst of concurrent writes never leaves an unreadable
/// state file, and every write the server acknowledged is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_a_readable_state_with_every_acknowledged_write() {
    for round in 0..4 {
        let mut server = Server::start(&[]);
        let broker = std::sync::Arc::new(server.client());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut writers = Vec::new();
        for w in 0..4 {
            let broker = broker.clone();
            let tx = tx.clone();
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("r{round}-w{w}-{i}");
                    match broker
                        .put_pool(&name, &PoolBody::default(), Expect::Any)
                        .await
                    {
                        Ok(_) => {
                            if tx.send(name).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }));
        }
        drop(tx);
        let mut acknowledged = Vec::new();
        while acknowledged.len() < 20 + round * 7 {
            acknowledged.push(rx.recv().await.expect("writers keep writing"));
        }
        let _ = server.child.kill();
        let _ = server.child.wait();
        for w in writers {
            let _ = w.await;
        }
        while let Ok(name) = rx.try_recv() {
            acknowledged.push(name);
        }
        let engine = load_state(&server.state).expect("the state file is readable");
        for name in &acknowledged {
            assert!(engine.pool(name).is_some(), "acknowledged {name} was lost");
        }
    }
}

/// The notice before a drain: every active session on the host is told,
/// nothing about the sessions changes, the log says `sessions.message`;
/// texts that are no plain notice are refused. The snapshot a rehearsal
/// copies reads whole over the client.
#[tokio::test]
async fn users_are_messaged_and_the_snapshot_is_read_over_http() {
    let server = Server::start(&["--seed", seed_path().to_str().unwrap()]);
    let broker = server.client();
    let notice = SessionMessage {
        de: "Wartung: bitte in 10 Minuten abmelden".into(),
        en: "Maintenance: please log off within 10 minutes".into(),
    };
    let start = server.last_seq().await;
    let told = broker.message_sessions("rds-02", &notice).await.unwrap();
    assert_eq!(told.affected, 2);
    let ops: Vec<(String, String)> = server
        .events(start)
        .await
        .into_iter()
        .map(|e| (e.op, e.resource))
        .collect();
    assert_eq!(
        ops,
        [(
            "sessions.message".to_owned(),
            "destination/rds-02/sessions".to_owned()
        )]
    );
    assert_eq!(server.destination("rds-02").await.sessions.active, 2);
    let blank = SessionMessage {
        de: String::new(),
        ..notice.clone()
    };
    let err = broker.message_sessions("rds-02", &blank).await.unwrap_err();
    assert_eq!(code(&err), (400, codes::BAD_REQUEST));
    let err = broker
        .message_sessions("rds-99", &notice)
        .await
        .unwrap_err();
    assert_eq!(code(&err), (404, codes::NOT_FOUND));
    assert_eq!(
        broker.read_snapshot().await.unwrap(),
        server.snapshot().await
    );
}
