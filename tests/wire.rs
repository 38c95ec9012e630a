//! The broker contract at its edges, over real HTTP against `poolform broker
//! serve`: bodies of the documented shape only, names checked in every path
//! and query, the If-Match, cursor and number forms the OpenAPI file allows
//! or refuses, and the client retrying what the broker says it did not do.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use poolform::client::http::RetryPolicy;
use poolform::contract::names;
use poolform::contract::wire::PoolBody;
use poolform::contract::{Broker, Expect};
use reqwest::{Method, Response};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::support::{Server, TOKEN, seed_path};

fn seeded(extra: &[&str]) -> Server {
    let seed = seed_path();
    let mut args = vec!["--seed", seed.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

async fn send(server: &Server, method: Method, path: &str, body: Option<&str>) -> Response {
    let mut request = server.raw(method, path);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    request.send().await.unwrap()
}

async fn status(server: &Server, method: Method, path: &str, body: Option<&str>) -> u16 {
    send(server, method, path, body).await.status().as_u16()
}

/// The status of a request sent byte for byte, bypassing the URL parsing
/// that would remove a `%2E%2E` segment before it left.
async fn status_as_sent(server: &Server, method: &str, target: &str) -> u16 {
    let addr = server.url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// `["someone", 600]` is not a lock body, and no part of a body may be an
/// array where the contract has an object; nothing changes.
#[tokio::test]
async fn arrays_are_never_read_as_objects() {
    let server = seeded(&[]);
    let before = server.snapshot().await;
    let cases = [
        ("/v1/locks/corp-rds", r#"["someone", 600]"#),
        ("/v1/locks/corp-rds", "[]"),
        ("/v1/locks/corp-rds", "\"someone\""),
        ("/v1/pools/live", r#"{"load_balancing": [true, 10, 30]}"#),
        ("/v1/destinations/rds-02/drain", r#"["corp-rds"]"#),
        ("/v1/destinations/rds-02/maintenance", r#"[true]"#),
    ];
    for (path, body) in cases {
        assert_eq!(
            status(&server, Method::PUT, path, Some(body)).await,
            400,
            "{path} {body}"
        );
    }
    assert_eq!(server.snapshot().await, before);
    assert!(server.events(0).await.is_empty());
}

/// A name outside the rule in a path or a query is 400 on every route,
/// never a 404 read as "already gone" nor a no-op delete; `..` is refused
/// even when it reaches the server encoded.
#[tokio::test]
async fn invalid_names_in_paths_and_queries_are_bad_requests() {
    let server = seeded(&[]);
    let before = server.snapshot().await;
    let cases = [
        (Method::DELETE, "/v1/pools/%C2%84"),
        (Method::DELETE, "/v1/app-configs/%C2%84"),
        (Method::DELETE, "/v1/app-instances/%C2%84"),
        (Method::DELETE, "/v1/destinations/%C2%84/maintenance"),
        (Method::GET, "/v1/pools/%C2%84"),
        (Method::DELETE, "/v1/pools/live/members/%C2%84"),
        (Method::POST, "/v1/destinations/%C2%84/sessions/disconnect"),
        (Method::DELETE, "/v1/locks/corp-rds?holder="),
        (
            Method::DELETE,
            "/v1/pools/live/sticky-sessions?destination=",
        ),
        (
            Method::DELETE,
            "/v1/pools/live/sticky-sessions?destination=%C2%84",
        ),
    ];
    for (method, path) in cases {
        assert_eq!(
            status(&server, method.clone(), path, None).await,
            400,
            "{method} {path}"
        );
    }
    for target in [
        "/v1/pools/%2E%2E",
        "/v1/pools/live/members/%2E%2E",
        "/v1/pools/live/members/%2e",
    ] {
        assert_eq!(
            status_as_sent(&server, "DELETE", target).await,
            400,
            "{target}"
        );
    }
    assert_eq!(server.snapshot().await, before);
    assert!(server.events(0).await.is_empty());
}

/// What the schema allows is accepted: an empty events cursor is the first
/// page and `18859.0` is an integer. What it refuses is 400 and documented:
/// an empty or malformed If-Match.
#[tokio::test]
async fn the_server_and_the_openapi_file_agree_on_edge_forms() {
    let server = seeded(&[]);
    assert_eq!(
        status(&server, Method::GET, "/v1/events?cursor=", None).await,
        200
    );
    let lock = r#"{"holder": "someone", "ttl_seconds": 18859.0}"#;
    let lock = send(&server, Method::PUT, "/v1/locks/corp-rds", Some(lock)).await;
    let lock: Value = lock.json().await.unwrap();
    assert_eq!(lock["holder"], "someone", "{lock}");
    for tag in ["", "\"\"", "W/\"\"", "\"7", "*"] {
        let response = server
            .raw(Method::DELETE, "/v1/app-configs/maintenance-desktop")
            .header("if-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "If-Match {tag:?}");
    }
    assert_eq!(server.snapshot().await.app_configs.len(), 1);
    // A malformed body is 400 before a condition that fails (the instance
    // exists): both user and group, a referenced name the schema refuses.
    for body in [
        r#"{"app_config": "maintenance-desktop", "user": "a", "group": "b"}"#,
        r#"{"app_config": "0*", "group": "g"}"#,
        r#"{"app_config": "maintenance-desktop", "group": "g", "destination": ".."}"#,
    ] {
        let response = server
            .raw(Method::PUT, "/v1/app-instances/admin-maintenance")
            .header("if-none-match", "*")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    let pools = r#"{"enabled": false, "out_of_rotation": [""]}"#;
    let response = server
        .raw(Method::PUT, "/v1/destinations/rds-03/maintenance")
        .header("if-match", "\"0\"")
        .header("content-type", "application/json")
        .body(pools)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "{pools}");
    // What the schema's notice pattern refuses, the broker refuses, and
    // what it takes, the broker takes (rds-01 is online).
    for (text, answer) in [
        ("\\u0015", 400),
        ("\\u0085", 400),
        (" \\n ", 400),
        ("Wartung\\nbitte abmelden", 200),
        ("\\u00ff\\udb92\\udd42", 200),
    ] {
        let body = format!(r#"{{"de": "ok", "en": "{text}"}}"#);
        let path = "/v1/destinations/rds-01/sessions/message";
        assert_eq!(
            status(&server, Method::POST, path, Some(&body)).await,
            answer,
            "{body}"
        );
    }
    let null = r#"{"enabled": true, "owner": null}"#;
    assert_eq!(
        status(
            &server,
            Method::PUT,
            "/v1/destinations/rds-02/maintenance",
            Some(null)
        )
        .await,
        400
    );
}

fn openapi() -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/broker-api.openapi.yaml"),
    )
    .unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Every operation that takes a name or an If-Match documents the 400 the
/// server answers for a bad one, every 503 documents its Retry-After, and
/// the spec's name pattern is the rule's.
#[test]
fn the_openapi_file_documents_the_bad_requests_and_waits_the_server_answers() {
    let spec = openapi();
    assert_eq!(
        spec.pointer("/components/schemas/Name/pattern"),
        Some(&Value::from(names::PATTERN))
    );
    let pattern = spec
        .pointer("/components/parameters/IfMatch/schema/pattern")
        .and_then(Value::as_str);
    assert!(pattern.is_some(), "If-Match has a pattern");
    assert!(
        spec.pointer("/components/responses/Unavailable/headers/Retry-After")
            .is_some()
    );
    let mut undocumented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let named = ["{name}", "{stack}", "{destination}"]
            .iter()
            .any(|p| path.contains(p));
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses") else {
                continue;
            };
            let if_match = op["parameters"].as_array().is_some_and(|params| {
                params
                    .iter()
                    .any(|p| p["$ref"] == "#/components/parameters/IfMatch")
            });
            if (named || if_match) && responses.get("400").is_none() {
                undocumented.insert(format!("{method} {path}"));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "no 400 documented: {undocumented:?}"
    );
}

/// A 429 (and a 503 with Retry-After) is answered before anything is done,
/// so the client sends any request again, POST included, until the rate
/// the broker admits lets it through: every call of a burst far above the
/// rate succeeds, once each, and each turned-away request was retried once.
#[tokio::test]
async fn what_the_broker_turns_away_is_retried_on_any_method_once_each() {
    let server = seeded(&[
        "--rate-limit",
        "3/s",
        "--fail-rate",
        "0.2",
        "--seed-random",
        "5",
    ]);
    let broker = Arc::new(server.client_with(RetryPolicy::default()));
    let mut calls = JoinSet::new();
    for i in 0..8 {
        let broker = Arc::clone(&broker);
        calls.spawn(async move {
            let name = format!("burst-{i}");
            broker
                .put_pool(&name, &PoolBody::default(), Expect::Absent)
                .await
                .map(|_| ())
        });
    }
    for destination in ["rds-01", "rds-02", "rds-03"] {
        let broker = Arc::clone(&broker);
        calls.spawn(async move {
            let affected = broker.disconnect_sessions(destination).await?;
            assert!(affected.affected > 0, "{destination}");
            Ok(())
        });
    }
    while let Some(call) = calls.join_next().await {
        call.unwrap().unwrap();
    }
    let stats = server.stats().await;
    assert!(stats.rate_limited > 0, "{stats:?}");
    assert_eq!(
        broker.retries(),
        stats.rate_limited + stats.injected_unavailable,
        "{stats:?}"
    );
    let log = broker.events(0).await.unwrap();
    let count = |op: &str| log.iter().filter(|e| e.op == op).count();
    assert_eq!(
        count("sessions.disconnect"),
        3,
        "each POST took effect once"
    );
    assert_eq!(count("pool.create"), 8);
}

/// The 503s the broker answers all say when to come back.
#[tokio::test]
async fn every_503_carries_retry_after() {
    let server = seeded(&["--fail-rate", "1"]);
    let response = server.raw(Method::GET, "/v1/pools").send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let once = server.client();
    once.get_pool("live").await.unwrap_err();
    assert_eq!(once.requests(), 1, "a policy of one attempt never retries");
}
